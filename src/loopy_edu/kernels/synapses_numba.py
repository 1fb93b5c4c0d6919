"""Numba CPU kernel for :mod:`loopy_edu.synapses` (Chapter 10): blocks of synapses run all their
steps at once.

The chains do not interact, so a block of synapses is copied into a small buffer that stays in
L1 cache, advanced through every step, and written back. Within a step the innermost loop runs
across the block's synapses, not along a chain: those updates are independent, so the compiler
can use SIMD lanes and need not wait for one step's result before starting the next synapse's.
"""
import numpy as np
from numba import njit

BLOCK = 256


@njit(cache=True)
def _advance(u, dt_over_C, g, steps, dws):
    m, n = u.shape
    has_input = dws.shape[0] > 0
    chain = np.empty((m, BLOCK), dtype=u.dtype)
    below = np.empty(BLOCK, dtype=u.dtype)
    for i0 in range(0, n, BLOCK):
        nb = min(BLOCK, n - i0)
        for k in range(m):
            for j in range(nb):
                chain[k, j] = u[k, i0 + j]
        for t in range(steps):
            below[:nb] = 0.0                              # f_0 = 0
            for k in range(m - 1):
                for j in range(nb):
                    flux = g[k] * (chain[k, j] - chain[k + 1, j])   # chain[k + 1] is still old
                    chain[k, j] += dt_over_C[k] * (below[j] - flux)
                    below[j] = flux
            for j in range(nb):                           # u_{m+1} = 0: the leak
                flux = g[m - 1] * chain[m - 1, j]
                chain[m - 1, j] += dt_over_C[m - 1] * (below[j] - flux)
            if has_input:
                for j in range(nb):
                    chain[0, j] += dws[t, i0 + j]
        for k in range(m):
            for j in range(nb):
                u[k, i0 + j] = chain[k, j]


def advance(u, dt_over_C, g, steps, dws):
    """Same contract as :func:`loopy_edu.synapses.advance_numpy`: u (m, n) updated in place."""
    _advance(u, dt_over_C, g, steps, dws)
