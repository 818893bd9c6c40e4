"""Mini-batches of a training set as network input, and whole sets as network input for evaluation.

The network sees ``(features - norm_mean) * (1 / norm_std)`` where ``features`` is the
flattened sample, images first scaled to 0..1 (``uint8 / 255``). Everything here writes
into buffers allocated once, so the per-batch cost is a few ufunc calls:

- vector data (2-D sets, ``.npz`` vectors): the whole training set is normalized once;
  each epoch gathers it in permuted order into a second buffer with one ``np.take`` and
  batches are contiguous slices of that buffer (no per-batch gathering at all);
- image data (``uint8 (n, H, W, C)``): each batch is gathered with
  ``np.take(X, idx, axis=0, out=buf, mode="clip")``; without augmentation it is
  normalized straight from ``uint8`` (scale and offset folded into two ufunc calls); with
  augmentation it is scaled to float32 0..1, augmented, flattened and normalized. With
  ``prefetch`` (the default) a background thread prepares the next augmented batch while
  the current one trains (double buffering; NumPy releases the GIL inside its loops).
  Prefetching only pays when a core is free for that thread: when BLAS already runs a
  thread on every core, the producer and BLAS's threads take cores from each other (and
  BLAS's threads wait for the slowest one at the end of every product). The trainer
  therefore trains augmented runs with one BLAS thread, and asks for ``prefetch=False``
  (the batch is then prepared in the calling thread) when no core is left for the producer.

Reproducibility: the permutation is drawn from the shuffle generator at the start of each
epoch, in the calling thread; the augmenter's generator is used by one thread (the producer,
or the caller without prefetch) strictly in batch order, so the batches do not depend on
thread timing, and prefetching or not gives the same batches.

Yielded batches are *views into reused buffers*: they are valid until the next batch is
requested. Copy them to keep them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import numpy as np

from engine.dataset import ArraySet

# Vector training sets up to this size are normalized once and kept (twice: plain and
# permuted); larger ones are gathered and normalized batch by batch.
_PRENORMALIZE_BYTES = 256 * 2**20
# Evaluation sets whose network input fits in this many bytes are converted once and cached.
_EVAL_CACHE_BYTES = 64 * 2**20
EVAL_CHUNK = 4096  # the network evaluates in chunks of this size too


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
    X: np.ndarray, norm_mean: np.ndarray, norm_std: np.ndarray, dtype: str | np.dtype = "float32"
) -> np.ndarray:
    """Whole set X ``(n, ...)`` -> a new ``(n, n_features)`` array in dtype (never augmented)."""
    norm = Normalizer(norm_mean, norm_std, dtype)
    out = np.empty((X.shape[0], norm.n_features), dtype=norm.dtype)
    for start in range(0, X.shape[0], EVAL_CHUNK):
        stop = min(start + EVAL_CHUNK, X.shape[0])
        norm.from_raw(X[start:stop], out[start:stop])
    return out


def iter_network_input(
    X: np.ndarray,
    norm_mean: np.ndarray,
    norm_std: np.ndarray,
    dtype: str | np.dtype = "float32",
    chunk_size: int = EVAL_CHUNK,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(start, stop, F)`` with F ``(stop - start, n_features)`` the network input of
    ``X[start:stop]``; F is a view into one reused buffer (valid until the next chunk)."""
    norm = Normalizer(norm_mean, norm_std, dtype)
    buf = np.empty((min(chunk_size, max(X.shape[0], 1)), norm.n_features), dtype=norm.dtype)
    for start in range(0, X.shape[0], chunk_size):
        stop = min(start + chunk_size, X.shape[0])
        yield start, stop, norm.from_raw(X[start:stop], buf)


class EvalSet:
    """One labelled set evaluated in inference mode, never augmented.

    Small sets are converted to network input once and cached; large ones are converted
    chunk by chunk on every call (so a big image dev set does not double its memory).
    """

    def __init__(
        self,
        data: ArraySet,
        norm_mean: np.ndarray,
        norm_std: np.ndarray,
        dtype: str | np.dtype = "float32",
        chunk_size: int = EVAL_CHUNK,
    ):
        self.X = data.X
        self.y = np.asarray(data.y, dtype=np.int64)
        self.n = len(data)
        self._mean, self._std, self._dtype = norm_mean, norm_std, np.dtype(dtype)
        self.chunk_size = int(chunk_size)
        n_features = int(np.asarray(norm_mean).size)
        self._cached: np.ndarray | None = None
        if self.n * n_features * self._dtype.itemsize <= _EVAL_CACHE_BYTES:
            self._cached = to_network_input(self.X, norm_mean, norm_std, self._dtype)

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
        for start, stop, F in iter_network_input(self.X, self._mean, self._std, self._dtype, self.chunk_size):
            loss, acc = net.evaluate(F, self.y[start:stop])
            k = stop - start
            loss_sum += float(loss) * k
            correct += int(round(float(acc) * k))
        return loss_sum / self.n, correct / self.n


class _Buffers:
    """Preallocated storage of one batch in flight."""

    def __init__(self, X: np.ndarray, bs: int, n_features: int, dtype: np.dtype, augment: bool):
        self.raw = np.empty((bs, *X.shape[1:]), dtype=X.dtype)
        self.unit = np.empty((bs, *X.shape[1:]), dtype=np.float32) if augment else None
        self.aug = np.empty((bs, *X.shape[1:]), dtype=np.float32) if augment else None
        self.out = np.empty((bs, n_features), dtype=dtype)
        self.y = np.empty(bs, dtype=np.int64)


class BatchPipeline:
    """Shuffled mini-batches of one training set, as ``(xb (b, n_features), yb (b,) int64)`` views.

    data: the training ArraySet (uint8 NHWC images or float vectors); batch_size ≥ len(data)
    gives one full batch per epoch. shuffle_rng draws one permutation per epoch.
    augmenter: an ``engine.augment.Augmenter`` (or anything with ``.enabled`` and
    ``.apply(batch, out=None)``); used for image data only and only when enabled.
    prefetch: augmented batches are prepared one ahead in a background thread (True) or in
    the calling thread when requested (False); the batches are the same either way.
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
    ):
        self.X = data.X
        self.y = np.asarray(data.y, dtype=np.int64)
        self.n = len(data)
        if self.n == 0:
            raise ValueError("the training set is empty")
        self.batch_size = int(min(batch_size, self.n))
        self.n_batches = -(-self.n // self.batch_size)
        self.is_image = self.X.ndim == 4
        self.norm = Normalizer(norm_mean, norm_std, dtype)
        self.dtype = self.norm.dtype
        self._rng = shuffle_rng
        self.augmenting = bool(
            self.is_image and augmenter is not None and getattr(augmenter, "enabled", False)
        )
        self._augmenter = augmenter if self.augmenting else None
        self.prefetching = self.augmenting and bool(prefetch)
        self._perm = np.empty(self.n, dtype=np.intp)
        self._Xn: np.ndarray | None = None  # whole normalized set (vector data)
        self._Xperm: np.ndarray | None = None
        self._yperm: np.ndarray | None = None
        nbytes = self.n * self.norm.n_features * self.dtype.itemsize
        if not self.is_image and 2 * nbytes <= _PRENORMALIZE_BYTES:
            self._Xn = to_network_input(self.X, norm_mean, norm_std, self.dtype)
            self._Xperm = np.empty_like(self._Xn)
            self._yperm = np.empty_like(self.y)
            self._buffers: list[_Buffers] = []
        else:
            n_buf = 2 if self.prefetching else 1
            self._buffers = [
                _Buffers(self.X, self.batch_size, self.norm.n_features, self.dtype, self.augmenting)
                for _ in range(n_buf)
            ]

    def __len__(self) -> int:
        return self.n_batches

    def epoch(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """One pass over the training set in a fresh seeded order."""
        self._perm[:] = self._rng.permutation(self.n)
        if self._Xn is not None:
            return self._epoch_prenormalized()
        if self.prefetching:
            return self._epoch_threaded()
        return self._epoch_gathered()

    # ------------------------------------------------------------------ variants
    def _epoch_prenormalized(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        Xp, yp = self._Xperm, self._yperm
        np.take(self._Xn, self._perm, axis=0, out=Xp, mode="clip")
        np.take(self.y, self._perm, axis=0, out=yp, mode="clip")
        bs = self.batch_size
        for start in range(0, self.n, bs):
            yield Xp[start : start + bs], yp[start : start + bs]

    def _fill(self, buf: _Buffers, idx: np.ndarray) -> int:
        nb = idx.shape[0]
        raw = buf.raw[:nb]
        np.take(self.X, idx, axis=0, out=raw, mode="clip")
        np.take(self.y, idx, axis=0, out=buf.y[:nb], mode="clip")
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

    def _epoch_gathered(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        buf = self._buffers[0]
        bs = self.batch_size
        for start in range(0, self.n, bs):
            nb = self._fill(buf, self._perm[start : start + bs])
            yield buf.out[:nb], buf.y[:nb]

    def _epoch_threaded(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Double buffering: a producer thread fills one buffer while the caller trains on the other."""
        free: queue.SimpleQueue = queue.SimpleQueue()
        ready: queue.SimpleQueue = queue.SimpleQueue()
        for b in self._buffers:
            free.put(b)
        stop = threading.Event()
        perm, bs = self._perm, self.batch_size

        def produce() -> None:
            try:
                for start in range(0, self.n, bs):
                    buf = free.get()
                    if buf is None or stop.is_set():
                        return
                    nb = self._fill(buf, perm[start : start + bs])
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
