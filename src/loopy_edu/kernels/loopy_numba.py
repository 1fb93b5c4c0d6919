"""Numba CPU kernels for :mod:`loopy_edu.loopy`: the leaky network on a sparse graph and its
BPTT.

The graph comes as CSR arrays: ``data`` (nnz,) the weights, ``indptr`` (N + 1,) and
``indices`` (nnz,) unsigned, so that gathering ``h[indices[e]]`` needs no check for a negative
index. The leak ``alpha`` is an array (N,), one per unit. Activation code 3 is ``"linear"``
(:data:`loopy_edu.loopy.UNIT_CODES`); the others are those of the shared scalar functions.
Everything that sums over all steps at once (the input drive, the readout, the dense weight
gradients) is one BLAS product over the flattened (T·B) axis.

:func:`states` is the fast static run (no backward pass follows, so no activations are kept).
Each step is two passes: the gather ``W_rec h_{t-1}``, row by row, and then the activation and
the leak over the whole state, a loop without branches that LLVM turns into vector
instructions. Numba's ``math.tanh`` and ``math.exp`` are calls to the C library, one number at
a time, which would cost more than the gather itself at 10 synapses per unit; :func:`_leak_act`
therefore computes tanh from its own exp (Cody and Waite's reduction
``x = −m ln 2 + r``, ``|r| <= ln 2 / 2``, then the Taylor series of ``e^r`` to ``r^12``, below
float64's round-off) with an absolute error of at most 2.3e-16, like the shared scalar one.
"""
import math

import numpy as np
from numba import njit

from .readout_numba import readout, sequence_loss
from .scalar_numba import act as _act, act_grad as _act_grad

LINEAR = 3                       # loopy.UNIT_CODES["linear"], the vectorised pass's case


@njit(cache=True)
def forward(W_in, data, indptr, indices, b_rec, xs, alpha, code):
    """States hs and activations acts (T, B, N) for xs (T, B, n_in), from h_0 = 0 (the backward
    pass reads both; :func:`states` is the run that keeps the states alone)."""
    T, B, n_in = xs.shape
    N = b_rec.shape[0]
    drive = np.dot(xs.reshape(T * B, n_in), W_in.T).reshape(T, B, N)   # W_in x_t for every step
    hs = np.zeros((T, B, N), dtype=xs.dtype)
    acts = np.empty((T, B, N), dtype=xs.dtype)
    for t in range(T):
        for b in range(B):
            for i in range(N):
                u = drive[t, b, i] + b_rec[i]
                if t > 0:
                    for e in range(indptr[i], indptr[i + 1]):
                        u += data[e] * hs[t - 1, b, indices[e]]
                a = _act(u, code)
                acts[t, b, i] = a
                h = hs[t - 1, b, i] if t > 0 else 0.0
                hs[t, b, i] = (1 - alpha[i]) * h + alpha[i] * a
    return hs, acts


@njit(cache=True)
def backward(data, indptr, indices, hs, acts, dhs, alpha, code):
    """∂L/∂u_t (T, B, N) and the synapses' gradient (nnz,) by the backward recursion."""
    T, B, N = hs.shape
    dus = np.empty_like(hs)
    gW_rec = np.zeros(data.shape[0], dtype=hs.dtype)
    dh = np.zeros((B, N), dtype=hs.dtype)                 # ∂L/∂h_t through the future
    for t in range(T - 1, -1, -1):
        for b in range(B):
            for i in range(N):
                dh[b, i] += dhs[t, b, i]
                dus[t, b, i] = alpha[i] * dh[b, i] * _act_grad(acts[t, b, i], code)
            for i in range(N):
                dh[b, i] *= 1 - alpha[i]
            for i in range(N):
                d = dus[t, b, i]
                for e in range(indptr[i], indptr[i + 1]):
                    j = indices[e]
                    dh[b, j] += data[e] * d                # W_recᵀ δ_t: row i scatters to its j
                    if t > 0:                              # h_0 = 0 adds nothing
                        gW_rec[e] += d * hs[t - 1, b, j]
    return dus, gW_rec


@njit(cache=True)
def loss_and_grads(W_in, data, indptr, indices, b_rec, W_out, b_out, xs, targets, mask, alpha,
                   code, loss_code):
    """Forward, loss and BPTT in one call; returns the loss and the gradients in params
    order (W_in, W_rec, b_rec, W_out, b_out)."""
    T, B, n_in = xs.shape
    N = b_rec.shape[0]
    hs, acts = forward(W_in, data, indptr, indices, b_rec, xs, alpha, code)
    value, dys = sequence_loss(readout(W_out, b_out, hs), targets, mask, loss_code)
    n_out = dys.shape[2]
    dhs = np.dot(dys.reshape(T * B, n_out), W_out).reshape(T, B, N)
    dus, gW_rec = backward(data, indptr, indices, hs, acts, dhs, alpha, code)
    dus2 = dus.reshape(T * B, N)
    gW_in = np.dot(dus2.T, xs.reshape(T * B, n_in))
    gW_out = np.dot(dys.reshape(T * B, n_out).T, hs.reshape(T * B, N))
    return (value, (gW_in, gW_rec, dus2.sum(axis=0), gW_out,
                    dys.reshape(T * B, n_out).sum(axis=0)))


TANH = 1
# e^r = Σ r^n / n! to n = 12 for |r| <= ln 2 / 2 (the next term is below 2e-16), highest first
# for Horner's scheme.
EXP_SERIES = tuple(1.0 / math.factorial(n) for n in range(12, -1, -1))
LOG2E = 1.4426950408889634
# ln 2 = hi + lo with hi = 355/512 (9 bits): m·hi is exact for m < 64 in float32 too.
LN2_HI, LN2_LO = 0.693359375, -2.1219444005469058277e-4


# No reassociation here: it would undo the split of ln 2 into hi + lo. error_model="numpy"
# drops the zero-division check on every division, which would stop LLVM vectorising.
@njit(cache=True, error_model="numpy", fastmath={"nnan", "ninf", "nsz", "contract", "arcp"})
def _leak_act(u, h, alpha, code, out):
    """out = (1 − α) h + α act(u), all (n,); tanh and linear in loops that vectorise."""
    c = out.dtype.type
    if code == TANH:
        for i in range(u.shape[0]):
            z = u[i]
            x = max(c(-2.0) * abs(z), c(-40.0))        # e^{-2|z|}; below e^-40 tanh is ±1
            # x = −m ln 2 + r with m the integer nearest −x log2 e >= 0: int() truncates,
            # which vectorises where math.floor of a float32 is a call to floorf.
            m = int(c(0.5) - x * c(LOG2E))
            r = (x + c(m) * c(LN2_HI)) + c(m) * c(LN2_LO)
            p = c(EXP_SERIES[0])
            for n in range(1, 13):
                p = p * r + c(EXP_SERIES[n])
            # 2^-m (m < 64) as the product of 2^-(2^b) over the bits b of m: exact, and in
            # vector lanes, where neither a table lookup nor a float's bits would be.
            bit = c(0.5)
            for b in range(6):
                p = p * bit if (m >> b) & 1 else p
                bit = bit * bit
            e = p
            a = math.copysign((c(1.0) - e) / (c(1.0) + e), z)
            out[i] = (c(1.0) - alpha[i]) * h[i] + alpha[i] * a
    elif code == LINEAR:
        for i in range(u.shape[0]):
            out[i] = (c(1.0) - alpha[i]) * h[i] + alpha[i] * u[i]
    else:
        for i in range(u.shape[0]):
            out[i] = (c(1.0) - alpha[i]) * h[i] + alpha[i] * _act(u[i], code)


# Reassociation lets LLVM split each row's sum over several vector accumulators (gathers), so
# that a row costs less than a chain of dependent additions; the sum's order changes only
# round-off.
@njit(cache=True, fastmath=True)
def _gather(data, indptr, indices, h, u):
    """u[i] += Σ_e data[e] h[indices[e]] over the synapses e of row i; u, h (N,)."""
    for i in range(u.shape[0]):
        s = u[i]
        for e in range(indptr[i], indptr[i + 1]):
            s += data[e] * h[indices[e]]
        u[i] = s


@njit(cache=True, fastmath=True)
def _gather_batch(data, indptr, indices, h, u):
    """u[i, b] += Σ_e data[e] h[indices[e], b]; u, h (N, B): each synapse's weight and index
    are read once for all B sequences, and the loop over b is a vector operation."""
    B = u.shape[1]
    for i in range(u.shape[0]):
        for e in range(indptr[i], indptr[i + 1]):
            w, j = data[e], indices[e]
            for b in range(B):
                u[i, b] += w * h[j, b]


@njit(cache=True, error_model="numpy")
def _drive(W_inT, b_rec, x, u):
    """u = W_in x + b_rec for one step; W_inT (n_in, N), x (n_in, B), u (N, B)."""
    N, B = u.shape
    if B == 1:                                  # one loop over the units, which vectorises
        u1 = u.reshape(N)
        u1[:] = b_rec
        for m in range(x.shape[0]):
            xm = x[m, 0]
            for i in range(N):
                u1[i] += W_inT[m, i] * xm
        return
    for i in range(N):
        for b in range(B):
            u[i, b] = b_rec[i]
    for m in range(x.shape[0]):
        for i in range(N):
            w = W_inT[m, i]
            for b in range(B):
                u[i, b] += w * x[m, b]


@njit(cache=True, error_model="numpy")
def _run_static(W_inT, data, indptr, indices, b_rec, xsT, alpha, code, hs):
    """Fill hs (T, N, B) for the inputs xsT (T, n_in, B), from h_0 = 0; alpha (N·B,) is the
    leak of each entry of the flattened state."""
    T, N, B = hs.shape
    u = np.empty((N, B), dtype=hs.dtype)
    h = np.zeros((N, B), dtype=hs.dtype)                 # h_0, then the previous state
    for t in range(T):
        _drive(W_inT, b_rec, xsT[t], u)
        if t > 0:
            h = hs[t - 1]
            if B == 1:                          # contiguous (N,) views, not strided columns
                _gather(data, indptr, indices, h.reshape(N), u.reshape(N))
            else:
                _gather_batch(data, indptr, indices, h, u)
        _leak_act(u.reshape(N * B), h.reshape(N * B), alpha, code, hs[t].reshape(N * B))


def states(W_in, data, indptr, indices, b_rec, xs, alpha, code):
    """States hs (T, B, N) for xs (T, B, n_in), from h_0 = 0, as ``forward(...)[0]`` but faster
    and without the activations. The run keeps the state as (N, B), each unit's B
    sequences side by side; hs is a (T, B, N) view of the (T, N, B) array it fills."""
    T, B, _ = xs.shape
    N = b_rec.shape[0]
    hs = np.empty((T, N, B), dtype=xs.dtype)
    _run_static(np.ascontiguousarray(W_in.T), data, indptr, indices, b_rec,
                np.ascontiguousarray(xs.transpose(0, 2, 1)), np.repeat(alpha, B), code, hs)
    return hs.transpose(0, 2, 1)
