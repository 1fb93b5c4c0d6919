"""Numba CPU kernels for :mod:`loopy_edu.optim`: one compiled call updates every parameter,
fused."""
import math

from numba import njit


@njit(cache=True)
def _sgd(ps, gs, lr):
    for k in range(len(ps)):
        p, g = ps[k], gs[k]
        for i in range(p.size):
            p[i] -= lr * g[i]


@njit(cache=True)
def _momentum(ps, gs, vs, lr, beta, nesterov):
    for k in range(len(ps)):
        p, g, v = ps[k], gs[k], vs[k]
        for i in range(p.size):
            v[i] = beta * v[i] - lr * g[i]
            p[i] += beta * v[i] - lr * g[i] if nesterov else v[i]


@njit(cache=True)
def _adam(ps, gs, ms, vs, lr, beta1, beta2, eps, c1, c2):
    for k in range(len(ps)):
        p, g, m, v = ps[k], gs[k], ms[k], vs[k]
        for i in range(p.size):
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
            p[i] -= lr * (m[i] / c1) / (math.sqrt(v[i] / c2) + eps)


def step(rule, ps, gs, states, hyper):
    if rule == "sgd":
        _sgd(ps, gs, *hyper)
    elif rule == "momentum":
        _momentum(ps, gs, states[0], hyper[0], hyper[1], hyper[2] != 0)
    else:
        _adam(ps, gs, states[0], states[1], *hyper)
