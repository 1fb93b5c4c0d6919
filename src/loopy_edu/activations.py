"""Activation functions, each written next to its own local derivative (Chapter 3).

The derivative is expressed through the activation's *output* ``a`` where that is cheaper, because the
backward pass already has ``a`` stored from the forward pass.
"""
import numpy as np


def sigmoid(z):
    # Written with exp(-|z|) so neither branch overflows for large |z|.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_grad(a):
    return a * (1.0 - a)            # σ'(z) = σ(z)(1 − σ(z))


def tanh(z):
    return np.tanh(z)


def tanh_grad(a):
    return 1.0 - a * a              # tanh'(z) = 1 − tanh(z)²


def relu(z):
    return np.maximum(z, 0.0)


def relu_grad(a):
    return (a > 0).astype(a.dtype)  # 1 where the unit is active; 0 at and below the kink


ACTIVATIONS = {
    "sigmoid": (sigmoid, sigmoid_grad),
    "tanh": (tanh, tanh_grad),
    "relu": (relu, relu_grad),
}
# Integer codes passed to the Numba and CUDA kernels, which cannot take Python callables cheaply.
CODES = {"sigmoid": 0, "tanh": 1, "relu": 2}


def softmax(z):
    """Row-wise softmax of logits ``z`` (B, K), shifted by the row max for stability."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def log_softmax(z):
    """Row-wise log-softmax (B, K), computed without forming tiny probabilities."""
    s = z - z.max(axis=1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))
