"""RFLO and e-prop (Chapter 6): the rule as written, on every backend, its exact special cases, online
learning, and training that works."""
import math

import numpy as np
import pytest

from loopy_edu import tasks
from loopy_edu.bptt import bptt
from loopy_edu.gradcheck import rel_error
from loopy_edu.optim import SGD, Adam
from loopy_edu.rflo import OnlineRFLO, eprop, random_feedback, rflo
from loopy_edu.rnn import RNN

from test_rnn import problem

BACKENDS = ["numpy", "numba", "cuda"]
ACT = {"tanh": (math.tanh, lambda a: 1 - a * a), "sigmoid": (lambda u: 1 / (1 + math.exp(-u)), lambda a: a * (1 - a)),
       "relu": (lambda u: max(u, 0.0), lambda a: float(a > 0))}


def naive(model, xs, targets, B, loss, mask, self_term):
    """The rule re-derived scalar by scalar from its definition: for each stream b, unit i and synapse m,
    P ← decay·P + α act'(u_i) z_m with decay = 1 − α (RFLO) or 1 − α + α act'(u_i) W_rec[i, i] (e-prop),
    and the gradient Σ_t q_i P with q = B dy, dy the loss's derivative with respect to y (mask, 1/B)."""
    act, act_grad = ACT[model.activation]
    P_ = model.params
    T, nb, n_in = xs.shape
    N, n_out, alpha = model.n_rec, model.n_out, model.alpha
    g_rec, g_in, g_b = np.zeros((N, N)), np.zeros((N, n_in)), np.zeros(N)
    g_out, g_bout = np.zeros((n_out, N)), np.zeros(n_out)
    total = 0.0
    for b in range(nb):
        h = [0.0] * N
        tr_rec, tr_in, tr_b = np.zeros((N, N)), np.zeros((N, n_in)), np.zeros(N)
        for t in range(T):
            x = xs[t, b]
            u = [sum(P_["W_rec"][i, j] * h[j] for j in range(N)) + sum(P_["W_in"][i, j] * x[j] for j in range(n_in))
                 + P_["b_rec"][i] for i in range(N)]
            a = [act(ui) for ui in u]
            h_new = [(1 - alpha) * h[i] + alpha * a[i] for i in range(N)]
            y = [sum(P_["W_out"][k, j] * h_new[j] for j in range(N)) + P_["b_out"][k] for k in range(n_out)]
            tgt, m_ = targets[t, b], mask[t, b]
            if loss == "mse":
                total += m_ * 0.5 * sum((y[k] - tgt[k]) ** 2 for k in range(n_out)) / nb
                dy = [m_ * (y[k] - tgt[k]) / nb for k in range(n_out)]
            else:
                Z = sum(math.exp(v) for v in y)
                total += -m_ * sum(tgt[k] * (y[k] - math.log(Z)) for k in range(n_out)) / nb
                dy = [m_ * (math.exp(y[k]) / Z - tgt[k]) / nb for k in range(n_out)]
            for i in range(N):
                d = alpha * act_grad(a[i])
                decay = 1 - alpha + (d * P_["W_rec"][i, i] if self_term else 0.0)
                q = sum(B[i, k] * dy[k] for k in range(n_out))
                for j in range(N):
                    tr_rec[i, j] = decay * tr_rec[i, j] + d * h[j]
                    g_rec[i, j] += q * tr_rec[i, j]
                for j in range(n_in):
                    tr_in[i, j] = decay * tr_in[i, j] + d * x[j]
                    g_in[i, j] += q * tr_in[i, j]
                tr_b[i] = decay * tr_b[i] + d
                g_b[i] += q * tr_b[i]
            for k in range(n_out):
                g_bout[k] += dy[k]
                for j in range(N):
                    g_out[k, j] += dy[k] * h_new[j]
            h = h_new
    return total, {"W_in": g_in, "W_rec": g_rec, "b_rec": g_b, "W_out": g_out, "b_out": g_bout}


def assert_close(a, b, tol=1e-10):
    assert a[0] == pytest.approx(b[0], rel=tol)
    for k in b[1]:
        assert a[1][k].shape == b[1][k].shape, k
        assert rel_error(a[1][k], b[1][k]) < tol, k


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", ["mse", "xent"])
@pytest.mark.parametrize("rule", ["rflo", "eprop"])
def test_rule_matches_a_naive_rederivation(backend, loss, rule):
    model, xs, targets, mask = problem(T=5, B=3, N=4, alpha=0.6, loss=loss,
                                       activation={"rflo": "tanh", "eprop": "sigmoid"}[rule])
    B = random_feedback(model, seed=3)
    expected = naive(model, xs, targets, B, loss, mask, self_term=rule == "eprop")
    got = (rflo if rule == "rflo" else eprop)(model, xs, targets, B, loss, mask, backend=backend)
    assert_close(got, expected)


@pytest.mark.parametrize("rule", [rflo, eprop])
def test_numba_chunks_match_the_step_by_step_reference(rule):
    """The Numba kernel folds the traces over chunks of steps (kernels/rflo_numba.py); a sequence of
    two and a half chunks crosses their boundaries, with a partial last chunk."""
    from loopy_edu.kernels.rflo_numba import CHUNK
    model, xs, targets, mask = problem(T=2 * CHUNK + CHUNK // 2, B=2, N=6, alpha=0.3)
    B = random_feedback(model, seed=2)
    assert_close(rule(model, xs, targets, B, "mse", mask, backend="numba"),
                 rule(model, xs, targets, B, "mse", mask, backend="numpy"))


@pytest.mark.parametrize("backend", ["numba", "cuda"])
def test_backends_agree_with_relu_unbatched_and_float32(backend):
    model, xs, targets, _ = problem(T=6, B=1, activation="relu")
    B = random_feedback(model)
    assert_close(rflo(model, xs[:, 0], targets[:, 0], B, "mse", backend=backend),
                 rflo(model, xs[:, 0], targets[:, 0], B, "mse", backend="numpy"))
    m32 = RNN(2, 5, 3, alpha=0.7, dtype=np.float32)
    x32, t32, B32 = xs.astype(np.float32), targets.astype(np.float32), random_feedback(m32)
    ref = rflo(m32, x32, t32, B32, "mse", backend="numpy")
    got = rflo(m32, x32, t32, B32, "mse", backend=backend)
    assert all(got[1][k].dtype == np.float32 for k in got[1])
    assert_close(got, ref, tol=1e-5)


@pytest.mark.parametrize("loss", ["mse", "xent"])
def test_readout_gradients_are_exact(loss):
    model, xs, targets, mask = problem(T=6, B=3, loss=loss)
    _, exact = bptt(model, xs, targets, loss, mask, backend="numpy")
    _, grads = rflo(model, xs, targets, random_feedback(model), loss, mask, backend="numba")
    for k in ("W_out", "b_out"):
        assert rel_error(grads[k], exact[k]) < 1e-12


@pytest.mark.parametrize("alpha", [1.0, 0.4])
@pytest.mark.parametrize("backend", BACKENDS)
def test_without_recurrence_rflo_with_symmetric_feedback_is_exact(alpha, backend):
    """W_rec = 0: a unit's state depends on its own past only through the leak, so P is the exact
    influence ∂h_t[i]/∂θ_i and q = W_out dy is the exact ∂L_t/∂h_t: RFLO with B = W_outᵀ is BPTT."""
    model, xs, targets, mask = problem(T=6, B=2, alpha=alpha)
    model.params["W_rec"][:] = 0.0
    exact = bptt(model, xs, targets, "mse", mask, backend="numpy")
    assert_close(rflo(model, xs, targets, model.params["W_out"].T, "mse", mask, backend=backend), exact)
    model.params["W_rec"][:] = 0.3                # with recurrence it is only an approximation
    _, exact = bptt(model, xs, targets, "mse", mask, backend="numpy")
    _, grads = rflo(model, xs, targets, model.params["W_out"].T, "mse", mask, backend=backend)
    assert rel_error(grads["W_rec"], exact["W_rec"]) > 1e-3


@pytest.mark.parametrize("backend", BACKENDS)
def test_eprop_identities(backend):
    """e-prop keeps each unit's self-connection in the trace, RFLO drops it: (1) they agree when W_rec's
    diagonal is zero; (2) when W_rec is diagonal (uncoupled units) e-prop's trace is the exact influence,
    so symmetric e-prop is BPTT, while RFLO is not; (3) otherwise they differ."""
    model, xs, targets, mask = problem(T=6, B=2, alpha=0.5)
    W = model.params["W_rec"]
    B = random_feedback(model, seed=1)
    diag = np.diag(W).copy()
    np.fill_diagonal(W, 0.0)
    assert_close(eprop(model, xs, targets, B, "mse", mask, backend=backend),
                 rflo(model, xs, targets, B, "mse", mask, backend="numpy"))
    assert_close(eprop(model, xs, targets, None, "mse", mask, backend=backend),
                 rflo(model, xs, targets, model.params["W_out"].T, "mse", mask, backend="numpy"))
    W[:] = np.diag(diag + 0.5)
    exact = bptt(model, xs, targets, "mse", mask, backend="numpy")
    assert_close(eprop(model, xs, targets, None, "mse", mask, backend=backend), exact)
    _, r = rflo(model, xs, targets, model.params["W_out"].T, "mse", mask, backend=backend)
    assert rel_error(r["W_rec"], exact[1]["W_rec"]) > 1e-3
    W += 0.2
    _, e = eprop(model, xs, targets, B, "mse", mask, backend=backend)
    _, r = rflo(model, xs, targets, B, "mse", mask, backend=backend)
    assert rel_error(e["W_rec"], r["W_rec"]) > 1e-3


def _copy(model):
    m = RNN(model.n_in, model.n_rec, model.n_out, alpha=model.alpha)
    m.params = {k: v.copy() for k, v in model.params.items()}
    return m


@pytest.mark.parametrize("backend", ["numba", "cuda"])
@pytest.mark.parametrize("loss", ["mse", "xent"])
def test_online_backends_agree(backend, loss):
    model, xs, targets, mask = problem(T=4, B=2, loss=loss)
    B = random_feedback(model)
    runs = {}
    for be in ("numpy", backend):
        m = _copy(model)
        learner = OnlineRFLO(m, SGD(0.05, backend="numpy"), B, loss=loss, batch=2, backend=be)
        runs[be] = learner.run(xs, targets, mask, progress=False), m.params, learner.P, learner.h
    (l0, p0, P0, h0), (l1, p1, P1, h1) = runs["numpy"], runs[backend]
    np.testing.assert_allclose(l1, l0, rtol=1e-10)
    assert all(rel_error(p1[k], p0[k]) < 1e-12 for k in p0)
    assert rel_error(P1, P0) < 1e-10 and rel_error(h1, h0) < 1e-10


def test_online_with_a_tiny_step_sums_to_the_sequence_rule():
    model, xs, targets, mask = problem(T=6, B=2)
    B = random_feedback(model)
    value, offline = rflo(model, xs, targets, B, "mse", mask, backend="numpy")
    before = {k: v.copy() for k, v in model.params.items()}
    lr = 1e-7
    losses = OnlineRFLO(model, SGD(lr, backend="numpy"), B, loss="mse", batch=2).run(xs, targets, mask, progress=False)
    assert losses.sum() == pytest.approx(value, rel=1e-5)
    for k in offline:
        assert rel_error((before[k] - model.params[k]) / lr, offline[k]) < 1e-5, k


def test_online_step_matches_run_and_reset():
    model, xs, targets, mask = problem(T=3, B=2)
    B = random_feedback(model)
    la = OnlineRFLO(_copy(model), SGD(0.1), B, loss="mse", batch=2).run(xs, targets, mask, progress=False)
    learner = OnlineRFLO(_copy(model), SGD(0.1), B, loss="mse", batch=2)
    lb = [learner.step(xs[t], targets[t], mask[t]) for t in range(3)]
    np.testing.assert_allclose(lb, la, rtol=1e-12)
    assert learner.P.shape == (2, 5, 5 + 2 + 1) and learner.P.any()
    learner.reset()
    assert not learner.h.any() and not learner.P.any() and learner.steps == 0
    with pytest.raises(ValueError, match="x: expected 2 streams"):
        learner.step(xs[0, :1], targets[0, :1])


def test_random_feedback():
    model = RNN(1, 400, 4)
    B = random_feedback(model, seed=5)
    assert B.shape == (400, 4) and B.dtype == np.float64
    assert B.std() == pytest.approx(1 / 2, rel=0.1)
    np.testing.assert_array_equal(B, random_feedback(model, seed=5))
    assert not np.array_equal(B, random_feedback(model, seed=6))
    assert random_feedback(model, scale=0.1).std() == pytest.approx(0.1, rel=0.1)
    assert random_feedback(RNN(1, 3, 2, dtype=np.float32)).dtype == np.float32


def test_bad_inputs_raise():
    model, xs, targets, mask = problem(T=3, B=2)
    B = random_feedback(model)
    with pytest.raises(ValueError, match=r"B: expected shape \(5, 3\), got \(3, 5\)"):
        rflo(model, xs, targets, B.T, "mse")
    bad = B.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="B: expected finite values, got 1 NaN"):
        eprop(model, xs, targets, bad, "mse")
    with pytest.raises(ValueError, match="B: expected shape"):
        OnlineRFLO(model, SGD(0.1), B[:2], "mse")
    with pytest.raises(ValueError, match="loss: expected one of"):
        rflo(model, xs, targets, B, loss="l1")
    with pytest.raises(ValueError, match="xs: expected shape"):
        rflo(model, xs[..., :1], targets, B, "mse")
    with pytest.raises(ValueError, match="scale: expected a positive"):
        random_feedback(model, scale=-1.0)
    with pytest.raises(ValueError, match="backend: expected one of"):
        rflo(model, xs, targets, B, "mse", backend="jax")


def test_diverging_online_run_raises():
    task = tasks.sines(300)
    model = RNN(1, 8, 1, activation="relu", seed=0)
    with pytest.raises(FloatingPointError, match="learning rate 1000"):
        OnlineRFLO(model, SGD(1e3), random_feedback(model), task.loss).run(
            task.xs, task.targets, task.mask, progress=False)


def test_rflo_learns_a_sine_that_the_readout_alone_cannot():
    """After a pulse at t = 0 the network must generate a sine (period 25) from its own dynamics. 300
    steps of Adam on RFLO's gradient bring the loss near zero; training only the readout (with its
    exact gradient) leaves it near where it started. (Seeded: with random feedback some other seeds
    learn more slowly.)"""
    task = tasks.sines(100, n_sines=1)
    finals = {}
    for rule in ("rflo", "readout"):
        model = RNN(1, 32, 1, alpha=0.2, seed=0)
        B, opt, losses = random_feedback(model, seed=0), Adam(1e-2), []
        for _ in range(300):
            if rule == "rflo":
                value, grads = rflo(model, task.xs, task.targets, B, task.loss, task.mask, backend="numba")
            else:
                value, grads = bptt(model, task.xs, task.targets, task.loss, task.mask, backend="numba")
                grads = {k: g if k in ("W_out", "b_out") else np.zeros_like(g) for k, g in grads.items()}
            losses.append(value)
            opt.step(model.params, grads)
        finals[rule] = np.mean(losses[-20:])
    assert finals["rflo"] < 0.01 * losses[0]
    assert finals["rflo"] < 0.05 * finals["readout"]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_non_finite_weights_are_refused_before_the_first_step(backend):
    """As for online RTRL: the weights are checked once per run (and per call of step), and a
    NaN is refused by name before anything moves."""
    model, xs, targets, mask = problem(T=3, B=2)
    model.params["b_rec"][0] = np.nan
    before = {k: v.copy() for k, v in model.params.items()}
    learner = OnlineRFLO(model, SGD(0.1), random_feedback(model), loss="mse", batch=2, backend=backend)
    for call in (lambda: learner.run(xs, targets, mask, progress=False),
                 lambda: learner.step(xs[0], targets[0], mask[0])):
        with pytest.raises(ValueError, match=r"params\['b_rec'\]: expected finite values"):
            call()
    assert learner.steps == 0 and not learner.h.any() and not learner.P.any()
    for k in before:
        np.testing.assert_array_equal(model.params[k], before[k])


def test_every_path_of_the_numba_learner_learns_the_same():
    """The numba learner binds the optimizer to its gradient buffers once per run (fused or
    NumPy optimizer); an optimizer of another kind, which replaces the arrays, goes through its
    own step with the weights read at every step. All learn what the NumPy reference learns."""

    class ReplacingSGD:
        def __init__(self, lr):
            self.lr = lr

        def step(self, params, grads):
            for k in params:
                params[k] = params[k] - self.lr * grads[k]

    model, xs, targets, mask = problem(T=4, B=2, loss="xent")
    B = random_feedback(model)
    ref = _copy(model)
    OnlineRFLO(ref, SGD(0.05, backend="numpy"), B, loss="xent", batch=2, backend="numpy").run(
        xs, targets, mask, progress=False)
    for opt in (SGD(0.05), SGD(0.05, backend="numpy"), ReplacingSGD(0.05)):
        m = _copy(model)
        OnlineRFLO(m, opt, B, loss="xent", batch=2, backend="numba").run(xs, targets, mask,
                                                                         progress=False)
        assert all(rel_error(m.params[k], ref.params[k]) < 1e-12 for k in ref.params)
