"""The data report: what a source holds, as one JSON-ready dict.

Keys: ``source``, ``kind``, ``classes`` (names in label order), ``counts`` (images per
class), ``n_images``, ``image_shape`` ``[H, W, C]`` (``None`` for feature vectors, which
report ``n_features``), ``skipped`` (``{"file", "reason"}`` each), ``original_size``
(``{"mean": [h, w], "min": [h, w], "max": [h, w]}`` before resizing), and for pre-split
sources ``parts`` (per part, per class counts).
"""

from __future__ import annotations

import numpy as np

from engine.dataset import SourceData


def size_stats(sizes: np.ndarray) -> dict | None:
    """Original ``(h, w)`` sizes ``(n, 2)`` -> mean/min/max ``[h, w]`` (None when empty)."""
    sizes = np.asarray(sizes).reshape(-1, 2)
    if len(sizes) == 0:
        return None
    return {
        "mean": [round(float(v), 2) for v in sizes.mean(axis=0)],
        "min": [int(v) for v in sizes.min(axis=0)],
        "max": [int(v) for v in sizes.max(axis=0)],
    }


def class_counts(y: np.ndarray, classes: list[str]) -> dict[str, int]:
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=len(classes))
    return {name: int(c) for name, c in zip(classes, counts)}


def build_report(
    *,
    source: str,
    kind: str,
    X: np.ndarray,
    y: np.ndarray,
    classes: list[str],
    skipped: list[dict] | None = None,
    original_sizes: np.ndarray | None = None,
    presplit: dict[str, np.ndarray] | None = None,
) -> dict:
    """Assemble the report of a loaded source (see the module docstring for the keys)."""
    report: dict = {
        "source": source,
        "kind": kind,
        "classes": list(classes),
        "counts": class_counts(y, classes),
        "n_images": int(len(y)) if X.ndim == 4 else 0,
        "image_shape": [int(v) for v in X.shape[1:]] if X.ndim == 4 else None,
        "skipped": list(skipped or []),
    }
    if X.ndim != 4:
        report["n_samples"] = int(len(y))
        report["n_features"] = int(np.prod(X.shape[1:]))
    if original_sizes is not None:
        report["original_size"] = size_stats(original_sizes)
    if presplit is not None:
        report["parts"] = {part: class_counts(y[idx], classes) for part, idx in presplit.items()}
    return report


def decoded_source(
    result, *, source: str, kind: str, y: np.ndarray, classes: list[str], skipped: list[dict], presplit
) -> SourceData:
    """The SourceData of images decoded by :func:`engine.images.loader.decode_files` (``result``),
    with its report: what every loader of image files (folders, manifests, Parquet) ends with."""
    report = build_report(
        source=source,
        kind=kind,
        X=result.X,
        y=y,
        classes=classes,
        skipped=skipped,
        original_sizes=result.sizes,
        presplit=presplit,
    )
    return SourceData(X=result.X, y=y, classes=classes, source=source, report=report, presplit=presplit)
