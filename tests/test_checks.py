"""Input checks name the argument, what it got and what was expected."""
import numpy as np
import pytest

from loopy_edu.backend import available_backends, check_backend
from loopy_edu.checks import check_array, check_finite_loss, check_labels, check_positive


def test_check_array():
    assert check_array([[1, 2]], "X", shape=(None, 2), dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match=r"X: expected shape \(n, 3\), got \(1, 2\)"):
        check_array([[1, 2]], "X", shape=(None, 3))
    with pytest.raises(ValueError, match="X: expected a 2-D array, got shape"):
        check_array([1, 2], "X", ndim=2)
    with pytest.raises(ValueError, match="X: expected finite values, got 2 NaN or Inf"):
        check_array([np.inf, np.nan, 1.0], "X")
    with pytest.raises(ValueError, match="X: expected a non-empty array"):
        check_array(np.zeros((0, 3)), "X")


def test_check_labels():
    np.testing.assert_array_equal(check_labels(np.array([0.0, 2.0]), "y", 3), [0, 2])
    with pytest.raises(ValueError, match="y: expected integer labels"):
        check_labels(np.array([0.5]), "y", 3)
    with pytest.raises(ValueError, match=r"y: expected labels in \[0, 2\], got values in \[-1, 1\]"):
        check_labels(np.array([-1, 1]), "y", 3)


def test_check_positive_and_loss():
    assert check_positive(3, "n", integer=True) == 3
    for bad in (0, -1, True, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lr: expected a positive"):
            check_positive(bad, "lr")
    assert check_finite_loss(1.5, 0) == 1.5
    with pytest.raises(FloatingPointError, match="loss became nan at step 7 with learning rate 0.5"):
        check_finite_loss(float("nan"), 7, 0.5)


def test_backends():
    assert "numpy" in available_backends() and "numba" in available_backends()
    with pytest.raises(ValueError, match=r"backend: expected one of \['cuda', 'numba', 'numpy'\], got 'gpu'"):
        check_backend("gpu")


def test_check_params():
    from loopy_edu.checks import check_params
    params = {"W": np.zeros((2, 3)), "b": np.zeros(2)}
    W, b = check_params(params, {"W": (2, 3), "b": (2,)}, np.float64)
    assert W is params["W"] and b is params["b"]
    with pytest.raises(ValueError, match=r"params\['b'\]: expected a float64 array of shape \(3,\), got \(2,\)"):
        check_params(params, {"W": (2, 3), "b": (3,)}, np.float64)
    with pytest.raises(ValueError, match=r"params\['W'\]: expected a float32 array"):
        check_params(params, {"W": (2, 3)}, np.float32)
    with pytest.raises(ValueError, match=r"params\['V'\]: expected .* got NoneType"):
        check_params(params, {"V": (1,)}, np.float64)
