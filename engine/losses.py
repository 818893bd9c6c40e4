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


_NARROW = 8  # up to this many classes the row maximum is a loop over columns (axis reductions on narrow rows are slow)


def softmax_into(logits: np.ndarray, out: np.ndarray, row_buf: np.ndarray) -> np.ndarray:
    """``softmax(logits)`` written into ``out`` ``(n, C)`` with no allocation of batch size.

    row_buf: scratch ``(≥ n,)`` in out's dtype. ``out`` may be ``logits`` itself. The row
    maximum is taken per row (as :func:`softmax` does), so no row underflows.
    """
    n, c = logits.shape
    m = row_buf[:n]
    if c <= _NARROW:
        np.copyto(m, logits[:, 0], casting="unsafe")
        for j in range(1, c):
            np.maximum(m, logits[:, j], out=m, casting="unsafe")
    else:
        m[...] = logits.max(axis=1)
    np.subtract(logits, m[:, None], out=out, casting="unsafe")
    np.exp(out, out=out)
    np.matmul(out, np.ones(c, dtype=out.dtype), out=m)  # row sums: a matrix-vector product is faster
    np.divide(out, m[:, None], out=out)
    return out


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
