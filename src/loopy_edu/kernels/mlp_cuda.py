"""Numba CUDA kernels for :mod:`loopy_edu.mlp`: one thread per output entry, one launch per
layer.

The host functions take and return NumPy arrays so that the three backends are interchangeable;
the weights travel to the device on each call.
"""
import math

import numpy as np
from numba import cuda

from .scalar_cuda import act as _act, act_grad as _act_grad
from .launch import grid_1d, grid_2d



@cuda.jit
def _dense(a_prev, W, b, mask, code, hidden, z):
    # z[i, j] = act(Σ_k a_prev[i, k] W[j, k] + b[j]) ⊙ mask, or the bare sum for the logits.
    i, j = cuda.grid(2)
    if i < z.shape[0] and j < z.shape[1]:
        s = b[j]
        for k in range(W.shape[1]):
            s += a_prev[i, k] * W[j, k]
        if hidden:
            s = _act(s, code)
            if mask.shape[0] > 0:
                s *= mask[i, j]
        z[i, j] = s


@cuda.jit
def _softmax_xent(z, y, delta, losses):
    # One thread per row: losses[i] = logsumexp(z_i) − z_i[y_i],
    # δ_i = (softmax(z_i) − onehot(y_i)) / B.
    i = cuda.grid(1)
    if i < z.shape[0]:
        B, K = z.shape
        mx = z[i, 0]
        for j in range(1, K):
            mx = max(mx, z[i, j])
        s = 0.0
        for j in range(K):
            s += math.exp(z[i, j] - mx)
        losses[i] = math.log(s) + mx - z[i, y[i]]
        for j in range(K):
            delta[i, j] = math.exp(z[i, j] - mx) / s / B
        delta[i, y[i]] -= 1.0 / B


@cuda.jit
def _mse(z, y, delta, losses):
    # One thread per row: losses[i] = ½‖z_i − y_i‖², δ_i = (z_i − y_i) / B.
    i = cuda.grid(1)
    if i < z.shape[0]:
        s = 0.0
        for j in range(z.shape[1]):
            r = z[i, j] - y[i, j]
            s += r * r
            delta[i, j] = r / z.shape[0]
        losses[i] = 0.5 * s


@cuda.jit
def _weight_grads(delta, a_prev, gW, gb):
    # Thread (j, k) sums over the batch: gW[j, k] = Σ_i δ[i, j] a_prev[i, k]; column k = n_in is
    # the bias.
    j, k = cuda.grid(2)
    n_in = gW.shape[1]
    if j < gW.shape[0] and k <= n_in:
        s = 0.0
        for i in range(delta.shape[0]):
            s += delta[i, j] * (a_prev[i, k] if k < n_in else 1.0)
        if k < n_in:
            gW[j, k] = s
        else:
            gb[j] = s


@cuda.jit
def _backprop(delta, W, h, mask, code, delta_prev):
    # δ_prev[i, k] = (Σ_j δ[i, j] W[j, k]) · act'(z[i, k]) (· mask), with act' taken from the
    # output h.
    i, k = cuda.grid(2)
    if i < delta_prev.shape[0] and k < delta_prev.shape[1]:
        s = 0.0
        for j in range(delta.shape[1]):
            s += delta[i, j] * W[j, k]
        if mask.shape[0] > 0:
            m = mask[i, k]
            s = 0.0 if m == 0.0 else s * _act_grad(h[i, k] / m, code) * m
        else:
            s *= _act_grad(h[i, k], code)
        delta_prev[i, k] = s


def _forward(dWs, dbs, dX, dmasks, code):
    a = [dX]
    L = len(dWs)
    for l in range(L):
        z = cuda.device_array((dX.shape[0], dWs[l].shape[0]), dtype=dX.dtype)
        blocks, threads = grid_2d(*z.shape)
        _dense[blocks, threads](a[l], dWs[l], dbs[l], dmasks[l], code, l < L - 1, z)
        a.append(z)
    return a


def _to_device(weights, X, masks):
    Ws, bs = weights
    empty = cuda.to_device(np.empty((0, 0), X.dtype))
    dmasks = ([empty] * len(Ws) if masks is None
              else [cuda.to_device(m) for m in masks] + [empty])
    return ([cuda.to_device(W) for W in Ws], [cuda.to_device(b) for b in bs], cuda.to_device(X),
            dmasks)


def logits(weights, X, code):
    dWs, dbs, dX, dmasks = _to_device(weights, np.ascontiguousarray(X), None)
    return _forward(dWs, dbs, dX, dmasks, code)[-1].copy_to_host()


def loss_and_grads(weights, X, y, masks, code, loss, feedback=None, direct=False):
    """``feedback``, when given, is a tuple shaped like the weights whose entries 1.. replace
    them in the δ recursion, applied to δ_L itself when ``direct`` (Chapter 8;
    :func:`loopy_edu.mlp.feedback_backward`)."""
    dWs, dbs, dX, dmasks = _to_device(weights, np.ascontiguousarray(X), masks)
    dFs = dWs if feedback is None else [None] + [cuda.to_device(F) for F in feedback[1:]]
    a = _forward(dWs, dbs, dX, dmasks, code)
    L, B = len(dWs), X.shape[0]
    delta = cuda.device_array_like(a[L])
    losses = cuda.device_array(B, dtype=X.dtype)
    blocks, threads = grid_1d(B)
    head = _softmax_xent if loss == "xent" else _mse
    head[blocks, threads](a[L], cuda.to_device(np.ascontiguousarray(y)), delta, losses)
    top = delta
    gWs, gbs = [None] * L, [None] * L
    for l in range(L - 1, -1, -1):
        gW = cuda.device_array_like(dWs[l])
        gb = cuda.device_array_like(dbs[l])
        blocks, threads = grid_2d(gW.shape[0], gW.shape[1] + 1)
        _weight_grads[blocks, threads](delta, a[l], gW, gb)
        gWs[l], gbs[l] = gW.copy_to_host(), gb.copy_to_host()
        if l > 0:
            delta_prev = cuda.device_array_like(a[l])
            blocks, threads = grid_2d(*delta_prev.shape)
            source = top if direct else delta
            _backprop[blocks, threads](source, dFs[l], a[l], dmasks[l - 1], code, delta_prev)
            delta = delta_prev
    return losses.copy_to_host().sum() / B, gWs, gbs
