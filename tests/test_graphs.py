"""Loopy networks (Part IV): the generators keep their degrees and conventions, the statistics
agree with brute force, and bad graphs are refused before anything reads them."""
import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings, strategies as st

from loopy_edu import graphs
from loopy_edu.graphs import (adjacency, check_graph, closed_walks, count_cycles, erdos_renyi,
                              fixed_in_degree, henrici_departure, modular, module_of,
                              reciprocity, ring, scale_spectral_radius, small_world,
                              spectral_radius, strongly_connected_components, waxman)


def _rows(W):
    """Row i's stored column indices, for every row."""
    return [W.indices[W.indptr[i]:W.indptr[i + 1]] for i in range(W.shape[0])]


def _assert_conventions(W, n, dtype=np.float64):
    assert isinstance(W, sp.csr_array) and W.shape == (n, n) and W.dtype == dtype
    assert W.has_sorted_indices and W.has_canonical_format
    assert all(np.all(np.diff(r) > 0) for r in _rows(W))        # sorted and distinct
    assert np.all(np.isfinite(W.data))


def _no_self_loops(W):
    return not any(i in r for i, r in enumerate(_rows(W)))


def _csr(dense):
    return sp.csr_array(np.asarray(dense, dtype=float))


def _chain(n):
    """The feed-forward chain 0 -> 1 -> ... -> n-1: no cycle at all."""
    return sp.csr_array((np.ones(n - 1), np.arange(n - 1), np.r_[0, np.arange(n)]), shape=(n, n))


def _dense_radius(W):
    return np.abs(np.linalg.eigvals(W.toarray())).max()


# --- fixed_in_degree --------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 40), data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_fixed_in_degree_has_exactly_k_distinct_presynaptic_units(n, data, seed):
    k = data.draw(st.integers(1, n - 1))
    W = fixed_in_degree(n, k, seed=seed)
    _assert_conventions(W, n)
    assert W.nnz == n * k and np.all(np.diff(W.indptr) == k)
    assert _no_self_loops(W)
    again = fixed_in_degree(n, k, seed=seed)
    assert np.array_equal(W.indices, again.indices) and np.array_equal(W.data, again.data)
    other = fixed_in_degree(n, k, seed=seed + 1)
    assert not np.array_equal(W.data, other.data)


def test_fixed_in_degree_with_self_loops_may_use_every_unit():
    W = fixed_in_degree(5, 5, seed=3, self_loops=True)
    assert W.nnz == 25 and np.all(W.toarray() != 0)
    loops = sum(fixed_in_degree(20, 5, seed=s, self_loops=True).diagonal().astype(bool).sum()
                for s in range(20))
    assert loops > 0                                              # 20 * 20 * 5/20 = 100 expected


def test_fixed_in_degree_draws_presynaptic_units_uniformly():
    # Every other unit is equally likely: k / (n - 1) = 0.4 for each offset (j - i) mod n.
    n, k, seeds = 6, 2, 400
    hits = np.zeros(n)
    for s in range(seeds):
        W = fixed_in_degree(n, k, seed=s)
        for i, r in enumerate(_rows(W)):
            np.add.at(hits, (r - i) % n, 1)
    freq = hits / (seeds * n)
    assert freq[0] == 0
    np.testing.assert_allclose(freq[1:], k / (n - 1), atol=0.03)


def test_fixed_in_degree_weights_are_standard_normal_and_dtype_is_kept():
    W = fixed_in_degree(2000, 10, seed=0)
    assert abs(W.data.mean()) < 0.02 and abs(W.data.std() - 1) < 0.02
    W32 = fixed_in_degree(50, 4, seed=0, dtype=np.float32)
    _assert_conventions(W32, 50, np.float32)
    np.testing.assert_array_equal(W32.data, fixed_in_degree(50, 4, seed=0).data.astype(np.float32))


@pytest.mark.parametrize("kwargs, name", [
    (dict(n=1, k=1), "n"), (dict(n=2.0, k=1), "n"), (dict(n=True, k=1), "n"),
    (dict(n=10, k=0), "k"), (dict(n=10, k=10), "k"), (dict(n=10, k=3.0), "k"),
    (dict(n=10, k=11, self_loops=True), "k"), (dict(n=10, k=2, dtype=np.int64), "dtype"),
])
def test_fixed_in_degree_refuses_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}: expected"):
        fixed_in_degree(**kwargs)


# --- ring ---------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 3, 7, 40])
@pytest.mark.parametrize("weight", [1.0, -1.5])
def test_ring_is_one_cycle_through_every_unit(n, weight):
    W = ring(n, weight)
    _assert_conventions(W, n)
    A = W.toarray()
    assert np.all((A != 0).sum(axis=0) == 1) and np.all((A != 0).sum(axis=1) == 1)
    assert all(A[(i + 1) % n, i] == weight for i in range(n))
    count, labels = strongly_connected_components(W)
    assert count == 1 and np.all(labels == 0)
    cycles = count_cycles(W, n + 2)
    assert cycles[n] == 1 and cycles.sum() == 1
    walks = closed_walks(W, 2 * n + 1)
    np.testing.assert_array_equal(walks, [n if L % n == 0 else 0 for L in range(2 * n + 2)])
    assert abs(spectral_radius(W) - abs(weight)) < 1e-12
    assert henrici_departure(W) < 1e-12
    assert reciprocity(W) == (1.0 if n == 2 else 0.0)


def test_ring_refuses_bad_arguments():
    with pytest.raises(ValueError, match="^n: expected"):
        ring(1)
    with pytest.raises(ValueError, match="^weight: expected"):
        ring(4, np.nan)
    assert ring(4, dtype=np.float32).dtype == np.float32


# --- spectra ------------------------------------------------------------------------------

@pytest.mark.parametrize("n, seeds", [(50, range(5)), (1000, range(3))])
@pytest.mark.parametrize("rho", [0.9, 1.7])
def test_scale_spectral_radius_hits_rho(n, seeds, rho):
    # At n = 1000 the sparse eigensolver runs; asking it for one eigenvalue alone misses the
    # largest by ~0.5 % for each of these seeds.
    for seed in seeds:
        W = fixed_in_degree(n, 10, seed=seed)
        before = W.data.copy()
        S = scale_spectral_radius(W, rho)
        assert abs(_dense_radius(S) - rho) <= 1e-8 * rho
        _assert_conventions(S, n)
        assert np.array_equal(S.indices, W.indices) and np.array_equal(W.data, before)
        np.testing.assert_allclose(S.data / W.data, S.data[0] / W.data[0], rtol=1e-14)


def test_spectral_radius_is_the_same_at_every_call():
    W = fixed_in_degree(800, 10, seed=1)
    assert spectral_radius(W) == spectral_radius(W)        # bit for bit: ARPACK's start is seeded


def test_scale_spectral_radius_keeps_float32_and_zero():
    W = fixed_in_degree(40, 5, seed=2, dtype=np.float32)
    S = scale_spectral_radius(W, 0.5)
    assert S.dtype == np.float32 and abs(_dense_radius(S.astype(np.float64)) - 0.5) < 1e-5
    Z = scale_spectral_radius(W, 0.0)
    assert Z.nnz == W.nnz and np.all(Z.data == 0)


@pytest.mark.parametrize("n", [5, 600])
def test_a_graph_without_cycles_has_spectral_radius_zero_and_cannot_be_scaled(n):
    W = _chain(n)
    assert spectral_radius(W) == 0.0
    with pytest.raises(ValueError, match="^W: .*spectral radius > 0.*nilpotent"):
        scale_spectral_radius(W, 1.0)


def test_spectral_radius_of_a_chain_feeding_a_ring_is_the_ring_s():
    n = 700
    W = sp.lil_array((n + 3, n + 3))
    for i in range(n - 1):
        W[i + 1, i] = 2.0
    W[n, n - 1] = 1.0
    for a in range(3):
        W[n + (a + 1) % 3, n + a] = 0.5
    assert strongly_connected_components(W)[0] == n + 1
    assert abs(spectral_radius(W) - 0.5) < 1e-12
    # Self-loops of units alone in their component count too.
    W[0, 0] = -3.0
    assert abs(spectral_radius(W) - 3.0) < 1e-12


@pytest.mark.parametrize("rho", [-0.1, np.nan, np.inf, "1"])
def test_scale_spectral_radius_refuses_a_bad_rho(rho):
    with pytest.raises(ValueError, match="^rho: expected"):
        scale_spectral_radius(ring(4), rho)


def test_henrici_departure_separates_normal_from_non_normal():
    rng = np.random.default_rng(0)
    sym = rng.standard_normal((30, 30))
    assert henrici_departure(_csr(sym + sym.T)) < 1e-12
    assert abs(henrici_departure(_chain(10)) - 1.0) < 1e-12
    M = rng.standard_normal((40, 40))
    lam = np.linalg.eigvals(M)
    formula = np.sqrt(np.sum(M**2) - np.sum(np.abs(lam)**2)) / np.linalg.norm(M)
    assert abs(henrici_departure(_csr(M)) - formula) < 1e-10 and formula > 0.1
    assert henrici_departure(sp.csr_array((3, 3))) == 0.0
    with pytest.raises(ValueError, match="^W: henrici_departure .* at most 3000 units"):
        henrici_departure(ring(3001))


# --- cycles, walks, components, reciprocity -------------------------------------------------

def _brute_force_cycles(A, max_length):
    """Simple cycles by trying every sequence of distinct units that starts at its smallest."""
    n = A.shape[0]
    counts = np.zeros(max_length + 1, dtype=np.int64)
    for L in range(1, min(n, max_length) + 1):
        for units in itertools.permutations(range(n), L):
            # A[i, j] != 0 is the edge j -> i: follow units[0] -> units[1] -> ... -> units[0].
            if units[0] == min(units) and all(A[units[(t + 1) % L], units[t]]
                                              for t in range(L)):
                counts[L] += 1
    return counts


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 6), p=st.floats(0.1, 0.9), seed=st.integers(0, 2**32 - 1),
       extra=st.integers(0, 2))
def test_count_cycles_and_closed_walks_agree_with_brute_force(n, p, seed, extra):
    rng = np.random.default_rng(seed)
    A = (rng.random((n, n)) < p).astype(float)
    W = _csr(A * rng.standard_normal((n, n)))
    max_length = n + extra
    cycles = count_cycles(W, max_length)
    assert cycles.dtype == np.int64
    np.testing.assert_array_equal(cycles, _brute_force_cycles(A, max_length))
    walks = closed_walks(W, max_length)
    expected = [np.trace(np.linalg.matrix_power(A, L)) for L in range(max_length + 1)]
    np.testing.assert_array_equal(walks, expected)
    L = np.arange(1, max_length + 1)
    assert np.all(cycles[1:] * L <= walks[1:])


def test_closed_walks_counts_each_short_cycle_once_per_unit_on_a_large_graph():
    # Below twice the shortest cycle length every closed walk is a cycle walked once.
    W = fixed_in_degree(300, 3, seed=4)
    cycles, walks = count_cycles(W, 4), closed_walks(W, 4)
    shortest = np.flatnonzero(cycles)[0]
    for L in range(1, 2 * shortest):
        assert walks[L] == L * cycles[L]


def test_count_cycles_sends_large_graphs_to_closed_walks():
    with pytest.raises(ValueError, match="^W: count_cycles .* 2000 units.*closed_walks"):
        count_cycles(ring(2001), 3)
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="^max_length: expected"):
            count_cycles(ring(3), bad)
        with pytest.raises(ValueError, match="^max_length: expected"):
            closed_walks(ring(3), bad)


def test_strongly_connected_components_of_two_rings_joined_one_way():
    W = sp.block_array([[ring(3), None], [None, ring(4)]], format="lil")
    W[3, 0] = 1.0                                                # 0 -> 3 only
    count, labels = strongly_connected_components(W)
    assert count == 2 and labels.shape == (7,) and labels.dtype == np.int64
    assert len(set(labels[:3])) == 1 and len(set(labels[3:])) == 1 and labels[0] != labels[3]
    assert strongly_connected_components(_chain(6))[0] == 6


def test_reciprocity_on_hand_made_graphs():
    assert reciprocity(ring(2)) == 1.0
    assert reciprocity(_chain(3)) == 0.0
    # 0 -> 1, 1 -> 0, 1 -> 2: two of three synapses have their reverse.
    W = sp.lil_array((3, 3))
    W[1, 0] = W[0, 1] = W[2, 1] = 1.0
    assert reciprocity(W) == pytest.approx(2 / 3)
    W[0, 0] = W[2, 2] = 5.0                                      # self-loops are left out
    assert reciprocity(W) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="^W: expected at least one synapse"):
        reciprocity(sp.csr_array(np.eye(3)))


def test_adjacency_is_the_stored_pattern():
    W = sp.csr_array((np.array([0.0, -2.0]), np.array([1, 0]), np.array([0, 1, 2])),
                     shape=(2, 2))
    np.testing.assert_array_equal(adjacency(W).toarray(), [[0, 1], [1, 0]])
    assert count_cycles(W, 2)[2] == 1                          # a stored 0 is still a synapse


# --- the other generators -------------------------------------------------------------------

def test_erdos_renyi_has_density_p_and_reciprocity_p():
    n, p = 3000, 0.02
    W = erdos_renyi(n, p, seed=0)
    _assert_conventions(W, n)
    assert _no_self_loops(W)
    assert abs(W.nnz / (n * (n - 1)) - p) < 0.02 * p
    assert abs(reciprocity(W) - p) < 0.1 * p
    assert abs(W.data.std() - 1) < 0.02
    assert erdos_renyi(5, 0.0).nnz == 0
    np.testing.assert_array_equal(erdos_renyi(5, 1.0).toarray() != 0, ~np.eye(5, dtype=bool))
    assert erdos_renyi(5, 1.0, self_loops=True).nnz == 25
    with pytest.raises(ValueError, match="^p: expected"):
        erdos_renyi(5, 1.5)


@pytest.mark.parametrize("n, k", [(2, 1), (9, 1), (9, 3), (30, 29)])
def test_small_world_without_rewiring_is_the_ring_lattice(n, k):
    W = small_world(n, k, 0.0, seed=1)
    _assert_conventions(W, n)
    i, j = np.indices((n, n))
    np.testing.assert_array_equal(W.toarray() != 0, ((i - j) % n >= 1) & ((i - j) % n <= k))
    if k == 1:
        np.testing.assert_array_equal(W.toarray() != 0, ring(n).toarray() != 0)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 40), data=st.data(), p=st.floats(0.0, 1.0),
       seed=st.integers(0, 2**32 - 1))
def test_small_world_keeps_in_degree_k(n, data, p, seed):
    k = data.draw(st.integers(1, n - 1))
    W = small_world(n, k, p, seed=seed)
    _assert_conventions(W, n)
    assert np.all(np.diff(W.indptr) == k) and _no_self_loops(W)


def test_small_world_rewires_a_fraction_p():
    n, k, p = 1000, 6, 0.3
    W = small_world(n, k, p, seed=0)
    i = np.repeat(np.arange(n), k)
    moved = np.mean((i - W.indices) % n > k)
    # Moved synapses land back on the lattice rarely (probability ~ k / n).
    assert abs(moved - p) < 0.03
    assert small_world(50, 4, 0.5, seed=7).nnz == 200


def test_waxman_connects_with_the_waxman_probability():
    n, alpha, beta, seed = 600, 0.15, 0.6, 3
    W = waxman(n, alpha, beta, seed=seed)
    _assert_conventions(W, n)
    assert _no_self_loops(W)
    # The positions are the generator's first draw (documented).
    pos = np.random.default_rng(seed).random((n, 2))
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    prob = beta * np.exp(-d / (alpha * d.max()))
    edge, off = W.toarray() != 0, ~np.eye(n, dtype=bool)
    bins = np.quantile(prob[off], np.linspace(0, 1, 11))
    which = np.digitize(prob[off], bins[1:-1])
    for b in range(10):
        assert abs(edge[off][which == b].mean() - prob[off][which == b].mean()) < 0.01
    # Directions are independent: a synapse's reverse exists with probability E[p^2] / E[p].
    assert abs(reciprocity(W) - np.sum(prob[off]**2) / np.sum(prob[off])) < 0.02
    again = waxman(n, alpha, beta, seed=seed)
    assert np.array_equal(W.indices, again.indices) and np.array_equal(W.data, again.data)


def test_waxman_refuses_bad_arguments():
    with pytest.raises(ValueError, match="^alpha: expected"):
        waxman(10, alpha=0.0)
    with pytest.raises(ValueError, match="^beta: expected"):
        waxman(10, beta=0.0)
    assert waxman(10, beta=1.0, alpha=1e9, self_loops=True).nnz == 100


def test_modular_draws_k_in_inside_and_k_out_outside_each_module():
    n, n_modules, k_in, k_out = 103, 4, 7, 2
    module = module_of(n, n_modules)
    assert module.shape == (n,) and module.dtype == np.int64 and np.all(np.diff(module) >= 0)
    sizes = np.bincount(module)
    assert len(sizes) == n_modules and sizes.max() - sizes.min() <= 1
    W = modular(n, n_modules, k_in, k_out, seed=5)
    _assert_conventions(W, n)
    assert _no_self_loops(W)
    for i, r in enumerate(_rows(W)):
        assert np.sum(module[r] == module[i]) == k_in and np.sum(module[r] != module[i]) == k_out
    # Synapses between modules run both ways, so the modules' loops join into one component.
    assert strongly_connected_components(W)[0] == 1


@pytest.mark.parametrize("args, name", [
    ((10, 0, 1, 1), "n_modules"), ((10, 11, 1, 1), "n_modules"), ((10, 3, 3, 1), "k_in"),
    ((10, 3, 2, 7), "k_out"), ((10, 1, 2, 1), "k_out"), ((10, 2, -1, 1), "k_in"),
])
def test_modular_refuses_degrees_that_do_not_fit(args, name):
    with pytest.raises(ValueError, match=f"^{name}: expected"):
        modular(*args)


# --- check_graph --------------------------------------------------------------------------

def test_check_graph_returns_a_canonical_copy():
    # Row 0 lists column 2 before column 0, and column 2 twice.
    W = sp.csr_array((np.array([1.0, 2.0, 3.0]), np.array([2, 0, 2]), np.array([0, 3, 3, 3])),
                     shape=(3, 3))
    G = check_graph(W)
    _assert_conventions(G, 3)
    np.testing.assert_array_equal(G.toarray(), [[2, 0, 4], [0, 0, 0], [0, 0, 0]])
    assert np.array_equal(W.indices, [2, 0, 2])                  # the input is untouched
    G.data[:] = 0
    assert W.data[0] == 1.0                                      # and not shared


@pytest.mark.parametrize("convert", [sp.csr_matrix, sp.csc_array, sp.coo_array, sp.lil_array,
                                     sp.dok_array, sp.bsr_array, sp.dia_array])
def test_check_graph_accepts_every_sparse_format(convert):
    W = fixed_in_degree(12, 3, seed=0)
    G = check_graph(convert(W))
    _assert_conventions(G, 12)
    assert np.array_equal(G.toarray(), W.toarray())


def test_check_graph_sets_the_dtype():
    B = sp.csr_array(np.array([[0, 1], [1, 0]], dtype=bool))
    assert check_graph(B).dtype == np.float64
    assert check_graph(fixed_in_degree(5, 2, dtype=np.float32)).dtype == np.float32
    assert check_graph(ring(3), dtype=np.float32).dtype == np.float32
    with pytest.raises(ValueError, match="^dtype: expected"):
        check_graph(ring(3), dtype=np.int32)


def _bad_graphs():
    """(graph, message) pairs, each wrong in one way."""
    big = 2**31 - 1                           # read out of range, this index would crash
    out_of_range = sp.csr_array((np.ones(2), np.array([0, big]), np.array([0, 1, 2])),
                                shape=(2, 2))
    negative = sp.csr_array((np.ones(2), np.array([0, -1]), np.array([0, 1, 2])), shape=(2, 2))
    decreasing = sp.csr_array((np.ones(2), np.array([0, 1]), np.array([0, 2, 1])), shape=(2, 2))
    past_end = sp.csr_array((np.ones(2), np.array([0, 1]), np.array([0, 1, 2])), shape=(2, 2))
    past_end.indptr[-1] = 5                   # after construction, which checked it
    csc = sp.csc_array((np.ones(2), np.array([0, big]), np.array([0, 1, 2])), shape=(2, 2))
    coo = sp.coo_array((np.ones(2), (np.array([0, 1]), np.array([1, 0]))), shape=(2, 2))
    coo.row[0] = big                          # after construction, which checked it
    nan = _csr([[0, np.nan], [1, 0]])
    inf = _csr([[0, np.inf], [1, 0]])
    return [
        (out_of_range, "indices in \\[0, 1\\]"), (negative, "indices in \\[0, 1\\]"),
        (decreasing, "indptr to start at 0 and never decrease"),
        (past_end, "indptr\\[-1\\] <= len\\(indices\\)"), (csc, "indices in \\[0, 1\\]"),
        (coo, "rows in \\[0, 1\\]"), (nan, "finite weights"), (inf, "finite weights"),
        (sp.csr_array(np.ones((2, 3))), "square"), (sp.csr_array((0, 0)), "square"),
        (sp.coo_array(np.ones(3)), "square"),
        (sp.csr_array(np.array([[0, 1j], [1, 0]])), "real weights"),
    ]


@pytest.mark.parametrize("W, message", _bad_graphs())
def test_check_graph_refuses_bad_graphs_naming_the_argument(W, message):
    with pytest.raises(ValueError, match=f"^net: expected .*{message}"):
        check_graph(W, name="net")


def test_check_graph_refuses_dense_arrays_and_the_wrong_size():
    with pytest.raises(TypeError, match="^graph: expected a scipy.sparse .*csr_array"):
        check_graph(np.eye(3))
    with pytest.raises(ValueError, match="^W: expected shape \\(4, 4\\), got \\(3, 3\\)"):
        check_graph(ring(3), n=4, name="W")
    assert check_graph(ring(3), n=3).shape == (3, 3)


@pytest.mark.parametrize("fn", [
    spectral_radius, strongly_connected_components, reciprocity, henrici_departure, adjacency,
    lambda W: scale_spectral_radius(W, 1.0), lambda W: count_cycles(W, 3),
    lambda W: closed_walks(W, 3),
])
def test_every_statistic_checks_its_graph_as_W(fn):
    with pytest.raises(TypeError, match="^W: expected a scipy.sparse"):
        fn(np.eye(3))
    with pytest.raises(ValueError, match="^W: expected a square graph"):
        fn(sp.csr_array(np.ones((2, 3))))
    with pytest.raises(ValueError, match="^W: expected finite weights"):
        fn(_csr([[0, np.nan], [1, 0]]))


def test_bounds_are_documented_constants():
    assert graphs.COUNT_CYCLES_MAX_N == 2000 and graphs.HENRICI_MAX_N == 3000
    assert graphs.DENSE_EIGVALS_MAX_N < 1000          # so the n = 1000 test runs ARPACK


def test_a_long_ring_whose_eigenvalues_all_share_one_modulus_is_scaled():
    """ARPACK cannot separate n eigenvalues on one circle (it did not converge on ring(1000));
    the dense fallback answers."""
    W = graphs.scale_spectral_radius(graphs.ring(1000, weight=2.0), 0.99)
    assert graphs.spectral_radius(W) == pytest.approx(0.99, rel=1e-12)
    np.testing.assert_allclose(W.data, 0.99, rtol=1e-12)
