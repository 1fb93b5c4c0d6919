"""Sparse RFLO and e-prop on the loopy network (loopy_edu.loopy_rflo): they are Chapter 9's
dense rules read at the graph's synapses, the numpy / numba / cuda backends agree for the
estimate and for the plastic step, bad input is refused by name, and the rule trains.

The cuda backend runs in Numba's simulator when there is no GPU (tests/conftest.py), at tiny
sizes.
"""
import copy

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import sparse

from loopy_edu import graphs, loopy_rflo, rflo as dense, tasks
from loopy_edu.backend import available_backends
from loopy_edu.loopy import LoopyNetwork
from loopy_edu.optim import Adam
from loopy_edu.rflo import random_feedback
from loopy_edu.train import train_sequences

from test_loopy import dense_twin, edges, problem, rel

COMPILED = [b for b in available_backends() if b != "numpy"]
RULES = {"rflo": loopy_rflo.rflo, "eprop": loopy_rflo.eprop}


def looped_graph(N, k, seed, units):
    """A fixed in-degree graph plus self-loops on ``units``, so that e-prop's decay differs from
    RFLO's there and not elsewhere."""
    loops = sparse.csr_array((np.linspace(-0.8, 0.8, len(units)), (units, units)), shape=(N, N))
    return graphs.fixed_in_degree(N, k, seed=seed) + loops


def assert_close(got, want, tol=1e-10):
    assert got[0] == pytest.approx(want[0], rel=tol)
    for k in want[1]:
        assert got[1][k].shape == want[1][k].shape, k
        assert rel(got[1][k], want[1][k]) <= tol, k


@settings(max_examples=15, deadline=None)
@given(N=st.integers(3, 7), seed=st.integers(0, 10**6), alpha=st.floats(0.1, 1.0),
       rule=st.sampled_from(sorted(RULES)), loss=st.sampled_from(["mse", "xent"]),
       activation=st.sampled_from(["tanh", "sigmoid"]))
def test_sparse_rules_are_the_dense_rules_read_at_the_synapses(N, seed, alpha, rule, loss,
                                                              activation):
    G = looped_graph(N, 2, seed, units=np.arange(0, N, 2))
    model, xs, targets, mask = problem(N=N, graph=G, alpha=alpha, activation=activation,
                                       loss=loss, T=4, B=2, seed=seed)
    B = random_feedback(model, seed=seed + 1)
    value, grads = RULES[rule](model, xs, targets, B, loss, mask, backend="numpy")
    want_value, want = getattr(dense, rule)(dense_twin(model), xs, targets, B, loss, mask,
                                            backend="numpy")
    i, j = edges(model.graph)
    assert value == pytest.approx(want_value, rel=1e-12)
    assert rel(grads["W_rec"], want["W_rec"][i, j]) <= 1e-10
    for k in ("W_in", "b_rec", "W_out", "b_out"):
        assert rel(grads[k], want[k]) <= 1e-10, k


def test_symmetric_eprop_and_the_self_loops_matter():
    """B=None feeds back through W_outᵀ, as in the dense rule; on a graph with self-loops
    e-prop's estimate is not RFLO's (else the test above could not tell them apart)."""
    model, xs, targets, mask = problem(N=5, graph=looped_graph(5, 2, 0, units=[1, 3]))
    got = loopy_rflo.eprop(model, xs, targets, None, "mse", mask, backend="numpy")
    want = dense.eprop(dense_twin(model), xs, targets, None, "mse", mask, backend="numpy")
    i, j = edges(model.graph)
    assert rel(got[1]["W_rec"], want[1]["W_rec"][i, j]) <= 1e-10
    B = model.params["W_out"].T.copy()
    r = loopy_rflo.rflo(model, xs, targets, B, "mse", mask, backend="numpy")[1]["W_rec"]
    assert rel(r, got[1]["W_rec"]) > 1e-3


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("rule,loss,activation",
                         [("rflo", "mse", "tanh"), ("eprop", "xent", "linear")])
def test_backends_agree_on_the_estimate(backend, rule, loss, activation):
    model, xs, targets, mask = problem(N=4, k=2, T=3, B=2, loss=loss, activation=activation,
                                       graph=looped_graph(4, 2, 1, units=[0, 2]),
                                       alpha=[0.3, 0.6, 0.9, 1.0])
    B = random_feedback(model, seed=2)
    assert_close(RULES[rule](model, xs, targets, B, loss, mask, backend=backend),
                 RULES[rule](model, xs, targets, B, loss, mask, backend="numpy"))


def test_numba_keeps_float32_and_takes_unbatched_sequences():
    model, xs, targets, _ = problem(N=6, k=2, T=5, B=1, dtype=np.float32)
    B = random_feedback(model)
    got = loopy_rflo.rflo(model, xs[:, 0], targets[:, 0], B, "mse", backend="numba")
    want = loopy_rflo.rflo(model, xs[:, 0], targets[:, 0], B, "mse", backend="numpy")
    assert all(g.dtype == np.float32 for g in got[1].values())
    assert_close(got, want, tol=1e-5)


def run_plastic(model, xs, targets, mask, B, backend, splits):
    """The plastic step over xs in the given chunks of steps, carrying the state across them;
    returns the losses, the final params and the final state."""
    model = copy.deepcopy(model)
    state = loopy_rflo.zero_state(model, xs.shape[1])
    losses = [loopy_rflo.plastic_step(model, xs[a:b], targets[a:b], B, "mse", 0.2, state,
                                      mask[a:b], self_term=B is None, backend=backend)
              for a, b in zip(splits[:-1], splits[1:])]
    return losses, model.params, state


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("symmetric", [False, True])
def test_backends_agree_on_the_plastic_step(backend, symmetric):
    model, xs, targets, mask = problem(N=4, k=2, T=3, B=2, alpha=0.7,
                                       graph=looped_graph(4, 2, 3, units=[1]))
    B = None if symmetric else random_feedback(model, seed=4)
    got = run_plastic(model, xs, targets, mask, B, backend, [0, 1, 3])
    want = run_plastic(model, xs, targets, mask, B, "numpy", [0, 1, 3])
    assert got[0] == pytest.approx(want[0], rel=1e-10)
    for k in model.params:
        assert rel(got[1][k], want[1][k]) <= 1e-10, k
        assert rel(got[1][k], model.params[k]) > 1e-3, k                # the weights did learn
    for part, ref in zip(got[2], want[2]):
        assert rel(part, ref) <= 1e-10


def test_one_plastic_step_applies_one_step_of_the_estimate():
    model, xs, targets, mask = problem(N=6, k=3, T=1, B=3)
    B = random_feedback(model, seed=1)
    value, grads = loopy_rflo.rflo(model, xs, targets, B, "mse", mask, backend="numpy")
    losses, params, (h, _, _) = run_plastic(model, xs, targets, mask, B, "numpy", [0, 1])
    assert losses[0] == pytest.approx(value, rel=1e-12)
    for k in grads:
        assert rel(params[k], model.params[k] - 0.2 * grads[k]) <= 1e-12, k
    assert rel(h, model.states(xs, backend="numpy")[-1]) <= 1e-12


def test_plastic_step_over_many_steps_matches_numba_with_a_larger_graph():
    model, xs, targets, mask = problem(N=30, k=5, T=40, B=3, alpha=0.5)
    B = random_feedback(model, seed=1)
    got = run_plastic(model, xs, targets, mask, B, "numba", [0, 17, 40])
    want = run_plastic(model, xs, targets, mask, B, "numpy", [0, 17, 40])
    assert got[0] == pytest.approx(want[0], rel=1e-10)
    for k in model.params:
        assert rel(got[1][k], want[1][k]) <= 1e-10, k


def test_bad_inputs_are_refused_by_name():
    model, xs, targets, mask = problem(N=5, k=2, T=3, B=2)
    B = random_feedback(model)
    with pytest.raises(ValueError, match=r"^B: expected shape \(5, 3\)"):
        loopy_rflo.rflo(model, xs, targets, B[:4], "mse", mask)
    with pytest.raises(ValueError, match="^B: expected finite"):
        loopy_rflo.eprop(model, xs, targets, np.full_like(B, np.nan), "mse", mask)
    with pytest.raises(ValueError, match="^xs: "):
        loopy_rflo.rflo(model, xs[..., :1], targets, B, "mse", mask)
    with pytest.raises(ValueError, match="^loss: "):
        loopy_rflo.rflo(model, xs, targets, B, "l1", mask)
    with pytest.raises(ValueError, match="^backend: "):
        loopy_rflo.rflo(model, xs, targets, B, "mse", mask, backend="gpu")
    with pytest.raises(ValueError, match="^batch: "):
        loopy_rflo.zero_state(model, 0)
    state = loopy_rflo.zero_state(model, 2)
    with pytest.raises(ValueError, match="^lr: "):
        loopy_rflo.plastic_step(model, xs, targets, B, "mse", -0.1, state, mask)
    with pytest.raises(ValueError, match=r"^state: expected h .* shape \(3, 5\)"):
        loopy_rflo.plastic_step(model, xs[:, :1].repeat(3, 1), targets[:, :1].repeat(3, 1),
                                B, "mse", 0.1, state)
    with pytest.raises(ValueError, match="^state: expected a tuple"):
        loopy_rflo.plastic_step(model, xs, targets, B, "mse", 0.1, list(state), mask)
    model.params["W_rec"] = model.params["W_rec"][:-1]
    with pytest.raises(ValueError, match=r"^params\['W_rec'\]"):
        loopy_rflo.rflo(model, xs, targets, B, "mse", mask)


def test_rflo_trains_the_loopy_network_beyond_its_readout():
    """Generating two sines: sparse RFLO by train_sequences lowers the loss well below where
    training the readout alone (the plasticity-off control) gets in the same updates."""
    task = tasks.sines(60, n_sines=2, periods=[20, 30], seed=0)
    final = {}
    for plastic in (True, False):
        model = LoopyNetwork(1, 40, 1, k=6, alpha=0.5, spectral_radius=0.9, seed=0)
        B = random_feedback(model, seed=1)

        def rule(m, xs, targets, loss, mask):
            value, grads = loopy_rflo.rflo(m, xs, targets, B, loss, mask)
            if not plastic:
                for k in ("W_in", "W_rec", "b_rec"):
                    grads[k][...] = 0.0
            return value, grads

        hist = train_sequences(model, lambda s: task, Adam(0.003), 300, grad_fn=rule,
                               progress=False)
        final[plastic] = np.mean(hist.loss[-10:])
    assert final[True] < 0.25 * hist.loss[0]
    assert final[True] < 0.5 * final[False]
