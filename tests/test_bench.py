"""The benchmark runs end to end and reports every backend and the ratios (speed itself is not tested)."""
import re

import numpy as np
import pytest

from loopy_edu.bench import (bench_local, bench_mlp, bench_rnn, main, online_overhead,
                             step_costs)


def test_bench_mlp_table():
    out = bench_mlp(seconds=0.01, batches=(1, 4))
    lines = out.splitlines()
    assert "numpy" in lines[1] and "numba" in lines[1] and "numba/numpy" in lines[1]
    assert [line.split()[0] for line in lines[3:]] == ["1", "4"]
    assert all(line.split()[-1].endswith("x") for line in lines[3:])


def test_cli_rejects_unknown(capsys):
    import pytest
    with pytest.raises(SystemExit):
        main(["nope"])


def test_bench_rnn_tables():
    out = bench_rnn(seconds=0.005, T=5, N=4, batches=(1, 2), rtrl_sizes=(2, 4), lstm_H=3, lstm_T=4,
                    online_N=3)
    blocks = [b for b in out.split("\n\n") if "on the GPU" not in b.splitlines()[0]]   # CPU tables
    assert blocks[0].startswith("BPTT") and blocks[1].startswith("LSTM") and blocks[2].startswith("RTRL")
    for block in blocks[:2]:
        assert [line.split()[0] for line in block.splitlines()[3:]] == ["1", "2"]
    assert [line.split()[0] for line in blocks[2].splitlines()[3:5]] == ["2", "4"]
    assert "log-log slopes" in blocks[2]
    assert blocks[2].splitlines()[1].split()[-1] == "peak"                  # the share of peak
    assert blocks[3].startswith("Online learning at N=3") and len(blocks[3].splitlines()) == 1
    # Each learner's overhead is its time per step minus its kernel's, as printed beside it.
    found = re.findall(r"(RTRL|RFLO) (-?[\d.]+) us \(([\d.]+) - ([\d.]+)\)", blocks[3])
    assert [name for name, *_ in found] == ["RTRL", "RFLO"]
    for _, diff, run, bare in found:
        assert float(diff) == pytest.approx(float(run) - float(bare), abs=0.011)


def test_online_overhead_times_both_learners_and_their_kernels():
    cost = online_overhead(N=3, T=4, seconds=0.01)
    assert sorted(cost) == ["rflo", "rtrl"]
    assert all(np.isfinite(t) and t > 0 for pair in cost.values() for t in pair)


def test_step_costs_fit_the_slopes():
    costs = step_costs((2, 4, 8), seconds=0.005, T=5, fit_from=4)
    assert costs["N"].tolist() == [2, 4, 8] and costs["rtrl"].shape == costs["bptt"].shape == (3,)
    expected = np.polyfit(np.log([4, 8]), np.log(costs["rtrl"][1:]), 1)[0]
    assert costs["slope"]["rtrl"] == pytest.approx(expected)


def test_bench_local_tables():
    out = bench_local(seconds=0.005, rflo_sizes=(2, 4), rtrl_max=2, T=3, chain_lengths=(1, 3), n_synapses=10,
                      chain_steps=2)
    blocks = [b for b in out.split("\n\n") if "on the GPU" not in b.splitlines()[0]]
    assert blocks[0].startswith("RFLO") and blocks[1].startswith("Synapse")
    rows = [line.split() for line in blocks[0].splitlines()[3:5]]
    assert [r[0] for r in rows] == ["2", "4"] and rows[1][3] == "-"        # RTRL only up to rtrl_max
    assert [line.split()[0] for line in blocks[1].splitlines()[3:]] == ["1", "3"]
    assert "numba RTRL" not in blocks[0]                                   # one RTRL size: no slope
    out = bench_local(seconds=0.005, rflo_sizes=(2, 4), rtrl_max=4, T=3, chain_lengths=(1,), n_synapses=10,
                      chain_steps=2)
    assert "numba RTRL" in out.split("\n\n")[0]


def test_bench_sweep_table():
    from loopy_edu.bench import bench_sweep
    out = bench_sweep(seconds=0.02, jobs=4)
    lines = out.splitlines()
    assert lines[0].startswith("Sweep: 4 runs of murray")
    assert [line.split()[0] for line in lines[3:]] == ["1", "2"]
    assert lines[3].split()[3] == "1.00x" and lines[4].split()[4] == "2.00x"
    assert lines[3].split()[-1].endswith("%") and lines[1].split()[-1] == "efficiency"
