"""Loopy networks: large sparse random directed graphs, and the statistics of their cycles
(Part IV).

A network of n units is a ``scipy.sparse.csr_array`` W of shape (n, n) whose **row i holds
unit i's incoming synapses**: W[i, j] is the weight of the synapse j -> i, so that one step of
a network is the sparse product ``W @ h``. An edge j -> i is a *stored* entry of W: a synapse
whose weight happens to be 0 is still there (it can learn), so call ``W.eliminate_zeros()``
first to count only nonzero weights. Every graph made here has its indices sorted within each
row and no duplicates (canonical CSR), float64 weights unless ``dtype`` says otherwise, and no
self-loops unless asked for.

The generators are seeded (``np.random.default_rng(seed)``): the same arguments give the same
graph, bit for bit. Weights are N(0, 1), drawn after the structure; scale them with
:func:`scale_spectral_radius`. The statistics say how loopy a graph is: its strongly connected
components, its short cycles (:func:`count_cycles`, exact, small graphs) or closed walks
(:func:`closed_walks`, any size), its reciprocity, and how far W is from a normal matrix
(:func:`henrici_departure`).

Why the components come first: order the units component by component, downstream after
upstream, and W becomes block triangular, so its eigenvalues are those of its components'
diagonal blocks. A graph without cycles (a DAG) has only single units without self-loops as
components: all its eigenvalues are 0, and it forgets every input after at most n steps.
"""
from __future__ import annotations

from collections.abc import Callable

import networkx as nx
import numpy as np
from numpy.typing import DTypeLike
from scipy import linalg, sparse
from scipy.sparse import csgraph
from scipy.sparse.linalg import ArpackNoConvergence, eigs

from .checks import check_dtype, check_number, check_positive

__all__ = [
    "check_graph", "adjacency", "fixed_in_degree", "erdos_renyi", "ring", "small_world",
    "waxman", "modular", "module_of", "spectral_radius", "scale_spectral_radius",
    "strongly_connected_components", "count_cycles", "closed_walks", "reciprocity",
    "henrici_departure",
]

GraphLike = sparse.sparray | sparse.spmatrix

# Components up to this size get all their eigenvalues from LAPACK; larger ones go to ARPACK.
DENSE_EIGVALS_MAX_N = 500
# ARPACK asks for this many eigenvalues of largest modulus (in a Krylov space of EIGS_NCV):
# a random graph's spectrum fills a disk, many eigenvalues lie near its edge, and asking for
# one alone returned one of its neighbours, ~0.5 % short, for 5 of 10 seeds at n = 1000.
EIGS_K, EIGS_NCV = 16, 64
# ARPACK's restarts before a block small enough for the dense fallback gives up: a ring never
# converges, and ARPACK's default of 10 n restarts took a minute at n = 1000. Larger blocks keep
# the default (a random graph of 20,000 units needs more than 300).
EIGS_MAXITER = 300
# When ARPACK does not converge, blocks up to this size fall back to dense eigenvalues.
DENSE_FALLBACK_MAX_N = 4000
COUNT_CYCLES_MAX_N = 2000
HENRICI_MAX_N = 3000
# Waxman graphs are drawn this many rows at a time, so memory stays O(n) per row.
_WAXMAN_ROWS = 1024


def _check_int(value: int, name: str, low: int, high: int | None = None,
               why: str = "") -> int:
    """``value`` as an int if it is an integer (not a bool) in [low, high], else ValueError."""
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
            or value < low or (high is not None and value > high)):
        want = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        raise ValueError(f"{name}: expected {want}{why}, got {value!r}")
    return int(value)


def _check_compressed(W: GraphLike, name: str) -> None:
    """Check a CSR/CSC array's own arrays, which scipy does not check on construction, so that
    no later step reads or writes out of range."""
    n = W.shape[0]
    indptr, indices = np.asarray(W.indptr), np.asarray(W.indices)
    if (indptr.ndim != 1 or indices.ndim != 1 or indptr.dtype.kind not in "iu"
            or indices.dtype.kind not in "iu" or len(indptr) != n + 1):
        raise ValueError(f"{name}: expected 1-D integer indices and an indptr of length "
                         f"n + 1 = {n + 1}, got indices {indices.shape} {indices.dtype} and "
                         f"indptr {indptr.shape} {indptr.dtype}")
    if indptr[0] != 0 or np.any(np.diff(indptr) < 0):
        raise ValueError(f"{name}: expected indptr to start at 0 and never decrease, got "
                         f"{indptr}")
    nnz = int(indptr[-1])
    if nnz > len(indices) or len(indices) != len(W.data):
        raise ValueError(f"{name}: expected indptr[-1] <= len(indices) == len(data), got "
                         f"{nnz}, {len(indices)} and {len(W.data)}")
    _check_in_range(indices[:nnz], n, name, "indices")


def _check_in_range(index: np.ndarray, n: int, name: str, what: str) -> None:
    if index.size and (index.min() < 0 or index.max() >= n):
        raise ValueError(f"{name}: expected {what} in [0, {n - 1}], got values in "
                         f"[{index.min()}, {index.max()}]")


def check_graph(W: GraphLike, n: int | None = None, name: str = "graph",
                dtype: DTypeLike | None = None) -> sparse.csr_array:
    """Check a user-given directed graph and return it as a new canonical ``csr_array``.

    Any scipy sparse array or matrix is accepted (any format); a dense ndarray is refused, so
    that a large graph is never densified by accident: wrap a small one as
    ``scipy.sparse.csr_array(W)``. A CSR or CSC array's own arrays (indptr, indices) are
    checked before anything reads them, since scipy does not check them on construction and an
    out-of-range index would read or write outside memory.

    Parameters
    ----------
    W : scipy sparse array or matrix, shape (n, n)
        W[i, j] is the weight of the synapse j -> i.
    n : int or None
        The required number of units, or None for any.
    name : str
        The argument's name, used in error messages.
    dtype : dtype or None
        float32 or float64; None keeps float32 and float64 weights and turns integer or
        boolean ones into float64.

    Returns
    -------
    sparse.csr_array, shape (n, n)
        A copy, with indices sorted within each row and duplicates summed.

    Raises
    ------
    TypeError
        If ``W`` is not a scipy sparse array or matrix.
    ValueError
        Naming ``name``, if W is not square (or not n x n), is empty, has complex weights,
        NaN or Inf weights, an index out of range or an inconsistent indptr.
    """
    if not sparse.issparse(W):
        raise TypeError(f"{name}: expected a scipy.sparse array or matrix, got "
                        f"{type(W).__name__}; wrap a dense one as scipy.sparse.csr_array(W)")
    if W.ndim != 2 or W.shape[0] != W.shape[1] or W.shape[0] == 0:
        raise ValueError(f"{name}: expected a square graph of shape (n, n) with n >= 1, got "
                         f"shape {W.shape}")
    if n is not None and W.shape != (n, n):
        raise ValueError(f"{name}: expected shape ({n}, {n}), got {W.shape}")
    if W.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected real weights, got dtype {W.dtype}")
    if dtype is not None:
        dt = check_dtype(dtype)
    else:
        dt = W.dtype if W.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    if W.format in ("csr", "csc"):
        _check_compressed(W, name)
        W = W.tocsr()                        # for CSC this reads the indices: safe only now
    else:
        # Turning another format into COO indexes nothing by its indices; COO -> CSR does, so
        # the coordinates (which a user may have rewritten) are checked in between.
        W = W.tocoo()
        for axis, coord in (("rows", W.row), ("columns", W.col)):
            _check_in_range(np.asarray(coord), W.shape[0], name, axis)
        W = W.tocsr()
    nnz = W.indptr[-1]
    G = sparse.csr_array((W.data[:nnz], W.indices[:nnz], W.indptr), shape=W.shape, dtype=dt,
                         copy=True)
    G.sum_duplicates()
    if not np.all(np.isfinite(G.data)):
        bad = int(G.nnz - np.count_nonzero(np.isfinite(G.data)))
        raise ValueError(f"{name}: expected finite weights, got {bad} NaN or Inf entries")
    return G


def adjacency(W: GraphLike) -> sparse.csr_array:
    """The 0/1 adjacency A of a graph: A[i, j] = 1 where W stores the synapse j -> i.

    Parameters
    ----------
    W : scipy sparse array or matrix, shape (n, n)

    Returns
    -------
    sparse.csr_array, shape (n, n)
        float64 ones on W's stored entries.
    """
    return _pattern(check_graph(W, name="W"))


def _pattern(G: sparse.csr_array) -> sparse.csr_array:
    return sparse.csr_array((np.ones(G.nnz), G.indices, G.indptr), shape=G.shape)


# --- Generators ----------------------------------------------------------------------------

def _choose(rng: np.random.Generator, n: int, m: int, excluded: np.ndarray) -> np.ndarray:
    """m distinct units drawn uniformly from range(n) less the sorted units ``excluded``,
    returned sorted (m,)."""
    r = rng.choice(n - len(excluded), size=m, replace=False)
    # The r-th allowed unit is r plus the number of excluded units at or below it.
    return np.sort(r + np.searchsorted(excluded - np.arange(len(excluded)), r, side="right"))


def _with_normal_weights(rows: list[np.ndarray], rng: np.random.Generator,
                         dtype: np.dtype) -> sparse.csr_array:
    """The graph whose row i holds the sorted presynaptic units ``rows[i]``, with independent
    N(0, 1) weights drawn from ``rng`` after the structure."""
    n = len(rows)
    indptr = np.zeros(n + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = np.concatenate(rows).astype(np.int64, copy=False)
    data = rng.standard_normal(indptr[-1]).astype(dtype, copy=False)
    return sparse.csr_array((data, indices, indptr), shape=(n, n))


def _others(self_loops: bool) -> Callable[[int], np.ndarray]:
    """The units that row i may not choose: itself, unless self-loops are allowed."""
    none = np.zeros(0, dtype=np.int64)
    return (lambda i: none) if self_loops else (lambda i: np.array([i]))


def fixed_in_degree(n: int, k: int, seed: int = 0, dtype: DTypeLike = np.float64,
                    self_loops: bool = False) -> sparse.csr_array:
    """A random graph in which every unit receives exactly k synapses.

    Each unit's k presynaptic units are drawn uniformly without replacement from the other
    n - 1 units (all n with ``self_loops``), independently of the other units; the weights are
    N(0, 1). So nnz = n k, and a unit's out-degree is Binomial(n - 1, k / (n - 1)) distributed.

    Parameters
    ----------
    n : int
        Number of units, at least 2.
    k : int
        In-degree, in [1, n - 1] ([1, n] with self-loops).
    seed : int
        Seed of ``np.random.default_rng``.
    dtype : dtype
        float32 or float64.
    self_loops : bool
        Whether a unit may receive a synapse from itself.

    Returns
    -------
    sparse.csr_array, shape (n, n)

    Raises
    ------
    ValueError
        Naming ``n``, ``k`` or ``dtype`` when out of range.
    """
    n = _check_int(n, "n", 2)
    k = _check_int(k, "k", 1, n if self_loops else n - 1,
                   f" ({'n' if self_loops else 'n - 1'} = "
                   f"{n if self_loops else n - 1} is the most there are to choose from)")
    dt, rng, others = check_dtype(dtype), np.random.default_rng(seed), _others(self_loops)
    return _with_normal_weights([_choose(rng, n, k, others(i)) for i in range(n)], rng, dt)


def erdos_renyi(n: int, p: float, seed: int = 0, dtype: DTypeLike = np.float64,
                self_loops: bool = False) -> sparse.csr_array:
    """A directed Erdos-Renyi graph: each synapse j -> i (j != i unless ``self_loops``) exists
    independently with probability p; the weights are N(0, 1).

    Drawn row by row without visiting all n^2 pairs: unit i's in-degree is
    Binomial(n - 1, p) (Binomial(n, p) with self-loops), and given it, its presynaptic units
    are a uniform random subset.

    Parameters
    ----------
    n : int
        Number of units, at least 2.
    p : float
        Connection probability, in [0, 1].
    seed : int
        Seed of ``np.random.default_rng``.
    dtype : dtype
        float32 or float64.
    self_loops : bool
        Whether a unit may receive a synapse from itself.

    Returns
    -------
    sparse.csr_array, shape (n, n)

    Raises
    ------
    ValueError
        Naming ``n``, ``p`` or ``dtype`` when out of range.
    """
    n = _check_int(n, "n", 2)
    p = check_number(p, "p", 0.0, 1.0)
    dt, rng, others = check_dtype(dtype), np.random.default_rng(seed), _others(self_loops)
    degrees = rng.binomial(n if self_loops else n - 1, p, size=n)
    return _with_normal_weights([_choose(rng, n, int(d), others(i))
                                 for i, d in enumerate(degrees)], rng, dt)


def ring(n: int, weight: float = 1.0, dtype: DTypeLike = np.float64) -> sparse.csr_array:
    """The directed cycle 0 -> 1 -> ... -> n-1 -> 0: W[(i + 1) % n, i] = weight.

    The simplest loopy network: W is ``weight`` times a cyclic permutation, a normal matrix
    whose eigenvalues are ``weight`` times the n-th roots of unity.

    Parameters
    ----------
    n : int
        Number of units, at least 2.
    weight : float
        The weight of every synapse.
    dtype : dtype
        float32 or float64.

    Returns
    -------
    sparse.csr_array, shape (n, n)

    Raises
    ------
    ValueError
        Naming ``n``, ``weight`` or ``dtype`` when invalid.
    """
    n = _check_int(n, "n", 2)
    weight = check_number(weight, "weight")
    data = np.full(n, weight, dtype=check_dtype(dtype))
    # Row i's one synapse comes from i - 1.
    return sparse.csr_array((data, (np.arange(n) - 1) % n, np.arange(n + 1)), shape=(n, n))


def small_world(n: int, k: int, p: float, seed: int = 0,
                dtype: DTypeLike = np.float64) -> sparse.csr_array:
    """A directed Watts-Strogatz graph: a ring lattice with a fraction p of its synapses
    rewired; every unit keeps in-degree k.

    In the lattice unit i receives from its k nearest predecessors i-1, ..., i-k (mod n).
    Each of those synapses is then marked, independently with probability p, and the marked
    ones of unit i get new presynaptic units, drawn uniformly without replacement from the
    units that are neither i nor one of its unmarked predecessors. So p = 0 is the lattice
    (k = 1: the :func:`ring`), and p = 1 is a :func:`fixed_in_degree` graph; in between, a few
    long-range shortcuts make paths short while most loops stay local. Weights are N(0, 1).

    Parameters
    ----------
    n : int
        Number of units, at least 2.
    k : int
        In-degree, in [1, n - 1].
    p : float
        Rewiring probability, in [0, 1].
    seed : int
        Seed of ``np.random.default_rng``.
    dtype : dtype
        float32 or float64.

    Returns
    -------
    sparse.csr_array, shape (n, n)

    Raises
    ------
    ValueError
        Naming ``n``, ``k``, ``p`` or ``dtype`` when out of range.
    """
    n = _check_int(n, "n", 2)
    k = _check_int(k, "k", 1, n - 1, f" (n - 1 = {n - 1} predecessors to choose from)")
    p = check_number(p, "p", 0.0, 1.0)
    dt, rng = check_dtype(dtype), np.random.default_rng(seed)
    moved = rng.random((n, k)) < p                            # (n, k) marked lattice synapses
    rows = []
    for i in range(n):
        kept = (i - 1 - np.arange(k))[~moved[i]] % n
        new = _choose(rng, n, k - len(kept), np.sort(np.append(kept, i)))
        rows.append(np.sort(np.concatenate((kept, new))))
    return _with_normal_weights(rows, rng, dt)


def _distances(pos: np.ndarray, rows: slice) -> np.ndarray:
    """Euclidean distances from the units ``rows`` to all units, (len(rows), n)."""
    diff = pos[rows, None, :] - pos[None, :, :]
    return np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))


def waxman(n: int, alpha: float = 0.1, beta: float = 0.4, seed: int = 0,
           dtype: DTypeLike = np.float64, self_loops: bool = False) -> sparse.csr_array:
    """A directed Waxman graph: units at random places, mostly connected to their neighbours.

    The n units lie uniformly at random in the unit square, and each synapse j -> i exists,
    independently of every other (of i -> j too), with probability ::

        P(j -> i) = beta * exp(-d(i, j) / (alpha * L)),

    d the Euclidean distance and L the largest distance between two units. Small ``alpha``
    makes the graph local; ``beta`` sets its density. The names follow networkx's
    (undirected) ``waxman_graph``; the local loopy networks of shariq/local_loopy_networks use
    such graphs (with the two names swapped, in three dimensions, one direction per pair).
    Weights are N(0, 1). Cost: O(n^2) time; the pairs are drawn 1024 rows at a time.

    Parameters
    ----------
    n : int
        Number of units, at least 2.
    alpha : float
        Length scale, as a fraction of L; positive.
    beta : float
        Connection probability at distance 0, in (0, 1].
    seed : int
        Seed of ``np.random.default_rng``: the positions, then the synapses, then the weights.
    dtype : dtype
        float32 or float64.
    self_loops : bool
        Whether a unit may receive a synapse from itself (with probability ``beta``).

    Returns
    -------
    sparse.csr_array, shape (n, n)

    Raises
    ------
    ValueError
        Naming ``n``, ``alpha``, ``beta`` or ``dtype`` when out of range.
    """
    n = _check_int(n, "n", 2)
    alpha = float(check_positive(alpha, "alpha"))
    beta = check_number(beta, "beta", 0.0, 1.0, low_open=True)
    dt, rng = check_dtype(dtype), np.random.default_rng(seed)
    pos = rng.random((n, 2))                                  # (n, 2)
    blocks = [slice(s, min(s + _WAXMAN_ROWS, n)) for s in range(0, n, _WAXMAN_ROWS)]
    L = max(_distances(pos, b).max() for b in blocks)
    rows = []
    for b in blocks:
        prob = beta * np.exp(-_distances(pos, b) / (alpha * L))   # (rows in b, n)
        edge = rng.random(prob.shape) < prob
        if not self_loops:
            edge[np.arange(b.stop - b.start), np.arange(b.start, b.stop)] = False
        rows.extend(np.flatnonzero(e) for e in edge)
    return _with_normal_weights(rows, rng, dt)


def module_of(n: int, n_modules: int) -> np.ndarray:
    """Each unit's module in a :func:`modular` graph: contiguous blocks of sizes that differ by
    at most one, module 0 first.

    Parameters
    ----------
    n : int
        Number of units.
    n_modules : int
        Number of modules, in [1, n].

    Returns
    -------
    np.ndarray, shape (n,)
        int64 module indices, non-decreasing.

    Raises
    ------
    ValueError
        Naming ``n`` or ``n_modules`` when out of range.
    """
    n = _check_int(n, "n", 1)
    n_modules = _check_int(n_modules, "n_modules", 1, n, " (at most one module per unit)")
    return np.arange(n, dtype=np.int64) * n_modules // n


def modular(n: int, n_modules: int, k_in: int, k_out: int, seed: int = 0,
            dtype: DTypeLike = np.float64) -> sparse.csr_array:
    """A modular graph: dense random loops within modules, a few synapses between them.

    The units are split into ``n_modules`` contiguous modules (:func:`module_of`); every unit
    receives k_in synapses from other units of its own module and k_out from units outside it,
    each set drawn uniformly without replacement. Weights are N(0, 1). Give each module its own
    timescale through a per-unit leak, e.g. for three modules ::

        alpha = np.array([0.5, 0.1, 0.02])[module_of(n, 3)]     # (n,)

    Parameters
    ----------
    n : int
        Number of units, at least 2.
    n_modules : int
        Number of modules, in [1, n].
    k_in : int
        Synapses from within the module, in [0, s - 1] for the smallest module size s.
    k_out : int
        Synapses from other modules, in [0, n - S] for the largest module size S.
    seed : int
        Seed of ``np.random.default_rng``.
    dtype : dtype
        float32 or float64.

    Returns
    -------
    sparse.csr_array, shape (n, n)

    Raises
    ------
    ValueError
        Naming ``n``, ``n_modules``, ``k_in``, ``k_out`` or ``dtype`` when out of range.
    """
    n = _check_int(n, "n", 2)
    module = module_of(n, n_modules)
    sizes = np.bincount(module)
    k_in = _check_int(k_in, "k_in", 0, int(sizes.min()) - 1,
                      f" (the smallest module has {sizes.min()} units)")
    k_out = _check_int(k_out, "k_out", 0, n - int(sizes.max()),
                       f" (the largest module leaves {n - sizes.max()} units outside it)")
    dt, rng = check_dtype(dtype), np.random.default_rng(seed)
    starts = np.concatenate(([0], np.cumsum(sizes)))
    rows = []
    for lo, hi in zip(starts[:-1], starts[1:]):
        inside = np.arange(lo, hi)
        for i in range(lo, hi):
            within = lo + _choose(rng, hi - lo, k_in, np.array([i - lo]))
            rows.append(np.sort(np.concatenate((within, _choose(rng, n, k_out, inside)))))
    return _with_normal_weights(rows, rng, dt)


# --- Spectra -------------------------------------------------------------------------------

def _components(G: sparse.csr_array) -> tuple[int, np.ndarray]:
    count, labels = csgraph.connected_components(_pattern(G), directed=True,
                                                 connection="strong")
    return int(count), labels.astype(np.int64)


def _block_radius(B: sparse.csr_array) -> float:
    """The spectral radius of one strongly connected block (square, float64)."""
    m = B.shape[0]
    if m <= DENSE_EIGVALS_MAX_N:
        return float(np.abs(np.linalg.eigvals(B.toarray())).max())
    # A seeded start vector: ARPACK's own changes between calls, and with it the last bits.
    v0 = np.random.default_rng(0).standard_normal(m)
    try:
        lam = eigs(B, k=EIGS_K, ncv=EIGS_NCV, which="LM", v0=v0, return_eigenvectors=False,
                   maxiter=EIGS_MAXITER if m <= DENSE_FALLBACK_MAX_N else None)
    except ArpackNoConvergence:
        # Many eigenvalues of one modulus (a ring has all n on a circle) leave ARPACK nothing
        # to separate; LAPACK's dense solver still answers for a few thousand units.
        if m > DENSE_FALLBACK_MAX_N:
            raise ValueError(f"W: ARPACK did not converge on a strongly connected block of "
                             f"{m} units (many eigenvalues of equal modulus, as on a ring?), "
                             f"and the dense fallback stops at {DENSE_FALLBACK_MAX_N} "
                             f"units") from None
        lam = np.linalg.eigvals(B.toarray())
    return float(np.abs(lam).max())


def _spectral_radius(G: sparse.csr_array) -> float:
    count, labels = _components(G)
    sizes = np.bincount(labels, minlength=count)
    # A unit alone in its component has one cycle at most: its self-loop.
    radius = float(np.abs(G.diagonal()[sizes[labels] == 1]).max(initial=0.0))
    order = np.argsort(labels, kind="stable")
    ends = np.cumsum(sizes)
    G64 = G.astype(np.float64, copy=False)
    for c in np.flatnonzero(sizes > 1):
        units = order[ends[c] - sizes[c]:ends[c]]
        radius = max(radius, _block_radius(G64[units][:, units]))
    return radius


def spectral_radius(W: GraphLike) -> float:
    """The largest modulus of W's eigenvalues, found component by component.

    W's eigenvalues are those of its strongly connected components' blocks (see the module's
    docstring), so a graph without cycles gets exactly 0. A component of at most
    ``DENSE_EIGVALS_MAX_N`` = 500 units gets all its eigenvalues from ``np.linalg.eigvals``;
    a larger one asks ARPACK (``scipy.sparse.linalg.eigs``, ``which="LM"``) for its
    ``EIGS_K`` = 16 eigenvalues of largest modulus, not one alone: the spectrum of a random
    graph fills a disk, and for one alone ARPACK often returns a neighbour of the largest.
    The start vector is seeded, so the result is the same at every call.

    Parameters
    ----------
    W : scipy sparse array or matrix, shape (n, n)

    Returns
    -------
    float
        The spectral radius, computed in float64.

    Raises
    ------
    TypeError, ValueError
        Naming ``W`` when it is not a valid graph (:func:`check_graph`).
    """
    return _spectral_radius(check_graph(W, name="W"))


def scale_spectral_radius(W: GraphLike, rho: float) -> sparse.csr_array:
    """W scaled to spectral radius rho: a new graph W * (rho / spectral_radius(W)).

    The spectral radius sets how long activity echoes around a network's loops: below 1 a
    linear network forgets its inputs geometrically, above 1 it amplifies them.

    Parameters
    ----------
    W : scipy sparse array or matrix, shape (n, n)
    rho : float
        The spectral radius wanted, finite and >= 0.

    Returns
    -------
    sparse.csr_array, shape (n, n)
        Same structure and dtype as W (float64 for integer weights).

    Raises
    ------
    ValueError
        Naming ``rho`` when negative or not finite, and ``W`` when it is invalid or its
        spectral radius is 0 (a nilpotent W, e.g. a graph without cycles), which no factor
        can change.
    """
    rho = check_number(rho, "rho", 0.0)
    G = check_graph(W, name="W")
    radius = _spectral_radius(G)
    if not radius > 0.0:
        raise ValueError("W: expected a graph with spectral radius > 0, got 0 (W is "
                         "nilpotent, e.g. a graph without cycles), which no factor can scale")
    G.data *= rho / radius
    return G


def henrici_departure(W: GraphLike) -> float:
    """Henrici's departure from normality, relative to W's size ::

        dep(W) = sqrt(||W||_F^2 - sum_i |lambda_i|^2) / ||W||_F.

    It is 0 for a normal matrix (W W^T = W^T W, e.g. a ring or a symmetric W), whose
    eigenvectors are orthogonal, and near 1 for a feed-forward chain, whose eigenvalues are all
    0 yet which amplifies transients. Computed as ||N||_F / ||W||_F from the complex Schur
    form W = Q (D + N) Q^H (D diagonal, N strictly upper triangular), which is the same number
    without the cancellation in the difference above (that would leave ~1e-8 for a normal
    matrix). Dense: O(n^3) time and O(n^2) memory, so n is limited to ``HENRICI_MAX_N`` = 3000.

    Parameters
    ----------
    W : scipy sparse array or matrix, shape (n, n)

    Returns
    -------
    float
        In [0, 1]; 0 for W = 0.

    Raises
    ------
    ValueError
        Naming ``W`` when it is invalid or has more than 3000 units.
    """
    G = check_graph(W, name="W")
    if G.shape[0] > HENRICI_MAX_N:
        raise ValueError(f"W: henrici_departure needs dense eigenvalues (O(n^3)) and takes at "
                         f"most {HENRICI_MAX_N} units, got n = {G.shape[0]}")
    dense = G.toarray().astype(np.float64, copy=False)
    norm = np.linalg.norm(dense)
    if norm == 0.0:
        return 0.0
    T = linalg.schur(dense, output="complex")[0]
    return float(np.linalg.norm(np.triu(T, 1)) / norm)


# --- Structure -----------------------------------------------------------------------------

def strongly_connected_components(W: GraphLike) -> tuple[int, np.ndarray]:
    """The strongly connected components of W: sets of units each of which reaches every other
    along directed paths.

    Parameters
    ----------
    W : scipy sparse array or matrix, shape (n, n)

    Returns
    -------
    n_components : int
    labels : np.ndarray, shape (n,)
        Each unit's component, int64 in [0, n_components).

    Raises
    ------
    TypeError, ValueError
        Naming ``W`` when it is not a valid graph (:func:`check_graph`).
    """
    return _components(check_graph(W, name="W"))


def count_cycles(W: GraphLike, max_length: int) -> np.ndarray:
    """The exact number of simple directed cycles of each length up to ``max_length``.

    A simple cycle visits no unit twice; it is counted once, whatever unit it starts from (a
    self-loop is a cycle of length 1, a reciprocal pair j <-> i one of length 2). The cycles
    are enumerated one by one (``networkx.simple_cycles`` with ``length_bound``), which takes
    time at least proportional to their number, and that grows like k^L / L in a random graph
    of in-degree k. So n is limited to ``COUNT_CYCLES_MAX_N`` = 2000; on larger graphs use
    :func:`closed_walks`.

    Parameters
    ----------
    W : scipy sparse array or matrix, shape (n, n)
    max_length : int
        The longest cycle length counted, at least 1.

    Returns
    -------
    np.ndarray, shape (max_length + 1,)
        int64; entry L is the number of cycles of length L (entry 0 is 0).

    Raises
    ------
    ValueError
        Naming ``max_length`` when it is not a positive integer, and ``W`` when it is invalid
        or has more than 2000 units.
    """
    max_length = _check_int(max_length, "max_length", 1)
    G = check_graph(W, name="W")
    if G.shape[0] > COUNT_CYCLES_MAX_N:
        raise ValueError(f"W: count_cycles enumerates every cycle and takes at most "
                         f"{COUNT_CYCLES_MAX_N} units, got n = {G.shape[0]}; use "
                         "closed_walks(W, max_length) on large graphs")
    # networkx reads entry [i, j] as the edge i -> j: our transpose.
    digraph = nx.from_scipy_sparse_array(_pattern(G).T, create_using=nx.DiGraph)
    counts = np.zeros(max_length + 1, dtype=np.int64)
    for cycle in nx.simple_cycles(digraph, length_bound=max_length):
        counts[len(cycle)] += 1
    return counts


def closed_walks(W: GraphLike, max_length: int) -> np.ndarray:
    """The number of closed walks of each length up to ``max_length``: trace(A^L), with A the
    0/1 :func:`adjacency`.

    A closed walk may repeat units: each simple cycle of length L gives L closed walks (one per
    starting unit), and a cycle walked twice, or two cycles through one unit, give more. So ::

        count_cycles(W, L)[L] <= closed_walks(W, L)[L] / L,

    with equality while L is below twice the shortest cycle length, and closed walks are an
    upper proxy for cycles on graphs too large to enumerate them. Computed by sparse products
    A^L = A^(L-1) A, in float64 (exact below 2^53); A^L fills in as L grows (up to n^2
    entries), which bounds the lengths a large graph allows.

    Parameters
    ----------
    W : scipy sparse array or matrix, shape (n, n)
    max_length : int
        The longest walk length, at least 1.

    Returns
    -------
    np.ndarray, shape (max_length + 1,)
        float64; entry L is trace(A^L) (entry 0 is trace(I) = n).

    Raises
    ------
    ValueError
        Naming ``max_length`` when it is not a positive integer, and ``W`` when it is invalid.
    """
    max_length = _check_int(max_length, "max_length", 1)
    A = _pattern(check_graph(W, name="W"))
    walks = np.empty(max_length + 1)
    walks[0] = A.shape[0]
    power = A
    for length in range(1, max_length + 1):
        walks[length] = power.diagonal().sum()
        if length < max_length:
            power = power @ A
    return walks


def reciprocity(W: GraphLike) -> float:
    """The fraction of synapses j -> i whose reverse i -> j also exists (self-loops left out).

    1 for an undirected (symmetric) structure, 0 for an oriented one such as a ring of more
    than two units; a directed Erdos-Renyi graph has about p.

    Parameters
    ----------
    W : scipy sparse array or matrix, shape (n, n)

    Returns
    -------
    float
        In [0, 1].

    Raises
    ------
    ValueError
        Naming ``W`` when it is invalid or has no synapse besides self-loops.
    """
    G = check_graph(W, name="W").tocoo()
    rows, cols = G.row, G.col
    off = rows != cols
    if not off.any():
        raise ValueError("W: expected at least one synapse that is not a self-loop; "
                         "reciprocity is undefined without one")
    A = sparse.csr_array((np.ones(off.sum()), (rows[off], cols[off])), shape=G.shape)
    return float(A.multiply(A.T).sum() / A.nnz)
