"""Strange-loop networks: two models that feed each other in an inner dialogue until a stop
rule fires (Chapter 15, after F. Chaubard's draft).

The *tall* SLN has a left and a right lobe, each a tanh cell of :mod:`loopy_edu.halting` that
also reads the other's last output. At loop n, ::

    s^L_n = tanh(W^L_x [x, δ_{n1}] + W^L_h s^L_{n-1} + U^L q^R_{n-1} + b^L)
    y^L_n = V^L s^L_n + c^L
    s^R_n = tanh(W^R_x [x, δ_{n1}] + W^R_h s^R_{n-1} + U^R q^L_n + b^R)
    y^R_n = V^R s^R_n + c^R

with q = σ(y) the lobes' answers (q^R_0 = 0): the left speaks first, the right answers it.
Three stop rules end the dialogue: ``"fixed"`` (N loops), ``"agree"`` (the first loop where
both lobes give the same answer a = [q^R_n > 1/2] to every output, each within ``tol`` of it),
and ``"halt"`` (ACT's halting on a head that reads both lobes, with ponder cost τ). Agreement
asks for confidence as well as equality: two untrained lobes both answer about 1/2, and would
otherwise agree at the first loop. Arrays of loops are (N, B, ...): loop first, then example.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .activations import sigmoid
from .backend import check_backend, kernels
from .checks import (check_array, check_binary, check_choice, check_dtype, check_number,
                     check_params, check_positive)
from .halting import act_halting, bce
from .mlp import init_weight
from .model import Model

STOPS = ("fixed", "agree", "halt")
LOBE = ("W_x", "W_h", "U", "b", "V", "c")


def tall_forward(params: dict[str, np.ndarray], X: np.ndarray,  # X (B, n_in)
                 max_loops: int, stop: str, tol: float, epsilon: float) -> dict[str, Any]:
    """The tall SLN's inner dialogue (Chapter 15), until every example's stop rule has fired.

    Returns the states SL, SR (n + 1, B, H) (row 0 is zero), the answers QL, QR (n + 1, B,
    n_out) (row 0 is q_0 = 0), the output logits YL, YR (n, B, n_out), the halting logits A
    (n, B) (zeros unless ``stop="halt"``), the weights p (n, B) of each loop in the output, N
    and R (B,), and the outputs yL, yR = Σ_n p_n y_n (B, n_out).
    """
    L = {k: params[f"{k}_L"] for k in LOBE}
    Rt = {k: params[f"{k}_R"] for k in LOBE}
    B, H, n_out = len(X), L["W_h"].shape[0], L["V"].shape[0]
    drive = {side: X @ P["W_x"][:, :-1].T + P["b"] for side, P in (("L", L), ("R", Rt))}
    SL, SR = [np.zeros((B, H), X.dtype)], [np.zeros((B, H), X.dtype)]
    QL, QR = [np.zeros((B, n_out), X.dtype)], [np.zeros((B, n_out), X.dtype)]
    YL, YR, A = [], [], []
    N = np.zeros(B, dtype=int)
    for n in range(1, max_loops + 1):
        flag = 1.0 if n == 1 else 0.0                       # the first-loop flag δ_{n1}
        SL.append(np.tanh(drive["L"] + flag * L["W_x"][:, -1] + SL[-1] @ L["W_h"].T
                          + QR[-1] @ L["U"].T))
        YL.append(SL[-1] @ L["V"].T + L["c"])
        QL.append(sigmoid(YL[-1]))
        SR.append(np.tanh(drive["R"] + flag * Rt["W_x"][:, -1] + SR[-1] @ Rt["W_h"].T
                          + QL[-1] @ Rt["U"].T))
        YR.append(SR[-1] @ Rt["V"].T + Rt["c"])
        QR.append(sigmoid(YR[-1]))
        if stop == "halt":
            A.append(np.hstack([SL[-1], SR[-1]]) @ params["w_halt"] + params["b_halt"][0])
            p, N, R = act_halting(np.array(A), epsilon, max_loops)
        else:
            A.append(np.zeros(B, X.dtype))
            done = np.full(B, n == max_loops)
            if stop == "agree":
                answer = (QR[-1] > 0.5).astype(X.dtype)
                done |= ((np.abs(QL[-1] - answer) <= tol)
                         & (np.abs(QR[-1] - answer) <= tol)).all(axis=1)
            N = np.where((N == 0) & done, n, N)
        if (N > 0).all():
            break
    loops = np.arange(1, len(YL) + 1)[:, None]
    if stop != "halt":
        p, R = (loops == N).astype(X.dtype), np.zeros(B, X.dtype)
    out = {"SL": np.array(SL), "SR": np.array(SR), "QL": np.array(QL), "QR": np.array(QR),
           "YL": np.array(YL), "YR": np.array(YR), "A": np.array(A), "p": p, "N": N, "R": R}
    out["yL"] = np.einsum("nb,nbo->bo", p, out["YL"])
    out["yR"] = np.einsum("nb,nbo->bo", p, out["YR"])
    return out


def lobe_grads(dZ: np.ndarray, dY: np.ndarray, S: np.ndarray, heard: np.ndarray,
               X: np.ndarray) -> tuple[np.ndarray, ...]:
    """One lobe's weight gradients, summed over its loops, from ∂L/∂z (n, B, H) (its
    pre-activations) and ∂L/∂y (n, B, k) (its output logits), its states S (n + 1, B, H) (row 0
    the initial zero state), what it heard at each loop (n, B, m), and X (B, n_in) (read at
    every loop, with the first-loop flag at loop 1 only).

    Returns
    -------
    tuple of np.ndarray
        ∂L/∂W_x (H, n_in + 1), ∂L/∂W_h (H, H), ∂L/∂U (H, m) (the weight of what it heard),
        ∂L/∂b (H,), ∂L/∂V (k, H), ∂L/∂c (k,).
    """
    H = dZ.shape[-1]
    flat, flat_y = dZ.reshape(-1, H), dY.reshape(-1, dY.shape[-1])
    return (np.hstack([dZ.sum(axis=0).T @ X, dZ[0].sum(axis=0)[:, None]]),
            flat.T @ S[:-1].reshape(-1, H), flat.T @ heard.reshape(len(flat), -1),
            flat.sum(axis=0), flat_y.T @ S[1:].reshape(-1, H), flat_y.sum(axis=0))


def tall_backward(params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
                  c: dict[str, Any], stop: str, tau: float,
                  left_weight: float) -> dict[str, np.ndarray]:
    """The exact gradient of the tall SLN's loss (Chapter 15), BPTT through the dialogue:

    L = mean_b[BCE(σ(y^R), Y) + ``left_weight`` BCE(σ(y^L), Y)] (+ τ mean_b[N + R] when
    ``stop="halt"``), with N held (a stop rule is piecewise constant, like ACT's N).

    Going back through loop n, the right lobe first (it spoke last): its state gets ∂L/∂s^R_n
    from its output, the halting head, its own next loop, and the left lobe's next loop
    through q^R_n; then the left lobe, which also hears the right's reply through q^L_n.
    """
    L = {k: params[f"{k}_L"] for k in LOBE}
    Rt = {k: params[f"{k}_R"] for k in LOBE}
    B, H = len(X), L["W_h"].shape[0]
    SL, SR, QL, QR, p, N = c["SL"], c["SR"], c["QL"], c["QR"], c["p"], c["N"]
    gR = (sigmoid(c["yR"]) - Y) / B                     # ∂L/∂y^R of the mixed output
    gL = left_weight * (sigmoid(c["yL"]) - Y) / B
    dA = np.zeros_like(c["A"])
    if stop == "halt":                                   # as halting.act_backward
        dp = np.einsum("nbo,bo->nb", c["YR"], gR) + np.einsum("nbo,bo->nb", c["YL"], gL)
        dR = dp[N - 1, np.arange(B)] + tau / B
        h = sigmoid(c["A"])
        loops = np.arange(1, len(h) + 1)[:, None]
        dA = np.where(loops < N, dp - dR, 0.0) * h * (1.0 - h)
    w_L, w_R = (params["w_halt"][:H], params["w_halt"][H:]) if stop == "halt" else (0.0, 0.0)
    dzL_next, dzR_next = np.zeros((B, H), X.dtype), np.zeros((B, H), X.dtype)
    dZL, dZR, dYL, dYR = (np.zeros((len(p), B, k), X.dtype)
                          for k in (H, H, gL.shape[1], gL.shape[1]))
    for n in range(len(p) - 1, -1, -1):
        q = QR[n + 1]
        dYR[n] = p[n][:, None] * gR + dzL_next @ L["U"] * q * (1 - q)   # σ' = q (1 − q)
        dsR = dYR[n] @ Rt["V"] + dA[n][:, None] * w_R + dzR_next @ Rt["W_h"]
        dZR[n] = dzR_next = dsR * (1.0 - SR[n + 1] ** 2)
        q = QL[n + 1]
        dYL[n] = p[n][:, None] * gL + dzR_next @ Rt["U"] * q * (1 - q)
        dsL = dYL[n] @ L["V"] + dA[n][:, None] * w_L + dzL_next @ L["W_h"]
        dZL[n] = dzL_next = dsL * (1.0 - SL[n + 1] ** 2)
    grads = {}
    # The right lobe hears q^L_n at its loop n; the left hears q^R_{n-1}.
    for side, dZ, dY, S, heard in (("L", dZL, dYL, SL, QR[:-1]), ("R", dZR, dYR, SR, QL[1:])):
        grads.update(zip((f"{k}_{side}" for k in LOBE), lobe_grads(dZ, dY, S, heard, X)))
    if stop == "halt":
        both = np.concatenate([SL[1:], SR[1:]], axis=2).reshape(len(dA.reshape(-1)), 2 * H)
        grads["w_halt"] = dA.reshape(-1) @ both
        grads["b_halt"] = np.array([dA.sum()], dtype=X.dtype)
    return grads


class TallSLN(Model):
    """The tall strange-loop network (Chapter 15): a left and a right tanh lobe in an inner
    dialogue (:func:`tall_forward`), stopped by ``stop``, trained by the exact gradient
    through the whole dialogue (:func:`tall_backward`).

    ``params``: per lobe ``W_x_L`` (H, n_in + 1), ``W_h_L`` (H, H), ``U_L`` (H, n_out),
    ``b_L`` (H,), ``V_L`` (n_out, H), ``c_L`` (n_out,), the same with ``_R``; with
    ``stop="halt"`` also ``w_halt`` (2H,) and ``b_halt`` (1,). :meth:`predict` returns the
    right lobe's answer and the loops used (N, or N + R with ``"halt"``).

    Parameters
    ----------
    n_in, n_hidden, n_out : int
        Inputs (without the first-loop flag), units per lobe H, outputs.
    max_loops : int
        The cap on loops, at least 1 (the count itself for ``stop="fixed"``).
    stop : str
        ``"fixed"``, ``"agree"`` or ``"halt"``.
    tol : float
        ``"agree"``: how far each lobe may be from the shared answer (0 or 1), in (0, 1/2).
    tau : float
        ``"halt"``: the ponder cost τ ≥ 0.
    epsilon : float
        ``"halt"``: ACT's threshold ε in [0, 1).
    left_weight : float
        The weight ≥ 0 of the left lobe's own loss (0 leaves it trained only through the
        right lobe).
    halt_bias : float
        ``"halt"``: the initial halting bias.
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

    def __init__(self, n_in: int, n_hidden: int, n_out: int, max_loops: int = 10,
                 stop: str = "agree", tol: float = 0.1, tau: float = 1e-3,
                 epsilon: float = 0.01, left_weight: float = 1.0, halt_bias: float = 1.0,
                 seed: int | None = 0, dtype: DTypeLike = np.float64,
                 backend: str = "numba") -> None:
        self.n_in = int(check_positive(n_in, "n_in", integer=True))
        self.n_hidden = int(check_positive(n_hidden, "n_hidden", integer=True))
        self.n_out = int(check_positive(n_out, "n_out", integer=True))
        self.max_loops = int(check_positive(max_loops, "max_loops", integer=True))
        self.stop = check_choice(stop, "stop", STOPS)
        self.tol = check_number(tol, "tol", 0.0, 0.5, low_open=True, high_open=True)
        self.tau = check_number(tau, "tau", 0.0)
        self.epsilon = check_number(epsilon, "epsilon", 0.0, 1.0, high_open=True)
        self.left_weight = check_number(left_weight, "left_weight", 0.0)
        self.halt_bias = check_number(halt_bias, "halt_bias")
        self.dtype = check_dtype(dtype)
        self.backend = check_backend(backend)
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.params = {k: (init_weight(*shape, "glorot", rng, self.dtype) if len(shape) == 2
                           else np.zeros(shape, dtype=self.dtype))
                       for k, shape in self.shapes().items()}
        if self.stop == "halt":
            self.params["w_halt"] = init_weight(1, 2 * self.n_hidden, "glorot", rng,
                                                self.dtype)[0]
            self.params["b_halt"][0] = halt_bias

    def config(self) -> dict[str, Any]:
        return dict(n_in=self.n_in, n_hidden=self.n_hidden, n_out=self.n_out,
                    max_loops=self.max_loops, stop=self.stop, tol=self.tol, tau=self.tau,
                    epsilon=self.epsilon, left_weight=self.left_weight,
                    halt_bias=self.halt_bias, seed=self.seed, dtype=self.dtype.name,
                    backend=self.backend)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of each parameter, by name, in the order of the gradients.

        Returns
        -------
        dict[str, tuple of int]
        """
        H, n_in, n_out = self.n_hidden, self.n_in, self.n_out
        lobe = {"W_x": (H, n_in + 1), "W_h": (H, H), "U": (H, n_out), "b": (H,),
                "V": (n_out, H), "c": (n_out,)}
        shapes = {f"{k}_{side}": shape for side in "LR" for k, shape in lobe.items()}
        if self.stop == "halt":
            shapes.update(w_halt=(2 * H,), b_halt=(1,))
        return shapes

    def _weights(self):
        # The kernels' argument list: every weight, with a head that reads nothing when the
        # stop rule has none.
        weights = check_params(self.params, self.shapes(), self.dtype)
        if self.stop != "halt":
            weights += [np.zeros(2 * self.n_hidden, self.dtype), np.zeros(1, self.dtype)]
        return weights

    def _inputs(self, X, max_loops=None):
        # The checked weights (the kernels' argument list), X, and the loop cap.
        loops = self.max_loops if max_loops is None else check_positive(
            max_loops, "max_loops", integer=True)
        weights = self._weights()
        return weights, check_array(X, "X", shape=(None, self.n_in), dtype=self.dtype), loops

    def forward(self, X: ArrayLike, max_loops: int | None = None) -> dict[str, Any]:
        """The whole dialogue on X (B, n_in): everything :func:`tall_forward` returns.

        Parameters
        ----------
        X : array_like, shape (B, n_in)
        max_loops : int or None
            The cap at test time; None keeps the model's.

        Returns
        -------
        dict
            States, answers, output logits per loop, p, N, R, yL and yR.
        """
        weights, X, loops = self._inputs(X, max_loops)
        if self.backend == "numpy":
            return tall_forward(self.params, X, loops, self.stop, self.tol, self.epsilon)
        out = kernels("sln", "numba").tall_forward(*weights, X, loops,
                                                   STOPS.index(self.stop), self.tol,
                                                   self.epsilon)
        return dict(zip(("SL", "SR", "QL", "QR", "YL", "YR", "A", "p", "N", "R", "yL", "yR"),
                        out))

    def predict(self, X: ArrayLike,
                max_loops: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The right lobe's answer σ(y^R) (B, n_out), and the loops each example used (B,).

        Parameters
        ----------
        X : array_like, shape (B, n_in)
        max_loops : int or None
            The cap at test time; None keeps the model's.

        Returns
        -------
        probabilities : np.ndarray, shape (B, n_out)
        loops : np.ndarray, shape (B,)
            N, or N + R with ``stop="halt"``.
        """
        if self.backend == "cuda":
            weights, X, loops = self._inputs(X, max_loops)
            return kernels("sln", "cuda").tall_predict(*weights, X, loops,
                                                       STOPS.index(self.stop), self.tol,
                                                       self.epsilon)
        c = self.forward(X, max_loops)
        return sigmoid(c["yR"]), (c["N"] + c["R"]).astype(self.dtype)

    def loss_and_grads(self, X: ArrayLike,
                       Y: ArrayLike) -> tuple[float, dict[str, np.ndarray]]:
        """The loss (:func:`tall_backward`) on a batch and its exact gradient, keyed like
        ``params``.

        Parameters
        ----------
        X : array_like, shape (B, n_in)
        Y : array_like, shape (B, n_out), values in {0, 1}

        Returns
        -------
        loss : float
        grads : dict[str, np.ndarray]
        """
        weights, X, _ = self._inputs(X)
        Y = check_binary(Y, "Y", (len(X), self.n_out), self.dtype)
        if self.backend != "numpy":
            loss, *grads = kernels("sln", self.backend).tall_loss_and_grads(
                *weights, X, Y, self.max_loops, STOPS.index(self.stop), self.tol,
                self.epsilon, self.tau, self.left_weight)
            return float(loss), dict(zip(self.shapes(), grads))
        c = self.forward(X)
        loss = bce(c["yR"], Y) + self.left_weight * bce(c["yL"], Y)
        if self.stop == "halt":
            loss = loss + self.tau * (c["N"] + c["R"])
        grads = tall_backward(self.params, X, Y, c, self.stop, self.tau, self.left_weight)
        return float(loss.mean()), {k: grads[k] for k in self.shapes()}
