"""Decode many image files, in parallel across cores, with progress and cancellation.

Why a process pool fed chunks: Pillow releases the GIL only inside the codec, and the
per-file Python work around it (open, convert, resize, copy) holds it, so a thread pool
barely beats one thread (see /work/shared/performance.md and benchmarks/data_throughput.py).
Processes each decode a chunk of files and send back one uint8 array per chunk.

Start method: never ``fork`` — the window calls this from a QThread, and forking a process
that runs Qt threads can deadlock the child. On Linux we use ``forkserver`` with
:mod:`engine.images.decode` preloaded in the server, so NumPy and Pillow are imported once
and every pool's workers are forked warm: measured pool start-up 0.05 s, against about
1 s for ``spawn`` (each worker re-imports NumPy and Pillow), on the shared 2-core machine.
Elsewhere ``spawn``. If the pool breaks (a worker killed, an unimportable ``__main__``), the
remaining chunks are decoded in-process. Jobs below ``SMALL_JOB`` files are decoded
in-process because a pool costs more than it saves there.

Lifetime: workers die with the process that started them, whatever ends it (``kill -9``
included), and ignore SIGINT/SIGHUP sent to the whole process group: see
:mod:`engine.lifeline`, the pool's initializer. Without it a killed RegLab left the fork
server, the resource tracker and the workers alive, holding its stdout and stderr open.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    BrokenExecutor,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import dataclass

import numpy as np

from engine.errors import Cancelled
from engine.images.decode import channels, decode_chunk
from engine.lifeline import watch_parent

SMALL_JOB = 200  # below this many files decode in-process
MAX_WORKERS = 2  # measured: 2 processes on the 2-core target; more only adds contention here

Progress = Callable[[int, int], None] | None
Cancel = Callable[[], bool] | None


@dataclass
class DecodeResult:
    """Outcome of decoding ``n`` files.

    X: uint8 ``(k, H, W, C)`` in the order of the input paths, skipping failures;
    ok: int64 ``(k,)`` input positions of the decoded files; sizes: int64 ``(k, 2)`` original
    (h, w); failed: ``(position, reason)`` for each file that was skipped.
    """

    X: np.ndarray
    ok: np.ndarray
    sizes: np.ndarray
    failed: list[tuple[int, str]]


def start_method() -> str:
    """The multiprocessing start method the loader uses (see the module docstring)."""
    if sys.platform.startswith("linux") and "forkserver" in multiprocessing.get_all_start_methods():
        return "forkserver"
    return "spawn"


def default_workers() -> int:
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def _chunk_size(n: int, workers: int) -> int:
    # several chunks per worker for load balance, progress steps and prompt cancellation
    return int(min(256, max(16, -(-n // (workers * 8)))))


def decode_files(
    paths: Sequence[str],
    image_size: tuple[int, int],
    color: str,
    *,
    progress: Progress = None,
    cancel: Cancel = None,
    mode: str = "auto",
    workers: int | None = None,
    chunk_size: int | None = None,
) -> DecodeResult:
    """Decode ``paths`` to one uint8 array ``(k, H, W, C)``.

    mode: ``"auto"`` (in-process below ``SMALL_JOB`` files, else a process pool),
    ``"serial"``, ``"thread"`` or ``"process"``. ``progress(done, total)`` is called after
    each chunk (in files); ``cancel()`` is checked between chunks and raises
    :class:`engine.errors.Cancelled` after the pool is shut down.
    """
    paths = [os.fspath(p) for p in paths]
    n = len(paths)
    height, width = int(image_size[0]), int(image_size[1])
    n_ch = channels(color)
    workers = workers or default_workers()
    if mode == "auto":
        mode = "serial" if n < SMALL_JOB or workers < 2 else "process"
    if mode not in ("serial", "thread", "process"):
        raise ValueError(f"mode must be auto, serial, thread or process; got {mode!r}")
    size = chunk_size or _chunk_size(n, 1 if mode == "serial" else workers)
    starts = list(range(0, n, size))

    X = np.empty((n, height, width, n_ch), dtype=np.uint8)
    sizes = np.empty((n, 2), dtype=np.int64)
    ok_mask = np.zeros(n, dtype=bool)
    failed: list[tuple[int, str]] = []
    done = 0

    def store(start: int, result: tuple) -> None:
        nonlocal done
        cx, cok, csizes, cfailed = result
        X[start + cok] = cx
        sizes[start + cok] = csizes
        ok_mask[start + cok] = True
        failed.extend((start + i, reason) for i, reason in cfailed)
        done += min(size, n - start)
        if progress is not None:
            progress(done, n)

    def check_cancel() -> None:
        if cancel is not None and cancel():
            raise Cancelled("image loading cancelled")

    if n == 0 and progress is not None:
        progress(0, 0)
    check_cancel()
    if mode == "serial":
        for s in starts:
            store(s, decode_chunk(paths[s : s + size], (height, width), color))
            check_cancel()
    else:
        executor = _make_executor(mode, workers)
        finished: set[int] = set()
        try:
            _run_pool(
                executor, paths, starts, size, (height, width), color, store, check_cancel, workers, finished
            )
        except BrokenExecutor:
            # a worker died (killed, out of memory, unimportable main module): finish in-process
            for s in starts:
                if s not in finished:
                    store(s, decode_chunk(paths[s : s + size], (height, width), color))
                    check_cancel()
        finally:
            # on cancel or error drop queued chunks; running ones are short
            executor.shutdown(wait=True, cancel_futures=True)

    failed.sort()
    ok = np.flatnonzero(ok_mask)
    if len(ok) < n:
        X, sizes = X[ok], sizes[ok]
    return DecodeResult(X=X, ok=ok.astype(np.int64), sizes=sizes, failed=failed)


def _make_executor(mode: str, workers: int) -> Executor:
    if mode == "thread":
        return ThreadPoolExecutor(max_workers=workers)
    ctx = multiprocessing.get_context(start_method())
    if ctx.get_start_method() == "forkserver":
        # the fork server imports NumPy and Pillow once; every worker forked from it starts
        # warm (only effective when this process starts the server, which is the usual case)
        ctx.set_forkserver_preload(["engine.images.decode", "engine.lifeline"])
    # every worker exits when this process does (see engine.lifeline)
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=watch_parent, initargs=(os.getpid(),)
    )


def _run_pool(
    executor, paths, starts, size, image_size, color, store, check_cancel, workers, completed
) -> None:
    """Keep a few chunks in flight per worker; store results as they arrive."""
    pending: dict[Future, int] = {}
    queue = list(reversed(starts))
    in_flight = 2 * workers

    def submit() -> None:
        while queue and len(pending) < in_flight:
            s = queue.pop()
            pending[executor.submit(decode_chunk, paths[s : s + size], image_size, color)] = s

    submit()
    while pending:
        finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for fut in finished:
            s = pending.pop(fut)
            store(s, fut.result())
            completed.add(s)
        check_cancel()
        submit()
