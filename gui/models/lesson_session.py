"""The lesson session: runs a lesson's variants one after another as ordinary window runs.

A lesson (:mod:`engine.lessons`) is a handful of ordinary experiment files. For each variant
this model puts the variant's config into the experiment state (as Open experiment would),
lets the data session load and prepare that config's data, and starts the run through the
window's own start (``start_run``), so every variant is an ordinary run: a folder in the
window's runs folder, a row in the runs table, and the current run while it trains. Each run
is named "<lesson title>: <variant label>". The finished variants stay on the plots as faded
overlays (the curves view overlays every shown run); the live one is the bold current run.
Runs that were shown before the lesson are hidden at its start (their Show box unticked, as a
user would), so the lesson's curves stand alone; :meth:`show_other_runs` ticks them again.

A lesson that measures the test set (``lesson.evaluate_test``, the mismatch lesson) evaluates
each variant when it finishes, through the window's Evaluate on test (``evaluate_test``), and
waits for :meth:`on_test_evaluated` / :meth:`on_test_failed` before the next variant.

Stop (the window's Stop button while a variant trains, or :meth:`stop`) ends the running
variant gracefully (it keeps its run folder, stop reason ``cancelled``) and starts no further
variant. Starting a lesson while another lesson or a run is going on stops that first and
then starts the new lesson: a second lesson *replaces* the first.

No widgets here; :class:`gui.views.lesson_panel.LessonPanel` shows what this model says.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from engine.config import ExperimentConfig
from engine.history import RunHistory
from engine.lessons import (
    Lesson,
    LessonResult,
    LoadedLesson,
    Variant,
    VariantRun,
    comparison_table,
    load_lesson,
)
from gui.models.data_session import DataSession
from gui.models.training_session import TrainingSession
from gui.state import ExperimentState

ACTIVE_PHASES = ("waiting", "loading", "training", "evaluating")


def run_name(lesson: Lesson, variant: Variant) -> str:
    """The name a variant's run gets in the runs table."""
    return f"{lesson.title}: {variant.label}"


class LessonSession(QObject):
    """One lesson at a time; see the module docstring.

    phase: ``idle`` (no lesson yet), ``waiting`` (a run is being stopped before the lesson
    starts), ``loading`` (a variant's data is loaded / prepared), ``training``, ``evaluating``
    (the test set of a finished variant), ``finished`` (done, stopped or failed: ``cancelled``
    and ``error`` say which).

    Signals: lessonStarted(name), lessonFinished(name) (every end: done, stopped or failed),
    changed() (phase, variant or the live epoch changed; at most every TICK_MS while training),
    configApplied(config) just before a variant's config becomes the experiment config.
    """

    lessonStarted = Signal(str)
    lessonFinished = Signal(str)
    changed = Signal()
    configApplied = Signal(object)

    def __init__(
        self,
        state: ExperimentState,
        data_session: DataSession,
        session: TrainingSession,
        history: RunHistory,
        *,
        start_run: Callable[[], bool],
        evaluate_test: Callable[[str], bool],
        problems: Callable[[], list[str]],
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.state = state
        self.data_session = data_session
        self.session = session
        self.history = history
        self._start_run = start_run
        self._evaluate_test = evaluate_test
        self._problems = problems
        self.lesson: Lesson | None = None
        self.quick = True
        self.configs: dict[str, ExperimentConfig] = {}
        self.index = -1  # the variant being loaded / trained / evaluated
        self.keys: dict[str, str] = {}  # variant name -> run key
        self.phase = "idle"
        self.stop_requested = False
        self.cancelled = False
        self.error: str | None = None
        self.notes: list[str] = []  # things worth saying that did not stop the lesson
        self.hidden_keys: list[str] = []  # runs this lesson hid from the plots
        self.started_at = 0.0
        self.elapsed = 0.0
        self._pending: LoadedLesson | None = None  # the lesson to start once the current work stopped
        self._applying = False  # inside set_config + reconcile: the data session is not settled yet
        self._starting = False  # inside start_run: the window lets this one run start
        self._calling_evaluate = False
        self._load_started = False  # the data session started a load for the current variant
        self._advance_timer = QTimer(self)  # the next step runs after the signal that caused it
        self._advance_timer.setSingleShot(True)
        self._advance_timer.setInterval(0)
        self._advance_timer.timeout.connect(self._advance)
        self._pending_timer = QTimer(self)
        self._pending_timer.setSingleShot(True)
        self._pending_timer.setInterval(0)
        self._pending_timer.timeout.connect(self._start_pending)

        session.runFinished.connect(self._on_session_run_finished)
        session.runFailed.connect(self._on_session_run_failed)
        session.stateChanged.connect(self._on_session_state_changed)
        session.recordsShown.connect(self._on_session_records_shown)
        state.dataChanged.connect(self._try_start)
        data_session.problemsChanged.connect(self._try_start)
        data_session.loadStarted.connect(self._on_data_load_started)
        data_session.errorOccurred.connect(self._on_data_error)

    # ---------------------------------------------------------------- queries
    def is_active(self) -> bool:
        return self.phase in ACTIVE_PHASES

    def blocks_training(self) -> bool:
        """A run of the user's own may not start now (the lesson owns the training session)."""
        return self.is_active() and not self._starting

    def blocks_evaluation(self) -> bool:
        """The lesson is measuring a variant's test set (the window's one evaluation slot)."""
        return self.phase == "evaluating" and not self._calling_evaluate

    def variant(self) -> Variant | None:
        if self.lesson is None or not 0 <= self.index < len(self.lesson.variants):
            return None
        return self.lesson.variants[self.index]

    def variant_key(self, variant: str) -> str | None:
        """The run key of a variant (None while it has not started)."""
        return self.keys.get(variant)

    def live_key(self) -> str | None:
        v = self.variant()
        return self.keys.get(v.name) if v is not None and self.phase == "training" else None

    def result(self) -> LessonResult | None:
        """The lesson so far as the engine's LessonResult: the variants whose runs have ended
        (their summary and metrics as the runs table has them), in lesson order."""
        if self.lesson is None:
            return None
        runs = []
        for v in self.lesson.variants:
            run = self.history.get(self.keys.get(v.name))
            if run is None or run.live or run.summary is None:
                continue
            runs.append(VariantRun(v.name, v.label, run.path, dict(run.summary), tuple(run.metrics)))
        cancelled = self.cancelled or self.is_active()
        return LessonResult(self.lesson, self.session.runs_dir, self.quick, tuple(runs), cancelled)

    def table(self) -> list[dict]:
        """engine.lessons.comparison_table of :meth:`result` (one row per ended variant)."""
        result = self.result()
        return comparison_table(result) if result is not None else []

    def progress_text(self) -> str:
        """One line: which variant, what it is doing, its epoch; or how the lesson ended."""
        lesson = self.lesson
        if self.phase == "waiting":
            return "Waiting for the running training to stop…"
        if lesson is None:
            return ""
        n = len(lesson.variants)
        v = self.variant()
        head = f"Variant {self.index + 1} of {n}: {v.label}" if v is not None else ""
        if self.phase == "loading":
            return f"{head} · loading its data…"
        if self.phase == "training":
            run = self.history.get(self.keys.get(v.name))
            done = len(run.metrics) if run is not None else 0
            total = self.configs[v.name].training.epochs
            state = {"paused": " · paused", "stopping": " · stopping…"}.get(self.session.state, "")
            if self.stop_requested and not state:
                state = " · stopping…"
            return f"{head} · epoch {done} of {total}{state}"
        if self.phase == "evaluating":
            return f"{head} · measuring its test set…"
        if self.phase == "finished":
            ran = len(self.result().runs)
            if self.error:
                return f"Stopped after {ran} of {n} variants: {self.error}"
            if self.cancelled:
                return f"Stopped by you after {ran} of {n} variants; no further variant was started."
            return f"Done: {n} variants in {self.elapsed:.0f} s. Compare them below and on the plots."
        return ""

    # ---------------------------------------------------------------- actions
    def start(self, name: str, quick: bool = True) -> bool:
        """Start lesson ``name`` (InputError for an unknown lesson or a bad variant file).

        When a lesson or a run is going on it is stopped first and the new lesson starts when
        it has ended: returns False then (the lesson is queued), True when it started now."""
        loaded = load_lesson(name, quick=quick)
        if self.is_active() or self.session.is_running():
            self._pending = loaded
            if self.phase in ("loading", "training", "evaluating"):
                self.stop()
            else:  # a run of the user's own, or the session still winding down
                self.phase = "waiting"
                self.session.stop()
                self.changed.emit()
            return False
        self._begin(loaded)
        return True

    def stop(self) -> None:
        """Stop the lesson: the running variant ends gracefully, no further variant starts."""
        if self.phase == "waiting":  # nothing of the lesson runs yet: forget it
            self._pending = None
            self.phase = "finished" if self.lesson is not None else "idle"
            self.changed.emit()
            return
        if not self.is_active():
            return
        self.stop_requested = True
        if self.phase == "training":
            self.session.stop()  # runFinished (stop reason cancelled) ends the lesson
        elif self.phase == "loading":
            self._finish(cancelled=True)
            return
        self.changed.emit()  # evaluating: ends when the evaluation does

    def show_other_runs(self) -> None:
        """Tick Show again for the runs this lesson hid at its start."""
        for key in self.hidden_keys:
            run = self.history.get(key)
            if run is not None and run.hidden:
                try:
                    self.history.set_hidden(key, False)
                except OSError:
                    pass  # read-only folder: it stays hidden in this session only
        self.hidden_keys = []
        self.changed.emit()

    def shutdown(self) -> None:
        """The window is closing: nothing further starts."""
        self._pending = None
        self.stop_requested = True
        self._advance_timer.stop()
        self._pending_timer.stop()

    # ---------------------------------------------------------------- the window's evaluation
    def on_test_evaluated(self, key: str, _result: object = None) -> None:
        if self.phase == "evaluating" and key == self._current_key():
            self._after_variant()

    def on_test_failed(self, key: str, message: str) -> None:
        if self.phase == "evaluating" and key == self._current_key():
            self.notes.append(f"“{self.variant().label}” could not be measured on the test set: {message}")
            self._after_variant()

    # ---------------------------------------------------------------- the sequence
    def _current_key(self) -> str | None:
        v = self.variant()
        return self.keys.get(v.name) if v is not None else None

    def _begin(self, loaded: LoadedLesson) -> None:
        self.lesson = loaded.lesson
        self.quick = loaded.quick
        self.configs = dict(loaded.configs)
        self.index = -1
        self.keys = {}
        self.stop_requested = False
        self.cancelled = False
        self.error = None
        self.notes = []
        self.started_at = time.monotonic()
        self.elapsed = 0.0
        self._hide_other_runs()
        self.phase = "loading"
        self.lessonStarted.emit(self.lesson.name)
        self._advance()

    def _hide_other_runs(self) -> None:
        # runs an earlier lesson hid (and nobody showed again) stay on the list to show again
        self.hidden_keys = [
            k for k in self.hidden_keys if (r := self.history.get(k)) is not None and r.hidden
        ]
        for run in self.history.runs():
            if run.hidden or run.live:
                continue
            try:
                self.history.set_hidden(run.key, True)
            except OSError:
                continue  # a folder we cannot write to: its curves stay
            self.hidden_keys.append(run.key)

    def _advance(self) -> None:
        """Start the next variant, or end the lesson after the last one."""
        if self.lesson is None or not self.is_active():
            return
        if self.stop_requested:
            self._finish(cancelled=True)
            return
        self.index += 1
        if self.index >= len(self.lesson.variants):
            self._finish(cancelled=False)
            return
        self.phase = "loading"
        self._apply_config()
        self.changed.emit()
        self._try_start()

    def _apply_config(self) -> None:
        cfg = self.configs[self.variant().name]
        self._applying = True
        try:
            self._load_started = False
            self.configApplied.emit(cfg)
            if self.state.config != cfg:
                self.state.set_config(cfg)
            self.data_session.reconcile()  # at once: the edit debounce is for typing
        finally:
            self._applying = False

    def _try_start(self) -> None:
        """Start the current variant's run as soon as its data is ready (called on every data
        session change while loading)."""
        if self.phase != "loading" or self._applying or self._starting:
            return
        ds = self.data_session
        v = self.variant()
        if ds.is_loading() or ds.is_preparing():
            return
        if ds.load_error:
            self._fail(f"the data of “{v.label}” could not be loaded: {ds.load_error}")
            return
        if self._load_started and ds.failed_message:
            self._fail(f"the data of “{v.label}” could not be loaded: {ds.failed_message}")
            return
        if self.state.config != self.configs[v.name]:  # edited meanwhile: the lesson's settings again
            self._apply_config()
            if ds.is_loading() or ds.is_preparing():
                return
        if not ds.is_current():
            problems = ds.problems() or ["the data does not match the settings"]
            self._fail(f"the data of “{v.label}” cannot be used: " + " ".join(problems))
            return
        problems = self._problems()
        if problems:
            self._fail(f"“{v.label}” cannot train: " + " ".join(problems))
            return
        if self.session.is_running():
            return  # the previous run is still winding down: runFinished comes first
        self._starting = True
        try:
            started = self._start_run()
        finally:
            self._starting = False
        key = self.session.live_key
        if not started or key is None:
            self._fail(f"“{v.label}” could not be started")
            return
        self.keys[v.name] = key
        self.phase = "training"
        self.history.rename(key, run_name(self.lesson, v))  # written to the folder when the run ends
        self.changed.emit()

    def _after_variant(self) -> None:
        if self.stop_requested:
            self._finish(cancelled=True)
        else:
            self._advance_timer.start()

    def _finish(self, cancelled: bool, error: str | None = None) -> None:
        self._advance_timer.stop()
        self.phase = "finished"
        self.cancelled = cancelled
        self.error = error
        self.elapsed = time.monotonic() - self.started_at
        self.changed.emit()
        self.lessonFinished.emit(self.lesson.name)
        if self._pending is not None:
            self._pending_timer.start()

    def _fail(self, message: str) -> None:
        self._finish(cancelled=True, error=message)

    def _start_pending(self) -> None:
        if self._pending is None or self.phase in ("loading", "training", "evaluating"):
            return
        if self.session.is_running():
            return  # stateChanged("idle") calls again
        loaded, self._pending = self._pending, None
        self._begin(loaded)

    # ---------------------------------------------------------------- session and data events
    def _on_session_run_finished(self, key: str) -> None:
        if self.phase != "training" or key != self._current_key():
            return
        run = self.history.get(key)
        if run is not None and run.stop_reason() == "cancelled":
            self.stop_requested = True  # the Stop button: the lesson ends with this variant
        if self.stop_requested:
            self._finish(cancelled=True)
            return
        if self.lesson.evaluate_test:
            self.phase = "evaluating"
            self.changed.emit()
            self._calling_evaluate = True
            try:
                evaluating = self._evaluate_test(key)
            finally:
                self._calling_evaluate = False
            if not evaluating:
                self.notes.append(f"“{self.variant().label}” could not be measured on the test set.")
                self._after_variant()
            return
        self._after_variant()

    def _on_session_run_failed(self, key: str, message: str) -> None:
        if self.phase != "training" or key != self._current_key():
            return
        if message == "stopped before training started":  # Stop pressed while it was starting
            self._finish(cancelled=True)
            return
        first = message.strip().splitlines()[0] if message.strip() else "unknown error"
        self._fail(f"“{self.variant().label}” failed: {first}")

    def _on_session_state_changed(self, state: str) -> None:
        if state == "stopping" and self.phase == "training":
            self.stop_requested = True
            self.changed.emit()
        elif state == "idle" and self.phase == "waiting":
            self._pending_timer.start()
        elif state == "idle" and self.phase == "loading":
            self._try_start()  # a run that was still winding down has gone
        elif self.phase == "training":
            self.changed.emit()  # paused / resumed

    def _on_session_records_shown(self, key: str) -> None:
        if self.phase == "training" and key == self._current_key():
            self.changed.emit()

    def _on_data_load_started(self, _source: str) -> None:
        if self.phase == "loading":
            self._load_started = True

    def _on_data_error(self, message: str) -> None:
        if self.phase == "loading" and self._load_started and not self._applying:
            self._fail(f"the data of “{self.variant().label}” could not be loaded: {message}")
