"""A looped convolutional strange-loop network for easy-to-hard generalisation (Chapter 15,
experiment 3, after the DeepThinking nets of Schwarzschild et al. 2021 and Bansal et al. 2022).

The tall SLN of :mod:`loopy_edu.sln` with lobes that are 1-D convolutions over a bit string
(zero padding, so the same weights run on strings of any length L). The state is H (B, L, C).
At loop n, with x (B, L) the input bits and H^R_0 = 0, ::

    H^L_n = tanh(conv(H^R_{n-1}; K^L) + r^L x + b^L)
    H^R_n = tanh(conv(H^L_n; K^R) + r^R x + b^R)
    y_n   = H^R_n w + c                              (a 1x1 readout: one logit per position)

where conv(H; K)[l] = Σ_j H[l + j − p] K[j] over the k taps j of a kernel K (k, C, C), with
p = (k − 1) / 2 and H = 0 outside the string. With ``recall`` the input is re-injected at every
loop (DeepThinking's recall); without it, only at loop 1. ``lobes=1`` is the single looped
network (H_n = tanh(conv(H_{n-1}; K^L) + r^L x + b^L), read out the same way): the
parameter-matched control of "do two lobes beat one?". One loop carries information at most
``lobes × p`` positions, so a string of L bits needs about L / (lobes p) loops: looping more at
test time is what lets a net trained on short strings answer long ones.

Every array of loops is loop first: the states of all convolutions in order, Hs (T + 1, B, L,
C) with T = loops × lobes (row 0 is zero), and the logits of each loop, Ys (loops, B, L).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .activations import sigmoid
from .backend import check_backend, kernels
from .checks import (check_array, check_binary, check_choice, check_dtype, check_params,
                     check_positive)
from .halting import bce
from .mlp import init_weight
from .model import Model

SIDES = "LR"


def conv1d(H: np.ndarray, K: np.ndarray) -> np.ndarray:  # H (B, L, C_in), K (k, C_in, C_out)
    """The zero-padded 1-D convolution of a batch of strings, ::

        conv(H; K)[b, l] = Σ_j H[b, l + j − p] K[j],   p = (k − 1) / 2,

    with H = 0 outside 0..L−1, as one matrix product of the k shifted copies (im2col).

    Parameters
    ----------
    H : np.ndarray, shape (B, L, C_in)
    K : np.ndarray, shape (k, C_in, C_out), k odd

    Returns
    -------
    np.ndarray, shape (B, L, C_out)
    """
    return _columns(H, len(K)) @ K.reshape(-1, K.shape[2])


def _columns(H, k):
    # (B, L, k C_in): the k shifted copies of H side by side, tap j in block j.
    p, L = k // 2, H.shape[1]
    padded = np.pad(H, ((0, 0), (p, p), (0, 0)))
    return np.concatenate([padded[:, j:j + L] for j in range(k)], axis=2)


def conv1d_back(dZ: np.ndarray, K: np.ndarray) -> np.ndarray:
    """The transpose of :func:`conv1d`: ∂L/∂H from ∂L/∂Z (B, L, C_out), which is the
    convolution of dZ with the kernel flipped and transposed, ::

        ∂L/∂H[b, m] = Σ_j dZ[b, m + p − j] K[j]ᵀ.

    Parameters
    ----------
    dZ : np.ndarray, shape (B, L, C_out)
    K : np.ndarray, shape (k, C_in, C_out)

    Returns
    -------
    np.ndarray, shape (B, L, C_in)
    """
    return conv1d(dZ, K[::-1].transpose(0, 2, 1))


def conv_forward(params: dict[str, np.ndarray], X: np.ndarray,  # X (B, L)
                 iterations: int, lobes: int, recall: bool,
                 keep_states: bool = True) -> dict[str, np.ndarray]:
    """The looped convolutional SLN's loops (Chapter 15) on bit strings X.

    Parameters
    ----------
    params : dict[str, np.ndarray]
        ``K_L``, ``r_L``, ``b_L`` (and ``_R`` with two lobes), ``w``, ``c``.
    X : np.ndarray, shape (B, L)
        The bits.
    iterations : int
        The loops.
    lobes : int
        1 or 2 convolutions per loop.
    recall : bool
        Whether x enters every loop (else loop 1 only).
    keep_states : bool
        Whether to keep every state (for the backward pass) or only the last (for a long test
        string, the memory of one state).

    Returns
    -------
    dict
        ``Ys`` (iterations, B, L): the logits of every loop; ``Hs`` (iterations × lobes + 1, B,
        L, C): the state after every convolution, row 0 zero, or (1, B, L, C), the last one.
    """
    sides = SIDES[:lobes]
    B, L = X.shape
    H = np.zeros((B, L, params["w"].shape[0]), X.dtype)
    Hs, Ys = [H], []
    for n in range(1, iterations + 1):
        for side in sides:
            heard = np.multiply.outer(X, params[f"r_{side}"]) if recall or n == 1 else 0.0
            H = np.tanh(conv1d(H, params[f"K_{side}"]) + heard + params[f"b_{side}"])
            if keep_states:
                Hs.append(H)
        Ys.append(H @ params["w"] + params["c"][0])
    return {"Hs": np.array(Hs) if keep_states else H[None], "Ys": np.array(Ys)}


def supervised_loops(iterations: int, supervise_from: int) -> np.ndarray:
    """The weight of each loop's loss, (iterations,): 1 / (iterations − supervise_from + 1) on
    the supervised loops ``supervise_from``..``iterations``, 0 before.

    Parameters
    ----------
    iterations : int
    supervise_from : int
        The first supervised loop, in 1..iterations.

    Returns
    -------
    np.ndarray, shape (iterations,)
    """
    loops = np.arange(1, iterations + 1)
    return (loops >= supervise_from) / (iterations - supervise_from + 1)


def conv_loss(Ys: np.ndarray, Y: np.ndarray, weights: np.ndarray) -> float:
    """The loss: per-position BCE averaged over examples and positions, weighted over loops, ::

        loss = Σ_n weights_n mean_{b,l} BCE(σ(y_n[b, l]), Y[b, l]).

    Parameters
    ----------
    Ys : np.ndarray, shape (iterations, B, L)
    Y : np.ndarray, shape (B, L), values in {0, 1}
    weights : np.ndarray, shape (iterations,)

    Returns
    -------
    float
    """
    per_loop = bce(Ys[..., None], Y[..., None]).mean(axis=(1, 2))
    return float(weights @ per_loop)


def conv_backward(params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
                  c: dict[str, np.ndarray], lobes: int, recall: bool,
                  weights: np.ndarray) -> dict[str, np.ndarray]:
    """The exact gradient of :func:`conv_loss`, by BPTT through every loop and lobe.

    Going back through convolution t (lobe ``side``), ∂L/∂H_t gathers the readout's share
    (when t ends a loop) and what the next convolution sends back (:func:`conv1d_back`);
    then ∂L/∂Z_t = ∂L/∂H_t (1 − H_t²) gives that lobe's K, r and b their terms.

    Parameters
    ----------
    params : dict[str, np.ndarray]
    X, Y : np.ndarray, shape (B, L)
        The bits and the targets.
    c : dict
        What :func:`conv_forward` returned with ``keep_states``.
    lobes : int
    recall : bool
    weights : np.ndarray, shape (iterations,)
        Each loop's weight in the loss (:func:`supervised_loops`).

    Returns
    -------
    dict[str, np.ndarray]
        The gradient of every parameter, keyed like ``params``.
    """
    sides = SIDES[:lobes]
    Hs, Ys = c["Hs"], c["Ys"]
    B, L = X.shape
    taps, C = params["K_L"].shape[:2]
    gY = weights[:, None, None] * (sigmoid(Ys) - Y) / (B * L)      # (loops, B, L)
    grads = {name: np.zeros_like(v) for name, v in params.items()}
    grads["w"] = np.einsum("nbl,nblc->c", gY, Hs[lobes::lobes])
    grads["c"] = np.array([gY.sum()], dtype=X.dtype)
    dH = np.zeros_like(Hs[0])
    for t in range(len(Hs) - 1, 0, -1):
        n, side = (t - 1) // lobes + 1, sides[(t - 1) % lobes]
        if t % lobes == 0:                                          # loop n ends here
            dH = dH + np.multiply.outer(gY[n - 1], params["w"])
        dZ = dH * (1.0 - Hs[t] ** 2)
        grads[f"K_{side}"] += (_columns(Hs[t - 1], taps).reshape(B * L, -1).T
                               @ dZ.reshape(B * L, C)).reshape(taps, C, C)
        if recall or n == 1:
            grads[f"r_{side}"] += np.einsum("bl,blc->c", X, dZ)
        grads[f"b_{side}"] += dZ.sum(axis=(0, 1))
        dH = conv1d_back(dZ, params[f"K_{side}"])
    return grads


def matched_channels(n_channels: int, kernel_size: int = 3) -> int:
    """The width of a one-lobe net with about the parameters of a two-lobe net of
    ``n_channels``: the C' whose count k C'² + 3 C' + 1 is nearest 2 (k C² + 2 C) + C + 1.

    Parameters
    ----------
    n_channels : int
        The two-lobe net's channels C.
    kernel_size : int
        The kernel's taps k.

    Returns
    -------
    int
    """
    k, C = kernel_size, n_channels
    target = 2 * (k * C * C + 2 * C) + C + 1
    best = int(math.isqrt(target // k))
    return min((best, best + 1), key=lambda w: (abs(k * w * w + 3 * w + 1 - target), w))


class ConvSLN(Model):
    """The looped convolutional SLN (Chapter 15, easy to hard): two convolutional lobes that
    answer each other (:func:`conv_forward`), one logit per position, trained by the exact
    gradient through every loop (:func:`conv_backward`).

    ``params``: per lobe ``K_L`` (k, C, C), ``r_L`` (C,), ``b_L`` (C,) (and ``_R`` with two
    lobes), then the readout ``w`` (C,) and ``c`` (1,).

    The loss supervises the answer at every loop from ``supervise_from`` to ``iterations``
    (the mean of the per-loop losses, :func:`conv_loss`), not only at the last loop. Only the
    last loop would leave the net free to pass through the right answer and out again (it is
    asked nothing about loop n + 1), which is the overthinking of DeepThinking nets without
    recall; asking for the answer over a window of loops asks for a state that, once right,
    stays right: a fixed point, which is what looping longer on longer strings needs. It is
    Bansal et al.'s progressive loss made deterministic: every loop of the window is
    supervised at once instead of one drawn at random, so the gradient is exact and the
    finite-difference check applies. The first loops stay unsupervised because the answer's
    far end cannot have heard the string's start yet.

    Parameters
    ----------
    n_channels : int
        Channels C of the state.
    lobes : int
        2 (left and right lobes) or 1 (one looped convolution: the single-network control).
    kernel_size : int
        Taps k of each convolution, odd.
    iterations : int
        Loops in training (and the default at test), at least 1; 1 is the non-looping
        control.
    supervise_from : int or None
        The first loop whose answer is in the loss, in 1..iterations; None: the second half
        of the loops, ``iterations // 2 + 1``.
    recall : bool
        Whether the input is re-injected at every loop (else only at loop 1).
    seed : int or None
    dtype : dtype-like
    backend : str
        ``"numpy"``, ``"numba"`` or ``"cuda"`` (on CUDA, :meth:`forward`, which returns every
        state, runs the Numba kernel).

    Raises
    ------
    ValueError
        Naming the argument, if one is invalid.
    """

    def __init__(self, n_channels: int, lobes: int = 2, kernel_size: int = 3,
                 iterations: int = 16, supervise_from: int | None = None, recall: bool = True,
                 seed: int | None = 0, dtype: DTypeLike = np.float64,
                 backend: str = "numba") -> None:
        self.n_channels = int(check_positive(n_channels, "n_channels", integer=True))
        self.lobes = check_choice(lobes, "lobes", (1, 2))
        self.kernel_size = int(check_positive(kernel_size, "kernel_size", integer=True))
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size: expected an odd positive integer, "
                             f"got {kernel_size}")
        self.iterations = int(check_positive(iterations, "iterations", integer=True))
        first = self.iterations // 2 + 1 if supervise_from is None else supervise_from
        check_positive(first, "supervise_from", integer=True)
        if first > self.iterations:
            raise ValueError(f"supervise_from: expected an integer in [1, iterations] = "
                             f"[1, {self.iterations}], got {supervise_from}")
        self.supervise_from = supervise_from
        if not isinstance(recall, (bool, np.bool_)):
            raise ValueError(f"recall: expected True or False, got {recall!r}")
        self.recall = bool(recall)
        self.dtype = check_dtype(dtype)
        self.backend = check_backend(backend)
        self.seed = seed
        rng = np.random.default_rng(seed)
        k, C = self.kernel_size, self.n_channels
        self.params = {}
        for name, shape in self.shapes().items():
            if name.startswith("K_"):               # Glorot over the k C inputs of a position
                w = init_weight(C, k * C, "glorot", rng, self.dtype)
                self.params[name] = np.ascontiguousarray(w.T.reshape(k, C, C))
            elif name.startswith("r_") or name == "w":
                self.params[name] = init_weight(1, C, "glorot", rng, self.dtype)[0]
            else:
                self.params[name] = np.zeros(shape, self.dtype)

    def config(self) -> dict[str, Any]:
        return dict(n_channels=self.n_channels, lobes=self.lobes, kernel_size=self.kernel_size,
                    iterations=self.iterations, supervise_from=self.supervise_from,
                    recall=self.recall, seed=self.seed, dtype=self.dtype.name,
                    backend=self.backend)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of each parameter, by name, in the order of the gradients.

        Returns
        -------
        dict[str, tuple of int]
        """
        k, C = self.kernel_size, self.n_channels
        shapes = {}
        for side in SIDES[:self.lobes]:
            shapes.update({f"K_{side}": (k, C, C), f"r_{side}": (C,), f"b_{side}": (C,)})
        return {**shapes, "w": (C,), "c": (1,)}

    def loop_weights(self) -> np.ndarray:
        """Each training loop's weight in the loss (:func:`supervised_loops`), (iterations,).

        Returns
        -------
        np.ndarray, shape (iterations,)
        """
        first = self.iterations // 2 + 1 if self.supervise_from is None else self.supervise_from
        return supervised_loops(self.iterations, first).astype(self.dtype)

    def _inputs(self, X, iterations=None):
        # The checked weights as the kernels' argument list (a one-lobe net lends its lobe
        # to the right lobe's unused slots), X (bits) and the loops.
        loops = self.iterations if iterations is None else int(check_positive(
            iterations, "iterations", integer=True))
        weights = check_params(self.params, self.shapes(), self.dtype)
        if self.lobes == 1:
            weights = weights[:3] + weights
        X = check_array(X, "X", ndim=2, dtype=self.dtype)
        return weights, check_binary(X, "X", X.shape, self.dtype), loops

    def forward(self, X: ArrayLike, iterations: int | None = None) -> dict[str, np.ndarray]:
        """Every state and logit of the loops on X (B, L): what :func:`conv_forward` returns.

        Parameters
        ----------
        X : array_like, shape (B, L), values in {0, 1}
        iterations : int or None
            The loops; None keeps the model's.

        Returns
        -------
        dict
            ``Hs`` (iterations × lobes + 1, B, L, C) and ``Ys`` (iterations, B, L).
        """
        weights, X, loops = self._inputs(X, iterations)
        if self.backend == "numpy":
            return conv_forward(self.params, X, loops, self.lobes, self.recall)
        Hs, Ys = kernels("sln_conv", "numba").conv_forward(*weights, X, loops, self.lobes,
                                                           self.recall, True)
        return {"Hs": Hs, "Ys": Ys}

    def predict(self, X: ArrayLike, iterations: int | None = None,
                every_loop: bool = False) -> np.ndarray:
        """The probability σ(y) of a 1 at each position after ``iterations`` loops, or after
        each loop (for accuracy against loops), keeping only one state in memory.

        Parameters
        ----------
        X : array_like, shape (B, L), values in {0, 1}
        iterations : int or None
            The loops at test time; None keeps the model's.
        every_loop : bool
            Whether to return the answers of every loop.

        Returns
        -------
        np.ndarray, shape (B, L), or (iterations, B, L) with ``every_loop``
        """
        weights, X, loops = self._inputs(X, iterations)
        if self.backend == "numpy":
            Ys = conv_forward(self.params, X, loops, self.lobes, self.recall, False)["Ys"]
        else:
            Ys = kernels("sln_conv", self.backend).conv_forward(
                *weights, X, loops, self.lobes, self.recall, False)[1]
        probs = sigmoid(Ys)
        return probs if every_loop else probs[-1]

    def loss_and_grads(self, X: ArrayLike,
                       Y: ArrayLike) -> tuple[float, dict[str, np.ndarray]]:
        """The loss (:func:`conv_loss`, over the supervised loops) on a batch and its exact
        gradient, keyed like ``params``.

        Parameters
        ----------
        X : array_like, shape (B, L), values in {0, 1}
        Y : array_like, shape (B, L), values in {0, 1}

        Returns
        -------
        loss : float
        grads : dict[str, np.ndarray]
        """
        weights, X, _ = self._inputs(X)
        Y = check_binary(Y, "Y", X.shape, self.dtype)
        if self.backend != "numpy":
            loss, *grads = kernels("sln_conv", self.backend).conv_loss_and_grads(
                *weights, X, Y, self.iterations, self.lobes, self.recall, self.loop_weights())
            if self.lobes == 1:
                grads = grads[:3] + grads[6:]
            return float(loss), dict(zip(self.shapes(), grads))
        c = conv_forward(self.params, X, self.iterations, self.lobes, self.recall)
        weights = self.loop_weights()
        grads = conv_backward(self.params, X, Y, c, self.lobes, self.recall, weights)
        return conv_loss(c["Ys"], Y, weights), {k: grads[k] for k in self.shapes()}
