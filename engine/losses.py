"""The two output layers and their numerically stable losses.

softmax: logits ``(n_samples, n_classes)``; labels ``y`` are ints ``(n_samples,)`` in
``[0, n_classes)``; loss is the mean cross-entropy. Stability comes from log-sum-exp:
subtracting each row's maximum before ``exp`` keeps every exponent ≤ 0.

sigmoid (two classes only): one logit per sample, ``(n_samples,)`` or ``(n_samples, 1)``;
``p = σ(z)`` is the probability of class 1 and the loss is the mean binary cross-entropy
``−[y·log p + (1 − y)·log(1 − p)]``. Written with ``q = (1 − 2y)·z`` it is
``softplus(q) = log(1 + e^q)``, computed as ``max(q, 0) + log1p(e^−|q|)``: no ``log(0)``,
no overflow, however large ``|z|`` is. Its gradient with respect to z is ``σ(z) − y``.
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


# ---------------------------------------------------------------- sigmoid output


def sigmoid(z: np.ndarray) -> np.ndarray:
    """``σ(z) = 1 / (1 + e^−z)`` elementwise, same shape; exact in both tails (no ``1 − p`` rounding)."""
    z = np.asarray(z)
    e = np.exp(-np.abs(z))  # in (0, 1]: never overflows
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


def binary_cross_entropy_terms(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample binary cross-entropy ``softplus((1 − 2y)·z)``, shape ``(n,)``, in float64."""
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    q = (1.0 - 2.0 * np.asarray(y, dtype=np.float64).reshape(-1)) * z
    return np.logaddexp(0.0, q)  # log(e^0 + e^q), computed stably


def binary_cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean binary cross-entropy of one logit per sample (``(n,)`` or ``(n, 1)``) and labels in {0, 1}."""
    return float(np.mean(binary_cross_entropy_terms(logits, y)))


def binary_cross_entropy_grad(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Gradient of the mean binary cross-entropy w.r.t. the logits: ``(σ(z) − y) / n``, logits' shape."""
    z = np.asarray(logits)
    g = sigmoid(z) - np.asarray(y, dtype=z.dtype).reshape(z.shape)
    return g / len(g)
