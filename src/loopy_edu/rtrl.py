"""Real-time recurrent learning: the RNN's exact gradient carried forward in time (Chapter 6).

Gather the recurrent layer's parameters by rows: unit i's incoming weights are
``θ_i = [W_rec[i, :], W_in[i, :], b_rec[i]]``, which multiply ``z_t = [h_{t-1}, x_t, 1]`` (length
M = N + n_in + 1). The **influence** ``J_t[k, i, m] = ∂h_t[k] / ∂θ[i, m]`` obeys

    J_t = (1 − α) J_{t-1} + α act'(u_t) ⊙ (W_rec J_{t-1} + E_t),   E_t[k, i, m] = [k = i] z_t[m],

so ``∂L_t/∂θ = Σ_k (∂L_t/∂h_t[k]) J_t[k]`` is available at step t, with no backward pass. The price:
J has N²M ≈ N³ entries (memory) and the product W_rec J costs N²·N M ≈ N⁴ per step (time).
"""
import numpy as np
from tqdm.auto import tqdm

from .activations import ACTIVATIONS, CODES
from .backend import check_backend, kernels
from .checks import check_choice, check_finite_loss, check_positive
from .readout import LOSSES, check_sequences, readout, sequence_loss
from .rnn import step


def influence_step(J, W_rec, acts, z, alpha, activation):
    """The influence J_t (B, N, N, M) from J_{t-1} (B, N, N, M), act(u_t) (B, N) and z_t (B, M)."""
    _, act_grad = ACTIVATIONS[activation]
    B, N, _, M = J.shape
    d = alpha * act_grad(acts)                                       # (B, N): α act'(u_t)
    WJ = (W_rec @ J.reshape(B, N, N * M)).reshape(B, N, N, M)        # Σ_l W_rec[k, l] J[l, i, m]
    J_new = (1 - alpha) * J + d[:, :, None, None] * WJ
    k = np.arange(N)
    J_new[:, k, k, :] += d[:, :, None] * z[:, None, :]               # u_t[k] holds θ_k · z_t directly
    return J_new


def split_rows(g, n_in):
    """The recurrent layer's gradients from ``g`` (N, M) gathered by rows θ_i = [W_rec[i], W_in[i],
    b_rec[i]]."""
    N = g.shape[0]
    return {"W_in": np.ascontiguousarray(g[:, N:N + n_in]), "W_rec": np.ascontiguousarray(g[:, :N]),
            "b_rec": np.ascontiguousarray(g[:, -1])}


def sum_over_steps(model, xs, targets, mask, step_fn, state):
    """Σ_t L_t and Σ_t ∂L_t/∂θ over xs (T, B, n_in) from h_0 = 0, where ``step_fn(h, state, x_t,
    target_t, mask_t)`` returns ``(h_t, state_t, L_t, grads of L_t)`` and ``state`` is the rule's memory
    at t = 0 (RTRL's influence, RFLO's traces)."""
    h = np.zeros((xs.shape[1], model.n_rec), dtype=model.dtype)
    total, grads = 0.0, {k: np.zeros_like(p) for k, p in model.params.items()}
    for t in range(len(xs)):
        h, state, value, g = step_fn(h, state, xs[t], targets[t], mask[t])
        total += value
        for k in grads:
            grads[k] += g[k]
    return total, grads


def rtrl_step(params, h, J, x, target, mask, alpha, activation, loss):
    """Advance one step and return ``(h_t, J_t, L_t, grads of L_t)``; the sequence's gradient is the sum
    of these over t. x (B, n_in), target (B, n_out), mask (B,)."""
    z = np.concatenate([h, x, np.ones((len(h), 1), dtype=h.dtype)], axis=1)    # (B, M)
    h, acts = step(params, h, x, alpha, activation)
    J = influence_step(J, params["W_rec"], acts, z, alpha, activation)
    value, dy = sequence_loss(readout(params["W_out"], params["b_out"], h)[None], target[None],
                              mask[None], loss)
    dy = dy[0]                                                       # (B, n_out)
    c = dy @ params["W_out"]                                         # ∂L_t/∂h_t (B, N)
    g = np.einsum("bk,bkim->im", c, J)                               # (N, M) = Σ_k c_k J_t[k]
    return h, J, value, {**split_rows(g, x.shape[1]), "W_out": dy.T @ h, "b_out": dy.sum(axis=0)}


def rtrl(model, xs, targets, loss, mask=None, backend=None):
    """The loss and its exact gradient for a :class:`loopy_edu.rnn.RNN`, by RTRL; equal to
    :func:`loopy_edu.bptt.bptt` up to round-off. Same arguments and return value."""
    xs, targets, mask, _ = check_sequences(xs, targets, mask, model.n_in, model.n_out, model.dtype, loss)
    backend = check_backend(backend or model.backend)
    weights = model.weights()
    if backend != "numpy":
        value, grads = kernels("rtrl", backend).rtrl(*weights, xs, targets, mask, model.alpha,
                                                   CODES[model.activation], LOSSES.index(loss))
        return float(value), dict(zip(model.params, grads))
    N, M = model.n_rec, model.n_rec + model.n_in + 1
    step_fn = lambda h, J, x, target, m: rtrl_step(model.params, h, J, x, target, m, model.alpha,
                                                   model.activation, loss)
    return sum_over_steps(model, xs, targets, mask, step_fn,
                          np.zeros((xs.shape[1], N, N, M), dtype=model.dtype))


class OnlineRTRL:
    """Learning while the sequence streams (Chapter 6): after each step t the optimizer applies
    ∂L_t/∂θ at once. The influence carries over from earlier steps, computed under the weights of their
    time; that staleness is the only approximation, and it vanishes as the learning rate goes to 0.

    ``batch`` independent streams run side by side. ``reset()`` starts them again from h = 0, J = 0.
    """

    #: the progress bar's label; subclasses that learn by another rule override it
    desc = "online RTRL"

    def __init__(self, model, optimizer, loss="mse", batch=1, backend=None):
        self.model, self.optimizer = model, optimizer
        self.loss = check_choice(loss, "loss", LOSSES)
        self.batch = check_positive(batch, "batch", integer=True)
        self.backend = check_backend(backend or model.backend)
        self.reset()

    def reset(self):
        m = self.model
        self.steps = 0
        self.h = np.zeros((self.batch, m.n_rec), dtype=m.dtype)                         # (B, N)
        self.J = np.zeros((self.batch, m.n_rec, m.n_rec, m.n_rec + m.n_in + 1), dtype=m.dtype)

    def _advance(self, x, target, mask):
        """Advance h and J by one step; return L_t and its gradient."""
        m = self.model
        if self.backend == "numpy":
            self.h, self.J, value, grads = rtrl_step(m.params, self.h, self.J, x, target, mask, m.alpha,
                                                     m.activation, self.loss)
            return value, grads
        value, grads = kernels("rtrl", self.backend).online_step(
            *m.weights(), self.h, self.J, x, target, mask, m.alpha, CODES[m.activation],
            LOSSES.index(self.loss))
        return value, dict(zip(m.params, grads))

    def _step(self, x, target, mask):
        """One step of learning: advance, then let the optimizer apply L_t's gradient at once."""
        value, grads = self._advance(x, target, mask)
        check_finite_loss(value, self.steps, getattr(self.optimizer, "lr", None))
        self.steps += 1
        self.optimizer.step(self.model.params, grads)
        return value

    def step(self, x, target, mask=None):
        """One step of every stream: x (B, n_in), target (B, n_out), mask (B,); returns L_t."""
        m = self.model
        xs, targets, mask, _ = check_sequences(np.asarray(x)[None], np.asarray(target)[None],
                                               None if mask is None else np.asarray(mask)[None],
                                               m.n_in, m.n_out, m.dtype, self.loss)
        if xs.shape[1] != self.batch:
            raise ValueError(f"x: expected {self.batch} streams (the learner's batch), got {xs.shape[1]}")
        return self._step(xs[0], targets[0], mask[0])

    def run(self, xs, targets, mask=None, progress=True):
        """Stream a whole sequence, xs (T, B, n_in), learning at every step; returns the losses L_t (T,)."""
        m = self.model
        xs, targets, mask, _ = check_sequences(xs, targets, mask, m.n_in, m.n_out, m.dtype, self.loss)
        if xs.shape[1] != self.batch:
            raise ValueError(f"xs: expected {self.batch} streams (the learner's batch), got {xs.shape[1]}")
        return np.array([self._step(xs[t], targets[t], mask[t])
                         for t in tqdm(range(len(xs)), desc=self.desc, disable=not progress)])
