"""Input checks shared by every model: each error names the argument, what it got and what was expected.

The style follows scikit-learn: fail early, at the public entry point, with a message a learner can act on.
"""
import numpy as np


def check_choice(value, name, choices):
    """Return ``value`` if it is one of ``choices``, else raise ValueError."""
    if value not in choices:
        raise ValueError(f"{name}: expected one of {sorted(choices)}, got {value!r}")
    return value


def check_array(x, name, ndim=None, shape=None, dtype=None):
    """Convert ``x`` to an ndarray and check its rank, shape and values.

    ``shape`` may hold ``None`` for a free axis, e.g. ``(None, 784)``. Empty arrays, NaN and Inf are
    rejected because every model here would silently turn them into a NaN loss.
    """
    arr = np.asarray(x, dtype=dtype)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {arr.shape}")
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
            want = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
            raise ValueError(f"{name}: expected shape {want}, got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name}: expected finite values, got {bad} NaN or Inf entries")
    return arr


def check_labels(y, name, n_classes, n_samples=None):
    """Check integer class labels in ``[0, n_classes)``; return them as an int64 array of shape (B,)."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of labels, got shape {arr.shape}")
    if n_samples is not None and arr.shape[0] != n_samples:
        raise ValueError(f"{name}: expected {n_samples} labels (one per row of the inputs), got {arr.shape[0]}")
    if arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected integer labels, got dtype {arr.dtype}")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= n_classes:
        raise ValueError(f"{name}: expected labels in [0, {n_classes - 1}], got values in [{lo}, {hi}]")
    return arr.astype(np.int64, copy=False)


def check_params(params, shapes, dtype):
    """Check that ``params`` holds, for each ``name: shape`` of ``shapes``, a finite array of that shape
    and ``dtype``; return the arrays in the order of ``shapes``. Models call this before using their
    params, since a learner may have replaced one, and a NaN weight would only show up later as a NaN
    loss."""
    out = []
    for k, shape in shapes.items():
        p = params.get(k)
        want = f"params[{k!r}]: expected a {np.dtype(dtype).name} array of shape {shape}, got"
        if not isinstance(p, np.ndarray):
            raise ValueError(f"{want} {type(p).__name__}")
        if p.shape != shape:
            raise ValueError(f"{want} {p.shape}")
        if p.dtype != dtype:
            raise ValueError(f"{want} dtype {p.dtype.name}")
        # One reduction first: a finite sum proves every entry finite; only an inf/NaN sum (or an
        # overflow of large finite values) needs the entry-by-entry look.
        if not np.isfinite(p.sum()) and not np.isfinite(p).all():
            bad = int(p.size - np.count_nonzero(np.isfinite(p)))
            raise ValueError(f"params[{k!r}]: expected finite values, got {bad} NaN or Inf entries")
        out.append(p)
    return out


def check_dtype(dtype):
    """The ``dtype=`` argument of a model as an ``np.dtype``: float32 or float64, else ValueError."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype: expected float32 or float64, got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype: expected float32 or float64, got {dt.name}")
    return dt


def check_number(value, name, low=-np.inf, high=np.inf, low_open=False, high_open=False):
    """A finite real number (not a bool, not a string) in [low, high], each end open when asked;
    returns it as a float."""
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
          and np.isfinite(value) and (value > low if low_open else value >= low)
          and (value < high if high_open else value <= high))
    if not ok:
        raise ValueError(f"{name}: expected a finite number in {'(' if low_open else '['}{low:g}, "
                         f"{high:g}{')' if high_open else ']'}, got {value!r}")
    return float(value)


def check_positive(value, name, integer=False):
    """Check a strictly positive number (an int when ``integer``)."""
    ok = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.number))
    if not ok or isinstance(value, bool) or not value > 0 or not np.isfinite(value):
        kind = "a positive integer" if integer else "a positive finite number"
        raise ValueError(f"{name}: expected {kind}, got {value!r}")
    return value


def check_finite_loss(loss, step, lr=None):
    """Stop a training run whose loss has diverged; never continue silently."""
    if not np.isfinite(loss):
        hint = f" with learning rate {lr:g}" if lr is not None else ""
        raise FloatingPointError(
            f"loss became {loss} at step {step}{hint}; training diverged. "
            "Try a smaller learning rate (e.g. 10x smaller) or check the inputs' scale."
        )
    return loss
