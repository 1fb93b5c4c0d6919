"""Numba CPU kernels for :mod:`loopy_edu.halting` (Chapter 14): ACT's and PonderNet's forward
pass, loss and exact gradient, each in one compiled call.

The shape follows the NumPy reference: each ponder step makes one BLAS product with W_h for
the whole batch, and the weight gradients are BLAS products after the loop. What the compiled
loops save is the reference's dozens of small array operations per step (the halting rule, the
mixing of the outputs, the masks), which at H = 128 cost as much as the products.
"""
import numpy as np
from numba import njit

from ..activations import CODES
from .scalar_numba import act, softplus

SIGMOID, TANH = CODES["sigmoid"], CODES["tanh"]


@njit(cache=True)
def _step(W_x, W_hT, drive, w_halt, b_halt, W_y, b_y, S, A, Ys, n):
    # Ponder step n (1-based): S[n], A[n-1] and Ys[n-1] of every example from S[n-1].
    B, H = drive.shape
    n_out = W_y.shape[0]
    z = np.dot(S[n - 1], W_hT)
    flag = W_x.shape[1] - 1
    for b in range(B):
        a = b_halt[0]
        for i in range(H):
            zi = z[b, i] + drive[b, i]
            if n == 1:
                zi += W_x[i, flag]
            s = act(zi, TANH)
            S[n, b, i] = s
            a += w_halt[i] * s
        A[n - 1, b] = a
        for o in range(n_out):
            y = b_y[o]
            for i in range(H):
                y += W_y[o, i] * S[n, b, i]
            Ys[n - 1, b, o] = y


@njit(cache=True)
def _buffers(W_x, W_h, b_h, W_y, X, steps):
    B, n_in = X.shape
    H, n_out = W_h.shape[0], W_y.shape[0]
    drive = np.dot(X, np.ascontiguousarray(W_x[:, :n_in].T))
    for b in range(B):
        for i in range(H):
            drive[b, i] += b_h[i]
    S = np.zeros((steps + 1, B, H), dtype=X.dtype)
    return drive, S, np.empty((steps, B), dtype=X.dtype), np.empty((steps, B, n_out), X.dtype)


@njit(cache=True)
def _act_forward(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, max_steps, epsilon):
    # Returns S, A, Ys cut at the step the last example halted, N and R (B,), and the mixed
    # output y (B, n_out).
    B = X.shape[0]
    drive, S, A, Ys = _buffers(W_x, W_h, b_h, W_y, X, max_steps)
    W_hT = np.ascontiguousarray(W_h.T)
    N = np.zeros(B, dtype=np.int64)
    past = np.zeros(B, dtype=X.dtype)                    # Σ_{m<n} h_m while running
    R = np.zeros(B, dtype=X.dtype)
    steps = max_steps
    for n in range(1, max_steps + 1):
        _step(W_x, W_hT, drive, w_halt, b_halt, W_y, b_y, S, A, Ys, n)
        running = 0
        for b in range(B):
            if N[b] == 0:
                h = act(A[n - 1, b], SIGMOID)
                if past[b] + h >= 1.0 - epsilon or n == max_steps:
                    N[b] = n
                    R[b] = 1.0 - past[b]
                else:
                    past[b] += h
                    running += 1
        if running == 0:
            steps = n
            break
    y = np.zeros((B, W_y.shape[0]), dtype=X.dtype)
    for b in range(B):
        for n in range(N[b]):
            p = R[b] if n == N[b] - 1 else act(A[n, b], SIGMOID)
            y[b] += p * Ys[n, b]
    return S[:steps + 1], A[:steps], Ys[:steps], N, R, y


@njit(cache=True)
def _cell_backward(W_x, W_h, w_halt, W_y, X, S, dYs, dA):
    # BPTT through the steps, as halting.cell_backward, from dYs (N, B, n_out) and dA (N, B).
    steps, B, n_out = dYs.shape
    H = W_h.shape[0]
    n_in = X.shape[1]
    dZ = np.empty((steps, B, H), dtype=X.dtype)
    dz = np.zeros((B, H), dtype=X.dtype)
    for n in range(steps - 1, -1, -1):
        back = np.dot(dz, W_h)                                      # dz_{n+1} W_h
        dS = np.dot(dYs[n], W_y)                                    # + dy_n W_y
        for b in range(B):
            for i in range(H):
                s = S[n + 1, b, i]
                dz[b, i] = (dS[b, i] + dA[n, b] * w_halt[i] + back[b, i]) * (1.0 - s * s)
        dZ[n] = dz
    flat_dZ = dZ.reshape(steps * B, H)
    flat_S = S[1:].reshape(steps * B, H)
    gW_x = np.empty_like(W_x)
    gW_x[:, :n_in] = np.dot(dZ.sum(axis=0).T, X)
    gW_x[:, n_in] = dZ[0].sum(axis=0)
    gW_h = np.dot(flat_dZ.T, np.ascontiguousarray(S[:-1]).reshape(steps * B, H))
    gb_h = flat_dZ.sum(axis=0)
    flat_dA = dA.reshape(steps * B)
    gw_halt = np.dot(flat_dA, flat_S)
    gb_halt = np.full(1, flat_dA.sum(), dtype=X.dtype)
    flat_dY = dYs.reshape(steps * B, n_out)
    return gW_x, gW_h, gb_h, gw_halt, gb_halt, np.dot(flat_dY.T, flat_S), flat_dY.sum(axis=0)


@njit(cache=True)
def act_loss_and_grads(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, Y, max_steps, epsilon,
                       tau):
    B, n_out = Y.shape
    S, A, Ys, N, R, y = _act_forward(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, max_steps,
                                     epsilon)
    steps = A.shape[0]
    loss = 0.0
    g = np.empty((B, n_out), dtype=X.dtype)                        # ∂L/∂y
    for b in range(B):
        loss += tau * (N[b] + R[b])
        for o in range(n_out):
            loss += softplus(y[b, o]) - Y[b, o] * y[b, o]
            g[b, o] = (act(y[b, o], SIGMOID) - Y[b, o]) / B
    dYs = np.zeros_like(Ys)
    dA = np.zeros_like(A)
    for b in range(B):
        last = N[b] - 1
        dR = tau / B                                               # ∂L/∂R
        for o in range(n_out):
            dR += Ys[last, b, o] * g[b, o]
        for n in range(N[b]):
            h = act(A[n, b], SIGMOID)
            p = R[b] if n == last else h
            dp = 0.0
            for o in range(n_out):
                dYs[n, b, o] = p * g[b, o]
                dp += Ys[n, b, o] * g[b, o]
            if n < last:
                dA[n, b] = (dp - dR) * h * (1.0 - h)
    grads = _cell_backward(W_x, W_h, w_halt, W_y, X, S, dYs, dA)
    return (loss / B,) + grads


@njit(cache=True)
def act_predict(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, max_steps, epsilon):
    _, _, _, N, R, y = _act_forward(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, max_steps,
                                    epsilon)
    probs = np.empty_like(y)
    for b in range(y.shape[0]):
        for o in range(y.shape[1]):
            probs[b, o] = act(y[b, o], SIGMOID)
    return probs, (N + R).astype(X.dtype)


@njit(cache=True)
def _ponder_forward(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, steps):
    # All ``steps`` steps, then log p (steps, B): log λ_n plus the log-survival so far, from
    # log-sigmoids (λ_N = 1 at the last step).
    drive, S, A, Ys = _buffers(W_x, W_h, b_h, W_y, X, steps)
    W_hT = np.ascontiguousarray(W_h.T)
    for n in range(1, steps + 1):
        _step(W_x, W_hT, drive, w_halt, b_halt, W_y, b_y, S, A, Ys, n)
    log_p = np.empty_like(A)
    for b in range(A.shape[1]):
        survive = 0.0
        for n in range(steps):
            a = A[n, b]
            log_p[n, b] = survive if n == steps - 1 else survive - softplus(-a)
            survive -= softplus(a)
    return S, A, Ys, log_p


@njit(cache=True)
def ponder_loss_and_grads(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, Y, steps, beta,
                          lambda_p):
    B, n_out = Y.shape
    S, A, Ys, log_p = _ponder_forward(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, steps)
    loss = 0.0
    dYs = np.empty_like(Ys)
    dA = np.zeros_like(A)
    c = np.empty(steps, dtype=X.dtype)                             # ∂L_b/∂p_n / B
    survive = np.empty(steps, dtype=X.dtype)
    for b in range(B):
        for n in range(steps):
            log_g = (np.log(lambda_p) if n < steps - 1 else 0.0) + n * np.log1p(-lambda_p)
            p = np.exp(log_p[n, b])
            ell = 0.0
            for o in range(n_out):
                z = Ys[n, b, o]
                ell += softplus(z) - Y[b, o] * z
                dYs[n, b, o] = p * (act(z, SIGMOID) - Y[b, o]) / B
            loss += p * ell + beta * p * (log_p[n, b] - log_g)
            c[n] = (ell + beta * (log_p[n, b] + 1.0 - log_g)) / B
        # ∂L/∂λ_k = P_k (c_k − T_k), T summed from the last step down (halting.ponder_backward);
        # P_k = Π_{j<k} σ(−a_j), the probability of still running at step k.
        survive[0] = 1.0
        for k in range(steps - 1):
            survive[k + 1] = survive[k] * act(-A[k, b], SIGMOID)
        T = 0.0
        for k in range(steps - 2, -1, -1):
            lam_next = 1.0 if k + 1 == steps - 1 else act(A[k + 1, b], SIGMOID)
            T = c[k + 1] * lam_next + (1.0 - lam_next) * T
            lam = act(A[k, b], SIGMOID)
            dA[k, b] = survive[k] * (c[k] - T) * lam * (1.0 - lam)
    grads = _cell_backward(W_x, W_h, w_halt, W_y, X, S, dYs, dA)
    return (loss / B,) + grads


@njit(cache=True)
def ponder_predict(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, steps):
    _, _, Ys, log_p = _ponder_forward(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, steps)
    B, n_out = X.shape[0], Ys.shape[2]
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
            probs[b, o] = act(Ys[n, b, o], SIGMOID)
    return probs, ponder


@njit(cache=True)
def _fixed_forward(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, steps):
    drive, S, A, Ys = _buffers(W_x, W_h, b_h, W_y, X, steps)
    W_hT = np.ascontiguousarray(W_h.T)
    for n in range(1, steps + 1):
        _step(W_x, W_hT, drive, w_halt, b_halt, W_y, b_y, S, A, Ys, n)
    return S, A, Ys


@njit(cache=True)
def fixed_loss_and_grads(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, Y, steps):
    # The looped cell: the loss of the last step only; the halting unit's gradient is dropped.
    B, n_out = Y.shape
    S, A, Ys = _fixed_forward(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, steps)
    dYs = np.zeros_like(Ys)
    loss = 0.0
    for b in range(B):
        for o in range(n_out):
            z = Ys[steps - 1, b, o]
            loss += softplus(z) - Y[b, o] * z
            dYs[steps - 1, b, o] = (act(z, SIGMOID) - Y[b, o]) / B
    grads = _cell_backward(W_x, W_h, w_halt, W_y, X, S, dYs, np.zeros_like(A))
    return (loss / B,) + grads


@njit(cache=True)
def fixed_predict(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, steps):
    _, _, Ys = _fixed_forward(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, steps)
    probs = np.empty_like(Ys[0])
    for b in range(probs.shape[0]):
        for o in range(probs.shape[1]):
            probs[b, o] = act(Ys[steps - 1, b, o], SIGMOID)
    return probs, np.full(X.shape[0], float(steps)).astype(X.dtype)
