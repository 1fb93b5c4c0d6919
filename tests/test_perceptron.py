"""Rosenblatt's perceptron (Chapter 2): the rule, Novikoff's bound, XOR, the criterion's gradient,
backends, bad inputs."""
import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from loopy_edu import perceptron as P
from loopy_edu.gradcheck import check_grads
from loopy_edu.perceptron import (Perceptron, as_pm1, make_separable, margin, mistake_bound,
                                  rosenblatt_epochs, xor_data)

BACKENDS = ["numpy", "numba", "cuda"]


def test_params_start_at_zero_with_a_scalar_bias():
    m = Perceptron(3)
    assert m.params["w"].shape == (3,) and m.params["b"].shape == ()
    assert not m.params["w"].any() and m.params["b"] == 0
    m32 = Perceptron(2, dtype=np.float32)
    assert m32.params["w"].dtype == np.float32 and m32.params["b"].dtype == np.float32


def test_rule_on_a_hand_worked_example():
    """x = (1, 0) labelled +1, x = (0, 1) labelled −1, visited in order, from w = 0, b = 0.

    Visit 1: score 0 ≤ 0, mistake: w = (1, 0), b = 1. Visit 2: score 0 + 1 = 1, y·score = −1, mistake:
    w = (1, −1), b = 0. Epoch 2: scores 1 and −1, both right: stop after 2 epochs and 2 updates.
    """
    X, y = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1, -1])
    for backend in BACKENDS:
        m = Perceptron(2, backend=backend)
        h = m.fit(X, y, shuffle=False, record=True)
        assert m.params["w"].tolist() == [1.0, -1.0] and float(m.params["b"]) == 0.0, backend
        assert h.mistakes.tolist() == [2, 0] and h.steps.tolist() == [0, 1] and h.converged
        assert h.w_path.tolist() == [[0, 0], [1, 0], [1, -1]] and h.b_path.tolist() == [0, 1, 0]


def _augmented_perceptron(X, y, orders):
    """An independent textbook version: w̃ += y x̃ on x̃ = (x, 1), epoch by epoch."""
    Xa = np.hstack([X, np.ones((len(X), 1))])
    wa = np.zeros(Xa.shape[1])
    path = [wa.copy()]
    for order in orders:
        before = len(path)
        for i in order:
            if y[i] * np.dot(wa, Xa[i]) <= 0:
                wa = wa + y[i] * Xa[i]
                path.append(wa.copy())
        if len(path) == before:
            break
    return np.array(path)


@pytest.mark.parametrize("backend", ["numpy", "numba"])   # cuda is held to numpy below
def test_fit_follows_the_augmented_rule(backend):
    X, y, _, _ = make_separable(10, 3, margin=0.1, seed=5)
    m = Perceptron(3, backend=backend)
    h = m.fit(X, y, epochs=30, seed=11, record=True)
    assert h.converged and h.updates > 20 and m.params["b"] != 0
    rng = np.random.default_rng(11)
    orders = [rng.permutation(10) for _ in range(30)]
    ref = _augmented_perceptron(X, y, orders)
    np.testing.assert_allclose(np.column_stack([h.w_path, h.b_path]), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.append(m.params["w"], m.params["b"]), ref[-1], rtol=0, atol=1e-12)
    assert h.mistakes.sum() == h.updates == len(ref) - 1


@pytest.mark.parametrize("case", ["separable", "wide", "xor"])
def test_backends_give_identical_trajectories(case):
    if case == "separable":
        X, y, _, _ = make_separable(10, 3, margin=0.15, seed=2)
        n_in, epochs = 3, 20
    elif case == "wide":  # more features than the simulator's block: threads stride over w
        X, y, _, _ = make_separable(6, 11, margin=0.1, seed=5)
        n_in, epochs = 11, 2
    else:
        X, y = xor_data()
        n_in, epochs = 2, 6
    hists = {}
    for backend in BACKENDS:
        m = Perceptron(n_in, backend=backend)
        h = m.fit(X, y, epochs=epochs, seed=11, record=True)
        hists[backend] = (h, m.params["w"].copy(), float(m.params["b"]))
    h0, w0, b0 = hists["numpy"]
    assert h0.updates > 3
    for backend in ("numba", "cuda"):
        h, w, b = hists[backend]
        np.testing.assert_array_equal(h.steps, h0.steps)
        np.testing.assert_array_equal(h.mistakes, h0.mistakes)
        np.testing.assert_array_equal(h.w_path, h0.w_path)
        np.testing.assert_array_equal(h.b_path, h0.b_path)
        np.testing.assert_array_equal(w, w0)
        assert b == b0


def test_float32_numba_matches_numpy():
    X, y, _, _ = make_separable(40, 4, margin=0.05, seed=8)
    out = []
    for backend in ("numpy", "numba"):
        m = Perceptron(4, dtype=np.float32, backend=backend)
        h = m.fit(X, y, epochs=200, seed=1)
        assert m.params["w"].dtype == np.float32
        out.append((h.steps, m.params["w"]))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_recorded_path_replays_real_mistakes(backend):
    """Each recorded update corrects a sample that the weights before it got wrong (or put on the line)."""
    X, y, _, _ = make_separable(50, 2, margin=0.05, seed=3)
    m = Perceptron(2, backend=backend)
    h = m.fit(X, y, epochs=500, seed=0, record=True)
    assert h.converged and h.updates == h.mistakes.sum() > 5
    assert not h.w_path[0].any() and h.b_path[0] == 0
    np.testing.assert_array_equal(h.w_path[-1], m.params["w"])
    assert h.b_path[-1] == m.params["b"]
    for k, i in enumerate(h.steps):
        assert y[i] * (X[i] @ h.w_path[k] + h.b_path[k]) <= 0
        np.testing.assert_allclose(h.w_path[k + 1] - h.w_path[k], y[i] * X[i], atol=1e-12)
        assert h.b_path[k + 1] - h.b_path[k] == y[i]


def test_converges_to_zero_training_errors():
    for seed in range(5):
        X, y, _, _ = make_separable(200, 5, margin=0.05, seed=seed)
        m = Perceptron(5, seed=seed)
        h = m.fit(X, y, epochs=10_000)
        assert h.converged and h.mistakes[-1] == 0 and h.mistakes[0] > 0
        assert m.accuracy(X, y) == 1.0
        assert margin(m.params["w"], m.params["b"], X, y) > 0


@settings(max_examples=60, deadline=None)
@given(n_in=st.integers(1, 5), n=st.integers(2, 60), gamma=st.floats(0.02, 0.5),
       scale=st.floats(0.3, 3.0), data_seed=st.integers(0, 2**32 - 1), order_seed=st.integers(0, 100))
def test_novikoff_bound_in_augmented_space(n_in, n, gamma, scale, data_seed, order_seed):
    """Updates ≤ (R/γ)², with x̃ = (x, 1), R = max‖x̃‖, γ = min y u·x̃ for a unit u ∈ R^{n_in+1}."""
    rng = np.random.default_rng(data_seed)
    u = rng.standard_normal(n_in + 1)
    u /= np.linalg.norm(u)
    X = scale * rng.uniform(-1, 1, (20 * n, n_in))
    Xa = np.hstack([X, np.ones((len(X), 1))])
    keep = np.abs(Xa @ u) >= gamma
    assume(keep.sum() >= n)
    X, Xa = X[keep][:n], Xa[keep][:n]
    y = np.sign(Xa @ u)
    R = np.linalg.norm(Xa, axis=1).max()
    g = np.min(y * (Xa @ u))
    bound = (R / g) ** 2
    h = Perceptron(n_in).fit(X, y, epochs=int(bound) + 2, seed=order_seed)
    assert h.converged
    assert h.updates <= bound
    assert mistake_bound(u[:-1], u[-1], X, y) == pytest.approx(bound, rel=1e-12)


def test_bound_needs_the_augmented_inputs():
    """Without folding the bias in, (R/γ)² measured in input space is no bound: here it is 9, yet the
    bias moves in steps of 1 and the weight must grow to about 50 before the points are separated."""
    X, y = np.array([[0.01], [0.03]]), np.array([-1, 1])
    w, b = np.array([1.0]), -0.02          # the separator x = 0.02, with margin 0.01
    input_space = (0.03 / margin(w, b, X, y)) ** 2
    h = Perceptron(1).fit(X, y, epochs=100_000, shuffle=False)
    assert h.converged
    assert h.updates > 100 * input_space
    assert h.updates <= mistake_bound(w, b, X, y)


def test_xor_never_converges_but_a_product_feature_fixes_it():
    X, y = xor_data()
    assert y.tolist() == [-1, 1, 1, -1]
    m = Perceptron(2)
    h = m.fit(X, y, epochs=2000, seed=0)
    assert not h.converged and h.epochs == 2000 and h.mistakes.min() >= 1
    assert m.accuracy(X, y) < 1.0
    Xf = np.column_stack([X, X[:, 0] * X[:, 1]])
    mf = Perceptron(3)
    assert mf.fit(Xf, y, epochs=2000, seed=0).converged
    assert mf.accuracy(Xf, y) == 1.0


def test_loss_and_grads_match_finite_differences():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 4)), rng.choice([-1, 1], 30)
    m = Perceptron(4)
    m.params["w"][:] = rng.standard_normal(4)
    m.params["b"][...] = 0.3
    s = y * (X @ m.params["w"] + m.params["b"])
    assert np.abs(s).min() > 1e-3 and (s < 0).sum() >= 5          # away from kinks, some mistakes
    errors = check_grads(m, X, y)
    assert max(errors.values()) < 1e-8, errors
    loss, grads = m.loss_and_grads(X, y)
    assert loss == pytest.approx(np.maximum(0, -s).mean(), rel=1e-14)
    assert grads["w"].shape == (4,) and grads["b"].shape == ()


def test_gradient_is_the_batch_rosenblatt_rule():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((25, 3)), rng.choice([0, 1], 25)
    m = Perceptron(3)
    m.params["w"][:] = [0.5, -1.0, 0.2]
    ypm = np.where(y == 1, 1.0, -1.0)
    step_w, step_b = np.zeros(3), 0.0
    for x_i, y_i in zip(X, ypm):
        if y_i * (x_i @ m.params["w"] + m.params["b"]) <= 0:
            step_w += y_i * x_i
            step_b += y_i
    _, grads = m.loss_and_grads(X, y)
    np.testing.assert_allclose(-25 * grads["w"], step_w, atol=1e-12)
    assert -25 * grads["b"] == pytest.approx(step_b)
    # From w = 0 every point sits on the kink; the one-sided choice makes one step of size 1 on a single
    # sample exactly Rosenblatt's first update, instead of leaving w = 0 stuck.
    z = Perceptron(3)
    _, g = z.loss_and_grads(X[:1], ypm[:1])
    np.testing.assert_array_equal(-g["w"], ypm[0] * X[0])
    assert -g["b"] == ypm[0]


def test_margin_and_bound_by_hand():
    X, y = np.array([[0.0, 1.0], [0.0, -1.0]]), np.array([1, -1])
    w, b = np.array([0.0, 3.0]), 2.0
    # scores 5 and −1, so y·score = 5 and 1: γ = 1/‖w‖ = 1/3; augmented, 1/‖(0, 3, 2)‖ = 1/√13.
    assert margin(w, b, X, y) == pytest.approx(1 / 3)
    assert margin(w, b, X, y, augmented=True) == pytest.approx(1 / np.sqrt(13))
    assert mistake_bound(w, b, X, y) == pytest.approx(2 * 13)      # R² = 1 + 1, γ² = 1/13
    assert margin(w, b, X, -y) == pytest.approx(-5 / 3)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 80), n_in=st.integers(1, 6), gamma=st.floats(0.01, 0.25),
       radius=st.floats(0.5, 4.0), seed=st.integers(0, 2**32 - 1))
def test_make_separable_has_the_requested_margin_and_radius(n, n_in, gamma, radius, seed):
    g = gamma * radius
    X, y, w, b = make_separable(n, n_in, margin=g, radius=radius, seed=seed)
    assert X.shape == (n, n_in) and y.shape == (n,)
    assert set(y.tolist()) == {-1.0, 1.0}
    assert np.linalg.norm(w) == pytest.approx(1.0)
    assert np.linalg.norm(X, axis=1).max() <= radius * (1 + 1e-12)
    assert margin(w, b, X, y) == pytest.approx(g, rel=1e-9)
    X2, y2, _, _ = make_separable(n, n_in, margin=g, radius=radius, seed=seed)
    np.testing.assert_array_equal(X, X2)


def test_orders_are_seeded_and_chunking_changes_nothing(monkeypatch):
    X, y, _, _ = make_separable(30, 2, margin=0.03, seed=6)
    a = Perceptron(2).fit(X, y, epochs=300, seed=5, record=True)
    assert a.epochs > 3
    assert np.array_equal(a.steps, Perceptron(2).fit(X, y, epochs=300, seed=5).steps)
    assert not np.array_equal(a.steps, Perceptron(2).fit(X, y, epochs=300, seed=6).steps)
    assert np.array_equal(a.steps, Perceptron(2, seed=5).fit(X, y, epochs=300).steps)
    monkeypatch.setattr(P, "_ORDER_CHUNK", 2 * 30)          # two epochs per chunk
    for backend in ("numpy", "numba"):
        b = Perceptron(2, backend=backend).fit(X, y, epochs=300, seed=5, record=True)
        np.testing.assert_array_equal(b.steps, a.steps)
        np.testing.assert_array_equal(b.mistakes, a.mistakes)
        np.testing.assert_array_equal(b.w_path, a.w_path)
    ordered = Perceptron(2).fit(X, y, epochs=1, shuffle=False)
    assert np.all(np.diff(ordered.steps) > 0)


def test_labels_zero_one_and_predict():
    assert as_pm1([0, 1, 1]).tolist() == [-1.0, 1.0, 1.0]
    assert as_pm1(np.array([1.0, -1.0])).tolist() == [1.0, -1.0]
    assert as_pm1([True, False]).tolist() == [1.0, -1.0]
    m = Perceptron(2)
    m.params["w"][:] = [1.0, 0.0]
    assert m.predict([[2.0, 0.0], [-1.0, 3.0], [0.0, 5.0]]).tolist() == [1, -1, -1]   # on the line → −1
    assert m.accuracy([[2.0, 0.0], [-1.0, 3.0]], [1, 0]) == 1.0


def test_bad_inputs_raise_clear_errors():
    m = Perceptron(2)
    X = np.zeros((3, 2))
    msg = r"y: expected labels in \{-1, \+1\} or in \{0, 1\}, got values \[0, 2\]"
    with pytest.raises(ValueError, match=msg):
        m.fit(X, [0, 2, 2])
    with pytest.raises(ValueError, match=r"y: expected labels .* got values \[-1, 0, 1\]"):
        m.fit(X, [-1, 0, 1])
    with pytest.raises(ValueError, match="y: expected finite labels, got 1 NaN"):
        m.fit(X, [1.0, np.nan, -1.0])
    with pytest.raises(ValueError, match="y: expected numeric labels"):
        m.fit(X, ["a", "b", "a"])
    with pytest.raises(ValueError, match="y: expected 3 labels"):
        m.fit(X, [1, -1])
    with pytest.raises(ValueError, match="y: expected a 1-D array"):
        m.fit(X, [[1], [-1], [1]])
    with pytest.raises(ValueError, match="X: expected finite values, got 1 NaN"):
        m.fit([[0.0, np.nan], [1.0, 1.0]], [1, -1])
    with pytest.raises(ValueError, match=r"X: expected shape \(n, 2\), got \(3, 3\)"):
        m.fit(np.zeros((3, 3)), [1, -1, 1])
    with pytest.raises(ValueError, match=r"X: expected shape \(n, 2\), got \(2,\)"):
        m.predict([1.0, 2.0])
    with pytest.raises(ValueError, match="X: expected a non-empty array"):
        m.fit(np.zeros((0, 2)), [])
    with pytest.raises(ValueError, match="epochs: expected a positive integer, got 0"):
        m.fit(X, [1, -1, 1], epochs=0)
    with pytest.raises(ValueError, match="backend: expected one of"):
        m.fit(X, [1, -1, 1], backend="gpu")
    with pytest.raises(ValueError, match="backend: expected one of"):
        Perceptron(2, backend="torch")
    with pytest.raises(ValueError, match="n_in: expected a positive integer"):
        Perceptron(0)
    with pytest.raises(ValueError, match="dtype: expected float32 or float64"):
        Perceptron(2, dtype=np.int32)
    m.params["b"] = np.zeros(1)
    with pytest.raises(ValueError, match=r"params\['b'\]: expected a float64 array of shape \(\)"):
        m.fit(X, [1, -1, 1])
    m.params["b"] = np.zeros(())
    m.params["w"][0] = np.inf
    with pytest.raises(ValueError, match=r"params\['w'\]: expected finite values"):
        m.predict(X)
    with pytest.raises(ValueError, match="w: expected a non-zero weight vector"):
        margin(np.zeros(2), 0.0, X, [1, -1, 1])
    with pytest.raises(ValueError, match=r"\(w, b\): expected a separator"):
        mistake_bound(np.array([1.0, 0.0]), 0.0, np.eye(2), [-1, 1])
    with pytest.raises(ValueError, match="margin: expected a number in"):
        make_separable(10, 2, margin=0.5, radius=1.0)
    with pytest.raises(ValueError, match="n: expected at least 2 points"):
        make_separable(1)
