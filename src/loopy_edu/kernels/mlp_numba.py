"""Numba CPU kernels for :mod:`loopy_edu.mlp`: the same forward and backward pass, fused into
one compiled call so that a small batch pays no Python overhead per layer. Matrix products go to
BLAS."""
import math

import numpy as np
from numba import njit

from .scalar_numba import act as _act, act_grad as _act_grad



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
def _xent_head(z, y):
    # Mean softmax cross-entropy of logits z (B, K) and labels y (B,);
    # δ = (softmax(z) − onehot(y)) / B.
    B, K = z.shape
    delta = np.empty_like(z)
    loss = 0.0
    for i in range(B):
        mx = z[i, 0]
        for j in range(1, K):
            mx = max(mx, z[i, j])
        s = 0.0
        for j in range(K):
            delta[i, j] = math.exp(z[i, j] - mx)
            s += delta[i, j]
        loss += math.log(s) + mx - z[i, y[i]]
        for j in range(K):
            delta[i, j] = delta[i, j] / s / B
        delta[i, y[i]] -= 1.0 / B
    return loss / B, delta


@njit(cache=True)
def _mse_head(z, y):
    # Σ ½‖z − y‖² / B and δ = (z − y) / B for targets y (B, K).
    B = z.shape[0]
    delta = (z - y) / B
    return 0.5 * B * np.sum(delta * delta), delta


@njit(cache=True)
def _backward(Fs, a, delta, masks, code, direct):
    # Fs holds the matrices the δ recursion multiplies by: the weights for backprop, fixed
    # feedback for (direct) feedback alignment, which applies them to δ_L instead of the δ just
    # above (Chapter 8).
    L = len(Fs)
    top = delta
    gWs = [np.dot(delta.T, a[L - 1])]
    gbs = [delta.sum(axis=0)]
    for l in range(L - 1, 0, -1):
        d = np.dot(top if direct else delta, Fs[l])    # ∂loss/∂a_l, (B, n_l)
        h, m = a[l], masks[l - 1]
        for i in range(d.shape[0]):
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
    return gWs, gbs


# One compiled driver per loss, rather than three calls from Python, so that the list of
# activations never crosses into Python (boxing it costs more than a batch-1 step); Numba would
# type-check both heads against one label type if a single driver branched on the loss.
@njit(cache=True)
def _xent_loss_and_grads(Ws, bs, X, y, masks, code, Fs, direct):
    a = _forward(Ws, bs, X, masks, code)
    loss, delta = _xent_head(a[-1], y)
    gWs, gbs = _backward(Fs, a, delta, masks, code, direct)
    return loss, gWs, gbs


@njit(cache=True)
def _mse_loss_and_grads(Ws, bs, X, y, masks, code, Fs, direct):
    a = _forward(Ws, bs, X, masks, code)
    loss, delta = _mse_head(a[-1], y)
    gWs, gbs = _backward(Fs, a, delta, masks, code, direct)
    return loss, gWs, gbs


def _masks(masks, Ws, dtype):
    # Numba needs one array type per tuple, so "no mask" is an empty (0, 0) array; one slot per
    # layer keeps the tuple non-empty for networks without hidden layers.
    empty = np.empty((0, 0), dtype)
    if masks is None:
        return (empty,) * len(Ws)
    return tuple(np.ascontiguousarray(m) for m in masks) + (empty,)


def logits(weights, X, code):
    Ws, bs = weights
    return _forward(Ws, bs, np.ascontiguousarray(X), _masks(None, Ws, X.dtype), code)[-1]


def loss_and_grads(weights, X, y, masks, code, loss, feedback=None, direct=False):
    """``feedback``, when given, is a tuple shaped like the weights whose entries 1.. replace
    them in the δ recursion (entry 0 is unused); see
    :func:`loopy_edu.mlp.feedback_backward`."""
    Ws, bs = weights
    fused = _xent_loss_and_grads if loss == "xent" else _mse_loss_and_grads
    return fused(Ws, bs, np.ascontiguousarray(X), np.ascontiguousarray(y),
                 _masks(masks, Ws, X.dtype), code, Ws if feedback is None else feedback,
                 bool(direct))
