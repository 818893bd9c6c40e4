"""How many threads NumPy's BLAS uses, read and limited at run time through ``threadpoolctl``.

NumPy's wheels bundle OpenBLAS, which starts one thread per core and splits every large
enough matrix product across them. On a 2-core machine that is the right choice for big
products on an otherwise idle machine, and a bad one when the products are small or when
another thread or program wants a core: OpenBLAS's threads busy-wait for each other at the
end of every product, so a product whose second thread is not scheduled waits for a whole
scheduler time slice. Measured on the 2-core build machine with two other programs running:
a 2-128-128-2 training step took 69 ms with 2 BLAS threads against 0.36 ms with 1.

``threadpoolctl`` finds and drives every BLAS loaded in the process (OpenBLAS in its
``scipy-openblas`` and distribution builds, MKL, BLIS, FlexiBLAS, whatever their threading
layer). With a BLAS it cannot control (Accelerate on macOS) :func:`threads` returns None and
:func:`limited` changes nothing. The controller is built once, on first use, after NumPy
(and so its BLAS) is loaded: building it scans the loaded libraries (~1 ms); entering and
leaving :func:`limited` afterwards costs ~10 µs.

The setting is process-wide: it affects every thread of the process.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np  # noqa: F401  (loads NumPy's BLAS before the controller looks for it)

_lock = threading.Lock()
_controller: Any = None  # threadpoolctl.ThreadpoolController restricted to BLAS libraries


def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _blas() -> Any:
    """The BLAS part of a ThreadpoolController, built once (it scans the loaded libraries)."""
    global _controller
    if _controller is None:
        with _lock:
            if _controller is None:
                from threadpoolctl import ThreadpoolController  # lazy: ~30 ms to import

                _controller = ThreadpoolController().select(user_api="blas")
    return _controller


def threads() -> int | None:
    """Threads the BLAS uses now (the largest count when several are loaded); None when no
    BLAS that threadpoolctl can control is loaded."""
    counts = [lib.num_threads for lib in _blas().lib_controllers]
    return max(counts) if counts else None


@contextlib.contextmanager
def limited(n: int | None) -> Iterator[int | None]:
    """``with limited(1): ...`` runs the block with n BLAS threads and restores the previous
    counts after; None leaves them alone. Yields the count in force before (see threads())."""
    previous = threads()
    if n is None or previous is None:
        yield previous
        return
    with _blas().limit(limits=max(1, int(n))):
        yield previous


def set_threads(n: int) -> None:
    """Use n BLAS threads from now on, for the rest of the process (no-op without a BLAS that
    threadpoolctl controls)."""
    if threads() is not None:
        _blas().limit(limits=max(1, int(n)))
