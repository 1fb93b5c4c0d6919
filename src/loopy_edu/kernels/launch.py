"""Launch geometry shared by the CUDA kernels."""
from numba import config

from ..backend import simulated

# The course's networks are small, so many launches use fewer blocks than a GPU has
# multiprocessors; Numba's under-utilization warning would fire on nearly every cell of a
# chapter run on a GPU.
config.CUDA_LOW_OCCUPANCY_WARNINGS = 0

# The simulator runs every thread as a Python thread, so it gets small blocks; a GPU gets full
# warps.
BLOCK_1D = 8 if simulated() else 256
BLOCK_2D = (4, 4) if simulated() else (16, 16)


def grid_1d(n):
    """(blocks, threads) covering ``n`` items."""
    return (n + BLOCK_1D - 1) // BLOCK_1D, BLOCK_1D


def recurrence_threads(N):
    """Threads per block for a per-sequence recurrence: whole warps covering the N units, at
    most a full block (N larger than that is strided)."""
    return min(BLOCK_1D, 32 * ((N + 31) // 32))


def grid_2d(rows, cols):
    """(blocks, threads) covering a ``rows`` × ``cols`` array, one thread per entry."""
    by, bx = BLOCK_2D
    return ((rows + by - 1) // by, (cols + bx - 1) // bx), BLOCK_2D
