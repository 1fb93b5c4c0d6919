"""Numba CPU kernels for :mod:`loopy_edu.rtrl`.

The N⁴ term of a step is J_t = A_t J_{t-1}, with A_t = (1 − α) I + diag(α act'(u_t)) W_rec
folded into one matrix so that it is BLAS work. J_{t-1} and J_t are two buffers that trade
places after each step (nothing is allocated or copied per step), each (B, N·N·M), laid out for
the fastest product:

- **by unit**, ``Jt[b, i, m, k] = J[b, k, i, m]``: unit i's rows θ_i are one contiguous (M, N)
  block, and ``Jt_t[i] = Jt_{t-1}[i] A_tᵀ`` runs as products of a few units' blocks at a time.
  While a block is in cache it also gets its immediate influence and gives its rows of the
  gradient, so J is read and written once per step. Used while one unit's product is within
  OpenBLAS's small-matrix bound (m·n·k ≤ 100³), where its small-matrix kernel runs these shapes
  fastest.
- **whole**, ``J[b, k, i, m]``, above that bound (N ≳ 100 here): one (N, N) × (N, N·M) product,
  which the ordinary BLAS path runs faster than any split into blocks.

:func:`influence` shows either as (B, N, N, M).
"""
import numpy as np
from numba import njit

from .rnn_numba import readout_stream, step_stream

# OpenBLAS multiplies m × k by k × n with its small-matrix kernel when m·n·k ≤ 100³ (builds with
# SMALL_MATRIX_OPT, as on x86-64 with AVX-512). Measured on such a machine, that kernel runs the
# tall, thin products of the by-unit layout close to its peak; the ordinary path, just above the
# bound, runs the same shapes a quarter to a third slower.
SMALL_GEMM = 100 ** 3


@njit(cache=True)
def units_per_block(N, M):
    """Units per BLAS product in the by-unit layout, or 0 for the whole layout."""
    return min(N, SMALL_GEMM // (M * N * N))


@njit(cache=True)
def workspace(N, n_in, n_out, like):
    """The scratch memory of :func:`_step` (``like``'s dtype): made once, reused at every
    step."""
    M = N + n_in + 1
    return np.empty(N * N + 2 * N + M + 2 * n_out + N * M, dtype=like.dtype)


def new_influence(B, N, n_in, dtype):
    """A zero influence J_0 for B streams, in the kernels' layout (B, N·N·M)."""
    return np.zeros((B, N * N * (N + n_in + 1)), dtype=dtype)


def influence(J, N, n_in):
    """The kernels' influence buffer J (B, N·N·M) seen as (B, N, N, M),
    J[b, k, i, m] = ∂h[k]/∂θ_i[m] (a view, not a copy)."""
    B, M = J.shape[0], N + n_in + 1
    if units_per_block(N, M):
        return J.reshape(B, N, M, N).transpose(0, 3, 1, 2)
    return J.reshape(B, N, N, M)


@njit(cache=True)
def _step(W_in, W_rec, b_rec, W_out, b_out, h, J, J_next, x, target, mask, alpha, code,
          loss_code, gW_in, gW_rec, gb_rec, gW_out, gb_out, work):
    """Advance h (B, N) in place and the influence J into J_next (both (B, N·N·M)), add ∂L_t/∂θ
    to the gradient arrays and return L_t; x (B, n_in), target (B, n_out), mask (B,), work from
    :func:`workspace`."""
    B, N = h.shape
    n_in, n_out = x.shape[1], b_out.shape[0]
    M = N + n_in + 1
    G = units_per_block(N, M)
    # The scratch arrays, carved from work in the sizes that workspace() adds up.
    A = work[:N * N].reshape(N, N)                      # A_t of one stream (A_tᵀ when G > 0)
    o = N * N
    d, c, z = work[o:o + N], work[o + N:o + 2 * N], work[o + 2 * N:o + 2 * N + M]
    o += 2 * N + M
    y, dy = work[o:o + n_out], work[o + n_out:o + 2 * n_out]
    gv = work[o + 2 * n_out:o + 2 * n_out + N * M]      # ∂L_t/∂θ by rows θ_i
    total = 0.0
    for b in range(B):
        step_stream(W_in, W_rec, b_rec, h[b], x[b], alpha, code, z, d)
        total += readout_stream(W_out, b_out, h[b], target[b], mask[b], B, loss_code, y, dy,
                                gW_out, gb_out)
        c[:] = 0.0                                      # ∂L_t/∂h_t = W_outᵀ dy
        for k in range(n_out):
            for j in range(N):
                c[j] += dy[k] * W_out[k, j]
        if G > 0:
            for j in range(N):
                for i in range(N):
                    A[j, i] = d[i] * W_rec[i, j]
                A[j, j] += 1 - alpha
            old, new = J[b].reshape(N * M, N), J_next[b].reshape(N * M, N)
            for i0 in range(0, N, G):
                i1 = min(N, i0 + G)
                blk = new[i0 * M:i1 * M]
                np.dot(old[i0 * M:i1 * M], A, blk)      # (A_t J_{t-1})ᵀ, rows θ_i, i0 ≤ i < i1
                for i in range(i0, i1):                 # + α act'(u_t[i]) z_t: u_t[i] = θ_i z_t
                    for m in range(M):
                        blk[(i - i0) * M + m, i] += d[i] * z[m]
                np.dot(blk, c, gv[i0 * M:i1 * M])       # Σ_k c_k J_t[k, i, m] while blk is hot
        else:
            for i in range(N):
                for j in range(N):
                    A[i, j] = d[i] * W_rec[i, j]
                A[i, i] += 1 - alpha
            new = J_next[b].reshape(N, N * M)
            np.dot(A, J[b].reshape(N, N * M), new)
            for i in range(N):
                for m in range(M):
                    new[i, i * M + m] += d[i] * z[m]
            np.dot(c, new, gv)
        for i in range(N):
            gi = gv[i * M:(i + 1) * M]
            gW_rec[i] += gi[:N]
            gW_in[i] += gi[N:N + n_in]
            gb_rec[i] += gi[M - 1]
    return total / B


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
    N, n_out = W_rec.shape[0], W_out.shape[0]
    h = np.zeros((B, N), dtype=xs.dtype)
    size = N * N * (N + n_in + 1)
    J, J_next = np.zeros((B, size), dtype=xs.dtype), np.empty((B, size), dtype=xs.dtype)
    work = workspace(N, n_in, n_out, xs)
    gW_in, gW_rec, gb_rec = np.zeros_like(W_in), np.zeros_like(W_rec), np.zeros_like(b_rec)
    gW_out, gb_out = np.zeros_like(W_out), np.zeros_like(b_out)
    total = 0.0
    for t in range(T):
        total += _step(W_in, W_rec, b_rec, W_out, b_out, h, J, J_next, xs[t], targets[t],
                       mask[t], alpha, code, loss_code, gW_in, gW_rec, gb_rec, gW_out, gb_out,
                       work)
        J, J_next = J_next, J
    return total, (gW_in, gW_rec, gb_rec, gW_out, gb_out)


@njit(cache=True)
def split_grads(g, N, n_in, n_out):
    """The five gradient arrays (params order: W_in, W_rec, b_rec, W_out, b_out) as views of one
    flat buffer g, the form in which the online learners keep them."""
    o1 = N * n_in
    o2 = o1 + N * N
    o3 = o2 + N
    o4 = o3 + n_out * N
    return (g[:o1].reshape(N, n_in), g[o1:o2].reshape(N, N), g[o2:o3],
            g[o3:o4].reshape(n_out, N), g[o4:o4 + n_out])


@njit(cache=True)
def advance(W_in, W_rec, b_rec, W_out, b_out, h, J, J_next, x, target, mask, alpha, code,
            loss_code, g, work):
    """One online step: advance h (B, N) in place and J into J_next (both from
    :func:`new_influence`), overwrite the flat gradient buffer g (:func:`split_grads`) with
    ∂L_t/∂θ and return L_t."""
    g[:] = 0.0
    gW_in, gW_rec, gb_rec, gW_out, gb_out = split_grads(g, h.shape[1], x.shape[1],
                                                        b_out.shape[0])
    return _step(W_in, W_rec, b_rec, W_out, b_out, h, J, J_next, x, target, mask, alpha, code,
                 loss_code, gW_in, gW_rec, gb_rec, gW_out, gb_out, work)
