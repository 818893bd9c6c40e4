"""Mini-batches of a training set as network input, and whole sets as network input for evaluation.

The network sees ``(features - norm_mean) * (1 / norm_std)`` where ``features`` is the
flattened sample, images first scaled to 0..1 (``uint8 / 255``). Sets are
:class:`engine.dataset.ArraySet` s: index arrays into their source's samples, which may be in
memory, memory-mapped from the disk cache, or read by rows from it (:mod:`engine.memory`
describes the budget). Everything here writes into buffers allocated once, so the per-batch
cost is a few ufunc calls:

- vector data held in memory (2-D sets, ``.npz`` vectors): the whole training set is
  normalized once; each epoch gathers it in permuted order into a second buffer with one
  ``np.take`` and batches are contiguous slices of that buffer (no per-batch gathering);
- everything else (images, and vectors on disk): each batch's rows are gathered as stored
  (``uint8``) into a batch buffer and normalized batch by batch into a preallocated float
  buffer; without augmentation straight from ``uint8`` (scale and offset folded into two
  ufunc calls); with augmentation scaled to float32 0..1, augmented, flattened and
  normalized. With ``prefetch`` (the default) a background thread prepares the next
  augmented batch while the current one trains (double buffering; NumPy releases the GIL
  inside its loops). Prefetching only pays when a core is free for that thread: when BLAS
  already runs a thread on every core, the producer and BLAS's threads take cores from each
  other (and BLAS's threads wait for the slowest one at the end of every product). The
  trainer therefore trains augmented runs with one BLAS thread, and asks for
  ``prefetch=False`` (the batch is then prepared in the calling thread) when no core is left
  for the producer.

Shuffling (``shuffle``, default from :func:`engine.memory.stream_mode`):

- ``"random"``: one permutation of the whole training set per epoch; each batch gathers its
  rows wherever they are. For data in memory or in a memory-mapped file that fits in the
  page cache.
- ``"chunked"``: *the cache streamed in shuffled chunks*, for a training set larger than
  memory (random rows of it would each be a disk read). The source's rows are cut into
  contiguous blocks of about :data:`engine.memory.CHUNK_BLOCK_BYTES`; each epoch the
  blocks are put in a random order and taken, in that order, into groups that fill one
  buffer of :data:`engine.memory.CHUNK_BUFFER_BYTES` (at least one batch); a group is read
  from disk block by block (sequential reads), its samples are permuted, and the batches
  are consecutive slices of the concatenated group permutations. Every sample is used
  exactly once per epoch. While one group trains, a background thread reads the next into a
  second buffer (two buffers are the memory cost). The trade: a batch mixes samples from
  one group only, i.e. from ``CHUNK_BUFFER_BYTES / CHUNK_BLOCK_BYTES`` (64) random places of
  the file rather than from the whole set; a source stored in class order (folders are)
  therefore gives batches from at most 64 class runs at a time — plenty for a few classes,
  a visible skew with hundreds. A larger buffer mixes better; smaller blocks mix better but
  mean more, shorter reads.

Reproducibility: the permutation (or block order and group permutations) is drawn from the
shuffle generator at the start of each epoch, in the calling thread; the augmenter's
generator is used by one thread (the producer, or the caller without prefetch) strictly in
batch order, so the batches do not depend on thread timing, and prefetching or not gives the
same batches. The shuffle mode depends on the data size and the machine, so the same seed
gives the same batches on one machine (and on any with ``REGLAB_SHUFFLE`` set).

Yielded batches are *views into reused buffers*: they are valid until the next batch is
requested. Copy them to keep them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import numpy as np

from engine.dataset import ArraySet, Samples, take_rows
from engine.memory import CHUNK_BLOCK_BYTES, CHUNK_BUFFER_BYTES, EVAL_CHUNK_BYTES, format_bytes, stream_mode

# Vector training sets held in memory up to this size are normalized once and kept (twice:
# plain and permuted); larger ones are gathered and normalized batch by batch.
_PRENORMALIZE_BYTES = 256 * 2**20
# Evaluation sets whose network input fits in this many bytes are converted once and cached.
_EVAL_CACHE_BYTES = 64 * 2**20
EVAL_CHUNK = 4096  # rows per evaluation chunk at most (the network evaluates in chunks of this size too)


def eval_chunk_rows(n_features: int, itemsize: int = 4, chunk_size: int = EVAL_CHUNK) -> int:
    """Rows of one evaluation chunk: at most ``chunk_size`` and at most EVAL_CHUNK_BYTES of input."""
    return int(max(1, min(chunk_size, EVAL_CHUNK_BYTES // max(1, n_features * itemsize))))


def _as_set(X) -> ArraySet:
    return X if isinstance(X, ArraySet) else ArraySet(X, np.zeros(len(X), np.int8))


class Normalizer:
    """Raw samples -> network input ``(n, n_features)`` in ``dtype``, into a given buffer.

    norm_mean, norm_std: ``(n_features,)``. Integer samples (``uint8`` images) are divided by
    255 first, as :func:`engine.normalization.feature_matrix` does; float samples are used as they are.
    """

    def __init__(self, norm_mean: np.ndarray, norm_std: np.ndarray, dtype: str | np.dtype = "float32"):
        self.dtype = np.dtype(dtype)
        mean = np.asarray(norm_mean, dtype=np.float64).reshape(-1)
        std = np.asarray(norm_std, dtype=np.float64).reshape(-1)
        if mean.shape != std.shape:
            raise ValueError(f"norm_mean {mean.shape} and norm_std {std.shape} differ in shape")
        inv = 1.0 / std
        self.n_features = int(mean.shape[0])
        self.mean = mean.astype(self.dtype)
        self.inv_std = inv.astype(self.dtype)
        # uint8 path: x * (inv/255) - mean*inv, two ufunc calls instead of three
        self._u8_scale = (inv / 255.0).astype(self.dtype)
        self._u8_offset = (mean * inv).astype(self.dtype)

    def from_raw(self, raw: np.ndarray, out: np.ndarray) -> np.ndarray:
        """raw: ``(n, ...)`` uint8 images or float vectors; out: ``(>= n, n_features)``; returns ``out[:n]``."""
        n = raw.shape[0]
        flat = raw.reshape(n, -1)
        o = out[:n]
        if np.issubdtype(raw.dtype, np.integer):  # integer pixels, as engine.normalization scales them
            np.multiply(flat, self._u8_scale, out=o)
            np.subtract(o, self._u8_offset, out=o)
        else:
            np.subtract(flat, self.mean, out=o, casting="unsafe")
            np.multiply(o, self.inv_std, out=o)
        return o

    def from_unit_float(self, flat: np.ndarray, out: np.ndarray) -> np.ndarray:
        """flat: ``(n, n_features)`` float images already scaled to 0..1 (e.g. augmented); returns ``out[:n]``."""
        o = out[: flat.shape[0]]
        np.subtract(flat, self.mean, out=o, casting="unsafe")
        np.multiply(o, self.inv_std, out=o)
        return o


def to_network_input(
    X, norm_mean: np.ndarray, norm_std: np.ndarray, dtype: str | np.dtype = "float32"
) -> np.ndarray:
    """Whole set X (an array ``(n, ...)`` or an ArraySet) -> a new ``(n, n_features)`` array in
    dtype (never augmented), converted chunk by chunk."""
    data = _as_set(X)
    norm = Normalizer(norm_mean, norm_std, dtype)
    out = np.empty((len(data), norm.n_features), dtype=norm.dtype)
    rows = eval_chunk_rows(norm.n_features, norm.dtype.itemsize)
    for start, stop, raw in data.chunks(rows):
        norm.from_raw(raw, out[start:stop])
    return out


def iter_network_input(
    X,
    norm_mean: np.ndarray,
    norm_std: np.ndarray,
    dtype: str | np.dtype = "float32",
    chunk_size: int = EVAL_CHUNK,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(start, stop, F)`` with F ``(stop - start, n_features)`` the network input of
    samples ``start:stop`` of X (an array or an ArraySet), in chunks of at most chunk_size rows
    and EVAL_CHUNK_BYTES of input; F is a view into one reused buffer (valid until the next chunk)."""
    data = _as_set(X)
    norm = Normalizer(norm_mean, norm_std, dtype)
    rows = eval_chunk_rows(norm.n_features, norm.dtype.itemsize, chunk_size)
    buf = np.empty((min(rows, max(len(data), 1)), norm.n_features), dtype=norm.dtype)
    for start, stop, raw in data.chunks(rows):
        yield start, stop, norm.from_raw(raw, buf)


class EvalSet:
    """One labelled set evaluated in inference mode, never augmented.

    Small sets are converted to network input once and cached; large ones are converted
    chunk by chunk on every call into one bounded buffer (so a big image dev set, in memory
    or on disk, costs at most EVAL_CHUNK_BYTES of network input, never a copy of the set).
    """

    def __init__(
        self,
        data: ArraySet,
        norm_mean: np.ndarray,
        norm_std: np.ndarray,
        dtype: str | np.dtype = "float32",
        chunk_size: int = EVAL_CHUNK,
    ):
        self.data = _as_set(data)
        self.y = np.asarray(self.data.y, dtype=np.int64)
        self.n = len(self.data)
        self._mean, self._std, self._dtype = norm_mean, norm_std, np.dtype(dtype)
        self.chunk_size = int(chunk_size)
        n_features = int(np.asarray(norm_mean).size)
        self._cached: np.ndarray | None = None
        if self.n * n_features * self._dtype.itemsize <= _EVAL_CACHE_BYTES:
            self._cached = to_network_input(self.data, norm_mean, norm_std, self._dtype)

    def __len__(self) -> int:
        return self.n

    def evaluate(self, net) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) of net on the set; (nan, nan) when the set is empty."""
        if self.n == 0:
            return float("nan"), float("nan")
        if self._cached is not None:
            loss, acc = net.evaluate(self._cached, self.y)  # the network chunks large inputs itself
            return float(loss), float(acc)
        loss_sum = 0.0
        correct = 0
        for start, stop, F in iter_network_input(
            self.data, self._mean, self._std, self._dtype, self.chunk_size
        ):
            loss, acc = net.evaluate(F, self.y[start:stop])
            k = stop - start
            loss_sum += float(loss) * k
            correct += int(round(float(acc) * k))
        return loss_sum / self.n, correct / self.n


class _Buffers:
    """Preallocated storage of one batch in flight."""

    def __init__(self, data: ArraySet, bs: int, n_features: int, dtype: np.dtype, augment: bool):
        shape = data.sample_shape
        self.raw = np.empty((bs, *shape), dtype=data.dtype)
        self.unit = np.empty((bs, *shape), dtype=np.float32) if augment else None
        self.aug = np.empty((bs, *shape), dtype=np.float32) if augment else None
        self.out = np.empty((bs, n_features), dtype=dtype)
        self.y = np.empty(bs, dtype=np.int64)


class _RandomOrder:
    """One epoch in the order of a full permutation; each batch gathers its rows from the source."""

    def __init__(self, data: ArraySet, perm: np.ndarray):
        self._base = data.base
        self._rows = perm if data.idx is None else np.take(data.idx, perm)
        self._y = np.take(data.y, perm)

    def gather(self, start: int, stop: int, raw: np.ndarray, y: np.ndarray) -> None:
        take_rows(self._base, self._rows[start:stop], raw)
        np.copyto(y, self._y[start:stop])

    def close(self) -> None:
        pass


class _ChunkLayout:
    """The training set's rows in source order, cut into contiguous blocks (fixed per set).

    srows: ``(n,)`` the set's source rows, ascending; spos: ``(n,)`` their set positions;
    bounds: ``(n_blocks + 1,)`` offsets into srows where each non-empty block starts.
    """

    def __init__(self, data: ArraySet, block_bytes: int, buffer_rows: int):
        rows = data.rows(slice(None))
        self.spos = np.argsort(rows, kind="stable")
        self.srows = rows[self.spos]
        self.sy = np.take(data.y, self.spos)
        self.block_rows = max(1, int(block_bytes) // max(1, data.row_bytes))
        block_of = self.srows // self.block_rows
        starts = np.flatnonzero(np.diff(block_of)) + 1
        self.bounds = np.concatenate(([0], starts, [len(rows)])).astype(np.int64)
        self.counts = np.diff(self.bounds)
        # a group holds at least one block and one batch
        self.buffer_rows = max(int(buffer_rows), int(self.counts.max()) if len(self.counts) else 1)

    @property
    def n_blocks(self) -> int:
        return len(self.counts)

    def plan(self, rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per group, the sorted-entry blocks to read (in order) and the group's permutation."""
        order = rng.permutation(self.n_blocks)
        groups: list[list[int]] = [[]]
        filled = 0
        for k in order.tolist():
            c = int(self.counts[k])
            if filled + c > self.buffer_rows and groups[-1]:
                groups.append([])
                filled = 0
            groups[-1].append(k)
            filled += c
        blocks = [np.asarray(g, dtype=np.int64) for g in groups]
        perms = [rng.permutation(int(self.counts[b].sum())) for b in blocks]
        return blocks, perms


class _ChunkedOrder:
    """One epoch of the chunked shuffle (see the module docstring): batches are consecutive
    slices of the groups' permutations; a group is read into a slot, the next one prefetched."""

    def __init__(self, data: ArraySet, layout: _ChunkLayout, slots: list[np.ndarray], rng, prefetch: bool):
        self._base: Samples = data.base
        self._layout = layout
        self._slots = slots
        self._blocks, self._perms = layout.plan(rng)
        sizes = [len(p) for p in self._perms]
        self._ends = np.cumsum(sizes)
        self._starts = self._ends - np.asarray(sizes)
        self._prefetch = prefetch and len(slots) > 1
        self._loaded: dict[int, int] = {}  # group -> slot
        self._group_y: dict[int, np.ndarray] = {}
        self._pending: tuple[int, threading.Thread, list] | None = None
        self._current = -1

    @property
    def order(self) -> np.ndarray:
        """The epoch's order as set positions ``(n,)`` (for tests and inspection)."""
        lay = self._layout
        parts = []
        for blocks, perm in zip(self._blocks, self._perms):
            entries = np.concatenate([np.arange(lay.bounds[k], lay.bounds[k + 1]) for k in blocks])
            parts.append(lay.spos[entries[perm]])
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def _load(self, g: int, slot: int, errors: list) -> None:
        try:
            lay, buf = self._layout, self._slots[slot]
            at = 0
            ys = []
            for k in self._blocks[g].tolist():
                a, b = int(lay.bounds[k]), int(lay.bounds[k + 1])
                take_rows(self._base, lay.srows[a:b], buf[at : at + b - a])  # ascending: sequential reads
                ys.append(lay.sy[a:b])
                at += b - a
            self._group_y[g] = np.concatenate(ys)[self._perms[g]]
        except BaseException as exc:  # re-raised in the consuming thread
            errors.append(exc)

    def _start(self, g: int, slot: int) -> None:
        errors: list = []
        if self._prefetch:
            t = threading.Thread(target=self._load, args=(g, slot, errors), name="reglab-chunks", daemon=True)
            t.start()
            self._pending = (g, t, errors)
        else:
            self._load(g, slot, errors)
            if errors:
                raise errors[0]
        self._loaded = {gg: s for gg, s in self._loaded.items() if s != slot}
        self._loaded[g] = slot

    def _wait(self, g: int) -> None:
        if self._pending is not None and self._pending[0] == g:
            _, t, errors = self._pending
            t.join()
            self._pending = None
            if errors:
                raise errors[0]

    def _enter(self, g: int) -> int:
        """Make group g the current one; returns its slot. Starts reading group g + 1."""
        if g not in self._loaded:
            self._start(g, 0 if self._current < 0 else 1 - self._loaded.get(self._current, 1))
        self._wait(g)
        slot = self._loaded[g]
        if g != self._current:
            self._group_y.pop(self._current, None)
            self._current = g
            if g + 1 < len(self._blocks) and self._prefetch:
                self._start(g + 1, 1 - slot)
        return slot

    def gather(self, start: int, stop: int, raw: np.ndarray, y: np.ndarray) -> None:
        p = start
        g = max(self._current, 0)
        while p < stop:
            while self._ends[g] <= p:
                g += 1
            slot = self._enter(g)
            e = min(stop, int(self._ends[g]))
            a, b = p - int(self._starts[g]), e - int(self._starts[g])
            np.take(
                self._slots[slot], self._perms[g][a:b], axis=0, out=raw[p - start : e - start], mode="clip"
            )
            np.copyto(y[p - start : e - start], self._group_y[g][a:b])
            p = e

    def close(self) -> None:
        if self._pending is not None:
            self._pending[1].join()
            self._pending = None


class BatchPipeline:
    """Shuffled mini-batches of one training set, as ``(xb (b, n_features), yb (b,) int64)`` views.

    data: the training ArraySet (uint8 NHWC images or float vectors); batch_size ≥ len(data)
    gives one full batch per epoch. shuffle_rng draws one permutation (or chunk plan) per epoch.
    augmenter: an ``engine.augment.Augmenter`` (or anything with ``.enabled`` and
    ``.apply(batch, out=None)``); used for image data only and only when enabled.
    prefetch: augmented batches are prepared one ahead in a background thread (True) or in
    the calling thread when requested (False); the batches are the same either way.
    shuffle: ``"auto"`` (:func:`engine.memory.stream_mode`), ``"random"`` or ``"chunked"``;
    chunk_bytes / block_bytes: the chunked shuffle's buffer (one of two) and block sizes.
    ``note`` says, for the user, when the set is streamed.
    """

    def __init__(
        self,
        data: ArraySet,
        batch_size: int,
        norm_mean: np.ndarray,
        norm_std: np.ndarray,
        shuffle_rng: np.random.Generator,
        *,
        dtype: str | np.dtype = "float32",
        augmenter=None,
        prefetch: bool = True,
        shuffle: str = "auto",
        chunk_bytes: int = CHUNK_BUFFER_BYTES,
        block_bytes: int = CHUNK_BLOCK_BYTES,
    ):
        self.data = _as_set(data)
        self.y = np.asarray(self.data.y, dtype=np.int64)
        self.n = len(self.data)
        if self.n == 0:
            raise ValueError("the training set is empty")
        self.batch_size = int(min(batch_size, self.n))
        self.n_batches = -(-self.n // self.batch_size)
        self.is_image = self.data.ndim == 4
        self.norm = Normalizer(norm_mean, norm_std, dtype)
        self.dtype = self.norm.dtype
        self._rng = shuffle_rng
        self.augmenting = bool(
            self.is_image and augmenter is not None and getattr(augmenter, "enabled", False)
        )
        self._augmenter = augmenter if self.augmenting else None
        self.prefetching = self.augmenting and bool(prefetch)
        self._perm = np.empty(self.n, dtype=np.intp)
        self._Xn: np.ndarray | None = None  # whole normalized set (vector data in memory)
        self._Xperm: np.ndarray | None = None
        self._yperm: np.ndarray | None = None
        self._buffers: list[_Buffers] = []
        self._layout: _ChunkLayout | None = None
        self._slots: list[np.ndarray] = []
        self.note: str | None = None
        nbytes = self.n * self.norm.n_features * self.dtype.itemsize
        in_memory = self.data.in_memory
        if shuffle == "auto":
            shuffle = "random" if in_memory else stream_mode(self.data.nbytes, _is_mapped(self.data.base))
        if shuffle not in ("random", "chunked"):
            raise ValueError(f"shuffle must be auto, random or chunked; got {shuffle!r}")
        self.shuffle = shuffle
        if shuffle == "random" and not self.is_image and 2 * nbytes <= _PRENORMALIZE_BYTES:
            self._Xn = to_network_input(self.data, norm_mean, norm_std, self.dtype)
            self._Xperm = np.empty_like(self._Xn)
            self._yperm = np.empty_like(self.y)
            return
        n_buf = 2 if self.prefetching else 1
        self._buffers = [
            _Buffers(self.data, self.batch_size, self.norm.n_features, self.dtype, self.augmenting)
            for _ in range(n_buf)
        ]
        if shuffle == "chunked":
            rows = max(self.batch_size, int(chunk_bytes) // max(1, self.data.row_bytes))
            self._layout = _ChunkLayout(self.data, block_bytes, min(rows, self.n))
            cap = min(self._layout.buffer_rows, self.n)
            n_slots = 2 if cap < self.n else 1  # one group holds the whole set: nothing to prefetch
            self._slots = [np.empty((cap, *self.data.sample_shape), self.data.dtype) for _ in range(n_slots)]
            self.note = (
                f"The training set ({format_bytes(self.data.nbytes)}) is streamed from the disk cache in "
                f"shuffled chunks of {format_bytes(cap * self.data.row_bytes)}: each batch mixes samples "
                f"of one chunk (see README, Memory)."
            )

    def __len__(self) -> int:
        return self.n_batches

    @property
    def buffer_bytes(self) -> int:
        """Bytes of the buffers this pipeline holds (batches, chunk slots, a normalized set)."""
        total = sum(b.nbytes for b in self._slots)
        for buf in self._buffers:
            total += sum(a.nbytes for a in (buf.raw, buf.unit, buf.aug, buf.out, buf.y) if a is not None)
        for a in (self._Xn, self._Xperm, self._yperm):
            total += 0 if a is None else a.nbytes
        return total + self._perm.nbytes

    def epoch(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """One pass over the training set in a fresh seeded order."""
        if self._layout is not None:
            order = _ChunkedOrder(self.data, self._layout, self._slots, self._rng, prefetch=True)
        else:
            self._perm[:] = self._rng.permutation(self.n)
            if self._Xn is not None:
                return self._epoch_prenormalized()
            order = _RandomOrder(self.data, self._perm)
        if self.prefetching:
            return self._epoch_threaded(order)
        return self._epoch_gathered(order)

    def epoch_order(self) -> np.ndarray:
        """The set positions ``(n,)`` the next epoch would visit, in order, without using the
        shuffle generator (a copy of it is used)."""
        rng = np.random.Generator(type(self._rng.bit_generator)())
        rng.bit_generator.state = self._rng.bit_generator.state
        if self._layout is not None:
            return _ChunkedOrder(self.data, self._layout, self._slots, rng, prefetch=False).order
        return rng.permutation(self.n)

    # ------------------------------------------------------------------ variants
    def _epoch_prenormalized(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        Xp, yp = self._Xperm, self._yperm
        np.take(self._Xn, self._perm, axis=0, out=Xp, mode="clip")
        np.take(self.y, self._perm, axis=0, out=yp, mode="clip")
        bs = self.batch_size
        for start in range(0, self.n, bs):
            yield Xp[start : start + bs], yp[start : start + bs]

    def _fill(self, buf: _Buffers, order, start: int) -> int:
        stop = min(start + self.batch_size, self.n)
        nb = stop - start
        raw = buf.raw[:nb]
        order.gather(start, stop, raw, buf.y[:nb])
        if self._augmenter is None:
            self.norm.from_raw(raw, buf.out)
        else:
            unit = buf.unit[:nb]
            if np.issubdtype(raw.dtype, np.integer):
                np.divide(raw, np.float32(255.0), out=unit)
            else:  # float images are already on the 0..1 scale
                np.copyto(unit, raw, casting="unsafe")
            aug = self._augmenter.apply(unit, out=buf.aug[:nb])
            self.norm.from_unit_float(aug.reshape(nb, -1), buf.out)
        return nb

    def _epoch_gathered(self, order) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        buf = self._buffers[0]
        try:
            for start in range(0, self.n, self.batch_size):
                nb = self._fill(buf, order, start)
                yield buf.out[:nb], buf.y[:nb]
        finally:
            order.close()

    def _epoch_threaded(self, order) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Double buffering: a producer thread fills one buffer while the caller trains on the other."""
        free: queue.SimpleQueue = queue.SimpleQueue()
        ready: queue.SimpleQueue = queue.SimpleQueue()
        for b in self._buffers:
            free.put(b)
        stop = threading.Event()
        bs = self.batch_size

        def produce() -> None:
            try:
                for start in range(0, self.n, bs):
                    buf = free.get()
                    if buf is None or stop.is_set():
                        return
                    nb = self._fill(buf, order, start)
                    ready.put((buf, nb))
            except BaseException as exc:  # handed to the consumer, re-raised there
                ready.put(exc)

        worker = threading.Thread(target=produce, name="reglab-batches", daemon=True)
        worker.start()
        try:
            for _ in range(self.n_batches):
                item = ready.get()
                if isinstance(item, BaseException):
                    raise item
                buf, nb = item
                yield buf.out[:nb], buf.y[:nb]
                free.put(buf)
        finally:
            stop.set()
            free.put(None)
            worker.join()
            order.close()


def _is_mapped(base: Samples) -> bool:
    """True for a memory map (its pages come from the page cache); False for an ArrayFile."""
    return isinstance(base, np.ndarray)
