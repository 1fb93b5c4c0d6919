"""Adaptive computation time: one tanh cell that ponders a static input for as many steps as it
decides, with ACT's halting (Graves 2016) or PonderNet's (Banino et al. 2021) (Chapter 14).

The cell is shared: at ponder step n = 1..N it computes ::

    s_n = tanh(W_x [x, δ_{n1}] + W_h s_{n-1} + b_h),   s_0 = 0
    a_n = w_halt · s_n + b_halt                          (the halting logit)
    y_n = W_y s_n + b_y                                  (the output logits of step n)

and the two methods differ only in how the halting logits a_n become a distribution p_n over
steps, and in the loss. Each forward function below sits next to its own backward one, and
:func:`cell_backward` is the BPTT of the cell that both share, given ∂L/∂y_n and ∂L/∂a_n.
Arrays of steps are (N, B, ...): step first, then example.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .activations import sigmoid
from .backend import DEFAULT, check_backend, kernels
from .checks import (check_array, check_binary, check_dtype, check_number, check_params,
                     check_positive)
from .mlp import init_weight
from .model import Model


def input_drive(params: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:  # -> (B, H)
    """W_x[:, :n_in] x + b_h: the part of every step's pre-activation that the input fixes."""
    return X @ params["W_x"][:, :-1].T + params["b_h"]


def cell_step(params: dict[str, np.ndarray], drive: np.ndarray,  # drive (B, H)
              s: np.ndarray, first: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One ponder step of the cell from s_{n-1} (B, H) (Chapter 14): s_n (B, H), the halting
    logit a_n (B,) and the output logits y_n (B, n_out)."""
    z = drive + s @ params["W_h"].T
    if first:
        z = z + params["W_x"][:, -1]                     # the first-step flag δ_{n1}
    s = np.tanh(z)
    return s, s @ params["w_halt"] + params["b_halt"][0], s @ params["W_y"].T + params["b_y"]


def cell_forward(params: dict[str, np.ndarray], X: np.ndarray,  # X (B, n_in)
                 steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the cell for ``steps`` ponder steps on every example (Chapter 14).

    Returns the states S (steps + 1, B, H) with S[0] = s_0 = 0, the halting logits A (steps, B)
    and the output logits Ys (steps, B, n_out).
    """
    drive = input_drive(params, X)
    S, A, Ys = [np.zeros_like(drive)], [], []
    for n in range(1, steps + 1):
        s, a, y = cell_step(params, drive, S[-1], n == 1)
        S.append(s), A.append(a), Ys.append(y)
    return np.array(S), np.array(A), np.array(Ys)


def cell_backward(params: dict[str, np.ndarray], X: np.ndarray,      # X (B, n_in)
                  S: np.ndarray, dYs: np.ndarray,                   # (N+1, B, H), (N, B, n_out)
                  dA: np.ndarray) -> dict[str, np.ndarray]:         # dA (N, B)
    """BPTT through the ponder steps (Chapter 14): the cell's gradient, keyed like ``params``,
    from ∂L/∂y_n = ``dYs`` and ∂L/∂a_n = ``dA``. Steps after an example halted carry zeros
    there, so they add nothing."""
    W_h = params["W_h"]
    dS = dYs @ params["W_y"] + dA[..., None] * params["w_halt"]    # ∂L/∂s_n from step n itself
    dZ = np.empty_like(dS)                                          # ∂L/∂z_n
    dz = np.zeros_like(dS[0])
    for n in range(len(dS) - 1, -1, -1):
        dz = (dS[n] + dz @ W_h) * (1.0 - S[n + 1] ** 2)           # tanh' = 1 − s²
        dZ[n] = dz
    H, n_out = W_h.shape[0], dYs.shape[-1]
    flat_dZ, flat_S = dZ.reshape(-1, H), S[1:].reshape(-1, H)
    return {"W_x": np.hstack([dZ.sum(axis=0).T @ X, dZ[0].sum(axis=0)[:, None]]),
            "W_h": flat_dZ.T @ S[:-1].reshape(-1, H),               # Σ_n dz_n s_{n-1}ᵀ
            "b_h": flat_dZ.sum(axis=0),
            "w_halt": dA.reshape(-1) @ flat_S,
            "b_halt": np.array([dA.sum()], dtype=X.dtype),
            "W_y": dYs.reshape(-1, n_out).T @ flat_S,
            "b_y": dYs.reshape(-1, n_out).sum(axis=0)}


def bce(logits: np.ndarray, Y: np.ndarray) -> np.ndarray:  # (..., B, n_out) -> (..., B)
    """Binary cross-entropy of σ(logits) against targets Y in {0, 1}, summed over the outputs:
    softplus(z) − y z, which never takes the log of a rounded-off 0."""
    return (np.logaddexp(0.0, logits) - Y * logits).sum(axis=-1)


def act_halting(A: np.ndarray, epsilon: float,        # A (n, B): the halting logits so far
                max_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ACT's halting distribution (Graves 2016, eq. 5-7; Chapter 14): h_n = σ(a_n); N is the
    first n with Σ_{m≤n} h_m ≥ 1 − ε, or ``max_steps``; p_n = h_n for n < N, p_N = R, the
    remainder 1 − Σ_{n<N} h_n, and 0 after N.

    Returns p (n, B), N (B,) (0 for an example that has not halted within the n steps given)
    and R (B,).
    """
    h = sigmoid(A)
    steps = np.arange(1, len(A) + 1)[:, None]
    past = np.cumsum(h, axis=0)
    done = (past >= 1.0 - epsilon) | (steps == max_steps)
    N = np.where(done.any(axis=0), done.argmax(axis=0) + 1, 0)
    p = np.where(steps < N, h, 0.0)
    R = 1.0 - p.sum(axis=0)
    return np.where(steps == N, R, p), N, R


def act_forward(params: dict[str, np.ndarray], X: np.ndarray,  # X (B, n_in)
                max_steps: int, epsilon: float) -> dict[str, np.ndarray]:
    """ACT's forward pass (Chapter 14): ponder until every example has halted, then mix the
    steps' outputs, y = Σ_n p_n y_n. Returns what the backward pass reads: S, A, Ys, p, N, R
    and y (B, n_out)."""
    drive = input_drive(params, X)
    S, A, Ys = [np.zeros_like(drive)], [], []
    for n in range(1, max_steps + 1):
        s, a, y = cell_step(params, drive, S[-1], n == 1)
        S.append(s), A.append(a), Ys.append(y)
        # The rule reads only h_1..h_n: stop as soon as the slowest example has halted.
        p, N, R = act_halting(np.array(A), epsilon, max_steps)
        if (N > 0).all():
            break
    S, A, Ys = np.array(S), np.array(A), np.array(Ys)
    return {"S": S, "A": A, "Ys": Ys, "p": p, "N": N, "R": R,
            "y": np.einsum("nb,nbo->bo", p, Ys)}


def act_backward(params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
                 cache: dict[str, np.ndarray], tau: float) -> dict[str, np.ndarray]:
    """The exact gradient of ACT's loss mean_b[BCE(σ(y), Y)] + τ mean_b[N + R] (Chapter 14).

    N is piecewise constant, so only R carries the ponder cost's gradient, as in the paper:
    R = 1 − Σ_{n<N} h_n gives ∂L/∂h_n = ∂L/∂p_n − ∂L/∂R for n < N, and h_N gets none.
    """
    A, Ys, p, N = cache["A"], cache["Ys"], cache["p"], cache["N"]
    B = len(X)
    g = (sigmoid(cache["y"]) - Y) / B                     # ∂L/∂y (B, n_out)
    dYs = p[..., None] * g                                 # y = Σ p_n y_n
    dp = np.einsum("nbo,bo->nb", Ys, g)                    # ∂L/∂p_n = y_n · g
    dR = dp[N - 1, np.arange(B)] + tau / B                 # p_N = R, and the ponder cost τ R
    steps = np.arange(1, len(A) + 1)[:, None]
    h = sigmoid(A)
    dA = np.where(steps < N, dp - dR, 0.0) * h * (1.0 - h)
    return cell_backward(params, X, cache["S"], dYs, dA)


def ponder_halting(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # A (N, B)
    """PonderNet's halting distribution (Banino et al. 2021; Chapter 14): λ_n = σ(a_n), and
    λ_N = 1 at the last step so that p sums to one; p_n = λ_n Π_{j<n} (1 − λ_j).

    Returns p and log p (N, B), the logs summed from log-sigmoids so that a long product of
    small factors never underflows to log 0.
    """
    log_stay = -np.logaddexp(0.0, A[:-1])                  # log(1 − λ_n), n < N
    log_survive = np.vstack([np.zeros_like(A[:1]), np.cumsum(log_stay, axis=0)])
    log_p = log_survive + np.vstack([-np.logaddexp(0.0, -A[:-1]), np.zeros_like(A[:1])])
    return np.exp(log_p), log_p


def geometric_prior(steps: int, lambda_p: float) -> np.ndarray:  # -> (steps,)
    """log g_n of the truncated geometric prior over steps 1..``steps``: λ_p (1 − λ_p)^{n−1},
    with the tail's mass on the last step, the same truncation as :func:`ponder_halting`."""
    n = np.arange(steps)
    log_g = np.log(lambda_p) + n * np.log1p(-lambda_p)
    log_g[-1] = (steps - 1) * np.log1p(-lambda_p)
    return log_g


def ponder_loss_terms(Ys: np.ndarray, Y: np.ndarray, log_p: np.ndarray, beta: float,
                      lambda_p: float) -> tuple[np.ndarray, np.ndarray]:
    """Per example (Chapter 14): the loss Σ_n p_n ℓ_n + β KL(p ‖ g), (B,), and its derivative
    c_n = ∂/∂p_n = ℓ_n + β (log p_n + 1 − log g_n), (N, B), where ℓ_n = BCE(σ(y_n), Y)."""
    ell = bce(Ys, Y)
    log_g = geometric_prior(len(Ys), lambda_p)[:, None]
    p = np.exp(log_p)
    loss = (p * ell).sum(axis=0) + beta * (p * (log_p - log_g)).sum(axis=0)
    return loss, ell + beta * (log_p + 1.0 - log_g)


def ponder_backward(params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
                    S: np.ndarray, A: np.ndarray, Ys: np.ndarray, p: np.ndarray,
                    c: np.ndarray) -> dict[str, np.ndarray]:
    """The exact gradient of PonderNet's loss mean_b[Σ_n p_n ℓ_n + β KL(p ‖ g)] (Chapter 14),
    from c_n = ∂L_b/∂p_n (:func:`ponder_loss_terms`).

    With P_k = Π_{j<k} (1 − λ_j), ∂p_k/∂λ_k = P_k and ∂p_n/∂λ_k = −p_n / (1 − λ_k) for n > k,
    so ∂L/∂λ_k = P_k (c_k − T_k) with T_k = Σ_{n>k} c_n p_n / P_{k+1}, summed from the last
    step down by T_k = c_{k+1} λ_{k+1} + (1 − λ_{k+1}) T_{k+1} (λ_N = 1, T_N = 0): no division
    by a 1 − λ that may round to 0.
    """
    B, N = len(X), len(A)
    lam = sigmoid(A)
    lam[-1] = 1.0
    c = c / B
    # P_k from σ(−a) = 1 − λ, which keeps its digits when λ is near 1.
    survive = np.vstack([np.ones_like(A[:1]), np.cumprod(sigmoid(-A[:-1]), axis=0)])
    dlam = np.zeros_like(A)
    T = np.zeros(B, dtype=X.dtype)
    for k in range(N - 2, -1, -1):
        T = c[k + 1] * lam[k + 1] + (1.0 - lam[k + 1]) * T
        dlam[k] = survive[k] * (c[k] - T)
    dA = dlam * lam * (1.0 - lam)
    dYs = p[..., None] * (sigmoid(Ys) - Y) / B
    return cell_backward(params, X, S, dYs, dA)


class _Pondering(Model):
    """What the cells of this module (and :class:`loopy_edu.sln_lateral.CriticCell`) share:
    the cell's parameters and their checks, the dispatch to a backend, and accuracy. A subclass
    names its halting method (``_method``, the kernels' prefix), its own settings, and its NumPy
    reference."""

    _method = ""
    _halts = True

    def __init__(self, n_in: int, n_hidden: int, n_out: int, max_steps: int, halt_bias: float,
                 seed: int | None, dtype: DTypeLike, backend: str) -> None:
        self.n_in = int(check_positive(n_in, "n_in", integer=True))
        self.n_hidden = int(check_positive(n_hidden, "n_hidden", integer=True))
        self.n_out = int(check_positive(n_out, "n_out", integer=True))
        self.max_steps = int(check_positive(max_steps, "max_steps", integer=True))
        check_number(halt_bias, "halt_bias")
        self.dtype = check_dtype(dtype)
        self.backend = check_backend(backend)
        self.seed = seed
        rng = np.random.default_rng(seed)
        H = self.n_hidden
        self.params = {"W_x": init_weight(H, self.n_in + 1, "glorot", rng, self.dtype),
                       "W_h": init_weight(H, H, "glorot", rng, self.dtype),
                       "b_h": np.zeros(H, dtype=self.dtype),
                       "w_halt": init_weight(1, H, "glorot", rng, self.dtype)[0],
                       "b_halt": np.full(1, halt_bias, dtype=self.dtype),
                       "W_y": init_weight(self.n_out, H, "glorot", rng, self.dtype),
                       "b_y": np.zeros(self.n_out, dtype=self.dtype)}
        if not self._halts:
            del self.params["w_halt"], self.params["b_halt"]

    def settings(self) -> dict[str, Any]:
        """The halting method's own constructor arguments."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return dict(n_in=self.n_in, n_hidden=self.n_hidden, n_out=self.n_out,
                    max_steps=self.max_steps, **self.settings(), seed=self.seed,
                    dtype=self.dtype.name, backend=self.backend)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of each parameter, by name.

        Returns
        -------
        dict[str, tuple of int]
            ``W_x`` (H, n_in + 1), ``W_h`` (H, H), ``b_h`` (H,), ``w_halt`` (H,), ``b_halt``
            (1,), ``W_y`` (n_out, H), ``b_y`` (n_out,); a cell that does not halt has no
            ``w_halt`` and ``b_halt``.
        """
        H = self.n_hidden
        shapes = {"W_x": (H, self.n_in + 1), "W_h": (H, H), "b_h": (H,), "w_halt": (H,),
                  "b_halt": (1,), "W_y": (self.n_out, H), "b_y": (self.n_out,)}
        if not self._halts:
            del shapes["w_halt"], shapes["b_halt"]
        return shapes

    def weights(self) -> list[np.ndarray]:
        """The parameters in the order of :meth:`shapes`, checked (shape, dtype, finite); the
        kernels' argument list, with zeros for the halting unit of a cell that has none."""
        W_x, W_h, b_h, *rest = check_params(self.params, self.shapes(), self.dtype)
        if self._halts:
            return [W_x, W_h, b_h, *rest]
        return [W_x, W_h, b_h, np.zeros(self.n_hidden, self.dtype), np.zeros(1, self.dtype),
                *rest]

    def _cell_params(self):
        # The shared functions' params; a cell that does not halt gets a unit reading nothing.
        keys = ["W_x", "W_h", "b_h", "w_halt", "b_halt", "W_y", "b_y"]
        return dict(zip(keys, self.weights()))

    def _X(self, X):
        return check_array(X, "X", shape=(None, self.n_in), dtype=self.dtype)

    def _XY(self, X, Y):
        X = self._X(X)
        return X, check_binary(Y, "Y", (len(X), self.n_out), self.dtype)

    def predict(self, X: ArrayLike, max_steps: int | None = None,
                backend: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Output probabilities, and the computation each example used (the class says which
        measure: ACT's ponder cost N + R, PonderNet's halting step).

        Parameters
        ----------
        X : array_like, shape (B, n_in)
        max_steps : int or None
            The loop cap at test time; None keeps the model's.
        backend : str or None
            Overrides the model's backend.

        Returns
        -------
        probabilities : np.ndarray, shape (B, n_out)
        ponder : np.ndarray, shape (B,)
        """
        weights, X = self.weights(), self._X(X)
        steps = self.max_steps if max_steps is None else check_positive(
            max_steps, "max_steps", integer=True)
        backend = self.backend if backend is None else check_backend(backend)
        if backend == "numpy":
            return self._predict(X, steps)
        kernel = getattr(kernels("halting", backend), f"{self._method}_predict")
        return kernel(*weights, X, steps, *self._predict_args())

    def loss_and_grads(self, X: ArrayLike, Y: ArrayLike,
                       backend: str | None = None) -> tuple[float, dict[str, np.ndarray]]:
        """The loss on a batch (the class gives it) and its exact gradient, keyed like
        ``params`` (Chapter 14).

        Parameters
        ----------
        X : array_like, shape (B, n_in)
        Y : array_like, shape (B, n_out), values in {0, 1}
        backend : str or None
            Overrides the model's backend.

        Returns
        -------
        loss : float
        grads : dict[str, np.ndarray]
        """
        weights, (X, Y) = self.weights(), self._XY(X, Y)
        backend = self.backend if backend is None else check_backend(backend)
        if backend == "numpy":
            return self._loss_and_grads(X, Y)
        kernel = getattr(kernels("halting", backend), f"{self._method}_loss_and_grads")
        loss, *grads = kernel(*weights, X, Y, self.max_steps, *self._loss_args())
        if not self._halts:
            del grads[3:5]
        return float(loss), dict(zip(self.shapes(), grads))

    def accuracy(self, X: ArrayLike, Y: ArrayLike, max_steps: int | None = None) -> float:
        """The fraction of examples whose every output bit is right (probability > 0.5 for a
        target of 1).

        Parameters
        ----------
        X : array_like, shape (B, n_in)
        Y : array_like, shape (B, n_out), values in {0, 1}
        max_steps : int or None
            The loop cap at test time; None keeps the model's.

        Returns
        -------
        float
            The accuracy in [0, 1].
        """
        X, Y = self._XY(X, Y)
        probs, _ = self.predict(X, max_steps)
        return float(((probs > 0.5) == (Y > 0.5)).all(axis=1).mean())


class ACTCell(_Pondering):
    """Adaptive computation time (Graves 2016) on one tanh cell with a static input
    (Chapter 14).

    At ponder step n the cell takes [x, δ_{n1}] (the input and a first-step flag); it halts at
    the first N where the halting units sum to 1 − ``epsilon``, capped at ``max_steps``; the
    output is the mixture y = Σ p_n y_n with p_N the remainder R. The loss is
    mean_b[BCE(σ(y), Y)] + τ mean_b[N + R] (:func:`act_forward`, :func:`act_backward`), whose
    ponder term's gradient flows only through R. :meth:`predict` returns σ(y) and the ponder
    cost N + R of each example (N is its integer part, except that N = 1 and R = 1 give 2).

    Parameters
    ----------
    n_in, n_hidden, n_out : int
        Inputs (without the flag), hidden units H, outputs.
    max_steps : int
        The cap M on ponder steps, at least 1.
    tau : float
        The ponder cost τ ≥ 0.
    epsilon : float
        The halting threshold ε in [0, 1).
    halt_bias : float
        The initial halting bias b_halt (Graves: 1, so that early training halts soon).
    seed : int or None
        Seed of the initial weights (Glorot; biases zero except b_halt).
    dtype : dtype-like
        ``np.float32`` or ``np.float64``.
    backend : str
        ``"numpy"``, ``"numba"`` or ``"cuda"``.

    Raises
    ------
    ValueError
        Naming the argument, if one is invalid.
    """

    _method = "act"

    def __init__(self, n_in: int, n_hidden: int, n_out: int, max_steps: int = 10,
                 tau: float = 1e-3, epsilon: float = 0.01, halt_bias: float = 1.0,
                 seed: int | None = 0, dtype: DTypeLike = np.float64,
                 backend: str = DEFAULT) -> None:
        self.tau = check_number(tau, "tau", 0.0)
        self.epsilon = check_number(epsilon, "epsilon", 0.0, 1.0, high_open=True)
        self.halt_bias = check_number(halt_bias, "halt_bias")
        super().__init__(n_in, n_hidden, n_out, max_steps, halt_bias, seed, dtype, backend)

    def settings(self) -> dict[str, Any]:
        return dict(tau=self.tau, epsilon=self.epsilon, halt_bias=self.halt_bias)

    def _predict_args(self):
        return (self.epsilon,)

    def _loss_args(self):
        return self.epsilon, self.tau

    def _predict(self, X, steps):
        c = act_forward(self.params, X, steps, self.epsilon)
        return sigmoid(c["y"]), (c["N"] + c["R"]).astype(self.dtype)

    def _loss_and_grads(self, X, Y):
        c = act_forward(self.params, X, self.max_steps, self.epsilon)
        loss = bce(c["y"], Y).mean() + self.tau * (c["N"] + c["R"]).mean()
        return float(loss), act_backward(self.params, X, Y, c, self.tau)


class PonderCell(_Pondering):
    """PonderNet (Banino et al. 2021) on the cell of :class:`ACTCell` (Chapter 14).

    Training unrolls all ``max_steps`` steps; the halting probabilities λ_n = σ(a_n) give
    p_n = λ_n Π_{j<n}(1 − λ_j) (the last step takes the rest), and the loss is
    mean_b[Σ_n p_n BCE(σ(y_n), Y) + β KL(p ‖ geometric(λ_p))]. At test time the cell halts at
    the median of p: the first n where Σ_{m≤n} p_m ≥ 1/2, a deterministic rule fixed before
    any test (the paper samples a step instead); :meth:`predict` returns σ(y_n) there, and n.
    A larger ``max_steps`` at test time unrolls more steps, the last taking the rest of p.

    Parameters
    ----------
    n_in, n_hidden, n_out : int
        Inputs (without the flag), hidden units H, outputs.
    max_steps : int
        The steps unrolled in training, at least 1.
    beta : float
        The weight β ≥ 0 of the KL term.
    lambda_p : float
        The prior's halting probability per step, in (0, 1).
    halt_bias : float or None
        The initial halting bias; None starts it at logit(λ_p), on the prior.
    seed : int or None
    dtype : dtype-like
    backend : str

    Raises
    ------
    ValueError
        Naming the argument, if one is invalid.
    """

    _method = "ponder"

    def __init__(self, n_in: int, n_hidden: int, n_out: int, max_steps: int = 10,
                 beta: float = 0.01, lambda_p: float = 0.2, halt_bias: float | None = None,
                 seed: int | None = 0, dtype: DTypeLike = np.float64,
                 backend: str = DEFAULT) -> None:
        self.beta = check_number(beta, "beta", 0.0)
        self.lambda_p = check_number(lambda_p, "lambda_p", 0.0, 1.0, low_open=True,
                                     high_open=True)
        self.halt_bias = None if halt_bias is None else check_number(halt_bias, "halt_bias")
        bias = np.log(lambda_p / (1 - lambda_p)) if halt_bias is None else halt_bias
        super().__init__(n_in, n_hidden, n_out, max_steps, bias, seed, dtype, backend)

    def settings(self) -> dict[str, Any]:
        return dict(beta=self.beta, lambda_p=self.lambda_p, halt_bias=self.halt_bias)

    def _predict_args(self):
        return ()

    def _loss_args(self):
        return self.beta, self.lambda_p

    def _predict(self, X, steps):
        _, A, Ys = cell_forward(self.params, X, steps)
        p, _ = ponder_halting(A)
        n = (np.cumsum(p, axis=0) >= 0.5).argmax(axis=0)
        return sigmoid(Ys[n, np.arange(len(X))]), (n + 1).astype(self.dtype)

    def _loss_and_grads(self, X, Y):
        S, A, Ys = cell_forward(self.params, X, self.max_steps)
        p, log_p = ponder_halting(A)
        loss, c = ponder_loss_terms(Ys, Y, log_p, self.beta, self.lambda_p)
        return float(loss.mean()), ponder_backward(self.params, X, Y, S, A, Ys, p, c)


class LoopedCell(_Pondering):
    """The same cell run for a fixed number of loops, with no halting unit: the baseline that
    adaptive computation has to beat (Chapter 14).

    It runs ``max_steps`` steps, s_n as in :class:`ACTCell`, and outputs y_N of the last one;
    the loss is mean_b[BCE(σ(y_N), Y)]. :meth:`predict` returns σ(y_N) and the loops used
    (all N, for every example). With ``max_steps=1`` it is a one-pass network, the "no ACT"
    control.

    Parameters
    ----------
    n_in, n_hidden, n_out : int
        Inputs (without the flag), hidden units H, outputs.
    max_steps : int
        The loops N, at least 1; ``predict`` may run another number at test time.
    seed : int or None
    dtype : dtype-like
    backend : str

    Raises
    ------
    ValueError
        Naming the argument, if one is invalid.
    """

    _method = "fixed"
    _halts = False

    def __init__(self, n_in: int, n_hidden: int, n_out: int, max_steps: int = 4,
                 seed: int | None = 0, dtype: DTypeLike = np.float64,
                 backend: str = DEFAULT) -> None:
        super().__init__(n_in, n_hidden, n_out, max_steps, 0.0, seed, dtype, backend)

    def settings(self) -> dict[str, Any]:
        return {}

    def _predict_args(self):
        return ()

    def _loss_args(self):
        return ()

    def _predict(self, X, steps):
        _, _, Ys = cell_forward(self._cell_params(), X, steps)
        return sigmoid(Ys[-1]), np.full(len(X), steps, dtype=self.dtype)

    def _loss_and_grads(self, X, Y):
        params = self._cell_params()
        S, A, Ys = cell_forward(params, X, self.max_steps)
        dYs = np.zeros_like(Ys)
        dYs[-1] = (sigmoid(Ys[-1]) - Y) / len(X)
        grads = cell_backward(params, X, S, dYs, np.zeros_like(A))
        del grads["w_halt"], grads["b_halt"]
        return float(bce(Ys[-1], Y).mean()), grads

