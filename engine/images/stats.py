"""Summary statistics of sources, the dev/test distribution check, and preview thumbnails.

The course rule: dev and test must come from the same distribution (the target you care
about); training data may differ. ``compare_sources`` warns when dev and test look
different, and only notes a train/dev difference.
"""

from __future__ import annotations

import numpy as np

from engine.dataset import SourceData

_LUMA = np.array([0.299, 0.587, 0.114])
# thresholds of "looks like a different distribution" (pixel values on the 0..1 scale)
COLOR_TOLERANCE = 0.06
SIZE_TOLERANCE = 0.25  # relative difference of the mean original size


def source_statistics(sd: SourceData) -> dict:
    """Per-source summary.

    Images: ``mean_color`` (per channel, 0..1), ``std_color``, ``brightness`` (mean luma,
    0..1), ``image_shape``, ``original_size`` (from the report). Vectors: ``feature_mean``
    and ``feature_std`` (averaged over features). Both: ``n``, ``counts`` per class.
    """
    counts = np.bincount(sd.y, minlength=len(sd.classes))
    stats: dict = {
        "source": sd.source,
        "n": int(len(sd.y)),
        "classes": list(sd.classes),
        "counts": {c: int(k) for c, k in zip(sd.classes, counts)},
    }
    if not sd.is_image:
        X = np.asarray(sd.X, dtype=np.float64)
        stats.update(
            {
                "kind": "vectors",
                "feature_mean": float(X.mean()) if X.size else 0.0,
                "feature_std": float(X.std(axis=0).mean()) if X.size else 0.0,
            }
        )
        return stats
    X = sd.X
    C = X.shape[-1]
    if len(X) == 0:
        mean = np.zeros(C)
        std = np.zeros(C)
    else:
        # float64 accumulation without a float copy of the whole array; blocks of rows also
        # read a cache file that is not memory-mapped (engine.arrayfile.ArrayFile)
        total = np.zeros(C)
        for s in range(0, len(X), 2048):
            total += np.asarray(X[s : s + 2048]).sum(axis=(0, 1, 2), dtype=np.float64)
        mean = total / (X.shape[0] * X.shape[1] * X.shape[2]) / 255.0
        sq = np.zeros(C)
        for s in range(0, len(X), 2048):
            block = X[s : s + 2048].astype(np.float32) / 255.0
            sq += ((block - mean.astype(np.float32)) ** 2).sum(axis=(0, 1, 2), dtype=np.float64)
        std = np.sqrt(sq / (X.shape[0] * X.shape[1] * X.shape[2]))
    brightness = float(mean @ _LUMA) if C == 3 else float(mean[0])
    report = sd.report or {}
    stats.update(
        {
            "kind": "images",
            "image_shape": [int(v) for v in X.shape[1:]],
            "mean_color": [round(float(v), 4) for v in mean],
            "std_color": [round(float(v), 4) for v in std],
            "brightness": round(brightness, 4),
            "original_size": report.get("original_size"),
        }
    )
    return stats


def _resolve(named: dict[str, SourceData], role: str) -> str | None:
    """Which named source provides ``role`` ("dev"/"test"): its own, else the main one."""
    if role in named:
        return role
    for key in ("main", "train"):
        if key in named:
            return key
    return None


def _differences(a: dict, b: dict) -> list[str]:
    out: list[str] = []
    if a.get("kind") != b.get("kind"):
        return ["one holds images, the other feature vectors"]
    if sorted(a["classes"]) != sorted(b["classes"]):  # the order alone is remapped by prepare
        out.append("different classes")
    if a.get("kind") != "images":
        if abs(a["feature_mean"] - b["feature_mean"]) > 0.25 * max(a["feature_std"], b["feature_std"], 1e-9):
            out.append(f"feature means differ ({a['feature_mean']:.3g} vs {b['feature_mean']:.3g})")
        return out
    ca, cb = np.array(a["mean_color"]), np.array(b["mean_color"])
    if len(ca) == len(cb) and np.max(np.abs(ca - cb)) > COLOR_TOLERANCE:
        out.append(f"mean colour differs by {np.max(np.abs(ca - cb)):.2f}")
    if abs(a["brightness"] - b["brightness"]) > COLOR_TOLERANCE:
        out.append(f"brightness {a['brightness']:.2f} vs {b['brightness']:.2f}")
    sa, sb = a.get("original_size"), b.get("original_size")
    if sa and sb:
        ma, mb = np.array(sa["mean"], dtype=float), np.array(sb["mean"], dtype=float)
        rel = np.max(np.abs(ma - mb) / np.maximum(np.maximum(ma, mb), 1.0))
        if rel > SIZE_TOLERANCE:
            out.append(f"original image sizes differ (mean {sa['mean']} vs {sb['mean']})")
    return out


def compare_sources(named: dict[str, SourceData]) -> dict:
    """Statistics per named source (``main``, ``dev``, ``test``, ...) and a dev/test check.

    Returns ``{"sources": {name: stats}, "warning": str | None, "note": str | None}``.
    The warning appears when the sources that provide dev and test differ (a separate
    ``dev`` or ``test`` source, else ``main``); a difference between the training source
    and dev is only a note, since training data may come from elsewhere.
    """
    stats = {name: source_statistics(sd) for name, sd in named.items()}
    warning = note = None
    dev, test = _resolve(named, "dev"), _resolve(named, "test")
    if dev and test and dev != test:
        diffs = _differences(stats[dev], stats[test])
        if diffs:
            warning = (
                f"dev ({named[dev].source}) and test ({named[test].source}) look like different "
                f"distributions: {'; '.join(diffs)}. Dev and test must come from the same distribution "
                "(the data you want to do well on); training data may differ."
            )
    train = "main" if "main" in named else ("train" if "train" in named else None)
    if train and dev and train != dev:
        diffs = _differences(stats[train], stats[dev])
        if diffs:
            note = (
                f"training data ({named[train].source}) differs from dev ({named[dev].source}): "
                f"{'; '.join(diffs)}. That is allowed; a train-dev split tells data mismatch from variance."
            )
    return {"sources": stats, "warning": warning, "note": note}


def preview_images(sd: SourceData, per_class: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Up to ``per_class`` random images per class: ``{class: uint8 (k, H, W, C)}``.

    Empty dict for feature-vector sources (nothing to show).
    """
    if not sd.is_image:
        return {}
    out: dict[str, np.ndarray] = {}
    for k, name in enumerate(sd.classes):
        idx = np.flatnonzero(sd.y == k)
        take = min(int(per_class), len(idx))
        chosen = np.sort(rng.choice(idx, size=take, replace=False)) if take else idx[:0]
        out[name] = sd.X[chosen]
    return out
