"""The wide strange-loop network (Chapter 15, after F. Chaubard's draft): a main gate routes
each loop to a left lobe, a right lobe or the output, and each lobe is a gate over a small
mixture of tanh experts, so that experts can be composed again and again until the gate
chooses the output.

The network reads a token sequence X (B, T, n_in) one token per loop (x_t = 0 after the last
token). From h_0 = 0, at loop t = 1..M, with v_t = [h_{t-1}, x_t] (B, H + n_in), ::

    π_t = softmax(G v_t + g)                       over (left, right, output)
    γ_{k,t} = softmax(A_k v_t + a_k)               over the E experts of lobe k in {L, R}
    u_{k,t} = Σ_e γ_{k,t,e} tanh(W_{k,e} v_t + b_{k,e})
    h_t = π_{L,t} u_{L,t} + π_{R,t} u_{R,t} + π_{out,t} h_{t-1}
    y_t = V h_t + c

**Training is soft, testing hard.** In training every gate is the soft mixture above and the
answer is read PonderNet-style where the main gate chooses the output: λ_t = π_{out,t}, ::

    p_t = λ_t Π_{s<t} (1 − λ_s)   (t < M),    p_M = Π_{s<M} (1 − λ_s)
    y = Σ_t p_t y_t,    L = mean_b Σ_o BCE(σ(y_o), Y_o)

(plus, optionally, prices on the gates' entropy and on the expected loops, see
:func:`wide_backward`), so the loss is a smooth function of every weight, its gradient is exact
(BPTT through all M loops) and it can be proven against finite differences. At test
(:meth:`WideSLN.predict`) each gate takes its argmax: a lobe's chosen expert alone updates
h_t = tanh(W_{k,e} v_t + b_{k,e}), and the first loop whose main gate picks the output stops
the example and answers σ(V h_{t-1} + c) (the cap M answers with h_M).

A straight-through estimator would train the hard path itself, but its "gradient" is not the
gradient of any loss, so it cannot be checked by finite differences, and it is biased. The
price of the soft choice is a train/test gap wherever the trained gates stay far from
one-hot, which the gate entropy (:func:`gate_entropy`) measures and ``entropy_cost`` narrows.
Without ``ponder_cost`` the remainder at the cap answers for free, and the trained main gate
need never pick the output: the hard pass then runs every example to the cap.

Arrays of loops are (M, B, ...): loop first.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .activations import sigmoid, softmax
from .backend import check_backend, kernels
from .checks import (check_array, check_binary, check_dtype, check_number, check_params,
                     check_positive)
from .halting import bce
from .mlp import init_weight
from .model import Model

GATES = ("left", "right", "output")
SIDES = ("L", "R")


def _token(X: np.ndarray, t: int) -> np.ndarray:  # X (B, T, n_in) -> (B, n_in)
    """The token read at loop t (1-based): X[:, t - 1], or zeros after the sequence."""
    return X[:, t - 1] if t <= X.shape[1] else np.zeros_like(X[:, 0])


def wide_forward(params: dict[str, np.ndarray], X: np.ndarray,  # X (B, T, n_in)
                 max_loops: int) -> dict[str, np.ndarray]:
    """The soft (training) pass of the wide SLN over ``max_loops`` loops (Chapter 15).

    Returns the states Hs (M + 1, B, H) (row 0 is h_0 = 0), the inputs v (M, B, H + n_in),
    the main gate pi (M, B, 3), the expert gates gamma (M, 2, B, E), the experts' outputs U
    (M, 2, E, B, H), the logits Ys (M, B, n_out), the output weights p (M, B) and the answer
    y = Σ_t p_t y_t (B, n_out).
    """
    B = X.shape[0]
    H = params["V"].shape[1]
    Hs = [np.zeros((B, H), X.dtype)]
    vs, pis, gammas, Us, Ys, lams = [], [], [], [], [], []
    for t in range(1, max_loops + 1):
        v = np.hstack([Hs[-1], _token(X, t)])
        pi = softmax(v @ params["G"].T + params["g"])
        gamma = [softmax(v @ params[f"A_{k}"].T + params[f"a_{k}"]) for k in SIDES]
        U = [np.tanh(np.einsum("ehd,bd->ebh", params[f"W_{k}"], v)
                     + params[f"b_{k}"][:, None]) for k in SIDES]
        u = [np.einsum("be,ebh->bh", gm, Uk) for gm, Uk in zip(gamma, U)]
        Hs.append(pi[:, :1] * u[0] + pi[:, 1:2] * u[1] + pi[:, 2:] * Hs[-1])
        Ys.append(Hs[-1] @ params["V"].T + params["c"])
        vs.append(v), pis.append(pi), gammas.append(gamma), Us.append(U)
        lams.append(pi[:, 2])
    lam = np.array(lams)
    lam[-1] = 1.0                                   # the cap takes the remainder
    survive = np.cumprod(np.vstack([np.ones((1, B), X.dtype), 1.0 - lam[:-1]]), axis=0)
    out = {"Hs": np.array(Hs), "v": np.array(vs), "pi": np.array(pis),
           "gamma": np.array(gammas), "U": np.array(Us), "Ys": np.array(Ys),
           "p": lam * survive}
    out["y"] = np.einsum("tb,tbo->bo", out["p"], out["Ys"])
    return out


def _softmax_back(q: np.ndarray, dq: np.ndarray) -> np.ndarray:  # (..., K) -> (..., K)
    """∂L/∂z of q = softmax(z), from ∂L/∂q."""
    return q * (dq - (q * dq).sum(axis=-1, keepdims=True))


def _log(q: np.ndarray) -> np.ndarray:
    """log q, with 0 where a probability underflowed to 0 (where q log q and q ∂H/∂q are 0)."""
    return np.log(np.where(q > 0, q, 1.0))


def _gate_entropies(c: dict[str, np.ndarray]) -> np.ndarray:  # -> (B,)
    """Σ_t [H(π_t) + H(γ_{L,t}) + H(γ_{R,t})] per example, in nats, from the cache ``c`` of
    :func:`wide_forward`: the gates' entropy that ``entropy_cost`` charges."""
    q = [c["pi"], c["gamma"][:, 0], c["gamma"][:, 1]]
    return sum(-(x * _log(x)).sum(axis=(0, 2)) for x in q)


def wide_backward(params: dict[str, np.ndarray], Y: np.ndarray,   # Y (B, n_out)
                  c: dict[str, np.ndarray], entropy_cost: float,
                  ponder_cost: float) -> dict[str, np.ndarray]:
    """The exact gradient of the soft loss (Chapter 15), BPTT through every loop, keyed like
    ``params``, from the cache ``c`` of :func:`wide_forward`: ::

        L = mean_b [Σ_o BCE(σ(y_o), Y_o) + β Σ_t (H(π_t) + H(γ_{L,t}) + H(γ_{R,t}))
                    + τ Σ_t t p_t]

    with β = ``entropy_cost`` (H the entropy; ∂H/∂q_k = −log q_k − 1, and the −1 cancels in
    the softmax's backward pass) and τ = ``ponder_cost``, the price of the expected number of
    loops Σ_t t p_t (it adds τ t / B to ∂L/∂p_t).

    The output weights p_t depend on λ_1..λ_t. With J_t = Σ_{t' ≥ t} (p_{t'}/S_t) ∂L/∂p_{t'}
    (S_t = Π_{s<t}(1 − λ_s), J_M = ∂L/∂p_M) the recursion J_t = λ_t ∂L/∂p_t + (1 − λ_t)
    J_{t+1} gives, without dividing by 1 − λ, ::

        ∂L/∂λ_t = S_t (∂L/∂p_t − J_{t+1})   (t < M; λ_M is not used)
    """
    Hs, v, pi, gamma, U, Ys, p = (c[k] for k in ("Hs", "v", "pi", "gamma", "U", "Ys", "p"))
    M, B, H = len(p), Y.shape[0], Hs.shape[2]
    gy = (sigmoid(c["y"]) - Y) / B
    dp = np.einsum("tbo,bo->tb", Ys, gy) + ponder_cost / B * np.arange(1, M + 1)[:, None]
    lam = pi[:, :, 2]
    survive = np.cumprod(np.vstack([np.ones((1, B), Y.dtype), 1.0 - lam[:-1]]), axis=0)
    dlam = np.zeros_like(p)
    J = dp[-1]
    for t in range(M - 2, -1, -1):
        dlam[t] = survive[t] * (dp[t] - J)
        J = lam[t] * dp[t] + (1.0 - lam[t]) * J
    sharpen = entropy_cost / B
    grads = {k: np.zeros_like(w) for k, w in params.items()}
    grads["V"] = np.einsum("tb,bo,tbh->oh", p, gy, Hs[1:])
    grads["c"] = np.einsum("tb,bo->o", p, gy)
    dh = np.zeros((B, H), Y.dtype)
    for t in range(M - 1, -1, -1):
        dh = dh + p[t][:, None] * gy @ params["V"]
        u = [np.einsum("be,ebh->bh", gamma[t, i], U[t, i]) for i in range(2)]
        dpi = np.stack([(dh * u[0]).sum(1), (dh * u[1]).sum(1),
                        (dh * Hs[t]).sum(1) + dlam[t]], axis=1) - sharpen * _log(pi[t])
        dzG = _softmax_back(pi[t], dpi)
        grads["G"] += dzG.T @ v[t]
        grads["g"] += dzG.sum(axis=0)
        dv = dzG @ params["G"]
        for i, k in enumerate(SIDES):
            du = pi[t, :, i:i + 1] * dh                                  # (B, H)
            dzA = _softmax_back(gamma[t, i], np.einsum("bh,ebh->be", du, U[t, i])
                                - sharpen * _log(gamma[t, i]))
            dZ = gamma[t, i].T[:, :, None] * du * (1.0 - U[t, i] ** 2)   # (E, B, H)
            grads[f"A_{k}"] += dzA.T @ v[t]
            grads[f"a_{k}"] += dzA.sum(axis=0)
            grads[f"W_{k}"] += np.einsum("ebh,bd->ehd", dZ, v[t])
            grads[f"b_{k}"] += dZ.sum(axis=1)
            dv = dv + dzA @ params[f"A_{k}"] + np.einsum("ebh,ehd->bd", dZ, params[f"W_{k}"])
        dh = pi[t, :, 2:] * dh + dv[:, :H]
    return grads


def wide_predict(params: dict[str, np.ndarray], X: np.ndarray,  # X (B, T, n_in)
                 max_loops: int) -> tuple[np.ndarray, ...]:
    """The hard (test) pass of the wide SLN (Chapter 15): every gate takes its argmax, a lobe
    runs only its chosen expert, and an example stops at the first loop whose main gate picks
    the output (or at the cap ``max_loops``).

    Returns the answers σ(V h + c) (B, n_out), the loops used (B,), and the route: the main
    gate's choice per loop (B, M) (0 left, 1 right, 2 output, −1 after the stop) and the expert
    the chosen lobe ran (B, M) (−1 where no lobe ran).
    """
    B, M = X.shape[0], max_loops
    H = params["V"].shape[1]
    h = np.zeros((B, H), X.dtype)
    loops = np.zeros(B, dtype=np.int64)
    lobe, expert = np.full((B, M), -1, dtype=np.int64), np.full((B, M), -1, dtype=np.int64)
    for t in range(1, M + 1):
        v = np.hstack([h, _token(X, t)])
        run = loops == 0
        choice = np.argmax(v @ params["G"].T + params["g"], axis=1)
        lobe[run, t - 1] = choice[run]
        loops[run & (choice == 2)] = t
        new = h.copy()
        for i, k in enumerate(SIDES):
            e = np.argmax(v @ params[f"A_{k}"].T + params[f"a_{k}"], axis=1)
            go = run & (choice == i)
            expert[go, t - 1] = e[go]
            W, b = params[f"W_{k}"][e], params[f"b_{k}"][e]             # (B, H, D), (B, H)
            new[go] = np.tanh(np.einsum("bhd,bd->bh", W, v) + b)[go]
        h = new
        if (loops > 0).all():
            break
    loops[loops == 0] = M
    return sigmoid(h @ params["V"].T + params["c"]), loops, lobe, expert


def gate_entropy(q: ArrayLike) -> float:
    """The mean entropy, in nats, of the distributions along the last axis of ``q`` (Chapter
    15): 0 for one-hot gates, log K for uniform ones over K choices, ::

        H(q) = − Σ_k q_k log q_k

    Parameters
    ----------
    q : array_like, shape (..., K)
        Probabilities, for instance ``forward(X)["pi"]`` or ``["gamma"]``.

    Returns
    -------
    float
    """
    q = check_array(q, "q")
    if q.min() < 0 or not np.allclose(q.sum(axis=-1), 1.0):
        raise ValueError("q: expected probability vectors along the last axis, got entries "
                         f"in [{q.min():g}, {q.max():g}] with sums not all 1")
    return float(-(q * _log(q)).sum(axis=-1).mean())


class WideSLN(Model):
    """The wide strange-loop network (Chapter 15): a main gate that routes each loop to a
    left lobe, a right lobe or the output, each lobe a gate over ``n_experts`` tanh experts;
    trained soft (:func:`wide_forward`, :func:`wide_backward`), run hard at test
    (:func:`wide_predict`). The module's docstring has the equations and why the gate is soft
    in training and hard at test.

    ``params``: the main gate ``G`` (3, D) and ``g`` (3,) with D = n_hidden + n_in; per lobe
    k in {L, R} the expert gate ``A_k`` (E, D) and ``a_k`` (E,) and the experts ``W_k``
    (E, H, D) and ``b_k`` (E, H); the readout ``V`` (n_out, H) and ``c`` (n_out,).

    Parameters
    ----------
    n_in, n_hidden, n_out : int
        The token width, the state's units H, the outputs.
    n_experts : int
        The experts E in each lobe, at least 1.
    max_loops : int
        The loop cap M, at least 1: training always runs M loops, a test stops earlier.
    entropy_cost : float
        β ≥ 0, the price per nat of the gates' entropy in the loss (:func:`wide_backward`):
        it pushes the soft gates towards the one-hot choices the test makes.
    ponder_cost : float
        τ ≥ 0, the price per expected loop in the loss (:func:`wide_backward`): without it
        the remainder at the cap answers for free, and the main gate need never pick the
        output, so the hard pass would always run to the cap.
    seed : int or None
    dtype : dtype-like
    backend : str
        ``"numpy"``, ``"numba"`` or ``"cuda"`` (on CUDA, :meth:`forward`, which returns every
        intermediate array, runs the Numba kernel).

    Raises
    ------
    ValueError
        Naming the argument, if one is invalid.
    """

    def __init__(self, n_in: int, n_hidden: int, n_out: int, n_experts: int = 4,
                 max_loops: int = 10, entropy_cost: float = 0.0, ponder_cost: float = 0.0,
                 seed: int | None = 0, dtype: DTypeLike = np.float64,
                 backend: str = "numba") -> None:
        self.n_in = int(check_positive(n_in, "n_in", integer=True))
        self.n_hidden = int(check_positive(n_hidden, "n_hidden", integer=True))
        self.n_out = int(check_positive(n_out, "n_out", integer=True))
        self.n_experts = int(check_positive(n_experts, "n_experts", integer=True))
        self.max_loops = int(check_positive(max_loops, "max_loops", integer=True))
        self.entropy_cost = check_number(entropy_cost, "entropy_cost", 0.0)
        self.ponder_cost = check_number(ponder_cost, "ponder_cost", 0.0)
        self.dtype = check_dtype(dtype)
        self.backend = check_backend(backend)
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.params = {}
        for k, shape in self.shapes().items():
            # Each expert is a layer of its own, drawn with its own fans.
            self.params[k] = (np.zeros(shape, self.dtype) if len(shape) == 1 else
                              np.array([init_weight(*shape[-2:], "glorot", rng, self.dtype)
                                        for _ in range(int(np.prod(shape[:-2])))]
                                       ).reshape(shape))

    def config(self) -> dict[str, Any]:
        return dict(n_in=self.n_in, n_hidden=self.n_hidden, n_out=self.n_out,
                    n_experts=self.n_experts, max_loops=self.max_loops,
                    entropy_cost=self.entropy_cost, ponder_cost=self.ponder_cost,
                    seed=self.seed,
                    dtype=self.dtype.name, backend=self.backend)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of each parameter, by name, in the order of the gradients.

        Returns
        -------
        dict[str, tuple of int]
        """
        H, E, D = self.n_hidden, self.n_experts, self.n_hidden + self.n_in
        shapes = {"G": (len(GATES), D), "g": (len(GATES),)}
        for k in SIDES:
            shapes.update({f"A_{k}": (E, D), f"a_{k}": (E,), f"W_{k}": (E, H, D),
                           f"b_{k}": (E, H)})
        shapes.update(V=(self.n_out, H), c=(self.n_out,))
        return shapes

    def _inputs(self, X, max_loops=None):
        # The checked weights (the kernels' argument list), X, and the loop cap.
        loops = self.max_loops if max_loops is None else int(check_positive(
            max_loops, "max_loops", integer=True))
        weights = check_params(self.params, self.shapes(), self.dtype)
        X = check_array(X, "X", shape=(None, None, self.n_in), dtype=self.dtype)
        return weights, np.ascontiguousarray(X), loops

    def forward(self, X: ArrayLike, max_loops: int | None = None) -> dict[str, np.ndarray]:
        """The soft pass on the tokens X (B, T, n_in): everything :func:`wide_forward` returns.

        Parameters
        ----------
        X : array_like, shape (B, T, n_in)
        max_loops : int or None
            The loops to run; None keeps the model's cap.

        Returns
        -------
        dict
            Hs, v, pi, gamma, U, Ys, p and y.
        """
        weights, X, loops = self._inputs(X, max_loops)
        if self.backend == "numpy":
            return wide_forward(self.params, X, loops)
        out = kernels("sln_wide", "numba").wide_forward(*weights, X, loops)
        return dict(zip(("Hs", "v", "pi", "gamma", "U", "Ys", "p", "y"), out))

    def _hard(self, X, max_loops):
        weights, X, loops = self._inputs(X, max_loops)
        if self.backend == "numpy":
            return wide_predict(self.params, X, loops)
        return kernels("sln_wide", self.backend).wide_predict(*weights, X, loops)

    def predict(self, X: ArrayLike,
                max_loops: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The hard answer σ(V h + c) (B, n_out) and the loops each example used (B,).

        Parameters
        ----------
        X : array_like, shape (B, T, n_in)
        max_loops : int or None
            The cap at test time; None keeps the model's.

        Returns
        -------
        probabilities : np.ndarray, shape (B, n_out)
        loops : np.ndarray of int, shape (B,)
        """
        return self._hard(X, max_loops)[:2]

    def routes(self, X: ArrayLike,
               max_loops: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The hard pass's route per example: the main gate's choice and the expert run at
        each loop, from which gate use and expert use are counted.

        Parameters
        ----------
        X : array_like, shape (B, T, n_in)
        max_loops : int or None
            The cap at test time; None keeps the model's.

        Returns
        -------
        lobe : np.ndarray of int, shape (B, M)
            0 left, 1 right, 2 output (the stop), −1 after the stop.
        expert : np.ndarray of int, shape (B, M)
            The expert the chosen lobe ran, −1 where no lobe ran.
        """
        return self._hard(X, max_loops)[2:]

    def loss_and_grads(self, X: ArrayLike,
                       Y: ArrayLike) -> tuple[float, dict[str, np.ndarray]]:
        """The soft loss (:func:`wide_backward`: BCE of the answer, plus ``entropy_cost``
        times the gates' entropy and ``ponder_cost`` times the expected loops) on a batch and
        its exact gradient, keyed like ``params``.

        Parameters
        ----------
        X : array_like, shape (B, T, n_in)
        Y : array_like, shape (B, n_out), values in {0, 1}

        Returns
        -------
        loss : float
        grads : dict[str, np.ndarray]
        """
        weights, X, loops = self._inputs(X)
        Y = check_binary(Y, "Y", (len(X), self.n_out), self.dtype)
        if self.backend != "numpy":
            loss, *grads = kernels("sln_wide", self.backend).wide_loss_and_grads(
                *weights, X, Y, loops, self.entropy_cost, self.ponder_cost)
            return float(loss), dict(zip(self.shapes(), grads))
        c = wide_forward(self.params, X, loops)
        grads = wide_backward(self.params, Y, c, self.entropy_cost, self.ponder_cost)
        expected_loops = np.arange(1, loops + 1) @ c["p"]
        loss = (bce(c["y"], Y) + self.entropy_cost * _gate_entropies(c)
                + self.ponder_cost * expected_loops)
        return float(loss.mean()), {k: grads[k] for k in self.shapes()}
