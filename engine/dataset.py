"""Plain containers passed between data loading, splitting, training and the window.

Arrays are batch-first. Images stay ``uint8`` of shape ``(n, H, W, C)`` until a batch
is used; 2-D and other vector data are float of shape ``(n, n_features)``.

Samples may live in memory (an ndarray), in a read-only memory map of the disk cache (an
``np.memmap``), or in an :class:`engine.arrayfile.ArrayFile` read by rows (a cache file that
cannot be mapped under an address-space cap). :func:`take_rows` and :func:`read_rows` read
rows from any of them; an :class:`ArraySet` is a set of rows of such an array, kept as an
index rather than a copy (see the memory budget in :mod:`engine.memory`).
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from engine.arrayfile import ArrayFile

Samples = np.ndarray | ArrayFile  # (N, ...) rows: in memory, memory-mapped, or read from a file


def take_rows(base: Samples, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``base[rows]`` as a new array ``(len(rows), ...)``, or into ``out`` (no allocation)."""
    if isinstance(base, ArrayFile):
        return base.take(rows, out=out)
    if out is None:
        return np.take(base, rows, axis=0)
    return np.take(base, rows, axis=0, out=out, mode="clip")


def read_rows(base: Samples, start: int, stop: int) -> np.ndarray:
    """Rows ``[start, stop)``: a view for arrays (memory-mapped or not), a read for an ArrayFile."""
    if isinstance(base, ArrayFile):
        return base.read(start, stop)
    return base[start:stop]


class _MappedFile:
    """Pickles as the name of a read-only memory-mapped .npy file and maps it again when unpickled."""

    def __init__(self, path: str, offset: int, shape: tuple[int, ...], dtype: np.dtype):
        self.args = (path, offset, shape, dtype)

    def __reduce__(self):
        return (_map_again, self.args)


def _map_again(path: str, offset: int, shape: tuple[int, ...], dtype) -> np.ndarray:
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


def _portable(base: Samples):
    """What to pickle for a set's samples: a whole read-only memory map by its file, else itself."""
    if isinstance(base, ArrayFile):
        return _FileByName(str(base.path))
    if (
        isinstance(base, np.memmap)
        and getattr(base, "filename", None)
        and base.mode == "r"
        and isinstance(base.base, mmap.mmap)  # the whole mapping, not a view into part of it
        and base.flags.c_contiguous
    ):
        return _MappedFile(str(base.filename), int(base.offset), tuple(base.shape), base.dtype)
    return base


class _FileByName:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (ArrayFile, (self.path,))


def is_in_memory(base: Samples) -> bool:
    """True when the samples are held in this process's memory (not a file or file mapping)."""
    if isinstance(base, ArrayFile):
        return False
    obj = base
    while isinstance(obj, np.ndarray):  # a view's chain of bases ends at its owner
        obj = obj.base
    return not isinstance(obj, mmap.mmap)


@dataclass(frozen=True)
class SourceData:
    """One loaded source, before splitting.

    X: ``(n, n_features)`` float or ``(n, H, W, C)`` uint8; y: ``(n,)`` int64 in ``[0, len(classes))``.
    presplit: for ``root/train|dev|test`` folders (and MNIST / CIFAR-10 folders with both
    train and test files), index arrays into X per part (keys ``train``, ``dev``,
    ``test``; a missing part is an empty array); otherwise None.
    report: the data report dict (image sources), or None for generated 2-D sets.
    """

    X: np.ndarray
    y: np.ndarray
    classes: list[str]
    source: str
    report: dict | None = None
    presplit: dict[str, np.ndarray] | None = None

    @property
    def is_image(self) -> bool:
        return self.X.ndim == 4


class ArraySet:
    """One labelled set: the samples ``base[idx]`` (all of ``base`` when idx is None) and labels.

    base: the stored samples ``(N, ...)`` (uint8 NHWC images or float vectors; in memory,
    memory-mapped, or an ArrayFile); y: ``(n,)`` int64 labels of the set; idx: ``(n,)`` int64
    rows of base (sorted when made by a split), or None. A split keeps the index, never a
    copy: read samples with :meth:`take` or :meth:`chunks`; :attr:`X` makes a copy.
    ``ArraySet(X, y)`` is a set of all rows of X.
    """

    __slots__ = ("base", "y", "idx")

    def __init__(self, X: Samples, y: np.ndarray, idx: np.ndarray | None = None):
        object.__setattr__(self, "base", X)
        object.__setattr__(self, "y", y)
        if idx is not None:
            idx = np.asarray(idx, dtype=np.int64)
            if idx.ndim != 1 or len(idx) != len(y):
                raise ValueError(f"idx must have shape ({len(y)},), got {idx.shape}")
        object.__setattr__(self, "idx", idx)

    def __setattr__(self, name, value):
        raise AttributeError("ArraySet is immutable")

    def __reduce__(self):
        # sent to another process (the window's training process, a sweep worker): samples
        # that live in a cache file travel as its name, not as a copy of the data
        return (ArraySet, (_portable(self.base), self.y, self.idx))

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __repr__(self) -> str:
        return f"ArraySet(n={len(self)}, sample_shape={self.sample_shape}, dtype={self.dtype})"

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.base.shape[1:])

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.sample_shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.base.dtype)

    @property
    def ndim(self) -> int:
        return len(self.base.shape)

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.sample_shape, dtype=np.int64)) * self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        """Bytes of the set's samples as stored (not what this object holds)."""
        return len(self) * self.row_bytes

    @property
    def in_memory(self) -> bool:
        return is_in_memory(self.base)

    @property
    def X(self) -> np.ndarray:
        """The samples ``(n, ...)``: base itself when the set is all of it, else a new copy
        (for a large set on disk, prefer :meth:`take` or :meth:`chunks`)."""
        if self.idx is None:
            return self.base if isinstance(self.base, np.ndarray) else np.asarray(self.base)
        return take_rows(self.base, self.idx)

    def __getitem__(self, key) -> np.ndarray:
        """Samples by set position: an int gives one sample, a slice or an integer array a
        new ``(k, ...)`` array (read from base; no copy of the whole set is made)."""
        if isinstance(key, (int, np.integer)):
            i = int(key) + (len(self) if int(key) < 0 else 0)
            if not 0 <= i < len(self):
                raise IndexError(f"sample {int(key)} out of range for {len(self)} samples")
            return self.take(np.array([i]))[0]
        if isinstance(key, slice):
            return self.take(np.arange(len(self))[key])
        key = np.asarray(key)
        if key.dtype == bool:
            key = np.flatnonzero(key)
        return self.take(key)

    def __array__(self, dtype=None, copy=None):
        X = self.X
        return X if dtype is None else X.astype(dtype, copy=False)

    def rows(self, positions: np.ndarray | slice) -> np.ndarray:
        """The base rows ``(k,)`` of the set's samples at ``positions``."""
        if self.idx is not None:
            return self.idx[positions]
        if isinstance(positions, slice):
            return np.arange(len(self), dtype=np.int64)[positions]
        return np.asarray(positions, dtype=np.int64)

    def take(self, positions: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The samples at set positions ``(k,)`` as ``(k, ...)``, into ``out`` when given."""
        return take_rows(self.base, self.rows(np.asarray(positions)), out)

    def head(self, n: int) -> np.ndarray:
        """The first ``n`` samples (a copy)."""
        return self.take(np.arange(min(int(n), len(self))))

    def subset(self, positions: np.ndarray) -> ArraySet:
        """The set of the samples at ``positions`` (an index into the same base, no copy)."""
        positions = np.asarray(positions, dtype=np.int64)
        return ArraySet(self.base, self.y[positions], self.rows(positions))

    def chunks(self, rows_per_chunk: int) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(start, stop, samples)`` in set order, at most ``rows_per_chunk`` rows each.

        Samples are a view of base (whole in-memory sets) or one reused buffer: valid until
        the next chunk.
        """
        step = max(1, int(rows_per_chunk))
        n = len(self)
        if self.idx is None:
            for start in range(0, n, step):
                stop = min(start + step, n)
                yield start, stop, read_rows(self.base, start, stop)
            return
        buf = np.empty((min(step, max(n, 1)), *self.sample_shape), dtype=self.dtype)
        for start in range(0, n, step):
            stop = min(start + step, n)
            yield start, stop, take_rows(self.base, self.idx[start:stop], buf[: stop - start])


@dataclass(frozen=True)
class PreparedData:
    """Train/dev/test sets ready for training.

    input_shape: ``(n_features,)`` or ``(H, W, C)``. The network sees
    ``(features - norm_mean) / norm_std`` where features are the flattened sample, images
    first scaled to 0..1 (divided by 255). norm_mean and norm_std have shape
    ``(n_features,)``, computed on the training split only (0 and 1 when normalize is none).
    split_indices: ``train_idx``, ``dev_idx``, ``test_idx`` into the single source that was
    split (saved as split.npz), including a pre-split source whose dev set was carved out
    of its train part; None when nothing was split (separate or fully pre-split sources).
    """

    train: ArraySet
    dev: ArraySet
    test: ArraySet
    classes: list[str]
    input_shape: tuple[int, ...]
    norm_mean: np.ndarray
    norm_std: np.ndarray
    split_indices: dict[str, np.ndarray] | None = None
    report: dict | None = None
    notes: list[str] = field(default_factory=list)  # warnings for the user (e.g. mismatched sources)

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3

    @property
    def n_features(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def n_classes(self) -> int:
        return len(self.classes)
