"""The multilayer perceptron and backpropagation written by hand (Chapter 3).

Notation matches the book: layer ``l = 1..L`` computes ``z_l = a_{l-1} W_lᵀ + b_l`` and
``a_l = act(z_l)``, except the last layer, which stays linear and gives the logits ``z_L``.
The loss is the mean softmax cross-entropy over the batch (``loss="xent"``, classification) or
half the squared error summed over outputs and averaged over the batch (``loss="mse"``,
regression, Chapter 1).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .activations import ACTIVATIONS, CODES, log_softmax, softmax
from .backend import DEFAULT, check_backend, kernels
from .checks import (check_array, check_choice, check_dtype, check_labels, check_number,
                     check_params)
from .model import Model


def init_std(scheme: str | float, fan_in: int, fan_out: int) -> float:
    """The std of a layer's initial weights under ``scheme`` (Chapter 4).

    ``"glorot"``: √(2 / (fan_in + fan_out)), which keeps sigmoid and tanh units near their
    linear range. ``"he"``: √(2 / fan_in), which makes up for ReLU zeroing half its inputs. A
    number is used as the std itself, to show what a badly chosen scale does.

    Parameters
    ----------
    scheme : str or float
        ``"glorot"``, ``"he"`` or a non-negative std.
    fan_in, fan_out : int
        The layer's numbers of inputs and outputs.

    Returns
    -------
    float
        The std.

    Raises
    ------
    ValueError
        If ``scheme`` is another string, or not a finite non-negative number.
    """
    if isinstance(scheme, str) and scheme == "glorot":
        return np.sqrt(2.0 / (fan_in + fan_out))
    if isinstance(scheme, str) and scheme == "he":
        return np.sqrt(2.0 / fan_in)
    if isinstance(scheme, (int, float, np.integer, np.floating)) \
            and not isinstance(scheme, bool) and np.isfinite(scheme) and scheme >= 0:
        return float(scheme)
    raise ValueError(f"init: expected 'glorot', 'he' or a non-negative std, got {scheme!r}")


def init_weight(fan_out: int, fan_in: int, scheme: str | float, rng: np.random.Generator,
                dtype: DTypeLike = np.float64) -> np.ndarray:
    """A weight matrix (fan_out, fan_in) drawn from N(0, std²) with std = :func:`init_std`
    (Chapter 4).

    Parameters
    ----------
    fan_out, fan_in : int
        The layer's numbers of outputs and inputs.
    scheme : str or float
        ``"glorot"``, ``"he"`` or a std, as in :func:`init_std`.
    rng : np.random.Generator
        The generator to draw from.
    dtype : dtype-like
        The dtype of the result.

    Returns
    -------
    np.ndarray, shape (fan_out, fan_in)
        The weights.
    """
    std = init_std(scheme, fan_in, fan_out)
    return (std * rng.standard_normal((fan_out, fan_in))).astype(dtype)


def forward(params: dict[str, np.ndarray], X: np.ndarray, activation: str,
            masks: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """Forward pass; returns the list ``[a_0 = X, a_1, ..., a_L]`` with ``a_L`` the logits.

    Parameters
    ----------
    params : dict[str, np.ndarray]
        ``"W{l}"`` (n_l, n_{l-1}) and ``"b{l}"`` (n_l,) for l = 1..L.
    X : np.ndarray, shape (B, n_0)
        Inputs.
    activation : str
        The hidden layers' activation: ``"sigmoid"``, ``"tanh"`` or ``"relu"``.
    masks : list of np.ndarray or None
        ``masks[l-1]`` (B, n_l), when given, multiplies hidden layer ``l`` (inverted dropout).

    Returns
    -------
    list of np.ndarray
        ``a_l`` (B, n_l) for l = 0..L.
    """
    act, _ = ACTIVATIONS[activation]
    L = len(params) // 2
    a = [X]
    for l in range(1, L + 1):
        z = a[-1] @ params[f"W{l}"].T + params[f"b{l}"]       # (B, n_l)
        if l < L:
            z = act(z)
            if masks is not None:
                z = z * masks[l - 1]
        a.append(z)
    return a


def output_delta(z: np.ndarray, y: np.ndarray, loss: str = "xent") -> tuple[float, np.ndarray]:
    """The loss and ``δ_L = ∂loss/∂z_L`` for the network's output z (B, n_L).

    ``"xent"``: y (B,) integer labels, loss = mean −log softmax(z)[y],
    δ_L = (softmax(z) − onehot(y)) / B. ``"mse"``: y (B, n_L) targets, loss = Σ ½‖z − y‖² / B,
    δ_L = (z − y) / B.

    Parameters
    ----------
    z : np.ndarray, shape (B, n_L)
        The network's output (the logits for ``"xent"``).
    y : np.ndarray, shape (B,) or (B, n_L)
        Integer labels for ``"xent"``, targets for ``"mse"``.
    loss : str
        ``"xent"`` or ``"mse"``.

    Returns
    -------
    loss : float
        The loss on the batch.
    delta : np.ndarray, shape (B, n_L)
        δ_L.
    """
    B = z.shape[0]
    if loss == "xent":
        rows = np.arange(B)
        value = -log_softmax(z)[rows, y].mean()
        delta = softmax(z)
        delta[rows, y] -= 1.0
    else:
        delta = z - y
        value = 0.5 * np.sum(delta * delta) / B
    return value, delta / B


def backward(params: dict[str, np.ndarray], a: list[np.ndarray], y: np.ndarray, activation: str,
             loss: str = "xent") -> tuple[float, dict[str, np.ndarray]]:
    """Backward pass; returns ``(loss, grads)``, ``grads`` keyed like ``params`` (Chapter 3).

    ``a`` is the list from :func:`forward`. Starting from δ_L (:func:`output_delta`), the δ
    recursion is ``δ_{l-1} = (δ_l W_l) ⊙ act'(z_{l-1})``, and each layer's gradients are
    ``∂loss/∂W_l = δ_lᵀ a_{l-1}`` and ``∂loss/∂b_l = Σ_batch δ_l``.

    Parameters
    ----------
    params : dict[str, np.ndarray]
        ``"W{l}"`` (n_l, n_{l-1}) and ``"b{l}"`` (n_l,) for l = 1..L.
    a : list of np.ndarray
        ``a_l`` (B, n_l) for l = 0..L, from :func:`forward` without dropout.
    y : np.ndarray, shape (B,) or (B, n_L)
        Integer labels for ``"xent"``, targets for ``"mse"``.
    activation : str
        The hidden layers' activation, as in :func:`forward`.
    loss : str
        ``"xent"`` or ``"mse"``.

    Returns
    -------
    loss : float
        The loss on the batch.
    grads : dict[str, np.ndarray]
        The exact gradient, with the keys and shapes of ``params``.
    """
    _, act_grad = ACTIVATIONS[activation]
    L = len(params) // 2
    value, delta = output_delta(a[L], y, loss)                 # (B, n_L)
    grads = {}
    for l in range(L, 0, -1):
        grads[f"W{l}"] = delta.T @ a[l - 1]                    # (n_l, n_{l-1})
        grads[f"b{l}"] = delta.sum(axis=0)                     # (n_l,)
        if l > 1:
            delta = delta @ params[f"W{l}"]                    # (B, n_{l-1}): ∂loss/∂a_{l-1}
            delta = delta * act_grad(a[l - 1])                 # (B, n_{l-1}): δ_{l-1}
    return value, {k: grads[k] for k in params}


def dropout_delta(d_a: np.ndarray, a: np.ndarray, mask: np.ndarray,
                  act_grad: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """δ = ∂loss/∂z of a hidden layer from ``d_a = ∂loss/∂a`` (B, n) when dropout multiplied its
    output by ``mask`` (B, n) (Chapter 4): a = act(z) ⊙ m, so ∂a/∂z = act'(z) ⊙ m, where act'
    needs the unmasked act(z) = a / m (dropped units pass no gradient whatever it is).

    Parameters
    ----------
    d_a : np.ndarray, shape (B, n)
        ∂loss/∂a of the layer.
    a : np.ndarray, shape (B, n)
        The layer's masked output act(z) ⊙ m.
    mask : np.ndarray, shape (B, n)
        The dropout mask m: 0 for a dropped unit, 1 / keep otherwise.
    act_grad : callable
        The activation's derivative written through its output, e.g.
        :func:`loopy_edu.activations.sigmoid_grad`.

    Returns
    -------
    np.ndarray, shape (B, n)
        δ of the layer.
    """
    h = np.divide(a, mask, out=np.zeros_like(a), where=mask != 0)
    return d_a * act_grad(h) * mask


def feedback_backward(params: dict[str, np.ndarray], a: list[np.ndarray], y: np.ndarray,
                      activation: str, feedback: dict[str, np.ndarray], direct: bool = False,
                      masks: list[np.ndarray] | None = None,
                      loss: str = "xent") -> tuple[float, dict[str, np.ndarray]]:
    """The backward pass with other matrices in the δ recursion (Chapter 8).

    :func:`backward` with one line changed: ``feedback["W{l}"]`` (l = 2..L) stands where ``W_l``
    stands, (n_l, n_{l-1}) for feedback alignment; with ``direct`` it is (n_L, n_{l-1}) and
    carries δ_L straight down, ``δ_{l-1} = (δ_L F_l) ⊙ act'(z_{l-1})`` (direct feedback
    alignment). The updates ``δ_lᵀ a_{l-1}`` are then no longer the gradient (but the last
    layer's still is). ``masks``, one (B, n_l) array per hidden layer, are dropout's
    (:func:`dropout_delta`).

    Parameters
    ----------
    params : dict[str, np.ndarray]
        ``"W{l}"`` (n_l, n_{l-1}) and ``"b{l}"`` (n_l,) for l = 1..L.
    a : list of np.ndarray
        ``a_l`` (B, n_l) for l = 0..L, from :func:`forward` (with the same ``masks``).
    y : np.ndarray, shape (B,) or (B, n_L)
        Integer labels for ``"xent"``, targets for ``"mse"``.
    activation : str
        The hidden layers' activation, as in :func:`forward`.
    feedback : dict[str, np.ndarray]
        ``"W{l}"`` for l = 2..L: (n_l, n_{l-1}), or (n_L, n_{l-1}) with ``direct``.
        ``feedback=params`` gives backprop.
    direct : bool
        Whether δ_L is sent straight to every hidden layer (direct feedback alignment).
    masks : list of np.ndarray or None
        The dropout masks used in :func:`forward`, one (B, n_l) per hidden layer.
    loss : str
        ``"xent"`` or ``"mse"``.

    Returns
    -------
    loss : float
        The loss on the batch.
    updates : dict[str, np.ndarray]
        ``δ_lᵀ a_{l-1}`` and ``Σ_batch δ_l``, with the keys and shapes of ``params``.
    """
    _, act_grad = ACTIVATIONS[activation]
    L = len(params) // 2
    value, top = output_delta(a[L], y, loss)                   # δ_L (B, n_L)
    delta, grads = top, {}
    for l in range(L, 0, -1):
        grads[f"W{l}"] = delta.T @ a[l - 1]
        grads[f"b{l}"] = delta.sum(axis=0)
        if l > 1:
            d_a = (top if direct else delta) @ feedback[f"W{l}"]   # the changed line
            delta = (d_a * act_grad(a[l - 1]) if masks is None
                     else dropout_delta(d_a, a[l - 1], masks[l - 2], act_grad))
    return value, {k: grads[k] for k in params}


class MLP(Model):
    """A fully connected network with hidden activation ``activation`` and a linear last layer.

    ``params["W{l}"]`` has shape (sizes[l], sizes[l-1]) and ``params["b{l}"]`` shape
    (sizes[l],). ``loss="xent"`` makes it a classifier of integer labels; ``loss="mse"`` a
    regressor of (B, n_L) targets. ``dropout`` is the probability of dropping each hidden unit
    during training (Chapter 4). ``init``: ``"auto"`` (He for ReLU, Glorot otherwise),
    ``"glorot"``, ``"he"`` or a std. A named scheme applies to the hidden layers and the linear
    output layer always gets Glorot; a std applies to every layer. Biases start at zero.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths ``[n_0, n_1, ..., n_L]``, inputs first; at least two.
    activation : str
        The hidden layers' activation: ``"sigmoid"``, ``"tanh"`` or ``"relu"``.
    seed : int or None
        Seed of the initial weights and of the dropout masks.
    dtype : dtype-like
        ``np.float32`` or ``np.float64``.
    backend : str
        Where the passes run by default: ``"numpy"``, ``"numba"`` or ``"cuda"``.
    init : str or float
        ``"auto"``, ``"glorot"``, ``"he"`` or a non-negative std.
    dropout : float
        Probability of dropping a hidden unit in training, in [0, 1).
    loss : str
        ``"xent"`` (classifier) or ``"mse"`` (regressor).

    Raises
    ------
    ValueError
        Naming the argument, if one is invalid.
    """

    def __init__(self, sizes: Sequence[int], activation: str = "sigmoid", seed: int | None = 0,
                 dtype: DTypeLike = np.float64, backend: str = DEFAULT,
                 init: str | float = "auto", dropout: float = 0.0, loss: str = "xent") -> None:
        sizes = tuple(sizes)
        if len(sizes) < 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in sizes):
            raise ValueError(f"sizes: expected at least two positive integers, got {sizes!r}")
        check_choice(activation, "activation", ACTIVATIONS)
        self.dtype = check_dtype(dtype)
        check_number(dropout, "dropout", 0, 1, high_open=True)
        self.loss_name = check_choice(loss, "loss", ("xent", "mse"))
        self.sizes, self.activation, self.dropout = sizes, activation, float(dropout)
        self.backend = check_backend(backend)
        self.seed, self.rng = seed, np.random.default_rng(seed)
        if init == "auto":
            init = "he" if activation == "relu" else "glorot"
        init_std(init, 1, 1)  # validate before any state is built
        self.init = init
        self.params = {}
        for l in range(1, len(sizes)):
            self.params[f"W{l}"] = init_weight(sizes[l], sizes[l - 1], self.init_scheme(l),
                                               self.rng, self.dtype)
            self.params[f"b{l}"] = np.zeros(sizes[l], dtype=self.dtype)

    def init_scheme(self, l: int) -> str | float:
        """The :func:`init_std` scheme that layer ``l`` (1..L) was initialised with.

        Parameters
        ----------
        l : int
            The layer, 1..L.

        Returns
        -------
        str or float
            ``"glorot"``, ``"he"`` or a std.
        """
        return self.init if l < self.n_layers or not isinstance(self.init, str) else "glorot"

    @property
    def n_layers(self) -> int:
        """The number L of weight layers, ``len(sizes) - 1``."""
        return len(self.sizes) - 1

    def config(self) -> dict[str, Any]:
        return dict(sizes=list(self.sizes), activation=self.activation, seed=self.seed,
                    dtype=self.dtype.name, backend=self.backend,
                    init=self.init if isinstance(self.init, str) else float(self.init),
                    dropout=self.dropout, loss=self.loss_name)

    def _check_X(self, X):
        return check_array(X, "X", shape=(None, self.sizes[0]), dtype=self.dtype)

    def dropout_masks(self, B: int) -> list[np.ndarray] | None:
        """Fresh inverted-dropout masks, one (B, n_l) array per hidden layer, or None without
        dropout.

        Parameters
        ----------
        B : int
            The batch size.

        Returns
        -------
        list of np.ndarray, or None
            ``masks[l-1]`` (B, n_l) holds 0 for a dropped unit and 1 / (1 − dropout) for a kept
            one; None when ``dropout`` is 0.
        """
        if self.dropout == 0.0:
            return None
        keep = 1.0 - self.dropout
        return [(self.rng.random((B, n)) < keep).astype(self.dtype) / self.dtype.type(keep)
                for n in self.sizes[1:-1]]

    def logits(self, X: ArrayLike, backend: str | None = None) -> np.ndarray:
        """Logits z_L (B, n_L) for inputs X (B, n_0), without dropout.

        Parameters
        ----------
        X : array_like, shape (B, n_0)
            Inputs.
        backend : str or None
            ``"numpy"``, ``"numba"`` or ``"cuda"``; None uses the model's.

        Returns
        -------
        np.ndarray, shape (B, n_L)
            The last layer's output z_L.

        Raises
        ------
        ValueError
            If ``X`` has another shape or non-finite values, ``backend`` is invalid, or a
            parameter is not a finite array of its shape and dtype.
        """
        X = self._check_X(X)
        backend = check_backend(backend or self.backend)
        weights = self._weights()
        if backend == "numpy":
            return forward(self.params, X, self.activation)[-1]
        return kernels("mlp", backend).logits(weights, X, CODES[self.activation])

    def predict_proba(self, X: ArrayLike, backend: str | None = None) -> np.ndarray:
        """Class probabilities (B, n_L).

        Parameters
        ----------
        X : array_like, shape (B, n_0)
            Inputs.
        backend : str or None
            ``"numpy"``, ``"numba"`` or ``"cuda"``; None uses the model's.

        Returns
        -------
        np.ndarray, shape (B, n_L)
            softmax(z_L); each row sums to 1.
        """
        return softmax(self.logits(X, backend))

    def predict(self, X: ArrayLike, backend: str | None = None) -> np.ndarray:
        """Predicted labels (B,) for a classifier; the outputs (B, n_L) for a regressor.

        Parameters
        ----------
        X : array_like, shape (B, n_0)
            Inputs.
        backend : str or None
            ``"numpy"``, ``"numba"`` or ``"cuda"``; None uses the model's.

        Returns
        -------
        np.ndarray, shape (B,) or (B, n_L)
            The argmax of the logits (``loss="xent"``), or z_L itself (``loss="mse"``).
        """
        z = self.logits(X, backend)
        return z.argmax(axis=1) if self.loss_name == "xent" else z

    def accuracy(self, X: ArrayLike, y: ArrayLike, batch_size: int = 10_000) -> float:
        """Fraction of ``y`` predicted correctly, evaluated in chunks to bound memory.

        Parameters
        ----------
        X : array_like, shape (B, n_0)
            Inputs.
        y : array_like, shape (B,)
            Integer labels in 0..n_L-1.
        batch_size : int
            Rows per chunk.

        Returns
        -------
        float
            The accuracy, in [0, 1].

        Raises
        ------
        ValueError
            If the MLP is a regressor, or ``X`` or ``y`` is invalid.
        """
        if self.loss_name != "xent":
            raise ValueError("accuracy: needs a classifier (loss='xent'); this MLP is a "
                             "regressor")
        X = self._check_X(X)
        y = self._check_y(y, X.shape[0])
        hits = sum(int((self.predict(X[i:i + batch_size]) == y[i:i + batch_size]).sum())
                   for i in range(0, len(y), batch_size))
        return hits / len(y)

    def _check_y(self, y, B):
        if self.loss_name == "xent":
            return check_labels(y, "y", self.sizes[-1], B)
        return check_array(y, "y", shape=(B, self.sizes[-1]), dtype=self.dtype)

    def loss(self, X: ArrayLike, y: ArrayLike) -> float:
        """The loss on (X, y) without dropout.

        Parameters
        ----------
        X : array_like, shape (B, n_0)
            Inputs.
        y : array_like, shape (B,) or (B, n_L)
            Integer labels (``loss="xent"``) or targets (``loss="mse"``).

        Returns
        -------
        float
            The mean loss over the batch.

        Raises
        ------
        ValueError
            If ``X`` or ``y`` is invalid, or a parameter is not a finite array of its shape and
            dtype.
        """
        X = self._check_X(X)
        return float(output_delta(self.logits(X), self._check_y(y, X.shape[0]),
                                  self.loss_name)[0])

    def loss_and_grads(self, X: ArrayLike, y: ArrayLike, masks: list[np.ndarray] | None = None,
                       backend: str | None = None, train: bool = True,
                       feedback: dict[str, np.ndarray] | None = None,
                       direct: bool = False) -> tuple[float, dict[str, np.ndarray]]:
        """The batch's loss and its exact gradient, keyed like ``params``.

        With ``dropout > 0`` and ``train``, fresh masks are drawn unless ``masks`` (one (B, n_l)
        array per hidden layer) is given. ``feedback`` and ``direct`` replace the weights of the
        backward pass, as in :func:`feedback_backward`; :mod:`loopy_edu.feedback_alignment`
        wraps them (Chapter 8).

        Parameters
        ----------
        X : array_like, shape (B, n_0)
            Inputs.
        y : array_like, shape (B,) or (B, n_L)
            Integer labels, or targets when ``loss="mse"``.
        masks : list of np.ndarray or None
            Dropout masks, one (B, n_l) per hidden layer, as from :meth:`dropout_masks`.
        backend : str or None
            ``"numpy"``, ``"numba"`` or ``"cuda"``; None uses the model's.
        train : bool
            Whether to draw dropout masks when ``masks`` is None.
        feedback : dict[str, np.ndarray] or None
            ``"W{l}"`` for l = 2..L, as in :func:`feedback_backward`; None for backprop.
        direct : bool
            Whether ``feedback`` is direct feedback alignment's.

        Returns
        -------
        loss : float
            The loss on the batch.
        grads : dict[str, np.ndarray]
            The exact gradient (the feedback rule's updates when ``feedback`` is given), with
            the keys and shapes of ``params``.

        Raises
        ------
        ValueError
            Naming the argument or key, if ``X``, ``y``, ``masks``, ``feedback`` or ``backend``
            is invalid, or a parameter is not a finite array of its shape and dtype.
        """
        X = self._check_X(X)
        y = self._check_y(y, X.shape[0])
        if masks is None and train:
            masks = self.dropout_masks(X.shape[0])
        if masks is not None:
            if len(masks) != self.n_layers - 1:
                raise ValueError(f"masks: expected {self.n_layers - 1} arrays "
                                 f"(one per hidden layer), got {len(masks)}")
            masks = [check_array(m, f"masks[{i}]", shape=(X.shape[0], n), dtype=self.dtype)
                     for i, (m, n) in enumerate(zip(masks, self.sizes[1:-1]))]
        backend = check_backend(backend or self.backend)
        weights = self._weights()  # also validates params, whatever the backend
        if feedback is not None:
            feedback = self._check_feedback(feedback, direct)
        if backend == "numpy":
            a = forward(self.params, X, self.activation, masks)
            if feedback is None and masks is None:
                loss, grads = backward(self.params, a, y, self.activation, self.loss_name)
            else:  # with feedback = the weights, feedback_backward is backprop
                loss, grads = feedback_backward(self.params, a, y, self.activation,
                                                feedback or self.params, direct, masks,
                                                self.loss_name)
            return float(loss), grads
        if feedback is not None:
            # The kernels index feedback like the weights; layer 1 has none, so its slot holds
            # W_1.
            feedback = weights[0][:1] + tuple(feedback[f"W{l}"]
                                              for l in range(2, self.n_layers + 1))
        loss, gWs, gbs = kernels("mlp", backend).loss_and_grads(
            weights, X, y, masks, CODES[self.activation], self.loss_name, feedback, direct)
        grads = {}
        for l in range(1, self.n_layers + 1):
            grads[f"W{l}"], grads[f"b{l}"] = gWs[l - 1], gbs[l - 1]
        return float(loss), grads

    def _weights(self):
        """The weights as the compiled kernels want them: tuples of contiguous arrays
        (Ws, bs)."""
        shapes = {}
        for l in range(1, self.n_layers + 1):
            shapes[f"W{l}"] = (self.sizes[l], self.sizes[l - 1])
            shapes[f"b{l}"] = (self.sizes[l],)
        ps = [np.ascontiguousarray(p) for p in check_params(self.params, shapes, self.dtype)]
        return tuple(ps[0::2]), tuple(ps[1::2])

    def _check_feedback(self, feedback, direct):
        """Contiguous copies of ``feedback["W{l}"]`` (l = 2..L), checked for shape and
        values."""
        wanted = {f"W{l}" for l in range(2, self.n_layers + 1)}
        if not isinstance(feedback, dict) or set(feedback) != wanted:
            got = sorted(feedback) if isinstance(feedback, dict) else type(feedback).__name__
            raise ValueError(f"feedback: expected a dict with keys {sorted(wanted)}, got {got}")
        out = {}
        for l in range(2, self.n_layers + 1):
            rows = self.sizes[-1] if direct else self.sizes[l]
            out[f"W{l}"] = np.ascontiguousarray(check_array(
                feedback[f"W{l}"], f"feedback['W{l}']", shape=(rows, self.sizes[l - 1]),
                dtype=self.dtype))
        return out
