"""Complex synapses (Chapter 10): the charge identity, backends agree, forgetting curves, SNR vs age,
memory lifetimes."""
import numpy as np
import pytest

from loopy_edu.synapses import SynapseChain, chain_constants, lifetime, memory_retention, snr_by_age

BACKENDS = ["numpy", "numba", "cuda"]


def _euler_matrix(C, g, dt):
    """The one-step matrix M, u(t+1) = M u(t), built entry by entry from the ODE (independent of the
    library's flux loop): row k loses dt (g_{k-1,k} + g_{k,k+1}) / C_k and gains from its neighbours."""
    m = len(C)
    M = np.eye(m)
    for k in range(m):
        if k > 0:
            M[k, k - 1] += dt * g[k - 1] / C[k]
            M[k, k] -= dt * g[k - 1] / C[k]
        M[k, k] -= dt * g[k] / C[k]
        if k + 1 < m:
            M[k, k + 1] += dt * g[k] / C[k]
    return M


def _pulse_response(C, g, dt, steps):
    """r(a) = (M^a)_{11}: the visible trace, a steps later, of a unit input to u_1, for a = 0..steps."""
    M = _euler_matrix(C, g, dt)
    e = np.zeros(len(C))
    e[0] = 1.0
    r = np.empty(steps + 1)
    for a in range(steps + 1):
        r[a] = e[0]
        e = M @ e
    return r


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("m", [1, 2, 5])
def test_charge_changes_only_by_input_and_leak(backend, m):
    rng = np.random.default_rng(m)
    syn = SynapseChain(m, 4, g12=0.7, dt=0.9, backend=backend)
    syn.u[:] = rng.standard_normal(syn.u.shape)
    for _ in range(6):
        dw = rng.standard_normal(4)
        q, u_m = syn.charge(), syn.u[-1].copy()
        syn.step(dw)
        expected = syn.C[0] * dw - syn.dt * syn.g[-1] * u_m
        np.testing.assert_allclose(syn.charge() - q, expected, rtol=0, atol=1e-13 * (1 + np.abs(q).max()))


@pytest.mark.parametrize("backend", BACKENDS)
def test_closed_chain_without_input_conserves_charge(backend):
    rng = np.random.default_rng(1)
    syn = SynapseChain(4, (2, 3), g_leak=0.0, backend=backend)
    syn.u[:] = rng.standard_normal(syn.u.shape)
    q = syn.charge()
    syn.run(40 if backend == "cuda" else 2000)
    np.testing.assert_allclose(syn.charge(), q, rtol=0, atol=1e-12)
    # ... and it relaxes to the uniform state that holds that charge
    if backend != "cuda":
        np.testing.assert_allclose(syn.u, np.broadcast_to(q / syn.C.sum(), syn.u.shape), atol=1e-9)


@pytest.mark.parametrize("m", [1, 3, 6])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_backends_agree(m, dtype, tol):
    rng = np.random.default_rng(m)
    u0 = rng.standard_normal((m, 2, 3))
    dws = rng.standard_normal((7, 2, 3))
    out = {}
    for backend in BACKENDS:
        syn = SynapseChain(m, (2, 3), g12=0.8, ratio_g=3.0, dtype=dtype, backend=backend)
        syn.u[:] = u0
        syn.run(7, dws)
        syn.step(dws[0])
        syn.run(5)
        out[backend] = syn.u.copy()
        assert syn.u.dtype == dtype
    for backend in BACKENDS[1:]:
        np.testing.assert_allclose(out[backend], out["numpy"], rtol=tol, atol=tol)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_chain_follows_the_euler_matrix(backend):
    """Inputs superpose: u(T) = M^T u(0) + Σ_t M^{T-1-t} e_1 dw_t, with M built from the ODE by hand."""
    rng = np.random.default_rng(3)
    syn = SynapseChain(5, 3, g12=0.6, ratio_C=3.0, ratio_g=2.5, dt=1.2, backend=backend)
    u0 = rng.standard_normal(syn.u.shape)
    dws = rng.standard_normal((25, 3))
    syn.u[:] = u0
    syn.run(25, dws)
    M = _euler_matrix(syn.C, syn.g, syn.dt)
    u = u0.copy()
    for t in range(25):
        u = M @ u
        u[0] += dws[t]
    np.testing.assert_allclose(syn.u, u, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_simple_synapse_forgets_exponentially(backend):
    """m = 1: u(t+1) = (1 - dt g12) u(t), so a pulse decays as (1 - dt g12)^t."""
    syn = SynapseChain(1, 2, g12=0.1, dt=1.5, backend=backend)
    syn.step(np.array([1.0, -2.0]))
    syn.run(30)
    np.testing.assert_allclose(syn.weight, np.array([1.0, -2.0]) * 0.85 ** 30, rtol=1e-12)


def _log_slope(m, ratio_g, t_lo=16, t_hi=4096):
    syn = SynapseChain(m, 1, ratio_g=ratio_g)
    syn.step(np.ones(1))
    ts = np.unique(np.geomspace(t_lo, t_hi, 40).astype(int))
    r, t0 = [], 0
    for t in ts:
        syn.run(int(t - t0))
        t0 = t
        r.append(syn.weight[0])
    return np.polyfit(np.log(ts), np.log(r), 1)[0], np.array(r)


def test_long_chain_forgets_as_a_power_law():
    """Between 1/g12 and the slowest time, u_1 ~ t^{-α}, α = ln ratio_C / ln(ratio_C ratio_g)."""
    slope, r = _log_slope(10, ratio_g=2.0)
    assert -0.55 < slope < -0.45                          # α = 1/2
    slope4, _ = _log_slope(8, ratio_g=4.0)
    assert -0.38 < slope4 < -0.29                         # α = 1/3
    # the simple synapse with the same fastest rate forgets far faster: exponentially
    syn = SynapseChain(1, 1)
    syn.step(np.ones(1))
    syn.run(4096)
    assert syn.weight[0] < 1e-100 < r[-1]


def test_snr_matches_the_linear_theory():
    """Each other memory adds an independent ±η r(age) to ξ_i w_i, so in the large-N limit
    SNR(a) = √N r(a) / sqrt(Σ_{s=0}^{B+a} r(s)² − r(a)²), with r from the Euler matrix."""
    N, B = 2000, 200
    ages, snr, sem = memory_retention(4, N, [0, 1, 3, 10, 30, 100], n_trials=8, eta=0.3, burn_in=B, seed=2)
    C, g = chain_constants(4)
    r = _pulse_response(C, g, 1.0, B + ages[-1])
    theory = np.array([np.sqrt(N) * r[a] / np.sqrt(np.sum(r[:B + a + 1] ** 2) - r[a] ** 2) for a in ages])
    assert np.all(np.abs(snr - theory) < 1.5 + 0.05 * theory), (snr, theory)
    assert np.all(sem < 1.0)


def test_snr_grows_as_sqrt_n():
    ages = [1, 5]
    _, small, _ = memory_retention(4, 1000, ages, n_trials=32, burn_in=100, seed=0)
    _, large, _ = memory_retention(4, 16000, ages, n_trials=4, burn_in=100, seed=1)
    assert np.all((3.3 < large / small) & (large / small < 4.7)), large / small


def test_snr_exponential_for_m1_power_law_for_long_chain():
    ages = np.unique(np.geomspace(10, 300, 12).astype(int))
    _, s1, _ = memory_retention(1, 20000, np.arange(0, 41, 5), n_trials=4, g12=0.05, burn_in=200, seed=0)
    rate = np.polyfit(np.arange(0, 41, 5), np.log(s1), 1)[0]
    assert abs(rate - np.log(0.95)) < 0.15 * abs(np.log(0.95))     # SNR ∝ 0.95^age
    _, s8, _ = memory_retention(8, 20000, ages, n_trials=2, burn_in=200, seed=0)
    assert -0.7 < np.polyfit(np.log(ages), np.log(s8), 1)[0] < -0.3   # ≈ age^{-1/2}


@pytest.mark.parametrize("backend", ["numpy", "cuda"])
def test_memory_retention_backends_agree(backend):
    kw = dict(n_trials=2, burn_in=3, seed=5)
    ref = memory_retention(3, 6, [0, 2, 4], backend="numba", **kw)
    got = memory_retention(3, 6, [0, 2, 4], backend=backend, **kw)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_bad_inputs():
    with pytest.raises(ValueError, match="m: expected a positive integer, got 0"):
        SynapseChain(0, 3)
    with pytest.raises(ValueError, match="m: expected a positive integer"):
        SynapseChain(2.5, 3)
    with pytest.raises(ValueError, match=r"dt: explicit Euler needs .* at k = 1"):
        SynapseChain(3, 3, g12=0.5, dt=3.0)
    with pytest.raises(ValueError, match="dt: expected a positive finite number"):
        SynapseChain(3, 3, dt=float("nan"))
    with pytest.raises(ValueError, match="g_leak: expected a non-negative"):
        SynapseChain(3, 3, g_leak=-0.1)
    with pytest.raises(ValueError, match="shape: expected a positive int"):
        SynapseChain(3, (4, 0))
    with pytest.raises(ValueError, match="backend: expected one of"):
        SynapseChain(3, 3, backend="fortran")
    syn = SynapseChain(3, (2, 4))
    with pytest.raises(ValueError, match=r"dw: expected shape \(2, 4\), got \(4,\)"):
        syn.step(np.ones(4))
    with pytest.raises(ValueError, match="dw: expected finite values, got 1 NaN"):
        syn.step(np.array([[np.nan, 0, 0, 0], [0, 0, 0, 0]]))
    with pytest.raises(ValueError, match=r"dws: expected shape \(5, 2, 4\)"):
        syn.run(5, np.zeros((4, 2, 4)))
    with pytest.raises(ValueError, match="steps: expected a positive integer"):
        syn.run(0)
    with pytest.raises(ValueError, match="ages: expected increasing non-negative integers"):
        memory_retention(2, 10, [3, 1])
    with pytest.raises(ValueError, match="n_synapses: expected a positive integer"):
        memory_retention(2, 0, [1])


def test_numba_blocks_cover_every_synapse():
    from loopy_edu.kernels.synapses_numba import BLOCK
    n = 2 * BLOCK + 7
    rng = np.random.default_rng(4)
    u0, dws = rng.standard_normal((3, n)), rng.standard_normal((9, n))
    out = {}
    for backend in ["numpy", "numba"]:
        syn = SynapseChain(3, n, backend=backend)
        syn.u[:] = u0
        syn.run(9, dws)
        out[backend] = syn.u
    np.testing.assert_allclose(out["numba"], out["numpy"], rtol=1e-12, atol=1e-12)


def test_snr_by_age_matches_the_linear_theory():
    """The memory of age a shares the weights with every other one stored: B burn-in patterns and
    n_ages - 1 tracked ones, so SNR(a) = √N r(a) / sqrt(Σ_{s=0}^{B+n_ages-1} r(s)² − r(a)²)."""
    N, B, n_ages = 2000, 200, 101
    snr = snr_by_age(4, N, n_ages, n_trials=8, eta=0.3, burn_in=B, seed=3)
    assert snr.shape == (n_ages,)
    C, g = chain_constants(4)
    r = _pulse_response(C, g, 1.0, B + n_ages)
    total = np.sum(r[:B + n_ages] ** 2)
    ages = np.array([0, 1, 3, 10, 30, 100])
    theory = np.sqrt(N) * r[ages] / np.sqrt(total - r[ages] ** 2)
    assert np.all(np.abs(snr[ages] - theory) < 1.5 + 0.05 * theory), (snr[ages], theory)


def test_snr_by_age_simple_synapse_forgets_geometrically():
    """m = 1: SNR(a) ∝ λ^a with λ = 1 - g12; fit over many ages of one run."""
    snr = snr_by_age(1, 4000, 60, n_trials=8, g12=0.05, burn_in=300, seed=0)
    rate = np.polyfit(np.arange(60), np.log(snr), 1)[0]
    assert abs(rate - np.log(0.95)) < 0.1 * abs(np.log(0.95))


@pytest.mark.parametrize("backend", ["numpy", "cuda"])
def test_snr_by_age_backends_agree(backend):
    kw = dict(n_trials=2, burn_in=3, seed=5)
    ref = snr_by_age(3, 6, 5, backend="numba", **kw)
    got = snr_by_age(3, 6, 5, backend=backend, **kw)
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_snr_by_age_equals_memory_retention_for_the_newest_memory():
    """Age 0 of snr_by_age is the last pattern stored: the same estimator as memory_retention at age 0
    after burn_in + n_ages - 1 earlier patterns, on the same random stream up to that point."""
    a = snr_by_age(3, 50, 1, n_trials=3, burn_in=20, seed=7)
    b = memory_retention(3, 50, [0], n_trials=3, burn_in=20, seed=7)[1]
    np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("curve, expected", [
    (lambda a: 20.0 / np.sqrt(np.maximum(a, 1)), 400.0),        # 20 a^{-1/2} = 1 at a = 400
    (lambda a: 40.0 * 0.9 ** a, np.log(40.0) / np.log(1 / 0.9)),  # exponential: a = ln 40 / ln(1/0.9)
])
def test_lifetime_of_known_curves(curve, expected):
    snr = curve(np.arange(2000.0))
    assert abs(lifetime(snr) - expected) < 0.05 * expected


def test_lifetime_is_robust_to_noise_and_nan_without_crossing():
    rng = np.random.default_rng(0)
    a = np.arange(4000.0)
    snr = 30.0 / np.sqrt(np.maximum(a, 1)) + 0.5 * rng.standard_normal(4000)
    assert abs(lifetime(snr) - 900.0) < 0.15 * 900.0
    assert np.isnan(lifetime(np.full(100, 5.0)))


def test_lifetime_and_snr_by_age_bad_inputs():
    with pytest.raises(ValueError, match="snr: expected at least 3 ages, got 2"):
        lifetime(np.ones(2))
    with pytest.raises(ValueError, match="snr: expected a 1-D array"):
        lifetime(np.ones((3, 3)))
    with pytest.raises(ValueError, match="n_ages: expected a positive integer"):
        snr_by_age(2, 10, 0)
    with pytest.raises(ValueError, match="burn_in: expected a non-negative integer"):
        snr_by_age(2, 10, 5, burn_in=-1)


def test_integer_dtype_is_refused():
    """Defect 3: an integer chain truncated its step sizes to zero without a word."""
    with pytest.raises(ValueError, match="dtype: expected float32 or float64, got int64"):
        SynapseChain(3, 4, dtype=np.int64)
