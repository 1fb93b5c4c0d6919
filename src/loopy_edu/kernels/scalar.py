"""Scalar activations and their derivatives for compiled kernels, selected by the integer codes of
:data:`loopy_edu.activations.CODES` (0 sigmoid, 1 tanh, 2 relu). Plain Python functions, so the Numba
CPU kernels (via ``njit``) and the CUDA kernels (via ``cuda.jit(device=True)``) compile the same source."""
import math


def act(z, code):
    if code == 0:
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)
    if code == 1:
        return math.tanh(z)
    return z if z > 0 else 0.0 * z


def act_grad(a, code):
    """Derivative expressed through the activation's output ``a``."""
    if code == 0:
        return a * (1.0 - a)
    if code == 1:
        return 1.0 - a * a
    return 1.0 if a > 0 else 0.0
