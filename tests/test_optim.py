"""Optimizers (Chapter 4): each rule against its closed form, backends agree, bad inputs."""
import numpy as np
import pytest

from loopy_edu.optim import SGD, Adam, Momentum, make_optimizer

BACKENDS = ["numpy", "numba", "cuda"]


def _params(rng):
    return {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(3)}


@pytest.mark.parametrize("backend", BACKENDS)
def test_sgd_step(backend):
    p = _params(np.random.default_rng(0))
    start = {k: v.copy() for k, v in p.items()}
    g = {k: np.full_like(v, 2.0) for k, v in p.items()}
    SGD(0.25, backend=backend).step(p, g)
    for k in p:
        np.testing.assert_allclose(p[k], start[k] - 0.5, rtol=0, atol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_under_a_constant_gradient(backend, nesterov):
    """With g constant, v_t = −η g (1 − βᵗ)/(1 − β): the step grows towards η g/(1 − β)."""
    lr, beta, steps = 0.1, 0.9, 5
    p = {"w": np.zeros(4)}
    g = {"w": np.ones(4)}
    opt = Momentum(lr, beta=beta, nesterov=nesterov, backend=backend)
    for _ in range(steps):
        opt.step(p, g)
    v = [-lr * (1 - beta ** t) / (1 - beta) for t in range(1, steps + 1)]
    expected = sum(beta * vt - lr for vt in v) if nesterov else sum(v)
    np.testing.assert_allclose(p["w"], expected, rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_adam_first_step_is_lr_times_sign(backend):
    """After bias correction, Adam's first step is η g/(|g| + ε) ≈ η sign(g), whatever the scale of g."""
    p = {"w": np.zeros(5)}
    g = {"w": np.array([1e-3, -2.0, 50.0, -1e-2, 3.0])}
    Adam(0.01, backend=backend).step(p, g)
    np.testing.assert_allclose(p["w"], -0.01 * np.sign(g["w"]), rtol=1e-4)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_backends_agree_over_many_steps(name):
    results = {}
    for backend in BACKENDS:
        rng = np.random.default_rng(1)
        p = _params(rng)
        opt = make_optimizer(name, lr=0.05, backend=backend)
        for t in range(4):
            opt.step(p, {k: np.sin(v * (t + 1)) for k, v in p.items()})
        results[backend] = p
    for backend in BACKENDS[1:]:
        for k in results["numpy"]:
            np.testing.assert_allclose(results[backend][k], results["numpy"][k], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_minimises_a_quadratic(name):
    target = np.array([1.0, -2.0, 3.0])
    p = {"x": np.zeros(3)}
    opt = make_optimizer(name, lr=0.1)
    for _ in range(500):
        opt.step(p, {"x": p["x"] - target})
    np.testing.assert_allclose(p["x"], target, atol=1e-3)


def test_bad_inputs():
    p = {"W": np.zeros((2, 2))}
    with pytest.raises(ValueError, match="lr: expected a positive finite number, got -1"):
        SGD(-1)
    with pytest.raises(ValueError, match=r"beta: expected a finite number in \[0, 1\)"):
        Momentum(0.1, beta=1.0)
    with pytest.raises(ValueError, match="grads: expected the same keys"):
        SGD(0.1).step(p, {"V": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"grads\['W'\]: expected shape \(2, 2\), got \(2,\)"):
        SGD(0.1).step(p, {"W": np.zeros(2)})
    with pytest.raises(ValueError, match="optimizer: expected one of"):
        make_optimizer("rmsprop", lr=0.1)
    with pytest.raises(ValueError, match="C-contiguous"):
        SGD(0.1).step({"W": np.zeros((4, 4))[:, ::2]}, {"W": np.zeros((4, 2))})


@pytest.mark.parametrize("backend", ["numba", "cuda"])
def test_subclasses_keep_their_rule(backend):
    class MySGD(SGD):
        pass

    p, q = {"w": np.ones(3)}, {"w": np.ones(3)}
    g = {"w": np.full(3, 2.0)}
    MySGD(0.1, backend=backend).step(p, g)
    SGD(0.1, backend="numpy").step(q, g)
    np.testing.assert_array_equal(p["w"], q["w"])


@pytest.mark.parametrize("backend", ["numba", "cuda"])
def test_state_follows_keys_not_their_order(backend):
    """Momentum state belongs to a parameter's name, even when the dict comes in another order."""
    rng = np.random.default_rng(3)
    fused = _params(rng)
    ref = {k: v.copy() for k, v in fused.items()}
    opt, opt_ref = Momentum(0.1, backend=backend), Momentum(0.1, backend="numpy")
    for t in range(3):
        order = list(fused)[::-1] if t % 2 else list(fused)
        g = {k: np.cos(ref[k] + t) for k in order}
        opt.step({k: fused[k] for k in order}, g)
        opt_ref.step(ref, {k: g[k] for k in ref})
    for k in ref:
        np.testing.assert_allclose(fused[k], ref[k], rtol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rule", [Momentum, Adam])
def test_state_that_does_not_fit_is_refused_before_any_write(rule, backend):
    """Defect 1: a model rebuilt with the same names but bigger shapes met the old state, and the
    fused kernels wrote past its end. Now the step refuses, names the key, and writes nothing."""
    opt = rule(0.1, backend=backend)
    small = _params(np.random.default_rng(0))
    opt.step(small, {k: np.ones_like(v) for k, v in small.items()})
    state = {k: tuple(s.copy() for s in v) for k, v in opt.state.items()}
    for big in ({"W": np.ones((30, 40)), "b": np.ones(3)},                      # bigger W
                {"W": np.ones((3, 4), np.float32), "b": np.ones(3, np.float32)}):  # other dtype
        before = {k: v.copy() for k, v in big.items()}
        with pytest.raises(ValueError, match=r"params\['W'\]: the optimizer's state was made for"):
            opt.step(big, {k: np.ones_like(v) for k, v in big.items()})
        for k in big:
            np.testing.assert_array_equal(big[k], before[k])
        for k in state:
            for s, s0 in zip(opt.state[k], state[k]):
                np.testing.assert_array_equal(s, s0)
    assert opt.t == 1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_bound_update_is_step(name, backend):
    """bind() checks once and returns an update without checks (for the online learners); with
    the bound gradient arrays refilled in place it moves params exactly as step() does."""
    rng = np.random.default_rng(2)
    bound = _params(rng)
    stepped = {k: v.copy() for k, v in bound.items()}
    grads = {k: np.zeros_like(v) for k, v in bound.items()}
    opt, ref = (make_optimizer(name, lr=0.05, backend=backend) for _ in range(2))
    update = opt.bind(bound, grads)
    for t in range(3):
        g = {k: np.sin(v * (t + 1)) for k, v in stepped.items()}
        for k in grads:
            grads[k][...] = g[k]
        update()
        ref.step(stepped, g)
    assert opt.t == ref.t == 3
    for k in bound:
        np.testing.assert_array_equal(bound[k], stepped[k])


@pytest.mark.parametrize("backend", ["numba", "cuda"])
def test_bind_refuses_gradients_it_cannot_read_in_place(backend):
    """A bound update reads the gradient arrays in place, so on the fused backends they must be
    C-contiguous and of the parameter's dtype; step() copies such gradients instead."""
    p = {"W": np.zeros((2, 3))}
    opt = Momentum(0.1, backend=backend)
    for g in (np.zeros((3, 2)).T, np.zeros((2, 3), np.float32)):
        with pytest.raises(ValueError, match=r"grads\['W'\]: expected a C-contiguous float64"):
            opt.bind(p, {"W": g})
    assert opt.state == {} and opt.t == 0
    opt.step(p, {"W": np.ones((3, 2)).T})
    np.testing.assert_allclose(p["W"], -0.1 * np.ones((2, 3)))
