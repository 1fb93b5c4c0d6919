"""Test set-up: CUDA kernels run in Numba's simulator unless a GPU is present (must precede numba import)."""
import os
import shutil

if shutil.which("nvidia-smi") is None:
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
