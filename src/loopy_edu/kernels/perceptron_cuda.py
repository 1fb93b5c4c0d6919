"""Numba CUDA kernel for :mod:`loopy_edu.perceptron`.

Rosenblatt's rule is sequential over samples: each decision needs the weights left by the
previous update. So a single block runs the whole loop; its threads split the feature dimension,
add their partial dot products in shared memory (a tree reduction), and meet at a barrier
between samples.
"""
import numpy as np
from numba import cuda, float64

from .cuda_reduce import block_sum
from .launch import BLOCK_1D


@cuda.jit
def _epochs(w, b, X, y, orders, updated, ran):
    t = cuda.threadIdx.x
    T = cuda.blockDim.x                        # a power of two, at most BLOCK_1D
    partial = cuda.shared.array(BLOCK_1D, float64)
    n_in = X.shape[1]
    n_run = orders.shape[0]
    for e in range(orders.shape[0]):
        mistakes = 0                           # every thread counts the same decisions
        for k in range(orders.shape[1]):
            i = orders[e, k]
            s = b[0] if t == 0 else 0.0        # thread 0 also adds the bias
            for j in range(t, n_in, T):        # this thread's share of w·x_i
                s += X[i, j] * w[j]
            partial[t] = s
            score = block_sum(partial, t, T)
            # score = w·x_i + b. Each thread updates only its own share of w and thread 0 alone
            # touches b, so the update itself needs no barrier.
            if y[i] * score <= 0:
                for j in range(t, n_in, T):
                    w[j] += y[i] * X[i, j]
                if t == 0:
                    b[0] += y[i]
                    updated[e, k] = 1
                mistakes += 1
            # All have read the score before the next sample writes partial.
            cuda.syncthreads()
        if mistakes == 0:
            n_run = e + 1
            break
    if t == 0:
        ran[0] = n_run


def rosenblatt_epochs(w, b, X, y, orders, updated):
    """Same contract as :func:`loopy_edu.perceptron.rosenblatt_epochs` (w, b and updated are
    written back)."""
    threads = 1
    while threads < min(X.shape[1], BLOCK_1D):
        threads *= 2
    dw, db, dupdated = cuda.to_device(w), cuda.to_device(b), cuda.to_device(updated)
    ran = cuda.device_array(1, dtype=np.int64)
    _epochs[1, threads](dw, db, cuda.to_device(X), cuda.to_device(y), cuda.to_device(orders),
                        dupdated, ran)
    w[:] = dw.copy_to_host()
    b[:] = db.copy_to_host()
    updated[:] = dupdated.copy_to_host()
    return int(ran.copy_to_host()[0])
