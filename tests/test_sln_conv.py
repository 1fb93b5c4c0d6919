"""The looped convolutional SLN (Chapter 15, easy to hard): its loops written out with Python
floats, the exact gradient through every loop, the three backends, the loop count, the
parameter-matched control and bad input."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from loopy_edu import sweep
from loopy_edu.gradcheck import check_grads
from loopy_edu.sln_conv import ConvSLN, conv1d, conv1d_back, matched_channels
from loopy_edu.tasks import prefix_parity


def _model(lobes=2, recall=True, backend="numpy", seed=1, **kwargs):
    kwargs = {"iterations": 4, "supervise_from": 2, **kwargs}
    m = ConvSLN(3, lobes=lobes, recall=recall, seed=seed, backend=backend, **kwargs)
    rng = np.random.default_rng(seed + 100)
    for p in m.params.values():
        p += 0.3 * rng.standard_normal(p.shape)
    return m


def _plain_loops(P, x, loops, lobes, recall):
    """The logit y_n[l] of one string at every loop, position by position with Python floats."""
    P = {k: v.tolist() for k, v in P.items()}
    L, C = len(x), len(P["w"])
    k = len(P["K_L"])
    H = [[0.0] * C for _ in range(L)]
    out = []
    for n in range(1, loops + 1):
        for side in "LR"[:lobes]:
            K, r, b = P[f"K_{side}"], P[f"r_{side}"], P[f"b_{side}"]
            H = [[math.tanh(b[o] + (r[o] * x[l] if recall or n == 1 else 0.0)
                            + sum(K[j][i][o] * H[l + j - k // 2][i]
                                  for j in range(k) if 0 <= l + j - k // 2 < L
                                  for i in range(C)))
                  for o in range(C)] for l in range(L)]
        out.append([sum(w * h for w, h in zip(P["w"], H[l])) + P["c"][0] for l in range(L)])
    return out


@pytest.mark.parametrize("lobes, recall", [(2, True), (2, False), (1, True)])
def test_the_loops_are_the_equations_written_out(lobes, recall):
    m = _model(lobes, recall, kernel_size=5)
    X, _ = prefix_parity(3, 6, seed=2)
    Ys = m.forward(X, iterations=5)["Ys"]
    for b, x in enumerate(X.tolist()):
        np.testing.assert_allclose(Ys[:, b], _plain_loops(m.params, x, 5, lobes, recall),
                                   rtol=1e-12, atol=1e-14)
    probs = m.predict(X, iterations=5, every_loop=True)
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-Ys)), rtol=1e-12)
    np.testing.assert_array_equal(m.predict(X, iterations=5), probs[-1])


def test_conv1d_back_is_the_transpose_of_conv1d():
    rng = np.random.default_rng(0)
    H, K = rng.standard_normal((2, 7, 3)), rng.standard_normal((5, 3, 4))
    G = rng.standard_normal((2, 7, 4))
    assert np.isclose((conv1d(H, K) * G).sum(), (H * conv1d_back(G, K)).sum(), rtol=1e-12)


@pytest.mark.parametrize("lobes, recall, first", [(2, True, 2), (2, False, 1), (1, True, 4),
                                                  (1, False, 3)])
def test_the_gradient_through_every_loop_equals_finite_differences(lobes, recall, first):
    m = _model(lobes, recall, supervise_from=first)
    X, Y = prefix_parity(4, 6, seed=5)
    errors = check_grads(m, X, Y, max_entries=60)
    assert max(errors.values()) < 1e-7, errors


def test_the_loss_averages_the_supervised_loops():
    m = _model(iterations=5, supervise_from=3)
    X, Y = prefix_parity(4, 6, seed=5)
    Ys = m.forward(X)["Ys"]
    bce = np.logaddexp(0, Ys) - Y * Ys                      # (loops, B, L)
    assert np.isclose(m.loss_and_grads(X, Y)[0], bce[2:].mean(), rtol=1e-12)
    np.testing.assert_allclose(ConvSLN(2, iterations=6).loop_weights(), [0] * 3 + [1 / 3] * 3)


@pytest.mark.parametrize("lobes, recall", [(2, True), (2, False), (1, True)])
@pytest.mark.parametrize("backend", ["numba", "cuda"])
def test_the_kernels_equal_the_numpy_reference(lobes, recall, backend):
    ref, fast = _model(lobes, recall), _model(lobes, recall, backend=backend)
    if backend == "cuda":                    # the simulator runs every thread in Python
        ref.iterations = fast.iterations = 3
    X, Y = prefix_parity(3 if backend == "cuda" else 8, 5 if backend == "cuda" else 9, seed=4)
    loss, grads = ref.loss_and_grads(X, Y)
    loss2, grads2 = fast.loss_and_grads(X, Y)
    assert abs(loss - loss2) <= 1e-10 and list(grads) == list(grads2)
    for k in grads:
        np.testing.assert_allclose(grads2[k], grads[k], rtol=0, atol=1e-10, err_msg=k)
    np.testing.assert_allclose(fast.predict(X, 4, every_loop=True),
                               ref.predict(X, 4, every_loop=True), rtol=0, atol=1e-10)
    c, c2 = ref.forward(X), fast.forward(X)
    for k in c:
        np.testing.assert_allclose(c2[k], c[k], rtol=0, atol=1e-10, err_msg=k)


@settings(max_examples=20, deadline=None)
@given(loops=st.integers(1, 7), lobes=st.sampled_from([1, 2]), n_bits=st.integers(1, 9),
       seed=st.integers(0, 1000))
def test_the_loop_count_is_exactly_the_one_asked(loops, lobes, n_bits, seed):
    m = ConvSLN(2, lobes=lobes, iterations=3, seed=seed)
    X, _ = prefix_parity(2, n_bits, seed=seed)
    c = m.forward(X, iterations=loops)
    assert c["Ys"].shape == (loops, 2, n_bits) and len(c["Hs"]) == loops * lobes + 1
    assert m.predict(X, iterations=loops, every_loop=True).shape == (loops, 2, n_bits)


def test_one_weight_set_runs_on_any_length():
    m = _model()
    X, _ = prefix_parity(2, 64, seed=0)
    short = m.predict(X[:, :16], iterations=3)
    # A loop moves information at most lobes × (k − 1)/2 = 2 positions, so after 3 loops the
    # first 16 answers of a 64-bit string see only its first 16 + 6 bits, not the rest.
    long = m.predict(X, iterations=3)
    np.testing.assert_allclose(long[:, :10], short[:, :10], rtol=0, atol=1e-15)
    assert not np.allclose(long[:, 15], short[:, 15])


def test_parameters_and_the_matched_one_lobe_control():
    two = ConvSLN(16, lobes=2)
    assert sum(p.size for p in two.params.values()) == 2 * (3 * 16 * 16 + 2 * 16) + 16 + 1
    C1 = matched_channels(16)
    one = ConvSLN(C1, lobes=1)
    n1, n2 = (sum(p.size for p in m.params.values()) for m in (one, two))
    assert C1 == 23 and abs(n1 - n2) / n2 < 0.05
    assert sorted(one.params) == ["K_L", "b_L", "c", "r_L", "w"]


def test_bad_input_is_refused_with_its_name():
    m = ConvSLN(3, iterations=4)
    X = np.zeros((2, 5))
    cases = [(lambda: ConvSLN(3, lobes=3), "lobes: expected one of"),
             (lambda: ConvSLN(3, kernel_size=4), "kernel_size: expected an odd"),
             (lambda: ConvSLN(0), "n_channels: expected a positive"),
             (lambda: ConvSLN(3, iterations=0), "iterations: expected a positive"),
             (lambda: ConvSLN(3, iterations=4, supervise_from=5), "supervise_from: expected"),
             (lambda: ConvSLN(3, supervise_from=0), "supervise_from: expected a positive"),
             (lambda: ConvSLN(3, recall="yes"), "recall: expected True or False"),
             (lambda: ConvSLN(3, backend="gpu"), "backend: expected one of"),
             (lambda: ConvSLN(3, dtype=np.int32), "dtype: expected float32"),
             (lambda: m.predict(np.zeros(5)), "X: expected a 2-D array"),
             (lambda: m.predict(np.full((2, 5), np.nan)), "X: expected finite values"),
             (lambda: m.predict(np.full((2, 5), 2.0)), r"X: expected targets in \{0, 1\}"),
             (lambda: m.loss_and_grads(X, np.zeros((2, 4))), r"Y: expected shape \(2, 5\)"),
             (lambda: m.loss_and_grads(X, np.full((2, 5), 0.5)), r"Y: expected targets"),
             (lambda: m.predict(X, iterations=0), "iterations: expected a positive")]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    m.params["K_R"][0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"params\['K_R'\]: expected finite"):
        m.predict(X)


def test_config_rebuilds_the_model():
    m = ConvSLN(4, lobes=1, kernel_size=5, iterations=7, supervise_from=3, recall=False,
                seed=2, dtype=np.float32, backend="numpy")
    m2 = type(m)(**m.config())
    assert m2.config() == m.config()
    for k in m.params:
        np.testing.assert_array_equal(m2.params[k], m.params[k])
        assert m2.params[k].dtype == np.float32


EASY_TO_HARD = sweep.get("prefix_parity_easy_to_hard").fn


def test_the_test_loop_rule_scales_with_length_and_keeps_the_control_feed_forward():
    from loopy_edu.experiments import easy_to_hard_loops
    assert [easy_to_hard_loops(n, 16, 16) for n in (16, 32, 64)] == [16, 32, 64]
    assert easy_to_hard_loops(20, 6, 16) == 8 and easy_to_hard_loops(64, 1, 16) == 1


@pytest.mark.parametrize("lobes, iterations", [(2, 3), (1, 2), (2, 1)])
def test_the_easy_to_hard_experiment_reports_each_length(lobes, iterations):
    kw = dict(lobes=lobes, channels=3, iterations=iterations, steps=120, batch=4, train_bits=4,
              test_bits="4,8", test=10, overthink=1.5)
    r = EASY_TO_HARD(0, **kw)
    rules = [1, 1] if iterations == 1 else [iterations, 2 * iterations]
    np.testing.assert_array_equal(r["test_iterations"], rules)
    assert r["accuracy_by_loops"].shape == (2, int(np.ceil(1.5 * rules[1])))
    for i, n in enumerate((4, 8)):
        assert r["accuracy"][i] == r[f"accuracy_{n}"] == r["accuracy_by_loops"][i, rules[i] - 1]
    assert len(r["curve"]) == 2 and 0 <= r["bit_accuracy"].min() <= 1
    width = 3 if lobes == 2 else matched_channels(3)
    assert r["width"] == width
    assert r["n_params"] == lobes * (3 * width * width + 2 * width) + width + 1
    # The same run through the sweep runner, which refuses result keys that shadow settings.
    row = sweep.run("prefix_parity_easy_to_hard", [0], settings=kw, workers=0,
                    progress=False).iloc[0]
    assert row["status"] == "ok", row.get("error")
    np.testing.assert_array_equal(row["curve"], r["curve"])


def test_the_experiment_refuses_bad_lengths():
    with pytest.raises(ValueError, match="test_bits: expected positive integers"):
        EASY_TO_HARD(0, steps=1, test_bits="16,x")
    with pytest.raises(ValueError, match="lobes: expected one of"):
        EASY_TO_HARD(0, lobes=3)
