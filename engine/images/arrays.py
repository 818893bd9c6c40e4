"""Whole-batch conversions of image arrays (from .npz, MNIST, CIFAR): dtype, colour, size.

Resizing is a separable linear map: an antialiased triangle (bilinear) filter whose support
grows with the shrink factor, the same weights Pillow's BILINEAR resize uses, applied to
the whole batch as two matrix products instead of one Pillow call per image.
"""

from __future__ import annotations

import numpy as np

from engine.errors import DataError

_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601-2, what Pillow's convert("L") uses
BACKGROUND = 128.0


def to_uint8_images(X: np.ndarray, name: str) -> np.ndarray:
    """Numeric image array ``(n, H, W[, C])`` -> uint8 ``(n, H, W, C)``, C in {1, 3, 4}.

    Floats with maximum ≤ 1 are taken as 0..1, other floats as 0..255; uint16 is scaled
    from 0..65535. ``name`` names the source in error messages.
    """
    if X.ndim == 3:
        X = X[..., None]
    if X.ndim != 4 or X.shape[-1] not in (1, 3, 4):
        raise DataError(
            f"{name}: image array must have shape (N, H, W) or (N, H, W, C) with C in 1, 3, 4; got {X.shape}"
        )
    if X.dtype == np.uint8:
        return X
    if X.dtype == np.bool_:
        return X.astype(np.uint8) * 255
    if np.issubdtype(X.dtype, np.floating):
        if not np.isfinite(X).all():
            raise DataError(f"{name}: image array contains NaN or infinite values")
        lo, hi = float(X.min(initial=0.0)), float(X.max(initial=0.0))
        scale = 255.0 if hi <= 1.0 else 1.0
        if lo < 0 or hi * scale > 255.0 + 1e-6:
            raise DataError(f"{name}: float image values must lie in 0..1 or 0..255, got {lo:g}..{hi:g}")
        return np.clip(np.rint(X * scale), 0, 255).astype(np.uint8)
    if np.issubdtype(X.dtype, np.integer):
        lo, hi = int(X.min(initial=0)), int(X.max(initial=0))
        if lo < 0:
            raise DataError(f"{name}: integer image values must not be negative, got {lo}")
        if X.dtype == np.uint16 or hi > 255:
            if hi > 65535:
                raise DataError(f"{name}: integer image values must lie in 0..255 or 0..65535, got max {hi}")
            return ((X.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8)
        return X.astype(np.uint8)
    raise DataError(f"{name}: image array has unsupported dtype {X.dtype}")


def convert_color(X: np.ndarray, color: str) -> np.ndarray:
    """uint8 ``(n, H, W, C)`` with C in {1, 3, 4} -> C = 3 (rgb) or 1 (gray).

    RGBA is composited on grey 128; RGB -> gray uses the ITU-R 601-2 luma weights.
    """
    C = X.shape[-1]
    if C == 4:
        a = X[..., 3:4].astype(np.float32) / 255.0
        rgb = X[..., :3].astype(np.float32) * a + BACKGROUND * (1.0 - a)
        X = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
        C = 3
    if color == "rgb":
        return X if C == 3 else np.repeat(X, 3, axis=-1)
    if color == "gray":
        if C == 1:
            return X
        out = np.empty(X.shape[:-1] + (1,), dtype=np.uint8)
        step = 4096  # bounded float temporaries for big sets
        for s in range(0, len(X), step):
            g = X[s : s + step].astype(np.float32) @ _LUMA.astype(np.float32)
            out[s : s + step, ..., 0] = np.clip(np.rint(g), 0, 255)
        return out
    raise ValueError(f"color must be 'rgb' or 'gray', got {color!r}")


def resample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Weights ``(n_out, n_in)`` of an antialiased triangle filter (Pillow BILINEAR's)."""
    scale = n_in / n_out
    support = max(scale, 1.0)  # the filter widens when shrinking (antialias)
    centers = (np.arange(n_out) + 0.5) * scale
    src = np.arange(n_in) + 0.5
    w = np.maximum(0.0, 1.0 - np.abs(src[None, :] - centers[:, None]) / support)
    # clamp at borders as Pillow does: weights outside the image are dropped, rows renormalized
    w /= w.sum(axis=1, keepdims=True)
    return w


def resize_batch(X: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """uint8 ``(n, h, w, C)`` -> uint8 ``(n, H, W, C)``; a no-op when the size matches."""
    H, W = int(image_size[0]), int(image_size[1])
    n, h, w, C = X.shape
    if (h, w) == (H, W):
        return X
    Rh = resample_matrix(h, H).astype(np.float32)  # (H, h)
    Rw = resample_matrix(w, W).astype(np.float32)  # (W, w)
    out = np.empty((n, H, W, C), dtype=np.uint8)
    step = max(1, 2_000_000 // max(1, h * w * C))
    for s in range(0, n, step):
        block = X[s : s + step].astype(np.float32)  # (b, h, w, C)
        rows = np.einsum("Hh,bhwc->bHwc", Rh, block, optimize=True)
        both = np.einsum("Ww,bHwc->bHWc", Rw, rows, optimize=True)
        out[s : s + step] = np.clip(np.rint(both), 0, 255)
    return out
