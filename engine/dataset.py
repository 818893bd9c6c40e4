"""Plain containers passed between data loading, splitting, training and the window.

Arrays are batch-first. Images stay ``uint8`` of shape ``(n, H, W, C)`` until a batch
is used; 2-D and other vector data are float of shape ``(n, n_features)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SourceData:
    """One loaded source, before splitting.

    X: ``(n, n_features)`` float or ``(n, H, W, C)`` uint8; y: ``(n,)`` int64 in ``[0, len(classes))``.
    presplit: for ``root/train|dev|test`` folders (and MNIST / CIFAR-10 folders with both
    train and test files), index arrays into X per part (keys ``train``, ``dev``,
    ``test``; a missing part is an empty array); otherwise None.
    report: the data report dict (image sources), or None for generated 2-D sets.
    """

    X: np.ndarray
    y: np.ndarray
    classes: list[str]
    source: str
    report: dict | None = None
    presplit: dict[str, np.ndarray] | None = None

    @property
    def is_image(self) -> bool:
        return self.X.ndim == 4


@dataclass(frozen=True)
class ArraySet:
    """One labelled set: X ``(n, ...)`` as stored (uint8 images or float vectors), y ``(n,)`` int64."""

    X: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class PreparedData:
    """Train/dev/test sets ready for training.

    input_shape: ``(n_features,)`` or ``(H, W, C)``. The network sees
    ``(features - norm_mean) / norm_std`` where features are the flattened sample, images
    first scaled to 0..1 (divided by 255). norm_mean and norm_std have shape
    ``(n_features,)``, computed on the training split only (0 and 1 when normalize is none).
    split_indices: ``train_idx``, ``dev_idx``, ``test_idx`` into the single source that was
    split (saved as split.npz), including a pre-split source whose dev set was carved out
    of its train part; None when nothing was split (separate or fully pre-split sources).
    """

    train: ArraySet
    dev: ArraySet
    test: ArraySet
    classes: list[str]
    input_shape: tuple[int, ...]
    norm_mean: np.ndarray
    norm_std: np.ndarray
    split_indices: dict[str, np.ndarray] | None = None
    report: dict | None = None
    notes: list[str] = field(default_factory=list)  # warnings for the user (e.g. mismatched sources)

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3

    @property
    def n_features(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def n_classes(self) -> int:
        return len(self.classes)
