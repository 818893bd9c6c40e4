"""Hidden-layer activations: forward values and derivatives, written with ``out=`` buffers.

Every function works elementwise on arrays of any shape, typically ``(n_samples, n_units)``.
The derivative functions take both the pre-activation ``z`` and the activation ``a = f(z)``
so each can use whichever is cheaper (tanh and sigmoid reuse ``a``).

``piecewise_linear`` activations satisfy ``f(z) = z · f'(z)``; the network uses that to
fuse the activation, its derivative and the dropout mask into one multiplier per layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

LEAKY_SLOPE = 0.01  # slope of leaky_relu for z <= 0


def relu(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.maximum(z, 0, out=out)


def relu_grad(z: np.ndarray, a: np.ndarray, out: np.ndarray) -> np.ndarray:
    # derivative 0 at the kink z == 0 (the usual subgradient choice)
    return np.greater(z, 0, out=out)


def leaky_relu(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    # slope < 1, so max(z, slope·z) is z for z > 0 and slope·z otherwise
    return np.maximum(z, z * z.dtype.type(LEAKY_SLOPE), out=out)


def leaky_relu_grad(z: np.ndarray, a: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.greater(z, 0, out=out)
    out *= out.dtype.type(1.0 - LEAKY_SLOPE)
    out += out.dtype.type(LEAKY_SLOPE)
    return out


def tanh(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.tanh(z, out=out)


def tanh_grad(z: np.ndarray, a: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.multiply(a, a, out=out)
    np.subtract(out.dtype.type(1.0), out, out=out)
    return out


def sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    # σ(z) = (1 + tanh(z/2)) / 2 never overflows, unlike 1 / (1 + exp(-z))
    half = z.dtype.type(0.5)
    out = np.multiply(z, half, out=out)
    np.tanh(out, out=out)
    out += z.dtype.type(1.0)
    out *= half
    return out


def sigmoid_grad(z: np.ndarray, a: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.subtract(a.dtype.type(1.0), a, out=out)
    out *= a
    return out


def linear(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if out is None:
        return z.copy()
    if out is not z:
        np.copyto(out, z)
    return out


def linear_grad(z: np.ndarray, a: np.ndarray, out: np.ndarray) -> np.ndarray:
    out.fill(1)
    return out


@dataclass(frozen=True)
class Activation:
    """An activation: ``forward(z, out)`` and ``grad(z, a, out)`` (both return ``out``)."""

    name: str
    forward: Callable[..., np.ndarray]
    grad: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    piecewise_linear: bool  # f(z) == z * f'(z), so one multiplier gives value and derivative


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation("relu", relu, relu_grad, True),
    "leaky_relu": Activation("leaky_relu", leaky_relu, leaky_relu_grad, True),
    "tanh": Activation("tanh", tanh, tanh_grad, False),
    "sigmoid": Activation("sigmoid", sigmoid, sigmoid_grad, False),
    "linear": Activation("linear", linear, linear_grad, True),
}


def get_activation(name: str) -> Activation:
    """The activation called ``name``; raises ValueError naming the known ones."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r} (known: {', '.join(ACTIVATIONS)})") from None
