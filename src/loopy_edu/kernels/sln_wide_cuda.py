"""Numba CUDA kernels for :mod:`loopy_edu.sln_wide` (Chapter 15): the wide SLN's soft pass
with its BPTT, and its hard pass.

As for the tall SLN (``sln_cuda``): one block per example, its threads splitting the H units
(and, for the gates, the 3 + 2E logits, each one thread's dot product). The softmaxes, the
output weights p_t and the loss of one example are a few dozen scalars, done by thread 0.
Going back, each loop's ∂L/∂z of the gates and experts stays in device memory, and the weight
gradients are sums over examples and loops (:func:`loopy_edu.kernels.cuda_reduce.outer_sum`),
in a fixed order. Arguments as in ``sln_wide_numba``.
"""
import math

import numpy as np
from numba import cuda

from .cuda_reduce import outer_sum
from .launch import BLOCK_1D
from .scalar_cuda import act, softplus
from ..activations import CODES

SIGMOID, TANH = CODES["sigmoid"], CODES["tanh"]
OUTPUT = 2


@cuda.jit(device=True)
def _token_in(Hs, X, Vin, b, t, tid, T):
    # v_t = [h_{t-1}, x_t] of example b into Vin[b, t-1] (x_t = 0 after the last token).
    H = Hs.shape[2]
    for j in range(tid, Vin.shape[2], T):
        if j < H:
            Vin[b, t - 1, j] = Hs[b, t - 1, j]
        else:
            Vin[b, t - 1, j] = X[b, t - 1, j - H] if t <= X.shape[1] else 0.0
    cuda.syncthreads()


@cuda.jit(device=True)
def _log(q):
    # log q, 0 where a probability underflowed to 0 (where q log q and q ∂H/∂q are 0).
    return math.log(q) if q > 0 else 0.0


@cuda.jit(device=True)
def _logit(W, bias, Vin, b, n, k):
    z = bias[k]
    for j in range(W.shape[1]):
        z += W[k, j] * Vin[b, n, j]
    return z


@cuda.jit(device=True)
def _softmax(q, b, n):
    # softmax of q[b, n, :] in place (thread 0).
    top = q[b, n, 0]
    for k in range(1, q.shape[2]):
        top = max(top, q[b, n, k])
    total = 0.0
    for k in range(q.shape[2]):
        q[b, n, k] = math.exp(q[b, n, k] - top)
        total += q[b, n, k]
    for k in range(q.shape[2]):
        q[b, n, k] /= total


@cuda.jit(device=True)
def _softmax_back(q, dq, b, n):
    # ∂L/∂z of q[b, n] = softmax(z), from ∂L/∂q in dq[b, n], in place (thread 0).
    dot = 0.0
    for k in range(q.shape[2]):
        dot += q[b, n, k] * dq[b, n, k]
    for k in range(q.shape[2]):
        dq[b, n, k] = q[b, n, k] * (dq[b, n, k] - dot)


@cuda.jit(device=True)
def _experts(W, bias, Vin, GAM, U, side, b, n, i):
    # Lobe ``side``'s proposal u_i = Σ_e γ_e tanh(W_e v + b_e)_i, keeping each expert's output.
    E = W.shape[0]
    u = 0.0
    for e in range(E):
        z = bias[e, i]
        for j in range(W.shape[2]):
            z += W[e, i, j] * Vin[b, n, j]
        U[side * E + e, b, n, i] = act(z, TANH)
        u += GAM[side, b, n, e] * U[side * E + e, b, n, i]
    return u


@cuda.jit(device=True)
def _dv(G, A_L, A_R, W_L, W_R, dZG, dZA, dZ, b, n, j):
    # ∂L/∂v_j at loop n: through the main gate, both expert gates and every expert.
    E = W_L.shape[0]
    acc = 0.0
    for r in range(3):
        acc += dZG[b, n, r] * G[r, j]
    for e in range(E):
        acc += dZA[0, b, n, e] * A_L[e, j] + dZA[1, b, n, e] * A_R[e, j]
        for i in range(W_L.shape[1]):
            acc += dZ[e, b, n, i] * W_L[e, i, j] + dZ[E + e, b, n, i] * W_R[e, i, j]
    return acc


@cuda.jit
def _soft(G, g, A_L, a_L, W_L, b_L, A_R, a_R, W_R, b_R, V, c, X, Y, M, entropy_cost,
          ponder_cost, Hs, Vin, PI, GAM, U, Ys, P, GY, DL, loss, dH, dY, dZG, dZA, dZ):
    b = cuda.blockIdx.x
    tid, T = cuda.threadIdx.x, cuda.blockDim.x
    B, H, n_out, E = X.shape[0], V.shape[1], V.shape[0], W_L.shape[0]
    survive = 1.0
    for t in range(1, M + 1):
        n = t - 1
        _token_in(Hs, X, Vin, b, t, tid, T)
        for r in range(tid, 3 + 2 * E, T):
            if r < 3:
                PI[b, n, r] = _logit(G, g, Vin, b, n, r)
            elif r < 3 + E:
                GAM[0, b, n, r - 3] = _logit(A_L, a_L, Vin, b, n, r - 3)
            else:
                GAM[1, b, n, r - 3 - E] = _logit(A_R, a_R, Vin, b, n, r - 3 - E)
        cuda.syncthreads()
        if tid == 0:
            _softmax(PI, b, n)
            _softmax(GAM[0], b, n)
            _softmax(GAM[1], b, n)
        cuda.syncthreads()
        for i in range(tid, H, T):
            uL = _experts(W_L, b_L, Vin, GAM, U, 0, b, n, i)
            uR = _experts(W_R, b_R, Vin, GAM, U, 1, b, n, i)
            Hs[b, t, i] = PI[b, n, 0] * uL + PI[b, n, 1] * uR + PI[b, n, 2] * Hs[b, n, i]
        cuda.syncthreads()
        for o in range(tid, n_out, T):
            y = c[o]
            for i in range(H):
                y += V[o, i] * Hs[b, t, i]
            Ys[b, n, o] = y
        if tid == 0:
            lam = PI[b, n, OUTPUT] if t < M else 1.0          # the cap takes the remainder
            DL[b, n] = survive                                 # S_t, for the backward pass
            P[b, n] = lam * survive
            survive *= 1.0 - lam
        cuda.syncthreads()
    if tid == 0:
        loss[b] = 0.0
        for n in range(M):
            loss[b] += ponder_cost * (n + 1) * P[b, n]
            for k in range(3):
                loss[b] -= entropy_cost * PI[b, n, k] * _log(PI[b, n, k])
            for side in range(2):
                for e in range(E):
                    q = GAM[side, b, n, e]
                    loss[b] -= entropy_cost * q * _log(q)
        for o in range(n_out):
            y = 0.0
            for n in range(M):
                y += P[b, n] * Ys[b, n, o]
            loss[b] += softplus(y) - Y[b, o] * y
            GY[b, o] = (act(y, SIGMOID) - Y[b, o]) / B
        # ∂L/∂λ_t = S_t (∂L/∂p_t − J_{t+1}); J_t = λ_t ∂L/∂p_t + (1 − λ_t) J_{t+1}.
        J = 0.0
        for n in range(M - 1, -1, -1):
            dp = ponder_cost * (n + 1) / B
            for o in range(n_out):
                dp += Ys[b, n, o] * GY[b, o]
            lam = PI[b, n, OUTPUT]
            if n == M - 1:
                J = dp
                DL[b, n] = 0.0                                 # λ_M is not used
            else:
                DL[b, n] *= dp - J
                J = lam * dp + (1.0 - lam) * J
    cuda.syncthreads()
    sharpen = entropy_cost / B
    for n in range(M - 1, -1, -1):
        for o in range(tid, n_out, T):
            dY[b, n, o] = P[b, n] * GY[b, o]
        cuda.syncthreads()
        for i in range(tid, H, T):
            for o in range(n_out):
                dH[b, i] += dY[b, n, o] * V[o, i]
        cuda.syncthreads()
        for r in range(tid, 3 + 2 * E, T):
            acc = DL[b, n] if r == OUTPUT else 0.0
            # the entropy's −β log q (the −β of ∂H/∂q cancels in the softmax's backward)
            acc -= sharpen * _log(PI[b, n, r] if r < 3 else
                                  GAM[(r - 3) // E, b, n, (r - 3) % E])
            for i in range(H):
                if r == OUTPUT:
                    acc += dH[b, i] * Hs[b, n, i]
                elif r < 2:                         # dπ_k = dh · u_k
                    for e in range(E):
                        acc += dH[b, i] * GAM[r, b, n, e] * U[r * E + e, b, n, i]
                else:                               # dγ_{k,e} = π_k dh · U_{k,e}
                    side, e = (r - 3) // E, (r - 3) % E
                    acc += PI[b, n, side] * dH[b, i] * U[side * E + e, b, n, i]
            if r < 3:
                dZG[b, n, r] = acc
            else:
                dZA[(r - 3) // E, b, n, (r - 3) % E] = acc
        cuda.syncthreads()
        if tid == 0:
            _softmax_back(PI, dZG, b, n)
            _softmax_back(GAM[0], dZA[0], b, n)
            _softmax_back(GAM[1], dZA[1], b, n)
        for i in range(tid, H, T):
            for side in range(2):
                for e in range(E):
                    u = U[side * E + e, b, n, i]
                    dZ[side * E + e, b, n, i] = (GAM[side, b, n, e] * PI[b, n, side]
                                                 * dH[b, i] * (1.0 - u * u))
        cuda.syncthreads()
        for j in range(tid, H, T):
            dH[b, j] = PI[b, n, OUTPUT] * dH[b, j] + _dv(G, A_L, A_R, W_L, W_R, dZG, dZA,
                                                         dZ, b, n, j)
        cuda.syncthreads()


def wide_loss_and_grads(*args):
    """Same contract as :func:`loopy_edu.kernels.sln_wide_numba.wide_loss_and_grads`."""
    *weights, X, Y, M, entropy_cost, ponder_cost = args
    B = X.shape[0]
    E, H, D = weights[4].shape
    n_out, dt = weights[10].shape[0], X.dtype
    d_w = [cuda.to_device(np.ascontiguousarray(w)) for w in weights]
    zeros = lambda *shape: cuda.to_device(np.zeros(shape, dtype=dt))   # noqa: E731
    Hs, Vin, PI, GAM = zeros(B, M + 1, H), zeros(B, M, D), zeros(B, M, 3), zeros(2, B, M, E)
    U, Ys, P, GY, DL = zeros(2 * E, B, M, H), zeros(B, M, n_out), zeros(B, M), \
        zeros(B, n_out), zeros(B, M)
    loss, dH, dY, dZG = zeros(B), zeros(B, H), zeros(B, M, n_out), zeros(B, M, 3)
    dZA, dZ = zeros(2, B, M, E), zeros(2 * E, B, M, H)
    _soft[B, BLOCK_1D](*d_w, cuda.to_device(X), cuda.to_device(Y), M, entropy_cost,
                       ponder_cost, Hs, Vin, PI, GAM, U, Ys, P, GY, DL, loss, dH, dY, dZG,
                       dZA, dZ)
    N = cuda.to_device(np.full(B, M, dtype=np.int64))
    ones = cuda.to_device(np.ones((B, 1, 1), dtype=dt))

    def pair(dz, rows):
        # The gradient of a layer read from v, and of its bias.
        return (outer_sum(dz, Vin, N, 1, 0, M, rows, D, dt),
                outer_sum(dz, ones, N, 0, 0, M, rows, 1, dt)[:, 0])

    grads = [*pair(dZG, 3)]
    for side in range(2):
        experts = [pair(dZ[side * E + e], H) for e in range(E)]
        grads += [*pair(dZA[side], E), np.array([w for w, _ in experts]),
                  np.array([bias for _, bias in experts])]
    grads += [outer_sum(dY, Hs, N, 1, 1, M, n_out, H, dt),
              outer_sum(dY, ones, N, 0, 0, M, n_out, 1, dt)[:, 0]]
    return (loss.copy_to_host().sum() / B, *grads)


@cuda.jit
def _hard(G, g, A_L, a_L, W_L, b_L, A_R, a_R, W_R, b_R, V, c, X, M, Hc, Vin, out, loops,
          lobe, expert):
    b = cuda.blockIdx.x
    tid, T = cuda.threadIdx.x, cuda.blockDim.x
    H, D = W_L.shape[1], W_L.shape[2]
    for t in range(1, M + 1):
        for j in range(tid, D, T):
            if j < H:
                Vin[b, 0, j] = Hc[b, 0, j]
            else:
                Vin[b, 0, j] = X[b, t - 1, j - H] if t <= X.shape[1] else 0.0
        cuda.syncthreads()
        if tid == 0:
            # argmax of the logits, the first of equals (as np.argmax).
            choice, top = 0, _logit(G, g, Vin, b, 0, 0)
            for k in range(1, 3):
                z = _logit(G, g, Vin, b, 0, k)
                if z > top:
                    choice, top = k, z
            lobe[b, t - 1] = choice
            if choice == OUTPUT:
                loops[b] = t
            else:
                A, a = (A_L, a_L) if choice == 0 else (A_R, a_R)
                e, top = 0, _logit(A, a, Vin, b, 0, 0)
                for k in range(1, A.shape[0]):
                    z = _logit(A, a, Vin, b, 0, k)
                    if z > top:
                        e, top = k, z
                expert[b, t - 1] = e
        cuda.syncthreads()
        if loops[b] > 0:
            break
        e = expert[b, t - 1]
        for i in range(tid, H, T):
            W, bias = (W_L, b_L) if lobe[b, t - 1] == 0 else (W_R, b_R)
            z = bias[e, i]
            for j in range(D):
                z += W[e, i, j] * Vin[b, 0, j]
            Hc[b, 0, i] = act(z, TANH)
        cuda.syncthreads()
    for o in range(tid, V.shape[0], T):
        y = c[o]
        for i in range(H):
            y += V[o, i] * Hc[b, 0, i]
        out[b, o] = act(y, SIGMOID)
    if tid == 0 and loops[b] == 0:
        loops[b] = M


def wide_predict(*args):
    """Same contract as :func:`loopy_edu.kernels.sln_wide_numba.wide_predict`."""
    *weights, X, M = args
    B = X.shape[0]
    E, H, D = weights[4].shape
    d_w = [cuda.to_device(np.ascontiguousarray(w)) for w in weights]
    dt = X.dtype
    Hc, Vin = cuda.to_device(np.zeros((B, 1, H), dt)), cuda.to_device(np.zeros((B, 1, D), dt))
    out = cuda.to_device(np.zeros((B, weights[10].shape[0]), dt))
    loops = cuda.to_device(np.zeros(B, dtype=np.int64))
    lobe = cuda.to_device(np.full((B, M), -1, dtype=np.int64))
    expert = cuda.to_device(np.full((B, M), -1, dtype=np.int64))
    _hard[B, BLOCK_1D](*d_w, cuda.to_device(X), M, Hc, Vin, out, loops, lobe, expert)
    return (out.copy_to_host(), loops.copy_to_host(), lobe.copy_to_host(),
            expert.copy_to_host())
