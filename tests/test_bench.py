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


# Part IV: the fast static run of kernels/loopy_{numba,cuda}.py (`states`) and bench_loopy.
from loopy_edu import graphs, loopy  # noqa: E402
from loopy_edu.backend import kernels  # noqa: E402
from loopy_edu.bench import bench_loopy, reservoirpy_states  # noqa: E402
from loopy_edu.kernels import loopy_numba  # noqa: E402
from loopy_edu.loopy import UNIT_CODES  # noqa: E402


def static_problem(B, dtype, N=9, T=7, n_in=2, seed=0):
    """An Erdős–Rényi graph (rows of every length, empty ones included), per-unit leaks, a
    bias, and inputs (T, B, n_in)."""
    rng = np.random.default_rng(seed)
    W = graphs.erdos_renyi(N, 0.3, seed=seed)
    W.data *= 0.8
    alpha = rng.uniform(0.2, 1.0, N)
    W_in, b = rng.standard_normal((N, n_in)), 0.5 * rng.standard_normal(N)
    xs = 2 * rng.standard_normal((T, B, n_in))
    kernel_args = (W_in.astype(dtype), W.data.astype(dtype), W.indptr.astype(np.uint32),
                   W.indices.astype(np.uint32), b.astype(dtype), xs.astype(dtype),
                   alpha.astype(dtype))
    return W, W_in, b, xs, alpha, kernel_args


@pytest.mark.parametrize("backend", ["numba", "cuda"])
@pytest.mark.parametrize("activation", ["tanh", "linear", "sigmoid"])
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-6)])
def test_fast_states_equal_the_numpy_reference(backend, activation, B, dtype, tol):
    W, W_in, b, xs, alpha, args = static_problem(B, dtype)
    want = loopy.forward(W, W_in, b, xs, alpha, activation)[0]
    got = kernels("loopy", backend).states(*args, UNIT_CODES[activation])
    assert got.shape == want.shape and got.dtype == dtype
    # Relative to the largest state: the linear network's grow past 1.
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("dtype,tol", [(np.float64, 2.3e-16), (np.float32, 2e-7)])
def test_vector_tanh_is_within_round_off(dtype, tol):
    """The tanh pass, with α = 1 and h = 0, is tanh itself to within round-off (float32: about
    3 units in the last place of 1): near 0, where e^{-2|z|} ≈ 1, through the reduction's every
    m, and saturated (|z| > 20)."""
    big, tiny = np.finfo(dtype).max, np.finfo(dtype).smallest_subnormal
    z = np.concatenate([np.linspace(-30, 30, 100_001),
                        [0.0, 1e-30, -tiny, big, -big]]).astype(dtype)
    out = np.empty_like(z)
    loopy_numba._leak_act(z, np.zeros_like(z), np.ones_like(z), loopy_numba.TANH, out)
    assert np.max(np.abs(out - np.tanh(z.astype(np.float64)))) <= tol
    assert np.all(np.sign(out[out != 0]) == np.sign(z[out != 0]))


def test_fast_states_equal_reservoirpy():
    """reservoirpy's Reservoir.run on the same W, W_in, bias and lr gives the same states."""
    pytest.importorskip("reservoirpy")
    W, W_in, b, xs, alpha, args = static_problem(2, np.float64, N=30, T=50)
    args = args[:-1] + (np.full(30, 0.4),)
    got = kernels("loopy", "numba").states(*args, UNIT_CODES["tanh"])
    np.testing.assert_allclose(got, reservoirpy_states(W, W_in, b, xs, 0.4), rtol=0,
                               atol=1e-12)


def test_bench_loopy_tables():
    out = bench_loopy(seconds=0.001, N=12, T=20, degrees=(2, 3), batch=3, batch_steps=4,
                      plastic_steps=3, gpu=True, gpu_n=16, gpu_k=2, gpu_steps=2)
    blocks = out.split("\n\n")
    assert blocks[0].startswith("Static run, N=12, batch 1, 20 steps")
    assert blocks[1].startswith("3 sequences of 4 steps at once")
    for block in blocks[:2]:
        rows = [line.split() for line in block.splitlines()[3:]]
        assert [r[0] for r in rows] == ["2", "3"]
        if reservoirpy_states(graphs.ring(2), np.ones((2, 1)), np.zeros(2),
                              np.zeros((1, 1, 1)), 1.0) is not None:
            assert all(r[4].endswith("x") and r[5].endswith("x") for r in rows)
            assert all(float(r[6]) <= 1e-12 for r in rows)       # states checked against it
        else:
            assert "reservoirpy columns skipped" in out
    assert any(b.startswith("Plastic step") for b in blocks)
    assert blocks[-1].startswith("GPU, 16 units x 2 synapses")
    assert bench_loopy(seconds=0.001, N=5, T=3, degrees=(1,), batch=2, batch_steps=2,
                       plastic_steps=2, gpu=False).endswith("GPU rows skipped: no CUDA GPU "
                                                            "here (none, or only Numba's "
                                                            "simulator)")


# Part V: bench_halting, the PyTorch ACT beside ours, and the compacted Numba ACT kernel.
from loopy_edu import bench as bench_module  # noqa: E402
from loopy_edu.bench import BENCHES, act_loss_torch, bench_halting  # noqa: E402
from loopy_edu.halting import ACTCell  # noqa: E402
from loopy_edu.tasks import parity_vectors  # noqa: E402

HALTING_SIZES = dict(batch=5, n_hidden=4, max_steps=3, n_bits=6, loops=(1, 2), sln_hidden=3,
                     gpu=False)


def _halting_blocks(out):
    blocks = out.split("\n\n")
    assert blocks[0].startswith("ACT training step (loss_and_grads + Adam) on 6-bit parity, B=5")
    assert blocks[1].startswith("PonderCell (")
    assert blocks[2].startswith("LoopedCell training step per example per loop")
    assert blocks[3].startswith("SLN training step per example per dialogue loop (two lobes "
                                "of 3 units")
    assert [line.split()[0] for line in blocks[3].splitlines()[3:]] == ["1", "2"]
    assert blocks[4].startswith("CUDA columns skipped")
    return blocks


def test_bench_halting_tables():
    out = bench_halting(seconds=0.002, halt_biases=(1.0, -3.0), **HALTING_SIZES)
    blocks = _halting_blocks(out)
    lines = blocks[0].splitlines()
    rows = [line.split() for line in lines[3:5]]
    assert [r[0] for r in rows] == ["1", "-3"]
    assert float(rows[0][1]) < float(rows[1][1]) <= 4            # ponder N + R, N <= M = 3
    ratios = [re.findall(r"\d+\.\d+x", line) for line in lines[3:5]]
    has_torch = bench_module._torch() is not None
    # numba/numpy always, numba/torch when torch is there, with the two losses equal.
    assert all(len(r) == 1 + has_torch for r in ratios)
    if has_torch:
        assert all(float(r[-1]) <= 1e-12 for r in rows)
    else:
        assert all("not installed" in line for line in lines[3:5])
    assert lines[5].startswith("Goal (numba >= 2x numpy and >= 1x torch): halt_bias 1: ")
    assert lines[5].count("numba/numpy") == 2 and lines[5].count("numba/torch") == 2
    assert blocks[1].startswith("PonderCell (3 steps) and LoopedCell (4 loops)")
    assert [line.split()[0] for line in blocks[1].splitlines()[3:]] == ["PonderCell",
                                                                       "LoopedCell"]
    assert [line.split()[0] for line in blocks[2].splitlines()[3:]] == ["1", "2"]
    assert "halting" in BENCHES


def test_bench_halting_without_torch_says_so(monkeypatch):
    monkeypatch.setattr(bench_module, "_torch", lambda: None)
    assert act_loss_torch({}, np.zeros((1, 1)), np.zeros((1, 1))) is None
    lines = _halting_blocks(bench_halting(seconds=0.001, halt_biases=(0.0,),
                                          **HALTING_SIZES))[0].splitlines()
    assert lines[3].split()[-3:] == ["not", "installed", "-"]        # numba/torch, |loss|
    assert lines[3].count("not installed") == 2                       # and torch's time
    assert lines[4].endswith("numba/torch not installed")


@pytest.mark.parametrize("halt_bias", [2.0, 0.0, -1.0, -4.0])
def test_torch_act_equals_ours(halt_bias):
    """Loss, ponder and the autograd gradient of the PyTorch ACT equal the NumPy reference's,
    examples halting at different steps (the ponder term's gradient only through R)."""
    torch = pytest.importorskip("torch")
    X, Y, _ = parity_vectors(9, 6, seed=1)
    m = ACTCell(6, 5, 1, max_steps=5, tau=0.05, halt_bias=halt_bias, seed=2, backend="numpy")
    loss, grads = m.loss_and_grads(X, Y)
    got, ponder = act_loss_torch(m.params, X, Y, 5, m.epsilon, m.tau)
    assert got == pytest.approx(loss, rel=1e-13)
    np.testing.assert_allclose(ponder, m.predict(X)[1], rtol=1e-13)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in m.params.items()}
    bench_module._torch_act(torch, tp, torch.from_numpy(X), torch.from_numpy(Y), 5, m.epsilon,
                            m.tau)[0].backward()
    for k, g in grads.items():
        np.testing.assert_allclose(tp[k].grad.numpy(), g, rtol=0, atol=1e-13, err_msg=k)


@pytest.mark.parametrize("max_steps,halt_bias", [(1, 0.0), (2, 3.0), (6, -1.5), (10, -3.0)])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 2e-5)])
def test_compacted_act_kernel_equals_the_reference(max_steps, halt_bias, dtype, tol):
    """The Numba ACT drops the halted examples from each step's rows: loss, gradient, outputs
    and ponder still equal the NumPy reference's, at every cap, halting early or late."""
    X, Y, _ = parity_vectors(37, 8, seed=4, dtype=dtype)
    ref, fast = (ACTCell(8, 6, 1, max_steps=max_steps, tau=0.01, halt_bias=halt_bias, seed=5,
                         dtype=dtype, backend=be) for be in ("numpy", "numba"))
    rng = np.random.default_rng(6)
    for k in ref.params:
        ref.params[k] += (rng.standard_normal(ref.params[k].shape)).astype(dtype)
        fast.params[k][:] = ref.params[k]
    loss, grads = ref.loss_and_grads(X, Y)
    loss2, grads2 = fast.loss_and_grads(X, Y)
    assert abs(loss - loss2) <= tol * max(1.0, abs(loss))
    for k in grads:
        assert grads2[k].dtype == dtype
        np.testing.assert_allclose(grads2[k], grads[k], rtol=0, atol=tol, err_msg=k)
    (p, ponder), (p2, ponder2) = ref.predict(X), fast.predict(X)
    np.testing.assert_allclose(p2, p, rtol=0, atol=tol)
    np.testing.assert_allclose(ponder2, ponder, rtol=0, atol=tol * max_steps)
    if max_steps > 2:                                    # the examples halt at different steps
        assert len(set(np.floor(ponder))) > 1
