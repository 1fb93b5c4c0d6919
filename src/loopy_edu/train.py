"""Mini-batch training loops with progress bars and divergence checks (Chapters 3, 4 and 5).

``grad_fn(model, X_batch, y_batch) -> (loss, grads)`` is the learning rule; the default is the
exact gradient ``model.loss_and_grads``. Later parts of the course pass other rules here
unchanged. For recurrent networks, :func:`train_sequences` draws a fresh batch of sequences at
every step and its ``grad_fn(model, xs, targets, loss, mask)`` has the signature of
:func:`loopy_edu.bptt.bptt` and :func:`loopy_edu.rtrl.rtrl`.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike
from tqdm.auto import tqdm

from .checks import check_array, check_finite_loss, check_positive
from .optim import Optimizer, clip_grad_norm, grad_norm

if TYPE_CHECKING:
    from .model import Model
    from .tasks import Task

# What a learning rule returns: the loss and the update of each parameter.
_Grads = tuple[float, dict[str, np.ndarray]]


@dataclass
class History:
    """What a training run measured: one loss per step, and per-epoch summaries.

    Attributes
    ----------
    loss : list of float
        Mini-batch loss at every step.
    epoch_loss : list of float
        Mean mini-batch loss of each epoch.
    train_acc : list of float
        Accuracy on (up to ``eval_size`` examples of) the training set after each epoch.
    test_acc : list of float
        Accuracy on the test set after each epoch, if one was given.
    test_loss : list of float
        Loss on the test set after each epoch, if one was given.
    seconds : list of float
        Wall time of each epoch's updates.
    grad_norm : list of float
        Gradient norm at every step (sequence training), before clipping.
    """
    loss: list[float] = field(default_factory=list)        # mini-batch loss at every step
    epoch_loss: list[float] = field(default_factory=list)  # mean mini-batch loss of each epoch
    train_acc: list[float] = field(default_factory=list)   # training accuracy after each epoch
    test_acc: list[float] = field(default_factory=list)    # test accuracy after each epoch
    test_loss: list[float] = field(default_factory=list)   # test loss after each epoch
    seconds: list[float] = field(default_factory=list)     # wall time of each epoch's updates
    grad_norm: list[float] = field(default_factory=list)   # gradient norm at every step

    def as_arrays(self) -> dict[str, np.ndarray]:
        """Every record as an array, for plotting or saving.

        Returns
        -------
        dict[str, np.ndarray]
            One 1-D array per attribute, keyed by its name.
        """
        return {k: np.asarray(v) for k, v in self.__dict__.items()}


def _default_grad_fn(model, X, y):
    return model.loss_and_grads(X, y)


def train(model: Model, X: ArrayLike, y: ArrayLike, optimizer: Optimizer, epochs: int = 10,
          batch_size: int = 32, X_test: ArrayLike | None = None,
          y_test: ArrayLike | None = None, seed: int | None = 0,
          grad_fn: Callable[[Any, np.ndarray, np.ndarray], _Grads] = _default_grad_fn,
          eval_train: bool = True, eval_size: int = 10_000, progress: bool = True,
          callback: Callable[[int, Any, History], None] | None = None) -> History:
    """Train ``model`` for ``epochs`` passes over (X, y) in shuffled mini-batches; return a
    History.

    After each epoch, accuracy is measured on up to ``eval_size`` training examples and on the
    whole test set. ``callback(epoch, model, history)`` runs after each epoch. A non-finite loss
    stops training with FloatingPointError, whose ``history`` attribute keeps what was recorded
    up to that step.

    Parameters
    ----------
    model : Model
        A classifier with ``params``, ``loss_and_grads``, ``accuracy`` and ``loss``, such as
        :class:`loopy_edu.mlp.MLP`; its ``params`` are updated in place.
    X : array_like, shape (N, n_in)
        Training inputs.
    y : array_like, shape (N,)
        Training labels.
    optimizer : Optimizer
        Updates ``model.params`` from each batch's grads.
    epochs : int
        Passes over the data.
    batch_size : int
        Examples per step; the last batch of an epoch may be smaller.
    X_test, y_test : array_like or None
        A test set (both or neither), evaluated after each epoch.
    seed : int or None
        Seed of the batches' shuffling.
    grad_fn : callable
        ``grad_fn(model, X_batch, y_batch) -> (loss, grads)``, the learning rule; the default is
        ``model.loss_and_grads``.
    eval_train : bool
        Whether to measure the training accuracy after each epoch.
    eval_size : int
        The most training examples that measure it.
    progress : bool
        Whether to show a progress bar.
    callback : callable or None
        ``callback(epoch, model, history)``, run after each epoch.

    Returns
    -------
    History
        The loss of every step and the per-epoch summaries.

    Raises
    ------
    ValueError
        If ``X``, ``y``, ``X_test``, ``y_test``, ``epochs`` or ``batch_size`` is invalid.
    FloatingPointError
        If a loss is NaN or Inf; its ``history`` attribute holds the History so far.
    """
    X = check_array(X, "X", ndim=2)
    y = np.asarray(y)
    if y.shape != (X.shape[0],):
        raise ValueError(f"y: expected shape ({X.shape[0]},) to match X, got {y.shape}")
    if (X_test is None) != (y_test is None):
        raise ValueError("X_test, y_test: expected both or neither, got only one")
    if X_test is not None and np.shape(y_test) != (np.shape(X_test)[0],):
        raise ValueError(f"y_test: expected shape ({np.shape(X_test)[0]},) to match X_test, "
                         f"got {np.shape(y_test)}")
    check_positive(epochs, "epochs", integer=True)
    check_positive(batch_size, "batch_size", integer=True)
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    steps = (n + batch_size - 1) // batch_size
    hist = History()
    bar = tqdm(total=epochs * steps, desc="training", unit="batch", disable=not progress,
               leave=True)
    try:
        for epoch in range(epochs):
            order = rng.permutation(n)
            t0, total = time.perf_counter(), 0.0
            for s in range(steps):
                idx = order[s * batch_size:(s + 1) * batch_size]
                loss, grads = grad_fn(model, X[idx], y[idx])
                try:
                    check_finite_loss(loss, len(hist.loss), getattr(optimizer, "lr", None))
                except FloatingPointError as err:
                    err.history = hist
                    raise
                optimizer.step(model.params, grads)
                hist.loss.append(loss)
                total += loss
                bar.update()
            hist.seconds.append(time.perf_counter() - t0)
            hist.epoch_loss.append(total / steps)
            if eval_train:
                sub = slice(0, min(n, eval_size))
                hist.train_acc.append(model.accuracy(X[sub], y[sub]))
            if X_test is not None:
                hist.test_acc.append(model.accuracy(X_test, y_test))
                hist.test_loss.append(model.loss(X_test, y_test))
            bar.set_postfix(loss=f"{hist.epoch_loss[-1]:.4f}",
                            **({"test_acc": f"{hist.test_acc[-1]:.4f}"}
                               if hist.test_acc else {}))
            if callback is not None:
                callback(epoch, model, hist)
    finally:
        bar.close()
    return hist


def _sequence_grads(model, xs, targets, loss, mask):
    return model.loss_and_grads(xs, targets, loss=loss, mask=mask)


def train_sequences(model: Model, task_fn: Callable[[int], Task], optimizer: Optimizer,
                    steps: int, clip: float | None = None,
                    grad_fn: Callable[..., _Grads] = _sequence_grads, progress: bool = True,
                    callback: Callable[[int, Any, History], None] | None = None) -> History:
    """Train a recurrent ``model`` for ``steps`` updates, each on a fresh batch
    ``task_fn(step)`` (a :class:`loopy_edu.tasks.Task`); return a History with the loss and the
    gradient norm of every step.

    ``clip`` caps the gradient's norm (:func:`loopy_edu.optim.clip_grad_norm`);
    ``callback(step, model, history)`` runs after each update. A non-finite loss raises
    FloatingPointError carrying ``history``.

    Parameters
    ----------
    model : Model
        A recurrent model, such as :class:`loopy_edu.rnn.RNN`; its ``params`` are updated in
        place.
    task_fn : callable
        ``task_fn(step)`` returns the :class:`loopy_edu.tasks.Task` of that step.
    optimizer : Optimizer
        Updates ``model.params`` from each step's grads.
    steps : int
        The number of updates.
    clip : float or None
        The largest gradient norm; None does not clip.
    grad_fn : callable
        ``grad_fn(model, xs, targets, loss, mask) -> (loss, grads)``, the learning rule (e.g.
        :func:`loopy_edu.bptt.bptt`); the default is ``model.loss_and_grads``.
    progress : bool
        Whether to show a progress bar.
    callback : callable or None
        ``callback(step, model, history)``, run after each update.

    Returns
    -------
    History
        ``loss`` and ``grad_norm`` (before clipping) of every step.

    Raises
    ------
    ValueError
        If ``steps`` is not a positive integer, or ``clip`` not a positive number.
    FloatingPointError
        If a loss is NaN or Inf; its ``history`` attribute holds the History so far.
    """
    def grads_at(s):
        task = task_fn(s)
        return grad_fn(model, task.xs, task.targets, task.loss, task.mask)

    return _stream(model, grads_at, optimizer, steps, clip, progress, callback)


def train_batches(model: Model, batch_fn: Callable[[int], tuple[np.ndarray, np.ndarray]],
                  optimizer: Optimizer, steps: int, clip: float | None = None,
                  grad_fn: Callable[[Any, np.ndarray, np.ndarray], _Grads] = _default_grad_fn,
                  progress: bool = True,
                  callback: Callable[[int, Any, History], None] | None = None) -> History:
    """Train ``model`` for ``steps`` updates, each on a fresh batch ``(X, Y) = batch_fn(step)``
    of a generated task (such as :func:`loopy_edu.tasks.parity_vectors`, Chapter 14); return a
    History with the loss and the gradient norm of every step. The same loop as
    :func:`train_sequences`, for models of a static input.

    Parameters
    ----------
    model : Model
        A model with ``params`` and ``loss_and_grads(X, Y)``, updated in place.
    batch_fn : callable
        ``batch_fn(step)`` returns that step's ``(X, Y)``.
    optimizer : Optimizer
        Updates ``model.params`` from each step's grads.
    steps : int
        The number of updates.
    clip : float or None
        The largest gradient norm; None does not clip.
    grad_fn : callable
        ``grad_fn(model, X, Y) -> (loss, grads)``; the default is ``model.loss_and_grads``.
    progress : bool
        Whether to show a progress bar.
    callback : callable or None
        ``callback(step, model, history)``, run after each update.

    Returns
    -------
    History
        ``loss`` and ``grad_norm`` (before clipping) of every step.

    Raises
    ------
    ValueError
        If ``steps`` is not a positive integer, or ``clip`` not a positive number.
    FloatingPointError
        If a loss is NaN or Inf; its ``history`` attribute holds the History so far.
    """
    return _stream(model, lambda s: grad_fn(model, *batch_fn(s)), optimizer, steps, clip,
                   progress, callback)


def _stream(model, grads_at, optimizer, steps, clip, progress, callback):
    # The loop of train_sequences and train_batches: grads_at(step) -> (loss, grads).
    check_positive(steps, "steps", integer=True)
    if clip is not None:
        check_positive(clip, "clip")
    hist = History()
    bar = tqdm(range(steps), desc="training", unit="step", disable=not progress)
    try:
        for s in bar:
            loss, grads = grads_at(s)
            try:
                check_finite_loss(loss, s, getattr(optimizer, "lr", None))
            except FloatingPointError as err:
                err.history = hist
                raise
            norm = grad_norm(grads) if clip is None else clip_grad_norm(grads, clip)
            optimizer.step(model.params, grads)
            hist.loss.append(loss)
            hist.grad_norm.append(norm)
            if s % 10 == 0:
                bar.set_postfix(loss=f"{loss:.4f}")
            if callback is not None:
                callback(s, model, hist)
    finally:
        bar.close()
    return hist
