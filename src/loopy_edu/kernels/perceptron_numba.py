"""Numba CPU kernel for :mod:`loopy_edu.perceptron`: Rosenblatt's rule with the whole loop over
epochs and samples compiled, so each visit costs a dot product and nothing more."""
from numba import njit


@njit(cache=True)
def rosenblatt_epochs(w, b, X, y, orders, updated):
    # Same contract as perceptron.rosenblatt_epochs; the dot product accumulates in float64.
    n_in = X.shape[1]
    for e in range(orders.shape[0]):
        mistakes = 0
        for k in range(orders.shape[1]):
            i = orders[e, k]
            s = 0.0
            for j in range(n_in):
                s += X[i, j] * w[j]
            if y[i] * (s + b[0]) <= 0:
                for j in range(n_in):
                    w[j] += y[i] * X[i, j]
                b[0] += y[i]
                updated[e, k] = 1
                mistakes += 1
        if mistakes == 0:
            return e + 1
    return orders.shape[0]
