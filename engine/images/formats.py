"""Array formats: ``.npz`` (X, y), MNIST idx folders and CIFAR-10 python batches.

All three are untrusted user files: ``np.load(allow_pickle=False)``; idx headers are parsed
by hand and checked against the file sizes; CIFAR pickles go through
:class:`RestrictedUnpickler`, which can build nothing but NumPy arrays and plain containers.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

from engine.dataset import SourceData
from engine.errors import DataError
from engine.fileio import is_npz_archive
from engine.images.arrays import convert_color, resize_batch, to_uint8_images
from engine.images.report import build_report

# ----------------------------------------------------------------------------- npz


def load_npz(path: Path, source: str, image_size: tuple[int, int], color: str) -> SourceData:
    """``.npz`` with ``X`` ``(N, H, W[, C])`` images or ``(N, features)`` vectors and ``y`` ``(N,)``.

    y may hold integers or strings; an optional ``classes`` array names integer labels.
    Images become uint8 ``(N, H, W, C)`` at ``image_size``/``color``; feature vectors stay
    float (float32 unless stored as float64).
    """
    name = path.name
    if not is_npz_archive(path):
        raise DataError(f"{name}: not an .npz archive (an .npz file is a zip of .npy arrays)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            for key in ("X", "y"):
                if key not in keys:
                    raise DataError(
                        f"{name}: missing array {key!r} (found: {', '.join(sorted(keys)) or 'none'})"
                    )
            X = npz["X"]
            y_raw = npz["y"]
            names = npz["classes"] if "classes" in keys else None
    except DataError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataError(
                f"{name}: holds an object array, which is refused; save plain numeric or string arrays"
            ) from None
        raise DataError(f"{name}: not a readable .npz file ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{name}: not a readable .npz file ({exc})") from None
    if X.dtype.kind not in "buif":
        raise DataError(f"{name}: X must be numeric, got dtype {X.dtype}")
    if y_raw.ndim != 1 or len(y_raw) != len(X):
        raise DataError(f"{name}: y must have shape ({len(X)},) to match X, got {y_raw.shape}")
    y, classes = _labels(y_raw, names, name)
    if X.ndim == 2:
        Xf = X.astype(np.float64 if X.dtype == np.float64 else np.float32)
        if not np.isfinite(Xf).all():
            raise DataError(f"{name}: X contains NaN or infinite values")
        sd_report = build_report(source=source, kind="npz", X=Xf, y=y, classes=classes)
        return SourceData(X=Xf, y=y, classes=classes, source=source, report=sd_report)
    if X.ndim not in (3, 4):
        raise DataError(f"{name}: X must have shape (N, features), (N, H, W) or (N, H, W, C); got {X.shape}")
    images = to_uint8_images(X, name)
    return _finish_images(images, y, classes, source, "npz", image_size, color)


def _labels(y_raw: np.ndarray, names: np.ndarray | None, name: str) -> tuple[np.ndarray, list[str]]:
    """Labels as int64 0..k-1 plus class names in label order."""
    if y_raw.dtype.kind in "US":
        values = y_raw.astype(str)
        classes, y = np.unique(values, return_inverse=True)
        return y.astype(np.int64), [str(c) for c in classes]
    if y_raw.dtype.kind in "iub":
        yi = y_raw.astype(np.int64)
    elif y_raw.dtype.kind == "f" and np.isfinite(y_raw).all() and np.all(y_raw == np.round(y_raw)):
        yi = y_raw.astype(np.int64)
    else:
        raise DataError(f"{name}: y must hold integer or string labels, got dtype {y_raw.dtype}")
    if names is not None:
        names_l = [str(v) for v in np.asarray(names).reshape(-1)]
        if len(yi) and (yi.min() < 0 or yi.max() >= len(names_l)):
            raise DataError(f"{name}: y has labels outside 0..{len(names_l) - 1} of the classes array")
        return yi, names_l
    values, y = np.unique(yi, return_inverse=True)
    return y.astype(np.int64), [str(v) for v in values]


def _finish_images(images, y, classes, source, kind, image_size, color, presplit=None) -> SourceData:
    original = np.tile(np.array(images.shape[1:3], dtype=np.int64), (len(images), 1))
    images = convert_color(resize_batch(images, image_size), color)
    if len(classes) < 2:
        raise DataError(f"{Path(source).name}: needs at least two classes, found {len(classes)}")
    report = build_report(
        source=source, kind=kind, X=images, y=y, classes=classes, original_sizes=original, presplit=presplit
    )
    return SourceData(X=images, y=y, classes=classes, source=source, report=report, presplit=presplit)


# ----------------------------------------------------------------------------- MNIST idx

_IDX_MAX_BYTES = 1 << 31  # refuse headers that declare absurd sizes (memory bomb)


def _find(folder: Path, stems: list[str]) -> Path | None:
    for stem in stems:
        for suffix in ("", ".gz"):
            p = folder / (stem + suffix)
            if p.is_file():
                return p
    return None


def _mnist_files(folder: Path, prefix: str) -> tuple[Path, Path] | None:
    images = _find(folder, [f"{prefix}-images-idx3-ubyte", f"{prefix}-images.idx3-ubyte"])
    labels = _find(folder, [f"{prefix}-labels-idx1-ubyte", f"{prefix}-labels.idx1-ubyte"])
    if images is None and labels is None:
        return None
    if images is None or labels is None:
        missing = "images" if images is None else "labels"
        raise DataError(f"{folder}: MNIST {prefix} {missing} file is missing")
    return images, labels


def is_mnist_folder(folder: Path) -> bool:
    return (
        _find(
            folder,
            [
                "train-images-idx3-ubyte",
                "train-images.idx3-ubyte",
                "t10k-images-idx3-ubyte",
                "t10k-images.idx3-ubyte",
            ],
        )
        is not None
    )


def read_idx(path: Path, expected_ndim: int) -> np.ndarray:
    """Parse an idx file (optionally gzipped): magic ``00 00 08 ndim``, big-endian uint32 sizes, uint8 data."""
    with open(path, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    try:
        with opener(path, "rb") as fh:
            header = fh.read(4)
            if len(header) < 4 or header[0] != 0 or header[1] != 0:
                raise DataError(f"{path.name}: not an idx file (bad magic number)")
            if header[2] != 0x08:
                raise DataError(f"{path.name}: idx data type 0x{header[2]:02x} is not unsigned byte (0x08)")
            if header[3] != expected_ndim:
                raise DataError(f"{path.name}: idx file has {header[3]} dimensions, expected {expected_ndim}")
            dims_raw = fh.read(4 * expected_ndim)
            if len(dims_raw) < 4 * expected_ndim:
                raise DataError(f"{path.name}: idx header is truncated")
            dims = struct.unpack(f">{expected_ndim}I", dims_raw)
            n_bytes = int(np.prod(dims, dtype=np.int64))
            if n_bytes > _IDX_MAX_BYTES:
                raise DataError(f"{path.name}: idx header declares {n_bytes} bytes, too large")
            data = fh.read(n_bytes + 1)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path.name}: cannot read idx file ({exc})") from None
    if len(data) != n_bytes:
        what = "shorter" if len(data) < n_bytes else "longer"
        raise DataError(f"{path.name}: data is {what} than the idx header declares {tuple(dims)}")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def load_mnist(folder: Path, source: str, image_size: tuple[int, int], color: str) -> SourceData:
    """MNIST-format folder; train and t10k together become pre-split train/test parts."""
    parts: list[tuple[str, np.ndarray, np.ndarray]] = []
    for prefix, part in (("train", "train"), ("t10k", "test")):
        files = _mnist_files(folder, prefix)
        if files is None:
            continue
        imgs = read_idx(files[0], 3)
        labels = read_idx(files[1], 1)
        if len(imgs) != len(labels):
            raise DataError(
                f"{files[1].name}: {len(labels)} labels for {len(imgs)} images in {files[0].name}"
            )
        parts.append((part, imgs, labels))
    if not parts:
        raise DataError(f"{folder}: no MNIST train-images/t10k-images idx files")
    X = np.concatenate([p[1] for p in parts])[..., None]
    y = np.concatenate([p[2] for p in parts]).astype(np.int64)
    n_cls = max(10, int(y.max()) + 1) if len(y) else 10
    classes = [str(i) for i in range(n_cls)]
    presplit = None
    if len(parts) == 2:
        n_train = len(parts[0][1])
        presplit = {"train": np.arange(n_train), "dev": np.arange(0), "test": np.arange(n_train, len(y))}
    return _finish_images(X, y, classes, source, "mnist", image_size, color, presplit)


# ----------------------------------------------------------------------------- CIFAR-10


def _reconstruct_function():
    return np.empty(0).__reduce__()[0]  # numpy's ndarray reconstructor, whatever module it lives in


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that can only build NumPy arrays (besides dicts, lists, bytes, numbers).

    The real CIFAR-10 batches name ``numpy.core.multiarray._reconstruct`` (NumPy 2 writes
    ``numpy._core.multiarray._reconstruct``), ``numpy.ndarray`` and ``numpy.dtype``; every
    other global is refused, so a pickle that would call e.g. ``os.system`` fails before
    anything runs.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct_function,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct_function,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
    }

    def find_class(self, module: str, name: str):
        factory = self._ALLOWED.get((module, name))
        if factory is None:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}")
        return factory()


def restricted_load(data: bytes):
    """Unpickle ``data`` with :class:`RestrictedUnpickler` and ``encoding="bytes"``."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()


CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST = "test_batch"
CIFAR_META = "batches.meta"


def is_cifar_folder(folder: Path) -> bool:
    return (
        (folder / CIFAR_META).is_file()
        or (folder / "data_batch_1").is_file()
        or (folder / CIFAR_TEST).is_file()
    )


def _read_pickle(path: Path) -> dict:
    try:
        obj = restricted_load(path.read_bytes())
    except pickle.UnpicklingError as exc:
        raise DataError(f"{path.name}: refused or unreadable pickle ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - malformed pickles raise many types
        raise DataError(f"{path.name}: unreadable pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path.name}: expected a dict, got {type(obj).__name__}")
    return obj


def _get(d: dict, key: str):
    return d.get(key.encode(), d.get(key))


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    d = _read_pickle(path)
    data, labels = _get(d, "data"), _get(d, "labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise DataError(f"{path.name}: b'data' must be a uint8 array of shape (N, 3072), got {shape}")
    if not isinstance(labels, (list, np.ndarray)) or len(labels) != len(data):
        raise DataError(f"{path.name}: b'labels' must be a list of {len(data)} integers")
    try:
        y = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise DataError(f"{path.name}: b'labels' must hold integers") from None
    # rows are 1024 red, 1024 green, 1024 blue values, each 32x32 row-major
    X = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(X), y


def load_cifar(folder: Path, source: str, image_size: tuple[int, int], color: str) -> SourceData:
    """CIFAR-10 python batches: data_batch_1..5 (train) and test_batch (test) as pre-split parts."""
    train_files = [folder / n for n in CIFAR_TRAIN if (folder / n).is_file()]
    test_file = folder / CIFAR_TEST
    batches = [_cifar_batch(p) for p in train_files]
    n_train = sum(len(b[1]) for b in batches)
    if test_file.is_file():
        batches.append(_cifar_batch(test_file))
    if not batches:
        raise DataError(f"{folder}: no CIFAR-10 data_batch_* or test_batch files")
    X = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    if (folder / CIFAR_META).is_file():
        names = _get(_read_pickle(folder / CIFAR_META), "label_names")
        if not isinstance(names, list) or not all(isinstance(v, (bytes, str)) for v in names):
            raise DataError(f"{CIFAR_META}: b'label_names' must be a list of names")
        classes = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in names]
    else:
        classes = [str(i) for i in range(int(y.max()) + 1)]
    if len(y) and (y.min() < 0 or y.max() >= len(classes)):
        raise DataError(f"{folder}: labels outside 0..{len(classes) - 1}")
    presplit = None
    if train_files and test_file.is_file():
        presplit = {"train": np.arange(n_train), "dev": np.arange(0), "test": np.arange(n_train, len(y))}
    return _finish_images(X, y, classes, source, "cifar10", image_size, color, presplit)


def source_files(path: Path) -> list[Path]:
    """Files whose size and mtime key the cache for an array-format source."""
    if path.is_file():
        return [path]
    names = sorted(os.listdir(path))
    return [path / n for n in names if not n.startswith(".") and (path / n).is_file()]
