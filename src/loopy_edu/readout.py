"""The linear readout ``y_t = W_out h_t + b_out`` of a recurrent network and its losses over a
sequence (Chapter 5). Shared by the RNN, its two exact gradients (BPTT and RTRL) and the LSTM.

With a mask ``m`` (T, B), the batch mean of the masked sum over time is

- ``"mse"``:  L = (1/B) Σ_b Σ_t m_tb · ½‖y_tb − target_tb‖²,
  ∂L/∂y_tb = m_tb (y_tb − target_tb) / B;
- ``"xent"``: L = (1/B) Σ_b Σ_t m_tb · CE(softmax(y_tb), target_tb),
  ∂L/∂y_tb = m_tb (softmax(y_tb) − target_tb) / B,

where the cross-entropy's targets are probability vectors (one-hot for labels).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import DTypeLike

from .activations import log_softmax, softmax
from .backend import check_backend
from .checks import check_array, check_choice, check_params
from .model import Model

if TYPE_CHECKING:
    from .tasks import Task

LOSSES = ("mse", "xent")


def check_sequences(xs: np.ndarray, targets: np.ndarray, mask: np.ndarray | None, n_in: int,
                    n_out: int, dtype: DTypeLike, loss: str
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Validate a batch of sequences; return ``(xs, targets, mask)`` shaped (T, B, n_in),
    (T, B, n_out), (T, B) and whether the caller passed unbatched (T, n_in) inputs.

    Parameters
    ----------
    xs : np.ndarray, shape (T, n_in) or (T, B, n_in)
        Inputs.
    targets : np.ndarray, shape (T, n_out) or (T, B, n_out)
        Targets, batched like ``xs``; probability vectors on the masked-in steps for ``"xent"``.
    mask : np.ndarray, shape (T,) or (T, B), or None
        Non-negative weight of each step's loss; None counts every step.
    n_in : int
        The model's number of inputs.
    n_out : int
        The model's number of outputs.
    dtype : dtype
        The model's dtype; the arrays must hold it.
    loss : str
        ``"mse"`` or ``"xent"``.

    Returns
    -------
    xs : np.ndarray, shape (T, B, n_in)
    targets : np.ndarray, shape (T, B, n_out)
    mask : np.ndarray, shape (T, B)
    unbatched : bool
        True when the caller passed (T, n_in) inputs, which are returned with B = 1.

    Raises
    ------
    ValueError
        Naming the argument with a wrong shape or dtype, non-finite or negative entries, an
        unknown ``loss``, or ``"xent"`` targets that are not probability vectors.
    """
    check_choice(loss, "loss", LOSSES)
    xs = check_array(xs, "xs", dtype=dtype)
    if xs.ndim not in (2, 3) or xs.shape[-1] != n_in:
        raise ValueError(f"xs: expected shape (T, {n_in}) or (T, B, {n_in}), got {xs.shape}")
    unbatched = xs.ndim == 2
    if unbatched:
        xs = xs[:, None, :]
    T, B = xs.shape[:2]
    want = (T, n_out) if unbatched else (T, B, n_out)
    targets = check_array(targets, "targets", shape=want, dtype=dtype).reshape(T, B, n_out)
    if mask is None:
        mask = np.ones((T, B), dtype=dtype)
    else:
        mask = check_array(mask, "mask", shape=(T,) if unbatched else (T, B),
                           dtype=dtype).reshape(T, B)
        if np.any(mask < 0):
            raise ValueError("mask: expected non-negative weights, got negative entries")
    if loss == "xent":
        on = mask > 0
        rows = targets[on]
        if np.any(rows < 0) or not np.allclose(rows.sum(axis=-1), 1.0, atol=1e-6):
            raise ValueError("targets: expected probability vectors (non-negative, summing to "
                             "1) on the masked-in steps for loss 'xent'")
    return xs, targets, mask, unbatched


def as_sequences(data: Task | np.ndarray, targets: np.ndarray | None = None,
                 loss: str | None = None, mask: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, str, np.ndarray | None]:
    """``(xs, targets, loss, mask)`` from a :class:`loopy_edu.tasks.Task`, which carries its own
    loss and mask, or from arrays, which then need ``loss``: a default would score a task with
    the wrong loss without a word.

    Parameters
    ----------
    data : Task or np.ndarray
        A Task, passed alone, or the inputs xs.
    targets : np.ndarray or None
        The targets, with array inputs; None with a Task.
    loss : str or None
        ``"mse"`` or ``"xent"``, required with array inputs; None with a Task.
    mask : np.ndarray or None
        The mask, with array inputs (None counts every step); None with a Task.

    Returns
    -------
    tuple of (np.ndarray, np.ndarray, str, np.ndarray or None)
        ``(xs, targets, loss, mask)``, not yet checked (:func:`check_sequences` does that).

    Raises
    ------
    ValueError
        If arrays come without ``loss``, a lone ``data`` is not a Task, or a Task comes with
        ``loss`` or ``mask``.
    """
    if targets is None:
        if not all(hasattr(data, a) for a in ("xs", "targets", "mask", "loss")):
            raise ValueError(f"targets: expected target arrays (with loss=), or a Task as the "
                             f"first argument, got {type(data).__name__} alone")
        if loss is not None or mask is not None:
            raise ValueError("loss, mask: a Task carries its own; pass the Task alone, or "
                             "arrays with loss= and mask=")
        return data.xs, data.targets, data.loss, data.mask
    if loss is None:
        raise ValueError(f"loss: expected one of {list(LOSSES)} with arrays (there is no "
                         "default), or pass the Task itself, which carries its loss and mask")
    return data, targets, loss, mask


def readout(W_out: np.ndarray, b_out: np.ndarray, hs: np.ndarray) -> np.ndarray:
    """Outputs ``y_t = W_out h_t + b_out`` for hidden states hs (..., N).

    Parameters
    ----------
    W_out : np.ndarray, shape (n_out, N)
    b_out : np.ndarray, shape (n_out,)
    hs : np.ndarray, shape (..., N)

    Returns
    -------
    np.ndarray, shape (..., n_out)
    """
    return hs @ W_out.T + b_out


def sequence_loss(ys: np.ndarray, targets: np.ndarray, mask: np.ndarray,
                  loss: str) -> tuple[float, np.ndarray]:
    """The masked loss and ``dys = ∂L/∂y`` for outputs ys (T, B, n_out).

    Parameters
    ----------
    ys, targets : np.ndarray, shape (T, B, n_out)
    mask : np.ndarray, shape (T, B)
    loss : str
        ``"mse"`` or ``"xent"`` (module docstring).

    Returns
    -------
    loss : float
    dys : np.ndarray, shape (T, B, n_out)
    """
    B = ys.shape[1]
    m = mask[..., None]                                         # (T, B, 1)
    if loss == "mse":
        r = ys - targets
        return float(0.5 * np.sum(m * r * r) / B), m * r / B
    ce = -np.sum(targets * log_softmax(ys.reshape(-1, ys.shape[-1])).reshape(ys.shape), axis=-1)
    p = softmax(ys.reshape(-1, ys.shape[-1])).reshape(ys.shape)
    return float(np.sum(mask * ce) / B), m * (p - targets) / B


def readout_grads(W_out: np.ndarray, hs: np.ndarray,
                  dys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward through ``y_t = W_out h_t + b_out`` for all steps at once.

    Parameters
    ----------
    W_out : np.ndarray, shape (n_out, N)
    hs : np.ndarray, shape (T, B, N)
    dys : np.ndarray, shape (T, B, n_out)
        ``∂L/∂y_t``.

    Returns
    -------
    gW_out : np.ndarray, shape (n_out, N)
    gb_out : np.ndarray, shape (n_out,)
    dhs : np.ndarray, shape (T, B, N)
        ``∂L/∂h_t`` through the readout only.
    """
    N, n_out = hs.shape[-1], dys.shape[-1]
    gW_out = dys.reshape(-1, n_out).T @ hs.reshape(-1, N)       # Σ_t Σ_b dy_tb h_tbᵀ
    gb_out = dys.reshape(-1, n_out).sum(axis=0)
    return gW_out, gb_out, dys @ W_out


class RecurrentModel(Model):
    """What the recurrent models share (Chapters 5 and 7): checked weights, a readout of the
    states, and the masked loss. A subclass sets ``params``, ``n_in``, ``n_out``, ``dtype`` and
    ``backend`` and defines ``shapes()``, ``states(xs, backend)`` (hs (T, B, N) for xs
    (T, B, n_in)) and ``loss_and_grads(data, targets=None, loss=None, mask=None, ...)``, which
    takes a Task or arrays (:func:`as_sequences`)."""

    def weights(self) -> tuple[np.ndarray, ...]:
        """The checked parameters as a tuple of C-contiguous arrays, in the order of
        ``shapes()``.

        Returns
        -------
        tuple of np.ndarray

        Raises
        ------
        ValueError
            Naming the key of a parameter with a wrong shape or dtype, or NaN or inf.
        """
        return tuple(np.ascontiguousarray(p)
                     for p in check_params(self.params, self.shapes(), self.dtype))

    def forward(self, xs: np.ndarray,
                backend: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """States and outputs for xs (T, n_in) or (T, B, n_in), from a zero initial state.

        Parameters
        ----------
        xs : np.ndarray, shape (T, n_in) or (T, B, n_in)
        backend : str or None
            ``"numpy"``, ``"numba"`` or ``"cuda"``; None uses the model's.

        Returns
        -------
        hs : np.ndarray, shape (T, N) or (T, B, N)
            The states, batched like ``xs``.
        ys : np.ndarray, shape (T, n_out) or (T, B, n_out)
            The outputs.

        Raises
        ------
        ValueError
            If ``xs`` has a wrong shape or dtype or non-finite entries, or a parameter is
            invalid (naming its key).
        """
        xs = check_array(xs, "xs", dtype=self.dtype)
        if xs.ndim not in (2, 3) or xs.shape[-1] != self.n_in:
            raise ValueError(f"xs: expected shape (T, {self.n_in}) or (T, B, {self.n_in}), "
                             f"got {xs.shape}")
        *_, W_out, b_out = self.weights()
        hs = self.states(np.ascontiguousarray(xs[:, None] if xs.ndim == 2 else xs),
                         check_backend(backend or self.backend))
        ys = readout(W_out, b_out, hs)
        return (hs[:, 0], ys[:, 0]) if xs.ndim == 2 else (hs, ys)

    def predict(self, xs: np.ndarray, backend: str | None = None) -> np.ndarray:
        """Outputs ys (T, [B,] n_out).

        Parameters
        ----------
        xs : np.ndarray, shape (T, n_in) or (T, B, n_in)
        backend : str or None
            ``"numpy"``, ``"numba"`` or ``"cuda"``; None uses the model's.

        Returns
        -------
        np.ndarray, shape (T, n_out) or (T, B, n_out)

        Raises
        ------
        ValueError
            As :meth:`forward`.
        """
        return self.forward(xs, backend)[1]

    def loss(self, data: Task | np.ndarray, targets: np.ndarray | None = None,
             loss: str | None = None, mask: np.ndarray | None = None,
             backend: str | None = None) -> float:
        """The masked sequence loss, without gradients, of a Task, or of arrays xs
        (T, [B,] n_in) and targets (T, [B,] n_out) with ``loss`` ("mse" or "xent") and an
        optional mask (T, [B]).

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
        float

        Raises
        ------
        ValueError
            Naming the argument, as :func:`as_sequences` and :func:`check_sequences`.
        """
        xs, targets, loss, mask = as_sequences(data, targets, loss, mask)
        xs, targets, mask, _ = check_sequences(xs, targets, mask, self.n_in, self.n_out,
                                               self.dtype, loss)
        return sequence_loss(self.forward(xs, backend)[1], targets, mask, loss)[0]
