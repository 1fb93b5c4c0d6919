"""Sparse RFLO and e-prop on a :class:`loopy_edu.loopy.LoopyNetwork` (Part IV): Chapter 9's
eligibility traces kept only on the synapses that exist, O(nnz) per step.

Dense RFLO (:mod:`loopy_edu.rflo`) keeps a trace for every pair (i, m) of unit and input. On a
sparse graph the recurrent part of that trace lives only on the synapses e: j -> i: for each
stream (a row of the batch) ::

    P_t[e]    = c_t[i] P_{t-1}[e]    + d_t[i] h_{t-1}[j]       (B, nnz)
    R_t[i, m] = c_t[i] R_{t-1}[i, m] + d_t[i] [x_t, 1][m]      (B, N, n_in + 1)
    d_t[i] = α_i act'(u_t[i]),   c_t[i] = (1 − α_i) + d_t[i] W_rec[i, i] [e-prop only],

with ``W_rec[i, i]`` the weight of unit i's self-loop where the graph has one (else 0), and
``R`` the traces of ``W_in`` and ``b_rec``. The gradient estimate is that of dense RFLO read at
the graph's edges ::

    ∂L/∂W_rec[e] ≈ Σ_t Σ_b q_t[b, i] P_t[b, e],   q_t = dy_t Bᵀ   (B, N),

with ``dy_t = ∂L/∂y_t`` and the feedback matrix ``B`` (n_rec, n_out): fixed and random for RFLO
(:func:`loopy_edu.rflo.random_feedback` takes a LoopyNetwork too), ``W_outᵀ`` for symmetric
e-prop. W_out and b_out get their exact gradient, as in Chapter 9.

What a synapse reads is local: its own trace and weight, the presynaptic rate h_{t-1}[j], and
two numbers of its postsynaptic unit i, the slope d_t[i] and the learning signal q_t[i]. The
signal is the one non-local ingredient, the output error broadcast back through ``B``.

:func:`plastic_step` runs the rule online: at every step it advances the state, the traces and
the weights themselves (plain SGD on each step's estimate), the plastic network of Chapter 12.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .backend import check_backend, kernels
from .checks import check_array, check_positive
from .loopy import UNIT_ACTIVATIONS, UNIT_CODES
from .readout import LOSSES, check_sequences, readout, sequence_loss
from .rflo import check_feedback
from .rtrl import sum_over_steps

if TYPE_CHECKING:
    from scipy import sparse

    from .loopy import LoopyNetwork


def synapse_ends(graph: sparse.csr_array) -> tuple[np.ndarray, np.ndarray]:
    """The postsynaptic unit i and the presynaptic unit j of every synapse e: j -> i.

    Parameters
    ----------
    graph : scipy.sparse.csr_array, shape (N, N)
        In canonical CSR (row i holds unit i's inputs).

    Returns
    -------
    post, pre : np.ndarray, shape (nnz,)
        In the order of ``graph.data``.
    """
    post = np.repeat(np.arange(graph.shape[0]), np.diff(graph.indptr))
    return post, graph.indices


def self_loops(graph: sparse.csr_array) -> np.ndarray:
    """The synapse id of each unit's self-loop i -> i, or ``nnz`` where it has none: what
    e-prop's decay reads. Unsigned, as the kernels take their indices.

    Parameters
    ----------
    graph : scipy.sparse.csr_array, shape (N, N)
        In canonical CSR, so each unit has at most one self-loop.

    Returns
    -------
    np.ndarray, shape (N,)
        uint32.
    """
    post, pre = synapse_ends(graph)
    loops = np.full(graph.shape[0], graph.nnz, dtype=np.uint32)
    on_diagonal = np.flatnonzero(post == pre)
    loops[post[on_diagonal]] = on_diagonal
    return loops


def zero_state(model: LoopyNetwork, batch: int = 1
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The state of :func:`plastic_step` at the start of a stream: h = 0 and every trace 0.

    Parameters
    ----------
    model : LoopyNetwork
    batch : int
        The number of streams B.

    Returns
    -------
    h : np.ndarray, shape (B, N)
    P : np.ndarray, shape (B, nnz)
        The recurrent synapses' traces, in CSR order.
    R : np.ndarray, shape (B, N, n_in + 1)
        The traces of W_in's entries and (last column) of b_rec.

    Raises
    ------
    ValueError
        If ``batch`` is not a positive integer.
    """
    check_positive(batch, "batch", integer=True)
    N, dt = model.n_rec, model.dtype
    return (np.zeros((batch, N), dtype=dt), np.zeros((batch, model.graph.nnz), dtype=dt),
            np.zeros((batch, N, model.n_in + 1), dtype=dt))


def trace_step(P: np.ndarray, R: np.ndarray, acts: np.ndarray, h_prev: np.ndarray,
               x: np.ndarray, alpha: float | np.ndarray, activation: str, post: np.ndarray,
               pre: np.ndarray, self_weight: float | np.ndarray = 0.0
               ) -> tuple[np.ndarray, np.ndarray]:
    """The traces P_t (B, nnz) and R_t (B, N, n_in + 1) from P_{t-1}, R_{t-1} (the module
    docstring's recursion). ``self_weight`` (N,) is W_rec[i, i] for e-prop, 0 for RFLO.

    Parameters
    ----------
    P : np.ndarray, shape (B, nnz)
    R : np.ndarray, shape (B, N, n_in + 1)
    acts : np.ndarray, shape (B, N)
        act(u_t).
    h_prev : np.ndarray, shape (B, N)
        h_{t-1}.
    x : np.ndarray, shape (B, n_in)
    alpha : float or np.ndarray, shape (N,)
    activation : str
        A key of :data:`loopy_edu.loopy.UNIT_ACTIVATIONS`.
    post, pre : np.ndarray, shape (nnz,)
        From :func:`synapse_ends`.
    self_weight : float or np.ndarray, shape (N,)

    Returns
    -------
    P, R : np.ndarray
        The new traces (new arrays).
    """
    _, act_grad = UNIT_ACTIVATIONS[activation]
    d = alpha * act_grad(acts)                                   # (B, N)
    decay = (1 - alpha) + d * self_weight                        # (B, N)
    P = decay[:, post] * P + d[:, post] * h_prev[:, pre]
    z = np.concatenate([x, np.ones((len(x), 1), dtype=x.dtype)], axis=1)   # (B, n_in + 1)
    R = decay[:, :, None] * R + d[:, :, None] * z[:, None, :]
    return P, R


def rflo_step(model: LoopyNetwork, B: np.ndarray, h: np.ndarray, P: np.ndarray,
              R: np.ndarray, x: np.ndarray, target: np.ndarray, mask: np.ndarray, loss: str,
              self_term: bool = False
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, dict[str, np.ndarray]]:
    """Advance one step and return ``(h_t, P_t, R_t, L_t, grads of L_t)``; the sequence's
    estimate is the sum of these over t.

    Parameters
    ----------
    model : LoopyNetwork
        Its current ``params`` are the weights of this step.
    B : np.ndarray, shape (N, n_out)
        The feedback matrix.
    h : np.ndarray, shape (B, N)
    P : np.ndarray, shape (B, nnz)
    R : np.ndarray, shape (B, N, n_in + 1)
    x : np.ndarray, shape (B, n_in)
    target : np.ndarray, shape (B, n_out)
    mask : np.ndarray, shape (B,)
    loss : str
        ``"mse"`` or ``"xent"``.
    self_term : bool
        Keep each unit's self-loop in the decay (e-prop) or not (RFLO).

    Returns
    -------
    h : np.ndarray, shape (B, N)
    P : np.ndarray, shape (B, nnz)
    R : np.ndarray, shape (B, N, n_in + 1)
    loss : float
        L_t.
    grads : dict[str, np.ndarray]
        The estimate for L_t, keyed and shaped like ``model.params``.
    """
    p, W = model.params, model.graph
    act, _ = UNIT_ACTIVATIONS[model.activation]
    post, pre = synapse_ends(W)
    acts = act((W @ h.T).T + x @ p["W_in"].T + p["b_rec"])      # (B, N)
    h_prev, h = h, (1 - model.alpha) * h + model.alpha * acts
    self_weight = W.diagonal() if self_term else 0.0
    P, R = trace_step(P, R, acts, h_prev, x, model.alpha, model.activation, post, pre,
                      self_weight)
    value, dy = sequence_loss(readout(p["W_out"], p["b_out"], h)[None], target[None],
                              mask[None], loss)
    dy = dy[0]                                                   # (B, n_out)
    q = dy @ B.T                                                 # learning signal (B, N)
    g = np.einsum("bi,bim->im", q, R)                            # (N, n_in + 1)
    return h, P, R, value, {"W_in": g[:, :-1], "W_rec": np.sum(q[:, post] * P, axis=0),
                            "b_rec": g[:, -1], "W_out": dy.T @ h, "b_out": dy.sum(axis=0)}


def _kernel_graph(model):
    """The graph's unsigned CSR index arrays and self-loops, as the kernels take them."""
    return (*model.kernel_index, self_loops(model.graph))


def _estimate(model, xs, targets, B, loss, mask, backend, self_term):
    xs, targets, mask, _ = check_sequences(xs, targets, mask, model.n_in, model.n_out,
                                           model.dtype, loss)
    B = check_feedback(B, model)
    backend = check_backend(backend or model.backend)
    W_in, W_rec, b_rec, W_out, b_out = model.weights()
    if backend != "numpy":
        indptr, indices, loops = _kernel_graph(model)
        value, grads = kernels("loopy_rflo", backend).rflo(
            W_in, W_rec, b_rec, W_out, b_out, indptr, indices, loops, B,
            np.ascontiguousarray(xs), np.ascontiguousarray(targets),
            np.ascontiguousarray(mask), model.leaks(), UNIT_CODES[model.activation],
            LOSSES.index(loss), self_term)
        return float(value), dict(zip(model.params, grads))
    _, P, R = zero_state(model, xs.shape[1])

    def step_fn(h, traces, x, target, m):
        h, P, R, value, grads = rflo_step(model, B, h, *traces, x, target, m, loss, self_term)
        return h, (P, R), value, grads

    return sum_over_steps(model, xs, targets, mask, step_fn, (P, R))


def rflo(model: LoopyNetwork, xs: np.ndarray, targets: np.ndarray, B: np.ndarray, loss: str,
         mask: np.ndarray | None = None,
         backend: str | None = None) -> tuple[float, dict[str, np.ndarray]]:
    """The loss and sparse RFLO's approximate gradient for a LoopyNetwork: dense RFLO
    (:func:`loopy_edu.rflo.rflo`) restricted to the graph's synapses.

    As a ``grad_fn`` for :func:`loopy_edu.train.train_sequences`, bind B:
    ``lambda m, x, y, loss, mask: rflo(m, x, y, B, loss, mask)``.

    Parameters
    ----------
    model : LoopyNetwork
    xs : np.ndarray, shape (T, n_in) or (T, B, n_in)
    targets : np.ndarray, shape (T, n_out) or (T, B, n_out)
    B : np.ndarray, shape (n_rec, n_out)
        The feedback matrix (:func:`loopy_edu.rflo.random_feedback`).
    loss : str
        ``"mse"`` or ``"xent"``.
    mask : np.ndarray, shape (T,) or (T, B), or None
    backend : str or None
        ``"numpy"``, ``"numba"`` or ``"cuda"``; None uses the model's.

    Returns
    -------
    loss : float
    grads : dict[str, np.ndarray]
        Keyed and shaped like ``model.params``; ``grads["W_rec"]`` (nnz,) in CSR order.

    Raises
    ------
    ValueError
        Naming the argument or parameter key that is invalid.
    """
    return _estimate(model, xs, targets, B, loss, mask, backend, self_term=False)


def eprop(model: LoopyNetwork, xs: np.ndarray, targets: np.ndarray, B: np.ndarray | None,
          loss: str, mask: np.ndarray | None = None,
          backend: str | None = None) -> tuple[float, dict[str, np.ndarray]]:
    """The loss and sparse e-prop's approximate gradient: :func:`rflo` with each unit's
    self-loop kept in the trace's decay. ``B=None`` is symmetric e-prop (the error fed back
    through W_outᵀ, taken at call time); a given B is random e-prop.

    Parameters
    ----------
    model : LoopyNetwork
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
    return _estimate(model, xs, targets, B, loss, mask, backend, self_term=True)


def _check_state(state, model, batch):
    """The state tuple (h, P, R) for ``batch`` streams, each part C-contiguous and of the
    model's dtype, or ValueError naming it."""
    if not isinstance(state, tuple) or len(state) != 3:
        raise ValueError(f"state: expected a tuple (h, P, R) from zero_state(), got "
                         f"{type(state).__name__}")
    N = model.n_rec
    shapes = ((batch, N), (batch, model.graph.nnz), (batch, N, model.n_in + 1))
    for part, name, shape in zip(state, ("h", "P", "R"), shapes):
        if (not isinstance(part, np.ndarray) or part.shape != shape
                or part.dtype != model.dtype or not part.flags.c_contiguous):
            got = (f"shape {part.shape}, dtype {part.dtype.name}"
                   if isinstance(part, np.ndarray) else type(part).__name__)
            raise ValueError(f"state: expected {name} a C-contiguous {model.dtype.name} array "
                             f"of shape {shape}, got {got}")
        check_array(part, f"state ({name})")
    return state


def plastic_step(model: LoopyNetwork, xs: np.ndarray, targets: np.ndarray,
                 B: np.ndarray | None, loss: str, lr: float, state: tuple[np.ndarray, ...],
                 mask: np.ndarray | None = None, self_term: bool = False,
                 backend: str | None = None) -> float:
    """Run the network online for the T steps of xs, learning as it goes: each step advances
    the state h, the traces P and R, and then the weights themselves by
    ``params[k] -= lr · (that step's estimate)`` (RFLO's, or e-prop's with ``self_term``).
    The next step runs on the new weights. ``model.params`` and ``state`` change in place.

    Parameters
    ----------
    model : LoopyNetwork
    xs : np.ndarray, shape (T, n_in) or (T, B, n_in)
        T = 1 is a single plastic step.
    targets : np.ndarray, shape (T, n_out) or (T, B, n_out)
    B : np.ndarray, shape (n_rec, n_out), or None
        The feedback matrix; None feeds back through the current W_outᵀ at every step
        (symmetric e-prop).
    loss : str
        ``"mse"`` or ``"xent"``.
    lr : float
        The learning rate of every step's update.
    state : tuple of np.ndarray
        ``(h, P, R)`` as from :func:`zero_state` with the batch of ``xs``; advanced in place.
    mask : np.ndarray, shape (T,) or (T, B), or None
    self_term : bool
        Keep each unit's self-loop in the trace's decay (e-prop).
    backend : str or None
        ``"numpy"``, ``"numba"`` or ``"cuda"``; None uses the model's.

    Returns
    -------
    float
        Σ_t L_t over the T steps, each with the weights of its step.

    Raises
    ------
    ValueError
        Naming the argument or parameter key that is invalid.
    """
    xs, targets, mask, _ = check_sequences(xs, targets, mask, model.n_in, model.n_out,
                                           model.dtype, loss)
    lr = check_positive(lr, "lr")
    symmetric = B is None
    B = check_feedback(model.params["W_out"].T if symmetric else B, model)
    backend = check_backend(backend or model.backend)
    h, P, R = _check_state(state, model, xs.shape[1])
    # The kernels update the weights in place: params must be the contiguous arrays they get.
    model.params.update(dict(zip(model.params, model.weights())))
    if backend != "numpy":
        indptr, indices, loops = _kernel_graph(model)
        return float(kernels("loopy_rflo", backend).plastic_step(
            *model.params.values(), indptr, indices, loops, B, h, P, R,
            np.ascontiguousarray(xs), np.ascontiguousarray(targets),
            np.ascontiguousarray(mask), model.leaks(), UNIT_CODES[model.activation],
            LOSSES.index(loss), self_term, symmetric, lr))
    total = 0.0
    for t in range(len(xs)):
        fb = model.params["W_out"].T if symmetric else B
        h[...], P[...], R[...], value, grads = rflo_step(model, fb, h, P, R, xs[t],
                                                         targets[t], mask[t], loss, self_term)
        for k, g in grads.items():
            model.params[k] -= lr * g
        total += value
    return total
