"""Activation functions, each written next to its own local derivative (Chapter 3).

The derivative is expressed through the activation's *output* ``a`` where that is cheaper,
because the backward pass already has ``a`` stored from the forward pass.
"""
import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function σ(z) = 1 / (1 + e^(−z)), elementwise.

    Parameters
    ----------
    z : np.ndarray
        Pre-activations, any shape.

    Returns
    -------
    np.ndarray
        σ(z) in (0, 1), the shape of ``z``.
    """
    # Written with exp(-|z|) so neither branch overflows for large |z|.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_grad(a: np.ndarray) -> np.ndarray:
    """σ'(z) written through the output a = σ(z) (Chapter 3).

    Parameters
    ----------
    a : np.ndarray
        Outputs σ(z) of the forward pass, any shape.

    Returns
    -------
    np.ndarray
        σ'(z), the shape of ``a``.
    """
    return a * (1.0 - a)            # σ'(z) = σ(z)(1 − σ(z))


def tanh(z: np.ndarray) -> np.ndarray:
    """The hyperbolic tangent, elementwise.

    Parameters
    ----------
    z : np.ndarray
        Pre-activations, any shape.

    Returns
    -------
    np.ndarray
        tanh(z) in (−1, 1), the shape of ``z``.
    """
    return np.tanh(z)


def tanh_grad(a: np.ndarray) -> np.ndarray:
    """tanh'(z) written through the output a = tanh(z).

    Parameters
    ----------
    a : np.ndarray
        Outputs tanh(z) of the forward pass, any shape.

    Returns
    -------
    np.ndarray
        tanh'(z), the shape of ``a``.
    """
    return 1.0 - a * a              # tanh'(z) = 1 − tanh(z)²


def relu(z: np.ndarray) -> np.ndarray:
    """The rectifier max(z, 0), elementwise.

    Parameters
    ----------
    z : np.ndarray
        Pre-activations, any shape.

    Returns
    -------
    np.ndarray
        max(z, 0), the shape of ``z``.
    """
    return np.maximum(z, 0.0)


def relu_grad(a: np.ndarray) -> np.ndarray:
    """The rectifier's derivative written through its output a = max(z, 0).

    Parameters
    ----------
    a : np.ndarray
        Outputs of the forward pass, any shape.

    Returns
    -------
    np.ndarray
        1 where ``a > 0``, else 0, in the dtype and shape of ``a``.
    """
    return (a > 0).astype(a.dtype)  # 1 where the unit is active; 0 at and below the kink


ACTIVATIONS = {
    "sigmoid": (sigmoid, sigmoid_grad),
    "tanh": (tanh, tanh_grad),
    "relu": (relu, relu_grad),
}
# Integer codes passed to the Numba and CUDA kernels, which cannot take Python callables
# cheaply.
CODES = {"sigmoid": 0, "tanh": 1, "relu": 2}


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits ``z`` (B, K), shifted by the row max for stability.

    Parameters
    ----------
    z : np.ndarray, shape (B, K)
        Logits.

    Returns
    -------
    np.ndarray, shape (B, K)
        Probabilities; each row sums to 1.
    """
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax (B, K), computed without forming tiny probabilities.

    Parameters
    ----------
    z : np.ndarray, shape (B, K)
        Logits.

    Returns
    -------
    np.ndarray, shape (B, K)
        ``log(softmax(z))``, finite even where the probability underflows.
    """
    s = z - z.max(axis=1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))
