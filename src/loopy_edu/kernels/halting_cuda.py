"""Numba CUDA kernels for :mod:`loopy_edu.halting` (Chapter 14): ACT and PonderNet, the looped
cell, and :class:`loopy_edu.sln_lateral.CriticCell` (Chapter 15).

One block per example runs its ponder steps (the threads split the H units), then BPTT back
through the steps it used, keeping every step's states and ∂L/∂z in device memory. The halting
rule and the loss of one example are a few dozen scalars, done by the block's thread 0. The
weight gradients are then sums over examples and steps, one thread per weight
(:func:`loopy_edu.kernels.cuda_reduce.outer_sum`), in a fixed order, with no atomics.
"""
import math

import numpy as np
from numba import cuda, float64

from .cuda_reduce import block_dot, cell_back, outer_sum
from .launch import BLOCK_1D
from .scalar_cuda import act, softplus
from ..activations import CODES

SIGMOID, TANH = CODES["sigmoid"], CODES["tanh"]
ACT, PONDER, FIXED, CRITIC = 0, 1, 2, 3


@cuda.jit(device=True)
def _step(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, S, A, Ys, part, b, n, t, T):
    # Ponder step n (1-based) of example b: S[b, n], A[b, n-1], Ys[b, n-1].
    H, n_in = W_h.shape[0], X.shape[1]
    for i in range(t, H, T):
        z = b_h[i] + (W_x[i, n_in] if n == 1 else 0.0)
        for j in range(n_in):
            z += W_x[i, j] * X[b, j]
        for j in range(H):
            z += W_h[i, j] * S[b, n - 1, j]
        S[b, n, i] = act(z, TANH)
    cuda.syncthreads()
    a = block_dot(part, w_halt, S, b, n, t, T) + b_halt[0]
    if t == 0:
        A[b, n - 1] = a
    for o in range(W_y.shape[0]):
        y = block_dot(part, W_y[o], S, b, n, t, T) + b_y[o]
        if t == 0:
            Ys[b, n - 1, o] = y


@cuda.jit(device=True)
def _act_tail(Y, A, Ys, N, R, out, ponder, loss, dYs, dA, b, tau, B):
    # Thread 0: ACT's mixture, loss, and ∂L/∂y_n, ∂L/∂a_n of example b (halting.act_backward).
    last = N[b] - 1
    dR = tau / B
    loss[b] = tau * (N[b] + R[b])
    for o in range(Ys.shape[2]):
        y = 0.0
        for n in range(N[b]):
            y += (R[b] if n == last else act(A[b, n], SIGMOID)) * Ys[b, n, o]
        out[b, o] = act(y, SIGMOID)
        loss[b] += softplus(y) - Y[b, o] * y
        g = (out[b, o] - Y[b, o]) / B
        dR += Ys[b, last, o] * g
        for n in range(N[b]):
            dYs[b, n, o] = (R[b] if n == last else act(A[b, n], SIGMOID)) * g
    ponder[b] = N[b] + R[b]
    for n in range(last):
        h = act(A[b, n], SIGMOID)
        dp = 0.0
        for o in range(Ys.shape[2]):
            dp += Ys[b, n, o] * (out[b, o] - Y[b, o]) / B
        dA[b, n, 0] = (dp - dR) * h * (1.0 - h)
    dA[b, last, 0] = 0.0


@cuda.jit(device=True)
def _ponder_tail(Y, A, Ys, out, ponder, loss, dYs, dA, c, survive, b, beta, lambda_p, B):
    # Thread 0: PonderNet's loss, halting step and deltas of example b
    # (halting.ponder_loss_terms, ponder_backward); c and survive are this example's rows.
    steps, n_out = Ys.shape[1], Ys.shape[2]
    log_survive = 0.0
    total = 0.0
    halt = -1
    loss[b] = 0.0
    for n in range(steps):
        a = A[b, n]
        log_p = log_survive if n == steps - 1 else log_survive - softplus(-a)
        survive[n] = math.exp(log_survive)
        log_survive -= softplus(a)
        log_g = (math.log(lambda_p) if n < steps - 1 else 0.0) + n * math.log1p(-lambda_p)
        p = math.exp(log_p)
        total += p
        if halt < 0 and (total >= 0.5 or n == steps - 1):
            halt = n
        ell = 0.0
        for o in range(n_out):
            z = Ys[b, n, o]
            ell += softplus(z) - Y[b, o] * z
            dYs[b, n, o] = p * (act(z, SIGMOID) - Y[b, o]) / B
        loss[b] += p * ell + beta * p * (log_p - log_g)
        c[n] = (ell + beta * (log_p + 1.0 - log_g)) / B
    ponder[b] = halt + 1
    for o in range(n_out):
        out[b, o] = act(Ys[b, halt, o], SIGMOID)
    T_k = 0.0
    dA[b, steps - 1, 0] = 0.0
    for k in range(steps - 2, -1, -1):
        lam_next = 1.0 if k + 1 == steps - 1 else act(A[b, k + 1], SIGMOID)
        T_k = c[k + 1] * lam_next + (1.0 - lam_next) * T_k
        lam = act(A[b, k], SIGMOID)
        dA[b, k, 0] = survive[k] * (c[k] - T_k) * lam * (1.0 - lam)


@cuda.jit(device=True)
def _fixed_tail(Y, Ys, out, ponder, loss, dYs, b, B):
    # Thread 0: the looped cell's loss at the last step, and ∂L/∂y there.
    last = Ys.shape[1] - 1
    loss[b] = 0.0
    for o in range(Ys.shape[2]):
        z = Ys[b, last, o]
        out[b, o] = act(z, SIGMOID)
        loss[b] += softplus(z) - Y[b, o] * z
        dYs[b, last, o] = (out[b, o] - Y[b, o]) / B
    ponder[b] = last + 1


@cuda.jit(device=True)
def _critic_tail(Y, A, Ys, out, ponder, loss, dYs, dA, b, theta, weight, B):
    # Thread 0: CriticCell's loss over every step, its deltas (sln_lateral.critic_cell_backward)
    # and the first step whose score reaches θ.
    steps, n_out = Ys.shape[1], Ys.shape[2]
    scale = 1.0 / (B * steps)
    halt = -1
    loss[b] = 0.0
    for n in range(steps):
        right = 1.0
        for o in range(n_out):
            z = Ys[b, n, o]
            q = act(z, SIGMOID)
            loss[b] += (softplus(z) - Y[b, o] * z) / steps
            dYs[b, n, o] = (q - Y[b, o]) * scale
            if (q > 0.5) != (Y[b, o] > 0.5):
                right = 0.0
        a = A[b, n]
        c = act(a, SIGMOID)
        loss[b] += weight * (softplus(a) - right * a) / steps
        dA[b, n, 0] = weight * (c - right) * scale
        if halt < 0 and (c >= theta or n == steps - 1):
            halt = n
    ponder[b] = halt + 1
    for o in range(n_out):
        out[b, o] = act(Ys[b, halt, o], SIGMOID)


@cuda.jit
def _examples(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, Y, mode, max_steps, epsilon, tau,
              beta, lambda_p, grads, S, A, Ys, N, R, out, ponder, loss, dYs, dA, dZ, c,
              survive):
    b = cuda.blockIdx.x
    t, T = cuda.threadIdx.x, cuda.blockDim.x
    B = X.shape[0]
    part = cuda.shared.array(BLOCK_1D, float64)
    past = 0.0
    used = max_steps
    for n in range(1, max_steps + 1):
        _step(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, S, A, Ys, part, b, n, t, T)
        if mode == ACT and t == 0 and N[b] == 0:
            h = act(A[b, n - 1], SIGMOID)
            if past + h >= 1.0 - epsilon or n == max_steps:
                N[b] = n
                R[b] = 1.0 - past
            else:
                past += h
        cuda.syncthreads()
        if mode == ACT and N[b] > 0:
            used = n
            break
    if mode != ACT:
        N[b] = max_steps
    if t == 0:
        if mode == ACT:
            _act_tail(Y, A, Ys, N, R, out, ponder, loss, dYs, dA, b, tau, B)
        elif mode == FIXED:
            _fixed_tail(Y, Ys, out, ponder, loss, dYs, b, B)
        elif mode == CRITIC:                    # θ and λ travel in ε's and τ's places
            _critic_tail(Y, A, Ys, out, ponder, loss, dYs, dA, b, epsilon, tau, B)
        else:
            _ponder_tail(Y, A, Ys, out, ponder, loss, dYs, dA, c[b], survive[b], b, beta,
                         lambda_p, B)
    cuda.syncthreads()
    if not grads:
        return
    for n in range(used - 1, -1, -1):           # BPTT, as halting.cell_backward
        cell_back(W_y, W_h, w_halt, 0, S, dZ, dYs, dA, b, n, used, t, T)


def _run(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, Y, mode, max_steps, epsilon, tau, beta,
         lambda_p, grads):
    B, n_in = X.shape
    H, n_out = W_h.shape[0], W_y.shape[0]
    dt = X.dtype
    d = {k: cuda.to_device(np.ascontiguousarray(v)) for k, v in
         dict(W_x=W_x, W_h=W_h, b_h=b_h, w_halt=w_halt, b_halt=b_halt, W_y=W_y, b_y=b_y,
              X=X, Y=Y).items()}
    S = cuda.to_device(np.zeros((B, max_steps + 1, H), dtype=dt))
    A = cuda.device_array((B, max_steps), dtype=dt)
    Ys = cuda.device_array((B, max_steps, n_out), dtype=dt)
    N = cuda.to_device(np.zeros(B, dtype=np.int64))
    R = cuda.to_device(np.zeros(B, dtype=dt))
    out = cuda.device_array((B, n_out), dtype=dt)
    ponder = cuda.device_array(B, dtype=dt)
    loss = cuda.device_array(B, dtype=np.float64)
    dYs = cuda.to_device(np.zeros((B, max_steps, n_out), dtype=dt))
    dA = cuda.to_device(np.zeros((B, max_steps, 1), dtype=dt))
    dZ = cuda.device_array((B, max_steps, H), dtype=dt)
    c = cuda.device_array((B, max_steps), dtype=np.float64)
    survive = cuda.device_array((B, max_steps), dtype=np.float64)
    _examples[B, BLOCK_1D](*d.values(), mode, max_steps, epsilon, tau, beta, lambda_p,
                           grads, S, A, Ys, N, R, out, ponder, loss, dYs, dA, dZ, c, survive)
    if not grads:
        return out.copy_to_host(), ponder.copy_to_host()
    ones = cuda.to_device(np.ones((B, 1, 1), dtype=dt))
    X3 = cuda.to_device(np.ascontiguousarray(X[:, None, :]))
    gW_x = np.empty_like(W_x)
    gW_x[:, :n_in] = outer_sum(dZ, X3, N, 0, 0, max_steps, H, n_in, dt)
    gW_x[:, n_in] = outer_sum(dZ, ones, N, 0, 0, 1, H, 1, dt)[:, 0]
    grads = (gW_x,
             outer_sum(dZ, S, N, 1, 0, max_steps, H, H, dt),
             outer_sum(dZ, ones, N, 0, 0, max_steps, H, 1, dt)[:, 0],
             outer_sum(dA, S, N, 1, 1, max_steps, 1, H, dt)[0],
             outer_sum(dA, ones, N, 0, 0, max_steps, 1, 1, dt)[0],
             outer_sum(dYs, S, N, 1, 1, max_steps, n_out, H, dt),
             outer_sum(dYs, ones, N, 0, 0, max_steps, n_out, 1, dt)[:, 0])
    return (loss.copy_to_host().sum() / B,) + grads


def act_loss_and_grads(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, Y, max_steps, epsilon,
                       tau):
    """Same contract as :func:`loopy_edu.kernels.halting_numba.act_loss_and_grads`."""
    return _run(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, Y, ACT, max_steps, epsilon, tau,
                0.0, 0.5, True)


def act_predict(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, max_steps, epsilon):
    """Probabilities (B, n_out) and ponder N + R (B,), as the NumPy reference."""
    Y = np.zeros((len(X), W_y.shape[0]), dtype=X.dtype)
    return _run(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, Y, ACT, max_steps, epsilon, 0.0,
                0.0, 0.5, False)


def ponder_loss_and_grads(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, Y, steps, beta,
                          lambda_p):
    """Same contract as :func:`loopy_edu.kernels.halting_numba.ponder_loss_and_grads`."""
    return _run(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, Y, PONDER, steps, 0.0, 0.0, beta,
                lambda_p, True)


def ponder_predict(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, steps):
    """Probabilities at the halting step (the median of p) and that step, (B, n_out), (B,)."""
    Y = np.zeros((len(X), W_y.shape[0]), dtype=X.dtype)
    return _run(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, Y, PONDER, steps, 0.0, 0.0, 0.0,
                lambda_p=0.5, grads=False)


def fixed_loss_and_grads(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, Y, steps):
    """Same contract as :func:`loopy_edu.kernels.halting_numba.fixed_loss_and_grads`."""
    return _run(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, Y, FIXED, steps, 0.0, 0.0, 0.0,
                0.5, True)


def fixed_predict(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, steps):
    """Probabilities after the last loop, and the loops (B,)."""
    Y = np.zeros((len(X), W_y.shape[0]), dtype=X.dtype)
    return _run(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, Y, FIXED, steps, 0.0, 0.0, 0.0,
                lambda_p=0.5, grads=False)


def critic_loss_and_grads(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, Y, steps,
                          critic_weight):
    """Same contract as :func:`loopy_edu.kernels.halting_numba.critic_loss_and_grads`."""
    return _run(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, Y, CRITIC, steps, 0.5,
                critic_weight, 0.0, 0.5, True)


def critic_predict(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, steps, theta):
    """Probabilities at the first step whose score reaches θ (or the last), and that step."""
    Y = np.zeros((len(X), W_y.shape[0]), dtype=X.dtype)
    return _run(W_x, W_h, b_h, w_halt, b_halt, W_y, b_y, X, Y, CRITIC, steps, theta, 0.0, 0.0,
                0.5, False)
