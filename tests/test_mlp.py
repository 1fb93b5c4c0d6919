"""The MLP contract (Chapter 3): shapes, initialisation, exact gradients, backends, bad inputs."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from loopy_edu.gradcheck import check_grads, rel_error
from loopy_edu.mlp import MLP

ACTS = ["sigmoid", "tanh", "relu"]
BACKENDS = ["numpy", "numba", "cuda"]


def _data(sizes, B, seed=0, loss="xent"):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((B, sizes[0]))
    y = rng.integers(0, sizes[-1], B) if loss == "xent" else rng.standard_normal((B, sizes[-1]))
    return X, y


def test_param_shapes_and_init():
    m = MLP([30, 20, 10, 5], activation="tanh", seed=3)
    assert list(m.params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    for l, (fan_in, fan_out) in enumerate(zip(m.sizes[:-1], m.sizes[1:]), start=1):
        assert m.params[f"W{l}"].shape == (fan_out, fan_in)
        assert m.params[f"b{l}"].shape == (fan_out,)
        assert not m.params[f"b{l}"].any()
    big = MLP([400, 300, 2], activation="relu", seed=0).params["W1"]
    assert big.std() == pytest.approx(math.sqrt(2 / 400), rel=0.02)          # He
    big = MLP([400, 300, 2], activation="tanh", seed=0).params["W1"]
    assert big.std() == pytest.approx(math.sqrt(2 / 700), rel=0.02)          # Glorot
    assert MLP([4, 3], seed=1).params["W1"].tolist() == MLP([4, 3], seed=1).params["W1"].tolist()
    assert MLP([4, 3], dtype=np.float32).params["W1"].dtype == np.float32
    assert MLP([400, 300, 2], init=np.float32(0.1)).params["W2"].std() == pytest.approx(0.1, rel=0.1)


def test_forward_and_loss_match_the_definition():
    """a_l = act(a_{l-1} W_lᵀ + b_l), linear logits, mean softmax cross-entropy: written out per sample."""
    m = MLP([5, 4, 3], activation="sigmoid", seed=2)
    m.params["b1"][:] = [0.1, -0.2, 0.3, 0.0]
    X, y = _data(m.sizes, 6)
    W1, b1, W2, b2 = (m.params[k] for k in ["W1", "b1", "W2", "b2"])
    total = 0.0
    for x, label in zip(X, y):
        h = [1 / (1 + math.exp(-(W1[j] @ x + b1[j]))) for j in range(4)]
        z = [W2[k] @ np.array(h) + b2[k] for k in range(3)]
        total += math.log(sum(math.exp(v) for v in z)) - z[label]
    for backend in BACKENDS:
        loss, _ = m.loss_and_grads(X, y, backend=backend)
        assert loss == pytest.approx(total / len(y), rel=1e-12)
    assert m.loss(X, y) == pytest.approx(total / len(y), rel=1e-12)
    np.testing.assert_array_equal(m.predict(X), m.logits(X, backend="numpy").argmax(1))


# The CUDA kernels are proven through their agreement with the NumPy reference (below): finite differences
# need hundreds of loss evaluations, which the simulator makes slow.
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("loss", ["xent", "mse"])
def test_gradient_matches_finite_differences(activation, backend, loss):
    m = MLP([6, 5, 4, 3], activation=activation, seed=1, backend=backend, loss=loss)
    for k in ("b1", "b2", "b3"):   # non-zero biases keep ReLU's kink away from the probes
        m.params[k][:] = np.random.default_rng(0).uniform(0.1, 0.5, m.params[k].shape)
    X, y = _data(m.sizes, 5, seed=4, loss=loss)
    errors = check_grads(m, X, y)
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_gradient_with_dropout_masks(backend):
    m = MLP([6, 5, 4, 3], activation="tanh", seed=1, backend=backend, dropout=0.4)
    X, y = _data(m.sizes, 5, seed=2)
    masks = m.dropout_masks(5)
    assert any((mk == 0).any() for mk in masks)
    assert max(check_grads(m, X, y, masks=masks).values()) < 1e-7


def test_gradient_is_wrong_when_the_masks_differ():
    """The check above can fail: gradients taken with other masks disagree with the finite differences."""
    m = MLP([6, 5, 3], seed=1, dropout=0.5)
    X, y = _data(m.sizes, 4)
    masks, other = m.dropout_masks(4), m.dropout_masks(4)
    _, g = m.loss_and_grads(X, y, masks=other)
    _, g_true = m.loss_and_grads(X, y, masks=masks)
    assert rel_error(g["W1"], g_true["W1"]) > 1e-3


@settings(max_examples=20, deadline=None)
@given(sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4), B=st.integers(1, 5),
       activation=st.sampled_from(ACTS), seed=st.integers(0, 2**16), dropout=st.sampled_from([0.0, 0.3]))
def test_numba_agrees_with_numpy(sizes, B, activation, seed, dropout):
    sizes[-1] = max(sizes[-1], 2)
    m = MLP(sizes, activation=activation, seed=seed, dropout=dropout)
    X, y = _data(sizes, B, seed)
    masks = m.dropout_masks(B)
    l0, g0 = m.loss_and_grads(X, y, masks=masks, backend="numpy")
    l1, g1 = m.loss_and_grads(X, y, masks=masks, backend="numba")
    assert l1 == pytest.approx(l0, rel=1e-12, abs=1e-14)
    for k in g0:
        np.testing.assert_allclose(g1[k], g0[k], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(m.logits(X, backend="numba"), m.logits(X, backend="numpy"), rtol=1e-12)


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("loss", ["xent", "mse"])
def test_cuda_agrees_with_numpy(loss, activation):
    m = MLP([5, 4, 3, 2], activation=activation, seed=7, loss=loss, dropout=0.25)
    X, y = _data(m.sizes, 3, seed=1, loss=loss)
    masks = m.dropout_masks(3)
    l0, g0 = m.loss_and_grads(X, y, masks=masks, backend="numpy")
    l1, g1 = m.loss_and_grads(X, y, masks=masks, backend="cuda")
    assert l1 == pytest.approx(l0, rel=1e-12)
    for k in g0:
        np.testing.assert_allclose(g1[k], g0[k], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(m.logits(X, backend="cuda"), m.logits(X, backend="numpy"), rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_float32_runs_in_float32(backend):
    m = MLP([6, 5, 3], dtype=np.float32, backend=backend)
    X, y = _data(m.sizes, 4)
    loss, grads = m.loss_and_grads(X, y)
    assert all(g.dtype == np.float32 for g in grads.values())
    m64 = MLP([6, 5, 3], dtype=np.float64)
    _, g64 = m64.loss_and_grads(X, y)
    assert rel_error(grads["W1"], g64["W1"]) < 1e-5


def test_dropout_is_inverted_and_off_at_test_time():
    m = MLP([3, 2000, 2], dropout=0.3, seed=0)
    (mask,) = m.dropout_masks(50)
    assert set(np.unique(mask)) == {0.0, 1 / 0.7}
    assert abs((mask == 0).mean() - 0.3) < 0.01
    X, _ = _data(m.sizes, 4)
    np.testing.assert_array_equal(m.logits(X), m.logits(X))   # no randomness outside training


def test_regression_mode():
    m = MLP([1, 8, 2], activation="tanh", loss="mse")
    X, Y = _data(m.sizes, 5, loss="mse")
    loss, _ = m.loss_and_grads(X, Y)
    assert loss == pytest.approx(0.5 * ((m.predict(X) - Y) ** 2).sum() / 5, rel=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(sizes=[784]), "sizes: expected at least two"),
    (dict(sizes=[784, 0, 10]), "sizes: expected at least two positive"),
    (dict(sizes=[4, 3], activation="softsign"), "activation: expected one of"),
    (dict(sizes=[4, 3], backend="jax"), "backend: expected one of"),
    (dict(sizes=[4, 3], dropout=1.0), "dropout: expected a finite number in \\[0, 1\\)"),
    (dict(sizes=[4, 3], dtype=np.int32), "dtype: expected float32 or float64"),
    (dict(sizes=[4, 3], init="xavier"), "init: expected"),
    (dict(sizes=[4, 3], loss="hinge"), "loss: expected one of"),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLP(**kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_inputs(backend):
    m = MLP([4, 3, 3], backend=backend)
    X, y = _data(m.sizes, 5)
    with pytest.raises(ValueError, match=r"X: expected shape \(n, 4\), got \(5, 3\)"):
        m.loss_and_grads(X[:, :3], y)
    with pytest.raises(ValueError, match="X: expected finite values, got 1 NaN"):
        bad = X.copy()
        bad[1, 2] = np.nan
        m.loss_and_grads(bad, y)
    with pytest.raises(ValueError, match=r"y: expected labels in \[0, 2\], got values in \[0, 3\]"):
        m.loss_and_grads(X, np.array([0, 1, 3, 2, 0]))
    with pytest.raises(ValueError, match="y: expected 5 labels"):
        m.loss_and_grads(X, y[:4])
    with pytest.raises(ValueError, match="X: expected a non-empty array"):
        m.loss_and_grads(X[:0], y[:0])
    with pytest.raises(ValueError, match="y: expected integer labels"):
        m.loss_and_grads(X, y + 0.5)
    with pytest.raises(ValueError, match="masks: expected 1 arrays"):
        m.loss_and_grads(X, y, masks=[])
    m.params["W2"] = m.params["W2"][:, :2]
    with pytest.raises(ValueError, match=r"params\['W2'\]: expected a float64 array of shape \(3, 3\)"):
        m.loss_and_grads(X, y)


def test_silent_bad_values_are_refused():
    """Defect 3: each of these used to pass, or fail with an unnamed error."""
    with pytest.raises(ValueError, match=r"dropout: expected a finite number in \[0, 1\), got '0.5'"):
        MLP([4, 3], dropout="0.5")
    m = MLP([4, 3, 2])
    X, y = _data([4, 3, 2], 5)
    with pytest.raises(ValueError, match=r"X: expected shape \(n, 4\)"):
        m.accuracy(X[:, :3], y)
    with pytest.raises(ValueError, match="y: expected 5 labels"):
        m.accuracy(X, y[:4])
    with pytest.raises(ValueError, match="accuracy: needs a classifier"):
        MLP([4, 2], loss="mse").accuracy(X, y)
    m.params["W1"][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"params\['W1'\]: expected finite values"):
        m.loss(X, y)


def test_chapter_3_backward_is_plain_backprop():
    """Defect 4: Chapter 3 explains `backward` line by line; the later chapters' dropout and
    feedback live beside it, and with the weights as feedback they give the same gradient."""
    import inspect
    from loopy_edu.mlp import backward, feedback_backward, forward
    assert list(inspect.signature(backward).parameters) == ["params", "a", "y", "activation", "loss"]
    m = MLP([4, 5, 3, 2], "tanh", seed=1)
    X, y = _data([4, 5, 3, 2], 6, seed=2)
    a = forward(m.params, X, "tanh")
    loss, g = backward(m.params, a, y, "tanh")
    loss_fb, g_fb = feedback_backward(m.params, a, y, "tanh", m.params)
    assert loss == loss_fb and all(np.array_equal(g[k], g_fb[k]) for k in g)
    ones = [np.ones((6, n)) for n in (5, 3)]
    _, g_masked = feedback_backward(m.params, a, y, "tanh", m.params, masks=ones)
    assert all(np.allclose(g[k], g_masked[k], rtol=1e-14, atol=0) for k in g)
