"""Numba CPU kernels for :mod:`loopy_edu.mlp`: the same forward and backward pass, fused into one
compiled call so that a small batch pays no Python overhead per layer. Matrix products go to BLAS."""
import math

import numpy as np
from numba import njit

from . import scalar

_act = njit(cache=True, inline="always")(scalar.act)
_act_grad = njit(cache=True, inline="always")(scalar.act_grad)


@njit(cache=True)
def _forward(Ws, bs, X, masks, code):
    L = len(Ws)
    a = [X]
    for l in range(L):
        z = np.dot(a[l], Ws[l].T)                      # (B, n_{l+1})
        b, m = bs[l], masks[l]
        for i in range(z.shape[0]):
            for j in range(z.shape[1]):
                v = z[i, j] + b[j]
                if l < L - 1:
                    v = _act(v, code)
                    if m.shape[0] > 0:
                        v *= m[i, j]
                z[i, j] = v
        a.append(z)
    return a


@njit(cache=True)
def _loss_and_grads(Ws, bs, X, y, masks, code):
    L = len(Ws)
    a = _forward(Ws, bs, X, masks, code)
    zL = a[L]
    B, K = zL.shape
    delta = np.empty_like(zL)
    loss = 0.0
    for i in range(B):
        mx = zL[i, 0]
        for j in range(1, K):
            mx = max(mx, zL[i, j])
        s = 0.0
        for j in range(K):
            delta[i, j] = math.exp(zL[i, j] - mx)
            s += delta[i, j]
        loss += math.log(s) + mx - zL[i, y[i]]
        for j in range(K):
            delta[i, j] = delta[i, j] / s / B
        delta[i, y[i]] -= 1.0 / B
    gWs = [np.dot(delta.T, a[L - 1])]
    gbs = [delta.sum(axis=0)]
    for l in range(L - 1, 0, -1):
        d = np.dot(delta, Ws[l])                       # ∂loss/∂a_l, (B, n_l)
        h, m = a[l], masks[l - 1]
        for i in range(B):
            for j in range(d.shape[1]):
                if m.shape[0] > 0:
                    if m[i, j] == 0.0:
                        d[i, j] = 0.0
                    else:
                        d[i, j] *= _act_grad(h[i, j] / m[i, j], code) * m[i, j]
                else:
                    d[i, j] *= _act_grad(h[i, j], code)
        delta = d
        gWs.append(np.dot(delta.T, a[l - 1]))
        gbs.append(delta.sum(axis=0))
    gWs.reverse()
    gbs.reverse()
    return loss / B, gWs, gbs


def _masks(masks, Ws, dtype):
    # Numba needs one array type per tuple, so "no mask" is an empty (0, 0) array; one slot per layer
    # keeps the tuple non-empty for networks without hidden layers.
    empty = np.empty((0, 0), dtype)
    if masks is None:
        return (empty,) * len(Ws)
    return tuple(np.ascontiguousarray(m) for m in masks) + (empty,)


def logits(weights, X, code):
    Ws, bs = weights
    return _forward(Ws, bs, np.ascontiguousarray(X), _masks(None, Ws, X.dtype), code)[-1]


def loss_and_grads(weights, X, y, masks, code):
    Ws, bs = weights
    return _loss_and_grads(Ws, bs, np.ascontiguousarray(X), y, _masks(masks, Ws, X.dtype), code)
