"""One unit's step of the unsupervised rules of :mod:`loopy_edu.plasticity`, as a plain Python
function, so that the Numba CPU kernel (``njit``) and the CUDA kernel
(``cuda.jit(device=True)``) compile the same source, as :mod:`loopy_edu.kernels.scalar` does
for the activations.

Rule codes are the positions in :data:`loopy_edu.plasticity.RULES` (0 off, 1 hebbian, 2 oja,
3 anti_oja, 4 bcm, 5 ip), norm codes those in :data:`loopy_edu.plasticity.NORMS` (0 none, 1 l1,
2 l2).
"""
import math

HEBBIAN, OJA, ANTI_OJA, BCM, IP = 1, 2, 3, 4, 5


def update_unit(i, data, indptr, indices, h_prev, x, y, h, gain, b_rec, theta, target, rule,
                eta, tau, mu, sigma, norm):
    """The rule on row i's synapses (pre = h_prev[j], post = h[i]) and then the row's
    normalisation; or, for IP, on unit i's gain and bias (x its summed input, y its output)."""
    if rule == 0:
        return
    post = h[i]
    if rule == IP:
        s2 = sigma * sigma
        d_bias = -eta * (-mu / s2 + y[i] / s2 * (2 * s2 + 1 - y[i] * y[i] + mu * y[i]))
        gain[i] += eta / gain[i] + d_bias * x[i]
        b_rec[i] += d_bias
        return
    for e in range(indptr[i], indptr[i + 1]):
        pre = h_prev[indices[e]]
        if rule == HEBBIAN:
            data[e] += eta * post * pre
        elif rule == OJA:
            data[e] += eta * post * (pre - post * data[e])
        elif rule == ANTI_OJA:
            data[e] += -(eta * post * (pre - post * data[e]))
        else:
            data[e] += eta * post * (post - theta[i]) * pre
    if rule == BCM:
        theta[i] = theta[i] + (post * post - theta[i]) / tau
    if norm != 0:
        have = 0.0
        for e in range(indptr[i], indptr[i + 1]):
            have += abs(data[e]) if norm == 1 else data[e] * data[e]
        if norm == 2:
            have = math.sqrt(have)
        if have > 0:
            scale = target[i] / have
            for e in range(indptr[i], indptr[i + 1]):
                data[e] *= scale
