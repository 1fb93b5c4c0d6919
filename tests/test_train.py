"""The training loop: it learns, it records, and it refuses to continue after divergence."""
import numpy as np
import pytest

from loopy_edu.linear import LinearRegression
from loopy_edu.mlp import MLP
from loopy_edu.optim import SGD, Adam
from loopy_edu.train import train, train_batches


def _blobs(n=600, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = np.array([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.5]])
    return centres[y] + 0.5 * rng.standard_normal((n, 2)), y


def test_learns_separable_blobs_and_records_history():
    X, y = _blobs()
    m = MLP([2, 16, 3], activation="tanh")
    before = m.accuracy(X, y)
    h = train(m, X[:500], y[:500], Adam(0.02), epochs=4, batch_size=25, X_test=X[500:], y_test=y[500:],
              progress=False)
    assert len(h.loss) == 4 * 20 and len(h.epoch_loss) == len(h.test_acc) == len(h.seconds) == 4
    assert h.test_loss[-1] == pytest.approx(m.loss(X[500:], y[500:]))
    assert h.test_acc[-1] > 0.97 > before
    assert h.epoch_loss[-1] < h.epoch_loss[0]


def test_same_seed_same_run():
    X, y = _blobs()
    runs = [train(MLP([2, 8, 3], seed=1), X, y, SGD(0.5), epochs=2, progress=False).loss for _ in range(2)]
    assert runs[0] == runs[1]


def test_divergence_raises_with_a_hint():
    X, y = _blobs()
    with pytest.raises(FloatingPointError, match="learning rate 1e\\+06.*smaller learning rate") as err:
        train(MLP([2, 8, 3], activation="relu"), 100 * X, y, SGD(1e6), epochs=3, progress=False)
    assert len(err.value.history.loss) >= 1 and np.isfinite(err.value.history.loss).all()


def test_custom_grad_fn_and_callback():
    X, y = _blobs(100)
    seen = []

    def zero_rule(model, Xb, yb):
        loss, grads = model.loss_and_grads(Xb, yb)
        return loss, {k: np.zeros_like(g) for k, g in grads.items()}

    m = MLP([2, 4, 3])
    before = {k: v.copy() for k, v in m.params.items()}
    train(m, X, y, SGD(1.0), epochs=2, grad_fn=zero_rule, progress=False,
          callback=lambda epoch, model, hist: seen.append(epoch))
    assert seen == [0, 1]
    assert all((m.params[k] == before[k]).all() for k in before)


def test_bad_arguments():
    X, y = _blobs(10)
    m = MLP([2, 4, 3])
    with pytest.raises(ValueError, match=r"y: expected shape \(10,\)"):
        train(m, X, y[:5], SGD(0.1), progress=False)
    with pytest.raises(ValueError, match="batch_size: expected a positive integer, got 0"):
        train(m, X, y, SGD(0.1), batch_size=0, progress=False)
    with pytest.raises(ValueError, match="X_test, y_test: expected both or neither"):
        train(m, X, y, SGD(0.1), X_test=X, progress=False)
    with pytest.raises(ValueError, match=r"y_test: expected shape \(10,\)"):
        train(m, X, y, SGD(0.1), X_test=X, y_test=y[:3], progress=False)
    with pytest.raises(ValueError, match="epochs: expected a positive integer"):
        train(m, X, y, SGD(0.1), epochs=1.5, progress=False)


def test_train_batches_draws_a_fresh_batch_at_every_step_and_learns():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((2, 3))
    seen = []

    def batch(step):
        seen.append(step)
        X = np.random.default_rng(step).standard_normal((16, 3))
        return X, X @ W.T

    model = LinearRegression(3, 2, seed=1)
    hist = train_batches(model, batch, SGD(lr=0.1), steps=200, progress=False)
    assert seen == list(range(200)) and len(hist.loss) == len(hist.grad_norm) == 200
    assert hist.loss[-1] < 1e-6 * hist.loss[0]
    with pytest.raises(ValueError, match="clip: expected a positive"):
        train_batches(model, batch, SGD(lr=0.1), steps=2, clip=0.0, progress=False)
