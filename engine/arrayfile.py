"""A NumPy ``.npy`` file read and written by rows with positional file I/O, never mapped whole.

Why not always ``np.load(mmap_mode="r")``: a memory map takes address space as large as the
file, and ``RLIMIT_AS`` (``ulimit -v``) counts address space, so under such a cap a file
bigger than the cap cannot be mapped at all. :class:`ArrayFile` reads the rows a caller asks
for with ``pread`` into the caller's buffer instead; :class:`NpyWriter` writes a file the
same way, so building a decoded image cache larger than memory (or than the cap) never
holds it in memory either.

Both handle C-ordered arrays of plain (non-object) dtypes only. The file is a standard
version 1.0 ``.npy`` (``np.load`` reads it, with ``mmap_mode`` or without); the header
written first is sized for the full row count, so :meth:`NpyWriter.finish` can shrink the
array (images that failed to decode) by rewriting the header in place, padded to the same
length.
"""

from __future__ import annotations

import errno
import os
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np

_MAGIC = b"\x93NUMPY\x01\x00"  # format version 1.0
_ALIGN = 64
_MERGE_GAP_BYTES = 64 * 1024  # rows closer than this are read in one request, gap included
_SCRATCH_BYTES = 8 * 2**20  # largest single read when gathering rows (bounds the scratch buffer)


def _npy_header(dtype: np.dtype, shape: tuple[int, ...], length: int | None = None) -> bytes:
    """A version 1.0 ``.npy`` header for a C-ordered array, padded with spaces to ``length``
    bytes (or to the next multiple of 64)."""
    shape = tuple(int(s) for s in shape)  # plain ints: numpy scalars repr as np.int64(…)
    descr = np.lib.format.dtype_to_descr(np.dtype(dtype))
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
    body = text.encode("latin1")
    used = len(_MAGIC) + 2 + len(body) + 1  # magic, uint16 length, text, newline
    total = length if length is not None else -(-used // _ALIGN) * _ALIGN
    if total < used or total - len(_MAGIC) - 2 > 0xFFFF:
        raise ValueError(f"an .npy header for shape {shape} does not fit in {total} bytes")
    pad = total - used
    header_len = total - len(_MAGIC) - 2
    return _MAGIC + header_len.to_bytes(2, "little") + body + b" " * pad + b"\n"


def _pread_into(fd: int, buf: np.ndarray, offset: int) -> None:
    """Fill the contiguous array ``buf`` from ``fd`` at ``offset``; EOFError on a short file."""
    view = memoryview(buf).cast("B")
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], offset + done)
        if n == 0:
            raise EOFError(f"file ends {len(view) - done} bytes early")
        done += n


def _pwrite_from(fd: int, buf: np.ndarray, offset: int) -> None:
    view = memoryview(np.ascontiguousarray(buf)).cast("B")
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)


class ArrayFile:
    """A read-only ``.npy`` file accessed by rows: ``(n, *row_shape)``.

    Supports ``shape``, ``dtype``, ``ndim``, ``size``, ``nbytes``, ``len()``, and indexing by
    an int, a slice with step 1, or a 1-D integer array (each returns a new ndarray read from
    the file). :meth:`read` and :meth:`take` read into a given buffer. ``np.asarray(f)``
    reads the whole file (use it only for small files). Thread-safe: reads are positional.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        with open(self.path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"{self.path.name}: unsupported .npy version {version}")
            self.offset = fh.tell()
        if fortran or dtype.hasobject or len(shape) == 0:
            raise ValueError(f"{self.path.name}: needs a C-ordered, non-object array with rows")
        self.shape: tuple[int, ...] = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.row_shape = self.shape[1:]
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        expected = self.offset + self.shape[0] * self.row_bytes
        if os.path.getsize(self.path) < expected:
            raise ValueError(f"{self.path.name}: file is shorter than its header says ({self.shape})")
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self._close = weakref.finalize(self, os.close, self._fd)
        self._local = threading.local()  # per-thread scratch for gathers

    # ------------------------------------------------------------ array-like
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.row_bytes

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"ArrayFile({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"

    def __reduce__(self):  # reopened by path (a pickled copy never carries the data)
        return (ArrayFile, (str(self.path),))

    def __array__(self, dtype=None, copy=None):
        out = self.read(0, len(self))
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            i = int(key)
            if i < 0:
                i += len(self)
            if not 0 <= i < len(self):
                raise IndexError(f"index {int(key)} out of range for {len(self)} rows")
            return self.read(i, i + 1)[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step != 1:
                return self.take(np.arange(start, stop, step))
            return self.read(start, max(start, stop))
        rows = np.asarray(key)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
            raise TypeError("ArrayFile rows are indexed by an int, a slice or a 1-D integer array")
        rows = np.where(rows < 0, rows + len(self), rows)
        return self.take(rows)

    # ------------------------------------------------------------ reading
    def read(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``[start, stop)`` as ``(stop - start, *row_shape)``, into ``out`` when given."""
        start, stop = int(start), int(stop)
        if not 0 <= start <= stop <= len(self):
            raise IndexError(f"rows {start}:{stop} out of range for {len(self)} rows")
        if out is None:
            out = np.empty((stop - start, *self.row_shape), dtype=self.dtype)
        elif out.shape[0] != stop - start or not out.flags.c_contiguous:
            raise ValueError("out must be C-contiguous with one row per requested row")
        if stop > start:
            _pread_into(self._fd, out, self.offset + start * self.row_bytes)
        return out

    def take(self, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``rows`` (any order, repeats allowed) as ``(len(rows), *row_shape)``.

        Rows are read in ascending order; neighbours less than 64 KiB apart are read in one
        request (the gap included, through a bounded scratch buffer), so a sorted or
        clustered index costs a few large reads rather than one per row.
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        n = len(rows)
        if out is None:
            out = np.empty((n, *self.row_shape), dtype=self.dtype)
        if n == 0:
            return out
        if rows.min() < 0 or rows.max() >= len(self):
            raise IndexError(f"row index out of range for {len(self)} rows")
        ascending = n == 1 or bool(np.all(rows[1:] >= rows[:-1]))
        order = None if ascending else np.argsort(rows, kind="stable")
        srows = rows if order is None else rows[order]
        target = out if order is None else np.empty_like(out)
        for at, stop, first, last in self._spans(srows):
            span = last - first + 1
            # a run of consecutive distinct rows: read straight into place
            if span == stop - at and (span == 1 or bool(np.all(np.diff(srows[at:stop]) == 1))):
                self.read(first, last + 1, target[at:stop])
                continue
            block = self._scratch(span)
            self.read(first, last + 1, block)
            np.take(block, srows[at:stop] - first, axis=0, out=target[at:stop])
        if order is not None:
            out[order] = target
        return out

    def chunks(self, rows_per_chunk: int) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(start, stop, rows)`` over the whole file in order; rows reuse one buffer."""
        step = max(1, int(rows_per_chunk))
        buf = np.empty((min(step, max(len(self), 1)), *self.row_shape), dtype=self.dtype)
        for start in range(0, len(self), step):
            stop = min(start + step, len(self))
            yield start, stop, self.read(start, stop, buf[: stop - start])

    def _spans(self, srows: np.ndarray) -> Iterator[tuple[int, int, int, int]]:
        """Split ascending rows into requests ``(at, stop, first_row, last_row)`` whose span
        fits the scratch buffer and whose gaps are under _MERGE_GAP_BYTES."""
        gap_rows = max(1, _MERGE_GAP_BYTES // max(1, self.row_bytes))
        max_rows = max(1, _SCRATCH_BYTES // max(1, self.row_bytes))
        breaks = np.flatnonzero(np.diff(srows) > gap_rows) + 1
        bounds = np.concatenate(([0], breaks, [len(srows)]))
        for a, b in zip(bounds[:-1], bounds[1:]):
            at = int(a)
            while at < b:
                first = int(srows[at])
                # the rows of this run that fit one scratch read
                stop = int(np.searchsorted(srows[at:b], first + max_rows, side="left")) + at
                stop = max(stop, at + 1)
                yield at, stop, first, int(srows[stop - 1])
                at = stop

    def _scratch(self, n_rows: int) -> np.ndarray:
        buf = getattr(self._local, "buf", None)
        if buf is None or buf.shape[0] < n_rows:
            buf = self._local.buf = np.empty((n_rows, *self.row_shape), dtype=self.dtype)
        return buf[:n_rows]

    def close(self) -> None:
        self._close()


class NpyWriter:
    """Write a ``.npy`` of shape ``(n, *row_shape)`` row by row with positional writes.

    The file (normally a temporary name) is created, its header written and its full size
    reserved up front (``posix_fallocate`` where available, so a full disk fails here, before
    any work, with OSError). :meth:`put` writes rows at given positions; :meth:`finish`
    keeps the rows of the given positions (in that order, dropping the others), fsyncs and
    returns an :class:`ArrayFile` of the result; :meth:`abort` deletes the file.
    """

    def __init__(self, path: str | os.PathLike, shape: tuple[int, ...], dtype, mode: int = 0o644):
        self.path = Path(path)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        if self.dtype.hasobject or len(self.shape) == 0:
            raise ValueError("NpyWriter writes non-object arrays with a row dimension")
        self.row_shape = self.shape[1:]
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        self._header = _npy_header(self.dtype, self.shape)
        self.offset = len(self._header)
        self._fd: int | None = os.open(
            self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode
        )
        try:
            size = self.offset + self.shape[0] * self.row_bytes
            if size > self.offset and hasattr(os, "posix_fallocate"):
                try:
                    os.posix_fallocate(self._fd, 0, size)
                except OSError as exc:
                    if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # a file system without it
                        raise
                    os.ftruncate(self._fd, size)
            else:
                os.ftruncate(self._fd, size)
            os.pwrite(self._fd, self._header, 0)
        except BaseException:
            self.abort()
            raise

    def put(self, positions: np.ndarray, rows: np.ndarray) -> None:
        """Write ``rows`` ``(k, *row_shape)`` at row ``positions`` ``(k,)`` (ascending)."""
        if self._fd is None:
            raise ValueError("the writer is closed")
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        rows = np.asarray(rows, dtype=self.dtype)
        if rows.shape != (len(positions), *self.row_shape):
            raise ValueError(f"rows of shape {rows.shape} do not fit {len(positions)} x {self.row_shape}")
        if len(positions) == 0:
            return
        # contiguous runs of positions become one write each
        breaks = np.flatnonzero(np.diff(positions) != 1) + 1
        bounds = np.concatenate(([0], breaks, [len(positions)]))
        for a, b in zip(bounds[:-1], bounds[1:]):
            _pwrite_from(self._fd, rows[a:b], self.offset + int(positions[a]) * self.row_bytes)

    def write(self, start: int, rows: np.ndarray) -> None:
        """Write consecutive rows starting at row ``start``."""
        self.put(np.arange(start, start + len(rows)), rows)

    def finish(self, keep: np.ndarray | None = None) -> ArrayFile:
        """Keep rows ``keep`` (ascending positions; all rows when None), flush and close.

        Kept rows move down in place, block by block (a row only ever moves to a lower
        position, so no row is overwritten before it is read), then the file is truncated and
        the header rewritten with the new row count, at its original length.
        """
        if self._fd is None:
            raise ValueError("the writer is closed")
        fd, n = self._fd, self.shape[0]
        try:
            if keep is not None:
                keep = np.asarray(keep, dtype=np.int64).reshape(-1)
                if len(keep) and (np.any(np.diff(keep) <= 0) or keep[0] < 0 or keep[-1] >= n):
                    raise ValueError("keep must hold ascending row positions of the file")
                if len(keep) < n:
                    self._compact(keep)
                    n = len(keep)
                    os.ftruncate(fd, self.offset + n * self.row_bytes)
                    header = _npy_header(self.dtype, (n, *self.row_shape), length=self.offset)
                    os.pwrite(fd, header, 0)
            os.fsync(fd)
        except BaseException:
            self.abort()
            raise
        os.close(fd)
        self._fd = None
        return ArrayFile(self.path)

    def _compact(self, keep: np.ndarray) -> None:
        source = ArrayFile(self.path)  # reads the rows as written so far
        try:
            step = max(1, _SCRATCH_BYTES // max(1, self.row_bytes))
            buf = np.empty((min(step, max(len(keep), 1)), *self.row_shape), dtype=self.dtype)
            for a in range(0, len(keep), step):
                b = min(a + step, len(keep))
                if keep[a] == a and keep[b - 1] == b - 1:
                    continue  # already in place
                block = source.take(keep[a:b], out=buf[: b - a])
                _pwrite_from(self._fd, block, self.offset + a * self.row_bytes)
        finally:
            source.close()

    def abort(self) -> None:
        """Close and delete the file (safe to call twice)."""
        if self._fd is not None:
            try:
                os.close(self._fd)
            finally:
                self._fd = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
