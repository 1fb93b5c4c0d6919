"""SORN, the self-organising recurrent network (Lazar, Pipa & Triesch 2009; Chapter 12).

Binary threshold units: N_e excitatory (x) and N_i = ⌊0.2 N_e⌋ inhibitory (y). Only the E -> E
synapses are sparse (about k inputs per unit, row i of ``W_ee`` holds unit i's inputs, as in
:mod:`loopy_edu.graphs`) and plastic; E -> I, I -> E and the input pools are dense and fixed.
One step, in the order of the public protocol (``delpapa/SORN_V2``, ``common/sorn.py``) ::

    x(t+1) = Θ( W_ee x(t) - W_ei y(t) - T_e + g W_eu u(t) )
    y(t+1) = Θ( W_ie x(t+1) - T_i )

with Θ(a) = 1 when a >= 0 and 0 otherwise (the inhibitory units see the *new* excitatory
state, as SORN_V2 does; the 2009 paper uses x(t)). Each input symbol drives its own pool of
``n_u`` excitatory units with weight 1. Then three local rules, each reading only what a
synapse or a unit sees:

- STDP on the E -> E synapses, from the pre- and postsynaptic spikes of two steps ::

      Δw_ij = η_stdp ( x_i(t+1) x_j(t) - x_i(t) x_j(t+1) ),

  a weight that falls below 1e-10 is pruned (set to 0, and never grows again);
- intrinsic plasticity (IP), each threshold toward the target rate h_ip ::

      T_e,i ← T_e,i + η_ip ( x_i(t+1) - h_ip );

- synaptic normalisation (SN): each unit's incoming E weights are divided by their sum, so
  every row of ``W_ee`` sums to 1 ::

      w_ij ← w_ij / Σ_j' w_ij'.

The NumPy reference is :func:`step` and the three rules below; the Numba kernel
``kernels/sorn_numba.py`` runs the same arithmetic in one compiled loop over the steps.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import optimize, sparse

from .backend import kernels
from .checks import (check_array, check_choice, check_labels, check_number,
                     check_positive)
from .graphs import erdos_renyi
from .model import Model

BACKENDS = ("numpy", "numba")
PRUNE = 1e-10     # SORN_V2's pruning bound: a weight below it is removed


def step(x: np.ndarray, y: np.ndarray, u: np.ndarray, W_ee: sparse.csr_array,
         W_ei: np.ndarray, W_ie: np.ndarray, W_eu: np.ndarray, T_e: np.ndarray,
         T_i: np.ndarray, input_gain: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """One step of the SORN's units (no plasticity): the new binary states.

    Parameters
    ----------
    x : np.ndarray, shape (N_e,)
        Excitatory states (0 or 1) at t.
    y : np.ndarray, shape (N_i,)
        Inhibitory states (0 or 1) at t.
    u : np.ndarray, shape (n_in,)
        The input at t (one-hot for a symbol).
    W_ee : sparse.csr_array, shape (N_e, N_e)
        E -> E weights, row i holding unit i's inputs.
    W_ei : np.ndarray, shape (N_e, N_i)
        I -> E weights.
    W_ie : np.ndarray, shape (N_i, N_e)
        E -> I weights.
    W_eu : np.ndarray, shape (N_e, n_in)
        Input -> E weights.
    T_e, T_i : np.ndarray, shapes (N_e,) and (N_i,)
        Thresholds.
    input_gain : float
        The factor g on the input drive.

    Returns
    -------
    x_new : np.ndarray, shape (N_e,)
        float64, 0 or 1.
    y_new : np.ndarray, shape (N_i,)
        float64, 0 or 1.
    """
    a = W_ee @ x - W_ei @ y - T_e + input_gain * (W_eu @ u)
    x_new = (a >= 0).astype(np.float64)
    y_new = (W_ie @ x_new - T_i >= 0).astype(np.float64)
    return x_new, y_new


def stdp(data: np.ndarray, post: np.ndarray, pre: np.ndarray, x_old: np.ndarray,
         x_new: np.ndarray, eta: float) -> np.ndarray:
    """SORN's STDP on the synapses of a sparse matrix: a pre spike before a post spike
    strengthens the synapse, the reverse order weakens it; weights below 1e-10 are pruned
    to 0 and a pruned synapse stays 0. ::

        Δw_ij = η ( x_i(t+1) x_j(t) - x_i(t) x_j(t+1) )

    Parameters
    ----------
    data : np.ndarray, shape (nnz,)
        The weights w_ij, one per synapse.
    post, pre : np.ndarray, shape (nnz,)
        Each synapse's postsynaptic unit i and presynaptic unit j (for a CSR matrix: the row
        of each entry and ``indices``).
    x_old, x_new : np.ndarray, shape (N,)
        The binary states at t and t + 1.
    eta : float
        The learning rate η.

    Returns
    -------
    np.ndarray, shape (nnz,)
        The new weights (a new array).
    """
    dw = eta * (x_new[post] * x_old[pre] - x_old[post] * x_new[pre])
    out = np.where(data > 0, data + dw, 0.0)
    out[out < PRUNE] = 0.0
    return out


def intrinsic_plasticity(T: np.ndarray, x: np.ndarray, eta: float, h: float) -> np.ndarray:
    """IP: each threshold moves toward the target rate h (up after a spike, down after none),
    so over time each unit fires a fraction h of the steps. ::

        T_i ← T_i + η ( x_i - h )

    Parameters
    ----------
    T : np.ndarray, shape (N,)
        The thresholds.
    x : np.ndarray, shape (N,)
        The binary states just computed.
    eta : float
        The learning rate η.
    h : float
        The target rate.

    Returns
    -------
    np.ndarray, shape (N,)
        The new thresholds (a new array).
    """
    return T + eta * (x - h)


def normalise_rows(data: np.ndarray, post: np.ndarray, n: int) -> np.ndarray:
    """SN: divide each unit's incoming weights by their sum, so that every row sums to 1; a
    row whose weights are all 0 (every synapse pruned) stays 0.

    Parameters
    ----------
    data : np.ndarray, shape (nnz,)
        The weights, one per synapse.
    post : np.ndarray, shape (nnz,)
        Each synapse's postsynaptic unit (its row).
    n : int
        The number of rows.

    Returns
    -------
    np.ndarray, shape (nnz,)
        The normalised weights (a new array).
    """
    # bincount adds in storage order, the order the Numba kernel adds in, so both give the
    # same bits.
    total = np.bincount(post, weights=data, minlength=n)                       # (n,)
    return np.where(total[post] > 0, data / np.where(total > 0, total, 1.0)[post], 0.0)


def logistic_readout(states: np.ndarray, labels: np.ndarray, n_classes: int, C: float = 1.0,
                     max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """A multinomial logistic-regression readout, SORN_V2's classifier (scikit-learn's
    ``LogisticRegression(solver="lbfgs")`` objective, its defaults C = 1 and 100 iterations):
    minimise, over W (K, N) and an unpenalised bias b (K,), ::

        C Σ_t -log softmax(W x_t + b)[label_t] + ||W||² / 2

    by L-BFGS (``scipy.optimize.minimize``), from W = 0, b = 0.

    Parameters
    ----------
    states : np.ndarray, shape (T, N)
        The features x_t.
    labels : np.ndarray, shape (T,)
        Integer classes in [0, n_classes).
    n_classes : int
        The number of classes K.
    C : float
        The inverse penalty, as in scikit-learn.
    max_iter : int
        L-BFGS iterations.

    Returns
    -------
    W_out : np.ndarray, shape (K, N)
    b_out : np.ndarray, shape (K,)
        Predict with ``(states @ W_out.T + b_out).argmax(-1)``.

    Raises
    ------
    ValueError
        Naming the argument that is invalid.
    """
    X = check_array(states, "states", ndim=2, dtype=np.float64)
    n_classes = int(check_positive(n_classes, "n_classes", integer=True))
    y = check_labels(labels, "labels", n_classes, n_samples=X.shape[0])
    C = check_number(C, "C", 0, low_open=True)
    max_iter = check_positive(max_iter, "max_iter", integer=True)
    onehot = np.eye(n_classes)[y]                                             # (T, K)
    K, N = n_classes, X.shape[1]

    def loss_and_grad(theta):
        W, b = theta[:K * N].reshape(K, N), theta[K * N:]
        z = X @ W.T + b                                                      # (T, K)
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        d = C * (np.exp(logp) - onehot)                                      # ∂loss/∂z
        loss = -C * (logp * onehot).sum() + 0.5 * (W * W).sum()
        return loss, np.concatenate([(d.T @ X + W).ravel(), d.sum(axis=0)])

    theta = optimize.minimize(loss_and_grad, np.zeros(K * (N + 1)), jac=True,
                              method="L-BFGS-B", options={"maxiter": max_iter}).x
    return theta[:K * N].reshape(K, N), theta[K * N:]


def _normalised(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    W = rng.random(shape)
    return W / W.sum(axis=1, keepdims=True)


class SORN(Model):
    """The SORN of Lazar, Pipa & Triesch (2009) with SORN_V2's counting-task settings.

    ``run`` continues from the current state (states, thresholds and weights persist between
    calls), as SORN_V2 runs its plastic, readout-training and test phases back to back.

    Parameters
    ----------
    n_e : int
        Excitatory units N_e.
    n_i : int or None
        Inhibitory units; None for ⌊0.2 N_e⌋.
    n_in : int
        Input channels (symbols); each drives a pool of ``n_u`` excitatory units, the pools
        disjoint, so n_in · n_u <= N_e.
    n_u : int
        Units per input pool.
    k : float
        Mean number of E -> E inputs per excitatory unit (SORN_V2's ``lamb``).
    eta_stdp, eta_ip : float
        Learning rates of STDP and IP.
    h_ip : float
        IP's target firing rate, in (0, 1).
    input_gain : float
        The factor g on the input drive.
    t_e_max, t_i_max : float
        Initial thresholds are drawn from U(0, t_e_max) and U(0, t_i_max).
    stdp, ip, sn : bool
        Which plasticity is on when ``run(..., plastic=True)``.
    seed : int
        Seed of every draw: the graph, all weights, thresholds, pools and initial states.
    backend : str
        ``"numpy"`` (the reference) or ``"numba"``.

    Raises
    ------
    ValueError
        Naming the argument that is invalid.
    """

    def __init__(self, n_e: int = 200, n_i: int | None = None, n_in: int = 6, n_u: int = 10,
                 k: float = 10.0, eta_stdp: float = 0.001, eta_ip: float = 0.001,
                 h_ip: float = 0.1, input_gain: float = 1.0, t_e_max: float = 0.5,
                 t_i_max: float = 0.5, stdp: bool = True, ip: bool = True, sn: bool = True,
                 seed: int = 0, backend: str = "numba") -> None:
        self.n_e = int(check_positive(n_e, "n_e", integer=True))
        if self.n_e < 2:
            raise ValueError(f"n_e: expected an integer of at least 2, got {n_e!r}")
        self.n_i = (self.n_e // 5 if n_i is None
                    else int(check_positive(n_i, "n_i", integer=True)))
        if self.n_i < 1:
            raise ValueError(f"n_i: expected at least 1 inhibitory unit, got {self.n_i} "
                             f"(n_e = {self.n_e} gives ⌊0.2 n_e⌋ = 0; pass n_i)")
        self.n_in = int(check_positive(n_in, "n_in", integer=True))
        self.n_u = int(check_positive(n_u, "n_u", integer=True))
        if self.n_in * self.n_u > self.n_e:
            raise ValueError(f"n_u: expected n_in * n_u <= n_e = {self.n_e} (disjoint pools), "
                             f"got {self.n_in} * {self.n_u}")
        self.k = check_number(k, "k", 0, self.n_e - 1, low_open=True)
        self.eta_stdp = check_number(eta_stdp, "eta_stdp", 0)
        self.eta_ip = check_number(eta_ip, "eta_ip", 0)
        self.h_ip = check_number(h_ip, "h_ip", 0, 1, low_open=True, high_open=True)
        self.input_gain = check_number(input_gain, "input_gain")
        self.t_e_max = check_number(t_e_max, "t_e_max", 0)
        self.t_i_max = check_number(t_i_max, "t_i_max", 0)
        for value, name in ((stdp, "stdp"), (ip, "ip"), (sn, "sn")):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{name}: expected a bool, got {value!r}")
        self.stdp, self.ip, self.sn = bool(stdp), bool(ip), bool(sn)
        self.seed = int(seed)
        self.backend = check_choice(backend, "backend", BACKENDS)
        rng = np.random.default_rng(seed)
        while True:      # as SORN_V2: redraw until every unit has an E input to normalise
            W = erdos_renyi(self.n_e, self.k / (self.n_e - 1), seed=int(rng.integers(2**32)))
            if np.all(np.diff(W.indptr) > 0):
                break
        W.data = rng.random(W.nnz)
        self.post = np.repeat(np.arange(self.n_e), np.diff(W.indptr))     # (nnz,) row of each
        W.data = normalise_rows(W.data, self.post, self.n_e)
        self.W_ee = W                                                    # (N_e, N_e)
        self.W_ie = _normalised(rng, (self.n_i, self.n_e))               # E -> I
        self.W_ei = _normalised(rng, (self.n_e, self.n_i))               # I -> E
        pools = rng.permutation(self.n_e)[:self.n_in * self.n_u].reshape(self.n_in, self.n_u)
        self.W_eu = np.zeros((self.n_e, self.n_in))
        self.W_eu[pools, np.arange(self.n_in)[:, None]] = 1.0
        self.T_e = self.t_e_max * rng.random(self.n_e)
        self.T_i = self.t_i_max * rng.random(self.n_i)
        self.x = (rng.random(self.n_e) < 0.5).astype(np.float64)
        self.y = (rng.random(self.n_i) < 0.5).astype(np.float64)

    def config(self) -> dict[str, Any]:
        return dict(n_e=self.n_e, n_i=self.n_i, n_in=self.n_in, n_u=self.n_u, k=self.k,
                    eta_stdp=self.eta_stdp, eta_ip=self.eta_ip, h_ip=self.h_ip,
                    input_gain=self.input_gain, t_e_max=self.t_e_max, t_i_max=self.t_i_max,
                    stdp=self.stdp, ip=self.ip, sn=self.sn, seed=self.seed,
                    backend=self.backend)

    def run(self, inputs: np.ndarray, plastic: bool = True) -> np.ndarray:
        """Run the network on ``inputs`` from its current state, updating its states, and,
        when ``plastic``, its weights and thresholds by the rules switched on.

        Parameters
        ----------
        inputs : np.ndarray, shape (T, n_in)
            The input at each step (one-hot rows for symbols).
        plastic : bool
            Whether STDP, IP and SN (those on in the constructor) act; False freezes the
            network, as in SORN_V2's readout phases.

        Returns
        -------
        np.ndarray, shape (T, N_e)
            The excitatory states x(1), ..., x(T) after each step, uint8 0 or 1.

        Raises
        ------
        ValueError
            Naming ``inputs`` if its shape is not (T, n_in) or it holds NaN or Inf.
        """
        us = check_array(inputs, "inputs", shape=(None, self.n_in), dtype=np.float64)
        if not isinstance(plastic, (bool, np.bool_)):
            raise TypeError(f"plastic: expected a bool, got {plastic!r}")
        rules = (self.stdp and plastic, self.ip and plastic, self.sn and plastic)
        if self.backend == "numba":
            return kernels("sorn", "numba").run(
                self.W_ee.data, self.W_ee.indptr, self.W_ee.indices.astype(np.uint32),
                self.W_ei, self.W_ie, self.W_eu, self.T_e, self.T_i, self.x, self.y,
                np.ascontiguousarray(us), self.eta_stdp, self.eta_ip, self.h_ip,
                self.input_gain, *rules)
        return self._run_numpy(us, *rules)

    def _run_numpy(self, us: np.ndarray, use_stdp: bool, use_ip: bool,
                   use_sn: bool) -> np.ndarray:
        W = self.W_ee
        states = np.empty((len(us), self.n_e), dtype=np.uint8)                  # (T, N_e)
        for t, u in enumerate(us):
            x_new, y_new = step(self.x, self.y, u, W, self.W_ei, self.W_ie, self.W_eu,
                                self.T_e, self.T_i, self.input_gain)
            if use_ip:
                self.T_e[:] = intrinsic_plasticity(self.T_e, x_new, self.eta_ip, self.h_ip)
            if use_stdp:
                W.data[:] = stdp(W.data, self.post, W.indices, self.x, x_new, self.eta_stdp)
            if use_sn:
                W.data[:] = normalise_rows(W.data, self.post, self.n_e)
            self.x[:], self.y[:] = x_new, y_new
            states[t] = x_new
        return states
