"""The long short-term memory network (LSTM) and its gradient by BPTT, written by hand
(Chapter 7).

Starting from ``h_0 = c_0 = 0``, each step computes four gates from one stacked
pre-activation ::

    z_t = W_ih x_t + W_hh h_{t-1} + b                       (4H,) = [z_i, z_f, z_g, z_o]
    i = σ(z_i),  f = σ(z_f),  g = tanh(z_g),  o = σ(z_o)
    c_t = f ⊙ c_{t-1} + i ⊙ g
    h_t = o ⊙ tanh(c_t)
    y_t = W_out h_t + b_out

The gates are stacked in PyTorch's order (input, forget, cell, output), so ``W_ih`` rows
``[0:H]`` feed the input gate, ``[H:2H]`` the forget gate, and so on. The cell ``c_t`` is the
memory: along it the gradient is only rescaled by the forget gate, ``∂c_t/∂c_{t-1} = f``,
instead of passing through a squashing nonlinearity at every step. The readout and the losses
are those of the RNN (:mod:`loopy_edu.readout`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import DTypeLike

from .activations import sigmoid, tanh
from .backend import DEFAULT, check_backend, kernels
from .checks import check_dtype, check_positive
from .readout import (LOSSES, RecurrentModel, as_sequences, check_sequences, readout,
                      readout_grads, sequence_loss)

if TYPE_CHECKING:
    from .tasks import Task


def step(params: dict[str, np.ndarray], h: np.ndarray, c: np.ndarray,
         x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step from h_{t-1}, c_{t-1} (B, H) and x_t (B, n_in); returns ``h_t``, ``c_t`` (B, H)
    and the gates ``[i, f, g, o]`` (B, 4H) after their nonlinearities.

    Parameters
    ----------
    params : dict[str, np.ndarray]
        ``W_ih`` (4H, n_in), ``W_hh`` (4H, H), ``b`` (4H,).
    h, c : np.ndarray, shape (B, H)
    x : np.ndarray, shape (B, n_in)

    Returns
    -------
    h, c : np.ndarray, shape (B, H)
    gates : np.ndarray, shape (B, 4H)
    """
    z = x @ params["W_ih"].T + h @ params["W_hh"].T + params["b"]         # (B, 4H)
    z_i, z_f, z_g, z_o = np.split(z, 4, axis=1)
    i, f, g, o = sigmoid(z_i), sigmoid(z_f), tanh(z_g), sigmoid(z_o)
    c = f * c + i * g
    h = o * tanh(c)
    return h, c, np.concatenate([i, f, g, o], axis=1)


def forward(params: dict[str, np.ndarray],
            xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the LSTM over xs (T, B, n_in) from h_0 = c_0 = 0; returns the states hs, cells cs
    (T, B, H) and the gates (T, B, 4H), which the backward pass needs.

    Parameters
    ----------
    params : dict[str, np.ndarray]
        As for :func:`step`.
    xs : np.ndarray, shape (T, B, n_in)

    Returns
    -------
    hs, cs : np.ndarray, shape (T, B, H)
    gates : np.ndarray, shape (T, B, 4H)
    """
    T, B, _ = xs.shape
    H = params["W_hh"].shape[1]
    hs = np.empty((T, B, H), dtype=xs.dtype)
    cs = np.empty_like(hs)
    gates = np.empty((T, B, 4 * H), dtype=xs.dtype)
    h = np.zeros((B, H), dtype=xs.dtype)
    c = np.zeros_like(h)
    for t in range(T):
        h, c, gates[t] = step(params, h, c, xs[t])
        hs[t], cs[t] = h, c
    return hs, cs, gates


def backward(params: dict[str, np.ndarray], xs: np.ndarray, hs: np.ndarray, cs: np.ndarray,
             gates: np.ndarray, dhs: np.ndarray) -> dict[str, np.ndarray]:
    """BPTT through the cell (Chapter 7): the gradients of ``W_ih``, ``W_hh`` and ``b`` given
    ``dhs = ∂L/∂h_t`` (T, B, H) through the readout only.

    Going back in time, ``dh`` and ``dc`` collect what flows into step t from the readout and
    from step t+1; each line sits next to the local derivative it applies. ``dz`` (T, B, 4H) is
    kept for every step so that the weight gradients are three products after the loop.

    Parameters
    ----------
    params : dict[str, np.ndarray]
        The LSTM's parameters.
    xs : np.ndarray, shape (T, B, n_in)
    hs, cs : np.ndarray, shape (T, B, H)
    gates : np.ndarray, shape (T, B, 4H)
        From :func:`forward`.
    dhs : np.ndarray, shape (T, B, H)

    Returns
    -------
    dict[str, np.ndarray]
        ``W_ih``, ``W_hh`` and ``b``, shaped like the parameters.
    """
    W_hh = params["W_hh"]
    T, B, H = hs.shape
    dz = np.empty_like(gates)
    dh_next = np.zeros((B, H), dtype=hs.dtype)               # ∂L/∂h_t through step t+1
    dc_next = np.zeros_like(dh_next)                         # ∂L/∂c_t through step t+1
    for t in reversed(range(T)):
        i, f, g, o = np.split(gates[t], 4, axis=1)
        c_prev = cs[t - 1] if t > 0 else np.zeros_like(cs[t])
        tanh_c = tanh(cs[t])
        dh = dhs[t] + dh_next
        do = dh * tanh_c                                     # h = o ⊙ tanh(c)
        dc = dh * o * (1 - tanh_c**2) + dc_next
        di = dc * g                                          # c = f ⊙ c_prev + i ⊙ g
        dg = dc * i
        df = dc * c_prev
        dz[t] = np.concatenate([di * i * (1 - i),            # σ' = σ(1 − σ)
                                df * f * (1 - f),
                                dg * (1 - g**2),             # tanh' = 1 − tanh²
                                do * o * (1 - o)], axis=1)
        # z = W_ih x + W_hh h_prev + b, so ∂L/∂h_{t-1} = dz_t W_hh.
        dh_next = dz[t] @ W_hh
        dc_next = dc * f                                     # ∂L/∂c_{t-1}: the cell's own path
    n_in, G = xs.shape[-1], 4 * H
    # The initial state h_0 is 0, so the first step adds nothing to W_hh's sum.
    return {"W_ih": dz.reshape(-1, G).T @ xs.reshape(-1, n_in),          # Σ_t dz_t x_tᵀ
            "W_hh": dz[1:].reshape(-1, G).T @ hs[:-1].reshape(-1, H),    # Σ_t dz_t h_{t-1}ᵀ
            "b": dz.reshape(-1, G).sum(axis=0)}


class LSTM(RecurrentModel):
    """An LSTM with ``n_in`` inputs, ``n_hidden`` cells and a linear readout of ``n_out``
    (Chapter 7).

    ``params``: ``W_ih`` (4H, n_in), ``W_hh`` (4H, H), ``b`` (4H,), ``W_out`` (n_out, H),
    ``b_out`` (n_out,), with H = ``n_hidden`` and the gates stacked as input, forget, cell,
    output. As in PyTorch, ``W_ih`` and ``W_hh`` start uniform in [−1/√H, 1/√H]. The forget
    gate's bias starts at ``forget_bias``, +1 by default (Gers et al., gers2000), so that
    f ≈ 0.73 and the cell remembers from the first step; a larger bias keeps memories longer at
    first (Chapter 7). The other biases start at 0. ``W_out`` starts Gaussian with std 1/√H and
    ``b_out`` at 0.

    Parameters
    ----------
    n_in : int
        Number of inputs.
    n_hidden : int
        Number of cells, H.
    n_out : int
        Number of outputs.
    seed : int
        Seeds the initial weights.
    dtype : dtype
        A floating-point dtype for every parameter.
    backend : str
        ``"numpy"``, ``"numba"`` or ``"cuda"``.
    forget_bias : float
        The forget gate's initial bias.

    Raises
    ------
    ValueError
        Naming the argument that is out of range, not finite or not one of the choices.
    """

    def __init__(self, n_in: int, n_hidden: int, n_out: int, seed: int = 0,
                 dtype: DTypeLike = np.float64, backend: str = DEFAULT,
                 forget_bias: float = 1.0) -> None:
        for name, n in (("n_in", n_in), ("n_hidden", n_hidden), ("n_out", n_out)):
            check_positive(n, name, integer=True)
        self.dtype = check_dtype(dtype)
        self.n_in, self.n_hidden, self.n_out = n_in, n_hidden, n_out
        self.backend = check_backend(backend)
        H = n_hidden
        self.seed, rng = seed, np.random.default_rng(seed)
        bound = 1 / np.sqrt(H)
        b = np.zeros(4 * H)
        if not (isinstance(forget_bias, (int, float, np.number)) and np.isfinite(forget_bias)):
            raise ValueError(f"forget_bias: expected a finite number, got {forget_bias!r}")
        self.forget_bias = float(forget_bias)
        b[H:2 * H] = forget_bias                             # rows H..2H-1 feed the forget gate
        self.params = {"W_ih": rng.uniform(-bound, bound, (4 * H, n_in)),
                       "W_hh": rng.uniform(-bound, bound, (4 * H, H)), "b": b,
                       "W_out": rng.standard_normal((n_out, H)) / np.sqrt(H),
                       "b_out": np.zeros(n_out)}
        self.params = {k: v.astype(self.dtype) for k, v in self.params.items()}

    def config(self) -> dict[str, Any]:
        return dict(n_in=self.n_in, n_hidden=self.n_hidden, n_out=self.n_out, seed=self.seed,
                    dtype=self.dtype.name, backend=self.backend, forget_bias=self.forget_bias)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every parameter, in the order of ``params``.

        Returns
        -------
        dict[str, tuple of int]
        """
        H = self.n_hidden
        return {"W_ih": (4 * H, self.n_in), "W_hh": (4 * H, H), "b": (4 * H,),
                "W_out": (self.n_out, H), "b_out": (self.n_out,)}

    def states(self, xs: np.ndarray, backend: str) -> np.ndarray:
        """States hs (T, B, H) for xs (T, B, n_in), from h_0 = c_0 = 0.

        Parameters
        ----------
        xs : np.ndarray, shape (T, B, n_in)
            C-contiguous, of the model's dtype (unchecked: :meth:`forward` checks).
        backend : str
            ``"numpy"``, ``"numba"`` or ``"cuda"``.

        Returns
        -------
        np.ndarray, shape (T, B, H)
        """
        W_ih, W_hh, b, _, _ = self.weights()
        if backend == "numpy":
            return forward(self.params, xs)[0]
        return kernels("lstm", backend).forward(W_ih, W_hh, b, xs)[0]

    def loss_and_grads(self, data: Task | np.ndarray, targets: np.ndarray | None = None,
                       loss: str | None = None, mask: np.ndarray | None = None,
                       backend: str | None = None) -> tuple[float, dict[str, np.ndarray]]:
        """The loss and its exact gradient by BPTT, keyed like ``params``, on a Task or on
        arrays xs (T, [B,] n_in), targets (T, [B,] n_out) with ``loss`` and an optional mask
        (T, [B]) (:func:`loopy_edu.readout.as_sequences`).

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
        xs, targets, mask, _ = check_sequences(xs, targets, mask, self.n_in, self.n_out,
                                               self.dtype, loss)
        backend = check_backend(backend or self.backend)
        weights = self.weights()  # also validates params, whatever the backend
        if backend == "numpy":
            W_out = self.params["W_out"]
            hs, cs, gates = forward(self.params, xs)
            value, dys = sequence_loss(readout(W_out, self.params["b_out"], hs), targets, mask,
                                       loss)
            gW_out, gb_out, dhs = readout_grads(W_out, hs, dys)
            grads = backward(self.params, xs, hs, cs, gates, dhs)
            return value, {**grads, "W_out": gW_out, "b_out": gb_out}
        value, *grads = kernels("lstm", backend).loss_and_grads(
            *weights, np.ascontiguousarray(xs), np.ascontiguousarray(targets),
            np.ascontiguousarray(mask), LOSSES.index(loss))
        return float(value), dict(zip(self.shapes(), grads))
