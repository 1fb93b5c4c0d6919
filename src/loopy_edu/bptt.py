"""Backpropagation through time for the leaky RNN (Chapter 5).

The network unrolled over T steps is a deep feed-forward network whose layers share weights, so
its gradient is backpropagation run backwards through the steps, with each shared weight's
gradient summed over them. It costs O(N² T) time, like the forward pass, and O(N T) memory for
the stored states.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .activations import ACTIVATIONS, CODES
from .backend import check_backend, kernels
from .checks import check_array, check_positive
from .readout import LOSSES, check_sequences, readout, readout_grads, sequence_loss

if TYPE_CHECKING:
    from .rnn import RNN  # for the annotations only: rnn imports bptt


def backward(params: dict[str, np.ndarray], xs: np.ndarray, hs: np.ndarray, acts: np.ndarray,
             dhs: np.ndarray, alpha: float, activation: str,
             truncation: int | None = None) -> dict[str, np.ndarray]:
    """The backward recursion through the recurrent layer.

    xs (T, B, n_in), hs and acts (T, B, N) from :func:`loopy_edu.rnn.forward`; dhs (T, B, N)
    is ∂L/∂h_t through the readout alone. Returns the gradients of ``W_in``, ``W_rec`` and
    ``b_rec``. With ``truncation=k`` the sequence is cut into windows of k steps, starting at
    steps 0, k, 2k, …, and no gradient crosses a window's start (truncated BPTT; the state still
    does). A loss late in a window thus sees up to k steps back, one at its start sees only its
    own step.

    Parameters
    ----------
    params : dict[str, np.ndarray]
        The RNN's parameters.
    xs : np.ndarray, shape (T, B, n_in)
    hs, acts : np.ndarray, shape (T, B, N)
    dhs : np.ndarray, shape (T, B, N)
    alpha : float
    activation : str
    truncation : int or None
        Window length k; None (or 0) is the exact gradient.

    Returns
    -------
    dict[str, np.ndarray]
        ``W_in``, ``W_rec`` and ``b_rec``, shaped like the parameters.
    """
    _, act_grad = ACTIVATIONS[activation]
    W_rec = params["W_rec"]
    T, B, N = hs.shape
    grads = {"W_in": np.zeros_like(params["W_in"]), "W_rec": np.zeros_like(W_rec),
             "b_rec": np.zeros_like(params["b_rec"])}
    dh = np.zeros((B, N), dtype=hs.dtype)              # ∂L/∂h_t through h_{t+1}, ..., h_T
    for t in range(T - 1, -1, -1):
        dh = dh + dhs[t]                               # all of ∂L/∂h_t
        du = alpha * dh * act_grad(acts[t])            # h_t = (1-α) h_{t-1} + α act(u_t)
        h_prev = hs[t - 1] if t > 0 else np.zeros_like(dh)
        grads["W_rec"] += du.T @ h_prev                # u_t = W_rec h_{t-1} + W_in x_t + b_rec
        grads["W_in"] += du.T @ xs[t]
        grads["b_rec"] += du.sum(axis=0)
        dh = (1 - alpha) * dh + du @ W_rec             # ∂L/∂h_{t-1} through h_t, by both paths
        if truncation and t % truncation == 0:
            dh = np.zeros_like(dh)
    return grads


def bptt(model: RNN, xs: np.ndarray, targets: np.ndarray, loss: str,
         mask: np.ndarray | None = None, truncation: int | None = None,
         backend: str | None = None) -> tuple[float, dict[str, np.ndarray]]:
    """The loss and its exact gradient for a :class:`loopy_edu.rnn.RNN`, by backpropagation
    through time.

    xs (T, [B,] n_in), targets (T, [B,] n_out), mask (T, [B]); ``loss`` is ``"mse"`` or
    ``"xent"`` (:mod:`loopy_edu.readout`). ``truncation=k`` gives truncated BPTT (windows of k
    steps); ``None`` is the exact gradient. Returns ``(loss, grads)`` with grads keyed like
    ``model.params``.

    Parameters
    ----------
    model : RNN
    xs : np.ndarray, shape (T, n_in) or (T, B, n_in)
    targets : np.ndarray, shape (T, n_out) or (T, B, n_out)
    loss : str
        ``"mse"`` or ``"xent"``.
    mask : np.ndarray, shape (T,) or (T, B), or None
        Non-negative weight of each step's loss; None counts every step.
    truncation : int or None
        Window length k of truncated BPTT; None is exact.
    backend : str or None
        ``"numpy"``, ``"numba"`` or ``"cuda"``; None uses the model's.

    Returns
    -------
    loss : float
    grads : dict[str, np.ndarray]
        Keyed and shaped like ``model.params``.

    Raises
    ------
    ValueError
        Naming the argument or parameter key that is invalid.
    """
    xs, targets, mask, _ = check_sequences(xs, targets, mask, model.n_in, model.n_out,
                                           model.dtype, loss)
    k = 0 if truncation is None else check_positive(truncation, "truncation", integer=True)
    backend = check_backend(backend or model.backend)
    W_in, W_rec, b_rec, W_out, b_out = model.weights()
    if backend != "numpy":
        value, grads = kernels("rnn", backend).loss_and_grads(
            W_in, W_rec, b_rec, W_out, b_out, xs, targets, mask, model.alpha,
            CODES[model.activation], LOSSES.index(loss), k)
        return float(value), dict(zip(model.params, grads))
    hs, acts = model.unroll(xs)
    value, dys = sequence_loss(readout(W_out, b_out, hs), targets, mask, loss)
    gW_out, gb_out, dhs = readout_grads(W_out, hs, dys)
    grads = backward(model.params, xs, hs, acts, dhs, model.alpha, model.activation, k or None)
    grads.update(W_out=gW_out, b_out=gb_out)
    return value, {name: grads[name] for name in model.params}


def lag_norms(model: RNN, xs: np.ndarray) -> np.ndarray:
    """‖∂h_T/∂h_{T−k}‖₂ for lags k = 0 … T−1 along one sequence xs (T, n_in) (Chapter 5).

    The chain rule makes it a product of step Jacobians
    ∂h_t/∂h_{t−1} = (1−α) I + α diag(act'(u_t)) W_rec; how fast the product's norm shrinks or
    grows with k is the vanishing or exploding gradient.

    Parameters
    ----------
    model : RNN
    xs : np.ndarray, shape (T, n_in)
        One unbatched sequence.

    Returns
    -------
    np.ndarray, shape (T,)
        The spectral norm at each lag k.

    Raises
    ------
    ValueError
        If ``xs`` has a wrong shape or dtype, or non-finite entries.
    """
    _, act_grad = ACTIVATIONS[model.activation]
    xs = check_array(xs, "xs", shape=(None, model.n_in), dtype=model.dtype)
    _, acts = model.unroll(xs[:, None])
    eye = np.eye(model.n_rec)
    product = eye                                      # ∂h_T/∂h_{T−k}, starting at k = 0
    norms = []
    for t in range(len(xs) - 1, -1, -1):
        norms.append(np.linalg.norm(product, 2))
        jac = ((1 - model.alpha) * eye
               + model.alpha * act_grad(acts[t, 0])[:, None] * model.params["W_rec"])
        product = product @ jac
    return np.array(norms)
