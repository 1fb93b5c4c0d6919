"""Linear regression (Chapter 1): exact gradients, the exact solve, gradient descent's learning-rate limit,
backends that agree, and clear errors."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from loopy_edu.gradcheck import check_grads
from loopy_edu.linear import LinearRegression, fit_exact, gradient_descent, loss_surface

BACKENDS = ["numpy", "numba", "cuda"]


def _problem(B, n_in, n_out, seed=0, flat=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((B, n_in))
    Y = X @ rng.standard_normal((n_in, n_out)) + 0.5 + 0.3 * rng.standard_normal((B, n_out))
    return X, (Y[:, 0] if flat else Y)


def _augmented(X):
    return np.hstack([X, np.ones((X.shape[0], 1))])


def _lambda_max(X):
    """Largest eigenvalue of the loss's Hessian AᵀA / B, A = [X 1]: derived by hand, not by the library."""
    A = _augmented(X)
    return np.linalg.eigvalsh(A.T @ A / len(X))[-1]


def test_loss_and_prediction_match_the_definition():
    m = LinearRegression(3, 2, seed=1)
    m.params["b"][:] = [0.3, -0.7]
    X, Y = _problem(5, 3, 2)
    W, b = m.params["W"], m.params["b"]
    total = 0.0
    for x, y in zip(X, Y):
        for j in range(2):
            y_hat = sum(W[j, k] * x[k] for k in range(3)) + b[j]
            total += 0.5 * (y_hat - y[j]) ** 2
    loss, _ = m.loss_and_grads(X, Y)
    assert loss == pytest.approx(total / 5, rel=1e-13)
    np.testing.assert_allclose(m.predict(X)[2], W @ X[2] + b, rtol=1e-13)
    assert m.predict(X).shape == (5, 2)


@pytest.mark.parametrize("n_out, flat", [(1, True), (1, False), (3, False)])
def test_gradient_matches_finite_differences(n_out, flat):
    m = LinearRegression(4, n_out, seed=2)
    m.params["b"][:] = 0.4
    X, Y = _problem(7, 4, n_out, seed=3, flat=flat)
    errors = check_grads(m, X, Y)
    assert set(errors) == {"W", "b"}
    assert max(errors.values()) < 1e-8, errors


def test_flat_targets_equal_a_column():
    m = LinearRegression(2, 1)
    X, y = _problem(6, 2, 1, flat=True)
    l1, g1 = m.loss_and_grads(X, y)
    l2, g2 = m.loss_and_grads(X, y[:, None])
    assert l1 == l2
    np.testing.assert_array_equal(g1["W"], g2["W"])


@settings(max_examples=40, deadline=None)
@given(n_in=st.integers(1, 6), n_out=st.integers(1, 3), extra=st.integers(0, 25),
       ridge=st.sampled_from([0.0, 0.05, 1.0]), seed=st.integers(0, 2**16))
def test_fit_exact_solves_the_normal_equations(n_in, n_out, extra, ridge, seed):
    B = 2 * (n_in + 1) + extra           # enough rows for AᵀA to be well conditioned
    X, Y = _problem(B, n_in, n_out, seed)
    p = fit_exact(X, Y, ridge=ridge)
    assert p["W"].shape == (n_out, n_in) and p["b"].shape == (n_out,)
    # (AᵀA/B + ridge·D) θ = AᵀY/B, D = diag(1, ..., 1, 0): the gradient of the penalised loss set to zero.
    A = _augmented(X)
    D = np.diag(np.r_[np.ones(n_in), 0.0])
    theta = np.linalg.solve(A.T @ A / B + ridge * D, A.T @ Y / B)
    np.testing.assert_allclose(p["W"], theta[:n_in].T, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(p["b"], theta[n_in], rtol=1e-8, atol=1e-10)
    if ridge == 0.0:
        ref = np.linalg.lstsq(A, Y, rcond=None)[0]
        np.testing.assert_allclose(p["W"], ref[:n_in].T, rtol=1e-10, atol=1e-12)
    m = LinearRegression(n_in, n_out)
    m.params = p
    _, g = m.loss_and_grads(X, Y)
    scale = np.abs(A).max() * np.abs(Y).max()
    assert np.abs(g["W"] + ridge * p["W"]).max() < 1e-10 * scale
    assert np.abs(g["b"]).max() < 1e-10 * scale


@settings(max_examples=20, deadline=None)
@given(n_in=st.integers(1, 8), data=st.data(), seed=st.integers(0, 2**16))
def test_fit_exact_interpolates_with_minimum_norm(n_in, data, seed):
    """Fewer examples than parameters: many exact fits; fit_exact returns the shortest one, pinv(A) Y."""
    B = data.draw(st.integers(1, n_in))  # B ≤ n_in < n_in + 1 parameters per output
    X, Y = _problem(B, n_in, 2, seed)
    p = fit_exact(X, Y)
    m = LinearRegression(n_in, 2)
    m.params = p
    np.testing.assert_allclose(m.predict(X), Y, atol=1e-9)
    theta = np.linalg.pinv(_augmented(X)) @ Y
    np.testing.assert_allclose(np.vstack([p["W"].T, p["b"]]), theta, atol=1e-9)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_gradient_descent_converges_to_the_exact_fit(backend):
    X, Y = _problem(40, 3, 2, seed=4)
    exact = fit_exact(X, Y)
    m = LinearRegression(3, 2, seed=5)
    losses = gradient_descent(m, X, Y, lr=1 / _lambda_max(X), steps=2000, backend=backend)
    assert losses.shape == (2000,)
    assert np.all(np.diff(losses) <= 1e-15)                  # below 2/λ_max the loss never rises
    np.testing.assert_allclose(m.params["W"], exact["W"], atol=1e-10)
    np.testing.assert_allclose(m.params["b"], exact["b"], atol=1e-10)


def test_learning_rate_limit_is_two_over_lambda_max():
    """Just below 2/λ_max gradient descent still converges, its error along the Hessian's top eigenvector
    flipping sign each step; just above, that error grows and the run diverges."""
    X, y = _problem(40, 3, 1, seed=6, flat=True)
    A = _augmented(X)
    lams, V = np.linalg.eigh(A.T @ A / len(X))
    limit = 2 / lams[-1]
    exact = fit_exact(X, y)
    theta_star = np.r_[exact["W"][0], exact["b"]]
    lr = 0.98 * limit
    m = LinearRegression(3, seed=1)
    _, path = gradient_descent(m, X, y, lr=lr, steps=20, trajectory=True)
    theta = np.hstack([path["W"][:, 0, :], path["b"]])      # (21, n_in + 1), ordered like A's columns
    e = (theta - theta_star) @ V[:, -1]
    np.testing.assert_allclose(e[1:] / e[:-1], 1 - lr * lams[-1], rtol=1e-6)   # = −0.96
    gradient_descent(m, X, y, lr=lr, steps=50_000)
    np.testing.assert_allclose(m.params["W"], exact["W"], atol=1e-9)
    m = LinearRegression(3, seed=1)
    with pytest.raises(FloatingPointError, match=r"learning rate .*smaller learning rate"):
        gradient_descent(m, X, y, lr=1.02 * limit, steps=50_000)


@pytest.mark.filterwarnings("ignore:overflow encountered")   # the CUDA simulator computes in NumPy
@pytest.mark.parametrize("backend", BACKENDS)
def test_divergence_raises_and_stops_where_the_reference_stops(backend):
    X, y = _problem(4, 2, 1, seed=7, flat=True)
    lr = 1e6 * 2 / _lambda_max(X)          # overflows within the first 32 steps, one CUDA check
    ref = LinearRegression(2, seed=3, backend="numpy")
    with pytest.raises(FloatingPointError, match=r"at step \d+ with learning rate") as info:
        gradient_descent(ref, X, y, lr=lr, steps=400)
    m = LinearRegression(2, seed=3)
    with pytest.raises(FloatingPointError, match=str(info.value).split(" with")[0] + " "):
        gradient_descent(m, X, y, lr=lr, steps=400, backend=backend)
    np.testing.assert_array_equal(np.isfinite(m.params["W"]), np.isfinite(ref.params["W"]))
    np.testing.assert_allclose(m.params["W"], ref.params["W"], rtol=1e-10)


@settings(max_examples=15, deadline=None)
@given(B=st.integers(1, 12), n_in=st.integers(1, 5), n_out=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_numba_agrees_with_numpy(B, n_in, n_out, seed):
    X, Y = _problem(B, n_in, n_out, seed)
    lr = 0.5 / _lambda_max(X)
    runs = []
    for backend in ["numpy", "numba"]:
        m = LinearRegression(n_in, n_out, seed=seed)
        losses, path = gradient_descent(m, X, Y, lr, 60, backend=backend, trajectory=True)
        runs.append((losses, path, m.params))
    (l0, p0, q0), (l1, p1, q1) = runs
    np.testing.assert_allclose(l1, l0, rtol=1e-12, atol=1e-15)
    for k in ("W", "b"):
        np.testing.assert_allclose(p1[k], p0[k], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(q1[k], q0[k], rtol=1e-12, atol=1e-14)


def test_cuda_agrees_with_numpy():
    """34 steps: the host reads the losses back after 32 and then after the last 2."""
    X, Y = _problem(3, 2, 2, seed=8)
    lr = 1 / _lambda_max(X)
    runs = []
    for backend in ["numpy", "cuda"]:
        m = LinearRegression(2, 2, seed=9)
        losses, path = gradient_descent(m, X, Y, lr, 34, backend=backend, trajectory=True)
        runs.append((losses, path))
    (l0, p0), (l1, p1) = runs
    np.testing.assert_allclose(l1, l0, rtol=1e-12)
    for k in ("W", "b"):
        np.testing.assert_allclose(p1[k], p0[k], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_trajectory_records_the_parameters_behind_each_loss(backend):
    X, y = _problem(9, 1, 1, seed=10, flat=True)
    m = LinearRegression(1, seed=11)
    start = {k: p.copy() for k, p in m.params.items()}
    losses, path = gradient_descent(m, X, y, lr=0.3, steps=25, backend=backend, trajectory=True)
    assert path["W"].shape == (26, 1, 1) and path["b"].shape == (26, 1)
    np.testing.assert_array_equal(path["W"][0], start["W"])
    np.testing.assert_array_equal(path["W"][-1], m.params["W"])
    np.testing.assert_array_equal(path["b"][-1], m.params["b"])
    for t in (0, 7, 24):
        r = path["W"][t, 0, 0] * X[:, 0] + path["b"][t, 0] - y
        assert losses[t] == pytest.approx(0.5 * np.mean(r * r), rel=1e-12)


def test_noncontiguous_params_are_updated_in_place():
    X, Y = _problem(10, 3, 2, seed=12)
    m, ref = LinearRegression(3, 2, seed=1), LinearRegression(3, 2, seed=1, backend="numpy")
    m.params["W"] = np.asfortranarray(m.params["W"])
    W = m.params["W"]
    gradient_descent(m, X, Y, lr=0.1, steps=5, backend="numba")
    gradient_descent(ref, X, Y, lr=0.1, steps=5)
    assert m.params["W"] is W
    np.testing.assert_allclose(W, ref.params["W"], rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_float32_stays_float32(backend):
    X, Y = _problem(10, 3, 1, seed=13)
    m = LinearRegression(3, dtype=np.float32)
    losses = gradient_descent(m, X.astype(np.float32), Y, lr=1 / _lambda_max(X), steps=2000, backend=backend)
    assert m.params["W"].dtype == np.float32 and m.params["b"].dtype == np.float32
    exact = fit_exact(X.astype(np.float32), Y)
    np.testing.assert_allclose(m.params["W"], exact["W"], atol=1e-4)
    assert np.isfinite(losses).all()


def test_loss_surface_matches_the_model_and_bottoms_out_at_the_exact_fit():
    X, y = _problem(30, 1, 1, seed=14, flat=True)
    w, b = np.linspace(-1, 3, 81), np.linspace(-1, 2, 61)
    L = loss_surface(X[:, 0], y, w, b)
    assert L.shape == (61, 81)
    m = LinearRegression(1)
    m.params = {"W": np.array([[w[10]]]), "b": np.array([b[40]])}
    assert L[40, 10] == pytest.approx(m.loss_and_grads(X, y)[0], rel=1e-12)
    i, j = np.unravel_index(L.argmin(), L.shape)
    exact = fit_exact(X, y)
    assert abs(w[j] - exact["W"][0, 0]) <= 0.05 and abs(b[i] - exact["b"][0]) <= 0.05


def test_bad_inputs_give_clear_errors():
    X, Y = _problem(6, 3, 2)
    m = LinearRegression(3, 2)
    with pytest.raises(ValueError, match=r"X: expected shape \(n, 3\), got \(6, 2\)"):
        m.loss_and_grads(X[:, :2], Y)
    with pytest.raises(ValueError, match=r"Y: expected shape \(6, 2\), got \(5, 2\)"):
        m.loss_and_grads(X, Y[:5])
    with pytest.raises(ValueError, match=r"Y: expected shape \(6, 2\), got \(6,\)"):
        m.loss_and_grads(X, Y[:, 0])
    with pytest.raises(ValueError, match=r"Y: expected shape \(6,?\), got \(4,\)"):
        LinearRegression(3).loss_and_grads(X, Y[:4, 0])
    bad = X.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="X: expected finite values, got 1 NaN"):
        m.predict(bad)
    with pytest.raises(ValueError, match="lr: expected a positive finite number, got -0.1"):
        gradient_descent(m, X, Y, lr=-0.1, steps=3)
    with pytest.raises(ValueError, match="steps: expected a positive integer, got 2.5"):
        gradient_descent(m, X, Y, lr=0.1, steps=2.5)
    with pytest.raises(ValueError, match="backend: expected one of"):
        gradient_descent(m, X, Y, lr=0.1, steps=3, backend="gpu")
    with pytest.raises(ValueError, match="n_in: expected a positive integer, got 0"):
        LinearRegression(0)
    with pytest.raises(ValueError, match="dtype: expected float32 or float64"):
        LinearRegression(2, dtype=np.int32)
    with pytest.raises(ValueError, match="ridge: expected a non-negative finite number, got -1"):
        fit_exact(X, Y, ridge=-1)
    with pytest.raises(ValueError, match=r"Y: expected shape \(6,\) or \(6, n_out\) to match X, got \(5"):
        fit_exact(X, Y[:5])
    m.params["W"] = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"params\['W'\]: expected a float64 array of shape \(2, 3\)"):
        gradient_descent(m, X, Y, lr=0.1, steps=3)
