"""Optimizers that update a ``params`` dict in place from a ``grads`` dict with the same keys
(Chapter 4).

Each update rule is written once in NumPy (``_step_numpy``), which the chapter shows; the
``"numba"`` and ``"cuda"`` backends run the same rule fused over all parameters.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .backend import DEFAULT, check_backend, kernels
from .checks import check_choice, check_number, check_positive


class Optimizer:
    """Base class: holds the learning rate, the step count and per-parameter state.

    Parameters
    ----------
    lr : float
        The learning rate η, > 0.
    backend : str
        Where :meth:`step` runs: ``"numpy"``, ``"numba"`` or ``"cuda"``.

    Raises
    ------
    ValueError
        If ``lr`` is not a positive number or ``backend`` is not one of the three.
    """

    #: names of the per-parameter state arrays, created as zeros on the first step
    slots = ()
    #: which compiled kernel runs this rule; subclasses inherit their parent's
    rule = None

    def __init__(self, lr: float, backend: str = DEFAULT) -> None:
        self.lr = check_positive(lr, "lr")
        self.backend = check_backend(backend)
        self.t = 0
        self.state = {}
        self._flat_state, self._flat_keys = None, None
        self._kernels = None

    def step(self, params: dict[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        """Apply one update to every array of ``params`` in place.

        The state of each key (momentum, Adam's moments) is created as zeros on its first step.

        Parameters
        ----------
        params : dict[str, np.ndarray]
            The arrays to update, in place.
        grads : dict[str, np.ndarray]
            The gradient (or a learning rule's update), with the keys and shapes of ``params``.

        Raises
        ------
        ValueError
            Naming the key, if ``grads`` has other keys or shapes than ``params``, or the
            optimizer's state was made for another shape or dtype (nothing is updated then); or,
            on the ``"numba"`` and ``"cuda"`` backends, a parameter is not C-contiguous.
        """
        if self.backend != "numpy" and params.keys() == grads.keys():
            # The fused kernels read flat views: a gradient of other dtype or layout is copied.
            grads = {k: np.ascontiguousarray(grads[k], dtype=p.dtype)
                     for k, p in params.items()}
        self.bind(params, grads)()

    def bind(self, params: dict[str, np.ndarray],
             grads: Mapping[str, np.ndarray]) -> Callable[[], None]:
        """Check ``params`` and ``grads`` once and return ``update()``, which applies one step
        to ``params`` from what ``grads`` holds when it is called, with no checks: for a loop
        that refills the same gradient arrays at every step (the online learners of Chapters 6
        and 9). ``step(params, grads)`` is ``bind(params, grads)()``.

        Parameters
        ----------
        params : dict[str, np.ndarray]
            The arrays to update, in place, at every call of ``update()``.
        grads : dict[str, np.ndarray]
            The arrays that will hold the gradient, with the keys and shapes of ``params``; on
            the ``"numba"`` and ``"cuda"`` backends also their dtypes, and C-contiguous.

        Returns
        -------
        Callable[[], None]
            ``update()``: one step, counted in ``t``. It keeps the arrays it was bound to, so
            refill ``grads`` in place; arrays put into the dicts later are not seen.

        Raises
        ------
        ValueError
            As :meth:`step`, naming the key; also if a gradient array cannot be read in place.
            Nothing is updated or created then.
        """
        if params.keys() != grads.keys():
            raise ValueError(f"grads: expected the same keys as params {sorted(params)}, "
                             f"got {sorted(grads)}")
        fused = self.backend != "numpy"
        for k, p in params.items():
            g = grads[k]
            if g.shape != p.shape:
                raise ValueError(f"grads[{k!r}]: expected shape {p.shape}, got {g.shape}")
            # A model rebuilt with the same names but other shapes must not meet the old state:
            # the fused kernels index the state by the parameter's size and would write past its
            # end.
            for s in self.state.get(k, ()):
                if s.shape != p.shape or s.dtype != p.dtype:
                    raise ValueError(
                        f"params[{k!r}]: the optimizer's state was made for a "
                        f"{s.dtype.name} array of shape {s.shape}, got {p.dtype.name} "
                        f"{p.shape}; use a new optimizer for a new model")
            if fused and not p.flags.c_contiguous:
                raise ValueError(f"params[{k!r}]: the {self.backend} optimizer updates in "
                                 "place and needs a C-contiguous array; use "
                                 "np.ascontiguousarray when assigning it")
            if fused and (g.dtype != p.dtype or not g.flags.c_contiguous):
                kind = "" if g.flags.c_contiguous else "non-contiguous "
                raise ValueError(f"grads[{k!r}]: expected a C-contiguous {p.dtype.name} "
                                 f"array, which the {self.backend} update reads in place, got "
                                 f"a {kind}{g.dtype.name} array")
        for k, p in params.items():
            if k not in self.state:
                self.state[k] = tuple(np.zeros_like(p) for _ in self.slots)
        if not fused:
            arrays = [(p, grads[k], self.state[k]) for k, p in params.items()]

            def update():
                self.t += 1
                for p, g, state in arrays:
                    self._step_numpy(p, g, *state)
            return update
        if self._kernels is None:
            self._kernels = kernels("optim", self.backend)
        keys = tuple(params)
        if self._flat_keys != keys:
            # Flat views of the state in the order of params' keys, remade only when that order
            # or the set of keys changes.
            self._flat_keys = keys
            self._flat_state = [tuple(self.state[k][s].reshape(-1) for k in keys)
                                for s in range(len(self.slots))]
        # Flat views of C-contiguous arrays: the kernels update the views, so params and state.
        ps = tuple(p.reshape(-1) for p in params.values())
        gs = tuple(grads[k].reshape(-1) for k in keys)
        fused_step, rule, state = self._kernels.step, self.rule, self._flat_state

        def update():
            self.t += 1
            fused_step(rule, ps, gs, state, self.hyper())
        return update

    def hyper(self) -> tuple[float, ...]:
        """The rule's scalar hyper-parameters for this step, as a tuple of floats.

        Returns
        -------
        tuple of float
            What the fused kernels take: ``(lr,)`` here; subclasses add theirs.
        """
        return (self.lr,)


class SGD(Optimizer):
    """Plain gradient descent: θ ← θ − η g.

    Parameters
    ----------
    lr : float
        The learning rate η, > 0.
    backend : str
        ``"numpy"``, ``"numba"`` or ``"cuda"``.
    """

    rule = "sgd"

    def _step_numpy(self, p, g):
        p -= self.lr * g


class Momentum(Optimizer):
    """Heavy-ball momentum: v ← β v − η g, θ ← θ + v. With ``nesterov=True`` the step looks
    ahead: θ ← θ + β v − η g (Sutskever et al. 2013).

    Parameters
    ----------
    lr : float
        The learning rate η, > 0.
    beta : float
        The momentum β, in [0, 1).
    nesterov : bool
        Whether to take Nesterov's look-ahead step.
    backend : str
        ``"numpy"``, ``"numba"`` or ``"cuda"``.

    Raises
    ------
    ValueError
        If ``lr``, ``beta`` or ``backend`` is invalid.
    """

    slots = ("v",)
    rule = "momentum"

    def __init__(self, lr: float, beta: float = 0.9, nesterov: bool = False,
                 backend: str = DEFAULT) -> None:
        super().__init__(lr, backend)
        self.beta = check_number(beta, "beta", 0, 1, high_open=True)
        self.nesterov = bool(nesterov)

    def _step_numpy(self, p, g, v):
        v *= self.beta
        v -= self.lr * g
        p += self.beta * v - self.lr * g if self.nesterov else v

    def hyper(self) -> tuple[float, ...]:
        return (self.lr, self.beta, float(self.nesterov))


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015): bias-corrected running means of g and g² scale each coordinate's
    step.

    Parameters
    ----------
    lr : float
        The learning rate η, > 0.
    beta1, beta2 : float
        Decay rates of the running means of g and g², in [0, 1).
    eps : float
        Added to √v̂ in the denominator, > 0.
    backend : str
        ``"numpy"``, ``"numba"`` or ``"cuda"``.

    Raises
    ------
    ValueError
        If an argument is out of range or ``backend`` is invalid.
    """

    slots = ("m", "v")
    rule = "adam"

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, backend: str = DEFAULT) -> None:
        super().__init__(lr, backend)
        self.beta1 = check_number(beta1, "beta1", 0, 1, high_open=True)
        self.beta2 = check_number(beta2, "beta2", 0, 1, high_open=True)
        self.eps = check_positive(eps, "eps")

    def _step_numpy(self, p, g, m, v):
        m *= self.beta1
        m += (1 - self.beta1) * g                  # m ≈ E[g]
        v *= self.beta2
        v += (1 - self.beta2) * g * g              # v ≈ E[g²]
        m_hat = m / (1 - self.beta1 ** self.t)     # undo the bias of starting at zero
        v_hat = v / (1 - self.beta2 ** self.t)
        p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def hyper(self) -> tuple[float, ...]:
        return (self.lr, self.beta1, self.beta2, self.eps,
                1 - self.beta1 ** self.t, 1 - self.beta2 ** self.t)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def make_optimizer(name: str, **kwargs: Any) -> Optimizer:
    """An optimizer by name: ``"sgd"``, ``"momentum"`` or ``"adam"``.

    Parameters
    ----------
    name : str
        ``"sgd"``, ``"momentum"`` or ``"adam"``.
    **kwargs
        The constructor's arguments, e.g. ``lr=0.1``.

    Returns
    -------
    Optimizer
        A new :class:`SGD`, :class:`Momentum` or :class:`Adam`.

    Raises
    ------
    ValueError
        If ``name`` is not one of the three, or an argument is invalid.
    """
    return OPTIMIZERS[check_choice(name, "optimizer", OPTIMIZERS)](**kwargs)


def grad_norm(grads: Mapping[str, np.ndarray]) -> float:
    """The joint L2 norm of every array in ``grads``.

    Parameters
    ----------
    grads : dict[str, np.ndarray]
        Arrays of any shapes.

    Returns
    -------
    float
        √(Σ over every entry of every array of its square).
    """
    return float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))


def clip_grad_norm(grads: Mapping[str, np.ndarray], max_norm: float) -> float:
    """Rescale every array of ``grads`` in place so that their joint L2 norm is at most
    ``max_norm``; return the norm before clipping. Clipping keeps the direction of an exploding
    gradient and caps its length (Pascanu et al. 2013, Chapter 5).

    Parameters
    ----------
    grads : dict[str, np.ndarray]
        The gradient, rescaled in place.
    max_norm : float
        The largest joint norm allowed, > 0.

    Returns
    -------
    float
        The joint norm before clipping (:func:`grad_norm`).

    Raises
    ------
    ValueError
        If ``max_norm`` is not a positive number.
    """
    check_positive(max_norm, "max_norm")
    norm = grad_norm(grads)
    if norm > max_norm:
        for g in grads.values():
            g *= max_norm / norm
    return norm
