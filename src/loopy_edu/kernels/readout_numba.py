"""Numba CPU kernels for :mod:`loopy_edu.readout`: the outputs y_t = W_out h_t + b_out and the
masked sequence losses, shared by the compiled RNN, RTRL and LSTM kernels."""
import numpy as np
from numba import njit

from .scalar_numba import row_loss as _row_loss



@njit(cache=True)
def readout(W_out, b_out, hs):
    """ys (T, B, n_out) for hs (T, B, N)."""
    T, B, N = hs.shape
    ys = np.dot(hs.reshape(T * B, N), W_out.T)
    # A loop: Numba's broadcasting "+ b_out" is slow on these shapes.
    for r in range(T * B):
        for k in range(ys.shape[1]):
            ys[r, k] += b_out[k]
    return ys.reshape(T, B, -1)


@njit(cache=True)
def sequence_loss(ys, targets, mask, loss_code):
    """Masked loss and ∂L/∂y (T, B, n_out); loss_code 0 is "mse", 1 is "xent"
    (readout.LOSSES)."""
    T, B, _ = ys.shape
    dys = np.empty_like(ys)
    total = 0.0
    for t in range(T):
        for b in range(B):
            total += _row_loss(ys[t, b], targets[t, b], mask[t, b], B, loss_code, dys[t, b])
    return total / B, dys
