"""Tests for the sequence tasks: each task's definition is recomputed here independently, with plain loops."""
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopy_edu import tasks
from loopy_edu.tasks import Task

REAL_DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()
SEEDS = st.integers(0, 2**32 - 1)

# One small instance of each synthetic task; keyword arguments (seed, dtype) pass through.
MAKERS = {
    "coin": lambda **kw: tasks.coin(30, batch=3, **kw),
    "copy": lambda **kw: tasks.copy(4, length=3, batch=3, **kw),
    "adding": lambda **kw: tasks.adding(20, batch=3, **kw),
    "sines": lambda **kw: tasks.sines(120, batch=2, **kw),
    "flip_flop": lambda **kw: tasks.flip_flop(200, batch=3, p=0.1, **kw),
    "parity": lambda **kw: tasks.parity(30, window=3, batch=3, **kw),
    "arjovsky_copy": lambda **kw: tasks.arjovsky_copy(7, batch=3, length=4, **kw),
    "cued_recall": lambda **kw: tasks.cued_recall(6, batch=5, **kw),
    "selective_copy": lambda **kw: tasks.selective_copy(20, batch=3, n_tokens=5, **kw),
    "counting": lambda **kw: tasks.counting(40, 3, batch=2, **kw),
    "memory_capacity": lambda **kw: tasks.memory_capacity_task(30, 5, batch=2, **kw),
}


# --- every task ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MAKERS)
def test_shapes_dtypes_and_conventions(name):
    task = MAKERS[name]()
    T, B = task.T, task.B
    assert task.name == name
    assert task.xs.shape == (T, B, task.n_in) and task.targets.shape == (T, B, task.n_out)
    assert task.mask.shape == (T, B)
    assert {a.dtype for a in (task.xs, task.targets, task.mask)} == {np.dtype(np.float64)}
    assert set(np.unique(task.mask)) <= {0.0, 1.0} and task.mask.any()
    if name != "flip_flop":  # whose masked-out steps may hold the sign of channels that have pulsed
        assert np.all(task.targets[task.mask == 0] == 0)
    if task.loss == "xent":
        on = task.targets[task.mask == 1]
        assert np.allclose(on.sum(axis=-1), 1) and set(np.unique(on)) <= {0.0, 1.0}


@pytest.mark.parametrize("name", MAKERS)
def test_dtype_is_respected(name):
    task = MAKERS[name](dtype=np.float32)
    assert {a.dtype for a in (task.xs, task.targets, task.mask)} == {np.dtype(np.float32)}
    np.testing.assert_allclose(task.targets, MAKERS[name]().targets, atol=1e-6)


@pytest.mark.parametrize("name", MAKERS)
def test_same_seed_same_task_other_seed_other_task(name):
    a, b, c = MAKERS[name](seed=7), MAKERS[name](seed=7), MAKERS[name](seed=8)
    for key in ("xs", "targets", "mask"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert not (np.array_equal(a.xs, c.xs) and np.array_equal(a.targets, c.targets))


# --- coin ------------------------------------------------------------------------------------


def binary_entropy(q):
    return -sum(v * math.log(v) for v in (q, 1 - q) if v > 0)


def test_coin_plateaus_match_the_hand_values():
    # Hand derivation: p is 0.5, 1, 0.25, 0.75 for (x_{t-t1}, x_{t-t2}) = 00, 10, 01, 11.
    plateaus = tasks.coin_plateaus()
    assert plateaus["none"] == pytest.approx(binary_entropy(0.625))
    assert plateaus["t1"] == pytest.approx(0.5 * binary_entropy(0.375) + 0.5 * binary_entropy(0.875))
    assert plateaus["both"] == pytest.approx((binary_entropy(0.5) + 0 + 2 * binary_entropy(0.25)) / 4)
    assert [round(plateaus[k], 3) for k in ("none", "t1", "both")] == [0.662, 0.519, 0.454]
    assert tasks.coin_plateaus(2, 30) == plateaus


def test_coin_statistics_and_plateaus_by_monte_carlo():
    t1, t2, T = 3, 7, 200_000
    task = tasks.coin(T, t1=t1, t2=t2, seed=11)
    x, y = task.xs[:, 0, 0], task.targets[:, 0, 1]
    assert set(np.unique(x)) == {0.0, 1.0} and abs(x.mean() - 0.5) < 0.01
    a, b, yy = x[t2 - t1:T - t1], x[:T - t2], y[t2:]  # x_{t-t1}, x_{t-t2}, y_t for t >= t2
    for x1 in (0, 1):
        for x2 in (0, 1):
            sel = (a == x1) & (b == x2)
            assert abs(yy[sel].mean() - (0.5 + 0.5 * x1 - 0.25 * x2)) < 0.01
    predictors = {
        "none": np.full_like(yy, 0.625),
        "t1": np.where(a == 1, 0.875, 0.375),
        "both": 0.5 + 0.5 * a - 0.25 * b,
    }
    for key, q in predictors.items():
        with np.errstate(divide="ignore"):
            ce = -np.where(yy == 1, np.log(q), np.log1p(-q))
        assert np.isfinite(ce).all()  # the optimal predictor never rules out what happens
        assert abs(ce.mean() - tasks.coin_plateaus(t1, t2)[key]) < 0.01, key


def test_coin_mask_and_probability():
    task = tasks.coin(40, batch=2, t1=2, t2=5)
    assert np.all(task.mask[:5] == 0) and np.all(task.mask[5:] == 1)
    p = tasks.coin_probability(task.xs, 2, 5)
    assert np.isnan(p[:5]).all()
    x = task.xs[..., 0]
    for t in range(5, 40):
        for b in range(2):
            assert p[t, b] == 0.5 + 0.5 * x[t - 2, b] - 0.25 * x[t - 5, b]
            if p[t, b] in (0.0, 1.0):  # a certain outcome must be the one sampled
                assert task.targets[t, b, 1] == p[t, b]


# --- copy, adding, flip-flop, parity -----------------------------------------------------------


@settings(deadline=None, max_examples=30)
@given(delay=st.integers(0, 6), length=st.integers(1, 4), n_symbols=st.integers(1, 5), batch=st.integers(1, 3),
       seed=SEEDS)
def test_copy_timeline(delay, length, n_symbols, batch, seed):
    task = tasks.copy(delay, length=length, n_symbols=n_symbols, batch=batch, seed=seed)
    cue = length + delay
    assert task.T == 2 * length + delay and task.n_in == n_symbols + 1 and task.n_out == n_symbols
    for b in range(batch):
        shown = [int(np.argmax(task.xs[t, b, :n_symbols])) for t in range(length)]
        for t in range(task.T):
            x = task.xs[t, b]
            assert x.sum() == (1 if t < length or t == cue else 0)
            assert x[n_symbols] == (t == cue)
            assert task.mask[t, b] == (t >= cue)
            if t >= cue:
                assert int(np.argmax(task.targets[t, b])) == shown[t - cue]


@settings(deadline=None, max_examples=30)
@given(T=st.integers(2, 40), batch=st.integers(1, 4), seed=SEEDS)
def test_adding_definition(T, batch, seed):
    task = tasks.adding(T, batch=batch, seed=seed)
    values, markers = task.xs[..., 0], task.xs[..., 1]
    assert np.all((values >= 0) & (values < 1))
    for b in range(batch):
        marked = [t for t in range(T) if markers[t, b] == 1]
        assert len(marked) == 2 and np.count_nonzero(markers[:, b]) == 2
        assert marked[0] < T // 2 <= marked[1]
        assert task.targets[-1, b, 0] == pytest.approx(values[marked[0], b] + values[marked[1], b])
    assert np.all(task.mask[:-1] == 0) and np.all(task.mask[-1] == 1)


def test_adding_baseline_by_monte_carlo():
    task = tasks.adding(10, batch=100_000, seed=3)
    loss = 0.5 * np.mean((1.0 - task.targets[-1, :, 0]) ** 2)
    assert tasks.adding_baseline() == pytest.approx(1 / 12)
    assert abs(loss - tasks.adding_baseline()) < 0.002


@settings(deadline=None, max_examples=30)
@given(T=st.integers(1, 60), n_bits=st.integers(1, 4), batch=st.integers(1, 3), p=st.floats(0.05, 1.0), seed=SEEDS)
def test_flip_flop_against_a_loop(T, n_bits, batch, p, seed):
    task = tasks.flip_flop(T, n_bits=n_bits, batch=batch, p=p, seed=seed)
    assert set(np.unique(task.xs)) <= {-1.0, 0.0, 1.0}
    for b in range(batch):
        state = [0.0] * n_bits
        for t in range(T):
            for i in range(n_bits):
                if task.xs[t, b, i] != 0:
                    state[i] = task.xs[t, b, i]
            assert list(task.targets[t, b]) == state
            assert task.mask[t, b] == all(s != 0 for s in state)


def test_flip_flop_pulse_rate():
    task = tasks.flip_flop(2000, batch=5, p=0.05, seed=1)
    pulses = task.xs != 0
    assert abs(pulses.mean() - 0.05) < 0.005 and abs((task.xs[pulses] > 0).mean() - 0.5) < 0.05


@settings(deadline=None, max_examples=30)
@given(T=st.integers(1, 30), window=st.integers(1, 6), batch=st.integers(1, 3), seed=SEEDS)
def test_parity_against_a_loop(T, window, batch, seed):
    if window > T:
        with pytest.raises(ValueError, match="T: expected an integer >= "):
            tasks.parity(T, window=window)
        return
    task = tasks.parity(T, window=window, batch=batch, seed=seed)
    bits = task.xs[..., 0].astype(int)
    for b in range(batch):
        for t in range(T):
            assert task.mask[t, b] == (t >= window - 1)
            if t >= window - 1:
                xor = 0
                for s in range(t - window + 1, t + 1):
                    xor ^= bits[s, b]
                assert task.targets[t, b, xor] == 1


# --- sines -----------------------------------------------------------------------------------


def test_sines_is_periodic_unit_scaled_and_the_same_for_every_row():
    task = tasks.sines(250, batch=3, seed=4)
    y = task.targets[:, :, 0]
    assert np.array_equal(y[:, 0], y[:, 1]) and np.array_equal(y[:, 0], y[:, 2])
    np.testing.assert_allclose(y[100:200, 0], y[:100, 0], atol=1e-12)  # lcm(25, 50, 100) = 100
    assert not np.allclose(y[50:100, 0], y[:50, 0])  # but not with the shorter periods alone
    assert np.abs(y).max() == pytest.approx(1.0)
    assert np.all(task.xs[0] == 1) and np.all(task.xs[1:] == 0) and np.all(task.mask == 1)
    # A shorter run is the same pattern, with the same scale.
    np.testing.assert_allclose(tasks.sines(30, seed=4).targets[:, 0, 0], y[:30, 0], atol=1e-12)


def test_sines_is_a_sum_of_the_given_periods():
    y = tasks.sines(84, n_sines=2, periods=(12, 7), seed=2).targets[:, 0, 0]
    t = np.arange(84)
    basis = np.stack([np.sin(2 * np.pi * t / 12), np.cos(2 * np.pi * t / 12),
                      np.sin(2 * np.pi * t / 7), np.cos(2 * np.pi * t / 7)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    np.testing.assert_allclose(basis @ coef, y, atol=1e-10)
    amplitudes = np.hypot(coef[0::2], coef[1::2])
    assert np.all(amplitudes > 0.05)


# --- sequential MNIST ------------------------------------------------------------------------


@pytest.mark.skipif(not (REAL_DATA / "mnist").is_dir(), reason=f"no offline MNIST folder at {REAL_DATA}")
@pytest.mark.filterwarnings("ignore::loopy_edu.data.MNISTFallbackWarning")
def test_sequential_mnist_rows_labels_and_permutation():
    from loopy_edu.data import load_mnist

    mnist = load_mnist(REAL_DATA, download=False)
    kw = dict(data_dir=REAL_DATA, download=False, seed=5)
    plain = tasks.sequential_mnist("test", n=40, **kw)
    assert (plain.T, plain.B, plain.n_in, plain.n_out) == (28, 40, 28, 10) and plain.loss == "xent"
    assert np.all(plain.mask[:-1] == 0) and np.all(plain.mask[-1] == 1)
    # Each example is some test image, row t at step t, with its label at the last step.
    flat = plain.xs.transpose(1, 0, 2).reshape(40, 784)
    rows = []
    for i in range(40):
        (j,) = np.flatnonzero(np.all(mnist.x_test == flat[i].astype(np.float32), axis=1))[:1]
        assert np.argmax(plain.targets[-1, i]) == mnist.y_test[j]
        rows.append(j)
    assert len(set(rows)) == 40 and rows != list(range(40))  # distinct examples, in a shuffled order
    # Permuted: the same examples with one pixel permutation, shared by the train split for this seed.
    perm_test = tasks.sequential_mnist("test", n=40, permute=True, **kw)
    plain_train = tasks.sequential_mnist("train", n=40, **kw)
    perm_train = tasks.sequential_mnist("train", n=40, permute=True, **kw)
    assert perm_test.name == "sequential_mnist_permuted"
    np.testing.assert_array_equal(perm_test.targets, plain.targets)
    before = np.concatenate([flat, plain_train.xs.transpose(1, 0, 2).reshape(40, 784)])
    after = np.concatenate([perm_test.xs.transpose(1, 0, 2).reshape(40, 784),
                            perm_train.xs.transpose(1, 0, 2).reshape(40, 784)])
    assert not np.array_equal(before, after)

    def columns(m):  # the pixel columns as a sorted list: equal iff after == before[:, some permutation]
        return sorted(map(tuple, m.T))

    assert columns(before) == columns(after)
    everything = tasks.sequential_mnist("train", dtype=np.float32, **kw)
    assert everything.B == len(mnist.y_train) and everything.xs.dtype == np.float32
    assert everything.xs.min() == 0 and everything.xs.max() == 1
    with pytest.raises(ValueError, match=f"n: expected at most {len(mnist.y_test):,}"):
        tasks.sequential_mnist("test", n=len(mnist.y_test) + 1, **kw)


# --- accuracy and the Task itself --------------------------------------------------------------


def test_accuracy_counts_only_masked_in_steps():
    task = tasks.parity(12, window=3, batch=2, seed=0)
    ys = task.targets.copy()
    assert tasks.accuracy(ys, task) == 1.0
    ys[:2] = 1 - ys[:2]  # wrong where the mask is 0: still perfect
    assert tasks.accuracy(ys, task) == 1.0
    ys[2, 0] = 1 - ys[2, 0]  # one wrong step of the 2 * 10 that count
    assert tasks.accuracy(ys, task) == pytest.approx(19 / 20)
    with pytest.raises(ValueError, match="task: expected a classification task"):
        tasks.accuracy(np.zeros((20, 1, 1)), tasks.adding(20))
    with pytest.raises(ValueError, match=r"ys: expected shape \(12, 2, 2\)"):
        tasks.accuracy(ys[:, :1], task)


def test_task_checks_its_arrays():
    with pytest.raises(ValueError, match="loss: expected one of"):
        Task(np.zeros((3, 1, 1)), np.zeros((3, 1, 1)), np.ones((3, 1)), "l2", "x")
    with pytest.raises(ValueError, match=r"mask: expected shape \(3, 2\)"):
        Task(np.zeros((3, 2, 1)), np.zeros((3, 2, 1)), np.ones((3, 1)), "mse", "x")
    with pytest.raises(ValueError, match="targets: expected shape"):
        Task(np.zeros((3, 2, 1)), np.zeros((4, 2, 1)), np.ones((3, 2)), "mse", "x")


@pytest.mark.parametrize("call, match", [
    (lambda: tasks.coin(0), "T: expected a positive integer, got 0"),
    (lambda: tasks.coin(9), r"T: expected an integer >= 10 \(T > t2 = 9\), got 9"),
    (lambda: tasks.coin(20, t1=0), "t1: expected an integer >= 1, got 0"),
    (lambda: tasks.coin(20, t1=5, t2=5), r"t2: expected an integer >= 6 \(t2 > t1 = 5\), got 5"),
    (lambda: tasks.coin(20, batch=1.5), "batch: expected a positive integer, got 1.5"),
    (lambda: tasks.coin(20, dtype=np.int64), "dtype: expected a floating-point dtype"),
    (lambda: tasks.coin_probability(np.zeros((20, 1, 2))), r"xs: expected shape \(n, n, 1\)"),
    (lambda: tasks.coin_plateaus(3, 2), "t2: expected an integer >= 4"),
    (lambda: tasks.copy(-1), "delay: expected an integer >= 0, got -1"),
    (lambda: tasks.copy(2, length=0), "length: expected a positive integer, got 0"),
    (lambda: tasks.copy(2, n_symbols=0), "n_symbols: expected a positive integer, got 0"),
    (lambda: tasks.adding(1), "T: expected an integer >= 2, got 1"),
    (lambda: tasks.sines(10, periods=(10, 20)), r"periods: expected 3 periods \(n_sines=3\), got 2"),
    (lambda: tasks.sines(10, n_sines=1, periods=np.array([1])),
     "periods: expected an integer >= 2 for each period, got 1"),
    (lambda: tasks.sines(10, n_sines=1, periods=(2.5,)), "periods: expected an integer >= 2"),
    (lambda: tasks.sines(10, n_sines=3, periods=(997, 991, 983)), "periods: expected a least common multiple"),
    (lambda: tasks.flip_flop(10, p=0), "p: expected a positive finite number, got 0"),
    (lambda: tasks.flip_flop(10, p=1.5), r"p: expected a probability in \(0, 1\], got 1.5"),
    (lambda: tasks.flip_flop(10, n_bits=0), "n_bits: expected a positive integer, got 0"),
    (lambda: tasks.parity(10, window=0), "window: expected a positive integer, got 0"),
    (lambda: tasks.parity(3, window=4), r"T: expected an integer >= 4 \(T >= window = 4\), got 3"),
    (lambda: tasks.sequential_mnist("valid"), "split: expected one of"),
    (lambda: tasks.sequential_mnist(n=0), "n: expected a positive integer, got 0"),
    (lambda: tasks.sequential_mnist(permute="yes"), "permute: expected True or False, got 'yes'"),
    (lambda: tasks.arjovsky_copy(0), "T: expected a positive integer, got 0"),
    (lambda: tasks.cued_recall(-1), "T: expected an integer >= 0, got -1"),
    (lambda: tasks.cued_recall(5, n_symbols=1), "n_symbols: expected an integer >= 2, got 1"),
    (lambda: tasks.cued_recall(5, cue_window=0), "cue_window: expected a positive integer, got 0"),
    (lambda: tasks.selective_copy(5, n_tokens=8),
     r"L: expected an integer >= 8 \(room for n_tokens\), got 5"),
    (lambda: tasks.counting(10, 0), "n: expected a positive integer, got 0"),
    (lambda: tasks.counting(1, 2), "steps: expected an integer >= 2, got 1"),
    (lambda: tasks.memory_capacity_task(5, 5), r"T: expected an integer >= 6 \(k_max \+ 1\), got 5"),
    (lambda: tasks.memory_capacity_task(50, 5, scale=-1), "scale: expected a positive"),
])
def test_bad_arguments_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- Part IV memory tasks ---------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 12), length=st.integers(1, 5), n_symbols=st.integers(2, 9),
       batch=st.integers(1, 3), seed=SEEDS)
def test_arjovsky_copy_timeline(T, length, n_symbols, batch, seed):
    task = tasks.arjovsky_copy(T, batch, n_symbols, length, seed)
    xs, ys = task.xs.argmax(-1), task.targets.argmax(-1)      # channel / class per step
    assert task.xs.shape == (T + 2 * length, batch, n_symbols + 2)
    for b in range(batch):
        symbols = xs[:length, b]
        assert np.all((symbols >= 1) & (symbols <= n_symbols))
        for t in range(length, T + 2 * length):
            assert xs[t, b] == (n_symbols + 1 if t == length + T - 1 else 0)
            assert ys[t, b] == (symbols[t - length - T] if t >= length + T else 0)
    assert np.all(task.mask == 1)


@pytest.mark.parametrize("T", [1, 100, 500])
def test_arjovsky_baseline_is_the_memoryless_cross_entropy(T):
    task = tasks.arjovsky_copy(T, batch=2, seed=1)
    probs = np.zeros(task.targets.shape[0:1] + task.targets.shape[2:])     # (T + 20, 9)
    probs[:T + 10, 0] = 1.0                                   # blank, for sure
    probs[T + 10:, 1:] = 1 / 8                                # then a uniform guess
    with np.errstate(divide="ignore"):
        ce = -(task.targets * np.where(task.targets > 0, np.log(probs[:, None]), 0)).sum(-1)
    assert ce.mean() == pytest.approx(tasks.arjovsky_copy_baseline(T), rel=1e-12)
    assert tasks.arjovsky_copy_baseline(T) == pytest.approx(10 * math.log(8) / (T + 20))


def test_cued_recall_asks_for_the_cued_symbol():
    task = tasks.cued_recall(15, batch=200, n_symbols=8, cue_window=10, seed=3)
    xs, go = task.xs, 10 + 15
    assert np.all(xs[:, :, 8].sum(0) == 1) and np.all(xs[10:, :, 8] == 0)   # one cue, early
    assert np.all(xs[:, :, 9].sum(0) == 1) and np.all(xs[go, :, 9] == 1)    # go at the end
    assert np.all(xs[:go, :, :8].sum(-1) == 1) and np.all(xs[go, :, :8] == 0)
    cue = xs[:, :, 8].argmax(0)
    cued = xs[cue, np.arange(200), :8].argmax(-1)
    np.testing.assert_array_equal(task.targets[go].argmax(-1), cued)
    assert np.all(task.mask[go] == 1) and task.mask.sum() == 200
    assert len(np.unique(cue)) == 10 and len(np.unique(cued)) == 8           # all used


@settings(max_examples=25, deadline=None)
@given(L=st.integers(8, 40), batch=st.integers(1, 3), seed=SEEDS)
def test_selective_copy_recalls_the_tokens_in_order(L, batch, seed):
    task = tasks.selective_copy(L, batch, n_tokens=8, n_symbols=8, seed=seed)
    channel = task.xs.argmax(-1)
    for b in range(batch):
        content = channel[:L, b]
        data = [c for c in content if c < 8]                  # the noise symbol is channel 8
        assert len(data) == 8 and np.all(task.xs[:L, b].sum(-1) == 1)
        assert channel[L, b] == 9 and np.all(task.xs[L + 1:, b] == 0)
        assert list(task.targets[L + 1:, b].argmax(-1)) == data
    assert task.mask.sum() == 8 * batch and np.all(task.mask[L + 1:] == 1)


@pytest.mark.parametrize("n", [1, 4])
def test_counting_stream_is_made_of_words_and_targets_are_the_next_symbol(n):
    task = tasks.counting(300, n, batch=2, seed=5)
    stream = task.xs.argmax(-1)
    np.testing.assert_array_equal(task.targets[:-1].argmax(-1), stream[1:])
    for b in range(2):
        text = "".join("ABCDEF"[s] for s in stream[:, b])
        words = text[:len(text) // (n + 2) * (n + 2)]
        chunks = {words[i:i + n + 2] for i in range(0, len(words), n + 2)}
        assert chunks == {"A" + "B" * n + "C", "D" + "E" * n + "F"}


def test_memory_capacity_task_targets_are_the_delayed_inputs():
    task = tasks.memory_capacity_task(60, 7, batch=2, seed=2)
    u = task.xs[:, :, 0]
    assert np.all(np.abs(u) <= 0.5) and u.std() > 0.2
    for t in range(60):
        for k in range(1, 8):
            expected = u[t - k] if t >= 7 else 0.0
            np.testing.assert_array_equal(task.targets[t, :, k - 1], expected)
    assert np.all(task.mask[:7] == 0) and np.all(task.mask[7:] == 1)
