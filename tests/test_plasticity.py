"""Unsupervised local plasticity (Chapter 12): each rule's formula on a hand-computed case, the
Numba kernel against the NumPy reference, synaptic normalisation, Oja's bound, fast weights,
errors that name the argument, and the experiment on a small network."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from loopy_edu import graphs, sweep
from loopy_edu.experiments import loopy_mc
from loopy_edu.loopy import LoopyNetwork
from loopy_edu.plasticity import (NORMS, RULES, adapt, anti_oja, bcm, bcm_threshold,
                                  fast_weight_states, fast_weights, hebbian, intrinsic, oja,
                                  row_norms, synaptic_normalisation)

PLASTIC_MC = sweep.get("loopy_plastic_mc").fn


def _net(n=12, k=3, seed=1, **kw):
    return LoopyNetwork(1, n, 1, k=k, seed=seed, **kw)


def _stream(T, B=1, seed=0, scale=0.5):
    return np.random.default_rng(seed).uniform(-scale, scale, (T, B, 1))


# --- the rules, by hand ---------------------------------------------------------------------

def test_synaptic_rules_by_hand():
    pre, post = np.array([1.0, 0.0, 2.0]), np.array([0.5, 2.0, -1.0])
    w = np.array([1.0, 0.25, 3.0])
    np.testing.assert_allclose(hebbian(pre, post, 0.1), [0.05, 0.0, -0.2], rtol=1e-15)
    # η post (pre − post w): 0.1·0.5·(1 − 0.5), 0.1·2·(0 − 0.5), 0.1·(−1)·(2 + 3)
    np.testing.assert_allclose(oja(pre, post, w, 0.1), [0.025, -0.1, -0.5], rtol=1e-15)
    np.testing.assert_allclose(anti_oja(pre, post, w, 0.1), [-0.025, 0.1, 0.5], rtol=1e-15)
    # η post (post − θ) pre with θ = 0.2: 0.5·0.3·1, 0, (−1)(−1.2)·2
    theta = np.full(3, 0.2)
    np.testing.assert_allclose(bcm(pre, post, theta, 1.0), [0.15, 0.0, 2.4], rtol=1e-15)
    np.testing.assert_allclose(bcm_threshold(theta, post, 10.0), [0.205, 0.58, 0.28],
                               rtol=1e-15)


def test_intrinsic_plasticity_by_hand():
    # σ² = 0.25: Δb = −0.1 (−μ/σ² + y/σ² (2σ² + 1 − y² + μ y)), Δa = η/a + Δb x
    x, y, a = np.array([0.5, 0.5]), np.array([0.2, 0.2]), np.array([2.0, 2.0])
    d_gain, d_bias = intrinsic(x, y, a, 0.1, 0.0, 0.5)
    np.testing.assert_allclose(d_bias, -0.1 * 0.8 * 1.46, rtol=1e-14)         # −0.1168
    np.testing.assert_allclose(d_gain, 0.05 - 0.1168 * 0.5, rtol=1e-13)
    _, d_bias = intrinsic(x, y, a, 0.1, 0.1, 0.5)
    np.testing.assert_allclose(d_bias, -0.1 * (-0.4 + 0.8 * 1.48), rtol=1e-14)


def test_synaptic_normalisation_by_hand():
    indptr, w = np.array([0, 2, 2, 3]), np.array([3.0, 4.0, -2.0])           # row 1 is empty
    np.testing.assert_allclose(row_norms(w, indptr, "l2"), [5.0, 0.0, 2.0])
    np.testing.assert_allclose(row_norms(w, indptr, "l1"), [7.0, 0.0, 2.0])
    target = np.array([1.0, 1.0, 1.0])
    np.testing.assert_allclose(synaptic_normalisation(w, indptr, target, "l2"),
                               [0.6, 0.8, -1.0], rtol=1e-15)
    np.testing.assert_allclose(synaptic_normalisation(w, indptr, target, "l1"),
                               [3 / 7, 4 / 7, -1.0], rtol=1e-15)


# --- the driver: backends, norms, bounds ----------------------------------------------------

def _adapted(backend, rule, norm, T):
    m = _net(alpha=np.linspace(0.3, 1.0, 12))          # a leak spectrum, so h ≠ act(u)
    hist = adapt(m, _stream(T, B=2), rule=rule, eta=0.05, epochs=2, normalise=norm, tau=5.0,
                 sigma=0.3, backend=backend)
    return m, hist


def _assert_same(got, want):
    for key in want[0].params:
        np.testing.assert_allclose(got[0].params[key], want[0].params[key], rtol=0, atol=1e-12,
                                   err_msg=key)
    for key in want[1]:
        np.testing.assert_allclose(got[1][key], want[1][key], rtol=1e-12, err_msg=key)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("norm", NORMS)
def test_numba_equals_numpy(rule, norm):
    want = _adapted("numpy", rule, norm, 25)
    _assert_same(_adapted("numba", rule, norm, 25), want)
    fresh = _net()
    changed = [k for k, p in fresh.params.items() if not np.array_equal(want[0].params[k], p)]
    assert changed if rule != "off" else not changed


@pytest.mark.parametrize("rule, norm", [(r, "l2") for r in RULES] + [("anti_oja", "l1")])
def test_cuda_equals_numpy(rule, norm):
    # a few steps: the simulator runs every thread of every launch in Python
    _assert_same(_adapted("cuda", rule, norm, 4), _adapted("numpy", rule, norm, 4))


@pytest.mark.parametrize("norm", ["l1", "l2"])
@pytest.mark.parametrize("rule", ["hebbian", "bcm"])
def test_normalisation_keeps_each_units_norm(rule, norm):
    m = _net(n=30, k=5, input_scale=2.0)
    before = row_norms(m.params["W_rec"].copy(), m.graph.indptr, norm)
    w0 = m.params["W_rec"].copy()
    adapt(m, _stream(300), rule=rule, eta=0.1, normalise=norm)
    assert np.abs(m.params["W_rec"] - w0).max() > 1e-3                      # weights moved
    np.testing.assert_allclose(row_norms(m.params["W_rec"], m.graph.indptr, norm), before,
                               rtol=1e-13)


def test_oja_stays_bounded_where_hebb_grows():
    xs = _stream(2500, scale=3.0)
    largest = {}                                        # the largest row norm after each pass
    for rule in ("hebbian", "oja"):
        m = _net(n=20, k=4, input_scale=2.0, seed=3)
        largest[rule] = []
        for _ in range(3):
            adapt(m, xs, rule=rule, eta=0.01, radius=False)
            largest[rule].append(row_norms(m.params["W_rec"], m.graph.indptr, "l2").max())
    oja_norms, hebb = largest["oja"], largest["hebbian"]
    # tanh units: Oja's fixed point w = E[y x] / E[y²] is not of norm 1 exactly, but it is fixed
    assert max(oja_norms) < 2 and abs(oja_norms[2] - oja_norms[1]) < 1e-3 * oja_norms[1]
    assert hebb[0] > 10 * max(oja_norms) and hebb[2] > hebb[1] + 10 > hebb[0] + 20


def test_off_keeps_the_weights_and_reports_the_activity():
    m = _net(alpha=0.5)
    params = {k: v.copy() for k, v in m.params.items()}
    xs = _stream(40, B=3)
    hist = adapt(m, xs, rule="off", epochs=2)
    for k in params:
        np.testing.assert_array_equal(m.params[k], params[k])
    hs = m.states(np.ascontiguousarray(xs))
    np.testing.assert_allclose(hist["mean"], hs.mean(), rtol=1e-12)
    np.testing.assert_allclose(hist["sd"], hs.std(), rtol=1e-12)
    np.testing.assert_allclose(hist["spectral_radius"], 0.95, rtol=1e-12)


@pytest.mark.parametrize("sigma", [0.1, 0.5])
def test_ip_moves_the_spread_towards_sigma_and_folds_its_gain(sigma):
    m = _net(n=40, k=5)
    before = m.states(_stream(2000, seed=5)).std()                          # about 0.31
    hist = adapt(m, _stream(2000), rule="ip", eta=2e-3, sigma=sigma, epochs=2)
    after = m.states(_stream(2000, seed=5)).std()                           # fresh input
    assert abs(after - sigma) < abs(before - sigma) / 2
    # the gain is folded into the weights: the model's radius is diag(a) W_rec's at the end
    np.testing.assert_allclose(graphs.spectral_radius(m.graph), hist["spectral_radius"][-1],
                               rtol=1e-10)
    assert (hist["spectral_radius"][-1] > 1.0) == (sigma > before)


# --- fast weights ---------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, (6, 2, 4), elements=st.floats(-2, 2)), st.floats(0, 1),
       st.floats(0, 2))
def test_fast_weights_equal_the_closed_form(hs, decay, eta):
    T = hs.shape[0]
    want = sum(eta * decay ** (T - 1 - t) * np.einsum("bi,bj->bij", hs[t], hs[t])
               for t in range(T))
    np.testing.assert_allclose(fast_weights(hs, decay, eta), want, rtol=1e-12, atol=1e-12)


def test_fast_weight_states_by_hand():
    m = _net(n=8, k=3)
    xs = _stream(2, B=1)
    np.testing.assert_allclose(fast_weight_states(m, xs, eta=0.0), m.states(xs), rtol=1e-13)
    hs = fast_weight_states(m, xs, decay=0.9, eta=0.5, inner_steps=2)
    W, W_in = m.graph.toarray(), m.params["W_in"]
    h1 = np.tanh(W_in @ xs[0, 0])                        # A_0 = 0: the plain first step
    A1 = 0.5 * np.outer(h1, h1)
    z2 = W @ h1 + W_in @ xs[1, 0]
    y = np.tanh(z2)
    for _ in range(2):
        y = np.tanh(z2 + A1 @ y)
    np.testing.assert_allclose(hs[:, 0], [h1, y], rtol=1e-13)
    assert np.abs(hs[1, 0] - m.states(xs)[1, 0]).max() > 1e-6


# --- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, name", [
    (dict(rule="stdp"), "rule"), (dict(eta=-1e-3), "eta"), (dict(eta=np.nan), "eta"),
    (dict(normalise="l3"), "normalise"), (dict(epochs=0), "epochs"), (dict(tau=0.5), "tau"),
    (dict(sigma=0.0), "sigma"), (dict(mu=1.0), "mu"), (dict(backend="gpu"), "backend"),
])
def test_adapt_errors_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        adapt(_net(), _stream(5), **kwargs)


def test_input_errors_name_the_argument():
    with pytest.raises(ValueError, match="^inputs:"):
        adapt(_net(), np.zeros((5, 1, 2)))
    with pytest.raises(ValueError, match="^inputs:"):
        adapt(_net(), np.full((5, 1, 1), np.nan))
    with pytest.raises(ValueError, match="^rule: 'ip' is the rule for tanh units"):
        adapt(_net(activation="relu"), _stream(5), rule="ip")
    m = _net()
    m.params["W_rec"][0] = np.nan
    with pytest.raises(ValueError, match=r"^params\['W_rec'\]:"):
        adapt(m, _stream(5))
    with pytest.raises(ValueError, match="^decay:"):
        fast_weights(np.zeros((2, 1, 3)), 1.5, 0.1)
    with pytest.raises(ValueError, match="^inner_steps:"):
        fast_weight_states(_net(), _stream(3), inner_steps=0)
    with pytest.raises(ValueError, match="^norm:"):
        row_norms(np.ones(3), np.array([0, 3]), "none")


# --- the experiment -------------------------------------------------------------------------

SMALL = dict(n=30, k=4, steps=3000)


def test_experiment_off_is_loopy_mc_and_eta_zero_changes_nothing():
    off = PLASTIC_MC(0, **SMALL)
    assert off["mc"] == loopy_mc(0, n=30, k=4, steps=3000)["mc"]           # the same protocol
    assert off["radius_after"] == 0.95
    still = PLASTIC_MC(0, rule="ip", eta=0.0, adapt_steps=200, **SMALL)
    assert still["mc"] == off["mc"]                     # the adaptation stream is separate


def test_experiment_runs_each_rule():
    off = PLASTIC_MC(1, **SMALL)
    for rule in RULES[1:]:
        r = PLASTIC_MC(1, rule=rule, eta=1e-3, adapt_steps=500, normalise="l2", **SMALL)
        assert 0 < r["mc"] <= 30 and r["mc_k"].shape == (60,)
        assert r["mc"] != off["mc"]
