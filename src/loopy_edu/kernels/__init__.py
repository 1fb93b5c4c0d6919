"""Compiled kernels. Each ``<idea>_numba`` / ``<idea>_cuda`` module mirrors the NumPy reference
in the module ``<idea>`` and must agree with it to round-off (see tests/test_<idea>.py)."""
