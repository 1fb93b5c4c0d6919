"""The lateralized strange-loop network (Chapter 15): the actor-critic dialogue written out,
the exact gradient through every loop, the backends, the stop at θ and its cap, bad input, and
a critic that learns to tell right answers from wrong ones; the same for its one-model
control, the critic cell."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from loopy_edu.gradcheck import check_grads
from loopy_edu.optim import Adam
from loopy_edu.halting import LoopedCell
from loopy_edu.sln_lateral import (CriticCell, LateralSLN, exactly_right, first_confident,
                                   lateral_forward)
from loopy_edu.tasks import parity_vectors
from loopy_edu.train import train_batches


def _perturbed(m, seed):
    # Weights away from their initial symmetries.
    rng = np.random.default_rng(seed + 100)
    for p in m.params.values():
        p += 0.5 * rng.standard_normal(p.shape)
    return m


def _model(seed=1, backend="numpy", n_hidden=4, n_critic=3, max_loops=4, **kwargs):
    return _perturbed(LateralSLN(5, n_hidden, 2, n_critic=n_critic, max_loops=max_loops,
                                 seed=seed, backend=backend, **kwargs), seed)


def _data(B=7, seed=0):
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 0.0, 1.0], size=(B, 5)), rng.integers(0, 2, (B, 2)).astype(float)


def _plain_dialogue(P, x, loops):
    """(q_n, c_n) for n = 1..loops of one example, unit by unit with Python floats."""
    P = {k: v.tolist() for k, v in P.items()}
    sig = lambda z: 1 / (1 + math.exp(-z))
    H, K, n = len(P["W_h_A"]), len(P["W_h_C"]), len(x)
    sA, sC, c, out = [0.0] * H, [0.0] * K, 0.0, []
    for loop in range(1, loops + 1):
        flag = 1.0 if loop == 1 else 0.0
        sA = [math.tanh(sum(P["W_x_A"][i][j] * x[j] for j in range(n)) + P["W_x_A"][i][n] * flag
                        + sum(P["W_h_A"][i][j] * sA[j] for j in range(H))
                        + P["u_A"][i] * c + P["b_A"][i]) for i in range(H)]
        q = [sig(sum(w * s for w, s in zip(row, sA)) + b) for row, b in zip(P["V_A"], P["c_A"])]
        sC = [math.tanh(sum(P["W_x_C"][i][j] * x[j] for j in range(n)) + P["W_x_C"][i][n] * flag
                        + sum(P["W_h_C"][i][j] * sC[j] for j in range(K))
                        + sum(P["U_C"][i][o] * q[o] for o in range(len(q)))
                        + P["b_C"][i]) for i in range(K)]
        c = sig(sum(w * s for w, s in zip(P["w_C"], sC)) + P["b_z"][0])
        out.append((q, c))
    return out


def test_the_dialogue_is_the_equations_written_out():
    m = _model()
    X, _ = _data()
    c = m.forward(X)
    assert c["Q"].shape == (4, 7, 2) and c["C"].shape == (4, 7) and c["SC"].shape == (5, 7, 3)
    for b, x in enumerate(X):
        for n, (q, score) in enumerate(_plain_dialogue(m.params, x.tolist(), 4)):
            np.testing.assert_allclose(c["Q"][n, b], q, rtol=1e-12)
            np.testing.assert_allclose(c["C"][n, b], score, rtol=1e-12)


def test_the_targets_and_the_stop_rule_on_small_cases():
    Q = np.array([[[0.9, 0.2], [0.6, 0.7], [0.4, 0.1]]])           # (1 loop, 3 examples, 2)
    Y = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_array_equal(exactly_right(Q, Y), [[True, False, False]])
    C = np.array([[0.2, 0.95, 0.1], [0.9, 0.1, 0.3], [0.99, 0.2, 0.4]])   # (3 loops, 3)
    np.testing.assert_array_equal(first_confident(C, 0.9), [2, 1, 3])


def _critic_cell(seed=1, backend="numpy", n_hidden=4, max_steps=4, **kwargs):
    return _perturbed(CriticCell(5, n_hidden, 2, max_steps=max_steps, seed=seed,
                                 backend=backend, **kwargs), seed)


@pytest.mark.parametrize("make, kwargs", [
    (_model, {}), (_model, dict(critic_weight=0.0)), (_model, dict(critic_weight=2.5)),
    (_model, dict(n_hidden=3, n_critic=5, max_loops=6)), (_model, dict(max_loops=1)),
    (_critic_cell, {}), (_critic_cell, dict(critic_weight=0.0)),
    (_critic_cell, dict(critic_weight=2.5)), (_critic_cell, dict(n_hidden=6, max_steps=7)),
    (_critic_cell, dict(max_steps=1))])
def test_the_gradient_through_every_loop_equals_finite_differences(make, kwargs):
    m = make(**kwargs)
    X, Y = _data(B=10)
    c = m.forward(X)
    Y[:4] = c["Q"][-1, :4] > 0.5                       # so that both targets occur
    T = exactly_right(c["Q"], Y)
    # Away from q = 0.5, where the critic's targets jump.
    assert np.abs(c["Q"] - 0.5).min() > 1e-4 and 0 < T.mean() < 1
    errors = check_grads(m, X, Y, eps=1e-5, max_entries=200)
    assert max(errors.values()) < 1e-7, errors
    for p in m.params.values():                        # the targets held under the perturbation
        for step in (1e-5, -1e-5):
            p += step
            np.testing.assert_array_equal(exactly_right(m.forward(X)["Q"], Y), T)
            p -= step


@pytest.mark.parametrize("backend", ["numba", "cuda"])
def test_the_kernels_equal_the_numpy_reference(backend):
    # The simulator runs every CUDA thread in Python: 3 units, 3 loops, 3 examples.
    size = dict(n_hidden=4, n_critic=3, max_loops=4) if backend == "numba" else dict(
        n_hidden=3, n_critic=3, max_loops=3)
    ref, fast = _model(**size), _model(backend=backend, **size)
    X, Y = _data(B=20 if backend == "numba" else 3)
    loss, grads = ref.loss_and_grads(X, Y)
    loss2, grads2 = fast.loss_and_grads(X, Y)
    assert abs(loss - loss2) <= 1e-12 and list(grads) == list(grads2)
    for k in grads:
        assert grads2[k].shape == grads[k].shape
        np.testing.assert_allclose(grads2[k], grads[k], rtol=0, atol=1e-12, err_msg=k)
    c, c2 = ref.forward(X), fast.forward(X)
    for k in c:
        np.testing.assert_allclose(c2[k], c[k], rtol=0, atol=1e-12, err_msg=k)
    theta = float(np.median(c["C"]))                   # some examples stop early, some do not
    out, out2 = ref.predict(X, theta=theta), fast.predict(X, theta=theta)
    assert len(set(out[1])) > 1
    for a, b in zip(out, out2):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(loops=st.integers(1, 6), theta=st.floats(0.01, 0.99), bias=st.floats(-4, 4),
       seed=st.integers(0, 1000), backend=st.sampled_from(["numpy", "numba"]))
def test_predict_stops_at_the_first_confident_loop_never_beyond_the_cap(loops, theta, bias,
                                                                          seed, backend):
    m = LateralSLN(5, 3, 2, max_loops=loops, theta=theta, seed=seed, backend=backend)
    m.params["b_z"][0] = bias
    m.params["w_C"] *= 4.0                             # scores spread across (0, 1)
    X, _ = _data(B=12, seed=seed)
    c = m.forward(X)
    assert len(c["C"]) == loops and (c["N"] >= 1).all() and (c["N"] <= loops).all()
    probs, N, scores = m.predict(X)
    np.testing.assert_array_equal(N, c["N"])
    b = np.arange(12)
    for n, scores_n in enumerate(c["C"], start=1):     # no example ran past a confident loop
        assert (scores_n[N > n] < theta).all()
    assert ((scores >= theta) | (N == loops)).all()
    np.testing.assert_allclose(probs, c["Q"][c["N"] - 1, b], rtol=0, atol=1e-15)
    np.testing.assert_allclose(scores, c["C"][c["N"] - 1, b], rtol=0, atol=1e-15)
    early = lateral_forward(m.params, X, loops, theta, stop_early=True)
    assert len(early["C"]) == N.max()                  # the dialogue ends with its last example


def test_parameters_count_both_lobes():
    m = LateralSLN(16, 20, 1, n_critic=8)
    actor = 20 * 17 + 20 * 20 + 20 + 20 + 20 + 1
    critic = 8 * 17 + 8 * 8 + 8 + 8 + 8 + 1
    assert sum(p.size for p in m.params.values()) == actor + critic
    rebuilt = LateralSLN(**m.config())
    for k, p in m.params.items():
        np.testing.assert_array_equal(rebuilt.params[k], p)
    assert LateralSLN(3, 6, 1).n_critic == 6


def test_bad_input_is_refused_with_its_name():
    m = LateralSLN(3, 4, 1)
    X = np.zeros((2, 3))
    cases = [(lambda theta=theta: LateralSLN(3, 4, 1, theta=theta), "theta: expected a finite number "
              r"in \(0, 1\)") for theta in (0.0, 1.0, 1.5, float("nan"))]
    cases += [(lambda theta=theta: m.predict(X, theta=theta), "theta: expected")
              for theta in (0, 1.0)]
    cases += [(lambda: LateralSLN(3, 4, 1, critic_weight=-1.0), "critic_weight: expected"),
              (lambda: LateralSLN(3, 4, 1, max_loops=0), "max_loops: expected a positive"),
              (lambda: LateralSLN(3, 4, 1, n_critic=0), "n_critic: expected a positive"),
              (lambda: LateralSLN(3, 4, 1, backend="gpu"), "backend: expected one of"),
              (lambda: m.predict(np.zeros((2, 4))), r"X: expected shape"),
              (lambda: m.forward(np.full((2, 3), np.nan)), "X: expected finite values"),
              (lambda: m.loss_and_grads(X, np.full((2, 1), 0.5)), r"Y: expected targets"),
              (lambda: m.loss_and_grads(X, np.zeros((3, 1))), r"Y: expected shape"),
              (lambda: m.predict(X, max_loops=0), "max_loops: expected a positive")]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    m.params["u_A"][0] = np.nan
    with pytest.raises(ValueError, match=r"params\['u_A'\]: expected finite"):
        m.predict(X)


def test_the_critic_learns_to_tell_right_answers_from_wrong_ones():
    m = LateralSLN(4, 16, 1, max_loops=4, seed=0)
    train_batches(m, lambda s: parity_vectors(64, 4, seed=s)[:2], Adam(1e-2, backend="numpy"),
                  300, progress=False)
    X, Y, _ = parity_vectors(1000, 4, seed=10**6)
    c = m.forward(X)
    right = exactly_right(c["Q"], Y)
    assert 0.01 < 1 - right.mean() < 0.5                # wrong answers exist to be told apart
    assert c["C"][right].mean() - c["C"][~right].mean() > 0.3
    probs, N, scores = m.predict(X)
    halted = scores >= m.theta
    assert halted.mean() > 0.5 and N.mean() < m.max_loops
    assert exactly_right(probs, Y)[halted].mean() > 0.95   # halting precision at θ = 0.9


def test_the_critic_cells_answer_loss_is_the_mean_of_the_fixed_loops_losses():
    # A second derivation: with λ = 0, deep supervision over M loops is the mean of the losses
    # of the looped cell run for n = 1..M loops, and so is its gradient; the score gets none.
    m = _critic_cell(critic_weight=0.0, max_steps=5)
    X, Y = _data(B=9)
    loss, grads = m.loss_and_grads(X, Y)
    losses, sums = [], {k: 0.0 for k in grads}
    for n in range(1, 6):
        fixed = LoopedCell(5, 4, 2, max_steps=n, backend="numpy")
        fixed.params = {k: v for k, v in m.params.items() if k in fixed.params}
        ell, g = fixed.loss_and_grads(X, Y)
        losses.append(ell)
        for k in g:
            sums[k] = sums[k] + g[k] / 5
    assert abs(loss - np.mean(losses)) < 1e-14
    for k in grads:
        if k in ("w_halt", "b_halt"):
            assert not grads[k].any()
        else:
            np.testing.assert_allclose(grads[k], sums[k], rtol=0, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("backend", ["numba", "cuda"])
def test_the_critic_cells_kernels_equal_the_numpy_reference(backend):
    size = dict(n_hidden=4, max_steps=4) if backend == "numba" else dict(n_hidden=3,
                                                                        max_steps=3)
    ref, fast = _critic_cell(**size), _critic_cell(backend=backend, **size)
    X, Y = _data(B=20 if backend == "numba" else 3)
    loss, grads = ref.loss_and_grads(X, Y)
    loss2, grads2 = fast.loss_and_grads(X, Y)
    assert abs(loss - loss2) <= 1e-12 and list(grads) == list(grads2)
    for k in grads:
        np.testing.assert_allclose(grads2[k], grads[k], rtol=0, atol=1e-12, err_msg=k)
    first = np.sort(ref.forward(X)["C"][0])            # θ between scores: no rounding ties
    fast.theta = ref.theta = float(first[0] + first[1]) / 2
    out, out2 = ref.predict(X), fast.predict(X)
    assert len(set(out[1])) > 1                        # some examples stop early, some do not
    for a, b in zip(out, out2):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(loops=st.integers(1, 6), theta=st.floats(0.01, 0.99), bias=st.floats(-4, 4),
       seed=st.integers(0, 1000), backend=st.sampled_from(["numpy", "numba"]))
def test_the_critic_cell_stops_at_the_first_confident_loop_never_beyond_the_cap(
        loops, theta, bias, seed, backend):
    m = CriticCell(5, 3, 2, max_steps=loops, theta=theta, seed=seed, backend=backend)
    m.params["b_halt"][0] = bias
    m.params["w_halt"] *= 4.0
    X, _ = _data(B=12, seed=seed)
    c = m.forward(X)
    probs, N = m.predict(X)
    np.testing.assert_array_equal(N, c["N"])
    assert (N >= 1).all() and (N <= loops).all()
    for n, scores_n in enumerate(c["C"], start=1):
        assert (scores_n[N > n] < theta).all()
    np.testing.assert_allclose(probs, c["Q"][c["N"] - 1, np.arange(12)], rtol=0, atol=1e-15)


def test_the_critic_cell_refuses_bad_input_with_its_name():
    for theta in (0.0, 1.0, float("nan")):
        with pytest.raises(ValueError, match=r"theta: expected a finite number in \(0, 1\)"):
            CriticCell(3, 4, 1, theta=theta)
    with pytest.raises(ValueError, match="critic_weight: expected"):
        CriticCell(3, 4, 1, critic_weight=-0.5)
    with pytest.raises(ValueError, match="max_steps: expected a positive"):
        CriticCell(3, 4, 1).forward(np.zeros((2, 3)), max_steps=0)
