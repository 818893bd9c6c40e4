"""Disk cache of decoded sources: a second load is near-instant, and the pixels stay on disk.

Layout, per (source path, image_size, color, format version), in the cache folder
(``REGLAB_CACHE_DIR``, else ``~/.cache/reglab``):

- ``images-<key>-<token>.npy``: the samples ``X`` as a raw ``.npy`` (uint8 ``(n, H, W, C)``
  for images, float ``(n, F)`` for feature vectors), memory-mappable;
- ``images-<key>.npz``: the metadata, loaded with ``allow_pickle=False``: ``y``, the
  pre-split parts, the report as JSON text (so the skipped list comes back identical), the
  fingerprint of the source's files (relative path, size, modification time in ns), the
  format version, the name of the data file and its shape and dtype.

Writing is atomic and streamed: the samples go to a temporary file (``.images-<key>-<token>
.npy.tmp``) row by row as they are decoded (:class:`engine.arrayfile.NpyWriter`, so a
dataset larger than memory is never held in it), which is fsynced and renamed to its final
name; the metadata is then written to a temporary name and renamed over the old metadata,
which is the commit. The unique token means a reader never sees a data file change under
it; older data files of the same key are deleted after the commit.

Reading: :func:`load_entry` checks version, fingerprint, the data file's name, header, shape
and dtype against the metadata, then opens the data read-only with ``np.load(mmap_mode="r")``
(never ``allow_pickle``), or as an :class:`engine.arrayfile.ArrayFile` (``pread`` by rows)
when the file cannot be mapped under an address-space cap (:func:`engine.memory.can_map`).
A missing, stale or unreadable entry is ignored and later rewritten. Entries of format
version 1 (one ``.npz`` holding X) have a different key: they are never read, and the one of
the same source is deleted when its version-2 entry is written.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import time
import zipfile
from pathlib import Path

import numpy as np

from engine.arrayfile import ArrayFile, NpyWriter
from engine.dataset import SourceData
from engine.fileio import atomic_write_bytes

FORMAT_VERSION = 2  # bump when decoding or the layout changes what an entry holds
_PARTS = ("train", "dev", "test")
_DATA_NAME = re.compile(r"images-[0-9a-f]{32}-[0-9a-f]{16}\.npy")
_STALE_TMP_SECONDS = 24 * 3600  # an unfinished temporary file older than this is removed


def cache_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("REGLAB_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "reglab"


def fingerprint(root: Path, files: list[str] | list[Path]) -> str:
    """Hash of the relative names, sizes and mtimes of ``files`` (stat only, no reads)."""
    h = hashlib.sha256()
    base = os.fspath(root)
    prefix = len(base) + 1 if os.path.isdir(base) else 0
    parts = []
    for f in files:
        f = os.fspath(f)
        st = os.stat(f)
        rel = f[prefix:] if prefix and f.startswith(base) else os.path.basename(f)
        parts.append(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n")
    h.update("".join(parts).encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _key(source_path: Path, image_size, color: str, version: int) -> str:
    key = json.dumps([str(source_path.resolve()), list(map(int, image_size)), color, version])
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def entry_path(source_path: Path, image_size: tuple[int, int], color: str, cache_dir=None) -> Path:
    """The metadata file of a source's entry (the data file's name is stored inside)."""
    return cache_folder(cache_dir) / f"images-{_key(source_path, image_size, color, FORMAT_VERSION)}.npz"


def _legacy_path(source_path: Path, image_size, color: str, cache_dir=None) -> Path:
    return cache_folder(cache_dir) / f"images-{_key(source_path, image_size, color, 1)}.npz"


def _digest(path: Path) -> str:
    return path.name[len("images-") : -len(".npz")]


# ---------------------------------------------------------------- reading


def open_samples(path: Path) -> np.ndarray | ArrayFile:
    """A data file opened read-only: a memory map when it may be mapped, else an ArrayFile."""
    from engine.memory import can_map

    if can_map(os.path.getsize(path)):
        try:
            X = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, MemoryError):
            pass  # e.g. ENOMEM from mmap under an address-space cap: read by rows instead
        else:
            if isinstance(X, np.ndarray) and X.ndim >= 1:
                return X
    return ArrayFile(path)


def load_entry(path: Path, expected_fingerprint: str, source: str) -> SourceData | None:
    """The cached source with X memory-mapped (or an ArrayFile), or None when missing, stale
    or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != FORMAT_VERSION or str(z["fingerprint"]) != expected_fingerprint:
                return None
            data_name = str(z["data_file"])
            shape = tuple(int(v) for v in z["shape"])
            dtype = np.dtype(str(z["dtype"]))
            y = z["y"].astype(np.int64)
            report = json.loads(str(z["report"]))
            presplit = None
            if bool(z["has_presplit"]):
                presplit = {p: z[f"part_{p}"].astype(np.int64) for p in _PARTS}
        if not _DATA_NAME.fullmatch(data_name) or not data_name.startswith(f"images-{_digest(path)}-"):
            return None
        X = open_samples(path.parent / data_name)
        if tuple(X.shape) != shape or X.dtype != dtype or len(y) != shape[0]:
            return None
    except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile, json.JSONDecodeError):
        return None
    report["source"] = source
    return SourceData(
        X=X, y=y, classes=list(report["classes"]), source=source, report=report, presplit=presplit
    )


def entry_info(path: Path, expected_fingerprint: str) -> dict | None:
    """``shape``, ``dtype``, ``n_classes`` and ``parts`` (per-part counts of a pre-split
    source, or None) of a current entry for this fingerprint, from its metadata alone (no
    samples are read); None when missing, stale or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != FORMAT_VERSION or str(z["fingerprint"]) != expected_fingerprint:
                return None
            report = json.loads(str(z["report"]))
            parts = None
            if bool(z["has_presplit"]):
                parts = {p: int(z[f"part_{p}"].shape[0]) for p in _PARTS}
            return {
                "shape": tuple(int(v) for v in z["shape"]),
                "dtype": str(z["dtype"]),
                "n_classes": len(report["classes"]),
                "parts": parts,
            }
    except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile, json.JSONDecodeError):
        return None


# ---------------------------------------------------------------- writing


class EntryWriter:
    """The samples of a new entry, written row by row into a temporary data file.

    Pass it to :func:`engine.images.loader.decode_files` as ``out`` (it has the ``put`` /
    ``finish`` of a row sink), then hand the SourceData built from the result to
    :func:`store_entry`, which commits it. :meth:`abort` deletes the temporary file.
    """

    def __init__(self, path: Path, shape: tuple[int, ...], dtype=np.uint8):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.entry = path
        self.data_name = f"images-{_digest(path)}-{secrets.token_hex(8)}.npy"
        self.tmp = path.parent / f".{self.data_name}.tmp"
        self._writer = NpyWriter(self.tmp, shape, dtype)
        self.result: ArrayFile | None = None

    @classmethod
    def create(cls, path: Path, shape: tuple[int, ...], dtype=np.uint8) -> EntryWriter | None:
        """A writer, or None when the cache folder is not writable or the disk is too full."""
        try:
            return cls(path, shape, dtype)
        except OSError:
            return None

    def put(self, positions: np.ndarray, rows: np.ndarray) -> None:
        """Write ``rows`` ``(k, ...)`` at row ``positions`` ``(k,)`` (ascending)."""
        self._writer.put(positions, rows)

    def write(self, start: int, rows: np.ndarray) -> None:
        """Write consecutive rows from row ``start``."""
        self._writer.write(start, rows)

    def finish(self, keep: np.ndarray | None = None) -> ArrayFile:
        """Keep the rows at positions ``keep`` (all when None); the samples, read from disk."""
        self.result = self._writer.finish(keep)
        return self.result

    def abort(self) -> None:
        if self.result is not None:
            self.result.close()
        self._writer.abort()


def store_entry(path: Path, sd: SourceData, fp: str, writer: EntryWriter | None = None) -> SourceData:
    """Commit ``sd`` as the entry at ``path`` and return it read back from the cache (X
    memory-mapped), so the caller can drop an in-memory X. ``writer``: the EntryWriter whose
    finished file holds ``sd.X`` already; without one X is written here. When the cache
    cannot be written, returns ``sd`` unchanged (the run goes on without a cache)."""
    own = writer is None or writer.result is None or sd.X is not writer.result
    try:
        if own:
            if writer is not None:
                writer.abort()
            writer = EntryWriter(path, tuple(sd.X.shape), sd.X.dtype)
            rows = max(1, (16 * 2**20) // max(1, int(np.prod(sd.X.shape[1:])) * sd.X.dtype.itemsize))
            for start in range(0, len(sd.X), rows):
                writer.write(start, np.asarray(sd.X[start : start + rows]))
            writer.finish()
        final = path.parent / writer.data_name
        os.replace(writer.tmp, final)
        _write_metadata(path, sd, fp, writer.data_name)
    except OSError:
        if writer is not None:
            writer.abort()
        return sd
    if writer.result is not None:
        writer.result.close()
    _remove_stale(path, keep=writer.data_name)
    cached = load_entry(path, fp, sd.source)
    return cached if cached is not None else sd


def save_entry(path: Path, sd: SourceData, fp: str) -> bool:
    """Write ``sd`` as the entry at ``path``; False (and keeps going) when it cannot be written."""
    return store_entry(path, sd, fp) is not sd


def _write_metadata(path: Path, sd: SourceData, fp: str, data_name: str) -> None:
    arrays = {
        "y": np.asarray(sd.y, dtype=np.int64),
        "report": np.array(json.dumps(sd.report)),
        "fingerprint": np.array(fp),
        "version": np.array(FORMAT_VERSION),
        "data_file": np.array(data_name),
        "shape": np.array(sd.X.shape, dtype=np.int64),
        "dtype": np.array(np.dtype(sd.X.dtype).str),
        "has_presplit": np.array(sd.presplit is not None),
    }
    if sd.presplit is not None:
        for p in _PARTS:
            arrays[f"part_{p}"] = np.asarray(sd.presplit.get(p, np.arange(0)), dtype=np.int64)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # uncompressed: labels are small next to the samples
    atomic_write_bytes(path, buf.getvalue())


def _remove_stale(path: Path, keep: str) -> None:
    """Delete older data files of this entry and old unfinished temporary files.

    A process still reading an old data file keeps it (POSIX keeps an open or mapped file
    until it is closed); the legacy version-1 entry is deleted by :func:`remove_legacy`.
    """
    digest = _digest(path)
    now = time.time()
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        if name.startswith(f"images-{digest}-") and name.endswith(".npy") and name != keep:
            _unlink(path.parent / name)
        elif name.startswith(f".images-{digest}-") and name.endswith(".tmp"):
            try:
                if now - os.stat(path.parent / name).st_mtime > _STALE_TMP_SECONDS:
                    _unlink(path.parent / name)
            except OSError:
                pass


def remove_legacy(source_path: Path, image_size, color: str, cache_dir=None) -> None:
    """Delete the format-1 entry (one ``.npz`` with X inside) of this source, if any."""
    _unlink(_legacy_path(source_path, image_size, color, cache_dir))


def _unlink(p: Path) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass
