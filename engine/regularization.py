"""Weight penalties and inverted dropout.

Costs use ``m``, the number of TRAINING examples (not the mini-batch size), as in
``J = mean cross-entropy + (λ/2m)·Σ‖W‖²_F + (λ₁/m)·Σ|W|``. Biases are not penalized.
The L1 gradient is the subgradient ``sign(W)`` (0 at W = 0).

Inverted dropout keeps each unit with probability ``keep_prob`` and divides the kept
ones by ``keep_prob``, so a layer's expected output is unchanged and inference needs no
rescaling (and no mask). Masks come from raw 16-bit random integers: a unit is kept when
its integer is below ``round(keep_prob · 65536)``, which is several times cheaper than
drawing floats.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def l2_penalty(weights: Sequence[np.ndarray], l2: float, m: int) -> float:
    """``(l2 / 2m) · Σ‖W‖²_F`` over the given weight matrices."""
    if l2 == 0.0:
        return 0.0
    total = sum(float(np.dot(w.ravel(), w.ravel())) for w in weights)
    return l2 / (2.0 * m) * total


def l1_penalty(weights: Sequence[np.ndarray], l1: float, m: int) -> float:
    """``(l1 / m) · Σ|W|`` over the given weight matrices."""
    if l1 == 0.0:
        return 0.0
    total = sum(float(np.abs(w).sum(dtype=np.float64)) for w in weights)
    return l1 / m * total


def penalty_grad(w: np.ndarray, l2: float, l1: float, m: int) -> np.ndarray:
    """Gradient of both penalties w.r.t. one weight matrix: ``(l2/m)·W + (l1/m)·sign(W)``."""
    return (l2 / m) * w + (l1 / m) * np.sign(w)


def keep_threshold(keep_prob: float) -> int:
    """Integer threshold t: a uniform uint16 u keeps its unit when ``u < t`` (t/65536 ≈ keep_prob)."""
    if not 0.0 < keep_prob <= 1.0:
        raise ValueError(f"keep_prob must be in (0, 1], got {keep_prob}")
    return int(round(keep_prob * 65536))


def uses_dropout(keep_prob: float) -> bool:
    """False when keep_prob is 1 (or so close that no 16-bit draw would ever drop a unit)."""
    return keep_threshold(keep_prob) < 65536


def random_uint16(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` uniform uint16 values from the generator's raw 64-bit output (one draw per 4)."""
    raw = rng.bit_generator.random_raw((count + 3) // 4)
    return raw.view(np.uint16)[:count]


def dropout_mask(
    rng: np.random.Generator, shape: tuple[int, ...], keep_prob: float, dtype=np.float32
) -> np.ndarray:
    """Inverted-dropout multiplier of ``shape``: ``1/keep_prob`` where kept, 0 where dropped."""
    count = int(np.prod(shape))
    if not uses_dropout(keep_prob):
        return np.ones(shape, dtype=dtype)
    keep = random_uint16(rng, count) < np.uint16(keep_threshold(keep_prob))
    return (keep * np.asarray(1.0 / keep_prob, dtype=dtype)).reshape(shape)


def weight_decay_factor(lr: float, l2: float, m: int) -> float:
    """Per-step shrink of every weight under L2 with plain SGD: ``1 − lr·λ/m``. Why L2 is "weight decay".

    The L2 term adds ``(λ/m)·W`` to the gradient, so one SGD step is
    ``W ← W − lr·(dJ/dW + (λ/m)·W) = (1 − lr·λ/m)·W − lr·dJ/dW``: before following the data
    gradient, every weight is multiplied by this factor (lr 0.1, λ 0.7, m 1000 → 0.99993).
    ``m`` is the number of training examples, as in the cost.

    Other optimizers: with momentum as trained here (``v = βv + (1−β)g``) the decay term
    goes through the velocity, so the shrink is spread over later steps but averages to the
    same factor per step. With Adam the L2 gradient is divided by ``√v̂`` together with the
    data gradient, so weights with large gradients shrink less and the factor is not this
    one; this is the SGD factor (decoupled weight decay, AdamW, would restore it).
    A factor ≤ 0 means lr·λ/m ≥ 1: the penalty alone would flip or zero the weights.
    """
    if m <= 0:
        raise ValueError(f"m (training examples) must be positive, got {m}")
    return 1.0 - lr * l2 / m
