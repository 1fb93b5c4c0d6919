"""Numba CPU kernel for :mod:`loopy_edu.plasticity`: a pass of the loopy network with an
unsupervised local rule on, updating the synapses (and gains, biases, thresholds) at every step.

The graph comes as CSR arrays: ``data`` (nnz,) the weights, ``indptr`` and ``indices``
unsigned. Rule codes are the positions in :data:`loopy_edu.plasticity.RULES` (0 off,
1 hebbian, 2 oja, 3 anti_oja, 4 bcm, 5 ip), norm codes those in
:data:`loopy_edu.plasticity.NORMS` (0 none, 1 l1, 2 l2); activation code 3 is ``"linear"``.
"""
import numpy as np
from numba import njit

from .scalar_numba import act as _act

LINEAR = 3
HEBBIAN, OJA, ANTI_OJA, BCM, IP = 1, 2, 3, 4, 5


@njit(cache=True)
def plastic_pass(data, indptr, indices, W_in, b_rec, gain, theta, target, xs, alpha, code,
                 rule, eta, tau, mu, sigma, norm):
    """The NumPy reference's ``plastic_pass``, loop by loop; updates ``data``, ``b_rec``,
    ``gain`` and ``theta`` in place and returns the sums of h and h² over the pass."""
    T, B, n_in = xs.shape
    N = b_rec.shape[0]
    s2 = sigma * sigma
    h = np.zeros(N, dtype=data.dtype)
    h_prev = np.zeros(N, dtype=data.dtype)
    x = np.zeros(N, dtype=data.dtype)
    y = np.zeros(N, dtype=data.dtype)
    total = 0.0
    squares = 0.0
    for b in range(B):
        h[:] = 0.0
        for t in range(T):
            h_prev[:] = h
            for i in range(N):
                s = 0.0
                for e in range(indptr[i], indptr[i + 1]):
                    s += data[e] * h_prev[indices[e]]
                d = 0.0
                for c in range(n_in):
                    d += W_in[i, c] * xs[t, b, c]
                x[i] = s + d
                u = gain[i] * x[i] + b_rec[i]
                y[i] = u if code == LINEAR else _act(u, code)
                h[i] = (1 - alpha[i]) * h_prev[i] + alpha[i] * y[i]
                total += h[i]
                squares += h[i] * h[i]
            for i in range(N):
                post = h[i]
                if rule == IP:
                    d_bias = -eta * (-mu / s2 + y[i] / s2 * (2 * s2 + 1 - y[i] * y[i]
                                                             + mu * y[i]))
                    gain[i] += eta / gain[i] + d_bias * x[i]
                    b_rec[i] += d_bias
                    continue
                if rule == 0:
                    continue
                for e in range(indptr[i], indptr[i + 1]):
                    pre = h_prev[indices[e]]
                    if rule == HEBBIAN:
                        data[e] += eta * post * pre
                    elif rule == OJA:
                        data[e] += eta * post * (pre - post * data[e])
                    elif rule == ANTI_OJA:
                        data[e] += -(eta * post * (pre - post * data[e]))
                    else:
                        data[e] += eta * post * (post - theta[i]) * pre
                if rule == BCM:
                    theta[i] = theta[i] + (post * post - theta[i]) / tau
                if norm != 0:
                    have = 0.0
                    for e in range(indptr[i], indptr[i + 1]):
                        have += abs(data[e]) if norm == 1 else data[e] * data[e]
                    if norm == 2:
                        have = np.sqrt(have)
                    if have > 0:
                        scale = target[i] / have
                        for e in range(indptr[i], indptr[i + 1]):
                            data[e] *= scale
    return total, squares
