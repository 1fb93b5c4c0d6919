"""Numba CPU kernels for :mod:`loopy_edu.rtrl`.

The N⁴ term of a step, W_rec J, is one (N, N) × (N, N·M) matrix product per stream, written as
J_t = A J_{t-1} with A = (1 − α) I + diag(α act'(u_t)) W_rec so that it is a single BLAS call; the rest
of the step is O(N³) or less.
"""
import numpy as np
from numba import njit

from .readout_numba import sequence_loss
from .scalar_numba import act as _act, act_grad as _act_grad


@njit(cache=True)
def _step(W_in, W_rec, b_rec, W_out, b_out, h, J, J_next, x, target, mask, alpha, code, loss_code,
          g_theta, gW_out, gb_out):
    """Advance h (B, N) in place and the influence J (B, N, N·M) into J_next; add ∂L_t/∂θ to the
    gradient arrays (g_theta (N·M,) holds the rows θ_i = [W_rec[i], W_in[i], b_rec[i]]); return L_t."""
    B, N = h.shape
    n_in = x.shape[1]
    M = N + n_in + 1
    A = np.empty((N, N), dtype=h.dtype)
    a = np.empty(N, dtype=h.dtype)
    d = np.empty(N, dtype=h.dtype)
    for b in range(B):
        for i in range(N):
            u = b_rec[i]
            for j in range(N):
                u += W_rec[i, j] * h[b, j]
            for j in range(n_in):
                u += W_in[i, j] * x[b, j]
            a[i] = _act(u, code)
            d[i] = alpha * _act_grad(a[i], code)
            A[i, :] = d[i] * W_rec[i, :]
            A[i, i] += 1 - alpha
        np.dot(A, J[b], J_next[b])
        for i in range(N):                              # + α act'(u_i) z_t in unit i's own row θ_i
            row = J_next[b, i, i * M:(i + 1) * M]
            row[:N] += d[i] * h[b]                      # z_t = [h_{t-1}, x_t, 1]: h is not updated yet
            row[N:N + n_in] += d[i] * x[b]
            row[N + n_in] += d[i]
        for i in range(N):
            h[b, i] = (1 - alpha) * h[b, i] + alpha * a[i]
    ys = (np.dot(h, W_out.T) + b_out).reshape(1, B, -1)
    value, dys = sequence_loss(ys, target.reshape(1, B, -1), mask.reshape(1, B), loss_code)
    dy = dys[0]                                         # (B, n_out)
    c = np.dot(dy, W_out)                               # ∂L_t/∂h_t (B, N)
    for b in range(B):
        g_theta += np.dot(c[b], J_next[b])
    gW_out += np.dot(dy.T, h)
    gb_out += dy.sum(axis=0)
    return value


@njit(cache=True)
def split_theta(g_theta, N, n_in):
    """(W_in, W_rec, b_rec) gradients from the row-gathered g_theta, (N·M,) or (N, M)."""
    g = g_theta.reshape(N, N + n_in + 1)
    return (np.ascontiguousarray(g[:, N:N + n_in]), np.ascontiguousarray(g[:, :N]),
            np.ascontiguousarray(g[:, N + n_in]))


@njit(cache=True)
def rtrl(W_in, W_rec, b_rec, W_out, b_out, xs, targets, mask, alpha, code, loss_code):
    """The sequence's loss and gradient (params order) by RTRL, from h_0 = 0 and J_0 = 0."""
    T, B, n_in = xs.shape
    N = W_rec.shape[0]
    M = N + n_in + 1
    h = np.zeros((B, N), dtype=xs.dtype)
    J, J_next = np.zeros((B, N, N * M), dtype=xs.dtype), np.empty((B, N, N * M), dtype=xs.dtype)
    g_theta = np.zeros(N * M, dtype=xs.dtype)
    gW_out, gb_out = np.zeros_like(W_out), np.zeros_like(b_out)
    total = 0.0
    for t in range(T):
        total += _step(W_in, W_rec, b_rec, W_out, b_out, h, J, J_next, xs[t], targets[t], mask[t], alpha,
                       code, loss_code, g_theta, gW_out, gb_out)
        J, J_next = J_next, J
    gW_in, gW_rec, gb_rec = split_theta(g_theta, N, n_in)
    return total, (gW_in, gW_rec, gb_rec, gW_out, gb_out)


@njit(cache=True)
def online_step(W_in, W_rec, b_rec, W_out, b_out, h, J, x, target, mask, alpha, code, loss_code):
    """One online step: advance h (B, N) and J (B, N, N, M) in place; return L_t and its gradient."""
    B, N = h.shape
    J3 = J.reshape(B, N, -1)
    J_next = np.empty_like(J3)
    g_theta = np.zeros(J3.shape[2], dtype=h.dtype)
    gW_out, gb_out = np.zeros_like(W_out), np.zeros_like(b_out)
    value = _step(W_in, W_rec, b_rec, W_out, b_out, h, J3, J_next, x, target, mask, alpha, code,
                  loss_code, g_theta, gW_out, gb_out)
    J3[:] = J_next
    gW_in, gW_rec, gb_rec = split_theta(g_theta, N, x.shape[1])
    return value, (gW_in, gW_rec, gb_rec, gW_out, gb_out)
