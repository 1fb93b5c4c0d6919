"""The scalar functions of :mod:`loopy_edu.kernels.scalar` compiled for the Numba CPU kernels,
once, for every kernel module to import; inlined, since they sit in the innermost loops."""
from numba import njit

from . import scalar

act = njit(cache=True, inline="always")(scalar.act)
act_grad = njit(cache=True, inline="always")(scalar.act_grad)
row_loss = njit(cache=True, inline="always")(scalar.row_loss)
softplus = njit(cache=True, inline="always")(scalar.softplus)
