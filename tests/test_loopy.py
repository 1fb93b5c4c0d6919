"""The leaky network on a sparse graph (loopy_edu.loopy): it is the dense RNN of Part II with the
absent synapses held at zero, its sparse BPTT is that RNN's gradient read at the graph's edges and
agrees with finite differences, and the numpy / numba / cuda backends agree.

The cuda backend runs in Numba's simulator when there is no GPU (tests/conftest.py), at tiny sizes.
"""
import numpy as np
import pytest
from scipy import sparse

from loopy_edu import checkpoint, graphs, tasks
from loopy_edu.backend import available_backends
from loopy_edu.bptt import bptt
from loopy_edu.gradcheck import check_grads
from loopy_edu.loopy import UNIT_CODES, LoopyNetwork
from loopy_edu.rnn import RNN

BACKENDS = available_backends()


def problem(alpha=0.6, activation="tanh", N=6, k=2, T=5, B=3, loss="mse", dtype=np.float64,
            seed=0, **kwargs):
    """A small network with perturbed weights and biases, and a masked batch of sequences."""
    model = LoopyNetwork(2, N, 3, k=k, alpha=alpha, activation=activation, seed=seed,
                         dtype=dtype, backend="numpy", **kwargs)
    rng = np.random.default_rng(seed + 1)
    for p in model.params.values():
        p += (0.3 * rng.standard_normal(p.shape)).astype(dtype)
    xs = rng.standard_normal((T, B, 2)).astype(dtype)
    if loss == "mse":
        targets = rng.standard_normal((T, B, 3)).astype(dtype)
    else:
        targets = np.eye(3, dtype=dtype)[rng.integers(0, 3, (T, B))]
    mask = (rng.random((T, B)) < 0.7).astype(dtype)
    mask[-1] = 1.0
    return model, xs, targets, mask


def dense_twin(model):
    """The Part II RNN with the same weights: W_rec = the graph, densified."""
    rnn = RNN(model.n_in, model.n_rec, model.n_out, alpha=model.alpha,
              activation=model.activation, backend="numpy")
    rnn.params = {k: model.params[k].copy() for k in ("W_in", "b_rec", "W_out", "b_out")}
    rnn.params["W_rec"] = model.graph.toarray()
    rnn.params = {k: rnn.params[k] for k in ("W_in", "W_rec", "b_rec", "W_out", "b_out")}
    return rnn


def edges(G):
    """(i, j) of every synapse j -> i, in CSR order."""
    return np.repeat(np.arange(G.shape[0]), np.diff(G.indptr)), G.indices


def rel(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


def test_params_graph_and_init():
    m = LoopyNetwork(3, 20, 2, k=4, spectral_radius=0.8, input_scale=0.5, seed=1)
    assert list(m.params) == ["W_in", "W_rec", "b_rec", "W_out", "b_out"]
    G = m.graph
    assert isinstance(G, sparse.csr_array) and G.shape == (20, 20) and G.nnz == 80
    assert G.data is m.params["W_rec"]                     # one array, not a copy
    assert np.all(np.diff(G.indptr) == 4) and np.all(G.diagonal() == 0)
    assert graphs.spectral_radius(G) == pytest.approx(0.8, rel=1e-10)
    ref = graphs.scale_spectral_radius(graphs.fixed_in_degree(20, 4, seed=1), 0.8)
    assert np.array_equal(G.indices, ref.indices) and np.array_equal(G.data, ref.data)
    m.params["W_rec"] *= 2                                 # an optimizer's in-place update
    assert graphs.spectral_radius(m.graph) == pytest.approx(1.6, rel=1e-10)
    assert np.all(m.params["b_rec"] == 0) and np.all(m.params["b_out"] == 0)
    assert 0.3 < m.params["W_in"].std() < 0.7              # N(0, 1) · input_scale


def test_a_given_graph_is_used_as_given():
    W = graphs.ring(5, weight=1.7)
    m = LoopyNetwork(1, 5, 1, graph=W, spectral_radius=0.5)
    assert np.array_equal(m.graph.toarray(), W.toarray())  # not rescaled
    W.data[:] = 0.0                                        # the model holds its own copy
    assert np.all(m.params["W_rec"] == 1.7)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_states_equal_the_dense_rnn(backend, activation):
    model, xs, _, _ = problem(activation=activation)
    want = dense_twin(model).forward(xs, "numpy")[0]
    assert rel(model.forward(xs, backend)[0], want) <= 1e-12


@pytest.mark.parametrize("loss", ["mse", "xent"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_sparse_bptt_is_the_dense_gradient_read_at_the_edges(loss, activation):
    model, xs, targets, mask = problem(activation=activation, loss=loss)
    value, grads = model.loss_and_grads(xs, targets, loss=loss, mask=mask)
    ref_value, ref = bptt(dense_twin(model), xs, targets, loss, mask, backend="numpy")
    assert value == pytest.approx(ref_value, rel=1e-12)
    i, j = edges(model.graph)
    assert grads["W_rec"].shape == (model.graph.nnz,)
    assert rel(grads["W_rec"], ref["W_rec"][i, j]) <= 1e-10
    for k in ("W_in", "b_rec", "W_out", "b_out"):
        assert rel(grads[k], ref[k]) <= 1e-10, k


@pytest.mark.parametrize("alpha, activation", [
    (0.6, "tanh"), (np.array([1.0, 0.2, 0.5, 0.9, 0.05, 0.7]), "tanh"), (0.6, "linear")])
@pytest.mark.parametrize("backend", BACKENDS)
def test_bptt_matches_finite_differences(backend, alpha, activation):
    model, xs, targets, mask = problem(alpha=alpha, activation=activation)
    errors = check_grads(model, xs, targets, loss="mse", mask=mask, backend=backend,
                         max_entries=20)
    assert max(errors.values()) <= 1e-7, errors


@pytest.mark.parametrize("activation, act", [("tanh", np.tanh), ("linear", lambda u: u)])
def test_per_unit_alpha_follows_a_hand_loop(activation, act):
    alpha = np.array([1.0, 0.2, 0.5, 0.9, 0.05, 0.7])
    model, xs, _, _ = problem(alpha=alpha, activation=activation)
    W, (T, B, _) = model.graph.toarray(), xs.shape
    hs = np.zeros((T + 1, B, 6))                           # hs[t + 1] = h_t, from h_0 = 0
    for t in range(T):
        for b in range(B):
            for i in range(6):
                u = W[i] @ hs[t, b] + model.params["W_in"][i] @ xs[t, b] + model.params["b_rec"][i]
                hs[t + 1, b, i] = (1 - alpha[i]) * hs[t, b, i] + alpha[i] * act(u)
    for backend in BACKENDS:
        assert rel(model.forward(xs, backend)[0], hs[1:]) <= 1e-12, backend


@pytest.mark.parametrize("alpha", [0.6, np.linspace(0.1, 1.0, 6)])
@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "numpy"])
def test_backends_agree(backend, alpha):
    model, xs, targets, mask = problem(alpha=alpha, loss="xent")
    want_value, want = model.loss_and_grads(xs, targets, loss="xent", mask=mask)
    value, got = model.loss_and_grads(xs, targets, loss="xent", mask=mask, backend=backend)
    assert value == pytest.approx(want_value, rel=1e-10)
    for k in want:
        assert got[k].shape == want[k].shape and rel(got[k], want[k]) <= 1e-10, k
    assert rel(model.states(xs, backend), model.states(xs, "numpy")) <= 1e-10


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_runs_close_to_float64(backend):
    m64, xs, targets, mask = problem()
    m32 = LoopyNetwork(2, 6, 3, k=2, alpha=0.6, dtype=np.float32, backend=backend)
    for k, p in m64.params.items():
        m32.params[k][...] = p
    _, g64 = m64.loss_and_grads(xs, targets, loss="mse", mask=mask)
    _, g32 = m32.loss_and_grads(*(a.astype(np.float32) for a in (xs, targets)), loss="mse",
                                mask=mask.astype(np.float32))
    assert all(g32[k].dtype == np.float32 and rel(g32[k], g64[k]) < 1e-4 for k in g64)


def test_takes_a_task():
    task = tasks.copy(delay=3, n_symbols=2, batch=4, seed=0)
    model = LoopyNetwork(task.n_in, 6, task.n_out, k=2, seed=0)
    loss, grads = model.loss_and_grads(task)
    same_loss, same = model.loss_and_grads(task.xs, task.targets, loss=task.loss, mask=task.mask)
    assert loss == same_loss and all(np.array_equal(grads[k], same[k]) for k in grads)
    assert model.loss(task) == pytest.approx(loss, rel=1e-12)
    with pytest.raises(ValueError, match="loss: expected one of .*no default"):
        model.loss_and_grads(task.xs, task.targets)


@pytest.mark.parametrize("alpha", [0.5, [0.5, 1.0, 0.25, 0.75, 1.0]])
def test_a_given_graph_round_trips(tmp_path, alpha):
    W = sparse.csr_array(np.triu(np.arange(1.0, 26.0).reshape(5, 5), 1) / 30)   # a DAG
    m = LoopyNetwork(2, 5, 1, graph=W, alpha=alpha, activation="linear", seed=3)
    m.params["W_rec"] += 0.25
    checkpoint.save(m, tmp_path / "m.npz")
    back = checkpoint.load(tmp_path / "m.npz")
    assert back.config() == m.config() and repr(back) == repr(m)
    assert (back.graph != m.graph).nnz == 0
    assert np.array_equal(back.graph.indices, m.graph.indices)
    xs = np.random.default_rng(0).standard_normal((4, 2))
    np.testing.assert_array_equal(back.predict(xs), m.predict(xs))
    twin = LoopyNetwork(**m.config())
    assert np.array_equal(twin.graph.indptr, m.graph.indptr)
    assert np.array_equal(twin.graph.indices, m.graph.indices)


@pytest.mark.parametrize("kwargs, match", [
    (dict(graph=sparse.csr_array(np.ones((5, 4)))), r"graph: expected a square graph"),
    (dict(graph=sparse.csr_array(np.ones((4, 4)))), r"graph: expected shape \(5, 5\)"),
    (dict(graph=sparse.csr_array(np.array([[0, np.nan], [1.0, 0]]))), r"graph: expected"),
    (dict(graph=sparse.csr_array((np.ones(2), np.array([0, 7]), np.array([0, 1, 2, 2, 2, 2])),
                                 shape=(5, 5))), r"graph: expected indices in \[0, 4\]"),
    (dict(graph={"indptr": [0, 1]}), r"graph: expected a scipy.sparse array"),
    (dict(graph={"indptr": [0, 1], "indices": [0]}), r"graph: expected 'indptr' of length"),
    (dict(k=-1), r"k: expected a positive integer"),
    (dict(k=5), r"k: expected an integer in \[1, n_rec - 1\]"),
    (dict(spectral_radius=-0.5), r"spectral_radius: expected a finite number"),
    (dict(alpha=0.0), r"alpha: expected a finite number in \(0, 1\]"),
    (dict(alpha=1.5), r"alpha: expected a finite number in \(0, 1\]"),
    (dict(alpha=[0.5, 0.5]), r"alpha: expected shape \(5,\)"),
    (dict(alpha=[0.5, 0.5, 0.0, 0.5, 0.5]), r"alpha: expected every entry in \(0, 1\]"),
    (dict(alpha=[0.5, 0.5, np.nan, 0.5, 0.5]), r"alpha: expected finite values"),
    (dict(input_scale=-1.0), r"input_scale: expected a finite number"),
    (dict(activation="softplus"), r"activation: expected one of"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LoopyNetwork(2, 5, 1, **{"k": 2, **kwargs})


def test_bad_graphs_and_params_are_refused():
    with pytest.raises(TypeError, match="graph: expected a scipy.sparse array"):
        LoopyNetwork(2, 3, 1, graph=np.ones((3, 3)))
    with pytest.raises(ValueError, match="n_rec: expected at least 2"):
        LoopyNetwork(2, 1, 1, k=1)
    model, xs, targets, mask = problem()
    model.params["W_rec"] = model.params["W_rec"][:-1]
    with pytest.raises(ValueError, match=r"params\['W_rec'\]: expected a float64 array"):
        model.loss_and_grads(xs, targets, loss="mse", mask=mask)


@pytest.mark.parametrize("backend", ["numba", "cuda"])
def test_the_static_run_gives_the_states_of_the_forward_pass(backend):
    """states() runs the kernels' static step (no activations kept, a vectorised tanh): the
    forward pass's states to round-off."""
    from loopy_edu.backend import kernels
    m = LoopyNetwork(2, 7, 1, k=3, alpha=0.4, seed=1, backend=backend)
    xs = np.random.default_rng(0).standard_normal((6, 3, 2))
    args = (m.params["W_in"], m.params["W_rec"], *m.kernel_index, m.params["b_rec"], xs,
            m.leaks(), UNIT_CODES["tanh"])
    hs, acts = kernels("loopy", backend).forward(*args)
    assert acts.shape == (6, 3, 7)
    np.testing.assert_allclose(m.states(xs), hs, rtol=0, atol=1e-14)
