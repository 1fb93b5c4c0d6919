"""The scalar functions of :mod:`loopy_edu.kernels.scalar` compiled as CUDA device functions,
once, for every CUDA kernel module to import."""
from numba import cuda

from . import scalar

act = cuda.jit(device=True)(scalar.act)
act_grad = cuda.jit(device=True)(scalar.act_grad)
row_loss = cuda.jit(device=True)(scalar.row_loss)
softplus = cuda.jit(device=True)(scalar.softplus)
