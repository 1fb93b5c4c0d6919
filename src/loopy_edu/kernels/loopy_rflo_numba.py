"""Numba CPU kernels for :mod:`loopy_edu.loopy_rflo`: sparse RFLO / e-prop and the plastic
step.

One compiled loop serves both: each step adds ``scale ×`` its estimate into output arrays. For
the gradient (:func:`rflo`) those are zeroed buffers and scale = 1; for the plastic step
(:func:`plastic_step`) they are the weights themselves and scale = −lr, so the update lands on
the synapses at every step. Every weight a step reads is read before any is written: first,
row by row, the state of every stream with the row's traces (their presynaptic rates still in
cache), then the readout and the learning signal, then one pass over the synapses that writes
the update. Measured once at N = 1000, batch 1, float64, one thread: the plastic step took
1.3-1.5× the time of :func:`loopy_edu.kernels.loopy_numba.forward` with 10 synapses per unit,
2.0-2.2× with 100.

The graph comes as CSR arrays with unsigned ``indptr`` and ``indices`` (nnz,), so gathering
``h[indices[e]]`` needs no check for a negative index; ``loops`` (N,) holds each unit's
self-loop synapse, or nnz where there is none. Activation code 3 is ``"linear"``
(:data:`loopy_edu.loopy.UNIT_CODES`).
"""
import numpy as np
from numba import njit

from .scalar_numba import act as _act, act_grad as _act_grad, row_loss as _row_loss


@njit(cache=True)
def _run(W_in, W_rec, b_rec, W_out, b_out, indptr, indices, loops, Bfb, h, P, R, xs, targets,
         mask, alpha, code, loss_code, self_term, symmetric, G_in, G_rec, G_b, G_out, G_bout,
         scale):
    """Advance h (B, N), P (B, nnz) and R (B, N, n_in + 1) in place over xs (T, B, n_in); add
    scale × each step's estimate into the G arrays (params order); return Σ_t B·L_t."""
    T, B, n_in = xs.shape
    N, n_out, nnz = b_rec.shape[0], b_out.shape[0], W_rec.shape[0]
    H = np.empty((B, N), dtype=h.dtype)                 # h_t, while h still holds h_{t-1}
    Q = np.empty((B, N), dtype=h.dtype)                 # q_t = B dy_t
    y, dy = np.empty(n_out, dtype=h.dtype), np.empty((B, n_out), dtype=h.dtype)
    total = 0.0
    for t in range(T):
        for b in range(B):
            for i in range(N):
                u = b_rec[i]
                for m in range(n_in):
                    u += W_in[i, m] * xs[t, b, m]
                for e in range(indptr[i], indptr[i + 1]):
                    u += W_rec[e] * h[b, indices[e]]
                a = _act(u, code)
                d = alpha[i] * _act_grad(a, code)
                c = 1 - alpha[i]
                if self_term and loops[i] < nnz:
                    c += d * W_rec[loops[i]]
                # The row's traces now, while its presynaptic rates are still in cache.
                for e in range(indptr[i], indptr[i + 1]):
                    P[b, e] = c * P[b, e] + d * h[b, indices[e]]
                for m in range(n_in):
                    R[b, i, m] = c * R[b, i, m] + d * xs[t, b, m]
                R[b, i, n_in] = c * R[b, i, n_in] + d
                H[b, i] = (1 - alpha[i]) * h[b, i] + alpha[i] * a
            for k in range(n_out):
                s = b_out[k]
                for j in range(N):
                    s += W_out[k, j] * H[b, j]
                y[k] = s
            total += _row_loss(y, targets[t, b], mask[t, b], B, loss_code, dy[b])
            for i in range(N):
                q = 0.0
                for k in range(n_out):
                    q += (W_out[k, i] if symmetric else Bfb[i, k]) * dy[b, k]
                Q[b, i] = q
        # The update, stream by stream, so that the loop over a row's synapses is a plain
        # a·x + y that LLVM vectorises.
        for b in range(B):
            for i in range(N):
                q = scale * Q[b, i]
                for e in range(indptr[i], indptr[i + 1]):
                    G_rec[e] += q * P[b, e]
                for m in range(n_in):
                    G_in[i, m] += q * R[b, i, m]
                G_b[i] += q * R[b, i, n_in]
        for k in range(n_out):                          # the readout's exact gradient
            s = 0.0
            for b in range(B):
                s += dy[b, k]
            G_bout[k] += scale * s
            for j in range(N):
                s = 0.0
                for b in range(B):
                    s += dy[b, k] * H[b, j]
                G_out[k, j] += scale * s
        h[:] = H
    return total


@njit(cache=True)
def rflo(W_in, W_rec, b_rec, W_out, b_out, indptr, indices, loops, Bfb, xs, targets, mask,
         alpha, code, loss_code, self_term):
    """The loss and the estimate (params order) from h_0 = 0 and zero traces; e-prop's with
    self_term."""
    T, B, n_in = xs.shape
    N = b_rec.shape[0]
    h = np.zeros((B, N), dtype=xs.dtype)
    P = np.zeros((B, W_rec.shape[0]), dtype=xs.dtype)
    R = np.zeros((B, N, n_in + 1), dtype=xs.dtype)
    grads = (np.zeros_like(W_in), np.zeros_like(W_rec), np.zeros_like(b_rec),
             np.zeros_like(W_out), np.zeros_like(b_out))
    total = _run(W_in, W_rec, b_rec, W_out, b_out, indptr, indices, loops, Bfb, h, P, R, xs,
                 targets, mask, alpha, code, loss_code, self_term, False, *grads, 1.0)
    return total / B, grads


@njit(cache=True)
def plastic_step(W_in, W_rec, b_rec, W_out, b_out, indptr, indices, loops, Bfb, h, P, R, xs,
                 targets, mask, alpha, code, loss_code, self_term, symmetric, lr):
    """T online steps: advance h, P and R and update the weights in place at every step (the
    feedback through the current W_outᵀ when symmetric); return Σ_t L_t."""
    total = _run(W_in, W_rec, b_rec, W_out, b_out, indptr, indices, loops, Bfb, h, P, R, xs,
                 targets, mask, alpha, code, loss_code, self_term, symmetric, W_in, W_rec,
                 b_rec, W_out, b_out, -lr)
    return total / xs.shape[1]
