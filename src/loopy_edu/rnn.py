"""The leaky recurrent network of Part II (Chapter 5).

Starting from ``h_0 = 0``, each step computes

    u_t = W_rec h_{t-1} + W_in x_t + b_rec
    h_t = (1 − α) h_{t-1} + α act(u_t)
    y_t = W_out h_t + b_out

``α = 1`` is the plain (Elman) network; ``α < 1`` makes each unit a leaky integrator with time constant
``1/α`` steps. Its exact gradient comes two ways: backward in time (:mod:`loopy_edu.bptt`, Chapter 5)
and forward in time (:mod:`loopy_edu.rtrl`, Chapter 6).
"""
import numpy as np

from .activations import ACTIVATIONS, CODES
from .backend import DEFAULT, check_backend
from .checks import check_choice, check_positive
from .readout import RecurrentModel


def step(params, h, x, alpha, activation):
    """One step: returns ``h_t`` (B, N) and ``a_t = act(u_t)`` (B, N) from h_{t-1} (B, N) and x_t (B, n_in)."""
    act, _ = ACTIVATIONS[activation]
    u = h @ params["W_rec"].T + x @ params["W_in"].T + params["b_rec"]     # (B, N)
    a = act(u)
    return (1 - alpha) * h + alpha * a, a


def forward(params, xs, alpha, activation):
    """Run the network over xs (T, B, n_in) from h_0 = 0; returns the states hs (T, B, N) and the
    activations a_t = act(u_t) (T, B, N), which the backward pass needs for act'(u_t)."""
    T, B, _ = xs.shape
    N = params["W_rec"].shape[0]
    hs = np.empty((T, B, N), dtype=xs.dtype)
    acts = np.empty_like(hs)
    h = np.zeros((B, N), dtype=xs.dtype)
    for t in range(T):
        h, acts[t] = step(params, h, xs[t], alpha, activation)
        hs[t] = h
    return hs, acts


class RNN(RecurrentModel):
    """A leaky RNN with ``n_in`` inputs, ``n_rec`` recurrent units and a linear readout of ``n_out``.

    ``params``: ``W_in`` (n_rec, n_in), ``W_rec`` (n_rec, n_rec), ``b_rec`` (n_rec,), ``W_out``
    (n_out, n_rec), ``b_out`` (n_out,). Weights start Gaussian with std 1/√fan_in, so ``W_rec`` has a
    spectral radius near 1 (the edge between fading and exploding memory, Chapter 5); pass
    ``spectral_radius`` to rescale it exactly. Biases start at zero.
    """

    def __init__(self, n_in, n_rec, n_out, alpha=1.0, activation="tanh", seed=0, dtype=np.float64,
                 backend=DEFAULT, spectral_radius=None):
        for name, n in (("n_in", n_in), ("n_rec", n_rec), ("n_out", n_out)):
            check_positive(n, name, integer=True)
        if not (isinstance(alpha, (int, float, np.number)) and 0 < alpha <= 1):
            raise ValueError(f"alpha: expected a number in (0, 1], got {alpha!r}")
        self.activation = check_choice(activation, "activation", ACTIVATIONS)
        self.dtype = np.dtype(dtype)
        check_choice(self.dtype, "dtype", (np.dtype(np.float32), np.dtype(np.float64)))
        self.n_in, self.n_rec, self.n_out, self.alpha = n_in, n_rec, n_out, float(alpha)
        self.backend = check_backend(backend)
        rng = np.random.default_rng(seed)
        gauss = lambda rows, cols: rng.standard_normal((rows, cols)) / np.sqrt(cols)
        self.params = {"W_in": gauss(n_rec, n_in), "W_rec": gauss(n_rec, n_rec), "b_rec": np.zeros(n_rec),
                       "W_out": gauss(n_out, n_rec), "b_out": np.zeros(n_out)}
        if spectral_radius is not None:
            self.params["W_rec"] *= check_positive(spectral_radius, "spectral_radius") / self.spectral_radius()
        self.params = {k: v.astype(self.dtype) for k, v in self.params.items()}

    def __repr__(self):
        return (f"RNN(n_in={self.n_in}, n_rec={self.n_rec}, n_out={self.n_out}, alpha={self.alpha:g}, "
                f"activation={self.activation!r}, dtype={self.dtype.name}, backend={self.backend!r})")

    def spectral_radius(self):
        """The largest |eigenvalue| of ``W_rec``."""
        return float(np.max(np.abs(np.linalg.eigvals(self.params["W_rec"]))))

    def shapes(self):
        """The shape of every parameter, in the order of ``params``."""
        N = self.n_rec
        return {"W_in": (N, self.n_in), "W_rec": (N, N), "b_rec": (N,), "W_out": (self.n_out, N),
                "b_out": (self.n_out,)}

    def states(self, xs, backend):
        """States hs (T, B, N) for xs (T, B, n_in), from h_0 = 0."""
        W_in, W_rec, b_rec, _, _ = self.weights()
        if backend == "numpy":
            return forward(self.params, xs, self.alpha, self.activation)[0]
        return self.kernels(backend).forward(W_in, W_rec, b_rec, xs, self.alpha, CODES[self.activation])[0]

    def loss_and_grads(self, xs, targets, loss="mse", mask=None, truncation=None, backend=None):
        """The loss and its exact gradient by BPTT (:func:`loopy_edu.bptt.bptt`)."""
        from .bptt import bptt
        return bptt(self, xs, targets, loss, mask, truncation, backend)

    @staticmethod
    def kernels(backend):
        if backend == "numba":
            from .kernels import rnn_numba as k
        else:
            from .kernels import rnn_cuda as k
        return k
