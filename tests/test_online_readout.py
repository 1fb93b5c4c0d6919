"""Online readouts (Part IV, ch. 12): LMS, NLMS and RLS on hand cases, RLS against ridge, NLMS's
scale invariance, numba against numpy, the grad_fn adapters in train_sequences, the errors,
and the loopy_readouts experiment."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopy_edu.experiments import loopy_readouts
from loopy_edu.loopy import LoopyNetwork
from loopy_edu.online_readout import RLS, lms, lms_grads, lms_step, nlms_grads
from loopy_edu.optim import SGD
from loopy_edu.tasks import Task
from loopy_edu.train import train_sequences


def _data(n=40, M=5, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, M)) + 0.5
    Y = X @ rng.standard_normal((M, n_out)) + 0.1 * rng.standard_normal((n, n_out))
    return X, Y


def _ridge_all_penalised(X, Y, reg):
    """min ‖X Wᵀ - Y‖² + reg ‖W‖², every weight penalised; and (reg I + XᵀX)^-1."""
    A = reg * np.eye(X.shape[1]) + X.T @ X
    return np.linalg.solve(A, X.T @ Y).T, np.linalg.inv(A)


# ---------------------------------------------------------------------------------------------
# the rules on hand cases

def test_lms_and_nlms_steps_by_hand():
    z, target = np.array([1.0, 2.0]), np.array([3.0])
    W = np.zeros((1, 2))
    assert lms_step(W, z, target, 0.1) == pytest.approx([3.0])
    np.testing.assert_allclose(W, [[0.3, 0.6]], rtol=1e-15)             # η e zᵀ
    W = np.zeros((1, 2))
    lms_step(W, z, target, 0.1, normalized=True, eps=0.0)
    np.testing.assert_allclose(W, [[0.06, 0.12]], rtol=1e-15)           # η e zᵀ / ‖z‖²


def test_nlms_with_unit_step_removes_the_error_of_its_sample():
    rng = np.random.default_rng(1)
    W, z, target = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal(3)
    lms_step(W, z, target, 1.0, normalized=True, eps=0.0)
    np.testing.assert_allclose(W @ z, target, rtol=1e-13)


def test_rls_step_by_hand():
    rls = RLS(1, 1, reg=1.0, backend="numpy")
    e = rls.update(np.array([2.0]), np.array([4.0]))
    # P = 1, k = 2 / 5, W = 4 · 2/5; ridge: (2 · 4) / (1 + 4); P = 1 / (1 + 4)
    assert e == pytest.approx([4.0])
    assert rls.W[0, 0] == pytest.approx(1.6, rel=1e-15)
    assert rls.P[0, 0] == pytest.approx(0.2, rel=1e-15)
    assert rls.n_seen == 1


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("reg", [1e-3, 0.3, 10.0])
def test_rls_after_one_pass_is_ridge(backend, reg):
    X, Y = _data(seed=2)
    rls = RLS(X.shape[1], Y.shape[1], reg=reg, backend=backend)
    rls.fit(X[:25], Y[:25])
    rls.fit(X[25:], Y[25:])                   # two calls: one pass over the same samples
    W, P = _ridge_all_penalised(X, Y, reg)
    np.testing.assert_allclose(rls.W, W, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(rls.P, P, rtol=1e-8, atol=1e-12)
    assert np.array_equal(rls.P, rls.P.T) and rls.n_seen == len(X)
    np.testing.assert_allclose(rls.predict(X), X @ W.T, rtol=1e-8, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(1e-3, 1e3))
def test_nlms_is_invariant_to_the_scale_of_the_features(scale):
    X, Y = _data(seed=3)
    W1, W2 = np.zeros((2, 5)), np.zeros((2, 5))
    e1 = lms(W1, X, Y, 0.5, normalized=True, eps=0.0, backend="numpy")
    e2 = lms(W2, scale * X, Y, 0.5, normalized=True, eps=0.0, backend="numpy")
    np.testing.assert_allclose(e2, e1, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(scale * W2, W1, rtol=1e-9, atol=1e-11)


def test_lms_is_not_invariant_to_the_scale_of_the_features():
    """The check above can fail: plain LMS's step grows with the features' power."""
    X, Y = _data(seed=3)
    W1, W2 = np.zeros((2, 5)), np.zeros((2, 5))
    e1 = lms(W1, X, Y, 0.01, backend="numpy")
    e2 = lms(W2, 3.0 * X, Y, 0.01, backend="numpy")
    assert not np.allclose(e1, e2, rtol=1e-3)


@pytest.mark.parametrize("normalized", [False, True])
def test_lms_numba_equals_numpy(normalized):
    X, Y = _data(n=60, M=7, n_out=3, seed=4)
    W0 = np.random.default_rng(5).standard_normal((3, 7))
    eta = 0.7 if normalized else 0.01
    W1, W2 = W0.copy(), W0.copy()
    e1 = lms(W1, X, Y, eta, normalized, backend="numpy")
    e2 = lms(W2, X, Y, eta, normalized, backend="numba")
    np.testing.assert_allclose(e2, e1, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(W2, W1, rtol=1e-11, atol=1e-12)


def test_rls_numba_equals_numpy():
    X, Y = _data(n=60, M=7, n_out=3, seed=6)
    a, b = RLS(7, 3, 0.5, backend="numpy"), RLS(7, 3, 0.5, backend="numba")
    np.testing.assert_allclose(b.fit(X, Y), a.fit(X, Y), rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(b.W, a.W, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(b.P, a.P, rtol=1e-11, atol=1e-13)


# ---------------------------------------------------------------------------------------------
# grad_fn adapters

def _net(seed=0):
    return LoopyNetwork(2, 12, 1, k=3, seed=seed, backend="numpy")


def _memory_task(step, T=15, B=4):
    """Output the first input one step late: a fixed network's states hold it."""
    xs = np.random.default_rng(step).uniform(-1, 1, (T, B, 2))
    targets = np.zeros((T, B, 1))
    targets[1:, :, 0] = xs[:-1, :, 0]
    mask = np.ones((T, B))
    mask[0] = 0.0
    return Task(xs, targets, mask, "mse", "memory")


@pytest.mark.parametrize("normalized", [False, True])
def test_lms_grads_on_one_sample_is_the_lms_step(normalized):
    net = _net()
    task = _memory_task(0, T=5, B=1)
    mask = np.zeros((5, 1))
    mask[3] = 1.0
    z = np.append(net.states(np.ascontiguousarray(task.xs))[3, 0], 1.0)     # [h, 1]
    W = np.hstack([net.params["W_out"], net.params["b_out"][:, None]])
    lms_step(W, z, task.targets[3, 0], 0.3, normalized, eps=1e-6)
    rule = nlms_grads if normalized else lms_grads
    _, grads = rule(net, task.xs, task.targets, "mse", mask)
    SGD(0.3, backend="numpy").step(net.params, grads)
    np.testing.assert_allclose(net.params["W_out"], W[:, :-1], rtol=1e-13)
    np.testing.assert_allclose(net.params["b_out"], W[:, -1], rtol=1e-13)


@pytest.mark.parametrize("rule", ["lms", "nlms", "rls"])
def test_train_sequences_runs_the_rules_and_lowers_the_loss(rule):
    net = _net(1)
    fixed = {k: net.params[k].copy() for k in ("W_in", "W_rec", "b_rec")}
    rls = RLS(13, 1, reg=1e-2)
    grad_fn, lr = {"lms": (lms_grads, 0.05), "nlms": (nlms_grads, 0.5),
                   "rls": (rls.grad_fn, 1.0)}[rule]
    hist = train_sequences(net, _memory_task, SGD(lr, backend="numpy"), 60,
                           grad_fn=grad_fn, progress=False)
    assert np.mean(hist.loss[-10:]) < 0.5 * np.mean(hist.loss[:3])
    for k, p in fixed.items():
        assert np.array_equal(net.params[k], p), k        # only the readout learns
    if rule == "rls":
        np.testing.assert_allclose(net.params["W_out"], rls.W[:, :-1], rtol=1e-12,
                                   atol=1e-12)


def test_rls_grad_fn_starts_from_the_models_readout_and_is_ridge_around_it():
    net = _net(2)
    start = np.hstack([net.params["W_out"], net.params["b_out"][:, None]])
    task = _memory_task(3)
    rls = RLS(13, 1, reg=0.5)
    _, grads = rls.grad_fn(net, task.xs, task.targets, task.loss, task.mask)
    on = task.mask > 0
    Z = np.hstack([net.states(np.ascontiguousarray(task.xs))[on], np.ones((on.sum(), 1))])
    # min ‖Z Wᵀ - Y‖² + reg ‖W - W_start‖²  <=>  ridge on the residual Y - Z W_startᵀ
    W, _ = _ridge_all_penalised(Z, task.targets[on] - Z @ start.T, 0.5)
    np.testing.assert_allclose(rls.W, start + W, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(-grads["W_out"], W[:, :-1], rtol=1e-8, atol=1e-10)


def test_rls_grad_fn_refuses_an_optimizer_that_changed_its_step():
    net, rls = _net(), RLS(13, 1)
    with pytest.raises(ValueError, match=r"model\.params: .*SGD\(lr=1\.0\)"):
        train_sequences(net, _memory_task, SGD(0.5, backend="numpy"), 2, grad_fn=rls.grad_fn,
                        progress=False)


# ---------------------------------------------------------------------------------------------
# errors name the argument

@pytest.mark.parametrize("call, exc, match", [
    (lambda X, Y: lms([[0.0] * 5] * 2, X, Y, 0.1), TypeError, "W: "),
    (lambda X, Y: lms(np.zeros((2, 4)), X, Y, 0.1), ValueError, "X: "),
    (lambda X, Y: lms(np.zeros((2, 5)), X, Y[:, :1], 0.1), ValueError, "Y: "),
    (lambda X, Y: lms(np.zeros((2, 5)), X, Y, -0.1), ValueError, "eta: "),
    (lambda X, Y: lms(np.zeros((2, 5)), X, Y, 2.0, normalized=True), ValueError, "eta: "),
    (lambda X, Y: lms(np.zeros((2, 5)), 0 * X, Y, 1.0, True, eps=0.0), ValueError, "eps: "),
    (lambda X, Y: lms(np.zeros((2, 5)), X, Y, 0.1, backend="cuda"), ValueError, "backend: "),
    (lambda X, Y: lms(np.zeros((2, 5)), np.where(X > 0, np.nan, X), Y, 0.1), ValueError,
     "X: "),
    (lambda X, Y: RLS(5, 2, reg=0.0), ValueError, "reg: "),
    (lambda X, Y: RLS(0, 2), ValueError, "n_features: "),
    (lambda X, Y: RLS(4, 2).fit(X, Y), ValueError, "X: "),
])
def test_errors_name_the_argument(call, exc, match):
    X, Y = _data()
    with pytest.raises(exc, match=match):
        call(X, Y)


def test_rls_grad_fn_errors_name_the_argument():
    net, task = _net(), _memory_task(0)
    with pytest.raises(ValueError, match="model: "):
        RLS(5, 1).grad_fn(net, task.xs, task.targets, task.loss, task.mask)
    with pytest.raises(ValueError, match="mask: "):
        RLS(13, 1).grad_fn(net, task.xs, task.targets, task.loss, 0.5 * task.mask)


# ---------------------------------------------------------------------------------------------
# the experiment

SMALL = dict(n=60, delay=5, train=30, test=10, epochs=2)


@pytest.mark.parametrize("readout", ["ridge", "rls", "nlms", "lms"])
def test_loopy_readouts_runs_and_is_deterministic(readout):
    out = loopy_readouts(0, readout=readout, **SMALL)
    again = loopy_readouts(0, readout=readout, **SMALL)
    assert np.array_equal(out["accuracy_by_epoch"], again["accuracy_by_epoch"])
    assert len(out["accuracy_by_epoch"]) == (1 if readout == "ridge" else 2)
    assert 0.0 <= out["accuracy"] == out["accuracy_by_epoch"][-1] <= 1.0
    if readout in ("ridge", "rls"):              # least squares, solved: above chance (1/8)
        assert out["accuracy"] > 0.25
    if readout != "ridge":                         # the quick run is a prefix of the full one
        quick = loopy_readouts(0, readout=readout, **{**SMALL, "epochs": 1})
        assert quick["accuracy_by_epoch"][0] == out["accuracy_by_epoch"][0]


def test_loopy_readouts_cued_task_runs():
    out = loopy_readouts(0, readout="nlms", task="cued", **SMALL)
    assert 0.0 <= out["accuracy"] <= 1.0
