"""Decision boundary of a classifier on 2-D data: class probabilities over a grid of raw inputs.

The grid lives in the data's own (raw, un-normalized) coordinates; the network's
normalization (``(x - norm_mean) / norm_std``, from the training split) is applied
inside, so the picture lines up with a scatter plot of the raw points.

Orientation: ``probs[i, j]`` is the prediction at ``(xs[j], ys[i])``; both ascend, so row
0 is the *lowest* y. In pyqtgraph, an ``ImageItem`` with ``axisOrder="row-major"`` and
``setRect(*pixel_rect(xs, ys))`` shows it right side up in a plot whose y axis points up.

Speed: :class:`BoundaryGrid` keeps every buffer (grid features, probabilities, the
network's inference workspace, a snapshot of the parameters) between calls, so a live
view pays one ``predict_proba`` per refresh and nothing else; see
``benchmarks/insight_bench.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.insight.colors import class_palette
from engine.network import MLP

DEFAULT_RESOLUTION = 200
DEFAULT_MARGIN = 0.1  # fraction of the data's extent added on every side
MAX_RESOLUTION = 2000
# values per predict_proba chunk (rows × Σ layer widths): 4 MB of float32 stays in cache and
# gives 2-64-64-2 chunks of ~8,000 rows, so a 200×200 grid is 5 chunks (fewer NumPy calls
# than 4,096-row chunks, which matters when a training thread wants the GIL meanwhile)
CHUNK_VALUES = 1 << 20
Range = tuple[float, float]


def data_range(X: np.ndarray, margin: float = DEFAULT_MARGIN) -> tuple[Range, Range]:
    """``((x_min, x_max), (y_min, y_max))`` of raw points X ``(n, 2)``, widened by ``margin`` × extent per side.

    A flat extent (one point, or all points on a line) is widened by ±1 instead, so the
    grid never collapses to a line.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2 or len(X) == 0:
        raise ValueError(f"the decision boundary needs 2-D points (n, 2), got shape {X.shape}")
    out = []
    for k in range(2):
        lo, hi = float(np.nanmin(X[:, k])), float(np.nanmax(X[:, k]))
        extent = hi - lo
        pad = margin * extent if extent > 0 else 1.0
        out.append((lo - pad, hi + pad))
    return out[0], out[1]


def grid_axes(x_range: Range, y_range: Range, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres ``xs``, ``ys`` ``(resolution,)`` from the range's first to its last value, float64."""
    return (
        np.linspace(float(x_range[0]), float(x_range[1]), resolution),
        np.linspace(float(y_range[0]), float(y_range[1]), resolution),
    )


def pixel_rect(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float, float, float]:
    """``(x, y, width, height)`` covered by the image whose pixel centres are xs, ys (for ImageItem.setRect)."""
    dx = (xs[-1] - xs[0]) / max(len(xs) - 1, 1)
    dy = (ys[-1] - ys[0]) / max(len(ys) - 1, 1)
    return float(xs[0] - dx / 2), float(ys[0] - dy / 2), float(dx * len(xs)), float(dy * len(ys))


class BoundaryGrid:
    """Class probabilities over a ``resolution × resolution`` grid, with buffers reused between calls.

    Each :meth:`compute` copies the network's parameters into a private snapshot network
    first, so a training thread that updates the weights meanwhile cannot mix two states
    into one picture, and the training network's buffers are never touched.
    """

    def __init__(self, resolution: int = DEFAULT_RESOLUTION) -> None:
        resolution = int(resolution)
        if not 2 <= resolution <= MAX_RESOLUTION:
            raise ValueError(f"resolution must be in [2, {MAX_RESOLUTION}], got {resolution}")
        self.resolution = resolution
        self._grid_key: tuple | None = None
        self._features: np.ndarray | None = None  # (res², 2) normalized grid points, network dtype
        self.xs = np.empty(0)
        self.ys = np.empty(0)
        self._snapshot: MLP | None = None
        self._workspace = None
        self._probs: np.ndarray | None = None  # (res², C)

    def compute(
        self,
        net: MLP,
        norm_mean: Sequence[float] | np.ndarray,
        norm_std: Sequence[float] | np.ndarray,
        x_range: Range,
        y_range: Range,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(probs, xs, ys)``: probs ``(res, res, C)`` from ``net.predict_proba`` at ``(xs[j], ys[i])``.

        norm_mean, norm_std: ``(2,)``, the normalization the network was trained with.
        x_range, y_range: raw coordinates of the first and last pixel centre (see
        :func:`data_range`). The returned arrays are reused by the next call: copy them to keep.
        """
        if net.layer_sizes[0] != 2:
            raise ValueError(f"the decision boundary needs a network with 2 inputs, not {net.layer_sizes[0]}")
        snap = self._snapshot
        if snap is None or not snap.same_architecture(net):
            snap = self._snapshot = net.clone()
            widths = sum(net.layer_sizes)
            rows = max(1024, min(self.resolution**2, CHUNK_VALUES // widths))
            self._workspace = snap.inference_workspace(rows)
            self._probs = np.empty((self.resolution**2, net.n_classes), dtype=net.dtype)
            self._grid_key = None
        else:
            np.copyto(snap.params, net.params)
        features = self._grid_features(norm_mean, norm_std, x_range, y_range, snap.dtype)
        snap.predict_proba(features, out=self._probs, workspace=self._workspace)
        res = self.resolution
        return self._probs.reshape(res, res, -1), self.xs, self.ys

    def _grid_features(self, norm_mean, norm_std, x_range, y_range, dtype) -> np.ndarray:
        mean = np.asarray(norm_mean, dtype=np.float64).reshape(-1)
        std = np.asarray(norm_std, dtype=np.float64).reshape(-1)
        if mean.shape != (2,) or std.shape != (2,):
            raise ValueError(f"norm_mean and norm_std must have shape (2,), got {mean.shape} and {std.shape}")
        key = (tuple(map(float, x_range)), tuple(map(float, y_range)), tuple(mean), tuple(std), dtype)
        if key != self._grid_key:
            res = self.resolution
            self.xs, self.ys = grid_axes(x_range, y_range, res)
            features = np.empty((res, res, 2), dtype=dtype)
            features[:, :, 0] = ((self.xs - mean[0]) / std[0])[None, :]
            features[:, :, 1] = ((self.ys - mean[1]) / std[1])[:, None]
            self._features = features.reshape(res * res, 2)
            self._grid_key = key
        return self._features


def boundary_grid(
    net: MLP,
    norm_mean: Sequence[float] | np.ndarray,
    norm_std: Sequence[float] | np.ndarray,
    x_range: Range,
    y_range: Range,
    resolution: int = DEFAULT_RESOLUTION,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-off :meth:`BoundaryGrid.compute`: ``(probs (res, res, C), xs (res,), ys (res,))``, new arrays.

    A live view should keep one :class:`BoundaryGrid` instead, which reuses its buffers.
    """
    probs, xs, ys = BoundaryGrid(resolution).compute(net, norm_mean, norm_std, x_range, y_range)
    return probs.copy(), xs.copy(), ys.copy()


def confidence_lut(
    n_classes: int,
    colors: np.ndarray | None = None,
    background: Sequence[int] = (255, 255, 255),
    alpha: int = 255,
) -> np.ndarray:
    """uint8 ``(n_classes, 256, 4)``: class c at confidence level k/255, blended from background to its colour."""
    colors = class_palette(n_classes) if colors is None else np.asarray(colors, dtype=np.uint8)
    if colors.shape != (n_classes, 3):
        raise ValueError(f"colors must be ({n_classes}, 3) RGB, got {colors.shape}")
    t = np.linspace(0.0, 1.0, 256)[None, :, None]
    bg = np.asarray(background, dtype=np.float64)[None, None, :]
    rgb = bg + t * (colors.astype(np.float64)[:, None, :] - bg)
    lut = np.empty((n_classes, 256, 4), dtype=np.uint8)
    lut[..., :3] = np.rint(rgb).astype(np.uint8)
    lut[..., 3] = alpha
    return lut


def boundary_rgba(
    probs: np.ndarray,
    colors: np.ndarray | None = None,
    background: Sequence[int] = (255, 255, 255),
    alpha: int = 255,
    lut: np.ndarray | None = None,
) -> np.ndarray:
    """The boundary picture: uint8 ``(res, res, 4)`` RGBA, ready to display.

    Each pixel takes the colour of its most probable class (``colors`` ``(C, 3)``, default
    :data:`engine.insight.colors.CLASS_COLORS`), blended with ``background`` by the
    confidence ``(p_max - 1/C) / (1 - 1/C)``: background where the network is at chance,
    full colour where it is certain (Playground's look for two classes). ``lut`` from
    :func:`confidence_lut` saves rebuilding the colour table on every refresh.
    """
    probs = np.asarray(probs)
    c = probs.shape[-1]
    if lut is None:
        lut = confidence_lut(c, colors, background, alpha)
    flat = probs.reshape(-1, c)
    best = flat[:, 0].copy()
    cls = np.zeros(len(flat), dtype=np.intp)
    for k in range(1, c):  # column loops: an argmax over narrow rows is slow
        col = flat[:, k]
        better = col > best
        cls[better] = k
        np.maximum(best, col, out=best)
    # confidence level 0..255: (p - 1/C) / (1 - 1/C) · 255, rounded
    scale = 255.0 / (1.0 - 1.0 / c)
    level = (best - best.dtype.type(1.0 / c)) * best.dtype.type(scale) + best.dtype.type(0.5)
    np.clip(level, 0, 255, out=level)
    return lut[cls, level.astype(np.intp)].reshape(*probs.shape[:-1], 4)


def unit_maps(
    net: MLP,
    norm_mean: Sequence[float] | np.ndarray,
    norm_std: Sequence[float] | np.ndarray,
    x_range: Range,
    y_range: Range,
    resolution: int = 40,
) -> list[np.ndarray]:
    """Per hidden layer, each unit's activation over the input plane: ``(width, res, res)`` per layer.

    The small pictures Playground draws inside the nodes of its network diagram; same
    grid orientation as :func:`boundary_grid`. Inference mode, from ``net.trace``.
    """
    grid = BoundaryGrid(resolution)
    features = grid._grid_features(norm_mean, norm_std, x_range, y_range, net.dtype)
    trace = net.trace(features)
    return [a.reshape(resolution, resolution, -1).transpose(2, 0, 1).copy() for a in trace.post]
