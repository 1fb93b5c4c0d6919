"""Numba CUDA kernels for :mod:`loopy_edu.sln_conv` (Chapter 15): the looped convolutional
SLN's loops and BPTT.

One block per example, its threads splitting the L × C entries of each state; a barrier after
every convolution, since the next one reads the neighbours' channels. Going back, each thread
gathers ∂L/∂H at its entry from the next convolution's ∂L/∂Z (the flipped, transposed kernel
of :func:`loopy_edu.sln_conv.conv1d_back`) and stores ∂L/∂Z of every convolution; the weight
gradients are then sums over examples, convolutions and positions, one thread per weight, in a
fixed order (no atomics). Arguments as in ``sln_conv_numba``.
"""
import numpy as np
from numba import cuda

from .launch import BLOCK_1D, grid_1d, grid_2d
from .scalar_cuda import act, softplus
from ..activations import CODES

SIGMOID, TANH = CODES["sigmoid"], CODES["tanh"]


@cuda.jit
def _loops(K_L, r_L, b_L, K_R, r_R, b_R, w, c, X, Y, iterations, lobes, recall, weights,
           grads, Hs, Ys, gY, dZs, loss):
    b = cuda.blockIdx.x
    t0, T = cuda.threadIdx.x, cuda.blockDim.x
    B, L = X.shape
    k, C = K_L.shape[0], w.shape[0]
    p = k // 2
    dst = 0
    for n in range(1, iterations + 1):
        for s in range(lobes):
            t = (n - 1) * lobes + s + 1
            src, dst = (t - 1, t) if grads else ((t - 1) % 2, t % 2)
            K, r, bias = (K_L, r_L, b_L) if s == 0 else (K_R, r_R, b_R)
            for e in range(t0, L * C, T):
                l, o = e // C, e % C
                z = bias[o] + (r[o] * X[b, l] if recall or n == 1 else 0.0)
                for j in range(k):
                    m = l + j - p
                    if 0 <= m < L:
                        for i in range(C):
                            z += K[j, i, o] * Hs[b, src, m, i]
                Hs[b, dst, l, o] = act(z, TANH)
            cuda.syncthreads()
        for l in range(t0, L, T):
            y = c[0]
            for i in range(C):
                y += w[i] * Hs[b, dst, l, i]
            Ys[b, n - 1, l] = y
        cuda.syncthreads()
    if not grads:
        return
    for l in range(t0, L, T):
        for n in range(iterations):
            y = Ys[b, n, l]
            gY[b, n, l] = weights[n] * (act(y, SIGMOID) - Y[b, l]) / (B * L)
    if t0 == 0:
        acc = 0.0
        for n in range(iterations):
            for l in range(L):
                acc += weights[n] * (softplus(Ys[b, n, l]) - Y[b, l] * Ys[b, n, l])
        loss[b] = acc
    cuda.syncthreads()
    last = iterations * lobes
    for t in range(last, 0, -1):
        n = (t - 1) // lobes + 1
        K = K_L if t % lobes == 0 else K_R          # the lobe of convolution t + 1
        for e in range(t0, L * C, T):
            l, i = e // C, e % C
            d = gY[b, n - 1, l] * w[i] if t % lobes == 0 else 0.0
            if t < last:
                for j in range(k):
                    m = l - j + p
                    if 0 <= m < L:
                        for o in range(C):
                            d += dZs[b, t, m, o] * K[j, i, o]
            h = Hs[b, t, l, i]
            dZs[b, t - 1, l, i] = d * (1.0 - h * h)
        cuda.syncthreads()


@cuda.jit
def _lobe_grads(Hs, dZs, X, s, lobes, recall, k, gK, gr, gb):
    # Row j C + i, column o: Σ_b Σ_{t of lobe s} Σ_l H_{t-1}[b, l + j − p, i] dZ_t[b, l, o];
    # row k C: the input weight r; row k C + 1: the bias.
    row, o = cuda.grid(2)
    C = gK.shape[1]
    if row >= k * C + 2 or o >= C:
        return
    B, T, L = dZs.shape[0], dZs.shape[1], dZs.shape[2]
    p = k // 2
    acc = 0.0
    for b in range(B):
        for t in range(s + 1, T + 1, lobes):
            if row == k * C and not (recall or t <= lobes):
                continue
            for l in range(L):
                g = dZs[b, t - 1, l, o]
                if row < k * C:
                    m = l + row // C - p
                    if 0 <= m < L:
                        acc += Hs[b, t - 1, m, row % C] * g
                else:
                    acc += (X[b, l] if row == k * C else 1.0) * g
    if row < k * C:
        gK[row, o] = acc
    elif row == k * C:
        gr[o] = acc
    else:
        gb[o] = acc


@cuda.jit
def _readout_grads(Hs, gY, lobes, out):
    # out[i] = Σ_b Σ_n Σ_l gY[b, n, l] H_{n lobes}[b, l, i] for i < C, and out[C] = Σ gY.
    i = cuda.grid(1)
    C = Hs.shape[3]
    if i > C:
        return
    acc = 0.0
    for b in range(gY.shape[0]):
        for n in range(gY.shape[1]):
            for l in range(gY.shape[2]):
                acc += gY[b, n, l] * (Hs[b, (n + 1) * lobes, l, i] if i < C else 1.0)
    out[i] = acc


def _run(weights, X, Y, iterations, lobes, recall, loop_weights, grads):
    B, L = X.shape
    k, C, dt = weights[0].shape[0], weights[6].shape[0], X.dtype
    T = iterations * lobes
    zeros = lambda *shape: cuda.to_device(np.zeros(shape, dtype=dt))   # noqa: E731
    d_w = [cuda.to_device(np.ascontiguousarray(a)) for a in weights]
    d_X = cuda.to_device(X)
    Hs, Ys = zeros(B, T + 1 if grads else 2, L, C), zeros(B, iterations, L)
    gY, dZs, loss = zeros(B, iterations, L), zeros(B, T if grads else 1, L, C), zeros(B)
    _loops[B, BLOCK_1D](*d_w, d_X, cuda.to_device(Y), iterations, lobes, recall,
                        cuda.to_device(loop_weights), grads, Hs, Ys, gY, dZs, loss)
    if not grads:
        return Hs, Ys
    out = []
    for s in range(2):
        gK, gr, gb = (cuda.to_device(np.zeros(shape, dtype=dt)) for shape in
                      ((k * C, C), (C,), (C,)))
        if s < lobes:
            blocks, threads = grid_2d(k * C + 2, C)
            _lobe_grads[blocks, threads](Hs, dZs, d_X, s, lobes, recall, k, gK, gr, gb)
        out += [gK.copy_to_host().reshape(k, C, C), gr.copy_to_host(), gb.copy_to_host()]
    readout = cuda.to_device(np.zeros(C + 1, dtype=dt))
    blocks, threads = grid_1d(C + 1)
    _readout_grads[blocks, threads](Hs, gY, lobes, readout)
    readout = readout.copy_to_host()
    return (loss.copy_to_host().sum() / (B * L), *out, readout[:C], readout[C:])


def conv_forward(*args):
    """Same contract as :func:`loopy_edu.kernels.sln_conv_numba.conv_forward`."""
    *weights, X, iterations, lobes, recall, keep_states = args
    Hs, Ys = _run(weights, X, np.zeros_like(X), iterations, lobes, recall,
                  np.zeros(iterations, X.dtype), keep_states)
    Hs = Hs.copy_to_host().transpose(1, 0, 2, 3)
    last = (iterations * lobes) % 2
    return (Hs if keep_states else Hs[last:last + 1]), Ys.copy_to_host().transpose(1, 0, 2)


def conv_loss_and_grads(*args):
    """Same contract as :func:`loopy_edu.kernels.sln_conv_numba.conv_loss_and_grads`."""
    *weights, X, Y, iterations, lobes, recall, loop_weights = args
    return _run(weights, X, Y, iterations, lobes, recall, loop_weights, True)
