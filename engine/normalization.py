"""Input normalization: features, and a standardizer fitted on the training split only.

The network sees ``(features - mean) / std``. Features are the flattened sample; integer
(uint8) images are first scaled to 0..1 by dividing by 255. The statistics come from the
training split alone and are then applied unchanged to dev, test and any later data
(fitting on dev or test would leak them into training). Vector data gets one mean and std
per feature; images get one per colour channel, tiled to ``(H·W·C,)`` in the flattening
order of ``(H, W, C)`` (channel fastest). A feature with zero variance gets std 1, so
it becomes 0 instead of a division by zero. With ``normalize = "none"`` mean is 0 and std 1.
"""

from __future__ import annotations

import numpy as np

from engine.dataset import ArraySet

_CHUNK_ELEMENTS = 1 << 20  # values per pass when reducing large arrays (bounds the float64 temporary)
_TINY_STD = 1e-8  # below this a feature counts as constant


def feature_matrix(X: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Flatten samples to ``(n, n_features)`` in dtype; integer (uint8) pixels are divided by 255."""
    X = np.asarray(X)
    F = X.reshape(len(X), -1)
    if np.issubdtype(X.dtype, np.integer):
        out = F.astype(dtype)
        out *= dtype_scalar(1.0 / 255.0, dtype)
        return out
    return F.astype(dtype, copy=True)


def dtype_scalar(value: float, dtype) -> np.generic:
    return np.dtype(dtype).type(value)


def fit_standardizer(X_train, is_image: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std ``(n_features,)`` float32 each, from the training samples only.

    X_train: an array or an :class:`engine.dataset.ArraySet` (read in chunks: a training
    set on disk is streamed once, never copied into memory). Images ``(n, H, W, C)`` (uint8
    0..255 or float 0..1): statistics per channel on the 0..1 scale, tiled; vectors
    ``(n, n_features)``: statistics per feature. Zero-variance features get std 1. Computed
    in float64, one pass: per-chunk mean and sum of squared deviations, merged exactly
    (Chan et al.'s pairwise update), so the result does not depend on the chunk size.
    """
    data = X_train if isinstance(X_train, ArraySet) else ArraySet(X_train, np.zeros(len(X_train), np.int8))
    n = len(data)
    if n == 0:
        raise ValueError("cannot fit normalization statistics on an empty training set")
    shape = data.sample_shape
    if is_image and len(shape) != 3:
        raise ValueError(f"image statistics need (n, H, W, C) samples, got shape {data.shape}")
    scale = 1.0 / 255.0 if np.issubdtype(data.dtype, np.integer) else 1.0
    n_features = int(np.prod(shape))
    mean_f, m2_f = _feature_moments(data, n_features)
    if is_image:
        h, w, c = shape
        per_channel = mean_f.reshape(h * w, c)  # flattening order of (H, W, C): channel fastest
        mean_c = per_channel.mean(axis=0)
        # merge the H·W per-feature groups of each channel (equal counts n)
        m2_c = m2_f.reshape(h * w, c).sum(axis=0) + n * ((per_channel - mean_c) ** 2).sum(axis=0)
        std_c = np.sqrt(m2_c / (n * h * w))
        mean, std = np.tile(mean_c, h * w), np.tile(std_c, h * w)
    else:
        mean, std = mean_f, np.sqrt(m2_f / n)
    # scale after the fact: statistics of x·scale are mean·scale and std·scale
    mean, std = mean * scale, std * scale
    std = np.where(std < _TINY_STD, 1.0, std)
    return mean.astype(np.float32), std.astype(np.float32)


def _feature_moments(data: ArraySet, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and sum of squared deviations (float64 ``(n_features,)`` each)."""
    rows = max(1, _CHUNK_ELEMENTS // max(1, n_features))
    mean = np.zeros(n_features, np.float64)
    m2 = np.zeros(n_features, np.float64)
    count = 0
    block = np.empty((min(rows, len(data)), n_features), np.float64)
    for start, stop, chunk in data.chunks(rows):
        k = stop - start
        f = block[:k]
        np.copyto(f, chunk.reshape(k, n_features), casting="unsafe")
        m_b = f.sum(axis=0) / k
        f -= m_b
        m2_b = np.einsum("ij,ij->j", f, f)
        total = count + k
        delta = m_b - mean
        mean += delta * (k / total)
        m2 += m2_b + delta * delta * (count * k / total)
        count = total
    return mean, m2


def identity_standardizer(n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """normalize = "none": mean 0 and std 1, float32 ``(n_features,)``."""
    return np.zeros(n_features, np.float32), np.ones(n_features, np.float32)


def apply_standardizer(F: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(F - mean) / std`` for features F ``(n, n_features)``, returned in F's float dtype."""
    F = np.asarray(F)
    dtype = F.dtype if np.issubdtype(F.dtype, np.floating) else np.float32
    out = F.astype(dtype, copy=True)
    out -= np.asarray(mean, dtype=dtype)
    out /= np.asarray(std, dtype=dtype)
    return out
