"""Numba CUDA kernels for :mod:`loopy_edu.loopy_rflo`: sparse RFLO / e-prop and the plastic
step.

Each time step is a short chain of launches, whose boundaries are the barriers: the state (one
thread per unit and stream), the readout (one thread per output and stream), the loss row and
the learning signal (per stream, then per unit and stream), then the traces with the update:
one thread per synapse, summing over the streams itself, so no two threads add into one entry
and the sums come out in the same order every run. As in the Numba kernels, each step adds
``scale ×`` its estimate into output arrays: zeroed buffers for :func:`rflo`, the weights
themselves (scale = −lr) for :func:`plastic_step`, written only after every read of the step.

The host functions take and return NumPy arrays, with the signatures of
:mod:`loopy_edu.kernels.loopy_rflo_numba`; the plastic step copies the weights and the state
back into the host arrays it was given. Activation code 3 is ``"linear"``.
"""
import numpy as np
from numba import cuda

from .launch import grid_1d, grid_2d
from .scalar_cuda import act as _act, act_grad as _act_grad, row_loss as _row_loss


@cuda.jit
def _state(W_in, W_rec, b_rec, indptr, indices, loops, xs, t, alpha, code, self_term, h, H,
           D, C):
    # Unit i of stream b: h_t into H (h holds h_{t-1}), d_t and the traces' decay c_t.
    i, b = cuda.grid(2)
    B, N = h.shape
    if i < N and b < B:
        u = b_rec[i]
        for m in range(W_in.shape[1]):
            u += W_in[i, m] * xs[t, b, m]
        for e in range(indptr[i], indptr[i + 1]):
            u += W_rec[e] * h[b, indices[e]]
        a = _act(u, code)
        d = alpha[i] * _act_grad(a, code)
        c = 1 - alpha[i]
        if self_term and loops[i] < W_rec.shape[0]:
            c += d * W_rec[loops[i]]
        D[b, i] = d
        C[b, i] = c
        H[b, i] = (1 - alpha[i]) * h[b, i] + alpha[i] * a


@cuda.jit
def _readout(W_out, b_out, H, Y):
    # y_t[b, k] = W_out[k] · h_t[b] + b_out[k].
    k, b = cuda.grid(2)
    if k < Y.shape[1] and b < Y.shape[0]:
        s = b_out[k]
        for j in range(H.shape[1]):
            s += W_out[k, j] * H[b, j]
        Y[b, k] = s


@cuda.jit
def _loss(Y, targets, mask, t, loss_code, dY, losses):
    # The loss row of stream b and ∂L/∂y_t into dY[b].
    b = cuda.grid(1)
    B = Y.shape[0]
    if b < B:
        losses[t * B + b] = _row_loss(Y[b], targets[t, b], mask[t, b], B, loss_code, dY[b])


@cuda.jit
def _signal(Bfb, W_out, symmetric, dY, Q):
    # q_t[b, i] = Σ_k B[i, k] dy_t[b, k], through W_outᵀ when symmetric.
    i, b = cuda.grid(2)
    if i < Q.shape[1] and b < Q.shape[0]:
        q = 0.0
        for k in range(dY.shape[1]):
            q += (W_out[k, i] if symmetric else Bfb[i, k]) * dY[b, k]
        Q[b, i] = q


@cuda.jit
def _synapses(post, indices, h, D, C, Q, P, G_rec, scale):
    # The synapse e: j -> i: its trace in every stream, and scale × Σ_b q[b, i] P[b, e].
    e = cuda.grid(1)
    if e < P.shape[1]:
        i, j = post[e], indices[e]
        s = 0.0
        for b in range(P.shape[0]):
            p = C[b, i] * P[b, e] + D[b, i] * h[b, j]
            P[b, e] = p
            s += Q[b, i] * p
        G_rec[e] += scale * s


@cuda.jit
def _inputs(xs, t, D, C, Q, R, G_in, G_b, scale):
    # Input m of unit i (m = n_in is the bias): its trace in every stream and its update.
    i, m = cuda.grid(2)
    n_in = xs.shape[2]
    if i < R.shape[1] and m <= n_in:
        s = 0.0
        for b in range(R.shape[0]):
            z = xs[t, b, m] if m < n_in else 1.0
            p = C[b, i] * R[b, i, m] + D[b, i] * z
            R[b, i, m] = p
            s += Q[b, i] * p
        if m < n_in:
            G_in[i, m] += scale * s
        else:
            G_b[i] += scale * s


@cuda.jit
def _readout_update(dY, H, G_out, G_bout, scale):
    # The readout's exact gradient; column j = N is the bias.
    k, j = cuda.grid(2)
    N = H.shape[1]
    if k < dY.shape[1] and j <= N:
        s = 0.0
        for b in range(dY.shape[0]):
            s += dY[b, k] * (H[b, j] if j < N else 1.0)
        if j < N:
            G_out[k, j] += scale * s
        else:
            G_bout[k] += scale * s


def _run(dW, indptr, indices, loops, Bfb, h, P, R, xs, targets, mask, alpha, code, loss_code,
         self_term, symmetric, dG, scale):
    """Advance the device state h (B, N), P (B, nnz), R (B, N, n_in + 1) over xs (T, B, n_in),
    adding scale × each step's estimate into dG (params order, device); return Σ_t B·L_t. The
    weights dW are device arrays (params order)."""
    W_in, W_rec, b_rec, W_out, b_out = dW
    G_in, G_rec, G_b, G_out, G_bout = dG
    T, B, n_in = xs.shape
    N, n_out = b_rec.shape[0], b_out.shape[0]
    d_xs, d_targets, d_mask = (cuda.to_device(np.ascontiguousarray(a))
                               for a in (xs, targets, mask))
    d_indptr, d_indices, d_loops, d_alpha, d_B = (cuda.to_device(a) for a in
                                                  (indptr, indices, loops, alpha, Bfb))
    d_post = cuda.to_device(np.repeat(np.arange(N, dtype=np.uint32),
                                      np.diff(indptr.astype(np.int64))))
    H, D, C, Q = (cuda.device_array((B, N), dtype=xs.dtype) for _ in range(4))
    Y, dY = (cuda.device_array((B, n_out), dtype=xs.dtype) for _ in range(2))
    losses = cuda.device_array(T * B, dtype=np.float64)
    units, outputs = grid_2d(N, B), grid_2d(n_out, B)
    for t in range(T):
        _state[units](W_in, W_rec, b_rec, d_indptr, d_indices, d_loops, d_xs, t, d_alpha, code,
                      self_term, h, H, D, C)
        _readout[outputs](W_out, b_out, H, Y)
        _loss[grid_1d(B)](Y, d_targets, d_mask, t, loss_code, dY, losses)
        _signal[units](d_B, W_out, symmetric, dY, Q)
        if P.shape[1]:
            _synapses[grid_1d(P.shape[1])](d_post, d_indices, h, D, C, Q, P, G_rec, scale)
        _inputs[grid_2d(N, n_in + 1)](d_xs, t, D, C, Q, R, G_in, G_b, scale)
        _readout_update[grid_2d(n_out, N + 1)](dY, H, G_out, G_bout, scale)
        h, H = H, h                                         # h_t is the next step's h_{t-1}
    return losses.copy_to_host().sum(), h


def rflo(W_in, W_rec, b_rec, W_out, b_out, indptr, indices, loops, Bfb, xs, targets, mask,
         alpha, code, loss_code, self_term):
    """The loss and the estimate (params order) from h_0 = 0 and zero traces; e-prop's with
    self_term."""
    T, B, n_in = xs.shape
    N, dt = b_rec.shape[0], xs.dtype
    weights = (W_in, W_rec, b_rec, W_out, b_out)
    dG = tuple(cuda.to_device(np.zeros_like(w)) for w in weights)
    total, _ = _run(tuple(cuda.to_device(w) for w in weights), indptr, indices, loops, Bfb,
                    cuda.to_device(np.zeros((B, N), dt)),
                    cuda.to_device(np.zeros((B, W_rec.shape[0]), dt)),
                    cuda.to_device(np.zeros((B, N, n_in + 1), dt)), xs, targets, mask, alpha,
                    code, loss_code, self_term, False, dG, 1.0)
    return total / B, tuple(g.copy_to_host() for g in dG)


def plastic_step(W_in, W_rec, b_rec, W_out, b_out, indptr, indices, loops, Bfb, h, P, R, xs,
                 targets, mask, alpha, code, loss_code, self_term, symmetric, lr):
    """T online steps: advance h, P and R and update the weights in place at every step (the
    feedback through the current W_outᵀ when symmetric); return Σ_t L_t."""
    weights = (W_in, W_rec, b_rec, W_out, b_out)
    dW = tuple(cuda.to_device(w) for w in weights)
    d_P, d_R = cuda.to_device(P), cuda.to_device(R)
    total, d_h = _run(dW, indptr, indices, loops, Bfb, cuda.to_device(h), d_P, d_R, xs,
                      targets, mask, alpha, code, loss_code, self_term, symmetric, dW, -lr)
    for host, dev in zip((*weights, h, P, R), (*dW, d_h, d_P, d_R)):
        host[...] = dev.copy_to_host()
    return total / xs.shape[1]
