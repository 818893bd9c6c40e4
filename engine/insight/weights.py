"""Weights as pictures: first-layer tiles, a colour-mapped mosaic, a histogram, a network diagram.

- :func:`weight_tiles`: column j of the first weight matrix ``W1`` ``(n_in, n_units)`` is
  what hidden unit j looks for in the input; reshaped to the input's shape it is a small
  image. Inputs are flattened in ``(H, W, C)`` order (channel fastest, as
  :func:`engine.normalization.feature_matrix` flattens them), so the reshape is exact.
- :func:`tile_mosaic`: the tiles side by side as one RGB picture. Colour map: blue for
  negative weights, white for 0, red for positive (:func:`engine.insight.colors.diverging_rgb`),
  symmetric about 0. Scale ``"global"`` (default): one ``vmax`` = the largest ``|w|`` of all
  tiles, so units compare (a unit with small weights is pale). Scale ``"tile"``: each tile
  uses its own largest ``|w|``, showing every unit's pattern at full contrast. Colour
  images (C = 3) are shown as colour by default (``rgb="color"``: each channel mapped
  ``0.5 + 0.5·w/vmax``, so 0 is mid-grey), or through the diverging map of the channel
  mean (``rgb="mean"``).
- :func:`weight_histogram`: all weights of all layers in one histogram over
  ``[-max|w|, +max|w|]``, and the share of *near-zero* weights, defined as
  ``|w| ≤ near_zero · max|w|`` (default 1 % of the largest weight magnitude): relative, so
  it measures sparsity (what L1 produces) independently of the weights' overall scale.
- :func:`network_diagram`: node positions and weighted edges of a small network (2-D
  data), for a Playground-style drawing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.insight.colors import diverging_rgb

NEAR_ZERO = 0.01  # a weight is near zero when |w| <= NEAR_ZERO · max|w|
MOSAIC_PAD_RGB = (128, 128, 128)


def weight_tiles(W1: np.ndarray, input_shape: Sequence[int]) -> np.ndarray:
    """First-layer weights as one tile per hidden unit: ``(n_units, H, W, C)``.

    W1: ``(n_in, n_units)`` with ``n_in = prod(input_shape)``. input_shape ``(H, W, C)``,
    ``(H, W)`` (C = 1) or ``(n_features,)`` (a 1-pixel-high strip: ``(1, n_features, 1)``).
    ``tiles[j]`` is ``W1[:, j]`` reshaped; a view when W1 allows it.
    """
    W1 = np.asarray(W1)
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 1:
        shape = (1, shape[0], 1)
    elif len(shape) == 2:
        shape = (*shape, 1)
    elif len(shape) != 3:
        raise ValueError(f"input_shape must be (H, W, C), (H, W) or (n_features,), got {tuple(input_shape)}")
    if W1.ndim != 2 or W1.shape[0] != math.prod(shape):
        raise ValueError(f"W1 of shape {W1.shape} does not take inputs of shape {tuple(input_shape)}")
    return W1.T.reshape(W1.shape[1], *shape)


def mosaic_shape(n_tiles: int, columns: int | None = None) -> tuple[int, int]:
    """(rows, columns) of the mosaic: about square unless ``columns`` is given."""
    cols = max(1, int(columns) if columns else math.ceil(math.sqrt(n_tiles)))
    return max(1, math.ceil(n_tiles / cols)), cols


def tile_mosaic(
    tiles: np.ndarray,
    scale: str = "global",
    columns: int | None = None,
    pad: int = 1,
    rgb: str = "color",
) -> np.ndarray:
    """The tiles ``(n, H, W, C)`` side by side as uint8 RGB ``(rows·(H+pad)−pad, cols·(W+pad)−pad, 3)``.

    Tile k sits at row ``k // cols``, column ``k % cols``; the gaps (``pad`` pixels) and
    unused cells are mid-grey. ``scale``: ``"global"`` or ``"tile"``; ``rgb``: ``"color"``
    or ``"mean"`` for 3-channel tiles (see the module docstring).
    """
    tiles = np.asarray(tiles, dtype=np.float64)
    if tiles.ndim != 4:
        raise ValueError(f"tiles must be (n, H, W, C), got shape {tiles.shape}")
    if scale not in ("global", "tile"):
        raise ValueError(f"scale must be 'global' or 'tile', got {scale!r}")
    if rgb not in ("color", "mean"):
        raise ValueError(f"rgb must be 'color' or 'mean', got {rgb!r}")
    n, h, w, c = tiles.shape
    tiles = np.nan_to_num(tiles, nan=0.0)
    if scale == "global":
        vmax = np.full(n, np.abs(tiles).max() if tiles.size else 0.0)
    else:
        vmax = np.abs(tiles).reshape(n, -1).max(axis=1) if tiles.size else np.zeros(n)
    if c == 3 and rgb == "color":
        safe = np.where(vmax > 0, vmax, 1.0)[:, None, None, None]
        pictures = np.rint((0.5 + 0.5 * np.clip(tiles / safe, -1.0, 1.0)) * 255).astype(np.uint8)
    else:
        values = tiles.mean(axis=3) if c > 1 else tiles[..., 0]
        safe = np.where(vmax > 0, vmax, 1.0)[:, None, None]
        pictures = diverging_rgb(np.where(vmax[:, None, None] > 0, values / safe, 0.0), 1.0)
    rows, cols = mosaic_shape(n, columns)
    out = np.empty((rows * (h + pad) - pad, cols * (w + pad) - pad, 3), dtype=np.uint8)
    out[...] = MOSAIC_PAD_RGB
    for k in range(n):
        r, q = divmod(k, cols)
        out[r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = pictures[k]
    return out


@dataclass(frozen=True)
class WeightHistogram:
    """A histogram of weights and their share near zero.

    counts ``(bins,)`` int64 and edges ``(bins + 1,)`` over ``[-max_abs, max_abs]``;
    threshold = near_zero · max_abs; near_zero_share over all weights; per_layer (one per
    matrix) the same share with the *global* threshold, so layers compare.
    """

    counts: np.ndarray
    edges: np.ndarray
    max_abs: float
    near_zero: float
    threshold: float
    near_zero_share: float
    per_layer_near_zero: tuple[float, ...]
    n_weights: int

    def to_dict(self) -> dict:
        return {
            "counts": self.counts.tolist(),
            "edges": self.edges.tolist(),
            "max_abs": self.max_abs,
            "near_zero": self.near_zero,
            "threshold": self.threshold,
            "near_zero_share": self.near_zero_share,
            "per_layer_near_zero": list(self.per_layer_near_zero),
            "n_weights": self.n_weights,
        }


def weight_histogram(
    weights: Sequence[np.ndarray], bins: int = 61, near_zero: float = NEAR_ZERO
) -> WeightHistogram:
    """Histogram of all weights (biases are not weights here: pass ``net.W``) and the near-zero share.

    An odd ``bins`` puts 0 in the middle of a bin. All-zero weights give one full middle
    bin over ``[-1, 1]`` and a near-zero share of 1.
    """
    if bins < 1:
        raise ValueError(f"bins must be ≥ 1, got {bins}")
    if not 0.0 <= near_zero < 1.0:
        raise ValueError(f"near_zero must be in [0, 1), got {near_zero}")
    flats = [np.asarray(w, dtype=np.float64).ravel() for w in weights]
    flats = [f[np.isfinite(f)] for f in flats]
    every = np.concatenate(flats) if flats else np.zeros(0)
    if every.size == 0:
        raise ValueError("no (finite) weights to show")
    max_abs = float(np.abs(every).max())
    span = max_abs if max_abs > 0 else 1.0
    counts, edges = np.histogram(every, bins=bins, range=(-span, span))
    threshold = near_zero * max_abs
    shares = tuple(float(np.count_nonzero(np.abs(f) <= threshold)) / f.size if f.size else 0.0 for f in flats)
    share = float(np.count_nonzero(np.abs(every) <= threshold)) / every.size
    return WeightHistogram(
        counts.astype(np.int64), edges, max_abs, near_zero, threshold, share, shares, int(every.size)
    )


@dataclass(frozen=True)
class NetworkDiagram:
    """Nodes and weighted edges of a network, laid out left (inputs) to right (outputs).

    positions ``(N, 2)``: x = layer index (0 = inputs), y = unit position centred on 0 with
    unit spacing (unit 0 on top: largest y). layer, unit ``(N,)`` int. bias ``(N,)`` (0 for
    inputs). edges ``(E, 2)`` int node indices (source, target), weights ``(E,)``: edge e
    carries ``W[layer][unit_src, unit_dst]``. max_abs: largest ``|weight|`` (for line widths).
    """

    positions: np.ndarray
    layer: np.ndarray
    unit: np.ndarray
    bias: np.ndarray
    edges: np.ndarray
    weights: np.ndarray
    max_abs: float

    def segments(self) -> np.ndarray:
        """``(2E, 2)`` line end points, two rows per edge (for pyqtgraph's ``connect="pairs"``)."""
        return self.positions[self.edges.reshape(-1)]

    def node_index(self, layer: int, unit: int) -> int:
        """Index into positions of ``unit`` in ``layer`` (0 = inputs)."""
        sizes = np.bincount(self.layer)
        return int(sizes[:layer].sum()) + int(unit)


def network_diagram(W: Sequence[np.ndarray], b: Sequence[np.ndarray] | None = None) -> NetworkDiagram:
    """The diagram of a network with weights ``W[i]`` ``(n_in, n_out)`` (and biases ``b[i]`` ``(n_out,)``)."""
    W = [np.asarray(w, dtype=np.float64) for w in W]
    if not W:
        raise ValueError("no layers")
    sizes = [W[0].shape[0]] + [w.shape[1] for w in W]
    for i in range(1, len(W)):
        if W[i].shape[0] != sizes[i]:
            raise ValueError(f"W[{i}] {W[i].shape} does not connect to W[{i - 1}] {W[i - 1].shape}")
    starts = np.concatenate([[0], np.cumsum(sizes)])
    layer = np.concatenate([np.full(s, i) for i, s in enumerate(sizes)]).astype(np.int64)
    unit = np.concatenate([np.arange(s) for s in sizes]).astype(np.int64)
    positions = np.empty((len(layer), 2))
    positions[:, 0] = layer
    positions[:, 1] = (np.asarray(sizes)[layer] - 1) / 2.0 - unit
    bias = np.zeros(len(layer))
    if b is not None:
        for i, bi in enumerate(b):
            bias[starts[i + 1] : starts[i + 2]] = np.asarray(bi, dtype=np.float64)
    src, dst, wts = [], [], []
    for i, w in enumerate(W):
        s_idx, d_idx = np.meshgrid(np.arange(w.shape[0]), np.arange(w.shape[1]), indexing="ij")
        src.append(starts[i] + s_idx.ravel())
        dst.append(starts[i + 1] + d_idx.ravel())
        wts.append(w.ravel())
    weights = np.concatenate(wts)
    edges = np.stack([np.concatenate(src), np.concatenate(dst)], axis=1).astype(np.int64)
    finite = weights[np.isfinite(weights)]
    max_abs = float(np.abs(finite).max()) if finite.size else 0.0
    return NetworkDiagram(positions, layer, unit, bias, edges, weights, max_abs)
