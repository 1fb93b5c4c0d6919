"""The linear readout ``y_t = W_out h_t + b_out`` of a recurrent network and its losses over a sequence
(Chapter 5). Shared by the RNN, its two exact gradients (BPTT and RTRL) and the LSTM.

With a mask ``m`` (T, B), the batch mean of the masked sum over time is

- ``"mse"``:  L = (1/B) Σ_b Σ_t m_tb · ½‖y_tb − target_tb‖²,  ∂L/∂y_tb = m_tb (y_tb − target_tb) / B;
- ``"xent"``: L = (1/B) Σ_b Σ_t m_tb · CE(softmax(y_tb), target_tb),  ∂L/∂y_tb = m_tb (softmax(y_tb) − target_tb) / B,

where the cross-entropy's targets are probability vectors (one-hot for labels).
"""
import numpy as np

from .activations import log_softmax, softmax
from .backend import check_backend
from .checks import check_array, check_choice, check_params
from .model import Model

LOSSES = ("mse", "xent")


def check_sequences(xs, targets, mask, n_in, n_out, dtype, loss):
    """Validate a batch of sequences; return ``(xs, targets, mask)`` shaped (T, B, n_in), (T, B, n_out),
    (T, B) and whether the caller passed unbatched (T, n_in) inputs."""
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
        mask = check_array(mask, "mask", shape=(T,) if unbatched else (T, B), dtype=dtype).reshape(T, B)
        if np.any(mask < 0):
            raise ValueError("mask: expected non-negative weights, got negative entries")
    if loss == "xent":
        on = mask > 0
        rows = targets[on]
        if np.any(rows < 0) or not np.allclose(rows.sum(axis=-1), 1.0, atol=1e-6):
            raise ValueError("targets: expected probability vectors (non-negative, summing to 1) on the "
                             "masked-in steps for loss 'xent'")
    return xs, targets, mask, unbatched


def as_sequences(data, targets=None, loss=None, mask=None):
    """``(xs, targets, loss, mask)`` from a :class:`loopy_edu.tasks.Task`, which carries its own loss and
    mask, or from arrays, which then need ``loss``: a default would score a task with the wrong loss
    without a word."""
    if targets is None:
        if not all(hasattr(data, a) for a in ("xs", "targets", "mask", "loss")):
            raise ValueError(f"targets: expected target arrays (with loss=), or a Task as the first "
                             f"argument, got {type(data).__name__} alone")
        if loss is not None or mask is not None:
            raise ValueError("loss, mask: a Task carries its own; pass the Task alone, or arrays with "
                             "loss= and mask=")
        return data.xs, data.targets, data.loss, data.mask
    if loss is None:
        raise ValueError(f"loss: expected one of {list(LOSSES)} with arrays (there is no default), or "
                         "pass the Task itself, which carries its loss and mask")
    return data, targets, loss, mask


def readout(W_out, b_out, hs):
    """Outputs ``y_t = W_out h_t + b_out`` for hidden states hs (..., N); returns (..., n_out)."""
    return hs @ W_out.T + b_out


def sequence_loss(ys, targets, mask, loss):
    """The masked loss and ``dys = ∂L/∂y`` for outputs ys (T, B, n_out)."""
    B = ys.shape[1]
    m = mask[..., None]                                         # (T, B, 1)
    if loss == "mse":
        r = ys - targets
        return float(0.5 * np.sum(m * r * r) / B), m * r / B
    ce = -np.sum(targets * log_softmax(ys.reshape(-1, ys.shape[-1])).reshape(ys.shape), axis=-1)
    p = softmax(ys.reshape(-1, ys.shape[-1])).reshape(ys.shape)
    return float(np.sum(mask * ce) / B), m * (p - targets) / B


def readout_grads(W_out, hs, dys):
    """Backward through ``y_t = W_out h_t + b_out`` for all steps at once.

    hs, dys: (T, B, N), (T, B, n_out). Returns ``gW_out`` (n_out, N), ``gb_out`` (n_out,) and
    ``dhs = ∂L/∂h_t`` through the readout only, (T, B, N).
    """
    N, n_out = hs.shape[-1], dys.shape[-1]
    gW_out = dys.reshape(-1, n_out).T @ hs.reshape(-1, N)       # Σ_t Σ_b dy_tb h_tbᵀ
    gb_out = dys.reshape(-1, n_out).sum(axis=0)
    return gW_out, gb_out, dys @ W_out


class RecurrentModel(Model):
    """What the recurrent models share (Chapters 5 and 7): checked weights, a readout of the states,
    and the masked loss. A subclass sets ``params``, ``n_in``, ``n_out``, ``dtype`` and ``backend`` and
    defines ``shapes()``, ``states(xs, backend)`` (hs (T, B, N) for xs (T, B, n_in)) and
    ``loss_and_grads(data, targets=None, loss=None, mask=None, ...)``, which takes a Task or arrays
    (:func:`as_sequences`)."""

    def weights(self):
        """The checked parameters as a tuple of C-contiguous arrays, in the order of ``shapes()``."""
        return tuple(np.ascontiguousarray(p) for p in check_params(self.params, self.shapes(), self.dtype))

    def forward(self, xs, backend=None):
        """States and outputs for xs (T, n_in) or (T, B, n_in): ``hs`` (T, [B,] N), ``ys`` (T, [B,] n_out)."""
        xs = check_array(xs, "xs", dtype=self.dtype)
        if xs.ndim not in (2, 3) or xs.shape[-1] != self.n_in:
            raise ValueError(f"xs: expected shape (T, {self.n_in}) or (T, B, {self.n_in}), got {xs.shape}")
        *_, W_out, b_out = self.weights()
        hs = self.states(np.ascontiguousarray(xs[:, None] if xs.ndim == 2 else xs),
                         check_backend(backend or self.backend))
        ys = readout(W_out, b_out, hs)
        return (hs[:, 0], ys[:, 0]) if xs.ndim == 2 else (hs, ys)

    def predict(self, xs, backend=None):
        """Outputs ys (T, [B,] n_out)."""
        return self.forward(xs, backend)[1]

    def loss(self, data, targets=None, loss=None, mask=None, backend=None):
        """The masked sequence loss, without gradients, of a Task, or of arrays xs (T, [B,] n_in) and
        targets (T, [B,] n_out) with ``loss`` ("mse" or "xent") and an optional mask (T, [B])."""
        xs, targets, loss, mask = as_sequences(data, targets, loss, mask)
        xs, targets, mask, _ = check_sequences(xs, targets, mask, self.n_in, self.n_out, self.dtype, loss)
        return sequence_loss(self.forward(xs, backend)[1], targets, mask, loss)[0]
