"""Random-feedback local online learning (RFLO, Murray 2019) and e-prop (Bellec et al. 2020) for
the leaky RNN of Part II: cheap, local approximations of RTRL (Chapter 9).

RTRL carries the whole influence ``J_t[k, i, m] = ∂h_t[k]/∂θ[i, m]`` (N²M numbers, N⁴ work per
step). RFLO keeps only what is local to a synapse: unit i's influence on *itself* and none of
the paths through the other units (the ``W_rec J`` term of RTRL dropped). With
``z_t = [h_{t-1}, x_t, 1]`` (length M = N + n_in + 1) and θ's rows
``θ_i = [W_rec[i], W_in[i], b_rec[i]]`` as in RTRL, each synapse keeps an **eligibility trace**,
a low-pass filter of "post-synaptic slope × pre-synaptic input"::

    P_t[i, m] = (1 − α) P_{t-1}[i, m] + α act'(u_t[i]) z_t[m].

The error reaches unit i not through W_outᵀ but through a fixed random matrix ``B``
(n_rec, n_out)::

    q_t = B dy_t,   dy_t = ∂L/∂y_t,   ∂L/∂θ[i, m] ≈ Σ_t q_t[i] P_t[i, m].

``dy_t`` is the loss's own output error (:func:`loopy_edu.readout.sequence_loss`), for n_b
streams ``m_t (y_t − target_t)/n_b`` with "mse" and ``m_t (softmax(y_t) − target_t)/n_b`` with
"xent" (there "y − target" means softmax(y) − target), so the gradients are summed over the
masked steps and averaged over the batch with the same 1/n_b as the loss. W_out and b_out get
their exact gradient. Memory N·M per stream, O(N²) work per step: the same order as running the
network.

**e-prop for these units.** e-prop's eligibility trace is RTRL's influence with the step
Jacobian ∂h_t/∂h_{t-1} = (1 − α) I + α diag(act'(u_t)) W_rec cut down to its diagonal: each unit
keeps its own dependence on its past,
∂h_t[i]/∂h_{t-1}[i] = (1 − α) + α act'(u_t[i]) W_rec[i, i], and drops every other unit's (the
form in which Marschall et al. 2020 compare the two algorithms). Its trace is ::

    ε_t[i, m] = ((1 − α) + α act'(u_t[i]) W_rec[i, i]) ε_{t-1}[i, m] + α act'(u_t[i]) z_t[m],

RFLO's P plus the self-connection term. So the two traces are equal when W_rec has a zero
diagonal (Bellec et al.'s networks have no self-connections; counting a self-connection as
recurrent input rather than as part of the unit's own dynamics gives the same RFLO trace), and
when W_rec is diagonal (uncoupled units) ε is the exact influence, so symmetric e-prop is then
exactly BPTT. The learning signal goes through ``W_outᵀ`` (symmetric e-prop) or through a
random ``B`` (random e-prop).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .activations import ACTIVATIONS, CODES
from .backend import check_backend, kernels
from .checks import check_array, check_positive
from .readout import LOSSES, check_sequences, readout, sequence_loss
from .rnn import step
from .rtrl import OnlineRTRL, split_rows, sum_over_steps

if TYPE_CHECKING:
    from .optim import Optimizer
    from .rnn import RNN


def random_feedback(model: RNN, seed: int = 0, scale: float | None = None) -> np.ndarray:
    """A fixed random feedback matrix B (n_rec, n_out), Gaussian with std ``scale`` (default
    1/√n_out, so that q = B dy has about the size of dy's entries whatever the number of
    outputs).

    Parameters
    ----------
    model : RNN
    seed : int
    scale : float or None
        The std; None is 1/√n_out.

    Returns
    -------
    np.ndarray, shape (n_rec, n_out)
        In the model's dtype.

    Raises
    ------
    ValueError
        If ``scale`` is not a positive number.
    """
    scale = 1 / np.sqrt(model.n_out) if scale is None else check_positive(scale, "scale")
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal((model.n_rec, model.n_out))).astype(model.dtype)


def check_feedback(B: np.ndarray, model: RNN) -> np.ndarray:
    """B as a C-contiguous (n_rec, n_out) array of the model's dtype, or ValueError naming "B".

    Parameters
    ----------
    B : np.ndarray, shape (n_rec, n_out)
    model : RNN

    Returns
    -------
    np.ndarray, shape (n_rec, n_out)

    Raises
    ------
    ValueError
        If ``B`` has a wrong shape or dtype, or NaN or inf.
    """
    B = check_array(B, "B", shape=(model.n_rec, model.n_out), dtype=model.dtype)
    return np.ascontiguousarray(B)


def trace_step(P: np.ndarray, W_rec: np.ndarray, acts: np.ndarray, z: np.ndarray,
               alpha: float, activation: str, self_term: bool = False) -> np.ndarray:
    """The eligibility traces P_t (B, N, M) from P_{t-1} (B, N, M), act(u_t) (B, N) and
    z_t (B, M). ``self_term=True`` keeps each unit's self-connection in the decay: e-prop's
    trace.

    Parameters
    ----------
    P : np.ndarray, shape (B, N, M)
        P_{t-1}.
    W_rec : np.ndarray, shape (N, N)
    acts : np.ndarray, shape (B, N)
        act(u_t).
    z : np.ndarray, shape (B, M)
        ``[h_{t-1}, x_t, 1]``.
    alpha : float
    activation : str
    self_term : bool
        Keep the self-connection (e-prop) or not (RFLO).

    Returns
    -------
    np.ndarray, shape (B, N, M)
        P_t, a new array.
    """
    _, act_grad = ACTIVATIONS[activation]
    d = alpha * act_grad(acts)                             # (B, N): α act'(u_t), ∂h_t/∂u_t
    self_weight = np.diag(W_rec) if self_term else 0.0     # RFLO drops even unit i's own loop
    decay = (1 - alpha) + d * self_weight                  # (B, N): ∂h_t[i]/∂h_{t-1}[i] kept
    return decay[:, :, None] * P + d[:, :, None] * z[:, None, :]


def rflo_step(params: dict[str, np.ndarray], B: np.ndarray, h: np.ndarray, P: np.ndarray,
              x: np.ndarray, target: np.ndarray, mask: np.ndarray, alpha: float,
              activation: str, loss: str, self_term: bool = False
              ) -> tuple[np.ndarray, np.ndarray, float, dict[str, np.ndarray]]:
    """Advance one step and return ``(h_t, P_t, L_t, grads of L_t)``: the approximate gradient
    is the sum of these over t.

    Parameters
    ----------
    params : dict[str, np.ndarray]
        The RNN's parameters.
    B : np.ndarray, shape (N, n_out)
        The feedback matrix.
    h : np.ndarray, shape (B, N)
    P : np.ndarray, shape (B, N, M)
    x : np.ndarray, shape (B, n_in)
    target : np.ndarray, shape (B, n_out)
    mask : np.ndarray, shape (B,)
    alpha : float
    activation : str
    loss : str
        ``"mse"`` or ``"xent"``.
    self_term : bool
        Keep the self-connection in the trace (e-prop).

    Returns
    -------
    h : np.ndarray, shape (B, N)
    P : np.ndarray, shape (B, N, M)
    loss : float
        L_t.
    grads : dict[str, np.ndarray]
        The update for L_t, keyed like ``params``.
    """
    z = np.concatenate([h, x, np.ones((len(h), 1), dtype=h.dtype)], axis=1)   # (B, M)
    h, acts = step(params, h, x, alpha, activation)
    P = trace_step(P, params["W_rec"], acts, z, alpha, activation, self_term)
    value, dy = sequence_loss(readout(params["W_out"], params["b_out"], h)[None], target[None],
                              mask[None], loss)
    dy = dy[0]                                     # (B, n_out)
    q = dy @ B.T                                   # learning signal q_t = B dy_t (B, N)
    g = np.einsum("bi,bim->im", q, P)              # (N, M): Σ_b q_t[b, i] P_t[b, i, m]
    return h, P, value, {**split_rows(g, x.shape[1]), "W_out": dy.T @ h,
                         "b_out": dy.sum(axis=0)}


def _approximate(model, xs, targets, B, loss, mask, backend, self_term):
    xs, targets, mask, _ = check_sequences(xs, targets, mask, model.n_in, model.n_out,
                                           model.dtype, loss)
    B = check_feedback(B, model)
    backend = check_backend(backend or model.backend)
    if backend != "numpy":
        value, grads = kernels("rflo", backend).rflo(
            *model.weights(), B, np.ascontiguousarray(xs), np.ascontiguousarray(targets),
            np.ascontiguousarray(mask), model.alpha, CODES[model.activation],
            LOSSES.index(loss), self_term)
        return float(value), dict(zip(model.params, grads))
    N, M = model.n_rec, model.n_rec + model.n_in + 1
    step_fn = lambda h, P, x, target, m: rflo_step(model.params, B, h, P, x, target, m,
                                                   model.alpha, model.activation, loss,
                                                   self_term)
    return sum_over_steps(model, xs, targets, mask, step_fn,
                          np.zeros((xs.shape[1], N, M), dtype=model.dtype))


def rflo(model: RNN, xs: np.ndarray, targets: np.ndarray, B: np.ndarray, loss: str,
         mask: np.ndarray | None = None,
         backend: str | None = None) -> tuple[float, dict[str, np.ndarray]]:
    """The loss and RFLO's approximate gradient for a :class:`loopy_edu.rnn.RNN` (Chapter 9).

    xs (T, [B,] n_in), targets (T, [B,] n_out), mask (T, [B]) as in :func:`loopy_edu.bptt.bptt`;
    B (n_rec, n_out) is the feedback matrix (:func:`random_feedback`). Returns ``(loss, grads)``
    keyed like ``model.params``; W_out and b_out's gradients are exact, the recurrent layer's
    are Σ_t q_t ⊗ P_t.

    Parameters
    ----------
    model : RNN
    xs : np.ndarray, shape (T, n_in) or (T, B, n_in)
    targets : np.ndarray, shape (T, n_out) or (T, B, n_out)
    B : np.ndarray, shape (n_rec, n_out)
        The feedback matrix.
    loss : str
        ``"mse"`` or ``"xent"``.
    mask : np.ndarray, shape (T,) or (T, B), or None
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
    return _approximate(model, xs, targets, B, loss, mask, backend, self_term=False)


def eprop(model: RNN, xs: np.ndarray, targets: np.ndarray, B: np.ndarray | None, loss: str,
          mask: np.ndarray | None = None,
          backend: str | None = None) -> tuple[float, dict[str, np.ndarray]]:
    """The loss and e-prop's approximate gradient (Chapter 9): RFLO's rule with the
    self-connection kept in the trace (module docstring). ``B=None`` is symmetric e-prop (the
    error fed back through W_outᵀ, taken at call time); a given B (n_rec, n_out) is random
    e-prop.

    Parameters
    ----------
    model : RNN
    xs : np.ndarray, shape (T, n_in) or (T, B, n_in)
    targets : np.ndarray, shape (T, n_out) or (T, B, n_out)
    B : np.ndarray, shape (n_rec, n_out), or None
        The feedback matrix; None for symmetric e-prop.
    loss : str
        ``"mse"`` or ``"xent"``.
    mask : np.ndarray, shape (T,) or (T, B), or None
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
    if B is None:
        B = model.params["W_out"].T
    return _approximate(model, xs, targets, B, loss, mask, backend, self_term=True)


class OnlineRFLO(OnlineRTRL):
    """RFLO while the sequence streams: after each step t the optimizer applies q_t ⊗ P_t (and
    the exact readout gradient) at once. Like :class:`loopy_edu.rtrl.OnlineRTRL` (same ``step``,
    ``run`` and ``reset``), but each stream carries only its traces P (N, M) instead of the
    influence (N, N, M).

    Parameters
    ----------
    model : RNN
        The network; the optimizer updates ``model.params`` in place.
    optimizer : Optimizer
        A :class:`loopy_edu.optim.Optimizer`.
    B : np.ndarray, shape (n_rec, n_out)
        The feedback matrix.
    loss : str
        ``"mse"`` or ``"xent"``.
    batch : int
        Number of independent streams.
    backend : str or None
        ``"numpy"``, ``"numba"`` or ``"cuda"``; None uses the model's.

    Raises
    ------
    ValueError
        Naming ``B``, ``loss``, ``batch`` or ``backend`` when it is invalid.
    """

    desc = "online RFLO"
    idea = "rflo"

    def __init__(self, model: RNN, optimizer: Optimizer, B: np.ndarray, loss: str,
                 batch: int = 1, backend: str | None = None) -> None:
        self.B = check_feedback(B, model)
        super().__init__(model, optimizer, loss, batch, backend)

    def _clear_memory(self):
        """P = 0 for every stream."""
        m = self.model
        self.P = np.zeros((self.batch, m.n_rec, m.n_rec + m.n_in + 1),
                          dtype=m.dtype)                                            # (B, N, M)

    def _advance(self, x, target, mask):
        """Advance h and the traces P by one step; return L_t and RFLO's update for it."""
        m = self.model
        if self.backend == "numpy":
            self.h, self.P, value, grads = rflo_step(m.params, self.B, self.h, self.P, x,
                                                     target, mask, m.alpha, m.activation,
                                                     self.loss)
            return value, grads
        if self.backend == "cuda":
            value, grads = kernels("rflo", "cuda").online_step(
                *m.weights(), self.B, self.h, self.P, x, target, mask, *self._args, False)
            return value, dict(zip(m.params, grads))
        value = self._kernel(*(self._weights or m.weights()), self.B, self.h, self.P, x, target,
                             mask, *self._args, False, self._g, self._work)
        return value, self._grads
