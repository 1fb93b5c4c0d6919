"""The CUDA kernels of the leaky RNN (BPTT, RTRL, online RTRL) agree with the NumPy reference in the
cases the backend-agreement tests of test_rnn.py and test_rtrl.py leave out: more units than a block
has threads, one-step sequences, float32, and the online learner's state.

They run in Numba's simulator when there is no GPU (tests/conftest.py), at tiny sizes.
"""
import numpy as np
import pytest

from loopy_edu import rnn
from loopy_edu.activations import CODES
from loopy_edu.backend import cuda_available
from loopy_edu.bptt import bptt
from loopy_edu.kernels import rnn_cuda
from loopy_edu.optim import SGD
from loopy_edu.rtrl import OnlineRTRL, rtrl

pytestmark = pytest.mark.skipif(not cuda_available(), reason="needs a GPU or NUMBA_ENABLE_CUDASIM=1")

TOL = {np.float64: 1e-10, np.float32: 1e-4}


def problem(loss, T=4, B=2, N=3, n_in=2, n_out=2, alpha=0.7, activation="tanh", dtype=np.float64, seed=0):
    """A small random RNN (with non-zero biases) and a batch of sequences with a mask holding zeros."""
    model = rnn.RNN(n_in, N, n_out, alpha=alpha, activation=activation, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 1)
    model.params["b_rec"] = (0.3 * rng.standard_normal(N)).astype(dtype)
    model.params["b_out"] = (0.3 * rng.standard_normal(n_out)).astype(dtype)
    xs = rng.standard_normal((T, B, n_in)).astype(dtype)
    if loss == "mse":
        targets = rng.standard_normal((T, B, n_out)).astype(dtype)
    else:
        targets = np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, (T, B))]
    mask = (rng.random((T, B)) > 0.3).astype(dtype)
    mask[0, 0] = 0.0
    mask[-1] = 1.0
    return model, xs, targets, mask


def assert_close(got, want, tol):
    scale = max(np.max(np.abs(want)), 1e-30)
    assert np.max(np.abs(np.asarray(got) - want)) <= tol * scale, (got, want)


def assert_same_gradient(result, reference, tol):
    (value, grads), (ref_value, ref_grads) = result, reference
    assert abs(value - ref_value) <= tol * abs(ref_value)
    assert grads.keys() == ref_grads.keys()
    for name in ref_grads:
        assert grads[name].shape == ref_grads[name].shape and grads[name].dtype == ref_grads[name].dtype
        assert_close(grads[name], ref_grads[name], tol)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("N", [3, 11])           # 11 units is more than a simulated block's 8 threads
def test_forward_matches_numpy(activation, N):
    model, xs, _, _ = problem("mse", N=N, activation=activation)
    hs, acts = rnn_cuda.forward(*model.weights()[:3], xs, model.alpha, CODES[activation])
    ref_hs, ref_acts = rnn.forward(model.params, xs, model.alpha, activation)
    assert_close(hs, ref_hs, 1e-12)
    assert_close(acts, ref_acts, 1e-12)
    ys, ref_ys = model.forward(xs, backend="cuda")[1], model.forward(xs, backend="numpy")[1]
    assert_close(ys, ref_ys, 1e-12)


def test_rtrl_matches_bptt_with_many_units():
    # More units than a simulated block has threads; the two exact gradients must agree.
    model, xs, targets, mask = problem("mse", T=3, N=9, n_in=1)
    assert_same_gradient(rtrl(model, xs, targets, "mse", mask, backend="cuda"),
                         bptt(model, xs, targets, "mse", mask, backend="numpy"), 1e-10)


@pytest.mark.parametrize("method", [bptt, rtrl])
def test_single_step_sequence(method):
    model, xs, targets, mask = problem("xent", T=1, B=3)
    assert_same_gradient(method(model, xs, targets, "xent", mask, backend="cuda"),
                         method(model, xs, targets, "xent", mask, backend="numpy"), 1e-10)


@pytest.mark.parametrize("method", [bptt, rtrl])
def test_float32(method):
    model, xs, targets, mask = problem("mse", dtype=np.float32, activation="relu")
    assert_same_gradient(method(model, xs, targets, "mse", mask, backend="cuda"),
                         method(model, xs, targets, "mse", mask, backend="numpy"), 1e-4)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_online_rtrl_matches_numpy(dtype):
    runs = {}
    for backend in ("numpy", "cuda"):
        model, xs, targets, mask = problem("mse", T=3, dtype=dtype)
        learner = OnlineRTRL(model, SGD(0.1, backend="numpy"), loss="mse", batch=xs.shape[1], backend=backend)
        losses = [learner.step(xs[t], targets[t], mask[t]) for t in range(len(xs))]
        runs[backend] = losses, model.params, learner.h, learner.J
    (losses, params, h, J), (ref_losses, ref_params, ref_h, ref_J) = runs["cuda"], runs["numpy"]
    tol = TOL[dtype]
    assert_close(losses, ref_losses, tol)
    for name in ref_params:
        assert_close(params[name], ref_params[name], tol)
    assert h.dtype == dtype and J.dtype == dtype
    assert_close(h, ref_h, tol)
    assert_close(J, ref_J, tol)
    assert np.max(np.abs(ref_J)) > 0
