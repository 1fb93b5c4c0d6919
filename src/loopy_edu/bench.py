"""Side-by-side benchmarks: ``python -m loopy_edu.bench NAME``.

NAME is one of mlp, memory, rnn, local, loopy, sweep, halting or all.

Speed is reported as throughput measured in one run on one machine, with ratios between
backends, so the figures compare like with like. Every CPU column uses one thread (run through
``make bench``, which sets ``OPENBLAS_NUM_THREADS=1``; PyTorch is limited to one thread here).
Correctness is the tests' job; nothing here asserts.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np
from numpy.typing import DTypeLike

from .backend import cuda_available, simulated

SEED_NET = (784, 20, 20, 20, 10)   # the network of Chapter 3


def _per_call(step, seconds):
    """Seconds per call of ``step()``, after a warm-up call (compilation, caches)."""
    step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n == 0:
        step()
        n += 1
    return (time.perf_counter() - t0) / n


def _rate(step, batch, seconds):
    """Samples per second of ``step()``."""
    return batch / _per_call(step, seconds)


def _torch():
    """PyTorch limited to one thread, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return torch


def _gpu_backends():
    return ["cuda"] if cuda_available() and not simulated() else []


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


def bench_mlp(seconds: float = 1.0, dtype: DTypeLike = np.float64,
              batches: tuple[int, ...] = (1, 32, 256)) -> str:
    """Training throughput (samples/s: forward, backward, SGD step) of the seed network per
    backend.

    Parameters
    ----------
    seconds : float
        Time spent measuring each cell.
    dtype : dtype
        ``np.float64`` or ``np.float32``.
    batches : tuple of int
        The batch sizes, one row each.

    Returns
    -------
    str
        A title and a table.
    """
    have_torch = _torch() is not None
    backends = ["numpy", "numba"] + _gpu_backends()
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


def bench_memory(epochs: int = 1, batch_size: int = 32, **_: object) -> str:
    """Peak resident memory of loading MNIST and training the seed network on it.

    When only the offline fallback is available, the run uses random images of full MNIST's size
    (60,000 × 784 float32) instead, so the figure still bounds what full MNIST needs.

    Parameters
    ----------
    epochs : int
    batch_size : int
    **_
        Ignored, so that every benchmark takes ``seconds`` and ``dtype``.

    Returns
    -------
    str
        One line.
    """
    from .data import load_mnist
    from .mlp import MLP
    from .optim import SGD
    from .train import train
    d = load_mnist()
    if d.fallback:
        rng = np.random.default_rng(0)
        X, y = rng.random((60_000, 784), dtype=np.float32), rng.integers(0, 10, 60_000)
        what = ("random images of full MNIST's size (the real training set is not on this "
                "machine)")
    else:
        X, y, what = d.x_train, d.y_train, d.source
    model = MLP(SEED_NET, seed=0)
    train(model, X, y, SGD(0.5), epochs=epochs, batch_size=batch_size, X_test=d.x_test,
          y_test=d.y_test, progress=False)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    return (f"training {'-'.join(map(str, SEED_NET))} for {epochs} epoch(s) on {len(y):,} "
            f"{what}: peak resident memory {peak_mib:,.0f} MiB")


RNN_IO = 8   # inputs and outputs of the benchmarked recurrent networks
# Steps per timed call of RTRL: few keep the N = 128 cells quick; enough make the fixed cost
# of a call (checks, allocating and first touching the influence's memory) small per step.
RTRL_STEPS = 16


def _sequence(T, B, n_in, n_out, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((T, B, n_in)).astype(dtype),
            rng.standard_normal((T, B, n_out)).astype(dtype))


def _grad_call(model, fn, backend, xs, targets):
    return lambda: fn(model, xs, targets, "mse", None, backend=backend)


def _torch_seq_step(torch, kind, n_hidden, xs, targets):
    """One forward + backward of torch.nn.RNN (tanh) or torch.nn.LSTM with a linear readout and
    the masked-MSE loss of :mod:`loopy_edu.readout` (all-ones mask)."""
    cell = torch.nn.RNN if kind == "rnn" else torch.nn.LSTM
    tdtype = torch.float64 if xs.dtype == np.float64 else torch.float32
    net = cell(xs.shape[-1], n_hidden).to(tdtype)
    head = torch.nn.Linear(n_hidden, targets.shape[-1]).to(tdtype)
    tx, tt = torch.from_numpy(xs), torch.from_numpy(targets)

    def step():
        net.zero_grad()
        head.zero_grad()
        y = head(net(tx)[0])
        (0.5 * ((y - tt) ** 2).sum() / xs.shape[1]).backward()
    return step


def matmul_peak(seconds: float = 1.0, dtype: DTypeLike = np.float64, n: int = 1024) -> float:
    """GFLOP/s of an n × n matrix product through NumPy's BLAS: the machine's reference peak.

    Parameters
    ----------
    seconds : float
        Time spent measuring.
    dtype : dtype
    n : int
        The matrix size.

    Returns
    -------
    float
    """
    a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
    return 2 * n ** 3 / _per_call(lambda: a @ a, seconds) / 1e9


def step_costs(Ns: tuple[int, ...] = (8, 16, 32, 64), seconds: float = 0.2,
               backend: str = "numba", T: int = 200, dtype: DTypeLike = np.float64,
               fit_from: int = 32) -> dict[str, object]:
    """Seconds per time step of BPTT (over T steps) and of RTRL, batch 1, for each N
    (Chapter 6), and the slopes of straight-line fits to log cost against log N over
    N ≥ ``fit_from`` (below it, fixed per-step overheads hide the leading power; with fewer than
    two such N, all are fitted).

    Parameters
    ----------
    Ns : tuple of int
        The network sizes N.
    seconds : float
        Time spent measuring each cell.
    backend : str
        ``"numpy"``, ``"numba"`` or ``"cuda"``.
    T : int
        Sequence length for BPTT.
    dtype : dtype
    fit_from : int
        Smallest N in the fits.

    Returns
    -------
    dict
        ``"N"``, ``"bptt"`` and ``"rtrl"`` (arrays of shape (len(Ns),), seconds per step) and
        ``"slope"`` (``{"bptt": float, "rtrl": float}``).
    """
    from .bptt import bptt
    from .rnn import RNN
    from .rtrl import rtrl
    out = {"N": np.array(Ns), "bptt": [], "rtrl": []}
    for N in Ns:
        model = RNN(RNN_IO, N, RNN_IO, dtype=dtype, backend=backend)
        xs, targets = _sequence(T, 1, RNN_IO, RNN_IO, dtype)
        out["bptt"].append(_per_call(_grad_call(model, bptt, backend, xs, targets), seconds)
                           / T)
        # RTRL's cost per step does not depend on T: a short sequence keeps N = 128 quick.
        short = min(RTRL_STEPS, T)
        out["rtrl"].append(_per_call(_grad_call(model, rtrl, backend, xs[:short],
                                                targets[:short]), seconds) / short)
    out["bptt"], out["rtrl"] = np.array(out["bptt"]), np.array(out["rtrl"])
    out["slope"] = {k: _fit_slope(out["N"], out[k], fit_from) for k in ("bptt", "rtrl")}
    return out


def _rtrl_flops(N, n_in=RNN_IO):
    """The dominant cost of one RTRL step, the (N, N) × (N, N·M) product: 2 N³ M flops."""
    return 2.0 * N ** 3 * (N + n_in + 1)


def _best_per_call(steps, seconds, rounds=5):
    """Seconds per call of each of ``steps`` (a dict of callables), timed in turns over
    ``rounds`` rounds, the best round of each: side by side, so that a burst of other load on
    the machine slows neither alone."""
    best = {k: np.inf for k in steps}
    for _ in range(rounds):
        for k, step in steps.items():
            best[k] = min(best[k], _per_call(step, seconds / rounds))
    return best


def online_overhead(N: int = 16, T: int = 200, seconds: float = 1.0,
                    dtype: DTypeLike = np.float64) -> dict[str, tuple[float, float]]:
    """Seconds per step of the online learners (:class:`loopy_edu.rtrl.OnlineRTRL` and
    :class:`loopy_edu.rflo.OnlineRFLO`, batch 1, SGD, numba) running T-step sequences, and of
    their bare kernels called on ready buffers in a plain loop, measured side by side. The
    difference is what the learners add per step: checks, bookkeeping and the optimizer.

    Parameters
    ----------
    N : int
        Recurrent units.
    T : int
        Steps per call of ``run``.
    seconds : float
        Time spent measuring each learner and each kernel.
    dtype : dtype

    Returns
    -------
    dict[str, tuple[float, float]]
        ``{"rtrl": (learner, kernel), "rflo": (learner, kernel)}``, seconds per step.
    """
    from .activations import CODES
    from .backend import kernels
    from .optim import SGD
    from .rflo import OnlineRFLO, random_feedback
    from .rnn import RNN
    from .rtrl import OnlineRTRL
    xs, targets = _sequence(T, 1, RNN_IO, RNN_IO, dtype)
    mask = np.ones((T, 1), dtype=dtype)
    out = {}
    for idea in ("rtrl", "rflo"):
        model = RNN(RNN_IO, N, RNN_IO, dtype=dtype)
        opt = SGD(1e-6)     # small steps: a long stream of calls stays finite
        learner = (OnlineRTRL(model, opt, "mse") if idea == "rtrl"
                   else OnlineRFLO(model, opt, random_feedback(model), "mse"))
        kern, weights = kernels(idea, "numba"), model.weights()
        h = np.zeros((1, N), dtype=dtype)
        g = np.zeros(sum(w.size for w in weights), dtype=dtype)
        work = kern.workspace(N, RNN_IO, RNN_IO, g)
        args = (model.alpha, CODES[model.activation], 0)            # 0: the "mse" loss
        if idea == "rtrl":
            J = [kern.new_influence(1, N, RNN_IO, dtype) for _ in range(2)]

            def bare():
                for t in range(T):
                    kern.advance(*weights, h, J[0], J[1], xs[t], targets[t], mask[t], *args, g,
                                 work)
                    J.reverse()
        else:
            P, B = np.zeros((1, N, N + RNN_IO + 1), dtype=dtype), learner.B

            def bare():
                for t in range(T):
                    kern.advance(*weights, B, h, P, xs[t], targets[t], mask[t], *args, False, g,
                                 work)
        best = _best_per_call({"learner": lambda: learner.run(xs, targets, progress=False),
                               "kernel": bare}, seconds)
        out[idea] = (best["learner"] / T, best["kernel"] / T)
    return out


def bench_rnn(seconds: float = 1.0, dtype: DTypeLike = np.float64, T: int = 200, N: int = 32,
              batches: tuple[int, ...] = (1, 32),
              rtrl_sizes: tuple[int, ...] = (8, 16, 32, 64, 128), lstm_H: int = 64,
              lstm_T: int = 100, gpu_batches: tuple[int, ...] = (256, 1024),
              online_N: int = 16) -> str:
    """Part II: BPTT throughput, RTRL cost per step against N (slope, GFLOP/s, share of the
    matmul peak), LSTM BPTT, each beside the NumPy reference and PyTorch CPU, and what the
    online learners add per step to their kernels; CUDA rows on a real GPU.

    Parameters
    ----------
    seconds : float
        Time spent measuring each cell.
    dtype : dtype
    T : int
        Sequence length of the BPTT rows.
    N : int
        Recurrent units of the BPTT rows.
    batches : tuple of int
        Batch sizes of the CPU rows.
    rtrl_sizes : tuple of int
        The N of the RTRL table.
    lstm_H : int
        LSTM cells.
    lstm_T : int
        Sequence length of the LSTM rows.
    gpu_batches : tuple of int
        Batch sizes of the GPU rows.
    online_N : int
        Recurrent units of the online learners' overhead line (:func:`online_overhead`).

    Returns
    -------
    str
        Titled tables, separated by blank lines.
    """
    from .bptt import bptt
    from .lstm import LSTM
    from .rnn import RNN
    from .rtrl import rtrl
    torch = _torch()
    gpu = _gpu_backends()
    lstm_grads = lambda m, xs, tg, loss, mask, backend: m.loss_and_grads(xs, tg, loss, mask,
                                                                         backend=backend)
    out = []
    for title, make, fn, kind, H, steps in (
            (f"BPTT, RNN N={N}, T={T}",
             lambda be: RNN(RNN_IO, N, RNN_IO, dtype=dtype, backend=be), bptt, "rnn", N, T),
            (f"LSTM BPTT, H={lstm_H}, T={lstm_T}",
             lambda be: LSTM(RNN_IO, lstm_H, RNN_IO, dtype=dtype, backend=be), lstm_grads,
             "lstm", lstm_H, lstm_T)):
        cols = ["numpy", "numba"] + (["torch-cpu"] if torch else [])
        header = ["batch"] + cols + ["numba/numpy"] + (["numba/torch"] if torch else [])
        rows = []
        for B in batches:
            xs, tg = _sequence(steps, B, RNN_IO, RNN_IO, dtype)
            rate = {be: _rate(_grad_call(make(be), fn, be, xs, tg), B, seconds)
                    for be in ("numpy", "numba")}
            if torch:
                rate["torch-cpu"] = _rate(_torch_seq_step(torch, kind, H, xs, tg), B, seconds)
            rows.append([B] + [f"{rate[c]:,.1f}" for c in cols]
                        + [f"{rate['numba'] / rate['numpy']:.2f}x"]
                        + ([f"{rate['numba'] / rate['torch-cpu']:.2f}x"] if torch else []))
        out.append(f"{title}: sequences/s (forward + backward, {np.dtype(dtype).name}, batch 1 "
                   "and 32)\n" + _table(header, rows))
        if gpu:
            rows = []
            for B in gpu_batches:
                xs, tg = _sequence(steps, B, RNN_IO, RNN_IO, dtype)
                rate = {be: _rate(_grad_call(make(be), fn, be, xs, tg), B, seconds)
                        for be in ("numba", "cuda")}
                rows.append([B, f"{rate['numba']:,.1f}", f"{rate['cuda']:,.1f}",
                             f"{rate['cuda'] / rate['numba']:.2f}x"])
            out.append(f"{title} on the GPU: sequences/s\n"
                       + _table(["batch", "numba", "cuda", "cuda/numba"], rows))
    peak = matmul_peak(seconds, dtype)
    costs = {be: step_costs(rtrl_sizes, seconds, be, T, dtype) for be in ("numpy", "numba")}
    rows = []
    for i, n in enumerate(rtrl_sizes):
        gflops = _rtrl_flops(n) / costs["numba"]["rtrl"][i] / 1e9
        rows.append([n, f"{costs['numpy']['rtrl'][i] * 1e3:.3f}",
                     f"{costs['numba']['rtrl'][i] * 1e3:.3f}",
                     f"{costs['numba']['bptt'][i] * 1e6:.2f}", f"{gflops:.1f}",
                     f"{100 * gflops / peak:.0f}%"])
    slopes = ", ".join(f"{be} RTRL {costs[be]['slope']['rtrl']:.2f}" for be in costs) \
        + f", numba BPTT {costs['numba']['slope']['bptt']:.2f}"
    out.append(f"RTRL cost per step, batch 1 ({np.dtype(dtype).name}); matmul peak {peak:.1f} "
               f"GFLOP/s (1024² product, one thread)\n"
               + _table(["N", "numpy ms", "numba ms", "numba BPTT us", "numba GFLOP/s",
                         "of peak"], rows)
               + f"\nlog-log slopes (fitted over N >= 32): {slopes}")
    cost = online_overhead(online_N, T, seconds, dtype)
    out.append(f"Online learning at N={online_N}, batch 1, SGD, per step: what the learner "
               "adds to its bare kernel: " + ", ".join(
                   f"{name} {1e6 * (run - bare):.2f} us ({1e6 * run:.2f} - {1e6 * bare:.2f})"
                   for name, (run, bare) in (("RTRL", cost["rtrl"]), ("RFLO", cost["rflo"]))))
    if gpu:
        rows = []
        for n in (16, 32, 64):
            xs, tg = _sequence(4, gpu_batches[0], RNN_IO, RNN_IO, dtype)
            model = {be: RNN(RNN_IO, n, RNN_IO, dtype=dtype, backend=be)
                     for be in ("numba", "cuda")}
            t = {be: _per_call(_grad_call(model[be], rtrl, be, xs, tg), seconds) / 4
                 for be in model}
            rows.append([n, f"{t['numba'] * 1e3:.2f}", f"{t['cuda'] * 1e3:.2f}",
                         f"{t['numba'] / t['cuda']:.1f}x",
                         f"{_rtrl_flops(n) * gpu_batches[0] / t['cuda'] / 1e9:.0f}"])
        out.append(f"RTRL per step on the GPU, batch {gpu_batches[0]}\n"
                   + _table(["N", "numba ms", "cuda ms", "cuda/numba", "cuda GFLOP/s"], rows))
    return "\n\n".join(out)


def _fit_slope(Ns, costs, fit_from):
    """Slope of log cost against log N over N ≥ fit_from (all N when fewer than two qualify)."""
    Ns, costs = np.asarray(Ns), np.asarray(costs)
    fit = Ns >= fit_from if np.sum(Ns >= fit_from) >= 2 else np.ones(len(Ns), bool)
    return float(np.polyfit(np.log(Ns[fit]), np.log(costs[fit]), 1)[0])


def bench_local(seconds: float = 1.0, dtype: DTypeLike = np.float64,
                rflo_sizes: tuple[int, ...] = (32, 64, 128, 256, 512, 1024),
                rtrl_max: int = 128, T: int = 100,
                chain_lengths: tuple[int, ...] = (1, 2, 4, 8), n_synapses: int = 100_000,
                chain_steps: int = 100, gpu_batch: int = 256) -> str:
    """Part III: RFLO's cost per step against N (slope, beside RTRL's) and synapse-chain updates
    per second; CUDA columns on a real GPU.

    Parameters
    ----------
    seconds : float
        Time spent measuring each cell.
    dtype : dtype
    rflo_sizes : tuple of int
        The N of the RFLO table.
    rtrl_max : int
        Largest N timed for RTRL.
    T : int
        Sequence length.
    chain_lengths : tuple of int
        The m of the synapse-chain table.
    n_synapses : int
    chain_steps : int
        Euler steps per timed call.
    gpu_batch : int
        Batch size of the GPU rows.

    Returns
    -------
    str
        Titled tables, separated by blank lines.
    """
    from .rflo import random_feedback, rflo
    from .rnn import RNN
    from .rtrl import rtrl
    from .synapses import SynapseChain
    gpu = _gpu_backends()
    rows, costs, rtrl_costs = [], {"numpy": [], "numba": []}, []
    for N in rflo_sizes:
        model = RNN(RNN_IO, N, RNN_IO, alpha=0.1, dtype=dtype)
        B = random_feedback(model)
        xs, tg = _sequence(T, 1, RNN_IO, RNN_IO, dtype)
        for be in costs:
            costs[be].append(_per_call(lambda: rflo(model, xs, tg, B, "mse", backend=be),
                                       seconds) / T)
        rtrl_ms = "-"
        if N <= rtrl_max:
            short = min(RTRL_STEPS, T)
            rtrl_costs.append(_per_call(lambda: rtrl(model, xs[:short], tg[:short], "mse"),
                                        seconds) / short)
            rtrl_ms = f"{rtrl_costs[-1] * 1e3:.3f}"
        rows.append([N, f"{costs['numpy'][-1] * 1e3:.3f}", f"{costs['numba'][-1] * 1e3:.4f}",
                     rtrl_ms,
                     f"{costs['numpy'][-1] / costs['numba'][-1]:.1f}x"])
    slopes = ", ".join(f"{be} RFLO {_fit_slope(rflo_sizes, costs[be], 128):.2f}"
                       for be in costs)
    rtrl_sizes = [N for N in rflo_sizes if N <= rtrl_max]
    if len(rtrl_sizes) >= 2:     # RTRL's slope over its two largest sizes, where N^4 dominates
        slopes += (f"; numba RTRL {_fit_slope(rtrl_sizes, rtrl_costs, rtrl_sizes[-2]):.2f} "
                   f"(N >= {rtrl_sizes[-2]})")
    out = [f"RFLO cost per step, batch 1, T={T} ({np.dtype(dtype).name}), beside exact RTRL "
           "(numba)\n"
           + _table(["N", "numpy ms", "numba ms", "RTRL ms", "numba/numpy"], rows)
           + f"\nlog-log slopes (RFLO fitted over N >= 128): {slopes}"]
    if gpu:
        rows = []
        for N in (64, 256):
            model = {be: RNN(RNN_IO, N, RNN_IO, alpha=0.1, dtype=dtype, backend=be)
                     for be in ("numba", "cuda")}
            B = random_feedback(model["numba"])
            xs, tg = _sequence(T, gpu_batch, RNN_IO, RNN_IO, dtype)
            t = {be: _per_call(lambda: rflo(model[be], xs, tg, B, "mse", backend=be),
                               seconds) / T for be in model}
            rows.append([N, f"{t['numba'] * 1e3:.3f}", f"{t['cuda'] * 1e3:.3f}",
                         f"{t['numba'] / t['cuda']:.1f}x"])
        out.append(f"RFLO per step on the GPU, batch {gpu_batch}\n"
                   + _table(["N", "numba ms", "cuda ms", "cuda/numba"], rows))
    backends = ["numpy", "numba"] + gpu
    rows = []
    for m in chain_lengths:
        rate = {}
        for be in backends:
            # From u = 0: a chain that starts elsewhere decays into subnormal numbers within a
            # few thousand steps, which would time the CPU's slow path instead of the kernel.
            chain = SynapseChain(m, n_synapses, dtype=dtype, backend=be)
            rate[be] = (n_synapses * chain_steps
                        / _per_call(lambda: chain.run(chain_steps), seconds))
        rows.append([m] + [f"{rate[be]:.3g}" for be in backends]
                    + [f"{rate['numba'] / rate['numpy']:.1f}x"])
    out.append(f"Synapse-chain updates per second ({n_synapses:,} synapses, {chain_steps} "
               "steps per call, no input)\n" + _table(["m"] + backends + ["numba/numpy"], rows))
    return "\n\n".join(out)


def bench_sweep(seconds: float = 1.0, jobs: int = 16, worker_counts: tuple[int, ...] = (1, 2),
                **_: object) -> str:
    """The sweep runner on LocalClusters of 1 and 2 single-threaded workers: ``jobs`` runs of
    ``murray`` (BPTT) of about ``seconds`` each.

    The speed-up is wall(1) / wall(n). The overhead per task is the time that the busiest worker
    spent outside its runs, per run: (wall - its run time) / its runs; with one worker, that is
    everything the scheduler and the client add to a task. "Idle at the end" is how much longer
    the busiest worker worked than the least busy one (runs differ in length). The efficiency,
    sum of run times / (n x wall), is the share of the workers' time spent in runs: unlike the
    speed-up, it does not move when a busy machine runs every job slower (or faster)."""
    from . import sweep
    fn = sweep.get("murray").fn
    probe = [sweep.run_one(fn, 0, {"method": "bptt", "trials": 500})["wall_s"]
             for _ in range(2)][1]                                  # the first one compiles
    trials = max(100, int(round(seconds / probe * 500, -2)))
    settings = {"method": "bptt", "trials": trials}
    walls, rows = {}, []
    for n in worker_counts:
        with sweep.local_client(n, dashboard=False) as client:
            sweep.run("murray", n, {"trials": 100}, client=client, progress=False)   # warm-up
            start = time.perf_counter()
            frame = sweep.run("murray", jobs, settings, client=client, progress=False)
            walls[n] = time.perf_counter() - start
        per_worker = frame.groupby("worker").wall_s.agg(["sum", "count"])
        busiest = per_worker.loc[per_worker["sum"].idxmax()]
        least = per_worker["sum"].min() if len(per_worker) == n else 0.0   # a worker ran none
        idle = per_worker["sum"].max() - least
        first = worker_counts[0]
        rows.append([str(n), f"{walls[n]:.2f}", f"{frame.wall_s.mean():.3f}",
                     f"{walls[first] / walls[n]:.2f}x", f"{n / first:.2f}x",
                     f"{1e3 * (walls[n] - busiest['sum']) / busiest['count']:.1f}",
                     f"{idle:.2f}", f"{frame.wall_s.sum() / (n * walls[n]):.1%}"])
    head = (f"Sweep: {jobs} runs of murray (bptt, {trials:,} trials), LocalCluster of "
            f"single-threaded workers, {os.cpu_count()} cores")
    return head + "\n" + _table(["workers", "wall s", "s per run", "speed-up", "ideal",
                                  "overhead ms/task", "idle at the end s", "efficiency"], rows)


def _reservoirpy():
    """reservoirpy's ``Reservoir`` class, or None when reservoirpy is not installed (it is no
    dependency of the package: ``pip install reservoirpy`` for the benchmark's columns)."""
    try:
        from reservoirpy.nodes import Reservoir
    except ImportError:
        return None
    return Reservoir


def reservoirpy_states(W, W_in: np.ndarray, b_rec: np.ndarray, xs: np.ndarray,
                       lr: float) -> np.ndarray | None:
    """The states of reservoirpy's ``Reservoir.run`` on the given weights, or None when
    reservoirpy is not installed. Its update, without noise, is that of
    :func:`loopy_edu.loopy.forward` with tanh and a leak ``lr`` ::

        x_t = (1 − lr) x_{t-1} + lr tanh(W x_{t-1} + W_in u_t + bias)

    Each sequence runs from x = 0, one after the other.

    Parameters
    ----------
    W : scipy sparse array, shape (N, N)
    W_in : np.ndarray, shape (N, n_in)
    b_rec : np.ndarray, shape (N,)
    xs : np.ndarray, shape (T, B, n_in)
    lr : float
        The leak rate, in (0, 1].

    Returns
    -------
    np.ndarray, shape (T, B, N), or None
    """
    Reservoir = _reservoirpy()
    if Reservoir is None:
        return None
    res = Reservoir(W=W, Win=W_in, bias=b_rec, lr=lr)
    return np.stack(res.run([xs[:, b] for b in range(xs.shape[1])]), axis=1)


def _csr_args(W, dtype):
    """A graph as the static kernels take it: weights of the dtype, unsigned indices."""
    return W.data.astype(dtype), W.indptr.astype(np.uint32), W.indices.astype(np.uint32)


def _timing_graph(n, k, seed=0):
    """A graph of n units with k random presynaptic units each (repeats allowed) and weights
    N(0, 0.95²/k), of spectral radius about 0.95: drawn at once, for timing at sizes where
    :func:`loopy_edu.graphs.fixed_in_degree` (row by row) would take minutes."""
    from scipy import sparse
    rng = np.random.default_rng(seed)
    indices = np.sort(rng.integers(0, n, (n, k)), axis=1).ravel()
    data = rng.standard_normal(n * k) * (0.95 / np.sqrt(k))
    return sparse.csr_array((data, indices, np.arange(0, n * k + 1, k)), shape=(n, n))


def _plastic_rates(W, W_in, b_rec, alpha, steps, seconds, backend, dtype):
    """Steps per second of :func:`loopy_edu.loopy_rflo.plastic_step` (sparse RFLO, batch 1,
    weights and traces updated at every step) and of the static run of the same network
    (``states``), timed side by side."""
    from . import loopy_rflo
    from .backend import kernels
    from .loopy import LoopyNetwork
    from .rflo import random_feedback
    model = LoopyNetwork(W_in.shape[1], W.shape[0], 1, graph=W.astype(dtype), alpha=alpha,
                         dtype=dtype, backend=backend)
    model.params["W_in"][:], model.params["b_rec"][:] = W_in, b_rec
    xs, targets = _sequence(steps, 1, W_in.shape[1], 1, dtype)
    Bfb, state = random_feedback(model), loopy_rflo.zero_state(model)
    # A tiny rate keeps a long stream of calls finite; the work per step does not depend on it.
    plastic = lambda: loopy_rflo.plastic_step(model, xs, targets, Bfb, "mse", 1e-9, state)
    args = (model.params["W_in"], *_csr_args(model.graph, dtype), model.params["b_rec"], xs,
            np.full(W.shape[0], alpha, dtype=dtype), 1)
    best = _best_per_call({"plastic": plastic,
                           "static": lambda: kernels("loopy", backend).states(*args)},
                          seconds, rounds=3)
    return {k: steps / t for k, t in best.items()}


def bench_loopy(seconds: float = 1.0, N: int = 1000, T: int = 20_000,
                degrees: tuple[int, ...] = (10, 100), batch: int = 32,
                batch_steps: int = 1000, alpha: float = 0.5, plastic_steps: int = 2000,
                gpu: bool | None = None, gpu_n: int = 1_000_000, gpu_k: int = 100,
                gpu_steps: int = 100, **_: object) -> str:
    """Part IV: the static run of a leaky tanh network on a sparse graph (every state kept),
    one thread, beside reservoirpy's ``Reservoir.run`` on the same weights, with the largest
    difference of the float64 states from reservoirpy's; the same for ``batch`` sequences at
    once against reservoirpy running them one after the other; the plastic step (sparse RFLO)
    beside the static one; and GPU rows: steps/s and GB/s against the H200's 4.8 TB/s.

    Parameters
    ----------
    seconds : float
        Time spent measuring each table row (in turns, the best of 3 rounds).
    N : int
        Units of the CPU rows.
    T : int
        Steps of the batch-1 runs.
    degrees : tuple of int
        Synapses per unit k, one row each (:func:`loopy_edu.graphs.fixed_in_degree`, spectral
        radius 0.95).
    batch : int
        Sequences of the batched rows.
    batch_steps : int
        Steps of each of their sequences.
    alpha : float
        The leak of every unit (reservoirpy's ``lr``).
    plastic_steps : int
        Steps per timed call of the plastic step.
    gpu : bool or None
        Whether to run the GPU rows; None runs them where a real GPU is present.
    gpu_n, gpu_k : int
        Units and synapses per unit of the GPU rows.
    gpu_steps : int
        Steps per timed call on the GPU.
    **_
        Ignored (``dtype``: the tables show float64 and float32 side by side).

    Returns
    -------
    str
        Titled tables and lines, separated by blank lines.
    """
    from .backend import kernels
    from .graphs import fixed_in_degree, scale_spectral_radius
    kern = kernels("loopy", "numba")
    have_rpy = _reservoirpy() is not None
    dts = (np.float64, np.float32)
    rng = np.random.default_rng(0)
    W_in, b_rec = rng.standard_normal((N, 1)), 0.1 * rng.standard_normal(N)
    single, batched, plastic = [], [], []
    for k in degrees:
        W = scale_spectral_radius(fixed_in_degree(N, k, seed=0), 0.95)
        for rows, xs in ((single, rng.standard_normal((T, 1, 1))),
                         (batched, rng.standard_normal((batch_steps, batch, 1)))):
            args = {dt: (W_in.astype(dt), *_csr_args(W, dt), b_rec.astype(dt), xs.astype(dt),
                         np.full(N, alpha, dtype=dt), 1) for dt in dts}
            steps = {np.dtype(dt).name: lambda a=args[dt]: kern.states(*a) for dt in dts}
            diff = "-"
            if have_rpy:
                ref = reservoirpy_states(W, W_in, b_rec, xs, alpha)
                diff = f"{np.max(np.abs(kern.states(*args[np.float64]) - ref)):.1e}"
                res = _reservoirpy()(W=W, Win=W_in, bias=b_rec, lr=alpha)
                series = xs[:, 0] if xs.shape[1] == 1 else [xs[:, b] for b in range(batch)]
                steps["reservoirpy"] = lambda: res.run(series)
            rate = {name: xs.shape[0] * xs.shape[1] / t
                    for name, t in _best_per_call(steps, seconds, rounds=3).items()}
            rpy = rate.get("reservoirpy")
            rows.append([k, f"{rpy:,.0f}" if rpy else "-"]
                        + [f"{rate[np.dtype(dt).name]:,.0f}" for dt in dts]
                        + [f"{rate[np.dtype(dt).name] / rpy:.2f}x" if rpy else "-"
                           for dt in dts] + [diff])
        rate = _plastic_rates(W, W_in, b_rec, alpha, plastic_steps, seconds, "numba",
                              np.float64)
        plastic.append([k, f"{rate['plastic']:,.0f}", f"{rate['static']:,.0f}",
                        f"{rate['static'] / rate['plastic']:.2f}x"])
    header = ["k", "reservoirpy", "float64", "float32", "f64/rpy", "f32/rpy",
              "max |h - rpy| f64"]
    out = [f"Static run, N={N:,}, batch 1, {T:,} steps, every state kept, one thread: steps/s"
           "\n" + _table(header, single),
           f"{batch} sequences of {batch_steps:,} steps at once (reservoirpy: one after the "
           f"other), N={N:,}: sequence-steps/s\n" + _table(header, batched)]
    if not have_rpy:
        out.append("reservoirpy columns skipped: reservoirpy is not installed "
                   "(pip install reservoirpy)")
    out.append(f"Plastic step (sparse RFLO, weights and traces, batch 1, float64), N={N:,}: "
               "steps/s\n" + _table(["k", "plastic", "static", "static/plastic"], plastic))
    if gpu is None:
        gpu = bool(_gpu_backends())
    if gpu:
        out.append(_gpu_loopy(gpu_n, gpu_k, gpu_steps, alpha, seconds))
    else:
        out.append("GPU rows skipped: no CUDA GPU here (none, or only Numba's simulator)")
    return "\n\n".join(out)


HBM_GBS = 4800   # the H200's memory bandwidth, GB/s


def stream_bandwidth(seconds: float = 0.5, mb: int = 256) -> float:
    """This machine's memory bandwidth as one thread sees it, GB/s: the best time of
    ``b[:] = a`` over arrays of ``mb`` megabytes (bytes read plus bytes written), the roof of
    a step that streams its synapses from memory.

    Parameters
    ----------
    seconds : float
        Time spent measuring.
    mb : int
        The size of each array, far above the caches.

    Returns
    -------
    float
    """
    a = np.ones(mb * 2**20 // 8)
    b = np.empty_like(a)
    return 2 * a.nbytes / _per_call(lambda: np.copyto(b, a), seconds) / 1e9


def scaling(Ns: tuple[int, ...] = (1000, 10_000, 100_000), degrees: tuple[int, ...] = (10, 100),
            steps: int = 200, seconds: float = 0.3, dtype: DTypeLike = np.float64,
            plastic: bool = True) -> "pd.DataFrame":
    """Chapter 13's cost of a step against N and k on this CPU (one thread, batch 1): steps/s
    of the static run (``states``) and of the plastic step (sparse RFLO, weights and traces),
    with synapses/s and the bytes per second they stream: 12 per synapse for the static step
    in float64 (the weight and a 4-byte index), 28 for the plastic one (weight and trace, each
    read and written, and the index); half the weight bytes in float32.

    Parameters
    ----------
    Ns, degrees : tuple of int
        Units and synapses per unit.
    steps : int
        Steps per timed call.
    seconds : float
        Time spent measuring each cell (the best of 3 rounds).
    dtype : float32 or float64
    plastic : bool
        Whether to time the plastic step too.

    Returns
    -------
    pd.DataFrame
        One row per (step, N, k): ``steps_per_s``, ``synapses_per_s``, ``GB_per_s``.
    """
    import pandas as pd
    from .backend import kernels
    item = np.dtype(dtype).itemsize
    rows = []
    for N in Ns:
        for k in degrees:
            W = _timing_graph(N, k)
            rng = np.random.default_rng(1)
            W_in, b_rec = rng.standard_normal((N, 1)), np.zeros(N)
            xs = _sequence(steps, 1, 1, 1, dtype)[0]
            args = (W_in.astype(dtype), *_csr_args(W, dtype), b_rec.astype(dtype), xs,
                    np.full(N, 0.5, dtype=dtype), 1)
            rate = {"static": steps / _best_per_call(
                {"s": lambda: kernels("loopy", "numba").states(*args)}, seconds, rounds=3)["s"]}
            if plastic:
                rate["plastic"] = _plastic_rates(W, W_in, np.zeros(N), 0.5, steps, seconds,
                                                 "numba", dtype)["plastic"]
            for step, r in rate.items():
                per_synapse = item + 4 if step == "static" else 4 * item + 4
                rows.append(dict(step=step, N=N, k=k, steps_per_s=r, synapses_per_s=r * N * k,
                                 GB_per_s=r * N * k * per_synapse / 1e9))
    return pd.DataFrame(rows)


def _gpu_loopy(n, k, steps, alpha, seconds):
    """The GPU rows of :func:`bench_loopy`: float32 static and plastic steps at n units × k
    synapses, steps/s and GB/s (the static step's 8 bytes per synapse: weight and index; the
    plastic step's 20: the weight and the trace read and written, and the index)."""
    from numba import cuda
    from .backend import kernels
    loopy_cuda = kernels("loopy", "cuda")
    dt = np.float32
    W = _timing_graph(n, k)
    rng = np.random.default_rng(1)
    W_in, b_rec = rng.standard_normal((n, 1)), np.zeros(n)
    xs = rng.standard_normal((steps, 1)).astype(dt)
    d = [cuda.to_device(a) for a in (W_in.astype(dt), *_csr_args(W, dt), b_rec.astype(dt), xs,
                                     np.full(n, alpha, dtype=dt))]

    def static():
        loopy_cuda.device_states(*d[:6], 1, d[6], 1)
        cuda.synchronize()
    rate = {"static": steps / _per_call(static, seconds)}
    plastic = _plastic_rates(W, W_in, b_rec, alpha, steps, seconds, "cuda", dt)
    rows = [["static", f"{rate['static']:,.0f}", f"{rate['static'] * W.nnz * 8 / 1e9:,.0f}",
             f"{rate['static'] * W.nnz * 8 / 1e9 / HBM_GBS:.1%}"],
            ["plastic (host copies included)", f"{plastic['plastic']:,.0f}",
             f"{plastic['plastic'] * W.nnz * 20 / 1e9:,.0f}",
             f"{plastic['plastic'] * W.nnz * 20 / 1e9 / HBM_GBS:.1%}"]]
    return (f"GPU, {n:,} units x {k} synapses, float32, batch 1, {steps} steps per call\n"
            + _table(["step", "steps/s", "GB/s", f"of {HBM_GBS / 1000:g} TB/s"], rows))


def act_loss_torch(params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
                   max_steps: int = 10, epsilon: float = 0.01,
                   tau: float = 1e-3) -> tuple[float, np.ndarray] | None:
    """ACT's loss written in PyTorch (autograd, one thread), the equations of
    :func:`loopy_edu.halting.act_forward`: the first-step flag, halting at the first n with
    Σ_{m≤n} h_m ≥ 1 − ε (or ``max_steps``), p_n = h_n before N and p_N = R, the mixture
    output, and ::

        L = mean_b[BCE(σ(y), Y)] + τ mean_b[N + R]

    whose ponder term has a gradient only through R. None when torch is not installed (it
    is no dependency of the package).

    Parameters
    ----------
    params : dict[str, np.ndarray]
        :class:`loopy_edu.halting.ACTCell`'s parameters.
    X : np.ndarray, shape (B, n_in)
    Y : np.ndarray, shape (B, n_out), values in {0, 1}
    max_steps : int
    epsilon : float
    tau : float

    Returns
    -------
    (float, np.ndarray of shape (B,)) or None
        The loss and each example's ponder cost N + R.
    """
    torch = _torch()
    if torch is None:
        return None
    tp = {k: torch.from_numpy(v) for k, v in params.items()}
    loss, ponder = _torch_act(torch, tp, torch.from_numpy(X), torch.from_numpy(Y), max_steps,
                              epsilon, tau)
    return float(loss), ponder.detach().numpy()


def _torch_act(torch, p, X, Y, max_steps, epsilon, tau):
    """The loss tensor and ponder cost (B,) of :func:`act_loss_torch` on tensors ``p``."""
    B = X.shape[0]
    drive = X @ p["W_x"][:, :-1].T + p["b_h"]
    s, y, ponder = torch.zeros_like(drive), 0.0, torch.zeros_like(drive[:, 0])
    past = torch.zeros_like(ponder)                    # Σ_{m<n} h_m while running
    running = torch.ones(B, dtype=torch.bool)
    for n in range(1, max_steps + 1):
        z = drive + s @ p["W_h"].T
        s = torch.tanh(z + p["W_x"][:, -1] if n == 1 else z)
        h = torch.sigmoid(s @ p["w_halt"] + p["b_halt"])
        # N is piecewise constant: the rule reads h without its gradient.
        halt = running & (((past + h).detach() >= 1.0 - epsilon) | (n == max_steps))
        R = 1.0 - past
        y = y + torch.where(halt, R, torch.where(running, h, 0.0))[:, None] \
            * (s @ p["W_y"].T + p["b_y"])
        ponder = ponder + torch.where(halt, n + R, 0.0)
        past = torch.where(running & ~halt, past + h, past)
        running = running & ~halt
        if not running.any():
            break
    bce = torch.nn.functional.binary_cross_entropy_with_logits(y, Y, reduction="sum") / B
    return bce + tau * ponder.mean(), ponder


def _torch_act_step(torch, params, X, Y, max_steps, epsilon, tau, lr):
    """One ACT training step in PyTorch: loss, backward, Adam."""
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    tX, tY = torch.from_numpy(X), torch.from_numpy(Y)
    opt = torch.optim.Adam(tp.values(), lr=lr)

    def step():
        opt.zero_grad()
        _torch_act(torch, tp, tX, tY, max_steps, epsilon, tau)[0].backward()
        opt.step()
    return step


def _halting_step(model, X, Y, lr):
    """One training step of a halting.py cell on its backend: loss_and_grads and Adam."""
    from .optim import Adam
    opt = Adam(lr, backend=model.backend)

    def step():
        opt.step(model.params, model.loss_and_grads(X, Y)[1])
    return step


def bench_halting(seconds: float = 1.0, dtype: DTypeLike = np.float64, batch: int = 128,
                  n_hidden: int = 128, max_steps: int = 10, n_bits: int = 16,
                  halt_biases: tuple[float, ...] = (1.0, -3.0),
                  loops: tuple[int, ...] = (1, 2, 4, 8), sln_hidden: int = 88,
                  lr: float = 1e-9, gpu: bool | None = None, **_: object) -> str:
    """Part V: the ACT training step on parity (loss_and_grads and an Adam step) per backend,
    beside the same step in PyTorch (:func:`act_loss_torch`, its loss checked against ours on
    the same weights), at each initial halting bias (1: few steps, as early in training; −3:
    near ``max_steps``); PonderCell and LoopedCell (4 loops) steps; the looped cell's cost
    per example per loop; and the tall and lateralized SLNs' (Chapter 15) per dialogue loop.
    Every row's columns are timed side by side, one thread; CUDA columns on a real GPU.

    Parameters
    ----------
    seconds : float
        Time spent measuring each row (in turns, the best of 5 rounds).
    dtype : dtype
    batch, n_hidden, max_steps, n_bits : int
        B, H, the cap M and the parity vectors' length.
    halt_biases : tuple of float
        The initial halting biases of the ACT rows.
    loops : tuple of int
        The loops of the cost-per-loop tables.
    sln_hidden : int
        Units per lobe of the SLN rows.
    lr : float
        Adam's rate: tiny, so that the weights, and with them the steps each example
        ponders, stay where they started while the step is timed.
    gpu : bool or None
        Whether to add the CUDA columns; None adds them where a real GPU is present.
    **_
        Ignored.

    Returns
    -------
    str
        Titled tables and the goal's verdict, separated by blank lines.
    """
    from .halting import ACTCell, LoopedCell, PonderCell
    from .sln import TallSLN
    from .sln_lateral import LateralSLN
    from .tasks import parity_vectors
    torch = _torch()
    gpu = bool(_gpu_backends()) if gpu is None else gpu
    backends = ["numpy", "numba"] + (["cuda"] if gpu else [])
    name = np.dtype(dtype).name
    X, Y, _ = parity_vectors(batch, n_bits, seed=0, dtype=dtype)
    size = (n_bits, n_hidden, 1)

    def timed(make, extra=None):
        steps = {be: _halting_step(make(be), X, Y, lr) for be in backends}
        return _best_per_call({**steps, **(extra or {})}, seconds)

    rows, verdicts = [], []
    for bias in halt_biases:
        make = lambda be: ACTCell(*size, max_steps, halt_bias=bias, dtype=dtype, backend=be)
        ref = make("numpy")
        loss = ref.loss_and_grads(X, Y)[0]
        args = (max_steps, ref.epsilon, ref.tau)
        extra, diff = {}, "-"
        if torch:
            extra["torch"] = _torch_act_step(torch, ref.params, X, Y, *args, lr)
            diff = f"{abs(act_loss_torch(ref.params, X, Y, *args)[0] - loss):.1e}"
        t = timed(make, extra)
        ratio = {"numpy": t["numpy"] / t["numba"]}
        if torch:
            ratio["torch"] = t["torch"] / t["numba"]
        rows.append([f"{bias:g}", f"{ref.predict(X)[1].mean():.2f}"]
                    + [f"{1e3 * t[be]:.2f}" for be in backends]
                    + [f"{1e3 * t['torch']:.2f}" if torch else "not installed",
                       f"{ratio['numpy']:.2f}x",
                       f"{ratio['torch']:.2f}x" if torch else "not installed", diff])
        verdicts.append(f"halt_bias {bias:g}: numba/numpy "
                        f"{'met' if ratio['numpy'] >= 2 else 'not met'}, numba/torch "
                        + ("not installed" if not torch else
                           "met" if ratio["torch"] >= 1 else "not met"))
    out = [f"ACT training step (loss_and_grads + Adam) on {n_bits}-bit parity, B={batch}, "
           f"H={n_hidden}, M={max_steps}, {name}, one thread: ms per step\n"
           + _table(["halt_bias", "mean ponder"] + [f"{be} ms" for be in backends]
                    + ["torch-cpu ms", "numba/numpy", "numba/torch", "|loss - torch|"], rows)
           + "\nGoal (numba >= 2x numpy and >= 1x torch): " + "; ".join(verdicts)]
    rows = []
    for label, make in (("PonderCell",
                         lambda be: PonderCell(*size, max_steps, dtype=dtype, backend=be)),
                        ("LoopedCell",
                         lambda be: LoopedCell(*size, 4, dtype=dtype, backend=be))):
        t = timed(make)
        rows.append([label] + [f"{1e3 * t[be]:.2f}" for be in backends]
                    + [f"{t['numpy'] / t['numba']:.2f}x"])
    out.append(f"PonderCell ({max_steps} steps) and LoopedCell (4 loops) training steps, same "
               "batch: ms per step\n"
               + _table(["model"] + [f"{be} ms" for be in backends] + ["numba/numpy"], rows))
    rows = []
    for n in loops:
        t = timed(lambda be: LoopedCell(*size, n, dtype=dtype, backend=be))
        rows.append([n] + [f"{1e6 * t[be] / (batch * n):.3f}" for be in backends])
    out.append("LoopedCell training step per example per loop: us (flat when the cost is "
               "proportional to the loops used)\n"
               + _table(["loops"] + [f"{be} us" for be in backends], rows))
    # The SLNs at the size of experiment 2 (two lobes of sln_hidden units, 19,010 weights).
    rows = []
    for n in loops:
        tall = timed(lambda be: TallSLN(n_bits, sln_hidden, 1, n, stop="fixed", dtype=dtype,
                                        backend=be))
        lateral = timed(lambda be: LateralSLN(n_bits, sln_hidden, 1, max_loops=n, dtype=dtype,
                                              backend=be))
        rows.append([n] + [f"{1e6 * t[be] / (batch * n):.3f}" for t in (tall, lateral)
                           for be in backends])
    out.append(f"SLN training step per example per dialogue loop (two lobes of {sln_hidden} "
               "units, each loop runs both): us\n"
               + _table(["loops"] + [f"{model} {be} us" for model in ("TallSLN", "LateralSLN")
                                     for be in backends], rows))
    if not gpu:
        out.append("CUDA columns skipped: no CUDA GPU here (none, or only Numba's simulator)")
    return "\n\n".join(out)


BENCHES = {"mlp": bench_mlp, "memory": bench_memory, "rnn": bench_rnn, "local": bench_local,
           "loopy": bench_loopy, "sweep": bench_sweep, "halting": bench_halting}


def main(argv: list[str] | None = None) -> None:
    """The command line: ``python -m loopy_edu.bench NAME``, NAME one of mlp, memory, rnn,
    local, loopy, sweep, halting or all.

    Parameters
    ----------
    argv : list of str or None
        The arguments; None reads ``sys.argv``.
    """
    parser = argparse.ArgumentParser(prog="python -m loopy_edu.bench",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("name", choices=sorted(BENCHES) + ["all"],
                        help="which benchmark to run")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="time spent measuring each cell")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    args = parser.parse_args(argv)
    for name in sorted(BENCHES) if args.name == "all" else [args.name]:
        print(BENCHES[name](seconds=args.seconds, dtype=np.dtype(args.dtype).type))
        print()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
