"""Numba CPU kernel for :mod:`loopy_edu.plasticity`: a pass of the loopy network with an
unsupervised local rule on, updating the synapses (and gains, biases, thresholds) at every step.

The graph comes as CSR arrays: ``data`` (nnz,) the weights, ``indptr`` and ``indices``
unsigned. Rule codes are the positions in :data:`loopy_edu.plasticity.RULES`, norm codes
those in :data:`loopy_edu.plasticity.NORMS`; the rule's step for one unit is the shared
:func:`loopy_edu.kernels.plasticity_rule.update_unit`.
"""
import numpy as np
from numba import njit

from . import plasticity_rule
from .scalar_numba import act as _act

_update_unit = njit(cache=True, inline="always")(plasticity_rule.update_unit)


@njit(cache=True)
def plastic_pass(data, indptr, indices, W_in, b_rec, gain, theta, target, xs, alpha, code,
                 rule, eta, tau, mu, sigma, norm):
    """The NumPy reference's ``plastic_pass``, loop by loop; updates ``data``, ``b_rec``,
    ``gain`` and ``theta`` in place and returns the sums of h and h² over the pass."""
    T, B, n_in = xs.shape
    N = b_rec.shape[0]
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
                y[i] = _act(u, code)
                h[i] = (1 - alpha[i]) * h_prev[i] + alpha[i] * y[i]
                total += h[i]
                squares += h[i] * h[i]
            for i in range(N):
                _update_unit(i, data, indptr, indices, h_prev, x, y, h, gain, b_rec, theta,
                             target, rule, eta, tau, mu, sigma, norm)
    return total, squares
