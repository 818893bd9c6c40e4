"""Run a sweep in a child process and stream its events to the parent (the window). Qt-free.

Why a process and not a thread: a :class:`engine.sweep_runner.SweepRunner` hosts the Dask
client and, for a local cluster, the Dask *scheduler* in the process that runs it; both are
busy Python (messages, heartbeats, task bookkeeping, a result per trial). In the window's
process they would share its GIL, and every Python call of the event loop would wait for its
turn: measured on the 2-core machine, a 12-trial sweep run from a thread of the window stalled
the event loop for up to 350–540 ms (p99 76–190 ms of a 10 ms timer). In a child process the
window only reads a pipe.

Protocol (child → parent over a ``multiprocessing`` pipe; the parent polls without blocking):

- ``("prepared", kept_rows, todo)`` — the folder is checked and prepared
  (:meth:`SweepRunner.prepare`): the results rows kept from an earlier run, the trials to run;
- ``("event", event, run_info)`` — every :mod:`engine.sweep_runner` event in order; for a
  finished trial with a results row, ``run_info`` is its run folder read with
  :func:`engine.history.read_run` (``str``: why it could not be read), else None;
- ``("end", outcome)`` — the :class:`SweepOutcome`, complete or cancelled;
- ``("error", message, kind)`` — the sweep stopped: kind ``input`` (bad folder, data, cluster:
  the runner's InputError / SweepError), ``failed`` (a trial raised on its worker) or
  ``internal`` (with the traceback).

Parent → child: a shared stop flag, read by a watcher thread in the child every 50 ms, which
calls :meth:`SweepRunner.cancel` (running trials stop at their next mini-batch, the cluster is
torn down). SIGTERM does the same. The child dies with its parent's fork server (Linux:
``PR_SET_PDEATHSIG``), as training processes do.

The child must not be a daemon: the local cluster's nannies start the Dask workers as its own
child processes.
"""

from __future__ import annotations

import signal
import threading
import time
import traceback
from pathlib import Path

STOP = 0
WATCH_SECONDS = 0.05


def _child_main(conn, definition, out_dir: str, workers, scheduler, progress_interval: float, flags) -> None:
    """Entry point of the child process."""
    from engine.training_process import _die_with_parent

    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the terminal is the window's to handle
    signal.signal(signal.SIGTERM, lambda *_: flags.__setitem__(STOP, 1))
    finished = threading.Event()
    try:
        from engine.errors import InputError
        from engine.history import read_run
        from engine.sweep_results import read_results
        from engine.sweep_runner import SweepFinished, SweepRunner, TrialFailed, TrialFinished

        runner = SweepRunner(
            definition, out_dir, workers=workers, scheduler=scheduler, progress_interval=progress_interval
        )

        def watch() -> None:
            while not finished.wait(WATCH_SECONDS):
                if flags[STOP]:
                    runner.cancel()
                    return

        threading.Thread(target=watch, name="reglab-sweep-stop", daemon=True).start()
        try:
            todo = runner.prepare()
            ids = {t.id for t in definition.trials}
            kept = [r for r in read_results(out_dir) if r["trial_id"] in ids]
            conn.send(("prepared", kept, len(todo)))
            outcome = None
            for event in runner.events():
                info = None
                if isinstance(event, TrialFinished) and event.row is not None and event.run_dir is not None:
                    info = _read_run(read_run, event.run_dir)
                if isinstance(event, SweepFinished):
                    outcome = event.outcome
                conn.send(("event", event, info))
            conn.send(("end", outcome))
        except InputError as exc:
            conn.send(("error", str(exc), "input"))
        except TrialFailed as exc:
            conn.send(("error", str(exc), "failed"))
    except BaseException as exc:  # reported in words, with the details
        detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        text = str(exc).strip() or type(exc).__name__
        try:
            conn.send(
                ("error", f"the sweep stopped because of an internal error ({text})\n\n{detail}", "internal")
            )
        except OSError:
            pass
    finally:
        finished.set()
        conn.close()


def _read_run(read_run, run_dir: Path):
    from engine.errors import DataError

    try:
        return read_run(run_dir)
    except DataError as exc:
        return f"its run folder could not be read: {exc}"


class SweepProcess:
    """One sweep in a child process. Parent side: start, poll, cancel, join, shutdown."""

    def __init__(
        self,
        definition,
        out_dir: str | Path,
        *,
        workers: int | None = None,
        scheduler: str | None = None,
        progress_interval: float = 0.25,
    ):
        from engine.training_process import context

        self.definition = definition
        self.out_dir = Path(out_dir)
        self._ctx = context()
        self._flags = self._ctx.RawArray("b", 1)
        self._recv, send = self._ctx.Pipe(duplex=False)
        self._proc = self._ctx.Process(
            target=_child_main,
            args=(
                send,
                definition,
                str(self.out_dir),
                workers,
                scheduler,
                float(progress_interval),
                self._flags,
            ),
            daemon=False,  # its local cluster starts worker processes of its own
            name="reglab-sweep",
        )
        self._send_end = send
        self._started = False
        self._done = False
        self.start_error: str | None = None

    def start(self) -> None:
        """Start the child (may wait for the fork server to start: call it off the GUI thread).
        A failure to start is not raised (the caller may be a thread): :meth:`poll` reports it."""
        try:
            self._proc.start()
        except Exception as exc:  # noqa: BLE001 - reported by poll() as an error message
            self.start_error = f"{type(exc).__name__}: {exc}"
            return
        finally:
            self._send_end.close()  # the child holds the only writer: EOF tells us it has gone
        self._started = True

    def cancel(self) -> None:
        """Running trials stop at their next mini-batch; nothing new starts."""
        self._flags[STOP] = 1

    @property
    def cancelled(self) -> bool:
        return bool(self._flags[STOP])

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def is_alive(self) -> bool:
        return self._started and self._proc.is_alive()

    def done(self) -> bool:
        return self._done

    def poll(self, limit: int = 500) -> list[tuple]:
        """Messages that arrived (at most ``limit``), without blocking. After the child has gone
        without saying how it ended, a final ``("error", ..., "internal")``."""
        out: list[tuple] = []
        if not self._done and self.start_error is not None:
            self._done = True
            self._recv.close()
            return [("error", f"the sweep process could not start ({self.start_error})", "internal")]
        if self._done or not self._started:
            return out
        try:
            while len(out) < limit and self._recv.poll():
                msg = self._recv.recv()
                out.append(msg)
                if msg[0] in ("end", "error"):
                    self._done = True
                    break
        except (EOFError, OSError):
            self._proc.join(timeout=5)
            out.append(
                (
                    "error",
                    f"the sweep process ended unexpectedly (exit code {self._proc.exitcode}); the sweep "
                    "folder keeps the trials finished so far",
                    "internal",
                )
            )
            self._done = True
        if self._done:
            self._recv.close()
        return out

    def join(self, timeout: float = 30.0) -> bool:
        """Wait for the child to exit; True when it did."""
        if not self._started:
            return True
        self._proc.join(timeout)
        return not self._proc.is_alive()

    def shutdown(self, timeout: float = 90.0) -> bool:
        """Cancel and wait (the runner tears its cluster down first); terminate it if it hangs."""
        self.cancel()
        if self.join(timeout):
            return True
        self._proc.terminate()
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        return False


def wait_for(proc: SweepProcess, timeout: float) -> list[tuple]:
    """Poll until the sweep ends (headless use and tests); returns every message."""
    out: list[tuple] = []
    deadline = time.monotonic() + timeout
    while not proc.done() and time.monotonic() < deadline:
        out.extend(proc.poll())
        time.sleep(0.02)
    return out
