"""Image data: sources (folders, pre-split folders, .npz, MNIST, CIFAR-10, CSV manifests,
CSVs of pixels, Parquet, builtin:shapes), decoding, the disk cache, the parallel loader,
reports, statistics and previews. Every file is untrusted: see limits (sizes checked before
allocating), unpickle (CIFAR), walk (links and unreadable entries) and engine.text.printable."""

from __future__ import annotations

from collections.abc import Callable

from engine.images.sources import load_source
from engine.images.stats import compare_sources, preview_images, source_statistics


def data_report(
    source: str,
    *,
    image_size=(32, 32),
    color: str = "rgb",
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    **load_options,
) -> dict:
    """The data report of ``source`` (loads it, through the cache): ``classes``, ``counts``,
    ``n_images``, ``image_shape`` ``[H, W, C]``, ``skipped`` (``{file, reason}``),
    ``original_size``, and ``parts`` for pre-split sources. ``load_options`` go to
    :func:`load_source` (n_samples, noise, n_classes, seed for built-in sets)."""
    sd = load_source(
        source, image_size=image_size, color=color, progress=progress, cancel=cancel, **load_options
    )
    if sd.report is not None:
        return dict(sd.report)
    # generated 2-D sets carry no report: describe them the same way
    from engine.images.report import build_report

    return build_report(source=source, kind="builtin", X=sd.X, y=sd.y, classes=sd.classes)


__all__ = ["load_source", "data_report", "source_statistics", "compare_sources", "preview_images"]
