"""Optimizers that update a ``params`` dict in place from a ``grads`` dict with the same keys (Chapter 4).

Each update rule is written once in NumPy (``_step_numpy``), which the chapter shows; the ``"numba"`` and
``"cuda"`` backends run the same rule fused over all parameters.
"""
import numpy as np

from .backend import DEFAULT, check_backend, kernels
from .checks import check_choice, check_number, check_positive


class Optimizer:
    """Base class: holds the learning rate, the step count and per-parameter state."""

    #: names of the per-parameter state arrays, created as zeros on the first step
    slots = ()
    #: which compiled kernel runs this rule; subclasses inherit their parent's
    rule = None

    def __init__(self, lr, backend=DEFAULT):
        self.lr = check_positive(lr, "lr")
        self.backend = check_backend(backend)
        self.t = 0
        self.state = {}
        self._flat_state, self._flat_keys = None, None
        self._kernels = None

    def step(self, params, grads):
        """Apply one update to every array of ``params`` in place."""
        if params.keys() != grads.keys():
            raise ValueError(f"grads: expected the same keys as params {sorted(params)}, "
                             f"got {sorted(grads)}")
        for k, p in params.items():
            if grads[k].shape != p.shape:
                raise ValueError(f"grads[{k!r}]: expected shape {p.shape}, got {grads[k].shape}")
            # A model rebuilt with the same names but other shapes must not meet the old state: the
            # fused kernels index the state by the parameter's size and would write past its end.
            for s in self.state.get(k, ()):
                if s.shape != p.shape or s.dtype != p.dtype:
                    raise ValueError(
                        f"params[{k!r}]: the optimizer's state was made for a {s.dtype.name} array of "
                        f"shape {s.shape}, got {p.dtype.name} {p.shape}; use a new optimizer for a "
                        "new model")
        for k, p in params.items():
            if k not in self.state:
                self.state[k] = tuple(np.zeros_like(p) for _ in self.slots)
        self.t += 1
        if self.backend == "numpy":
            for k, p in params.items():
                self._step_numpy(p, grads[k], *self.state[k])
        else:
            self._step_fused(params, grads)

    def _step_fused(self, params, grads):
        if self._kernels is None:
            self._kernels = kernels("optim", self.backend)
        keys = tuple(params)
        if self._flat_keys != keys:
            # Flat views of the state in the order of params' keys, remade only when that order or the
            # set of keys changes: the kernels update the views, and so the state.
            self._flat_keys = keys
            self._flat_state = [tuple(self.state[k][s].reshape(-1) for k in params)
                                for s in range(len(self.slots))]
        ps, gs = [], []
        for k, p in params.items():
            if not p.flags.c_contiguous:
                raise ValueError(f"params[{k!r}]: the {self.backend} optimizer updates in place and needs a "
                                 "C-contiguous array; use np.ascontiguousarray when assigning it")
            ps.append(p.reshape(-1))  # a view, so the update lands in params
            gs.append(np.ascontiguousarray(grads[k], dtype=p.dtype).reshape(-1))
        self._kernels.step(self.rule, tuple(ps), tuple(gs), self._flat_state, self.hyper())

    def hyper(self):
        """The rule's scalar hyper-parameters for this step, as a tuple of floats."""
        return (self.lr,)


class SGD(Optimizer):
    """Plain gradient descent: θ ← θ − η g."""

    rule = "sgd"

    def _step_numpy(self, p, g):
        p -= self.lr * g


class Momentum(Optimizer):
    """Heavy-ball momentum: v ← β v − η g, θ ← θ + v. With ``nesterov=True`` the step looks ahead:
    θ ← θ + β v − η g (Sutskever et al. 2013)."""

    slots = ("v",)
    rule = "momentum"

    def __init__(self, lr, beta=0.9, nesterov=False, backend=DEFAULT):
        super().__init__(lr, backend)
        self.beta = check_number(beta, "beta", 0, 1, high_open=True)
        self.nesterov = bool(nesterov)

    def _step_numpy(self, p, g, v):
        v *= self.beta
        v -= self.lr * g
        p += self.beta * v - self.lr * g if self.nesterov else v

    def hyper(self):
        return (self.lr, self.beta, float(self.nesterov))


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015): bias-corrected running means of g and g² scale each coordinate's step."""

    slots = ("m", "v")
    rule = "adam"

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, backend=DEFAULT):
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

    def hyper(self):
        return (self.lr, self.beta1, self.beta2, self.eps,
                1 - self.beta1 ** self.t, 1 - self.beta2 ** self.t)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def make_optimizer(name, **kwargs):
    """An optimizer by name: ``"sgd"``, ``"momentum"`` or ``"adam"``."""
    return OPTIMIZERS[check_choice(name, "optimizer", OPTIMIZERS)](**kwargs)


def grad_norm(grads):
    """The joint L2 norm of every array in ``grads``."""
    return float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))


def clip_grad_norm(grads, max_norm):
    """Rescale every array of ``grads`` in place so that their joint L2 norm is at most ``max_norm``;
    return the norm before clipping. Clipping keeps the direction of an exploding gradient and caps its
    length (Pascanu et al. 2013, Chapter 5)."""
    check_positive(max_norm, "max_norm")
    norm = grad_norm(grads)
    if norm > max_norm:
        for g in grads.values():
            g *= max_norm / norm
    return norm
