"""The compositional task of the wide SLN (Chapter 15): each primitive on hand-written
strings, their compositions, the token encoding of a program, and bad arguments."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from loopy_edu.tasks import PRIMITIVES, bit_op, bit_program

B = np.array([1, 0, 0, 1, 1, 1])


@pytest.mark.parametrize("name, expected", [
    ("not", [0, 1, 1, 0, 0, 0]),
    ("reverse", [1, 1, 1, 0, 0, 1]),
    ("rotate_left", [0, 0, 1, 1, 1, 1]),
    ("rotate_right", [1, 1, 0, 0, 1, 1]),
    ("swap_halves", [1, 1, 1, 1, 0, 0]),
    ("xor_shift", [1, 1, 0, 1, 0, 0]),
])
def test_each_primitive_on_a_hand_written_string(name, expected):
    np.testing.assert_array_equal(bit_op(name, B), expected)
    np.testing.assert_array_equal(B, [1, 0, 0, 1, 1, 1])       # the input is left alone


def test_primitives_act_on_the_last_axis_of_a_batch():
    batch = np.array([B, 1 - B])
    for name in PRIMITIVES:
        np.testing.assert_array_equal(bit_op(name, batch), [bit_op(name, B),
                                                            bit_op(name, 1 - B)])


def _compose(names, bits):
    for name in names:
        bits = bit_op(name, bits)
    return bits


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(1, 4).flatmap(lambda half: st.lists(
    st.integers(0, 1), min_size=2 * half, max_size=2 * half)).map(np.array))
def test_compositions(bits):
    n = len(bits)
    for undo in (["not", "not"], ["reverse", "reverse"], ["rotate_left", "rotate_right"],
                 ["swap_halves", "swap_halves"], ["rotate_left"] * n):
        np.testing.assert_array_equal(_compose(undo, bits), bits)
    np.testing.assert_array_equal(_compose(["rotate_left"] * (n // 2), bits),
                                  bit_op("swap_halves", bits))
    np.testing.assert_array_equal(_compose(["not", "reverse"], bits),
                                  _compose(["reverse", "not"], bits))
    # xor_shift is the Gray code; a running XOR (prefix parity) undoes it.
    np.testing.assert_array_equal(np.cumsum(bit_op("xor_shift", bits)) % 2, bits)


def test_compositions_do_not_collapse_to_a_few_maps():
    # The distinct maps of all 8-bit strings that programs of exactly k ops compute: each op
    # more multiplies them by more than 3 (of 6 possible): 6, 23, 84, 307.
    strings = np.array([[int(c) for c in f"{i:08b}"] for i in range(256)])
    maps, counts = [strings], []
    for _ in range(4):
        reached = {m.tobytes(): m for m in (bit_op(p, m) for m in maps for p in PRIMITIVES)}
        maps = list(reached.values())
        counts.append(len(maps))
    assert counts[0] == 6 and all(b > 3 * a for a, b in zip(counts, counts[1:])), counts


def _decode(x, n_bits):
    """A program's string and ops read back from its tokens, by hand."""
    bits = [1 if v > 0 else 0 for v in x[0, :n_bits]]
    ops = []
    for token in x[1:]:
        if token[-1] == 1:
            break
        ops.append(PRIMITIVES[list(token[n_bits:-1]).index(1)])
    return bits, ops


def test_the_target_is_the_decoded_program_applied_in_order():
    X, Y, k = bit_program(200, n_bits=8, steps=(1, 5), seed=3)
    assert X.shape == (200, 7, 8 + len(PRIMITIVES) + 1) and Y.shape == (200, 8)
    used = set()
    for x, y, kb in zip(X, Y, k):
        bits, ops = _decode(x, 8)
        assert len(ops) == kb
        np.testing.assert_array_equal(_compose(ops, np.array(bits)), y)
        used |= set(ops)
    assert used == set(PRIMITIVES) and set(k) == {1, 2, 3, 4, 5}


def test_the_token_layout():
    X, _, k = bit_program(50, n_bits=4, steps=(1, 3), seed=1)
    assert set(np.unique(X[:, 0, :4])) <= {-1.0, 1.0} and (X[:, 0, 4:] == 0).all()
    for x, kb in zip(X, k):
        assert (x[1:kb + 1, 4:-1].sum(axis=1) == 1).all() and (x[1:kb + 1, :4] == 0).all()
        assert (x[1:kb + 1, -1] == 0).all()
        assert x[kb + 1, -1] == 1 and x[kb + 1, :-1].sum() == 0       # the end token
        assert (x[kb + 2:] == 0).all()                                # the padding


def test_seeds_and_fixed_lengths():
    a, b = bit_program(20, seed=5), bit_program(20, seed=5)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], bit_program(20, seed=6)[0])
    X, Y, k = bit_program(10, steps=4, dtype=np.float32)
    assert (k == 4).all() and X.shape[1] == 6 and X.dtype == Y.dtype == np.float32


def test_bad_arguments_are_refused_with_their_name():
    cases = [(lambda: bit_program(0), "batch: expected a positive"),
             (lambda: bit_program(5, n_bits=7), "n_bits: expected an even"),
             (lambda: bit_program(5, n_bits=0), "n_bits: expected an integer >= 2"),
             (lambda: bit_program(5, steps=0), "steps: expected"),
             (lambda: bit_program(5, steps=(3, 1)), "steps: expected"),
             (lambda: bit_program(5, steps=True), "steps: expected"),
             (lambda: bit_program(5, steps=2.0), "steps: expected"),
             (lambda: bit_program(5, dtype=np.int64), "dtype: expected a floating"),
             (lambda: bit_op("shuffle", B), "name: expected one of")]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
