"""loopy_edu: the library behind the loopy-edu course, written from scratch with NumPy and
Numba.

One module per idea; each chapter of the book derives the module it is named after. See
ARCHITECTURE.md.
"""
__version__ = "0.1.0"
