"""Input checks shared by every model: each error names the argument, what it got and what was
expected.

The style follows scikit-learn: fail early, at the public entry point, with a message a learner
can act on.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import math

import numpy as np
from numpy.typing import ArrayLike, DTypeLike


def check_choice(value: Any, name: str, choices: Collection) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise ValueError.

    Parameters
    ----------
    value : object
        The argument to check.
    name : str
        The argument's name, used in the error message.
    choices : collection
        The allowed values (a tuple, set or the keys of a dict).

    Returns
    -------
    object
        ``value`` itself.

    Raises
    ------
    ValueError
        If ``value`` is not in ``choices``.
    """
    if value not in choices:
        raise ValueError(f"{name}: expected one of {sorted(choices)}, got {value!r}")
    return value


def check_array(x: ArrayLike, name: str, ndim: int | None = None,
                shape: tuple[int | None, ...] | None = None,
                dtype: DTypeLike | None = None) -> np.ndarray:
    """Convert ``x`` to an ndarray and check its rank, shape and values.

    ``shape`` may hold ``None`` for a free axis, e.g. ``(None, 784)``. Empty arrays, NaN and Inf
    are rejected because every model here would silently turn them into a NaN loss.

    Parameters
    ----------
    x : array_like
        The argument to check.
    name : str
        The argument's name, used in error messages.
    ndim : int or None
        The required number of dimensions, or None for any.
    shape : tuple of (int or None), or None
        The required shape, ``None`` marking a free axis; None for any shape.
    dtype : dtype or None
        The dtype to convert to, or None to keep NumPy's choice.

    Returns
    -------
    np.ndarray
        ``x`` as an array of ``dtype`` (no copy when it already is one).

    Raises
    ------
    ValueError
        If the rank or shape differs, the array is empty, or a float entry is NaN or Inf.
    """
    arr = np.asarray(x, dtype=dtype)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {arr.shape}")
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and s != a
                                         for s, a in zip(shape, arr.shape)):
            want = ("(" + ", ".join("n" if s is None else str(s) for s in shape)
                    + ("," if len(shape) == 1 else "") + ")")
            raise ValueError(f"{name}: expected shape {want}, got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name}: expected finite values, got {bad} NaN or Inf entries")
    return arr


def check_labels(y: ArrayLike, name: str, n_classes: int,
                 n_samples: int | None = None) -> np.ndarray:
    """Check integer class labels in ``[0, n_classes)``; return them as an int64 array (B,).

    Parameters
    ----------
    y : array_like, shape (B,)
        Integer labels; floats with integer values are accepted.
    name : str
        The argument's name, used in error messages.
    n_classes : int
        The number of classes K: labels must lie in ``0..K-1``.
    n_samples : int or None
        The required number of labels B (one per row of the inputs), or None for any.

    Returns
    -------
    np.ndarray, shape (B,)
        The labels as int64.

    Raises
    ------
    ValueError
        If ``y`` is not 1-D, has the wrong length, is empty, is not integer-valued or holds a
        label outside ``[0, n_classes)``.
    """
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of labels, got shape {arr.shape}")
    if n_samples is not None and arr.shape[0] != n_samples:
        raise ValueError(f"{name}: expected {n_samples} labels (one per row of the inputs), "
                         f"got {arr.shape[0]}")
    if arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected integer labels, got dtype {arr.dtype}")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= n_classes:
        raise ValueError(f"{name}: expected labels in [0, {n_classes - 1}], "
                         f"got values in [{lo}, {hi}]")
    return arr.astype(np.int64, copy=False)


def check_binary(y: ArrayLike, name: str, shape: tuple[int, ...],
                 dtype: DTypeLike) -> np.ndarray:
    """Check binary targets: a finite array of ``shape`` whose values are all 0 or 1.

    Parameters
    ----------
    y : array_like
        The targets.
    name : str
        The argument's name, used in error messages.
    shape : tuple of int
        The required shape.
    dtype : dtype-like
        The dtype to convert to.

    Returns
    -------
    np.ndarray
        ``y`` as an array of ``dtype``.

    Raises
    ------
    ValueError
        If ``y`` has another shape, holds NaN or Inf, or a value other than 0 and 1.
    """
    arr = check_array(y, name, shape=shape, dtype=dtype)
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError(f"{name}: expected targets in {{0, 1}}, got values such as "
                         f"{arr[~np.isin(arr, (0.0, 1.0))][0]!r}")
    return arr


def check_params(params: Mapping[str, np.ndarray], shapes: Mapping[str, tuple[int, ...]],
                 dtype: DTypeLike) -> list[np.ndarray]:
    """Check that ``params`` holds, for each ``name: shape`` of ``shapes``, a finite array of
    that shape and ``dtype``; return the arrays in the order of ``shapes``. Models call this
    before using their params, since a learner may have replaced one, and a NaN weight would
    only show up later as a NaN loss.

    Parameters
    ----------
    params : dict[str, np.ndarray]
        A model's parameters.
    shapes : dict[str, tuple of int]
        The required shape of each parameter, by name.
    dtype : dtype
        The required dtype of every parameter.

    Returns
    -------
    list of np.ndarray
        The arrays of ``params`` (not copies), in the order of ``shapes``.

    Raises
    ------
    ValueError
        Naming the key, if a parameter is missing, is not an ndarray, or has another shape or
        dtype, or holds NaN or Inf.
    """
    out = []
    for k, shape in shapes.items():
        p = params.get(k)
        if not isinstance(p, np.ndarray) or p.shape != shape or p.dtype != dtype:
            got = (type(p).__name__ if not isinstance(p, np.ndarray) else
                   p.shape if p.shape != shape else f"dtype {p.dtype.name}")
            raise ValueError(f"params[{k!r}]: expected a {np.dtype(dtype).name} array of shape "
                             f"{shape}, got {got}")
        # One reduction first: a finite sum proves every entry finite; only an inf/NaN sum
        # (or an overflow of large finite values) needs the entry-by-entry look.
        if not math.isfinite(p.sum()) and not np.isfinite(p).all():
            bad = int(p.size - np.count_nonzero(np.isfinite(p)))
            raise ValueError(f"params[{k!r}]: expected finite values, got {bad} NaN or Inf "
                             "entries")
        out.append(p)
    return out


def check_dtype(dtype: DTypeLike) -> np.dtype:
    """The ``dtype=`` argument of a model as an ``np.dtype``: float32 or float64, else an error.

    Parameters
    ----------
    dtype : dtype-like
        For example ``np.float64`` or ``"float32"``.

    Returns
    -------
    np.dtype
        ``float32`` or ``float64``.

    Raises
    ------
    ValueError
        If ``dtype`` is not a dtype or not one of those two.
    """
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype: expected float32 or float64, got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype: expected float32 or float64, got {dt.name}")
    return dt


def check_number(value: float, name: str, low: float = -np.inf, high: float = np.inf,
                 low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number (not a bool, not a string) in [low, high], each end open when asked;
    returns it as a float.

    Parameters
    ----------
    value : float
        The argument to check (a Python or NumPy int or float).
    name : str
        The argument's name, used in the error message.
    low, high : float
        The ends of the allowed interval.
    low_open, high_open : bool
        Whether ``low`` (``high``) itself is excluded.

    Returns
    -------
    float
        ``value`` as a float.

    Raises
    ------
    ValueError
        If ``value`` is not a finite real number in the interval.
    """
    ok = (not isinstance(value, bool)
          and isinstance(value, (int, float, np.integer, np.floating))
          and np.isfinite(value) and (value > low if low_open else value >= low)
          and (value < high if high_open else value <= high))
    if not ok:
        raise ValueError(f"{name}: expected a finite number in "
                         f"{'(' if low_open else '['}{low:g}, "
                         f"{high:g}{')' if high_open else ']'}, got {value!r}")
    return float(value)


def check_positive(value: float, name: str, integer: bool = False) -> float:
    """Check a strictly positive number (an int when ``integer``).

    Parameters
    ----------
    value : int or float
        The argument to check.
    name : str
        The argument's name, used in the error message.
    integer : bool
        Whether ``value`` must be an integer (a bool never passes).

    Returns
    -------
    int or float
        ``value`` itself, unconverted.

    Raises
    ------
    ValueError
        If ``value`` is not a finite number above zero, or not an integer when ``integer``.
    """
    ok = (isinstance(value, (int, np.integer)) if integer
          else isinstance(value, (int, float, np.number)))
    if not ok or isinstance(value, bool) or not value > 0 or not np.isfinite(value):
        kind = "a positive integer" if integer else "a positive finite number"
        raise ValueError(f"{name}: expected {kind}, got {value!r}")
    return value


def check_finite_loss(loss: float, step: int, lr: float | None = None) -> float:
    """Stop a training run whose loss has diverged; never continue silently.

    Parameters
    ----------
    loss : float
        The loss just computed.
    step : int
        The step that computed it, for the message.
    lr : float or None
        The learning rate, for the message's hint, when there is one.

    Returns
    -------
    float
        ``loss`` itself, when it is finite.

    Raises
    ------
    FloatingPointError
        If ``loss`` is NaN or Inf; the message suggests a smaller learning rate.
    """
    if not np.isfinite(loss):
        hint = f" with learning rate {lr:g}" if lr is not None else ""
        raise FloatingPointError(
            f"loss became {loss} at step {step}{hint}; training diverged. "
            "Try a smaller learning rate (e.g. 10x smaller) or check the inputs' scale."
        )
    return loss
