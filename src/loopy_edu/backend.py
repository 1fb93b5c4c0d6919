"""Choosing where a hot loop runs: ``"numpy"`` (the readable reference), ``"numba"`` (CPU kernels, the
default) or ``"cuda"`` (Numba CUDA kernels; under ``NUMBA_ENABLE_CUDASIM=1`` they run in the simulator).
"""
import os

from .checks import check_choice

BACKENDS = ("numpy", "numba", "cuda")
DEFAULT = "numba"


def cuda_available():
    """True when a CUDA device, or Numba's CUDA simulator, can run kernels."""
    try:
        from numba import cuda
    except ImportError:  # numba-cuda not installed
        return False
    return bool(cuda.is_available())


def simulated():
    """True when CUDA kernels run in Numba's simulator (set ``NUMBA_ENABLE_CUDASIM=1`` before import)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"


def check_backend(backend):
    """Validate a ``backend=`` argument; the cuda choice also needs a GPU or the simulator."""
    check_choice(backend, "backend", BACKENDS)
    if backend == "cuda" and not cuda_available():
        raise RuntimeError(
            "backend: 'cuda' needs an NVIDIA GPU with a working driver, or Numba's CUDA simulator "
            "(export NUMBA_ENABLE_CUDASIM=1 before starting Python); use 'numba' or 'numpy' instead"
        )
    return backend


def available_backends():
    """The backends that can run on this machine, fastest-first order not implied."""
    return tuple(b for b in BACKENDS if b != "cuda" or cuda_available())
