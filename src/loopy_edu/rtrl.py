"""Real-time recurrent learning: the RNN's exact gradient carried forward in time (Chapter 6).

Gather the recurrent layer's parameters by rows: unit i's incoming weights are
``θ_i = [W_rec[i, :], W_in[i, :], b_rec[i]]``, which multiply ``z_t = [h_{t-1}, x_t, 1]``
(length M = N + n_in + 1). The **influence** ``J_t[k, i, m] = ∂h_t[k] / ∂θ[i, m]`` obeys ::

    J_t = (1 − α) J_{t-1} + α act'(u_t) ⊙ (W_rec J_{t-1} + E_t),
    E_t[k, i, m] = [k = i] z_t[m],

so ``∂L_t/∂θ = Σ_k (∂L_t/∂h_t[k]) J_t[k]`` is available at step t, with no backward pass. The
price: J has N²M ≈ N³ entries (memory) and the product W_rec J costs N²·N M ≈ N⁴ per step
(time).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from .activations import ACTIVATIONS, CODES
from .backend import check_backend, kernels
from .checks import check_choice, check_finite_loss, check_positive
from .optim import Optimizer
from .readout import LOSSES, check_sequences, readout, sequence_loss
from .rnn import step

if TYPE_CHECKING:
    from .rnn import RNN


def influence_step(J: np.ndarray, W_rec: np.ndarray, acts: np.ndarray, z: np.ndarray,
                   alpha: float, activation: str) -> np.ndarray:
    """The influence J_t (B, N, N, M) from J_{t-1} (B, N, N, M), act(u_t) (B, N) and
    z_t (B, M).

    Parameters
    ----------
    J : np.ndarray, shape (B, N, N, M)
        J_{t-1}.
    W_rec : np.ndarray, shape (N, N)
    acts : np.ndarray, shape (B, N)
        act(u_t).
    z : np.ndarray, shape (B, M)
        ``[h_{t-1}, x_t, 1]``.
    alpha : float
    activation : str

    Returns
    -------
    np.ndarray, shape (B, N, N, M)
        J_t, a new array.
    """
    _, act_grad = ACTIVATIONS[activation]
    B, N, _, M = J.shape
    d = alpha * act_grad(acts)                                       # (B, N): α act'(u_t)
    WJ = (W_rec @ J.reshape(B, N, N * M)).reshape(B, N, N, M)   # Σ_l W_rec[k, l] J[l, i, m]
    J_new = (1 - alpha) * J + d[:, :, None, None] * WJ
    k = np.arange(N)
    J_new[:, k, k, :] += d[:, :, None] * z[:, None, :]          # u_t[k] holds θ_k · z_t
    return J_new


def split_rows(g: np.ndarray, n_in: int) -> dict[str, np.ndarray]:
    """The recurrent layer's gradients from ``g`` (N, M) gathered by rows
    θ_i = [W_rec[i], W_in[i], b_rec[i]].

    Parameters
    ----------
    g : np.ndarray, shape (N, M)
    n_in : int

    Returns
    -------
    dict[str, np.ndarray]
        ``W_in`` (N, n_in), ``W_rec`` (N, N) and ``b_rec`` (N,).
    """
    N = g.shape[0]
    return {"W_in": np.ascontiguousarray(g[:, N:N + n_in]),
            "W_rec": np.ascontiguousarray(g[:, :N]),
            "b_rec": np.ascontiguousarray(g[:, -1])}


def sum_over_steps(model: RNN, xs: np.ndarray, targets: np.ndarray, mask: np.ndarray,
                   step_fn: Callable[..., tuple], state: np.ndarray
                   ) -> tuple[float, dict[str, np.ndarray]]:
    """Σ_t L_t and Σ_t ∂L_t/∂θ over xs (T, B, n_in) from h_0 = 0, where ``step_fn(h, state, x_t,
    target_t, mask_t)`` returns ``(h_t, state_t, L_t, grads of L_t)`` and ``state`` is the
    rule's memory at t = 0 (RTRL's influence, RFLO's traces).

    Parameters
    ----------
    model : RNN
    xs : np.ndarray, shape (T, B, n_in)
    targets : np.ndarray, shape (T, B, n_out)
    mask : np.ndarray, shape (T, B)
    step_fn : callable
        One step of the rule, as above.
    state : np.ndarray
        The rule's memory at t = 0.

    Returns
    -------
    loss : float
    grads : dict[str, np.ndarray]
        Keyed and shaped like ``model.params``.
    """
    h = np.zeros((xs.shape[1], model.n_rec), dtype=model.dtype)
    total, grads = 0.0, {k: np.zeros_like(p) for k, p in model.params.items()}
    for t in range(len(xs)):
        h, state, value, g = step_fn(h, state, xs[t], targets[t], mask[t])
        total += value
        for k in grads:
            grads[k] += g[k]
    return total, grads


def rtrl_step(params: dict[str, np.ndarray], h: np.ndarray, J: np.ndarray, x: np.ndarray,
              target: np.ndarray, mask: np.ndarray, alpha: float, activation: str,
              loss: str) -> tuple[np.ndarray, np.ndarray, float, dict[str, np.ndarray]]:
    """Advance one step and return ``(h_t, J_t, L_t, grads of L_t)``; the sequence's gradient is
    the sum of these over t.

    Parameters
    ----------
    params : dict[str, np.ndarray]
        The RNN's parameters.
    h : np.ndarray, shape (B, N)
    J : np.ndarray, shape (B, N, N, M)
    x : np.ndarray, shape (B, n_in)
    target : np.ndarray, shape (B, n_out)
    mask : np.ndarray, shape (B,)
    alpha : float
    activation : str
    loss : str
        ``"mse"`` or ``"xent"``.

    Returns
    -------
    h : np.ndarray, shape (B, N)
    J : np.ndarray, shape (B, N, N, M)
    loss : float
        L_t.
    grads : dict[str, np.ndarray]
        ∂L_t/∂θ, keyed like ``params``.
    """
    z = np.concatenate([h, x, np.ones((len(h), 1), dtype=h.dtype)], axis=1)    # (B, M)
    h, acts = step(params, h, x, alpha, activation)
    J = influence_step(J, params["W_rec"], acts, z, alpha, activation)
    value, dy = sequence_loss(readout(params["W_out"], params["b_out"], h)[None], target[None],
                              mask[None], loss)
    dy = dy[0]                                                       # (B, n_out)
    c = dy @ params["W_out"]                                         # ∂L_t/∂h_t (B, N)
    g = np.einsum("bk,bkim->im", c, J)                               # (N, M) = Σ_k c_k J_t[k]
    return h, J, value, {**split_rows(g, x.shape[1]), "W_out": dy.T @ h,
                         "b_out": dy.sum(axis=0)}


def rtrl(model: RNN, xs: np.ndarray, targets: np.ndarray, loss: str,
         mask: np.ndarray | None = None,
         backend: str | None = None) -> tuple[float, dict[str, np.ndarray]]:
    """The loss and its exact gradient for a :class:`loopy_edu.rnn.RNN`, by RTRL; equal to
    :func:`loopy_edu.bptt.bptt` up to round-off. Same arguments and return value.

    Parameters
    ----------
    model : RNN
    xs : np.ndarray, shape (T, n_in) or (T, B, n_in)
    targets : np.ndarray, shape (T, n_out) or (T, B, n_out)
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
    xs, targets, mask, _ = check_sequences(xs, targets, mask, model.n_in, model.n_out,
                                           model.dtype, loss)
    backend = check_backend(backend or model.backend)
    weights = model.weights()
    if backend != "numpy":
        value, grads = kernels("rtrl", backend).rtrl(*weights, xs, targets, mask, model.alpha,
                                                   CODES[model.activation], LOSSES.index(loss))
        return float(value), dict(zip(model.params, grads))
    N, M = model.n_rec, model.n_rec + model.n_in + 1
    step_fn = lambda h, J, x, target, m: rtrl_step(model.params, h, J, x, target, m,
                                                   model.alpha, model.activation, loss)
    return sum_over_steps(model, xs, targets, mask, step_fn,
                          np.zeros((xs.shape[1], N, N, M), dtype=model.dtype))


class OnlineRTRL:
    """Learning while the sequence streams (Chapter 6): after each step t the optimizer
    applies ∂L_t/∂θ at once. The influence carries over from earlier steps, computed under the
    weights of their time; that staleness is the only approximation, and it vanishes as the
    learning rate goes to 0.

    ``batch`` independent streams run side by side. ``reset()`` starts them again from h = 0,
    J = 0.

    Parameters
    ----------
    model : RNN
        The network; the optimizer updates ``model.params`` in place.
    optimizer : Optimizer
        A :class:`loopy_edu.optim.Optimizer`.
    loss : str
        ``"mse"`` or ``"xent"``.
    batch : int
        Number of independent streams, B.
    backend : str or None
        ``"numpy"``, ``"numba"`` or ``"cuda"``; None uses the model's.

    Raises
    ------
    ValueError
        Naming ``loss``, ``batch`` or ``backend`` when it is invalid.
    """

    #: the progress bar's label; subclasses that learn by another rule override it
    desc = "online RTRL"
    #: whose compiled kernels the numba backend runs (``kernels/<idea>_numba.py``)
    idea = "rtrl"

    def __init__(self, model: RNN, optimizer: Optimizer, loss: str, batch: int = 1,
                 backend: str | None = None) -> None:
        self.model, self.optimizer = model, optimizer
        self.loss = check_choice(loss, "loss", LOSSES)
        self.batch = check_positive(batch, "batch", integer=True)
        self.backend = check_backend(backend or model.backend)
        self._weights = self._bound = None           # set for each run by _begin()
        self.reset()

    def reset(self) -> None:
        """Start every stream again from h = 0 and the rule's memory (here J) at 0."""
        m = self.model
        self.steps = 0
        self.h = np.zeros((self.batch, m.n_rec), dtype=m.dtype)                         # (B, N)
        self._clear_memory()
        if self.backend == "numba":
            self._buffers()

    def _clear_memory(self):
        """J = 0 for every stream."""
        m = self.model
        if self.backend == "numba":
            # In the kernels' layout, and twice: J_t is written into the second buffer, which
            # then trades places with J_{t-1} (kernels/rtrl_numba.py). J shows the first.
            new = kernels("rtrl", "numba").new_influence
            self._J = new(self.batch, m.n_rec, m.n_in, m.dtype)
            self._J_next = new(self.batch, m.n_rec, m.n_in, m.dtype)
        else:
            self._J = np.zeros((self.batch, m.n_rec, m.n_rec, m.n_rec + m.n_in + 1),
                               dtype=m.dtype)                                   # (B, N, N, M)

    @property
    def J(self) -> np.ndarray:
        """The influence of every stream, (B, N, N, M): ``J[b, k, i, m] = ∂h_t[k]/∂θ_i[m]``."""
        if self.backend == "numba":
            m = self.model
            return kernels("rtrl", "numba").influence(self._J, m.n_rec, m.n_in)
        return self._J

    def _buffers(self):
        """The numba kernels' gradient buffer (one flat array, seen per key as ``self._grads``)
        and scratch memory, made once and refilled at every step."""
        m = self.model
        kern = kernels(self.idea, "numba")
        self._kernel = kern.advance
        self._g = np.zeros(sum(int(np.prod(s)) for s in m.shapes().values()), dtype=m.dtype)
        self._grads = dict(zip(m.shapes(), kern.split_grads(self._g, m.n_rec, m.n_in, m.n_out)))
        self._work = kern.workspace(m.n_rec, m.n_in, m.n_out, self._g)

    def _begin(self):
        """Check the weights and bind the optimizer to the gradient buffers once, for the steps
        that follow (one run, or one step): per step only the kernel, the loss check and the
        update remain. Without a bound optimizer (another backend, an optimizer of another kind,
        weights the kernels cannot update in place) the weights are checked at every step."""
        m = self.model
        weights = m.weights()                # shapes, dtype, finite: ValueError naming the key
        self._weights, self._bound = None, None
        self._args = (m.alpha, CODES[m.activation], LOSSES.index(self.loss))
        opt = self.optimizer
        live = all(w is m.params[k] for k, w in zip(m.shapes(), weights))     # no copies
        if (self.backend == "numba" and live and isinstance(opt, Optimizer)
                and type(opt).step is Optimizer.step):
            self._bound = opt.bind(m.params, self._grads)    # checks its state against params
            self._weights = weights                          # the arrays that update() moves

    def _advance(self, x, target, mask):
        """Advance h and J by one step; return L_t and its gradient."""
        m = self.model
        if self.backend == "numpy":
            self.h, self._J, value, grads = rtrl_step(m.params, self.h, self._J, x, target,
                                                      mask, m.alpha, m.activation, self.loss)
            return value, grads
        if self.backend == "cuda":
            value, grads = kernels("rtrl", "cuda").online_step(
                *m.weights(), self.h, self._J, x, target, mask, *self._args)
            return value, dict(zip(m.params, grads))
        value = self._kernel(*(self._weights or m.weights()), self.h, self._J, self._J_next, x,
                             target, mask, *self._args, self._g, self._work)
        self._J, self._J_next = self._J_next, self._J
        return value, self._grads

    def _step(self, x, target, mask):
        """One step of learning: advance, then let the optimizer apply L_t's gradient at
        once."""
        value, grads = self._advance(x, target, mask)
        if not math.isfinite(value):
            check_finite_loss(value, self.steps, getattr(self.optimizer, "lr", None))
        self.steps += 1
        if self._bound is not None and grads is self._grads:
            self._bound()            # bound to these buffers and checked when the run began
        else:
            self.optimizer.step(self.model.params, grads)
        return value

    def step(self, x: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
        """One step of every stream: x (B, n_in), target (B, n_out), mask (B,); returns L_t.

        Parameters
        ----------
        x : np.ndarray, shape (B, n_in)
        target : np.ndarray, shape (B, n_out)
        mask : np.ndarray, shape (B,), or None
            None counts every stream.

        Returns
        -------
        float
            L_t, the loss at this step.

        Raises
        ------
        ValueError
            Naming the argument with a wrong shape (B must be the learner's ``batch``), dtype or
            values.
        FloatingPointError
            If the loss is not finite (the learning rate is likely too large).
        """
        m = self.model
        xs, targets, mask, _ = check_sequences(np.asarray(x)[None], np.asarray(target)[None],
                                               None if mask is None else np.asarray(mask)[None],
                                               m.n_in, m.n_out, m.dtype, self.loss)
        if xs.shape[1] != self.batch:
            raise ValueError(f"x: expected {self.batch} streams (the learner's batch), "
                             f"got {xs.shape[1]}")
        self._begin()
        return self._step(*(np.ascontiguousarray(a[0]) for a in (xs, targets, mask)))

    def run(self, xs: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None,
            progress: bool = True) -> np.ndarray:
        """Stream a whole sequence, xs (T, B, n_in), learning at every step; returns the losses
        L_t (T,).

        Parameters
        ----------
        xs : np.ndarray, shape (T, B, n_in)
        targets : np.ndarray, shape (T, B, n_out)
        mask : np.ndarray, shape (T, B), or None
            None counts every step.
        progress : bool
            Show a progress bar.

        Returns
        -------
        np.ndarray, shape (T,)

        Raises
        ------
        ValueError
            Naming the argument with a wrong shape (B must be the learner's ``batch``), dtype or
            values.
        FloatingPointError
            If a loss is not finite (the learning rate is likely too large).
        """
        m = self.model
        xs, targets, mask, _ = check_sequences(xs, targets, mask, m.n_in, m.n_out, m.dtype,
                                               self.loss)
        if xs.shape[1] != self.batch:
            raise ValueError(f"xs: expected {self.batch} streams (the learner's batch), "
                             f"got {xs.shape[1]}")
        xs, targets, mask = (np.ascontiguousarray(a) for a in (xs, targets, mask))
        self._begin()                      # the weights and the optimizer, checked once per run
        losses, steps = np.empty(len(xs)), range(len(xs))
        for t in tqdm(steps, desc=self.desc) if progress else steps:
            losses[t] = self._step(xs[t], targets[t], mask[t])
        return losses
