"""Numba CPU kernels for :mod:`loopy_edu.lstm` (Chapter 7): forward pass, readout, loss and BPTT
in one compiled call, so that a short sequence pays no Python overhead per step.

Only the recurrence has to run step by step. The input drive ``W_ih x_t`` of every step is one
BLAS product before the time loop, and the weight gradients are BLAS products after it, from the
``dz`` kept for every step; inside the loop each step makes one BLAS product with ``W_hh`` for
the whole batch. What remains is the gates' nonlinearities, five per unit and step, which
dominate the time; kernels/scalar.py writes each with one ``exp``, which is cheaper than libm's
``tanh``.
"""
import numpy as np
from numba import njit

from .scalar_numba import act as _act
from ..activations import CODES
from .readout_numba import readout, sequence_loss

SIGMOID, TANH = CODES["sigmoid"], CODES["tanh"]


@njit(cache=True)
def _forward(W_ih, W_hh, b, xs):
    # Returns hs, cs (T, B, H), the gates (T, B, 4H) and tanh(c_t), which the backward pass
    # reuses.
    T, B, n_in = xs.shape
    H = W_hh.shape[1]
    # gates (T, B, 4H) holds W_ih x_t, then z_t, then the gates.
    gates = np.dot(xs.reshape(T * B, n_in), W_ih.T).reshape(T, B, 4 * H)
    rec = np.zeros((B, 4 * H), dtype=xs.dtype)                                # W_hh h_{t-1}
    hs = np.empty((T, B, H), dtype=xs.dtype)
    cs = np.empty_like(hs)
    tanh_cs = np.empty_like(hs)
    for t in range(T):
        if t > 0:
            np.dot(hs[t - 1], W_hh.T, rec)
        for r in range(B):
            z = gates[t, r]
            # A loop, not "+ b": Numba's broadcasting is slow on this shape.
            for j in range(4 * H):
                z[j] += rec[r, j] + b[j]
            for k in range(H):
                i = _act(z[k], SIGMOID)
                f = _act(z[H + k], SIGMOID)
                g = _act(z[2 * H + k], TANH)
                o = _act(z[3 * H + k], SIGMOID)
                c = i * g + (f * cs[t - 1, r, k] if t > 0 else 0.0)
                z[k], z[H + k], z[2 * H + k], z[3 * H + k] = i, f, g, o
                cs[t, r, k] = c
                tanh_cs[t, r, k] = _act(c, TANH)
                hs[t, r, k] = o * tanh_cs[t, r, k]
    return hs, cs, gates, tanh_cs


@njit(cache=True)
def _backward(W_hh, W_out, cs, gates, tanh_cs, dys):
    # Back in time as lstm.backward does, from dys = ∂L/∂y_t (T, B, n_out). Each step's
    # dz = ∂L/∂z_t overwrites that step's gates, which are read just before and never again:
    # gates becomes dz. Also returns gb = Σ dz over steps and sequences.
    T, B, H = cs.shape
    gb = np.zeros(4 * H, dtype=cs.dtype)
    dh = np.empty((B, H), dtype=cs.dtype)                # ∂L/∂h_t through the readout
    dh_next = np.zeros((B, H), dtype=cs.dtype)           # ∂L/∂h_t through step t+1
    dc_next = np.zeros((B, H), dtype=cs.dtype)           # ∂L/∂c_t through step t+1
    for t in range(T - 1, -1, -1):
        np.dot(dys[t], W_out, dh)
        for r in range(B):
            z = gates[t, r]
            for k in range(H):
                i, f, g, o = z[k], z[H + k], z[2 * H + k], z[3 * H + k]
                tanh_c = tanh_cs[t, r, k]
                c_prev = cs[t - 1, r, k] if t > 0 else 0.0
                dh_k = dh[r, k] + dh_next[r, k]
                dc = dh_k * o * (1 - tanh_c * tanh_c) + dc_next[r, k]
                z[k] = dc * g * i * (1 - i)
                z[H + k] = dc * c_prev * f * (1 - f)
                z[2 * H + k] = dc * i * (1 - g * g)
                z[3 * H + k] = dh_k * tanh_c * o * (1 - o)
                dc_next[r, k] = dc * f
            for j in range(4 * H):
                gb[j] += z[j]
        np.dot(gates[t], W_hh, dh_next)
    return gates, gb


@njit(cache=True)
def forward(W_ih, W_hh, b, xs):
    """hs, cs (T, B, H) and gates (T, B, 4H) for xs (T, B, n_in), as
    :func:`loopy_edu.lstm.forward`."""
    hs, cs, gates, _ = _forward(W_ih, W_hh, b, xs)
    return hs, cs, gates


@njit(cache=True)
def loss_and_grads(W_ih, W_hh, b, W_out, b_out, xs, targets, mask, loss_code):
    """The loss and gradients ``(loss, gW_ih, gW_hh, gb, gW_out, gb_out)`` for xs (T, B, n_in),
    targets (T, B, n_out) and mask (T, B); ``loss_code`` is the index of the loss in
    ``readout.LOSSES``."""
    T, B, n_in = xs.shape
    H = W_hh.shape[1]
    hs, cs, gates, tanh_cs = _forward(W_ih, W_hh, b, xs)
    loss, dys = sequence_loss(readout(W_out, b_out, hs), targets, mask, loss_code)
    hs2 = hs.reshape(T * B, H)
    dys2 = dys.reshape(T * B, -1)
    gW_out, gb_out = np.dot(dys2.T, hs2), dys2.sum(axis=0)
    dz, gb = _backward(W_hh, W_out, cs, gates, tanh_cs, dys)
    dz = dz.reshape(T * B, 4 * H)
    gW_ih = np.dot(dz.T, xs.reshape(T * B, n_in))
    # Step t's input is h_{t-1}; h_0 = 0 adds nothing.
    gW_hh = np.dot(dz[B:].T, hs2[:(T - 1) * B])
    return loss, gW_ih, gW_hh, gb, gW_out, gb_out
