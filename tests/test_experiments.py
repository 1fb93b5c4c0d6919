"""The course's registered experiments (loopy_edu.experiments) measure what their chapters say:
here, memory capacity's textbook facts on loopy networks (Part IV), each able to fail."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from loopy_edu import experiments, gates, sweep
from loopy_edu.lstm import LSTM

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


VS = sweep.get("loopy_vs_lstm").fn
TINY = dict(n=50, train=100, val=25, test=50)


def test_a_ring_longer_than_the_delay_recalls_every_symbol_and_a_fresh_lstm_nothing():
    """The ring of weight 1 shifts each input along unchanged, so at delay 100 one linear
    readout still finds all ten symbols; the LSTM's forget gate at bias 0 is σ(0) = 1/2 when
    no input comes, so after 100 steps its memory is 2^-100 of what it was: chance (1/8)."""
    ring = VS(0, model="loopy", graph="ring", activation="linear", spectral_radius=1.0,
              **{**TINY, "n": 150})
    assert ring["score"] == 1.0 and ring["val_score"] == 1.0
    lstm = VS(0, model="lstm", **TINY)
    assert lstm["score"] < 0.2 and lstm["val_score"] < 0.2


def test_a_larger_forget_bias_keeps_more_of_the_sequence():
    """At bias 3 the forget gate starts near σ(3) = 0.95: the LSTM keeps a trace over the
    delay (Gers et al.), which the readout finds above chance."""
    assert VS(0, model="lstm", forget_bias=3.0, **TINY)["score"] > 0.2


@pytest.mark.parametrize("model", ["loopy", "lstm"])
def test_memory_capacity_stays_within_n_and_without_input_is_zero(model):
    out = VS(0, model=model, task="mc", n=50, steps=2000)
    assert 1 < out["score"] <= 50 * 1.02 and out["mc_k"].shape == (100,)
    assert out["reg"] in experiments.RELATIVE_REGS
    # No input, no state: both networks stay at 0 (every bias but the forget gate's is 0), and
    # the readout keeps only its bias, a constant (up to the round-off of its mean).
    assert VS(0, model=model, task="mc", n=50, steps=2000, input_scale=0.0)["score"] < 1e-12


def test_cued_recall_reads_one_step_per_sequence():
    out = VS(0, model="loopy", task="cued", **TINY)
    assert 0 <= out["score"] <= 1 and out["reg"] in experiments.RELATIVE_REGS


def test_a_forget_bias_on_the_loopy_network_is_refused():
    with pytest.raises(ValueError, match="forget_bias"):
        VS(0, model="loopy", forget_bias=1.0, **TINY)


# ch. 12, cued recall and selective copying -------------------------------------------------

GATE = sweep.get("cued_gate").fn
LSTM_CUED = sweep.get("lstm_cued").fn
LSTM_SELECTIVE = sweep.get("lstm_selective_copy").fn
GATE_SMALL = dict(n=100, batch=20, eval_every=100, test=200)


def test_the_slot_holds_the_first_or_the_last_write_and_zeros_without_one():
    hs = np.arange(4 * 3 * 2, dtype=float).reshape(4, 3, 2)          # (T, B, N)
    writes = np.array([[0, 0, 0], [1, 0, 0], [1, 0, 1], [0, 0, 1]])
    held = gates.slot(hs, writes)
    np.testing.assert_array_equal(held, [hs[1, 0], [0.0, 0.0], hs[2, 2]])
    np.testing.assert_array_equal(gates.slot(hs, writes, keep="last"),
                                  [hs[2, 0], [0.0, 0.0], hs[3, 2]])
    assert hs[1, 1].sum() != 0                                          # hs is left alone


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(gates.KEEPS))
def test_the_three_factor_rule_is_reward_times_the_eligibility_of_decisions_that_mattered(
        seed, keep):
    """Against a loop over each sequence's steps that stops at its first write (keep="first"),
    or runs backwards and stops at its last (keep="last")."""
    rng = np.random.default_rng(seed)
    T, B, M = 6, 4, 3
    z, g = rng.standard_normal((T, B, M)), rng.random((T, B))
    writes, reward = rng.random((T, B)) < 0.3, rng.integers(0, 2, B).astype(float)
    want = np.zeros(M)
    for b in range(B):
        for t in (range(T) if keep == "first" else reversed(range(T))):
            want += 0.5 * (reward[b] - 0.25) * (writes[t, b] - g[t, b]) * z[t, b] / B
            if writes[t, b]:
                break
    got = gates.three_factor_update(z, g, writes, reward, 0.25, 0.5, keep)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    # A reward equal to its baseline teaches nothing, whatever the gate did.
    assert not gates.three_factor_update(z, g, writes, np.full(B, 0.25), 0.25, 0.5).any()


def test_the_gate_inputs_are_the_input_the_state_and_a_constant():
    xs, hs = np.ones((5, 2, 3)), np.full((5, 2, 4), 0.5)
    z = gates.gate_inputs(xs, hs)
    assert z.shape == (5, 2, 8) and np.all(z[..., -1] == 1) and np.all(z[..., 3:7] == 0.5)
    np.testing.assert_allclose(gates.gate_probability(np.zeros(8), z), 0.5)


def test_the_hand_wired_gate_recalls_every_cued_symbol_within_200_sequences():
    """The cue flag writes the state of the cue step into the slot; that state is dominated by
    the symbol just seen, so a linear readout decodes it, whatever the delay."""
    out = GATE(0, gate="hand", T=10, sequences=200, **GATE_SMALL)
    assert out["accuracy"] >= 0.95 and out["cue_held"] == 1.0 and out["writes"] == 1.0
    np.testing.assert_array_equal(out["sequences_seen"], [100, 200])
    assert out["curve"].shape == out["train_reward"].shape == (2,)


def test_without_a_gate_the_fixed_network_is_near_chance_at_delay_60():
    out = GATE(0, gate="off", T=60, sequences=400, **GATE_SMALL)
    assert out["accuracy"] < 0.3 and out["writes"] == 0.0


def test_a_gate_learned_by_reward_times_eligibility_holds_the_cue():
    out = GATE(1, gate="learned", T=20, sequences=1000, **GATE_SMALL)
    assert out["accuracy"] >= 0.9 and out["cue_held"] >= 0.9
    assert out["train_reward"][0] < out["train_reward"][-1]


def test_a_short_run_is_the_prefix_of_a_long_one():
    """What sweep.replay relies on (quick settings, curves compared as a prefix)."""
    short = GATE(2, gate="learned", T=5, sequences=200, **GATE_SMALL)
    long = GATE(2, gate="learned", T=5, sequences=300, **GATE_SMALL)
    np.testing.assert_array_equal(short["curve"], long["curve"][:2])
    a = LSTM_CUED(0, T=3, sequences=64, batch=16, eval_every=24, hidden=5, test=20)
    b = LSTM_CUED(0, T=3, sequences=96, batch=16, eval_every=24, hidden=5, test=20)
    np.testing.assert_array_equal(a["curve"], b["curve"][:len(a["curve"])])
    np.testing.assert_array_equal(b["sequences_seen"], [32, 48, 80, 96])


def test_lstm_cued_returns_well_formed_results():
    out = LSTM_CUED(0, T=5, sequences=64, batch=16, eval_every=32, hidden=6, test=40)
    assert 0 <= out["accuracy"] <= 1 and out["curve"].shape == (2,)
    assert out["accuracy"] == out["curve"][-1]
    assert abs(out["train_loss"][0] - np.log(8)) < 0.3                # chance, ln 8, at first


def test_lstm_selective_copy_has_about_9000_parameters_and_scores_each_position():
    out = LSTM_SELECTIVE(0, L=12, sequences=64, batch=16, eval_every=64, test=30)
    assert out["cells"] == 41 and out["n_params"] == 8864
    assert out["accuracy_by_position"].shape == (8,)
    assert np.isclose(out["accuracy"], out["accuracy_by_position"].mean())
    assert LSTM_SELECTIVE(0, L=12, sequences=16, batch=16, eval_every=16, test=5,
                          hidden=3)["n_params"] == 4 * 3 * (10 + 3 + 1) + 8 * 4


@pytest.mark.parametrize("target", [500, 9000, 20_000])
def test_lstm_hidden_is_the_size_whose_parameter_count_is_nearest(target):
    H = experiments.lstm_hidden(target, 10, 8)

    def count(h):
        return sum(p.size for p in LSTM(10, h, 8).params.values())
    assert abs(count(H) - target) <= min(abs(count(H - 1) - target), abs(count(H + 1) - target))


@pytest.mark.parametrize("fn, kwargs, name", [
    (GATE, dict(gate="random"), "gate"),
    (GATE, dict(keep="middle"), "keep"),
    (GATE, dict(sequences=30, batch=20), "sequences"),
    (GATE, dict(batch=0), "batch"),
    (GATE, dict(eta_gate=-1.0), "eta_gate"),
    (GATE, dict(T=0), "T"),
    (LSTM_CUED, dict(lr=0.0), "lr"),
    (LSTM_CUED, dict(eval_every=0), "eval_every"),
    (LSTM_SELECTIVE, dict(clip=-1.0), "clip"),
    (LSTM_SELECTIVE, dict(hidden=-3), "hidden"),
    (LSTM_SELECTIVE, dict(forget_bias=float("nan")), "forget_bias"),
])
def test_bad_settings_are_refused_by_name(fn, kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}: "):
        fn(0, **{"sequences": 40 if fn is GATE else 64, **kwargs})


def test_gate_functions_name_their_bad_arguments():
    with pytest.raises(ValueError, match="writes"):
        gates.slot(np.zeros((4, 2, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="keep"):
        gates.slot(np.zeros((4, 2, 3)), np.zeros((4, 2)), keep="any")
    with pytest.raises(ValueError, match="eta"):
        gates.three_factor_update(np.zeros((2, 1, 3)), np.zeros((2, 1)), np.zeros((2, 1)),
                                  np.zeros(1), 0.0, 0.0)
    with pytest.raises(ValueError, match="z"):
        gates.gate_probability(np.zeros(3), np.zeros((2, 1, 4)))


PARITY = sweep.get("parity_ponder").fn


def test_parity_ponder_counts_graves_parameters_and_reports_each_difficulty():
    outs = {m: PARITY(0, method=m, steps=2, batch=8, eval_every=1, test=10)
            for m in ("act", "ponder", "fixed")}
    # 128 units on 16 bits and the flag: 18,817 weights, and a halting unit of 129 more.
    assert outs["fixed"]["n_params"] == 18_817
    assert outs["act"]["n_params"] == outs["ponder"]["n_params"] == 18_817 + 129
    for out in outs.values():
        assert out["error_k"].shape == out["ponder_k"].shape == (16,)
        assert out["curve"].shape == (2,)
        assert np.isclose(out["mean_error"], out["error_k"].mean())
        assert np.isnan(out["error_new"])             # trained on every difficulty
    np.testing.assert_array_equal(outs["fixed"]["ponder_k"], 10.0)
    np.testing.assert_array_equal(outs["fixed"]["loops_k"], 10.0)
    act = outs["act"]
    assert ((act["loops_k"] >= 1) & (act["loops_k"] < act["ponder_k"])).all()
    assert np.isnan(outs["fixed"]["spearman"])
    assert (outs["act"]["ponder_k"] <= 10 + 1).all()


def test_a_looped_cell_learns_small_parity_and_the_split_scores_unseen_difficulties():
    small = dict(n_bits=6, hidden=24, batch=64, lr=3e-3, eval_every=300, test=200)
    out = PARITY(0, method="fixed", max_steps=3, steps=1500, **small)
    assert out["mean_error"] < 0.1, out["error_k"]
    split = PARITY(0, method="act", train_high=3, steps=20, **small)
    assert np.isclose(split["error_trained"], split["error_k"][:3].mean())
    assert np.isclose(split["error_new"], split["error_k"][3:].mean())


def test_parity_ponder_runs_the_tall_sln_with_each_stop_rule():
    for stop in ("fixed", "agree", "halt"):
        out = PARITY(0, method="tall", stop=stop, hidden=5, max_steps=3, steps=2, batch=8,
                     eval_every=1, test=10)
        assert (out["ponder_k"] <= 3 + 1).all() and out["curve"].shape == (2,)
    # Two lobes of 88 units hold 19,010 weights, within Graves's 19,075.
    assert PARITY(0, method="tall", stop="fixed", hidden=88, steps=1, batch=4, eval_every=1,
                  test=2)["n_params"] == 19_010


def test_parity_lateral_reads_the_stop_the_cap_and_the_calibration_from_one_run():
    out = sweep.get("parity_lateral").fn(0, n_bits=6, hidden=16, critic=16, max_loops=4,
                                         steps=600, batch=64, lr=1e-2, eval_every=300,
                                         test=200)
    # Actor and critic alike: W_x (16, 7), W_h (16, 16), three vectors of 16 and one bias.
    assert out["n_params"] == 2 * (16 * 7 + 16 * 16 + 3 * 16 + 1)
    assert out["error_k"].shape == out["loops_k"].shape == (6,)
    assert np.isclose(out["mean_error"], out["error_k"].mean())
    assert np.isclose(out["error_fixed"], out["error_by_loop"][-1])
    assert np.isclose(out["error_fixed"], out["error_fixed_k"].mean())
    assert ((1 <= out["loops_k"]) & (out["loops_k"] <= 4)).all()
    assert np.isclose(out["loop_fraction"], out["loops"] / 4)
    assert out["calib_count"].sum() == 6 * 4 * 200                # every loop of every vector
    counted = out["calib_count"] > 0
    lows = np.arange(10)[counted] / 10
    mean_score = out["calib_score"][counted]
    assert ((lows <= mean_score) & (mean_score <= lows + 0.1)).all()
    # After 600 updates the critic already tells right answers from wrong ones: the answers it
    # is sure of are right more often than the rest.
    assert out["precision"] > 1 - out["mean_error"]


COMPOSITION = sweep.get("composition").fn
COMPOSITION_TINY = dict(n_bits=4, n_experts=2, max_loops=5, test_high=5, eval_every=10, test=30)


def test_composition_counts_match_the_models_and_match_each_other():
    from loopy_edu.rnn import RNN
    from loopy_edu.sln_wide import WideSLN
    for h in (3, 17):
        assert experiments.composition_params("wide", 8, h, 3) == sum(
            p.size for p in WideSLN(15, h, 8, 3).params.values())
        assert experiments.composition_params("wide1", 8, h) == sum(
            p.size for p in WideSLN(15, h, 8, 1).params.values())
        assert experiments.composition_params("rnn", 8, h) == sum(
            p.size for p in RNN(15, h, 8).params.values())
    # The numbers: 103 RNN units and a 70-unit single-expert SLN match 13,080 weights.
    widths = [experiments.composition_hidden(m) for m in ("wide", "wide1", "rnn")]
    assert widths == [32, 70, 103]


@pytest.mark.parametrize("method", ["wide", "wide1", "rnn"])
def test_composition_reports_every_k_and_keeps_the_test_cap(method):
    out = COMPOSITION(0, method=method, hidden=6, steps=20, batch=16, **COMPOSITION_TINY)
    for key in ("accuracy_k", "bit_accuracy_k", "loops_k"):
        assert out[key].shape == (5,)
    assert np.isclose(out["accuracy_trained"], out["accuracy_k"][:3].mean())
    assert np.isclose(out["accuracy_ood"], out["accuracy_k"][3:].mean())
    assert (out["accuracy_k"] <= out["bit_accuracy_k"]).all() and out["curve"].shape == (2,)
    assert out["width"] == 6
    assert out["n_params"] == experiments.composition_params(method, 4, 6, 2)
    k = np.arange(1, 6)
    if method == "rnn":
        np.testing.assert_array_equal(out["loops_k"], k + 2)      # it reads every token
        assert np.isnan(out["gate_entropy"]).all() and np.isnan(out["stops_at_end"])
        return
    # The cap moves with k: k + max_loops - train_high = k + 2 loops at most.
    assert ((1 <= out["loops_k"]) & (out["loops_k"] <= k + 2)).all()
    E = 2 if method == "wide" else 1
    assert 0 <= out["gate_entropy"][0] <= np.log(3) and 0 <= out["gate_entropy"][1] <= np.log(E)
    assert out["expert_use"].shape == (2 * E,) and np.isclose(out["expert_use"].sum(), 1)
    shares = out["route_by_token"]
    assert shares.shape == (9, 2 * E + 1)
    read = ~np.isnan(shares).any(axis=1)
    assert read[0] and np.allclose(shares[read].sum(axis=1), 1)
    np.testing.assert_array_equal(shares[8], np.nan)        # this run never reads padding


def test_the_wide_sln_learns_short_programs_and_its_routes_come_to_tell_the_ops():
    small = dict(hidden=16, n_bits=4, n_experts=3, lr=0.01, clip=0.0, ponder_cost=0.02,
                 entropy_cost=0.0, eval_every=500, test=200)
    before, out = COMPOSITION(0, steps=1, **small), COMPOSITION(0, steps=1500, **small)
    # Chance is 1/16 for a whole 4-bit string.
    assert out["accuracy_trained"] > 0.5, out["accuracy_k"]
    assert out["stops_at_end"] > 0.9 > before["stops_at_end"]  # it stops where the program ends
    assert out["op_information"] > before["op_information"] + 0.1


@pytest.mark.parametrize("kwargs, name", [
    (dict(method="lstm"), "method"), (dict(max_loops=4), "max_loops"),
    (dict(train_high=0), "train_high"), (dict(test_high=2), "test_high"),
    (dict(hidden=-1), "hidden"), (dict(clip=-1.0), "clip"), (dict(n_bits=5), "n_bits"),
])
def test_composition_refuses_bad_settings_by_name(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}: "):
        COMPOSITION(0, **{"steps": 1, "test": 4, **kwargs})
