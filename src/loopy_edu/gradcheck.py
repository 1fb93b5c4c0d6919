"""Checking an analytic gradient against central finite differences (Chapter 3).

Works for any model with ``params`` and ``loss_and_grads(*args, **kwargs) -> (loss, grads)``; run it in
float64, where the central difference's error is about ε² + round-off/ε, so ε ≈ 1e-6 gives ~1e-9.
"""
import numpy as np


def rel_error(a, b):
    """‖a − b‖ / (‖a‖ + ‖b‖), a scale-free distance between two arrays (0 when both are 0)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = np.linalg.norm(a - b)
    return float(diff / (np.linalg.norm(a) + np.linalg.norm(b))) if diff > 0 else 0.0


def numerical_grad(f, p, index=None, eps=1e-6):
    """Central differences (f(p + ε e_i) − f(p − ε e_i)) / 2ε of a scalar ``f()`` with respect to the
    array ``p``, which ``f`` reads and this function perturbs in place and restores. ``index`` (a list of
    flat indices) limits the check to some entries; the others are NaN."""
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


def check_grads(model, *args, eps=1e-6, max_entries=50, seed=0, **kwargs):
    """Relative error, per parameter, between ``model.loss_and_grads(*args, **kwargs)`` and central
    differences of its loss. At most ``max_entries`` random entries of each parameter are probed.

    Returns ``{name: rel_error}``. The model must be deterministic for these arguments (pass fixed
    dropout masks, for instance).
    """
    if np.dtype(getattr(model, "dtype", np.float64)) != np.float64:
        raise ValueError("model: gradient checks need float64 parameters; build the model with dtype=np.float64")
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
