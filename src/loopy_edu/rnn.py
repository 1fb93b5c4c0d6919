"""The leaky recurrent network of Part II (Chapter 5).

Starting from ``h_0 = 0``, each step computes ::

    u_t = W_rec h_{t-1} + W_in x_t + b_rec
    h_t = (1 − α) h_{t-1} + α act(u_t)
    y_t = W_out h_t + b_out

``α = 1`` is the plain (Elman) network; ``α < 1`` makes each unit a leaky integrator with time
constant ``1/α`` steps. Its exact gradient comes two ways: backward in time
(:mod:`loopy_edu.bptt`, Chapter 5) and forward in time (:mod:`loopy_edu.rtrl`, Chapter 6).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import DTypeLike

from .activations import ACTIVATIONS, CODES
from .backend import DEFAULT, check_backend, kernels
from .checks import check_choice, check_dtype, check_number, check_positive
from .bptt import bptt
from .readout import RecurrentModel, as_sequences

if TYPE_CHECKING:
    from .tasks import Task


def step(params: dict[str, np.ndarray], h: np.ndarray, x: np.ndarray, alpha: float,
         activation: str) -> tuple[np.ndarray, np.ndarray]:
    """One step: returns ``h_t`` (B, N) and ``a_t = act(u_t)`` (B, N) from h_{t-1} (B, N) and
    x_t (B, n_in).

    Parameters
    ----------
    params : dict[str, np.ndarray]
        ``W_in`` (N, n_in), ``W_rec`` (N, N), ``b_rec`` (N,).
    h : np.ndarray, shape (B, N)
    x : np.ndarray, shape (B, n_in)
    alpha : float
        The leak, in (0, 1].
    activation : str
        ``"tanh"``, ``"sigmoid"`` or ``"relu"``.

    Returns
    -------
    h : np.ndarray, shape (B, N)
    a : np.ndarray, shape (B, N)
    """
    act, _ = ACTIVATIONS[activation]
    u = h @ params["W_rec"].T + x @ params["W_in"].T + params["b_rec"]     # (B, N)
    a = act(u)
    return (1 - alpha) * h + alpha * a, a


def forward(params: dict[str, np.ndarray], xs: np.ndarray, alpha: float,
            activation: str) -> tuple[np.ndarray, np.ndarray]:
    """Run the network over xs (T, B, n_in) from h_0 = 0; returns the states hs (T, B, N) and
    the activations a_t = act(u_t) (T, B, N), which the backward pass needs for act'(u_t).

    Parameters
    ----------
    params : dict[str, np.ndarray]
        As for :func:`step`.
    xs : np.ndarray, shape (T, B, n_in)
    alpha : float
    activation : str

    Returns
    -------
    hs, acts : np.ndarray, shape (T, B, N)
    """
    T, B, _ = xs.shape
    N = params["W_rec"].shape[0]
    hs = np.empty((T, B, N), dtype=xs.dtype)
    acts = np.empty_like(hs)
    h = np.zeros((B, N), dtype=xs.dtype)
    for t in range(T):
        h, acts[t] = step(params, h, xs[t], alpha, activation)
        hs[t] = h
    return hs, acts


class RNN(RecurrentModel):
    """A leaky RNN with ``n_in`` inputs, ``n_rec`` recurrent units and a linear readout of
    ``n_out``.

    ``params``: ``W_in`` (n_rec, n_in), ``W_rec`` (n_rec, n_rec), ``b_rec`` (n_rec,), ``W_out``
    (n_out, n_rec), ``b_out`` (n_out,). Weights start Gaussian with std 1/√fan_in, so ``W_rec``
    has a spectral radius near 1 (the edge between fading and exploding memory, Chapter 5); pass
    ``spectral_radius`` to rescale it exactly. Biases start at zero.

    Parameters
    ----------
    n_in : int
        Number of inputs.
    n_rec : int
        Number of recurrent units, N.
    n_out : int
        Number of outputs.
    alpha : float
        The leak, in (0, 1]; 1 is the plain network.
    activation : str
        ``"tanh"``, ``"sigmoid"`` or ``"relu"``.
    seed : int
        Seeds the initial weights.
    dtype : dtype
        A floating-point dtype for every parameter.
    backend : str
        ``"numpy"``, ``"numba"`` or ``"cuda"``.
    spectral_radius : float or None
        If given, ``W_rec`` is rescaled to this largest ``|eigenvalue|``.

    Raises
    ------
    ValueError
        Naming the argument that is out of range or not one of the choices.
    """

    def __init__(self, n_in: int, n_rec: int, n_out: int, alpha: float = 1.0,
                 activation: str = "tanh", seed: int = 0, dtype: DTypeLike = np.float64,
                 backend: str = DEFAULT, spectral_radius: float | None = None) -> None:
        for name, n in (("n_in", n_in), ("n_rec", n_rec), ("n_out", n_out)):
            check_positive(n, name, integer=True)
        self.activation = check_choice(activation, "activation", ACTIVATIONS)
        self.dtype = check_dtype(dtype)
        self.n_in, self.n_rec, self.n_out = n_in, n_rec, n_out
        self.alpha = check_number(alpha, "alpha", 0, 1, low_open=True)
        self.backend = check_backend(backend)
        self.seed, rng = seed, np.random.default_rng(seed)
        gauss = lambda rows, cols: rng.standard_normal((rows, cols)) / np.sqrt(cols)
        self.params = {"W_in": gauss(n_rec, n_in), "W_rec": gauss(n_rec, n_rec),
                       "b_rec": np.zeros(n_rec), "W_out": gauss(n_out, n_rec),
                       "b_out": np.zeros(n_out)}
        if spectral_radius is not None:
            self.params["W_rec"] *= (check_positive(spectral_radius, "spectral_radius")
                                     / self.spectral_radius())
        self.params = {k: v.astype(self.dtype) for k, v in self.params.items()}

    def config(self) -> dict[str, Any]:
        return dict(n_in=self.n_in, n_rec=self.n_rec, n_out=self.n_out, alpha=self.alpha,
                    activation=self.activation, seed=self.seed, dtype=self.dtype.name,
                    backend=self.backend)

    def spectral_radius(self) -> float:
        """The largest ``|eigenvalue|`` of ``W_rec``.

        Returns
        -------
        float
        """
        return float(np.max(np.abs(np.linalg.eigvals(self.params["W_rec"]))))

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every parameter, in the order of ``params``.

        Returns
        -------
        dict[str, tuple of int]
        """
        N = self.n_rec
        return {"W_in": (N, self.n_in), "W_rec": (N, N), "b_rec": (N,),
                "W_out": (self.n_out, N), "b_out": (self.n_out,)}

    def states(self, xs: np.ndarray, backend: str) -> np.ndarray:
        """States hs (T, B, N) for xs (T, B, n_in), from h_0 = 0.

        Parameters
        ----------
        xs : np.ndarray, shape (T, B, n_in)
            C-contiguous, of the model's dtype (unchecked: :meth:`forward` checks).
        backend : str
            ``"numpy"``, ``"numba"`` or ``"cuda"``.

        Returns
        -------
        np.ndarray, shape (T, B, N)
        """
        W_in, W_rec, b_rec, _, _ = self.weights()
        if backend == "numpy":
            return forward(self.params, xs, self.alpha, self.activation)[0]
        return kernels("rnn", backend).forward(W_in, W_rec, b_rec, xs, self.alpha,
                                               CODES[self.activation])[0]

    def unroll(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The NumPy forward pass over xs (T, B, n_in): the states hs and the activations
        act(u_t), both (T, B, N), which the backward pass needs (:func:`forward`).

        Parameters
        ----------
        xs : np.ndarray, shape (T, B, n_in)

        Returns
        -------
        hs, acts : np.ndarray, shape (T, B, N)
        """
        return forward(self.params, xs, self.alpha, self.activation)

    def loss_and_grads(self, data: Task | np.ndarray, targets: np.ndarray | None = None,
                       loss: str | None = None, mask: np.ndarray | None = None,
                       truncation: int | None = None, backend: str | None = None
                       ) -> tuple[float, dict[str, np.ndarray]]:
        """The loss and its exact gradient by BPTT (:func:`loopy_edu.bptt.bptt`) on a Task, or
        on arrays xs (T, [B,] n_in), targets (T, [B,] n_out) with ``loss`` and an optional mask
        (T, [B]).

        Parameters
        ----------
        data : Task or np.ndarray
            A :class:`loopy_edu.tasks.Task` (alone), or the inputs xs, shape (T, [B,] n_in).
        targets : np.ndarray or None
            Shape (T, [B,] n_out), with array inputs.
        loss : str or None
            ``"mse"`` or ``"xent"``, required with array inputs.
        mask : np.ndarray or None
            Shape (T, [B]), with array inputs; None counts every step.
        truncation : int or None
            Truncated BPTT with windows of this many steps; None is exact.
        backend : str or None
            ``"numpy"``, ``"numba"`` or ``"cuda"``; None uses the model's.

        Returns
        -------
        loss : float
        grads : dict[str, np.ndarray]
            Keyed and shaped like ``params``.

        Raises
        ------
        ValueError
            Naming the argument or parameter key that is invalid.
        """
        xs, targets, loss, mask = as_sequences(data, targets, loss, mask)
        return bptt(self, xs, targets, loss, mask, truncation, backend)
