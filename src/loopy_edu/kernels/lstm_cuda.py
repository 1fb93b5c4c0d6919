"""Numba CUDA kernels for :mod:`loopy_edu.lstm` (Chapter 7).

The time loop cannot be parallel, but each step's units and the batch's sequences can. The
recursions run as kernels with one block per sequence: the block's threads share out the units,
walk through time together, and meet at a barrier (``cuda.syncthreads``) between the phases of a
step, since each phase reads what other threads wrote in the last one. The states live in global
memory, which the barrier makes visible to the whole block. Everything that does not depend on
the previous step runs fully parallel outside the loop: the input drive ``W_ih x_t + b`` of
every step, and the weight gradients, one thread per weight summing over all steps and
sequences. The readout and the loss are a few small products, done on the host with
:mod:`loopy_edu.readout`.

The host functions take and return NumPy arrays, like :mod:`loopy_edu.kernels.lstm_numba`.
"""
import math

import numpy as np
from numba import cuda

from .scalar_cuda import act as _act
from ..activations import CODES
from ..backend import simulated
from ..readout import LOSSES, readout, readout_grads, sequence_loss
from .launch import BLOCK_1D, grid_2d

_SIGMOID, _TANH = CODES["sigmoid"], CODES["tanh"]


@cuda.jit
def _input_drive(W_ih, b, xs, gates):
    # gates[t, r, j] = b[j] + Σ_k W_ih[j, k] xs[t, r, k], one thread per entry, every step at
    # once; j is the fastest index, so that neighbouring threads write neighbouring entries.
    j, n = cuda.grid(2)
    T, B, n_in = xs.shape
    if n < T * B and j < gates.shape[2]:
        t, r = n // B, n % B
        s = b[j]
        for k in range(n_in):
            s += W_ih[j, k] * xs[t, r, k]
        gates[t, r, j] = s


@cuda.jit
def _forward(W_hhT, gates, hs, cs):
    # Block r runs sequence r; gates holds the input drive on entry and the activated gates on
    # exit. W_hhT = W_hhᵀ (H, 4H), so that neighbouring threads j read neighbouring weights.
    r, tid, n_threads = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    T, H = gates.shape[0], hs.shape[2]
    for t in range(T):
        # Phase 1: z_t and the gates, which need all of h_{t-1}.
        for j in range(tid, 4 * H, n_threads):
            z = gates[t, r, j]
            if t > 0:
                for k in range(H):
                    z += W_hhT[k, j] * hs[t - 1, r, k]
            gates[t, r, j] = _act(z, _TANH if 2 * H <= j < 3 * H else _SIGMOID)
        cuda.syncthreads()
        # Phase 2: c_t and h_t, which need the four gates of unit k.
        for k in range(tid, H, n_threads):
            i, f, g, o = (gates[t, r, k], gates[t, r, H + k], gates[t, r, 2 * H + k],
                          gates[t, r, 3 * H + k])
            c = i * g
            if t > 0:
                c += f * cs[t - 1, r, k]
            cs[t, r, k] = c
            hs[t, r, k] = o * math.tanh(c)
        cuda.syncthreads()


@cuda.jit
def _backward(W_hh, cs, gates, dhs, dz, dh_parts, dc_next):
    # Block r goes back in time through sequence r as lstm.backward does. dc_next (B, H) carries
    # ∂L/∂c_t through step t+1, and dh_parts (B, 4, H) ∂L/∂h_t through step t+1
    # = Σ_j dz_j W_hh[j] in four parts, one per gate, so that 4H threads share the sum; both
    # start at zero.
    r, tid, n_threads = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    T, H = gates.shape[0], cs.shape[2]
    for t in range(T - 1, -1, -1):
        # Phase 1: dz_t for the four gates of unit k.
        for k in range(tid, H, n_threads):
            i, f, g, o = (gates[t, r, k], gates[t, r, H + k], gates[t, r, 2 * H + k],
                          gates[t, r, 3 * H + k])
            tanh_c = math.tanh(cs[t, r, k])
            dh = (dhs[t, r, k] + dh_parts[r, 0, k] + dh_parts[r, 1, k] + dh_parts[r, 2, k]
                  + dh_parts[r, 3, k])
            dc = dh * o * (1 - tanh_c * tanh_c) + dc_next[r, k]
            c_prev = cs[t - 1, r, k] if t > 0 else 0.0
            dz[t, r, k] = dc * g * i * (1 - i)
            dz[t, r, H + k] = dc * c_prev * f * (1 - f)
            dz[t, r, 2 * H + k] = dc * i * (1 - g * g)
            dz[t, r, 3 * H + k] = dh * tanh_c * o * (1 - o)
            dc_next[r, k] = dc * f
        cuda.syncthreads()
        # Phase 2: dz_t W_hh, which needs all of dz_t.
        for n in range(tid, 4 * H, n_threads):
            q, k = n // H, n % H
            # Starting from a term keeps s in the arrays' dtype.
            s = dz[t, r, q * H] * W_hh[q * H, k]
            for j in range(q * H + 1, (q + 1) * H):
                s += dz[t, r, j] * W_hh[j, k]
            dh_parts[r, q, k] = s
        cuda.syncthreads()


@cuda.jit
def _weight_grads(dz, xs, hs, gW_ih, gW_hh, gb):
    # Thread (j, k) sums over all steps and sequences, in float64 since the sums are long.
    # Columns k < n_in are W_ih's (input x_t), the next H are W_hh's (input h_{t-1}, so step 0
    # adds nothing) and the last is the bias's (input 1).
    j, k = cuda.grid(2)
    T, B, n_in = xs.shape
    H = hs.shape[2]
    if j < dz.shape[2] and k <= n_in + H:
        s = 0.0
        if k < n_in:
            for t in range(T):
                for r in range(B):
                    s += dz[t, r, j] * xs[t, r, k]
            gW_ih[j, k] = s
        elif k < n_in + H:
            for t in range(1, T):
                for r in range(B):
                    s += dz[t, r, j] * hs[t - 1, r, k - n_in]
            gW_hh[j, k - n_in] = s
        else:
            for t in range(T):
                for r in range(B):
                    s += dz[t, r, j]
            gb[j] = s


def _block(H):
    # Threads per sequence: one per gate where a block can hold them all (a step is then one row
    # of multiply-adds deep), whole warps; the simulator keeps its small blocks.
    return BLOCK_1D if simulated() else min(1024, 32 * -(-4 * H // 32))


def _run_forward(W_ih, W_hh, b, xs):
    # Device arrays xs, hs, cs, gates after the forward pass.
    T, B, _ = xs.shape
    H = W_hh.shape[1]
    dxs = cuda.to_device(xs)
    gates = cuda.device_array((T, B, 4 * H), dtype=xs.dtype)
    hs = cuda.device_array((T, B, H), dtype=xs.dtype)
    cs = cuda.device_array_like(hs)
    blocks, threads = grid_2d(4 * H, T * B)
    _input_drive[blocks, threads](cuda.to_device(W_ih), cuda.to_device(b), dxs, gates)
    _forward[B, _block(H)](cuda.to_device(np.ascontiguousarray(W_hh.T)), gates, hs, cs)
    return dxs, hs, cs, gates


def forward(W_ih, W_hh, b, xs):
    """hs, cs (T, B, H) and gates (T, B, 4H) for xs (T, B, n_in), as
    :func:`loopy_edu.lstm.forward`."""
    _, hs, cs, gates = _run_forward(W_ih, W_hh, b, np.ascontiguousarray(xs))
    return hs.copy_to_host(), cs.copy_to_host(), gates.copy_to_host()


def loss_and_grads(W_ih, W_hh, b, W_out, b_out, xs, targets, mask, loss_code):
    """The loss and gradients ``(loss, gW_ih, gW_hh, gb, gW_out, gb_out)`` for xs (T, B, n_in),
    targets (T, B, n_out) and mask (T, B); ``loss_code`` is the index of the loss in
    ``readout.LOSSES``."""
    xs = np.ascontiguousarray(xs)
    T, B, n_in = xs.shape
    H = W_hh.shape[1]
    dxs, hs, cs, gates = _run_forward(W_ih, W_hh, b, xs)
    h_host = hs.copy_to_host()
    loss, dys = sequence_loss(readout(W_out, b_out, h_host), targets, mask, LOSSES[loss_code])
    gW_out, gb_out, dhs = readout_grads(W_out, h_host, dys)
    dz = cuda.device_array_like(gates)
    dh_parts, dc_next = (cuda.to_device(np.zeros((B, 4, H), xs.dtype)),
                         cuda.to_device(np.zeros((B, H), xs.dtype)))
    _backward[B, _block(H)](cuda.to_device(W_hh), cs, gates,
                            cuda.to_device(np.ascontiguousarray(dhs)), dz, dh_parts, dc_next)
    gW_ih = cuda.device_array((4 * H, n_in), dtype=xs.dtype)
    gW_hh = cuda.device_array((4 * H, H), dtype=xs.dtype)
    gb = cuda.device_array(4 * H, dtype=xs.dtype)
    blocks, threads = grid_2d(4 * H, n_in + H + 1)
    _weight_grads[blocks, threads](dz, dxs, hs, gW_ih, gW_hh, gb)
    return loss, gW_ih.copy_to_host(), gW_hh.copy_to_host(), gb.copy_to_host(), gW_out, gb_out
