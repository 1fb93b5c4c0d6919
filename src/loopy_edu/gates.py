"""A gated slot: one stored copy of a fixed network's state, written when a gate opens
(Chapter 12, cued recall).

A fixed loopy network runs over a sequence. At each step t a gate decides, d_t ∈ {0, 1},
whether to write the state h_t into a slot s; when the go flag asks, a readout reads the slot.
The slot keeps either its first write (write-once, a sample-and-hold) or its last (each write
overwrites) ::

    s = h_{t*},   t* = the first (or last) step with d_t = 1    (0 if the gate never opened)

For the hand-wired gate (one cue, one write) the two are the same. For a gate that learns
they are not: a gate that overwrites must stay shut for all T steps after the cue before a
single right answer can reward it, while a first write falls on the cue up to one time in
ten from the start (the cue is on one of the first ten steps).

The slot is the smallest fast weight: the Hebbian outer product A = h_{t*} h_{t*}ᵀ, read with a
key q, returns A q = h_{t*} (h_{t*}ᵀ q), the same stored state up to a scalar.

The gate is wired by hand (d_t = the cue flag) or it is a unit that learns. The learned gate
opens with probability g_t = σ(w · z_t), reading z_t = [x_t, h_t, 1] (the input, the state
and a constant), and draws its decision d_t ~ Bernoulli(g_t). Its weights learn by a
three-factor rule, REINFORCE (Williams 1992), once per sequence ::

    e_j = Σ_t m_t (d_t − g_t) z_t[j]    eligibility: pre activity × the gate's own decision
    Δw_j = η (r − r̄) e_j                 r = 1 if the recall was right, else 0; r̄ its mean

A gate synapse w_j reads only its presynaptic activity z_t[j], its own unit's output (d_t and
g_t) and one number broadcast to every synapse, the reward: the rule is local. The mask m_t
leaves out the decisions that could not change the slot: those after the first write when
the slot keeps it (m_t = 1 for t ≤ t*), those before the last when it keeps the last
(t ≥ t*); with no write every step counts. Each term left out has mean zero, so the rule
stays unbiased, E[(r − r̄) e] is the gradient of the expected reward with respect to w, and
is less noisy.
"""
from __future__ import annotations

import numpy as np

from .activations import sigmoid
from .checks import check_array, check_choice, check_number

#: Which write the slot keeps.
KEEPS = ("first", "last")


def gate_inputs(xs: np.ndarray, hs: np.ndarray) -> np.ndarray:
    """What the gate reads at every step: z_t = [x_t, h_t, 1].

    Parameters
    ----------
    xs : np.ndarray, shape (T, B, n_in)
        The inputs.
    hs : np.ndarray, shape (T, B, N)
        The network's states.

    Returns
    -------
    np.ndarray, shape (T, B, n_in + N + 1)
    """
    xs = check_array(xs, "xs", ndim=3)
    hs = check_array(hs, "hs", shape=(xs.shape[0], xs.shape[1], None))
    return np.concatenate([xs, hs, np.ones(xs.shape[:2] + (1,), dtype=hs.dtype)], axis=2)


def gate_probability(w: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The learned gate's probability of writing, g_t = σ(w · z_t), at every step.

    Parameters
    ----------
    w : np.ndarray, shape (M,)
        The gate's weights.
    z : np.ndarray, shape (T, B, M)
        Its inputs (:func:`gate_inputs`).

    Returns
    -------
    np.ndarray, shape (T, B)
    """
    w = check_array(w, "w", ndim=1)
    z = check_array(z, "z", shape=(None, None, w.shape[0]))
    return sigmoid(z @ w)


def slot(hs: np.ndarray, writes: np.ndarray, keep: str = "first") -> np.ndarray:
    """What the slot holds at the end of each sequence: the state at the first (or last) step
    whose gate opened, or zeros where it never did.

    Parameters
    ----------
    hs : np.ndarray, shape (T, B, N)
        The network's states.
    writes : np.ndarray, shape (T, B)
        The gate's decisions d_t (bool, or 0/1).
    keep : str
        ``"first"`` (write-once) or ``"last"`` (each write overwrites).

    Returns
    -------
    np.ndarray, shape (B, N)
    """
    hs = check_array(hs, "hs", ndim=3)
    writes = check_array(writes, "writes", shape=hs.shape[:2]) != 0
    T, B = writes.shape
    first = np.argmax(writes, axis=0)                               # (B,)
    last = T - 1 - np.argmax(writes[::-1], axis=0)
    held = hs[first if check_choice(keep, "keep", KEEPS) == "first" else last, np.arange(B)]
    held[~writes.any(axis=0)] = 0.0
    return held


def three_factor_update(z: np.ndarray, g: np.ndarray, writes: np.ndarray, reward: np.ndarray,
                        baseline: float, eta: float, keep: str = "first") -> np.ndarray:
    """The learned gate's weight change after a batch of sequences (REINFORCE): the mean over
    the batch of ::

        Δw = η (r − r̄) Σ_t m_t (d_t − g_t) z_t

    with m_t = 1 at the steps whose decision could change what the slot keeps: up to the
    first write for ``keep="first"``, from the last one on for ``"last"``, every step where
    there was no write.

    Parameters
    ----------
    z : np.ndarray, shape (T, B, M)
        What the gate read (:func:`gate_inputs`).
    g : np.ndarray, shape (T, B)
        Its probabilities of writing (:func:`gate_probability`).
    writes : np.ndarray, shape (T, B)
        The decisions it drew (bool, or 0/1).
    reward : np.ndarray, shape (B,)
        Each sequence's reward r.
    baseline : float
        The reward expected, r̄, subtracted to lower the estimate's variance.
    eta : float
        The learning rate η (> 0).
    keep : str
        Which write the slot keeps, ``"first"`` or ``"last"`` (:func:`slot`).

    Returns
    -------
    np.ndarray, shape (M,)
        Δw.
    """
    z = check_array(z, "z", ndim=3)
    g = check_array(g, "g", shape=z.shape[:2])
    d = check_array(writes, "writes", shape=z.shape[:2]).astype(z.dtype)
    reward = check_array(reward, "reward", shape=(z.shape[1],))
    baseline = check_number(baseline, "baseline")
    eta = check_number(eta, "eta", 0.0, low_open=True)
    if check_choice(keep, "keep", KEEPS) == "first":
        mattered = np.cumsum(d, axis=0) - d == 0                    # (T, B): no write before
    else:
        mattered = np.cumsum(d[::-1], axis=0)[::-1] - d == 0        # no write after
    eligibility = np.einsum("tb,tbm->bm", (d - g) * mattered, z)     # (B, M)
    return eta * (reward - baseline) @ eligibility / z.shape[1]
