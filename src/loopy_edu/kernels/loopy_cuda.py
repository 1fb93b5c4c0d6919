"""Numba CUDA kernels for :mod:`loopy_edu.loopy`: the leaky network on a sparse graph and its
BPTT.

Each time step is one launch with one thread per (unit, sequence): the launch boundary is the
barrier that makes h_t visible before step t + 1 gathers it. Going back, each step is two
launches: one computes δ_t = ∂L/∂u_t, the next gathers W_recᵀ δ_t for each presynaptic unit j
over the synapses leaving j (the graph's transpose, built on the host), so no two threads add
into one entry and the sums come out in the same order every run. Each synapse's gradient is
one thread summing over all steps and sequences. The readout and the loss run on the host
(:mod:`loopy_edu.readout`), like the LSTM's.

Arrays on the device are 2-D with the steps and the batch flattened into rows, row ``t·B + b``;
the states keep h_0 = 0 in their first B rows, ``hs[(t+1)·B + b] = h_t``, as in
:mod:`loopy_edu.kernels.rnn_cuda`. Activation code 3 is ``"linear"``.

The host functions take and return NumPy arrays, like :mod:`loopy_edu.kernels.loopy_numba`;
:func:`device_states` is the static run on arrays already on the device, for timing it without
the copies.
"""
import numpy as np
from numba import cuda

from . import rnn_cuda
from .launch import grid_1d, grid_2d
from .scalar_cuda import act as _act, act_grad as _act_grad
from ..readout import LOSSES, readout, readout_grads, sequence_loss


@cuda.jit
def _forward_step(drive, data, indptr, indices, alpha, code, t, hs, acts):
    # Step t for unit i of sequence b; drive (T·B, N) holds W_in x_t + b_rec, hs[r] is h_{t-1}.
    i, b = cuda.grid(2)
    N = hs.shape[1]
    B = hs.shape[0] - drive.shape[0]
    if i < N and b < B:
        r = t * B + b
        u = drive[r, i]
        for e in range(indptr[i], indptr[i + 1]):
            u += data[e] * hs[r, indices[e]]
        a = _act(u, code)
        acts[r, i] = a
        hs[r + B, i] = (1 - alpha[i]) * hs[r, i] + alpha[i] * a


@cuda.jit
def _backward_du(acts, dhs, alpha, code, t, dh, dus):
    # δ_t of unit i of sequence b, from all of ∂L/∂h_t; dh (B, N) keeps (1 − α) ∂L/∂h_t, the
    # leak's path to h_{t-1}.
    i, b = cuda.grid(2)
    B, N = dh.shape
    if i < N and b < B:
        r = t * B + b
        g = dh[b, i] + dhs[r, i]
        dus[r, i] = alpha[i] * g * _act_grad(acts[r, i], code)
        dh[b, i] = (1 - alpha[i]) * g


@cuda.jit
def _backward_gather(data, tptr, edges, post, dus, t, dh):
    # dh[b, j] += Σ over the synapses e: j -> i of W_rec_e δ_t[b, i], the path through u_t.
    j, b = cuda.grid(2)
    B, N = dh.shape
    if j < N and b < B:
        r = t * B + b
        s = dh[b, j]
        for k in range(tptr[j], tptr[j + 1]):
            s += data[edges[k]] * dus[r, post[k]]
        dh[b, j] = s


@cuda.jit
def _synapse_grads(dus, hs, indices, post, g):
    # g[e] = Σ_r δ[r, i] h_prev[r, j] for the synapse e: j -> i; the rows of h_0 = 0 add 0.
    e = cuda.grid(1)
    if e < g.shape[0]:
        i, j = post[e], indices[e]
        s = 0.0
        for r in range(dus.shape[0]):
            s += dus[r, i] * hs[r, j]
        g[e] = s


def _post(indptr, N):
    """The postsynaptic unit i of every synapse e: j -> i (nnz,)."""
    return np.repeat(np.arange(N, dtype=np.uint32), np.diff(indptr.astype(np.int64)))


def _run_forward(W_in, data, indptr, indices, b_rec, dxs, B, alpha, code):
    # The recurrence from h_0 = 0; returns hs ((T+1)·B, N), whose first B rows are h_0, and
    # acts (T·B, N), on the device.
    N = b_rec.shape[0]
    T = dxs.shape[0] // B
    drive = rnn_cuda.affine(dxs, cuda.to_device(W_in), cuda.to_device(b_rec))
    hs = cuda.to_device(np.zeros(((T + 1) * B, N), dtype=dxs.dtype))
    acts = cuda.device_array_like(drive)
    d_data, d_indptr, d_indices, d_alpha = (cuda.to_device(a)
                                            for a in (data, indptr, indices, alpha))
    blocks, threads = grid_2d(N, B)
    for t in range(T):
        _forward_step[blocks, threads](drive, d_data, d_indptr, d_indices, d_alpha, code, t,
                                       hs, acts)
    return hs, acts


def forward(W_in, data, indptr, indices, b_rec, xs, alpha, code):
    """States hs and activations acts (T, B, N) for xs (T, B, n_in), from h_0 = 0."""
    T, B, n_in = xs.shape
    N = b_rec.shape[0]
    dxs = cuda.to_device(np.ascontiguousarray(xs).reshape(T * B, n_in))
    hs, acts = _run_forward(W_in, data, indptr, indices, b_rec, dxs, B, alpha, code)
    return hs[B:].copy_to_host().reshape(T, B, N), acts.copy_to_host().reshape(T, B, N)


def loss_and_grads(W_in, data, indptr, indices, b_rec, W_out, b_out, xs, targets, mask, alpha,
                   code, loss_code):
    """Forward, loss and BPTT; returns the loss and the gradients in params order (W_in,
    W_rec, b_rec, W_out, b_out)."""
    T, B, n_in = xs.shape
    N = b_rec.shape[0]
    dxs = cuda.to_device(np.ascontiguousarray(xs).reshape(T * B, n_in))
    hs, acts = _run_forward(W_in, data, indptr, indices, b_rec, dxs, B, alpha, code)
    h_host = hs[B:].copy_to_host().reshape(T, B, N)
    value, dys = sequence_loss(readout(W_out, b_out, h_host), targets, mask, LOSSES[loss_code])
    gW_out, gb_out, dhs = readout_grads(W_out, h_host, dys)
    # The transpose: the synapses leaving each unit j, as edge ids and their postsynaptic i.
    post = _post(indptr, N)
    edges = np.argsort(indices, kind="stable").astype(np.uint32)
    tptr = np.zeros(N + 1, dtype=np.uint32)
    tptr[1:] = np.cumsum(np.bincount(indices, minlength=N))
    d_data, d_alpha, d_post = cuda.to_device(data), cuda.to_device(alpha), cuda.to_device(post)
    d_tptr, d_edges, d_tpost = (cuda.to_device(a) for a in (tptr, edges, post[edges]))
    d_dhs = cuda.to_device(np.ascontiguousarray(dhs).reshape(T * B, N))
    dus = cuda.device_array_like(acts)
    dh = cuda.to_device(np.zeros((B, N), dtype=xs.dtype))
    blocks, threads = grid_2d(N, B)
    for t in range(T - 1, -1, -1):
        _backward_du[blocks, threads](acts, d_dhs, d_alpha, code, t, dh, dus)
        _backward_gather[blocks, threads](d_data, d_tptr, d_edges, d_tpost, dus, t, dh)
    g_rec = cuda.device_array(data.shape[0], dtype=xs.dtype)
    if data.shape[0]:
        _synapse_grads[grid_1d(data.shape[0])](dus, hs, cuda.to_device(indices), d_post,
                                                g_rec)
    g_in = rnn_cuda.theta_grads(dus, dxs, cuda.to_device(np.empty((0, 0), dtype=xs.dtype)))
    return value, (np.ascontiguousarray(g_in[:, :n_in]), g_rec.copy_to_host(),
                   np.ascontiguousarray(g_in[:, n_in]), gW_out, gb_out)


@cuda.jit
def _static_step(xs, W_in, b_rec, data, indptr, indices, alpha, code, t, hs):
    # Step t for unit i of sequence b, input drive included: nothing but hs is kept. xs
    # (T·B, n_in); hs ((T+1)·B, N), hs[r] is h_{t-1}.
    i, b = cuda.grid(2)
    N = hs.shape[1]
    B = hs.shape[0] - xs.shape[0]
    if i < N and b < B:
        r = t * B + b
        u = b_rec[i]
        for m in range(xs.shape[1]):
            u += W_in[i, m] * xs[r, m]
        for e in range(indptr[i], indptr[i + 1]):
            u += data[e] * hs[r, indices[e]]
        hs[r + B, i] = (1 - alpha[i]) * hs[r, i] + alpha[i] * _act(u, code)


def device_states(W_in, data, indptr, indices, b_rec, xs, B, alpha, code):
    """The static run on device arrays: xs (T·B, n_in), the rest as :func:`states` takes them;
    returns hs ((T+1)·B, N) on the device, h_0 = 0 in its first B rows."""
    T = xs.shape[0] // B
    N = b_rec.shape[0]
    hs = cuda.to_device(np.zeros(((T + 1) * B, N), dtype=xs.dtype))
    blocks, threads = grid_2d(N, B)
    for t in range(T):
        _static_step[blocks, threads](xs, W_in, b_rec, data, indptr, indices, alpha, code, t,
                                      hs)
    return hs


def states(W_in, data, indptr, indices, b_rec, xs, alpha, code):
    """States hs (T, B, N) for xs (T, B, n_in), from h_0 = 0: ``forward(...)[0]`` without the
    activations' array."""
    T, B, n_in = xs.shape
    N = b_rec.shape[0]
    d = [cuda.to_device(np.ascontiguousarray(a))
         for a in (W_in, data, indptr, indices, b_rec, xs.reshape(T * B, n_in), alpha)]
    hs = device_states(*d[:6], B, d[6], code)
    return hs[B:].copy_to_host().reshape(T, B, N)
