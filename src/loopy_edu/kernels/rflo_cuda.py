"""Numba CUDA kernels for :mod:`loopy_edu.rflo` (RFLO and e-prop, Chapter 9).

One block per sequence runs the whole time loop, like the forward recurrence of
:mod:`loopy_edu.kernels.rnn_cuda`; unlike BPTT, the gradient needs no second pass, so the state,
the loss and the traces advance together. Each step has four phases separated by barriers: the
state (threads over units), the readout (threads over outputs), the loss row (one thread), and
the traces with the gradient (threads over the N·M synapses, synapse index fastest so that a
warp touches neighbouring words). Each stream adds into its own row of a partial-sum array,
summed over the streams at the end. Device layout as in rnn_cuda: rows ``t·B + b``, with h_0 in
the first B rows of hs.
"""
import numpy as np
from numba import cuda

from . import rnn_cuda
from .launch import recurrence_threads
from .scalar_cuda import act as _act, act_grad as _act_grad, row_loss as _row_loss


@cuda.jit
def _recurrence(W_in, W_rec, b_rec, W_out, b_out, Bfb, xs, targets, mask, alpha, code,
                loss_code, self_term, hs, ys, dys, losses, coef, P, G):
    # Block b runs stream b. coef (B, 3, N) holds, per unit, α act'(u_t), the trace's decay and
    # the learning signal q_t = B dy_t; P and G (B, N·M) hold the traces and the gradient's
    # partial sums.
    b = cuda.blockIdx.x
    tid, nt = cuda.threadIdx.x, cuda.blockDim.x
    N, n_in, n_out = W_rec.shape[0], W_in.shape[1], W_out.shape[0]
    M = N + n_in + 1
    B = P.shape[0]
    T = xs.shape[0] // B
    for t in range(T):
        r = t * B + b                                     # hs[r] is h_{t-1}, hs[r + B] is h_t
        for i in range(tid, N, nt):
            u = b_rec[i]
            for j in range(N):
                u += W_rec[i, j] * hs[r, j]
            for j in range(n_in):
                u += W_in[i, j] * xs[r, j]
            a = _act(u, code)
            d = alpha * _act_grad(a, code)
            coef[b, 0, i] = d
            coef[b, 1, i] = (1 - alpha) + d * W_rec[i, i] if self_term else 1 - alpha
            hs[r + B, i] = (1 - alpha) * hs[r, i] + alpha * a
        cuda.syncthreads()                                # h_t complete before the readout
        for k in range(tid, n_out, nt):
            s = b_out[k]
            for j in range(N):
                s += W_out[k, j] * hs[r + B, j]
            ys[r, k] = s
        cuda.syncthreads()
        if tid == 0:
            losses[r] = _row_loss(ys[r], targets[r], mask[r], B, loss_code, dys[r])
        # dy_t is complete before the learning signal reads it.
        cuda.syncthreads()
        for i in range(tid, N, nt):
            # The sum starts from its first term, to stay in the arrays' precision.
            q = Bfb[i, 0] * dys[r, 0]
            for k in range(1, n_out):
                q += Bfb[i, k] * dys[r, k]
            coef[b, 2, i] = q
        cuda.syncthreads()
        for e in range(tid, N * M, nt):
            i, m = e // M, e % M
            if m < N:                                     # z_t = [h_{t-1}, x_t, 1]
                zm = hs[r, m]
            elif m < N + n_in:
                zm = xs[r, m - N]
            else:
                zm = 1.0
            p = coef[b, 1, i] * P[b, e] + coef[b, 0, i] * zm
            P[b, e] = p
            G[b, e] += coef[b, 2, i] * p
        cuda.syncthreads()                                # step t + 1 overwrites coef


def _run(W_in, W_rec, b_rec, W_out, b_out, Bfb, xs, targets, mask, alpha, code, loss_code,
         self_term, h0, P0):
    # RFLO over xs (T, B, n_in) from h0 (B, N) and the traces P0 (B, N, M) (host arrays).
    # Returns the loss, the gradients in params order, h_T and P_T (host).
    T, B, n_in = xs.shape
    N = W_rec.shape[0]
    M = N + n_in + 1
    dt = xs.dtype
    hs = cuda.device_array(((T + 1) * B, N), dtype=dt)
    hs[:B].copy_to_device(np.ascontiguousarray(h0, dtype=dt))
    ys = cuda.device_array((T * B, W_out.shape[0]), dtype=dt)
    dys = cuda.device_array_like(ys)
    losses = cuda.device_array(T * B, dtype=np.float64)
    P = cuda.to_device(np.ascontiguousarray(P0, dtype=dt).reshape(B, N * M))
    G = cuda.to_device(np.zeros((B, N * M), dtype=dt))
    _recurrence[B, recurrence_threads(N)](
        cuda.to_device(W_in), cuda.to_device(W_rec), cuda.to_device(b_rec),
        cuda.to_device(W_out), cuda.to_device(b_out), cuda.to_device(Bfb),
        cuda.to_device(np.ascontiguousarray(xs).reshape(T * B, n_in)),
        cuda.to_device(np.ascontiguousarray(targets).reshape(T * B, -1)),
        cuda.to_device(np.ascontiguousarray(mask).reshape(T * B)), alpha, code, loss_code,
        self_term, hs, ys, dys, losses, cuda.device_array((B, 3, N), dtype=dt), P, G)
    g = rnn_cuda.column_sums(G).reshape(N, M)
    g_out = rnn_cuda.theta_grads(dys, hs[B:], cuda.to_device(np.empty((0, 0), dtype=dt)))
    grads = rnn_cuda.split_theta(g, N, n_in) + (np.ascontiguousarray(g_out[:, :N]),
                                                 np.ascontiguousarray(g_out[:, N]))
    return (losses.copy_to_host().sum() / B, grads, hs[T * B:].copy_to_host(),
            P.copy_to_host().reshape(B, N, M))


def rflo(W_in, W_rec, b_rec, W_out, b_out, Bfb, xs, targets, mask, alpha, code, loss_code,
         self_term):
    """The loss and RFLO's gradient (params order) from h_0 = 0 and P_0 = 0; e-prop's with
    self_term."""
    T, B, n_in = xs.shape
    N = W_rec.shape[0]
    value, grads, _, _ = _run(W_in, W_rec, b_rec, W_out, b_out, Bfb, xs, targets, mask, alpha,
                              code, loss_code, self_term, np.zeros((B, N), xs.dtype),
                              np.zeros((B, N, N + n_in + 1), xs.dtype))
    return value, grads


def online_step(W_in, W_rec, b_rec, W_out, b_out, Bfb, h, P, x, target, mask, alpha, code,
                loss_code, self_term):
    """One online step: advance h (B, N) and P (B, N, M) in place; return L_t and its
    gradient."""
    value, grads, h[...], P[...] = _run(W_in, W_rec, b_rec, W_out, b_out, Bfb, x[None],
                                        target[None], mask[None], alpha, code, loss_code,
                                        self_term, h, P)
    return value, grads
