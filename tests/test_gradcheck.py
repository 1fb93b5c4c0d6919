"""The gradient checker must pass a right gradient and catch a wrong one."""
import numpy as np
import pytest

from loopy_edu.gradcheck import check_grads, numerical_grad, rel_error


class Quadratic:
    """loss = ½ xᵀAx + bᵀx with a gradient that can be broken on purpose."""
    dtype = np.float64

    def __init__(self, broken=False):
        rng = np.random.default_rng(0)
        M = rng.standard_normal((4, 4))
        self.A, self.broken = M @ M.T, broken
        self.params = {"x": rng.standard_normal(4), "b": rng.standard_normal(4)}

    def loss_and_grads(self):
        x, b = self.params["x"], self.params["b"]
        gx = self.A @ x + b
        if self.broken:
            gx = gx + 1e-3 * x
        return 0.5 * x @ self.A @ x + b @ x, {"x": gx, "b": x.copy()}


def test_passes_an_exact_gradient():
    errors = check_grads(Quadratic())
    assert max(errors.values()) < 1e-8


def test_catches_a_wrong_gradient():
    errors = check_grads(Quadratic(broken=True))
    assert errors["x"] > 1e-5 and errors["b"] < 1e-8


def test_numerical_grad_restores_the_parameters_and_subsamples():
    q = Quadratic()
    before = q.params["x"].copy()
    g = numerical_grad(lambda: q.loss_and_grads()[0], q.params["x"], index=[1, 3])
    np.testing.assert_array_equal(q.params["x"], before)
    assert np.isnan(g[[0, 2]]).all() and np.isfinite(g[[1, 3]]).all()


def test_rel_error():
    a = np.array([1.0, 2.0])
    assert rel_error(a, a) == 0.0
    assert rel_error(np.zeros(2), np.zeros(2)) == 0.0
    assert rel_error(a, -a) == pytest.approx(1.0)
    assert rel_error(1e-12 * a, 1e-12 * a * (1 + 1e-6)) == pytest.approx(5e-7, rel=1e-3)


def test_refuses_float32():
    from loopy_edu.mlp import MLP
    with pytest.raises(ValueError, match="float64"):
        check_grads(MLP([3, 2], dtype=np.float32), np.zeros((1, 3)), np.zeros(1, int))


def test_works_on_a_fortran_ordered_parameter():
    """A reshaped view of a non-contiguous array would be a copy; the probes must still reach the model."""
    from loopy_edu.mlp import MLP
    m = MLP([4, 3, 2], seed=0, backend="numpy")
    m.params["W1"] = np.asfortranarray(m.params["W1"])
    X, y = np.random.default_rng(0).standard_normal((5, 4)), np.array([0, 1, 1, 0, 1])
    assert max(check_grads(m, X, y).values()) < 1e-7
