"""Image sources: class folders, pre-split folders, array formats and built-in sets.

``load_source`` decides what a source string is and returns a :class:`SourceData`.
Class folders: ``root/<class>/**/<image>``, classes sorted by name, hidden files and
folders and non-image files ignored, images that fail to decode reported as skipped.
Pre-split folders: ``root/train|dev|test/<class>/...``; the classes are the union and each
must occur in train. Path sources are cached on disk (see :mod:`engine.images.cache`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.dataset import SourceData
from engine.errors import DataError
from engine.images import cache as disk_cache
from engine.images import formats, manifest, parquet, pixelcsv
from engine.images.decode import channels, relative_name
from engine.images.limits import require_memory
from engine.images.loader import decode_files
from engine.images.report import decoded_source
from engine.images.shapes import make_shapes
from engine.images.walk import FolderWalk
from engine.text import printable

PARTS = ("train", "dev", "test")


def _visible_dirs(folder: Path) -> list[str]:
    """Names of the visible sub-folders (links included) of ``folder``, for layout detection."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise DataError(f"{printable(folder)}: cannot list folder ({exc.strerror or exc})") from None
    return [e.name for e in entries if not e.name.startswith(".") and e.is_dir()]


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


def _class_dirs(walk: FolderWalk, folder: Path) -> list[tuple[str, Path]]:
    found = walk.subfolders(folder)
    return [(printable(name), path) for name, path in found]


def _layout(walk: FolderWalk, kind: str) -> tuple[list[str], list[tuple[str, str, Path]]]:
    """Classes and the ``(part, class, class_dir)`` folders to read."""
    root = walk.root
    if kind == "folder":
        found = _class_dirs(walk, root)
        if not found:
            raise DataError(
                f"{printable(root)}: no class sub-folders found (put each class's images in its own sub-folder)"
            )
        classes = formats.class_names(name for name, _ in found)
        return classes, [("", c, d) for c, (_, d) in zip(classes, found)]
    parts = {name: path for name, path in walk.subfolders(root) if name in PARTS}
    if "train" not in parts:
        raise DataError(f"{printable(root)}: pre-split folder has no train/ folder")
    per_part = {p: _class_dirs(walk, parts[p]) for p in PARTS if p in parts}
    classes = sorted({c for found in per_part.values() for c, _ in found})
    train_classes = {c for c, _ in per_part["train"]}
    missing = [c for c in classes if c not in train_classes]
    if missing:
        raise DataError(
            f"{printable(root / 'train')}: class folder(s) missing from train: {', '.join(missing)}"
        )
    return classes, [(p, c, d) for p, found in per_part.items() for c, d in found]


def list_folder(
    root: Path,
) -> tuple[str, list[str], list[tuple[str, str, Path]], list[list[str]], list[dict]]:
    """The layout of a class or pre-split folder: kind, classes, class folders, their files,
    and the entries the walk skipped (``{file, reason}``; see :mod:`engine.images.walk`)."""
    kind = folder_kind(root)
    walk = FolderWalk(root)
    classes, dirs = _layout(walk, kind)
    walk.claim([d for _, _, d in dirs])
    files = [walk.image_files(d) for _, _, d in dirs]
    return kind, classes, dirs, files, walk.skipped


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
    kind, classes, dirs, files, walk_skipped = listing or list_folder(root)
    name = printable(root)
    if len(classes) < 2:
        only = f": {classes[0]}" if classes else ""
        raise DataError(f"{name}: needs at least two class folders, found {len(classes)}{only}")
    if not any(files):
        raise DataError(f"{name}: no images found (expected one sub-folder of images per class)")
    for (_part, _cls, d), fs in zip(dirs, files):
        if not fs:
            unreadable = [s for s in walk_skipped if s["file"] == printable(relative_name(d, root)) + "/"]
            if unreadable:
                raise DataError(f"{printable(d)}: {unreadable[0]['reason']}")
            raise DataError(f"{printable(d)}: class folder holds no images")
    if out is None:  # decoded into memory (no cache): they must fit
        require_memory(
            sum(len(fs) for fs in files) * image_size[0] * image_size[1] * channels(color),
            f"{name}: decoded images",
        )
    flat = [f for fs in files for f in fs]
    label_of = {c: i for i, c in enumerate(classes)}
    labels = np.concatenate(
        [np.full(len(fs), label_of[c], dtype=np.int64) for (_, c, _), fs in zip(dirs, files)]
    )
    part_of = np.concatenate(
        [np.full(len(fs), i, dtype=np.int64) for i, ((p, _, _), fs) in enumerate(zip(dirs, files))]
    )
    result = decode_files(flat, image_size, color, progress=progress, cancel=cancel, out=out)
    skipped = walk_skipped + [
        {"file": printable(relative_name(flat[i], root)), "reason": r} for i, r in result.failed
    ]
    y = labels[result.ok]
    per_dir = np.bincount(part_of[result.ok], minlength=len(dirs))
    for i, (_part, _cls, d) in enumerate(dirs):
        if per_dir[i] == 0:
            raise DataError(f"{printable(d)}: class folder has no readable images ({len(files[i])} skipped)")
    presplit = None
    if kind == "presplit":
        dir_part = np.array([PARTS.index(p) for p, _, _ in dirs], dtype=np.int64)
        part_idx = dir_part[part_of[result.ok]]
        presplit = {p: np.flatnonzero(part_idx == k).astype(np.int64) for k, p in enumerate(PARTS)}
    return decoded_source(
        result, source=source, kind=kind, y=y, classes=classes, skipped=skipped, presplit=presplit
    )


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


FILE_SUFFIXES = (".npz", ".csv", ".parquet")


def _classify(path: Path, source: str) -> tuple[str, list]:
    """The kind of a path source, and (for the single-file kinds) its files."""
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".npz":
            return "npz", [path]
        if suffix == ".csv":
            return ("pixel_csv" if pixelcsv.sniff(path) is not None else "manifest"), [path]
        if suffix == ".parquet":
            return "parquet", [path]
        raise DataError(
            f"{printable(source)}: a file source must be an .npz (arrays X and y), a .csv "
            f"(image files and labels, or pixels) or a .parquet file"
        )
    kind = folder_kind(path)
    if kind in ("mnist", "cifar10"):
        return kind, formats.source_files(path)
    if parquet.find_parquet(path):
        return "parquet", []
    layout = manifest.find_layout(path)
    if layout is not None and layout[0] == "manifest":
        return "manifest", []
    if pixelcsv.folder_parts(path) is not None:
        return "pixel_csv", []
    if layout is not None:
        return "kaggle", []
    return kind, []


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
    pixel_shape=None,
) -> SourceData:
    """Load ``source``: ``builtin:NAME``, a class folder, a pre-split folder, an ``.npz``,
    an MNIST idx folder, a CIFAR-10 batches folder, a CSV (a manifest of image files and
    labels, or one image per row of pixels), a Parquet file or a folder of them, or a folder
    with a manifest (Hugging Face ``metadata.csv``, Kaggle ``train.csv`` + ``train/``).

    ``pixel_shape`` ``(H, W, C)`` is the image shape of a pixel CSV (inferred for square
    images when None).

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
        raise DataError(f"{printable(source)}: data source not found")
    listing = mplan = None
    parts: dict = {}
    kind, files = _classify(path, source)
    if kind in ("folder", "presplit"):
        listing = list_folder(path)
        files = [f for fs in listing[3] for f in fs]
    elif kind in ("manifest", "kaggle"):
        root = path.parent if path.is_file() else path
        layout = manifest.csv_file_layout(path) if path.is_file() else manifest.find_layout(path)
        mplan = manifest.plan(root, *layout)
        files = mplan.source_files()
    elif kind == "pixel_csv":
        parts = {"": path} if path.is_file() else pixelcsv.folder_parts(path)
        files = list(parts.values())
    elif kind == "parquet":
        found = [path] if path.is_file() else parquet.find_parquet(path)
        parts = parquet.parts_of(found)
        files = found
        if parquet.uses_paths(found):
            use_cache = False  # images referenced by path are not part of the cache key
    entry = fp = None
    if use_cache:
        fp = disk_cache.fingerprint(path, files)
        if listing is not None and listing[4]:
            # what the walk skipped is part of the report: a changed skip list is a changed source
            fp += "+" + hashlib.sha256(json.dumps(listing[4], sort_keys=True).encode()).hexdigest()
        if kind == "pixel_csv" and pixel_shape is not None:
            fp += f"+pixel_shape={list(map(int, pixel_shape))}"  # the same CSV read at another shape
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
    elif kind == "pixel_csv":
        sd = pixelcsv.load_pixel_csv(parts, source, image_size, color, pixel_shape)
    elif kind in ("manifest", "kaggle"):
        sd = manifest.load_manifest(mplan, source, image_size, color, progress, cancel)
    elif kind == "parquet":
        sd = parquet.load_parquet(
            parts, path.parent if path.is_file() else path, source, image_size, color, progress, cancel
        )
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
    if kind in ("npz", "mnist", "cifar10", "pixel_csv") and progress is not None:
        progress(len(sd.y), len(sd.y))
    if use_cache and entry is not None:
        if _transient_skips(sd):
            # kept under a fingerprint no later load matches: the data is served from the file
            # now, and fixing a permission (which changes no size or mtime) re-reads the folder
            fp += "+transient"
        # the returned source reads X from the cache (memory-mapped), not from memory
        sd = disk_cache.store_entry(entry, sd, fp, writer)
        disk_cache.remove_legacy(path, image_size, color, cache_dir)
    return sd


# Reasons that depend on the moment (permissions, I/O errors, links being edited) rather than
# on file contents: a load that skipped anything for them is not cached, or fixing a
# permission (which changes no size or mtime) would keep serving the stale result.
TRANSIENT_REASONS = ("cannot read file", "cannot open folder", "cannot follow symbolic link")


def _transient_skips(sd: SourceData) -> bool:
    skipped = (sd.report or {}).get("skipped") or []
    return any(str(s.get("reason", "")).startswith(TRANSIENT_REASONS) for s in skipped)
