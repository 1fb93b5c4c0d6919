"""Linear regression from scratch: the exact least-squares fit and gradient descent (Chapter 1).

The model maps a row x (n_in,) to ŷ = W x + b (n_out,); for a batch, Ŷ = X Wᵀ + b. The loss is
half the squared error summed over outputs and averaged over the batch,
L = (1/2B) Σ_i ‖ŷ_i − y_i‖², the same as ``MLP(loss="mse")``: linear regression is a network
with no hidden layer.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .backend import DEFAULT, check_backend, kernels
from .checks import check_array, check_dtype, check_finite_loss, check_params, check_positive
from .model import Model


class LinearRegression(Model):
    """ŷ = x Wᵀ + b with ``params["W"]`` (n_out, n_in) and ``params["b"]`` (n_out,).

    W starts random with std 1/√n_in (fixed by ``seed``) and b at zero. The loss is a convex
    bowl, so the starting point only changes how long gradient descent takes, never where it
    ends.

    Parameters
    ----------
    n_in : int
        Number of inputs.
    n_out : int
        Number of outputs.
    seed : int or None
        Seed of the initial W.
    dtype : dtype-like
        ``np.float32`` or ``np.float64``, of the parameters and of the computations.
    backend : str
        Where :func:`gradient_descent` runs by default: ``"numpy"``, ``"numba"`` or ``"cuda"``.

    Raises
    ------
    ValueError
        If ``n_in`` or ``n_out`` is not a positive integer, or ``dtype`` or ``backend`` is not
        one of the allowed values.
    """

    def __init__(self, n_in: int, n_out: int = 1, seed: int | None = 0,
                 dtype: DTypeLike = np.float64, backend: str = DEFAULT) -> None:
        check_positive(n_in, "n_in", integer=True)
        check_positive(n_out, "n_out", integer=True)
        self.dtype = check_dtype(dtype)
        self.n_in, self.n_out, self.seed = int(n_in), int(n_out), seed
        self.backend = check_backend(backend)
        W = (np.random.default_rng(seed).standard_normal((self.n_out, self.n_in))
             / np.sqrt(self.n_in))
        self.params = {"W": W.astype(self.dtype), "b": np.zeros(self.n_out, dtype=self.dtype)}

    def config(self) -> dict[str, Any]:
        return dict(n_in=self.n_in, n_out=self.n_out, seed=self.seed, dtype=self.dtype.name,
                    backend=self.backend)

    def _check_X(self, X):
        return check_array(X, "X", shape=(None, self.n_in), dtype=self.dtype)

    def _check_Y(self, Y, B):
        # A single output may come as a flat vector of targets (B,), the usual way to write a
        # 1-D problem.
        if self.n_out == 1 and np.ndim(Y) == 1:
            return check_array(Y, "Y", shape=(B,), dtype=self.dtype)[:, None]
        return check_array(Y, "Y", shape=(B, self.n_out), dtype=self.dtype)

    def _check_params(self):
        return check_params(self.params, {"W": (self.n_out, self.n_in), "b": (self.n_out,)},
                            self.dtype)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The predictions Ŷ = X Wᵀ + b (B, n_out) for inputs X (B, n_in).

        Parameters
        ----------
        X : array_like, shape (B, n_in)
            Inputs, one row per example.

        Returns
        -------
        np.ndarray, shape (B, n_out)
            The predictions Ŷ.

        Raises
        ------
        ValueError
            If ``X`` has another shape or non-finite values, or a parameter is not a finite
            array of its shape and dtype.
        """
        W, b = self._check_params()
        return self._check_X(X) @ W.T + b

    def loss_and_grads(self, X: ArrayLike, Y: ArrayLike) -> tuple[float, dict[str, np.ndarray]]:
        """The loss L = (1/2B) Σ_i ‖ŷ_i − y_i‖² on a batch and its exact gradient (Chapter 1).

        Parameters
        ----------
        X : array_like, shape (B, n_in)
            Inputs.
        Y : array_like, shape (B, n_out), or (B,) when n_out == 1
            Targets.

        Returns
        -------
        loss : float
            L on the batch.
        grads : dict[str, np.ndarray]
            ∂L/∂W (n_out, n_in) and ∂L/∂b (n_out,), under the keys ``"W"`` and ``"b"``.

        Raises
        ------
        ValueError
            If ``X`` or ``Y`` has another shape or non-finite values, or a parameter is not a
            finite array of its shape and dtype.
        """
        X = self._check_X(X)
        Y = self._check_Y(Y, X.shape[0])
        W, b = self._check_params()
        B = X.shape[0]
        R = X @ W.T + b - Y                    # (B, n_out) residuals r_i = ŷ_i − y_i
        loss = 0.5 * np.sum(R * R) / B
        grads = {"W": R.T @ X / B,             # (n_out, n_in): ∂L/∂W_jk = Σ_i r_ij x_ik / B
                 "b": R.sum(axis=0) / B}       # (n_out,):      ∂L/∂b_j  = Σ_i r_ij / B
        return float(loss), grads


def fit_exact(X: ArrayLike, Y: ArrayLike, ridge: float = 0.0) -> dict[str, np.ndarray]:
    """The parameters minimising L(W, b) + (ridge/2)‖W‖², found in one linear solve (Chapter 1).

    Write A = [X 1] (B, n_in + 1) and θ = [Wᵀ; b] (n_in + 1, n_out), so that Ŷ = Aθ. Setting the
    gradient to zero gives the normal equations AᵀA θ = AᵀY. Forming AᵀA squares the condition
    number of A and loses half the digits when the columns of X are nearly dependent, so we hand
    the least-squares problem min ‖Aθ − Y‖ itself to np.linalg.lstsq, which works on A through
    its SVD. When the columns are exactly dependent (for instance fewer examples than
    parameters) many θ fit equally well, and lstsq returns the one of smallest norm. A ridge
    penalty appends the rows √(B·ridge)·[I 0] to A and zeros to Y: their squared error is
    B·ridge‖W‖², which is the penalty times 2B, like the rest. b is not penalised.

    Parameters
    ----------
    X : array_like, shape (B, n_in)
        Inputs.
    Y : array_like, shape (B, n_out) or (B,)
        Targets; a 1-D ``Y`` means n_out = 1.
    ridge : float
        The penalty's weight, ≥ 0.

    Returns
    -------
    dict[str, np.ndarray]
        ``{"W": (n_out, n_in), "b": (n_out,)}``, in float64.

    Raises
    ------
    ValueError
        If ``X`` is not 2-D, ``Y`` does not match it, either holds non-finite values, or
        ``ridge`` is negative or not finite.
    """
    X = check_array(X, "X", ndim=2, dtype=np.float64)
    B, n_in = X.shape
    Y = check_array(Y, "Y", dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2 or Y.shape[0] != B:
        raise ValueError(f"Y: expected shape ({B},) or ({B}, n_out) to match X, got {Y.shape}")
    if not (isinstance(ridge, (int, float, np.number)) and np.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge: expected a non-negative finite number, got {ridge!r}")
    A = np.hstack([X, np.ones((B, 1))])                            # (B, n_in + 1)
    if ridge > 0:
        A = np.vstack([A, np.sqrt(B * ridge) * np.eye(n_in, n_in + 1)])
        Y = np.vstack([Y, np.zeros((n_in, Y.shape[1]))])
    theta = np.linalg.lstsq(A, Y, rcond=None)[0]                   # (n_in + 1, n_out)
    return {"W": np.ascontiguousarray(theta[:n_in].T), "b": theta[n_in].copy()}


def descend(model: LinearRegression, X: np.ndarray, Y: np.ndarray, lr: float, steps: int,
            path: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The NumPy reference of :func:`gradient_descent`: ``steps`` times θ ← θ − lr·∇L(θ)
    (Chapter 1).

    Parameters
    ----------
    model : LinearRegression
        Its ``params`` are updated in place.
    X : np.ndarray, shape (B, n_in)
        Inputs, already checked.
    Y : np.ndarray, shape (B, n_out)
        Targets, already checked.
    lr : float
        The learning rate.
    steps : int
        The number of steps.
    path : dict[str, np.ndarray] or None
        If given, receives the parameters visited: ``path[k]`` has shape
        ``(steps + 1,) + params[k].shape``.

    Returns
    -------
    np.ndarray, shape (steps,)
        The loss before each step.

    Raises
    ------
    FloatingPointError
        If the loss becomes NaN or Inf.
    """
    losses = np.empty(steps)
    for t in range(steps):
        if path is not None:
            for k, p in model.params.items():
                path[k][t] = p
        losses[t], grads = model.loss_and_grads(X, Y)
        check_finite_loss(losses[t], t, lr)
        for k, p in model.params.items():
            p -= lr * grads[k]
    if path is not None:
        for k, p in model.params.items():
            path[k][steps] = p
    return losses


def gradient_descent(model: LinearRegression, X: ArrayLike, Y: ArrayLike, lr: float, steps: int,
                     backend: str | None = None, trajectory: bool = False
                     ) -> np.ndarray | tuple[np.ndarray, dict[str, np.ndarray]]:
    """Full-batch gradient descent on a :class:`LinearRegression`; updates ``model.params`` in
    place.

    A non-finite loss stops the run with FloatingPointError and leaves the parameters where it
    stopped. Chapter 1 shows why lr above 2/λ_max of the loss's Hessian diverges.

    Parameters
    ----------
    model : LinearRegression
        The model to train.
    X : array_like, shape (B, n_in)
        Inputs.
    Y : array_like, shape (B, n_out) or (B,)
        Targets.
    lr : float
        The learning rate, > 0.
    steps : int
        The number of steps, > 0.
    backend : str or None
        ``"numpy"``, ``"numba"`` or ``"cuda"``; None uses ``model.backend``.
    trajectory : bool
        Whether to also return the parameters visited.

    Returns
    -------
    losses : np.ndarray, shape (steps,)
        The loss before each step.
    path : dict[str, np.ndarray]
        Only with ``trajectory=True``: the parameters visited, start included,
        ``{"W": (steps + 1, n_out, n_in), "b": (steps + 1, n_out)}``.

    Raises
    ------
    ValueError
        If an input has another shape or non-finite values, or ``lr``, ``steps`` or ``backend``
        is invalid.
    FloatingPointError
        If the loss becomes NaN or Inf.
    """
    X = model._check_X(X)
    Y = model._check_Y(Y, X.shape[0])
    check_positive(lr, "lr")
    check_positive(steps, "steps", integer=True)
    backend = check_backend(backend or model.backend)
    model._check_params()
    path = ({k: np.empty((steps + 1,) + p.shape, model.dtype) for k, p in model.params.items()}
            if trajectory else None)
    # Overflow on the way to divergence is reported once, as FloatingPointError, not as
    # warnings.
    with np.errstate(over="ignore", invalid="ignore"):
        if backend == "numpy":
            losses = descend(model, X, Y, lr, steps, path)
        else:
            losses = _compiled_descent(model, X, Y, lr, steps, backend, path)
    return losses if path is None else (losses, path)


def _compiled_descent(model, X, Y, lr, steps, backend, path):
    W = np.ascontiguousarray(model.params["W"])
    b = np.ascontiguousarray(model.params["b"])
    # The kernels record the path only into non-empty arrays.
    rec = path or {k: np.empty((0,) + p.shape, model.dtype) for k, p in model.params.items()}
    losses = kernels("linear", backend).gradient_descent(
        W, b, np.ascontiguousarray(X), np.ascontiguousarray(Y), float(lr), int(steps),
        rec["W"], rec["b"])
    model.params["W"][...] = W
    model.params["b"][...] = b
    check_finite_loss(losses[-1], len(losses) - 1, lr)
    return losses


def loss_surface(x: ArrayLike, y: ArrayLike, w: ArrayLike, b: ArrayLike) -> np.ndarray:
    """The loss L(w, b) of the 1-D model ŷ = w x + b on a grid, for contour plots (Chapter 1).

    Parameters
    ----------
    x, y : array_like, shape (B,)
        The data.
    w : array_like, shape (n_w,)
        Grid values of the slope.
    b : array_like, shape (n_b,)
        Grid values of the intercept.

    Returns
    -------
    np.ndarray, shape (n_b, n_w)
        L at each grid point, rows indexed by b: the layout ``plt.contour(w, b, L)`` expects.

    Raises
    ------
    ValueError
        If an argument is not 1-D, ``y`` does not match ``x``, or a value is not finite.
    """
    x = check_array(x, "x", ndim=1, dtype=np.float64)
    y = check_array(y, "y", shape=(x.shape[0],), dtype=np.float64)
    w = check_array(w, "w", ndim=1, dtype=np.float64)
    b = check_array(b, "b", ndim=1, dtype=np.float64)
    R = w[None, :, None] * x + b[:, None, None] - y               # (n_b, n_w, B)
    return 0.5 * np.mean(R * R, axis=2)
