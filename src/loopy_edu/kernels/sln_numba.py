"""Numba CPU kernels for :mod:`loopy_edu.sln` (Chapter 15): the tall SLN's dialogue and its
BPTT in one compiled call each, shaped like the NumPy reference (one BLAS product per lobe and
loop for the whole batch, fused loops for the rest).

Arguments: the twelve lobe weights in the order of ``TallSLN.shapes()`` (left, then right),
then ``w_halt`` (2H,) and ``b_halt`` (1,) (zeros unless the stop rule is "halt"), X (B, n_in),
and the stop rule as a code of ``sln.STOPS``.
"""
import numpy as np
from numba import njit

from ..activations import CODES
from .scalar_numba import act, softplus

SIGMOID, TANH = CODES["sigmoid"], CODES["tanh"]
FIXED, AGREE, HALT = 0, 1, 2


@njit(cache=True)
def _lobe(W_x, W_hT, UT, drive, V, c, S, Q_heard, Y, Q, n):
    # Loop n of one lobe: S[n] from S[n-1] and the other lobe's answer Q_heard (B, n_out),
    # then Y[n-1] and Q[n] = σ(Y[n-1]).
    B, H = drive.shape
    n_in = W_x.shape[1] - 1
    z = np.dot(S[n - 1], W_hT) + np.dot(Q_heard, UT)
    for b in range(B):
        for i in range(H):
            zi = z[b, i] + drive[b, i]
            if n == 1:
                zi += W_x[i, n_in]
            S[n, b, i] = act(zi, TANH)
    Y[n - 1] = np.dot(S[n], V.T)
    for b in range(B):
        for o in range(V.shape[0]):
            Y[n - 1, b, o] += c[o]
            Q[n, b, o] = act(Y[n - 1, b, o], SIGMOID)


@njit(cache=True)
def drive(W_x, b, X):
    # W_x[:, :n_in] x + b for every example (B, H): what the input fixes in every loop.
    d = np.dot(X, np.ascontiguousarray(W_x[:, :X.shape[1]].T))
    for r in range(d.shape[0]):
        d[r] += b
    return d


@njit(cache=True)
def tall_forward(W_xL, W_hL, U_L, b_L, V_L, c_L, W_xR, W_hR, U_R, b_R, V_R, c_R, w_halt,
                 b_halt, X, max_loops, stop, tol, epsilon):
    """Same results as :func:`loopy_edu.sln.tall_forward`, as a tuple: SL, SR, QL, QR, YL,
    YR, A, p, N, R, yL, yR, cut at the loop the last example stopped."""
    B = X.shape[0]
    H, n_out = W_hL.shape[0], V_L.shape[0]
    dt = X.dtype
    driveL, driveR = drive(W_xL, b_L, X), drive(W_xR, b_R, X)
    W_hLT, W_hRT = np.ascontiguousarray(W_hL.T), np.ascontiguousarray(W_hR.T)
    U_LT, U_RT = np.ascontiguousarray(U_L.T), np.ascontiguousarray(U_R.T)
    SL = np.zeros((max_loops + 1, B, H), dt)
    SR = np.zeros_like(SL)
    QL = np.zeros((max_loops + 1, B, n_out), dt)
    QR = np.zeros_like(QL)
    YL = np.empty((max_loops, B, n_out), dt)
    YR = np.empty_like(YL)
    A = np.zeros((max_loops, B), dt)
    N = np.zeros(B, dtype=np.int64)
    past = np.zeros(B, dt)
    R = np.zeros(B, dt)
    loops = max_loops
    for n in range(1, max_loops + 1):
        _lobe(W_xL, W_hLT, U_LT, driveL, V_L, c_L, SL, QR[n - 1], YL, QL, n)
        _lobe(W_xR, W_hRT, U_RT, driveR, V_R, c_R, SR, QL[n], YR, QR, n)
        running = 0
        for b in range(B):
            if stop == HALT:
                a = b_halt[0]
                for i in range(H):
                    a += w_halt[i] * SL[n, b, i] + w_halt[H + i] * SR[n, b, i]
                A[n - 1, b] = a
            if N[b] > 0:
                continue
            done = n == max_loops
            if stop == AGREE:
                gap = 0.0
                for o in range(n_out):
                    ans = 1.0 if QR[n, b, o] > 0.5 else 0.0
                    gap = max(gap, abs(QL[n, b, o] - ans), abs(QR[n, b, o] - ans))
                done = done or gap <= tol
            elif stop == HALT:
                h = act(A[n - 1, b], SIGMOID)
                if past[b] + h >= 1.0 - epsilon:
                    done = True
                elif not done:
                    past[b] += h
            if done:
                N[b] = n
                R[b] = 1.0 - past[b] if stop == HALT else 0.0
            else:
                running += 1
        if running == 0:
            loops = n
            break
    p = np.zeros((loops, B), dt)
    yL = np.zeros((B, n_out), dt)
    yR = np.zeros((B, n_out), dt)
    for b in range(B):
        for n in range(N[b]):
            if stop != HALT:
                p[n, b] = 1.0 if n == N[b] - 1 else 0.0
            else:
                p[n, b] = R[b] if n == N[b] - 1 else act(A[n, b], SIGMOID)
            for o in range(n_out):
                yL[b, o] += p[n, b] * YL[n, b, o]
                yR[b, o] += p[n, b] * YR[n, b, o]
    return (SL[:loops + 1], SR[:loops + 1], QL[:loops + 1], QR[:loops + 1], YL[:loops],
            YR[:loops], A[:loops], p, N, R, yL, yR)


@njit(cache=True)
def lobe_grads(dZ, dY, S, heard, X):
    # sln.lobe_grads: one lobe's weight gradients from its ∂L/∂z (loops, B, H), ∂L/∂y (loops,
    # B, k), states (loops + 1, B, H) and what it heard (loops, B, m).
    loops, B, H = dZ.shape
    n_in, k, m = X.shape[1], dY.shape[2], heard.shape[2]
    flat = dZ.reshape(loops * B, H)
    gW_x = np.empty((H, n_in + 1), X.dtype)
    gW_x[:, :n_in] = np.dot(dZ.sum(axis=0).T, X)
    gW_x[:, n_in] = dZ[0].sum(axis=0)
    S_prev = np.ascontiguousarray(S[:-1]).reshape(loops * B, H)
    S_now = np.ascontiguousarray(S[1:]).reshape(loops * B, H)
    flat_dY = dY.reshape(loops * B, k)
    return (gW_x, np.dot(flat.T, S_prev),
            np.dot(flat.T, np.ascontiguousarray(heard).reshape(loops * B, m)),
            flat.sum(axis=0), np.dot(flat_dY.T, S_now), flat_dY.sum(axis=0))


@njit(cache=True)
def _lobe_back(back, Q, p, g, V, W_h, dz_next, dA, w_half, S, dY, dZ):
    # One lobe at one loop, back through its answer q = Q (B, n_out): ∂L/∂y into dY from the
    # mixture's gradient g and from ``back``, what the lobe that heard q sends; then ∂L/∂z
    # into dZ from dY, its next loop's dz_next and the halting head's half w_half.
    B, n_out = back.shape
    for b in range(B):
        for o in range(n_out):
            q = Q[b, o]
            dY[b, o] = p[b] * g[b, o] + back[b, o] * q * (1.0 - q)
    ds = np.dot(dY, V) + np.dot(dz_next, W_h)
    for b in range(B):
        for i in range(ds.shape[1]):
            s = S[b, i]
            dZ[b, i] = (ds[b, i] + dA[b] * w_half[i]) * (1.0 - s * s)


@njit(cache=True)
def tall_loss_and_grads(W_xL, W_hL, U_L, b_L, V_L, c_L, W_xR, W_hR, U_R, b_R, V_R, c_R,
                        w_halt, b_halt, X, Y, max_loops, stop, tol, epsilon, tau,
                        left_weight):
    """The loss and the gradient of every weight (the order of ``TallSLN.shapes()``, then
    w_halt and b_halt), as :func:`loopy_edu.sln.tall_backward`."""
    SL, SR, QL, QR, YL, YR, A, p, N, R, yL, yR = tall_forward(
        W_xL, W_hL, U_L, b_L, V_L, c_L, W_xR, W_hR, U_R, b_R, V_R, c_R, w_halt, b_halt, X,
        max_loops, stop, tol, epsilon)
    loops, B, n_out = YL.shape
    H = W_hL.shape[0]
    gR = np.empty((B, n_out), X.dtype)
    gL = np.empty((B, n_out), X.dtype)
    loss = 0.0
    for b in range(B):
        if stop == HALT:
            loss += tau * (N[b] + R[b])
        for o in range(n_out):
            loss += softplus(yR[b, o]) - Y[b, o] * yR[b, o]
            loss += left_weight * (softplus(yL[b, o]) - Y[b, o] * yL[b, o])
            gR[b, o] = (act(yR[b, o], SIGMOID) - Y[b, o]) / B
            gL[b, o] = left_weight * (act(yL[b, o], SIGMOID) - Y[b, o]) / B
    dA = np.zeros((loops, B), X.dtype)
    if stop == HALT:
        for b in range(B):
            last = N[b] - 1
            dR = tau / B
            for o in range(n_out):
                dR += YR[last, b, o] * gR[b, o] + YL[last, b, o] * gL[b, o]
            for n in range(last):
                dp = 0.0
                for o in range(n_out):
                    dp += YR[n, b, o] * gR[b, o] + YL[n, b, o] * gL[b, o]
                h = act(A[n, b], SIGMOID)
                dA[n, b] = (dp - dR) * h * (1.0 - h)
    dZL = np.zeros((loops, B, H), X.dtype)
    dZR = np.zeros_like(dZL)
    dYL = np.zeros((loops, B, n_out), X.dtype)
    dYR = np.zeros_like(dYL)
    zero = np.zeros((B, H), X.dtype)
    for n in range(loops - 1, -1, -1):
        # The right lobe spoke last: its answer q^R_n was heard by the left at loop n + 1.
        nextL = dZL[n + 1] if n + 1 < loops else zero
        nextR = dZR[n + 1] if n + 1 < loops else zero
        _lobe_back(np.dot(nextL, U_L), QR[n + 1], p[n], gR, V_R, W_hR, nextR, dA[n],
                   w_halt[H:], SR[n + 1], dYR[n], dZR[n])
        _lobe_back(np.dot(dZR[n], U_R), QL[n + 1], p[n], gL, V_L, W_hL, nextL, dA[n],
                   w_halt[:H], SL[n + 1], dYL[n], dZL[n])
    left = lobe_grads(dZL, dYL, SL, QR[:-1], X)
    right = lobe_grads(dZR, dYR, SR, QL[1:], X)
    gw_halt = np.zeros(2 * H, X.dtype)
    for n in range(loops):
        for b in range(B):
            for i in range(H):
                gw_halt[i] += dA[n, b] * SL[n + 1, b, i]
                gw_halt[H + i] += dA[n, b] * SR[n + 1, b, i]
    return (loss / B,) + left + right + (gw_halt, np.full(1, dA.sum(), X.dtype))
