"""SORN (Chapter 12): the step and the three rules on hand cases, synaptic normalisation, the
frozen network as a fixed map, NumPy == Numba, the logistic readout, the counting experiment and
errors that name the argument."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import sparse

from loopy_edu import sweep
from loopy_edu.experiments import SORN_VARIANTS, sorn_counting, word_positions
from loopy_edu.sorn import (SORN, intrinsic_plasticity, logistic_readout, normalise_rows, stdp,
                            step)
from loopy_edu.tasks import counting


def _stream(steps, n=4, seed=1):
    return counting(steps, n, seed=seed).xs[:, 0]                       # (T, 6)


def _rows_of(W):
    return np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))


def test_step_by_hand():
    # E0 <- E1 (0.6), E1 <- E0 (1.0); one I unit inhibits both (0.5) and sees both (0.5 each).
    W_ee = sparse.csr_array(np.array([[0.0, 0.6], [1.0, 0.0]]))
    W_ei, W_ie = np.array([[0.5], [0.5]]), np.array([[0.5, 0.5]])
    W_eu = np.array([[0.0], [1.0]])
    T_e, T_i = np.array([0.2, 0.45]), np.array([0.4])
    x, y, u = np.array([0.0, 1.0]), np.array([1.0]), np.array([0.0])
    # E0: 0.6 - 0.5 - 0.2 < 0; E1: 0 - 0.5 - 0.45 < 0; then I: 0 - 0.4 < 0.
    x_new, y_new = step(x, y, u, W_ee, W_ei, W_ie, W_eu, T_e, T_i)
    np.testing.assert_array_equal(x_new, [0.0, 0.0])
    np.testing.assert_array_equal(y_new, [0.0])
    # Without inhibition E0 fires (0.6 - 0.2 >= 0); the input lifts E1 (1 - 0.45 >= 0);
    # then I sees both (1 - 0.4 >= 0): the inhibitory units read the new x.
    x_new, y_new = step(x, np.array([0.0]), np.array([1.0]), W_ee, W_ei, W_ie, W_eu, T_e, T_i)
    np.testing.assert_array_equal(x_new, [1.0, 1.0])
    np.testing.assert_array_equal(y_new, [1.0])
    # The input gain scales only the input: 0.4 * 1 - 0.45 < 0.
    x_new, _ = step(x, np.array([0.0]), np.array([1.0]), W_ee, W_ei, W_ie, W_eu, T_e, T_i,
                    input_gain=0.4)
    np.testing.assert_array_equal(x_new, [1.0, 0.0])


def test_stdp_by_hand():
    # Synapses (post, pre): (0, 1), (1, 0), (1, 2), (2, 0). Unit 1 fired at t, units 0 and 2
    # at t + 1.
    post, pre = np.array([0, 1, 1, 2]), np.array([1, 0, 2, 0])
    x_old, x_new = np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 1.0])
    data = np.array([0.5, 0.0005, 0.3, 0.2])
    out = stdp(data, post, pre, x_old, x_new, 0.001)
    # 1 -> 0: pre before post, +η. 0 -> 1: post before pre, -η, below 0 so pruned.
    # 2 -> 1: post before pre, -η. 0 -> 2: both at t + 1, no change.
    np.testing.assert_array_equal(out, [0.5 + 0.001, 0.0, 0.3 - 0.001, 0.2])
    np.testing.assert_array_equal(data, [0.5, 0.0005, 0.3, 0.2])          # a new array
    # A pruned synapse stays 0 even when the order would strengthen it.
    np.testing.assert_array_equal(stdp(np.array([0.0]), np.array([0]), np.array([1]),
                                       x_old, x_new, 0.001), [0.0])
    # A weight that would end below 1e-10 but not below 0 is pruned too.
    assert stdp(np.array([1e-3 + 5e-11]), np.array([1]), np.array([0]), x_old, x_new,
                1e-3)[0] == 0.0


def test_intrinsic_plasticity_by_hand():
    T = np.array([0.1, 0.2])
    np.testing.assert_allclose(intrinsic_plasticity(T, np.array([1.0, 0.0]), 0.01, 0.1),
                               [0.1 + 0.009, 0.2 - 0.001], rtol=0, atol=1e-15)


def test_normalise_rows_by_hand():
    post = np.array([0, 0, 1, 2, 2])
    out = normalise_rows(np.array([1.0, 3.0, 2.0, 0.0, 0.0]), post, 4)
    # Row 2 lost every synapse and stays 0; row 3 has none.
    np.testing.assert_array_equal(out, [0.25, 0.75, 1.0, 0.0, 0.0])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.floats(1e-6, 1e3), min_size=1, max_size=12), min_size=1,
                max_size=8))
def test_normalise_rows_sums_are_one(rows):
    data = np.concatenate([np.array(r) for r in rows])
    post = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
    out = normalise_rows(data, post, len(rows))
    np.testing.assert_allclose(np.bincount(post, weights=out), 1.0, rtol=0, atol=1e-14)
    # Normalising twice changes nothing beyond round-off.
    np.testing.assert_allclose(normalise_rows(out, post, len(rows)), out, rtol=1e-15, atol=0)


def test_construction_follows_sorn_v2():
    m = SORN(seed=3)
    assert (m.n_e, m.n_i) == (200, 40)
    assert m.W_ee.shape == (200, 200) and m.W_ee.diagonal().sum() == 0
    assert np.all(np.diff(m.W_ee.indptr) > 0)                    # every unit has an E input
    assert 8 < m.W_ee.nnz / 200 < 12                             # k = 10 on average
    np.testing.assert_allclose(m.W_ee.sum(axis=1), 1.0, atol=1e-14)
    for W in (m.W_ei, m.W_ie):
        np.testing.assert_allclose(W.sum(axis=1), 1.0, atol=1e-14)
    # Six disjoint pools of ten units, weight 1.
    assert set(np.unique(m.W_eu)) == {0.0, 1.0}
    np.testing.assert_array_equal(m.W_eu.sum(axis=0), 10)
    assert m.W_eu.sum(axis=1).max() == 1
    assert np.all((m.T_e >= 0) & (m.T_e <= 0.5)) and np.all((m.T_i >= 0) & (m.T_i <= 0.5))
    assert SORN(n_e=50, n_u=5).n_i == 10


def test_seed_determinism_and_config():
    a, b, c = SORN(n_e=60, n_u=4, seed=1), SORN(n_e=60, n_u=4, seed=1), SORN(n_e=60, n_u=4)
    np.testing.assert_array_equal(a.W_ee.data, b.W_ee.data)
    assert a.W_ee.nnz != c.W_ee.nnz or not np.array_equal(a.W_ee.data, c.W_ee.data)
    rebuilt = SORN(**a.config())
    for name in ("W_ei", "W_ie", "W_eu", "T_e", "T_i", "x", "y"):
        np.testing.assert_array_equal(getattr(rebuilt, name), getattr(a, name))
    assert repr(a).startswith("SORN(n_e=60, n_i=12,")


@pytest.mark.parametrize("variant", ["off", "full"])
def test_frozen_network_is_a_fixed_map(variant):
    """All plasticity off (or plastic=False): weights and thresholds never change, and the same
    start and input give the same states."""
    stdp_on, ip_on, sn_on = SORN_VARIANTS[variant]
    m = SORN(n_e=100, stdp=stdp_on, ip=ip_on, sn=sn_on, seed=2)
    plastic = variant == "off"       # the off model ignores plastic=True
    start = m.x.copy(), m.y.copy()
    W, T_e = m.W_ee.data.copy(), m.T_e.copy()
    xs = _stream(300)
    first = m.run(xs, plastic=plastic)
    np.testing.assert_array_equal(m.W_ee.data, W)
    np.testing.assert_array_equal(m.T_e, T_e)
    m.x[:], m.y[:] = start
    np.testing.assert_array_equal(m.run(xs, plastic=plastic), first)
    assert 0 < first.mean() < 1


@pytest.mark.parametrize("variant", list(SORN_VARIANTS))
def test_numba_equals_numpy(variant):
    """The states are binary and the plasticity's arithmetic is the same, so every state and
    every weight and threshold agrees to the bit."""
    stdp_on, ip_on, sn_on = SORN_VARIANTS[variant]
    models = [SORN(n_e=120, stdp=stdp_on, ip=ip_on, sn=sn_on, seed=4, backend=b)
              for b in ("numpy", "numba")]
    xs = _stream(400, n=6)
    states = [m.run(xs) for m in models]
    assert states[0].dtype == np.uint8 and states[0].shape == (400, 120)
    np.testing.assert_array_equal(states[0], states[1])
    for name in ("T_e", "x", "y"):
        np.testing.assert_array_equal(getattr(models[0], name), getattr(models[1], name))
    np.testing.assert_array_equal(models[0].W_ee.data, models[1].W_ee.data)
    if stdp_on:
        assert not np.array_equal(models[0].W_ee.data, SORN(n_e=120, seed=4).W_ee.data)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_plastic_run_keeps_rows_normalised_and_rate_near_target(backend):
    m = SORN(n_e=100, seed=5, backend=backend)
    states = m.run(_stream(3000 if backend == "numba" else 600))
    rows = np.bincount(_rows_of(m.W_ee), weights=m.W_ee.data, minlength=100)
    np.testing.assert_allclose(rows[rows > 0], 1.0, rtol=0, atol=1e-13)
    assert np.all(m.W_ee.data >= 0)
    if backend == "numba":      # IP pulls the rate to h_ip = 0.1
        assert abs(states[-1000:].mean() - 0.1) < 0.02


def test_without_sn_rows_drift():
    m = SORN(n_e=100, sn=False, seed=5)
    m.run(_stream(3000))
    rows = np.bincount(_rows_of(m.W_ee), weights=m.W_ee.data, minlength=100)
    assert np.abs(rows - 1).max() > 1e-3


def test_logistic_readout_is_the_penalised_optimum():
    rng = np.random.default_rng(0)
    X = (rng.random((300, 12)) < 0.3).astype(float)
    y = (X[:, :3] @ [1, 2, 4]).astype(int) % 4
    W, b = logistic_readout(X, y, 4, C=2.0, max_iter=2000)
    z = X @ W.T + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    d = 2.0 * (p - np.eye(4)[y])
    # Stationary to L-BFGS's tolerance, against terms of size up to C · T = 600.
    np.testing.assert_allclose(d.T @ X + W, 0, atol=1e-3)              # ∂/∂W
    np.testing.assert_allclose(d.sum(0), 0, atol=1e-3)                 # ∂/∂b, unpenalised
    assert (z.argmax(1) == y).mean() > 0.9


def test_word_positions():
    symbols = np.array([0, 1, 1, 2, 3, 4, 4, 5, 0, 1])
    np.testing.assert_array_equal(word_positions(symbols), [0, 1, 2, 3, 0, 1, 2, 3, 0, 1])


def test_sorn_counting_small_run():
    kw = dict(n=4, n_e=100, plastic_steps=2000, readout_steps=400)
    r = sorn_counting(0, variant="full", **kw)
    assert set(r) == {"accuracy", "end_accuracy", "position_accuracy", "ceiling", "rate"}
    assert all(isinstance(v, float) for v in r.values())
    assert 1 / 6 < r["accuracy"] <= 1 and 0 <= r["end_accuracy"] <= 1
    assert r["ceiling"] == 1 - 0.5 / 6
    assert r == sorn_counting(0, variant="full", **kw)
    assert sweep.get("sorn_counting").choices["variant"] == tuple(SORN_VARIANTS)


@pytest.mark.parametrize("kwargs, name", [
    (dict(n_e=0), "n_e"), (dict(n_e=1), "n_e"), (dict(n_e=20, n_i=0), "n_i"),
    (dict(n_e=4, n_in=1, n_u=1), "n_i"), (dict(n_u=40), "n_u"), (dict(n_in=0), "n_in"),
    (dict(k=0), "k"), (dict(k=np.nan), "k"), (dict(eta_stdp=-1.0), "eta_stdp"),
    (dict(h_ip=1.0), "h_ip"), (dict(t_e_max=-0.1), "t_e_max"),
    (dict(backend="cuda"), "backend"),
])
def test_bad_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        SORN(**kwargs)


def test_bad_flags_and_inputs_are_named():
    with pytest.raises(TypeError, match="^stdp:"):
        SORN(stdp="yes")
    m = SORN(n_e=60, n_u=4)
    with pytest.raises(ValueError, match=r"^inputs: expected shape \(n, 6\)"):
        m.run(np.zeros((10, 5)))
    with pytest.raises(ValueError, match="^inputs: expected finite"):
        m.run(np.full((10, 6), np.nan))
    with pytest.raises(TypeError, match="^plastic:"):
        m.run(np.zeros((10, 6)), plastic=1)
    with pytest.raises(ValueError, match="^labels:"):
        logistic_readout(np.zeros((4, 3)), np.array([0, 1, 2, 3]), 3)
    with pytest.raises(ValueError, match="^C:"):
        logistic_readout(np.zeros((4, 3)), np.array([0, 1, 2, 0]), 3, C=0.0)
    with pytest.raises(ValueError, match="^plastic_steps:"):
        sorn_counting(0, plastic_steps=0)
