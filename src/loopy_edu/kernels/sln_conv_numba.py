"""Numba CPU kernels for :mod:`loopy_edu.sln_conv` (Chapter 15): the looped convolutional
SLN's loops and their BPTT in one compiled call each. Each convolution is one BLAS product of
the shifted copies of the state (im2col) with the kernel, as in the NumPy reference; the
activations, the readout and the loss are fused loops.

Arguments: ``K_L`` (k, C, C), ``r_L``, ``b_L`` (C,), the same for the right lobe (a one-lobe
net passes its lobe twice; the second copy is never read), ``w`` (C,), ``c`` (1,), then X
(B, L) and the loop settings.
"""
import numpy as np
from numba import njit

from ..activations import CODES
from .scalar_numba import act, softplus

SIGMOID, TANH = CODES["sigmoid"], CODES["tanh"]


@njit(cache=True)
def _columns(H, k):
    # (B L, k C): row (b, l) holds H[b, l + j − p] for the k taps j side by side, 0 off the end.
    B, L, C = H.shape
    p = k // 2
    cols = np.zeros((B * L, k * C), H.dtype)
    for b in range(B):
        for l in range(L):
            for j in range(k):
                m = l + j - p
                if 0 <= m < L:
                    cols[b * L + l, j * C:(j + 1) * C] = H[b, m]
    return cols


@njit(cache=True)
def _flat_kernels(K_L, K_R):
    # Each lobe's kernel as (k C, C) for the forward product, and flipped and transposed for
    # the backward one (conv1d_back).
    k, C = K_L.shape[0], K_L.shape[1]
    fwd = np.empty((2, k * C, C), K_L.dtype)
    back = np.empty((2, k * C, C), K_L.dtype)
    for s in range(2):
        K = K_L if s == 0 else K_R
        for j in range(k):
            for i in range(C):
                for o in range(C):
                    fwd[s, j * C + i, o] = K[j, i, o]
                    back[s, j * C + o, i] = K[k - 1 - j, i, o]
    return fwd, back


@njit(cache=True)
def _convolve(H, K2, r, bias, X, heard, out):
    # One lobe: out = tanh(conv(H) + r x + b), the input term only when ``heard``.
    B, L, C = H.shape
    Z = np.dot(_columns(H, K2.shape[0] // C), K2)
    for b in range(B):
        for l in range(L):
            for c in range(C):
                z = Z[b * L + l, c] + bias[c]
                if heard:
                    z += r[c] * X[b, l]
                out[b, l, c] = act(z, TANH)


@njit(cache=True)
def conv_forward(K_L, r_L, b_L, K_R, r_R, b_R, w, c, X, iterations, lobes, recall,
                 keep_states):
    """Same results as :func:`loopy_edu.sln_conv.conv_forward`, as a tuple (Hs, Ys); without
    ``keep_states`` Hs holds only the last state and two states are kept in memory."""
    B, L = X.shape
    C = w.shape[0]
    fwd, _ = _flat_kernels(K_L, K_R)
    rs = (r_L, r_R)
    bs = (b_L, b_R)
    T = iterations * lobes
    Hs = np.zeros((T + 1 if keep_states else 2, B, L, C), X.dtype)
    Ys = np.empty((iterations, B, L), X.dtype)
    dst = 0
    for n in range(1, iterations + 1):
        for s in range(lobes):
            t = (n - 1) * lobes + s + 1
            src, dst = (t - 1, t) if keep_states else ((t - 1) % 2, t % 2)
            _convolve(Hs[src], fwd[s], rs[s], bs[s], X, recall or n == 1, Hs[dst])
        for b in range(B):
            for l in range(L):
                y = c[0]
                for i in range(C):
                    y += Hs[dst, b, l, i] * w[i]
                Ys[n - 1, b, l] = y
    if keep_states:
        return Hs, Ys
    return Hs[dst:dst + 1].copy(), Ys


@njit(cache=True)
def conv_loss_and_grads(K_L, r_L, b_L, K_R, r_R, b_R, w, c, X, Y, iterations, lobes, recall,
                        weights):
    """The loss (:func:`loopy_edu.sln_conv.conv_loss`) and the gradients of K_L, r_L, b_L,
    K_R, r_R, b_R, w and c (the right lobe's zero for a one-lobe net), as
    :func:`loopy_edu.sln_conv.conv_backward`."""
    Hs, Ys = conv_forward(K_L, r_L, b_L, K_R, r_R, b_R, w, c, X, iterations, lobes, recall,
                          True)
    B, L = X.shape
    k, C = K_L.shape[0], w.shape[0]
    _, back = _flat_kernels(K_L, K_R)
    gY = np.empty((iterations, B, L), X.dtype)
    loss = 0.0
    for n in range(iterations):
        for b in range(B):
            for l in range(L):
                y = Ys[n, b, l]
                loss += weights[n] * (softplus(y) - Y[b, l] * y)
                gY[n, b, l] = weights[n] * (act(y, SIGMOID) - Y[b, l]) / (B * L)
    gK = np.zeros((2, k * C, C), X.dtype)
    gr = np.zeros((2, C), X.dtype)
    gb = np.zeros((2, C), X.dtype)
    gw = np.zeros(C, X.dtype)
    gc = np.zeros(1, X.dtype)
    dH = np.zeros((B, L, C), X.dtype)
    dZ = np.empty((B, L, C), X.dtype)
    for t in range(iterations * lobes, 0, -1):
        n, s = (t - 1) // lobes + 1, (t - 1) % lobes
        ends_loop = t % lobes == 0
        for b in range(B):
            for l in range(L):
                g = gY[n - 1, b, l] if ends_loop else 0.0
                gc[0] += g
                for i in range(C):
                    h = Hs[t, b, l, i]
                    gw[i] += g * h
                    dZ[b, l, i] = (dH[b, l, i] + g * w[i]) * (1.0 - h * h)
                    gb[s, i] += dZ[b, l, i]
                    if recall or n == 1:
                        gr[s, i] += X[b, l] * dZ[b, l, i]
        flat = dZ.reshape(B * L, C)
        gK[s] += np.dot(_columns(Hs[t - 1], k).T, flat)
        dH = np.dot(_columns(dZ, k), back[s]).reshape(B, L, C)
    return (loss / (B * L), gK[0].reshape(k, C, C), gr[0], gb[0], gK[1].reshape(k, C, C),
            gr[1], gb[1], gw, gc)
