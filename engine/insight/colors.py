"""Colours shared by the insight pictures: one colour per class, and a diverging map symmetric about 0.

Colours are RGB uint8 triples. The first two class colours are TensorFlow Playground's
blue and orange, so a two-class boundary looks the way people know it.
"""

from __future__ import annotations

import numpy as np

CLASS_COLORS: tuple[tuple[int, int, int], ...] = (
    (8, 119, 189),  # blue
    (245, 147, 34),  # orange
    (44, 160, 44),  # green
    (214, 39, 40),  # red
    (148, 103, 189),  # purple
    (140, 86, 75),  # brown
    (227, 119, 194),  # pink
    (127, 127, 127),  # grey
    (188, 189, 34),  # olive
    (23, 190, 207),  # cyan
)

# diverging map: negative -> blue, 0 -> white, positive -> red (ColorBrewer RdBu end points)
_NEGATIVE = np.array((33, 102, 172), dtype=np.float64)
_ZERO = np.array((247, 247, 247), dtype=np.float64)
_POSITIVE = np.array((178, 24, 43), dtype=np.float64)
LUT_SIZE = 257  # odd, so the middle entry is exactly 0


def class_color(index: int) -> tuple[int, int, int]:
    """RGB of class ``index`` (the palette repeats after ten classes)."""
    return CLASS_COLORS[index % len(CLASS_COLORS)]


def class_palette(n_classes: int) -> np.ndarray:
    """uint8 ``(n_classes, 3)``: the RGB colour of each class."""
    return np.array([class_color(i) for i in range(n_classes)], dtype=np.uint8)


def _diverging_lut() -> np.ndarray:
    t = np.linspace(-1.0, 1.0, LUT_SIZE)[:, None]
    lut = np.where(t < 0, _ZERO + (-t) * (_NEGATIVE - _ZERO), _ZERO + t * (_POSITIVE - _ZERO))
    return np.round(lut).astype(np.uint8)


DIVERGING_LUT: np.ndarray = _diverging_lut()  # uint8 (257, 3): index 0 = -vmax, 256 = +vmax, 128 = 0


def diverging_rgb(values: np.ndarray, vmax: float) -> np.ndarray:
    """uint8 ``(*values.shape, 3)``: blue for negative, white for 0, red for positive.

    ``vmax`` maps to full colour (symmetric about 0: -vmax is as blue as +vmax is red);
    larger magnitudes are clipped; NaN shows as 0. vmax ≤ 0 (all-zero weights) gives white everywhere.
    """
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)  # NaN (a diverged run) shows as 0
    if not vmax > 0:
        idx = np.full(v.shape, LUT_SIZE // 2, dtype=np.intp)
    else:
        idx = np.rint((np.clip(v / vmax, -1.0, 1.0) + 1.0) * (0.5 * (LUT_SIZE - 1))).astype(np.intp)
    return DIVERGING_LUT[idx]
