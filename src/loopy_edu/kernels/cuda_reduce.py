"""Device helpers shared by the CUDA kernels."""
from numba import cuda

from .launch import grid_2d


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


@cuda.jit(device=True)
def block_dot(part, w, S, b, n, t, T):
    """w · S[b, n] summed over the block; every thread must call it (it has barriers)."""
    acc = 0.0
    for i in range(t, S.shape[2], T):
        acc += w[i] * S[b, n, i]
    part[t] = acc
    total = block_sum(part, t, T)
    cuda.syncthreads()              # part is reused: nobody writes it before all have read
    return total


@cuda.jit
def _outer_sum(L, Rt, N, rstep, shift, cap, out):
    # out[i, j] = Σ_b Σ_{n < min(N_b, cap)} L[b, n, i] Rt[b, n·rstep + shift, j]: every weight
    # gradient of a looping cell is one of these (rstep = 0 holds Rt's row fixed over steps).
    i, j = cuda.grid(2)
    if i < out.shape[0] and j < out.shape[1]:
        acc = 0.0
        for b in range(L.shape[0]):
            for n in range(min(N[b], cap)):
                acc += L[b, n, i] * Rt[b, n * rstep + shift, j]
        out[i, j] = acc


def outer_sum(L, Rt, N, rstep, shift, cap, rows, cols, dtype):
    """The (rows, cols) host array Σ_b Σ_{n < min(N_b, cap)} L[b, n] ⊗ Rt[b, n·rstep + shift]
    of device arrays L (B, steps, rows) and Rt (B, ·, cols): a weight gradient summed over
    examples and steps, one thread per weight, in a fixed order (no atomics)."""
    out = cuda.device_array((rows, cols), dtype=dtype)
    blocks, threads = grid_2d(rows, cols)
    _outer_sum[blocks, threads](L, Rt, N, rstep, shift, cap, out)
    return out.copy_to_host()


@cuda.jit(device=True)
def cell_back(V, W_h, w_halt, half, S, dZ, dY, dA, b, n, used, t, T):
    """One step back through a looping tanh cell, block-wide: ∂L/∂z at step n of example b
    into dZ[b, n], from ∂L/∂y (dY[b, n], complete), the halting head (dA[b, n, 0] times
    w_halt[half:]) and the next step's ∂L/∂z; ``used`` is the steps the example ran. Every
    thread must call it (it ends on a barrier)."""
    H = W_h.shape[0]
    for i in range(t, H, T):
        ds = dA[b, n, 0] * w_halt[half + i]
        for o in range(V.shape[0]):
            ds += dY[b, n, o] * V[o, i]
        if n + 1 < used:
            for j in range(H):
                ds += dZ[b, n + 1, j] * W_h[j, i]
        s = S[b, n + 1, i]
        dZ[b, n, i] = ds * (1.0 - s * s)
    cuda.syncthreads()
