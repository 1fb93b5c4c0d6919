"""Readouts trained online, one sample at a time: LMS, NLMS and RLS (FORCE) (Part IV, ch. 12).

A readout maps features z (M,) (the states of a fixed or plastic network, with a constant 1
appended for the bias) to outputs y = W z, W (n_out, M). A batch method such as ridge
(:func:`loopy_edu.reservoir.ridge`) solves for W from all samples at once; the rules here see
the samples one by one and change W after each, from the a-priori error e = target - W z.

**LMS** (Widrow & Hoff 1960), the delta rule, a stochastic-gradient step on ½‖e‖² ::

    e = target - W z,    W <- W + η e zᵀ.

**NLMS** divides the step by the power of the input, which makes it invariant to the scale of
z (with ε = 0: multiply z by c and W by 1/c and every prediction stays the same) and stable for
0 < η < 2 whatever that scale ::

    W <- W + η e zᵀ / (ε + ‖z‖²).

Both are **local**: W[i, j] changes by what it can see, its presynaptic activity z[j] and the
error e[i] of its own output unit; NLMS adds one scalar, ‖z‖², shared by every synapse (a gain
broadcast to all of them, like a neuromodulator). No synapse reads another synapse's weight.
O(M n_out) work per sample, as much as computing y.

**RLS** (recursive least squares; FORCE learning, Sussillo & Abbott 2009, is RLS on a network
whose output is fed back) keeps P (M, M), the inverse of the regularised correlation of the
inputs seen so far, and steps along the gain k = P z instead of z ::

    k = P z / (1 + zᵀ P z),    e = target - W z,
    W <- W + e kᵀ,    P <- P - k zᵀ P.

With P_0 = I / reg and W_0 = 0, after the samples z_1 .. z_n the weights are exactly ridge
regression on them with penalty reg (every weight penalised, the bias's too) ::

    W_n = (Σ_s target_s z_sᵀ) (reg I + Σ_s z_s z_sᵀ)^-1,    P_n = (reg I + Σ_s z_s z_sᵀ)^-1,

because each step is the Sherman-Morrison update of that inverse. RLS is **not synapse-local**:
the step of W[i, j] depends on (P z)[j], a mix of *every* input through P, and P's M² numbers
belong to no synapse. It costs O(M²) work and memory per sample, against LMS's O(M n_out).

Training with :func:`loopy_edu.train.train_sequences`: :func:`lms_grads` and
:func:`nlms_grads` are ``grad_fn(model, xs, targets, loss, mask)`` rules that return the
negative update direction, so that ``SGD(lr=η)`` applies η e zᵀ; :meth:`RLS.grad_fn` returns
minus the change of its own sample-by-sample pass, which only ``SGD(lr=1.0)`` applies as
computed (see there). The recurrent weights get zero updates: these rules train the readout of
whatever network produced the states, fixed or changed by another rule.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .backend import DEFAULT, kernels
from .checks import check_array, check_choice, check_number, check_positive
from .readout import check_sequences, readout_grads, sequence_loss

if TYPE_CHECKING:
    from .readout import RecurrentModel

__all__ = ["lms_step", "lms", "lms_grads", "nlms_grads", "RLS"]

#: The sample loop is sequential (each step reads the W the last one wrote), so there is no
#: CUDA kernel: a GPU would run one sample at a time.
ONLINE_BACKENDS = ("numpy", "numba")


def lms_step(W: np.ndarray, z: np.ndarray, target: np.ndarray, eta: float,
             normalized: bool = False, eps: float = 1e-6) -> np.ndarray:
    """One LMS (or NLMS) step on one sample, in place on ``W``; returns the a-priori error.

    ::

        e = target - W z,    W <- W + η e zᵀ                 (LMS)
                             W <- W + η e zᵀ / (ε + ‖z‖²)    (NLMS)

    Parameters
    ----------
    W : np.ndarray, shape (n_out, M)
        The readout, updated in place.
    z : np.ndarray, shape (M,)
        The sample's features (presynaptic activities).
    target : np.ndarray, shape (n_out,)
    eta : float
        The step size η.
    normalized : bool
        NLMS when True.
    eps : float
        ε, NLMS's guard against a zero z.

    Returns
    -------
    np.ndarray, shape (n_out,)
        e, the error before the step.
    """
    e = target - W @ z
    step = eta / (eps + z @ z) if normalized else eta
    W += step * np.outer(e, z)
    return e


def _check_readout(W: np.ndarray, X: np.ndarray, Y: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """X (n, M) and Y (n, n_out) checked against W (n_out, M), which is updated in place and so
    must be a writable C-contiguous float array."""
    if not (isinstance(W, np.ndarray) and W.dtype in (np.float32, np.float64) and W.ndim == 2
            and W.flags.c_contiguous and W.flags.writeable):
        got = (f"{W.dtype.name} array of shape {W.shape}" if isinstance(W, np.ndarray)
               else type(W).__name__)
        raise TypeError(f"W: expected a writable C-contiguous float32 or float64 2-D array "
                        f"(n_out, M), updated in place, got {got}")
    check_array(W, "W")
    X = np.ascontiguousarray(check_array(X, "X", shape=(None, W.shape[1]), dtype=W.dtype))
    Y = np.ascontiguousarray(check_array(Y, "Y", shape=(X.shape[0], W.shape[0]),
                                         dtype=W.dtype))
    return X, Y


def lms(W: np.ndarray, X: np.ndarray, Y: np.ndarray, eta: float, normalized: bool = False,
        eps: float = 1e-6, backend: str = DEFAULT) -> np.ndarray:
    """One pass of LMS (or NLMS) over the samples, in their order, updating ``W`` in place
    (:func:`lms_step` on each row).

    Parameters
    ----------
    W : np.ndarray, shape (n_out, M)
        The readout: writable, C-contiguous, float32 or float64; updated in place.
    X : np.ndarray, shape (n, M)
        The features, one sample per row (append a column of ones for a bias).
    Y : np.ndarray, shape (n, n_out)
        The targets.
    eta : float
        The step size η: positive; for NLMS in (0, 2), its stability range.
    normalized : bool
        NLMS when True, LMS when False.
    eps : float
        NLMS's ε (>= 0; 0 only if no row of X is zero).
    backend : str
        ``"numpy"`` (the reference) or ``"numba"``.

    Returns
    -------
    np.ndarray, shape (n, n_out)
        The a-priori error of every sample (its learning curve).

    Raises
    ------
    TypeError
        If ``W`` is not a writable C-contiguous float array.
    ValueError
        Naming ``X``, ``Y``, ``eta``, ``eps`` or ``backend`` when it is invalid.
    """
    X, Y = _check_readout(W, X, Y)
    if normalized:
        eta = check_number(eta, "eta", 0, 2, low_open=True, high_open=True)
        eps = check_number(eps, "eps", 0)
        if eps == 0 and not np.all(np.any(X != 0, axis=1)):
            raise ValueError("eps: expected eps > 0 when a row of X is zero (NLMS divides by "
                             "eps + |z|^2), got 0")
    else:
        eta = float(check_positive(eta, "eta"))
    if check_choice(backend, "backend", ONLINE_BACKENDS) == "numba":
        return kernels("online_readout", "numba").lms(W, X, Y, eta, normalized, eps)
    return np.array([lms_step(W, z, y, eta, normalized, eps) for z, y in zip(X, Y)])


def _readout_features(model: RecurrentModel, xs, targets, loss, mask):
    """The checked targets (T, B, n_out) and mask (T, B), the model's states hs (T, B, N) and
    its outputs ys (T, B, n_out)."""
    xs, targets, mask, _ = check_sequences(xs, targets, mask, model.n_in, model.n_out,
                                           model.dtype, loss)
    hs, ys = model.forward(xs)
    return targets, mask, hs, ys


def _readout_only(model, gW_out, gb_out):
    """A grads dict with the readout's entries and zeros for every other parameter."""
    grads = {k: np.zeros_like(p) for k, p in model.params.items()}
    grads["W_out"], grads["b_out"] = gW_out.astype(model.dtype), gb_out.astype(model.dtype)
    return grads


def _lms_grads(model, xs, targets, loss, mask, normalized, eps):
    targets, mask, hs, ys = _readout_features(model, xs, targets, loss, mask)
    value, dys = sequence_loss(ys, targets, mask, loss)                  # dys = -e m / B
    if normalized:
        # ‖z‖² of z = [h, 1]: the bias is a weight on a constant presynaptic 1.
        dys = dys / (eps + 1.0 + np.sum(hs * hs, axis=-1))[..., None]
    gW_out, gb_out, _ = readout_grads(model.params["W_out"], hs, dys)
    return value, _readout_only(model, gW_out, gb_out)


def lms_grads(model: RecurrentModel, xs: np.ndarray, targets: np.ndarray, loss: str,
              mask: np.ndarray | None = None) -> tuple[float, dict[str, np.ndarray]]:
    """LMS as a learning rule for :func:`loopy_edu.train.train_sequences`: the loss, and minus
    LMS's update direction for the readout (zeros for every other parameter).

    With the loss's error e = target - y on each masked-in step ("mse"; for "xent" the error of
    the softmax, target - softmax(y), the delta rule of a softmax unit), the "gradient" is ::

        g_W_out = -(1/B) Σ_t,b m_tb e_tb h_tbᵀ,    g_b_out = -(1/B) Σ_t,b m_tb e_tb,

    so ``SGD(lr=η)`` applies LMS with step η (summed over a batch's samples at fixed W; on one
    sample it is exactly W <- W + η e zᵀ). It is the exact gradient of the loss with respect to
    the readout, so any optimizer may apply it.

    Parameters
    ----------
    model : RecurrentModel
        A model with a readout ``W_out``, ``b_out``, e.g.
        :class:`loopy_edu.loopy.LoopyNetwork`.
    xs : np.ndarray, shape (T, n_in) or (T, B, n_in)
    targets : np.ndarray, shape (T, n_out) or (T, B, n_out)
    loss : str
        ``"mse"`` or ``"xent"``.
    mask : np.ndarray, shape (T,) or (T, B), or None

    Returns
    -------
    loss : float
        The loss before the update.
    grads : dict[str, np.ndarray]
        Keyed and shaped like ``model.params``.

    Raises
    ------
    ValueError
        Naming the argument or parameter key that is invalid.
    """
    return _lms_grads(model, xs, targets, loss, mask, False, 0.0)


def nlms_grads(model: RecurrentModel, xs: np.ndarray, targets: np.ndarray, loss: str,
               mask: np.ndarray | None = None,
               eps: float = 1e-6) -> tuple[float, dict[str, np.ndarray]]:
    """NLMS as a learning rule for :func:`loopy_edu.train.train_sequences`: as
    :func:`lms_grads`, each sample's term divided by the power of its features z = [h, 1] ::

        g_W_out = -(1/B) Σ_t,b m_tb e_tb h_tbᵀ / (ε + ‖h_tb‖² + 1),

    so ``SGD(lr=η)``, η in (0, 2), applies NLMS. Pass another ε with
    ``functools.partial(nlms_grads, eps=...)``.

    Parameters
    ----------
    model : RecurrentModel
        A model with a readout ``W_out``, ``b_out``.
    xs : np.ndarray, shape (T, n_in) or (T, B, n_in)
    targets : np.ndarray, shape (T, n_out) or (T, B, n_out)
    loss : str
        ``"mse"`` or ``"xent"``.
    mask : np.ndarray, shape (T,) or (T, B), or None
    eps : float
        ε >= 0.

    Returns
    -------
    loss : float
        The loss before the update.
    grads : dict[str, np.ndarray]
        Keyed and shaped like ``model.params``.

    Raises
    ------
    ValueError
        Naming the argument or parameter key that is invalid.
    """
    return _lms_grads(model, xs, targets, loss, mask, True, check_number(eps, "eps", 0))


class RLS:
    """Recursive least squares: a readout W (n_out, M) and the inverse correlation P (M, M),
    updated one sample at a time (the module's docstring has the rule and why it is not local).

    W starts at 0 and P at I / reg, so after any samples W is the ridge solution (penalty
    ``reg`` on every weight) on them. Everything is float64: P in float32 soon stops being
    positive definite.

    Parameters
    ----------
    n_features : int
        M, the length of z (the states plus 1 for a bias).
    n_out : int
        The number of outputs.
    reg : float
        The ridge penalty, > 0: P_0 = I / reg.
    backend : str
        Where :meth:`fit` runs: ``"numpy"`` or ``"numba"``.

    Attributes
    ----------
    W : np.ndarray, shape (n_out, n_features)
    P : np.ndarray, shape (n_features, n_features)
    n_seen : int
        The samples learned so far.

    Raises
    ------
    ValueError
        Naming ``n_features``, ``n_out``, ``reg`` or ``backend`` when it is invalid.
    """

    def __init__(self, n_features: int, n_out: int, reg: float = 1.0,
                 backend: str = DEFAULT) -> None:
        self.n_features = check_positive(n_features, "n_features", integer=True)
        self.n_out = check_positive(n_out, "n_out", integer=True)
        self.reg = float(check_positive(reg, "reg"))
        self.backend = check_choice(backend, "backend", ONLINE_BACKENDS)
        self.W = np.zeros((n_out, n_features))                            # (n_out, M)
        self.P = np.eye(n_features) / self.reg                            # (M, M)
        self.n_seen = 0

    def __repr__(self):
        return (f"RLS(n_features={self.n_features}, n_out={self.n_out}, reg={self.reg!r}, "
                f"backend={self.backend!r}, n_seen={self.n_seen})")

    def update(self, z: np.ndarray, target: np.ndarray) -> np.ndarray:
        """One RLS step on one sample, in place on W and P; returns the a-priori error.

        P is updated as P - g gᵀ with g = P z / sqrt(1 + zᵀ P z), which equals P - k zᵀ P and
        keeps P exactly symmetric in floating point.

        Parameters
        ----------
        z : np.ndarray, shape (n_features,)
        target : np.ndarray, shape (n_out,)

        Returns
        -------
        np.ndarray, shape (n_out,)
            e = target - W z, before the step.
        """
        Pz = self.P @ z
        denom = 1.0 + z @ Pz
        e = target - self.W @ z
        self.W += np.outer(e, Pz / denom)
        g = Pz / np.sqrt(denom)
        self.P -= np.outer(g, g)
        self.n_seen += 1
        return e

    def fit(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """One pass of :meth:`update` over the samples, in order.

        Parameters
        ----------
        X : np.ndarray, shape (n, n_features)
        Y : np.ndarray, shape (n, n_out)

        Returns
        -------
        np.ndarray, shape (n, n_out)
            The a-priori error of every sample.

        Raises
        ------
        ValueError
            Naming ``X`` or ``Y`` if its shape does not fit or it holds NaN or Inf.
        """
        X, Y = _check_readout(self.W, X, Y)
        if self.backend == "numba":
            errors = kernels("online_readout", "numba").rls(self.W, self.P, X, Y)
            self.n_seen += len(X)
            return errors
        return np.array([self.update(z, y) for z, y in zip(X, Y)])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Outputs W z for each row of X.

        Parameters
        ----------
        X : np.ndarray, shape (n, n_features)

        Returns
        -------
        np.ndarray, shape (n, n_out)
        """
        return check_array(X, "X", shape=(None, self.n_features), dtype=np.float64) @ self.W.T

    def grad_fn(self, model: RecurrentModel, xs: np.ndarray, targets: np.ndarray, loss: str,
                mask: np.ndarray | None = None) -> tuple[float, dict[str, np.ndarray]]:
        """RLS as a learning rule for :func:`loopy_edu.train.train_sequences`, with
        ``SGD(lr=1.0)`` and no clipping: ``grad_fn=rls.grad_fn``.

        It runs :meth:`fit` on the masked-in steps' features z = [h, 1] (in time order, then
        batch order) with the error target - y of the linear output (least squares, also for
        "xent" tasks) and returns minus the change of W, split into W_out and b_out (zeros for
        every other parameter). RLS's P assumes that change was applied exactly, so only
        SGD with lr = 1 is right: the next call checks that the model's readout is the one RLS
        left, and raises if an optimizer scaled, clipped or accumulated the step. On the first
        call (no sample seen yet) RLS starts from the model's readout instead of 0, so it fits
        ridge with the penalty reg ‖W - W_start‖².

        Parameters
        ----------
        model : RecurrentModel
            A model with states of n_features - 1 units and ``n_out`` outputs.
        xs : np.ndarray, shape (T, n_in) or (T, B, n_in)
        targets : np.ndarray, shape (T, n_out) or (T, B, n_out)
        loss : str
            ``"mse"`` or ``"xent"``: the loss reported, not the one fitted.
        mask : np.ndarray, shape (T,) or (T, B), or None
            0 or 1 on each step (RLS counts a sample once or not at all).

        Returns
        -------
        loss : float
            The loss before the update.
        grads : dict[str, np.ndarray]
            Keyed and shaped like ``model.params``.

        Raises
        ------
        ValueError
            Naming ``model`` if its size does not fit, ``mask`` if it is not 0/1, or
            ``model.params`` if its readout is not the one the last call left.
        """
        if (model.n_rec + 1, model.n_out) != (self.n_features, self.n_out):
            raise ValueError(f"model: expected n_rec + 1 = {self.n_features} features and "
                             f"n_out = {self.n_out} outputs for this RLS, got n_rec = "
                             f"{model.n_rec}, n_out = {model.n_out}")
        targets, mask, hs, ys = _readout_features(model, xs, targets, loss, mask)
        if np.any((mask != 0) & (mask != 1)):
            raise ValueError("mask: expected 0 or 1 on every step (RLS counts a sample once or "
                             "not at all), got other weights")
        value = sequence_loss(ys, targets, mask, loss)[0]
        current = np.hstack([model.params["W_out"], model.params["b_out"][:, None]])
        if self.n_seen == 0:
            self.W[:] = current
        else:
            drift = float(np.abs(current - self.W).max())
            if drift > 64 * np.finfo(model.dtype).eps * (1.0 + np.abs(self.W).max()):
                raise ValueError(
                    f"model.params: expected W_out, b_out as the last RLS step left them, got "
                    f"a difference of {drift:.3g}; apply RLS.grad_fn with SGD(lr=1.0), no "
                    "clip and no other optimizer (P assumes its step was applied as is)")
        on = mask > 0                                                     # (T, B)
        if not on.any():                                                  # nothing to learn
            return value, _readout_only(model, np.zeros_like(model.params["W_out"]),
                                        np.zeros_like(model.params["b_out"]))
        Z = np.hstack([hs[on], np.ones((int(on.sum()), 1))])              # (n, M)
        self.fit(Z.astype(np.float64), targets[on].astype(np.float64))
        delta = current - self.W                                          # minus the change
        return value, _readout_only(model, delta[:, :-1], delta[:, -1])
