"""Numba CPU kernels for :mod:`loopy_edu.halting` (Chapter 14): ACT's and PonderNet's forward
pass, loss and exact gradient, each in one compiled call; the looped cell's, and those of
:class:`loopy_edu.sln_lateral.CriticCell` (Chapter 15), on the same cell.

The NumPy reference runs every example until the slowest one halts. Here the ACT forward pass
keeps the examples still running in the first rows: after each step, those that halted drop
out, so a step makes one BLAS product over the running rows alone, and the whole pass costs
Σ_b N_b example-steps. The steps' rows are stored one block after the other, a flat
(rows, H) layout that every method shares (PonderNet, the looped cell and the critic cell run
every example for every step: each block is the whole batch). Each row carries its example
(``ex``) and the row of the same example at the next step (``nxt``, −1 once it halted), which
is all that BPTT needs to walk back through the blocks: one BLAS product per step again, over
the same rows, and the weight gradients as products over all the rows at once. The halting
and output logits of a step are BLAS products over its rows too.
"""
import numpy as np
from numba import njit

from ..activations import CODES
from .scalar_numba import act, softplus

SIGMOID, TANH = CODES["sigmoid"], CODES["tanh"]


@njit(cache=True)
def _setup(W_x, W_h, b_h, W_y, X, steps, planes):
    # What every step reads: the input drive W_x[:, :n_in] x + b_h (B, H), the flag's column
    # and the transposed weights; and room for at most B rows per step, flat over the steps:
    # A, Ys and ``planes`` (rows, H) buffers (S first, ∂L/∂z last), these in one block.
    # Separate blocks of this size would go back to the system at the end of every call and
    # fault in again, page by page, at the next (glibc trims its heap when more than twice
    # the largest freed block is free): 0.6 ms a call at B = 128, H = 128, M = 10, a fifth of
    # the step.
    B, n_in = X.shape
    H, n_out = W_h.shape[0], W_y.shape[0]
    drive = np.dot(X, np.ascontiguousarray(W_x[:, :n_in].T)) + b_h
    consts = (np.ascontiguousarray(W_x[:, n_in]), np.ascontiguousarray(W_h.T),
              np.ascontiguousarray(W_y.T))
    rows = B * steps
    return (drive, consts, np.empty((planes, rows, H), dtype=X.dtype),
            np.empty(rows, dtype=X.dtype), np.empty((rows, n_out), dtype=X.dtype))


@njit(cache=True)
def _step(consts, drive, w_halt, b_halt, b_y, prev, first, S, A, Ys, row0):
    # One ponder step of the r = prev.shape[0] rows whose s_{n-1} is prev (r, H) and whose
    # input drive is drive[:r]: s_n, a_n and y_n into S, A and Ys from row ``row0`` on.
    flag, W_hT, W_yT = consts
    r, H = prev.shape
    z = drive if first else np.dot(prev, W_hT)          # s_0 = 0: no product at step 1
    for j in range(r):
        for i in range(H):
            S[row0 + j, i] = act(drive[j, i] + (flag[i] if first else z[j, i]), TANH)
    s = S[row0:row0 + r]
    A[row0:row0 + r] = np.dot(s, w_halt) + b_halt[0]
    Ys[row0:row0 + r] = np.dot(s, W_yT) + b_y


@njit(cache=True)
def _act_forward(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, max_steps, epsilon):
    # ACT with the running examples compacted. Returns the rows' S, A, Ys, ex and nxt, the
    # previous states ``prev`` of the rows from the second step on (row off[1] + j has
    # s_{n-1} = prev[j]), room for ∂L/∂z, off (steps + 1,) the first row of each step, N and
    # R (B,), and the mixed output y (B, n_out).
    B, H, n_out = X.shape[0], W_h.shape[0], W_y.shape[0]
    # The drive's rows are compacted with the running examples'.
    drive, consts, work, A, Ys = _setup(W_x, W_h, b_h, W_y, X, max_steps, 3)
    S, prev = work[0], work[1]                          # prev: s_{n-1} of the running rows
    ex = np.empty(B * max_steps, dtype=np.int64)
    nxt = np.empty(B * max_steps, dtype=np.int64)
    off = np.zeros(max_steps + 1, dtype=np.int64)
    order = np.arange(B)                                # the example of each running row
    past = np.zeros(B, dtype=X.dtype)                   # Σ_{m<n} h_m of each running row
    N = np.zeros(B, dtype=np.int64)
    R = np.zeros(B, dtype=X.dtype)
    r, steps = B, 0
    while r > 0:
        row0, base = off[steps], off[steps] - B         # base: prev's row of row0
        first = steps == 0
        _step(consts, drive, w_halt, b_halt, b_y, prev[:r] if first else prev[base:base + r],
              first, S, A, Ys, row0)
        steps += 1
        kept = 0
        for j in range(r):
            row, b = row0 + j, order[j]
            ex[row] = b
            h = act(A[row], SIGMOID)
            if past[j] + h >= 1.0 - epsilon or steps == max_steps:
                N[b] = steps
                R[b] = 1.0 - past[j]
                nxt[row] = -1
            else:
                # Moves row j to row ``kept`` <= j, which this step has already read (unit
                # by unit: a slice assignment per row costs more than the copy).
                nxt[row] = row0 + r + kept
                for i in range(H):
                    prev[row0 + r + kept - B, i] = S[row, i]
                    drive[kept, i] = drive[j, i]
                past[kept] = past[j] + h
                order[kept] = b
                kept += 1
        off[steps] = row0 + r
        r = kept
    total = off[steps]
    y = np.zeros((B, n_out), dtype=X.dtype)
    for row in range(total):
        b = ex[row]
        p = R[b] if nxt[row] < 0 else act(A[row], SIGMOID)
        for o in range(n_out):
            y[b, o] += p * Ys[row, o]
    return (S[:total], A[:total], Ys[:total], ex[:total], nxt[:total],
            prev[:max(total - B, 0)], work[2][:total], off[:steps + 1], N, R, y)


@njit(cache=True)
def _cell_backward(W_x, W_h, w_halt, W_y, X, S, prev, dZ, dYs, dA, ex, nxt, off):
    # BPTT through the blocks of rows, as halting.cell_backward, from ∂L/∂y_n = dYs
    # (rows, n_out) and ∂L/∂a_n = dA (rows,), into dZ (rows, H); a row's ∂L/∂s_n takes
    # dz_{n+1} W_h from row nxt.
    rows, H = S.shape
    B, n_in = X.shape
    n_out = W_y.shape[0]
    steps = off.shape[0] - 1
    dz_x = np.zeros((B, H), dtype=X.dtype)                   # Σ_n dz_n of each example
    back = np.empty((0, H), dtype=X.dtype)                   # dz_{n+1} W_h of step n+1's rows
    for n in range(steps - 1, -1, -1):
        for row in range(off[n], off[n + 1]):
            # Unit by unit in separate passes over the row, each a vectorised loop.
            b, later, d = ex[row], nxt[row] - off[n + 1], dZ[row]
            for i in range(H):
                d[i] = dA[row] * w_halt[i]
            for o in range(n_out):
                for i in range(H):
                    d[i] += dYs[row, o] * W_y[o, i]
            if later >= 0:
                for i in range(H):
                    d[i] += back[later, i]
            for i in range(H):
                d[i] *= 1.0 - S[row, i] * S[row, i]                  # tanh' = 1 − s²
                dz_x[b, i] += d[i]
        if n > 0:
            back = np.dot(dZ[off[n]:off[n + 1]], W_h)
    gW_x = np.empty_like(W_x)
    gW_x[:, :n_in] = np.dot(dz_x.T, X)
    gW_x[:, n_in] = dZ[:off[1]].sum(axis=0)
    gW_h = np.dot(dZ[off[1]:].T, prev) if rows > off[1] else np.zeros_like(W_h)
    gb_h = dz_x.sum(axis=0)                                  # B rows, not all of dZ's
    gw_halt = np.dot(dA, S)
    gb_halt = np.full(1, dA.sum(), dtype=X.dtype)
    return gW_x, gW_h, gb_h, gw_halt, gb_halt, np.dot(dYs.T, S), dYs.sum(axis=0)


@njit(cache=True)
def act_loss_and_grads(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, Y, max_steps, epsilon,
                       tau):
    B, n_out = Y.shape
    S, A, Ys, ex, nxt, prev, dZ, off, N, R, y = _act_forward(W_x, W_h, b_h, w_halt, b_halt,
                                                             W_y, b_y, X, max_steps, epsilon)
    loss = 0.0
    g = np.empty((B, n_out), dtype=X.dtype)                        # ∂L/∂y
    for b in range(B):
        loss += tau * (N[b] + R[b])
        for o in range(n_out):
            loss += softplus(y[b, o]) - Y[b, o] * y[b, o]
            g[b, o] = (act(y[b, o], SIGMOID) - Y[b, o]) / B
    dR = np.full(B, tau / B, dtype=X.dtype)                        # ∂L/∂R
    for row in range(ex.shape[0]):
        if nxt[row] < 0:
            for o in range(n_out):
                dR[ex[row]] += Ys[row, o] * g[ex[row], o]
    dYs = np.empty_like(Ys)
    dA = np.zeros_like(A)
    for row in range(ex.shape[0]):
        b = ex[row]
        h = act(A[row], SIGMOID)
        p = R[b] if nxt[row] < 0 else h
        dp = 0.0
        for o in range(n_out):
            dYs[row, o] = p * g[b, o]
            dp += Ys[row, o] * g[b, o]
        if nxt[row] >= 0:
            dA[row] = (dp - dR[b]) * h * (1.0 - h)
    grads = _cell_backward(W_x, W_h, w_halt, W_y, X, S, prev, dZ, dYs, dA, ex, nxt, off)
    return (loss / B,) + grads


@njit(cache=True)
def act_predict(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, max_steps, epsilon):
    N, R, y = _act_forward(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, max_steps,
                           epsilon)[8:]
    probs = np.empty_like(y)
    for b in range(y.shape[0]):
        for o in range(y.shape[1]):
            probs[b, o] = act(y[b, o], SIGMOID)
    return probs, (N + R).astype(X.dtype)


@njit(cache=True)
def _unrolled(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, steps):
    # Every example for all ``steps`` steps: S, A, Ys flat, row n B + b for example b at step
    # n + 1, room for ∂L/∂z, and the ex, nxt, off of that layout for _cell_backward.
    B = X.shape[0]
    drive, consts, work, A, Ys = _setup(W_x, W_h, b_h, W_y, X, steps, 2)
    S = work[0]
    for n in range(steps):
        prev = S[:B] if n == 0 else S[(n - 1) * B:n * B]
        _step(consts, drive, w_halt, b_halt, b_y, prev, n == 0, S, A, Ys, n * B)
    rows = np.arange(steps * B)
    nxt = rows + B
    nxt[(steps - 1) * B:] = -1
    return S, A, Ys, work[1], rows % B, nxt, np.arange(steps + 1) * B


@njit(cache=True)
def _log_p(A, B, steps):
    # PonderNet's log p (steps, B): log λ_n plus the log-survival so far, from log-sigmoids
    # (λ_N = 1 at the last step).
    log_p = np.empty((steps, B), dtype=A.dtype)
    for b in range(B):
        survive = 0.0
        for n in range(steps):
            a = A[n * B + b]
            log_p[n, b] = survive if n == steps - 1 else survive - softplus(-a)
            survive -= softplus(a)
    return log_p


@njit(cache=True)
def ponder_loss_and_grads(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, Y, steps, beta,
                          lambda_p):
    B, n_out = Y.shape
    S, A, Ys, dZ, ex, nxt, off = _unrolled(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, steps)
    log_p = _log_p(A, B, steps)
    loss = 0.0
    dYs = np.empty_like(Ys)
    dA = np.zeros_like(A)
    c = np.empty(steps, dtype=X.dtype)                             # ∂L_b/∂p_n / B
    survive = np.empty(steps, dtype=X.dtype)
    for b in range(B):
        for n in range(steps):
            row = n * B + b
            log_g = (np.log(lambda_p) if n < steps - 1 else 0.0) + n * np.log1p(-lambda_p)
            p = np.exp(log_p[n, b])
            ell = 0.0
            for o in range(n_out):
                z = Ys[row, o]
                ell += softplus(z) - Y[b, o] * z
                dYs[row, o] = p * (act(z, SIGMOID) - Y[b, o]) / B
            loss += p * ell + beta * p * (log_p[n, b] - log_g)
            c[n] = (ell + beta * (log_p[n, b] + 1.0 - log_g)) / B
        # ∂L/∂λ_k = P_k (c_k − T_k), T summed from the last step down (halting.ponder_backward);
        # P_k = Π_{j<k} σ(−a_j), the probability of still running at step k.
        survive[0] = 1.0
        for k in range(steps - 1):
            survive[k + 1] = survive[k] * act(-A[k * B + b], SIGMOID)
        T = 0.0
        for k in range(steps - 2, -1, -1):
            lam_next = 1.0 if k + 1 == steps - 1 else act(A[(k + 1) * B + b], SIGMOID)
            T = c[k + 1] * lam_next + (1.0 - lam_next) * T
            lam = act(A[k * B + b], SIGMOID)
            dA[k * B + b] = survive[k] * (c[k] - T) * lam * (1.0 - lam)
    grads = _cell_backward(W_x, W_h, w_halt, W_y, X, S, S[:(steps - 1) * B], dZ, dYs, dA, ex,
                           nxt, off)
    return (loss / B,) + grads


@njit(cache=True)
def ponder_predict(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, steps):
    A, Ys = _unrolled(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, steps)[1:3]
    B, n_out = X.shape[0], Ys.shape[1]
    log_p = _log_p(A, B, steps)
    probs = np.empty((B, n_out), dtype=X.dtype)
    ponder = np.empty(B, dtype=X.dtype)
    for b in range(B):
        total = 0.0
        n = 0
        while n < steps - 1:
            total += np.exp(log_p[n, b])
            if total >= 0.5:
                break
            n += 1
        ponder[b] = n + 1
        for o in range(n_out):
            probs[b, o] = act(Ys[n * B + b, o], SIGMOID)
    return probs, ponder


@njit(cache=True)
def fixed_loss_and_grads(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, Y, steps):
    # The looped cell: the loss of the last step only; the halting unit's gradient is dropped.
    B, n_out = Y.shape
    S, A, Ys, dZ, ex, nxt, off = _unrolled(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, steps)
    dYs = np.zeros_like(Ys)
    loss = 0.0
    for row in range((steps - 1) * B, steps * B):
        b = row - (steps - 1) * B
        for o in range(n_out):
            z = Ys[row, o]
            loss += softplus(z) - Y[b, o] * z
            dYs[row, o] = (act(z, SIGMOID) - Y[b, o]) / B
    grads = _cell_backward(W_x, W_h, w_halt, W_y, X, S, S[:(steps - 1) * B], dZ, dYs,
                           np.zeros_like(A), ex, nxt, off)
    return (loss / B,) + grads


@njit(cache=True)
def fixed_predict(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, steps):
    Ys = _unrolled(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, steps)[2]
    B = X.shape[0]
    probs = np.empty((B, Ys.shape[1]), dtype=X.dtype)
    for b in range(B):
        for o in range(probs.shape[1]):
            probs[b, o] = act(Ys[(steps - 1) * B + b, o], SIGMOID)
    return probs, np.full(B, float(steps)).astype(X.dtype)


@njit(cache=True)
def critic_loss_and_grads(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, Y, steps,
                          critic_weight):
    # sln_lateral.CriticCell: every step's answer and halting logit get a BCE, the latter
    # against "the answer is exactly right" (sln_lateral.critic_cell_backward).
    B, n_out = Y.shape
    S, A, Ys, dZ, ex, nxt, off = _unrolled(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, steps)
    scale = 1.0 / (B * steps)
    dYs = np.empty_like(Ys)
    dA = np.empty_like(A)
    loss = 0.0
    for row in range(steps * B):
        b = row % B
        right = 1.0
        for o in range(n_out):
            z = Ys[row, o]
            q = act(z, SIGMOID)
            loss += softplus(z) - Y[b, o] * z
            dYs[row, o] = (q - Y[b, o]) * scale
            if (q > 0.5) != (Y[b, o] > 0.5):
                right = 0.0
        loss += critic_weight * (softplus(A[row]) - right * A[row])
        dA[row] = critic_weight * (act(A[row], SIGMOID) - right) * scale
    grads = _cell_backward(W_x, W_h, w_halt, W_y, X, S, S[:(steps - 1) * B], dZ, dYs, dA, ex,
                           nxt, off)
    return (loss * scale,) + grads


@njit(cache=True)
def critic_predict(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, steps, theta):
    A, Ys = _unrolled(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, steps)[1:3]
    B, n_out = X.shape[0], Ys.shape[1]
    probs = np.empty((B, n_out), dtype=X.dtype)
    loops = np.empty(B, dtype=X.dtype)
    for b in range(B):
        n = 0                                          # the first score ≥ θ, or the last
        while n < steps - 1 and act(A[n * B + b], SIGMOID) < theta:
            n += 1
        loops[b] = n + 1
        for o in range(n_out):
            probs[b, o] = act(Ys[n * B + b, o], SIGMOID)
    return probs, loops
