"""Numba CUDA kernels for :mod:`loopy_edu.optim`: one thread per parameter entry, one launch per
array."""
import math

from numba import cuda

from .launch import grid_1d


@cuda.jit
def _sgd(p, g, lr):
    i = cuda.grid(1)
    if i < p.size:
        p[i] -= lr * g[i]


@cuda.jit
def _momentum(p, g, v, lr, beta, nesterov):
    i = cuda.grid(1)
    if i < p.size:
        v[i] = beta * v[i] - lr * g[i]
        p[i] += beta * v[i] - lr * g[i] if nesterov else v[i]


@cuda.jit
def _adam(p, g, m, v, lr, beta1, beta2, eps, c1, c2):
    i = cuda.grid(1)
    if i < p.size:
        m[i] = beta1 * m[i] + (1 - beta1) * g[i]
        v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
        p[i] -= lr * (m[i] / c1) / (math.sqrt(v[i] / c2) + eps)


def step(rule, ps, gs, states, hyper):
    kernel = {"sgd": _sgd, "momentum": _momentum, "adam": _adam}[rule]
    if rule == "momentum":
        hyper = (hyper[0], hyper[1], hyper[2] != 0)
    for k, p in enumerate(ps):
        arrays = ([cuda.to_device(p), cuda.to_device(gs[k])]
                  + [cuda.to_device(s[k]) for s in states])
        blocks, threads = grid_1d(p.size)
        kernel[blocks, threads](*arrays, *hyper)
        # Host arrays are the source of truth, so results (parameter and state) are copied back.
        arrays[0].copy_to_host(p)
        for s, d in zip(states, arrays[2:]):
            d.copy_to_host(s[k])
