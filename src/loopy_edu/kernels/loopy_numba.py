"""Numba CPU kernels for :mod:`loopy_edu.loopy`: the leaky network on a sparse graph and its
BPTT.

The graph comes as CSR arrays: ``data`` (nnz,) the weights, ``indptr`` (N + 1,) and
``indices`` (nnz,) unsigned, so that gathering ``h[indices[e]]`` needs no check for a negative
index. The leak ``alpha`` is an array (N,), one per unit. Activation code 3 is ``"linear"``
(:data:`loopy_edu.loopy.UNIT_CODES`); the others are those of the shared scalar functions.
Everything that sums over all steps at once (the input drive, the readout, the dense weight
gradients) is one BLAS product over the flattened (T·B) axis.
"""
import numpy as np
from numba import njit

from .readout_numba import readout, sequence_loss
from .scalar_numba import act as _act, act_grad as _act_grad

LINEAR = 3


@njit(cache=True, inline="always")
def _unit(u, code):
    return u if code == LINEAR else _act(u, code)


@njit(cache=True, inline="always")
def _unit_grad(a, code):
    return 1.0 if code == LINEAR else _act_grad(a, code)


@njit(cache=True)
def forward(W_in, data, indptr, indices, b_rec, xs, alpha, code, keep_acts=True):
    """States hs and activations acts (T, B, N) for xs (T, B, n_in), from h_0 = 0. Without
    ``keep_acts`` (states alone, no backward pass to follow) acts is one step, (1, B, N), so
    that a long run holds one (T, B, N) array less."""
    T, B, n_in = xs.shape
    N = b_rec.shape[0]
    drive = np.dot(xs.reshape(T * B, n_in), W_in.T).reshape(T, B, N)   # W_in x_t for every step
    hs = np.zeros((T, B, N), dtype=xs.dtype)
    acts = np.empty((T if keep_acts else 1, B, N), dtype=xs.dtype)
    for t in range(T):
        s = t if keep_acts else 0
        for b in range(B):
            for i in range(N):
                u = drive[t, b, i] + b_rec[i]
                if t > 0:
                    for e in range(indptr[i], indptr[i + 1]):
                        u += data[e] * hs[t - 1, b, indices[e]]
                a = _unit(u, code)
                acts[s, b, i] = a
                h = hs[t - 1, b, i] if t > 0 else 0.0
                hs[t, b, i] = (1 - alpha[i]) * h + alpha[i] * a
    return hs, acts


@njit(cache=True)
def backward(data, indptr, indices, hs, acts, dhs, alpha, code):
    """∂L/∂u_t (T, B, N) and the synapses' gradient (nnz,) by the backward recursion."""
    T, B, N = hs.shape
    dus = np.empty_like(hs)
    gW_rec = np.zeros(data.shape[0], dtype=hs.dtype)
    dh = np.zeros((B, N), dtype=hs.dtype)                 # ∂L/∂h_t through the future
    for t in range(T - 1, -1, -1):
        for b in range(B):
            for i in range(N):
                dh[b, i] += dhs[t, b, i]
                dus[t, b, i] = alpha[i] * dh[b, i] * _unit_grad(acts[t, b, i], code)
            for i in range(N):
                dh[b, i] *= 1 - alpha[i]
            for i in range(N):
                d = dus[t, b, i]
                for e in range(indptr[i], indptr[i + 1]):
                    j = indices[e]
                    dh[b, j] += data[e] * d                # W_recᵀ δ_t: row i scatters to its j
                    if t > 0:                              # h_0 = 0 adds nothing
                        gW_rec[e] += d * hs[t - 1, b, j]
    return dus, gW_rec


@njit(cache=True)
def loss_and_grads(W_in, data, indptr, indices, b_rec, W_out, b_out, xs, targets, mask, alpha,
                   code, loss_code):
    """Forward, loss and BPTT in one call; returns the loss and the gradients in params
    order (W_in, W_rec, b_rec, W_out, b_out)."""
    T, B, n_in = xs.shape
    N = b_rec.shape[0]
    hs, acts = forward(W_in, data, indptr, indices, b_rec, xs, alpha, code)
    value, dys = sequence_loss(readout(W_out, b_out, hs), targets, mask, loss_code)
    n_out = dys.shape[2]
    dhs = np.dot(dys.reshape(T * B, n_out), W_out).reshape(T, B, N)
    dus, gW_rec = backward(data, indptr, indices, hs, acts, dhs, alpha, code)
    dus2 = dus.reshape(T * B, N)
    gW_in = np.dot(dus2.T, xs.reshape(T * B, n_in))
    gW_out = np.dot(dys.reshape(T * B, n_out).T, hs.reshape(T * B, N))
    return (value, (gW_in, gW_rec, dus2.sum(axis=0), gW_out,
                    dys.reshape(T * B, n_out).sum(axis=0)))
