"""How many threads NumPy's BLAS uses, read and set at run time (OpenBLAS only, via ctypes).

NumPy's wheels bundle OpenBLAS, which starts one thread per core and splits every large
enough matrix product across them. On a 2-core machine that is the right choice for big
products on an otherwise idle machine, and a bad one when the products are small or when
another thread or program wants a core: OpenBLAS's threads busy-wait for each other at the
end of every product, so a product whose second thread is not scheduled waits for a whole
scheduler time slice. Measured on the 2-core build machine with two other programs running:
a 2-128-128-2 training step took 69 ms with 2 BLAS threads against 0.36 ms with 1.

No new dependency: the bundled library is found among the loaded shared objects (or in
NumPy's own library folder) and its ``openblas_set_num_threads`` / ``openblas_get_num_threads``
are called through ctypes; symbol prefixes and suffixes of the ``scipy-openblas`` builds
(``scipy_openblas_set_num_threads64_``) are handled. With any other BLAS (MKL, Accelerate, …)
every function here is a no-op: :func:`threads` returns None and nothing changes.

The setting is process-wide: it affects every thread of the process.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import sys
import threading
from collections.abc import Iterator

import numpy as np

_lock = threading.Lock()
_api: tuple | None = None  # (get, set) ctypes functions, or () when no OpenBLAS was found
_default: int | None = None  # the thread count found at first use (the library's own choice)


def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _candidate_paths() -> list[str]:
    paths: list[str] = []
    try:  # Linux: the libraries actually loaded into this process
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                parts = line.rstrip("\n").split(maxsplit=5)
                path = parts[5] if len(parts) == 6 else ""
                if "openblas" in os.path.basename(path).lower() and path not in paths:
                    paths.append(path)
    except OSError:
        pass
    if not paths:  # macOS / Windows wheels keep the library next to the numpy package
        root = os.path.dirname(os.path.dirname(np.__file__))
        for folder in ("numpy.libs", os.path.join("numpy", ".dylibs"), os.path.join("numpy", ".libs")):
            paths += sorted(glob.glob(os.path.join(root, folder, "*openblas*")))
    return paths


def _find() -> tuple:
    for path in _candidate_paths():
        try:
            lib = ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 0) | ctypes.RTLD_GLOBAL)
        except OSError:
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
        for prefix in ("scipy_", ""):
            for suffix in ("64_", "", "_64"):
                get = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}", None)
                put = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    get.restype, get.argtypes = ctypes.c_int, []
                    put.restype, put.argtypes = None, [ctypes.c_int]
                    return (get, put)
    return ()


def _functions() -> tuple:
    global _api, _default
    if _api is None:
        with _lock:
            if _api is None:
                api = () if sys.platform == "emscripten" else _find()
                _default = int(api[0]()) if api else None
                _api = api
    return _api


def threads() -> int | None:
    """Threads OpenBLAS uses now; None when NumPy's BLAS is not a controllable OpenBLAS."""
    api = _functions()
    return int(api[0]()) if api else None


def default_threads() -> int | None:
    """Threads OpenBLAS used when this module first looked (its own choice, or OPENBLAS_NUM_THREADS)."""
    _functions()
    return _default


def set_threads(n: int | None) -> int | None:
    """Use n BLAS threads (None: leave as is); returns the previous count (None if not controllable)."""
    api = _functions()
    if not api:
        return None
    with _lock:
        previous = int(api[0]())
        if n is not None and int(n) != previous:
            api[1](max(1, int(n)))
    return previous


@contextlib.contextmanager
def limited(n: int | None) -> Iterator[int | None]:
    """``with limited(1): ...`` runs the block with n BLAS threads and restores the count after."""
    previous = set_threads(n)
    try:
        yield previous
    finally:
        if n is not None and previous is not None:
            set_threads(previous)
