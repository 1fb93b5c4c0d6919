"""Numba CPU kernels for :mod:`loopy_edu.rnn` and :mod:`loopy_edu.bptt`.

Only the recurrence is sequential: each step is one BLAS product with W_rec plus element-wise
loops. Everything that sums over all steps at once (the input drive, the readout, the weight
gradients) is a single BLAS product over the flattened (T·B) axis.
"""
import numpy as np
from numba import njit

from .scalar_numba import act as _act, act_grad as _act_grad, row_loss as _row_loss
from .readout_numba import readout, sequence_loss



@njit(cache=True)
def _matmul_t(A, B):
    """Aᵀ B for 3-D arrays whose first two axes are flattened: A (T, B, m), B (T, B, n)
    → (m, n)."""
    return np.dot(A.reshape(-1, A.shape[-1]).T, B.reshape(-1, B.shape[-1]))


@njit(cache=True, inline="always")
def step_stream(W_in, W_rec, b_rec, h, x, alpha, code, z, d):
    """One step of one stream, in place, for the online rules (RTRL, RFLO): z (M,) becomes
    [h_{t-1}, x_t, 1], h (N,) becomes h_t and d (N,) the slope α act'(u_t) of every unit."""
    N, n_in = h.shape[0], x.shape[0]
    z[:N] = h
    z[N:N + n_in] = x
    z[N + n_in] = 1.0
    for i in range(N):
        u = b_rec[i]
        for j in range(N):
            u += W_rec[i, j] * z[j]
        for j in range(n_in):
            u += W_in[i, j] * z[N + j]
        a = _act(u, code)
        d[i] = alpha * _act_grad(a, code)               # ∂h_t[i]/∂u_t[i]
        h[i] = (1 - alpha) * z[i] + alpha * a


@njit(cache=True, inline="always")
def readout_stream(W_out, b_out, h, target, m, B, loss_code, y, dy, gW_out, gb_out):
    """One stream's output y = W_out h + b_out, its loss (returned, of B streams) and
    dy = ∂L/∂y, with the readout's gradient added into gW_out and gb_out."""
    for k in range(y.shape[0]):
        s = b_out[k]
        for j in range(h.shape[0]):
            s += W_out[k, j] * h[j]
        y[k] = s
    value = _row_loss(y, target, m, B, loss_code, dy)
    for k in range(y.shape[0]):
        gb_out[k] += dy[k]
        for j in range(h.shape[0]):
            gW_out[k, j] += dy[k] * h[j]
    return value


@njit(cache=True)
def forward(W_in, W_rec, b_rec, xs, alpha, code):
    """States hs and activations acts (T, B, N) for xs (T, B, n_in), from h_0 = 0."""
    T, B, n_in = xs.shape
    N = W_rec.shape[0]
    drive = np.dot(xs.reshape(T * B, n_in), W_in.T).reshape(T, B, N)   # W_in x_t for every step
    W_rec_T = np.ascontiguousarray(W_rec.T)
    hs = np.empty((T, B, N), dtype=xs.dtype)
    acts = np.empty_like(hs)
    u = np.zeros((B, N), dtype=xs.dtype)                  # W_rec h_{t-1}, zero for h_0 = 0
    for t in range(T):
        if t > 0:
            np.dot(hs[t - 1], W_rec_T, u)
        for b in range(B):
            for i in range(N):
                a = _act(u[b, i] + drive[t, b, i] + b_rec[i], code)
                acts[t, b, i] = a
                hs[t, b, i] = (1 - alpha) * hs[t - 1, b, i] + alpha * a if t > 0 else alpha * a
    return hs, acts


@njit(cache=True)
def backward(W_rec, hs, acts, dhs, alpha, code, k):
    """∂L/∂u_t (T, B, N) by the backward recursion; windows of k steps when k > 0 (truncated
    BPTT)."""
    T, B, N = hs.shape
    dus = np.empty_like(hs)
    dh = np.zeros((B, N), dtype=hs.dtype)                 # ∂L/∂h_t through the future
    back = np.empty((B, N), dtype=hs.dtype)               # du_t W_rec, the path through u_t
    for t in range(T - 1, -1, -1):
        for b in range(B):
            for i in range(N):
                dh[b, i] += dhs[t, b, i]
                dus[t, b, i] = alpha * dh[b, i] * _act_grad(acts[t, b, i], code)
        if k > 0 and t % k == 0:
            dh[:] = 0.0
        else:
            np.dot(dus[t], W_rec, back)
            for b in range(B):
                for i in range(N):
                    dh[b, i] = (1 - alpha) * dh[b, i] + back[b, i]
    return dus


@njit(cache=True)
def loss_and_grads(W_in, W_rec, b_rec, W_out, b_out, xs, targets, mask, alpha, code, loss_code,
                   k):
    """Forward, loss and BPTT in one call; returns the loss and the gradients in params
    order."""
    T, B, _ = xs.shape
    N = W_rec.shape[0]
    hs, acts = forward(W_in, W_rec, b_rec, xs, alpha, code)
    value, dys = sequence_loss(readout(W_out, b_out, hs), targets, mask, loss_code)
    dhs = np.dot(dys.reshape(T * B, -1), W_out).reshape(T, B, N)
    dus = backward(W_rec, hs, acts, dhs, alpha, code, k)
    gW_rec = _matmul_t(dus[1:], hs[:-1]) if T > 1 else np.zeros_like(W_rec)
    return (value, (_matmul_t(dus, xs), gW_rec, dus.reshape(T * B, N).sum(axis=0),
                    _matmul_t(dys, hs), dys.reshape(T * B, -1).sum(axis=0)))
