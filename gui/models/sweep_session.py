"""The window's side of a sweep: runs it in a child process
(:class:`engine.sweep_process.SweepProcess`) and turns what it reports into Qt signals.

The runner, the Dask client and (for a local cluster) the Dask scheduler live in that child
process, never in the window's: they are busy Python and would share the window's GIL (see
engine/sweep_process.py for the measured stalls). A timer reads the child's pipe every
``TICK_MS`` (events arrive in order: the folder prepared, the cluster up, trials started,
their epochs, trials finished, the end); nothing here touches a widget. Views listen to:

- ``started(out_dir)`` — the child process is being started;
- ``clusterReady(label)`` — trials are being submitted (``"none"`` when nothing was left);
- ``changed()`` — progress, trial states or results changed; at most every ``TICK_MS`` (≤ 10 Hz);
- ``trialAdded(trial_id, run_key)`` — a finished trial's run folder joined the run history;
- ``finished(outcome)`` — the sweep ended, complete or cancelled (:class:`SweepOutcome`);
- ``failed(message)`` — it stopped with an error, or could not start (one line).

Finished trials become ordinary runs: the child reads their folders (small files) and the
session adds them to the :class:`engine.history.RunHistory`, named ``sweep: l2=0.01 seed 0``
and with their curves not shown on the plots (Show unticked, so a 45-trial sweep does not bury
the Curves tab; tick Show or make one the current run to see it). A cancelled trial gets no
results row and is not added (a resume runs it again). A trial's live epochs are kept here
while it runs (:meth:`trial_history`).

Cancel stops running trials at their next mini-batch and tears the cluster down (the runner's
job, in the child); :meth:`shutdown` (the window closes) cancels and waits for the child.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from engine.history import RunHistory, RunInfo
from engine.sweep import SweepDefinition
from engine.sweep_runner import (
    SweepFinished,
    SweepProgress,
    SweepStarted,
    TrialFinished,
    TrialProgress,
    TrialStarted,
)
from gui.models.sweep_trials import TrialState, trial_label

TICK_MS = 100
MESSAGES_PER_TICK = 400  # a burst of events is spread over ticks, never one long stall
# Each run added to the history costs the runs table and the Curves tab ~10 ms: while a sweep
# runs, at most one per tick (10 per second, more than trials finish); a whole opened sweep faster.
ADDS_PER_TICK = 1
ADDS_PER_IDLE_TICK = 4
EXIT_WAIT_SECONDS = 20.0  # after its last word the child exits at once; terminated if it hangs


class SweepSession(QObject):
    """One sweep at a time (see the module docstring)."""

    started = Signal(str)
    clusterReady = Signal(str)
    changed = Signal()
    trialAdded = Signal(str, str)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, history: RunHistory, parent: QObject | None = None):
        super().__init__(parent)
        self.history = history
        self.definition: SweepDefinition | None = None
        self.out_dir: Path | None = None
        self.process = None  # engine.sweep_process.SweepProcess while a sweep runs
        self.states: dict[str, TrialState] = {}
        self.rows: list[dict] = []
        self.progress: SweepProgress | None = None
        self.cluster = ""
        self.outcome = None
        self.error: str | None = None
        self.error_kind: str | None = None
        self.error_details = ""
        self.state = "idle"  # idle, starting, running, cancelling, ending
        self._starter: threading.Thread | None = None
        self._live: dict[str, list[dict]] = {}  # epochs of running trials
        self._dirty = False
        self._dirty_trials: set[str] = set()
        self._pending_adds: list[tuple] = []  # (trial id, run folder, RunInfo | str | None)
        self._ending: tuple | None = None  # (outcome, error, kind, deadline) once the child has ended
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self.poll)

    # ---------------------------------------------------------------- control
    def is_running(self) -> bool:
        """A sweep runs (or is ending: its child exiting, its last trials joining the runs table)."""
        return self.process is not None

    def start(
        self,
        definition: SweepDefinition,
        out_dir: str | Path,
        *,
        workers: int | None = None,
        scheduler: str | None = None,
        progress_interval: float = 0.2,
    ) -> None:
        """Run a sweep into out_dir in a child process (the child checks and prepares the
        folder; a refusal comes back as ``failed``)."""
        from engine.sweep_process import SweepProcess

        if self.process is not None:
            raise RuntimeError("a sweep is already running")
        self.definition = definition
        self.out_dir = Path(out_dir)
        self.outcome = None
        self.error = self.error_kind = None
        self.cluster = ""
        self.rows = []
        self._live = {}
        self._pending_adds = []
        self._ending = None
        self.states = {t.id: TrialState() for t in definition.trials}
        self.progress = SweepProgress(len(definition.trials), 0, 0, 0, 0, 0.0, None)
        self.process = SweepProcess(
            definition,
            self.out_dir,
            workers=workers,
            scheduler=scheduler,
            progress_interval=progress_interval,
        )
        # the fork server may still be starting (the window warms it up after it opens): waiting
        # for it here would freeze the window, so the child is started from a thread
        self._starter = threading.Thread(target=self.process.start, name="reglab-start-sweep", daemon=True)
        self._starter.start()
        self.state = "starting"
        self._timer.start()
        self.started.emit(str(self.out_dir))

    def cancel(self) -> None:
        """Stop the sweep: running trials stop at their next mini-batch, nothing new starts."""
        if self.process is not None and self._ending is None:
            self.process.cancel()
            self.state = "cancelling"
            self._dirty = True

    def shutdown(self, timeout: float = 90.0) -> bool:
        """Cancel a running sweep and wait for its process (the window is closing)."""
        proc = self.process
        if proc is None:
            return True
        if self._starter is not None:
            self._starter.join(30)
            self._starter = None
        ok = proc.shutdown(timeout)
        self._timer.stop()
        self.process = None
        self._ending = None
        self._pending_adds = []
        self.state = "idle"
        return ok

    def trial_history(self, trial_id: str) -> list[dict]:
        """A trial's epochs: received so far while it runs, its run folder's once it has one."""
        if trial_id in self._live:
            return list(self._live[trial_id])
        state = self.states.get(trial_id)
        if state is not None and state.run_key:
            run = self.history.get(state.run_key)
            if run is not None:
                return list(run.metrics)
        if self.out_dir is not None:  # e.g. a cancelled trial: its folder, not in the runs table
            from engine.errors import DataError
            from engine.runs import METRICS_FILE, read_metrics
            from engine.sweep_results import TRIALS_DIR

            try:
                return read_metrics(self.out_dir / TRIALS_DIR / trial_id / METRICS_FILE)
            except DataError:  # a broken file: no curves for that trial, never an exception
                return []
        return []

    def take_dirty_trials(self) -> set[str]:
        out, self._dirty_trials = self._dirty_trials, set()
        return out

    # ---------------------------------------------------------------- a loaded (finished) sweep
    def show_finished(self, definition: SweepDefinition, out_dir: Path, rows: list[dict]) -> None:
        """Show a sweep folder read from disk: its rows, and its trials as runs."""
        if self.process is not None:
            raise RuntimeError("a sweep is running")
        self.definition = definition
        self.out_dir = Path(out_dir)
        self.outcome = None
        self.error = self.error_kind = None
        self.cluster = ""
        self._live = {}
        self._pending_adds = []
        self.states = {t.id: TrialState(status="not run") for t in definition.trials}
        self.rows = []
        self._take_kept(rows)
        total = len(definition.trials)
        pruned = sum(1 for r in self.rows if r.get("stop_reason") == "pruned")
        self.progress = SweepProgress(total, len(self.rows), len(self.rows), 0, pruned, 0.0, None)

    def _take_kept(self, rows: list[dict]) -> None:
        """Rows of trials finished earlier (a resumed or opened sweep): states and runs."""
        by_id = {r["trial_id"]: r for r in rows if r["trial_id"] in self.states}
        for tid, row in by_id.items():
            st = self.states[tid]
            st.status = row.get("stop_reason") or "completed"
            st.row = row
            st.epochs = int(row.get("epochs_run") or 0)
            self.rows.append(row)
            self._add_trial_run(tid, self.out_dir / row["run_dir"], None)
            self._dirty_trials.add(tid)

    # ---------------------------------------------------------------- messages (GUI thread)
    def poll(self) -> None:
        """On the timer: read what the child reported, add finished trials to the run history
        (a few per tick: each add makes the runs table and the Curves tab do some work), and
        once the child has said its last word and exited, announce the end."""
        proc = self.process
        if proc is not None and self._ending is None:
            if self._starter is not None:
                if self._starter.is_alive():
                    return
                self._starter = None
            for msg in proc.poll(MESSAGES_PER_TICK):
                kind = msg[0]
                if kind == "prepared":
                    self._take_kept(msg[1])
                    self._dirty = True
                elif kind == "event":
                    self._on_event(msg[1], msg[2])
                elif kind == "end":
                    self._begin_end(outcome=msg[1])
                    break
                elif kind == "error":
                    self._begin_end(error=msg[1], kind=msg[2])
                    break
        self._drain_adds(ADDS_PER_TICK if proc is not None else ADDS_PER_IDLE_TICK)
        if self._dirty:
            self._dirty = False
            self.changed.emit()
        if self._ending is not None:
            self._finish_if_done()
        elif proc is None and not self._pending_adds:
            self._timer.stop()

    def _on_event(self, event, info) -> None:
        self.progress = event.progress
        self._dirty = True
        if isinstance(event, SweepStarted):
            self.cluster = event.cluster
            if self.state == "starting":
                self.state = "running"
            self.clusterReady.emit(event.cluster)
        elif isinstance(event, TrialStarted):
            st = self.states.setdefault(event.trial_id, TrialState())
            st.status, st.worker, st.epochs = "running", event.worker, 0
            self._live[event.trial_id] = []
            self._dirty_trials.add(event.trial_id)
        elif isinstance(event, TrialProgress):
            st = self.states.setdefault(event.trial_id, TrialState())
            self._live.setdefault(event.trial_id, []).extend(event.records)
            if event.records:
                st.epochs = int(event.records[-1].get("epoch") or st.epochs + len(event.records))
            self._dirty_trials.add(event.trial_id)
        elif isinstance(event, TrialFinished):
            st = self.states.setdefault(event.trial_id, TrialState())
            st.status = event.stop_reason or "completed"
            st.row = event.row
            self._live.pop(event.trial_id, None)
            if event.row is not None:
                st.epochs = int(event.row.get("epochs_run") or st.epochs)
                self.rows.append(event.row)
                self._add_trial_run(event.trial_id, event.run_dir, info)
            self._dirty_trials.add(event.trial_id)
        elif isinstance(event, SweepFinished):
            self.outcome = event.outcome

    def _add_trial_run(self, trial_id: str, run_dir: Path | None, info: RunInfo | str | None) -> None:
        if run_dir is not None:
            self._pending_adds.append((trial_id, Path(run_dir), info))
            if not self._timer.isActive():
                self._timer.start()

    def _drain_adds(self, limit: int) -> None:
        for _ in range(min(limit, len(self._pending_adds))):
            trial_id, run_dir, info = self._pending_adds.pop(0)
            if info is None:
                info = _read_trial(run_dir)
            if isinstance(info, str):  # unreadable: the table says why, the sweep goes on
                self.states[trial_id].worker = info
                self._dirty_trials.add(trial_id)
                continue
            trial = self.definition.trial(trial_id)
            if info.key not in self.history:
                info.name = f"sweep: {trial_label(dict(trial.values), trial.seed)}"
                info.hidden = True  # in the table; its curves only when asked (see the module docstring)
                self.history.add(info)
            self.states[trial_id].run_key = info.key
            self._dirty_trials.add(trial_id)
            self._dirty = True
            self.trialAdded.emit(trial_id, info.key)

    def _begin_end(self, outcome=None, error: str | None = None, kind: str | None = None) -> None:
        """The child said its last word: the end is announced once it has exited and every
        finished trial is in the run history (both on later ticks: the window never waits)."""
        self._ending = (outcome, error, kind, time.monotonic() + EXIT_WAIT_SECONDS)
        self.state = "ending"
        for tid, st in self.states.items():  # trials the end caught running
            if st.status == "running":
                st.status = "cancelled"
                self._dirty_trials.add(tid)
        self._live = {}
        if outcome is not None:
            self.progress = SweepProgress(
                outcome.total, outcome.ran + outcome.resumed, outcome.resumed, 0, outcome.pruned,
                outcome.seconds, None,
            )  # fmt: skip
        self._dirty = True

    def _finish_if_done(self) -> None:
        outcome, error, kind, deadline = self._ending
        proc = self.process
        if proc is not None and proc.is_alive():
            if time.monotonic() < deadline:
                return
            proc.shutdown(5)  # it hangs after its end: terminate it
        if self._pending_adds:
            return
        self._timer.stop()
        self.process = None
        self._ending = None
        self.state = "idle"
        self.changed.emit()
        if error is not None:
            # one line for the status; an internal error's traceback stays in error_details
            self.error = " ".join(error.split("\n\n", 1)[0].split())
            self.error_details = error
            self.error_kind = kind
            self.failed.emit(self.error)
        else:
            self.outcome = outcome
            self.finished.emit(outcome)


def _read_trial(run_dir: Path) -> RunInfo | str:
    from engine.errors import DataError
    from engine.history import read_run

    try:
        return read_run(run_dir)
    except DataError as exc:
        return f"its run folder could not be read: {exc}"


def elapsed_text(seconds: float | None) -> str:
    """12 s, 3 min, 1.5 h."""
    if seconds is None:
        return "—"
    s = max(0.0, float(seconds))
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def now_stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")
