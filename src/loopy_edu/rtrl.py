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
from .backend import check_backend
from .checks import check_finite_loss
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


def rtrl_step(params, h, J, x, target, mask, alpha, activation, loss):
    """Advance one step and return ``(h_t, J_t, L_t, grads of L_t)``; the sequence's gradient is the sum
    of these over t. x (B, n_in), target (B, n_out), mask (B,)."""
    B, N = h.shape
    z = np.concatenate([h, x, np.ones((B, 1), dtype=h.dtype)], axis=1)    # (B, M)
    h, acts = step(params, h, x, alpha, activation)
    J = influence_step(J, params["W_rec"], acts, z, alpha, activation)
    value, dy = sequence_loss(readout(params["W_out"], params["b_out"], h)[None], target[None],
                              mask[None], loss)
    dy = dy[0]                                                       # (B, n_out)
    c = dy @ params["W_out"]                                         # ∂L_t/∂h_t (B, N)
    g = np.einsum("bk,bkim->im", c, J)                               # (N, M) = Σ_k c_k J_t[k]
    n_in = x.shape[1]
    grads = {"W_in": np.ascontiguousarray(g[:, N:N + n_in]), "W_rec": np.ascontiguousarray(g[:, :N]),
             "b_rec": np.ascontiguousarray(g[:, -1]),
             "W_out": dy.T @ h, "b_out": dy.sum(axis=0)}
    return h, J, value, grads


def rtrl(model, xs, targets, loss="mse", mask=None, backend=None):
    """The loss and its exact gradient for a :class:`loopy_edu.rnn.RNN`, by RTRL; equal to
    :func:`loopy_edu.bptt.bptt` up to round-off. Same arguments and return value."""
    xs, targets, mask, _ = check_sequences(xs, targets, mask, model.n_in, model.n_out, model.dtype, loss)
    backend = check_backend(backend or model.backend)
    weights = model.weights()
    if backend != "numpy":
        value, grads = _kernels(backend).rtrl(*weights, xs, targets, mask, model.alpha,
                                                   CODES[model.activation], LOSSES.index(loss))
        return float(value), dict(zip(model.params, grads))
    T, B, _ = xs.shape
    N, M = model.n_rec, model.n_rec + model.n_in + 1
    h, J = np.zeros((B, N), dtype=model.dtype), np.zeros((B, N, N, M), dtype=model.dtype)
    total, grads = 0.0, {k: np.zeros_like(p) for k, p in model.params.items()}
    for t in range(T):
        h, J, value, g = rtrl_step(model.params, h, J, xs[t], targets[t], mask[t], model.alpha,
                                   model.activation, loss)
        total += value
        for k in grads:
            grads[k] += g[k]
    return total, grads


def _kernels(backend):
    if backend == "numba":
        from .kernels import rtrl_numba as k
    else:
        from .kernels import rtrl_cuda as k
    return k


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
        self.loss = loss
        check_sequences(np.zeros((1, batch, model.n_in)), np.full((1, batch, model.n_out), 1 / model.n_out),
                        None, model.n_in, model.n_out, model.dtype, loss)
        self.batch = batch
        self.backend = check_backend(backend or model.backend)
        self.reset()

    def reset(self):
        m = self.model
        self.steps = 0
        self.h = np.zeros((self.batch, m.n_rec), dtype=m.dtype)                         # (B, N)
        self.J = np.zeros((self.batch, m.n_rec, m.n_rec, m.n_rec + m.n_in + 1), dtype=m.dtype)

    def _step(self, x, target, mask):
        m = self.model
        if self.backend == "numpy":
            self.h, self.J, value, grads = rtrl_step(m.params, self.h, self.J, x, target, mask, m.alpha,
                                                     m.activation, self.loss)
        else:
            value, grads = _kernels(self.backend).online_step(
                *m.weights(), self.h, self.J, x, target, mask, m.alpha, CODES[m.activation],
                LOSSES.index(self.loss))
            grads = dict(zip(m.params, grads))
        check_finite_loss(value, self.steps, getattr(self.optimizer, "lr", None))
        self.steps += 1
        self.optimizer.step(m.params, grads)
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
