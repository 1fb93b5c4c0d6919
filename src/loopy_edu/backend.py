"""Choosing where a hot loop runs: ``"numpy"`` (the readable reference), ``"numba"`` (CPU
kernels, the default) or ``"cuda"`` (Numba CUDA kernels; under ``NUMBA_ENABLE_CUDASIM=1`` they
run in the simulator).

The compiled kernels of an idea live in ``loopy_edu/kernels/<idea>_numba.py`` and
``<idea>_cuda.py``; :func:`kernels` is the one place that picks and imports them, so importing
``loopy_edu`` never compiles anything or touches CUDA, and the CUDA backend is needed only by
those who ask for it.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

from .checks import check_choice

BACKENDS = ("numpy", "numba", "cuda")
DEFAULT = "numba"
CUDA_HINT = ('the CUDA backend is an optional extra: pip install "loopy_edu[cuda]" '
             '(from a checkout: pip install ".[cuda]")')


def _cuda_module():
    """numba-cuda's ``numba.cuda``, or None when numba-cuda is not installed."""
    try:
        from numba import cuda
    except ImportError:
        return None
    # Numba itself still ships a deprecated numba.cuda ("Built-in"); only numba-cuda's is
    # supported.
    return cuda if getattr(cuda, "implementation", None) == "NVIDIA" else None


def cuda_available() -> bool:
    """True when a CUDA device, or Numba's CUDA simulator, can run kernels.

    Returns
    -------
    bool
        False also when numba-cuda is not installed.
    """
    cuda = _cuda_module()
    return cuda is not None and bool(cuda.is_available())


def simulated() -> bool:
    """True when CUDA kernels run in Numba's simulator (set ``NUMBA_ENABLE_CUDASIM=1`` first).

    Returns
    -------
    bool
        Whether the environment variable ``NUMBA_ENABLE_CUDASIM`` is ``"1"``.
    """
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"


def check_backend(backend: str) -> str:
    """Validate a ``backend=`` argument; the cuda choice also needs numba-cuda and a GPU or the
    simulator.

    Parameters
    ----------
    backend : str
        ``"numpy"``, ``"numba"`` or ``"cuda"``.

    Returns
    -------
    str
        ``backend`` itself.

    Raises
    ------
    ValueError
        If ``backend`` is not one of the three names.
    RuntimeError
        If it is ``"cuda"`` and numba-cuda is missing (the message says how to install the
        extra), or no GPU or simulator can run kernels.
    """
    check_choice(backend, "backend", BACKENDS)
    if backend == "cuda" and _cuda_module() is None:
        raise RuntimeError(f"backend: 'cuda' needs the numba-cuda package; {CUDA_HINT}, "
                           "or use 'numba' or 'numpy'")
    if backend == "cuda" and not cuda_available():
        raise RuntimeError(
            "backend: 'cuda' needs an NVIDIA GPU with a working driver, or Numba's CUDA "
            "simulator (export NUMBA_ENABLE_CUDASIM=1 before starting Python); use 'numba' "
            "or 'numpy' instead"
        )
    return backend


def kernels(idea: str, backend: str) -> ModuleType:
    """The compiled kernels of ``idea`` (e.g. ``"rnn"``) for ``backend`` ``"numba"`` or
    ``"cuda"``: the module ``loopy_edu.kernels.<idea>_<backend>``, imported on first use.

    Parameters
    ----------
    idea : str
        The module of the NumPy reference, e.g. ``"mlp"`` or ``"rtrl"``.
    backend : str
        ``"numba"`` or ``"cuda"`` (the ``"numpy"`` backend has no kernels).

    Returns
    -------
    module
        ``loopy_edu.kernels.<idea>_<backend>``.

    Raises
    ------
    ValueError
        If ``backend`` is not ``"numba"`` or ``"cuda"``.
    """
    check_choice(backend, "backend", BACKENDS[1:])
    return importlib.import_module(f"loopy_edu.kernels.{idea}_{backend}")


def available_backends() -> tuple[str, ...]:
    """The backends that can run on this machine, fastest-first order not implied.

    Returns
    -------
    tuple of str
        ``("numpy", "numba")``, and ``"cuda"`` when :func:`cuda_available`.
    """
    return tuple(b for b in BACKENDS if b != "cuda" or cuda_available())
