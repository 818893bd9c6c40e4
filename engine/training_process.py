"""Train one experiment in a child process and stream its records to the parent. Qt-free.

Why a process and not a thread: the window's own Python work (plot updates, event handling)
and the training loop would share one GIL. A small network spends most of a step in Python,
so every millisecond the window holds the GIL is a millisecond the training loses, and the
switch-interval convoy made window training run at 0.71–0.78 of headless speed. In a child
process the engine runs exactly as ``main.py train`` runs it, on its own core and GIL.

Protocol (child → parent, over a ``multiprocessing`` pipe; the parent polls without
blocking): ``("records", [EpochRecord, ...])`` batched at most every ``BATCH_SECONDS`` (and at
the last record), ``("weights", epoch, flat_params, layer_sizes)`` when the parent asked for
them, ``("stats", epoch, [LayerStats dict per layer])`` while the parent wants layer statistics
(:func:`engine.insight.layers.layer_statistics` on a fixed batch of 256 training samples, at
most ``STATS_SHARE`` of the training time), ``("finished", summary)``, ``("error", message, kind)`` with kind ``input`` (bad input,
shown as is) or ``internal``. Parent → child: a small shared array of flags (stop, pause,
weights wanted, stats wanted), read by the child between mini-batches (a few nanoseconds each).

Stop is graceful: the run ends at the next mini-batch with stop_reason ``cancelled`` and its
folder is written. SIGTERM in the child does the same. The child dies with its parent (Linux:
``PR_SET_PDEATHSIG``), so a killed window never leaves a trainer behind.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
import sys
import time
import traceback
from pathlib import Path

BATCH_SECONDS = 0.05
STOP, PAUSE, WANT_WEIGHTS, WANT_STATS = 0, 1, 2, 3
STATS_SHARE = 0.05  # layer statistics may take at most this share of the training time
STATS_SAMPLES = 256
_PRELOAD = [
    "engine.training_process",
    "engine.experiment",
    "engine.trainer",
    "engine.network",
    "engine.prepare",
]


def context() -> multiprocessing.context.BaseContext:
    """forkserver on Linux (children fork from a clean, pre-warmed server: no Qt state, NumPy
    already imported), spawn elsewhere."""
    if sys.platform.startswith("linux") and "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD + ["engine.images.decode"])
        return ctx
    return multiprocessing.get_context("spawn")


def warm_up() -> None:
    """Start the fork server now (it imports NumPy and the engine once, ~0.5 s), so the first
    Train click does not wait for it. Safe to call more than once."""
    ctx = context()
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: SIGTERM when the parent dies
        except (OSError, AttributeError):
            pass


def _child_main(conn, cfg_json: str, run_dir: str, data, flags, max_blas_threads: int | None) -> None:
    """Entry point of the child process."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the terminal is the window's to handle
    signal.signal(signal.SIGTERM, lambda *_: flags.__setitem__(STOP, 1))
    try:
        from engine.config import from_json
        from engine.errors import Cancelled, InputError
        from engine.experiment import run_experiment

        cfg = from_json(cfg_json)
        exp = None
        paused = False

        def should_stop() -> bool:
            nonlocal paused
            if flags[PAUSE] != paused and exp is not None:
                paused = bool(flags[PAUSE])
                (exp.pause if paused else exp.resume)()
            return bool(flags[STOP])

        exp = run_experiment(
            cfg,
            run_dir,
            data=data,
            should_stop=should_stop,
            cancel=should_stop,
            max_blas_threads=max_blas_threads,
        )
        if flags[PAUSE]:
            should_stop()
        pending: list = []
        last_sent = time.monotonic()
        stats = _StatsProbe()
        for record in exp.records():
            pending.append(record)
            now = time.monotonic()
            if record.stop_reason is not None or now - last_sent >= BATCH_SECONDS:
                conn.send(("records", pending))
                pending, last_sent = [], now
            if flags[WANT_WEIGHTS] and exp.trainer is not None:
                flags[WANT_WEIGHTS] = 0
                net = exp.trainer.network
                conn.send(("weights", record.epoch, net.get_params(), list(net.layer_sizes)))
            if flags[WANT_STATS] and exp.trainer is not None and stats.due():
                found = stats.measure(exp.trainer.network, exp.data)
                if found is not None:
                    conn.send(("stats", record.epoch, found))
        if pending:
            conn.send(("records", pending))
        conn.send(("finished", exp.summary))
    except Cancelled:
        conn.send(("aborted",))
    except InputError as exc:
        conn.send(("error", str(exc), "input"))
    except MemoryError:
        conn.send(
            ("error", "Out of memory: try smaller images, fewer samples or a smaller network.", "input")
        )
    except BaseException as exc:  # reported in words; the details go with it
        detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        conn.send(("error", f"{describe_exception(exc)}\n\n{detail}", "internal"))
    finally:
        conn.close()


class _StatsProbe:
    """Layer statistics on a fixed batch, measured only while they cost at most STATS_SHARE of the time."""

    def __init__(self) -> None:
        self.batch = None
        self.cost = 0.0
        self.last_end = 0.0

    def due(self) -> bool:
        return time.monotonic() - self.last_end >= self.cost / STATS_SHARE

    def measure(self, net, data) -> list[dict] | None:
        import numpy as np

        from engine.batches import to_network_input
        from engine.insight.layers import layer_statistics

        t0 = time.monotonic()
        if self.batch is None:
            train = data.train
            if len(train) == 0:
                return None
            n = len(train)
            idx = (
                np.arange(n)
                if n <= STATS_SAMPLES
                else np.sort(np.random.default_rng(0).choice(n, STATS_SAMPLES, replace=False))
            )
            X = to_network_input(np.asarray(train[idx]), data.norm_mean, data.norm_std, net.dtype)
            self.batch = (X, np.asarray(train.y)[idx].astype(np.int64))
        from engine import blas

        # one BLAS thread: on 256 samples more threads only add wake-up latency (measured on the
        # shared 2-core machine: 0.1-0.7 s per call with two threads against ~10 ms with one,
        # which made the 5 % budget allow a single measurement per run)
        with blas.limited(1):
            found = [s.to_dict() for s in layer_statistics(net, *self.batch)]
        self.last_end = time.monotonic()
        self.cost = self.last_end - t0
        return found


def describe_exception(exc: BaseException) -> str:
    """A sentence for an unexpected error: what happened, in words, then the exception's text."""
    text = str(exc).strip() or "no further detail"
    return f"Training stopped because of an internal error ({text}). The run folder keeps what was written."


class TrainingProcess:
    """One training run in a child process. Parent side: start, poll, pause, resume, stop, join."""

    def __init__(
        self,
        cfg,
        run_dir: str | Path,
        data=None,
        max_blas_threads: int | None = None,
    ):
        self.cfg = cfg
        self.run_dir = str(run_dir)
        self._ctx = context()
        self._flags = self._ctx.RawArray("b", 4)
        self._recv, send = self._ctx.Pipe(duplex=False)
        self._proc = self._ctx.Process(
            target=_child_main,
            args=(send, cfg.to_json(), self.run_dir, data, self._flags, max_blas_threads),
            daemon=True,
            name="reglab-training",
        )
        self._send_end = send
        self._done = False
        self._start_error: str | None = None
        self.started_at: float | None = None

    def start(self) -> None:
        """Start the child (poll() then reports an error if it could not start: no fork server,
        no memory to fork, a main module that starts processes at import)."""
        self.started_at = time.monotonic()
        try:
            self._proc.start()
        except Exception as exc:  # noqa: BLE001 (reported as the run's error, never a hang)
            self._start_error = f"The training process could not start: {' '.join(str(exc).split())}"
        finally:
            self._send_end.close()  # the child holds the only writer: EOF tells us it has gone

    # ---------------------------------------------------------------- control
    def pause(self) -> None:
        self._flags[PAUSE] = 1

    def resume(self) -> None:
        self._flags[PAUSE] = 0

    def stop(self) -> None:
        """Graceful: the run ends at the next mini-batch (stop_reason cancelled) and is saved."""
        self._flags[STOP] = 1
        self._flags[PAUSE] = 0

    def request_weights(self) -> None:
        self._flags[WANT_WEIGHTS] = 1

    def want_stats(self, on: bool) -> None:
        """Ask for layer statistics at epoch ends (within their time budget) while on."""
        self._flags[WANT_STATS] = 1 if on else 0

    def is_alive(self) -> bool:
        return self._proc.is_alive()

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    # ---------------------------------------------------------------- messages
    def poll(self) -> list[tuple]:
        """Every message that arrived, without blocking. After the child has gone, a final
        ``("error", ...)`` if it ended without saying how (killed, crashed)."""
        out: list[tuple] = []
        if self._done:
            return out
        if self._start_error is not None:
            self._done = True
            self._recv.close()
            return [("error", self._start_error, "internal")]
        try:
            while self._recv.poll():
                msg = self._recv.recv()
                out.append(msg)
                if msg[0] in ("finished", "error", "aborted"):
                    self._done = True
                    break
        except (EOFError, OSError):
            self._proc.join(timeout=5)
            code = self._proc.exitcode
            out.append(
                (
                    "error",
                    f"The training process ended unexpectedly (exit code {code}); "
                    "the run folder keeps the epochs written so far.",
                    "internal",
                )
            )
            self._done = True
        if self._done:
            self._recv.close()
        return out

    def done(self) -> bool:
        return self._done

    def join(self, timeout: float = 30.0) -> bool:
        """Wait for the child to exit; True when it did (or never started)."""
        if self._proc.pid is None:
            return True
        self._proc.join(timeout)
        return not self._proc.is_alive()

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Stop gracefully and wait; if the child does not end in time, terminate it."""
        self.stop()
        if self.join(timeout):
            return True
        self._proc.terminate()
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        return False
