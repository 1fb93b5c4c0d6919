"""Numba CPU kernels for :mod:`loopy_edu.sln_lateral` (Chapter 15): the actor-critic dialogue
and its BPTT in one compiled call each, shaped like the NumPy reference (one BLAS product per
lobe and loop for the whole batch, fused loops for the rest).

Arguments: the twelve weights in the order of ``LateralSLN.shapes()`` (the actor's ``W_x_A,
W_h_A, u_A, b_A, V_A, c_A``, then the critic's ``W_x_C, W_h_C, U_C, b_C, w_C, b_z``), then X
(B, n_in).
"""
import numpy as np
from numba import njit

from ..activations import CODES
from .scalar_numba import act, softplus
from .sln_numba import drive, lobe_grads

SIGMOID, TANH = CODES["sigmoid"], CODES["tanh"]


@njit(cache=True)
def _tanh_into(S, n, z, drive, W_x):
    # S[n] = tanh(z + drive (+ the first-loop flag's column when n = 1)).
    n_in = W_x.shape[1] - 1
    for b in range(z.shape[0]):
        for i in range(z.shape[1]):
            zi = z[b, i] + drive[b, i]
            if n == 1:
                zi += W_x[i, n_in]
            S[n, b, i] = act(zi, TANH)


@njit(cache=True)
def lateral_forward(W_xA, W_hA, u_A, b_A, V_A, c_A, W_xC, W_hC, U_C, b_C, w_C, b_z, X,
                    max_loops, theta, stop_early):
    """Same results as :func:`loopy_edu.sln_lateral.lateral_forward`, as a tuple: SA, SC,
    Ys, Q, Z, C, N, cut at the last loop run."""
    B = X.shape[0]
    H, K, n_out = W_hA.shape[0], W_hC.shape[0], V_A.shape[0]
    dt = X.dtype
    driveA, driveC = drive(W_xA, b_A, X), drive(W_xC, b_C, X)
    W_hAT, W_hCT = np.ascontiguousarray(W_hA.T), np.ascontiguousarray(W_hC.T)
    V_AT, U_CT = np.ascontiguousarray(V_A.T), np.ascontiguousarray(U_C.T)
    SA = np.zeros((max_loops + 1, B, H), dt)
    SC = np.zeros((max_loops + 1, B, K), dt)
    Ys = np.empty((max_loops, B, n_out), dt)
    Q = np.empty_like(Ys)
    Z = np.empty((max_loops, B), dt)
    C = np.empty_like(Z)
    N = np.zeros(B, dtype=np.int64)
    loops = max_loops
    for n in range(1, max_loops + 1):
        z = np.dot(SA[n - 1], W_hAT)
        if n > 1:
            for b in range(B):
                for i in range(H):
                    z[b, i] += u_A[i] * C[n - 2, b]           # the score heard, c_{n-1}
        _tanh_into(SA, n, z, driveA, W_xA)
        Ys[n - 1] = np.dot(SA[n], V_AT)
        for b in range(B):
            for o in range(n_out):
                Ys[n - 1, b, o] += c_A[o]
                Q[n - 1, b, o] = act(Ys[n - 1, b, o], SIGMOID)
        _tanh_into(SC, n, np.dot(SC[n - 1], W_hCT) + np.dot(Q[n - 1], U_CT), driveC, W_xC)
        Z[n - 1] = np.dot(SC[n], w_C)
        running = 0
        for b in range(B):
            Z[n - 1, b] += b_z[0]
            C[n - 1, b] = act(Z[n - 1, b], SIGMOID)
            if N[b] == 0 and (C[n - 1, b] >= theta or n == max_loops):
                N[b] = n
            if N[b] == 0:
                running += 1
        if stop_early and running == 0:
            loops = n
            break
    return (SA[:loops + 1], SC[:loops + 1], Ys[:loops], Q[:loops], Z[:loops], C[:loops], N)


@njit(cache=True)
def lateral_loss_and_grads(W_xA, W_hA, u_A, b_A, V_A, c_A, W_xC, W_hC, U_C, b_C, w_C, b_z, X,
                           Y, max_loops, critic_weight):
    """The loss over all ``max_loops`` loops and the gradient of every weight, in the order
    of ``LateralSLN.shapes()``, as :func:`loopy_edu.sln_lateral.lateral_backward`."""
    SA, SC, Ys, Q, Z, C, N = lateral_forward(W_xA, W_hA, u_A, b_A, V_A, c_A, W_xC, W_hC, U_C,
                                             b_C, w_C, b_z, X, max_loops, 0.5, False)
    M, B, n_out = Ys.shape
    H, K = W_hA.shape[0], W_hC.shape[0]
    scale = 1.0 / (B * M)
    dYs = np.empty_like(Ys)
    dZ = np.empty((M, B, 1), X.dtype)
    loss = 0.0
    for n in range(M):
        for b in range(B):
            right = 1.0
            for o in range(n_out):
                y = Ys[n, b, o]
                loss += softplus(y) - Y[b, o] * y
                dYs[n, b, o] = (Q[n, b, o] - Y[b, o]) * scale
                if (Q[n, b, o] > 0.5) != (Y[b, o] > 0.5):
                    right = 0.0
            loss += critic_weight * (softplus(Z[n, b]) - right * Z[n, b])
            dZ[n, b, 0] = critic_weight * (C[n, b] - right) * scale
    dZA = np.zeros((M, B, H), X.dtype)
    dZC = np.zeros((M, B, K), X.dtype)
    for n in range(M - 1, -1, -1):
        # The critic spoke last in loop n; the actor's loop n + 1 heard its score.
        if n + 1 < M:
            back = np.dot(dZA[n + 1], u_A)
            dsC = np.dot(dZC[n + 1], W_hC)
        else:
            back = np.zeros(B, X.dtype)
            dsC = np.zeros((B, K), X.dtype)
        for b in range(B):
            c = C[n, b]
            dZ[n, b, 0] += back[b] * c * (1.0 - c)
            for i in range(K):
                s = SC[n + 1, b, i]
                dZC[n, b, i] = (dZ[n, b, 0] * w_C[i] + dsC[b, i]) * (1.0 - s * s)
        heard = np.dot(dZC[n], U_C)
        for b in range(B):
            for o in range(n_out):
                q = Q[n, b, o]
                dYs[n, b, o] += heard[b, o] * q * (1.0 - q)
        dsA = np.dot(dYs[n], V_A)
        if n + 1 < M:
            dsA += np.dot(dZA[n + 1], W_hA)
        for b in range(B):
            for i in range(H):
                s = SA[n + 1, b, i]
                dZA[n, b, i] = dsA[b, i] * (1.0 - s * s)
    heardA = np.zeros((M, B, 1), X.dtype)                      # c_{n-1}, with c_0 = 0
    heardA[1:, :, 0] = C[:-1]
    gW_xA, gW_hA, gu_A, gb_A, gV_A, gc_A = lobe_grads(dZA, dYs, SA, heardA, X)
    gW_xC, gW_hC, gU_C, gb_C, gw_C, gb_z = lobe_grads(dZC, dZ, SC, Q, X)
    return (loss / B / M, gW_xA, gW_hA, gu_A[:, 0].copy(), gb_A, gV_A, gc_A, gW_xC, gW_hC,
            gU_C, gb_C, gw_C[0].copy(), gb_z)
