"""One code path that trains a loopy network on any task with local learning only (Chapter 12,
the moonshot and the adding problem).

A :class:`LocalRule` says how the network's own synapses change, and :func:`train_local`
trains it on fresh batches ``task_fn(step)`` (a :class:`loopy_edu.tasks.Task`, as
:func:`loopy_edu.train.train_sequences` takes them), whatever the task. Each batch:

1. the rule runs the network over the batch and gives its states h_t (T, B, N);
2. an online readout learns from the masked-in steps, one sample z = [h_t, 1] after another,
   in time order then batch order, by NLMS (or LMS) on the linear output ::

       e = target − W z,    W ← W + η e zᵀ / (ε + ‖z‖²)

   (for a ``"xent"`` task the target is the one-hot class and the prediction the argmax of
   W z, as in :func:`loopy_edu.experiments.loopy_readouts`);
3. a persistent rule then changes the synapses (:func:`loopy_edu.plasticity.adapt`).

The rules, and why each is local:

- ``"off"``: the network stays as drawn (the plasticity-off ablation is the same call).
- ``"fast_weights"``: Hebbian fast weights within each sequence (Ba et al. 2016;
  :func:`loopy_edu.plasticity.fast_weight_states`), A_t = λ A_{t−1} + η h_t h_tᵀ, rebuilt
  from 0 in every sequence: each entry changes with the activity of its own two units. With
  λ = 1 the matrix holds every second-order product of the sequence's states, such as a
  value times the marker that sat beside it at the same step.
- ``"hebbian"``, ``"oja"``, ``"anti_oja"``, ``"bcm"``, ``"ip"``: the slow unsupervised rules of
  :mod:`loopy_edu.plasticity`, run over each training batch and kept from batch to batch
  (pre/post activity, the weight, and a per-unit average, gain or bias).

The readout is local (:mod:`loopy_edu.online_readout`): a weight reads its presynaptic
activity and its output's error, and NLMS one broadcast scalar, ‖z‖². No rule here reads a
gradient through time, no input line is wired to a gate, and there is no memory but the
network's activity and synapses.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .checks import check_choice, check_number, check_positive
from .online_readout import lms
from .plasticity import NORMS, RULES as SLOW_RULES, adapt, fast_weight_states
from .readout import sequence_loss
from .tasks import Task, accuracy
from .train import History

if TYPE_CHECKING:
    from .loopy import LoopyNetwork

#: The rules a :class:`LocalRule` may name.
RULES = ("off", "fast_weights") + SLOW_RULES[1:]
#: The online readouts: both local; NLMS's step is divided by ‖z‖².
READOUTS = ("nlms", "lms")
#: An "mse" task's output counts as right when every masked-in output is this close
#: (Hochreiter & Schmidhuber's criterion on the adding problem).
TOLERANCE = 0.04


@dataclass(frozen=True)
class LocalRule:
    """A local rule on a loopy network's synapses and its settings.

    Parameters
    ----------
    name : str
        One of :data:`RULES`.
    eta : float
        The rule's learning rate (>= 0): η of the fast weights, or of the slow rule.
    decay : float
        λ of the fast weights, in [0, 1].
    inner_steps : int
        The fast weights' inner loop, S (>= 1).
    normalise : str
        Synaptic normalisation after a slow synaptic rule: one of
        :data:`loopy_edu.plasticity.NORMS`.

    Raises
    ------
    ValueError
        Naming the field that is invalid.
    """

    name: str = "fast_weights"
    eta: float = 0.01
    decay: float = 1.0
    inner_steps: int = 1
    normalise: str = "none"

    def __post_init__(self):
        check_choice(self.name, "rule", RULES)
        check_number(self.eta, "eta", 0.0)
        check_number(self.decay, "decay", 0.0, 1.0)
        check_positive(self.inner_steps, "inner_steps", integer=True)
        check_choice(self.normalise, "normalise", NORMS)

    def states(self, model: LoopyNetwork, xs: np.ndarray) -> np.ndarray:
        """The states the readout reads for inputs xs (T, B, n_in).

        Parameters
        ----------
        model : LoopyNetwork
        xs : np.ndarray, shape (T, B, n_in)

        Returns
        -------
        np.ndarray, shape (T, B, N)
        """
        if self.name == "fast_weights":
            return fast_weight_states(model, xs, self.decay, self.eta, self.inner_steps)
        return model.states(np.ascontiguousarray(xs, dtype=model.dtype))

    def adapt(self, model: LoopyNetwork, xs: np.ndarray) -> None:
        """Change the synapses for good after a batch xs (T, B, n_in), for a slow rule (the
        other rules change nothing that outlasts a sequence).

        Parameters
        ----------
        model : LoopyNetwork
            Changed in place.
        xs : np.ndarray, shape (T, B, n_in)
        """
        if self.name not in ("off", "fast_weights"):
            adapt(model, xs, self.name, self.eta, normalise=self.normalise, radius=False)


@dataclass
class LocalHistory(History):
    """:class:`loopy_edu.train.History` of :func:`train_local`: ``loss`` of every batch (the
    task's loss of the readout before its update), and at every evaluation point
    ``train_acc`` (the online accuracy of the batches since the last point, each scored
    before its update), ``test_acc`` and ``test_loss`` (:func:`evaluate` on the evaluation
    task), ``seconds`` (the training wall time since the last point) and ``sequences_seen``.
    """
    sequences_seen: list[int] = field(default_factory=list)


def _as_rule(rule: LocalRule | str) -> LocalRule:
    return rule if isinstance(rule, LocalRule) else LocalRule(check_choice(rule, "rule", RULES))


def _hits(ys: np.ndarray, task: Task) -> np.ndarray:
    """(T, B) bool: the argmax is the target's ("xent"), or every output is within
    :data:`TOLERANCE` ("mse")."""
    if task.loss == "xent":
        return ys.argmax(-1) == task.targets.argmax(-1)
    return np.all(np.abs(ys - task.targets) < TOLERANCE, axis=-1)


def _check_task(task: Any, model: LoopyNetwork, name: str) -> Task:
    if not isinstance(task, Task):
        raise TypeError(f"{name}: expected a loopy_edu.tasks.Task, got {type(task).__name__}")
    if (task.n_in, task.n_out) != (model.n_in, model.n_out):
        raise ValueError(f"{name}: expected n_in = {model.n_in} and n_out = {model.n_out} "
                         f"(the model's), got {task.n_in} and {task.n_out}")
    if not np.any(task.mask > 0):
        raise ValueError(f"{name}: expected at least one masked-in step, got a mask of zeros")
    return task


def evaluate(model: LoopyNetwork, task: Task, rule: LocalRule | str = "off"
             ) -> dict[str, Any]:
    """Score the model's readout on a task, the network running under ``rule`` (which
    changes nothing that outlasts the call: a slow rule does not run here).

    Parameters
    ----------
    model : LoopyNetwork
    task : Task
        Its mask says which steps count.
    rule : LocalRule or str
        The rule the states come from (a name takes that rule's defaults).

    Returns
    -------
    dict
        ``accuracy``: the fraction of masked-in (step, sequence) pairs that are right (the
        argmax for "xent", as :func:`loopy_edu.tasks.accuracy`; every output within
        :data:`TOLERANCE` for "mse"); ``loss``: the task's own loss; ``mse``: the mean
        squared error per masked-in output (without the loss's ½); ``by_step`` (S,): the
        accuracy at each of the S steps that have a masked-in entry, in time order (for
        selective copying, by output position).

    Raises
    ------
    TypeError
        If ``task`` is not a Task.
    ValueError
        Naming ``task`` when it does not fit the model or has nothing masked in, or ``rule``.
    """
    rule = _as_rule(rule)
    task = _check_task(task, model, "task")
    hs = rule.states(model, task.xs)
    ys = hs @ model.params["W_out"].T + model.params["b_out"]               # (T, B, n_out)
    on = task.mask > 0                                                      # (T, B)
    hits = _hits(ys, task)
    steps = np.flatnonzero(on.any(axis=1))
    by_step = np.array([hits[t][on[t]].mean() for t in steps])
    right = accuracy(ys, task) if task.loss == "xent" else float(hits[on].mean())
    err = (ys - task.targets)[on]
    return {"accuracy": right, "loss": sequence_loss(ys, task.targets, task.mask, task.loss)[0],
            "mse": float(np.mean(err * err)), "by_step": by_step}


def train_local(model: LoopyNetwork, task_fn: Callable[[int], Task], sequences: int,
                rule: LocalRule | str = "fast_weights", readout: str = "nlms",
                eta: float = 0.5, eval_task: Task | None = None, eval_every: int = 1000,
                callback: Callable[[int, Any, LocalHistory], None] | None = None
                ) -> LocalHistory:
    """Train a loopy network on fresh batches ``task_fn(step)`` with local learning only:
    ``rule`` on the network, an online NLMS (or LMS) readout (the module docstring's three
    steps per batch). The readout starts from the model's ``W_out``, ``b_out`` and is left
    there; a slow rule leaves its changed weights in ``params``.

    Parameters
    ----------
    model : LoopyNetwork
        Trained in place.
    task_fn : callable
        ``task_fn(step)`` returns the :class:`loopy_edu.tasks.Task` of update ``step`` (from
        0); its batch may be any size.
    sequences : int
        Train until this many sequences have been seen (the last batch may pass it).
    rule : LocalRule or str
        The network's rule (a name takes that rule's defaults); ``"off"`` is the ablation.
    readout : str
        ``"nlms"`` (step η / (ε + ‖z‖²), η in (0, 2)) or ``"lms"`` (step η).
    eta : float
        The readout's step.
    eval_task : Task or None
        Scored by :func:`evaluate` after every ``eval_every`` sequences and at the end.
    eval_every : int
        The sequences between evaluation points (>= 1).
    callback : callable or None
        ``callback(step, model, history)`` after each batch.

    Returns
    -------
    LocalHistory
        The loss of every batch and the curves at each evaluation point.

    Raises
    ------
    TypeError
        If ``task_fn`` gives, or ``eval_task`` is, something other than a Task.
    ValueError
        Naming the argument that is invalid (a task that does not fit the model included).
    """
    check_positive(sequences, "sequences", integer=True)
    check_positive(eval_every, "eval_every", integer=True)
    rule = _as_rule(rule)
    normalized = check_choice(readout, "readout", READOUTS) == "nlms"
    if normalized:
        check_number(eta, "eta", 0.0, 2.0, low_open=True, high_open=True)
    else:
        check_positive(eta, "eta")
    if eval_task is not None:
        _check_task(eval_task, model, "eval_task")
    backend = "numpy" if model.backend == "numpy" else "numba"     # no CUDA: one sample a time
    W = np.hstack([model.params["W_out"], model.params["b_out"][:, None]])  # (n_out, N + 1)
    hist = LocalHistory()
    seen = step = mark = 0                     # mark: the first batch since the last point
    hits = counted = 0
    start = time.perf_counter()
    while seen < sequences:
        task = _check_task(task_fn(step), model, "task_fn(step)")
        hs = rule.states(model, task.xs)                                    # (T, B, N)
        on = task.mask > 0
        Z = np.hstack([hs[on], np.ones((int(on.sum()), 1), dtype=hs.dtype)])   # (S, N + 1)
        ys = hs @ W[:, :-1].T + W[:, -1]                                    # before the update
        hist.loss.append(sequence_loss(ys, task.targets, task.mask, task.loss)[0])
        right = _hits(ys, task)[on]
        hits, counted = hits + int(right.sum()), counted + right.size
        lms(W, Z, task.targets[on].astype(W.dtype), eta, normalized=normalized,
            backend=backend)
        model.params["W_out"][:], model.params["b_out"][:] = W[:, :-1], W[:, -1]
        rule.adapt(model, task.xs)
        before, seen, step = seen, seen + task.B, step + 1
        if seen // eval_every > before // eval_every or seen >= sequences:
            hist.seconds.append(time.perf_counter() - start)
            hist.sequences_seen.append(seen)
            hist.train_acc.append(hits / counted)
            hist.epoch_loss.append(float(np.mean(hist.loss[mark:])))
            hits, counted, mark = 0, 0, step
            if eval_task is not None:
                score = evaluate(model, eval_task, rule)
                hist.test_acc.append(score["accuracy"])
                hist.test_loss.append(score["loss"])
            start = time.perf_counter()
        if callback is not None:
            callback(step - 1, model, hist)
    return hist
