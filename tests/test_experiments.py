"""The course's registered experiments (loopy_edu.experiments) measure what their chapters say:
here, memory capacity's textbook facts on loopy networks (Part IV), each able to fail."""
import numpy as np
import pytest

from loopy_edu import sweep

MC = sweep.get("loopy_mc").fn


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_linear_ring_with_random_sign_inputs_remembers_almost_n_steps(seed):
    """A uniform ring with weight r < 1 and input signs without a period is controllable: its
    capacity approaches N (Rodan & Tino 2011; the issue's target MC >= 0.95 N)."""
    out = MC(seed, n=100, graph="ring", activation="linear", inputs="random_sign")
    assert 0.95 * 100 <= out["mc"] <= 100 * 1.02


def test_a_ring_with_equal_inputs_remembers_one_step_in_all():
    """All input weights equal: the input drives only the ring's uniform mode (P 1 = 1), a
    one-dimensional Krylov space, so MC = 1. That one mode is x(t) = sum_k r^k u(t - k), whose
    squared correlation with u(t - k) is (1 - r^2) r^(2(k-1)): the one unit of capacity is
    spread over the delays."""
    r = 0.95
    out = MC(0, n=100, graph="ring", spectral_radius=r, activation="linear", inputs="equal")
    assert abs(out["mc"] - 1) < 0.1
    k = np.arange(1, 31)
    np.testing.assert_allclose(out["mc_k"][:30], (1 - r**2) * r ** (2 * (k - 1)), atol=0.02)


@pytest.mark.parametrize("graph", ["fixed_in_degree", "erdos_renyi", "small_world"])
def test_random_graphs_stay_below_n_and_tanh_below_linear(graph):
    lin = MC(0, n=60, graph=graph, activation="linear", steps=8000)
    sat = MC(0, n=60, graph=graph, activation="tanh", steps=8000)
    assert 0 < sat["mc"] < lin["mc"] <= 60 * 1.02
    assert lin["mc_k"].shape == (120,)


COPY = sweep.get("loopy_copy").fn
SMALL = dict(n=150, train=200, test=50)


def test_a_ring_longer_than_the_delay_recalls_every_symbol():
    """A ring of weight 1 passes each input around unchanged: after `delay` + 10 steps the
    symbol sits at a fixed offset, so one linear readout recalls all ten, in every position."""
    out = COPY(0, delay=100, graph="ring", spectral_radius=1.0, **SMALL)
    assert out["accuracy"] == 1.0 and np.all(out["accuracy_by_position"] == 1.0)


def test_a_random_graph_forgets_with_the_delay():
    short = COPY(0, delay=20, **SMALL)["accuracy"]
    long = COPY(0, delay=300, **SMALL)["accuracy"]
    assert long < short and long < 0.6 and short > 0.5
    assert long > 1 / 8 - 0.05                          # chance is 1/8
