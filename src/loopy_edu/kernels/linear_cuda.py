"""Numba CUDA kernels for :mod:`loopy_edu.linear`: three launches per gradient-descent step.

Data, parameters and the loss history stay on the device for the whole run; the host queues
launches, reads the losses back every CHECK_EVERY steps and copies the parameters back at the
end. The step kernel reads the loss the reduction just wrote and skips the update once it is
non-finite, so a diverged run stops where the reference stops.
"""
import math

import numpy as np
from numba import cuda, float64

from .cuda_reduce import block_sum
from .launch import BLOCK_1D, grid_2d

CHECK_EVERY = 32


@cuda.jit
def _residuals(X, W, b, Y, R):
    # Thread (i, j): R[i, j] = Σ_k X[i, k] W[j, k] + b[j] − Y[i, j].
    i, j = cuda.grid(2)
    if i < R.shape[0] and j < R.shape[1]:
        s = b[j]
        for k in range(X.shape[1]):
            s += X[i, k] * W[j, k]
        R[i, j] = s - Y[i, j]


@cuda.jit
def _half_mean_square(R, losses, t):
    # One block: each thread sums R² over a strided share of the entries, then the block adds
    # the partial sums (BLOCK_1D is a power of two).
    part = cuda.shared.array(BLOCK_1D, float64)
    tid = cuda.threadIdx.x
    B, n_out = R.shape
    s = 0.0
    for e in range(tid, B * n_out, BLOCK_1D):
        r = R[e // n_out, e % n_out]
        s += r * r
    part[tid] = s
    total = block_sum(part, tid, BLOCK_1D)
    if tid == 0:
        losses[t] = 0.5 * total / B


@cuda.jit
def _step(R, X, W, b, lr, losses, t, path_W, path_b):
    # Thread (j, k) owns W[j, k] (k < n_in) or b[j] (k = n_in) and sums its gradient over the
    # batch.
    j, k = cuda.grid(2)
    B, n_in = X.shape
    if j < W.shape[0] and k <= n_in and math.isfinite(losses[t]):
        g = 0.0
        for i in range(B):
            g += R[i, j] * (X[i, k] if k < n_in else 1.0)
        if k < n_in:
            W[j, k] -= lr * g / B
            if path_W.shape[0] > 0:
                path_W[t + 1, j, k] = W[j, k]
        else:
            b[j] -= lr * g / B
            if path_b.shape[0] > 0:
                path_b[t + 1, j] = b[j]


def gradient_descent(W, b, X, Y, lr, steps, path_W, path_b):
    """Same contract as :func:`loopy_edu.kernels.linear_numba.gradient_descent`."""
    if path_W.shape[0] > 0:
        path_W[0], path_b[0] = W, b
    dW, db, dX, dY, dpW, dpb = (cuda.to_device(a) for a in (W, b, X, Y, path_W, path_b))
    R = cuda.device_array(Y.shape, dtype=X.dtype)
    dlosses = cuda.device_array(steps, dtype=np.float64)
    losses = np.empty(steps)
    res_grid = grid_2d(*Y.shape)
    step_grid = grid_2d(W.shape[0], W.shape[1] + 1)
    done = 0
    while done < steps:
        # Launches queue up without waiting; reading the losses back every CHECK_EVERY steps is
        # the only synchronisation, and lets a diverged run stop early.
        end = min(done + CHECK_EVERY, steps)
        for t in range(done, end):
            _residuals[res_grid](dX, dW, db, dY, R)
            _half_mean_square[1, BLOCK_1D](R, dlosses, t)
            _step[step_grid](R, dX, dW, db, lr, dlosses, t, dpW, dpb)
        losses[done:end] = dlosses[done:end].copy_to_host()
        bad = np.flatnonzero(~np.isfinite(losses[done:end]))
        if bad.size:
            losses = losses[:done + bad[0] + 1]
            break
        done = end
    dW.copy_to_host(W)
    db.copy_to_host(b)
    if path_W.shape[0] > 0:
        dpW.copy_to_host(path_W)
        dpb.copy_to_host(path_b)
    return losses
