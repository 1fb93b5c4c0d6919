"""Numba CUDA kernels for :mod:`loopy_edu.sln` (Chapter 15): the tall SLN's dialogue and BPTT.

As for ACT (``halting_cuda``): one block per example, its threads splitting each lobe's H
units; the two lobes take turns inside the block, so the right lobe reads the left's answer of
the same loop after a barrier. The stop rule and the loss of one example are done by thread 0.
Going back, each loop costs the right lobe, then the left; the answers q = σ(y) each lobe heard
carry ∂L/∂y between them. The weight gradients are sums over examples and loops
(:func:`loopy_edu.kernels.cuda_reduce.outer_sum`). Arguments as in ``sln_numba``.
"""
import numpy as np
from numba import cuda, float64

from .cuda_reduce import block_dot, block_sum, cell_back, outer_sum
from .launch import BLOCK_1D
from .scalar_cuda import act, softplus
from ..activations import CODES

SIGMOID, TANH = CODES["sigmoid"], CODES["tanh"]
FIXED, AGREE, HALT = 0, 1, 2


@cuda.jit(device=True)
def cell_state(W_x, W_h, U, bias, X, S, heard, row, b, n, t, T):
    # S[b, n] of one lobe at loop n (1-based), from S[b, n-1] and what it heard, heard[b, row]
    # (m,) through U (H, m); the block's threads share the units.
    H, n_in = W_h.shape[0], X.shape[1]
    for i in range(t, H, T):
        z = bias[i] + (W_x[i, n_in] if n == 1 else 0.0)
        for j in range(n_in):
            z += W_x[i, j] * X[b, j]
        for j in range(H):
            z += W_h[i, j] * S[b, n - 1, j]
        for o in range(U.shape[1]):
            z += U[i, o] * heard[b, row, o]
        S[b, n, i] = act(z, TANH)
    cuda.syncthreads()


@cuda.jit(device=True)
def _lobe(W_x, W_h, U, bias, V, c, X, S, Q_heard, heard_row, Y, Q, part, b, n, t, T):
    # Loop n (1-based) of one lobe of example b: S[b, n] from S[b, n-1] and the other lobe's
    # answer Q_heard[b, heard_row], then Y[b, n-1] and Q[b, n].
    cell_state(W_x, W_h, U, bias, X, S, Q_heard, heard_row, b, n, t, T)
    for o in range(V.shape[0]):
        y = block_dot(part, V[o], S, b, n, t, T) + c[o]
        if t == 0:
            Y[b, n - 1, o] = y
            Q[b, n, o] = act(y, SIGMOID)
    cuda.syncthreads()


@cuda.jit(device=True)
def _heard(part, dZ, U, b, n, o, t, T):
    # Σ_i dZ[b, n, i] U[i, o]: what the lobe that heard an answer sends back to output o.
    acc = 0.0
    for i in range(t, dZ.shape[2], T):
        acc += dZ[b, n, i] * U[i, o]
    part[t] = acc
    total = block_sum(part, t, T)
    cuda.syncthreads()
    return total


@cuda.jit
def _dialogues(W_xL, W_hL, U_L, b_L, V_L, c_L, W_xR, W_hR, U_R, b_R, V_R, c_R, w_halt,
               b_halt, X, Y, max_loops, stop, tol, epsilon, tau, left_weight, grads, SL, SR,
               QL, QR, YL, YR, A, N, R, P, out, loops_out, loss, dYL, dYR, dA, dZL, dZR, gRL):
    b = cuda.blockIdx.x
    t, T = cuda.threadIdx.x, cuda.blockDim.x
    B, H, n_out = X.shape[0], W_hL.shape[0], V_L.shape[0]
    part = cuda.shared.array(BLOCK_1D, float64)
    past = 0.0
    used = max_loops
    for n in range(1, max_loops + 1):
        _lobe(W_xL, W_hL, U_L, b_L, V_L, c_L, X, SL, QR, n - 1, YL, QL, part, b, n, t, T)
        _lobe(W_xR, W_hR, U_R, b_R, V_R, c_R, X, SR, QL, n, YR, QR, part, b, n, t, T)
        if stop == HALT:
            a = block_dot(part, w_halt[:H], SL, b, n, t, T) + \
                block_dot(part, w_halt[H:], SR, b, n, t, T) + b_halt[0]
            if t == 0:
                A[b, n - 1] = a
        if t == 0 and N[b] == 0:
            done = n == max_loops
            if stop == AGREE:
                gap = 0.0
                for o in range(n_out):
                    ans = 1.0 if QR[b, n, o] > 0.5 else 0.0
                    gap = max(gap, abs(QL[b, n, o] - ans), abs(QR[b, n, o] - ans))
                done = done or gap <= tol
            elif stop == HALT:
                h = act(A[b, n - 1], SIGMOID)
                if past + h >= 1.0 - epsilon:
                    done = True
                elif not done:
                    past += h
            if done:
                N[b] = n
                R[b] = 1.0 - past if stop == HALT else 0.0
        cuda.syncthreads()
        if N[b] > 0:
            used = n
            break
    if t == 0:
        # The loops' weights p, the mixed outputs, the loss and ∂L/∂y of the mixture.
        last = N[b] - 1
        loss[b] = tau * (N[b] + R[b]) if stop == HALT else 0.0
        loops_out[b] = N[b] + R[b]
        for n in range(N[b]):
            P[b, n] = (1.0 if n == last else 0.0) if stop != HALT else (
                R[b] if n == last else act(A[b, n], SIGMOID))
        for o in range(n_out):
            yL = 0.0
            yR = 0.0
            for n in range(N[b]):
                yL += P[b, n] * YL[b, n, o]
                yR += P[b, n] * YR[b, n, o]
            out[b, o] = act(yR, SIGMOID)
            loss[b] += softplus(yR) - Y[b, o] * yR
            loss[b] += left_weight * (softplus(yL) - Y[b, o] * yL)
            gRL[b, 0, o] = (out[b, o] - Y[b, o]) / B
            gRL[b, 1, o] = left_weight * (act(yL, SIGMOID) - Y[b, o]) / B
        if stop == HALT:
            dR = tau / B
            for o in range(n_out):
                dR += YR[b, last, o] * gRL[b, 0, o] + YL[b, last, o] * gRL[b, 1, o]
            for n in range(last):
                dp = 0.0
                for o in range(n_out):
                    dp += YR[b, n, o] * gRL[b, 0, o] + YL[b, n, o] * gRL[b, 1, o]
                h = act(A[b, n], SIGMOID)
                dA[b, n, 0] = (dp - dR) * h * (1.0 - h)
    cuda.syncthreads()
    if not grads:
        return
    for n in range(used - 1, -1, -1):
        # The right lobe spoke last: the left heard its answer q^R_n at loop n + 1.
        for o in range(n_out):
            back = _heard(part, dZL, U_L, b, n + 1, o, t, T) if n + 1 < used else 0.0
            if t == 0:
                q = QR[b, n + 1, o]
                dYR[b, n, o] = P[b, n] * gRL[b, 0, o] + back * q * (1.0 - q)
        cuda.syncthreads()
        cell_back(V_R, W_hR, w_halt, H, SR, dZR, dYR, dA, b, n, used, t, T)
        for o in range(n_out):
            back = _heard(part, dZR, U_R, b, n, o, t, T)
            if t == 0:
                q = QL[b, n + 1, o]
                dYL[b, n, o] = P[b, n] * gRL[b, 1, o] + back * q * (1.0 - q)
        cuda.syncthreads()
        cell_back(V_L, W_hL, w_halt, 0, SL, dZL, dYL, dA, b, n, used, t, T)


def _run(weights, X, Y, max_loops, stop, tol, epsilon, tau, left_weight, grads):
    B, n_in = X.shape
    H, n_out = weights[1].shape[0], weights[4].shape[0]
    dt = X.dtype
    M = max_loops
    d_w = [cuda.to_device(np.ascontiguousarray(w)) for w in weights]
    d_X, d_Y = cuda.to_device(X), cuda.to_device(Y)
    zeros = lambda *shape: cuda.to_device(np.zeros(shape, dtype=dt))   # noqa: E731
    SL, SR = zeros(B, M + 1, H), zeros(B, M + 1, H)
    QL, QR = zeros(B, M + 1, n_out), zeros(B, M + 1, n_out)
    YL, YR, A = zeros(B, M, n_out), zeros(B, M, n_out), zeros(B, M)
    N = cuda.to_device(np.zeros(B, dtype=np.int64))
    R, P, out, loops = zeros(B), zeros(B, M), zeros(B, n_out), zeros(B)
    loss = cuda.to_device(np.zeros(B))
    dYL, dYR, dA = zeros(B, M, n_out), zeros(B, M, n_out), zeros(B, M, 1)
    dZL, dZR, gRL = zeros(B, M, H), zeros(B, M, H), zeros(B, 2, n_out)
    _dialogues[B, BLOCK_1D](*d_w, d_X, d_Y, max_loops, stop, tol, epsilon, tau, left_weight,
                            grads, SL, SR, QL, QR, YL, YR, A, N, R, P, out, loops, loss, dYL,
                            dYR, dA, dZL, dZR, gRL)
    if not grads:
        return out.copy_to_host(), loops.copy_to_host()
    ones = cuda.to_device(np.ones((B, 1, 1), dtype=dt))
    X3 = cuda.to_device(np.ascontiguousarray(X[:, None, :]))
    lobes = []
    # The left lobe heard q^R of the loop before (row n of QR), the right q^L of its own loop.
    for dZ, dY, S, Q, shift in ((dZL, dYL, SL, QR, 0), (dZR, dYR, SR, QL, 1)):
        gW_x = np.empty((H, n_in + 1), dtype=dt)
        gW_x[:, :n_in] = outer_sum(dZ, X3, N, 0, 0, M, H, n_in, dt)
        gW_x[:, n_in] = outer_sum(dZ, ones, N, 0, 0, 1, H, 1, dt)[:, 0]
        lobes += [gW_x, outer_sum(dZ, S, N, 1, 0, M, H, H, dt),
                  outer_sum(dZ, Q, N, 1, shift, M, H, n_out, dt),
                  outer_sum(dZ, ones, N, 0, 0, M, H, 1, dt)[:, 0],
                  outer_sum(dY, S, N, 1, 1, M, n_out, H, dt),
                  outer_sum(dY, ones, N, 0, 0, M, n_out, 1, dt)[:, 0]]
    gw_halt = np.concatenate([outer_sum(dA, SL, N, 1, 1, M, 1, H, dt)[0],
                              outer_sum(dA, SR, N, 1, 1, M, 1, H, dt)[0]])
    return (loss.copy_to_host().sum() / B, *lobes, gw_halt,
            outer_sum(dA, ones, N, 0, 0, M, 1, 1, dt)[0])


def tall_predict(*args):
    """The right lobe's answers (B, n_out) and the loops used (B,): N, or N + R for "halt".
    Arguments as :func:`loopy_edu.kernels.sln_numba.tall_forward`."""
    *weights, X, max_loops, stop, tol, epsilon = args
    Y = np.zeros((len(X), weights[4].shape[0]), dtype=X.dtype)
    return _run(weights, X, Y, max_loops, stop, tol, epsilon, 0.0, 0.0, False)


def tall_loss_and_grads(*args):
    """Same contract as :func:`loopy_edu.kernels.sln_numba.tall_loss_and_grads`."""
    *weights, X, Y, max_loops, stop, tol, epsilon, tau, left_weight = args
    return _run(weights, X, Y, max_loops, stop, tol, epsilon, tau, left_weight, True)
