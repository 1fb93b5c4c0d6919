"""Reservoir computing (Part IV): the ridge readout and memory capacity against independent
computations, Jaeger's bound MC <= N, the delay line and unrelated states, and the ESN's
update, seeding and spectral radius."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopy_edu.reservoir import ESN, memory_capacity, ridge


def _uniform(T, seed):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, T)


def _delay_line(u, N):
    """A perfect shift register: states[t, i] = u(t - i - 1), 0 before the sequence starts."""
    S = np.zeros((len(u), N))
    for i in range(N):
        S[i + 1:, i] = u[:len(u) - i - 1]
    return S


def _ridge_reference(rows_x, rows_y, reg):
    """Ridge with an unpenalised bias as one least-squares problem: the design [X, 1] with the
    Tikhonov rows [sqrt(reg) I, 0] under it, so the bias column is never penalised."""
    X, Y = np.asarray(rows_x), np.asarray(rows_y)
    n, N = X.shape
    design = np.vstack([np.hstack([X, np.ones((n, 1))]),
                        np.hstack([np.sqrt(reg) * np.eye(N), np.zeros((N, 1))])])
    w = np.linalg.lstsq(design, np.vstack([Y, np.zeros((N, Y.shape[1]))]), rcond=None)[0]
    return w[:N].T, w[N]


def _mc_reference(states, inputs, k_max, reg, washout, test_fraction):
    """Memory capacity one delay at a time, with explicit rows, lstsq and np.corrcoef."""
    T, N = states.shape
    steps = list(range(washout + k_max, T))
    n_test = round(test_fraction * len(steps))
    train, test = steps[:len(steps) - n_test], steps[len(steps) - n_test:]
    mc_k = []
    for k in range(1, k_max + 1):
        W, b = _ridge_reference([states[t] for t in train], [[inputs[t - k]] for t in train],
                                reg)
        pred = [states[t] @ W[0] + b[0] for t in test]
        mc_k.append(np.corrcoef(pred, [inputs[t - k] for t in test])[0, 1] ** 2)
    return sum(mc_k), np.array(mc_k)


# ---------------------------------------------------------------------------------------------
# ridge

@pytest.mark.parametrize("reg", [0.0, 1e-3, 2.5])
@pytest.mark.parametrize("washout", [0, 7])
def test_ridge_2d_equals_augmented_lstsq(reg, washout):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5)) + 3.0          # an offset the bias must absorb
    Y = X @ rng.standard_normal((5, 2)) + 1.5 + 0.3 * rng.standard_normal((60, 2))
    W_out, b_out = ridge(X, Y, reg, washout=washout)
    W_ref, b_ref = _ridge_reference(X[washout:], Y[washout:], reg)
    assert W_out.shape == (2, 5) and b_out.shape == (2,)
    np.testing.assert_allclose(W_out, W_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(b_out, b_ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("washout", [0, 4])
def test_ridge_3d_flattens_time_and_batch_after_washout(washout):
    rng = np.random.default_rng(1)
    T, B, N = 20, 3, 4
    X = rng.standard_normal((T, B, N))
    Y = rng.standard_normal((T, B, 1))
    W_out, b_out = ridge(X, Y, 0.1, washout=washout)
    rows = [(X[t, b], Y[t, b]) for b in range(B) for t in range(washout, T)]
    W_ref, b_ref = _ridge_reference([r[0] for r in rows], [r[1] for r in rows], 0.1)
    np.testing.assert_allclose(W_out, W_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(b_out, b_ref, rtol=0, atol=1e-10)
    # ... and the early steps really are ignored
    X[:washout] = 1e6
    np.testing.assert_array_equal(ridge(X, Y, 0.1, washout=washout)[0], W_out)


def test_ridge_does_not_penalise_the_bias():
    # A huge penalty drives W_out to 0 but leaves b_out at the targets' mean.
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((50, 3)), 4.0 + rng.standard_normal((50, 2))
    W_out, b_out = ridge(X, Y, 1e12)
    np.testing.assert_allclose(W_out, 0.0, atol=1e-9)
    np.testing.assert_allclose(b_out, Y.mean(axis=0), atol=1e-9)


def test_ridge_without_penalty_on_dependent_columns_gives_minimum_norm():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 2))
    X = np.hstack([x, x[:, :1]])                    # column 2 repeats column 0: singular
    Y = x @ [[1.0], [-2.0]] + 0.5
    W_out, b_out = ridge(X, Y, 0.0)
    Xc = X - X.mean(axis=0)
    np.testing.assert_allclose(W_out, (np.linalg.pinv(Xc) @ (Y - Y.mean(axis=0))).T,
                               atol=1e-10)
    np.testing.assert_allclose(W_out[0, [0, 2]], [0.5, 0.5], atol=1e-10)
    np.testing.assert_allclose(X @ W_out.T + b_out, Y, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# memory_capacity

@pytest.mark.parametrize("washout, test_fraction, reg", [(0, 0.2, 1e-8), (13, 0.35, 0.5),
                                                         (5, 0.5, 0.0)])
def test_memory_capacity_equals_a_delay_by_delay_computation(washout, test_fraction, reg):
    rng = np.random.default_rng(4)
    T, N, k_max = 300, 6, 9
    u = _uniform(T, 5)
    # States that remember some delays (mixed) plus noise: every MC_k lies strictly in (0, 1).
    states = _delay_line(u, 8) @ rng.standard_normal((8, N)) + 0.5 * rng.standard_normal((T, N))
    mc, mc_k = memory_capacity(states, u, k_max, reg=reg, washout=washout,
                               test_fraction=test_fraction)
    mc_ref, mc_k_ref = _mc_reference(states, u, k_max, reg, washout, test_fraction)
    assert mc_k.shape == (k_max,) and isinstance(mc, float)
    np.testing.assert_allclose(mc_k, mc_k_ref, rtol=0, atol=1e-10)
    assert mc == pytest.approx(mc_ref, abs=1e-10)
    assert 0.5 < mc < N


def test_delay_line_remembers_exactly_its_length():
    N, k_max = 10, 20
    u = _uniform(3000, 6)
    mc, mc_k = memory_capacity(_delay_line(u, N), u, k_max)
    assert np.all(mc_k[:N] > 1 - 1e-6)               # delay k <= N is unit k - 1
    # Beyond N only chance correlation is left, about 1/n_test = 1/598 per delay.
    assert np.all(mc_k[N:] < 0.02)
    assert abs(mc - N) < 0.05


def test_states_unrelated_to_the_input_have_no_memory():
    rng = np.random.default_rng(7)
    T = 5000
    mc, mc_k = memory_capacity(rng.standard_normal((T, 10)), _uniform(T, 8), 20)
    # Each MC_k of an independent prediction is about 1/n_test = 1/1000.
    assert mc < 0.1 and mc_k.max() < 0.02


def test_constant_states_score_zero():
    u = _uniform(100, 9)
    mc, mc_k = memory_capacity(np.full((100, 3), 0.7), u, 5)
    assert np.all(np.isfinite(mc_k)) and mc < 1e-20


def _states(kind, u, N, seed):
    rng = np.random.default_rng(seed)
    if kind == "mixed delays":       # the hardest case for the bound: nearly a shift register
        return (_delay_line(u, N + 2) @ rng.standard_normal((N + 2, N))
                + 1e-3 * rng.standard_normal((len(u), N)))
    if kind == "random":
        return rng.standard_normal((len(u), N))
    return ESN(N, sr=0.95, rc_connectivity=1.0, input_scaling=0.5, activation=kind,
               seed=seed).states(u)


@settings(max_examples=30, deadline=None)
@given(kind=st.sampled_from(["mixed delays", "linear", "tanh", "random"]),
       N=st.integers(1, 8), delays=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_memory_capacity_obeys_jaegers_bound(kind, N, delays, seed):
    """MC <= N, with the finite-sample factor stated. Jaeger's bound is exact when the delayed
    inputs are exactly uncorrelated; on finitely many test steps they are only nearly so, and
    the exact statement is MC <= N lam_max, lam_max the largest eigenvalue of their sample
    correlation matrix (each prediction lies in the N-dimensional span of the centred test
    states, and the squared projections of the unit target vectors onto that span sum to at
    most N lam_max). That bound is checked with no tolerance. With T = 3000 (about 600 test
    steps, at most 24 delays) lam_max stayed below 1.8 and MC / N below 1.04 over 800 random
    cases of these kinds (the bound's ratio MC / (N lam_max) reached 0.99, so it is nearly
    tight); the looser checks lam_max < 2.2 and MC <= 1.1 N leave a margin for sampling."""
    T, k_max = 3000, delays * N
    u = _uniform(T, seed)
    mc, mc_k = memory_capacity(_states(kind, u, N, seed), u, k_max)
    n = T - k_max
    n_test = round(0.2 * n)
    test = np.arange(k_max, T)[n - n_test:]
    targets = u[test[:, None] - np.arange(1, k_max + 1)]
    lam_max = np.linalg.eigvalsh(np.atleast_2d(np.corrcoef(targets.T))).max()
    assert np.all((mc_k >= 0) & (mc_k <= 1 + 1e-12))
    assert mc <= N * lam_max + 1e-9
    assert lam_max < 2.2 and mc <= 1.1 * N


# ---------------------------------------------------------------------------------------------
# ESN

def _loop_states(esn, u, f):
    """The update written unit by unit: x_i <- (1 - lr) x_i + lr f(sum_j W_ij x_j
    + sum_m W_in_im u_m + b_i)."""
    x = np.zeros(esn.units)
    out = []
    for u_t in u:
        new = np.empty_like(x)
        for i in range(esn.units):
            z = sum(esn.W[i, j] * x[j] for j in range(esn.units))
            z += sum(esn.W_in[i, m] * u_t[m] for m in range(esn.n_in)) + esn.b[i]
            new[i] = (1 - esn.lr) * x[i] + esn.lr * f(z)
        x = new
        out.append(x)
    return np.array(out)


@pytest.mark.parametrize("activation, f", [("linear", lambda z: z), ("tanh", np.tanh)])
def test_esn_update_equals_a_hand_written_loop(activation, f):
    esn = ESN(6, n_in=2, sr=0.8, lr=0.3, input_scaling=0.5, bias_scaling=0.2,
              rc_connectivity=0.5, input_connectivity=0.75, activation=activation, seed=3)
    u = np.random.default_rng(10).uniform(-1, 1, (25, 2))
    np.testing.assert_allclose(esn.states(u), _loop_states(esn, u, f), rtol=0, atol=1e-12)


def test_esn_without_leak_is_the_plain_update():
    esn = ESN(8, sr=1.1, lr=1.0, bias_scaling=0.5, rc_connectivity=0.5, seed=4)
    u = _uniform(30, 11)
    X = esn.states(u)
    drive = esn.W_in[:, 0] * u[:, None] + esn.b
    np.testing.assert_allclose(X[0], np.tanh(drive[0]), rtol=0, atol=1e-15)
    np.testing.assert_allclose(X[1:], np.tanh(X[:-1] @ esn.W.T + drive[1:]), rtol=0,
                               atol=1e-15)
    leaky = ESN(8, sr=1.1, lr=0.5, bias_scaling=0.5, rc_connectivity=0.5, seed=4)
    np.testing.assert_array_equal(leaky.W, esn.W)      # lr changes the dynamics, not W
    assert np.abs(leaky.states(u) - X).max() > 0.1


def test_esn_is_deterministic_per_seed():
    u = _uniform(40, 12)
    a, b, c = (ESN(20, rc_connectivity=0.3, bias_scaling=1.0, seed=s) for s in (5, 5, 6))
    for name in ("W", "W_in", "b"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert not np.array_equal(getattr(a, name), getattr(c, name))
    np.testing.assert_array_equal(a.states(u), b.states(u))


@pytest.mark.parametrize("units, sr, rc", [(5, 0.5, 1.0), (50, 0.9, 0.1), (200, 1.3, 0.05)])
def test_esn_spectral_radius_and_connectivity(units, sr, rc):
    esn = ESN(units, n_in=3, sr=sr, rc_connectivity=rc, input_connectivity=0.5,
              input_scaling=0.7, bias_scaling=0.2, seed=1)
    assert abs(np.abs(np.linalg.eigvals(esn.W)).max() - sr) < 1e-10
    assert np.count_nonzero(esn.W) == round(rc * units * units)
    assert np.count_nonzero(esn.W_in) == round(0.5 * units * 3)
    assert np.abs(esn.W_in).max() <= 0.7 and np.abs(esn.b).max() <= 0.2
    assert np.all(ESN(units, sr=sr, rc_connectivity=rc).b == 0.0)   # bias_scaling=0 default


def test_esn_batch_and_shapes():
    esn = ESN(7, n_in=2, lr=0.6, bias_scaling=0.3, rc_connectivity=0.5, seed=2)
    u = np.random.default_rng(13).uniform(-1, 1, (15, 4, 2))
    X = esn.states(u)
    assert X.shape == (15, 4, 7)
    for b in range(4):
        np.testing.assert_allclose(X[:, b], esn.states(u[:, b]), rtol=0, atol=1e-14)
    one = ESN(7, rc_connectivity=0.5, seed=2)
    v = _uniform(15, 14)
    np.testing.assert_array_equal(one.states(v), one.states(v[:, None]))


# ---------------------------------------------------------------------------------------------
# Errors name the argument

def _mc_call(**change):
    states = np.random.default_rng(0).standard_normal((50, 3))
    args = dict(states=states, inputs=_uniform(50, 0), k_max=5)
    args.update(change)
    return lambda: memory_capacity(**args)


def _ridge_call(**change):
    rng = np.random.default_rng(0)
    args = dict(states=rng.standard_normal((30, 3)), targets=rng.standard_normal((30, 2)),
                reg=0.1)
    args.update(change)
    return lambda: ridge(**args)


NAN_STATES = np.full((50, 3), np.nan)


@pytest.mark.parametrize("call, name", [
    (_ridge_call(reg=-1.0), "reg"),
    (_ridge_call(reg=np.inf), "reg"),
    (_ridge_call(washout=30), "washout"),
    (_ridge_call(washout=-1), "washout"),
    (_ridge_call(states=np.zeros(30)), "states"),
    (_ridge_call(states=NAN_STATES[:30]), "states"),
    (_ridge_call(targets=np.zeros((29, 2))), "targets"),
    (_ridge_call(targets=np.zeros(30)), "targets"),
    (_ridge_call(states=np.zeros((30, 2, 3))), "targets"),
    (_mc_call(reg=-1e-3), "reg"),
    (_mc_call(washout=50), "washout"),
    (_mc_call(washout=2.0), "washout"),
    (_mc_call(k_max=0), "k_max"),
    (_mc_call(k_max=47), "k_max"),
    (_mc_call(k_max=40, washout=10), "k_max"),
    (_mc_call(k_max=3.0), "k_max"),
    (_mc_call(test_fraction=0.0), "test_fraction"),
    (_mc_call(test_fraction=1.0), "test_fraction"),
    (_mc_call(test_fraction=1.5), "test_fraction"),
    (_mc_call(test_fraction=0.01), "test_fraction"),     # 45 steps: 0 to test
    (_mc_call(test_fraction=0.99), "test_fraction"),     # 45 steps: 0 to train
    (_mc_call(states=NAN_STATES), "states"),
    (_mc_call(states=np.zeros(50)), "states"),
    (_mc_call(inputs=_uniform(49, 0)), "inputs"),
    (_mc_call(inputs=np.zeros((50, 1))), "inputs"),
    (lambda: ESN(0), "units"),
    (lambda: ESN(5, n_in=0), "n_in"),
    (lambda: ESN(5, sr=0.0), "sr"),
    (lambda: ESN(5, lr=0.0), "lr"),
    (lambda: ESN(5, lr=1.5), "lr"),
    (lambda: ESN(5, input_scaling=-1.0), "input_scaling"),
    (lambda: ESN(5, bias_scaling=np.nan), "bias_scaling"),
    (lambda: ESN(5, rc_connectivity=0.0), "rc_connectivity"),
    (lambda: ESN(1, rc_connectivity=0.4), "rc_connectivity"),   # round(0.4) = 0 entries
    (lambda: ESN(5, input_connectivity=1.5), "input_connectivity"),
    (lambda: ESN(5, activation="relu"), "activation"),
    (lambda: ESN(5, n_in=2, rc_connectivity=1.0).states(np.zeros(10)), "inputs"),
    (lambda: ESN(5, rc_connectivity=1.0).states(np.zeros((10, 2, 3))), "inputs"),
    (lambda: ESN(5, rc_connectivity=1.0).states([np.nan, 1.0]), "inputs"),
])
def test_bad_arguments_are_named(call, name):
    with pytest.raises(ValueError, match=rf"^{name}: "):
        call()
