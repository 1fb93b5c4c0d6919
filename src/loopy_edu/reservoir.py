"""Reservoir computing: the echo state network baseline, ridge readouts and memory capacity
(Part IV).

An echo state network (ESN) never trains its recurrent weights. A fixed random reservoir of N
units is driven by the input u_t, and only a linear readout of its states is fitted, by ridge
regression. The reservoir's update, with leak rate ``lr`` and activation f, is ::

    x_t = (1 - lr) x_{t-1} + lr f(W x_{t-1} + W_in u_t + b),    x_0 = 0,

and the readout predicts y_t = W_out x_t + b_out. The names follow reservoirpy's ``Reservoir``
and ``Ridge`` nodes: ``units``, ``sr`` (the spectral radius of W), ``lr``, ``input_scaling``,
``bias_scaling``, ``rc_connectivity`` (the density of W) and ``input_connectivity`` (the
density of W_in); see :class:`ESN` for where the two differ.

Memory capacity (Jaeger, 2001) asks how much of its past input a reservoir keeps in a linearly
readable form. Drive it with i.i.d. inputs; for each delay k fit a readout to u_{t-k} and score
it by the squared correlation; the capacity is the sum over delays, ::

    MC_k = corr(y_k(t), u(t - k))^2,    MC = sum_{k=1}^{k_max} MC_k.

With i.i.d. inputs the targets of different delays are uncorrelated, so a readout of N state
features can recover at most N of them in total: MC <= N (Jaeger's bound), reached by a
perfect shift register. :func:`memory_capacity` scores each delay on held-out steps, so the
estimate is honest about overfitting; on finitely many test steps the delayed inputs are only
nearly uncorrelated, and the bound becomes MC <= N λ_max, with λ_max the largest eigenvalue of
their sample correlation matrix; λ_max tends to 1 as the test steps outnumber the delays (with
600 test steps and 24 delays it stays below about 1.8, and MC itself within a few per cent of
N).
"""
from __future__ import annotations

import functools
import warnings

import numpy as np
import scipy.linalg
import scipy.sparse

from .checks import check_array, check_choice, check_number, check_positive

__all__ = ["ESN", "ridge", "memory_capacity"]

ESN_ACTIVATIONS = ("tanh", "linear")


def _check_washout(washout: int, T: int) -> int:
    if isinstance(washout, bool) or not isinstance(washout, (int, np.integer)) \
            or not 0 <= washout < T:
        raise ValueError(f"washout: expected an integer in [0, {T - 1}] (fewer than the "
                         f"T = {T} steps), got {washout!r}")
    return int(washout)


class ESN:
    """An echo state network's reservoir: fixed random weights, run on input sequences.

    The update, from x_0 = 0, is ::

        x_t = (1 - lr) x_{t-1} + lr f(W x_{t-1} + W_in u_t + b),

    with f = tanh or the identity (``"linear"``). The weights are drawn once, from
    ``np.random.default_rng(seed)``, in this order: W (units, units) has
    round(rc_connectivity units^2) standard normal entries at random places (the rest 0) and
    is then rescaled so that its largest ``|eigenvalue|`` is exactly ``sr``; W_in (units, n_in)
    has round(input_connectivity units n_in) entries uniform in [-1, 1], times
    ``input_scaling``; b (units,) is uniform in [-1, 1], times ``bias_scaling``. W is stored
    dense, since the reservoirs here have at most a few thousand units.

    Correspondence with reservoirpy's ``Reservoir(units, lr=, sr=, input_scaling=,
    bias_scaling=, rc_connectivity=, input_connectivity=, activation=, seed=)`` (its
    ``"internal"`` equation, no noise, no feedback): the parameters mean the same; the
    differences are the defaults (reservoirpy's input_connectivity is 0.1 and its
    bias_scaling 1.0), the random draws (reservoirpy's W_in and bias are Bernoulli ±1, here
    uniform, so no seed gives the same matrices), and that ``input_scaling`` is one number
    here.

    Parameters
    ----------
    units : int
        Number of reservoir units, N.
    n_in : int
        Number of input channels.
    sr : float
        Spectral radius of W (largest ``|eigenvalue|``), positive.
    lr : float
        Leak rate, in (0, 1]; 1 is no leak.
    input_scaling : float
        Scale of W_in, at least 0.
    bias_scaling : float
        Scale of b, at least 0 (0: no bias).
    rc_connectivity : float
        Density of W, in (0, 1].
    input_connectivity : float
        Density of W_in, in (0, 1].
    activation : str
        ``"tanh"`` or ``"linear"``.
    seed : int
        Seeds every weight.

    Attributes
    ----------
    W : np.ndarray, shape (units, units)
    W_in : np.ndarray, shape (units, n_in)
    b : np.ndarray, shape (units,)

    Raises
    ------
    ValueError
        Naming the argument that is out of range, or ``rc_connectivity`` when W has no
        eigenvalue away from 0 to rescale (too few entries to form a cycle).
    """

    def __init__(self, units: int, n_in: int = 1, sr: float = 0.9, lr: float = 1.0,
                 input_scaling: float = 1.0, bias_scaling: float = 0.0,
                 rc_connectivity: float = 0.1, input_connectivity: float = 1.0,
                 activation: str = "tanh", seed: int = 0) -> None:
        self.units = check_positive(units, "units", integer=True)
        self.n_in = check_positive(n_in, "n_in", integer=True)
        self.sr = float(check_positive(sr, "sr"))
        self.lr = check_number(lr, "lr", 0, 1, low_open=True)
        self.input_scaling = check_number(input_scaling, "input_scaling", 0)
        self.bias_scaling = check_number(bias_scaling, "bias_scaling", 0)
        self.rc_connectivity = check_number(rc_connectivity, "rc_connectivity", 0, 1,
                                            low_open=True)
        self.input_connectivity = check_number(input_connectivity, "input_connectivity", 0, 1,
                                               low_open=True)
        self.activation = check_choice(activation, "activation", ESN_ACTIVATIONS)
        self.seed = seed
        rng = np.random.default_rng(seed)
        W = scipy.sparse.random_array((units, units), density=self.rc_connectivity, rng=rng,
                                      data_sampler=rng.standard_normal).toarray()
        rho = float(np.max(np.abs(np.linalg.eigvals(W))))
        # A W without a cycle is nilpotent: all eigenvalues 0, nothing to rescale.
        if not rho > 1e-8 * np.abs(W).max(initial=0.0):
            raise ValueError(f"rc_connectivity: W ({W.astype(bool).sum()} nonzero entries) "
                             f"has spectral radius 0; expected a larger rc_connectivity "
                             f"or more units, got {rc_connectivity!r}")
        self.W = W * (self.sr / rho)                                     # (N, N)
        uniform = functools.partial(rng.uniform, -1.0, 1.0)
        self.W_in = self.input_scaling * scipy.sparse.random_array(
            (units, n_in), density=self.input_connectivity, rng=rng,
            data_sampler=uniform).toarray()                              # (N, n_in)
        self.b = self.bias_scaling * uniform(size=units)                 # (N,)

    def __repr__(self):
        names = ("units", "n_in", "sr", "lr", "input_scaling", "bias_scaling",
                 "rc_connectivity", "input_connectivity", "activation", "seed")
        return f"ESN({', '.join(f'{k}={getattr(self, k)!r}' for k in names)})"

    def states(self, inputs: np.ndarray) -> np.ndarray:
        """Run the reservoir from x_0 = 0 and return every state x_1 .. x_T.

        ``states[t]`` is the state after reading ``inputs[t]``. A batch (T, B, n_in) runs B
        independent sequences at once.

        Parameters
        ----------
        inputs : np.ndarray, shape (T,), (T, n_in) or (T, B, n_in)
            The input sequence; (T,) only when ``n_in == 1``.

        Returns
        -------
        np.ndarray, shape (T, units) or (T, B, units)
            float64; (T, units) for inputs (T,) or (T, n_in).

        Raises
        ------
        ValueError
            Naming ``inputs`` if its shape does not fit ``n_in`` or it holds NaN or Inf.
        """
        u = check_array(inputs, "inputs", dtype=np.float64)
        if u.ndim == 1:
            u = u[:, None]
        if u.ndim not in (2, 3) or u.shape[-1] != self.n_in:
            raise ValueError(f"inputs: expected shape (T,), (T, n_in) or (T, B, n_in) with "
                             f"n_in = {self.n_in}, got {np.shape(inputs)}")
        f = np.tanh if self.activation == "tanh" else (lambda z: z)
        drive = u @ self.W_in.T + self.b                                 # (T, [B,] N)
        x = np.zeros(drive.shape[1:])
        out = np.empty_like(drive)
        for t in range(len(drive)):
            x = (1.0 - self.lr) * x + self.lr * f(x @ self.W.T + drive[t])
            out[t] = x
        return out


def ridge(states: np.ndarray, targets: np.ndarray, reg: float,
          washout: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fit a ridge-regression readout with an unpenalised bias: prediction =
    ``states @ W_out.T + b_out``.

    The first ``washout`` steps of every sequence are dropped (the reservoir's transient from
    x_0 = 0), then time and batch are flattened into rows X (n, N) and Y (n, n_out). The fit
    minimises ||X W_out^T + b_out - Y||^2 + reg ||W_out||^2, which, after centring
    (Xc = X - mean X, Yc = Y - mean Y), is the solution of the normal equations ::

        (Xc^T Xc + reg I) W_out^T = Xc^T Yc,    b_out = mean Y - W_out mean X.

    They are solved by Cholesky (``scipy.linalg.solve(assume_a="pos")``). If their matrix is
    singular or ill-conditioned to working precision (possible only for tiny ``reg``, and
    certain when reg = 0 and the columns of Xc are dependent) the same problem is solved by
    least squares on [Xc; sqrt(reg) I] (``np.linalg.lstsq``), which for reg = 0 gives the
    minimum-norm W_out.

    reservoirpy's ``Ridge(ridge=reg)`` adds reg to the bias's diagonal entry too, so it also
    shrinks the bias, and stores its ``Wout`` transposed, (N, n_out).

    Parameters
    ----------
    states : np.ndarray, shape (T, N) or (T, B, N)
        Reservoir states, time first.
    targets : np.ndarray, shape (T, n_out) or (T, B, n_out)
        Targets, the same T (and B) as ``states``.
    reg : float
        The ridge penalty, at least 0.
    washout : int
        Number of first steps of each sequence to drop, in [0, T).

    Returns
    -------
    W_out : np.ndarray, shape (n_out, N)
        float64.
    b_out : np.ndarray, shape (n_out,)
        float64.

    Raises
    ------
    ValueError
        Naming ``states``, ``targets``, ``reg`` or ``washout`` when it is invalid.
    """
    X = check_array(states, "states", dtype=np.float64)
    if X.ndim not in (2, 3):
        raise ValueError(f"states: expected a 2-D (T, N) or 3-D (T, B, N) array, "
                         f"got shape {X.shape}")
    Y = check_array(targets, "targets", shape=X.shape[:-1] + (None,), dtype=np.float64)
    reg = check_number(reg, "reg", 0)
    washout = _check_washout(washout, X.shape[0])
    X = X[washout:].reshape(-1, X.shape[-1])                             # (n, N)
    Y = Y[washout:].reshape(-1, Y.shape[-1])                             # (n, n_out)
    x_mean, y_mean = X.mean(axis=0), Y.mean(axis=0)
    Xc, Yc = X - x_mean, Y - y_mean
    gram = Xc.T @ Xc + reg * np.eye(X.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
        try:
            W_out = scipy.linalg.solve(gram, Xc.T @ Yc, assume_a="pos").T
        except (scipy.linalg.LinAlgError, scipy.linalg.LinAlgWarning):
            design = np.vstack([Xc, np.sqrt(reg) * np.eye(X.shape[1])])
            padded = np.vstack([Yc, np.zeros((X.shape[1], Y.shape[1]))])
            W_out = np.linalg.lstsq(design, padded, rcond=None)[0].T
    return W_out, y_mean - W_out @ x_mean


def memory_capacity(states: np.ndarray, inputs: np.ndarray, k_max: int, reg: float = 1e-8,
                    washout: int = 0,
                    test_fraction: float = 0.2) -> tuple[float, np.ndarray]:
    """Jaeger's memory capacity of a reservoir, scored on held-out steps.

    ``states[t]`` is the state after reading ``inputs[t]``. For every delay k = 1 .. k_max the
    target at step t is u(t - k). All delays use the same steps, t = washout + k_max .. T - 1
    (n = T - washout - k_max of them), so every target exists and the delays are compared on
    equal terms. In time order, the first n_train = n - n_test steps train and the last
    n_test = round(test_fraction n) test (Python's ``round``). One :func:`ridge` readout
    (with bias) fits all delays at once on the training steps; on the test steps ::

        MC_k = corr(prediction_k, u(t - k))^2   (squared Pearson correlation),
        MC = sum_k MC_k,

    with MC_k = 0 where the prediction or the target is exactly constant (0/0). Drive
    the reservoir with i.i.d. inputs (e.g. uniform in [-1, 1]); then MC <= N up to the
    finite-sample factor described in the module's docstring.

    Parameters
    ----------
    states : np.ndarray, shape (T, N)
        Reservoir states.
    inputs : np.ndarray, shape (T,)
        The scalar input that drove them.
    k_max : int
        The largest delay, in [1, T - washout - 4] (at least 4 steps must remain).
    reg : float
        The readout's ridge penalty, at least 0.
    washout : int
        Number of first steps never used as samples, in [0, T).
    test_fraction : float
        Fraction of the n steps held out for scoring, in (0, 1); both parts need at least 2
        steps.

    Returns
    -------
    mc : float
        The memory capacity, ``mc_k.sum()``.
    mc_k : np.ndarray, shape (k_max,)
        ``mc_k[k - 1]`` is MC_k, in [0, 1].

    Raises
    ------
    ValueError
        Naming the argument that is invalid: ``states`` not 2-D or not finite, ``inputs`` of
        another length, ``k_max`` too large, ``reg`` negative, ``washout`` out of range, or
        ``test_fraction`` outside (0, 1) or leaving fewer than 2 steps in a part.
    """
    X = check_array(states, "states", ndim=2, dtype=np.float64)
    T = X.shape[0]
    u = check_array(inputs, "inputs", shape=(T,), dtype=np.float64)
    washout = _check_washout(washout, T)
    most = T - washout - 4
    if isinstance(k_max, bool) or not isinstance(k_max, (int, np.integer)) \
            or not 1 <= k_max <= most:
        raise ValueError(f"k_max: expected an integer in [1, T - washout - 4 = {most}] (at "
                         f"least 4 steps left to train and test), got {k_max!r}")
    test_fraction = check_number(test_fraction, "test_fraction", 0, 1, True, True)
    t = np.arange(washout + k_max, T)                                    # (n,)
    n_test = round(test_fraction * len(t))
    n_train = len(t) - n_test
    if min(n_train, n_test) < 2:
        raise ValueError(f"test_fraction: expected a split of the n = {len(t)} usable steps "
                         f"with at least 2 to train and 2 to test, got {test_fraction!r} "
                         f"({n_train} train, {n_test} test)")
    delayed = u[t[:, None] - np.arange(1, k_max + 1)]                    # (n, k_max)
    W_out, b_out = ridge(X[t[:n_train]], delayed[:n_train], reg)
    pred = X[t[n_train:]] @ W_out.T + b_out                              # (n_test, k_max)
    p = pred - pred.mean(axis=0)
    y = delayed[n_train:] - delayed[n_train:].mean(axis=0)
    cov2 = np.sum(p * y, axis=0) ** 2
    var2 = np.sum(p * p, axis=0) * np.sum(y * y, axis=0)
    mc_k = np.divide(cov2, var2, out=np.zeros(k_max), where=var2 > 0)
    return float(mc_k.sum()), mc_k
