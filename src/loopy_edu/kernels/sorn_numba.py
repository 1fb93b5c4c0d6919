"""Numba CPU kernel for :mod:`loopy_edu.sorn`: the SORN's steps and plasticity in one loop.

The E -> E graph comes as CSR arrays: ``data`` (nnz,) the weights, ``indptr`` (N_e + 1,) and
``indices`` (nnz,) unsigned. The kernel does the NumPy reference's arithmetic in the same
order for the plasticity (elementwise updates, row sums added in storage order), so while the
binary states agree the weights and thresholds agree to the bit.
"""
import numpy as np
from numba import njit

PRUNE = 1e-10


@njit(cache=True)
def run(data, indptr, indices, W_ei, W_ie, W_eu, T_e, T_i, x, y, us, eta_stdp, eta_ip, h_ip,
        input_gain, stdp, ip, sn):
    """States (T, N_e) uint8 for inputs us (T, n_in); updates data, T_e, x and y in place."""
    n_e, n_i = W_ei.shape
    n_in = W_eu.shape[1]
    states = np.empty((us.shape[0], n_e), dtype=np.uint8)
    x_new = np.empty(n_e)
    y_new = np.empty(n_i)
    for t in range(us.shape[0]):
        for i in range(n_e):
            exc = 0.0
            for e in range(indptr[i], indptr[i + 1]):
                exc += data[e] * x[indices[e]]
            inh = 0.0
            for m in range(n_i):
                inh += W_ei[i, m] * y[m]
            drive = 0.0
            for c in range(n_in):
                drive += W_eu[i, c] * us[t, c]
            x_new[i] = 1.0 if exc - inh - T_e[i] + input_gain * drive >= 0 else 0.0
        for m in range(n_i):
            a = 0.0
            for i in range(n_e):
                a += W_ie[m, i] * x_new[i]
            y_new[m] = 1.0 if a - T_i[m] >= 0 else 0.0
        if ip:
            for i in range(n_e):
                T_e[i] = T_e[i] + eta_ip * (x_new[i] - h_ip)
        for i in range(n_e):
            if stdp:
                for e in range(indptr[i], indptr[i + 1]):
                    if data[e] > 0:
                        j = indices[e]
                        w = data[e] + eta_stdp * (x_new[i] * x[j] - x[i] * x_new[j])
                        data[e] = w if w >= PRUNE else 0.0
            if sn:
                total = 0.0
                for e in range(indptr[i], indptr[i + 1]):
                    total += data[e]
                if total > 0:
                    for e in range(indptr[i], indptr[i + 1]):
                        data[e] = data[e] / total
        for i in range(n_e):
            x[i] = x_new[i]
            states[t, i] = np.uint8(x_new[i])
        for m in range(n_i):
            y[m] = y_new[m]
    return states
