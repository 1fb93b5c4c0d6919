"""Mini-batch training loops with progress bars and divergence checks (Chapters 3, 4 and 5).

``grad_fn(model, X_batch, y_batch) -> (loss, grads)`` is the learning rule; the default is the exact
gradient ``model.loss_and_grads``. Later parts of the course pass other rules here unchanged. For
recurrent networks, :func:`train_sequences` draws a fresh batch of sequences at every step and its
``grad_fn(model, xs, targets, loss, mask)`` has the signature of :func:`loopy_edu.bptt.bptt` and
:func:`loopy_edu.rtrl.rtrl`.
"""
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from .checks import check_array, check_finite_loss, check_positive
from .optim import clip_grad_norm, grad_norm


@dataclass
class History:
    """What a training run measured: one loss per step, and per-epoch summaries."""
    loss: list = field(default_factory=list)          # mini-batch loss at every step
    epoch_loss: list = field(default_factory=list)    # mean mini-batch loss of each epoch
    train_acc: list = field(default_factory=list)     # accuracy on the training set after each epoch
    test_acc: list = field(default_factory=list)      # accuracy on the test set after each epoch (if given)
    test_loss: list = field(default_factory=list)     # loss on the test set after each epoch (if given)
    seconds: list = field(default_factory=list)       # wall time of each epoch's updates
    grad_norm: list = field(default_factory=list)     # gradient norm at every step (sequence training)

    def as_arrays(self):
        return {k: np.asarray(v) for k, v in self.__dict__.items()}


def _default_grad_fn(model, X, y):
    return model.loss_and_grads(X, y)


def train(model, X, y, optimizer, epochs=10, batch_size=32, X_test=None, y_test=None, seed=0,
          grad_fn=_default_grad_fn, eval_train=True, eval_size=10_000, progress=True, callback=None):
    """Train ``model`` for ``epochs`` passes over (X, y) in shuffled mini-batches; return a History.

    X: (N, n_in); y: (N,). After each epoch, accuracy is measured on up to ``eval_size`` training
    examples and on the whole test set. ``callback(epoch, model, history)`` runs after each epoch. A
    non-finite loss stops training with FloatingPointError, whose ``history`` attribute keeps what was
    recorded up to that step.
    """
    X = check_array(X, "X", ndim=2)
    y = np.asarray(y)
    if y.shape != (X.shape[0],):
        raise ValueError(f"y: expected shape ({X.shape[0]},) to match X, got {y.shape}")
    if (X_test is None) != (y_test is None):
        raise ValueError("X_test, y_test: expected both or neither, got only one")
    if X_test is not None and np.shape(y_test) != (np.shape(X_test)[0],):
        raise ValueError(f"y_test: expected shape ({np.shape(X_test)[0]},) to match X_test, got {np.shape(y_test)}")
    check_positive(epochs, "epochs", integer=True)
    check_positive(batch_size, "batch_size", integer=True)
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    steps = (n + batch_size - 1) // batch_size
    hist = History()
    bar = tqdm(total=epochs * steps, desc="training", unit="batch", disable=not progress, leave=True)
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
                            **({"test_acc": f"{hist.test_acc[-1]:.4f}"} if hist.test_acc else {}))
            if callback is not None:
                callback(epoch, model, hist)
    finally:
        bar.close()
    return hist


def _sequence_grads(model, xs, targets, loss, mask):
    return model.loss_and_grads(xs, targets, loss=loss, mask=mask)


def train_sequences(model, task_fn, optimizer, steps, clip=None, grad_fn=_sequence_grads, progress=True,
                    callback=None):
    """Train a recurrent ``model`` for ``steps`` updates, each on a fresh batch ``task_fn(step)`` (a
    :class:`loopy_edu.tasks.Task`); return a History with the loss and the gradient norm of every step.

    ``clip`` caps the gradient's norm (:func:`loopy_edu.optim.clip_grad_norm`); ``callback(step, model,
    history)`` runs after each update. A non-finite loss raises FloatingPointError carrying ``history``.
    """
    check_positive(steps, "steps", integer=True)
    hist = History()
    bar = tqdm(range(steps), desc="training", unit="step", disable=not progress)
    try:
        for s in bar:
            task = task_fn(s)
            loss, grads = grad_fn(model, task.xs, task.targets, task.loss, task.mask)
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
