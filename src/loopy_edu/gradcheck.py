"""Checking an analytic gradient against central finite differences (Chapter 3).

Works for any model with ``params`` and ``loss_and_grads(*args, **kwargs) -> (loss, grads)``;
run it in float64, where the central difference's error is about ε² + round-off/ε, so ε ≈ 1e-6
gives ~1e-9.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike


def rel_error(a: ArrayLike, b: ArrayLike) -> float:
    """‖a − b‖ / (‖a‖ + ‖b‖), a scale-free distance between two arrays (0 when both are 0).

    Parameters
    ----------
    a, b : array_like
        Arrays of the same shape (or broadcastable).

    Returns
    -------
    float
        The relative error, in [0, 1]; 0 when ``a`` and ``b`` are equal.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = np.linalg.norm(a - b)
    return float(diff / (np.linalg.norm(a) + np.linalg.norm(b))) if diff > 0 else 0.0


def numerical_grad(f: Callable[[], float], p: np.ndarray, index: Sequence[int] | None = None,
                   eps: float = 1e-6) -> np.ndarray:
    """Central differences (f(p + ε e_i) − f(p − ε e_i)) / 2ε of a scalar ``f()`` with respect
    to the array ``p``, which ``f`` reads and this function perturbs in place and restores.
    ``index`` (a list of flat indices) limits the check to some entries; the others are NaN.

    Parameters
    ----------
    f : callable
        ``f()`` returns the loss, reading ``p``.
    p : np.ndarray
        The parameter array, perturbed in place and restored.
    index : sequence of int or None
        Flat indices of the entries to probe; None probes all.
    eps : float
        The step ε.

    Returns
    -------
    np.ndarray
        The estimate, float64, in the shape of ``p``; NaN where not probed.
    """
    g = np.full(p.shape, np.nan)
    for i in range(p.size) if index is None else index:
        ix = np.unravel_index(i, p.shape)  # works for any memory layout, unlike a reshaped view
        old = p[ix]
        p[ix] = old + eps
        f_plus = f()
        p[ix] = old - eps
        f_minus = f()
        p[ix] = old
        g[ix] = (f_plus - f_minus) / (2 * eps)
    return g


def check_grads(model: Any, *args: Any, eps: float = 1e-6, max_entries: int = 50,
                seed: int | None = 0, **kwargs: Any) -> dict[str, float]:
    """Relative error, per parameter, between ``model.loss_and_grads(*args, **kwargs)`` and
    central differences of its loss. At most ``max_entries`` random entries of each parameter
    are probed.

    The model must be deterministic for these arguments (pass fixed dropout masks, for
    instance).

    Parameters
    ----------
    model : object
        A float64 model with ``params`` and ``loss_and_grads``.
    *args
        Positional arguments of ``loss_and_grads``.
    eps : float
        The finite-difference step ε.
    max_entries : int
        The most entries probed per parameter, chosen at random.
    seed : int or None
        Seed of that choice.
    **kwargs
        Keyword arguments of ``loss_and_grads``.

    Returns
    -------
    dict[str, float]
        ``{name: rel_error}`` for each key of ``model.params``.

    Raises
    ------
    ValueError
        If the model's dtype is not float64.
    """
    if np.dtype(getattr(model, "dtype", np.float64)) != np.float64:
        raise ValueError("model: gradient checks need float64 parameters; build the model "
                         "with dtype=np.float64")
    rng = np.random.default_rng(seed)
    _, grads = model.loss_and_grads(*args, **kwargs)
    f = lambda: model.loss_and_grads(*args, **kwargs)[0]
    errors = {}
    for name, p in model.params.items():
        n = p.size
        idx = np.arange(n) if n <= max_entries else rng.choice(n, max_entries, replace=False)
        num = numerical_grad(f, p, idx, eps).reshape(-1)[idx]
        errors[name] = rel_error(np.asarray(grads[name]).reshape(-1)[idx], num)
    return errors
