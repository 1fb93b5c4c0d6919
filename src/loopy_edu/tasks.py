"""Seeded sequence tasks for recurrent networks (Part II, Chapters 5-7, and later parts).

Every generator returns a ``Task``: inputs ``xs`` (T, B, n_in), ``targets`` (T, B, n_out) and a
``mask`` (T, B) that says which targets count, with the loss to use ("mse" or "xent"). A model
consumes it whole, ``model.loss_and_grads(task)``, the same as
``model.loss_and_grads(task.xs, task.targets, loss=task.loss, mask=task.mask)``, where ::

    mse  = (1/B) sum_b sum_t mask * 0.5 * ||y_t - target_t||^2
    xent = (1/B) sum_b sum_t mask * CE(softmax(y_t), target_t).

Conventions: time is the first axis; undefined targets are zero and masked out (the flip-flop
also masks out some defined ones, see ``flip_flop``); the same ``seed`` gives the same task
(``np.random.default_rng``).
"""
import math
import os
from dataclasses import dataclass

import numpy as np
from numpy.typing import DTypeLike

from .checks import check_array, check_choice, check_positive
from .readout import LOSSES

__all__ = [
    "Task", "coin", "coin_probability", "coin_plateaus", "copy", "adding", "adding_baseline",
    "sines", "flip_flop", "parity", "sequential_mnist", "arjovsky_copy",
    "arjovsky_copy_baseline", "cued_recall", "selective_copy", "counting",
    "memory_capacity_task", "accuracy", "parity_vectors", "prefix_parity", "PRIMITIVES",
    "bit_op", "bit_program",
]


@dataclass(eq=False, repr=False)
class Task:
    """A batch of sequences: inputs, targets, which targets count, and the loss to score them
    with.

    Parameters
    ----------
    xs : np.ndarray, shape (T, B, n_in)
        Inputs.
    targets : np.ndarray, shape (T, B, n_out)
        Targets; for ``"xent"`` each masked-in row is a probability vector.
    mask : np.ndarray, shape (T, B)
        1.0 where a target counts, else 0.0.
    loss : str
        ``"mse"`` or ``"xent"``.
    name : str
        The task's name, shown by ``repr``.

    Raises
    ------
    ValueError
        Naming the argument with a wrong shape, non-finite entries or an unknown ``loss``.
    """

    xs: np.ndarray       # (T, B, n_in)
    targets: np.ndarray  # (T, B, n_out); for "xent" each masked-in row is a probability vector
    mask: np.ndarray     # (T, B), 1.0 where a target counts, else 0.0
    loss: str            # "mse" or "xent"
    name: str

    def __post_init__(self):
        check_choice(self.loss, "loss", LOSSES)
        self.xs = check_array(self.xs, "xs", ndim=3)
        self.targets = check_array(self.targets, "targets", shape=(self.T, self.B, None))
        self.mask = check_array(self.mask, "mask", shape=(self.T, self.B))

    @property
    def T(self) -> int:
        """Number of steps."""
        return self.xs.shape[0]

    @property
    def B(self) -> int:
        """Number of sequences in the batch."""
        return self.xs.shape[1]

    @property
    def n_in(self) -> int:
        """Number of input channels."""
        return self.xs.shape[2]

    @property
    def n_out(self) -> int:
        """Number of output channels."""
        return self.targets.shape[2]

    def __repr__(self):
        return (f"Task({self.name!r}, T={self.T}, B={self.B}, n_in={self.n_in}, "
                f"n_out={self.n_out}, loss={self.loss!r}, "
                f"masked-in steps={int(np.count_nonzero(self.mask))})")


# ---------------------------------------------------------------------------------------------
# Small helpers

def _int_at_least(value, name, low, why=""):
    """Check an integer >= ``low``; ``why`` names the constraint when it involves another
    argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        shown = value.item() if isinstance(value, np.generic) else value
        raise ValueError(f"{name}: expected an integer >= {low}{why}, got {shown!r}")
    return int(value)


def _float_dtype(dtype):
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise ValueError(f"dtype: expected a floating-point dtype such as np.float64, "
                         f"got {dt.name}")
    return dt


def _one_hot(labels, n):
    """Integer labels (...) -> one-hot (..., n)."""
    return (labels[..., None] == np.arange(n)).astype(np.float64)


def _task(xs, targets, mask, loss, name, dtype):
    dt = _float_dtype(dtype)
    return Task(xs.astype(dt), targets.astype(dt), mask.astype(dt), loss, name)


# ---------------------------------------------------------------------------------------------
# The coin task

def _coin_p(x_t1, x_t2):
    """P(y_t = 1) given the coins t1 and t2 steps back."""
    return 0.5 + 0.5 * x_t1 - 0.25 * x_t2


def _check_lags(t1, t2, T=None):
    t1 = _int_at_least(t1, "t1", 1)
    t2 = _int_at_least(t2, "t2", t1 + 1, f" (t2 > t1 = {t1})")
    if T is not None:
        _int_at_least(T, "T", t2 + 1, f" (T > t2 = {t2})")
    return t1, t2


def coin_probability(xs: np.ndarray, t1: int = 5, t2: int = 9) -> np.ndarray:
    """P(y_t = 1) of the coin task (Chapter 6) for coins ``xs`` (T, B, 1); returns p (T, B).

    p_t = 0.5 + 0.5 x_{t-t1} - 0.25 x_{t-t2}. For t < t2 the coin t2 steps back does not exist,
    so p is NaN there (the task's mask is 0 at those steps).

    Parameters
    ----------
    xs : np.ndarray, shape (T, B, 1)
        Coins in {0, 1}.
    t1 : int
        The nearer lag, at least 1.
    t2 : int
        The farther lag, more than ``t1`` and less than T.

    Returns
    -------
    np.ndarray, shape (T, B)

    Raises
    ------
    ValueError
        Naming ``xs``, ``t1``, ``t2`` or ``T`` when it is invalid.
    """
    xs = check_array(xs, "xs", shape=(None, None, 1))
    t1, t2 = _check_lags(t1, t2, xs.shape[0])
    x = xs[..., 0]
    p = np.full(x.shape, np.nan)
    p[t2:] = _coin_p(x[t2 - t1:len(x) - t1], x[:len(x) - t2])
    return p


def coin(T: int, batch: int = 1, t1: int = 5, t2: int = 9, seed: int = 0,
         dtype: DTypeLike = np.float64) -> Task:
    """The coin task of online learning (Chapter 6): remember two coins from t1 and t2 steps
    back.

    x_t is a fair coin in {0, 1} (n_in = 1); y_t ~ Bernoulli(p_t) with
    p_t = 0.5 + 0.5 x_{t-t1} - 0.25 x_{t-t2} (``coin_probability``); targets are y_t one-hot
    over 2 classes (class 1 means y = 1), loss "xent", mask 0 for t < t2. A predictor that
    remembers nothing, x_{t-t1}, or both reaches the cross-entropy plateaus of
    ``coin_plateaus``. This is the "Add" task Marschall, Cho & Savin (2020) use to compare
    online learning rules (RTRL, UORO of Tallec & Ollivier 2018, and others).

    Parameters
    ----------
    T : int
        Number of steps, more than ``t2``.
    batch : int
        Number of sequences, B.
    t1 : int
        The nearer lag, at least 1.
    t2 : int
        The farther lag, more than ``t1``.
    seed : int
    dtype : dtype
        A floating-point dtype for the arrays.

    Returns
    -------
    Task
        xs (T, B, 1), targets (T, B, 2), loss ``"xent"``.

    Raises
    ------
    ValueError
        Naming the argument that is out of range.
    """
    T = check_positive(T, "T", integer=True)
    batch = check_positive(batch, "batch", integer=True)
    _check_lags(t1, t2, T)
    rng = np.random.default_rng(seed)
    xs = rng.integers(0, 2, size=(T, batch, 1)).astype(np.float64)
    p = coin_probability(xs, t1, t2)
    y = rng.random((T, batch)) < np.nan_to_num(p)  # p is NaN, and y unused, for t < t2
    mask = np.zeros((T, batch))
    mask[t2:] = 1.0
    return _task(xs, _one_hot(y, 2) * mask[..., None], mask, "xent", "coin", dtype)


def coin_plateaus(t1: int = 5, t2: int = 9) -> dict[str, float]:
    """The expected cross-entropies (nats) of the best coin-task predictors (Chapter 6).

    Returns {"none": ..., "t1": ..., "both": ...} for a predictor that remembers nothing, only
    x_{t-t1}, or both x_{t-t1} and x_{t-t2}. The four input cases are equally likely; the best
    prediction within a group of cases the predictor cannot tell apart is their mean p, and its
    expected cross-entropy is the binary entropy of that mean. The values do not depend on the
    lags (about 0.662, 0.519, 0.454).

    Parameters
    ----------
    t1 : int
        The nearer lag, at least 1.
    t2 : int
        The farther lag, more than ``t1``.

    Returns
    -------
    dict[str, float]
        Keys ``"none"``, ``"t1"`` and ``"both"``.

    Raises
    ------
    ValueError
        Naming ``t1`` or ``t2`` when it is out of range.
    """
    _check_lags(t1, t2)
    # (x_{t-t1}, x_{t-t2}), each with probability 1/4
    cases = [(a, b) for a in (0, 1) for b in (0, 1)]

    def entropy(q):
        return -sum(v * math.log(v) for v in (q, 1 - q) if v > 0)

    def plateau(remembered):
        groups = {}
        for case in cases:
            groups.setdefault(remembered(case), []).append(_coin_p(*case))
        return sum(len(ps) / len(cases) * entropy(sum(ps) / len(ps)) for ps in groups.values())

    return {"none": plateau(lambda c: ()), "t1": plateau(lambda c: c[0]),
            "both": plateau(lambda c: c)}


# ---------------------------------------------------------------------------------------------
# Memory tasks

def copy(delay: int, length: int = 1, n_symbols: int = 8, batch: int = 1, seed: int = 0,
         dtype: DTypeLike = np.float64) -> Task:
    """Copy task (Chapters 5 and 7): show ``length`` symbols, wait, then recall them in order on
    a cue.

    Timeline, T = 2 * length + delay steps::

      t = 0 .. length-1                    symbol s_t, one-hot on input channels 0..n_symbols-1
      t = length .. length+delay-1         blank (all inputs 0)
      t = c = length+delay                 go cue: input channel n_symbols is 1
      t = c .. c+length-1                  recall: target s_{t-c} (one-hot over n_symbols),
                                           mask 1

    Recall starts at the cue step. n_in = n_symbols + 1, n_out = n_symbols, loss "xent".
    ``length=1`` is delayed recall. A standard probe of memory since Hochreiter & Schmidhuber
    (1997).

    Parameters
    ----------
    delay : int
        Blank steps between the symbols and the cue (0 or more).
    length : int
        Number of symbols to recall.
    n_symbols : int
        Size of the alphabet.
    batch : int
        Number of sequences, B.
    seed : int
    dtype : dtype
        A floating-point dtype for the arrays.

    Returns
    -------
    Task
        xs (T, B, n_symbols + 1), targets (T, B, n_symbols), loss ``"xent"``.

    Raises
    ------
    ValueError
        Naming the argument that is out of range.
    """
    delay = _int_at_least(delay, "delay", 0)
    length = check_positive(length, "length", integer=True)
    n_symbols = check_positive(n_symbols, "n_symbols", integer=True)
    batch = check_positive(batch, "batch", integer=True)
    rng = np.random.default_rng(seed)
    # symbols (length, B, n_symbols): a random one-hot symbol per position and sequence.
    symbols = _one_hot(rng.integers(0, n_symbols, size=(length, batch)), n_symbols)
    cue = length + delay
    xs = np.zeros((cue + length, batch, n_symbols + 1))
    xs[:length, :, :n_symbols] = symbols
    xs[cue, :, n_symbols] = 1.0
    targets = np.zeros((cue + length, batch, n_symbols))
    targets[cue:] = symbols
    mask = np.zeros((cue + length, batch))
    mask[cue:] = 1.0
    return _task(xs, targets, mask, "xent", "copy", dtype)


def adding(T: int, batch: int = 1, seed: int = 0, dtype: DTypeLike = np.float64) -> Task:
    """The adding problem (Chapters 5 and 7): add the two marked numbers of a long sequence.

    Input channel 0 holds values ~ U[0, 1]; channel 1 is a marker, 1 at exactly two steps: one
    in the first half, t < T // 2, and one in the second half. The target, at the last step only
    (mask), is the sum of the two marked values (n_out = 1), loss "mse". Hochreiter &
    Schmidhuber (1997) posed it, in the common modern form used here. Predicting the mean, 1,
    scores ``adding_baseline()`` = 1/12.

    Parameters
    ----------
    T : int
        Number of steps, at least 2.
    batch : int
        Number of sequences, B.
    seed : int
    dtype : dtype
        A floating-point dtype for the arrays.

    Returns
    -------
    Task
        xs (T, B, 2), targets (T, B, 1), loss ``"mse"``.

    Raises
    ------
    ValueError
        Naming the argument that is out of range.
    """
    T = _int_at_least(T, "T", 2)
    batch = check_positive(batch, "batch", integer=True)
    rng = np.random.default_rng(seed)
    values = rng.random((T, batch))
    markers = np.zeros((T, batch))
    rows = np.arange(batch)
    markers[rng.integers(0, T // 2, size=batch), rows] = 1.0
    markers[rng.integers(T // 2, T, size=batch), rows] = 1.0
    targets = np.zeros((T, batch, 1))
    targets[-1, :, 0] = (values * markers).sum(axis=0)
    mask = np.zeros((T, batch))
    mask[-1] = 1.0
    return _task(np.stack([values, markers], axis=-1), targets, mask, "mse", "adding", dtype)


def adding_baseline() -> float:
    """Expected mse loss of always answering 1 on the adding problem (Chapter 7):
    0.5 Var(u1 + u2) = 1/12.

    The sum of two independent U[0, 1] has mean 1 and variance 2 * Var(U[0, 1]) = 2 * (1/12).

    Returns
    -------
    float
    """
    var_uniform = 1 / 12  # integral of (u - 1/2)^2 over [0, 1]
    return 0.5 * 2 * var_uniform


def flip_flop(T: int, n_bits: int = 3, batch: int = 1, p: float = 0.05, seed: int = 0,
              dtype: DTypeLike = np.float64) -> Task:
    """The n-bit flip-flop of Sussillo & Barak (2013) (Chapter 5 and later): hold the sign of
    the last pulse.

    Each of the ``n_bits`` input channels gets, independently at each step, a pulse with
    probability ``p``, +1 or -1 with equal chance (else 0). Target channel i is the sign of
    channel i's last pulse, the pulse at t included, and 0 before its first pulse. The mask is 1
    from the step by which every channel of the row has pulsed (a row's mask cannot differ
    between channels, so until then the channels that have pulsed hold their sign but do not
    count); choose T >> 1/p. Loss "mse".

    Parameters
    ----------
    T : int
        Number of steps.
    n_bits : int
        Number of channels, in and out.
    batch : int
        Number of sequences, B.
    p : float
        Probability of a pulse per channel and step, in (0, 1].
    seed : int
    dtype : dtype
        A floating-point dtype for the arrays.

    Returns
    -------
    Task
        xs and targets (T, B, n_bits), loss ``"mse"``.

    Raises
    ------
    ValueError
        Naming the argument that is out of range.
    """
    T = check_positive(T, "T", integer=True)
    batch = check_positive(batch, "batch", integer=True)
    n_bits = check_positive(n_bits, "n_bits", integer=True)
    if check_positive(p, "p") > 1:
        raise ValueError(f"p: expected a probability in (0, 1], got {p!r}")
    rng = np.random.default_rng(seed)
    pulse = rng.random((T, batch, n_bits)) < p
    xs = np.where(pulse, 2.0 * rng.integers(0, 2, size=(T, batch, n_bits)) - 1.0, 0.0)
    # Index of the last pulse so far on each channel (-1: none yet), carried forward by a
    # running max.
    last = np.maximum.accumulate(np.where(pulse, np.arange(T)[:, None, None], -1), axis=0)
    targets = np.where(last >= 0, np.take_along_axis(xs, np.maximum(last, 0), axis=0), 0.0)
    return _task(xs, targets, (last >= 0).all(axis=-1), "mse", "flip_flop", dtype)


def parity(T: int, window: int = 2, batch: int = 1, seed: int = 0,
           dtype: DTypeLike = np.float64) -> Task:
    """Sliding-window parity (Chapter 5): output the XOR of the last ``window`` input bits.

    x_t in {0, 1} (n_in = 1); target at t is (x_{t-window+1} + ... + x_t) mod 2, one-hot over 2
    classes, loss "xent", mask 0 for t < window - 1. It generalises Elman's (1990) temporal XOR;
    parity is the function Minsky & Papert (1969) showed a perceptron cannot compute.

    Parameters
    ----------
    T : int
        Number of steps, at least ``window``.
    window : int
        Number of bits in the XOR.
    batch : int
        Number of sequences, B.
    seed : int
    dtype : dtype
        A floating-point dtype for the arrays.

    Returns
    -------
    Task
        xs (T, B, 1), targets (T, B, 2), loss ``"xent"``.

    Raises
    ------
    ValueError
        Naming the argument that is out of range.
    """
    T = check_positive(T, "T", integer=True)
    batch = check_positive(batch, "batch", integer=True)
    window = check_positive(window, "window", integer=True)
    _int_at_least(T, "T", window, f" (T >= window = {window})")
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, size=(T, batch))
    # odd (T-window+1, B) is 1 where a window of bits holds an odd number of ones.
    odd = np.lib.stride_tricks.sliding_window_view(bits, window, axis=0).sum(axis=-1) % 2
    targets = np.zeros((T, batch, 2))
    targets[window - 1:] = _one_hot(odd, 2)
    mask = np.zeros((T, batch))
    mask[window - 1:] = 1.0
    return _task(bits[..., None], targets, mask, "xent", "parity", dtype)


# ---------------------------------------------------------------------------------------------
# Pattern generation

MAX_PATTERN_PERIOD = 1_000_000


def sines(T: int, batch: int = 1, n_sines: int = 3, periods: list[int] | None = None,
          seed: int = 0, dtype: DTypeLike = np.float64) -> Task:
    """Periodic pattern generation (Part III): y(t) = sum_k a_k sin(2 pi t / P_k + phi_k),
    scaled to ``max |y| = 1``.

    ``periods`` (integers >= 2, in steps, one per sine) defaults to 25, 50, 100, ...
    (25 * 2**k). Amplitudes a_k ~ U[0.5, 1.5] and phases phi_k ~ U[0, 2 pi) are drawn from
    ``seed``; every batch row gets the same pattern. The pattern repeats every lcm(periods)
    steps; it is scaled so that its ``max |y|`` over one such period is 1, so it does not depend
    on T (take T >= lcm(periods) to see all of it). Input: one channel, 1 at t = 0 and 0 after.
    The pulse kicks the state away from its resting value and marks the phase; from then on the
    network must generate the pattern from its own dynamics (a constant input would only add a
    bias). n_out = 1, loss "mse", mask all ones. Sums of sines are the targets of Sussillo &
    Abbott's (2009) FORCE learning.

    Parameters
    ----------
    T : int
        Number of steps.
    batch : int
        Number of sequences, B.
    n_sines : int
        Number of sines.
    periods : list of int, or None
        One period per sine, each at least 2; their least common multiple may be at most
        ``MAX_PATTERN_PERIOD``.
    seed : int
    dtype : dtype
        A floating-point dtype for the arrays.

    Returns
    -------
    Task
        xs and targets (T, B, 1), loss ``"mse"``.

    Raises
    ------
    ValueError
        Naming the argument that is out of range.
    """
    T = check_positive(T, "T", integer=True)
    batch = check_positive(batch, "batch", integer=True)
    n_sines = check_positive(n_sines, "n_sines", integer=True)
    if periods is None:
        periods = [25 * 2**k for k in range(n_sines)]
    periods = list(periods)
    if len(periods) != n_sines:
        raise ValueError(f"periods: expected {n_sines} periods (n_sines={n_sines}), "
                         f"got {len(periods)}")
    periods = [_int_at_least(P, "periods", 2, " for each period") for P in periods]
    pattern_period = math.lcm(*periods)
    if pattern_period > MAX_PATTERN_PERIOD:
        raise ValueError(f"periods: expected a least common multiple <= "
                         f"{MAX_PATTERN_PERIOD:,} steps (the pattern's period), "
                         f"got {pattern_period:,} for {periods}")
    rng = np.random.default_rng(seed)
    amplitudes = rng.uniform(0.5, 1.5, size=n_sines)
    phases = rng.uniform(0.0, 2 * np.pi, size=n_sines)

    def pattern(t):  # (n,) -> (n,)
        angles = 2 * np.pi * t[:, None] / np.asarray(periods) + phases  # (n, n_sines)
        return (amplitudes * np.sin(angles)).sum(axis=1)

    y = pattern(np.arange(T)) / np.abs(pattern(np.arange(pattern_period))).max()
    xs = np.zeros((T, batch, 1))
    xs[0] = 1.0
    targets = np.broadcast_to(y[:, None, None], (T, batch, 1))
    return _task(xs, targets, np.ones((T, batch)), "mse", "sines", dtype)


# ---------------------------------------------------------------------------------------------
# Sequential MNIST

def sequential_mnist(split: str = "test", n: int | None = None, permute: bool = False,
                     seed: int = 0, data_dir: str | os.PathLike | None = None,
                     download: bool = True, dtype: DTypeLike = np.float64) -> Task:
    """Row-by-row MNIST (Chapter 7): read a digit one row at a time, name it at the end.

    Each image becomes 28 steps of 28 pixels in [0, 1] (T = 28, n_in = 28); the target is the
    label, one-hot over 10 classes at the last step only (mask), loss "xent". The batch axis
    holds the examples: xs (28, N, 28). The examples of ``split`` ("train" or "test", from
    ``data.load_mnist(data_dir, download)``, which may fall back to a split of the 10k test set
    with a warning) are put in a seeded random order and the first ``n`` kept (all when None).
    ``permute=True`` first applies one fixed permutation of the 784 pixels, drawn from ``seed``
    alone, so a train and a test call with the same seed share it (permuted MNIST). A 28-step
    version of the pixel-by-pixel MNIST of Le, Jaitly & Hinton (2015).

    Parameters
    ----------
    split : str
        ``"train"`` or ``"test"``.
    n : int or None
        Number of examples to keep; None keeps them all.
    permute : bool
        Permute the pixels (permuted MNIST).
    seed : int
        Seeds the order of the examples and the permutation.
    data_dir : str, os.PathLike or None
        Passed to :func:`loopy_edu.data.load_mnist`.
    download : bool
        Passed to :func:`loopy_edu.data.load_mnist`.
    dtype : dtype
        A floating-point dtype for the arrays.

    Returns
    -------
    Task
        xs (28, n, 28), targets (28, n, 10), loss ``"xent"``.

    Raises
    ------
    ValueError
        Naming the argument that is invalid, or ``n`` above the examples available.
    """
    from .data import load_mnist

    check_choice(split, "split", {"train", "test"})
    if n is not None:
        check_positive(n, "n", integer=True)
    if not isinstance(permute, (bool, np.bool_)):
        raise ValueError(f"permute: expected True or False, got {permute!r}")
    _float_dtype(dtype)
    mnist = load_mnist(data_dir, download=download)
    images, labels = ((mnist.x_train, mnist.y_train) if split == "train"
                      else (mnist.x_test, mnist.y_test))
    if n is None:
        n = len(labels)
    elif n > len(labels):
        raise ValueError(f"n: expected at most {len(labels):,} (the {split} examples "
                         f"available), got {n}")
    # Two independent streams, so that the pixel permutation depends on neither the split nor n.
    pixel_rng, order_rng = (np.random.default_rng(s)
                            for s in np.random.SeedSequence(seed).spawn(2))
    pixels = pixel_rng.permutation(28 * 28) if permute else np.arange(28 * 28)
    order = order_rng.permutation(len(labels))[:n]
    xs = images[order][:, pixels].reshape(n, 28, 28).transpose(1, 0, 2)
    targets = np.zeros((28, n, 10))
    targets[-1] = _one_hot(labels[order], 10)
    mask = np.zeros((28, n))
    mask[-1] = 1.0
    return _task(xs, targets, mask, "xent",
                 "sequential_mnist" + ("_permuted" if permute else ""), dtype)


# ---------------------------------------------------------------------------------------------
# Memory tasks of Part IV (loopy networks)

def arjovsky_copy(T: int, batch: int = 1, n_symbols: int = 8, length: int = 10, seed: int = 0,
                  dtype: DTypeLike = np.float64) -> Task:
    """The copy task in the form of Arjovsky, Shah & Bengio (2016) (Part IV): remember
    ``length`` symbols over ``T`` steps, predicting "blank" everywhere else.

    Classes: 0 is blank, 1..n_symbols the symbols; the input has one more channel, the
    delimiter (n_symbols + 1). Timeline, ``T + 2 * length`` steps::

      t = 0 .. length-1                 input symbol s_t;          target blank
      t = length .. length+T-2          input blank;               target blank
      t = length+T-1                    input delimiter;           target blank
      t = length+T .. T+2*length-1      input blank;               target s_{t-length-T}

    Every step counts (mask 1), loss "xent". Unlike :func:`copy`, a model is scored on the
    blanks too; answering blank until the delimiter and then a uniform guess costs
    ``arjovsky_copy_baseline(T)`` per step.

    Parameters
    ----------
    T : int
        The delay: steps from the last symbol to the delimiter, plus one (at least 1).
    batch : int
        Number of sequences, B.
    n_symbols : int
        Size of the alphabet (8 in the paper).
    length : int
        Number of symbols to recall (10 in the paper).
    seed : int
    dtype : dtype
        A floating-point dtype for the arrays.

    Returns
    -------
    Task
        xs (T + 2 length, B, n_symbols + 2), targets (T + 2 length, B, n_symbols + 1).
    """
    T = check_positive(T, "T", integer=True)
    batch = check_positive(batch, "batch", integer=True)
    n_symbols = check_positive(n_symbols, "n_symbols", integer=True)
    length = check_positive(length, "length", integer=True)
    rng = np.random.default_rng(seed)
    symbols = rng.integers(1, n_symbols + 1, size=(length, batch))
    inputs = np.zeros((T + 2 * length, batch), dtype=np.int64)     # blank = 0
    inputs[:length] = symbols
    inputs[length + T - 1] = n_symbols + 1                          # the delimiter
    labels = np.zeros_like(inputs)
    labels[length + T:] = symbols
    return _task(_one_hot(inputs, n_symbols + 2), _one_hot(labels, n_symbols + 1),
                 np.ones(inputs.shape), "xent", "arjovsky_copy", dtype)


def arjovsky_copy_baseline(T: int, n_symbols: int = 8, length: int = 10) -> float:
    """Cross-entropy per step of the memoryless answer to :func:`arjovsky_copy`: blank for sure
    until the delimiter, then each symbol with probability 1/n_symbols. ::

        length * ln(n_symbols) / (T + 2 * length)        (10 ln 8 / (T + 20) in the paper)

    Parameters
    ----------
    T, n_symbols, length : int
        As in :func:`arjovsky_copy`.

    Returns
    -------
    float
    """
    T = check_positive(T, "T", integer=True)
    return length * math.log(n_symbols) / (T + 2 * length)


def cued_recall(T: int, batch: int = 1, n_symbols: int = 8, cue_window: int = 10,
                seed: int = 0, dtype: DTypeLike = np.float64) -> Task:
    """Cued recall with distractors (Part IV): remember the one symbol that a cue flag marked,
    among symbols that keep coming.

    A random symbol arrives at every step of the first ``cue_window + T`` steps; a cue flag
    marks one step among the first ``cue_window``. After ``T`` more steps of distractors, a go
    flag (one step, no symbol) asks for the cued symbol. Input channels: the symbol (one-hot,
    ``n_symbols``), the cue flag, the go flag. Only the go step counts; loss "xent"; chance is
    1 / n_symbols.

    Parameters
    ----------
    T : int
        Distractor steps between the cue window and the go step (at least 0).
    batch : int
        Number of sequences, B.
    n_symbols : int
        Size of the alphabet.
    cue_window : int
        The cue falls uniformly on one of these first steps.
    seed : int
    dtype : dtype
        A floating-point dtype for the arrays.

    Returns
    -------
    Task
        xs (cue_window + T + 1, B, n_symbols + 2), targets (..., B, n_symbols).
    """
    T = _int_at_least(T, "T", 0)
    batch = check_positive(batch, "batch", integer=True)
    n_symbols = _int_at_least(n_symbols, "n_symbols", 2)
    cue_window = check_positive(cue_window, "cue_window", integer=True)
    rng = np.random.default_rng(seed)
    go = cue_window + T
    symbols = rng.integers(0, n_symbols, size=(go, batch))
    cue = rng.integers(0, cue_window, size=batch)
    rows = np.arange(batch)
    xs = np.zeros((go + 1, batch, n_symbols + 2))
    xs[:go, :, :n_symbols] = _one_hot(symbols, n_symbols)
    xs[cue, rows, n_symbols] = 1.0
    xs[go, :, n_symbols + 1] = 1.0
    targets = np.zeros((go + 1, batch, n_symbols))
    targets[go] = _one_hot(symbols[cue, rows], n_symbols)
    mask = np.zeros((go + 1, batch))
    mask[go] = 1.0
    return _task(xs, targets, mask, "xent", "cued_recall", dtype)


def selective_copy(L: int, batch: int = 1, n_tokens: int = 8, n_symbols: int = 8,
                   seed: int = 0, dtype: DTypeLike = np.float64) -> Task:
    """Selective copying (Gu & Dao 2023, scaled down; Part IV): recall, in order, the data
    tokens scattered among noise.

    ``n_tokens`` data tokens, each one of ``n_symbols``, sit at random distinct positions of
    the first ``L`` steps; every other of those steps carries the noise symbol. Step ``L`` is
    the recall marker; the ``n_tokens`` steps after it (inputs blank) must output the data
    tokens in their order of arrival. Input channels: the symbols, noise, marker
    (``n_symbols + 2``). Only the recall steps count; loss "xent"; per-token chance is
    1 / n_symbols. There is no cue line: what to store has to be decided from content.

    Parameters
    ----------
    L : int
        Length of the part that holds the tokens (at least ``n_tokens``).
    batch : int
        Number of sequences, B.
    n_tokens : int
        Data tokens to recall.
    n_symbols : int
        Size of the data alphabet.
    seed : int
    dtype : dtype
        A floating-point dtype for the arrays.

    Returns
    -------
    Task
        xs (L + 1 + n_tokens, B, n_symbols + 2), targets (..., B, n_symbols).
    """
    n_tokens = check_positive(n_tokens, "n_tokens", integer=True)
    L = _int_at_least(L, "L", n_tokens, " (room for n_tokens)")
    batch = check_positive(batch, "batch", integer=True)
    n_symbols = _int_at_least(n_symbols, "n_symbols", 2)
    rng = np.random.default_rng(seed)
    where = np.sort(rng.random((L, batch)).argsort(axis=0)[:n_tokens], axis=0)  # (n_tokens, B)
    tokens = rng.integers(0, n_symbols, size=(n_tokens, batch))
    inputs = np.full((L, batch), n_symbols)                        # the noise symbol
    np.put_along_axis(inputs, where, tokens, axis=0)
    T = L + 1 + n_tokens
    xs = np.zeros((T, batch, n_symbols + 2))
    xs[:L, :, :n_symbols + 1] = _one_hot(inputs, n_symbols + 1)
    xs[L, :, n_symbols + 1] = 1.0                                   # the recall marker
    targets = np.zeros((T, batch, n_symbols))
    targets[L + 1:] = _one_hot(tokens, n_symbols)
    mask = np.zeros((T, batch))
    mask[L + 1:] = 1.0
    return _task(xs, targets, mask, "xent", "selective_copy", dtype)


def counting(steps: int, n: int, batch: int = 1, seed: int = 0,
             dtype: DTypeLike = np.float64) -> Task:
    """The counting task of SORN (Lazar, Pipa & Triesch 2009; Part IV): predict the next symbol
    of a stream of the words "A B^n C" and "D E^n F".

    Each word is chosen at random with probability 1/2; symbols A, B, C, D, E, F are classes
    0..5. The target at t is the symbol at t + 1 (every step but the last counts), loss
    "xent". Only the steps that end a run of B or E (and the first letter of each word) need
    memory: knowing that n letters have passed, and which word this is.

    Parameters
    ----------
    steps : int
        Length of the stream, T (at least 2).
    n : int
        Repetitions of the middle letter (at least 1).
    batch : int
        Number of independent streams, B.
    seed : int
    dtype : dtype
        A floating-point dtype for the arrays.

    Returns
    -------
    Task
        xs and targets (steps, B, 6).
    """
    steps = _int_at_least(steps, "steps", 2)
    n = check_positive(n, "n", integer=True)
    batch = check_positive(batch, "batch", integer=True)
    rng = np.random.default_rng(seed)
    words = np.array([[0] + [1] * n + [2], [3] + [4] * n + [5]])   # (2, n + 2)
    n_words = -(-(steps + 1) // (n + 2))                            # enough for steps + 1
    stream = words[rng.integers(0, 2, size=(batch, n_words))].reshape(batch, -1).T
    stream = stream[:steps + 1]                                     # (steps + 1, B)
    mask = np.ones((steps, batch))
    return _task(_one_hot(stream[:-1], 6), _one_hot(stream[1:], 6), mask, "xent", "counting",
                 dtype)


def memory_capacity_task(T: int, k_max: int, batch: int = 1, scale: float = 0.5,
                         seed: int = 0, dtype: DTypeLike = np.float64) -> Task:
    """Jaeger's memory-capacity input (Part IV): i.i.d. u(t) ~ U(-scale, scale), and as
    targets every delayed copy u(t - k), k = 1..k_max.

    ``targets[t, :, k - 1] = u(t - k)`` from t = k_max, where every delay is defined, and
    the mask is 1 there (earlier steps are zero and masked out); loss "mse".
    :func:`loopy_edu.reservoir.memory_capacity` takes the states and ``xs[:, b, 0]``.

    Parameters
    ----------
    T : int
        Number of steps (more than k_max).
    k_max : int
        The longest delay.
    batch : int
        Number of independent sequences, B.
    scale : float
        Half-width of the uniform input (0.5: Jaeger's U(-0.5, 0.5)).
    seed : int
    dtype : dtype
        A floating-point dtype for the arrays.

    Returns
    -------
    Task
        xs (T, B, 1), targets (T, B, k_max).
    """
    k_max = check_positive(k_max, "k_max", integer=True)
    T = _int_at_least(T, "T", k_max + 1, " (k_max + 1)")
    batch = check_positive(batch, "batch", integer=True)
    scale = check_positive(scale, "scale")
    u = np.random.default_rng(seed).uniform(-scale, scale, size=(T, batch))
    targets = np.zeros((T, batch, k_max))
    for k in range(1, k_max + 1):
        targets[k_max:, :, k - 1] = u[k_max - k:T - k]
    mask = np.zeros((T, batch))
    mask[k_max:] = 1.0
    return _task(u[:, :, None], targets, mask, "mse", "memory_capacity", dtype)


# ---------------------------------------------------------------------------------------------
# Scoring

def parity_vectors(batch: int, n_bits: int = 16,
                   difficulty: int | tuple[int, int] | None = None, seed: int = 0,
                   dtype: DTypeLike = np.float64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Static parity (Graves 2016, at 16 bits as aakhundov/tf-rnn-adaptive runs it; Part V).

    Each vector of ``n_bits`` has k entries set to ±1 (each sign with probability 1/2) at
    random positions and the rest 0; the target is 1 when the number of +1 entries is odd.
    k, the difficulty, is drawn uniformly from ``difficulty``: an int fixes it, a pair
    ``(low, high)`` is inclusive, None means 1..n_bits. PonderNet's extrapolation split trains
    on ``(1, n_bits // 2)`` and tests on ``(n_bits // 2 + 1, n_bits)``.

    Parameters
    ----------
    batch : int
        Number of vectors, B.
    n_bits : int
        Length of each vector.
    difficulty : int, (int, int) or None
        The number of non-zero entries, or an inclusive range of it, within 1..n_bits.
    seed : int
    dtype : dtype
        A floating-point dtype for X and Y.

    Returns
    -------
    X : np.ndarray, shape (B, n_bits)
        Entries in {−1, 0, 1}.
    Y : np.ndarray, shape (B, 1)
        The parity of the +1 count, in {0, 1}.
    k : np.ndarray of int, shape (B,)
        Each vector's difficulty.

    Raises
    ------
    ValueError
        Naming the argument that is out of range.
    """
    batch = check_positive(batch, "batch", integer=True)
    n_bits = check_positive(n_bits, "n_bits", integer=True)
    low, high = (1, n_bits) if difficulty is None else (
        (difficulty, difficulty) if np.ndim(difficulty) == 0 else tuple(difficulty))
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
               for v in (low, high)) or not 1 <= low <= high <= n_bits:
        raise ValueError(f"difficulty: expected an int or an inclusive (low, high) within "
                         f"1..n_bits = 1..{n_bits}, got {difficulty!r}")
    rng = np.random.default_rng(seed)
    k = rng.integers(low, high + 1, size=batch)
    signs = rng.choice([-1.0, 1.0], size=(batch, n_bits))
    # The first k of a random permutation of positions are the non-zero ones.
    order = rng.random((batch, n_bits)).argsort(axis=1)
    X = np.where(order < k[:, None], signs, 0.0)
    Y = ((X > 0).sum(axis=1) % 2)[:, None]
    dtype = _float_dtype(dtype)
    return X.astype(dtype), Y.astype(dtype), k


def accuracy(ys: np.ndarray, task: Task) -> float:
    """Fraction of masked-in steps where argmax ys == argmax targets, for a "xent" task
    (Chapters 5-7).

    Parameters
    ----------
    ys : np.ndarray, shape (T, B, n_out)
        Network outputs (logits or probabilities).
    task : Task
        A classification task (loss ``"xent"``) with at least one masked-in step.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Naming ``ys`` or ``task`` when it is invalid.
    """
    if task.loss != "xent":
        raise ValueError(f"task: expected a classification task (loss 'xent'), "
                         f"got {task.name!r} with loss {task.loss!r}")
    ys = check_array(ys, "ys", shape=task.targets.shape)
    counted = task.mask > 0
    if not counted.any():
        raise ValueError(f"task: expected at least one masked-in step, got a mask of zeros "
                         f"for {task.name!r}")
    return float((ys.argmax(axis=-1) == task.targets.argmax(axis=-1))[counted].mean())


def prefix_parity(batch: int, n_bits: int, seed: int = 0,
                  dtype: DTypeLike = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Prefix parity, the cumulative sum mod 2 (Schwarzschild et al. 2021; Part V, easy to
    hard): random bit strings and, at each position i, the parity of the bits up to i, ::

        Y_i = x_0 xor x_1 xor ... xor x_i.

    The length is free, so a model trained at one ``n_bits`` is tested at longer ones.

    Parameters
    ----------
    batch : int
        Number of strings, B.
    n_bits : int
        Length of each string.
    seed : int
    dtype : dtype
        A floating-point dtype for X and Y.

    Returns
    -------
    X : np.ndarray, shape (B, n_bits)
        Uniform random bits in {0, 1}.
    Y : np.ndarray, shape (B, n_bits)
        The prefix parities, in {0, 1}.

    Raises
    ------
    ValueError
        Naming ``batch``, ``n_bits`` or ``dtype`` when it is invalid.
    """
    batch = check_positive(batch, "batch", integer=True)
    n_bits = check_positive(n_bits, "n_bits", integer=True)
    dtype = _float_dtype(dtype)
    X = np.random.default_rng(seed).integers(0, 2, size=(batch, n_bits))
    return X.astype(dtype), (np.cumsum(X, axis=1) % 2).astype(dtype)


PRIMITIVES = ("not", "reverse", "rotate_left", "rotate_right", "swap_halves", "xor_shift")


def bit_op(name: str, bits: np.ndarray) -> np.ndarray:
    """Apply one named primitive of :func:`bit_program` to bit strings (..., n) of 0s and 1s
    (Chapter 15). With b = (b_0, ..., b_{n-1}):

    - ``"not"``: 1 − b_i;
    - ``"reverse"``: b_{n-1-i};
    - ``"rotate_left"``: b_{(i+1) mod n}; ``"rotate_right"``: b_{(i-1) mod n};
    - ``"swap_halves"``: the two halves exchanged, b_{(i+n/2) mod n} (n even);
    - ``"xor_shift"``: b_i XOR b_{i-1}, with b_0 kept (the Gray code of b read from the left).

    Parameters
    ----------
    name : str
        One of :data:`PRIMITIVES`.
    bits : np.ndarray, shape (..., n)
        Bit strings.

    Returns
    -------
    np.ndarray, shape (..., n)
        The transformed strings, of the same dtype.

    Raises
    ------
    ValueError
        If ``name`` is not a primitive.
    """
    check_choice(name, "name", PRIMITIVES)
    bits = np.asarray(bits)
    if name == "not":
        return 1 - bits
    if name == "reverse":
        return bits[..., ::-1].copy()
    if name == "xor_shift":
        out = bits.copy()
        out[..., 1:] = (bits[..., 1:] != bits[..., :-1])
        return out
    shift = {"rotate_left": -1, "rotate_right": 1, "swap_halves": bits.shape[-1] // 2}[name]
    return np.roll(bits, shift, axis=-1)


def bit_program(batch: int, n_bits: int = 8, steps: int | tuple[int, int] = 3, seed: int = 0,
                dtype: DTypeLike = np.float64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A compositional task for the wide strange-loop network (Chapter 15): a random bit
    string and a program of k primitives (:data:`PRIMITIVES`, :func:`bit_op`) drawn uniformly
    and independently; the target is the string after the ops, applied in order.

    The input is a sequence of T = k_max + 2 tokens of width n_bits + len(PRIMITIVES) + 1,
    read one per loop:

    - token 0 carries the string as ±1 (2b − 1) in the first n_bits channels;
    - tokens 1..k carry the ops, one-hot in the next len(PRIMITIVES) channels;
    - token k + 1 is "end", a 1 in the last channel;
    - the tokens after it are zeros (padding up to k_max).

    Train with ``steps=(1, 3)``, test out of distribution with ``steps=(4, 8)``.

    Parameters
    ----------
    batch : int
        Number of programs, B.
    n_bits : int
        Length of each string, even and at least 2 (``"swap_halves"`` needs halves).
    steps : int or (int, int)
        The program length k, or an inclusive range (low, high) of it, low ≥ 1.
    seed : int
    dtype : dtype
        A floating-point dtype for X and Y.

    Returns
    -------
    X : np.ndarray, shape (B, k_max + 2, n_bits + len(PRIMITIVES) + 1)
        The tokens.
    Y : np.ndarray, shape (B, n_bits)
        The transformed strings, in {0, 1}.
    k : np.ndarray of int, shape (B,)
        Each program's length.

    Raises
    ------
    ValueError
        Naming the argument that is out of range.
    """
    batch = check_positive(batch, "batch", integer=True)
    n_bits = _int_at_least(n_bits, "n_bits", 2)
    if n_bits % 2:
        raise ValueError(f"n_bits: expected an even integer (swap_halves needs two halves), "
                         f"got {n_bits}")
    low, high = (steps, steps) if np.ndim(steps) == 0 else tuple(steps)
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
               for v in (low, high)) or not 1 <= low <= high:
        raise ValueError(f"steps: expected an int >= 1 or an inclusive (low, high) with "
                         f"1 <= low <= high, got {steps!r}")
    dtype = _float_dtype(dtype)
    rng = np.random.default_rng(seed)
    k = rng.integers(low, high + 1, size=batch)
    ops = rng.integers(0, len(PRIMITIVES), size=(batch, high))
    bits = rng.integers(0, 2, size=(batch, n_bits))
    n_ops = len(PRIMITIVES)
    X = np.zeros((batch, high + 2, n_bits + n_ops + 1))
    X[:, 0, :n_bits] = 2 * bits - 1
    Y = bits.copy()
    for t in range(high):
        live = t < k
        X[live, t + 1, n_bits + ops[live, t]] = 1.0
        for j, name in enumerate(PRIMITIVES):
            chosen = live & (ops[:, t] == j)
            Y[chosen] = bit_op(name, Y[chosen])
    X[np.arange(batch), k + 1, -1] = 1.0
    return X.astype(dtype), Y.astype(dtype), k
