"""Linear regression from scratch: the exact least-squares fit and gradient descent (Chapter 1).

The model maps a row x (n_in,) to ŷ = W x + b (n_out,); for a batch, Ŷ = X Wᵀ + b. The loss is half the
squared error summed over outputs and averaged over the batch, L = (1/2B) Σ_i ‖ŷ_i − y_i‖², the same as
``MLP(loss="mse")``: linear regression is a network with no hidden layer.
"""
import numpy as np

from .backend import DEFAULT, check_backend, kernels
from .checks import check_array, check_dtype, check_finite_loss, check_params, check_positive
from .model import Model


class LinearRegression(Model):
    """ŷ = x Wᵀ + b with ``params["W"]`` (n_out, n_in) and ``params["b"]`` (n_out,).

    W starts random with std 1/√n_in (fixed by ``seed``) and b at zero. The loss is a convex bowl, so
    the starting point only changes how long gradient descent takes, never where it ends.
    """

    def __init__(self, n_in, n_out=1, seed=0, dtype=np.float64, backend=DEFAULT):
        check_positive(n_in, "n_in", integer=True)
        check_positive(n_out, "n_out", integer=True)
        self.dtype = check_dtype(dtype)
        self.n_in, self.n_out, self.seed = int(n_in), int(n_out), seed
        self.backend = check_backend(backend)
        W = np.random.default_rng(seed).standard_normal((self.n_out, self.n_in)) / np.sqrt(self.n_in)
        self.params = {"W": W.astype(self.dtype), "b": np.zeros(self.n_out, dtype=self.dtype)}

    def config(self):
        return dict(n_in=self.n_in, n_out=self.n_out, seed=self.seed, dtype=self.dtype.name,
                    backend=self.backend)

    def _check_X(self, X):
        return check_array(X, "X", shape=(None, self.n_in), dtype=self.dtype)

    def _check_Y(self, Y, B):
        # A single output may come as a flat vector of targets (B,), the usual way to write a 1-D problem.
        if self.n_out == 1 and np.ndim(Y) == 1:
            return check_array(Y, "Y", shape=(B,), dtype=self.dtype)[:, None]
        return check_array(Y, "Y", shape=(B, self.n_out), dtype=self.dtype)

    def _check_params(self):
        return check_params(self.params, {"W": (self.n_out, self.n_in), "b": (self.n_out,)}, self.dtype)

    def predict(self, X):
        """The predictions Ŷ = X Wᵀ + b (B, n_out) for inputs X (B, n_in)."""
        W, b = self._check_params()
        return self._check_X(X) @ W.T + b

    def loss_and_grads(self, X, Y):
        """The loss L = (1/2B) Σ_i ‖ŷ_i − y_i‖² on a batch and its exact gradient {"W", "b"} (Chapter 1).

        X: (B, n_in); Y: (B, n_out), or (B,) when n_out == 1.
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


def fit_exact(X, Y, ridge=0.0):
    """The parameters minimising L(W, b) + (ridge/2)‖W‖², found in one linear solve (Chapter 1).

    Write A = [X 1] (B, n_in + 1) and θ = [Wᵀ; b] (n_in + 1, n_out), so that Ŷ = Aθ. Setting the gradient
    to zero gives the normal equations AᵀA θ = AᵀY. Forming AᵀA squares the condition number of A and
    loses half the digits when the columns of X are nearly dependent, so we hand the least-squares
    problem min ‖Aθ − Y‖ itself to np.linalg.lstsq, which works on A through its SVD. When the columns are
    exactly dependent (for instance fewer examples than parameters) many θ fit equally well, and lstsq
    returns the one of smallest norm. A ridge penalty appends the rows √(B·ridge)·[I 0] to A and zeros to
    Y: their squared error is B·ridge‖W‖², which is the penalty times 2B, like the rest. b is not penalised.

    X: (B, n_in); Y: (B, n_out) or (B,). Returns {"W": (n_out, n_in), "b": (n_out,)} in float64.
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


def descend(model, X, Y, lr, steps, path=None):
    """The NumPy reference of :func:`gradient_descent`: ``steps`` times θ ← θ − lr·∇L(θ) (Chapter 1).

    Returns the losses (steps,) before each step. ``path``, if given, receives the parameters visited.
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


def gradient_descent(model, X, Y, lr, steps, backend=None, trajectory=False):
    """Full-batch gradient descent on a :class:`LinearRegression`; updates ``model.params`` in place.

    X: (B, n_in); Y: (B, n_out) or (B,). Returns the losses (steps,) before each step; with
    ``trajectory=True`` also the parameters visited, {"W": (steps + 1, n_out, n_in), "b": (steps + 1,
    n_out)}, start included. A non-finite loss stops the run with FloatingPointError and leaves the
    parameters where it stopped. Chapter 1 shows why lr above 2/λ_max of the loss's Hessian diverges.
    """
    X = model._check_X(X)
    Y = model._check_Y(Y, X.shape[0])
    check_positive(lr, "lr")
    check_positive(steps, "steps", integer=True)
    backend = check_backend(backend or model.backend)
    model._check_params()
    path = ({k: np.empty((steps + 1,) + p.shape, model.dtype) for k, p in model.params.items()}
            if trajectory else None)
    # Overflow on the way to divergence is reported once, as FloatingPointError, not as warnings.
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
        W, b, np.ascontiguousarray(X), np.ascontiguousarray(Y), float(lr), int(steps), rec["W"], rec["b"])
    model.params["W"][...] = W
    model.params["b"][...] = b
    check_finite_loss(losses[-1], len(losses) - 1, lr)
    return losses


def loss_surface(x, y, w, b):
    """The loss L(w, b) of the 1-D model ŷ = w x + b on a grid, for contour plots (Chapter 1).

    x, y: (B,) data; w: (n_w,) and b: (n_b,) grid values. Returns (n_b, n_w), rows indexed by b, the
    layout ``plt.contour(w, b, L)`` expects.
    """
    x = check_array(x, "x", ndim=1, dtype=np.float64)
    y = check_array(y, "y", shape=(x.shape[0],), dtype=np.float64)
    w = check_array(w, "w", ndim=1, dtype=np.float64)
    b = check_array(b, "b", ndim=1, dtype=np.float64)
    R = w[None, :, None] * x + b[:, None, None] - y               # (n_b, n_w, B)
    return 0.5 * np.mean(R * R, axis=2)
