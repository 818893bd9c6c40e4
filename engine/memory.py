"""Memory: what a run holds in RAM, the machine's limit, and the check that refuses a run too big.

The budget of a run
-------------------
Images are decoded once into a disk cache (:mod:`engine.images.cache`): a raw uint8 ``.npy``
per source, memory-mapped read-only (or, under an address-space cap, read with ``pread``).
The dataset therefore stays on disk and in the kernel's page cache, which the kernel frees
whenever it needs the memory; train/dev/test sets are index arrays into it, never copies.
What a run holds in its own (anonymous) memory is bounded by the settings, not the dataset:

- **model**: parameters, gradients, optimizer state (SGD 1, momentum 2, Adam 3 buffers of
  the parameter count), the copies the trainer keeps (last finite weights, best weights with
  early stopping's restore) and the L1/L2 scratch buffer;
- **batches**: the batch pipeline's buffers (the batch as uint8 and as float network input,
  two float images more with augmentation, all twice when a producer thread prefetches) and
  the network's per-batch activations, multipliers, dropout masks and random draws;
- **evaluation**: train/dev evaluation streams the data in chunks of at most
  :data:`EVAL_CHUNK_BYTES` of network input (a set whose whole input is under
  ``engine.batches._EVAL_CACHE_BYTES`` is converted once and kept), plus the activations of
  one chunk;
- **data**: what is held in RAM: generated sets (``builtin:`` 2-D sets as float64, ``shapes``
  as uint8 and its float32 generation buffers), arrays that a format loads whole on the first
  load, and the labels and index arrays of every set (8 bytes per sample each);
- **chunk buffer**: only when the training set is streamed (see below), two slots of
  :data:`CHUNK_BUFFER_BYTES`.

Streaming
---------
A memory-mapped file that fits in the page cache can be read in any order at memory speed;
one much larger than RAM cannot (every random row is a disk read, and pages evict each other).
A training set is therefore *streamed in shuffled chunks* when its bytes exceed
:data:`STREAM_FRACTION` of the machine's memory (``MemTotal``, or a smaller cgroup limit), or
when the file cannot be mapped whole (see :func:`can_map`). ``REGLAB_SHUFFLE=chunked`` or
``=random`` forces one mode. How the chunked shuffle trades quality for memory is described
in :mod:`engine.batches`.

The limit
---------
:func:`memory_limit` is the smallest of: ``MemAvailable`` (``/proc/meminfo``, else
``os.sysconf``), the free part of a cgroup memory limit (v2 ``memory.max``, v1
``memory.limit_in_bytes``, less usage, counting inactive page cache as free), and the unused
part of ``RLIMIT_AS``. :func:`check_run_memory` refuses a run whose estimate exceeds it, with
one line naming both numbers and the parts.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import InputError

CHUNK_BUFFER_BYTES = 64 * 2**20  # one slot of the chunked shuffle; two are held
CHUNK_BLOCK_BYTES = 2 * 2**20  # contiguous file block: the unit of the chunk-order shuffle
EVAL_CHUNK_BYTES = 16 * 2**20  # network input of one evaluation chunk
STREAM_FRACTION = 0.25  # stream a training set larger than this share of the machine's memory
MAP_FRACTION = 0.5  # map a file only if it takes at most this share of the free address space
_UNLIMITED = 1 << 62


# ---------------------------------------------------------------- reading the machine


def _meminfo() -> dict[str, int]:
    """``/proc/meminfo`` values in bytes ({} where there is none)."""
    out: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                m = re.match(r"(\w+):\s+(\d+)\s*kB", line)
                if m:
                    out[m.group(1)] = int(m.group(2)) * 1024
    except OSError:
        pass
    return out


def _sysconf(name: str) -> int | None:
    try:
        v = os.sysconf(name)
    except (ValueError, OSError, AttributeError):
        return None
    return int(v) if v and v > 0 else None


def total_memory() -> int:
    """Physical memory of the machine, or of a smaller cgroup limit, in bytes."""
    total = _meminfo().get("MemTotal")
    if total is None:
        pages, size = _sysconf("SC_PHYS_PAGES"), _sysconf("SC_PAGE_SIZE")
        total = pages * size if pages and size else 8 * 2**30
    cg = _cgroup_limit()
    return min(total, cg[0]) if cg else total


def available_memory() -> int:
    """Memory a new allocation can get without swapping, in bytes (MemAvailable)."""
    info = _meminfo()
    if "MemAvailable" in info:
        return info["MemAvailable"]
    pages, size = _sysconf("SC_AVPHYS_PAGES"), _sysconf("SC_PAGE_SIZE")
    return pages * size if pages and size else total_memory()


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if text == "max":
        return _UNLIMITED
    try:
        return int(text)
    except ValueError:
        return None


def _stat_value(path: Path, key: str) -> int:
    try:
        for line in path.read_text(encoding="ascii").splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    return 0


def _cgroup_limit() -> tuple[int, int] | None:
    """``(limit, free)`` of the tightest cgroup memory limit of this process, or None.

    free = limit − usage + inactive page cache (which the kernel reclaims before failing).
    Walks from the process's cgroup up to the root, v2 (``memory.max``) and v1
    (``memory.limit_in_bytes``) alike.
    """
    try:
        lines = Path("/proc/self/cgroup").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    best: tuple[int, int] | None = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        if controllers == "":  # v2 unified hierarchy
            root, names = Path("/sys/fs/cgroup"), ("memory.max", "memory.current", "inactive_file")
        elif "memory" in controllers.split(","):
            root = Path("/sys/fs/cgroup/memory")
            names = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
        else:
            continue
        rel_path = Path(rel.lstrip("/"))
        for folder in [root / rel_path, *[root / p for p in rel_path.parents]]:
            limit = _read_int(folder / names[0])
            if limit is None or limit >= _UNLIMITED // 2 or limit >= 2**60:
                continue
            usage = _read_int(folder / names[1]) or 0
            inactive = _stat_value(folder / "memory.stat", names[2])
            free = max(0, limit - usage + inactive)
            if best is None or free < best[1]:
                best = (limit, free)
    return best


def _address_space_headroom() -> int | None:
    """Unused part of RLIMIT_AS (soft) in bytes, or None when unlimited / unknown."""
    try:
        import resource
    except ImportError:
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    used = 0
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmSize:"):
                used = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError):
        pass
    return max(0, soft - used)


@dataclass(frozen=True)
class MemoryLimit:
    """How much memory a run may take: ``bytes``, and ``name`` of the binding limit."""

    bytes: int
    name: str


def memory_limit() -> MemoryLimit:
    """The smallest of available memory, a cgroup limit's free part and RLIMIT_AS headroom."""
    options = [MemoryLimit(available_memory(), "available")]
    cg = _cgroup_limit()
    if cg is not None:
        options.append(MemoryLimit(cg[1], "free under the cgroup memory limit"))
    headroom = _address_space_headroom()
    if headroom is not None:
        options.append(MemoryLimit(headroom, "free under the address-space limit (RLIMIT_AS)"))
    return min(options, key=lambda m: m.bytes)


def can_map(nbytes: int) -> bool:
    """Whether a file of ``nbytes`` may be memory-mapped whole: always without an RLIMIT_AS
    cap; under one, only when it takes at most :data:`MAP_FRACTION` of the unused address
    space (the rest is needed for the run's own allocations)."""
    headroom = _address_space_headroom()
    return headroom is None or nbytes <= MAP_FRACTION * headroom


def stream_mode(nbytes: int, mapped: bool) -> str:
    """``"chunked"`` or ``"random"``: how a training set of ``nbytes`` on disk is shuffled.

    Chunked when it cannot be mapped or is larger than :data:`STREAM_FRACTION` of the
    machine's memory; ``REGLAB_SHUFFLE`` = ``chunked`` / ``random`` overrides. Depends only on
    the data size, the machine and that variable (never on load), so a seed gives the same
    batches on a machine every time.
    """
    forced = os.environ.get("REGLAB_SHUFFLE", "").strip().lower()
    if forced in ("chunked", "random"):
        return forced
    if not mapped:
        return "chunked"
    return "chunked" if nbytes > STREAM_FRACTION * total_memory() else "random"


def format_bytes(n: float) -> str:
    """``41.2 GB``, ``350 MB``, ``12 kB`` (binary multiples, as free(1) and the window show)."""
    n = float(n)
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{int(n)} bytes"


def array_bytes(shape, dtype) -> int:
    return int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize


# ---------------------------------------------------------------- the estimate

PARTS = ("model", "batches", "evaluation", "data", "chunk buffer")
_FIX = {  # the setting to change when a part is the largest
    "model": "model.hidden",
    "batches": "training.batch_size (or data.image_size)",
    "evaluation": "data.image_size",
    "data": "data.n_samples",
    "chunk buffer": "data.image_size",
}
_OPTIMIZER_SLOTS = {"sgd": 1, "momentum": 2, "adam": 3}  # buffers of the parameter count
_TRAIN_EVAL_MAX = 10_000  # engine.trainer.TRAIN_EVAL_MAX (not imported: keeps this module light)
_EVAL_CACHE_BYTES = 64 * 2**20  # engine.batches._EVAL_CACHE_BYTES
_PRENORMALIZE_BYTES = 256 * 2**20  # engine.batches._PRENORMALIZE_BYTES
_PREDICT_CHUNK = 4096  # engine.network._PREDICT_CHUNK
_INDEX_BYTES_PER_SAMPLE = 8 * 4  # source labels, set labels, set index, split record (int64 each)
_EPOCH_BYTES_PER_SAMPLE = 8 * 3  # per epoch: permutation, source rows and labels in that order


class RunTooLarge(InputError):
    """The run (or its data) needs more memory than the machine or a limit allows."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run must hold in RAM, per part (see the module docstring) and in total."""

    parts: dict[str, int]
    total: int

    def describe(self) -> str:
        """``41.2 GB (model 2.1 GB, batches 120 MB, evaluation 18 MB, data 39.0 GB)``."""
        return f"{format_bytes(self.total)} ({self.parts_text()})"

    def parts_text(self) -> str:
        """``model 2.1 GB, batches 120 MB, …`` (parts that are not zero)."""
        return ", ".join(f"{k} {format_bytes(v)}" for k, v in self.parts.items() if v > 0)

    def largest(self) -> str:
        return max(self.parts, key=lambda k: self.parts[k])


def estimate_run_memory(
    cfg,
    n_features: int,
    n_classes: int,
    n_train: int,
    n_dev: int,
    in_memory_bytes: int,
    *,
    n_test: int = 0,
    sample_bytes: int | None = None,
    on_disk_bytes: int = 0,
    is_image: bool = False,
) -> MemoryEstimate:
    """What a run of ``cfg`` holds in RAM, per part, in bytes (no allocation, microseconds).

    n_features: network inputs; n_train / n_dev / n_test: set sizes; in_memory_bytes: data
    held in memory (generated sets, arrays a format loads whole; their loading peak);
    is_image: uint8 images (augmentation applies); sample_bytes: one stored sample (default
    n_features for images, 8 × n_features for float64 vectors); on_disk_bytes: the training samples read from the disk
    cache (a chunk buffer is counted when they would be streamed).
    """
    it = 8 if cfg.training.dtype == "float64" else 4
    F, C = max(1, int(n_features)), max(2, int(n_classes))
    n_train, n_dev, n_test = max(0, int(n_train)), max(0, int(n_dev)), max(0, int(n_test))
    image = bool(is_image)
    sample_bytes = int(sample_bytes) if sample_bytes is not None else (F if image else 8 * F)
    hidden = [int(h) for h in cfg.model.hidden]
    sizes = [F, *hidden, C]
    n_weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    n_params = n_weights + sum(sizes[1:])
    reg, es = cfg.regularization, cfg.early_stopping

    # model: params, grads, optimizer state, last-finite copy (+ one in flight), best copy,
    # the compressed model.npz buffer at the end, and the penalty scratch
    copies = 2 + _OPTIMIZER_SLOTS.get(cfg.optimizer.name, 3) + 2 + 1
    copies += 1 if (es.enabled and es.restore_best) else 0
    model = copies * n_params * it + (n_weights * it if (reg.l2 or reg.l1) else 0)

    # batches: pipeline buffers and the network's per-batch buffers
    bs = max(1, min(int(cfg.training.batch_size), max(n_train, 1)))
    augment = image and _augmenting(cfg.augment)
    in_memory_vectors = not image and on_disk_bytes == 0
    if in_memory_vectors and 2 * n_train * F * it <= _PRENORMALIZE_BYTES:
        pipeline = 2 * n_train * F * it + 8 * n_train  # the normalized set, its permuted copy, labels
    else:
        per = bs * (sample_bytes + F * it + 8) + (2 * bs * F * 4 if augment else 0)
        pipeline = per * (2 if augment else 1)
        if augment:
            hw = F // 3 if F % 3 == 0 else F
            pipeline += bs * (F * 4 + hw * 20)  # the augmenter's geometry and noise buffers
    keeps = list(cfg.keep_probs()) if hasattr(cfg, "keep_probs") else [1.0] * len(hidden)
    act = 0
    for h, kp in zip(hidden, keeps + [1.0] * (len(hidden) - len(keeps))):
        act += bs * h * (2 * it + 2)  # activation, multiplier, keep and live masks
        if kp < 1.0:
            act += bs * h * (2 + it)  # random draws, float mask (tanh/sigmoid)
    act += 3 * bs * C * it
    if reg.input_keep_prob < 1.0:
        act += bs * F * (it + 1 + 2)
    batches = pipeline + act

    # evaluation: sets converted once when small, else one streamed chunk at a time
    rows = max(1, min(_PREDICT_CHUNK, (16 * 2**20) // (F * it)))
    cached, streamed = 0, 0
    for n in (min(n_train, _TRAIN_EVAL_MAX), n_dev, n_test):
        if n * F * it <= _EVAL_CACHE_BYTES:
            cached += n * F * it
        else:
            streamed = max(streamed, rows * (F * it + sample_bytes))
    width = max(sizes[1:])
    evaluation = cached + streamed + 2 * min(_PREDICT_CHUNK, max(rows, 1)) * width * it

    # data: what stays in memory, plus labels and index arrays
    n_all = n_train + n_dev + n_test
    data = int(in_memory_bytes) + n_all * _INDEX_BYTES_PER_SAMPLE + n_train * _EPOCH_BYTES_PER_SAMPLE

    chunk = 0
    if on_disk_bytes and stream_mode(int(on_disk_bytes), can_map(int(on_disk_bytes))) == "chunked":
        chunk = 2 * min(CHUNK_BUFFER_BYTES, n_train * sample_bytes)
        data += n_train * 8 * 4  # the chunk layout and the epoch's group permutations

    parts = {
        "model": model,
        "batches": batches,
        "evaluation": evaluation,
        "data": data,
        "chunk buffer": chunk,
    }
    parts = {k: int(v) for k, v in parts.items()}
    return MemoryEstimate(parts=parts, total=sum(parts.values()))


def _augmenting(aug) -> bool:
    return bool(
        aug.hflip
        or aug.vflip
        or aug.rotate_deg
        or tuple(aug.zoom) != (1.0, 1.0)
        or aug.translate
        or getattr(aug, "crop_padding", 0)
        or aug.noise_std
        or aug.brightness
        or aug.contrast
    )


def check_run_memory(
    cfg,
    n_features: int,
    n_classes: int,
    n_train: int,
    n_dev: int,
    in_memory_bytes: int,
    *,
    limit: MemoryLimit | None = None,
    **options,
) -> MemoryEstimate:
    """:func:`estimate_run_memory`, refused with :class:`RunTooLarge` (an InputError: exit
    status 2 on the command line) when it exceeds :func:`memory_limit`; returns the estimate."""
    est = estimate_run_memory(cfg, n_features, n_classes, n_train, n_dev, in_memory_bytes, **options)
    return _refuse_over(est, limit or memory_limit())


def _refuse_over(est: MemoryEstimate, limit: MemoryLimit) -> MemoryEstimate:
    if est.total > limit.bytes:
        raise RunTooLarge(
            f"this run needs about {format_bytes(est.total)} of memory ({est.parts_text()}), more than the "
            f"{format_bytes(limit.bytes)} {limit.name}; reduce {_FIX[est.largest()]}"
        )
    return est


# ---------------------------------------------------------------- data summaries (no loading)

_2D_PEAK_PER_SAMPLE = 64  # make_2d: float64 (n, 2) plus temporaries, measured peak ≈ 60 bytes
_2D_KEPT_PER_SAMPLE = 24  # X float64 (n, 2) and y int64
_SHAPES_PEAK_PER_PIXEL = 40  # make_shapes: float32 coverage, image and noise buffers (measured 31-39)


@dataclass(frozen=True)
class SourceSummary:
    """One source as :func:`summarize_config` sees it without loading it.

    n: samples (0 when unknown); sample_shape: as stored; itemsize: bytes per stored value;
    in_memory: bytes held in memory while loading it (peak) and after; on_disk: bytes of its
    cache file; parts: per-part sample counts of a pre-split source, else None; to_write:
    bytes the disk cache must still write (0 when a current entry exists).
    """

    source: str
    n: int
    sample_shape: tuple[int, ...]
    itemsize: int
    n_classes: int
    in_memory: int
    on_disk: int
    parts: dict[str, int] | None = None
    to_write: int = 0

    @property
    def is_image(self) -> bool:
        return len(self.sample_shape) == 3


@dataclass(frozen=True)
class DataSummary:
    """What a config's data amount to: the main source and set sizes (see summarize_config)."""

    sources: dict[str, SourceSummary]
    n_train: int
    n_dev: int
    n_test: int

    @property
    def main(self) -> SourceSummary:
        return self.sources["main"]

    @property
    def n_features(self) -> int:
        return int(np.prod(self.main.sample_shape)) if self.main.sample_shape else 0

    @property
    def in_memory_bytes(self) -> int:
        return sum(s.in_memory for s in self.sources.values())

    @property
    def on_disk_bytes(self) -> int:
        """Bytes of the training samples on disk (the share of the main source's cache)."""
        m = self.main
        if not m.on_disk or not m.n:
            return 0
        return int(m.on_disk * min(1.0, self.n_train / m.n))


def _channels(color: str) -> int:
    return 1 if color == "gray" else 3


def summarize_source(source: str, data, seed_offset: int = 0, list_folders: bool = True) -> SourceSummary:
    """Size a source from the data settings, file headers and folder listings (no decoding).

    Generated sets count as in memory; folders as on disk (decoded into the disk cache);
    ``.npz``, MNIST and CIFAR-10 sources as in memory while first loaded (twice the raw
    pixels plus the resized ones), on disk once cached; other files by their size.
    list_folders=False skips listing image folders (their size is then unknown, 0).
    """
    H, W = (int(v) for v in data.image_size)
    c = _channels(data.color)
    image_shape = (H, W, c)
    if source.startswith("builtin:"):
        name = source.split(":", 1)[1]
        n = int(data.n_samples)
        if name == "shapes":
            kept = n * H * W * c + 8 * n
            return SourceSummary(
                source,
                n,
                image_shape,
                1,
                int(data.n_classes),
                max(kept, n * H * W * _SHAPES_PEAK_PER_PIXEL),
                0,
            )
        k = int(data.n_classes) if name in ("spiral", "blobs") else 2
        return SourceSummary(source, n, (2,), 8, k, n * _2D_PEAK_PER_SAMPLE, 0)
    path = Path(os.path.expanduser(source))
    try:
        if path.is_file():
            return _summarize_file(source, path, data, image_shape)
        if path.is_dir():
            return _summarize_folder(source, path, data, image_shape, list_folders)
    except (OSError, ValueError):
        pass  # unreadable: the loader reports it properly
    return SourceSummary(source, 0, image_shape, 1, 2, 0, 0)


def _cached(path: Path, data, files) -> dict | None:
    """The metadata of a fresh cache entry of this source (shape, dtype, classes), or None."""
    from engine.images import cache

    try:
        fp = cache.fingerprint(path, files)
        return cache.entry_info(cache.entry_path(path, tuple(data.image_size), data.color), fp)
    except OSError:
        return None


def _from_cache(source: str, info: dict) -> SourceSummary:
    shape, dtype = tuple(info["shape"]), np.dtype(info["dtype"])
    n = int(shape[0])
    return SourceSummary(
        source,
        n,
        shape[1:],
        dtype.itemsize,
        int(info["n_classes"]),
        0,
        int(np.prod(shape, dtype=np.float64)) * dtype.itemsize,
        info["parts"],
    )


def _summarize_file(source: str, path: Path, data, image_shape) -> SourceSummary:
    out = int(np.prod(image_shape))
    info = _cached(path, data, [path])
    if info is not None:
        return _from_cache(source, info)
    if path.suffix.lower() == ".npz":
        shape, dtype = _npz_member_header(path, "X")
        n = int(shape[0]) if shape else 0
        raw = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize if shape else path.stat().st_size
        if len(shape) == 2:  # feature vectors, stored as float32 (float64 when so stored)
            item = 8 if dtype == np.float64 else 4
            sample, stored = (int(shape[1]),), n * int(shape[1]) * item
        else:
            sample, item, stored = image_shape, 1, n * out
        return SourceSummary(source, n, sample, item, 10, 2 * raw + stored, stored, to_write=stored)
    size = path.stat().st_size
    return SourceSummary(source, 0, image_shape, 1, 2, 2 * size, 0)


def _npz_member_header(path: Path, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of array ``name`` in an .npz, from its .npy header only."""
    import zipfile

    with zipfile.ZipFile(path) as zf, zf.open(f"{name}.npy") as fh:
        version = np.lib.format.read_magic(fh)
        reader = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, _fortran, dtype = reader(fh)
    return tuple(int(v) for v in shape), np.dtype(dtype)


def _summarize_folder(source: str, path: Path, data, image_shape, list_folders: bool = True) -> SourceSummary:
    from engine.images import formats, sources

    out = int(np.prod(image_shape))
    kind = sources.folder_kind(path)
    if kind in ("folder", "presplit") and not list_folders:
        return SourceSummary(source, 0, image_shape, 1, 2, 0, 0)
    if kind in ("folder", "presplit"):
        _kind, classes, dirs, files, _skipped = sources.list_folder(path)
        info = _cached(path, data, [f for fs in files for f in fs])
        if info is not None:
            return _from_cache(source, info)
        n = sum(len(f) for f in files)
        parts = None
        if kind == "presplit":
            parts = dict.fromkeys(("train", "dev", "test"), 0)
            for (part, _c, _d), fs in zip(dirs, files):
                parts[part] += len(fs)
        return SourceSummary(source, n, image_shape, 1, len(classes), 0, n * out, parts, to_write=n * out)
    files = formats.source_files(path)
    info = _cached(path, data, files)
    if info is not None:
        return _from_cache(source, info)
    if kind == "mnist":
        counts = {}
        for prefix, part in (("train", "train"), ("t10k", "test")):
            found = formats._mnist_files(path, prefix)
            if found is not None:
                counts[part] = _idx_count(found[0])
        raw_px = 28 * 28
    else:  # cifar10
        counts = {
            "train": 10_000 * sum((path / f).is_file() for f in formats.CIFAR_TRAIN),
            "test": 10_000 * int((path / formats.CIFAR_TEST).is_file()),
        }
        raw_px = 32 * 32 * 3
    n = sum(counts.values())
    parts = {"train": counts.get("train", 0), "dev": 0, "test": counts.get("test", 0)}
    parts = parts if parts["train"] and parts["test"] else None
    return SourceSummary(source, n, image_shape, 1, 10, 2 * n * raw_px + n * out, n * out, parts, n * out)


def _idx_count(path: Path) -> int:
    import gzip

    with open(path, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    with (gzip.open if gz else open)(path, "rb") as fh:
        head = fh.read(8)
    return int.from_bytes(head[4:8], "big") if len(head) == 8 else 0


def _set_sizes(data, sources: dict[str, SourceSummary]) -> tuple[int, int, int]:
    """n_train, n_dev, n_test the split of these sources would give (rounded)."""
    main = sources["main"]
    fr = [float(v) for v in data.split] + [0.0] * (3 - len(data.split))
    if main.parts is not None:
        train, dev, test = main.parts["train"], main.parts["dev"], main.parts["test"]
        if dev == 0 and "dev" not in sources and fr[0] + fr[1] > 0:
            dev = round(train * fr[1] / (fr[0] + fr[1]))
            train -= dev
    else:
        for i, key in ((1, "dev"), (2, "test")):
            if key in sources:
                fr[i] = 0.0
        total = sum(fr) or 1.0
        train = round(main.n * fr[0] / total)
        dev = round(main.n * fr[1] / total)
        test = main.n - train - dev
    if "dev" in sources:
        dev = sources["dev"].n
    if "test" in sources:
        test = sources["test"].n
    return int(train), int(dev), int(test)


def summarize_config(cfg) -> DataSummary:
    """The data of ``cfg`` sized without loading it (folder listings and file headers only)."""
    d = cfg.data
    sources = {"main": summarize_source(d.source, d, 0)}
    if d.dev_source is not None:
        sources["dev"] = summarize_source(d.dev_source, d, 1)
    if d.test_source is not None:
        sources["test"] = summarize_source(d.test_source, d, 2)
    return DataSummary(sources, *_set_sizes(d, sources))


def summarize_sources(cfg, loaded: dict) -> DataSummary:
    """Like :func:`summarize_config`, from sources already loaded (``{"main": SourceData, ...}``)."""
    from engine.dataset import is_in_memory

    out = {}
    for key, sd in loaded.items():
        X = sd.X
        shape = tuple(int(v) for v in X.shape[1:])
        nbytes = int(np.prod(X.shape, dtype=np.float64)) * np.dtype(X.dtype).itemsize
        mem = is_in_memory(X)
        parts = None
        if sd.presplit is not None:
            parts = {p: int(len(sd.presplit.get(p, ()))) for p in ("train", "dev", "test")}
        out[key] = SourceSummary(
            sd.source,
            int(len(sd.y)),
            shape,
            np.dtype(X.dtype).itemsize,
            len(sd.classes),
            nbytes if mem else 0,
            0 if mem else nbytes,
            parts,
        )
    return DataSummary(out, *_set_sizes(cfg.data, out))


def estimate_for_config(cfg, summary: DataSummary | None = None) -> MemoryEstimate:
    """The run estimate of ``cfg`` (what the window shows next to the settings): from
    ``summary`` when given (e.g. :func:`summarize_sources` of the loaded data, instant), else
    from :func:`summarize_config` (lists folders, reads headers)."""
    s = summary if summary is not None else summarize_config(cfg)
    m = s.main
    return estimate_run_memory(
        cfg,
        s.n_features,
        m.n_classes,
        s.n_train,
        s.n_dev,
        s.in_memory_bytes,
        n_test=s.n_test,
        sample_bytes=int(np.prod(m.sample_shape)) * m.itemsize if m.sample_shape else None,
        on_disk_bytes=s.on_disk_bytes,
        is_image=m.is_image,
    )


def check_config_memory(cfg, summary: DataSummary | None = None) -> MemoryEstimate:
    """Refuse ``cfg`` before any data is generated or decoded when its run cannot fit in
    memory, or its images cannot fit in the disk cache (:class:`RunTooLarge`); returns the
    memory estimate."""
    summary = summary if summary is not None else summarize_config(cfg)
    est = _refuse_over(estimate_for_config(cfg, summary), memory_limit())
    check_cache_space(summary)
    return est


def _free_disk(folder: Path) -> int | None:
    for p in (folder, *folder.parents):
        if p.exists():
            try:
                return shutil.disk_usage(p).free
            except OSError:
                return None
    return None


def check_cache_space(summary: DataSummary, cache_dir=None) -> None:
    """Refuse when the images still to decode do not fit in the disk cache's free space."""
    need = sum(s.to_write for s in summary.sources.values())
    if not need:
        return
    from engine.images.cache import cache_folder

    folder = cache_folder(cache_dir)
    free = _free_disk(folder)
    if free is not None and need > free:
        names = ", ".join(s.source for s in summary.sources.values() if s.to_write)
        raise RunTooLarge(
            f"decoding {names} needs about {format_bytes(need)} of disk for the image cache, more than the "
            f"{format_bytes(free)} free in {folder}; reduce data.image_size or set REGLAB_CACHE_DIR"
        )


def check_data_memory(data) -> None:
    """Refuse data settings whose loading alone cannot fit in memory (before generating them)."""
    d = data
    total = 0
    names = []
    for source, offset in ((d.source, 0), (d.dev_source, 1), (d.test_source, 2)):
        if source is None:
            continue
        s = summarize_source(source, d, offset, list_folders=False)  # folders decode to disk
        total += s.in_memory
        if s.in_memory:
            names.append(source)
    limit = memory_limit()
    if total > limit.bytes:
        what = (
            f"{int(d.n_samples):,} generated samples" if any(n.startswith("builtin:") for n in names) else ""
        )
        raise RunTooLarge(
            f"loading {', '.join(names)}{f' ({what})' if what else ''} needs about {format_bytes(total)} of "
            f"memory, more than the {format_bytes(limit.bytes)} {limit.name}; reduce data.n_samples"
        )


def check_prepared_memory(cfg, data) -> MemoryEstimate:
    """Refuse a run on already prepared data (``engine.dataset.PreparedData``) whose model,
    batches and evaluation cannot fit in what memory is left; the data themselves are
    already held and not counted again."""
    train = data.train
    return check_run_memory(
        cfg,
        data.n_features,
        data.n_classes,
        len(train),
        len(data.dev),
        0,
        n_test=len(data.test),
        sample_bytes=train.row_bytes,
        on_disk_bytes=0 if train.in_memory else train.nbytes,
        is_image=data.is_image,
    )
