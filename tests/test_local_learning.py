"""Local learning on any Task (Part IV, ch. 12): train_local's history, which weights each rule
may change, learning above chance on an easy selective copy, evaluate on hand cases, the
errors, and the experiments loopy_selective_copy and loopy_adding at tiny sizes."""
import numpy as np
import pytest

from loopy_edu import sweep
from loopy_edu.local_learning import RULES, TOLERANCE, LocalRule, evaluate, train_local
from loopy_edu.loopy import LoopyNetwork
from loopy_edu.tasks import accuracy, adding, copy, selective_copy

SELECTIVE = sweep.get("loopy_selective_copy").fn
ADDING = sweep.get("loopy_adding").fn


def _net(n=60, n_in=10, n_out=8, seed=0, **kw):
    return LoopyNetwork(n_in, n, n_out, seed=seed, **kw)


def _copy_fn(L=12, batch=10):
    return lambda s: selective_copy(L, batch=batch, seed=1000 + s)


def test_history_is_well_formed():
    model = _net()
    test = selective_copy(12, batch=20, seed=1)
    hist = train_local(model, _copy_fn(batch=10), 50, rule="off", eval_task=test, eval_every=20)
    assert len(hist.loss) == 5                                     # 50 sequences, 10 a batch
    assert hist.sequences_seen == [20, 40, 50]                     # every 20, and the end
    for curve in (hist.train_acc, hist.test_acc, hist.test_loss, hist.seconds,
                  hist.epoch_loss):
        assert len(curve) == 3
    assert all(0 <= a <= 1 for a in hist.train_acc + hist.test_acc)
    assert hist.test_acc[-1] == evaluate(model, test)["accuracy"]
    assert hist.epoch_loss[-1] == pytest.approx(np.mean(hist.loss[4:]))


@pytest.mark.parametrize("rule", ["off", "fast_weights"])
def test_rules_within_a_sequence_leave_the_network_as_drawn(rule):
    model = _net()
    before = {k: p.copy() for k, p in model.params.items()}
    train_local(model, _copy_fn(), 30, rule=rule)
    for k in ("W_rec", "W_in", "b_rec"):
        np.testing.assert_array_equal(model.params[k], before[k])
    assert not np.array_equal(model.params["W_out"], before["W_out"])   # the readout learned


def test_a_slow_rule_changes_the_recurrent_weights():
    model = _net()
    before = model.params["W_rec"].copy()
    train_local(model, _copy_fn(), 20, rule=LocalRule("oja", eta=1e-3))
    assert not np.array_equal(model.params["W_rec"], before)


def test_fast_weights_with_zero_rate_are_the_plain_network():
    model = _net()
    xs = selective_copy(12, batch=3, seed=2).xs
    np.testing.assert_allclose(LocalRule("fast_weights", eta=0.0).states(model, xs),
                               model.states(xs), rtol=0, atol=1e-13)


@pytest.mark.parametrize("rule", ["off", "fast_weights"])
def test_it_learns_an_easy_copy_above_chance(rule):
    model = _net(n=100, n_in=9, n_out=8, input_scale=0.3)
    model.params["W_out"][:], model.params["b_out"][:] = 0.0, 0.0
    test = copy(3, batch=200, seed=1)                    # recall one symbol 3 steps later
    untrained = evaluate(model, test)["accuracy"]
    train_local(model, lambda s: copy(3, batch=20, seed=1000 + s), 400,
                rule=LocalRule(rule, eta=1e-3), eta=0.1)
    trained = evaluate(model, test, LocalRule(rule, eta=1e-3))["accuracy"]
    assert untrained < 0.3 and trained > 0.9                         # chance is 1/8


def test_evaluate_on_a_classification_task_is_the_task_accuracy():
    model = _net()
    task = selective_copy(12, batch=30, seed=3)
    score = evaluate(model, task)
    assert score["accuracy"] == accuracy(model.predict(task.xs), task)
    assert score["by_step"].shape == (8,)                            # the 8 recall positions
    assert score["by_step"].mean() == pytest.approx(score["accuracy"])
    assert score["loss"] == pytest.approx(model.loss(task))


def test_evaluate_on_the_adding_problem_by_hand():
    model = _net(n_in=2, n_out=1)
    model.params["W_out"][:], model.params["b_out"][:] = 0.0, 1.0      # always answers 1
    task = adding(20, batch=200, seed=4)
    err = task.targets[-1, :, 0] - 1.0
    score = evaluate(model, task)
    assert score["mse"] == pytest.approx(np.mean(err ** 2), rel=1e-12)
    assert score["loss"] == pytest.approx(0.5 * np.mean(err ** 2), rel=1e-12)
    assert score["accuracy"] == pytest.approx(np.mean(np.abs(err) < TOLERANCE))


def test_the_lms_readout_runs_and_every_rule_is_accepted():
    for rule in RULES:
        model = _net(n=30)
        hist = train_local(model, _copy_fn(batch=5), 5, rule=rule, readout="lms", eta=1e-3)
        assert len(hist.loss) == 1 and np.isfinite(hist.loss[0])


@pytest.mark.parametrize("kwargs, match", [
    (dict(rule="bptt"), "rule"),
    (dict(readout="rls"), "readout"),
    (dict(eta=2.0), "eta"),
    (dict(sequences=0), "sequences"),
    (dict(eval_every=0), "eval_every"),
    (dict(eval_task=adding(10, seed=0)), "eval_task"),
])
def test_errors_name_the_argument(kwargs, match):
    args = {"model": _net(), "task_fn": _copy_fn(), "sequences": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        train_local(**args)


def test_a_task_that_does_not_fit_is_refused_naming_task_fn():
    with pytest.raises(ValueError, match=r"task_fn\(step\)"):
        train_local(_net(), lambda s: adding(10, seed=s), 10)
    with pytest.raises(TypeError, match="task_fn"):
        train_local(_net(), lambda s: None, 10)
    with pytest.raises(TypeError, match="task"):
        evaluate(_net(), np.zeros((3, 1, 10)))


@pytest.mark.parametrize("field, value", [("decay", 1.5), ("eta", -1.0), ("inner_steps", 0),
                                          ("normalise", "l3")])
def test_rule_settings_are_checked(field, value):
    with pytest.raises(ValueError, match=field):
        LocalRule("fast_weights", **{field: value})


def test_loopy_selective_copy_at_a_tiny_size():
    small = dict(L=12, n=40, sequences=40, batch=20, eval_every=20, test=10, rule_eta=1e-3)
    out = SELECTIVE(0, rule="fast_weights", **small)
    assert out["accuracy_by_position"].shape == (8,)
    assert out["accuracy"] == pytest.approx(out["accuracy_by_position"].mean())
    assert out["curve"][-1] == out["accuracy"]
    assert out["sequences_seen"].tolist() == [20, 40]
    assert out["readout_weights"] == 8 * 41
    again = SELECTIVE(0, rule="fast_weights", **small)
    np.testing.assert_array_equal(out["curve"], again["curve"])        # seeded
    short = SELECTIVE(0, rule="fast_weights", **{**small, "sequences": 20})
    assert short["curve"].tolist() == out["curve"][:1].tolist()        # a quick run: a prefix
    with pytest.raises(ValueError, match="n"):
        SELECTIVE(0, **{**small, "n": 1200})                           # 9,608 readout weights


@pytest.mark.parametrize("readout", ["nlms", "ridge"])
def test_loopy_adding_at_a_tiny_size(readout):
    out = ADDING(0, T=20, n=30, sequences=40, batch=20, eval_every=20, test=10,
                 readout=readout, rule="off")
    assert out["baseline"] == pytest.approx(1 / 6)
    assert out["curve_mse"].shape == (2,) and out["curve_mse"][-1] >= 0
    if readout == "nlms":
        assert out["curve_mse"][-1] == pytest.approx(out["mse"])


def test_the_ridge_control_refits_the_readout_of_loopy_selective_copy():
    small = dict(L=12, n=40, sequences=100, batch=20, eval_every=100, test=50, rule="off")
    nlms, ridge = SELECTIVE(0, **small), SELECTIVE(0, readout="ridge", **small)
    np.testing.assert_array_equal(nlms["curve"], ridge["curve"])      # the same NLMS run first
    assert ridge["accuracy"] != nlms["accuracy"]
