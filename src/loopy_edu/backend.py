"""Choosing where a hot loop runs: ``"numpy"`` (the readable reference), ``"numba"`` (CPU kernels, the
default) or ``"cuda"`` (Numba CUDA kernels; under ``NUMBA_ENABLE_CUDASIM=1`` they run in the simulator).

The compiled kernels of an idea live in ``loopy_edu/kernels/<idea>_numba.py`` and ``<idea>_cuda.py``;
:func:`kernels` is the one place that picks and imports them, so importing ``loopy_edu`` never compiles
anything or touches CUDA, and the CUDA backend is needed only by those who ask for it.
"""
import importlib
import os

from .checks import check_choice

BACKENDS = ("numpy", "numba", "cuda")
DEFAULT = "numba"
CUDA_HINT = 'the CUDA backend is an optional extra: pip install "loopy_edu[cuda]"'


def _cuda_module():
    """numba.cuda, or None when numba-cuda is not installed."""
    try:
        from numba import cuda
    except ImportError:
        return None
    return cuda


def cuda_available():
    """True when a CUDA device, or Numba's CUDA simulator, can run kernels."""
    cuda = _cuda_module()
    return cuda is not None and bool(cuda.is_available())


def simulated():
    """True when CUDA kernels run in Numba's simulator (set ``NUMBA_ENABLE_CUDASIM=1`` before import)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"


def check_backend(backend):
    """Validate a ``backend=`` argument; the cuda choice also needs numba-cuda and a GPU or the
    simulator."""
    check_choice(backend, "backend", BACKENDS)
    if backend == "cuda" and _cuda_module() is None:
        raise RuntimeError(f"backend: 'cuda' needs the numba-cuda package; {CUDA_HINT}, or use 'numba' "
                           "or 'numpy'")
    if backend == "cuda" and not cuda_available():
        raise RuntimeError(
            "backend: 'cuda' needs an NVIDIA GPU with a working driver, or Numba's CUDA simulator "
            "(export NUMBA_ENABLE_CUDASIM=1 before starting Python); use 'numba' or 'numpy' instead"
        )
    return backend


def kernels(idea, backend):
    """The compiled kernels of ``idea`` (e.g. ``"rnn"``) for ``backend`` ``"numba"`` or ``"cuda"``:
    the module ``loopy_edu.kernels.<idea>_<backend>``, imported on first use."""
    check_choice(backend, "backend", BACKENDS[1:])
    return importlib.import_module(f"loopy_edu.kernels.{idea}_{backend}")


def available_backends():
    """The backends that can run on this machine, fastest-first order not implied."""
    return tuple(b for b in BACKENDS if b != "cuda" or cuda_available())
