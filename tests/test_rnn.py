"""The leaky RNN contract and BPTT (Chapter 5): definition, exact gradients, truncation, backends, errors."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from loopy_edu.bptt import bptt, lag_norms
from loopy_edu.gradcheck import check_grads, rel_error
from loopy_edu.optim import Adam, clip_grad_norm
from loopy_edu.rnn import RNN
from loopy_edu import tasks
from loopy_edu.train import train_sequences

BACKENDS = ["numpy", "numba", "cuda"]


def problem(T=6, B=3, n_in=2, N=5, n_out=3, alpha=0.7, activation="tanh", loss="mse", seed=0):
    """A random model (non-zero biases) and a masked batch of sequences; xent targets are probabilities."""
    rng = np.random.default_rng(seed)
    model = RNN(n_in, N, n_out, alpha=alpha, activation=activation, seed=seed)
    for p in model.params.values():
        p += 0.3 * rng.standard_normal(p.shape)
    xs = rng.standard_normal((T, B, n_in))
    if loss == "mse":
        targets = rng.standard_normal((T, B, n_out))
    else:
        targets = rng.random((T, B, n_out))
        targets /= targets.sum(axis=-1, keepdims=True)
    mask = (rng.random((T, B)) < 0.7).astype(float)
    return model, xs, targets, mask


def test_contract_shapes_and_init():
    m = RNN(3, 40, 2, seed=1)
    assert list(m.params) == ["W_in", "W_rec", "b_rec", "W_out", "b_out"]
    assert [m.params[k].shape for k in m.params] == [(40, 3), (40, 40), (40,), (2, 40), (2,)]
    assert (m.alpha, m.activation, m.backend, m.dtype) == (1.0, "tanh", "numba", np.float64)
    assert m.params["W_rec"].std() == pytest.approx(1 / math.sqrt(40), rel=0.1)
    assert RNN(3, 40, 2, spectral_radius=0.5).spectral_radius() == pytest.approx(0.5)
    assert RNN(3, 4, 2, dtype=np.float32).params["W_in"].dtype == np.float32
    np.testing.assert_array_equal(RNN(3, 4, 2, seed=7).params["W_rec"], RNN(3, 4, 2, seed=7).params["W_rec"])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_forward_matches_the_equations(backend, activation):
    """h_t = (1 − α) h_{t−1} + α act(W_rec h_{t−1} + W_in x_t + b_rec), y_t = W_out h_t + b_out, per sample."""
    model, xs, _, _ = problem(T=4, B=2, activation=activation)
    act = {"sigmoid": lambda z: 1 / (1 + math.exp(-z)), "tanh": math.tanh, "relu": lambda z: max(z, 0.0)}[activation]
    P = model.params
    hs, ys = model.forward(xs, backend=backend)
    for b in range(2):
        h = [0.0] * 5
        for t in range(4):
            u = [sum(P["W_rec"][i, j] * h[j] for j in range(5)) + sum(P["W_in"][i, j] * xs[t, b, j] for j in range(2))
                 + P["b_rec"][i] for i in range(5)]
            h = [(1 - model.alpha) * h[i] + model.alpha * act(u[i]) for i in range(5)]
            y = [sum(P["W_out"][k, j] * h[j] for j in range(5)) + P["b_out"][k] for k in range(3)]
            np.testing.assert_allclose(hs[t, b], h, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(ys[t, b], y, rtol=1e-12, atol=1e-14)
    hs1, ys1 = model.forward(xs[:, 0], backend=backend)              # unbatched (T, n_in)
    np.testing.assert_allclose(ys1, ys[:, 0], rtol=1e-12)
    assert hs1.shape == (4, 5)


@pytest.mark.parametrize("loss", ["mse", "xent"])
def test_loss_matches_the_definition(loss):
    model, xs, targets, mask = problem(loss=loss)
    ys = model.predict(xs)
    total = 0.0
    for t in range(xs.shape[0]):
        for b in range(xs.shape[1]):
            if loss == "mse":
                ell = 0.5 * np.sum((ys[t, b] - targets[t, b]) ** 2)
            else:
                ell = -np.sum(targets[t, b] * (ys[t, b] - np.log(np.sum(np.exp(ys[t, b])))))
            total += mask[t, b] * ell
    expected = total / xs.shape[1]
    assert model.loss(xs, targets, loss, mask) == pytest.approx(expected, rel=1e-12)
    for backend in BACKENDS:
        assert bptt(model, xs, targets, loss, mask, backend=backend)[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("loss", ["mse", "xent"])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_bptt_matches_finite_differences(backend, loss, activation):
    model, xs, targets, mask = problem(alpha=0.6, loss=loss, activation=activation)
    errors = check_grads(model, xs, targets, loss=loss, mask=mask, backend=backend)
    assert max(errors.values()) < 1e-7, errors


def test_loss_and_grads_is_bptt():
    model, xs, targets, mask = problem()
    l1, g1 = model.loss_and_grads(xs, targets, loss="mse", mask=mask)
    l2, g2 = bptt(model, xs, targets, "mse", mask)
    assert l1 == l2 and all(np.array_equal(g1[k], g2[k]) for k in g1)


@pytest.mark.parametrize("loss", ["mse", "xent"])
@pytest.mark.parametrize("truncation", [None, 1, 2, 6])
def test_backends_agree(loss, truncation):
    model, xs, targets, mask = problem(loss=loss)
    ref_loss, ref = bptt(model, xs, targets, loss, mask, truncation, backend="numpy")
    for backend in ("numba", "cuda"):
        value, grads = bptt(model, xs, targets, loss, mask, truncation, backend=backend)
        assert value == pytest.approx(ref_loss, rel=1e-12)
        for k in ref:
            assert grads[k].shape == ref[k].shape
            assert rel_error(grads[k], ref[k]) < 1e-10, (backend, k)


def test_full_horizon_truncation_is_exact_and_short_windows_are_not():
    model, xs, targets, mask = problem(T=8)
    _, exact = bptt(model, xs, targets, "mse", mask)
    for k in (8, 100):
        _, g = bptt(model, xs, targets, "mse", mask, truncation=k)
        assert max(rel_error(g[n], exact[n]) for n in g) < 1e-14
    _, g = bptt(model, xs, targets, "mse", mask, truncation=3)
    assert rel_error(g["W_rec"], exact["W_rec"]) > 1e-3
    np.testing.assert_allclose(g["W_out"], exact["W_out"])          # the readout never crosses time


def test_truncated_bptt_is_independent_windows():
    """With windows of k steps and the state carried over, the truncated gradient of W_in equals the sum
    of exact gradients of each window's loss with respect to its own copy of the weights."""
    model, xs, targets, mask = problem(T=6, alpha=1.0)
    _, g = bptt(model, xs, targets, "mse", mask, truncation=3)
    eps, W = 1e-6, model.params["W_in"]
    hs, _ = model.forward(xs, backend="numpy")

    def window_loss(start):
        # The second window starts from the (fixed) state h_{start−1}, fed in as a constant.
        h = hs[start - 1] if start > 0 else np.zeros_like(hs[0])
        total = 0.0
        for t in range(start, start + 3):
            h = np.tanh(h @ model.params["W_rec"].T + xs[t] @ W.T + model.params["b_rec"])
            y = h @ model.params["W_out"].T + model.params["b_out"]
            total += 0.5 * np.sum(mask[t][:, None] * (y - targets[t]) ** 2) / xs.shape[1]
        return total

    num = np.zeros_like(W)
    for ix in np.ndindex(W.shape):
        old = W[ix]
        for sign in (1, -1):
            W[ix] = old + sign * eps
            num[ix] += sign * (window_loss(0) + window_loss(3)) / (2 * eps)
        W[ix] = old
    assert rel_error(g["W_in"], num) < 1e-7


@settings(max_examples=15, deadline=None)
@given(T=st.integers(1, 5), B=st.integers(1, 3), N=st.integers(1, 4), alpha=st.floats(0.1, 1.0),
       seed=st.integers(0, 10_000))
def test_bptt_backends_agree_on_any_shape(T, B, N, alpha, seed):
    model, xs, targets, mask = problem(T=T, B=B, N=N, alpha=alpha, seed=seed)
    _, ref = bptt(model, xs, targets, "mse", mask, backend="numpy")
    _, got = bptt(model, xs, targets, "mse", mask, backend="numba")
    assert all(rel_error(got[k], ref[k]) < 1e-10 for k in ref)


def test_float32_runs_close_to_float64():
    model, xs, targets, mask = problem()
    m32 = RNN(2, 5, 3, alpha=0.7, dtype=np.float32)
    m32.params = {k: v.astype(np.float32) for k, v in model.params.items()}
    _, g64 = bptt(model, xs, targets, "mse", mask)
    for backend in BACKENDS:
        _, g32 = bptt(m32, xs.astype(np.float32), targets.astype(np.float32), "mse", mask, backend=backend)
        assert all(g32[k].dtype == np.float32 and rel_error(g32[k], g64[k]) < 1e-4 for k in g64)


def test_lag_norms_follow_the_product_of_jacobians():
    """With zero input and bias the state stays at 0, where tanh' = 1, so with α = 1 every step Jacobian
    is W_rec and ∂h_T/∂h_{T−k} = W_rec^k: its norm grows or shrinks with the spectral radius."""
    xs = np.zeros((30, 1))
    for rho, grows in ((0.5, False), (1.5, True)):
        model = RNN(1, 20, 1, spectral_radius=rho, seed=3)
        norms = lag_norms(model, xs)
        assert norms[0] == pytest.approx(1.0)
        W = model.params["W_rec"]
        assert norms[5] == pytest.approx(np.linalg.norm(np.linalg.matrix_power(W, 5), 2), rel=1e-10)
        assert (norms[-1] > 10) if grows else (norms[-1] < 1e-3)


def test_clip_grad_norm():
    model, xs, targets, mask = problem()
    _, g = bptt(model, xs, targets, "mse", mask)
    before = {k: v.copy() for k, v in g.items()}
    norm = clip_grad_norm(g, 1e-3)
    total = math.sqrt(sum(np.sum(v * v) for v in before.values()))
    assert norm == pytest.approx(total)
    assert math.sqrt(sum(np.sum(v * v) for v in g.values())) == pytest.approx(1e-3)
    assert all(rel_error(g[k] / 1e-3, before[k] / total) < 1e-12 for k in g)   # same direction
    assert clip_grad_norm(g, 1.0) == pytest.approx(1e-3)                         # already short: unchanged
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(g, 0)


def test_training_solves_delayed_recall():
    """BPTT with Adam learns to recall one of 4 symbols after a delay of 5 steps."""
    model = RNN(5, 32, 4, seed=0)
    hist = train_sequences(model, lambda s: tasks.copy(5, n_symbols=4, batch=32, seed=s), Adam(1e-2), 200,
                           clip=1.0, progress=False)
    test = tasks.copy(5, n_symbols=4, batch=500, seed=10_000)
    assert tasks.accuracy(model.predict(test.xs), test) > 0.95
    assert len(hist.grad_norm) == 200 and np.mean(hist.loss[-20:]) < 0.2 * np.mean(hist.loss[:20])


@pytest.mark.parametrize("xs, targets, mask, match", [
    (np.zeros((5, 2, 2)), np.zeros((4, 2, 3)), None, "targets: expected shape \\(5, 2, 3\\)"),
    (np.zeros((0, 2, 2)), np.zeros((0, 2, 3)), None, "xs: expected a non-empty array"),
    (np.zeros((5, 2, 4)), np.zeros((5, 2, 3)), None, "xs: expected shape \\(T, 2\\) or \\(T, B, 2\\)"),
    (np.full((5, 2, 2), np.nan), np.zeros((5, 2, 3)), None, "xs: expected finite values"),
    (np.zeros((5, 2, 2)), np.zeros((5, 2, 3)), np.ones((5, 3)), "mask: expected shape \\(5, 2\\)"),
    (np.zeros((5, 2, 2)), np.zeros((5, 2, 3)), -np.ones((5, 2)), "mask: expected non-negative"),
])
def test_bad_inputs(xs, targets, mask, match):
    model = RNN(2, 4, 3)
    for fn in (bptt, __import__("loopy_edu.rtrl", fromlist=["rtrl"]).rtrl):
        with pytest.raises(ValueError, match=match):
            fn(model, xs, targets, "mse", mask)


def test_bad_arguments():
    model, xs, targets, mask = problem()
    with pytest.raises(ValueError, match="probability vectors"):
        bptt(model, xs, targets, "xent", mask)
    with pytest.raises(ValueError, match="loss: expected one of"):
        bptt(model, xs, targets, "l1", mask)
    with pytest.raises(ValueError, match="truncation: expected a positive integer"):
        bptt(model, xs, targets, "mse", mask, truncation=0)
    with pytest.raises(ValueError, match="alpha"):
        RNN(2, 3, 1, alpha=0.0)
    with pytest.raises(ValueError, match="n_rec"):
        RNN(2, 0, 1)
    model.params["W_rec"] = np.zeros((4, 4))
    with pytest.raises(ValueError, match="params\\['W_rec'\\]"):
        bptt(model, xs, targets, "mse", mask)


@pytest.mark.parametrize("alpha", [True, "0.5", 0, 1.5, np.nan])
def test_alpha_must_be_a_number_in_0_1(alpha):
    """Defect 3: RNN(alpha=True) was accepted as alpha = 1."""
    with pytest.raises(ValueError, match=r"alpha: expected a finite number in \(0, 1\]"):
        RNN(2, 3, 1, alpha=alpha)
