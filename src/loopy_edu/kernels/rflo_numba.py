"""Numba CPU kernels for :mod:`loopy_edu.rflo` (RFLO and e-prop, Chapter 9).

The whole time loop is one compiled call. Stepping the traces one step at a time would sweep the
N·M traces and the N·M gradient once per step, which is memory traffic, not arithmetic. Instead
the steps run in chunks of K. Per unit i the trace update is P_t = c_t P_{t-1} + d_t z_t (c_t
the decay, d_t = α act'(u_t), scalars), so across a chunk that starts from P_0 ::

    P_t = (c_1 ⋯ c_t) P_0 + Σ_{s≤t} (c_{s+1} ⋯ c_t) d_s z_s,
    Σ_t q_t P_t = c_1 E_1 P_0 + Σ_s d_s E_s z_s,   E_s = q_s + c_{s+1} E_{s+1},

and the chunk's last trace and its gradient are two (N, K) × (K, M) matrix products (one BLAS
call each) plus one pass over P and the gradient, instead of K passes. The network itself (two
BLAS matrix-vector products for u_t, the readout, the loss row) still runs step by step.
"""
import numpy as np
from numba import njit

from .rnn_numba import readout_stream, step_stream
from .rtrl_numba import split_grads, split_theta
from .scalar_numba import act as _act, act_grad as _act_grad, row_loss as _row_loss

# Steps per chunk: the traces and the gradient are touched once per chunk, not once per step.
CHUNK = 32


@njit(cache=True)
def _run(W_in, W_rec, b_rec, W_out, b_out, Bfb, h, P, xs, targets, mask, alpha, code, loss_code,
         self_term, g_theta, gW_out, gb_out):
    """Advance h (B, N) and the traces P (B, N, M) in place over xs (T, B, n_in); add the
    gradients into g_theta (N, M) (rows θ_i = [W_rec[i], W_in[i], b_rec[i]]), gW_out and gb_out;
    return Σ_t B·L_t."""
    T, B, n_in = xs.shape
    N, n_out = W_rec.shape[0], W_out.shape[0]
    M = N + n_in + 1
    K = min(T, CHUNK)
    Z = np.empty((K, M), dtype=h.dtype)                 # z_s = [h_{s-1}, x_s, 1] of the chunk
    D = np.empty((N, K), dtype=h.dtype)                 # d_s = α act'(u_s), one column per step
    C = np.empty((N, K), dtype=h.dtype)                 # c_s, the traces' decay at step s
    Q = np.empty((N, K), dtype=h.dtype)                 # q_s = B dy_s
    u, v = np.empty(N, dtype=h.dtype), np.empty(N, dtype=h.dtype)
    y, dy = np.empty(n_out, dtype=h.dtype), np.empty(n_out, dtype=h.dtype)
    E, F = np.empty(N, dtype=h.dtype), np.empty(N, dtype=h.dtype)
    S = np.empty((N, M), dtype=h.dtype)                 # Σ_s (weight of z_s) z_sᵀ, both sums
    total = 0.0
    for b in range(B):                                  # the streams are independent
        for t0 in range(0, T, K):
            n = min(K, T - t0)
            for s in range(n):                          # network, loss and q_s, step by step
                t = t0 + s
                Z[s, :N] = h[b]
                Z[s, N:N + n_in] = xs[t, b]
                Z[s, M - 1] = 1.0
                np.dot(W_rec, h[b], u)
                np.dot(W_in, xs[t, b], v)
                for i in range(N):
                    a = _act(u[i] + v[i] + b_rec[i], code)
                    D[i, s] = alpha * _act_grad(a, code)
                    C[i, s] = (1 - alpha) + D[i, s] * W_rec[i, i] if self_term else 1 - alpha
                    h[b, i] = (1 - alpha) * h[b, i] + alpha * a
                np.dot(W_out, h[b], y)
                for k in range(n_out):
                    y[k] += b_out[k]
                total += _row_loss(y, targets[t, b], mask[t, b], B, loss_code, dy)
                for k in range(n_out):
                    gb_out[k] += dy[k]
                    for j in range(N):
                        gW_out[k, j] += dy[k] * h[b, j]
                for i in range(N):
                    q = 0.0                             # learning signal q_s[i] = (B dy_s)[i]
                    for k in range(n_out):
                        q += Bfb[i, k] * dy[k]
                    Q[i, s] = q
            # Backwards through the chunk, per unit: E_s = q_s + c_{s+1} E_{s+1} and
            # F_s = c_{s+1} F_{s+1} (F_{n-1} = 1); overwrite Q with d_s E_s, the weight of z_s
            # in the gradient, and D with d_s F_s, its weight in the chunk's last trace.
            for i in range(N):
                E[i], F[i] = Q[i, n - 1], 1.0
                Q[i, n - 1] *= D[i, n - 1]
                for s in range(n - 2, -1, -1):
                    E[i] = Q[i, s] + C[i, s + 1] * E[i]
                    F[i] = C[i, s + 1] * F[i]
                    Q[i, s] = D[i, s] * E[i]
                    D[i, s] *= F[i]
            np.dot(np.ascontiguousarray(Q[:, :n]), Z[:n], S)       # Σ_s d_s E_s z_sᵀ (N, M)
            for i in range(N):
                # the first step decays P_{t0} too
                gain, Pi, gi = C[i, 0] * E[i], P[b, i], g_theta[i]
                for m in range(M):
                    gi[m] += gain * Pi[m] + S[i, m]
            np.dot(np.ascontiguousarray(D[:, :n]), Z[:n], S)       # Σ_s d_s F_s z_sᵀ
            for i in range(N):
                keep, Pi = C[i, 0] * F[i], P[b, i]
                for m in range(M):
                    Pi[m] = keep * Pi[m] + S[i, m]
    return total


@njit(cache=True)
def rflo(W_in, W_rec, b_rec, W_out, b_out, Bfb, xs, targets, mask, alpha, code, loss_code,
         self_term):
    """The loss and RFLO's gradient (params order) from h_0 = 0 and P_0 = 0; e-prop's with
    self_term."""
    T, B, n_in = xs.shape
    N = W_rec.shape[0]
    h = np.zeros((B, N), dtype=xs.dtype)
    P = np.zeros((B, N, N + n_in + 1), dtype=xs.dtype)
    g = np.zeros((N, N + n_in + 1), dtype=xs.dtype)
    gW_out, gb_out = np.zeros_like(W_out), np.zeros_like(b_out)
    total = _run(W_in, W_rec, b_rec, W_out, b_out, Bfb, h, P, xs, targets, mask, alpha, code,
                 loss_code, self_term, g, gW_out, gb_out)
    gW_in, gW_rec, gb_rec = split_theta(g, N, n_in)
    return total / B, (gW_in, gW_rec, gb_rec, gW_out, gb_out)


@njit(cache=True)
def workspace(N, n_in, n_out, like):
    """The scratch memory of :func:`advance` (``like``'s dtype): made once, reused at every
    step."""
    return np.empty(3 * N + n_in + 1 + 2 * n_out, dtype=like.dtype)


@njit(cache=True)
def advance(W_in, W_rec, b_rec, W_out, b_out, Bfb, h, P, x, target, mask, alpha, code,
            loss_code, self_term, g, work):
    """One online step: advance h (B, N) and the traces P (B, N, M) in place, overwrite the flat
    gradient buffer g (:func:`loopy_edu.kernels.rtrl_numba.split_grads`) with the step's update
    and return L_t. One step has no chunk to fold, so this is the plain recursion."""
    B, N = h.shape
    n_in, n_out = x.shape[1], b_out.shape[0]
    M = N + n_in + 1
    g[:] = 0.0
    gW_in, gW_rec, gb_rec, gW_out, gb_out = split_grads(g, N, n_in, n_out)
    d, decay, z = work[:N], work[N:2 * N], work[2 * N:2 * N + M]
    y, dy = work[2 * N + M:2 * N + M + n_out], work[2 * N + M + n_out:2 * N + M + 2 * n_out]
    total = 0.0
    for b in range(B):
        step_stream(W_in, W_rec, b_rec, h[b], x[b], alpha, code, z, d)
        total += readout_stream(W_out, b_out, h[b], target[b], mask[b], B, loss_code, y, dy,
                                gW_out, gb_out)
        for i in range(N):
            decay[i] = (1 - alpha) + d[i] * W_rec[i, i] if self_term else 1 - alpha
            q = 0.0                                     # learning signal q_t[i] = (B dy_t)[i]
            for k in range(n_out):
                q += Bfb[i, k] * dy[k]
            Pi = P[b, i]
            for m in range(M):
                Pi[m] = decay[i] * Pi[m] + d[i] * z[m]
            for j in range(N):
                gW_rec[i, j] += q * Pi[j]
            for j in range(n_in):
                gW_in[i, j] += q * Pi[N + j]
            gb_rec[i] += q * Pi[M - 1]
    return total / B
