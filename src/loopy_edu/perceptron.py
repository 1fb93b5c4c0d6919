"""Rosenblatt's perceptron, its learning rule and the geometry of its convergence (Chapter 2).

The model predicts ``+1`` where ``w·x + b > 0`` and ``−1`` elsewhere. Labels are
``y ∈ {−1, +1}``; ``{0, 1}`` labels are accepted and read as ``0 → −1``. ``params["b"]`` is a
0-d array (a scalar you can update in place), so the gradient ``grads["b"]`` has shape ``()``
too.

Folding the bias into the weights, ``w̃ = (w, b)`` and ``x̃ = (x, 1)``, turns the rule into the
textbook ``w̃ += y x̃``; Novikoff's mistake bound ``(R/γ)²`` is stated in that augmented space
(:func:`mistake_bound`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .backend import DEFAULT, check_backend, kernels
from .checks import check_array, check_dtype, check_params, check_positive
from .model import Model

# fit draws visit orders in chunks of epochs that double in size, so that an early stop wastes
# little, capped at this many visits per chunk to bound memory.
_ORDER_CHUNK = 1_000_000


def as_pm1(y: ArrayLike, name: str = "y", n_samples: int | None = None) -> np.ndarray:
    """Labels y (B,) as a float64 array of ±1, from ``{−1, +1}`` or ``{0, 1}`` (``0 → −1``).

    Parameters
    ----------
    y : array_like, shape (B,)
        Numeric labels, all in {−1, +1} or all in {0, 1}.
    name : str
        The argument's name, used in error messages.
    n_samples : int or None
        The required number of labels B (one per row of the inputs), or None for any.

    Returns
    -------
    np.ndarray, shape (B,)
        The labels as float64 ±1.

    Raises
    ------
    ValueError
        If ``y`` is not 1-D, has the wrong length, is empty, is not numeric or finite, or holds
        other values.
    """
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of labels, got shape {arr.shape}")
    if n_samples is not None and arr.shape[0] != n_samples:
        raise ValueError(f"{name}: expected {n_samples} labels (one per row of the inputs), "
                         f"got {arr.shape[0]}")
    if arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected numeric labels in {{-1, +1}} or {{0, 1}}, "
                         f"got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = np.count_nonzero(~np.isfinite(arr))
        raise ValueError(f"{name}: expected finite labels, got {bad} NaN or Inf")
    values = np.unique(arr).tolist()                       # sorted
    if set(values) <= {-1, 1}:
        return arr.astype(np.float64)
    if set(values) <= {0, 1}:
        return np.where(arr == 1, 1.0, -1.0)
    raise ValueError(f"{name}: expected labels in {{-1, +1}} or in {{0, 1}}, "
                     f"got values {values[:6]}" + (" ..." if len(values) > 6 else ""))


def rosenblatt_epochs(w: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray,
                      orders: np.ndarray, updated: np.ndarray) -> int:
    """Rosenblatt's rule, one epoch per row of ``orders``; w (n_in,) and b (1,) are updated in
    place.

    ``updated[e, k]`` is set to 1 when the k-th visit of epoch e was a mistake. Stops after the
    first epoch without a mistake and returns the number of epochs run.

    Parameters
    ----------
    w : np.ndarray, shape (n_in,)
        Weights, updated in place.
    b : np.ndarray, shape (1,)
        Bias, updated in place.
    X : np.ndarray, shape (N, n_in)
        Inputs.
    y : np.ndarray, shape (N,)
        Labels, ±1.
    orders : np.ndarray, shape (E, N)
        The visiting order of each epoch.
    updated : np.ndarray, shape (E, N)
        Zeros on entry; marks the visits that made an update.

    Returns
    -------
    int
        The number of epochs run, at most E.
    """
    for e in range(len(orders)):
        for k, i in enumerate(orders[e]):
            if y[i] * (X[i] @ w + b[0]) <= 0:        # wrong side of the boundary, or on it
                w += y[i] * X[i]
                b[0] += y[i]
                updated[e, k] = 1
        if not updated[e].any():
            return e + 1
    return len(orders)


@dataclass
class PerceptronHistory:
    """What :meth:`Perceptron.fit` did: mistakes per epoch and every update, in order.

    Attributes
    ----------
    mistakes : np.ndarray, shape (epochs run,)
        Mistakes (= updates) made in each epoch.
    steps : np.ndarray, shape (updates,)
        Index of the sample corrected by each update.
    converged : bool
        True when the last epoch made no mistake.
    w_path : np.ndarray, shape (updates + 1, n_in), or None
        w at the start and after each update (with ``record=True``).
    b_path : np.ndarray, shape (updates + 1,), or None
        b likewise.
    """
    mistakes: np.ndarray       # (epochs run,) mistakes (= updates) made in each epoch
    steps: np.ndarray          # (updates,) index of the sample corrected by each update
    converged: bool            # True when the last epoch made no mistake
    w_path: np.ndarray | None = None  # (updates + 1, n_in) w at the start and after each update
    b_path: np.ndarray | None = None  # (updates + 1,) b likewise

    @property
    def updates(self) -> int:
        """Total number of updates (= total mistakes)."""
        return len(self.steps)

    @property
    def epochs(self) -> int:
        """Number of epochs run."""
        return len(self.mistakes)


class Perceptron(Model):
    """A single linear threshold unit trained by Rosenblatt's rule (Chapter 2).

    ``params = {"w": (n_in,), "b": ()}``, both zero at the start: Novikoff's bound assumes that
    start. ``seed`` seeds the order in which :meth:`fit` visits the samples.

    Parameters
    ----------
    n_in : int
        Number of inputs.
    seed : int or None
        Seed of the generator that draws :meth:`fit`'s visiting orders.
    dtype : dtype-like
        ``np.float32`` or ``np.float64``.
    backend : str
        Where :meth:`fit` runs by default: ``"numpy"``, ``"numba"`` or ``"cuda"``.

    Raises
    ------
    ValueError
        If ``n_in`` is not a positive integer, or ``dtype`` or ``backend`` is not one of the
        allowed values.
    """

    def __init__(self, n_in: int, seed: int | None = 0, dtype: DTypeLike = np.float64,
                 backend: str = DEFAULT) -> None:
        self.n_in = check_positive(n_in, "n_in", integer=True)
        self.dtype = check_dtype(dtype)
        self.backend = check_backend(backend)
        self.seed, self.rng = seed, np.random.default_rng(seed)
        self.params = {"w": np.zeros(n_in, dtype=self.dtype),
                       "b": np.zeros((), dtype=self.dtype)}

    def config(self) -> dict[str, Any]:
        return dict(n_in=self.n_in, seed=self.seed, dtype=self.dtype.name, backend=self.backend)

    def _check_X(self, X):
        return check_array(X, "X", shape=(None, self.n_in), dtype=self.dtype)

    def _check_params(self):
        return check_params(self.params, {"w": (self.n_in,), "b": ()}, self.dtype)

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """The score w·x + b (B,) for inputs X (B, n_in); its sign is the prediction.

        Parameters
        ----------
        X : array_like, shape (B, n_in)
            Inputs.

        Returns
        -------
        np.ndarray, shape (B,)
            The scores.

        Raises
        ------
        ValueError
            If ``X`` has another shape or non-finite values, or a parameter is not a finite
            array of its shape and dtype.
        """
        w, b = self._check_params()
        return self._check_X(X) @ w + b

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted labels (B,) in {−1, +1}: +1 where w·x + b > 0 (points on the boundary get
        −1).

        Parameters
        ----------
        X : array_like, shape (B, n_in)
            Inputs.

        Returns
        -------
        np.ndarray, shape (B,)
            Integer labels, −1 or +1.
        """
        return np.where(self.decision_function(X) > 0, 1, -1)

    def accuracy(self, X: ArrayLike, y: ArrayLike) -> float:
        """Fraction of labels y (B,), in {−1, +1} or {0, 1}, predicted correctly.

        Parameters
        ----------
        X : array_like, shape (B, n_in)
            Inputs.
        y : array_like, shape (B,)
            Labels in {−1, +1} or {0, 1}.

        Returns
        -------
        float
            The accuracy, in [0, 1].
        """
        X = self._check_X(X)
        return float(np.mean(self.predict(X) == as_pm1(y, "y", X.shape[0])))

    def loss_and_grads(self, X: ArrayLike, y: ArrayLike) -> tuple[float, dict[str, np.ndarray]]:
        """The perceptron criterion L = mean max(0, −y(w·x + b)) and its gradient.

        Where y(w·x + b) ≤ 0 a sample contributes −y x to ∂L/∂w and −y to ∂L/∂b (divided by B):
        minus the gradient is Rosenblatt's update averaged over the batch. At the kink
        y(w·x + b) = 0 this picks the one-sided derivative that treats the point as a mistake,
        as the rule does; otherwise w = 0 would be a stationary point.

        Parameters
        ----------
        X : array_like, shape (B, n_in)
            Inputs.
        y : array_like, shape (B,)
            Labels in {−1, +1} or {0, 1}.

        Returns
        -------
        loss : float
            L on the batch.
        grads : dict[str, np.ndarray]
            ``{"w": (n_in,), "b": ()}``, keyed like ``params``.

        Raises
        ------
        ValueError
            If ``X`` or ``y`` is invalid, or a parameter is not a finite array of its shape and
            dtype.
        """
        X = self._check_X(X)
        y = as_pm1(y, "y", X.shape[0]).astype(self.dtype)
        w, b = self._check_params()
        s = y * (X @ w + b)                                  # (B,) functional margins
        wrong = s <= 0
        B = X.shape[0]
        loss = float(np.sum(-s[wrong]) / B)
        gw = -(y[wrong] @ X[wrong]) / B                      # (n_in,)
        gb = np.asarray(-y[wrong].sum() / B, dtype=self.dtype)
        return loss, {"w": gw.astype(self.dtype), "b": gb}

    def fit(self, X: ArrayLike, y: ArrayLike, epochs: int = 100, shuffle: bool = True,
            seed: int | None = None, record: bool = False,
            backend: str | None = None) -> PerceptronHistory:
        """Run Rosenblatt's rule for at most ``epochs`` passes over (X, y); stop after an epoch
        with no mistake. Updates ``params`` in place.

        Each epoch visits the samples in a fresh random order (``shuffle``), drawn from
        ``seed`` or, when it is None, from the model's generator. The same order gives the same
        weights on every backend. ``record=True`` also returns w and b after every update.

        Parameters
        ----------
        X : array_like, shape (N, n_in)
            Inputs.
        y : array_like, shape (N,)
            Labels in {−1, +1} or {0, 1}.
        epochs : int
            The most epochs to run.
        shuffle : bool
            Whether each epoch visits the samples in a random order (else in index order).
        seed : int or None
            Seed of the visiting orders; None draws them from the model's generator.
        record : bool
            Whether to record w and b after every update.
        backend : str or None
            ``"numpy"``, ``"numba"`` or ``"cuda"``; None uses the model's.

        Returns
        -------
        PerceptronHistory
            The mistakes of each epoch, the sample of each update, whether the last epoch was
            clean, and with ``record`` the path of w and b.

        Raises
        ------
        ValueError
            If ``X``, ``y``, ``epochs`` or ``backend`` is invalid, or a parameter is not a
            finite array of its shape and dtype.
        """
        X = np.ascontiguousarray(self._check_X(X))
        N = X.shape[0]
        y = as_pm1(y, "y", N).astype(self.dtype)
        check_positive(epochs, "epochs", integer=True)
        backend = check_backend(backend or self.backend)
        run = (rosenblatt_epochs if backend == "numpy"
               else kernels("perceptron", backend).rosenblatt_epochs)
        rng = self.rng if seed is None else np.random.default_rng(seed)
        w, b = self._check_params()
        w0, b0 = w.copy(), b.copy()
        mistakes, steps = [], []
        while len(mistakes) < epochs and (not mistakes or mistakes[-1] > 0):
            n_ep = min(epochs - len(mistakes), max(1, len(mistakes)), max(1, _ORDER_CHUNK // N))
            orders = np.array([rng.permutation(N) if shuffle else np.arange(N)
                               for _ in range(n_ep)])
            updated = np.zeros(orders.shape, dtype=np.uint8)
            # b.reshape(1) is a view: the updates land in b.
            ran = run(w, b.reshape(1), X, y, orders, updated)
            mistakes += updated[:ran].sum(axis=1).tolist()
            steps.append(orders[:ran][updated[:ran] == 1])
        steps = np.concatenate(steps)
        hist = PerceptronHistory(np.array(mistakes), steps, mistakes[-1] == 0)
        if record:
            # Replaying the updates with a running sum repeats the same float additions, in the
            # same order.
            hist.w_path = np.cumsum(np.vstack([w0, y[steps, None] * X[steps]]), axis=0)
            hist.b_path = np.cumsum(np.concatenate([b0.reshape(1), y[steps]]))
        return hist


def margin(w: ArrayLike, b: ArrayLike, X: ArrayLike, y: ArrayLike,
           augmented: bool = False) -> float:
    """Geometric margin γ = min_i y_i (w·x_i + b) / ‖w‖ of the separator (w, b) on (X, y).

    Positive when every point is on its correct side; it is then the distance from the boundary
    to the closest point. ``augmented=True`` divides by ‖(w, b)‖ instead: the margin of
    w̃ = (w, b) on the points x̃ = (x, 1), the one Novikoff's bound uses.

    Parameters
    ----------
    w : array_like, shape (n_in,)
        Weights of the separator.
    b : float or array_like of size 1
        Its bias.
    X : array_like, shape (B, n_in)
        Points.
    y : array_like, shape (B,)
        Labels in {−1, +1} or {0, 1}.
    augmented : bool
        Whether to divide by ‖(w, b)‖ rather than ‖w‖.

    Returns
    -------
    float
        γ; negative when some point is on its wrong side.

    Raises
    ------
    ValueError
        If an argument has another shape or non-finite values, ``b`` is not a scalar, or the
        norm divided by is zero.
    """
    w = check_array(w, "w", ndim=1, dtype=np.float64)
    X = check_array(X, "X", shape=(None, w.shape[0]), dtype=np.float64)
    y = as_pm1(y, "y", X.shape[0])
    b = check_array(b, "b", dtype=np.float64)
    if b.size != 1:
        raise ValueError(f"b: expected a scalar, got shape {b.shape}")
    b = float(b.reshape(-1)[0])
    norm = np.sqrt(w @ w + b * b) if augmented else np.sqrt(w @ w)
    if norm == 0:
        raise ValueError("w: expected a non-zero weight vector, got all zeros "
                         "(the margin is undefined)")
    return float(np.min(y * (X @ w + b)) / norm)


def mistake_bound(w: ArrayLike, b: ArrayLike, X: ArrayLike, y: ArrayLike) -> float:
    """Novikoff's bound (R/γ)² on the number of updates from a zero start, in the augmented
    space.

    R = max ‖(x_i, 1)‖ and γ = the augmented margin of the separator (w, b) (any separator gives
    a valid bound; the widest-margin one gives the tightest).

    Parameters
    ----------
    w : array_like, shape (n_in,)
        Weights of a separator of (X, y).
    b : float or array_like of size 1
        Its bias.
    X : array_like, shape (B, n_in)
        Points.
    y : array_like, shape (B,)
        Labels in {−1, +1} or {0, 1}.

    Returns
    -------
    float
        The bound (R/γ)².

    Raises
    ------
    ValueError
        If (w, b) does not separate (X, y), or an argument is invalid as in :func:`margin`.
    """
    gamma = margin(w, b, X, y, augmented=True)
    if gamma <= 0:
        raise ValueError(f"(w, b): expected a separator of (X, y), got margin {gamma:g} ≤ 0")
    X = np.asarray(X, dtype=np.float64)
    R = np.sqrt(np.max(np.sum(X * X, axis=1)) + 1.0)
    return float((R / gamma) ** 2)


def make_separable(n: int, n_in: int = 2, margin: float = 0.1, radius: float = 1.0,
                   seed: int | None = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """n points in the ball ‖x‖ ≤ radius, labelled by a random hyperplane, with geometric margin
    exactly ``margin`` (0 < margin ≤ radius / 4).

    The hyperplane passes within radius / 4 of the origin; points closer to it than ``margin``
    are rejected, and two points (one per class) are placed at exactly that distance so that
    both classes appear and the margin is attained.

    Parameters
    ----------
    n : int
        Number of points, ≥ 2.
    n_in : int
        Dimension of the points.
    margin : float
        The geometric margin, in (0, radius / 4].
    radius : float
        Radius of the ball, > 0.
    seed : int or None
        Seed of the hyperplane and the points.

    Returns
    -------
    X : np.ndarray, shape (n, n_in)
        The points.
    y : np.ndarray, shape (n,)
        Their labels, −1.0 or +1.0.
    w : np.ndarray, shape (n_in,)
        The separator's weights, with ‖w‖ = 1.
    b : float
        Its bias.

    Raises
    ------
    ValueError
        If ``n``, ``n_in``, ``margin`` or ``radius`` is out of range.
    """
    check_positive(n, "n", integer=True)
    check_positive(n_in, "n_in", integer=True)
    check_positive(radius, "radius")
    if n < 2:
        raise ValueError(f"n: expected at least 2 points (one per class), got {n}")
    if not (isinstance(margin, (int, float, np.number)) and 0 < margin <= radius / 4):
        raise ValueError(f"margin: expected a number in (0, radius/4 = {radius / 4:g}], "
                         f"got {margin!r}")
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(n_in)
    w /= np.linalg.norm(w)
    p = _in_ball(rng, 1, n_in, radius / 4)[0]              # a point of the hyperplane
    b = -float(w @ p)
    X = np.empty((0, n_in))
    while len(X) < n - 2:
        cand = _in_ball(rng, 2 * n, n_in, radius)
        X = np.vstack([X, cand[np.abs(cand @ w + b) >= margin]])
    X = np.vstack([p + margin * w, p - margin * w, X[:n - 2]])
    y = np.where(X @ w + b > 0, 1.0, -1.0)
    return X, y, w, b


def _in_ball(rng, n, d, radius):
    # Uniform in the d-ball: a uniform direction times radius · U^(1/d).
    g = rng.standard_normal((n, d))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    return g * (radius * rng.random((n, 1)) ** (1.0 / d))


def xor_data() -> tuple[np.ndarray, np.ndarray]:
    """The XOR problem: the corners of the unit square, +1 where exactly one input is 1.

    Returns
    -------
    X : np.ndarray, shape (4, 2)
        The four corners.
    y : np.ndarray, shape (4,)
        +1.0 where exactly one input is 1, else −1.0.
    """
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([-1.0, 1.0, 1.0, -1.0])
    return X, y
