"""Image folders described by a CSV manifest of file names and labels.

Three layouts, all read the same way:

- **Hugging Face imagefolder**: ``metadata.csv`` with a ``file_name`` column (paths relative
  to the CSV's folder) and a label column, either at the top (``root/metadata.csv``) or one
  per split folder (``root/train/metadata.csv``, ``root/test/metadata.csv``,
  ``root/validation/metadata.csv``), which become pre-split parts (validation -> dev).
- **Kaggle**: ``train.csv``, ``train_labels.csv`` or ``labels.csv`` with an ``id`` column
  (the image's file name in ``train/``, with or without its extension, as in the
  Aerial Cactus, Dog Breed and Histopathologic Cancer competitions) and a label column
  next to a ``train/`` folder. Kaggle's test folders carry no labels and are not read.
- **Any CSV file** given as the source (``labels.csv``): paths relative to its folder.

Columns: the file column is the first of ``file_name`` (or any ``*_file_name``),
``filename``, ``file``, ``image``, ``image_path``, ``path``, ``id``; the label column is the
first of ``label``, ``labels``, ``class``, ``category``, ``target``, or else the only other
column of a two-column CSV. Column names are matched case-insensitively.

Paths are checked to stay inside the chosen folder: absolute paths, ``..`` escapes and
symbolic links that lead outside are skipped with the reason, as are missing files, rows
with the wrong number of fields, rows without a label and files listed twice. Those
problems are reported in the data report's ``skipped`` list with the CSV line number.
"""

from __future__ import annotations

import csv
import io
import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.dataset import SourceData
from engine.errors import DataError
from engine.images.decode import channels, is_image_name
from engine.images.formats import classes_from_labels
from engine.images.limits import require_memory
from engine.images.loader import decode_files
from engine.images.report import decoded_source
from engine.text import printable

PARTS = ("train", "dev", "test")
SPLIT_FOLDERS = {
    "train": "train",
    "test": "test",
    "validation": "dev",
    "valid": "dev",
    "val": "dev",
    "dev": "dev",
}
HF_MANIFEST = "metadata.csv"
KAGGLE_MANIFESTS = ("train.csv", "train_labels.csv", "labels.csv")
FILE_COLUMNS = ("file_name", "filename", "file", "image", "image_path", "path", "id")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target")
MAX_MANIFEST_BYTES = 1 << 30  # a CSV of file names beyond 1 GB is not an image manifest


@dataclass
class ManifestSpec:
    """One CSV to read: which part it fills and which folder its paths are relative to."""

    csv_path: Path
    part: str  # "" (no split), "train", "dev" or "test"
    base: Path


@dataclass
class ManifestPlan:
    """What the manifests list, resolved and checked (no image decoded yet)."""

    kind: str
    root: Path
    files: list[str] = field(default_factory=list)  # resolved image paths
    labels: list[str] = field(default_factory=list)  # one per file
    parts: list[str] = field(default_factory=list)  # one per file
    skipped: list[dict] = field(default_factory=list)
    manifests: list[Path] = field(default_factory=list)

    def source_files(self) -> list[str]:
        """Files whose size and mtime key the disk cache: the CSVs and every listed image."""
        return [os.fspath(p) for p in self.manifests] + self.files


def find_layout(folder: Path) -> tuple[str, list[ManifestSpec]] | None:
    """``("manifest" | "kaggle", specs)`` when ``folder`` holds a manifest layout, else None."""
    splits = []
    for name, part in SPLIT_FOLDERS.items():
        csv_path = folder / name / HF_MANIFEST
        if csv_path.is_file():
            splits.append(ManifestSpec(csv_path, part, folder / name))
    if splits:
        return "manifest", splits
    if (folder / HF_MANIFEST).is_file():
        return "manifest", [ManifestSpec(folder / HF_MANIFEST, "", folder)]
    if (folder / "train").is_dir() and _holds_images(folder / "train"):
        for name in KAGGLE_MANIFESTS:
            if (folder / name).is_file():
                return "kaggle", [ManifestSpec(folder / name, "", folder / "train")]
    return None


def _holds_images(folder: Path) -> bool:
    """True when ``folder`` holds image files directly (Kaggle's flat train/, not class folders)."""
    try:
        with os.scandir(folder) as it:
            return any(is_image_name(e.name) for e in it)
    except OSError:
        return False


def _pick(columns: list[str], wanted: tuple[str, ...], suffix: str | None = None) -> int | None:
    lower = [c.strip().lower() for c in columns]
    for w in wanted:
        if w in lower:
            return lower.index(w)
    if suffix is not None:
        for i, c in enumerate(lower):
            if c.endswith(suffix):
                return i
    return None


def manifest_columns(header: list[str], name: str) -> tuple[int, int]:
    """Indices of the file and label columns (see the module docstring)."""
    f = _pick(header, FILE_COLUMNS, suffix="_file_name")
    if f is None:
        raise DataError(
            f"{name}: no file column (expected one of {', '.join(FILE_COLUMNS)}); "
            f"found {', '.join(printable(c) for c in header)}"
        )
    lab = _pick(header, LABEL_COLUMNS)
    if lab is None and len(header) == 2:
        lab = 1 - f
    if lab is None or lab == f:
        raise DataError(
            f"{name}: no label column (expected one of {', '.join(LABEL_COLUMNS)}, or a two-column CSV); "
            f"found {', '.join(printable(c) for c in header)}"
        )
    return f, lab


def read_rows(path: Path, name: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and ``(line number, fields)`` rows of a small CSV (BOM and blank lines allowed)."""
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise DataError(f"{name}: {size} bytes is too large for a CSV of file names and labels")
        require_memory(4 * size, name)
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DataError(f"{name}: cannot read file ({exc.strerror or exc})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"{name}: empty CSV (expected a header line)")
        rows = [(reader.line_num, row) for row in reader if row]
    except csv.Error as exc:
        raise DataError(f"{name}: malformed CSV at line {reader.line_num} ({exc})") from None
    return header, rows


class _Resolver:
    """Turns a listed path into a checked file path below the chosen root."""

    def __init__(self, root: Path) -> None:
        self.root_real = os.path.realpath(root)
        self._stems: dict[str, dict[str, str]] = {}

    def _by_stem(self, folder: str) -> dict[str, str]:
        if folder not in self._stems:
            found: dict[str, str] = {}
            try:
                with os.scandir(folder) as it:
                    for e in it:
                        if is_image_name(e.name):
                            found.setdefault(os.path.splitext(e.name)[0], e.name)
            except OSError:
                pass
            self._stems[folder] = found
        return self._stems[folder]

    def resolve(self, base: Path, listed: str) -> tuple[str | None, str]:
        """``(path, "")`` for a usable file, ``(None, reason)`` otherwise."""
        value = listed.strip()
        if not value:
            return None, "no file name"
        posix = value.replace("\\", "/")
        if posixpath.isabs(posix) or (len(posix) > 1 and posix[1] == ":"):
            return None, "absolute path refused (paths must be relative to the CSV's folder)"
        rel = posixpath.normpath(posix)
        if rel == ".." or rel.startswith("../"):
            return None, "path leads outside the folder (..)"
        path = os.path.join(base, *rel.split("/"))
        if not os.path.lexists(path):
            # Kaggle lists ids without the extension ("0a1b2c" for train/0a1b2c.tif)
            match = self._by_stem(os.path.dirname(path)).get(os.path.basename(path))
            if match is None:
                return None, "listed file does not exist"
            path = os.path.join(os.path.dirname(path), match)
        try:
            real = os.path.realpath(path, strict=True)
        except OSError as exc:
            return None, f"dangling or unresolvable symbolic link ({exc.strerror or exc})"
        if not (real == self.root_real or real.startswith(self.root_real.rstrip(os.sep) + os.sep)):
            return None, f"symbolic link leads outside the chosen folder (to {printable(real)})"
        if not os.path.isfile(real):
            return None, "not a regular file"
        return path, ""


def plan(root: Path, kind: str, specs: list[ManifestSpec]) -> ManifestPlan:
    """Read and check every manifest; nothing is decoded."""
    out = ManifestPlan(kind=kind, root=root)
    resolver = _Resolver(root)
    seen: dict[str, str] = {}
    for spec in specs:
        where = printable(os.path.relpath(spec.csv_path, root).replace(os.sep, "/"))
        header, rows = read_rows(spec.csv_path, where)
        out.manifests.append(spec.csv_path)
        f_col, l_col = manifest_columns(header, where)
        n = len(header)
        for line, row in rows:
            if len(row) != n:
                out.skipped.append(
                    {"file": f"{where}:{line}", "reason": f"row has {len(row)} fields, the header has {n}"}
                )
                continue
            listed, label = row[f_col], row[l_col].strip()
            shown = printable(listed.strip()) or f"{where}:{line}"
            path, reason = resolver.resolve(spec.base, listed)
            if path is None:
                out.skipped.append({"file": shown, "reason": f"{reason} ({where} line {line})"})
                continue
            if not label:
                out.skipped.append({"file": shown, "reason": f"no label ({where} line {line})"})
                continue
            key = os.path.realpath(path)
            if key in seen:
                out.skipped.append(
                    {"file": shown, "reason": f"listed twice ({seen[key]}; {where} line {line})"}
                )
                continue
            seen[key] = f"first at {where} line {line}"
            out.files.append(path)
            out.labels.append(label)
            out.parts.append(spec.part)
    return out


def csv_file_layout(path: Path) -> tuple[str, list[ManifestSpec]]:
    """A CSV file given as the source: paths relative to its folder, which is the root."""
    return "manifest", [ManifestSpec(path, "", path.parent)]


def load_manifest(
    mplan: ManifestPlan,
    source: str,
    image_size: tuple[int, int],
    color: str,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> SourceData:
    """Decode the planned files into a SourceData (pre-split when the manifests were per split)."""
    name = printable(Path(source).name)
    if not mplan.files:
        first = (
            f"; first skipped: {mplan.skipped[0]['file']}: {mplan.skipped[0]['reason']}"
            if mplan.skipped
            else ""
        )
        raise DataError(f"{name}: the CSV lists no usable images{first}")
    require_memory(
        len(mplan.files) * image_size[0] * image_size[1] * channels(color), f"{name}: decoded images"
    )
    result = decode_files(mplan.files, image_size, color, progress=progress, cancel=cancel)
    root = mplan.root
    skipped = list(mplan.skipped) + [
        {"file": printable(os.path.relpath(mplan.files[i], root).replace(os.sep, "/")), "reason": r}
        for i, r in result.failed
    ]
    labels = [mplan.labels[i] for i in result.ok]
    if not labels:
        raise DataError(f"{name}: none of the {len(mplan.files)} listed images could be read")
    y, classes = classes_from_labels(labels, name)
    if len(classes) < 2:
        raise DataError(
            f"{name}: the CSV's labels name {len(classes)} class ({classes[0]}); a classifier needs two"
        )
    presplit = None
    parts = np.array([mplan.parts[i] for i in result.ok])
    if any(mplan.parts):
        if not np.any(parts == "train"):
            raise DataError(f"{name}: no readable images in the train split")
        train_classes = set(y[parts == "train"].tolist())
        missing = [classes[c] for c in sorted(set(y.tolist()) - train_classes)]
        if missing:
            raise DataError(f"{name}: class(es) missing from the train split: {', '.join(missing)}")
        presplit = {p: np.flatnonzero(parts == p).astype(np.int64) for p in PARTS}
    return decoded_source(
        result, source=source, kind=mplan.kind, y=y, classes=classes, skipped=skipped, presplit=presplit
    )
