"""RTRL (Chapter 6): equal to BPTT, on every backend, and online learning that works."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from loopy_edu import tasks
from loopy_edu.bptt import bptt
from loopy_edu.gradcheck import rel_error
from loopy_edu.optim import SGD, Adam, Momentum
from loopy_edu.rnn import RNN
from loopy_edu.rtrl import OnlineRTRL, influence_step, rtrl

from test_rnn import problem

BACKENDS = ["numpy", "numba", "cuda"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", ["mse", "xent"])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
def test_rtrl_equals_bptt(backend, loss, activation):
    """Two independent derivations of the same gradient: forward (RTRL) and backward (BPTT) in time."""
    model, xs, targets, mask = problem(T=7, B=3, alpha=0.6, loss=loss, activation=activation)
    ref_loss, ref = bptt(model, xs, targets, loss, mask, backend="numpy")
    value, grads = rtrl(model, xs, targets, loss, mask, backend=backend)
    assert value == pytest.approx(ref_loss, rel=1e-12)
    for k in ref:
        assert grads[k].shape == ref[k].shape
        assert rel_error(grads[k], ref[k]) < 1e-10, k


@settings(max_examples=15, deadline=None)
@given(T=st.integers(1, 6), B=st.integers(1, 3), N=st.integers(1, 5), n_in=st.integers(1, 3),
       alpha=st.floats(0.1, 1.0), seed=st.integers(0, 10_000))
def test_rtrl_equals_bptt_on_any_shape(T, B, N, n_in, alpha, seed):
    model, xs, targets, mask = problem(T=T, B=B, N=N, n_in=n_in, alpha=alpha, seed=seed)
    _, ref = bptt(model, xs, targets, "mse", mask, backend="numpy")
    for backend in ("numpy", "numba"):
        _, grads = rtrl(model, xs, targets, "mse", mask, backend=backend)
        assert all(rel_error(grads[k], ref[k]) < 1e-10 for k in ref)


def test_influence_is_the_jacobian_of_the_state():
    """J_T[k, i, m] = ∂h_T[k]/∂θ[i, m], checked entry by entry against finite differences of h_T."""
    model, xs, _, _ = problem(T=5, B=1, N=3, n_in=2, alpha=0.5)
    P, N, M = model.params, 3, 3 + 2 + 1
    h, J = np.zeros((1, N)), np.zeros((1, N, N, M))
    from loopy_edu.rnn import step
    for t in range(5):
        z = np.concatenate([h, xs[t], np.ones((1, 1))], axis=1)
        h, acts = step(P, h, xs[t], model.alpha, model.activation)
        J = influence_step(J, P["W_rec"], acts, z, model.alpha, model.activation)
    eps = 1e-6
    for i in range(N):
        for m, (name, ix) in enumerate([("W_rec", (i, j)) for j in range(N)] + [("W_in", (i, j)) for j in range(2)]
                                       + [("b_rec", (i,))]):
            old = P[name][ix]
            P[name][ix] = old + eps
            up = model.forward(xs[:, 0], backend="numpy")[0][-1]
            P[name][ix] = old - eps
            down = model.forward(xs[:, 0], backend="numpy")[0][-1]
            P[name][ix] = old
            np.testing.assert_allclose(J[0, :, i, m], (up - down) / (2 * eps), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("backend", ["numba", "cuda"])
@pytest.mark.parametrize("loss", ["mse", "xent"])
def test_online_backends_agree(backend, loss):
    """Four online steps with weight updates in between: the same losses and weights on every backend."""
    model, xs, targets, mask = problem(T=4, B=2, loss=loss)
    runs = {}
    for be in ("numpy", backend):
        m = RNN(2, 5, 3, alpha=0.7)
        m.params = {k: v.copy() for k, v in model.params.items()}
        learner = OnlineRTRL(m, SGD(0.05, backend="numpy"), loss=loss, batch=2, backend=be)
        runs[be] = learner.run(xs, targets, mask, progress=False), m.params, learner.J
    (l0, p0, J0), (l1, p1, J1) = runs["numpy"], runs[backend]
    np.testing.assert_allclose(l1, l0, rtol=1e-10)
    assert all(rel_error(p1[k], p0[k]) < 1e-12 for k in p0)
    assert rel_error(J1, J0) < 1e-10


def test_online_with_a_tiny_step_is_gradient_descent_on_the_sequence():
    """Weights barely move, so the stale-influence error vanishes: the total change is −η × the
    sequence's exact gradient, up to O(η)."""
    model, xs, targets, mask = problem(T=6, B=2)
    _, exact = bptt(model, xs, targets, "mse", mask)
    before = {k: v.copy() for k, v in model.params.items()}
    lr = 1e-7
    losses = OnlineRTRL(model, SGD(lr, backend="numpy"), loss="mse", batch=2).run(xs, targets, mask, progress=False)
    assert losses.sum() == pytest.approx(bptt(model, xs, targets, "mse", mask)[0], rel=1e-5)
    for k in exact:
        assert rel_error((before[k] - model.params[k]) / lr, exact[k]) < 1e-5, k


def test_step_matches_run_and_checks_inputs():
    model, xs, targets, mask = problem(T=3, B=2)
    a, b = RNN(2, 5, 3, alpha=0.7), RNN(2, 5, 3, alpha=0.7)
    a.params = {k: v.copy() for k, v in model.params.items()}
    b.params = {k: v.copy() for k, v in model.params.items()}
    la = OnlineRTRL(a, SGD(0.1), loss="mse", batch=2).run(xs, targets, mask, progress=False)
    learner = OnlineRTRL(b, SGD(0.1), loss="mse", batch=2)
    lb = [learner.step(xs[t], targets[t], mask[t]) for t in range(3)]
    np.testing.assert_allclose(lb, la, rtol=1e-12)
    learner.reset()
    assert not learner.h.any() and not learner.J.any() and learner.steps == 0
    with pytest.raises(ValueError, match="x: expected 2 streams"):
        learner.step(xs[0, :1], targets[0, :1])
    with pytest.raises(ValueError, match="xs: expected 2 streams"):
        learner.run(xs[:, :1], targets[:, :1])
    with pytest.raises(ValueError, match="loss: expected one of"):
        OnlineRTRL(b, SGD(0.1), loss="l1")


def test_online_rtrl_learns_the_coin_task():
    """Streaming 6,000 steps is enough to learn the first dependency (x_{t−t1}): the running loss goes
    clearly below the 'remember nothing' plateau, which a network without memory cannot beat."""
    task = tasks.coin(6000, seed=1)
    model = RNN(1, 16, 2, seed=0)
    losses = OnlineRTRL(model, Adam(3e-3), loss="xent").run(task.xs, task.targets, task.mask, progress=False)
    plateaus = tasks.coin_plateaus()
    assert losses[-2000:].mean() < plateaus["none"] - 0.05


def test_diverging_online_run_raises():
    task = tasks.sines(500)
    model = RNN(1, 8, 1, activation="relu", seed=0)
    with pytest.raises(FloatingPointError, match="learning rate 1000"):
        OnlineRTRL(model, SGD(1e3), task.loss).run(task.xs, task.targets, task.mask, progress=False)


def test_learner_arguments_are_checked():
    model = RNN(1, 3, 2)
    with pytest.raises(ValueError, match="batch: expected a positive integer"):
        OnlineRTRL(model, SGD(0.1), loss="mse", batch=0)


def _copy(model):
    m = RNN(model.n_in, model.n_rec, model.n_out, alpha=model.alpha)
    m.params = {k: v.copy() for k, v in model.params.items()}
    return m


@pytest.mark.parametrize("N, n_in", [(5, 2), (100, 1)])
def test_both_layouts_of_the_influence(N, n_in):
    """The numba kernels keep J by unit while one unit's product is within OpenBLAS's
    small-matrix bound, and whole above it (kernels/rtrl_numba.py). Both give BPTT's gradient,
    and the learner's J is the NumPy reference's influence."""
    from loopy_edu.kernels.rtrl_numba import units_per_block
    M = N + n_in + 1
    assert (units_per_block(N, M) > 0) == (N == 5)          # the two sizes take the two paths
    model, xs, targets, mask = problem(T=3, B=2, n_in=n_in, N=N, n_out=2)
    _, ref = bptt(model, xs, targets, "mse", mask, backend="numpy")
    _, grads = rtrl(model, xs, targets, "mse", mask, backend="numba")
    assert all(rel_error(grads[k], ref[k]) < 1e-10 for k in ref)
    J = {}
    for be in ("numpy", "numba"):
        learner = OnlineRTRL(_copy(model), SGD(0.05, backend="numpy"), loss="mse", batch=2, backend=be)
        learner.run(xs, targets, mask, progress=False)
        J[be] = learner.J
    assert J["numba"].shape == (2, N, N, M)
    assert rel_error(J["numba"], J["numpy"]) < 1e-10


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_non_finite_weights_are_refused_before_the_first_step(backend):
    """The weights are checked once per run (and per call of step), not at every step; a NaN or
    inf is still refused by name before anything moves."""
    model, xs, targets, mask = problem(T=3, B=2)
    model.params["W_rec"][1, 2] = np.inf
    before = {k: v.copy() for k, v in model.params.items()}
    learner = OnlineRTRL(model, SGD(0.1), loss="mse", batch=2, backend=backend)
    for call in (lambda: learner.run(xs, targets, mask, progress=False),
                 lambda: learner.step(xs[0], targets[0], mask[0])):
        with pytest.raises(ValueError, match=r"params\['W_rec'\]: expected finite values"):
            call()
    assert learner.steps == 0 and not learner.h.any() and not learner.J.any()
    for k in before:
        np.testing.assert_array_equal(model.params[k], before[k])


def test_optimizer_state_of_another_model_is_refused_before_the_first_step():
    """Defect 1 through the learner: the optimizer is bound to the weights once per run, which
    checks its state against them, so an optimizer that learned a smaller model is refused."""
    small, xs, targets, mask = problem(T=3, B=2)
    opt = Momentum(0.1)
    OnlineRTRL(small, opt, loss="mse", batch=2).run(xs, targets, mask, progress=False)
    big = RNN(2, 7, 3, alpha=0.7)
    before = {k: v.copy() for k, v in big.params.items()}
    learner = OnlineRTRL(big, opt, loss="mse", batch=2)
    with pytest.raises(ValueError, match=r"params\['W_in'\]: the optimizer's state was made"):
        learner.run(xs, targets, mask, progress=False)
    assert learner.steps == 0 and not learner.h.any()
    for k in before:
        np.testing.assert_array_equal(big.params[k], before[k])


class ReplacingSGD:
    """An optimizer of another kind: it puts new arrays into params instead of updating them."""

    def __init__(self, lr):
        self.lr = lr

    def step(self, params, grads):
        for k in params:
            params[k] = params[k] - self.lr * grads[k]


def test_weights_the_learner_cannot_hold_are_read_at_every_step():
    """The numba learner holds the weights for a whole run only when the optimizer moves those
    very arrays. An optimizer that replaces them, or a weight the kernel gets as a copy (not
    C-contiguous), takes the per-step path; each path learns what the NumPy reference learns."""
    model, xs, targets, mask = problem(T=4, B=2)
    ref = _copy(model)
    OnlineRTRL(ref, SGD(0.05, backend="numpy"), loss="mse", batch=2, backend="numpy").run(
        xs, targets, mask, progress=False)
    bound, replacing, strided = _copy(model), _copy(model), _copy(model)
    strided.params["W_rec"] = np.asfortranarray(strided.params["W_rec"])
    for m, opt in ((bound, SGD(0.05)), (replacing, ReplacingSGD(0.05)),
                   (strided, SGD(0.05, backend="numpy"))):
        OnlineRTRL(m, opt, loss="mse", batch=2, backend="numba").run(xs, targets, mask, progress=False)
        assert all(rel_error(m.params[k], ref.params[k]) < 1e-12 for k in ref.params)
