"""The LSTM contract (Chapter 7): shapes, initialisation, the forward equations, exact gradients by BPTT,
backends, bad inputs."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from loopy_edu.gradcheck import check_grads, rel_error
from loopy_edu.lstm import LSTM

BACKENDS = ["numpy", "numba", "cuda"]
KEYS = ["W_ih", "W_hh", "b", "W_out", "b_out"]


def _data(T, B, n_in, n_out, loss="mse", seed=0):
    """Inputs (T, B, n_in), targets (T, B, n_out) (probability vectors for "xent") and a mask (T, B) with
    zeros and unequal weights."""
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((T, B, n_in))
    if loss == "xent":
        targets = rng.dirichlet(np.ones(n_out), size=(T, B))
    else:
        targets = rng.standard_normal((T, B, n_out))
    mask = rng.uniform(0.5, 2.0, (T, B)) * (rng.random((T, B)) < 0.7)
    return xs, targets, mask


def _model(n_in=3, H=4, n_out=2, seed=1, **kwargs):
    """A model with random biases added to the initial ones, so that no check rests on the init's 0s and 1s."""
    m = LSTM(n_in, H, n_out, seed=seed, **kwargs)
    rng = np.random.default_rng(seed + 100)
    m.params["b"] += rng.uniform(-0.5, 0.5, 4 * H).astype(m.dtype)
    m.params["b_out"] += rng.uniform(-0.5, 0.5, n_out).astype(m.dtype)
    return m


def _plain_forward(params, x):
    """The equations of Chapter 7 for one sequence x (T, n_in), unit by unit with Python floats."""
    W_ih, W_hh, b, W_out, b_out = (params[k].tolist() for k in KEYS)
    H, n_in, n_out = len(W_hh[0]), len(W_ih[0]), len(W_out)
    sig = lambda v: 1 / (1 + math.exp(-v))
    h, c, hs, ys = [0.0] * H, [0.0] * H, [], []
    for x_t in x.tolist():
        z = [b[j] + sum(W_ih[j][k] * x_t[k] for k in range(n_in)) + sum(W_hh[j][k] * h[k] for k in range(H))
             for j in range(4 * H)]
        i, f = [sig(v) for v in z[:H]], [sig(v) for v in z[H:2 * H]]
        g, o = [math.tanh(v) for v in z[2 * H:3 * H]], [sig(v) for v in z[3 * H:]]
        c = [f[k] * c[k] + i[k] * g[k] for k in range(H)]
        h = [o[k] * math.tanh(c[k]) for k in range(H)]
        hs.append(h)
        ys.append([b_out[j] + sum(W_out[j][k] * h[k] for k in range(H)) for j in range(n_out)])
    return np.array(hs), np.array(ys)


def test_param_order_shapes_and_init():
    m = LSTM(3, 4, 2)
    assert list(m.params) == KEYS
    assert {k: v.shape for k, v in m.params.items()} == m.shapes() == {
        "W_ih": (16, 3), "W_hh": (16, 4), "b": (16,), "W_out": (2, 4), "b_out": (2,)}
    b = m.params["b"]
    np.testing.assert_array_equal(b[4:8], 1.0)                                  # forget gate
    assert not b[:4].any() and not b[8:].any() and not m.params["b_out"].any()
    big = LSTM(50, 400, 30, seed=3)
    bound = 1 / math.sqrt(400)
    for k in ("W_ih", "W_hh"):
        w = big.params[k]
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
        assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)         # uniform, not Gaussian
    assert big.params["W_out"].std() == pytest.approx(1 / math.sqrt(400), rel=0.03)
    assert np.abs(big.params["W_out"]).max() > 3 * bound                         # Gaussian tails
    np.testing.assert_array_equal(LSTM(3, 4, 2, seed=5).params["W_hh"], LSTM(3, 4, 2, seed=5).params["W_hh"])
    assert not np.array_equal(LSTM(3, 4, 2, seed=5).params["W_hh"], LSTM(3, 4, 2, seed=6).params["W_hh"])
    assert all(p.dtype == np.float32 for p in LSTM(3, 4, 2, dtype=np.float32).params.values())


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_and_loss_match_the_equations(backend):
    m = _model(backend=backend)
    xs, targets, mask = _data(4, 2, 3, 2)
    hs, ys = m.forward(xs)
    total = 0.0
    for r in range(2):
        h_ref, y_ref = _plain_forward(m.params, xs[:, r])
        np.testing.assert_allclose(hs[:, r], h_ref, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(ys[:, r], y_ref, rtol=1e-12, atol=1e-15)
        total += 0.5 * sum(mask[t, r] * np.sum((y_ref[t] - targets[t, r]) ** 2) for t in range(4))
    assert m.loss_and_grads(xs, targets, loss="mse", mask=mask)[0] == pytest.approx(total / 2, rel=1e-12)
    assert m.loss(xs, targets, loss="mse", mask=mask) == pytest.approx(total / 2, rel=1e-12)
    h1, y1 = m.forward(xs[:, 1])                                 # unbatched: no batch axis
    assert h1.shape == (4, 4) and y1.shape == (4, 2)
    np.testing.assert_allclose(y1, ys[:, 1], rtol=1e-12)
    np.testing.assert_array_equal(m.predict(xs), ys)


def test_cross_entropy_matches_its_definition():
    m = _model()
    xs, p, mask = _data(5, 3, 3, 2, loss="xent")
    total = 0.0
    for r in range(3):
        _, y = _plain_forward(m.params, xs[:, r])
        for t in range(5):
            logq = y[t] - math.log(sum(math.exp(v) for v in y[t]))
            total -= mask[t, r] * float(p[t, r] @ logq)
    for backend in BACKENDS:
        assert m.loss_and_grads(xs, p, "xent", mask, backend=backend)[0] == pytest.approx(total / 3, rel=1e-12)


# The CUDA kernels are proven through their agreement with the NumPy reference (below): finite differences
# need hundreds of loss evaluations, which the simulator makes slow.
@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("loss", ["mse", "xent"])
def test_gradient_matches_finite_differences(backend, loss):
    m = _model(backend=backend)
    xs, targets, mask = _data(6, 3, 3, 2, loss=loss, seed=2)
    assert (mask == 0).any() and (mask > 1).any()
    errors = check_grads(m, xs, targets, loss, mask)
    assert max(errors.values()) < 1e-7, errors


def test_gradient_unbatched_and_long_memory():
    """One sequence (T, n_in), long enough that the cell carries the gradient back over many steps."""
    m = _model(n_in=2, H=3, n_out=2, seed=4)
    xs, targets, _ = _data(30, 1, 2, 2, seed=5)
    mask = np.zeros(30)
    mask[-1] = 1.0                                               # only the last step is scored
    errors = check_grads(m, xs[:, 0], targets[:, 0], loss="mse", mask=mask)
    assert max(errors.values()) < 1e-7, errors
    xs2 = xs.copy()
    xs2[0] += 1.0                                                # the first input still matters at the end
    loss = lambda x: m.loss(x[:, 0], targets[:, 0], loss="mse", mask=mask)
    assert loss(xs2) != loss(xs)


def test_gradient_is_wrong_when_the_mask_differs():
    """The check above can fail: gradients taken with another mask disagree with the finite differences."""
    m = _model()
    xs, targets, mask = _data(5, 2, 3, 2, seed=3)
    _, g = m.loss_and_grads(xs, targets, loss="mse", mask=np.ones_like(mask))
    _, g_true = m.loss_and_grads(xs, targets, loss="mse", mask=mask)
    assert rel_error(g["W_hh"], g_true["W_hh"]) > 1e-3


def test_one_step_has_no_recurrent_or_forget_gradient():
    """With T = 1 the recurrent weights only multiply h_0 = 0 and the forget gate only multiplies c_0 = 0."""
    m = _model()
    xs, targets, _ = _data(1, 2, 3, 2)
    forget = slice(4, 8)
    for backend in BACKENDS:
        _, g = m.loss_and_grads(xs, targets, loss="mse", backend=backend)
        np.testing.assert_array_equal(g["W_hh"], 0.0)
        np.testing.assert_array_equal(g["W_ih"][forget], 0.0)
        np.testing.assert_array_equal(g["b"][forget], 0.0)
        others = np.delete(g["W_ih"], np.r_[forget], axis=0)
        assert np.abs(others).min() > 0


def test_masked_steps_do_not_matter():
    m = _model()
    xs, targets, mask = _data(5, 3, 3, 2, seed=6)
    noisy = targets + 100.0 * (mask == 0)[..., None]
    for backend in ("numpy", "numba"):
        l0, g0 = m.loss_and_grads(xs, targets, loss="mse", mask=mask, backend=backend)
        l1, g1 = m.loss_and_grads(xs, noisy, loss="mse", mask=mask, backend=backend)
        assert l1 == pytest.approx(l0, rel=1e-12)
        for k in KEYS:
            np.testing.assert_allclose(g1[k], g0[k], rtol=1e-12, atol=1e-15)


def _assert_agree(m, xs, targets, loss, mask, backend):
    l0, g0 = m.loss_and_grads(xs, targets, loss, mask, backend="numpy")
    l1, g1 = m.loss_and_grads(xs, targets, loss, mask, backend=backend)
    assert l1 == pytest.approx(l0, rel=1e-10, abs=1e-14)
    assert list(g1) == KEYS
    for k in KEYS:
        assert g1[k].shape == m.params[k].shape
        np.testing.assert_allclose(g1[k], g0[k], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(m.forward(xs, backend=backend)[0], m.forward(xs, backend="numpy")[0],
                               rtol=1e-10, atol=1e-14)


@settings(max_examples=20, deadline=None)
@given(T=st.integers(1, 6), B=st.integers(1, 4), H=st.integers(1, 6), n_in=st.integers(1, 4),
       n_out=st.integers(1, 4), loss=st.sampled_from(["mse", "xent"]), seed=st.integers(0, 2**16))
def test_numba_agrees_with_numpy(T, B, H, n_in, n_out, loss, seed):
    xs, targets, mask = _data(T, B, n_in, n_out, loss, seed)
    _assert_agree(_model(n_in, H, n_out, seed=seed), xs, targets, loss, mask, "numba")


@pytest.mark.parametrize("loss", ["mse", "xent"])
@pytest.mark.parametrize("H", [3, 5])
def test_cuda_agrees_with_numpy(loss, H):
    m = _model(n_in=3, H=H, n_out=3, seed=H)
    xs, targets, mask = _data(4, 2, 3, 3, loss=loss, seed=H)
    _assert_agree(m, xs, targets, loss, mask, "cuda")


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_runs_in_float32(backend):
    m32 = _model(dtype=np.float32, backend=backend)
    m64 = _model()
    xs, targets, mask = _data(5, 2, 3, 2)
    l32, g32 = m32.loss_and_grads(xs, targets, loss="mse", mask=mask)
    l64, g64 = m64.loss_and_grads(xs, targets, loss="mse", mask=mask)
    assert all(g.dtype == np.float32 for g in g32.values())
    assert m32.forward(xs)[0].dtype == np.float32
    assert l32 == pytest.approx(l64, rel=1e-5)
    for k in KEYS:
        assert rel_error(g32[k], g64[k]) < 1e-5


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_in=0, n_hidden=4, n_out=2), "n_in: expected a positive integer"),
    (dict(n_in=3, n_hidden=2.5, n_out=2), "n_hidden: expected a positive integer"),
    (dict(n_in=3, n_hidden=4, n_out=-1), "n_out: expected a positive integer"),
    (dict(n_in=3, n_hidden=4, n_out=2, dtype=np.int32), "dtype: expected float32 or float64"),
    (dict(n_in=3, n_hidden=4, n_out=2, backend="jax"), "backend: expected one of"),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LSTM(**kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_inputs(backend):
    m = LSTM(3, 4, 2, backend=backend)
    xs, targets, mask = _data(5, 2, 3, 2)
    with pytest.raises(ValueError, match=r"targets: expected shape \(5, 2, 2\), got \(4, 2, 2\)"):
        m.loss_and_grads(xs, targets[:4], loss="mse")
    with pytest.raises(ValueError, match="xs: expected a non-empty array, got shape \\(0, 2, 3\\)"):
        m.loss_and_grads(xs[:0], targets[:0], loss="mse")
    with pytest.raises(ValueError, match=r"xs: expected shape \(T, 3\) or \(T, B, 3\), got \(5, 2, 2\)"):
        m.loss_and_grads(xs[..., :2], targets, loss="mse")
    with pytest.raises(ValueError, match=r"xs: expected shape \(T, 3\) or \(T, B, 3\), got \(5, 2, 4\)"):
        m.forward(np.zeros((5, 2, 4)))
    bad = xs.copy()
    bad[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match="xs: expected finite values, got 1 NaN"):
        m.loss_and_grads(bad, targets, loss="mse")
    with pytest.raises(ValueError, match="xs: expected finite values"):
        m.forward(bad)
    with pytest.raises(ValueError, match=r"mask: expected shape \(5, 2\)"):
        m.loss_and_grads(xs, targets, loss="mse", mask=mask[:, :1])
    with pytest.raises(ValueError, match="mask: expected non-negative"):
        m.loss_and_grads(xs, targets, loss="mse", mask=-mask)
    with pytest.raises(ValueError, match="loss: expected one of"):
        m.loss_and_grads(xs, targets, loss="hinge")
    with pytest.raises(ValueError, match="targets: expected probability vectors"):
        m.loss_and_grads(xs, targets, loss="xent")
    m.params["W_hh"] = m.params["W_hh"][:, :3]
    with pytest.raises(ValueError, match=r"params\['W_hh'\]: expected a float64 array of shape \(16, 4\)"):
        m.loss_and_grads(xs, targets, loss="mse")


def test_forget_bias_sets_only_the_forget_rows():
    H = 4
    b = LSTM(2, H, 1, forget_bias=3.0).params["b"]
    np.testing.assert_array_equal(b[H:2 * H], 3.0)
    assert not b[:H].any() and not b[2 * H:].any()
    with pytest.raises(ValueError, match="forget_bias"):
        LSTM(2, H, 1, forget_bias=float("nan"))
