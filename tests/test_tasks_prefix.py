"""Prefix parity (Part V, easy to hard): the targets against a plain loop, seeds, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from loopy_edu.tasks import prefix_parity


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 6), n_bits=st.integers(1, 40), seed=st.integers(0, 10_000))
def test_targets_are_the_running_xor_of_a_plain_loop(batch, n_bits, seed):
    X, Y = prefix_parity(batch, n_bits, seed=seed)
    assert X.shape == Y.shape == (batch, n_bits) and X.dtype == Y.dtype == np.float64
    for x, y in zip(X.tolist(), Y.tolist()):
        acc = 0
        for bit, target in zip(x, y):
            assert bit in (0.0, 1.0)
            acc ^= int(bit)
            assert target == acc


def test_seeded_and_balanced():
    X, Y = prefix_parity(2000, 16, seed=3, dtype=np.float32)
    X2, _ = prefix_parity(2000, 16, seed=3, dtype=np.float32)
    np.testing.assert_array_equal(X, X2)
    assert X.dtype == Y.dtype == np.float32
    assert abs(X.mean() - 0.5) < 0.02 and abs(Y.mean() - 0.5) < 0.02
    assert not np.array_equal(X, prefix_parity(2000, 16, seed=4)[0])


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch=0, n_bits=4), "batch: expected a positive integer"),
    (dict(batch=2, n_bits=2.5), "n_bits: expected a positive integer"),
    (dict(batch=2, n_bits=4, dtype=np.int64), "dtype: expected a floating-point"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        prefix_parity(**kwargs)
