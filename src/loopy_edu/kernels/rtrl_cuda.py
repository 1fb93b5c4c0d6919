"""Numba CUDA kernels for :mod:`loopy_edu.rtrl` (Chapter 6).

The states, the loss and ∂L_t/∂h_t do not depend on the influence, so they come first, for all
steps at once, from :func:`loopy_edu.kernels.rnn_cuda.forward_loss`. What is left is RTRL's own
recursion, two launches per step: one advances the influence J (one thread per entry; each sums
over N units, the N⁴ term), the other adds ∂L_t/∂θ = Σ_k (∂L_t/∂h_t[k]) J_t[k] into per-stream
sums. J stays on the device for the whole sequence, stored as (B·N, N·M) with row b·N + k for
∂h[b, k]/∂θ.
"""
import numpy as np
from numba import cuda

from . import rnn_cuda
from .launch import grid_1d
from .scalar_cuda import act_grad as _act_grad


@cuda.jit
def _influence_step(W_rec, acts, hs, x1, t, alpha, code, J, J_next):
    # Step t, thread (b, k, c): J_next[b, k, c] = (1 − α) J[b, k, c]
    #               + α act'(u_t[b, k]) (Σ_l W_rec[k, l] J[b, l, c]
    #                                    + [c // M = k] z_t[b, c % M]),
    # z_t = [h_{t-1}, x_t, 1] from the rows t·B + b of hs and of x1 = [xs, 1] (T·B, n_in + 1).
    # c is fastest, so a warp reads neighbouring words of J. The sum starts from its first term,
    # not from 0.0, to stay in the arrays' precision.
    e = cuda.grid(1)
    N = W_rec.shape[0]
    M = N + x1.shape[1]
    NM = J.shape[1]
    if e < J.shape[0] * NM:
        row, c = e // NM, e % NM
        b, k = row // N, row % N
        r = t * (J.shape[0] // N) + b
        s = W_rec[k, 0] * J[b * N, c]
        for l in range(1, N):
            s += W_rec[k, l] * J[b * N + l, c]
        if c // M == k:                               # u_t[k] holds θ_k · z_t directly
            m = c % M
            s += hs[r, m] if m < N else x1[r, m - N]
        J_next[row, c] = (1 - alpha) * J[row, c] + alpha * _act_grad(acts[r, k], code) * s


@cuda.jit
def _add_gradient(dhs, t, J, G):
    # G[b, c] += Σ_k dh[b, k] J[b·N + k, c] with dh = ∂L_t/∂h_t, the rows t·B + b of dhs. Each
    # stream keeps its own row of G, so no two threads add into one entry; the streams are
    # summed at the end.
    e = cuda.grid(1)
    B, NM = G.shape
    N = dhs.shape[1]
    if e < B * NM:
        b, c = e // NM, e % NM
        s = G[b, c]
        for k in range(N):
            s += dhs[t * B + b, k] * J[b * N + k, c]
        G[b, c] = s


@cuda.jit
def _zero(A):
    # A (rows, cols) = 0, so that the largest arrays need no host copy to start from.
    e = cuda.grid(1)
    if e < A.size:
        A[e // A.shape[1], e % A.shape[1]] = 0.0


def _zeros(shape, dtype):
    A = cuda.device_array(shape, dtype=dtype)
    _zero[grid_1d(A.size)](A)
    return A


def _run(W_in, W_rec, b_rec, W_out, b_out, xs, targets, mask, alpha, code, loss_code, h0, J0):
    # RTRL over xs (T, B, n_in) from the state h0 (B, N) (host) and the influence J0 (B·N, N·M)
    # (host, or None for zeros). Returns the loss, the gradients in params order, and on the
    # device hs ((T+1)·B, N) and J_T.
    T, B, n_in = xs.shape
    N = W_rec.shape[0]
    M = N + n_in + 1
    value, readout_grads, _, hs, acts, dhs = rnn_cuda.forward_loss(
        W_in, W_rec, b_rec, W_out, b_out, xs, targets, mask, alpha, code, loss_code, h0)
    x1 = cuda.to_device(np.concatenate([xs.reshape(T * B, n_in), np.ones((T * B, 1), xs.dtype)],
                                       axis=1))
    dW_rec = cuda.to_device(W_rec)
    J = _zeros((B * N, N * M), xs.dtype) if J0 is None else cuda.to_device(J0)
    J_next = cuda.device_array_like(J)
    G = _zeros((B, N * M), xs.dtype)
    for t in range(T):                                # rows [t·B, (t+1)·B) of hs hold h_{t-1}
        _influence_step[grid_1d(J.size)](dW_rec, acts, hs, x1, t, alpha, code, J, J_next)
        _add_gradient[grid_1d(G.size)](dhs, t, J_next, G)
        J, J_next = J_next, J
    g = rnn_cuda.column_sums(G).reshape(N, M)
    return value, rnn_cuda.split_theta(g, N, n_in) + readout_grads, hs, J


def rtrl(W_in, W_rec, b_rec, W_out, b_out, xs, targets, mask, alpha, code, loss_code):
    """The sequence's loss and gradient (params order) by RTRL, from h_0 = 0 and J_0 = 0."""
    h0 = np.zeros((xs.shape[1], W_rec.shape[0]), dtype=xs.dtype)
    value, grads, _, _ = _run(W_in, W_rec, b_rec, W_out, b_out, xs, targets, mask, alpha, code,
                              loss_code, h0, None)
    return value, grads


def online_step(W_in, W_rec, b_rec, W_out, b_out, h, J, x, target, mask, alpha, code,
                loss_code):
    """One online step: advance h (B, N) and J (B, N, N, M) in place; return L_t and its
    gradient."""
    B, N = h.shape
    value, grads, hs, J_next = _run(W_in, W_rec, b_rec, W_out, b_out, x[None], target[None],
                                    mask[None], alpha, code, loss_code, h,
                                    np.ascontiguousarray(J).reshape(B * N, -1))
    h[...] = hs[B:].copy_to_host()
    J[...] = J_next.copy_to_host().reshape(J.shape)
    return value, grads
