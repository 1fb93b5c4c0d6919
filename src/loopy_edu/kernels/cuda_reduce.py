"""Device helpers shared by the CUDA kernels."""
from numba import cuda


@cuda.jit(device=True)
def block_sum(partial, t, T):
    """Tree-sum ``partial[0:T]`` in shared memory and return the total; T must be a power of
    two and every thread of the block must call this (it contains barriers). ``t`` is the
    thread's index."""
    cuda.syncthreads()
    stride = T // 2
    while stride > 0:
        if t < stride:
            partial[t] += partial[t + stride]
        cuda.syncthreads()
        stride //= 2
    return partial[0]
