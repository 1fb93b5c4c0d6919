"""The wide strange-loop network (Chapter 15): its soft and hard passes written out, the exact
gradient through every loop, the backends, the loop cap, bad input, and a short training run
on one-op bit programs."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from loopy_edu import tasks
from loopy_edu.gradcheck import check_grads
from loopy_edu.optim import Adam
from loopy_edu.sln_wide import WideSLN, gate_entropy
from loopy_edu.train import train_batches


def _model(seed=1, backend="numpy", n_experts=2, max_loops=4, **kwargs):
    m = WideSLN(4, 3, 2, n_experts=n_experts, max_loops=max_loops, seed=seed, backend=backend,
                **kwargs)
    rng = np.random.default_rng(seed + 100)
    for p in m.params.values():
        p += 0.3 * rng.standard_normal(p.shape)
    return m


def _data(B=6, T=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((B, T, 4)), rng.integers(0, 2, (B, 2)).astype(float)


def _plain(P, tokens, loops):
    """One example's soft pass with Python floats: the states h_1..h_M, the output weights
    p_1..p_M and the answer's logits y."""
    P = {k: v.tolist() for k, v in P.items()}
    dot = lambda w, v: sum(a * b for a, b in zip(w, v))
    soft = lambda z: [math.exp(x - max(z)) / sum(math.exp(y - max(z)) for y in z) for x in z]
    h, hs, lams, ys = [0.0] * 3, [], [], []
    for t in range(loops):
        v = h + (list(tokens[t]) if t < len(tokens) else [0.0] * 4)
        pi = soft([dot(w, v) + b for w, b in zip(P["G"], P["g"])])
        u = {}
        for k in "LR":
            gam = soft([dot(w, v) + b for w, b in zip(P[f"A_{k}"], P[f"a_{k}"])])
            u[k] = [sum(gam[e] * math.tanh(dot(P[f"W_{k}"][e][i], v) + P[f"b_{k}"][e][i])
                        for e in range(len(gam))) for i in range(3)]
        h = [pi[0] * u["L"][i] + pi[1] * u["R"][i] + pi[2] * h[i] for i in range(3)]
        hs.append(h)
        lams.append(pi[2] if t < loops - 1 else 1.0)
        ys.append([dot(w, h) + c for w, c in zip(P["V"], P["c"])])
    p = [lams[t] * math.prod(1 - lam for lam in lams[:t]) for t in range(loops)]
    return hs, p, [sum(p[t] * ys[t][o] for t in range(loops)) for o in range(2)]


def _plain_hard(P, tokens, loops):
    """One example's hard pass with Python floats: the answer, the loops, the route."""
    P = {k: v.tolist() for k, v in P.items()}
    dot = lambda w, v: sum(a * b for a, b in zip(w, v))
    pick = lambda W, bias, v: max(range(len(bias)), key=lambda k: dot(W[k], v) + bias[k])
    h, route = [0.0] * 3, []
    for t in range(loops):
        v = h + (list(tokens[t]) if t < len(tokens) else [0.0] * 4)
        choice = pick(P["G"], P["g"], v)
        if choice == 2:
            route.append((2, -1))
            break
        k = "LR"[choice]
        e = pick(P[f"A_{k}"], P[f"a_{k}"], v)
        route.append((choice, e))
        h = [math.tanh(dot(P[f"W_{k}"][e][i], v) + P[f"b_{k}"][e][i]) for i in range(3)]
    answer = [1 / (1 + math.exp(-(dot(w, h) + c))) for w, c in zip(P["V"], P["c"])]
    return answer, len(route), route


def test_the_soft_pass_is_the_equations_written_out():
    m = _model()
    X, _ = _data()
    c = m.forward(X)
    for b, tokens in enumerate(X.tolist()):
        hs, p, y = _plain(m.params, tokens, 4)
        np.testing.assert_allclose(c["Hs"][1:, b], hs, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(c["p"][:, b], p, rtol=1e-12)
        np.testing.assert_allclose(c["y"][b], y, rtol=1e-12)


def test_the_hard_pass_is_the_argmax_route_written_out():
    m = _model(max_loops=5)
    X, _ = _data(B=30)
    probs, loops = m.predict(X)
    lobe, expert = m.routes(X)
    for b, tokens in enumerate(X.tolist()):
        answer, n, route = _plain_hard(m.params, tokens, 5)
        np.testing.assert_allclose(probs[b], answer, rtol=1e-12)
        assert loops[b] == n
        np.testing.assert_array_equal(lobe[b, :n], [r[0] for r in route])
        np.testing.assert_array_equal(expert[b, :n], [r[1] for r in route])
        assert (lobe[b, n:] == -1).all() and (expert[b, n:] == -1).all()
    assert len(set(loops)) > 1 and {0, 1} <= set(lobe.ravel())   # the test sees both lobes


def test_tokens_after_the_sequence_read_as_zeros():
    m = _model(max_loops=5)
    X, _ = _data(T=2)
    padded = np.concatenate([X, np.zeros((len(X), 3, 4))], axis=1)
    for k, v in m.forward(X).items():
        np.testing.assert_array_equal(m.forward(padded)[k], v, err_msg=k)
    np.testing.assert_array_equal(m.predict(X)[0], m.predict(padded)[0])


@pytest.mark.parametrize("n_experts, kwargs", [
    (2, {}), (1, {}), (3, dict(entropy_cost=0.2)), (2, dict(ponder_cost=0.3)),
    (2, dict(max_loops=1, entropy_cost=0.1, ponder_cost=0.1))])
def test_the_gradient_through_every_loop_equals_finite_differences(n_experts, kwargs):
    m = _model(n_experts=n_experts, **kwargs)
    X, Y = _data()
    errors = check_grads(m, X, Y, max_entries=200)
    assert max(errors.values()) < 1e-7, errors


def test_the_costs_add_the_gates_entropy_and_the_expected_loops_to_the_loss():
    X, Y = _data()
    plain, charged = _model(), _model(entropy_cost=0.5, ponder_cost=0.2)
    c = plain.forward(X)
    per_loop = [-(q * np.log(q)).sum(axis=-1).sum(axis=0) for q in
                (c["pi"], c["gamma"][:, 0], c["gamma"][:, 1])]
    loops = sum(t * c["p"][t - 1] for t in range(1, 5))
    extra = (0.5 * sum(per_loop) + 0.2 * loops).mean()
    assert charged.loss_and_grads(X, Y)[0] == pytest.approx(
        plain.loss_and_grads(X, Y)[0] + extra, rel=1e-12)


@pytest.mark.parametrize("backend", ["numba", "cuda"])
def test_the_kernels_equal_the_numpy_reference(backend):
    # The simulator runs every CUDA thread in Python: 3 examples, 3 loops.
    B, M = (20, 4) if backend == "numba" else (3, 3)
    ref, fast = (_model(backend=b, max_loops=M, entropy_cost=0.1, ponder_cost=0.05)
                 for b in ("numpy", backend))
    X, Y = _data(B=B)
    loss, grads = ref.loss_and_grads(X, Y)
    loss2, grads2 = fast.loss_and_grads(X, Y)
    assert abs(loss - loss2) <= 1e-12 and list(grads) == list(grads2)
    for k in grads:
        np.testing.assert_allclose(grads2[k], grads[k], rtol=0, atol=1e-12, err_msg=k)
    for a, b in zip(ref._hard(X, M + 2), fast._hard(X, M + 2)):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-12)
    c, c2 = ref.forward(X), fast.forward(X)
    for k in c:
        np.testing.assert_allclose(c2[k], c[k], rtol=0, atol=1e-12, err_msg=k)


@settings(max_examples=25, deadline=None)
@given(loops=st.integers(1, 6), test_loops=st.integers(1, 8), bias=st.floats(-4, 4),
       T=st.integers(1, 8), seed=st.integers(0, 1000))
def test_the_loop_cap_is_never_exceeded(loops, test_loops, bias, T, seed):
    m = WideSLN(4, 3, 2, n_experts=2, max_loops=loops, seed=seed)
    m.params["g"][2] = bias                       # from never to nearly always stopping
    X, _ = _data(T=T, seed=seed)
    probs, used = m.predict(X)
    lobe, expert = m.routes(X)
    assert probs.shape == (len(X), 2) and lobe.shape == (len(X), loops)
    assert (used >= 1).all() and (used <= loops).all()
    stopped = lobe[np.arange(len(X)), used - 1] == 2
    assert (stopped | (used == loops)).all()
    assert ((lobe == 2).sum(axis=1) == stopped).all()        # one stop, at the last loop used
    assert (lobe[np.arange(loops) >= used[:, None]] == -1).all()
    assert ((expert >= 0) == ((lobe == 0) | (lobe == 1))).all()
    assert (m.predict(X, max_loops=test_loops)[1] <= test_loops).all()
    c = m.forward(X)
    assert len(c["p"]) == loops and (c["p"] >= 0).all()
    np.testing.assert_allclose(c["p"].sum(axis=0), 1.0, rtol=1e-12)


def test_parameters_count_the_main_gate_both_lobes_and_the_readout():
    m = WideSLN(15, 20, 8, n_experts=3)
    D = 20 + 15
    lobe = 3 * (D + 1) + 3 * 20 * (D + 1)
    assert sum(p.size for p in m.params.values()) == 3 * (D + 1) + 2 * lobe + 8 * 21


def test_gate_entropy():
    assert gate_entropy(np.full((4, 3), 1 / 3)) == pytest.approx(math.log(3), rel=1e-12)
    assert gate_entropy(np.eye(3)) == 0.0
    assert gate_entropy([[0.5, 0.5], [1.0, 0.0]]) == pytest.approx(math.log(2) / 2, rel=1e-12)
    with pytest.raises(ValueError, match="q: expected probability vectors"):
        gate_entropy([[0.5, 0.6]])


def test_bad_input_is_refused_with_its_name():
    m = WideSLN(4, 3, 2)
    X = np.zeros((2, 3, 4))
    cases = [(lambda: WideSLN(4, 3, 2, n_experts=0), "n_experts: expected a positive"),
             (lambda: WideSLN(4, 3, 2, max_loops=0), "max_loops: expected a positive"),
             (lambda: WideSLN(4, 3, 2, entropy_cost=-1.0), "entropy_cost: expected"),
             (lambda: WideSLN(4, 3, 2, ponder_cost=np.nan), "ponder_cost: expected"),
             (lambda: WideSLN(0, 3, 2), "n_in: expected a positive"),
             (lambda: WideSLN(4, 3, 2, dtype=np.int32), "dtype: expected"),
             (lambda: WideSLN(4, 3, 2, backend="gpu"), "backend: expected one of"),
             (lambda: m.predict(np.zeros((2, 4))), r"X: expected shape"),
             (lambda: m.predict(np.zeros((2, 3, 5))), r"X: expected shape"),
             (lambda: m.predict(np.full((2, 3, 4), np.nan)), "X: expected finite values"),
             (lambda: m.loss_and_grads(X, np.full((2, 2), 0.5)), r"Y: expected targets"),
             (lambda: m.loss_and_grads(X, np.zeros((3, 2))), r"Y: expected shape"),
             (lambda: m.routes(X, max_loops=0), "max_loops: expected a positive")]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    m.params["W_L"][0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"params\['W_L'\]: expected finite"):
        m.predict(X)


def test_one_op_programs_are_learned_above_chance():
    # 400 Adam steps on k = 1: the soft answer becomes exact; the hard one stays well above
    # chance (0.5 per bit), and the ponder cost teaches most examples to stop at the end token
    # (loop 3: the string, the op, the end).
    m = WideSLN(4 + 7, 16, 4, n_experts=2, max_loops=5, entropy_cost=0.01, ponder_cost=0.02,
                seed=0)
    train_batches(m, lambda s: tasks.bit_program(64, 4, 1, seed=s + 1)[:2], Adam(0.02), 400,
                  progress=False)
    X, Y, _ = tasks.bit_program(500, 4, 1, seed=10**6)
    soft = m.forward(X)["y"] > 0
    hard, loops = m.predict(X)
    assert (soft == Y).mean() > 0.95
    assert ((hard > 0.5) == Y).mean() > 0.85
    assert (loops == 3).mean() > 0.6


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_gate_that_underflows_to_zero_leaves_the_loss_finite(backend):
    m = _model(backend=backend, entropy_cost=0.1)
    m.params["g"][:] = [0.0, 0.0, -800.0]            # π_out = e^{-800} = 0 in float64
    X, Y = _data()
    assert (m.forward(X)["pi"][:, :, 2] == 0).all()
    loss, grads = m.loss_and_grads(X, Y)
    assert np.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())
