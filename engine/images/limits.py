"""Size checks made before a loader allocates: what a file declares against its own size
and against the memory this machine can still give.

Every loader of untrusted data calls :func:`require_memory` with the bytes it is about to
allocate (the declared array sizes, the decoded image batch) and :func:`check_ratio` for
compressed members, so a 100-byte file that declares terabytes, or a zip bomb, is refused
with one line before anything large is touched. Available memory is read from
``/proc/meminfo`` (``MemAvailable``) and, inside a container, the cgroup v2 limit; elsewhere
from ``os.sysconf``. Reading them costs microseconds and keeps ``engine`` free of psutil.
"""

from __future__ import annotations

import os

from engine.errors import DataError

# Deflate cannot compress better than about 1032:1, but real image data stays far below
# 100:1 (MNIST's idx files compress ~5:1, CIFAR ~1.1:1). A member above this ratio that is
# also large is treated as a decompression bomb.
MAX_COMPRESSION_RATIO = 200
RATIO_CHECK_FLOOR = 64 << 20  # members smaller than this (uncompressed) are never refused for ratio


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", "rb") as fh:
            for line in fh:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_available() -> int | None:
    """Room left under a cgroup v2 memory limit (containers), or None when unlimited/unknown."""
    try:
        with open("/sys/fs/cgroup/memory.max", "rb") as fh:
            limit = fh.read().strip()
        if limit == b"max":
            return None
        with open("/sys/fs/cgroup/memory.current", "rb") as fh:
            current = int(fh.read().strip())
        return max(0, int(limit) - current)
    except (OSError, ValueError):
        return None


def _sysconf_available() -> int | None:
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def available_memory() -> int | None:
    """Bytes of memory this process can still allocate without swapping, or None if unknown."""
    found = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    if not found:
        sc = _sysconf_available()
        return sc
    return min(found)


def human_bytes(n: int | float) -> str:
    """``1536`` -> ``'1.5 KB'`` (powers of 1024, one decimal)."""
    n = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{int(n)} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"  # pragma: no cover - loop always returns


def require_memory(n_bytes: int, what: str) -> None:
    """Raise DataError when allocating ``n_bytes`` for ``what`` would not fit in available memory."""
    avail = available_memory()
    if avail is not None and n_bytes > avail:
        raise DataError(
            f"{what}: needs {human_bytes(n_bytes)} of memory but only {human_bytes(avail)} is available"
        )


def check_ratio(uncompressed: int, compressed: int, what: str) -> None:
    """Raise DataError when a large member inflates more than MAX_COMPRESSION_RATIO times."""
    if uncompressed <= RATIO_CHECK_FLOOR:
        return
    ratio = uncompressed / max(1, compressed)
    if ratio > MAX_COMPRESSION_RATIO:
        raise DataError(
            f"{what}: inflates {human_bytes(compressed)} to {human_bytes(uncompressed)} "
            f"({ratio:.0f}:1), which looks like a decompression bomb; refused"
        )
