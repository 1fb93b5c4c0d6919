"""Numba CPU kernels for :mod:`loopy_edu.sln_wide` (Chapter 15): the wide SLN's soft pass,
its BPTT and its hard pass, each in one compiled call, shaped like the NumPy reference (one
BLAS product per gate or expert and loop for the whole batch, fused loops for the rest).

Arguments: the twelve weights in the order of ``WideSLN.shapes()`` (G, g, then A, a, W, b of
the left lobe and of the right, then V, c), the tokens X (B, T, n_in) and the loop cap.
"""
import numpy as np
from numba import njit

from ..activations import CODES
from .scalar_numba import act, softplus

SIGMOID, TANH = CODES["sigmoid"], CODES["tanh"]
OUTPUT = 2


@njit(cache=True)
def _softmax_rows(z):
    # softmax along the last axis of z (B, K), in place.
    for r in range(z.shape[0]):
        top = z[r].max()
        total = 0.0
        for k in range(z.shape[1]):
            z[r, k] = np.exp(z[r, k] - top)
            total += z[r, k]
        z[r] /= total


@njit(cache=True)
def _inputs(h, X, t):
    # v_t = [h_{t-1}, x_t] (B, H + n_in), x_t = 0 after the last token (t is 1-based).
    B, H = h.shape
    v = np.zeros((B, H + X.shape[2]), X.dtype)
    v[:, :H] = h
    if t <= X.shape[1]:
        v[:, H:] = X[:, t - 1]
    return v


@njit(cache=True)
def _lobe(A, a, W, b, v, gamma, U):
    # One lobe on v (B, D): its expert gate into gamma (B, E), its experts into U (E, B, H);
    # returns the proposal u (B, H) = Σ_e γ_e U_e.
    gamma[:] = np.dot(v, A.T) + a
    _softmax_rows(gamma)
    u = np.zeros((v.shape[0], W.shape[1]), v.dtype)
    for e in range(W.shape[0]):
        z = np.dot(v, W[e].T)
        for r in range(z.shape[0]):
            for i in range(z.shape[1]):
                U[e, r, i] = act(z[r, i] + b[e, i], TANH)
                u[r, i] += gamma[r, e] * U[e, r, i]
    return u


@njit(cache=True)
def wide_forward(G, g, A_L, a_L, W_L, b_L, A_R, a_R, W_R, b_R, V, c, X, max_loops):
    """Same results as :func:`loopy_edu.sln_wide.wide_forward`, as a tuple: Hs, v, pi,
    gamma, U, Ys, p, y."""
    B, M = X.shape[0], max_loops
    E, H, D = W_L.shape
    n_out = V.shape[0]
    dt = X.dtype
    Hs = np.zeros((M + 1, B, H), dt)
    vs = np.empty((M, B, D), dt)
    pi = np.empty((M, B, 3), dt)
    gamma = np.empty((M, 2, B, E), dt)
    U = np.empty((M, 2, E, B, H), dt)
    Ys = np.empty((M, B, n_out), dt)
    p = np.empty((M, B), dt)
    y = np.zeros((B, n_out), dt)
    survive = np.ones(B, dt)
    for t in range(1, M + 1):
        v = _inputs(Hs[t - 1], X, t)
        vs[t - 1] = v
        pi[t - 1] = np.dot(v, G.T) + g
        _softmax_rows(pi[t - 1])
        uL = _lobe(A_L, a_L, W_L, b_L, v, gamma[t - 1, 0], U[t - 1, 0])
        uR = _lobe(A_R, a_R, W_R, b_R, v, gamma[t - 1, 1], U[t - 1, 1])
        for r in range(B):
            q = pi[t - 1, r]
            for i in range(H):
                Hs[t, r, i] = q[0] * uL[r, i] + q[1] * uR[r, i] + q[2] * Hs[t - 1, r, i]
        Ys[t - 1] = np.dot(Hs[t], V.T)
        for r in range(B):
            lam = pi[t - 1, r, OUTPUT] if t < M else 1.0      # the cap takes the remainder
            p[t - 1, r] = lam * survive[r]
            survive[r] *= 1.0 - lam
            for o in range(n_out):
                Ys[t - 1, r, o] += c[o]
                y[r, o] += p[t - 1, r] * Ys[t - 1, r, o]
    return Hs, vs, pi, gamma, U, Ys, p, y


@njit(cache=True)
def _log(q):
    # log q, 0 where a probability underflowed to 0 (where q log q and q ∂H/∂q are 0).
    return np.log(q) if q > 0 else 0.0


@njit(cache=True)
def _entropy(q):
    # −Σ q log q over every entry of q (M, B, K): the gates' entropy summed over loops.
    total = 0.0
    for t in range(q.shape[0]):
        for r in range(q.shape[1]):
            for k in range(q.shape[2]):
                total -= q[t, r, k] * _log(q[t, r, k])
    return total


@njit(cache=True)
def _softmax_back(q, dq):
    # ∂L/∂z of q = softmax(z) (B, K), from ∂L/∂q, in place in dq.
    for r in range(q.shape[0]):
        dot = 0.0
        for k in range(q.shape[1]):
            dot += q[r, k] * dq[r, k]
        for k in range(q.shape[1]):
            dq[r, k] = q[r, k] * (dq[r, k] - dot)


@njit(cache=True)
def _lobe_back(A, W, v, gamma, U, weight, dh, sharpen, gA, ga, gW, gb, dv):
    # Back through one lobe at one loop, its proposal weighted by ``weight`` (B,) = π_k, its
    # gate's entropy by ``sharpen``: accumulates its weight gradients, adds ∂L/∂v into dv.
    E, B, H = U.shape
    dzA = np.empty((B, E), v.dtype)
    for r in range(B):
        for e in range(E):
            dzA[r, e] = -sharpen * _log(gamma[r, e])
    dZ = np.empty((B, H), v.dtype)
    for e in range(E):
        for r in range(B):
            for i in range(H):
                du = weight[r] * dh[r, i]
                dzA[r, e] += du * U[e, r, i]
                dZ[r, i] = gamma[r, e] * du * (1.0 - U[e, r, i] * U[e, r, i])
        gW[e] += np.dot(dZ.T, v)
        gb[e] += dZ.sum(axis=0)
        dv += np.dot(dZ, W[e])
    _softmax_back(gamma, dzA)
    gA += np.dot(dzA.T, v)
    ga += dzA.sum(axis=0)
    dv += np.dot(dzA, A)


@njit(cache=True)
def wide_loss_and_grads(G, g, A_L, a_L, W_L, b_L, A_R, a_R, W_R, b_R, V, c, X, Y, max_loops,
                        entropy_cost, ponder_cost):
    """The soft loss and the gradient of every weight (the order of ``WideSLN.shapes()``),
    as :func:`loopy_edu.sln_wide.wide_backward`."""
    Hs, vs, pi, gamma, U, Ys, p, y = wide_forward(G, g, A_L, a_L, W_L, b_L, A_R, a_R, W_R,
                                                  b_R, V, c, X, max_loops)
    M, B, n_out = Ys.shape
    H = V.shape[1]
    gy = np.empty((B, n_out), X.dtype)
    loss = entropy_cost * (_entropy(pi) + _entropy(gamma[:, 0]) + _entropy(gamma[:, 1]))
    sharpen = entropy_cost / B
    for r in range(B):
        for o in range(n_out):
            loss += softplus(y[r, o]) - Y[r, o] * y[r, o]
            gy[r, o] = (act(y[r, o], SIGMOID) - Y[r, o]) / B
    dp = np.zeros((M, B), X.dtype)
    for t in range(M):
        for r in range(B):
            # τ Σ_t t p_t, the expected loops' price
            loss += ponder_cost * (t + 1) * p[t, r]
            dp[t, r] = ponder_cost * (t + 1) / B
            for o in range(n_out):
                dp[t, r] += Ys[t, r, o] * gy[r, o]
    # ∂L/∂λ_t = S_t (∂L/∂p_t − J_{t+1}), J_t = λ_t ∂L/∂p_t + (1 − λ_t) J_{t+1}, J_M = ∂L/∂p_M.
    dlam = np.zeros((M, B), X.dtype)
    for r in range(B):
        J = dp[M - 1, r]
        survive = 1.0
        S = np.empty(M, X.dtype)
        for t in range(M):
            S[t] = survive
            survive *= 1.0 - pi[t, r, OUTPUT]
        for t in range(M - 2, -1, -1):
            lam = pi[t, r, OUTPUT]
            dlam[t, r] = S[t] * (dp[t, r] - J)
            J = lam * dp[t, r] + (1.0 - lam) * J
    gG, gg = np.zeros_like(G), np.zeros_like(g)
    gA_L, ga_L, gW_L, gb_L = (np.zeros_like(A_L), np.zeros_like(a_L), np.zeros_like(W_L),
                              np.zeros_like(b_L))
    gA_R, ga_R, gW_R, gb_R = (np.zeros_like(A_R), np.zeros_like(a_R), np.zeros_like(W_R),
                              np.zeros_like(b_R))
    gV, gc = np.zeros_like(V), np.zeros_like(c)
    dh = np.zeros((B, H), X.dtype)
    dpi = np.empty((B, 3), X.dtype)
    for t in range(M - 1, -1, -1):
        dy = np.empty((B, n_out), X.dtype)
        for r in range(B):
            for o in range(n_out):
                dy[r, o] = p[t, r] * gy[r, o]
                gc[o] += dy[r, o]
        gV += np.dot(dy.T, Hs[t + 1])
        dh += np.dot(dy, V)
        uL = np.zeros((B, H), X.dtype)
        uR = np.zeros((B, H), X.dtype)
        for e in range(W_L.shape[0]):
            for r in range(B):
                for i in range(H):
                    uL[r, i] += gamma[t, 0, r, e] * U[t, 0, e, r, i]
                    uR[r, i] += gamma[t, 1, r, e] * U[t, 1, e, r, i]
        for r in range(B):
            dpi[r, 0], dpi[r, 1], dpi[r, 2] = 0.0, 0.0, dlam[t, r]
            for k in range(3):
                dpi[r, k] -= sharpen * _log(pi[t, r, k])
            for i in range(H):
                dpi[r, 0] += dh[r, i] * uL[r, i]
                dpi[r, 1] += dh[r, i] * uR[r, i]
                dpi[r, 2] += dh[r, i] * Hs[t, r, i]
        _softmax_back(pi[t], dpi)
        gG += np.dot(dpi.T, vs[t])
        gg += dpi.sum(axis=0)
        dv = np.dot(dpi, G)
        _lobe_back(A_L, W_L, vs[t], gamma[t, 0], U[t, 0], pi[t, :, 0], dh, sharpen, gA_L,
                   ga_L, gW_L, gb_L, dv)
        _lobe_back(A_R, W_R, vs[t], gamma[t, 1], U[t, 1], pi[t, :, 1], dh, sharpen, gA_R,
                   ga_R, gW_R, gb_R, dv)
        for r in range(B):
            for i in range(H):
                dh[r, i] = pi[t, r, OUTPUT] * dh[r, i] + dv[r, i]
    return (loss / B, gG, gg, gA_L, ga_L, gW_L, gb_L, gA_R, ga_R, gW_R, gb_R, gV, gc)


@njit(cache=True)
def _argmax_logit(Wt, bias, v):
    # argmax_k (Wt[k] · v + bias[k]); the first of equals, as np.argmax.
    best, top = 0, -np.inf
    for k in range(Wt.shape[0]):
        z = bias[k]
        for j in range(v.shape[0]):
            z += Wt[k, j] * v[j]
        if z > top:
            best, top = k, z
    return best


@njit(cache=True)
def wide_predict(G, g, A_L, a_L, W_L, b_L, A_R, a_R, W_R, b_R, V, c, X, max_loops):
    """Same results as :func:`loopy_edu.sln_wide.wide_predict`: the answers (B, n_out), the
    loops used (B,), the main gate's choices and the experts run (B, M)."""
    B, M = X.shape[0], max_loops
    E, H, D = W_L.shape
    n_out = V.shape[0]
    out = np.empty((B, n_out), X.dtype)
    loops = np.full(B, M, dtype=np.int64)
    lobe = np.full((B, M), -1, dtype=np.int64)
    expert = np.full((B, M), -1, dtype=np.int64)
    v = np.zeros(D, X.dtype)
    h = np.zeros(H, X.dtype)
    for r in range(B):
        h[:] = 0.0
        for t in range(1, M + 1):
            v[:H] = h
            if t <= X.shape[1]:
                v[H:] = X[r, t - 1]
            else:
                v[H:] = 0.0
            choice = _argmax_logit(G, g, v)
            lobe[r, t - 1] = choice
            if choice == OUTPUT:
                loops[r] = t
                break
            A, a, W, b = (A_L, a_L, W_L, b_L) if choice == 0 else (A_R, a_R, W_R, b_R)
            e = _argmax_logit(A, a, v)
            expert[r, t - 1] = e
            for i in range(H):
                z = b[e, i]
                for j in range(D):
                    z += W[e, i, j] * v[j]
                h[i] = act(z, TANH)
        for o in range(n_out):
            z = c[o]
            for i in range(H):
                z += V[o, i] * h[i]
            out[r, o] = act(z, SIGMOID)
    return out, loops, lobe, expert
