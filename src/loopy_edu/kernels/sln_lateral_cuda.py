"""Numba CUDA kernels for :mod:`loopy_edu.sln_lateral` (Chapter 15): the actor-critic dialogue
and its BPTT.

As for the tall SLN: one block per example, its threads splitting each lobe's units; the actor
and the critic take turns inside the block, the critic reading the actor's answer of the same
loop after a barrier, the actor the critic's score of the loop before. Scores, targets and the
loss of one example are done by thread 0. Going back, each loop costs the critic, then the
actor; the answer q_n and the score c_n carry ∂L between them. The weight gradients are sums
over examples and loops (:func:`loopy_edu.kernels.cuda_reduce.outer_sum`). Arguments as in
``sln_lateral_numba``.
"""
import numpy as np
from numba import cuda, float64

from .cuda_reduce import block_dot, cell_back, outer_sum
from .launch import BLOCK_1D
from .scalar_cuda import act, softplus
from .sln_cuda import cell_state
from ..activations import CODES

SIGMOID = CODES["sigmoid"]


@cuda.jit
def _dialogues(W_xA, W_hA, u_A, b_A, V_A, c_A, W_xC, W_hC, U_C, b_C, w_C, b_z, X, Y,
               max_loops, theta, critic_weight, grads, SA, SC, Q, C, N, out, score, loss,
               dYs, dZ, dZA, dZC, zero):
    # u_A arrives as (H, 1) and w_C as (1, K), so that both lobes share _cell and cell_back;
    # C is (B, M + 1, 1) with C[b, 0] = c_0 = 0; zero is a (B, M, 1) array of zeros.
    b = cuda.blockIdx.x
    t, T = cuda.threadIdx.x, cuda.blockDim.x
    B, n_out = X.shape[0], V_A.shape[0]
    part = cuda.shared.array(BLOCK_1D, float64)
    scale = 1.0 / (B * max_loops)
    used = max_loops
    if t == 0:
        loss[b] = 0.0
    for n in range(1, max_loops + 1):
        cell_state(W_xA, W_hA, u_A, b_A, X, SA, C, n - 1, b, n, t, T)
        for o in range(n_out):
            y = block_dot(part, V_A[o], SA, b, n, t, T) + c_A[o]
            if t == 0:
                Q[b, n - 1, o] = act(y, SIGMOID)
                loss[b] += softplus(y) - Y[b, o] * y
                dYs[b, n - 1, o] = (Q[b, n - 1, o] - Y[b, o]) * scale
        cuda.syncthreads()
        cell_state(W_xC, W_hC, U_C, b_C, X, SC, Q, n - 1, b, n, t, T)
        z = block_dot(part, w_C[0], SC, b, n, t, T) + b_z[0]
        if t == 0:
            c = act(z, SIGMOID)
            C[b, n, 0] = c
            right = 1.0
            for o in range(n_out):
                if (Q[b, n - 1, o] > 0.5) != (Y[b, o] > 0.5):
                    right = 0.0
            loss[b] += critic_weight * (softplus(z) - right * z)
            dZ[b, n - 1, 0] = critic_weight * (c - right) * scale
            if N[b] == 0 and (c >= theta or n == max_loops):
                N[b] = n
                score[b] = c
                for o in range(n_out):
                    out[b, o] = Q[b, n - 1, o]
        cuda.syncthreads()
        if not grads and N[b] > 0:
            return
    for n in range(used - 1, -1, -1):
        # The critic spoke last in loop n; the actor's loop n + 1 heard its score c_n.
        back = block_dot(part, u_A[:, 0], dZA, b, n + 1, t, T) if n + 1 < used else 0.0
        if t == 0:
            c = C[b, n + 1, 0]
            dZ[b, n, 0] += back * c * (1.0 - c)
        cuda.syncthreads()
        cell_back(w_C, W_hC, w_C[0], 0, SC, dZC, dZ, zero, b, n, used, t, T)
        for o in range(n_out):
            back = block_dot(part, U_C[:, o], dZC, b, n, t, T)
            if t == 0:
                q = Q[b, n, o]
                dYs[b, n, o] += back * q * (1.0 - q)
        cuda.syncthreads()
        cell_back(V_A, W_hA, u_A[:, 0], 0, SA, dZA, dYs, zero, b, n, used, t, T)


def _run(weights, X, Y, max_loops, theta, critic_weight, grads):
    B, n_in = X.shape
    H, K, n_out = weights[1].shape[0], weights[7].shape[0], weights[4].shape[0]
    dt = X.dtype
    M = max_loops
    weights = list(weights)
    weights[2], weights[10] = weights[2][:, None], weights[10][None, :]
    d_w = [cuda.to_device(np.ascontiguousarray(w)) for w in weights]
    d_X, d_Y = cuda.to_device(X), cuda.to_device(Y)
    zeros = lambda *shape: cuda.to_device(np.zeros(shape, dtype=dt))   # noqa: E731
    SA, SC = zeros(B, M + 1, H), zeros(B, M + 1, K)
    Q, C = zeros(B, M, n_out), zeros(B, M + 1, 1)
    N = cuda.to_device(np.zeros(B, dtype=np.int64))
    out, score, loss = zeros(B, n_out), zeros(B), cuda.to_device(np.zeros(B))
    dYs, dZ, dZA, dZC = zeros(B, M, n_out), zeros(B, M, 1), zeros(B, M, H), zeros(B, M, K)
    _dialogues[B, BLOCK_1D](*d_w, d_X, d_Y, max_loops, theta, critic_weight, grads, SA, SC, Q,
                            C, N, out, score, loss, dYs, dZ, dZA, dZC, zeros(B, M, 1))
    if not grads:
        return out.copy_to_host(), N.copy_to_host().astype(dt), score.copy_to_host()
    every = cuda.to_device(np.full(B, M, dtype=np.int64))     # training runs every loop
    ones = cuda.to_device(np.ones((B, 1, 1), dtype=dt))
    X3 = cuda.to_device(np.ascontiguousarray(X[:, None, :]))
    lobes = []
    # The actor heard c_{n-1} (row n of C), the critic q_n (row n of Q).
    for dZ_, dOut, S, heard, units in ((dZA, dYs, SA, C, H), (dZC, dZ, SC, Q, K)):
        k, m = dOut.shape[2], heard.shape[2]
        gW_x = np.empty((units, n_in + 1), dtype=dt)
        gW_x[:, :n_in] = outer_sum(dZ_, X3, every, 0, 0, M, units, n_in, dt)
        gW_x[:, n_in] = outer_sum(dZ_, ones, every, 0, 0, 1, units, 1, dt)[:, 0]
        lobes += [gW_x, outer_sum(dZ_, S, every, 1, 0, M, units, units, dt),
                  outer_sum(dZ_, heard, every, 1, 0, M, units, m, dt),
                  outer_sum(dZ_, ones, every, 0, 0, M, units, 1, dt)[:, 0],
                  outer_sum(dOut, S, every, 1, 1, M, k, units, dt),
                  outer_sum(dOut, ones, every, 0, 0, M, k, 1, dt)[:, 0]]
    lobes[2], lobes[10] = lobes[2][:, 0], lobes[10][0]
    return (loss.copy_to_host().sum() / (B * M), *lobes)


def lateral_predict(*args):
    """The actor's answers (B, n_out) at the first loop whose score reaches θ (or the cap),
    the loops used (B,) and the scores there (B,). Arguments: the weights, X, max_loops,
    theta."""
    *weights, X, max_loops, theta = args
    Y = np.zeros((len(X), weights[4].shape[0]), dtype=X.dtype)
    return _run(weights, X, Y, max_loops, theta, 0.0, False)


def lateral_loss_and_grads(*args):
    """Same contract as :func:`loopy_edu.kernels.sln_lateral_numba.lateral_loss_and_grads`."""
    *weights, X, Y, max_loops, critic_weight = args
    return _run(weights, X, Y, max_loops, 0.5, critic_weight, True)
