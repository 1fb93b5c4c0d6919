"""The lateralized strange-loop network: an actor proposes an answer, a critic scores it, and
the dialogue stops when the score reaches θ (Chapter 15, after F. Chaubard's draft; the critic
is trained as TRM's halting head is).

Both lobes are tanh cells with their own recurrent state, as in :mod:`loopy_edu.sln`. At loop
n = 1..M, with the first-loop flag δ_{n1} and the critic's previous score c_0 = 0, ::

    s^A_n = tanh(W^A_x [x, δ_{n1}] + W^A_h s^A_{n-1} + u^A c_{n-1} + b^A)
    y_n = V^A s^A_n + c^A,   q_n = σ(y_n)                      (the actor's answer)
    s^C_n = tanh(W^C_x [x, δ_{n1}] + W^C_h s^C_{n-1} + U^C q_n + b^C)
    z_n = w^C · s^C_n + b_z,   c_n = σ(z_n)                    (the critic's score)

The critic learns to say whether the answer is exactly right: its target at loop n is
t_n = 1 when every output of q_n rounds to Y, else 0. Training runs all M loops (deep
supervision) and minimises ::

    L = mean_b[ (1/M) Σ_n BCE(y_n, Y) + λ (1/M) Σ_n BCE(z_n, t_n) ]

with λ = ``critic_weight`` and t_n held constant (it is piecewise constant in the weights, like
ACT's N). At test time the dialogue stops at the first loop with c_n ≥ θ, or at the cap.
Arrays of loops are (n, B, ...): loop first, then example.

:class:`CriticCell` is the one-model control, TRM's design: a single cell whose halting unit is
the critic, trained and stopped the same way.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .activations import sigmoid
from .backend import check_backend, kernels
from .checks import (check_array, check_binary, check_dtype, check_number, check_params,
                     check_positive)
from .halting import _Pondering, bce, cell_backward, cell_forward
from .sln import lobe_grads
from .mlp import init_weight
from .model import Model

FORWARD = ("SA", "SC", "Ys", "Q", "Z", "C", "N")


def exactly_right(Q: np.ndarray, Y: np.ndarray) -> np.ndarray:  # (..., B, n_out) -> (..., B)
    """Whether every output of the answers Q rounds (at 0.5) to the binary targets Y: the
    critic's target t_n, and the "correct" of accuracy and halting precision.

    Parameters
    ----------
    Q : np.ndarray, shape (..., B, n_out)
        Answers in [0, 1].
    Y : np.ndarray, shape (B, n_out)
        Targets in {0, 1}.

    Returns
    -------
    np.ndarray of bool, shape (..., B)
    """
    return ((Q > 0.5) == (Y > 0.5)).all(axis=-1)


def first_confident(C: np.ndarray, theta: float) -> np.ndarray:  # C (n, B) -> (B,)
    """The stop rule: the first loop (1-based) whose score reaches θ, or the last loop given.

    Parameters
    ----------
    C : np.ndarray, shape (n, B)
        The critic's scores c_1..c_n of each example.
    theta : float
        The threshold θ.

    Returns
    -------
    np.ndarray of int, shape (B,)
    """
    confident = C >= theta
    return np.where(confident.any(axis=0), confident.argmax(axis=0) + 1, len(C))


def lateral_forward(params: dict[str, np.ndarray], X: np.ndarray,  # X (B, n_in)
                    max_loops: int, theta: float, stop_early: bool = False) -> dict[str, Any]:
    """The actor-critic dialogue (Chapter 15) for ``max_loops`` loops, or, with
    ``stop_early``, only until every example's score has reached θ.

    Parameters
    ----------
    params : dict[str, np.ndarray]
        The weights, keyed as :meth:`LateralSLN.shapes`.
    X : np.ndarray, shape (B, n_in)
    max_loops : int
        The cap on loops.
    theta : float
        The score at which an example stops.
    stop_early : bool
        Whether to end the dialogue once every example has stopped.

    Returns
    -------
    dict
        The states ``SA`` (n + 1, B, H) and ``SC`` (n + 1, B, K) (row 0 is zero), the
        actor's logits ``Ys`` and answers ``Q`` (n, B, n_out), the critic's logits ``Z`` and
        scores ``C`` (n, B), and the loop ``N`` (B,) at which each example stops
        (:func:`first_confident`).
    """
    P = params
    B = len(X)
    driveA = X @ P["W_x_A"][:, :-1].T + P["b_A"]
    driveC = X @ P["W_x_C"][:, :-1].T + P["b_C"]
    SA = [np.zeros((B, len(P["b_A"])), X.dtype)]
    SC = [np.zeros((B, len(P["b_C"])), X.dtype)]
    Ys, Q, Z, C = [], [], [], []
    score = np.zeros(B, X.dtype)                               # c_0 = 0
    for n in range(1, max_loops + 1):
        flag = 1.0 if n == 1 else 0.0                          # the first-loop flag δ_{n1}
        SA.append(np.tanh(driveA + flag * P["W_x_A"][:, -1] + SA[-1] @ P["W_h_A"].T
                          + score[:, None] * P["u_A"]))
        Ys.append(SA[-1] @ P["V_A"].T + P["c_A"])
        Q.append(sigmoid(Ys[-1]))
        SC.append(np.tanh(driveC + flag * P["W_x_C"][:, -1] + SC[-1] @ P["W_h_C"].T
                          + Q[-1] @ P["U_C"].T))
        Z.append(SC[-1] @ P["w_C"] + P["b_z"][0])
        C.append(score := sigmoid(Z[-1]))
        if stop_early and (np.array(C) >= theta).any(axis=0).all():
            break
    out = dict(zip(FORWARD[:-1], map(np.array, (SA, SC, Ys, Q, Z, C))))
    out["N"] = first_confident(out["C"], theta)
    return out


def lateral_backward(params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
                     c: dict[str, Any], critic_weight: float) -> dict[str, np.ndarray]:
    """The exact gradient of the lateralized SLN's loss (Chapter 15), BPTT through all the
    loops of ``c`` (:func:`lateral_forward`), keyed like ``params``.

    Going back through loop n, the critic first (it spoke last): its logit z_n gets ∂L/∂z_n
    from its own BCE and from the actor's next loop, which heard c_n through u^A; then the
    actor, whose logits y_n get their BCE's gradient and what the critic's loop n sends back
    through q_n and U^C.

    Parameters
    ----------
    params : dict[str, np.ndarray]
        The weights, keyed as :meth:`LateralSLN.shapes`.
    X : np.ndarray, shape (B, n_in)
    Y : np.ndarray, shape (B, n_out)
        Targets in {0, 1}.
    c : dict
        What :func:`lateral_forward` returned for X, every loop of it.
    critic_weight : float
        λ, the weight of the critic's BCE.

    Returns
    -------
    dict[str, np.ndarray]
        ∂L/∂w for every weight, keyed like ``params``.
    """
    P = params
    M, B = c["Z"].shape
    SA, SC, Q, C = c["SA"], c["SC"], c["Q"], c["C"]
    dYs = (Q - Y) / (B * M)                                    # from Σ_n BCE(y_n, Y)
    dZ = critic_weight * (C - exactly_right(Q, Y)) / (B * M)  # from Σ_n BCE(z_n, t_n)
    dZA, dZC = np.zeros_like(SA[1:]), np.zeros_like(SC[1:])
    zA, zC = np.zeros_like(SA[0]), np.zeros_like(SC[0])        # ∂L/∂(pre-activations), n + 1
    for n in range(M - 1, -1, -1):
        dZ[n] += zA @ P["u_A"] * C[n] * (1.0 - C[n])           # σ' = c (1 − c)
        dZC[n] = zC = (dZ[n][:, None] * P["w_C"] + zC @ P["W_h_C"]) * (1.0 - SC[n + 1] ** 2)
        dYs[n] += zC @ P["U_C"] * Q[n] * (1.0 - Q[n])
        dZA[n] = zA = (dYs[n] @ P["V_A"] + zA @ P["W_h_A"]) * (1.0 - SA[n + 1] ** 2)
    heardA = np.concatenate([np.zeros((1, B), X.dtype), C[:-1]])[..., None]   # c_{n-1}
    actor = lobe_grads(dZA, dYs, SA, heardA, X)
    critic = lobe_grads(dZC, dZ[..., None], SC, Q, X)
    grads = dict(zip(("W_x_A", "W_h_A", "u_A", "b_A", "V_A", "c_A"), actor))
    grads.update(zip(("W_x_C", "W_h_C", "U_C", "b_C", "w_C", "b_z"), critic))
    grads["u_A"], grads["w_C"] = grads["u_A"][:, 0], grads["w_C"][0]
    return grads


def lateral_loss(c: dict[str, Any], Y: np.ndarray,
                 critic_weight: float) -> np.ndarray:  # -> (B,)
    """Each example's loss (1/M) Σ_n [BCE(y_n, Y) + λ BCE(z_n, t_n)] over the loops of ``c``.

    Parameters
    ----------
    c : dict
        What :func:`lateral_forward` returns.
    Y : np.ndarray, shape (B, n_out)
        Targets in {0, 1}.
    critic_weight : float
        λ.

    Returns
    -------
    np.ndarray, shape (B,)
    """
    T = exactly_right(c["Q"], Y).astype(c["Z"].dtype)
    return (bce(c["Ys"], Y) + critic_weight * bce(c["Z"][..., None], T[..., None])).mean(axis=0)


class LateralSLN(Model):
    """The lateralized strange-loop network (Chapter 15): an actor that proposes an answer
    and hears the critic's last score, and a critic that scores each answer
    (:func:`lateral_forward`); trained on every loop at once by the exact gradient
    (:func:`lateral_backward`); at test time stopped at the first score ≥ θ.

    ``params``: the actor's ``W_x_A`` (H, n_in + 1), ``W_h_A`` (H, H), ``u_A`` (H,),
    ``b_A`` (H,), ``V_A`` (n_out, H), ``c_A`` (n_out,); the critic's ``W_x_C`` (K, n_in + 1),
    ``W_h_C`` (K, K), ``U_C`` (K, n_out), ``b_C`` (K,), ``w_C`` (K,), ``b_z`` (1,).

    Parameters
    ----------
    n_in, n_hidden, n_out : int
        Inputs (without the first-loop flag), the actor's units H, outputs.
    n_critic : int or None
        The critic's units K; None takes H.
    max_loops : int
        The cap M on loops, at least 1; training always runs all M.
    theta : float
        The score θ in (0, 1) at which :meth:`predict` stops.
    critic_weight : float
        The weight λ ≥ 0 of the critic's BCE in the loss.
    seed : int or None
        Seed of the initial weights (Glorot; biases zero).
    dtype : dtype-like
        ``np.float32`` or ``np.float64``.
    backend : str
        ``"numpy"``, ``"numba"`` or ``"cuda"`` (on CUDA, :meth:`forward`, which returns every
        intermediate array, runs the Numba kernel).

    Raises
    ------
    ValueError
        Naming the argument, if one is invalid.
    """

    def __init__(self, n_in: int, n_hidden: int, n_out: int, n_critic: int | None = None,
                 max_loops: int = 10, theta: float = 0.9, critic_weight: float = 1.0,
                 seed: int | None = 0, dtype: DTypeLike = np.float64,
                 backend: str = "numba") -> None:
        self.n_in = int(check_positive(n_in, "n_in", integer=True))
        self.n_hidden = int(check_positive(n_hidden, "n_hidden", integer=True))
        self.n_out = int(check_positive(n_out, "n_out", integer=True))
        self.n_critic = self.n_hidden if n_critic is None else int(
            check_positive(n_critic, "n_critic", integer=True))
        self.max_loops = int(check_positive(max_loops, "max_loops", integer=True))
        self.theta = self._theta(theta)
        self.critic_weight = check_number(critic_weight, "critic_weight", 0.0)
        self.dtype = check_dtype(dtype)
        self.backend = check_backend(backend)
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.params = {}
        for k, shape in self.shapes().items():
            # Matrices and the two vectors that weigh a signal (u_A, w_C) start at Glorot's
            # scale (symmetric in fan-in and fan-out, so a vector is an (n, 1) matrix), biases
            # at zero.
            weighs = len(shape) == 2 or k in ("u_A", "w_C")
            self.params[k] = (init_weight(shape[0], shape[-1] if len(shape) == 2 else 1,
                                          "glorot", rng, self.dtype).reshape(shape)
                              if weighs else np.zeros(shape, dtype=self.dtype))

    @staticmethod
    def _theta(theta):
        return check_number(theta, "theta", 0.0, 1.0, low_open=True, high_open=True)

    def config(self) -> dict[str, Any]:
        return dict(n_in=self.n_in, n_hidden=self.n_hidden, n_out=self.n_out,
                    n_critic=self.n_critic, max_loops=self.max_loops, theta=self.theta,
                    critic_weight=self.critic_weight, seed=self.seed, dtype=self.dtype.name,
                    backend=self.backend)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of each parameter, by name, in the order of the gradients (the actor's,
        then the critic's).

        Returns
        -------
        dict[str, tuple of int]
        """
        H, K, n_in, n_out = self.n_hidden, self.n_critic, self.n_in, self.n_out
        return {"W_x_A": (H, n_in + 1), "W_h_A": (H, H), "u_A": (H,), "b_A": (H,),
                "V_A": (n_out, H), "c_A": (n_out,),
                "W_x_C": (K, n_in + 1), "W_h_C": (K, K), "U_C": (K, n_out), "b_C": (K,),
                "w_C": (K,), "b_z": (1,)}

    def _inputs(self, X, max_loops=None):
        # The checked weights (the kernels' argument list), X, and the loop cap.
        loops = self.max_loops if max_loops is None else check_positive(
            max_loops, "max_loops", integer=True)
        weights = check_params(self.params, self.shapes(), self.dtype)
        return weights, check_array(X, "X", shape=(None, self.n_in), dtype=self.dtype), loops

    def _forward(self, weights, X, loops, theta, stop_early):
        if self.backend == "numpy":
            return lateral_forward(self.params, X, loops, theta, stop_early)
        out = kernels("sln_lateral", "numba").lateral_forward(*weights, X, loops, theta,
                                                              stop_early)
        return dict(zip(FORWARD, out))

    def forward(self, X: ArrayLike, max_loops: int | None = None) -> dict[str, Any]:
        """Every loop of the dialogue on X (B, n_in), up to the cap, whatever the scores:
        everything :func:`lateral_forward` returns, with N under the model's θ, so that the
        accuracy at each loop and the critic's calibration need one run.

        Parameters
        ----------
        X : array_like, shape (B, n_in)
        max_loops : int or None
            The number of loops; None keeps the model's cap.

        Returns
        -------
        dict
            ``SA``, ``SC`` (n + 1, B, ·), ``Ys``, ``Q`` (n, B, n_out), ``Z``, ``C`` (n, B),
            ``N`` (B,).
        """
        weights, X, loops = self._inputs(X, max_loops)
        return self._forward(weights, X, loops, self.theta, False)

    def predict(self, X: ArrayLike, theta: float | None = None,
                max_loops: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The actor's answer at the first loop whose score reaches θ (or at the cap), the
        loops used, and the score there; the dialogue runs only until every example stopped.

        Parameters
        ----------
        X : array_like, shape (B, n_in)
        theta : float or None
            The threshold in (0, 1); None keeps the model's.
        max_loops : int or None
            The cap at test time; None keeps the model's.

        Returns
        -------
        probabilities : np.ndarray, shape (B, n_out)
            σ(y_N).
        loops : np.ndarray, shape (B,)
            N, as floats.
        scores : np.ndarray, shape (B,)
            σ(z_N).
        """
        theta = self.theta if theta is None else self._theta(theta)
        weights, X, loops = self._inputs(X, max_loops)
        if self.backend == "cuda":
            return kernels("sln_lateral", "cuda").lateral_predict(*weights, X, loops, theta)
        c = self._forward(weights, X, loops, theta, True)
        b, last = np.arange(len(X)), c["N"] - 1
        return c["Q"][last, b], c["N"].astype(self.dtype), c["C"][last, b]

    def loss_and_grads(self, X: ArrayLike,
                       Y: ArrayLike) -> tuple[float, dict[str, np.ndarray]]:
        """The loss (:func:`lateral_loss`, averaged over the batch) over all ``max_loops``
        loops and its exact gradient (:func:`lateral_backward`), keyed like ``params``.

        Parameters
        ----------
        X : array_like, shape (B, n_in)
        Y : array_like, shape (B, n_out), values in {0, 1}

        Returns
        -------
        loss : float
        grads : dict[str, np.ndarray]
        """
        weights, X, loops = self._inputs(X)
        Y = check_binary(Y, "Y", (len(X), self.n_out), self.dtype)
        if self.backend != "numpy":
            loss, *grads = kernels("sln_lateral", self.backend).lateral_loss_and_grads(
                *weights, X, Y, loops, self.critic_weight)
            return float(loss), dict(zip(self.shapes(), grads))
        c = lateral_forward(self.params, X, loops, self.theta)
        grads = lateral_backward(self.params, X, Y, c, self.critic_weight)
        loss = lateral_loss(c, Y, self.critic_weight).mean()
        return float(loss), {k: grads[k] for k in self.shapes()}


def critic_cell_backward(params: dict[str, np.ndarray], X: np.ndarray,  # X (B, n_in)
                         Y: np.ndarray, S: np.ndarray, A: np.ndarray,   # Y (B, n_out), A (M, B)
                         Ys: np.ndarray, critic_weight: float) -> dict[str, np.ndarray]:
    """The exact gradient of :class:`CriticCell`'s loss: the lateralized SLN's loss with its
    critic folded into the actor, the halting logit a_n = w_halt · s_n + b_halt in the role of
    the critic's z_n (Chapter 15). Each loop's two heads send their BCE's gradient into s_n,
    and :func:`loopy_edu.halting.cell_backward` carries it back through the loops.

    Parameters
    ----------
    params : dict[str, np.ndarray]
        The cell's weights (:meth:`CriticCell.shapes`).
    X : np.ndarray, shape (B, n_in)
    Y : np.ndarray, shape (B, n_out)
        Targets in {0, 1}.
    S, A, Ys : np.ndarray, shapes (M + 1, B, H), (M, B), (M, B, n_out)
        What :func:`loopy_edu.halting.cell_forward` returned for X, all M loops.
    critic_weight : float
        λ, the weight of the halting head's BCE.

    Returns
    -------
    dict[str, np.ndarray]
        ∂L/∂w for every weight, keyed like ``params``.
    """
    M, B = A.shape
    Q = sigmoid(Ys)
    dYs = (Q - Y) / (B * M)                                            # Σ_n BCE(y_n, Y)
    dA = critic_weight * (sigmoid(A) - exactly_right(Q, Y)) / (B * M)  # Σ_n BCE(a_n, t_n)
    return cell_backward(params, X, S, dYs, dA)


class CriticCell(_Pondering):
    """One looped cell whose halting unit is a critic, trained as TRM's halting head: the
    lateralized SLN (:class:`LateralSLN`) with one model instead of two, its one-model control
    (Chapter 15).

    The cell is ACT's (:class:`loopy_edu.halting.ACTCell`, without ACT): at loop n it gives
    the answer q_n = σ(W_y s_n + b_y) and the score c_n = σ(w_halt · s_n + b_halt). Training
    runs all ``max_steps`` loops and minimises the lateralized SLN's loss,
    mean_b[(1/M) Σ_n BCE(y_n, Y) + λ (1/M) Σ_n BCE(a_n, t_n)] with t_n = 1 when q_n is exactly
    right (:func:`exactly_right`, held constant), by the exact gradient
    (:func:`critic_cell_backward`). At test time the cell stops at the first score ≥ θ
    (:func:`first_confident`); :meth:`predict` returns q_N and N.

    Parameters
    ----------
    n_in, n_hidden, n_out : int
        Inputs (without the first-loop flag), units H, outputs.
    max_steps : int
        The cap M on loops, at least 1; training always runs all M.
    theta : float
        The score θ in (0, 1) at which :meth:`predict` stops.
    critic_weight : float
        The weight λ ≥ 0 of the halting head's BCE.
    seed : int or None
        Seed of the initial weights (Glorot; biases zero).
    dtype : dtype-like
        ``np.float32`` or ``np.float64``.
    backend : str
        ``"numpy"``, ``"numba"`` or ``"cuda"`` (:meth:`forward`, which returns every loop,
        runs the NumPy reference).

    Raises
    ------
    ValueError
        Naming the argument, if one is invalid.
    """

    _method = "critic"

    def __init__(self, n_in: int, n_hidden: int, n_out: int, max_steps: int = 10,
                 theta: float = 0.9, critic_weight: float = 1.0, seed: int | None = 0,
                 dtype: DTypeLike = np.float64, backend: str = "numba") -> None:
        self.theta = LateralSLN._theta(theta)
        self.critic_weight = check_number(critic_weight, "critic_weight", 0.0)
        super().__init__(n_in, n_hidden, n_out, max_steps, 0.0, seed, dtype, backend)

    def settings(self) -> dict[str, Any]:
        return dict(theta=self.theta, critic_weight=self.critic_weight)

    def _predict_args(self):
        return (self.theta,)

    def _loss_args(self):
        return (self.critic_weight,)

    def forward(self, X: ArrayLike, max_steps: int | None = None) -> dict[str, np.ndarray]:
        """Every loop on X (B, n_in) up to the cap, whatever the scores, in the NumPy
        reference: the answers ``Q`` (n, B, n_out), the scores ``C`` (n, B), and the loop
        ``N`` (B,) at which each example stops under the model's θ.

        Parameters
        ----------
        X : array_like, shape (B, n_in)
        max_steps : int or None
            The number of loops; None keeps the model's cap.

        Returns
        -------
        dict
        """
        steps = self.max_steps if max_steps is None else check_positive(
            max_steps, "max_steps", integer=True)
        return self._every_loop(self._X(X), steps)

    def _every_loop(self, X, steps):
        # forward's work on checked X (predict has checked it already).
        _, A, Ys = cell_forward(dict(zip(self.shapes(), self.weights())), X, steps)
        C = sigmoid(A)
        return {"Q": sigmoid(Ys), "C": C, "N": first_confident(C, self.theta)}

    def _predict(self, X, steps):
        c = self._every_loop(X, steps)
        return c["Q"][c["N"] - 1, np.arange(len(X))], c["N"].astype(self.dtype)

    def _loss_and_grads(self, X, Y):
        S, A, Ys = cell_forward(self.params, X, self.max_steps)
        loss = lateral_loss({"Ys": Ys, "Z": A, "Q": sigmoid(Ys)}, Y, self.critic_weight)
        grads = critic_cell_backward(self.params, X, Y, S, A, Ys, self.critic_weight)
        return float(loss.mean()), grads
