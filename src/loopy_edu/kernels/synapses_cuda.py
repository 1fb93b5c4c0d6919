"""Numba CUDA kernel for :mod:`loopy_edu.synapses` (Chapter 10): one thread per synapse, all
steps in one launch.

Thread i walks its own chain u[:, i] through every step. Neighbouring threads touch neighbouring
words of each row u[k], so the reads and writes coalesce, and the chain stays in L1/L2 between
steps.
"""
from numba import cuda

from .launch import grid_1d


@cuda.jit
def _advance(u, dt_over_C, g, steps, dws):
    i = cuda.grid(1)
    m, n = u.shape
    if i < n:
        for t in range(steps):
            below = 0.0                                   # f_0 = 0
            here = u[0, i]
            for k in range(m):
                deeper = u[k + 1, i] if k + 1 < m else 0.0    # u_{m+1} = 0: the leak
                flux = g[k] * (here - deeper)
                u[k, i] = here + dt_over_C[k] * (below - flux)
                below, here = flux, deeper
            if dws.shape[0] > 0:
                u[0, i] += dws[t, i]


def advance(u, dt_over_C, g, steps, dws):
    """Same contract as :func:`loopy_edu.synapses.advance_numpy`: u (m, n) updated in place."""
    d_u = cuda.to_device(u)
    blocks, threads = grid_1d(u.shape[1])
    _advance[blocks, threads](d_u, cuda.to_device(dt_over_C), cuda.to_device(g), steps,
                              cuda.to_device(dws))
    d_u.copy_to_host(u)                               # the host array is the source of truth
