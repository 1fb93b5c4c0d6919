"""The benchmark runs end to end and reports every backend and the ratios (speed itself is not tested)."""
from loopy_edu.bench import bench_mlp, main


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
