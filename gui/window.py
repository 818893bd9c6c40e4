"""RegLab's main window: settings tabs on the left, live curves, runs and diagnosis on the right.

The window wires the pieces together and owns the file operations (open/save an
experiment, export curves, save a model, delete a run). Training runs in
:class:`gui.training_worker.TrainingWorker`; records are stored at once and drawn on
timers. Dialog calls go through small methods (:meth:`_show_error`, :meth:`_ask`,
:meth:`_choose_open_path`, :meth:`_choose_save_path`) so tests can drive the window
without blocking dialogs.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QStyle,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.config import ConfigError, ExperimentConfig, load_config, validate
from engine.dataset import PreparedData
from engine.errors import InputError
from engine.fileio import atomic_write_text
from gui.diagnosis_panel import DiagnosisPanel
from gui.paint_gate import PaintGate
from gui.panels.augment_panel import AugmentPanel
from gui.panels.data_panel import DataPanel
from gui.panels.model_panel import ModelPanel
from gui.runs_panel import RunEntry, RunsPanel, default_run_name, param_size, read_gui_meta, write_gui_meta
from gui.settings_store import SettingsStore, default_runs_dir
from gui.state import ExperimentState, default_config
from gui.tasks import TaskRunner
from gui.theme import apply_plot_theme
from gui.training_view import CurvesView, TrainingControls, run_color
from gui.training_worker import TrainingWorker

STATUS_MS = 100  # status bar / progress / diagnosis refresh while training (10 Hz)
TEST_REMINDER = (
    "The test set is for the final, unbiased estimate; looking at it while tuning leaks it "
    "into your choices. Evaluate only the run you have already chosen."
)


def default_window_size(screen) -> tuple[int, int]:
    """1400×900, or less on a smaller screen."""
    if screen is None:
        return 1400, 900
    avail = screen.availableGeometry()
    return min(1400, avail.width()), min(900, avail.height())


class MainWindow(QMainWindow):
    """The workbench. runFinished(run_dir) fires after a finished run is in the runs table."""

    runFinished = Signal(str)
    runFailed = Signal(str)
    testEvaluated = Signal(str, object)

    def __init__(
        self,
        state: ExperimentState | None = None,
        runs_dir: str | Path | None = None,
        settings: SettingsStore | None = None,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        apply_plot_theme()
        self.setObjectName("mainWindow")
        self.state = state if state is not None else ExperimentState(default_config())
        self.settings = settings if settings is not None else SettingsStore()
        self.runs_dir = default_runs_dir(runs_dir)
        self.experiment_path: Path | None = None
        self.last_error: str | None = None
        self.errors: list[str] = []
        self.show_dialogs = True  # tests switch dialogs off and read last_error
        self._prepared_for: str | None = None  # config.data the prepared data belongs to
        self._run_cfg: ExperimentConfig | None = None
        self._run_started = 0.0
        self._last_record: Any = None
        self._shown_record: Any = None  # the record the status bar / diagnosis show
        self._records_seen = 0
        self._message: str = ""
        self._live_key: str | None = None  # run folder whose curves the live plots show

        self.paint_gate = PaintGate()  # shared by the plots and the training worker
        self._build_panels()
        self._build_results()
        self._build_layout()
        self._build_actions()
        self._build_status_bar()

        self.worker = TrainingWorker(self, gate=self.paint_gate)
        self.worker.recorded.connect(self._on_worker_recorded)
        self.worker.finished.connect(self._on_worker_finished)
        self.worker.errored.connect(self._on_worker_errored)
        self.worker.aborted.connect(self._on_worker_aborted)
        self._eval_runner = TaskRunner(self)
        self._eval_runner.finished.connect(self._on_eval_finished)
        self._eval_runner.errored.connect(self._on_eval_errored)
        self._eval_key = ""

        self._status_timer = QTimer(self)
        self._status_timer.setInterval(STATUS_MS)
        self._status_timer.timeout.connect(self._update_live_status)

        self.controls.trainClicked.connect(lambda: self.start_training())
        self.controls.pauseToggled.connect(self._on_controls_pause_toggled)
        self.controls.stopClicked.connect(self.stop_training)
        self.runs.visibilityChanged.connect(self._on_runs_visibility_changed)
        self.runs.renamed.connect(self._on_runs_renamed)
        self.runs.deleteRequested.connect(self._on_runs_delete_requested)
        self.runs.evaluateRequested.connect(self._on_runs_evaluate_requested)
        self.runs.selectedChanged.connect(self._on_runs_selected_changed)
        self.state.configChanged.connect(self._on_state_config_changed)
        self.state.dataChanged.connect(self._on_state_data_changed)
        if self.state.prepared is not None and self.state.prepare_error is None:
            self._prepared_for = self._data_key()

        self._restore_geometry()
        self._update_title()
        self._update_dataset_status()
        self.load_runs()

    # ------------------------------------------------------------ construction
    def _build_panels(self) -> None:
        self.data_panel = DataPanel(self.state, error_dialog=self._show_error)
        self.augment_panel = AugmentPanel(self.state)
        self.model_panel = ModelPanel(self.state)
        self.settings_tabs = QTabWidget()
        self.settings_tabs.setObjectName("settingsTabs")
        for panel, title in (
            (self.data_panel, "Data"),
            (self.augment_panel, "Augmentation"),
            (self.model_panel, "Model && regularization"),
        ):
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QScrollArea.Shape.NoFrame)
            scroll.setWidget(panel)
            self.settings_tabs.addTab(scroll, title)
        self.settings_tabs.setMinimumWidth(380)

    def _build_results(self) -> None:
        self.controls = TrainingControls()
        self.banner = QLabel("")
        self.banner.setObjectName("messageBanner")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.setVisible(False)
        self.curves = CurvesView(gate=self.paint_gate)
        self.runs = RunsPanel()
        self.diagnosis = DiagnosisPanel(self.state)

    def _build_layout(self) -> None:
        top = QWidget()
        top_lay = QVBoxLayout(top)
        top_lay.setContentsMargins(4, 4, 4, 0)
        top_lay.addWidget(self.controls)
        top_lay.addWidget(self.banner)
        top_lay.addWidget(self.curves, 1)
        self.bottom_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.bottom_splitter.setObjectName("bottomSplitter")
        self.bottom_splitter.addWidget(self.runs)
        self.bottom_splitter.addWidget(self.diagnosis)
        self.bottom_splitter.setStretchFactor(0, 3)
        self.bottom_splitter.setStretchFactor(1, 2)
        self.results_splitter = QSplitter(Qt.Orientation.Vertical)
        self.results_splitter.setObjectName("resultsSplitter")
        self.results_splitter.addWidget(top)
        self.results_splitter.addWidget(self.bottom_splitter)
        self.results_splitter.setStretchFactor(0, 3)
        self.results_splitter.setStretchFactor(1, 2)
        self.main_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.main_splitter.setObjectName("mainSplitter")
        self.main_splitter.addWidget(self.settings_tabs)
        self.main_splitter.addWidget(self.results_splitter)
        self.main_splitter.setStretchFactor(0, 0)
        self.main_splitter.setStretchFactor(1, 1)
        self.main_splitter.setSizes([440, 960])
        self.results_splitter.setSizes([560, 340])
        self.bottom_splitter.setSizes([580, 380])
        self.setCentralWidget(self.main_splitter)

    def _action(
        self,
        name: str,
        text: str,
        slot,
        shortcut: Any = None,
        tip: str = "",
        icon: QStyle.StandardPixmap | None = None,
    ) -> QAction:
        act = QAction(text, self)
        if icon is not None:
            act.setIcon(self.style().standardIcon(icon))
        act.setObjectName(name)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        if tip:
            act.setStatusTip(tip)
            act.setToolTip(tip)
        act.triggered.connect(lambda _checked=False: slot())
        return act

    @staticmethod
    def _click_if_enabled(button) -> Any:
        return lambda: button.click() if button.isEnabled() else None

    def _build_actions(self) -> None:
        K = QKeySequence.StandardKey
        self.new_action = self._action(
            "newAction",
            "&New experiment",
            self.new_experiment,
            K.New,
            "Start over with the default experiment",
            QStyle.StandardPixmap.SP_FileIcon,
        )
        self.open_action = self._action(
            "openAction",
            "&Open experiment…",
            self.open_experiment,
            K.Open,
            "Open an experiment config (JSON)",
            QStyle.StandardPixmap.SP_DialogOpenButton,
        )
        self.save_action = self._action(
            "saveAction",
            "&Save experiment",
            self.save_experiment,
            K.Save,
            "Save the experiment config (JSON)",
            QStyle.StandardPixmap.SP_DialogSaveButton,
        )
        self.save_as_action = self._action(
            "saveAsAction",
            "Save experiment &as…",
            self.save_experiment_as,
            "Ctrl+Shift+S",
            "Save the experiment config under a new name",
        )
        self.export_csv_action = self._action(
            "exportCsvAction",
            "Export curves as &CSV…",
            self.export_curves_csv,
            tip="Write the shown run's per-epoch metrics to a CSV file",
        )
        self.export_png_action = self._action(
            "exportPngAction",
            "Export curves as &PNG…",
            self.export_curves_png,
            tip="Save a picture of the plots",
        )
        self.save_model_action = self._action(
            "saveModelAction", "Save &model…", self.save_model, tip="Copy the selected run's model.npz"
        )
        self.quit_action = self._action("quitAction", "&Quit", self.close, "Ctrl+Q")
        self.train_action = self._action(
            "trainAction", "Train", self.start_training, "Ctrl+R", "Train a new run with the current settings"
        )
        # Pause and Stop go through the buttons so their checked/enabled state stays the truth
        self.pause_action = self._action(
            "pauseAction", "Pause / resume", self._click_if_enabled(self.controls.pause_button), "Ctrl+P"
        )
        self.stop_action = self._action(
            "stopAction", "Stop", self._click_if_enabled(self.controls.stop_button), "Ctrl+."
        )
        self.evaluate_action = self._action(
            "evaluateTestAction",
            "Evaluate selected run on test…",
            self.evaluate_test,
            "Ctrl+T",
            "Touch the test set only for a final, unbiased estimate",
        )
        menu = self.menuBar().addMenu("&File")
        for act in (self.new_action, self.open_action, self.save_action, self.save_as_action):
            menu.addAction(act)
        menu.addSeparator()
        export = menu.addMenu("&Export curves")
        export.addAction(self.export_csv_action)
        export.addAction(self.export_png_action)
        menu.addAction(self.save_model_action)
        menu.addSeparator()
        menu.addAction(self.quit_action)
        run_menu = self.menuBar().addMenu("&Run")
        for act in (self.train_action, self.pause_action, self.stop_action):
            run_menu.addAction(act)
        run_menu.addSeparator()
        run_menu.addAction(self.evaluate_action)
        bar = self.addToolBar("Main")
        bar.setObjectName("mainToolBar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for act in (self.new_action, self.open_action, self.save_action, self.save_as_action):
            bar.addAction(act)
        bar.addSeparator()
        for act in (self.export_csv_action, self.export_png_action, self.save_model_action):
            bar.addAction(act)

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.dataset_status = QLabel("")
        self.dataset_status.setObjectName("datasetStatus")
        self.run_status = QLabel("ready")
        self.run_status.setObjectName("runStateStatus")
        self.epoch_status = QLabel("")
        self.epoch_status.setObjectName("epochStatus")
        self.speed_status = QLabel("")
        self.speed_status.setObjectName("speedStatus")
        self.memory_status = QLabel("")
        self.memory_status.setObjectName("memoryStatus")
        for w in (
            self.dataset_status,
            self.run_status,
            self.epoch_status,
            self.speed_status,
            self.memory_status,
        ):
            sb.addPermanentWidget(w)

    def _restore_geometry(self) -> None:
        geo = self.settings.geometry()
        if geo is None or not self.restoreGeometry(geo):
            self.resize(*default_window_size(self.screen()))
            self.main_splitter.setSizes([450, self.width() - 450])
        for name, splitter in (
            ("main", self.main_splitter),
            ("results", self.results_splitter),
            ("bottom", self.bottom_splitter),
        ):
            st = self.settings.splitter_state(name)
            if st is not None:
                splitter.restoreState(st)

    # ------------------------------------------------------------ dialogs (patchable)
    def _show_error(self, message: str) -> None:
        """Show an error to the user (non-blocking dialog) and keep it in last_error."""
        self.last_error = message
        self.errors.append(message)
        self.statusBar().showMessage(message, 10000)
        if self.show_dialogs:
            box = QMessageBox(
                QMessageBox.Icon.Warning, "RegLab", message, QMessageBox.StandardButton.Ok, self
            )
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()

    def _ask(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes

    def _choose_open_path(self, caption: str, filters: str) -> str:
        path, _ = QFileDialog.getOpenFileName(self, caption, self.settings.last_folder(), filters)
        return path

    def _choose_save_path(self, caption: str, filters: str, name: str = "") -> str:
        start = str(Path(self.settings.last_folder()) / name) if name else self.settings.last_folder()
        path, _ = QFileDialog.getSaveFileName(self, caption, start, filters)
        return path

    def _set_banner(self, text: str, kind: str = "error") -> None:
        self._message = text
        colors = {
            "error": ("#b00020", "#fdecea"),
            "warning": ("#7a4f00", "#fff4e0"),
            "info": ("#0b5394", "#e8f0fe"),
        }
        fg, bg = colors.get(kind, colors["info"])
        self.banner.setStyleSheet(
            f"QLabel {{ color: {fg}; background: {bg}; border-radius: 4px; padding: 4px 8px; }}"
        )
        self.banner.setText(text)
        self.banner.setVisible(bool(text))

    def banner_text(self) -> str:
        return self.banner.text() if self.banner.isVisible() else ""

    # ------------------------------------------------------------ experiment files
    def _update_title(self) -> None:
        name = self.experiment_path.name if self.experiment_path else "untitled experiment"
        self.setWindowTitle(f"RegLab — {name}")

    def new_experiment(self) -> None:
        self.state.set_config(default_config())
        self.experiment_path = None
        self._update_title()

    def open_experiment(self, path: str | Path | None = None) -> bool:
        """Load a JSON config; a bad file is reported and the current config stays untouched."""
        if path is None:
            path = self._choose_open_path("Open experiment", "Experiment config (*.json);;All files (*)")
            if not path:
                return False
        path = Path(path)
        try:
            cfg = load_config(path)
        except InputError as exc:
            self._show_error(f"Cannot open experiment: {exc}")
            return False
        self.settings.set_last_folder(path)
        self.state.set_config(cfg)
        self.experiment_path = path
        self._update_title()
        self.statusBar().showMessage(f"Opened {path}", 5000)
        return True

    def save_experiment(self, path: str | Path | None = None) -> bool:
        if path is None and self.experiment_path is None:
            return self.save_experiment_as()
        return self._write_experiment(Path(path) if path is not None else self.experiment_path)

    def save_experiment_as(self, path: str | Path | None = None) -> bool:
        if path is None:
            path = self._choose_save_path(
                "Save experiment as", "Experiment config (*.json)", "experiment.json"
            )
            if not path:
                return False
        return self._write_experiment(Path(path))

    def _write_experiment(self, path: Path) -> bool:
        try:
            cfg = validate(self.state.config)
            atomic_write_text(path, cfg.to_json() + "\n")
        except ConfigError as exc:
            self._show_error(f"Cannot save: {exc}")
            return False
        except OSError as exc:
            self._show_error(f"Cannot save {path}: {exc.strerror or exc}")
            return False
        self.experiment_path = path
        self.settings.set_last_folder(path)
        self._update_title()
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    # ------------------------------------------------------------ training
    def problems(self) -> list[str]:
        """Everything that stops a run from starting: panel problems, then config validation."""
        found: list[str] = []
        for panel in (self.data_panel, self.augment_panel, self.model_panel):
            found.extend(panel.problems())
        try:
            validate(self.state.config)
        except ConfigError as exc:
            if str(exc) not in found:
                found.append(str(exc))
        return found

    def is_training(self) -> bool:
        return self.worker.is_running()

    def start_training(self, data: PreparedData | None = None) -> bool:
        """Validate and start a run; returns False (and shows why) when refused.

        data: prepared sets to train on instead of the state's (benchmarks, scripts).
        """
        if self.is_training():
            self.statusBar().showMessage("A run is already in progress", 5000)
            return False
        problems = self.problems()
        if problems:
            text = "Cannot train yet:\n• " + "\n• ".join(problems)
            self._set_banner(text, "error")
            self.last_error = text
            self.statusBar().showMessage("Cannot train: " + problems[0], 10000)
            return False
        cfg = validate(self.state.config)
        run_dir = self._new_run_dir()
        if data is None and self.state.prepared is not None and self._prepared_for == self._data_key():
            data = self.state.prepared  # already split and normalized by the data panel
        self._run_cfg = cfg
        self._live_key = str(run_dir)
        self._last_record = None
        self._records_seen = 0
        self._run_started = time.perf_counter()
        self._set_banner("")
        self.curves.begin_run()
        self.diagnosis.set_errors(None, None)
        self.controls.set_running(True)
        self.controls.set_progress(0, cfg.training.epochs)
        self.run_status.setText("loading data…" if data is None else "training…")
        self.epoch_status.setText("")
        self.speed_status.setText("")
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            self.worker.start(cfg, run_dir, data)
        except (OSError, RuntimeError) as exc:
            self.controls.set_running(False)
            self.curves.end_run()
            self._show_error(f"Cannot start training: {exc}")
            return False
        self._status_timer.start()
        self.memory_status.setText(self._param_text(cfg, data))
        return True

    @staticmethod
    def _param_text(cfg: ExperimentConfig, data: PreparedData | None) -> str:
        """Parameter count and memory of the network about to train (shown beside the speed)."""
        if data is None:
            return ""
        sizes = [data.n_features, *cfg.model.hidden, data.n_classes]
        count = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
        nbytes = count * (4 if cfg.training.dtype == "float32" else 8)
        return f"params {count:,} · {nbytes / 1024:.1f} KB"

    def _new_run_dir(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        n = 1
        while True:
            path = self.runs_dir / f"run-{stamp}-{n:02d}"
            if not path.exists():
                return path
            n += 1

    def _data_key(self) -> str:
        return json.dumps(self.state.config.data.__dict__, sort_keys=True, default=str)

    def stop_training(self) -> None:
        if self.is_training():
            self.worker.stop()
            self.run_status.setText("stopping…")

    def _on_controls_pause_toggled(self, pause: bool) -> None:
        if not self.is_training():
            return
        if pause:
            self.worker.pause()
            self.run_status.setText("paused")
        else:
            self.worker.resume()
            self.run_status.setText("training…")

    def _on_worker_recorded(self, record: Any) -> None:
        self.curves.add_record(record)
        self._last_record = record
        self._records_seen += 1

    def _update_live_status(self) -> None:
        rec = self._last_record
        cfg = self._run_cfg
        if rec is None or cfg is None or rec is self._shown_record:
            return  # nothing new: no repaint
        self._shown_record = rec
        self.controls.set_progress(rec.epoch, cfg.training.epochs)
        self.epoch_status.setText(f"epoch {rec.epoch}/{cfg.training.epochs}")
        sps = rec.samples_per_sec or 0.0
        self.speed_status.setText(f"{rec.seconds * 1000:.1f} ms/epoch · {sps:,.0f} samples/s")
        if not self.worker.is_paused() and self.run_status.text() == "loading data…":
            self.run_status.setText("training…")
        if rec.train_acc is not None and rec.dev_acc is not None:
            tr, dv = 1.0 - rec.train_acc, 1.0 - rec.dev_acc
            if math.isfinite(tr) and math.isfinite(dv):
                self.diagnosis.set_errors(tr, dv)

    def _end_of_run_ui(self) -> None:
        self._status_timer.stop()
        self._update_live_status()
        self.curves.end_run()
        self.controls.set_running(False)

    def _on_worker_finished(self, run_dir: str, summary: Any) -> None:
        self._end_of_run_ui()
        rec = self._last_record
        reason = (summary or {}).get("stop_reason") if isinstance(summary, dict) else None
        reason = reason or (rec.stop_reason if rec is not None else None) or "completed"
        message = rec.message if rec is not None else None
        if not message and isinstance(summary, dict):
            message = summary.get("message")
        entry = self._load_entry(Path(run_dir))
        if entry is not None:
            self.runs.add_entry(entry)
            self.curves.add_overlay(entry.key, entry.metrics, entry.color, not entry.hidden)
            self.memory_status.setText(f"params {entry.param_count:,} · {entry.param_bytes / 1024:.1f} KB")
        if reason == "diverged":
            if message and "diverged" in message.lower():
                text = message  # the engine's message already says what happened and what to try
            else:
                text = (
                    f"Training diverged: {(message or 'the loss became NaN or infinite').rstrip('.')}. "
                    "Try a smaller learning rate."
                )
            self._set_banner(text, "error")
            self.run_status.setText("diverged")
            self.statusBar().showMessage(text, 15000)
        else:
            self.run_status.setText(
                {
                    "completed": "finished",
                    "early_stopping": "stopped early (early stopping)",
                    "cancelled": "stopped by user",
                }.get(reason, reason)
            )
            if message:
                # the engine flags a run that ended without learning (all weight gradients 0)
                self._set_banner(message, "warning" if "Warning:" in message else "info")
        self.runFinished.emit(run_dir)

    def _on_worker_errored(self, message: str) -> None:
        self._end_of_run_ui()
        self.run_status.setText("error")
        self._show_error(f"Training failed: {message}")
        self.runFailed.emit(message)

    def _on_worker_aborted(self, run_dir: str) -> None:
        self._end_of_run_ui()
        self.run_status.setText("stopped before training started")
        path = Path(run_dir)
        if (
            run_dir
            and path.is_dir()
            and not (path / "metrics.jsonl").exists()
            and self._inside_runs_dir(path)
        ):
            shutil.rmtree(path, ignore_errors=True)
        self.runFailed.emit("stopped")

    # ------------------------------------------------------------ runs
    def load_runs(self) -> int:
        """Load every run folder below runs_dir into the table and overlays; returns the count."""
        if not self.runs_dir.is_dir():
            return 0
        bad = 0
        loaded = 0
        for path in sorted(p for p in self.runs_dir.iterdir() if p.is_dir()):
            if not (path / "config.json").exists():
                continue
            entry = self._load_entry(path)
            if entry is None:
                bad += 1
                continue
            self.runs.add_entry(entry)
            self.curves.add_overlay(entry.key, entry.metrics, entry.color, not entry.hidden)
            loaded += 1
        if bad:
            self.statusBar().showMessage(f"{bad} run folder(s) in {self.runs_dir} could not be read", 10000)
        entries = self.runs.entries()
        if entries:
            last = entries[-1]
            self.curves.show_history(last.metrics, last.summary)
            self._live_key = last.key
            self._show_entry_diagnosis(last)
        return loaded

    def _load_entry(self, path: Path) -> RunEntry | None:
        from engine.runs import load_run  # lazy: keeps window start-up fast

        try:
            rec = load_run(path)
        except (InputError, OSError, ValueError) as exc:
            self.errors.append(f"{path}: {exc}")
            return None
        meta = read_gui_meta(path)
        count, nbytes = param_size(path / "model.npz")
        cfg = rec.config.to_dict() if hasattr(rec.config, "to_dict") else dict(rec.config)
        index = len(self.runs.entries())
        existing = self.runs.entry(str(path))
        return RunEntry(
            key=str(path),
            name=str(meta.get("name") or default_run_name(path)),
            config=cfg,
            metrics=list(rec.metrics),
            summary=rec.summary,
            color=existing.color if existing else run_color(index),
            hidden=bool(meta.get("hidden", False)),
            param_count=count,
            param_bytes=nbytes,
        )

    def _inside_runs_dir(self, path: Path) -> bool:
        try:
            return path.resolve().parent == self.runs_dir.resolve()
        except OSError:
            return False

    def _on_runs_visibility_changed(self, key: str, visible: bool) -> None:
        self.curves.set_overlay_visible(key, visible)
        self._write_meta(key, hidden=not visible)
        if not visible and key == self._live_key and not self.is_training():
            # the shown run's bold curves would otherwise stay: hiding means gone from the plots
            self._live_key = None
            self.curves.show_history([], None)

    def _on_runs_renamed(self, key: str, name: str) -> None:
        self._write_meta(key, name=name)

    def _write_meta(self, key: str, **fields: Any) -> None:
        try:
            write_gui_meta(key, **fields)
        except OSError as exc:
            self._show_error(f"Cannot save run settings in {key}: {exc.strerror or exc}")

    def rename_run(self, key: str, name: str) -> None:
        entry = self.runs.entry(key)
        if entry is not None and name.strip():
            entry.name = name.strip()
            self.runs.update_entry(entry)
            self._write_meta(key, name=entry.name)

    def _on_runs_delete_requested(self, key: str) -> None:
        self.delete_run(key)

    def delete_run(self, key: str, confirm: bool = True) -> bool:
        """Delete a run folder from disk (after confirmation) and drop it from table and plots."""
        entry = self.runs.entry(key)
        if entry is None:
            return False
        path = Path(key)
        if confirm and not self._ask("Delete run", f"Delete the run “{entry.name}” and its folder?\n{path}"):
            return False
        if path.exists():
            if not self._inside_runs_dir(path) or not (path / "config.json").exists():
                self._show_error(f"Refusing to delete {path}: not a run folder inside {self.runs_dir}")
                return False
            try:
                shutil.rmtree(path)
            except OSError as exc:
                self._show_error(f"Cannot delete {path}: {exc.strerror or exc}")
                return False
        self.curves.remove_overlay(key)
        self.runs.remove_entry(key)
        if key == self._live_key and not self.is_training():
            # the bold curves and the diagnosis showed the deleted run: clear them
            self._live_key = None
            self.curves.show_history([], None)
            self.diagnosis.set_errors(None, None)
        self.statusBar().showMessage(f"Deleted run {entry.name}", 5000)
        return True

    def _on_runs_selected_changed(self, key: str) -> None:
        entry = self.runs.entry(key)
        if entry is not None and not self.is_training():
            if key != self._live_key:
                # the bold curves follow the selection, so Export curves, Save model and
                # Evaluate on test all act on the run the user is looking at
                self.curves.show_history(entry.metrics, entry.summary)
                self._live_key = key
            self._show_entry_diagnosis(entry)
            test = (entry.summary or {}).get("test_acc")
            self.runs.test_label.setText(self._test_text(entry.summary) if test is not None else "")

    def _show_entry_diagnosis(self, entry: RunEntry) -> None:
        final = (entry.summary or {}).get("final_metrics") if entry.summary else None
        m = (
            final
            if isinstance(final, dict) and "train_acc" in final
            else (entry.metrics[-1] if entry.metrics else None)
        )
        if m and m.get("train_acc") is not None and m.get("dev_acc") is not None:
            self.diagnosis.set_errors(1.0 - float(m["train_acc"]), 1.0 - float(m["dev_acc"]))

    # ------------------------------------------------------------ test set
    def _on_runs_evaluate_requested(self, key: str) -> None:
        self.evaluate_test(key)

    def evaluate_test(self, key: str | None = None, confirm: bool = True) -> bool:
        """Evaluate one run on its test set, only on request, after a reminder why to wait."""
        key = key or self.runs.selected_key()
        entry = self.runs.entry(key) if key else None
        if entry is None:
            self._show_error("Select a run to evaluate on the test set.")
            return False
        if confirm and not self._ask(
            "Evaluate on the test set?", TEST_REMINDER + "\n\nEvaluate “" + entry.name + "” now?"
        ):
            return False
        self._eval_key = key
        run_dir = entry.path
        self.runs.test_label.setText("evaluating on test…")

        def evaluate(_ctx):
            from engine.experiment import evaluate_test

            return evaluate_test(run_dir)

        self._eval_runner.start(evaluate)
        return True

    @staticmethod
    def _test_text(result: dict | None) -> str:
        result = result or {}
        acc, loss = result.get("test_acc"), result.get("test_loss")
        if acc is None:
            return ""
        return (
            f"test accuracy {acc:.4f} · test loss {loss:.4f}"
            if loss is not None
            else f"test accuracy {acc:.4f}"
        )

    def _on_eval_finished(self, result: Any) -> None:
        key = self._eval_key
        entry = self.runs.entry(key)
        if entry is not None:
            reloaded = self._load_entry(entry.path)
            if reloaded is not None and reloaded.summary is not None:
                entry.summary = reloaded.summary
            elif isinstance(result, dict):
                entry.summary = {**(entry.summary or {}), **result}
            self.runs.update_entry(entry)
        text = self._test_text(result if isinstance(result, dict) else None) or self._test_text(
            entry.summary if entry else None
        )
        self.runs.test_label.setText(text)
        self.statusBar().showMessage(text, 10000)
        self.testEvaluated.emit(key, result)

    def _on_eval_errored(self, message: str) -> None:
        self.runs.test_label.setText("")
        self._show_error(f"Test evaluation failed: {message}")

    # ------------------------------------------------------------ export
    def _export_entry(self) -> RunEntry | None:
        key = self.runs.selected_key()
        if key:
            return self.runs.entry(key)
        entries = self.runs.entries()
        return entries[-1] if entries else None

    def curves_csv(self) -> str:
        """The shown run's per-epoch metrics as CSV text (the selected run, or the one training)."""
        h = self.curves.history()
        n_layers = max((len(g) for g in h["grad_norms"]), default=0)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        cols = ["epoch", "train_loss", "dev_loss", "train_acc", "dev_acc", "weight_norm"]
        writer.writerow(cols + [f"grad_norm_{i + 1}" for i in range(n_layers)])
        for i, epoch in enumerate(h["epoch"]):
            row = [epoch] + [repr(float(h[c][i])) for c in cols[1:]]
            grads = h["grad_norms"][i]
            writer.writerow(row + [repr(float(g)) for g in grads] + [""] * (n_layers - len(grads)))
        return out.getvalue()

    def export_curves_csv(self, path: str | Path | None = None) -> bool:
        if not self.curves.epochs():
            self._show_error("No curves to export yet: train a run first.")
            return False
        if path is None:
            path = self._choose_save_path("Export curves as CSV", "CSV (*.csv)", "curves.csv")
            if not path:
                return False
        try:
            atomic_write_text(path, self.curves_csv())
        except OSError as exc:
            self._show_error(f"Cannot write {path}: {exc.strerror or exc}")
            return False
        self.settings.set_last_folder(path)
        self.statusBar().showMessage(f"Curves written to {path}", 5000)
        return True

    def export_curves_png(self, path: str | Path | None = None) -> bool:
        if path is None:
            path = self._choose_save_path("Export curves as PNG", "PNG image (*.png)", "curves.png")
            if not path:
                return False
        if not self.curves.grab().save(str(path), "PNG"):
            self._show_error(f"Cannot write {path}")
            return False
        self.settings.set_last_folder(path)
        self.statusBar().showMessage(f"Picture written to {path}", 5000)
        return True

    def save_model(self, path: str | Path | None = None) -> bool:
        """Copy the selected (or latest) run's model.npz."""
        entry = self._export_entry()
        if entry is None:
            self._show_error("No run to save a model from: train a run first.")
            return False
        src = entry.path / "model.npz"
        if not src.exists():
            self._show_error(f"The run “{entry.name}” has no model.npz (it did not finish).")
            return False
        if path is None:
            # "run 11:02:07" -> "run 11-02-07.npz": ':' and '/' are not allowed in file names
            safe = re.sub(r'[\\/:*?"<>|]+', "-", entry.name).strip() or "model"
            path = self._choose_save_path("Save model", "NumPy model (*.npz)", f"{safe}.npz")
            if not path:
                return False
        try:
            shutil.copyfile(src, path)
        except OSError as exc:
            self._show_error(f"Cannot write {path}: {exc.strerror or exc}")
            return False
        self.settings.set_last_folder(path)
        self.statusBar().showMessage(f"Model written to {path}", 5000)
        return True

    # ------------------------------------------------------------ state changes
    def _on_state_config_changed(self, section: str) -> None:
        if section in ("data", "all"):
            self._update_dataset_status()
        if self.banner.isVisible() and self._message.startswith("Cannot train yet") and not self.problems():
            self._set_banner("")

    def _on_state_data_changed(self) -> None:
        if self.state.prepared is not None and self.state.prepare_error is None:
            self._prepared_for = self._data_key()
        else:
            self._prepared_for = None
        self._update_dataset_status()
        # "Cannot train yet: the data is still loading" must not outlive the load
        if self.banner.isVisible() and self._message.startswith("Cannot train yet") and not self.problems():
            self._set_banner("")

    def _update_dataset_status(self) -> None:
        d = self.state.config.data
        text = f"data: {d.source}"
        p = self.state.prepared
        if p is not None and self._prepared_for == self._data_key():
            text += f" · train {len(p.train)} · dev {len(p.dev)} · test {len(p.test)}"
            text += f" · {p.n_features} features · {p.n_classes} classes"
        elif d.source.startswith("builtin:"):
            text += f" · {d.n_samples} samples"
        self.dataset_status.setText(text)

    # ------------------------------------------------------------ closing
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        """Stop a running training and wait for its thread before the window goes away."""
        self._status_timer.stop()
        self.worker.shutdown()
        for runner in self.findChildren(TaskRunner):  # panels' loaders too: no thread outlives the window
            runner.shutdown()
        self.curves.end_run()
        self.settings.set_geometry(self.saveGeometry())
        for name, splitter in (
            ("main", self.main_splitter),
            ("results", self.results_splitter),
            ("bottom", self.bottom_splitter),
        ):
            self.settings.set_splitter_state(name, splitter.saveState())
        self.settings.sync()
        super().closeEvent(event)
