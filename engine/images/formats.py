"""Array formats: ``.npz`` (X, y), MNIST idx folders and CIFAR-10 python batches.

All three are untrusted user files, and each is checked before anything large is
allocated: an ``.npz``'s member headers against the members' sizes, a compression-ratio
bound and available memory (:func:`inspect_npz`); an idx header's dimensions against the
file's size; a CIFAR batch's size against available memory, then its pickle through
:mod:`engine.images.unpickle`, which can build nothing but plain containers and NumPy
arrays of exactly the bytes it holds. ``np.load`` always runs with ``allow_pickle=False``.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zipfile
from pathlib import Path

import numpy as np

from engine.dataset import SourceData
from engine.errors import DataError
from engine.fileio import is_npz_archive
from engine.images.arrays import convert_color, resize_batch, to_uint8_images
from engine.images.limits import check_ratio, human_bytes, require_memory
from engine.images.report import build_report
from engine.images.unpickle import RefusedPickle, restricted_load
from engine.text import printable

# ----------------------------------------------------------------------------- npz

_NPY_VERSIONS = {(1, 0), (2, 0), (3, 0)}


def _npy_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype a member declares, checked against the member's size before any read.

    Reads only the member's npy header (at most a few KB, whatever the member claims).
    """
    member = printable(info.filename)
    try:
        with zf.open(info) as fh:
            try:
                version = np.lib.format.read_magic(fh)
            except ValueError:
                raise DataError(f"{name}: member {member} is not an .npy array (bad magic string)") from None
            if version not in _NPY_VERSIONS:
                raise DataError(f"{name}: member {member} has unknown .npy version {version}")
            reader = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _fortran, dtype = reader(fh)
            header_len = fh.tell()
    except DataError:
        raise
    except (ValueError, SyntaxError, TypeError) as exc:
        raise DataError(f"{name}: member {member} has an unreadable .npy header ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError, NotImplementedError) as exc:
        raise DataError(f"{name}: cannot read member {member} ({exc})") from None
    if dtype.hasobject:
        raise DataError(
            f"{name}: holds an object array, which is refused; save plain numeric or string arrays"
        )
    declared = math.prod(shape) * dtype.itemsize  # Python ints: huge shapes cannot overflow
    if header_len + declared != info.file_size:
        raise DataError(
            f"{name}: member {member} declares shape {tuple(shape)} of {dtype} ({human_bytes(declared)}) "
            f"but holds {human_bytes(max(0, info.file_size - header_len))}"
        )
    return tuple(shape), dtype


def inspect_npz(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{key: (shape, dtype)}`` for the X, y (and classes) members of an ``.npz``, read from
    the npy headers only; refuses inconsistent sizes, zip bombs and what would not fit in memory."""
    name = printable(path.name)
    archive_size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {i.filename[:-4] if i.filename.endswith(".npy") else i.filename: i for i in zf.infolist()}
            for key in ("X", "y"):
                if key not in infos:
                    found = ", ".join(printable(k) for k in sorted(infos)) or "none"
                    raise DataError(f"{name}: missing array {key!r} (found: {found})")
            declared: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
            total = 0
            for key in ("X", "y", "classes"):
                info = infos.get(key)
                if info is None:
                    continue
                if info.compress_size > archive_size:
                    raise DataError(f"{name}: member {key} claims to be larger than the archive")
                check_ratio(info.file_size, info.compress_size, f"{name}: member {key}")
                declared[key] = _npy_header(zf, info, name)
                total += info.file_size
    except DataError:
        raise
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise DataError(f"{name}: not a readable .npz file ({exc})") from None
    require_memory(total, name)
    return declared


def load_npz(path: Path, source: str, image_size: tuple[int, int], color: str) -> SourceData:
    """``.npz`` with ``X`` ``(N, H, W[, C])`` images or ``(N, features)`` vectors and ``y`` ``(N,)``.

    y may hold integers or strings; an optional ``classes`` array names integer labels.
    Images become uint8 ``(N, H, W, C)`` at ``image_size``/``color``; feature vectors stay
    float (float32 unless stored as float64). The members' npy headers are checked first
    (see :func:`inspect_npz`), so nothing is allocated for a file that lies about its size.
    """
    name = printable(path.name)
    if not is_npz_archive(path):
        raise DataError(f"{name}: not an .npz archive (an .npz file is a zip of .npy arrays)")
    declared = inspect_npz(path)
    x_shape, x_dtype = declared["X"]
    y_shape, _ = declared["y"]
    if x_dtype.kind not in "buif":
        raise DataError(f"{name}: X must be numeric, got dtype {x_dtype}")
    if len(x_shape) not in (2, 3, 4):
        raise DataError(f"{name}: X must have shape (N, features), (N, H, W) or (N, H, W, C); got {x_shape}")
    if len(y_shape) != 1 or y_shape[0] != x_shape[0]:
        raise DataError(f"{name}: y must have shape ({x_shape[0]},) to match X, got {y_shape}")
    if len(x_shape) > 2:
        n_ch = 3 if color == "rgb" else 1
        require_memory(
            math.prod(x_shape) * x_dtype.itemsize * 2 + x_shape[0] * image_size[0] * image_size[1] * n_ch,
            f"{name}: converting X",
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            X = npz["X"]
            y_raw = npz["y"]
            names = npz["classes"] if "classes" in declared else None
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataError(
                f"{name}: holds an object array, which is refused; save plain numeric or string arrays"
            ) from None
        raise DataError(f"{name}: not a readable .npz file ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{name}: not a readable .npz file ({exc})") from None
    y, classes = _labels(y_raw, names, name)
    _require_two_classes(y, classes, name)
    if X.ndim == 2:
        Xf = X.astype(np.float64 if X.dtype == np.float64 else np.float32)
        if not np.isfinite(Xf).all():
            raise DataError(f"{name}: X contains NaN or infinite values")
        sd_report = build_report(source=source, kind="npz", X=Xf, y=y, classes=classes)
        return SourceData(X=Xf, y=y, classes=classes, source=source, report=sd_report)
    images = to_uint8_images(X, name)
    return finish_images(images, y, classes, source, "npz", image_size, color)


def _require_two_classes(y: np.ndarray, classes: list[str], name: str) -> None:
    present = np.unique(y)
    if len(present) < 2:
        only = f" ({classes[int(present[0])]})" if len(present) == 1 else ""
        raise DataError(f"{name}: y holds {len(present)} class{only}; a classifier needs at least two")


def class_names(values) -> list[str]:
    """Label values as printable class names; two values that print alike are an error."""
    names = [printable(v) for v in values]
    if len(set(names)) != len(names):
        seen: set[str] = set()
        dup = next(n for n in names if n in seen or seen.add(n))
        raise DataError(f"two different class names print as {dup!r}; rename one of them")
    return names


def classes_from_labels(values: list[str], name: str) -> tuple[np.ndarray, list[str]]:
    """Text labels (CSV cells, Parquet strings) -> int64 labels ``(n,)`` and class names.

    When every label is an integer the classes are sorted by value (``2`` before ``10``),
    otherwise by text; names are printable (see :func:`class_names`).
    """
    uniq = sorted(set(values))
    try:
        as_int = {v: int(v) for v in uniq}
    except ValueError:
        as_int = None
    if as_int is not None:
        uniq = sorted(uniq, key=lambda v: as_int[v])
        if len(set(as_int.values())) != len(uniq):  # "1" and "01"
            raise DataError(f"{name}: labels {uniq} name the same number in different ways")
    index = {v: i for i, v in enumerate(uniq)}
    y = np.fromiter((index[v] for v in values), dtype=np.int64, count=len(values))
    return y, class_names(str(as_int[v]) if as_int is not None else v for v in uniq)


def _labels(y_raw: np.ndarray, names: np.ndarray | None, name: str) -> tuple[np.ndarray, list[str]]:
    """Labels as int64 0..k-1 plus class names in label order."""
    if y_raw.dtype.kind in "US":
        values = y_raw.astype(str)
        classes, y = np.unique(values, return_inverse=True)
        return y.astype(np.int64), class_names(str(c) for c in classes)
    if y_raw.dtype.kind in "iub":
        yi = y_raw.astype(np.int64)
    elif y_raw.dtype.kind == "f" and np.isfinite(y_raw).all() and np.all(y_raw == np.round(y_raw)):
        yi = y_raw.astype(np.int64)
    else:
        raise DataError(f"{name}: y must hold integer or string labels, got dtype {y_raw.dtype}")
    if names is not None:
        names_l = class_names(str(v) for v in np.asarray(names).reshape(-1))
        if len(yi) and (yi.min() < 0 or yi.max() >= len(names_l)):
            raise DataError(f"{name}: y has labels outside 0..{len(names_l) - 1} of the classes array")
        return yi, names_l
    values, y = np.unique(yi, return_inverse=True)
    return y.astype(np.int64), [str(v) for v in values]


def finish_images(
    images, y, classes, source, kind, image_size, color, presplit=None, skipped=None
) -> SourceData:
    """uint8 images ``(n, h, w, C)`` at their stored size -> the SourceData at ``image_size``/``color``."""
    if len(classes) < 2:
        raise DataError(f"{printable(Path(source).name)}: needs at least two classes, found {len(classes)}")
    original = np.tile(np.array(images.shape[1:3], dtype=np.int64), (len(images), 1))
    images = convert_color(resize_batch(images, image_size), color)
    report = build_report(
        source=source,
        kind=kind,
        X=images,
        y=y,
        classes=classes,
        skipped=skipped,
        original_sizes=original,
        presplit=presplit,
    )
    return SourceData(X=images, y=y, classes=classes, source=source, report=report, presplit=presplit)


# ----------------------------------------------------------------------------- MNIST idx


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
        raise DataError(f"{printable(folder)}: MNIST {prefix} {missing} file is missing")
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
    """Parse an idx file (optionally gzipped): magic ``00 00 08 ndim``, big-endian uint32 sizes, uint8 data.

    The size the header declares (a product of up to three 32-bit numbers, computed
    without overflow) must match the file exactly (raw) or stay within the compression-ratio
    bound (gzip), and fit in available memory, before the data is read.
    """
    name = printable(path.name)
    try:
        file_size = path.stat().st_size
        with open(path, "rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
    except OSError as exc:
        raise DataError(f"{name}: cannot read idx file ({exc.strerror or exc})") from None
    opener = gzip.open if gz else open
    try:
        with opener(path, "rb") as fh:
            header = fh.read(4)
            if len(header) < 4 or header[0] != 0 or header[1] != 0:
                raise DataError(f"{name}: not an idx file (bad magic number)")
            if header[2] != 0x08:
                raise DataError(f"{name}: idx data type 0x{header[2]:02x} is not unsigned byte (0x08)")
            if header[3] != expected_ndim:
                raise DataError(f"{name}: idx file has {header[3]} dimensions, expected {expected_ndim}")
            dims_raw = fh.read(4 * expected_ndim)
            if len(dims_raw) < 4 * expected_ndim:
                raise DataError(f"{name}: idx header is truncated")
            dims = struct.unpack(f">{expected_ndim}I", dims_raw)
            n_bytes = math.prod(dims)  # Python int: cannot overflow
            header_len = 4 + 4 * expected_ndim
            if not gz and header_len + n_bytes != file_size:
                what = "shorter" if header_len + n_bytes > file_size else "longer"
                raise DataError(
                    f"{name}: data is {what} than the idx header declares {tuple(dims)} "
                    f"({human_bytes(n_bytes)}; the file holds {human_bytes(max(0, file_size - header_len))})"
                )
            if gz:
                check_ratio(n_bytes, file_size, f"{name}: idx header declares {tuple(dims)}")
            require_memory(n_bytes, f"{name}: idx header declares {tuple(dims)}")
            data = fh.read(n_bytes + 1)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{name}: cannot read idx file ({exc})") from None
    if len(data) != n_bytes:
        what = "shorter" if len(data) < n_bytes else "longer"
        raise DataError(f"{name}: data is {what} than the idx header declares {tuple(dims)}")
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
                f"{printable(files[1].name)}: {len(labels)} labels for {len(imgs)} images in "
                f"{printable(files[0].name)}"
            )
        parts.append((part, imgs, labels))
    if not parts:
        raise DataError(f"{printable(folder)}: no MNIST train-images/t10k-images idx files")
    X = np.concatenate([p[1] for p in parts])[..., None]
    y = np.concatenate([p[2] for p in parts]).astype(np.int64)
    n_cls = max(10, int(y.max()) + 1) if len(y) else 10
    classes = [str(i) for i in range(n_cls)]
    presplit = None
    if len(parts) == 2:
        n_train = len(parts[0][1])
        presplit = {"train": np.arange(n_train), "dev": np.arange(0), "test": np.arange(n_train, len(y))}
    return finish_images(X, y, classes, source, "mnist", image_size, color, presplit)


# ----------------------------------------------------------------------------- CIFAR-10


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
    name = printable(path.name)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"{name}: cannot read file ({exc.strerror or exc})") from None
    require_memory(2 * size, name)  # the bytes, plus at most one copy while loading
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{name}: cannot read file ({exc.strerror or exc})") from None
    try:
        obj = restricted_load(data)
    except RefusedPickle as exc:
        raise DataError(f"{name}: refused or unreadable pickle ({printable(exc)})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{name}: expected a dict, got {type(obj).__name__}")
    return obj


def _get(d: dict, key: str):
    return d.get(key.encode(), d.get(key))


def _int_labels(labels, n: int, name: str) -> np.ndarray:
    """b'labels' as int64 ``(n,)``: a list of ints or NumPy integer scalars, or an integer array."""
    if isinstance(labels, np.ndarray):
        if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != n:
            raise DataError(
                f"{name}: b'labels' must be {n} integers, got an array {labels.dtype} {labels.shape}"
            )
        return labels.astype(np.int64)
    if not isinstance(labels, list) or len(labels) != n:
        raise DataError(f"{name}: b'labels' must be a list of {n} integers")
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels):
        raise DataError(f"{name}: b'labels' must hold integers")
    try:
        return np.array(labels, dtype=np.int64)
    except OverflowError:
        raise DataError(f"{name}: b'labels' holds integers out of range") from None


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    name = printable(path.name)
    d = _read_pickle(path)
    data, labels = _get(d, "data"), _get(d, "labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise DataError(f"{name}: b'data' must be a uint8 array of shape (N, 3072), got {shape}")
    y = _int_labels(labels, len(data), name)
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
        raise DataError(f"{printable(folder)}: no CIFAR-10 data_batch_* or test_batch files")
    X = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    if (folder / CIFAR_META).is_file():
        names = _get(_read_pickle(folder / CIFAR_META), "label_names")
        if not isinstance(names, list) or not all(isinstance(v, (bytes, str)) for v in names):
            raise DataError(f"{CIFAR_META}: b'label_names' must be a list of names")
        classes = class_names(v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in names)
    else:
        classes = [str(i) for i in range(int(y.max()) + 1)]
    if len(y) and (y.min() < 0 or y.max() >= len(classes)):
        raise DataError(f"{printable(folder)}: labels outside 0..{len(classes) - 1}")
    presplit = None
    if train_files and test_file.is_file():
        presplit = {"train": np.arange(n_train), "dev": np.arange(0), "test": np.arange(n_train, len(y))}
    return finish_images(X, y, classes, source, "cifar10", image_size, color, presplit)


def source_files(path: Path) -> list[Path]:
    """Files whose size and mtime key the cache for an array-format source."""
    if path.is_file():
        return [path]
    names = sorted(os.listdir(path))
    return [path / n for n in names if not n.startswith(".") and (path / n).is_file()]
