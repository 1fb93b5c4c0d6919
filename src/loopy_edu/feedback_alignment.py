"""Feedback alignment and direct feedback alignment for the Part I MLP (Chapter 8).

Backprop sends the error down through the transposed forward weights:
``δ_{l-1} = (δ_l W_l) ⊙ act'``. Feedback alignment (FA, Lillicrap et al. 2016) sends it through
fixed random matrices instead, ``δ_{l-1} = (δ_l B_lᵀ) ⊙ act'(z_{l-1})`` with ``B_l``
(n_{l-1}, n_l) standing where ``W_lᵀ`` stands, and the forward weights learn to align with them.
Direct feedback alignment (DFA, Nøkland 2016) skips the chain: every hidden layer gets the
output error through its own matrix, ``δ_l = (δ_L D_lᵀ) ⊙ act'(z_l)`` with ``D_l`` (n_l, n_L).
Both use :func:`loopy_edu.mlp.feedback_backward` and the MLP kernels, with the feedback matrices
in place of the weights, so they run on every backend; with ``B_l = W_lᵀ`` FA is backprop.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .checks import check_array, check_positive
from .mlp import MLP, init_std


def _check_feedback(model, M, name, shape_of):
    """Check the dict ``M`` of feedback matrices ``M["{name}{l}"]`` of shapes ``shape_of(l)``;
    return them transposed into the ``"W{l+1}"`` slots that
    :meth:`loopy_edu.mlp.MLP.loss_and_grads` fills."""
    L = model.n_layers
    layers = range(1, L) if name == "D" else range(2, L + 1)
    wanted = [f"{name}{l}" for l in layers]
    if not isinstance(M, dict):
        raise ValueError(f"{name}: expected a dict with keys {wanted}, got {type(M).__name__}")
    missing = [k for k in wanted if k not in M]
    extra = sorted(str(k) for k in M if k not in wanted)
    if missing or extra:
        raise ValueError(f"{name}: expected a dict with keys {wanted}, missing {missing}, "
                         f"unexpected {extra}")
    # D_l feeds layer l, which the recursion reaches from slot W{l+1}.
    slot = 1 if name == "D" else 0
    return {f"W{l + slot}": check_array(M[f"{name}{l}"], f"{name}[{name + str(l)!r}]",
                                        shape=shape_of(l), dtype=model.dtype).T
            for l in layers}


def check_B(model: MLP, B: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Check FA feedback ``B["B{l}"]`` (sizes[l-1], sizes[l]) for l = 2..L, and return it as the
    ``feedback`` argument of :meth:`loopy_edu.mlp.MLP.loss_and_grads` (the transposes).

    Parameters
    ----------
    model : MLP
    B : dict[str, np.ndarray]
        ``"B{l}"`` of shape (sizes[l-1], sizes[l]) for l = 2..L, of the model's dtype.

    Returns
    -------
    dict[str, np.ndarray]
        ``"W{l}"``: the transpose of ``B["B{l}"]``, for l = 2..L.

    Raises
    ------
    ValueError
        If ``B`` is not a dict with exactly these keys, or an entry has a wrong shape or dtype
        or non-finite values (naming the key).
    """
    return _check_feedback(model, B, "B", lambda l: (model.sizes[l - 1], model.sizes[l]))


def check_D(model: MLP, D: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Check DFA feedback ``D["D{l}"]`` (sizes[l], sizes[L]) for l = 1..L-1, and return it as
    the ``feedback`` argument of :meth:`loopy_edu.mlp.MLP.loss_and_grads` with ``direct=True``.

    Parameters
    ----------
    model : MLP
    D : dict[str, np.ndarray]
        ``"D{l}"`` of shape (sizes[l], sizes[L]) for l = 1..L-1, of the model's dtype.

    Returns
    -------
    dict[str, np.ndarray]
        ``"W{l+1}"``: the transpose of ``D["D{l}"]``, for l = 1..L-1.

    Raises
    ------
    ValueError
        If ``D`` is not a dict with exactly these keys, or an entry has a wrong shape or dtype
        or non-finite values (naming the key).
    """
    return _check_feedback(model, D, "D", lambda l: (model.sizes[l], model.sizes[-1]))


def fa_loss_and_grads(model: MLP, X: np.ndarray, y: np.ndarray, B: dict[str, np.ndarray],
                      backend: str | None = None) -> tuple[float, dict[str, np.ndarray]]:
    """The loss and the feedback-alignment updates of ``model`` (Chapter 8), keyed like its
    params.

    X: (N, n_0); y as for :meth:`loopy_edu.mlp.MLP.loss_and_grads`. ``B["B{l}"]``
    (n_{l-1}, n_l), for l = 2..L, replaces ``W_lᵀ`` in the backward pass:
    ``δ_{l-1} = (δ_l B_lᵀ) ⊙ act'(z_{l-1})``. Each layer still uses its own ``δ_l`` for
    ``∂W_l = δ_lᵀ a_{l-1}``, so the last layer's update is exact. With ``B_l = W_lᵀ`` this is
    backprop. Dropout, if the model has it, masks the δ as in backprop.

    Parameters
    ----------
    model : MLP
    X : np.ndarray, shape (N, n_0)
    y : np.ndarray, shape (N,) or (N, n_L)
        Integer labels, or targets when the model's loss is ``"mse"``.
    B : dict[str, np.ndarray]
        The feedback matrices (:func:`random_feedback`).
    backend : str or None
        ``"numpy"``, ``"numba"`` or ``"cuda"``; None uses the model's.

    Returns
    -------
    loss : float
    grads : dict[str, np.ndarray]
        The FA updates, keyed and shaped like ``model.params``.

    Raises
    ------
    ValueError
        Naming the argument, or the key of ``B``, that is invalid.
    """
    return model.loss_and_grads(X, y, backend=backend, feedback=check_B(model, B))


def dfa_loss_and_grads(model: MLP, X: np.ndarray, y: np.ndarray, D: dict[str, np.ndarray],
                       backend: str | None = None) -> tuple[float, dict[str, np.ndarray]]:
    """The loss and the direct-feedback-alignment updates of ``model`` (Chapter 8).

    ``D["D{l}"]`` (n_l, n_L), for each hidden layer l = 1..L-1, carries the output error
    δ_L (B, n_L) straight to layer l: ``δ_l = (δ_L D_lᵀ) ⊙ act'(z_l)``. With one hidden layer
    and ``D_1 = W_2ᵀ`` this is backprop; with more, only the top hidden layer's rule matches
    backprop's form.

    Parameters
    ----------
    model : MLP
    X : np.ndarray, shape (N, n_0)
    y : np.ndarray, shape (N,) or (N, n_L)
        Integer labels, or targets when the model's loss is ``"mse"``.
    D : dict[str, np.ndarray]
        The direct feedback matrices (:func:`random_direct_feedback`).
    backend : str or None
        ``"numpy"``, ``"numba"`` or ``"cuda"``; None uses the model's.

    Returns
    -------
    loss : float
    grads : dict[str, np.ndarray]
        The DFA updates, keyed and shaped like ``model.params``.

    Raises
    ------
    ValueError
        Naming the argument, or the key of ``D``, that is invalid.
    """
    return model.loss_and_grads(X, y, backend=backend, feedback=check_D(model, D), direct=True)


def fa_grad_fn(B: dict[str, np.ndarray], backend: str | None = None) -> Callable[
        [MLP, np.ndarray, np.ndarray], tuple[float, dict[str, np.ndarray]]]:
    """A ``grad_fn(model, X, y)`` for :func:`loopy_edu.train.train`: FA with feedback ``B``.

    Parameters
    ----------
    B : dict[str, np.ndarray]
        The feedback matrices (:func:`random_feedback`).
    backend : str or None
        ``"numpy"``, ``"numba"`` or ``"cuda"``; None uses the model's.

    Returns
    -------
    callable
        ``grad_fn(model, X, y) -> (loss, grads)`` calling :func:`fa_loss_and_grads`.
    """
    return lambda model, X, y: fa_loss_and_grads(model, X, y, B, backend)


def dfa_grad_fn(D: dict[str, np.ndarray], backend: str | None = None) -> Callable[
        [MLP, np.ndarray, np.ndarray], tuple[float, dict[str, np.ndarray]]]:
    """A ``grad_fn(model, X, y)`` for :func:`loopy_edu.train.train`: DFA with feedback ``D``.

    Parameters
    ----------
    D : dict[str, np.ndarray]
        The direct feedback matrices (:func:`random_direct_feedback`).
    backend : str or None
        ``"numpy"``, ``"numba"`` or ``"cuda"``; None uses the model's.

    Returns
    -------
    callable
        ``grad_fn(model, X, y) -> (loss, grads)`` calling :func:`dfa_loss_and_grads`.
    """
    return lambda model, X, y: dfa_loss_and_grads(model, X, y, D, backend)


def _gaussian(model, shapes, seed, scale):
    # shapes: {key: (shape, default std)}; a given scale overrides every default.
    if scale is not None:
        check_positive(scale, "scale")
    rng = np.random.default_rng(seed)
    return {k: ((std if scale is None else scale)
                * rng.standard_normal(shape)).astype(model.dtype)
            for k, (shape, std) in shapes.items()}


def random_feedback(model: MLP, seed: int = 0,
                    scale: float | None = None) -> dict[str, np.ndarray]:
    """Fixed random FA feedback ``{"B{l}": (n_{l-1}, n_l)}`` for l = 2..L, entries N(0, std²).

    By default the std of ``B_l`` is the init std of the forward weights ``W_l`` it stands in
    for (:meth:`loopy_edu.mlp.MLP.init_scheme`), so the error keeps the scale backprop would
    give it at initialisation; ``scale`` sets one std for every layer.

    Parameters
    ----------
    model : MLP
    seed : int
    scale : float or None
        One std for every layer; None uses each layer's init std.

    Returns
    -------
    dict[str, np.ndarray]
        ``"B{l}"`` of shape (n_{l-1}, n_l), in the model's dtype.

    Raises
    ------
    ValueError
        If ``scale`` is not a positive number.
    """
    sizes = model.sizes
    shapes = {f"B{l}": ((sizes[l - 1], sizes[l]),
                        init_std(model.init_scheme(l), sizes[l - 1], sizes[l]))
              for l in range(2, model.n_layers + 1)}
    return _gaussian(model, shapes, seed, scale)


def random_direct_feedback(model: MLP, seed: int = 0,
                           scale: float | None = None) -> dict[str, np.ndarray]:
    """Fixed random DFA feedback ``{"D{l}": (n_l, n_L)}`` for the hidden layers l = 1..L-1,
    N(0, std²).

    By default the std of ``D_l`` is what the output layer's init would give if it read layer l
    directly, ``init_std(init_scheme(L), n_l, n_L)``; for the top hidden layer that is the std
    of ``W_L``, the matrix ``D_{L-1}`` replaces. ``scale`` sets one std for every layer.

    Parameters
    ----------
    model : MLP
    seed : int
    scale : float or None
        One std for every layer; None uses the defaults above.

    Returns
    -------
    dict[str, np.ndarray]
        ``"D{l}"`` of shape (n_l, n_L), in the model's dtype.

    Raises
    ------
    ValueError
        If ``scale`` is not a positive number.
    """
    sizes, L = model.sizes, model.n_layers
    shapes = {f"D{l}": ((sizes[l], sizes[L]),
                        init_std(model.init_scheme(L), sizes[l], sizes[L]))
              for l in range(1, L)}
    return _gaussian(model, shapes, seed, scale)


def _arrays(g, name):
    if isinstance(g, dict):
        if not g:
            raise ValueError(f"{name}: expected a non-empty dict of arrays, got an empty dict")
        return {k: np.asarray(v, dtype=np.float64) for k, v in g.items()}
    return {None: check_array(g, name, dtype=np.float64)}


def alignment_angle(a: np.ndarray | dict[str, np.ndarray],
                    b: np.ndarray | dict[str, np.ndarray]) -> float:
    """The angle in degrees (0..180) between ``a`` and ``b``: two arrays of one shape, or two
    dicts of arrays with the same keys and shapes (e.g. an FA update and the true gradient),
    flattened and concatenated. Chapter 8 watches it shrink as the forward weights align with
    the feedback.

    Parameters
    ----------
    a, b : np.ndarray or dict[str, np.ndarray]
        Both arrays, or both dicts.

    Returns
    -------
    float
        The angle in degrees.

    Raises
    ------
    ValueError
        If the keys or shapes differ, or either is all zeros or holds NaN or inf.
    """
    ga, gb = _arrays(a, "a"), _arrays(b, "b")
    if set(ga) != set(gb):
        keys = [sorted(map(str, g)) for g in (ga, gb)]
        raise ValueError(f"a, b: expected the same keys, got {keys[0]} and {keys[1]}")
    for k in ga:
        if ga[k].shape != gb[k].shape:
            at = "" if k is None else f"[{k!r}]"
            raise ValueError(f"a{at}, b{at}: expected the same shape, got {ga[k].shape} "
                             f"and {gb[k].shape}")
    u, v = (np.concatenate([g[k].ravel() for k in ga]) for g in (ga, gb))
    for x, name in ((u, "a"), (v, "b")):
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name}: expected finite values, got NaN or Inf")
        if not np.any(x):
            raise ValueError(f"{name}: expected a non-zero vector, got all zeros "
                             "(no angle is defined)")
    u, v = u / np.linalg.norm(u), v / np.linalg.norm(v)
    # 2·atan2(‖u − v‖, ‖u + v‖) stays accurate near 0° and 180°, where arccos of the cosine
    # does not.
    return float(np.degrees(2.0 * np.arctan2(np.linalg.norm(u - v), np.linalg.norm(u + v))))
