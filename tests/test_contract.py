"""One contract for every model (ARCHITECTURE.md), in the spirit of scikit-learn's check_estimator.

A model joins the library by getting a :class:`Spec` in ``SPECS`` below (and its class in
``loopy_edu.checkpoint.MODELS``). Every check here then runs on it: seed determinism, dtype kept,
gradient keys and shapes, backends agreeing, bad input refused with the argument named, and the
checkpoint round trip.
"""
import json
import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

from loopy_edu import checkpoint, tasks
from loopy_edu.backend import available_backends
from loopy_edu.halting import ACTCell, LoopedCell, PonderCell
from loopy_edu.linear import LinearRegression, gradient_descent
from loopy_edu.loopy import LoopyNetwork
from loopy_edu.lstm import LSTM
from loopy_edu.mlp import MLP
from loopy_edu.perceptron import Perceptron
from loopy_edu.rnn import RNN
from loopy_edu.sln import TallSLN
from loopy_edu.sln_conv import ConvSLN
from loopy_edu.sln_lateral import CriticCell, LateralSLN
from loopy_edu.sln_wide import WideSLN
from loopy_edu.synapses import SynapseChain


def _sequences(model, rng):
    """A masked batch of random sequences as a Task (T=5, B=3)."""
    xs = rng.standard_normal((5, 3, model.n_in))
    mask = (rng.random((5, 3)) < 0.7).astype(float)
    return tasks.Task(xs, rng.standard_normal((5, 3, model.n_out)), mask, "mse", "random")


def _perturbed(model, rng):
    """Non-zero biases, so that no gradient vanishes by symmetry."""
    for p in model.params.values():
        p += (0.3 * rng.standard_normal(p.shape)).astype(p.dtype)
    return model


@dataclass
class Spec:
    """How the contract test drives one model class.

    ``make(seed, dtype, backend)`` builds it; ``data(model, rng)`` draws inputs; ``grads(model, d)``
    returns ``(loss, grads)`` (None for a model without a gradient); ``output(model, d)`` is what a
    user reads out of it; ``run(model, d)`` exercises its hot loop on the model's backend and returns
    the arrays to compare across backends; ``bad_input(model, d)`` gives (call, message) pairs.
    """
    make: Callable
    data: Callable
    output: Callable
    run: Callable
    bad_input: Callable
    grads: Callable = None
    random_init: bool = True
    input_name: str = "X"
    extra: dict = field(default_factory=dict)


def _ponder_data(model, rng):
    """Static inputs in {-1, 0, 1} and binary targets, as on the parity task."""
    return rng.choice([-1.0, 0.0, 1.0], size=(6, model.n_in)), \
        rng.integers(0, 2, size=(6, model.n_out)).astype(float)


def _pondered(model, d):
    """A pondering model's answers, the computation it used, and its gradient."""
    probs, ponder = model.predict(d[0])
    return {"probs": probs, "ponder": ponder, **model.loss_and_grads(*d)[1]}


def _token_data(model, rng):
    """Three sequences of two tokens, read one per loop, and binary targets."""
    return rng.standard_normal((3, 2, model.n_in)), \
        rng.integers(0, 2, size=(3, model.n_out)).astype(float)


def _X(model, rng, n=6):
    return rng.standard_normal((n, model.n_in if hasattr(model, "n_in") else model.sizes[0]))


SPECS = {
    "LinearRegression": Spec(
        make=lambda seed=0, dtype=np.float64, backend="numba": LinearRegression(3, 2, seed, dtype, backend),
        data=lambda m, rng: (_X(m, rng), rng.standard_normal((6, 2))),
        grads=lambda m, d: m.loss_and_grads(*d),
        output=lambda m, d: m.predict(d[0]),
        run=lambda m, d: {"losses": gradient_descent(m, *d, lr=0.1, steps=4), **m.params},
        bad_input=lambda m, d: [(lambda: m.predict(d[0][:, :2]), r"X: expected shape"),
                                (lambda: m.loss_and_grads(d[0], d[1][:, :1]), r"Y: expected shape")],
    ),
    "Perceptron": Spec(
        make=lambda seed=0, dtype=np.float64, backend="numba": Perceptron(3, seed, dtype, backend),
        data=lambda m, rng: (_X(m, rng), np.array([1, -1, 1, 1, -1, -1])),
        grads=lambda m, d: m.loss_and_grads(*d),
        output=lambda m, d: m.decision_function(d[0]),
        run=lambda m, d: (m.fit(*d, epochs=3), m.params)[1],
        bad_input=lambda m, d: [(lambda: m.predict(d[0][:, :2]), r"X: expected shape"),
                                (lambda: m.loss_and_grads(d[0], d[1][:4]), r"y: expected")],
        random_init=False,
    ),
    "MLP": Spec(
        make=lambda seed=0, dtype=np.float64, backend="numba": MLP([3, 5, 4], "tanh", seed, dtype, backend),
        data=lambda m, rng: (_X(m, rng), np.array([0, 1, 2, 3, 1, 0])),
        grads=lambda m, d: m.loss_and_grads(*d),
        output=lambda m, d: m.logits(d[0]),
        run=lambda m, d: {"logits": m.logits(d[0]), **m.loss_and_grads(*d)[1]},
        bad_input=lambda m, d: [(lambda: m.logits(d[0][:, :2]), r"X: expected shape"),
                                (lambda: m.loss_and_grads(d[0], d[1] + 4), r"y: expected labels"),
                                (lambda: m.accuracy(d[0][:, :2], d[1]), r"X: expected shape")],
    ),
    "RNN": Spec(
        make=lambda seed=0, dtype=np.float64, backend="numba": RNN(2, 4, 3, 0.6, "tanh", seed, dtype, backend),
        data=lambda m, rng: _sequences(_perturbed(m, rng), rng),
        grads=lambda m, task: m.loss_and_grads(task),
        output=lambda m, task: m.predict(task.xs),
        run=lambda m, task: {"ys": m.predict(task.xs), **m.loss_and_grads(task)[1]},
        bad_input=lambda m, task: [(lambda: m.predict(task.xs[..., :1]), r"xs: expected shape"),
                                   (lambda: m.loss_and_grads(task.xs, task.targets), r"loss: expected")],
        input_name="xs",
    ),
    "LSTM": Spec(
        make=lambda seed=0, dtype=np.float64, backend="numba": LSTM(2, 3, 3, seed, dtype, backend),
        data=lambda m, rng: _sequences(_perturbed(m, rng), rng),
        grads=lambda m, task: m.loss_and_grads(task),
        output=lambda m, task: m.predict(task.xs),
        run=lambda m, task: {"ys": m.predict(task.xs), **m.loss_and_grads(task)[1]},
        bad_input=lambda m, task: [(lambda: m.predict(task.xs[..., :1]), r"xs: expected shape"),
                                   (lambda: m.loss_and_grads(task.xs, task.targets), r"loss: expected")],
        input_name="xs",
    ),
    "LoopyNetwork": Spec(
        make=lambda seed=0, dtype=np.float64, backend="numba": LoopyNetwork(
            2, 6, 3, k=2, alpha=0.6, seed=seed, dtype=dtype, backend=backend),
        data=lambda m, rng: _sequences(_perturbed(m, rng), rng),
        grads=lambda m, task: m.loss_and_grads(task),
        output=lambda m, task: m.predict(task.xs),
        run=lambda m, task: {"ys": m.predict(task.xs), **m.loss_and_grads(task)[1]},
        bad_input=lambda m, task: [(lambda: m.predict(task.xs[..., :1]), r"xs: expected shape"),
                                   (lambda: m.loss_and_grads(task.xs, task.targets), r"loss: expected")],
        input_name="xs",
    ),
    "ACTCell": Spec(
        make=lambda seed=0, dtype=np.float64, backend="numba": ACTCell(
            3, 4, 2, max_steps=4, tau=0.01, halt_bias=-1.0, seed=seed, dtype=dtype,
            backend=backend),
        data=lambda m, rng: _ponder_data(_perturbed(m, rng), rng),
        grads=lambda m, d: m.loss_and_grads(*d),
        output=lambda m, d: m.predict(d[0])[0],
        run=_pondered,
        bad_input=lambda m, d: [(lambda: m.predict(d[0][:, :2]), r"X: expected shape"),
                                (lambda: m.loss_and_grads(d[0], d[1] + 2), r"Y: expected targets"),
                                (lambda: m.predict(d[0], max_steps=0), r"max_steps: expected")],
    ),
    "PonderCell": Spec(
        make=lambda seed=0, dtype=np.float64, backend="numba": PonderCell(
            3, 4, 2, max_steps=4, beta=0.1, seed=seed, dtype=dtype, backend=backend),
        data=lambda m, rng: _ponder_data(_perturbed(m, rng), rng),
        grads=lambda m, d: m.loss_and_grads(*d),
        output=lambda m, d: m.predict(d[0])[0],
        run=_pondered,
        bad_input=lambda m, d: [(lambda: m.predict(d[0][:, :2]), r"X: expected shape"),
                                (lambda: m.loss_and_grads(d[0], d[1][:, :1]), r"Y: expected shape")],
    ),
    "LoopedCell": Spec(
        make=lambda seed=0, dtype=np.float64, backend="numba": LoopedCell(
            3, 4, 2, max_steps=3, seed=seed, dtype=dtype, backend=backend),
        data=lambda m, rng: _ponder_data(_perturbed(m, rng), rng),
        grads=lambda m, d: m.loss_and_grads(*d),
        output=lambda m, d: m.predict(d[0])[0],
        run=_pondered,
        bad_input=lambda m, d: [(lambda: m.predict(d[0][:, :2]), r"X: expected shape"),
                                (lambda: m.loss_and_grads(d[0], d[1] - 1), r"Y: expected targets")],
    ),
    "TallSLN": Spec(
        make=lambda seed=0, dtype=np.float64, backend="numba": TallSLN(
            3, 3, 2, max_loops=3, stop="halt", tau=0.01, halt_bias=-1.0, seed=seed, dtype=dtype,
            backend=backend),
        data=lambda m, rng: _ponder_data(_perturbed(m, rng), rng),
        grads=lambda m, d: m.loss_and_grads(*d),
        output=lambda m, d: m.predict(d[0])[0],
        run=_pondered,
        bad_input=lambda m, d: [(lambda: m.predict(d[0][:, :2]), r"X: expected shape"),
                                (lambda: m.loss_and_grads(d[0], d[1] + 2), r"Y: expected targets")],
    ),
    "LateralSLN": Spec(
        make=lambda seed=0, dtype=np.float64, backend="numba": LateralSLN(
            3, 3, 2, n_critic=2, max_loops=3, theta=0.6, seed=seed, dtype=dtype, backend=backend),
        data=lambda m, rng: _ponder_data(_perturbed(m, rng), rng),
        grads=lambda m, d: m.loss_and_grads(*d),
        output=lambda m, d: m.predict(d[0])[0],
        run=lambda m, d: dict(zip(("probs", "loops", "scores"), m.predict(d[0])),
                              **m.loss_and_grads(*d)[1]),
        bad_input=lambda m, d: [(lambda: m.predict(d[0][:, :2]), r"X: expected shape"),
                                (lambda: m.predict(d[0], theta=1.0), r"theta: expected"),
                                (lambda: m.loss_and_grads(d[0], d[1] + 2), r"Y: expected targets")],
    ),
    "CriticCell": Spec(
        make=lambda seed=0, dtype=np.float64, backend="numba": CriticCell(
            3, 4, 2, max_steps=3, theta=0.6, seed=seed, dtype=dtype, backend=backend),
        data=lambda m, rng: _ponder_data(_perturbed(m, rng), rng),
        grads=lambda m, d: m.loss_and_grads(*d),
        output=lambda m, d: m.predict(d[0])[0],
        run=_pondered,
        bad_input=lambda m, d: [(lambda: m.predict(d[0][:, :2]), r"X: expected shape"),
                                (lambda: m.loss_and_grads(d[0], d[1] + 2), r"Y: expected targets")],
    ),
    "WideSLN": Spec(
        make=lambda seed=0, dtype=np.float64, backend="numba": WideSLN(
            3, 3, 2, n_experts=2, max_loops=3, entropy_cost=0.01, seed=seed, dtype=dtype,
            backend=backend),
        data=lambda m, rng: _token_data(_perturbed(m, rng), rng),
        grads=lambda m, d: m.loss_and_grads(*d),
        output=lambda m, d: m.predict(d[0])[0],
        run=_pondered,
        bad_input=lambda m, d: [(lambda: m.predict(d[0][:, :, :2]), r"X: expected shape"),
                                (lambda: m.loss_and_grads(d[0], d[1] + 2), r"Y: expected targets")],
    ),
    "ConvSLN": Spec(
        make=lambda seed=0, dtype=np.float64, backend="numba": ConvSLN(
            3, lobes=2, iterations=3, supervise_from=2, seed=seed, dtype=dtype, backend=backend),
        data=lambda m, rng: tasks.prefix_parity(4, 5, seed=int(rng.integers(1000))),
        grads=lambda m, d: m.loss_and_grads(*d),
        output=lambda m, d: m.predict(d[0]),
        run=lambda m, d: {"probs": m.predict(d[0], every_loop=True),
                          **m.loss_and_grads(*d)[1]},
        bad_input=lambda m, d: [(lambda: m.predict(d[0][0]), r"X: expected a 2-D array"),
                                (lambda: m.predict(d[0] + 0.5), r"X: expected targets"),
                                (lambda: m.loss_and_grads(d[0], d[1][:, :2]), r"Y: expected")],
    ),
    "SynapseChain": Spec(
        make=lambda seed=0, dtype=np.float64, backend="numba": SynapseChain(3, (2, 3), dtype=dtype,
                                                                             backend=backend),
        data=lambda m, rng: rng.choice([-1.0, 1.0], size=(7, 2, 3)),
        output=lambda m, dws: (m.run(len(dws), dws), m.weight.copy())[1],
        run=lambda m, dws: (m.run(len(dws), dws), m.params)[1],
        bad_input=lambda m, dws: [(lambda: m.run(7, dws[:, :1]), r"dws: expected shape")],
        random_init=False,
        input_name="dws",
    ),
}
NAMES = list(SPECS)
BACKENDS = available_backends()


def _fresh(name, seed=0, dtype=np.float64, backend="numba"):
    spec = SPECS[name]
    model = spec.make(seed=seed, dtype=dtype, backend=backend)
    return spec, model, spec.data(model, np.random.default_rng(seed + 100))


def _input(spec, d):
    """The model's main input array inside the data ``d``."""
    return d.xs if isinstance(d, tasks.Task) else d[0] if isinstance(d, tuple) else d


def _with_input(d, x):
    if isinstance(d, tasks.Task):
        return tasks.Task(x, d.targets, d.mask, d.loss, d.name)
    return (x, *d[1:]) if isinstance(d, tuple) else x


def test_every_library_model_is_covered():
    assert set(NAMES) == set(checkpoint.MODELS)


@pytest.mark.parametrize("name", NAMES)
def test_seed_determinism(name):
    spec, a, d = _fresh(name, seed=3)
    _, b, _ = _fresh(name, seed=3)
    assert a.params.keys() == b.params.keys()
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    out_a, out_b = spec.run(a, d), spec.run(b, d)
    for k in out_a:
        np.testing.assert_array_equal(out_a[k], out_b[k])
    if spec.random_init:
        c = spec.make(seed=4)
        assert any(not np.array_equal(a.params[k], c.params[k]) for k in a.params)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_dtype_kept(name, dtype):
    spec, m, d = _fresh(name, dtype=dtype)
    assert m.dtype == dtype and all(p.dtype == dtype for p in m.params.values())
    assert spec.output(m, d).dtype == dtype
    if spec.grads is not None:
        loss, grads = spec.grads(m, d)
        assert isinstance(loss, float)
        assert all(g.dtype == dtype for g in grads.values())
    with pytest.raises(ValueError, match="dtype: expected float32 or float64"):
        spec.make(dtype=np.int64)


@pytest.mark.parametrize("name", [n for n in NAMES if SPECS[n].grads is not None])
def test_gradient_keys_and_shapes_equal_params(name):
    spec, m, d = _fresh(name)
    _, grads = spec.grads(m, d)
    assert list(grads) == list(m.params)
    assert all(grads[k].shape == m.params[k].shape for k in m.params)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "numpy"])
@pytest.mark.parametrize("name", NAMES)
def test_backends_agree(name, backend):
    spec, ref, d = _fresh(name, backend="numpy")
    _, other, _ = _fresh(name, backend=backend)
    want, got = spec.run(ref, d), spec.run(other, d)
    assert want.keys() == got.keys()
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-10, err_msg=k)


@pytest.mark.parametrize("name", NAMES)
def test_non_finite_params_are_refused(name):
    spec, m, d = _fresh(name)
    key = list(m.params)[-1]
    for bad in (np.nan, np.inf):
        m.params[key].flat[0] = bad
        with pytest.raises(ValueError, match=rf"params\['{key}'\]: expected finite values"):
            spec.output(m, d)
        if spec.grads is not None:
            with pytest.raises(ValueError, match=rf"params\['{key}'\]: expected finite values"):
                spec.grads(m, d)


@pytest.mark.parametrize("name", NAMES)
def test_bad_params_are_refused_with_their_name(name):
    spec, m, d = _fresh(name)
    key = list(m.params)[0]
    good = m.params[key]
    if name == "SynapseChain":  # its params are a view of the state it owns
        m.u = m.u.astype(np.float32)
    else:
        m.params[key] = good.astype(np.float32)
    with pytest.raises(ValueError, match=rf"params\['{key}'\]: expected a float64 array .* dtype float32"):
        spec.output(m, d)
    if name == "SynapseChain":
        m.u = np.zeros((4, *m.shape))
    else:
        m.params[key] = np.zeros(good.shape + (1,))
    with pytest.raises(ValueError, match=rf"params\['{key}'\]: expected a float64 array of shape"):
        spec.output(m, d)


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_refused_with_its_name(name):
    spec, m, d = _fresh(name)
    x = _input(spec, d).copy()
    x.flat[1] = np.nan
    with pytest.raises(ValueError, match=rf"{spec.input_name}: expected finite values"):
        spec.output(m, _with_input(d, x))
    for call, message in spec.bad_input(m, d):
        with pytest.raises(ValueError, match=message):
            call()


@pytest.mark.parametrize("name", NAMES)
def test_config_rebuilds_the_architecture(name):
    _, m, _ = _fresh(name, seed=5, dtype=np.float32)
    json.dumps(m.config())                                    # plain values only
    twin = type(m)(**m.config())
    assert repr(twin) == repr(m)
    assert {k: (p.shape, p.dtype) for k, p in twin.params.items()} == \
        {k: (p.shape, p.dtype) for k, p in m.params.items()}


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip(name, tmp_path):
    spec, m, d = _fresh(name, seed=2)
    spec.run(m, d)                                            # trained or advanced: not the initial state
    path = tmp_path / "model.npz"
    checkpoint.save(m, path)
    back = checkpoint.load(path)
    assert type(back) is type(m) and back.config() == m.config()
    for k in m.params:
        assert back.params[k].dtype == m.params[k].dtype
        np.testing.assert_array_equal(back.params[k], m.params[k])
    np.testing.assert_array_equal(spec.output(back, d), spec.output(m, d))
    assert checkpoint.load(path, backend="numpy").backend == "numpy"


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_refuses_files_that_do_not_fit(name, tmp_path):
    _, m, _ = _fresh(name)
    path = tmp_path / "m.npz"
    checkpoint.save(m, path)
    with np.load(path) as f:
        files = dict(f)
    first = next(k for k in files if k.startswith("param/"))
    broken = {
        "missing": {k: a for k, a in files.items() if k != first},
        "shape": {**files, first: np.zeros(files[first].shape + (2,))},
        "dtype": {**files, first: files[first].astype(np.float32)},
        "extra": {**files, "param/evil": np.zeros(1)},
        "class": {**files, "header": np.array(json.dumps({"format": 1, "class": "os.system",
                                                          "config": {}}))},
    }
    for what, arrays in broken.items():
        np.savez(tmp_path / f"{what}.npz", **arrays)
        with pytest.raises(ValueError, match="path: "):
            checkpoint.load(tmp_path / f"{what}.npz")


def test_checkpoint_never_unpickles(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, header=np.array([{"class": "RNN"}], dtype=object))
    with pytest.raises(ValueError, match="path: .* object arrays"):
        checkpoint.load(path)
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(ValueError, match="path: expected a .npz checkpoint"):
        checkpoint.load(tmp_path / "single.npy")
    with pytest.raises(ValueError, match="model: expected one of the library's models"):
        checkpoint.save(object(), path)


def test_checkpoint_save_is_atomic(tmp_path, monkeypatch):
    m = RNN(2, 3, 1, seed=0)
    path = tmp_path / "m.npz"
    checkpoint.save(m, path)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(RNN(2, 3, 1, seed=1), path)
    assert path.read_bytes() == before                       # the old checkpoint is intact
    assert os.listdir(tmp_path) == ["m.npz"]                 # and no temporary file is left


@pytest.mark.parametrize("cls", [RNN, LSTM])
def test_recurrent_models_take_a_task(cls):
    """Defect 2: the loss and mask come from the Task; with arrays, the loss must be given."""
    task = tasks.copy(delay=3, n_symbols=2, batch=4, seed=0)
    model = cls(task.n_in, 6, task.n_out, seed=0)
    assert task.loss == "xent" and task.mask.min() == 0
    loss, grads = model.loss_and_grads(task)
    same_loss, same = model.loss_and_grads(task.xs, task.targets, loss=task.loss, mask=task.mask)
    assert loss == same_loss and all(np.array_equal(grads[k], same[k]) for k in grads)
    assert model.loss(task) == pytest.approx(loss, rel=1e-12)
    wrong, _ = model.loss_and_grads(task.xs, task.targets, loss="mse")   # the old silent default
    assert wrong != pytest.approx(loss)
    with pytest.raises(ValueError, match="loss: expected one of .*no default"):
        model.loss_and_grads(task.xs, task.targets)
    with pytest.raises(ValueError, match="loss: expected one of .*no default"):
        model.loss(task.xs, task.targets, mask=task.mask)
    with pytest.raises(ValueError, match="loss, mask: a Task carries its own"):
        model.loss_and_grads(task, loss="mse")
    with pytest.raises(ValueError, match="targets: expected target arrays"):
        model.loss_and_grads(task.xs)
