"""Numba CPU kernels for :mod:`loopy_edu.online_readout`: the sample loops of LMS/NLMS and RLS,
with the same host signatures as the NumPy references (``lms`` and ``RLS.fit``'s loop)."""
import math

import numpy as np
from numba import njit


@njit(cache=True)
def lms(W, X, Y, eta, normalized, eps):
    """One pass of (N)LMS over the rows of X (n, M), Y (n, n_out), in place on W (n_out, M);
    returns the a-priori errors (n, n_out)."""
    n, M = X.shape
    n_out = W.shape[0]
    errors = np.empty((n, n_out), dtype=W.dtype)
    for s in range(n):
        z = X[s]
        step = eta
        if normalized:
            power = 0.0
            for j in range(M):
                power += z[j] * z[j]
            step = eta / (eps + power)
        for i in range(n_out):
            y = 0.0
            for j in range(M):
                y += W[i, j] * z[j]
            e = Y[s, i] - y
            errors[s, i] = e
            c = step * e
            for j in range(M):
                W[i, j] += c * z[j]
    return errors


@njit(cache=True)
def rls(W, P, X, Y):
    """One pass of RLS over the rows of X (n, M), Y (n, n_out), in place on W (n_out, M) and
    the symmetric P (M, M); returns the a-priori errors (n, n_out)."""
    n, M = X.shape
    n_out = W.shape[0]
    errors = np.empty((n, n_out), dtype=W.dtype)
    k = np.empty(M, dtype=W.dtype)
    g = np.empty(M, dtype=W.dtype)
    for s in range(n):
        z = X[s]
        Pz = np.dot(P, z)                   # BLAS gemv: the O(M²) read of P
        denom = 1.0 + np.dot(z, Pz)
        root = math.sqrt(denom)
        for j in range(M):
            k[j] = Pz[j] / denom
            g[j] = Pz[j] / root
        for i in range(n_out):
            e = Y[s, i] - np.dot(W[i], z)
            errors[s, i] = e
            for j in range(M):
                W[i, j] += e * k[j]
        for i in range(M):
            gi = g[i]
            for j in range(M):
                P[i, j] -= gi * g[j]
    return errors
