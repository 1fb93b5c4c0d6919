"""Complex synapses: the Benna-Fusi chain of coupled variables (Chapter 10).

A synapse is a chain of m variables u_1, ..., u_m, like beakers of liquid joined by tubes. Only
u_1, the visible weight, is read by the network and written by plasticity; the deeper variables
are bigger (capacities C_k) and more weakly coupled (conductances g_{k,k+1}), so they change
slowly and remember long. With C_k = ratio_C^{k-1} and g_{k,k+1} = g12 · ratio_g^{-(k-1)}
(couplings shrink by a factor ratio_g per link), ::

    C_k du_k/dt = g_{k-1,k} (u_{k-1} - u_k) - g_{k,k+1} (u_k - u_{k+1}),
    g_{0,1} = 0,  u_{m+1} = 0,

so the last variable leaks to 0 through g_{m,m+1}. One time step of length dt is explicit Euler,
then the plasticity input: u_k(t+1) = u_k(t) + dt/C_k (f_{k-1} - f_k) + Δw [k = 1], with the
fluxes f_k = g_{k,k+1} (u_k(t) - u_{k+1}(t)), f_0 = 0. An update Δw changes u_1 by Δw.

What is conserved: the total charge Q = Σ_k C_k u_k. The internal fluxes telescope, so, exactly
even after the Euler discretisation, ::

    Q(t+1) - Q(t) = C_1 Δw - dt · g_{m,m+1} u_m(t);

with no input and no leak (``g_leak=0``) Q never changes. m = 1 is the simple synapse: a single
variable that forgets exponentially, u(t+1) = (1 - dt g12) u(t) + Δw.

How a long chain forgets: for a long chain, the part from u_2 on is nearly the whole chain with
capacities × ratio_C and conductances ÷ ratio_g, which is the whole chain run ratio_C · ratio_g
times slower. Solving that self-similarity in the Laplace domain gives, between the fastest time
1/g12 and the slowest, ~ (ratio_C · ratio_g)^{m-1} / g12, a power law for the visible trace of a
pulse, ::

    u_1(t) ~ t^{-α},   α = ln ratio_C / ln(ratio_C · ratio_g),

so α = 1/2 (Benna & Fusi's 1/√t) when ratio_g = ratio_C, and α = 1/3 for ratio_g = 4. The
default ratio_C = ratio_g = 2 is Benna & Fusi's reference chain: capacities double and couplings
halve along it, so each variable is 4 times slower than the one before (a diffusion on a
geometrically growing grid).

Memory lifetime (:func:`snr_by_age`, :func:`lifetime`): store random patterns, one per step, and
find the age at which a memory's signal-to-noise ratio falls to 1.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .backend import DEFAULT, check_backend, kernels
from .checks import check_array, check_dtype, check_params, check_positive
from .model import Model


def chain_constants(m: int, g12: float = 0.5, ratio_C: float = 2.0, ratio_g: float = 2.0,
                    g_leak: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The capacities C (m,) and the conductances g (m,) of a chain; g[k-1] = g_{k,k+1}, so
    g[-1] is the leak g_{m,m+1} (by the geometric rule unless ``g_leak`` is given; 0 closes the
    chain). The default ratios, 2 and 2, are Benna & Fusi's: C_k = 2^{k-1},
    g_{k,k+1} = g12 2^{-(k-1)} (Chapter 10).

    Parameters
    ----------
    m : int
        Number of variables in the chain.
    g12 : float
        The first coupling, g_{1,2}.
    ratio_C : float
        Growth factor of the capacities along the chain.
    ratio_g : float
        Shrink factor of the couplings along the chain.
    g_leak : float or None
        The last variable's leak g_{m,m+1}; None follows the geometric rule.

    Returns
    -------
    C, g : np.ndarray, shape (m,)
        float64.

    Raises
    ------
    ValueError
        Naming the argument that is not a positive (``g_leak``: non-negative) finite number.
    """
    check_positive(m, "m", integer=True)
    check_positive(g12, "g12")
    check_positive(ratio_C, "ratio_C")
    check_positive(ratio_g, "ratio_g")
    k = np.arange(m)
    C = float(ratio_C) ** k
    g = float(g12) / float(ratio_g) ** k
    if g_leak is not None:
        if isinstance(g_leak, bool) or not isinstance(g_leak, (int, float, np.number)) \
                or not np.isfinite(g_leak) or g_leak < 0:
            raise ValueError(f"g_leak: expected a non-negative finite number or None, "
                             f"got {g_leak!r}")
        g[-1] = float(g_leak)
    return C, g


def check_stable(C: np.ndarray, g: np.ndarray, dt: float) -> float:
    """Raise ValueError unless dt (g_{k-1,k} + g_{k,k+1}) / C_k ≤ 1 for every k. Then each Euler
    step makes every new u_k a weighted average of old values (non-negative weights), so the
    chain can neither blow up nor oscillate; it is a little stricter than bare stability.

    Parameters
    ----------
    C, g : np.ndarray, shape (m,)
        From :func:`chain_constants`.
    dt : float
        The time step.

    Returns
    -------
    float
        ``dt``.

    Raises
    ------
    ValueError
        Naming ``dt``, with the largest stable value, if it is too large or not positive.
    """
    check_positive(dt, "dt")
    load = dt * (g + np.concatenate(([0.0], g[:-1]))) / C
    k = int(np.argmax(load))
    if load[k] > 1.0:
        raise ValueError(f"dt: explicit Euler needs dt·(g_{{k-1,k}} + g_{{k,k+1}})/C_k ≤ 1 for "
                         f"every k, got {load[k]:.3g} at k = {k + 1}; use dt ≤ "
                         f"{dt / load[k]:.3g} or a smaller g12")
    return dt


def advance_numpy(u: np.ndarray, dt_over_C: np.ndarray, g: np.ndarray, steps: int,
                  dws: np.ndarray) -> None:
    """Advance chains in place by ``steps`` Euler steps, adding ``dws[t]`` to u_1 after step t.

    u (m, n), dt_over_C (m,), g (m,), dws (steps, n) or (0, n) for no input. Vectorised over the
    n synapses; the loop runs over time and along the chain.

    Parameters
    ----------
    u : np.ndarray, shape (m, n)
        The chains, updated in place.
    dt_over_C, g : np.ndarray, shape (m,)
    steps : int
    dws : np.ndarray, shape (steps, n) or (0, n)
    """
    for t in range(steps):
        # f_0 = 0: nothing flows into u_1 from above.
        below = np.zeros_like(u[0])
        for k in range(u.shape[0]):
            deeper = u[k + 1] if k + 1 < u.shape[0] else 0.0   # u_{m+1} = 0: the leak
            flux = g[k] * (u[k] - deeper)                 # f_k, from the old u_k and u_{k+1}
            u[k] += dt_over_C[k] * (below - flux)
            below = flux
        if dws.shape[0]:
            u[0] += dws[t]


class SynapseChain(Model):
    """A population of Benna-Fusi synapses, each a chain of m variables (Chapter 10).

    ``shape`` is the population's shape (an int for n synapses); ``u`` has shape ``(m, *shape)``
    and ``weight`` is the view u[0]. All chains start at 0.

    Parameters
    ----------
    m : int
        Number of variables per chain.
    shape : int or tuple of int
        The population's shape.
    g12, ratio_C, ratio_g, g_leak
        The chain's constants, as in :func:`chain_constants`.
    dt : float
        The Euler time step (:func:`check_stable`).
    dtype : dtype
        A floating-point dtype for ``u``.
    backend : str
        ``"numpy"``, ``"numba"`` or ``"cuda"``.

    Raises
    ------
    ValueError
        Naming the argument that is invalid.
    """

    def __init__(self, m: int, shape: int | tuple[int, ...], g12: float = 0.5,
                 ratio_C: float = 2.0, ratio_g: float = 2.0, g_leak: float | None = None,
                 dt: float = 1.0, dtype: DTypeLike = np.float64,
                 backend: str = DEFAULT) -> None:
        self.C, self.g = chain_constants(m, g12, ratio_C, ratio_g, g_leak)
        self.g12, self.ratio_C, self.ratio_g = float(g12), float(ratio_C), float(ratio_g)
        self.g_leak = None if g_leak is None else float(g_leak)
        self.dt = check_stable(self.C, self.g, dt)
        self.backend = check_backend(backend)
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        if not shape or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1
                            for s in shape):
            raise ValueError(f"shape: expected a positive int or a tuple of positive ints, "
                             f"got {shape!r}")
        self.m, self.shape, self.dtype = int(m), shape, check_dtype(dtype)
        self.u = np.zeros((self.m, *shape), dtype=self.dtype)
        self._dt_over_C = (self.dt / self.C).astype(self.dtype)
        self._g = self.g.astype(self.dtype)

    def config(self) -> dict[str, Any]:
        return dict(m=self.m, shape=list(self.shape), g12=self.g12, ratio_C=self.ratio_C,
                    ratio_g=self.ratio_g, g_leak=self.g_leak, dt=self.dt, dtype=self.dtype.name,
                    backend=self.backend)

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The chains' whole state ``{"u": u}``, u ``(m, *shape)``; what a checkpoint saves."""
        return {"u": self.u}

    @property
    def weight(self) -> np.ndarray:
        """The visible weights u_1, a view of shape ``shape``."""
        return self.u[0]

    def charge(self) -> np.ndarray:
        """The total charge Q = Σ_k C_k u_k of each synapse, shape ``shape``.

        Returns
        -------
        np.ndarray, shape ``shape``
        """
        return np.tensordot(self.C, self.u, axes=1)

    def step(self, dw: np.ndarray | None = None) -> None:
        """One Euler step, then u_1 += dw (shape ``shape``, or None for no input).

        Parameters
        ----------
        dw : np.ndarray, shape ``shape``, or None

        Raises
        ------
        ValueError
            If ``dw`` has a wrong shape or non-finite values, or ``u`` was corrupted.
        """
        dws = None if dw is None else check_array(dw, "dw", shape=self.shape)[None]
        self.run(1, dws)

    def run(self, steps: int, dws: np.ndarray | None = None) -> None:
        """``steps`` Euler steps; after step t, u_1 += dws[t] when ``dws`` ``(steps, *shape)``
        is given.

        Parameters
        ----------
        steps : int
        dws : np.ndarray, shape ``(steps, *shape)``, or None

        Raises
        ------
        ValueError
            Naming ``steps`` or ``dws`` when it is invalid, or ``u`` when it no longer has its
            shape, dtype or finite values.
        """
        check_positive(steps, "steps", integer=True)
        check_params(self.params, {"u": (self.m, *self.shape)}, self.dtype)
        n = int(np.prod(self.shape))
        if dws is None:
            flat_dws = np.zeros((0, n), dtype=self.dtype)
        else:
            flat_dws = check_array(dws, "dws", shape=(steps, *self.shape))
            flat_dws = np.ascontiguousarray(flat_dws, dtype=self.dtype).reshape(steps, n)
        u = self.u.reshape(self.m, n)                    # a view: the kernels update self.u
        if self.backend == "numpy":
            advance_numpy(u, self._dt_over_C, self._g, steps, flat_dws)
        else:
            kernels("synapses", self.backend).advance(u, self._dt_over_C, self._g, steps,
                                                      flat_dws)


def memory_retention(m: int, n_synapses: int, ages: np.ndarray, n_trials: int = 8,
                     eta: float = 1.0, burn_in: int = 1000, seed: int = 0,
                     backend: str = DEFAULT,
                     **chain: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signal-to-noise ratio of one memory against its age under ongoing plasticity
    (Chapter 10).

    Each of ``n_trials`` independent populations of ``n_synapses`` chains first stores
    ``burn_in`` random patterns, one per step (so that the weights carry old memories), then the
    tracked pattern ξ ∈ {±1}^N as Δw = η ξ, then a fresh random pattern at every later step. At
    age a (a steps after storage) the estimator is the overlap's mean over its standard
    error, ::

        SNR(a) = √N · mean_i(ξ_i w_i) / std_i(ξ_i w_i),

    since the other memories add to ξ_i w_i terms of random sign (with ``burn_in=0`` nothing
    else is stored yet at age 0, so that std is 0 and the SNR infinite). ``chain`` passes g12,
    ratio_C, ratio_g, g_leak, dt, dtype to :class:`SynapseChain`. Returns ages (A,), the SNR
    averaged over trials (A,) and its standard error (A,).

    Parameters
    ----------
    m : int
        Number of variables per chain.
    n_synapses : int
        N, synapses per population.
    ages : np.ndarray, shape (A,)
        Increasing non-negative integers.
    n_trials : int
        Number of independent populations.
    eta : float
        The size η of each update.
    burn_in : int
        Number of patterns stored before the tracked one.
    seed : int
    backend : str
        ``"numpy"``, ``"numba"`` or ``"cuda"``.
    **chain
        Passed to :class:`SynapseChain`.

    Returns
    -------
    ages : np.ndarray, shape (A,)
    snr : np.ndarray, shape (A,)
    sem : np.ndarray, shape (A,)

    Raises
    ------
    ValueError
        Naming the argument that is invalid.
    """
    ages = check_array(ages, "ages", ndim=1)
    if ages.dtype.kind not in "iu" or ages.min() < 0 or np.any(np.diff(ages) <= 0):
        raise ValueError(f"ages: expected increasing non-negative integers, got {ages!r}")
    syn, rng = _population(m, n_synapses, n_trials, eta, burn_in, seed, backend, chain)
    xi = _signs(rng, (n_trials, n_synapses))
    syn.step(eta * xi)
    snr, age = np.empty((len(ages), n_trials)), 0
    for j, a in enumerate(ages):
        _store_random(syn, rng, int(a) - age, eta)
        age = int(a)
        overlap = xi * syn.weight                         # (n_trials, N)
        snr[j] = np.sqrt(n_synapses) * overlap.mean(axis=1) / overlap.std(axis=1)
    return ages, snr.mean(axis=1), snr.std(axis=1) / np.sqrt(n_trials)


def snr_by_age(m: int, n_synapses: int, n_ages: int, n_trials: int = 1, eta: float = 1.0,
               burn_in: int = 1000, seed: int = 0, backend: str = DEFAULT,
               **chain: Any) -> np.ndarray:
    """The SNR of every memory against its age, read from one run (Chapter 10).

    Same protocol and estimator as :func:`memory_retention`, but after the burn-in every one of
    the ``n_ages`` patterns stored is tracked: at the end, the pattern stored a steps before the
    last has age a, and all of them are read from the same weights. So one run gives the whole
    curve for ages 0 .. n_ages-1, with one sample per age and population instead of one per run.
    Returns the SNR averaged over trials, shape (n_ages,), indexed by age.

    Parameters
    ----------
    m : int
        Number of variables per chain.
    n_synapses : int
        N, synapses per population.
    n_ages : int
        Number of patterns tracked, and of ages.
    n_trials : int
        Number of independent populations.
    eta : float
        The size η of each update.
    burn_in : int
        Number of patterns stored before the tracked ones.
    seed : int
    backend : str
        ``"numpy"``, ``"numba"`` or ``"cuda"``.
    **chain
        Passed to :class:`SynapseChain`.

    Returns
    -------
    np.ndarray, shape (n_ages,)

    Raises
    ------
    ValueError
        Naming the argument that is invalid.
    """
    check_positive(n_ages, "n_ages", integer=True)
    syn, rng = _population(m, n_synapses, n_trials, eta, burn_in, seed, backend, chain)
    # The patterns are kept as bits (1/8 byte per entry) and replayed from the same random
    # stream.
    state = rng.bit_generator.state
    _store_random(syn, rng, n_ages, eta)
    rng.bit_generator.state = state
    w = syn.weight                                        # (n_trials, N)
    w2 = (w ** 2).mean(axis=1)
    snr = np.empty((n_ages, n_trials))
    chunk = _chunk(n_trials, n_synapses)
    for t0 in range(0, n_ages, chunk):
        xi = _signs(rng, (min(chunk, n_ages - t0), n_trials, n_synapses))
        mean = np.einsum("stn,tn->st", xi, w) / n_synapses   # mean_i(ξ_i w_i), (s, n_trials)
        snr[t0:t0 + len(xi)] = np.sqrt(n_synapses) * mean / np.sqrt(w2 - mean ** 2)
    # Row n_ages-1-a was stored a steps before the end; reversed, row a holds age a.
    return snr[::-1].mean(axis=1)


def lifetime(snr: np.ndarray, threshold: float = 1.0, bins_per_decade: int = 10) -> float:
    """The memory lifetime: the age at which a retention curve ``snr`` (n_ages,), indexed by age
    as from :func:`snr_by_age`, falls below ``threshold`` (Chapter 10).

    One age's SNR is noisy, so ages 1 .. n_ages-1 are grouped into bins of equal width in
    log-age and averaged; the lifetime is interpolated linearly in log-age between the last bin
    above the threshold and the first below it. NaN if no bin falls below it.

    Parameters
    ----------
    snr : np.ndarray, shape (n_ages,)
        At least 3 ages.
    threshold : float
    bins_per_decade : int

    Returns
    -------
    float
        The lifetime in steps, or NaN.

    Raises
    ------
    ValueError
        Naming ``snr`` or ``bins_per_decade`` when it is invalid.
    """
    snr = check_array(snr, "snr", ndim=1)
    check_positive(bins_per_decade, "bins_per_decade", integer=True)
    n = len(snr)
    if n < 3:
        raise ValueError(f"snr: expected at least 3 ages, got {n}")
    n_edges = int(np.ceil(bins_per_decade * np.log10(n))) + 1
    edges = np.unique(np.round(np.logspace(0, np.log10(n), n_edges)))
    edges = edges.astype(int)
    edges[-1] = n
    log_age = np.array([np.log(np.arange(a, b)).mean() for a, b in zip(edges[:-1], edges[1:])])
    level = np.array([snr[a:b].mean() for a, b in zip(edges[:-1], edges[1:])])
    below = np.flatnonzero(level < threshold)
    if not len(below):
        return float("nan")
    j = below[0]
    if j == 0:
        return float(np.exp(log_age[0]))
    frac = (level[j - 1] - threshold) / (level[j - 1] - level[j])
    return float(np.exp(log_age[j - 1] + frac * (log_age[j] - log_age[j - 1])))


def _chunk(n_trials, n_synapses):
    """Steps per compiled call: about 2^20 synapse-steps, so a chunk of inputs stays
    cache-sized."""
    return max(1, 2 ** 20 // (n_trials * n_synapses))


def _signs(rng, shape):
    """Random ±1 entries (float64) from random bytes, 8 per byte: far faster than
    rng.integers."""
    n = int(np.prod(shape))
    bits = np.unpackbits(np.frombuffer(rng.bytes((n + 7) // 8), dtype=np.uint8), count=n)
    return (2.0 * bits - 1.0).reshape(shape)


def _store_random(syn, rng, steps, eta):
    """Store ``steps`` fresh random patterns η ξ, one per step, drawn and run in chunks of
    steps."""
    n_trials, n_synapses = syn.shape
    chunk = _chunk(n_trials, n_synapses)
    while steps > 0:
        s = min(steps, chunk)
        xi = _signs(rng, (s, n_trials, n_synapses))
        syn.run(s, eta * xi)
        steps -= s


def _population(m, n_synapses, n_trials, eta, burn_in, seed, backend, chain):
    """Validate the retention arguments; return a (n_trials, N) population that has stored
    ``burn_in`` random patterns, and the random generator."""
    check_positive(n_synapses, "n_synapses", integer=True)
    check_positive(n_trials, "n_trials", integer=True)
    check_positive(eta, "eta")
    if isinstance(burn_in, bool) or not isinstance(burn_in, (int, np.integer)) or burn_in < 0:
        raise ValueError(f"burn_in: expected a non-negative integer, got {burn_in!r}")
    syn = SynapseChain(m, (n_trials, n_synapses), backend=backend, **chain)
    rng = np.random.default_rng(seed)
    _store_random(syn, rng, burn_in, eta)
    return syn, rng
