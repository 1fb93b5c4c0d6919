"""The leaky rate network of Part II on a sparse graph (Part IV).

The dynamics are those of :mod:`loopy_edu.rnn`, from ``h_0 = 0`` ::

    u_t = W_rec h_{t-1} + W_in x_t + b_rec
    h_t = (1 − α) ⊙ h_{t-1} + α ⊙ act(u_t)
    y_t = W_out h_t + b_out

but ``W_rec`` is a sparse directed graph (:mod:`loopy_edu.graphs`: row i holds unit i's incoming
synapses) and ``α`` may differ from unit to unit (several timescales). A step costs O(nnz)
instead of O(N²), and so does its exact gradient: backpropagation through time on the graph,
with a gradient only on the synapses that exist. With ``δ_t = ∂L/∂u_t`` (B, N) the backward
step reads ::

    δ_t         = α ⊙ act'(u_t) ⊙ ∂L/∂h_t
    ∂L/∂W_rec_e = Σ_t Σ_b δ_t[b, i] h_{t-1}[b, j]      for the synapse e: j -> i
    ∂L/∂h_{t-1} = ∂L/∂h_{t-1} (readout) + (1 − α) ⊙ ∂L/∂h_t + W_recᵀ δ_t

where ``W_recᵀ δ_t`` scatters each row i's synapses to their presynaptic units j: the dense
``du @ W_rec`` of :func:`loopy_edu.bptt.backward`, read only where the graph has an edge.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike
from scipy import sparse

from . import graphs
from .activations import ACTIVATIONS, CODES
from .backend import DEFAULT, check_backend, kernels
from .checks import check_array, check_choice, check_dtype, check_number, check_positive
from .readout import (LOSSES, RecurrentModel, as_sequences, check_sequences, readout,
                      readout_grads, sequence_loss)

if TYPE_CHECKING:
    from .tasks import Task


def _identity(z: np.ndarray) -> np.ndarray:
    return z


def _ones(a: np.ndarray) -> np.ndarray:
    return np.ones_like(a)


#: The activations of :mod:`loopy_edu.activations`, and ``"linear"`` (act(u) = u), whose
#: network is the linear system of memory-capacity theory.
UNIT_ACTIVATIONS = {**ACTIVATIONS, "linear": (_identity, _ones)}
#: Their codes for the kernels; ``"linear"`` is the one the shared scalar functions lack.
UNIT_CODES = {**CODES, "linear": 3}


def forward(W: sparse.csr_array, W_in: np.ndarray, b_rec: np.ndarray, xs: np.ndarray,
            alpha: float | np.ndarray, activation: str) -> tuple[np.ndarray, np.ndarray]:
    """Run the network over xs (T, B, n_in) from h_0 = 0; returns the states hs (T, B, N) and
    the activations act(u_t) (T, B, N), which the backward pass needs for act'(u_t).

    Parameters
    ----------
    W : sparse.csr_array, shape (N, N)
        The recurrent weights: W[i, j] is the synapse j -> i.
    W_in : np.ndarray, shape (N, n_in)
    b_rec : np.ndarray, shape (N,)
    xs : np.ndarray, shape (T, B, n_in)
    alpha : float or np.ndarray, shape (N,)
        The leak of every unit, or of each, in (0, 1].
    activation : str
        A key of :data:`UNIT_ACTIVATIONS`.

    Returns
    -------
    hs, acts : np.ndarray, shape (T, B, N)
    """
    act, _ = UNIT_ACTIVATIONS[activation]
    T, B, _ = xs.shape
    hs = np.empty((T, B, W.shape[0]), dtype=xs.dtype)
    acts = np.empty_like(hs)
    h = np.zeros((B, W.shape[0]), dtype=xs.dtype)
    for t in range(T):
        u = (W @ h.T).T + xs[t] @ W_in.T + b_rec                # (B, N), O(nnz) per sequence
        acts[t] = act(u)
        h = hs[t] = (1 - alpha) * h + alpha * acts[t]
    return hs, acts


def backward(W: sparse.csr_array, xs: np.ndarray, hs: np.ndarray, acts: np.ndarray,
             dhs: np.ndarray, alpha: float | np.ndarray,
             activation: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The backward recursion through the sparse recurrent layer (the module docstring's
    equations).

    Parameters
    ----------
    W : sparse.csr_array, shape (N, N)
        The recurrent weights, in canonical CSR.
    xs : np.ndarray, shape (T, B, n_in)
    hs, acts : np.ndarray, shape (T, B, N)
        From :func:`forward`.
    dhs : np.ndarray, shape (T, B, N)
        ∂L/∂h_t through the readout alone.
    alpha : float or np.ndarray, shape (N,)
    activation : str

    Returns
    -------
    gW_rec : np.ndarray, shape (nnz,)
        The gradient of each synapse, in the order of ``W.data``.
    gW_in : np.ndarray, shape (N, n_in)
    gb_rec : np.ndarray, shape (N,)
    """
    _, act_grad = UNIT_ACTIVATIONS[activation]
    T, B, N = hs.shape
    post = np.repeat(np.arange(N), np.diff(W.indptr))    # the unit i of each synapse j -> i
    pre = W.indices
    gW_rec = np.zeros(W.nnz, dtype=hs.dtype)
    gW_in = np.zeros((N, xs.shape[2]), dtype=hs.dtype)
    gb_rec = np.zeros(N, dtype=hs.dtype)
    dh = np.zeros((B, N), dtype=hs.dtype)                 # ∂L/∂h_t through h_{t+1}, ..., h_T
    for t in range(T - 1, -1, -1):
        dh = dh + dhs[t]                                  # all of ∂L/∂h_t
        du = alpha * dh * act_grad(acts[t])               # δ_t = ∂L/∂u_t
        if t > 0:                                         # h_0 = 0 adds nothing to gW_rec
            gW_rec += np.sum(du[:, post] * hs[t - 1][:, pre], axis=0)
        gW_in += du.T @ xs[t]
        gb_rec += du.sum(axis=0)
        dh = (1 - alpha) * dh + du @ W                    # du @ W is W_recᵀ δ_t, row by row
    return gW_rec, gW_in, gb_rec


def _structure(graph: dict, n_rec: int) -> sparse.csr_array:
    """The graph of a structure ``{"indptr": [...], "indices": [...]}`` (as config() gives it),
    with zero weights."""
    if not isinstance(graph, dict) or set(graph) != {"indptr", "indices"}:
        raise ValueError(f"graph: expected a scipy.sparse array, None, or a dict with the keys "
                         f"'indptr' and 'indices', got {type(graph).__name__}")
    try:
        indptr, indices = (np.asarray(graph[k], dtype=np.int64) for k in ("indptr", "indices"))
    except (TypeError, ValueError, OverflowError):
        raise ValueError("graph: expected integer lists 'indptr' and 'indices'") from None
    if indptr.ndim != 1 or indptr.size != n_rec + 1:
        raise ValueError(f"graph: expected 'indptr' of length n_rec + 1 = {n_rec + 1}, got "
                         f"shape {indptr.shape}")
    return sparse.csr_array((np.zeros(indices.size), indices, indptr), shape=(n_rec, n_rec))


class LoopyNetwork(RecurrentModel):
    """The leaky RNN of Part II (:class:`loopy_edu.rnn.RNN`) whose recurrent weights live on a
    sparse directed graph.

    ``params``: ``W_in`` (n_rec, n_in), ``W_rec`` (nnz,) the synapses' weights in the graph's
    CSR order, ``b_rec`` (n_rec,), ``W_out`` (n_out, n_rec), ``b_out`` (n_out,). ``W_in`` starts
    N(0, 1) · ``input_scale``; ``W_out`` N(0, 1/n_rec) as the RNN's readout; biases at zero.
    ``graph`` (a property) is the ``csr_array`` whose ``data`` *is* ``params["W_rec"]``, so an
    optimizer's in-place update changes it; its structure is fixed at construction.

    Without a ``graph``, every unit receives ``k`` synapses
    (:func:`loopy_edu.graphs.fixed_in_degree`) with N(0, 1) weights scaled to spectral radius
    ``spectral_radius``. A given scipy sparse graph is used **as given**: its structure and its
    weights (canonicalised: sorted indices, duplicates summed); ``k`` and ``spectral_radius``
    are then ignored, and the model records ``spectral_radius=None``. A dict
    ``{"indptr": [...], "indices": [...]}`` gives a structure alone: its weights are drawn
    N(0, 1) and scaled like a drawn graph's (unscaled when ``spectral_radius`` is None).
    :meth:`config` records a given graph in that form, with ``spectral_radius=None``, so that
    ``LoopyNetwork(**m.config())`` rebuilds the structure (even of a graph without cycles,
    which no factor can scale) and a checkpoint restores the weights from ``params``.

    Parameters
    ----------
    n_in : int
        Number of inputs.
    n_rec : int
        Number of recurrent units, N (at least 2 without a graph).
    n_out : int
        Number of outputs.
    graph : scipy sparse array, dict or None
        The recurrent graph, shape (n_rec, n_rec); None draws one.
    k : int
        In-degree of a drawn graph, in [1, n_rec − 1].
    spectral_radius : float or None
        Spectral radius of a drawn graph's weights (>= 0); None leaves them N(0, 1).
    alpha : float or array_like, shape (n_rec,)
        The leak, in (0, 1], of all units or of each; 1 is the plain network.
    input_scale : float
        Standard deviation of ``W_in``'s entries (>= 0).
    activation : str
        ``"tanh"``, ``"sigmoid"``, ``"relu"`` or ``"linear"``.
    seed : int
        Seeds the graph and the initial weights.
    dtype : dtype
        float32 or float64, for every parameter.
    backend : str
        ``"numpy"``, ``"numba"`` or ``"cuda"``.

    Raises
    ------
    ValueError
        Naming the argument that is out of range, of the wrong shape, not finite or not one of
        the choices (a malformed graph: :func:`loopy_edu.graphs.check_graph`).
    TypeError
        If ``graph`` is a dense array (wrap it as ``scipy.sparse.csr_array``).
    """

    def __init__(self, n_in: int, n_rec: int, n_out: int,
                 graph: sparse.sparray | sparse.spmatrix | dict | None = None, k: int = 10,
                 spectral_radius: float | None = 0.95, alpha: float | ArrayLike = 1.0,
                 input_scale: float = 1.0, activation: str = "tanh", seed: int = 0,
                 dtype: DTypeLike = np.float64, backend: str = DEFAULT) -> None:
        for name, n in (("n_in", n_in), ("n_rec", n_rec), ("n_out", n_out)):
            check_positive(n, name, integer=True)
        self.n_in, self.n_rec, self.n_out = n_in, n_rec, n_out
        self.activation = check_choice(activation, "activation", UNIT_ACTIVATIONS)
        self.dtype = check_dtype(dtype)
        self.backend = check_backend(backend)
        self.k = check_positive(k, "k", integer=True)
        self.spectral_radius = (None if spectral_radius is None
                                else check_number(spectral_radius, "spectral_radius", 0.0))
        self.input_scale = check_number(input_scale, "input_scale", 0.0)
        self.alpha = self._check_alpha(alpha)
        self.seed, rng = seed, np.random.default_rng(seed)
        self._given = graph is not None                   # config() then records the structure
        if graph is None:
            if n_rec < 2:
                raise ValueError(f"n_rec: expected at least 2 units to draw a graph, got "
                                 f"{n_rec}")
            if k > n_rec - 1:
                raise ValueError(f"k: expected an integer in [1, n_rec - 1] = [1, {n_rec - 1}] "
                                 f"(a drawn graph has no self-loops), got {k!r}")
            G = graphs.fixed_in_degree(n_rec, k, seed=seed)
        elif isinstance(graph, dict):
            G = graphs.check_graph(_structure(graph, n_rec), n=n_rec, name="graph")
            G.data[:] = rng.standard_normal(G.nnz)
        else:
            G = graphs.check_graph(graph, n=n_rec, name="graph")
            self.spectral_radius = None                   # ignored: the weights are as given
        if self.spectral_radius is not None:
            G = graphs.scale_spectral_radius(G, self.spectral_radius)
        # scipy keeps int32 indices for the graph; the kernels get unsigned copies, which spare
        # Numba the sign check of every gathered index.
        self._indptr, self._indices = G.indptr.astype(np.int32), G.indices.astype(np.int32)
        self._kernel_index = (G.indptr.astype(np.uint32), G.indices.astype(np.uint32))
        self.params = {"W_in": rng.standard_normal((n_rec, n_in)) * self.input_scale,
                       "W_rec": G.data,
                       "b_rec": np.zeros(n_rec),
                       "W_out": rng.standard_normal((n_out, n_rec)) / np.sqrt(n_rec),
                       "b_out": np.zeros(n_out)}
        self.params = {name: p.astype(self.dtype) for name, p in self.params.items()}

    def _check_alpha(self, alpha: float | ArrayLike) -> float | np.ndarray:
        """A scalar leak as a float, a per-unit one as a read-only array (n_rec,) of the
        dtype."""
        if np.ndim(alpha) == 0:
            return check_number(alpha, "alpha", 0, 1, low_open=True)
        a = check_array(alpha, "alpha", shape=(self.n_rec,), dtype=np.float64)
        if np.any(a <= 0) or np.any(a > 1):
            raise ValueError(f"alpha: expected every entry in (0, 1], got values in "
                             f"[{a.min():g}, {a.max():g}]")
        a = a.astype(self.dtype)
        a.flags.writeable = False
        return a

    @property
    def graph(self) -> sparse.csr_array:
        """The recurrent graph as a ``csr_array`` (n_rec, n_rec) whose ``data`` is
        ``params["W_rec"]`` (the same array object, not a copy)."""
        G = sparse.csr_array((self.params["W_rec"], self._indices, self._indptr),
                             shape=(self.n_rec, self.n_rec))
        G.data = self.params["W_rec"]
        return G

    def config(self) -> dict[str, Any]:
        alpha = self.alpha if isinstance(self.alpha, float) else self.alpha.tolist()
        graph = (dict(indptr=self._indptr.tolist(), indices=self._indices.tolist())
                 if self._given else None)
        return dict(n_in=self.n_in, n_rec=self.n_rec, n_out=self.n_out, graph=graph, k=self.k,
                    spectral_radius=self.spectral_radius, alpha=alpha,
                    input_scale=self.input_scale, activation=self.activation, seed=self.seed,
                    dtype=self.dtype.name, backend=self.backend)

    def __repr__(self):
        # A given graph's structure would fill the screen; its size says enough here.
        args = {**self.config(), "graph": (f"<{len(self._indices)} synapses>" if self._given
                                           else None)}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in args.items())})"

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every parameter, in the order of ``params``.

        Returns
        -------
        dict[str, tuple of int]
        """
        N = self.n_rec
        return {"W_in": (N, self.n_in), "W_rec": (len(self._indices),), "b_rec": (N,),
                "W_out": (self.n_out, N), "b_out": (self.n_out,)}

    def leaks(self) -> np.ndarray:
        """α as an array (n_rec,) of the model's dtype, as the kernels take it.

        Returns
        -------
        np.ndarray, shape (n_rec,)
        """
        return np.ascontiguousarray(np.broadcast_to(self.alpha, (self.n_rec,)), self.dtype)

    @property
    def kernel_index(self) -> tuple[np.ndarray, np.ndarray]:
        """The graph's CSR ``indptr`` (n_rec + 1,) and ``indices`` (nnz,) as uint32, the form
        every kernel takes (unsigned indices spare Numba a sign check per gathered index)."""
        return self._kernel_index

    def states(self, xs: np.ndarray, backend: str | None = None) -> np.ndarray:
        """States hs (T, B, N) for xs (T, B, n_in), from h_0 = 0.

        Parameters
        ----------
        xs : np.ndarray, shape (T, B, n_in)
            C-contiguous, of the model's dtype (unchecked: :meth:`forward` checks).
        backend : str or None
            ``"numpy"``, ``"numba"`` or ``"cuda"``; None uses the model's.

        Returns
        -------
        np.ndarray, shape (T, B, N)
        """
        W_in, W_rec, b_rec, _, _ = self.weights()
        backend = check_backend(backend or self.backend)
        if backend == "numpy":
            return forward(self.graph, W_in, b_rec, xs, self.alpha, self.activation)[0]
        # The static run (kernels/loopy_numba.py, states): no activations kept, a vectorised
        # tanh; for B > 1 a (T, B, N) view of the (T, N, B) array it fills.
        return kernels("loopy", backend).states(W_in, W_rec, *self.kernel_index, b_rec, xs,
                                                self.leaks(), UNIT_CODES[self.activation])

    def loss_and_grads(self, data: Task | np.ndarray, targets: np.ndarray | None = None,
                       loss: str | None = None, mask: np.ndarray | None = None,
                       backend: str | None = None) -> tuple[float, dict[str, np.ndarray]]:
        """The loss and its exact gradient by BPTT on the graph, on a Task, or on arrays xs
        (T, [B,] n_in), targets (T, [B,] n_out) with ``loss`` and an optional mask (T, [B]).

        Parameters
        ----------
        data : Task or np.ndarray
            A :class:`loopy_edu.tasks.Task` (alone), or the inputs xs, shape (T, [B,] n_in).
        targets : np.ndarray or None
            Shape (T, [B,] n_out), with array inputs.
        loss : str or None
            ``"mse"`` or ``"xent"``, required with array inputs.
        mask : np.ndarray or None
            Shape (T, [B]), with array inputs; None counts every step.
        backend : str or None
            ``"numpy"``, ``"numba"`` or ``"cuda"``; None uses the model's.

        Returns
        -------
        loss : float
        grads : dict[str, np.ndarray]
            Keyed and shaped like ``params``: ``grads["W_rec"]`` (nnz,) holds the gradient of
            each existing synapse.

        Raises
        ------
        ValueError
            Naming the argument or parameter key that is invalid.
        """
        xs, targets, loss, mask = as_sequences(data, targets, loss, mask)
        xs, targets, mask, _ = check_sequences(xs, targets, mask, self.n_in, self.n_out,
                                               self.dtype, loss)
        xs = np.ascontiguousarray(xs)
        backend = check_backend(backend or self.backend)
        W_in, W_rec, b_rec, W_out, b_out = self.weights()
        if backend != "numpy":
            value, grads = kernels("loopy", backend).loss_and_grads(
                W_in, W_rec, *self.kernel_index, b_rec, W_out, b_out, xs, targets, mask,
                self.leaks(), UNIT_CODES[self.activation], LOSSES.index(loss))
            return float(value), dict(zip(self.params, grads))
        W = self.graph
        hs, acts = forward(W, W_in, b_rec, xs, self.alpha, self.activation)
        value, dys = sequence_loss(readout(W_out, b_out, hs), targets, mask, loss)
        gW_out, gb_out, dhs = readout_grads(W_out, hs, dys)
        gW_rec, gW_in, gb_rec = backward(W, xs, hs, acts, dhs, self.alpha, self.activation)
        return value, {"W_in": gW_in, "W_rec": gW_rec, "b_rec": gb_rec, "W_out": gW_out,
                       "b_out": gb_out}
