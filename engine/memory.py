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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
