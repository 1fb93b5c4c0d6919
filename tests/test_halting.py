"""ACT and PonderNet (Chapter 14): the equations of the issue written out with Python floats,
exact gradients against finite differences with the halting step held, the backends, the loop
cap, ACT with one step as a plain RNN step, and bad input."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from loopy_edu import halting
from loopy_edu.halting import ACTCell, LoopedCell, PonderCell
from loopy_edu.rnn import RNN
from loopy_edu.tasks import parity_vectors

BACKENDS = ["numpy", "numba", "cuda"]


def _model(cls, n_in=5, H=6, n_out=2, seed=1, **kwargs):
    """A cell with every parameter nudged off its initial value (no zero biases)."""
    m = cls(n_in, H, n_out, seed=seed, **kwargs)
    rng = np.random.default_rng(seed + 100)
    for p in m.params.values():
        p += (0.3 * rng.standard_normal(p.shape)).astype(m.dtype)
    return m


def _data(n_in=5, n_out=2, B=7, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.choice([-1.0, 0.0, 1.0], size=(B, n_in)),
            rng.integers(0, 2, size=(B, n_out)).astype(float))


def _sig(z):
    return 1.0 / (1.0 + math.exp(-z))


def _plain_steps(params, x, steps):
    """s_n, a_n, y_n of one example for ``steps`` steps, unit by unit with Python floats."""
    P = {k: v.tolist() for k, v in params.items()}
    H, n_in = len(P["W_h"]), len(x)
    s, out = [0.0] * H, []
    for n in range(1, steps + 1):
        s = [math.tanh(sum(P["W_x"][i][j] * x[j] for j in range(n_in))
                       + (P["W_x"][i][n_in] if n == 1 else 0.0)
                       + sum(P["W_h"][i][j] * s[j] for j in range(H)) + P["b_h"][i])
             for i in range(H)]
        a = sum(w * v for w, v in zip(P["w_halt"], s)) + P["b_halt"][0]
        y = [sum(w * v for w, v in zip(row, s)) + b for row, b in zip(P["W_y"], P["b_y"])]
        out.append((a, y))
    return out


def _plain_act(params, x, t, max_steps, epsilon, tau):
    """ACT on one example as the issue states it: (σ(y), N + R, loss)."""
    steps = _plain_steps(params, x.tolist(), max_steps)
    total, N = 0.0, max_steps
    for n, (a, _) in enumerate(steps, start=1):
        if total + _sig(a) >= 1 - epsilon or n == max_steps:
            N = n
            break
        total += _sig(a)
    R = 1.0 - total
    p = [_sig(a) for a, _ in steps[:N - 1]] + [R]
    y = [sum(p[n] * steps[n][1][o] for n in range(N)) for o in range(len(t))]
    bce = sum(math.log(1 + math.exp(yo)) - to * yo for yo, to in zip(y, t))
    return [_sig(v) for v in y], N + R, bce + tau * (N + R)


def _plain_ponder(params, x, t, max_steps, beta, lambda_p):
    """PonderNet on one example by its definitions: (p, loss, halting step)."""
    steps = _plain_steps(params, x.tolist(), max_steps)
    lam = [_sig(a) for a, _ in steps[:-1]] + [1.0]
    p = [lam[n] * math.prod(1 - l for l in lam[:n]) for n in range(max_steps)]
    g = [lambda_p * (1 - lambda_p) ** n for n in range(max_steps - 1)]
    g.append(1 - sum(g))
    ell = [sum(math.log(1 + math.exp(yo)) - to * yo for yo, to in zip(y, t)) for _, y in steps]
    loss = sum(pn * ln for pn, ln in zip(p, ell)) + beta * sum(
        pn * math.log(pn / gn) for pn, gn in zip(p, g))
    halt = next(n for n in range(max_steps) if sum(p[:n + 1]) >= 0.5 or n == max_steps - 1)
    return p, loss, halt


@pytest.mark.parametrize("backend", BACKENDS)
def test_act_equals_its_equations_written_out(backend):
    m = _model(ACTCell, max_steps=6, tau=0.05, halt_bias=-1.0, backend=backend)
    X, Y = _data()
    probs, ponder = m.predict(X)
    loss, _ = m.loss_and_grads(X, Y)
    plain = [_plain_act(m.params, x, t, 6, 0.01, 0.05) for x, t in zip(X, Y)]
    np.testing.assert_allclose(probs, [p for p, _, _ in plain], rtol=1e-12)
    np.testing.assert_allclose(ponder, [q for _, q, _ in plain], rtol=1e-12)
    assert loss == pytest.approx(np.mean([l for _, _, l in plain]), rel=1e-12)
    assert len(set(np.floor(ponder))) > 2            # the examples halt at different steps


@pytest.mark.parametrize("backend", BACKENDS)
def test_ponder_equals_its_definitions_written_out(backend):
    m = _model(PonderCell, max_steps=5, beta=0.1, lambda_p=0.3, backend=backend)
    X, Y = _data()
    probs, halt = m.predict(X)
    loss, _ = m.loss_and_grads(X, Y)
    plain = [_plain_ponder(m.params, x, t, 5, 0.1, 0.3) for x, t in zip(X, Y)]
    assert loss == pytest.approx(np.mean([l for _, l, _ in plain]), rel=1e-12)
    np.testing.assert_array_equal(halt, [h + 1 for _, _, h in plain])
    steps = _plain_steps(m.params, X[0].tolist(), 5)
    assert probs[0] == pytest.approx([_sig(v) for v in steps[plain[0][2]][1]], rel=1e-12)
    _, A, _ = halting.cell_forward(m.params, X, 5)
    p, log_p = halting.ponder_halting(A)
    np.testing.assert_allclose(p.T, [q for q, _, _ in plain], rtol=1e-12)
    np.testing.assert_allclose(np.exp(log_p), p, rtol=1e-14)


def _fd_check(m, X, Y, held, eps=1e-6, tol=1e-7):
    """Central differences of every parameter entry against the gradient, with ``held(m)``
    (the halting steps) unchanged at both ends of every difference."""
    _, grads = m.loss_and_grads(X, Y)
    before = held(m)
    for k, p in m.params.items():
        fd = np.empty_like(p)
        for i in range(p.size):
            old = p.flat[i]
            p.flat[i] = old + eps
            up, _ = m.loss_and_grads(X, Y)
            np.testing.assert_array_equal(held(m), before)
            p.flat[i] = old - eps
            down, _ = m.loss_and_grads(X, Y)
            np.testing.assert_array_equal(held(m), before)
            p.flat[i] = old
            fd.flat[i] = (up - down) / (2 * eps)
        err = np.abs(fd - grads[k]).max() / max(np.abs(fd).max(), 1e-3)
        assert err < tol, (k, err)


@pytest.mark.parametrize("tau", [0.0, 0.05])
def test_act_gradient_equals_finite_differences(tau):
    m = _model(ACTCell, max_steps=6, tau=tau, halt_bias=-1.0, backend="numpy")
    X, Y = _data()
    _fd_check(m, X, Y, lambda m: halting.act_forward(m.params, X, 6, 0.01)["N"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_looped_cell_outputs_its_last_step(backend):
    m = _model(LoopedCell, max_steps=4, backend=backend)
    X, Y = _data()
    probs, loops = m.predict(X)
    full = {**m.params, "w_halt": np.zeros(6), "b_halt": np.zeros(1)}
    last = [_plain_steps(full, x.tolist(), 4)[-1][1] for x in X]
    np.testing.assert_allclose(probs, [[_sig(v) for v in y] for y in last], rtol=1e-12)
    np.testing.assert_array_equal(loops, 4.0)
    loss, grads = m.loss_and_grads(X, Y)
    assert loss == pytest.approx(halting.bce(np.array(last), Y).mean(), rel=1e-12)
    assert list(grads) == ["W_x", "W_h", "b_h", "W_y", "b_y"]


def test_looped_gradient_equals_finite_differences():
    m = _model(LoopedCell, max_steps=4, backend="numpy")
    X, Y = _data()
    _fd_check(m, X, Y, lambda m: 0)


@pytest.mark.parametrize("beta", [0.0, 0.1])
def test_ponder_gradient_equals_finite_differences(beta):
    m = _model(PonderCell, max_steps=5, beta=beta, backend="numpy")
    X, Y = _data()
    _fd_check(m, X, Y, lambda m: m.predict(X)[1])


def test_act_gradient_of_the_ponder_cost_flows_only_through_R():
    """τ changes the gradient by τ ∂mean(R)/∂θ exactly: N, piecewise constant, adds nothing."""
    X, Y = _data()
    grads = {}
    for tau in (0.0, 0.3):
        m = _model(ACTCell, max_steps=6, tau=tau, halt_bias=-1.0, backend="numpy")
        grads[tau] = m.loss_and_grads(X, Y)[1]
    m = _model(ACTCell, max_steps=6, halt_bias=-1.0, backend="numpy")
    c = halting.act_forward(m.params, X, 6, 0.01)
    h = halting.sigmoid(c["A"])
    steps = np.arange(1, len(h) + 1)[:, None]
    dA = np.where(steps < c["N"], -1.0 / len(X), 0.0) * h * (1 - h)   # ∂mean(R)/∂a_n
    dR = halting.cell_backward(m.params, X, c["S"], np.zeros_like(c["Ys"]), dA)
    for k in grads[0.0]:
        np.testing.assert_allclose(grads[0.3][k] - grads[0.0][k], 0.3 * dR[k], atol=1e-15)


@pytest.mark.parametrize("backend", ["numba", "cuda"])
@pytest.mark.parametrize("cls", [ACTCell, PonderCell, LoopedCell])
def test_backends_agree_on_parity(cls, backend):
    size = dict(n_bits=16, B=64, H=12, steps=10) if backend == "numba" else \
        dict(n_bits=6, B=5, H=4, steps=4)
    X, Y, _ = parity_vectors(size["B"], n_bits=size["n_bits"], seed=3)
    kw = dict(halt_bias=-2.0) if cls is ACTCell else {}
    ref = _model(cls, size["n_bits"], size["H"], 1, max_steps=size["steps"], backend="numpy",
                 **kw)
    other = _model(cls, size["n_bits"], size["H"], 1, max_steps=size["steps"],
                   backend=backend, **kw)
    loss, grads = ref.loss_and_grads(X, Y)
    loss2, grads2 = other.loss_and_grads(X, Y)
    assert abs(loss - loss2) <= 1e-10
    for k in grads:
        np.testing.assert_allclose(grads2[k], grads[k], rtol=0, atol=1e-10, err_msg=k)
    for a, b in zip(ref.predict(X), other.predict(X)):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-10)


def test_act_with_one_step_is_a_plain_rnn_step():
    m = _model(ACTCell, max_steps=1, tau=0.1, backend="numpy")
    X, Y = _data()
    rnn = RNN(6, 6, 2, alpha=1.0, activation="tanh", backend="numpy")
    rnn.params.update(W_in=m.params["W_x"].copy(), b_rec=m.params["b_h"].copy(),
                      W_out=m.params["W_y"].copy(), b_out=m.params["b_y"].copy())
    # The flag is an input that is 1 on the only step.
    ys = rnn.predict(np.hstack([X, np.ones((len(X), 1))])[None])[0]
    probs, ponder = m.predict(X)
    np.testing.assert_allclose(probs, halting.sigmoid(ys), rtol=1e-13)
    np.testing.assert_array_equal(ponder, 2.0)          # N = 1 and R = 1
    loss, grads = m.loss_and_grads(X, Y)
    assert loss == pytest.approx(halting.bce(ys, Y).mean() + 0.1 * 2.0, rel=1e-13)
    assert not grads["w_halt"].any() and not grads["b_halt"].any() and not grads["W_h"].any()


@settings(max_examples=30, deadline=None)
@given(steps=st.integers(1, 7), bias=st.floats(-6, 6), seed=st.integers(0, 10**6),
       epsilon=st.sampled_from([0.0, 0.01, 0.5]))
def test_a_stop_rule_never_exceeds_its_cap(steps, bias, seed, epsilon):
    X, Y = _data(seed=seed)
    act = _model(ACTCell, max_steps=steps, halt_bias=bias, epsilon=epsilon, seed=seed % 97,
                 backend="numpy")
    c = halting.act_forward(act.params, X, steps, epsilon)
    assert (1 <= c["N"]).all() and (c["N"] <= steps).all() and len(c["A"]) <= steps
    assert (c["p"] >= 0).all() and np.allclose(c["p"].sum(axis=0), 1.0)
    assert (c["R"] > 0).all()
    ponder = _model(PonderCell, max_steps=steps, halt_bias=bias, seed=seed % 97,
                    backend="numpy")
    _, halt = ponder.predict(X)
    assert (1 <= halt).all() and (halt <= steps).all()
    _, A, _ = halting.cell_forward(ponder.params, X, steps)
    assert np.allclose(halting.ponder_halting(A)[0].sum(axis=0), 1.0)


def test_loops_at_test_time_can_exceed_the_training_cap():
    m = _model(ACTCell, max_steps=3, halt_bias=-6.0, backend="numpy")
    X, _ = _data()
    assert m.predict(X)[1].max() <= 4 and m.predict(X, max_steps=8)[1].max() > 4


def test_the_geometric_prior_is_a_distribution():
    log_g = halting.geometric_prior(6, 0.2)
    assert np.exp(log_g).sum() == pytest.approx(1.0, rel=1e-14)
    assert np.exp(log_g[0]) == pytest.approx(0.2)


@pytest.mark.parametrize("cls", [ACTCell, PonderCell])
def test_bad_input_is_refused_with_its_name(cls):
    m = cls(3, 4, 1)
    X = np.zeros((2, 3))
    cases = [(lambda: cls(3, 4, 1, max_steps=0), "max_steps: expected a positive integer"),
             (lambda: cls(3, 0, 1), "n_hidden: expected a positive integer"),
             (lambda: m.predict(np.zeros((2, 4))), r"X: expected shape \(n, 3\)"),
             (lambda: m.predict(np.full((2, 3), np.nan)), "X: expected finite values"),
             (lambda: m.loss_and_grads(X, np.full((2, 1), 0.5)), r"Y: expected targets in"),
             (lambda: m.loss_and_grads(X, np.zeros((3, 1))), r"Y: expected shape"),
             (lambda: m.predict(X, max_steps=1.5), "max_steps: expected a positive integer"),
             (lambda: m.predict(X, backend="gpu"), "backend: expected one of")]
    if cls is ACTCell:
        cases += [(lambda: ACTCell(3, 4, 1, tau=-1e-3), r"tau: expected"),
                  (lambda: ACTCell(3, 4, 1, epsilon=1.0), r"epsilon: expected"),
                  (lambda: ACTCell(3, 4, 1, halt_bias=np.nan), r"halt_bias: expected")]
    else:
        cases += [(lambda: PonderCell(3, 4, 1, lambda_p=0.0), r"lambda_p: expected"),
                  (lambda: PonderCell(3, 4, 1, lambda_p=1.0), r"lambda_p: expected"),
                  (lambda: PonderCell(3, 4, 1, beta=-0.1), r"beta: expected")]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


@pytest.mark.parametrize("difficulty", [None, 5, (1, 8), (9, 16)])
def test_parity_vectors_hold_k_signed_entries_and_their_parity(difficulty):
    X, Y, k = parity_vectors(500, 16, difficulty, seed=2)
    assert X.shape == (500, 16) and Y.shape == (500, 1)
    np.testing.assert_array_equal((X != 0).sum(axis=1), k)
    assert set(np.unique(X)) <= {-1.0, 0.0, 1.0}
    np.testing.assert_array_equal(Y[:, 0], (X == 1).sum(axis=1) % 2)
    low, high = (1, 16) if difficulty is None else (
        (difficulty, difficulty) if np.ndim(difficulty) == 0 else difficulty)
    assert k.min() == low and k.max() == high
    assert 0.4 < Y.mean() < 0.6
    np.testing.assert_array_equal(parity_vectors(500, 16, difficulty, seed=2)[0], X)


@pytest.mark.parametrize("bad", [0, 17, (3, 2), (0, 4), 2.5, True])
def test_parity_vectors_refuse_an_impossible_difficulty(bad):
    with pytest.raises(ValueError, match="difficulty: expected"):
        parity_vectors(4, 16, bad)
