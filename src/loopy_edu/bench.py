"""Side-by-side benchmarks: ``python -m loopy_edu.bench mlp`` (later parts add more).

Speed is reported as throughput measured in one run on one machine, with ratios between backends, so the
figures compare like with like. Correctness is the tests' job; nothing here asserts.
"""
import argparse
import resource
import sys
import time

import numpy as np

from .backend import cuda_available, simulated

SEED_NET = (784, 20, 20, 20, 10)   # the network of Chapter 3


def _rate(step, batch, seconds):
    """Samples per second of ``step()``, after a warm-up call (compilation, caches)."""
    step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return n * batch / (time.perf_counter() - t0)


def _loopy_step(backend, X, y, dtype):
    from .mlp import MLP
    from .optim import SGD
    model = MLP(SEED_NET, seed=0, dtype=dtype, backend=backend)
    opt = SGD(0.1, backend=backend)

    def step():
        _, grads = model.loss_and_grads(X, y)
        opt.step(model.params, grads)
    return step


def _torch_step(X, y, dtype):
    import torch
    layers = []
    for i, (a, b) in enumerate(zip(SEED_NET[:-1], SEED_NET[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(SEED_NET) - 2:
            layers.append(torch.nn.Sigmoid())
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    net = torch.nn.Sequential(*layers).to(tdtype)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    loss_fn = torch.nn.CrossEntropyLoss()
    tX, ty = torch.from_numpy(X.astype(dtype)), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        loss_fn(net(tX), ty).backward()
        opt.step()
    return step


def _table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) for c, w in zip(r, widths))
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def bench_mlp(seconds=1.0, dtype=np.float64, batches=(1, 32, 256)):
    """Training throughput (samples/s: forward, backward, SGD step) of the seed network per backend."""
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    backends = ["numpy", "numba"] + (["cuda"] if cuda_available() and not simulated() else [])
    header = ["batch"] + backends + (["torch-cpu"] if have_torch else []) + ["numba/numpy"] \
        + (["numba/torch"] if have_torch else [])
    rows = []
    rng = np.random.default_rng(0)
    for B in batches:
        X = rng.random((B, SEED_NET[0])).astype(dtype)
        y = rng.integers(0, SEED_NET[-1], B)
        rate = {be: _rate(_loopy_step(be, X, y, dtype), B, seconds) for be in backends}
        if have_torch:
            rate["torch-cpu"] = _rate(_torch_step(X, y, dtype), B, seconds)
        row = [B] + [f"{rate[c]:,.0f}" for c in header[1:len(rate) + 1]]
        row.append(f"{rate['numba'] / rate['numpy']:.2f}x")
        if have_torch:
            row.append(f"{rate['numba'] / rate['torch-cpu']:.2f}x")
        rows.append(row)
    title = (f"MLP {'-'.join(map(str, SEED_NET))} training throughput, samples/s "
             f"({np.dtype(dtype).name}, {seconds:g} s per cell)")
    return title + "\n" + _table(header, rows)


def bench_memory(epochs=1, batch_size=32, **_):
    """Peak resident memory of loading MNIST and training the seed network on it.

    When only the offline fallback is available, the run uses random images of full MNIST's size
    (60,000 × 784 float32) instead, so the figure still bounds what full MNIST needs.
    """
    from .data import load_mnist
    from .mlp import MLP
    from .optim import SGD
    from .train import train
    d = load_mnist()
    if d.fallback:
        rng = np.random.default_rng(0)
        X, y = rng.random((60_000, 784), dtype=np.float32), rng.integers(0, 10, 60_000)
        what = "random images of full MNIST's size (the real training set is not on this machine)"
    else:
        X, y, what = d.x_train, d.y_train, d.source
    model = MLP(SEED_NET, seed=0)
    train(model, X, y, SGD(0.5), epochs=epochs, batch_size=batch_size, X_test=d.x_test, y_test=d.y_test,
          progress=False)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    return (f"training {'-'.join(map(str, SEED_NET))} for {epochs} epoch(s) on {len(y):,} {what}: "
            f"peak resident memory {peak_mib:,.0f} MiB")


BENCHES = {"mlp": bench_mlp, "memory": bench_memory}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m loopy_edu.bench", description=__doc__.split("\n")[0])
    parser.add_argument("name", choices=sorted(BENCHES) + ["all"], help="which benchmark to run")
    parser.add_argument("--seconds", type=float, default=1.0, help="time spent measuring each cell")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    args = parser.parse_args(argv)
    for name in sorted(BENCHES) if args.name == "all" else [args.name]:
        print(BENCHES[name](seconds=args.seconds, dtype=np.dtype(args.dtype).type))
        print()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
