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


def fit_standardizer(X_train: np.ndarray, is_image: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std ``(n_features,)`` float32 each, from the training samples only.

    X_train: images ``(n, H, W, C)`` (uint8 0..255 or float 0..1), statistics per channel
    on the 0..1 scale and tiled; or vectors ``(n, n_features)``, statistics per feature.
    Zero-variance features get std 1. Computed in float64 (in chunks for large arrays).
    """
    X_train = np.asarray(X_train)
    n = len(X_train)
    if n == 0:
        raise ValueError("cannot fit normalization statistics on an empty training set")
    if is_image:
        if X_train.ndim != 4:
            raise ValueError(f"image statistics need (n, H, W, C) samples, got shape {X_train.shape}")
        h, w, c = X_train.shape[1:]
        scale = 1.0 / 255.0 if np.issubdtype(X_train.dtype, np.integer) else 1.0
        flat = X_train.reshape(-1, c)  # (n·H·W, C): one row per pixel
        mean_c, std_c = _chunked_mean_std(flat, scale)
        mean = np.tile(mean_c, h * w)
        std = np.tile(std_c, h * w)
    else:
        flat = X_train.reshape(n, -1)
        scale = 1.0 / 255.0 if np.issubdtype(X_train.dtype, np.integer) else 1.0
        mean, std = _chunked_mean_std(flat, scale)
    std = np.where(std < _TINY_STD, 1.0, std)
    return mean.astype(np.float32), std.astype(np.float32)


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


def _chunked_mean_std(rows: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and population std of rows ``(m, k)`` times scale, two passes in float64."""
    m = len(rows)
    step = max(1, _CHUNK_ELEMENTS // max(1, rows.shape[1]))
    total = np.zeros(rows.shape[1], np.float64)
    for start in range(0, m, step):
        total += rows[start : start + step].sum(axis=0, dtype=np.float64)
    mean = total / m
    sq = np.zeros_like(total)
    for start in range(0, m, step):
        d = rows[start : start + step].astype(np.float64) - mean
        sq += np.einsum("ij,ij->j", d, d)
    # scale after the fact: statistics of x·scale are mean·scale and std·scale
    return mean * scale, np.sqrt(sq / m) * scale
