"""The tall strange-loop network (Chapter 15): its dialogue written out, exact gradients
through the whole inner loop with every stop rule, the loop cap, and bad input."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from loopy_edu.gradcheck import check_grads
from loopy_edu.sln import TallSLN


def _model(stop, seed=1, backend="numpy", **kwargs):
    m = TallSLN(5, 4, 2, max_loops=5, stop=stop, seed=seed, backend=backend, **kwargs)
    rng = np.random.default_rng(seed + 100)
    for p in m.params.values():
        p += 0.3 * rng.standard_normal(p.shape)
    if stop == "agree":                  # answers sure enough that some dialogues agree early
        for k in ("V_L", "V_R"):
            m.params[k] *= 6.0
    return m


def _data(B=7, seed=0):
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 0.0, 1.0], size=(B, 5)), rng.integers(0, 2, (B, 2)).astype(float)


def _plain_dialogue(P, x, loops):
    """(q^L_n, q^R_n) for n = 1..loops of one example, unit by unit with Python floats."""
    P = {k: v.tolist() for k, v in P.items()}
    sig = lambda z: 1 / (1 + math.exp(-z))
    H, n = len(P["W_h_L"]), len(x)
    s = {"L": [0.0] * H, "R": [0.0] * H}
    heard, out = [0.0, 0.0], []
    for loop in range(1, loops + 1):
        answers = {}
        for side in "LR":
            s[side] = [math.tanh(sum(P[f"W_x_{side}"][i][j] * x[j] for j in range(n))
                                 + (P[f"W_x_{side}"][i][n] if loop == 1 else 0.0)
                                 + sum(P[f"W_h_{side}"][i][j] * s[side][j] for j in range(H))
                                 + sum(P[f"U_{side}"][i][o] * heard[o] for o in range(2))
                                 + P[f"b_{side}"][i]) for i in range(H)]
            heard = [sig(sum(w * v for w, v in zip(row, s[side])) + c)
                     for row, c in zip(P[f"V_{side}"], P[f"c_{side}"])]
            answers[side] = heard
        out.append((answers["L"], answers["R"]))
    return out


def test_the_dialogue_is_the_equations_written_out():
    m = _model("fixed")
    X, _ = _data()
    c = m.forward(X)
    for b, x in enumerate(X):
        for n, (qL, qR) in enumerate(_plain_dialogue(m.params, x.tolist(), 5), start=1):
            np.testing.assert_allclose(c["QL"][n, b], qL, rtol=1e-12)
            np.testing.assert_allclose(c["QR"][n, b], qR, rtol=1e-12)


def test_agreement_stops_at_the_first_loop_where_both_lobes_are_sure_of_one_answer():
    m = _model("agree", tol=0.3)
    X, _ = _data(B=40)
    c = m.forward(X)
    for b, N in enumerate(c["N"]):
        agreed = [n for n in range(len(c["YR"])) if all(
            min(max(abs(qL - a), abs(qR - a)) for a in (0.0, 1.0)) <= 0.3
            for qL, qR in zip(c["QL"][n + 1, b], c["QR"][n + 1, b]))]
        assert N == (agreed[0] + 1 if len(agreed) else 5)
    assert len(set(c["N"])) > 1
    np.testing.assert_array_equal(m.predict(X)[1], c["N"])


@pytest.mark.parametrize("stop, kwargs", [("fixed", {}), ("agree", dict(tol=0.3)),
                                          ("halt", dict(tau=0.05, halt_bias=-1.0)),
                                          ("fixed", dict(left_weight=0.0))])
def test_the_gradient_through_the_whole_dialogue_equals_finite_differences(stop, kwargs):
    m = _model(stop, **kwargs)
    X, Y = _data()
    N = m.forward(X)["N"].copy()
    errors = check_grads(m, X, Y, max_entries=200)
    assert max(errors.values()) < 1e-7, errors
    for k, p in m.params.items():                      # the stop held under the perturbation
        p += 1e-6
        np.testing.assert_array_equal(m.forward(X)["N"], N)
        p -= 1e-6


@pytest.mark.parametrize("stop, kwargs", [("fixed", {}), ("agree", dict(tol=0.3)),
                                          ("halt", dict(tau=0.05, halt_bias=-1.0))])
@pytest.mark.parametrize("backend", ["numba", "cuda"])
def test_the_kernels_equal_the_numpy_reference(stop, kwargs, backend):
    ref, fast = _model(stop, **kwargs), _model(stop, backend=backend, **kwargs)
    # The simulator runs every CUDA thread in Python: fewer examples, but enough to disagree.
    X, Y = _data(B=20 if backend == "numba" else 6 if stop == "agree" else 3)
    loss, grads = ref.loss_and_grads(X, Y)
    loss2, grads2 = fast.loss_and_grads(X, Y)
    assert abs(loss - loss2) <= 1e-12 and list(grads) == list(grads2)
    for k in grads:
        np.testing.assert_allclose(grads2[k], grads[k], rtol=0, atol=1e-12, err_msg=k)
    for a, b in zip(ref.predict(X), fast.predict(X)):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-12)
    c, c2 = ref.forward(X), fast.forward(X)
    for k in c:
        np.testing.assert_allclose(c2[k], c[k], rtol=0, atol=1e-12, err_msg=k)
    if stop == "agree":
        assert len(set(c["N"])) > 1


@settings(max_examples=25, deadline=None)
@given(loops=st.integers(1, 6), stop=st.sampled_from(["fixed", "agree", "halt"]),
       tol=st.floats(0.01, 0.49), bias=st.floats(-5, 5), seed=st.integers(0, 1000))
def test_a_stop_rule_never_exceeds_its_cap(loops, stop, tol, bias, seed):
    m = TallSLN(5, 3, 2, max_loops=loops, stop=stop, tol=tol, halt_bias=bias, seed=seed)
    X, _ = _data(seed=seed)
    c = m.forward(X)
    assert (c["N"] >= 1).all() and (c["N"] <= loops).all() and len(c["YR"]) <= loops
    assert np.allclose(c["p"].sum(axis=0), 1.0) and (c["p"] >= 0).all()
    if stop == "fixed":
        assert (c["N"] == loops).all()


def test_parameters_count_both_lobes_and_the_head():
    fixed, halt = TallSLN(16, 88, 1, stop="fixed"), TallSLN(16, 88, 1, stop="halt")
    lobe = 88 * 17 + 88 * 88 + 88 + 88 + 88 + 1
    assert sum(p.size for p in fixed.params.values()) == 2 * lobe
    assert sum(p.size for p in halt.params.values()) == 2 * lobe + 2 * 88 + 1


def test_bad_input_is_refused_with_its_name():
    m = TallSLN(3, 4, 1)
    X = np.zeros((2, 3))
    cases = [(lambda: TallSLN(3, 4, 1, stop="vote"), "stop: expected one of"),
             (lambda: TallSLN(3, 4, 1, tol=0.5), "tol: expected"),
             (lambda: TallSLN(3, 4, 1, tau=-1.0), "tau: expected"),
             (lambda: TallSLN(3, 4, 1, max_loops=0), "max_loops: expected a positive"),
             (lambda: TallSLN(3, 4, 1, backend="gpu"), "backend: expected one of"),
             (lambda: m.predict(np.zeros((2, 4))), r"X: expected shape"),
             (lambda: m.predict(np.full((2, 3), np.nan)), "X: expected finite values"),
             (lambda: m.loss_and_grads(X, np.full((2, 1), 0.5)), r"Y: expected targets"),
             (lambda: m.predict(X, max_loops=0), "max_loops: expected a positive")]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    m.params["U_L"][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"params\['U_L'\]: expected finite"):
        m.predict(X)


def test_two_unsure_lobes_do_not_agree():
    # At initialisation both lobes answer about 1/2: equal, but neither is sure, so the dialogue
    # goes on (agreement within tol of each other alone would stop every example at loop 1).
    m = TallSLN(5, 4, 1, max_loops=4, stop="agree", tol=0.1, seed=0)
    m.params["V_L"][:] = m.params["V_R"][:] = 0.0
    assert (m.forward(_data()[0])["N"] == 4).all()
