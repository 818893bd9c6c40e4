"""Parquet files with an image column and a label column, as the Hugging Face Hub exports them.

Needs the optional ``pyarrow`` package (``pip install -e ".[parquet]"``), imported only when
a Parquet source is loaded; without it the load fails with one line naming the extra.

- Source: one ``.parquet`` file, or a folder holding them (at its top, in ``data/``, or in
  split folders). The Hub's layout ``data/train-00000-of-00001.parquet``,
  ``data/test-....parquet``, ``data/validation-....parquet`` (and ``train/0000.parquet`` of
  its Parquet conversion) becomes pre-split parts (validation -> dev).
- Image column: the column the Hub's schema metadata (key ``huggingface``) types as
  ``Image``, else one named ``image``/``img``/``image_bytes``/``file_name``/``path``. It
  may be the Hub's ``{bytes, path}`` struct, plain bytes, or a path (relative to the
  Parquet file's folder, checked to stay inside the chosen folder like a CSV manifest).
- Label column: the one the metadata types as ``ClassLabel`` (its ``names`` become the
  classes, in order), else ``label``/``labels``/``class``/``category``/``target``, else the
  only other column of a two-column file. Integers or strings.

Before reading, the column chunks' sizes from the file footer are checked against a
compression-ratio bound and available memory. Rows without an image or label, labels
outside the ClassLabel names (the Hub's -1 for "no label"), unreadable images and bad
paths are skipped and reported as ``file.parquet:row N``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.dataset import SourceData
from engine.errors import DataError
from engine.images.decode import channels
from engine.images.formats import class_names, classes_from_labels
from engine.images.limits import check_ratio, require_memory
from engine.images.loader import decode_files
from engine.images.manifest import LABEL_COLUMNS, SPLIT_FOLDERS, _Resolver
from engine.images.report import decoded_source
from engine.text import printable

IMAGE_COLUMNS = ("image", "img", "image_bytes", "file_name", "path")
MISSING_PYARROW = 'Parquet files need the optional pyarrow package: pip install -e ".[parquet]"'
_SPLIT_PREFIX = re.compile(r"^(train|test|validation|valid|val|dev)[-_.]", re.IGNORECASE)


def _pq():
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(MISSING_PYARROW) from None
    return pq


def _split_of(path: Path) -> str:
    if path.parent.name.lower() in SPLIT_FOLDERS:
        return SPLIT_FOLDERS[path.parent.name.lower()]
    m = _SPLIT_PREFIX.match(path.name)
    return SPLIT_FOLDERS[m.group(1).lower()] if m else ""


def find_parquet(folder: Path) -> list[Path]:
    """Parquet files of a folder source: at its top, in ``data/``, or in split folders."""
    found: list[Path] = []
    for sub in [
        folder,
        folder / "data",
        *(folder / s for s in SPLIT_FOLDERS),
        *(folder / "data" / s for s in SPLIT_FOLDERS),
    ]:
        if sub.is_dir():
            found += sorted(p for p in sub.glob("*.parquet") if p.is_file() and not p.name.startswith("."))
    return found


def parts_of(files: list[Path]) -> dict[str, list[Path]]:
    """Files grouped by split (``""`` when none is named; merged into train when others are)."""
    parts: dict[str, list[Path]] = {}
    for f in files:
        parts.setdefault(_split_of(f), []).append(f)
    if "" in parts and len(parts) > 1:
        parts.setdefault("train", [])[:0] = parts.pop("")
    order = ("", "train", "dev", "test")  # rows come out train, dev, test whatever the file names
    return {p: parts[p] for p in order if p in parts}


def _hf_features(schema) -> dict:
    meta = schema.metadata or {}
    raw = meta.get(b"huggingface")
    if not raw:
        return {}
    try:
        features = json.loads(raw)["info"]["features"]
    except (ValueError, KeyError, TypeError):
        return {}
    return features if isinstance(features, dict) else {}


def _columns(schema, name: str) -> tuple[str, str, list[str] | None]:
    """``(image column, label column, ClassLabel names or None)``."""
    names = list(schema.names)
    lower = [n.lower() for n in names]
    features = _hf_features(schema)
    image = next(
        (c for c in names if isinstance(features.get(c), dict) and features[c].get("_type") == "Image"), None
    )
    if image is None:
        image = next((names[lower.index(c)] for c in IMAGE_COLUMNS if c in lower), None)
    if image is None:
        raise DataError(
            f"{name}: no image column (expected one named {', '.join(IMAGE_COLUMNS)} or typed Image); "
            f"found {', '.join(printable(n) for n in names)}"
        )
    label = next(
        (c for c in names if isinstance(features.get(c), dict) and features[c].get("_type") == "ClassLabel"),
        None,
    )
    if label is None:
        label = next((names[lower.index(c)] for c in LABEL_COLUMNS if c in lower), None)
    if label is None and len(names) == 2:
        label = names[1 - names.index(image)]
    if label is None or label == image:
        raise DataError(
            f"{name}: no label column (expected one named {', '.join(LABEL_COLUMNS)} or typed ClassLabel); "
            f"found {', '.join(printable(n) for n in names)}"
        )
    class_label = features.get(label) if isinstance(features.get(label), dict) else {}
    label_names = class_label.get("names") if class_label.get("_type") == "ClassLabel" else None
    if label_names is not None and not (
        isinstance(label_names, list) and all(isinstance(v, str) for v in label_names)
    ):
        label_names = None
    return image, label, label_names


def uses_paths(files: list[Path]) -> bool:
    """True when an image column holds paths (the disk cache then cannot key on the images)."""
    pq = _pq()
    import pyarrow as pa

    for f in files:
        try:
            schema = pq.read_schema(f)
            image, _, _ = _columns(schema, printable(f.name))
        except (DataError, OSError, pa.ArrowException):
            continue
        if pa.types.is_string(schema.field(image).type) or pa.types.is_large_string(schema.field(image).type):
            return True
    return False


def _check_sizes(pf, columns: list[str], name: str) -> int:
    """Uncompressed bytes of ``columns`` from the footer, checked; returns the row count."""
    meta = pf.metadata
    wanted = set(columns)
    total = 0
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        for c in range(rg.num_columns):
            col = rg.column(c)
            top = col.path_in_schema.split(".")[0]
            if top in wanted:
                check_ratio(col.total_uncompressed_size, col.total_compressed_size, f"{name}: column {top}")
                total += col.total_uncompressed_size
    require_memory(2 * total, name)
    return meta.num_rows


def _read_one(path: Path, root: Path, resolver: _Resolver):
    """Items to decode (bytes or checked paths), raw labels, where each came from (for the
    report), ClassLabel names and skipped rows."""
    pq = _pq()
    import pyarrow as pa

    name = printable(path.name)
    try:
        pf = pq.ParquetFile(path)
        image, label, label_names = _columns(pf.schema_arrow, name)
        _check_sizes(pf, [image, label], name)
        table = pf.read(columns=[image, label])
    except DataError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{name}: not a readable Parquet file ({printable(exc)})") from None
    col = table.column(image).combine_chunks()
    typ = col.type
    if pa.types.is_struct(typ):
        fields = {typ.field(i).name for i in range(typ.num_fields)}
        blobs = col.field("bytes").to_pylist() if "bytes" in fields else [None] * len(col)
        paths = col.field("path").to_pylist() if "path" in fields else [None] * len(col)
        nulls = col.is_null().to_pylist()
        blobs = [None if n else b for b, n in zip(blobs, nulls)]
        paths = [None if n else p for p, n in zip(paths, nulls)]
    elif pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        blobs, paths = col.to_pylist(), [None] * len(col)
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
        blobs, paths = [None] * len(col), col.to_pylist()
    else:
        raise DataError(
            f"{name}: image column {printable(image)} has type {typ}, not bytes, a path or {{bytes, path}}"
        )
    labels = table.column(label).to_pylist()
    items, raw_labels, wheres, skipped = [], [], [], []
    for i, (blob, rel, lab) in enumerate(zip(blobs, paths, labels)):
        where = f"{name}:row {i}"
        if lab is None or (isinstance(lab, str) and not lab.strip()):
            skipped.append({"file": where, "reason": "no label"})
            continue
        if label_names is not None and (not isinstance(lab, int) or not 0 <= lab < len(label_names)):
            skipped.append(
                {
                    "file": where,
                    "reason": f"label {printable(lab)} is not one of the {len(label_names)} ClassLabel names",
                }
            )
            continue
        if blob is not None:
            items.append(bytes(blob))
        elif rel is not None:
            resolved, reason = resolver.resolve(path.parent, rel)
            if resolved is None:
                skipped.append({"file": where, "reason": f"{reason} ({printable(rel)})"})
                continue
            items.append(resolved)
        else:
            skipped.append({"file": where, "reason": "no image (neither bytes nor a path)"})
            continue
        raw_labels.append(lab)
        wheres.append(
            where if blob is not None else printable(os.path.relpath(items[-1], root).replace(os.sep, "/"))
        )
    return items, raw_labels, wheres, label_names, skipped


def load_parquet(
    parts: dict[str, list[Path]],
    root: Path,
    source: str,
    image_size: tuple[int, int],
    color: str,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> SourceData:
    """Read the Parquet files of each part and decode their images into one SourceData."""
    name = printable(Path(source).name)
    resolver = _Resolver(root)
    items: list = []
    wheres: list[str] = []
    labels: list = []
    part_of: list[str] = []
    skipped: list[dict] = []
    names_seen: list[str] | None = None
    for part, files in parts.items():
        for f in files:
            f_items, f_labels, f_wheres, f_names, f_skipped = _read_one(f, root, resolver)
            if f_names is not None:
                if names_seen is not None and f_names != names_seen:
                    raise DataError(
                        f"{printable(f.name)}: ClassLabel names differ from the other Parquet files'"
                    )
                names_seen = f_names
            items += f_items
            wheres += f_wheres
            labels += f_labels
            part_of += [part] * len(f_labels)
            skipped += f_skipped
    if not items:
        raise DataError(f"{name}: no rows with both an image and a label")
    require_memory(len(items) * image_size[0] * image_size[1] * channels(color), f"{name}: decoded images")
    result = decode_files(items, image_size, color, progress=progress, cancel=cancel)
    skipped += [{"file": wheres[i], "reason": reason} for i, reason in result.failed]
    kept = [labels[i] for i in result.ok]
    if names_seen is not None:
        y = np.asarray(kept, dtype=np.int64)
        classes = class_names(names_seen)
    else:
        y, classes = classes_from_labels([str(v) for v in kept], name)
    if len(np.unique(y)) < 2:
        raise DataError(f"{name}: the labels name fewer than two classes; a classifier needs two")
    presplit = None
    named = [p for p in parts if p]
    if named and set(named) != {"train"}:
        pa_ = np.array([part_of[i] for i in result.ok])
        if not np.any(pa_ == "train"):
            raise DataError(f"{name}: no readable images in the train split")
        presplit = {p: np.flatnonzero(pa_ == p).astype(np.int64) for p in ("train", "dev", "test")}
    return decoded_source(
        result, source=source, kind="parquet", y=y, classes=classes, skipped=skipped, presplit=presplit
    )
