"""Feedback alignment and direct feedback alignment (Chapter 8): FA with B = Wᵀ is backprop, FA and DFA
match an independent derivation on every backend, alignment angles, training, bad inputs."""
import math

import numpy as np
import pytest

from loopy_edu.feedback_alignment import (alignment_angle, dfa_grad_fn, dfa_loss_and_grads, fa_grad_fn,
                                          fa_loss_and_grads, random_direct_feedback, random_feedback)
from loopy_edu.mlp import MLP
from loopy_edu.optim import SGD
from loopy_edu.train import train

BACKENDS = ["numpy", "numba", "cuda"]
SIZES = [4, 5, 3, 2]  # three layers, two hidden: FA and DFA differ from each other and from backprop


def _data(sizes, n, loss, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, sizes[0]))
    y = rng.integers(0, sizes[-1], n) if loss == "xent" else rng.standard_normal((n, sizes[-1]))
    return X, y


def _model(sizes, activation, loss, seed=1):
    m = MLP(sizes, activation=activation, loss=loss, seed=seed)
    rng = np.random.default_rng(seed + 100)
    for l in range(1, m.n_layers + 1):
        m.params[f"b{l}"][:] = 0.1 * rng.standard_normal(m.sizes[l])  # non-zero biases test more
    return m


def _reference(params, X, y, activation, loss, B=None, D=None):
    """Written from the definitions, with act' computed from z: FA δ_{l-1} = (δ_l B_lᵀ) ⊙ act'(z_{l-1}),
    DFA δ_l = (δ_L D_lᵀ) ⊙ act'(z_l); neither B nor D means backprop (B_l = W_lᵀ)."""
    f, df = {
        "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2),
        "tanh": (np.tanh, lambda z: 1 / np.cosh(z) ** 2),
        "relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(float)),
    }[activation]
    L, n = len(params) // 2, X.shape[0]
    hs, zs = [X], [None]
    for l in range(1, L + 1):
        z = hs[-1] @ params[f"W{l}"].T + params[f"b{l}"]
        zs.append(z)
        hs.append(f(z) if l < L else z)
    z = zs[L]
    if loss == "xent":
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        value = -np.mean(np.log(p[np.arange(n), y]))
        onehot = np.eye(z.shape[1])[y]
        dL = (p - onehot) / n
    else:
        value = 0.5 * np.sum((z - y) ** 2) / n
        dL = (z - y) / n
    deltas = {L: dL}
    for l in range(L - 1, 0, -1):
        if D is not None:
            deltas[l] = (dL @ D[f"D{l}"].T) * df(zs[l])
        else:
            Bl = params[f"W{l + 1}"].T if B is None else B[f"B{l + 1}"]
            deltas[l] = (deltas[l + 1] @ Bl.T) * df(zs[l])
    grads = {}
    for l in range(1, L + 1):
        grads[f"W{l}"] = deltas[l].T @ hs[l - 1]
        grads[f"b{l}"] = deltas[l].sum(0)
    return value, grads


def _assert_grads_equal(g1, g2, rtol=None):
    assert list(g1) == list(g2)
    for k in g1:
        if rtol is None:
            np.testing.assert_array_equal(g1[k], g2[k], err_msg=k)
        else:
            np.testing.assert_allclose(g1[k], g2[k], rtol=rtol, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", ["xent", "mse"])
def test_fa_with_transposed_weights_is_exactly_backprop(backend, loss):
    m = _model(SIZES, "tanh", loss)
    X, y = _data(SIZES, 6, loss)
    B = {f"B{l}": m.params[f"W{l}"].T.copy() for l in range(2, m.n_layers + 1)}
    l_fa, g_fa = fa_loss_and_grads(m, X, y, B, backend=backend)
    l_bp, g_bp = m.loss_and_grads(X, y, backend=backend)
    assert l_fa == l_bp
    _assert_grads_equal(g_fa, g_bp)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fa_with_dropout_uses_the_same_masks_as_backprop(backend):
    m = MLP(SIZES, activation="relu", dropout=0.5, seed=0)
    X, y = _data(SIZES, 6, "xent")
    B = {f"B{l}": m.params[f"W{l}"].T.copy() for l in range(2, m.n_layers + 1)}
    m.rng = np.random.default_rng(7)
    _, g_fa = fa_loss_and_grads(m, X, y, B, backend=backend)
    m.rng = np.random.default_rng(7)
    _, g_bp = m.loss_and_grads(X, y, backend=backend)
    m.rng = np.random.default_rng(8)
    _, g_other = m.loss_and_grads(X, y, backend=backend)
    _assert_grads_equal(g_fa, g_bp)
    assert not np.allclose(g_fa["W1"], g_other["W1"])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", ["xent", "mse"])
def test_dfa_with_one_hidden_layer_and_D1_eq_W2T_is_exactly_backprop(backend, loss):
    m = _model([4, 5, 3], "sigmoid", loss)
    X, y = _data(m.sizes, 6, loss)
    l_dfa, g_dfa = dfa_loss_and_grads(m, X, y, {"D1": m.params["W2"].T.copy()}, backend=backend)
    l_bp, g_bp = m.loss_and_grads(X, y, backend=backend)
    assert l_dfa == l_bp
    _assert_grads_equal(g_dfa, g_bp)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("loss", ["xent", "mse"])
def test_fa_and_dfa_match_an_independent_derivation_on_every_backend(activation, loss):
    sizes = [4, 5, 6, 3, 2]  # three hidden layers
    m = _model(sizes, activation, loss)
    X, y = _data(sizes, 7, loss, seed=3)
    B, D = random_feedback(m, seed=5), random_direct_feedback(m, seed=6)
    ref_fa, ref_dfa = _reference(m.params, X, y, activation, loss, B=B), \
        _reference(m.params, X, y, activation, loss, D=D)
    ref_bp = _reference(m.params, X, y, activation, loss)
    results = {}
    for backend in BACKENDS:
        for name, fn, fb, ref in [("fa", fa_loss_and_grads, B, ref_fa), ("dfa", dfa_loss_and_grads, D, ref_dfa)]:
            value, grads = fn(m, X, y, fb, backend=backend)
            assert value == pytest.approx(ref[0], rel=1e-12)
            _assert_grads_equal(grads, ref[1], rtol=1e-10)
            results[name, backend] = grads
    for name in ["fa", "dfa"]:
        for backend in ["numba", "cuda"]:  # backends agree with each other to round-off
            for k, g in results[name, backend].items():
                np.testing.assert_allclose(g, results[name, "numpy"][k], rtol=1e-10, atol=1e-15)
    # The check can fail: random feedback changes every hidden layer's update, never the last layer's.
    for name in ["fa", "dfa"]:
        g = results[name, "numpy"]
        for k in ["W4", "b4"]:
            np.testing.assert_allclose(g[k], ref_bp[1][k], rtol=1e-12)
        for k in ["W1", "W2", "W3"] if activation != "relu" else ["W1", "W2"]:
            assert not np.allclose(g[k], ref_bp[1][k], rtol=1e-3), (name, k)


def test_dfa_top_hidden_layer_matches_backprop_only_there():
    m = _model(SIZES, "tanh", "xent")
    X, y = _data(SIZES, 6, "xent")
    D = random_direct_feedback(m, seed=2)
    D["D2"] = m.params["W3"].T.copy()
    _, g = dfa_loss_and_grads(m, X, y, D, backend="numpy")
    _, g_bp = m.loss_and_grads(X, y, backend="numpy")
    for k in ["W3", "b3", "W2", "b2"]:
        np.testing.assert_array_equal(g[k], g_bp[k])
    assert not np.allclose(g["W1"], g_bp["W1"], rtol=1e-3)


def test_random_feedback_shapes_scale_and_seed():
    m = MLP([300, 200, 100, 10], activation="relu", seed=0)
    B = random_feedback(m, seed=4)
    assert sorted(B) == ["B2", "B3"]
    assert B["B2"].shape == (200, 100) and B["B3"].shape == (100, 10)
    assert B["B2"].std() == pytest.approx(math.sqrt(2 / 200), rel=0.03)       # He, like W2
    assert B["B3"].std() == pytest.approx(math.sqrt(2 / 110), rel=0.05)       # Glorot, like W3
    assert B["B2"].std() == pytest.approx(m.params["W2"].std(), rel=0.05)
    np.testing.assert_array_equal(random_feedback(m, seed=4)["B3"], B["B3"])
    assert not np.array_equal(random_feedback(m, seed=5)["B3"], B["B3"])
    assert random_feedback(m, scale=0.5)["B2"].std() == pytest.approx(0.5, rel=0.03)
    D = random_direct_feedback(m, seed=1)
    assert sorted(D) == ["D1", "D2"] and D["D1"].shape == (200, 10) and D["D2"].shape == (100, 10)
    assert D["D2"].std() == pytest.approx(math.sqrt(2 / 110), rel=0.1)
    assert random_direct_feedback(m, scale=0.3)["D1"].std() == pytest.approx(0.3, rel=0.05)
    m32 = MLP([3, 4, 2], dtype=np.float32)
    assert random_feedback(m32)["B2"].dtype == np.float32
    assert random_feedback(MLP([3, 2])) == {} and random_direct_feedback(MLP([3, 2])) == {}


def test_alignment_angle():
    rng = np.random.default_rng(0)
    g = {"W1": rng.standard_normal((3, 4)), "b1": rng.standard_normal(3)}
    assert alignment_angle(g, g) == 0.0
    assert alignment_angle(g, {k: 3.0 * v for k, v in g.items()}) == pytest.approx(0.0, abs=1e-6)
    assert alignment_angle(g, {k: -v for k, v in g.items()}) == pytest.approx(180.0, abs=1e-6)
    assert alignment_angle(np.array([1.0, 0.0]), np.array([0.0, 2.0])) == pytest.approx(90.0, abs=1e-12)
    assert alignment_angle(np.array([1.0, 0.0]), np.array([1.0, 1.0])) == pytest.approx(45.0, abs=1e-12)
    # Dicts are flattened and concatenated: orthogonal across keys, 90° overall.
    a = {"W1": np.ones((2, 2)), "b1": np.zeros(2)}
    b = {"W1": np.zeros((2, 2)), "b1": np.ones(2)}
    assert alignment_angle(a, b) == pytest.approx(90.0, abs=1e-12)
    u, v = rng.standard_normal(50), rng.standard_normal(50)
    cos = u @ v / np.linalg.norm(u) / np.linalg.norm(v)
    assert alignment_angle(u, v) == pytest.approx(math.degrees(math.acos(cos)), abs=1e-9)


@pytest.mark.parametrize("a, b, match", [
    (np.zeros(3), np.ones(3), "a: expected a non-zero vector"),
    (np.ones(3), np.ones(4), r"a, b: expected the same shape, got \(3,\) and \(4,\)"),
    ({"W1": np.ones(2)}, {"W2": np.ones(2)}, "a, b: expected the same keys"),
    ({"W1": np.ones(2)}, {"W1": np.ones(3)}, r"a\['W1'\], b\['W1'\]: expected the same shape"),
    (np.ones(2), np.array([1.0, np.nan]), "b: expected finite values"),
    ({}, {}, "a: expected a non-empty dict"),
])
def test_alignment_angle_bad_inputs(a, b, match):
    with pytest.raises(ValueError, match=match):
        alignment_angle(a, b)


def test_fa_and_dfa_training_reduce_the_loss():
    """Two interleaved spirals' easier cousin: labels from a random tanh teacher, learnt through train()."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 6))
    teacher = np.tanh(X @ rng.standard_normal((6, 8))) @ rng.standard_normal((8, 3))
    y = teacher.argmax(1)
    for make, fn in [(random_feedback, fa_grad_fn), (random_direct_feedback, dfa_grad_fn)]:
        m = MLP([6, 32, 16, 3], activation="tanh", seed=0, backend="numpy")
        start = m.loss(X, y)
        hist = train(m, X, y, SGD(0.2, backend="numpy"), epochs=15, batch_size=20,
                     grad_fn=fn(make(m, seed=1)), progress=False)
        assert len(hist.loss) == 15 * 20
        end = m.loss(X, y)
        assert end < 0.6 * start, (fn.__name__, start, end)
        assert m.accuracy(X, y) > 0.85


def test_bad_feedback_raises_clear_errors():
    m = MLP([10, 20, 10, 3], seed=0)
    X, y = _data(m.sizes, 4, "xent")
    B = random_feedback(m)
    bad = dict(B, B2=B["B2"].T)
    with pytest.raises(ValueError, match=r"B\['B2'\]: expected shape \(20, 10\), got \(10, 20\)"):
        fa_loss_and_grads(m, X, y, bad)
    with pytest.raises(ValueError, match=r"B: expected a dict with keys \['B2', 'B3'\], missing \['B3'\]"):
        fa_loss_and_grads(m, X, y, {"B2": B["B2"]})
    with pytest.raises(ValueError, match=r"unexpected \['B1'\]"):
        fa_loss_and_grads(m, X, y, dict(B, B1=np.ones((10, 20))))
    nan = {k: v.copy() for k, v in B.items()}
    nan["B3"][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"B\['B3'\]: expected finite values, got 1 NaN"):
        fa_loss_and_grads(m, X, y, nan)
    with pytest.raises(ValueError, match="B: expected a dict"):
        fa_loss_and_grads(m, X, y, [B["B2"], B["B3"]])
    D = random_direct_feedback(m)
    with pytest.raises(ValueError, match=r"D\['D1'\]: expected shape \(20, 3\), got \(3, 20\)"):
        dfa_loss_and_grads(m, X, y, dict(D, D1=D["D1"].T))
    with pytest.raises(ValueError, match=r"D: expected a dict with keys \['D1', 'D2'\], missing \['D2'\]"):
        dfa_loss_and_grads(m, X, y, {"D1": D["D1"]})
    with pytest.raises(ValueError, match="scale: expected a positive finite number"):
        random_feedback(m, scale=-1.0)
    with pytest.raises(ValueError, match="backend: expected one of"):
        fa_loss_and_grads(m, X, y, B, backend="tpu")
    with pytest.raises(ValueError, match="X: expected shape"):
        fa_loss_and_grads(m, X[:, :3], y, B)
    # The MLP's own feedback argument is checked too.
    with pytest.raises(ValueError, match=r"feedback\['W2'\]: expected shape \(3, 20\), got \(10, 20\)"):
        m.loss_and_grads(X, y, feedback={"W2": np.ones((10, 20)), "W3": np.ones((3, 10))}, direct=True)
