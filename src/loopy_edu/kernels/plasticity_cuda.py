"""Numba CUDA kernels for :mod:`loopy_edu.plasticity`: a pass of the loopy network with an
unsupervised local rule on.

Each time step is two launches with one thread per unit: the first computes every unit's
summed input x_t, output and state h_t from h_{t-1}; the second applies the rule to every
synapse of the unit's row (and its normalisation, threshold, gain and bias). Every synapse of
row i belongs to thread i, so no two threads write one weight, and the launch boundaries are
the barriers that make h_t and the new weights visible before the next step reads them. The
states are double-buffered: h_{t-1} and h_t swap at each step. The sequences run one after the
other, as in the NumPy reference. Codes as in :mod:`loopy_edu.kernels.plasticity_numba`.

The host function takes NumPy arrays, updates ``data``, ``b_rec``, ``gain`` and ``theta`` in
place and returns the sums of h and h², like the Numba kernel.
"""
import numpy as np
from numba import cuda

from . import plasticity_rule
from .launch import grid_1d
from .scalar_cuda import act as _act


@cuda.jit
def _step(data, indptr, indices, drive, gain, b_rec, alpha, code, h_prev, x, y, h, sums):
    # Unit i's step from h_prev; drive (N,) holds W_in u_t; sums (N, 2) collects h and h².
    i = cuda.grid(1)
    if i < h.shape[0]:
        s = 0.0
        for e in range(indptr[i], indptr[i + 1]):
            s += data[e] * h_prev[indices[e]]
        x[i] = s + drive[i]
        u = gain[i] * x[i] + b_rec[i]
        y[i] = _act(u, code)
        h[i] = (1 - alpha[i]) * h_prev[i] + alpha[i] * y[i]
        sums[i, 0] += h[i]
        sums[i, 1] += h[i] * h[i]


_update_unit = cuda.jit(device=True)(plasticity_rule.update_unit)


@cuda.jit
def _update(data, indptr, indices, h_prev, x, y, h, gain, b_rec, theta, target, rule, eta,
            tau, mu, sigma, norm):
    # The rule on row i's synapses, or on unit i's gain and bias: one thread per unit.
    i = cuda.grid(1)
    if i < h.shape[0]:
        _update_unit(i, data, indptr, indices, h_prev, x, y, h, gain, b_rec, theta, target,
                     rule, eta, tau, mu, sigma, norm)


def plastic_pass(data, indptr, indices, W_in, b_rec, gain, theta, target, xs, alpha, code,
                 rule, eta, tau, mu, sigma, norm):
    """The Numba kernel's ``plastic_pass`` on the GPU: updates ``data``, ``b_rec``, ``gain``
    and ``theta`` in place and returns the sums of h and h² over the pass."""
    T, B, n_in = xs.shape
    N = b_rec.shape[0]
    blocks, threads = grid_1d(N)
    drive = np.dot(xs.reshape(T * B, n_in), W_in.T).reshape(T, B, N)   # W_in u_t, fixed
    d_data, d_gain, d_b, d_theta = (cuda.to_device(a) for a in (data, gain, b_rec, theta))
    d_indptr, d_indices = cuda.to_device(indptr), cuda.to_device(indices)
    d_alpha, d_target, d_drive = (cuda.to_device(a) for a in (alpha, target, drive))
    d_x, d_y = cuda.device_array(N, data.dtype), cuda.device_array(N, data.dtype)
    sums = cuda.to_device(np.zeros((N, 2)))
    for b in range(B):
        h_prev, h = (cuda.to_device(np.zeros(N, data.dtype)) for _ in range(2))
        for t in range(T):
            _step[blocks, threads](d_data, d_indptr, d_indices, d_drive[t, b], d_gain, d_b,
                                   d_alpha, code, h_prev, d_x, d_y, h, sums)
            _update[blocks, threads](d_data, d_indptr, d_indices, h_prev, d_x, d_y, h, d_gain,
                                     d_b, d_theta, d_target, rule, eta, tau, mu, sigma, norm)
            h_prev, h = h, h_prev
    for d, a in ((d_data, data), (d_gain, gain), (d_b, b_rec), (d_theta, theta)):
        d.copy_to_host(a)
    total, squares = sums.copy_to_host().sum(axis=0)
    return total, squares
