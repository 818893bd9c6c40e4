"""Softmax and the numerically stable cross-entropy of the output layer.

Logits have shape ``(n_samples, n_classes)``; labels ``y`` are ints ``(n_samples,)`` in
``[0, n_classes)``. Two classes are an ordinary 2-way softmax. Stability comes from
log-sum-exp: subtracting each row's maximum before ``exp`` keeps every exponent ≤ 0.
"""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """``log p`` of shape ``(n, C)``; never overflows."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return shifted - lse


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities ``(n, C)``, rows summing to 1."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean of ``-log softmax(logits)[i, y_i]`` over the rows, as a Python float."""
    logp = log_softmax(logits)
    picked = logp[np.arange(len(y)), y]
    return float(-np.mean(picked, dtype=np.float64))


def cross_entropy_grad(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Gradient of the mean cross-entropy w.r.t. the logits: ``(softmax - onehot) / n``."""
    g = softmax(logits)
    g[np.arange(len(y)), y] -= 1
    g /= len(y)
    return g
