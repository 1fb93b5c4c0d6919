"""Unsupervised local plasticity on a loopy network's synapses (Chapter 12).

A rule here changes a weight using only what the synapse, or its unit, can see: the activity of
the presynaptic unit j and of the postsynaptic unit i of the synapse e: j -> i, the weight
w_e itself, and for BCM and intrinsic plasticity a per-unit quantity the unit keeps (a running
average of its own activity, its gain and bias). No error signal and no other synapse's
weight enters, except in synaptic normalisation, which reads the incoming weights of one unit
only (all stored at that unit). The weights are ``params["W_rec"]`` of a
:class:`loopy_edu.loopy.LoopyNetwork` (nnz,), in the CSR order of ``model.graph``: row i holds
unit i's inputs, so for the synapse e in row i, post = i and pre = ``indices[e]``.

One step of :func:`adapt` runs the network (the dynamics of :mod:`loopy_edu.loopy`, with a
per-unit gain a_i that only intrinsic plasticity changes) ::

    x_t = W_rec h_{t-1} + W_in u_t             (each unit's summed input)
    h_t = (1 − α) ⊙ h_{t-1} + α ⊙ act(a ⊙ x_t + b_rec)

and then updates every synapse from (pre, post) = (h_{t-1}[j], h_t[i]), or every unit's gain
and bias from (x_t[i], act(...)[i]). Synaptic normalisation, when on, then rescales each
unit's incoming weights back to the norm they had when :func:`adapt` began.

Hebbian fast weights (Ba et al. 2016) are the other use of a Hebbian outer product: a matrix
A_t of the current sequence, decaying and rebuilt within it, read by an inner loop
(:func:`fast_weight_states`); the slow weights stay as they are.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from . import graphs
from .backend import check_backend, kernels
from .checks import check_array, check_choice, check_number, check_positive
from .loopy import UNIT_ACTIVATIONS, UNIT_CODES

if TYPE_CHECKING:
    from .loopy import LoopyNetwork

#: The rules of :func:`adapt`, by name; their codes for the kernels are the positions.
RULES = ("off", "hebbian", "oja", "anti_oja", "bcm", "ip")
#: Synaptic normalisation: none, or each unit's incoming L1 or L2 norm kept fixed.
NORMS = ("none", "l1", "l2")


def hebbian(pre: np.ndarray, post: np.ndarray, eta: float) -> np.ndarray:
    """Hebb's rule: a synapse grows when its two units are active together. ::

        Δw_e = η · post_e · pre_e

    Local: the synapse reads the activity at its two ends. Unbounded on its own: pair it with
    synaptic normalisation.

    Parameters
    ----------
    pre, post : np.ndarray, shape (nnz,)
        The presynaptic and postsynaptic activity of every synapse.
    eta : float
        The learning rate.

    Returns
    -------
    np.ndarray, shape (nnz,)
        The weight changes Δw.
    """
    return eta * post * pre


def oja(pre: np.ndarray, post: np.ndarray, w: np.ndarray, eta: float) -> np.ndarray:
    """Oja's rule: Hebb's rule with a decay that keeps each unit's incoming weight vector near
    unit L2 norm (for a linear unit it converges to the inputs' first principal component). ::

        Δw_e = η · post_e · (pre_e − post_e · w_e)

    Local: the decay term needs only the synapse's own weight and its postsynaptic activity.

    Parameters
    ----------
    pre, post : np.ndarray, shape (nnz,)
        The presynaptic and postsynaptic activity of every synapse.
    w : np.ndarray, shape (nnz,)
        The weights.
    eta : float
        The learning rate.

    Returns
    -------
    np.ndarray, shape (nnz,)
        The weight changes Δw.
    """
    return eta * post * (pre - post * w)


def anti_oja(pre: np.ndarray, post: np.ndarray, w: np.ndarray, eta: float) -> np.ndarray:
    """Anti-Oja (Babinec & Pospíchal 2007): Oja's rule with the sign flipped, which decorrelates
    a unit from its inputs instead of aligning it with them. ::

        Δw_e = −η · post_e · (pre_e − post_e · w_e)

    Local for the same reason as :func:`oja`.

    Parameters
    ----------
    pre, post : np.ndarray, shape (nnz,)
        The presynaptic and postsynaptic activity of every synapse.
    w : np.ndarray, shape (nnz,)
        The weights.
    eta : float
        The learning rate.

    Returns
    -------
    np.ndarray, shape (nnz,)
        The weight changes Δw.
    """
    return -oja(pre, post, w, eta)


def bcm(pre: np.ndarray, post: np.ndarray, theta: np.ndarray, eta: float) -> np.ndarray:
    """The BCM rule (Bienenstock, Cooper & Munro 1982): potentiation when the postsynaptic
    activity exceeds a sliding threshold θ, depression below it. ::

        Δw_e = η · post_e · (post_e − θ_i) · pre_e

    Local: θ_i is a running average the postsynaptic unit keeps of its own activity
    (:func:`bcm_threshold`); the synapse reads it where it sits, at unit i.

    Parameters
    ----------
    pre, post : np.ndarray, shape (nnz,)
        The presynaptic and postsynaptic activity of every synapse.
    theta : np.ndarray, shape (nnz,)
        The threshold of every synapse's postsynaptic unit.
    eta : float
        The learning rate.

    Returns
    -------
    np.ndarray, shape (nnz,)
        The weight changes Δw.
    """
    return eta * post * (post - theta) * pre


def bcm_threshold(theta: np.ndarray, post: np.ndarray, tau: float) -> np.ndarray:
    """BCM's sliding threshold: a running average, over about ``tau`` steps, of each unit's
    squared activity, so that a unit that has been very active raises its bar. ::

        θ_i ← θ_i + (h_i² − θ_i) / τ

    Parameters
    ----------
    theta : np.ndarray, shape (N,)
        The thresholds.
    post : np.ndarray, shape (N,)
        Each unit's activity h_i at this step.
    tau : float
        The averaging time in steps (>= 1).

    Returns
    -------
    np.ndarray, shape (N,)
        The new thresholds.
    """
    return theta + (post * post - theta) / tau


def intrinsic(x: np.ndarray, y: np.ndarray, gain: np.ndarray, eta: float, mu: float,
              sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Intrinsic plasticity for tanh units (Schrauwen et al. 2008, after Triesch 2005): each
    unit y = tanh(a x + b) adapts its gain a and bias b so that the distribution of its output
    approaches a Gaussian of mean μ and standard deviation σ (stochastic gradient descent on
    their Kullback-Leibler divergence). ::

        Δb = −η · (−μ/σ² + y/σ² · (2σ² + 1 − y² + μ y))
        Δa = η / a + Δb · x

    Local: a unit reads only its own summed input x, its output y and its own a and b.

    Parameters
    ----------
    x : np.ndarray, shape (N,)
        Each unit's summed input before gain and bias.
    y : np.ndarray, shape (N,)
        Each unit's output tanh(a x + b).
    gain : np.ndarray, shape (N,)
        The gains a.
    eta : float
        The learning rate.
    mu, sigma : float
        The target mean and standard deviation of the output.

    Returns
    -------
    d_gain, d_bias : np.ndarray, shape (N,)
        Δa and Δb.
    """
    s2 = sigma * sigma
    d_bias = -eta * (-mu / s2 + y / s2 * (2 * s2 + 1 - y * y + mu * y))
    return eta / gain + d_bias * x, d_bias


def row_norms(w: np.ndarray, indptr: np.ndarray, norm: str) -> np.ndarray:
    """Each unit's incoming L1 or L2 norm: the norm of the weights of each CSR row.

    Parameters
    ----------
    w : np.ndarray, shape (nnz,)
        The weights, in CSR order.
    indptr : np.ndarray, shape (N + 1,)
        The graph's row pointers.
    norm : str
        ``"l1"`` or ``"l2"``.

    Returns
    -------
    np.ndarray, shape (N,)
    """
    check_choice(norm, "norm", NORMS[1:])
    terms = np.abs(w) if norm == "l1" else w * w
    sums = np.add.reduceat(np.append(terms, 0.0), indptr[:-1])   # (N,); the 0 ends the array
    sums[np.diff(indptr) == 0] = 0.0                             # reduceat's empty rows
    return sums if norm == "l1" else np.sqrt(sums)


def synaptic_normalisation(w: np.ndarray, indptr: np.ndarray, target: np.ndarray,
                           norm: str) -> np.ndarray:
    """Synaptic normalisation (as in SORN, Lazar et al. 2009): each unit rescales its incoming
    weights so that their L1 or L2 norm is back at its target. ::

        w_e ← w_e · target_i / ‖w_i‖        for every synapse e of row i

    Local: the rescaling of a synapse reads only the weights that share its postsynaptic
    unit, a resource that unit holds. Rows whose norm is 0 are left alone.

    Parameters
    ----------
    w : np.ndarray, shape (nnz,)
        The weights, in CSR order.
    indptr : np.ndarray, shape (N + 1,)
        The graph's row pointers.
    target : np.ndarray, shape (N,)
        Each unit's norm to keep.
    norm : str
        ``"l1"`` or ``"l2"``.

    Returns
    -------
    np.ndarray, shape (nnz,)
        The rescaled weights (a new array).
    """
    have = row_norms(w, indptr, norm)
    scale = np.divide(target, have, out=np.ones_like(have), where=have > 0)
    return w * np.repeat(scale, np.diff(indptr))


def fast_weight_update(A: np.ndarray, h: np.ndarray, decay: float, eta: float) -> np.ndarray:
    """One step of Hebbian fast weights (Ba et al. 2016), a decaying sum of outer products of
    the states within the current sequence. ::

        A_t = λ A_{t-1} + η h_t h_tᵀ

    Local: A_t[i, j] changes with the activity of its own two units i and j.

    Parameters
    ----------
    A : np.ndarray, shape (B, N, N)
        The fast weights A_{t-1}, one matrix per sequence.
    h : np.ndarray, shape (B, N)
        The states h_t.
    decay : float
        λ, in [0, 1].
    eta : float
        η, the fast learning rate.

    Returns
    -------
    np.ndarray, shape (B, N, N)
        A_t (a new array).
    """
    return decay * A + eta * h[:, :, None] * h[:, None, :]


def fast_weights(hs: np.ndarray, decay: float, eta: float) -> np.ndarray:
    """The fast weights after a sequence of states, from A_0 = 0: :func:`fast_weight_update`
    at every step, which sums to ::

        A_T = η Σ_{t=1}^{T} λ^{T−t} h_t h_tᵀ

    Parameters
    ----------
    hs : array_like, shape (T, B, N)
        The states h_1 .. h_T of B sequences.
    decay : float
        λ, in [0, 1].
    eta : float
        η (>= 0).

    Returns
    -------
    np.ndarray, shape (B, N, N)
        A_T of every sequence.

    Raises
    ------
    ValueError
        Naming ``hs``, ``decay`` or ``eta`` when it is invalid.
    """
    hs = check_array(hs, "hs", ndim=3)
    decay = check_number(decay, "decay", 0.0, 1.0)
    eta = check_number(eta, "eta", 0.0)
    A = np.zeros(hs.shape[1:] + hs.shape[2:], dtype=np.result_type(hs, np.float32))
    for h in hs:
        A = fast_weight_update(A, h, decay, eta)
    return A


def fast_weight_states(model: LoopyNetwork, xs: np.ndarray, decay: float = 0.95,
                       eta: float = 0.5, inner_steps: int = 1) -> np.ndarray:
    """States of a loopy network with Hebbian fast weights (Ba et al. 2016) within each
    sequence. At each step the slow drive z_t is computed once, then an inner loop of S steps
    settles the output through the fast weights A_{t-1} of the sequence so far ::

        z_t   = W_rec h_{t-1} + W_in x_t + b_rec
        y^0   = act(z_t),   y^{s+1} = act(z_t + A_{t-1} y^s),   s = 0 .. S−1
        h_t   = (1 − α) ⊙ h_{t-1} + α ⊙ y^S
        A_t   = λ A_{t-1} + η h_t h_tᵀ,     A_0 = 0

    Ba et al. also normalise z_t + A y^s over the units (layer normalisation); this version
    leaves it out, so keep η small enough that A stays contractive. A is dense, N × N per
    sequence, and costs O(N²) memory and time per inner step: meant for small N (hundreds of
    units), as in the paper, not for the large sparse graphs of Chapter 13.

    Parameters
    ----------
    model : LoopyNetwork
        The network; its params are read, never changed.
    xs : array_like, shape (T, B, n_in)
        The input sequences.
    decay : float
        λ, in [0, 1].
    eta : float
        η (>= 0); 0 gives the plain network's states.
    inner_steps : int
        S (>= 1).

    Returns
    -------
    np.ndarray, shape (T, B, N)
        The states h_t.

    Raises
    ------
    ValueError
        Naming the argument that is invalid.
    """
    xs = check_array(xs, "xs", shape=(None, None, model.n_in), dtype=model.dtype)
    decay = check_number(decay, "decay", 0.0, 1.0)
    eta = check_number(eta, "eta", 0.0)
    inner_steps = check_positive(inner_steps, "inner_steps", integer=True)
    act, _ = UNIT_ACTIVATIONS[model.activation]
    W, W_in, b_rec = model.graph, model.params["W_in"], model.params["b_rec"]
    T, B, _ = xs.shape
    hs = np.empty((T, B, model.n_rec), dtype=model.dtype)
    h = np.zeros((B, model.n_rec), dtype=model.dtype)
    A = np.zeros((B, model.n_rec, model.n_rec), dtype=model.dtype)
    for t in range(T):
        z = (W @ h.T).T + xs[t] @ W_in.T + b_rec                       # (B, N)
        y = act(z)
        for _ in range(inner_steps):
            y = act(z + np.einsum("bij,bj->bi", A, y))
        h = hs[t] = (1 - model.alpha) * h + model.alpha * y
        A = fast_weight_update(A, h, decay, eta)
    return hs


def plastic_pass(data: np.ndarray, indptr: np.ndarray, indices: np.ndarray,
                 W_in: np.ndarray, b_rec: np.ndarray, gain: np.ndarray, theta: np.ndarray,
                 target: np.ndarray, xs: np.ndarray, alpha: np.ndarray, activation: str,
                 rule: str, eta: float, tau: float, mu: float, sigma: float,
                 norm: str) -> tuple[float, float]:
    """One pass of the network over xs with plasticity on: the NumPy reference of the
    kernels' ``plastic_pass`` (the module docstring's step, then the rule). Each of the B
    sequences starts from h = 0 and they run one after the other. Updates ``data`` (the
    weights), ``b_rec``, ``gain`` and ``theta`` in place.

    Parameters
    ----------
    data : np.ndarray, shape (nnz,)
        The weights, in CSR order.
    indptr, indices : np.ndarray
        The graph's CSR structure.
    W_in : np.ndarray, shape (N, n_in)
    b_rec, gain, theta : np.ndarray, shape (N,)
        Biases, gains and BCM thresholds.
    target : np.ndarray, shape (N,)
        The norms synaptic normalisation keeps.
    xs : np.ndarray, shape (T, B, n_in)
    alpha : np.ndarray, shape (N,)
        The leak of each unit.
    activation : str
    rule : str
        One of :data:`RULES`.
    eta, tau, mu, sigma : float
        The learning rate, BCM's averaging time, IP's target mean and standard deviation.
    norm : str
        One of :data:`NORMS`.

    Returns
    -------
    total, squares : float
        The sums of h and of h² over every step, sequence and unit (for the activity's mean
        and standard deviation).
    """
    act, _ = UNIT_ACTIVATIONS[activation]
    T, B, _ = xs.shape
    N = b_rec.shape[0]
    post_of = np.repeat(np.arange(N), np.diff(indptr))       # (nnz,) the unit i of each j -> i
    W = sparse.csr_array((data, indices, indptr), shape=(N, N))
    W.data = data                                            # the same array: updates show
    total = squares = 0.0
    for b in range(B):
        h = np.zeros(N, dtype=data.dtype)
        for t in range(T):
            x = W @ h + W_in @ xs[t, b]                        # (N,)
            y = act(gain * x + b_rec)
            h_prev, h = h, (1 - alpha) * h + alpha * y
            total, squares = total + h.sum(), squares + (h * h).sum()
            pre, post = h_prev[indices], h[post_of]
            if rule == "hebbian":
                data += hebbian(pre, post, eta)
            elif rule in ("oja", "anti_oja"):
                data += (oja if rule == "oja" else anti_oja)(pre, post, data, eta)
            elif rule == "bcm":
                data += bcm(pre, post, theta[post_of], eta)
                theta[:] = bcm_threshold(theta, h, tau)
            elif rule == "ip":
                d_gain, d_bias = intrinsic(x, y, gain, eta, mu, sigma)
                gain += d_gain
                b_rec += d_bias
            if norm != "none" and rule not in ("off", "ip"):
                data[:] = synaptic_normalisation(data, indptr, target, norm)
    return total, squares


def adapt(model: LoopyNetwork, inputs: np.ndarray, rule: str = "ip", eta: float = 1e-4,
          epochs: int = 1, normalise: str = "none", tau: float = 100.0, mu: float = 0.0,
          sigma: float = 0.2, radius: bool = True,
          backend: str | None = None) -> dict[str, np.ndarray]:
    """Run the network over ``inputs`` with an unsupervised local rule on (the module
    docstring's step), ``epochs`` times, and leave the adapted weights in ``model.params``.

    Synaptic rules change ``W_rec``. Intrinsic plasticity (``"ip"``, tanh units only) changes
    each unit's gain a_i and bias; the gain starts at 1 and is folded into the weights at the
    end (row i of ``W_rec`` and ``W_in`` times a_i), so the model computes exactly the adapted
    units. With ``normalise`` ``"l1"`` or ``"l2"`` each unit's incoming weights keep the norm
    they had when this call began (after every synaptic update).

    Parameters
    ----------
    model : LoopyNetwork
        The network to adapt, in place.
    inputs : array_like, shape (T, B, n_in)
        The input sequences, run one after the other, each from h = 0.
    rule : str
        One of :data:`RULES`: ``"off"``, ``"hebbian"``, ``"oja"``, ``"anti_oja"``, ``"bcm"``,
        ``"ip"``.
    eta : float
        The learning rate (>= 0).
    epochs : int
        Passes over ``inputs`` (>= 1).
    normalise : str
        One of :data:`NORMS`.
    tau : float
        BCM's averaging time in steps (>= 1); its thresholds start at 0.
    mu, sigma : float
        IP's target output mean (in (-1, 1)) and standard deviation (> 0).
    radius : bool
        Whether to record the spectral radius after each epoch (an eigenvalue problem: slow
        for very large graphs).
    backend : str or None
        ``"numpy"``, ``"numba"`` or ``"cuda"``; None uses the model's. On ``"cuda"`` each step
        is two launches (one thread per unit), worth it only for large networks.

    Returns
    -------
    dict[str, np.ndarray]
        Per epoch, shape (epochs,): ``mean`` and ``sd`` of the states over the epoch's steps
        and units, and ``spectral_radius`` of the effective recurrent weights (diag(a) W_rec)
        at its end, when ``radius``.

    Raises
    ------
    ValueError
        Naming the argument that is invalid (an unknown rule or norm, ``eta`` < 0, ``"ip"``
        on units that are not tanh, inputs of the wrong shape or not finite), or the key of a
        parameter of the model that is.
    """
    rule = check_choice(rule, "rule", RULES)
    norm = check_choice(normalise, "normalise", NORMS)
    eta = check_number(eta, "eta", 0.0)
    epochs = check_positive(epochs, "epochs", integer=True)
    tau = check_number(tau, "tau", 1.0)
    mu = check_number(mu, "mu", -1.0, 1.0, low_open=True, high_open=True)
    sigma = check_positive(sigma, "sigma")
    if rule == "ip" and model.activation != "tanh":
        raise ValueError(f"rule: 'ip' is the rule for tanh units; the model's activation is "
                         f"{model.activation!r}")
    xs = np.ascontiguousarray(check_array(inputs, "inputs", shape=(None, None, model.n_in),
                                          dtype=model.dtype))
    backend = check_backend(backend or model.backend)
    model.weights()                                     # the params' shapes, dtype, finiteness
    data, W_in, b_rec = model.params["W_rec"], model.params["W_in"], model.params["b_rec"]
    indptr, indices = model.graph.indptr, model.graph.indices
    dt = model.dtype
    alpha = np.ascontiguousarray(np.broadcast_to(model.alpha, (model.n_rec,)), dt)
    gain, theta = np.ones(model.n_rec, dtype=dt), np.zeros(model.n_rec, dtype=dt)
    target = row_norms(data, indptr, norm).astype(dt) if norm != "none" \
        else np.zeros(model.n_rec, dtype=dt)
    hist: dict[str, list[float]] = {"mean": [], "sd": [], "spectral_radius": []}
    count = xs.shape[0] * xs.shape[1] * model.n_rec
    # Unsigned copies for the kernel, as LoopyNetwork's own: no sign check per gathered index.
    index = (indptr.astype(np.uint32), indices.astype(np.uint32))
    for _ in range(epochs):
        if backend == "numpy":
            total, squares = plastic_pass(data, indptr, indices, W_in, b_rec, gain, theta,
                                          target, xs, alpha, model.activation, rule, eta, tau,
                                          mu, sigma, norm)
        else:
            total, squares = kernels("plasticity", backend).plastic_pass(
                data, *index, W_in, b_rec, gain, theta, target, xs, alpha,
                UNIT_CODES[model.activation], RULES.index(rule), eta, tau, mu, sigma,
                NORMS.index(norm))
        mean = total / count
        hist["mean"].append(mean)
        hist["sd"].append(float(np.sqrt(max(squares / count - mean * mean, 0.0))))
        if radius:
            G = model.graph
            G.data = data * np.repeat(gain, np.diff(indptr))
            hist["spectral_radius"].append(graphs.spectral_radius(G))
    data *= np.repeat(gain, np.diff(indptr))
    W_in *= gain[:, None]
    return {k: np.asarray(v) for k, v in hist.items() if radius or k != "spectral_radius"}
