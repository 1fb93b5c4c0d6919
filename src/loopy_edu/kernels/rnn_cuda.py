"""Numba CUDA kernels for :mod:`loopy_edu.rnn` and :mod:`loopy_edu.bptt` (Chapter 5).

Only the recurrence is sequential. It runs as one block per sequence with the time loop inside
the kernel: the block's threads share out the N units, and a barrier after each step makes h_t
visible to every thread before step t + 1 reads it. Everything that involves all steps at once
(the input drive, the readout, the loss, the weight gradients) runs as separate kernels with one
thread per entry.

Arrays on the device are 2-D with the steps and the batch flattened into rows, row ``t·B + b``.
The states keep h_0 in their first B rows, ``hs[(t+1)·B + b] = h_t``, so rows ``[0, T·B)`` are
the previous states h_{t-1} that multiply W_rec, with no special case at t = 0.

The host functions take and return NumPy arrays, like :mod:`loopy_edu.kernels.rnn_numba`.
"""
import numpy as np
from numba import cuda

from .scalar_cuda import act as _act, act_grad as _act_grad, row_loss as _row_loss
from ..backend import simulated
from .launch import BLOCK_2D, grid_1d, recurrence_threads


# Rows of T·B summed by one thread before the partial sums are added; small in the simulator so
# that the tests cross chunk boundaries.
ROWS_PER_CHUNK = 4 if simulated() else 256


@cuda.jit
def _affine(X, W, b, Y):
    # Y[r, i] = Σ_j X[r, j] W[i, j] + b[i]; one thread per entry, i fastest so that writes
    # coalesce.
    e = cuda.grid(1)
    m = Y.shape[1]
    if e < Y.shape[0] * m:
        r, i = e // m, e % m
        s = b[i]
        for j in range(X.shape[1]):
            s += X[r, j] * W[i, j]
        Y[r, i] = s


@cuda.jit
def _forward_recurrence(drive, W_rec_T, alpha, code, hs, acts):
    # Block b runs sequence b through all T steps; drive (T·B, N) holds W_in x_t + b_rec. Thread
    # i reads the column W_rec_T[:, i] = W_rec[i, :], so neighbouring threads read neighbouring
    # words.
    b = cuda.blockIdx.x
    N = W_rec_T.shape[0]
    B = hs.shape[0] - drive.shape[0]
    T = drive.shape[0] // B
    for t in range(T):
        r = t * B + b                                 # row of step t; hs[r] is h_{t-1}
        for i in range(cuda.threadIdx.x, N, cuda.blockDim.x):
            u = drive[r, i]
            for j in range(N):
                u += W_rec_T[j, i] * hs[r, j]
            a = _act(u, code)
            acts[r, i] = a
            hs[r + B, i] = (1 - alpha) * hs[r, i] + alpha * a
        cuda.syncthreads()                            # h_t complete before any thread reads it


@cuda.jit
def _backward_recurrence(W_rec, acts, dhs, alpha, code, k, dh, dus):
    # Block b runs the backward recursion of sequence b. dh (B, N) is ∂L/∂h_t through the later
    # steps; thread j alone reads and writes dh[b, j], so only du_t, which every unit needs,
    # crosses threads.
    b = cuda.blockIdx.x
    B, N = dh.shape
    T = acts.shape[0] // B
    for i in range(cuda.threadIdx.x, N, cuda.blockDim.x):
        dh[b, i] = 0.0
    for t in range(T - 1, -1, -1):
        r = t * B + b
        for i in range(cuda.threadIdx.x, N, cuda.blockDim.x):
            g = dh[b, i] + dhs[r, i]                  # all of ∂L/∂h_t
            dh[b, i] = g
            dus[r, i] = alpha * g * _act_grad(acts[r, i], code)
        cuda.syncthreads()                            # du_t complete before the sum over units
        for j in range(cuda.threadIdx.x, N, cuda.blockDim.x):
            if k > 0 and t % k == 0:                  # a window's start: no gradient crosses it
                dh[b, j] = 0.0
            else:
                # The sum starts from its first term, not 0.0, to stay in the arrays'
                # precision.
                g = dus[r, 0] * W_rec[0, j]
                for i in range(1, N):
                    g += dus[r, i] * W_rec[i, j]
                dh[b, j] = (1 - alpha) * dh[b, j] + g
        # No second barrier: step t − 1 writes other rows of dus, and each dh[b, j] has
        # one owner.


@cuda.jit
def _loss_rows(ys, targets, mask, B, loss_code, dys, losses):
    # One thread per row (t, b): its masked loss and ∂L/∂y.
    r = cuda.grid(1)
    if r < ys.shape[0]:
        losses[r] = _row_loss(ys[r], targets[r], mask[r], B, loss_code, dys[r])


@cuda.jit
def _theta_partials(A, H, X, rows, P):
    # Chunk c of the rows adds up P[c, i·n + j] = Σ_r A[r, i] z_r[j],
    # z_r = [H[r], X[r], 1] (n entries; X may have no columns). The (i, j) threads of a chunk
    # read the same rows, so they hit in cache. The sum is in float64 whatever the arrays'
    # precision: it runs over many rows.
    j, i, c = cuda.grid(3)
    m, n1, n2 = A.shape[1], H.shape[1], X.shape[1]
    n = n1 + n2 + 1
    if i < m and j < n and c < P.shape[0]:
        s = 0.0
        for r in range(c * rows, min((c + 1) * rows, A.shape[0])):
            if j < n1:
                s += A[r, i] * H[r, j]
            elif j < n1 + n2:
                s += A[r, i] * X[r, j - n1]
            else:
                s += A[r, i]
        P[c, i * n + j] = s


@cuda.jit
def _sum_rows(P, out):
    # out[e] = Σ_c P[c, e], one thread per column, always in the same order (no atomics).
    e = cuda.grid(1)
    if e < out.shape[0]:
        s = 0.0
        for c in range(P.shape[0]):
            s += P[c, e]
        out[e] = s


def affine(dX, dW, db):
    """X Wᵀ + b on the device for X (R, n), W (m, n), b (m,); returns (R, m)."""
    dY = cuda.device_array((dX.shape[0], dW.shape[0]), dtype=dX.dtype)
    _affine[grid_1d(dY.size)](dX, dW, db, dY)
    return dY


def column_sums(dP):
    """Σ_c P[c, :] of a device array (C, n), as a host array (n,)."""
    out = cuda.device_array(dP.shape[1], dtype=dP.dtype)
    _sum_rows[grid_1d(dP.shape[1])](dP, out)
    return out.copy_to_host()


def theta_grads(dA, dH, dX):
    """Σ_r A[r] [H[r], X[r], 1]ᵀ over all rows, as a host array (m, n1 + n2 + 1): the gradient
    of a weight matrix and its bias gathered by rows. dA (R, m), dH (R, n1), dX (R, n2) or a
    (0, 0) array."""
    R, m = dA.shape
    n = dH.shape[1] + dX.shape[1] + 1
    # The grid's z extent is at most 65535 chunks.
    rows = max(ROWS_PER_CHUNK, -(-R // 65535))
    chunks = -(-R // rows)
    dP = cuda.device_array((chunks, m * n), dtype=dA.dtype)
    by, bx = BLOCK_2D
    _theta_partials[((n + bx - 1) // bx, (m + by - 1) // by, chunks),
                    (bx, by, 1)](dA, dH, dX, rows, dP)
    return column_sums(dP).reshape(m, n)


def split_theta(g, N, n_in):
    """(W_in, W_rec, b_rec) gradients from the row-gathered g (N, N + n_in + 1)."""
    return (np.ascontiguousarray(g[:, N:N + n_in]), np.ascontiguousarray(g[:, :N]),
            np.ascontiguousarray(g[:, N + n_in]))


def _run_forward(W_in, W_rec, b_rec, dxs, h0, alpha, code):
    # The recurrence from h0 (B, N); returns hs ((T+1)·B, N), whose first B rows are h0,
    # and acts.
    B, N = h0.shape
    drive = affine(dxs, cuda.to_device(W_in), cuda.to_device(b_rec))
    hs = cuda.device_array((dxs.shape[0] + B, N), dtype=dxs.dtype)
    hs[:B].copy_to_device(np.ascontiguousarray(h0, dtype=dxs.dtype))
    acts = cuda.device_array_like(drive)
    _forward_recurrence[B, recurrence_threads(N)](
        drive, cuda.to_device(np.ascontiguousarray(W_rec.T)), alpha, code, hs, acts)
    return hs, acts


def forward_loss(W_in, W_rec, b_rec, W_out, b_out, xs, targets, mask, alpha, code, loss_code,
                 h0):
    """The part of a gradient that both BPTT and RTRL need: run the network from h0 (B, N) over
    xs (T, B, n_in), read it out and take the loss. Returns the loss, the readout's gradients
    (W_out, b_out) and, on the device, xs (T·B, n_in), hs ((T+1)·B, N) with h0 in its first B
    rows, acts (T·B, N) and ∂L/∂h_t through the readout alone (T·B, N). All host inputs are
    NumPy arrays."""
    T, B, n_in = xs.shape
    N = W_rec.shape[0]
    dxs = cuda.to_device(np.ascontiguousarray(xs).reshape(T * B, n_in))
    hs, acts = _run_forward(W_in, W_rec, b_rec, dxs, h0, alpha, code)
    ys = affine(hs[B:], cuda.to_device(W_out), cuda.to_device(b_out))
    dys = cuda.device_array_like(ys)
    losses = cuda.device_array(T * B, dtype=np.float64)
    _loss_rows[grid_1d(T * B)](
        ys, cuda.to_device(np.ascontiguousarray(targets).reshape(T * B, -1)),
        cuda.to_device(np.ascontiguousarray(mask).reshape(T * B)), B, loss_code, dys, losses)
    dhs = affine(dys, cuda.to_device(np.ascontiguousarray(W_out.T)),
                 cuda.to_device(np.zeros(N, xs.dtype)))
    g_out = theta_grads(dys, hs[B:], cuda.to_device(np.empty((0, 0), dtype=xs.dtype)))
    readout_grads = (np.ascontiguousarray(g_out[:, :N]), np.ascontiguousarray(g_out[:, N]))
    return losses.copy_to_host().sum() / B, readout_grads, dxs, hs, acts, dhs


def forward(W_in, W_rec, b_rec, xs, alpha, code):
    """States hs and activations acts (T, B, N) for xs (T, B, n_in), from h_0 = 0."""
    T, B, n_in = xs.shape
    N = W_rec.shape[0]
    dxs = cuda.to_device(np.ascontiguousarray(xs).reshape(T * B, n_in))
    hs, acts = _run_forward(W_in, W_rec, b_rec, dxs, np.zeros((B, N), dtype=xs.dtype), alpha,
                            code)
    return hs[B:].copy_to_host().reshape(T, B, N), acts.copy_to_host().reshape(T, B, N)


def loss_and_grads(W_in, W_rec, b_rec, W_out, b_out, xs, targets, mask, alpha, code, loss_code,
                   k):
    """Forward, loss and BPTT (windows of k steps when k > 0); returns the loss and the
    gradients in params order."""
    T, B, _ = xs.shape
    N = W_rec.shape[0]
    h0 = np.zeros((B, N), dtype=xs.dtype)
    value, readout_grads, dxs, hs, acts, dhs = forward_loss(
        W_in, W_rec, b_rec, W_out, b_out, xs, targets, mask, alpha, code, loss_code, h0)
    dus, dh = cuda.device_array_like(acts), cuda.device_array((B, N), dtype=xs.dtype)
    _backward_recurrence[B, recurrence_threads(N)](
        cuda.to_device(W_rec), acts, dhs, alpha, code, k, dh, dus)
    g = theta_grads(dus, hs[:T * B], dxs)             # rows θ_i = [W_rec[i], W_in[i], b_rec[i]]
    return value, split_theta(g, N, xs.shape[2]) + readout_grads
