"""Image sources: class folders, pre-split folders, array formats and built-in sets.

``load_source`` decides what a source string is and returns a :class:`SourceData`.
Class folders: ``root/<class>/**/<image>``, classes sorted by name, hidden files and
folders and non-image files ignored, images that fail to decode reported as skipped.
Pre-split folders: ``root/train|dev|test/<class>/...``; the classes are the union and each
must occur in train. Path sources are cached on disk (see :mod:`engine.images.cache`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.dataset import SourceData
from engine.errors import DataError
from engine.images import cache as disk_cache
from engine.images import formats
from engine.images.decode import channels, is_image_name
from engine.images.loader import decode_files
from engine.images.report import build_report
from engine.images.shapes import make_shapes

PARTS = ("train", "dev", "test")


def _visible_dirs(folder: Path) -> list[str]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise DataError(f"{folder}: cannot list folder ({exc.strerror or exc})") from None
    return [e.name for e in entries if not e.name.startswith(".") and e.is_dir()]


def _image_files(class_dir: Path) -> list[str]:
    """Image files below ``class_dir`` (nested folders included, hidden ones skipped), sorted.

    Plain strings and os.scandir: listing must stay cheap because every load (also a cache
    hit) lists the folder to fingerprint it.
    """
    found: list[str] = []
    stack = [os.fspath(class_dir)]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            if e.name.startswith("."):
                continue
            if e.is_dir():
                stack.append(e.path)
            elif is_image_name(e.name):
                found.append(e.path)
    found.sort()
    return found


def folder_kind(folder: Path) -> str:
    """``mnist``, ``cifar10``, ``presplit`` or ``folder`` for a directory source."""
    if formats.is_mnist_folder(folder):
        return "mnist"
    if formats.is_cifar_folder(folder):
        return "cifar10"
    dirs = _visible_dirs(folder)
    if dirs and set(dirs) <= set(PARTS):
        return "presplit"
    return "folder"


def _layout(root: Path, kind: str) -> tuple[list[str], list[tuple[str, str, Path]]]:
    """Classes and the ``(part, class, class_dir)`` folders to read."""
    if kind == "folder":
        classes = _visible_dirs(root)
        if not classes:
            raise DataError(
                f"{root}: no class sub-folders found (put each class's images in its own sub-folder)"
            )
        return classes, [("", c, root / c) for c in classes]
    parts = [p for p in PARTS if (root / p).is_dir()]
    if "train" not in parts:
        raise DataError(f"{root}: pre-split folder has no train/ folder")
    per_part = {p: _visible_dirs(root / p) for p in parts}
    classes = sorted(set().union(*per_part.values()))
    missing = [c for c in classes if c not in per_part["train"]]
    if missing:
        raise DataError(f"{root / 'train'}: class folder(s) missing from train: {', '.join(missing)}")
    return classes, [(p, c, root / p / c) for p in parts for c in per_part[p]]


def list_folder(root: Path) -> tuple[str, list[str], list[tuple[str, str, Path]], list[list[str]]]:
    """The layout of a class or pre-split folder: kind, classes, class folders, their files."""
    kind = folder_kind(root)
    classes, dirs = _layout(root, kind)
    files = [_image_files(d) for _, _, d in dirs]
    return kind, classes, dirs, files


def load_folder(
    root: Path,
    source: str,
    image_size: tuple[int, int],
    color: str,
    listing=None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    out=None,
) -> SourceData:
    """Decode a class folder or pre-split folder (see the module docstring).

    out: where the pixels go (a row sink of :func:`engine.images.loader.decode_files`, such
    as the disk cache's EntryWriter); in memory when None."""
    kind, classes, dirs, files = listing or list_folder(root)
    if len(classes) < 2:
        only = f": {classes[0]}" if classes else ""
        raise DataError(f"{root}: needs at least two class folders, found {len(classes)}{only}")
    if not any(files):
        raise DataError(f"{root}: no images found (expected one sub-folder of images per class)")
    for (_part, _cls, d), fs in zip(dirs, files):
        if not fs:
            raise DataError(f"{d}: class folder holds no images")
    flat = [f for fs in files for f in fs]
    label_of = {c: i for i, c in enumerate(classes)}
    labels = np.concatenate(
        [np.full(len(fs), label_of[c], dtype=np.int64) for (_, c, _), fs in zip(dirs, files)]
    )
    part_of = np.concatenate(
        [np.full(len(fs), i, dtype=np.int64) for i, ((p, _, _), fs) in enumerate(zip(dirs, files))]
    )
    result = decode_files(flat, image_size, color, progress=progress, cancel=cancel, out=out)
    skipped = [
        {"file": os.path.relpath(flat[i], root).replace(os.sep, "/"), "reason": r} for i, r in result.failed
    ]
    y = labels[result.ok]
    per_dir = np.bincount(part_of[result.ok], minlength=len(dirs))
    for i, (_part, _cls, d) in enumerate(dirs):
        if per_dir[i] == 0:
            raise DataError(f"{d}: class folder has no readable images ({len(files[i])} skipped)")
    presplit = None
    if kind == "presplit":
        dir_part = np.array([PARTS.index(p) for p, _, _ in dirs], dtype=np.int64)
        part_idx = dir_part[part_of[result.ok]]
        presplit = {p: np.flatnonzero(part_idx == k).astype(np.int64) for k, p in enumerate(PARTS)}
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


def _builtin(source, image_size, color, n_samples, noise, n_classes, seed) -> SourceData:
    name = source.split(":", 1)[1]
    if name == "shapes":
        return make_shapes(
            n_samples,
            noise,
            np.random.default_rng(seed),
            n_classes=n_classes,
            image_size=image_size,
            color=color,
        )
    try:
        from engine.datasets2d import make_2d  # the 2-D sets live with the other data code
    except ImportError:
        raise DataError(f"{source}: unknown built-in dataset") from None
    return make_2d(name, n_samples, noise, np.random.default_rng(seed), n_classes=n_classes)


def load_source(
    source: str,
    *,
    image_size=(32, 32),
    color: str = "rgb",
    n_samples: int = 1000,
    noise: float = 0.2,
    n_classes: int = 3,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
) -> SourceData:
    """Load ``source``: ``builtin:NAME``, a class folder, a pre-split folder, an ``.npz``,
    an MNIST idx folder or a CIFAR-10 batches folder.

    Images come back as uint8 ``(n, H, W, C)`` with ``(H, W) = image_size`` and C = 3 for
    ``color="rgb"``, 1 for ``"gray"``; feature-vector ``.npz`` files as float ``(n, F)``.
    Raises :class:`engine.errors.DataError` naming the file or folder for unusable input
    and :class:`engine.errors.Cancelled` when ``cancel()`` returns True.
    """
    image_size = (int(image_size[0]), int(image_size[1]))
    channels(color)  # validates color
    if source.startswith("builtin:"):
        sd = _builtin(source, image_size, color, n_samples, noise, n_classes, seed)
        if progress is not None:
            progress(len(sd.y), len(sd.y))
        return sd
    path = Path(os.path.expanduser(source))
    if not path.exists():
        raise DataError(f"{source}: data source not found")
    listing = None
    if path.is_file():
        if path.suffix.lower() != ".npz":
            raise DataError(f"{source}: a file source must be an .npz with arrays X and y")
        kind, files = "npz", [path]
    else:
        kind = folder_kind(path)
        if kind in ("folder", "presplit"):
            listing = list_folder(path)
            files = [f for fs in listing[3] for f in fs]
        else:
            files = formats.source_files(path)
    entry = fp = None
    if use_cache:
        fp = disk_cache.fingerprint(path, files)
        entry = disk_cache.entry_path(path, image_size, color, cache_dir)
        cached = disk_cache.load_entry(entry, fp, source)
        if cached is not None:
            if progress is not None:
                progress(len(cached.y), len(cached.y))
            return cached
    writer = None  # the cache's row sink, when a folder is decoded straight into the cache
    if kind == "npz":
        sd = formats.load_npz(path, source, image_size, color)
    elif kind == "mnist":
        sd = formats.load_mnist(path, source, image_size, color)
    elif kind == "cifar10":
        sd = formats.load_cifar(path, source, image_size, color)
    else:
        # decoded straight into the cache's data file (never the whole folder in memory)
        n_files = len(files)
        writer = (
            disk_cache.EntryWriter.create(entry, (n_files, *image_size, channels(color)))
            if use_cache
            else None
        )
        try:
            sd = load_folder(path, source, image_size, color, listing, progress, cancel, out=writer)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
    if kind in ("npz", "mnist", "cifar10") and progress is not None:
        progress(len(sd.y), len(sd.y))
    if use_cache and entry is not None:
        # the returned source reads X from the cache (memory-mapped), not from memory
        sd = disk_cache.store_entry(entry, sd, fp, writer)
        disk_cache.remove_legacy(path, image_size, color, cache_dir)
    return sd
