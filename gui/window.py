"""RegLab's main window: it assembles the models and the views, and does the file work.

Models (no widgets): :class:`gui.state.ExperimentState` (the config being edited),
:class:`gui.models.data_session.DataSession` (loading), :class:`engine.history.RunHistory`
(every run), :class:`gui.models.training_session.TrainingSession` (the training process and
the current run) and :class:`gui.models.runs_table.RunsTableModel`. Views take their model in
the constructor. The window holds no run state of its own: Save model, Evaluate on test,
Export and Delete act on ``session.current()``, the run the plots show and the table selects.

Dialog calls go through small methods (:meth:`_show_error`, :meth:`_ask`,
:meth:`_ask_unsaved`, :meth:`_choose_open_path`, :meth:`_choose_save_path`) so tests can drive
the window without blocking dialogs.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
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

from engine.config import ExperimentConfig, load_config
from engine.dataset import PreparedData
from engine.errors import InputError
from engine.fileio import atomic_write_text
from engine.history import RunHistory
from gui.models.current_model import CurrentModel
from gui.models.data_session import DataSession
from gui.models.lesson_session import LessonSession
from gui.models.runs_table import RunsTableModel
from gui.models.training_session import TrainingSession
from gui.panels.augment_panel import AugmentPanel
from gui.panels.data_panel import DataPanel
from gui.panels.model_panel import ModelPanel
from gui.settings_store import SettingsStore, default_runs_dir
from gui.state import ExperimentState, default_config
from gui.tasks import TaskRunner
from gui.theme import apply_plot_theme
from gui.views.activations_view import ActivationsView
from gui.views.boundary_view import BoundaryView
from gui.views.confusion_view import ConfusionView
from gui.views.curves_view import CurvesView
from gui.views.depth_lab_view import DepthLabView
from gui.views.diagnosis_view import DiagnosisView
from gui.views.landscape_view import LandscapeView
from gui.views.lesson_panel import LessonPanel, LessonsMenu
from gui.views.normalize_view import NormalizeView
from gui.views.run_controls import RunControls
from gui.views.run_status import RunStatus, style_banner
from gui.views.runs_view import RunsView
from gui.views.sweep_panel import SweepPanel
from gui.views.weights_view import WeightsView

TEST_REMINDER = (
    "The test set is for the final, unbiased estimate; looking at it while tuning leaks it "
    "into your choices. Evaluate only the run you have already chosen."
)
MIN_WIDTH, MIN_HEIGHT = 1000, 700  # fits a 1024×768 screen with its window frame


def default_window_size(screen) -> tuple[int, int]:
    """1400×900, or less on a smaller screen."""
    if screen is None:
        return 1400, 900
    avail = screen.availableGeometry()
    return min(1400, avail.width()), min(900, avail.height())


class MainWindow(QMainWindow):
    """The workbench. runFinished(run_dir) fires after a finished run is in the runs table;
    runFailed(message) when a run ended with an error; testEvaluated(key, result);
    testFailed(key, message) when evaluating a run on its test set failed."""

    runFinished = Signal(str)
    runFailed = Signal(str)
    testEvaluated = Signal(str, object)
    testFailed = Signal(str, str)

    def __init__(
        self,
        state: ExperimentState | None = None,
        runs_dir: str | Path | None = None,
        settings: SettingsStore | None = None,
        parent: QWidget | None = None,
        experiment: str | Path | None = None,
    ):
        super().__init__(parent)
        apply_plot_theme()
        self.setObjectName("mainWindow")
        self.state = state if state is not None else ExperimentState(default_config())
        self.settings = settings if settings is not None else SettingsStore()
        self.runs_dir = default_runs_dir(runs_dir)
        self.experiment_path: Path | None = None
        self._saved_config: ExperimentConfig = self.state.config  # "unsaved" = differs from this
        self.last_error: str | None = None
        self.errors: list[str] = []
        self.show_dialogs = True  # tests switch dialogs off and read last_error
        self.run_read_problems: list[str] = []

        # models
        self.history = RunHistory()
        self.data_session = DataSession(self.state, self, autoload=False)
        self.session = TrainingSession(self.history, self.runs_dir, self)
        self.runs_model = RunsTableModel(self.history, self)
        self.lessons = LessonSession(
            self.state,
            self.data_session,
            self.session,
            self.history,
            start_run=self.start_training,
            evaluate_test=lambda key: self.evaluate_test(key, confirm=False),
            problems=self.problems,
            parent=self,
        )
        self._build_panels()
        self._build_results()
        self._build_layout()
        self._build_actions()
        self._build_lessons()
        self._build_status_bar()
        self._eval_runner = TaskRunner(self)
        self._eval_runner.finished.connect(self._on_eval_finished)
        self._eval_runner.errored.connect(self._on_eval_errored)
        self._eval_key = ""
        self.testEvaluated.connect(self.lessons.on_test_evaluated)
        self.testFailed.connect(self.lessons.on_test_failed)

        self.controls.trainClicked.connect(lambda: self.start_training())
        self.runs.deleteRequested.connect(lambda key: self.delete_run(key))
        self.runs.evaluateRequested.connect(lambda key: self.evaluate_test(key))
        self.session.runFinished.connect(self._on_session_run_finished)
        self.session.runFailed.connect(self._on_session_run_failed)
        self.session.stateChanged.connect(self._on_session_state_changed)
        self.session.currentChanged.connect(lambda _key: self._update_run_actions())
        self.state.configChanged.connect(self._on_state_config_changed)
        self.state.dataChanged.connect(self._on_data_changed)
        self.data_session.problemsChanged.connect(self._on_data_changed)
        self.data_panel.problemsChanged.connect(self._clear_solved_problems)

        self._restore_geometry()
        self.load_runs()
        if experiment is not None:
            self.open_experiment(experiment)
        self._update_title()
        self._update_dataset_status()
        if not self.state.sources:
            self.data_session.load()
        QTimer.singleShot(200, self._warm_up_training)

    # ------------------------------------------------------------ construction
    def _build_panels(self) -> None:
        self.data_panel = DataPanel(self.state, self.data_session, error_dialog=self._show_error)
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
        self.settings_tabs.setMinimumWidth(290)

    def _build_results(self) -> None:
        self.controls = RunControls(self.session)
        self.banner = QLabel("")  # why training cannot start (cleared as soon as it can)
        self.banner.setObjectName("messageBanner")
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)
        self.run_banner = QLabel("")  # the current run's outcome
        self.run_banner.setObjectName("runBanner")
        self.run_banner.setVisible(False)
        self.curves = CurvesView(self.session, self.runs_model)
        self.current_model = CurrentModel(self.session, self.state, self)
        # the curves and the views of the model itself share one tab widget: every view exists
        # from start-up, whatever the data (a view shows a hint until it has something to show)
        self.view_tabs = QTabWidget()
        self.view_tabs.setObjectName("viewTabs")
        self.view_tabs.addTab(self.curves, "Curves")
        self._build_views()
        self.runs = RunsView(self.runs_model, self.session)
        self.diagnosis = DiagnosisView(self.session, self.state)

    def _build_views(self) -> None:
        """The views beside the curves, in tab order. Each takes its models in the constructor
        (the current model, the session, the experiment state, the runs table) and shows a hint
        until it has something to show."""
        self.boundary_view = BoundaryView(self.current_model, self.session, self.runs_model)
        self.add_view(self.boundary_view, "Decision boundary")
        self.weights_view = WeightsView(self.current_model, self.session)
        self.add_view(self.weights_view, "Weights")
        self.confusion_view = ConfusionView(self.current_model, self.session, self.boundary_view)
        self.add_view(self.confusion_view, "Confusion matrix")
        self.activations_view = ActivationsView(self.current_model, self.session)
        self.add_view(self.activations_view, "Inside the network")
        self.landscape_view = LandscapeView(self.current_model, self.session, self.runs_model)
        self.add_view(self.landscape_view, "Loss landscape")
        self.depth_lab = DepthLabView()
        self.add_view(self.depth_lab, "Depth lab")
        self.normalize_view = NormalizeView()
        self.add_view(self.normalize_view, "Why normalize")
        self.sweep_panel = SweepPanel(self.state, self.history, self.session, self.runs_dir)
        self.add_view(self.sweep_panel, "Sweep")

    def add_view(self, view: QWidget, title: str) -> None:
        """A view of the current run (or a tool) as a tab beside the curves."""
        self.view_tabs.addTab(view, title)

    def _build_layout(self) -> None:
        top = QWidget()
        top_lay = QVBoxLayout(top)
        top_lay.setContentsMargins(4, 4, 4, 0)
        top_lay.addWidget(self.controls)
        top_lay.addWidget(self.banner)
        top_lay.addWidget(self.run_banner)
        top_lay.addWidget(self.view_tabs, 1)
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

    def _action(self, name: str, text: str, slot, shortcut: Any = None, tip: str = "", icon=None) -> QAction:
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
        SP = QStyle.StandardPixmap
        self.new_action = self._action(
            "newAction",
            "&New experiment",
            self.new_experiment,
            K.New,
            "Start over with the default experiment",
            SP.SP_FileIcon,
        )
        self.open_action = self._action(
            "openAction", "&Open experiment…", self.open_experiment, K.Open, "Open an experiment config (JSON)",
            SP.SP_DialogOpenButton,
        )  # fmt: skip
        self.save_action = self._action(
            "saveAction", "&Save experiment", self.save_experiment, K.Save, "Save the experiment config (JSON)",
            SP.SP_DialogSaveButton,
        )  # fmt: skip
        self.save_as_action = self._action(
            "saveAsAction", "Save experiment &as…", self.save_experiment_as, "Ctrl+Shift+S",
            "Save the experiment config under a new name",
        )  # fmt: skip
        self.export_csv_action = self._action(
            "exportCsvAction", "Export curves as &CSV…", self.export_curves_csv,
            tip="Write the current run's per-epoch metrics to a CSV file",
        )  # fmt: skip
        self.export_png_action = self._action(
            "exportPngAction",
            "Export curves as &PNG…",
            self.export_curves_png,
            tip="Save a picture of the plots",
        )
        self.save_model_action = self._action(
            "saveModelAction", "Save &model…", self.save_model, tip="Copy the current run's model.npz"
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
            "evaluateTestAction", "Evaluate current run on test…", self.evaluate_test, "Ctrl+T",
            "Touch the test set only for a final, unbiased estimate",
        )  # fmt: skip
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
        run_menu.addAction(self.weights_view.gradcheck.action)  # shows the Weights view and checks
        bar = self.addToolBar("Main")
        bar.setObjectName("mainToolBar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        for act in (self.new_action, self.open_action, self.save_action):
            bar.addAction(act)
        bar.addSeparator()
        for act in (self.export_csv_action, self.export_png_action, self.save_model_action):
            bar.addAction(act)
        self._update_run_actions()

    def _build_lessons(self) -> None:
        """The Lessons menu and the lesson panel: a tab beside the settings (which the lesson sets),
        shown when a lesson starts, so the plots keep their room."""
        self.lessons_menu = LessonsMenu(self.lessons, self)
        self.menuBar().addMenu(self.lessons_menu)
        self.lesson_quick_action = self.lessons_menu.quick_action
        self.lesson_panel = LessonPanel(self.lessons, self.runs_model, self)
        self.settings_tabs.addTab(self.lesson_panel, "Lesson")
        self.settings_tabs.setTabVisible(self.settings_tabs.indexOf(self.lesson_panel), False)
        self.lesson_panel_action = self._action(
            "lessonPanelAction", "Lesson panel", self.show_lesson_panel,
            tip="Show the lesson being run (or the last one) beside the settings",
        )  # fmt: skip
        self.lessons_menu.addAction(self.lesson_panel_action)
        self.lessons_menu.lessonChosen.connect(lambda name: self.start_lesson(name))
        self.lesson_panel.closeRequested.connect(self.hide_lesson_panel)
        self.lessons.lessonStarted.connect(lambda _name: self.show_lesson_panel())
        self.lessons.lessonFinished.connect(self._on_lessons_lesson_finished)
        self.lessons.configApplied.connect(self._on_lessons_config_applied)

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
        self.run_status_view = RunStatus(
            self.session,
            self.run_banner,
            self.run_status,
            self.epoch_status,
            self.speed_status,
            self.memory_status,
            self,
        )

    def _restore_geometry(self) -> None:
        self.setMinimumSize(MIN_WIDTH, MIN_HEIGHT)
        geo = self.settings.geometry()
        if geo is None or not self.restoreGeometry(geo):
            self.resize(*default_window_size(self.screen()))
            self.main_splitter.setSizes([420, self.width() - 420])
        for name, splitter in (
            ("main", self.main_splitter),
            ("results", self.results_splitter),
            ("bottom", self.bottom_splitter),
        ):
            st = self.settings.splitter_state(name)
            if st is not None:
                splitter.restoreState(st)

    def _warm_up_training(self) -> None:
        from engine.training_process import warm_up

        warm_up()  # the training process's fork server imports NumPy while the user looks around

    # ------------------------------------------------------------ dialogs (patchable)
    def _show_error(self, message: str) -> None:
        """Show an error to the user (non-blocking dialog) and keep it in last_error."""
        self.last_error = message
        self.errors.append(message)
        if self.show_dialogs:
            box = QMessageBox(
                QMessageBox.Icon.Warning, "RegLab", message, QMessageBox.StandardButton.Ok, self
            )
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()

    def _ask(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes

    def _ask_unsaved(self) -> str:
        """'save', 'discard' or 'cancel' for an experiment with unsaved changes."""
        if not self.show_dialogs:
            return "discard"
        B = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self,
            "Unsaved changes",
            "The experiment has changes that are not saved. Save them first?",
            B.Save | B.Discard | B.Cancel,
            B.Save,
        )
        return {B.Save: "save", B.Discard: "discard"}.get(answer, "cancel")

    def _choose_open_path(self, caption: str, filters: str) -> str:
        path, _ = QFileDialog.getOpenFileName(self, caption, self.settings.last_folder(), filters)
        return path

    def _choose_save_path(self, caption: str, filters: str, name: str = "") -> str:
        start = str(Path(self.settings.last_folder()) / name) if name else self.settings.last_folder()
        path, _ = QFileDialog.getSaveFileName(self, caption, start, filters)
        return path

    def _info(self, text: str) -> None:
        """A short confirmation in the status bar (it goes after a few seconds)."""
        self.statusBar().showMessage(text, 5000)

    def _set_banner(self, text: str, kind: str = "error") -> None:
        style_banner(self.banner, text, kind)

    def banner_text(self) -> str:
        """What the window says above the plots: why training cannot start, else the current run's outcome."""
        if self.banner.isVisible():
            return self.banner.text()
        return self.run_banner.text() if self.run_banner.isVisible() else ""

    # ------------------------------------------------------------ experiment files
    def is_modified(self) -> bool:
        """The experiment differs from what was last opened, saved or started anew."""
        return self.state.config != self._saved_config

    def _update_title(self) -> None:
        name = self.experiment_path.name if self.experiment_path else "untitled experiment"
        self.setWindowTitle(f"RegLab — {name}{' *' if self.is_modified() else ''}")

    def _settle_unsaved(self) -> bool:
        """Ask what to do with unsaved changes; False when the user cancels."""
        if not self.is_modified():
            return True
        answer = self._ask_unsaved()
        if answer == "save":
            return self.save_experiment()
        return answer == "discard"

    def new_experiment(self) -> bool:
        if not self._settle_unsaved():
            return False
        self._saved_config = default_config()
        self.state.set_config(self._saved_config)
        self.experiment_path = None
        self._update_title()
        return True

    def open_experiment(self, path: str | Path | None = None) -> bool:
        """Load a JSON config; a bad file is reported and the current config stays untouched."""
        if not self._settle_unsaved():
            return False
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
        self._saved_config = cfg
        self.state.set_config(cfg)
        self.experiment_path = path
        self._update_title()
        self._info(f"Opened {path}")
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
        cfg = self.state.config
        try:
            atomic_write_text(path, cfg.to_json() + "\n")
        except OSError as exc:
            self._show_error(f"Cannot save {path}: {exc.strerror or exc}")
            return False
        self.experiment_path = path
        self._saved_config = cfg
        self.settings.set_last_folder(path)
        self._update_title()
        self._info(f"Saved {path}")
        return True

    # ------------------------------------------------------------ training
    def problems(self) -> list[str]:
        """Everything that stops a run from starting (empty when it can start)."""
        found: list[str] = []
        for panel in (self.data_panel, self.augment_panel, self.model_panel):
            for p in panel.problems():
                if p not in found:
                    found.append(p)
        return found

    def is_training(self) -> bool:
        return self.session.is_running()

    def start_training(self, data: PreparedData | None = None) -> bool:
        """Check the settings and start a run; returns False (and shows why) when refused.

        data: prepared sets to train on instead of the loaded ones (benchmarks, scripts).
        """
        if self.is_training():
            self._info("A run is already in progress")
            return False
        if self.lessons.blocks_training():
            self._show_error(
                "A lesson is running: stop it (Lessons ▸ Stop lesson) before you train a run of your own."
            )
            return False
        problems = [] if data is not None else self.problems()
        if problems:
            text = "Cannot train yet:\n• " + "\n• ".join(problems)
            self._set_banner(text, "error")
            self.last_error = text
            return False
        self._set_banner("")
        cfg = self.state.config
        if data is None:
            data = self.state.prepared  # already split and normalized by the data session
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            self.session.start(cfg, data)
        except (OSError, RuntimeError) as exc:
            self._show_error(f"Cannot start training: {exc}")
            return False
        return True

    def stop_training(self) -> None:
        self.session.stop()

    def _on_session_state_changed(self, state: str) -> None:
        self._update_run_actions()

    def _on_session_run_finished(self, key: str) -> None:
        self._update_run_actions()
        self.runFinished.emit(key)

    def _on_session_run_failed(self, key: str, message: str) -> None:
        self._update_run_actions()
        if message != "stopped before training started":
            self._show_error(f"Training failed: {message}")
        self.runFailed.emit(message)

    def _update_run_actions(self) -> None:
        has_run = self.session.current() is not None
        self.save_model_action.setEnabled(has_run)
        self.export_csv_action.setEnabled(has_run)
        self.export_png_action.setEnabled(has_run)

    # ------------------------------------------------------------ runs
    def load_runs(self) -> int:
        """Read every run folder below runs_dir; the latest becomes current. Returns the count.

        A broken run folder is skipped and reported, never a reason not to open."""
        before = len(self.history)
        self.run_read_problems = self.history.load_dir(self.runs_dir) if self.runs_dir.is_dir() else []
        if self.run_read_problems:
            n = len(self.run_read_problems)
            self._set_banner(
                f"{n} run folder{'s' if n != 1 else ''} in {self.runs_dir} could not be read and "
                f"{'were' if n != 1 else 'was'} skipped:\n• "
                + "\n• ".join(self.run_read_problems[:5])
                + ("\n• …" if n > 5 else ""),
                "warning",
            )
        visible = [r for r in self.history.runs() if not r.hidden]
        if visible:
            self.session.set_current(visible[-1].key)
        return len(self.history) - before

    def rename_run(self, key: str, name: str) -> None:
        try:
            self.history.rename(key, name)
        except OSError as exc:
            self._show_error(f"Cannot save the name in {key}: {exc.strerror or exc}")

    def set_run_visible(self, key: str, visible: bool) -> None:
        try:
            self.history.set_hidden(key, not visible)
        except OSError as exc:
            self._show_error(f"Cannot save the visibility in {key}: {exc.strerror or exc}")

    def _inside_runs_dir(self, path: Path) -> bool:
        try:
            return path.resolve().parent == self.runs_dir.resolve()
        except OSError:
            return False

    def delete_run(self, key: str | None = None, confirm: bool = True) -> bool:
        """Delete a run folder from disk (after confirmation) and drop it from the table and plots."""
        key = key or self.session.current_key
        run = self.history.get(key)
        if run is None:
            return False
        if run.live:
            self._show_error(f"“{run.name}” is still training: stop it before deleting it.")
            return False
        path = run.path
        if confirm and not self._ask("Delete run", f"Delete “{run.name}” and its folder?\n{path}"):
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
        self.history.remove(key)
        self._info(f"Deleted “{run.name}”")
        return True

    # ------------------------------------------------------------ test set
    def evaluate_test(self, key: str | None = None, confirm: bool = True) -> bool:
        """Evaluate the current run on its test set, only on request, after a reminder why to wait."""
        key = key or self.session.current_key
        run = self.history.get(key)
        if run is None:
            self._show_error("Select a run to evaluate on the test set.")
            return False
        if run.live or run.summary is None or not run.has_test_set():
            self._show_error(self.runs.evaluate_button.toolTip())
            return False
        if self.lessons.blocks_evaluation():
            self._show_error(
                "The lesson is measuring its runs on the test set; try again when it has finished."
            )
            return False
        if confirm and not self._ask(
            "Evaluate on the test set?", TEST_REMINDER + f"\n\nEvaluate “{run.name}” now?"
        ):
            return False
        self._eval_key = key
        run_dir = run.path
        self.runs.test_label.setText("evaluating on test…")

        def evaluate(_ctx):
            from engine.experiment import evaluate_test

            return evaluate_test(run_dir)

        self._eval_runner.start(evaluate)
        return True

    def _on_eval_finished(self, result: Any) -> None:
        key = self._eval_key
        run = self.history.get(key)
        if run is not None and isinstance(result, dict):
            self.history.update(key, summary={**(run.summary or {}), **result})
        text = self.runs.test_text(result if isinstance(result, dict) else None)
        if key == self.session.current_key:
            self.runs.test_label.setText(text)
        self._info(text)
        self.testEvaluated.emit(key, result)

    def _on_eval_errored(self, message: str) -> None:
        self.runs.test_label.setText("")
        self._show_error(f"Test evaluation failed: {message}")
        self.testFailed.emit(self._eval_key, message)

    # ------------------------------------------------------------ lessons
    def start_lesson(self, name: str, quick: bool | None = None) -> bool:
        """Run lesson ``name``'s variants as runs of this window (quick: the Lessons menu's
        Quick option unless given). Asks first when a lesson or a run is going on (it is stopped,
        then the lesson starts) and when the experiment has unsaved changes (the lesson replaces
        the settings). Returns False when the user said no or the lesson cannot be read."""
        from engine.lessons import get_lesson

        try:
            lesson = get_lesson(name)
        except InputError as exc:
            self._show_error(str(exc))
            return False
        quick = self.lessons_menu.is_quick() if quick is None else quick
        if self.lessons.is_active() and self.lessons.lesson is not None:
            question = (
                f"The lesson “{self.lessons.lesson.title}” is running. Stop it and start “{lesson.title}”?"
            )
            if not self._ask("Start another lesson?", question):
                return False
        elif self.is_training():
            question = f"A run is training. Stop it (it is kept) and start the lesson “{lesson.title}”?"
            if not self._ask("Stop the run?", question):
                return False
        if not self._settle_unsaved():
            return False
        try:
            self.lessons.start(name, quick=quick)
        except InputError as exc:
            self._show_error(f"Cannot start the lesson: {exc}")
            return False
        self.show_lesson_panel()
        return True

    def show_lesson_panel(self) -> None:
        index = self.settings_tabs.indexOf(self.lesson_panel)
        self.settings_tabs.setTabVisible(index, True)
        self.settings_tabs.setCurrentIndex(index)

    def hide_lesson_panel(self) -> None:
        self.settings_tabs.setTabVisible(self.settings_tabs.indexOf(self.lesson_panel), False)

    def _on_lessons_config_applied(self, cfg: ExperimentConfig) -> None:
        # a variant's settings are opened like an experiment file: not "unsaved changes"
        self._saved_config = cfg
        self.experiment_path = None
        self._update_title()

    def _on_lessons_lesson_finished(self, _name: str) -> None:
        if self.lessons.error:
            self._show_error(f"The lesson stopped: {self.lessons.error}")

    # ------------------------------------------------------------ export
    def curves_csv(self) -> str:
        """The current run's per-epoch metrics as CSV text."""
        run = self.session.current()
        metrics = run.metrics if run is not None else []
        n_layers = max((len(m.get("grad_norms") or []) for m in metrics), default=0)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        cols = ["epoch", "train_loss", "dev_loss", "train_acc", "dev_acc", "weight_norm"]
        writer.writerow(cols + [f"grad_norm_{i + 1}" for i in range(n_layers)])
        for m in metrics:
            row = [m.get("epoch")] + ["" if m.get(c) is None else repr(float(m[c])) for c in cols[1:]]
            grads = [("" if g is None else repr(float(g))) for g in (m.get("grad_norms") or [])]
            writer.writerow(row + grads + [""] * (n_layers - len(grads)))
        return out.getvalue()

    def export_curves_csv(self, path: str | Path | None = None) -> bool:
        run = self.session.current()
        if run is None or not run.metrics:
            self._show_error("No curves to export: train a run or select one first.")
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
        self._info(f"Curves of “{run.name}” written to {path}")
        return True

    def export_curves_png(self, path: str | Path | None = None) -> bool:
        if path is None:
            path = self._choose_save_path("Export curves as PNG", "PNG image (*.png)", "curves.png")
            if not path:
                return False
        if not self.curves.export_image(str(path)):
            self._show_error(f"Cannot write {path}")
            return False
        self.settings.set_last_folder(path)
        self._info(f"Picture written to {path}")
        return True

    def save_model(self, path: str | Path | None = None) -> bool:
        """Copy the current run's model.npz."""
        run = self.session.current()
        if run is None:
            self._show_error("No run to save a model from: train a run or select one first.")
            return False
        src = run.path / "model.npz"
        if run.live or not src.exists():
            self._show_error(f"“{run.name}” has no model.npz yet (it is still training or did not finish).")
            return False
        if path is None:
            # "run 11:02:07" -> "run 11-02-07.npz": ':' and '/' are not allowed in file names
            safe = re.sub(r'[\\/:*?"<>|]+', "-", run.name).strip() or "model"
            path = self._choose_save_path("Save model", "NumPy model (*.npz)", f"{safe}.npz")
            if not path:
                return False
        try:
            shutil.copyfile(src, path)
        except OSError as exc:
            self._show_error(f"Cannot write {path}: {exc.strerror or exc}")
            return False
        self.settings.set_last_folder(path)
        self._info(f"Model of “{run.name}” written to {path}")
        return True

    # ------------------------------------------------------------ state changes
    def _on_state_config_changed(self, section: str) -> None:
        if section in ("data", "all"):
            self._update_dataset_status()
        self._update_title()
        self._clear_solved_problems()

    def _on_data_changed(self) -> None:
        self._update_dataset_status()
        self._clear_solved_problems()

    def _clear_solved_problems(self) -> None:
        """ "Cannot train yet" must not outlive its cause."""
        if self.banner.isVisible() and self.banner.text().startswith("Cannot train yet"):
            problems = self.problems()
            if not problems:
                self._set_banner("")
            else:
                self._set_banner("Cannot train yet:\n• " + "\n• ".join(problems), "error")

    def _update_dataset_status(self) -> None:
        d = self.state.config.data
        text = f"data: {d.source}"
        p = self.state.prepared
        if p is not None and self.data_session.is_current():
            text += f" · train {len(p.train)} · dev {len(p.dev)} · test {len(p.test)}"
            text += f" · {p.n_features} features · {p.n_classes} classes"
        elif self.data_session.is_loading():
            text += " · loading…"
        self.dataset_status.setText(text)

    # ------------------------------------------------------------ closing
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        """Ask about unsaved changes, stop a live run and wait for it before the window goes away."""
        if not self._settle_unsaved():
            event.ignore()
            return
        self.lessons.shutdown()
        self.session.shutdown()
        self.sweep_panel.shutdown()  # cancels a running sweep and waits: no trial outlives the window
        self.data_session.shutdown()
        self.current_model.shutdown()
        for runner in self.findChildren(TaskRunner):  # no thread outlives the window
            runner.shutdown()
        self.settings.set_geometry(self.saveGeometry())
        for name, splitter in (
            ("main", self.main_splitter),
            ("results", self.results_splitter),
            ("bottom", self.bottom_splitter),
        ):
            self.settings.set_splitter_state(name, splitter.saveState())
        self.settings.sync()
        super().closeEvent(event)
