"""Numba CPU kernel for :mod:`loopy_edu.linear`: the whole gradient-descent loop in one compiled
call, so a step costs a few hundred nanoseconds on a small problem instead of the microseconds
NumPy spends dispatching each array operation."""
import numpy as np
from numba import njit


@njit(cache=True)
def _descend(W, b, X, Y, lr, steps, path_W, path_b):
    B, n_in = X.shape
    n_out = W.shape[0]
    record = path_W.shape[0] > 0
    losses = np.empty(steps)
    R = np.empty((B, n_out), dtype=X.dtype)          # residuals ŷ − y
    for t in range(steps):
        if record:
            path_W[t] = W
            path_b[t] = b
        loss = 0.0
        for i in range(B):
            for j in range(n_out):
                s = b[j]
                for k in range(n_in):
                    s += X[i, k] * W[j, k]
                R[i, j] = s - Y[i, j]
                loss += R[i, j] * R[i, j]
        losses[t] = 0.5 * loss / B
        if not np.isfinite(losses[t]):
            # Diverged: stop before updating, like the reference.
            return losses[:t + 1]
        for j in range(n_out):
            for k in range(n_in):
                g = 0.0
                for i in range(B):
                    g += R[i, j] * X[i, k]
                W[j, k] -= lr * g / B
            g = 0.0
            for i in range(B):
                g += R[i, j]
            b[j] -= lr * g / B
    if record:
        path_W[steps] = W
        path_b[steps] = b
    return losses


def gradient_descent(W, b, X, Y, lr, steps, path_W, path_b):
    """Run ``steps`` steps on C-contiguous W (n_out, n_in) and b (n_out,) in place; return the
    losses, cut after the first non-finite one. Non-empty ``path_W`` (steps + 1, n_out, n_in)
    and ``path_b`` (steps + 1, n_out) receive the parameters visited."""
    return _descend(W, b, X, Y, lr, steps, path_W, path_b)
