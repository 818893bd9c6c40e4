"""The Sweep tab (``sweepPanel``): vary config fields around the current experiment, run the
trials on a local or an existing Dask cluster, and read validation curves, learning curves and
parallel coordinates from the results.

Left: the setup — the fields to vary (:class:`gui.views.sweep_params.SweepParamsEditor`), grid
or random sampling, the trial budget, the seeds per point, pruning by successive halving, the
cluster (``schedulerEdit``: empty = a local cluster of ``workersSpin`` processes, or
``tcp://HOST:PORT``) and the sweep folder (``sweepFolderEdit``: by default a new
``sweeps/<date-time>`` folder beside the window's runs folder; an existing sweep folder resumes
it). Start checks everything with the engine before anything starts; Cancel stops running
trials at their next mini-batch and leaves nothing running on the cluster.

When the tab is narrow (a 1024×768 window), Start hides the setup; "Show setup" brings it back.

Right: the validation curve (``validationCurvePlot``; a learning curve when the training-set
size is varied), the parallel coordinates (two or more fields; brushing filters the trials
table, hovering a line highlights its rows), the sortable trials table (``sweepTrialsTable``)
and the selected trial's curves (``trialCurvePlot``: live while it runs). "Use best"
(``useBestTrialButton``) makes the best trial's config the experiment.

The current run stays the session's: finished trials join the runs table as ordinary runs
(``sweep: l2=0.01 seed 0``, Show unticked); selecting a trial here shows its curves in this
tab's own small plot and does not change the current run; "Make current run" (or a double
click) makes a finished trial the current run of the whole window. The sweep runs in a child
process (:class:`gui.models.sweep_session.SweepSession`, :mod:`engine.sweep_process`): the Dask
client and scheduler never share the window's GIL; this view refreshes on the session's
``changed`` signal (≤ 10 Hz).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.config import ExperimentConfig, load_config
from engine.diagnosis import DEFAULT_TOLERANCE
from engine.errors import InputError
from engine.history import RunHistory
from engine.sweep import PruneSettings, SweepDefinition, make_definition
from engine.sweep_results import (
    best_point,
    best_trial,
    learning_curve,
    parallel_coordinates,
    validation_curve,
)
from gui.models.sweep_session import SweepSession, elapsed_text, now_stamp
from gui.models.sweep_trials import SweepTrialsModel, TrialsProxy, short_name, trial_label, value_text
from gui.models.training_session import TrainingSession
from gui.panels.widgets import ERROR_STYLE, INFO_STYLE
from gui.state import ExperimentState
from gui.tasks import TaskRunner
from gui.views.parallel_coordinates import ParallelCoordinatesView
from gui.views.sweep_params import SweepParamsEditor
from gui.views.sweep_plots import TrialCurvePlot, ValidationCurvePlot, legend_html

CURVE_MS = 250
NARROW = 900  # below this width Start hides the setup (Show setup brings it back)
CURVE_HINT = (
    "Start a sweep to see train and dev error against the setting you vary: the validation curve "
    "(a learning curve when you vary the number of training examples)."
)
PC_HINT = "Vary two or more fields to compare the trials on parallel coordinates."
# the engine names command-line options; the window names its controls
_WINDOW_WORDS = (
    ("--sample random needs --budget N", "random sampling needs a trial budget"),
    ("--budget", "trial budget"),
    ("--seeds", "seeds per point"),
    ("--eta", "halving factor"),
    ("--min-epochs", "first rung"),
    ("--seed", "sampling seed"),
    ("--param ", ""),
    ("--scheduler", "cluster"),
    ("--out", "sweep folder"),
    ("--workers", "workers"),
)


def window_words(message: str) -> str:
    for cli, ours in _WINDOW_WORDS:
        message = message.replace(cli, ours)
    return message


class SweepPanel(QWidget):
    """The Sweep tab (see the module docstring). Signals: ``finished(outcome)`` once a sweep
    ended and the tab shows its results; ``failed(message)`` when it stopped with an error."""

    finished = Signal(object)
    failed = Signal(str)

    def __init__(
        self,
        state: ExperimentState,
        history: RunHistory,
        session: TrainingSession,
        runs_dir: str | Path,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.setObjectName("sweepPanel")
        self.state = state
        self.history = history
        self.session = session
        self.sweeps_dir = Path(runs_dir).parent / "sweeps"
        self.sweep = SweepSession(history, self)
        self.human_error = 0.0
        self._human_for: object = None
        self._human_task = TaskRunner(self)
        self._human_task.finished.connect(self._on_human_error)
        self._shown_rows = -1  # rows drawn in the curves (redraw when more arrive)
        self._selected_trial: str | None = None
        self._folder_is_default = True
        self.last_message = ""

        self._build_setup()
        self._build_results()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setObjectName("sweepSplitter")
        splitter.addWidget(self.setup_scroll)
        splitter.addWidget(self.results)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setCollapsible(1, False)
        splitter.setSizes([270, 730])
        self.splitter = splitter
        # Start, Cancel, the progress and what went wrong stay in sight with the setup hidden
        self.setup_toggle = QPushButton("Hide setup")
        self.setup_toggle.setObjectName("sweepSetupToggle")
        self.setup_toggle.setCheckable(True)
        self.setup_toggle.setChecked(True)
        self.setup_toggle.setToolTip("Show or hide the sweep's settings (more room for the results)")
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.start_button)
        bar.addWidget(self.cancel_button)
        bar.addWidget(self.progress_bar, 1)
        bar.addWidget(self.setup_toggle)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.setSpacing(3)
        lay.addLayout(bar)
        lay.addWidget(self.status_label)
        lay.addWidget(self.message_label)
        lay.addWidget(splitter, 1)
        # while a sweep runs, the results are redrawn at most every CURVE_MS, in a tick of their
        # own (not the one that added a finished trial to the runs table), and only the result
        # view on show; the other one when it is shown
        self._curve_timer = QTimer(self)
        self._curve_timer.setSingleShot(True)
        self._curve_timer.setInterval(CURVE_MS)
        self._stale: set[str] = set()
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(150)
        self._connect_signals()

        self._new_default_folder()
        self._on_sampling_changed()
        self._on_prune_toggled(False)
        self._on_state_config_changed("all")
        self._refresh()

    def _connect_signals(self) -> None:
        self.setup_toggle.toggled.connect(self._on_setup_toggled)
        self.splitter.splitterMoved.connect(lambda *_a: self._sync_setup_toggle())
        self.params.changed.connect(self._schedule_preview)
        self.sampling_combo.currentIndexChanged.connect(self._on_sampling_changed)
        for spin in (
            self.budget_spin,
            self.sample_seed_spin,
            self.seeds_spin,
            self.eta_spin,
            self.min_epochs_spin,
        ):
            spin.valueChanged.connect(self._schedule_preview)
        self.prune_check.toggled.connect(self._on_prune_toggled)
        self.scheduler_edit.textChanged.connect(self._on_scheduler_changed)
        self.folder_edit.textEdited.connect(self._on_folder_edited)
        self.folder_button.clicked.connect(self._on_folder_button_clicked)
        self.open_button.clicked.connect(self._on_open_button_clicked)
        self.start_button.clicked.connect(lambda: self.start())
        self.cancel_button.clicked.connect(self.cancel)
        self.use_best_button.clicked.connect(lambda: self.use_best())
        self.make_current_button.clicked.connect(lambda: self.make_trial_current())
        self.curve_field_combo.currentIndexChanged.connect(lambda _i: self._draw_view("curve"))
        self.state.configChanged.connect(self._on_state_config_changed)
        self.sweep.started.connect(lambda _d: self._refresh())
        self.sweep.clusterReady.connect(lambda _c: self._refresh())
        self.sweep.changed.connect(self._refresh)
        self.sweep.finished.connect(self._on_sweep_finished)
        self.sweep.failed.connect(self._on_sweep_failed)
        self.pc_view.brushChanged.connect(self._on_brush_changed)
        self.pc_view.hovered.connect(self.trials_model.set_highlight)
        self.trials_table.selectionModel().selectionChanged.connect(self._on_trial_selection_changed)
        self.trials_table.doubleClicked.connect(lambda _i: self.make_trial_current())
        self._curve_timer.timeout.connect(lambda: self._draw_curves())
        self.result_tabs.currentChanged.connect(self._on_result_tab_changed)
        self._preview_timer.timeout.connect(self.preview)

    # ------------------------------------------------------------ construction
    def _build_setup(self) -> None:
        self.base_label = QLabel("")
        self.base_label.setObjectName("sweepBaseLabel")
        self.base_label.setWordWrap(True)
        self.base_label.setStyleSheet(INFO_STYLE)
        self.params = SweepParamsEditor()
        vary = QGroupBox("Vary")
        vl = QVBoxLayout(vary)
        vl.setContentsMargins(6, 6, 6, 6)
        vl.addWidget(self.params)

        self.sampling_combo = QComboBox()
        self.sampling_combo.setObjectName("samplingCombo")
        self.sampling_combo.addItem("grid", "grid")
        self.sampling_combo.addItem("random", "random")
        self.sampling_combo.setToolTip("grid: every combination of the values; random: draw points")
        self.budget_spin = QSpinBox()
        self.budget_spin.setObjectName("budgetSpin")
        self.budget_spin.setRange(0, 100_000)
        self.budget_spin.setSpecialValueText("no limit")
        self.budget_spin.setToolTip("random: how many points to draw; grid: the most points it may have")
        self.sample_seed_spin = QSpinBox()
        self.sample_seed_spin.setObjectName("sampleSeedSpin")
        self.sample_seed_spin.setRange(0, 2**31 - 1)
        self.sample_seed_spin.setToolTip("seed of the random draw of points")
        self.seeds_spin = QSpinBox()
        self.seeds_spin.setObjectName("seedsSpin")
        self.seeds_spin.setRange(1, 1000)
        self.seeds_spin.setToolTip(
            "runs per point with training.seed + 0 … K−1: the curves show mean ± spread over them"
        )
        self.prune_check = QCheckBox("Prune bad trials (halving)")
        self.prune_check.setObjectName("pruneCheck")
        self.prune_check.setToolTip(
            "At epochs r, r·η, r·η², … a trial goes on only if its dev loss is among the best 1/η of "
            "the trials that reached that epoch; the others are marked pruned"
        )
        self.eta_spin = QSpinBox()
        self.eta_spin.setObjectName("etaSpin")
        self.eta_spin.setRange(2, 100)
        self.eta_spin.setValue(3)
        self.eta_spin.setToolTip("reduction factor η: the best 1/η go on at each rung")
        self.min_epochs_spin = QSpinBox()
        self.min_epochs_spin.setObjectName("minEpochsSpin")
        self.min_epochs_spin.setRange(1, 100_000)
        self.min_epochs_spin.setToolTip("epoch of the first rung (r)")
        sampling = QGroupBox("Sampling")
        sf = QFormLayout(sampling)
        sf.setContentsMargins(6, 6, 6, 6)
        sf.addRow("Points", self.sampling_combo)
        sf.addRow("Trial budget", self.budget_spin)
        sf.addRow("Sampling seed", self.sample_seed_spin)
        sf.addRow("Seeds per point", self.seeds_spin)
        sf.addRow(self.prune_check)
        prune_row = QHBoxLayout()
        prune_row.addWidget(QLabel("η"))
        prune_row.addWidget(self.eta_spin)
        prune_row.addWidget(QLabel("first rung"))
        prune_row.addWidget(self.min_epochs_spin)
        sf.addRow(prune_row)

        self.scheduler_edit = QLineEdit()
        self.scheduler_edit.setObjectName("schedulerEdit")
        self.scheduler_edit.setPlaceholderText("empty: this computer; or tcp://HOST:PORT")
        self.scheduler_edit.setToolTip(
            "Empty: a local Dask cluster started for the sweep. tcp://HOST:PORT: an existing Dask "
            "cluster (its scheduler and workers need RegLab installed); it stays up afterwards"
        )
        self.workers_spin = QSpinBox()
        self.workers_spin.setObjectName("workersSpin")
        self.workers_spin.setRange(0, 256)
        self.workers_spin.setSpecialValueText("one per core")
        self.workers_spin.setToolTip("worker processes of the local cluster (one thread each)")
        self.folder_edit = QLineEdit()
        self.folder_edit.setObjectName("sweepFolderEdit")
        self.folder_edit.setToolTip(
            "Where the sweep is written: sweep.json, results.csv / results.jsonl and one run folder "
            "per trial under trials/. An existing sweep folder with the same sweep resumes it."
        )
        self.folder_button = QPushButton("Choose…")
        self.folder_button.setObjectName("sweepFolderButton")
        self.open_button = QPushButton("Open sweep…")
        self.open_button.setObjectName("openSweepButton")
        self.open_button.setToolTip("Show the results of a sweep folder (and fill in its settings)")
        where = QGroupBox("Where")
        wf = QFormLayout(where)
        wf.setContentsMargins(6, 6, 6, 6)
        wf.addRow("Cluster", self.scheduler_edit)
        wf.addRow("Local workers", self.workers_spin)
        wf.addRow("Folder", self.folder_edit)
        fb = QHBoxLayout()
        fb.addStretch(1)
        fb.addWidget(self.folder_button)
        fb.addWidget(self.open_button)
        wf.addRow(fb)

        self.size_label = QLabel("")
        self.size_label.setObjectName("sweepSizeLabel")
        self.size_label.setWordWrap(True)
        self.start_button = QPushButton("Start sweep")
        self.start_button.setObjectName("startSweepButton")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelSweepButton")
        self.progress_bar = QProgressBar()
        self.progress_bar.setObjectName("sweepProgress")
        self.progress_bar.setFormat("%v / %m trials")
        self.status_label = QLabel("")
        self.status_label.setObjectName("sweepStatus")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_label = QLabel("")
        self.message_label.setObjectName("sweepMessage")
        self.message_label.setWordWrap(True)
        self.message_label.setStyleSheet(ERROR_STYLE)
        self.message_label.setVisible(False)

        setup = QWidget()
        setup.setObjectName("sweepSetup")
        sl = QVBoxLayout(setup)
        sl.setContentsMargins(4, 4, 4, 4)
        sl.addWidget(self.base_label)
        sl.addWidget(vary)
        sl.addWidget(sampling)
        sl.addWidget(where)
        sl.addWidget(self.size_label)
        sl.addStretch(1)
        self.setup_scroll = QScrollArea()
        self.setup_scroll.setWidgetResizable(True)
        self.setup_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setup_scroll.setWidget(setup)
        self.setup_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setup_scroll.setMinimumWidth(setup.minimumSizeHint().width() + 16)

    def _build_results(self) -> None:
        self.curve_field_combo = QComboBox()
        self.curve_field_combo.setObjectName("curveFieldCombo")
        # the field names are long (regularization.keep_prob): shown whole, not cut to "regulariz"
        self.curve_field_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.curve_field_combo.setToolTip(
            "The field on the curve's x axis; the others stay at the best point"
        )
        self.best_label = QLabel("")
        self.best_label.setObjectName("sweepBestLabel")
        self.best_label.setMinimumWidth(40)  # a long best point is cut, not widening the tab
        self.best_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.use_best_button = QPushButton("Use best")
        self.use_best_button.setObjectName("useBestTrialButton")
        self.use_best_button.setToolTip("Make the best trial's config (lowest mean dev error) the experiment")
        top = QHBoxLayout()
        top.addWidget(QLabel("x axis"))
        top.addWidget(self.curve_field_combo)
        top.addWidget(self.best_label, 1)
        top.addWidget(self.use_best_button)

        self.curve_plot = ValidationCurvePlot()
        self.curve_hint = _hint(CURVE_HINT)
        self.curve_stack = QStackedWidget()
        self.curve_stack.addWidget(self.curve_hint)
        self.curve_stack.addWidget(self.curve_plot)
        self.pc_view = ParallelCoordinatesView()
        self.pc_hint = _hint(PC_HINT)
        self.pc_stack = QStackedWidget()
        self.pc_stack.addWidget(self.pc_hint)
        self.pc_stack.addWidget(self.pc_view)
        self.result_tabs = QTabWidget()
        self.result_tabs.setObjectName("sweepResultTabs")
        self.result_tabs.addTab(self.curve_stack, "Validation curve")
        self.result_tabs.addTab(self.pc_stack, "Parallel coordinates")
        self.legend_label = QLabel(legend_html())  # beside the tabs: the plot keeps its height
        self.legend_label.setObjectName("validationCurveLegend")
        self.legend_label.setContentsMargins(0, 0, 6, 0)
        self.result_tabs.setCornerWidget(self.legend_label, Qt.Corner.TopRightCorner)

        self.trials_model = SweepTrialsModel(self)
        self.trials_proxy = TrialsProxy(self)
        self.trials_proxy.setSourceModel(self.trials_model)
        self.trials_table = QTableView()
        self.trials_table.setObjectName("sweepTrialsTable")
        self.trials_table.setModel(self.trials_proxy)
        self.trials_table.setSortingEnabled(True)
        self.trials_table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # definition order until asked
        self.trials_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.trials_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.trials_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.trials_table.verticalHeader().setVisible(False)
        self.trials_table.setAlternatingRowColors(True)
        self.trials_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.trials_table.verticalHeader().setDefaultSectionSize(22)
        self.trials_label = QLabel("<b>Trials</b>")
        self.trials_label.setObjectName("sweepTrialsLabel")
        self.make_current_button = QPushButton("Make current run")
        self.make_current_button.setObjectName("trialMakeCurrentButton")
        self.make_current_button.setToolTip(
            "Make the selected (finished) trial the window's current run: the Curves tab, the "
            "diagnosis and the runs table follow it"
        )
        th = QHBoxLayout()
        th.addWidget(self.trials_label, 1)
        th.addWidget(self.make_current_button)
        trials_box = QWidget()
        tl = QVBoxLayout(trials_box)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addLayout(th)
        tl.addWidget(self.trials_table, 1)
        self.trial_plot = TrialCurvePlot()
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.setObjectName("sweepBottomSplitter")
        bottom.addWidget(trials_box)
        bottom.addWidget(self.trial_plot)
        bottom.setStretchFactor(0, 3)
        bottom.setStretchFactor(1, 2)
        bottom.setSizes([460, 240])

        upper = QWidget()
        ul = QVBoxLayout(upper)
        ul.setContentsMargins(0, 0, 0, 0)
        ul.addLayout(top)
        ul.addWidget(self.result_tabs, 1)
        self.results = QSplitter(Qt.Orientation.Vertical)
        self.results.setObjectName("sweepResultsSplitter")
        self.results.addWidget(upper)
        self.results.addWidget(bottom)
        self.results.setStretchFactor(0, 3)
        self.results.setStretchFactor(1, 2)
        self.results.setSizes([400, 160])

    # ------------------------------------------------------------ building the sweep
    def base_config(self) -> ExperimentConfig:
        """The sweep's base: the current experiment."""
        return self.state.config

    def definition(self) -> SweepDefinition:
        """The sweep the controls describe (ConfigError in the window's words when it is not valid)."""
        base = self.base_config()
        try:
            params = self.params.build(base)
            prune = None
            if self.prune_check.isChecked():
                prune = PruneSettings(eta=self.eta_spin.value(), min_epochs=self.min_epochs_spin.value())
            return make_definition(
                base,
                params,
                sampling=self.sampling_combo.currentData(),
                budget=self.budget_spin.value() or None,
                sample_seed=self.sample_seed_spin.value(),
                seeds=self.seeds_spin.value(),
                prune=prune,
            )
        except InputError as exc:
            raise type(exc)(window_words(str(exc))) from None

    def scheduler(self) -> str | None:
        text = self.scheduler_edit.text().strip()
        if not text:
            return None
        from engine.sweep_cli import _check_address  # the command line's own check

        try:
            _check_address(text)
        except InputError as exc:
            raise type(exc)(window_words(str(exc))) from None
        return text

    def preview(self) -> None:
        """Say how many trials the controls make, or what is wrong with them."""
        try:
            d = self.definition()
            self.scheduler()
        except InputError as exc:
            self.size_label.setText(str(exc))
            self.size_label.setStyleSheet(ERROR_STYLE)
            return
        seeds = d.seeds
        points = len(d.trials) // seeds
        text = f"{points} point{'s' if points != 1 else ''} × {seeds} seed{'s' if seeds != 1 else ''} = "
        text += f"{len(d.trials)} trial{'s' if len(d.trials) != 1 else ''}"
        self.size_label.setText(text)
        self.size_label.setStyleSheet("")

    def start(self) -> bool:
        """Check the settings with the engine and start the sweep; False (and a message) when
        refused, before any folder or process is made. The folder itself is checked by the
        sweep process as it prepares it (a folder holding another sweep is refused there, in a
        fraction of a second, before any cluster starts)."""
        if self.sweep.is_running():
            return False
        self._set_message("")
        try:
            definition = self.definition()
            scheduler = self.scheduler()
            text = self.folder_edit.text().strip()
            if not text:
                raise InputError("choose a sweep folder")
            out = Path(text).expanduser()
            if out.exists() and not out.is_dir():
                raise InputError(f"sweep folder {out}: exists and is not a folder")
        except InputError as exc:
            self._set_message(f"Cannot start the sweep: {exc}")
            return False
        workers = None if scheduler else (self.workers_spin.value() or None)
        self._estimate_human_error(definition.base)
        if self.width() < NARROW and self.setup_toggle.isChecked():
            self.setup_toggle.setChecked(False)  # a small window: the results get the room
        self.sweep.start(definition, out, workers=workers, scheduler=scheduler)
        self._begin(definition)
        self._refresh()
        return True

    def cancel(self) -> None:
        self.sweep.cancel()
        self._refresh()

    def shutdown(self) -> None:
        """Cancel a running sweep and wait for it (the window is closing)."""
        self.sweep.shutdown()
        self._human_task.shutdown()

    def is_running(self) -> bool:
        return self.sweep.is_running()

    # ------------------------------------------------------------ a sweep folder
    def open_sweep(self, path: str | Path) -> bool:
        """Show a sweep folder's results, put its trials in the runs table and fill in its
        settings (Start then resumes it if the experiment is its base)."""
        from engine.config import ConfigError
        from engine.sweep_results import read_sweep

        if self.sweep.is_running():
            self._set_message("A sweep is running: cancel it before opening another.")
            return False
        path = Path(path)
        try:
            raw, rows = read_sweep(path)
            definition = SweepDefinition.from_dict(raw)
        except (InputError, ConfigError, KeyError, TypeError, ValueError) as exc:
            self._set_message(f"Cannot open {path}: {exc}")
            return False
        self._set_message("")
        self._fill_controls(definition)
        self.folder_edit.setText(str(path))
        self._folder_is_default = False
        self._estimate_human_error(definition.base)
        self.sweep.show_finished(definition, path, rows)
        self._begin(definition)
        self.refresh()
        return True

    def _fill_controls(self, d: SweepDefinition) -> None:
        while len(self.params.rows) > len(d.params):
            self.params.remove_row(self.params.rows[-1])
        while len(self.params.rows) < len(d.params):
            self.params.add_row()
        for row, p in zip(self.params.rows, d.params):
            row.set_field(p.field)
            spec = p.text.partition("=")[2]
            kind = spec.split(":", 1)[0]
            if p.range is not None and kind in ("log", "lin"):
                row.set_mode(kind)
                row.set_range(p.range[1], p.range[2], len(p.values) or None)
            else:
                row.set_mode("list")
                row.values_edit.setText(spec)
        self.sampling_combo.setCurrentIndex(self.sampling_combo.findData(d.sampling))
        self.budget_spin.setValue(d.budget or 0)
        self.sample_seed_spin.setValue(d.sample_seed)
        self.seeds_spin.setValue(d.seeds)
        self.prune_check.setChecked(d.prune is not None)
        if d.prune is not None:
            self.eta_spin.setValue(d.prune.eta)
            self.min_epochs_spin.setValue(d.prune.min_epochs)

    # ------------------------------------------------------------ showing a sweep
    def _begin(self, definition: SweepDefinition) -> None:
        """Reset the results for a sweep about to be shown."""
        self.trials_proxy.set_allowed(None)
        self.trials_model.set_sweep(list(definition.fields), list(definition.trials), self.sweep.states)
        self.curve_field_combo.blockSignals(True)
        self.curve_field_combo.clear()
        for f in definition.fields:
            self.curve_field_combo.addItem(
                "training examples (learning curve)" if f == "data.train_limit" else f, f
            )
        default = "data.train_limit" if "data.train_limit" in definition.fields else definition.fields[0]
        self.curve_field_combo.setCurrentIndex(self.curve_field_combo.findData(default))
        self.curve_field_combo.blockSignals(False)
        # once per sweep (the rows are all there, queued), with room for what the trials will say
        self.trials_table.resizeColumnsToContents()
        room = {"Status": 120, "Train error": 76, "Dev error": 76, "Seconds": 60, "Worker": 150}
        for col, title in enumerate(self.trials_model.columns()):
            if title in room and self.trials_table.columnWidth(col) < room[title]:
                self.trials_table.setColumnWidth(col, room[title])
        self._shown_rows = -1
        self._selected_trial = None
        self.curve_plot.set_curve(None)
        self.pc_view.set_data(None)
        self.trial_plot.set_history(None, "Click a trial to see its curves", [])

    def refresh(self) -> None:
        """Redraw everything from the sweep session (both result views)."""
        self._curve_timer.stop()
        self._refresh()
        self._draw_curves(every_view=True)

    def _refresh(self) -> None:
        """Progress, status, the changed table rows, the curves when results arrived, the
        selected trial's curves. Runs on the sweep session's ≤ 10 Hz tick."""
        s = self.sweep
        running = s.is_running()
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running and s.state != "cancelling")
        for w in (self.params, self.sampling_combo, self.budget_spin, self.sample_seed_spin, self.seeds_spin,
                  self.prune_check, self.scheduler_edit, self.folder_edit, self.folder_button, self.open_button):  # fmt: skip
            w.setEnabled(not running)
        if not running:
            self._on_scheduler_changed(self.scheduler_edit.text())
            self._on_sampling_changed()
            self._on_prune_toggled(self.prune_check.isChecked())
        else:
            for w in (self.workers_spin, self.eta_spin, self.min_epochs_spin):
                w.setEnabled(False)
        p = s.progress
        top, value = (max(1, p.total), p.done) if p is not None else (1, 0)
        # only on change: QProgressBar.setValue repaints at once (~3 ms), at every tick otherwise
        if self.progress_bar.maximum() != top:
            self.progress_bar.setRange(0, top)
        if self.progress_bar.value() != value:
            self.progress_bar.setValue(value)
        text = self.status_text()
        if text != self.status_label.text():
            self.status_label.setText(text)
        dirty = s.take_dirty_trials()
        for tid in dirty:  # those rows repaint; the rest of the table does not
            self.trials_model.update_trial(tid)
        if len(s.rows) != self._shown_rows and not self._curve_timer.isActive():
            self._curve_timer.start()  # new results: redrawn a little later, not in this tick
        if self._selected_trial is not None and (self._selected_trial in dirty or self._shown_rows < 0):
            self._show_trial(self._selected_trial)
        self._update_trial_buttons()

    def status_text(self) -> str:
        s = self.sweep
        p = s.progress
        if s.definition is None:
            return "No sweep yet. Choose the fields to vary and press Start sweep."
        where = f" Folder: {s.out_dir}"
        if s.state == "starting":
            cluster = self.scheduler_edit.text().strip()
            if cluster:
                return f"Connecting to the Dask cluster at {cluster}…"
            n = self.workers_spin.value()
            return f"Starting a local Dask cluster ({n or 'one per core'} workers)…"
        if s.state == "ending":
            return "Finishing: the last trials are joining the runs table…"
        if s.state == "cancelling":
            return "Cancelling: running trials stop at their next mini-batch; the cluster is being shut down…"
        if s.is_running() and p is not None:
            eta = f" · ETA {elapsed_text(p.eta_seconds)}" if p.eta_seconds is not None else ""
            pruned = f" · {p.pruned} pruned" if p.pruned else ""
            kept = f" ({p.resumed} kept from before)" if p.resumed else ""
            return f"{p.done} of {p.total} trials done{kept} · {p.running} running{pruned}{eta} · on {s.cluster}."
        if s.error is not None:
            return f"Stopped by an error: {s.error}.{where}"
        o = s.outcome
        if o is not None:
            if o.cancelled:
                return (
                    f"Cancelled: {o.ran + o.resumed} of {o.total} trials done. Start again with the same "
                    f"settings and folder to run the rest.{where}"
                )
            parts = [f"{o.resumed} kept from before"] if o.resumed else []
            parts += [f"{o.pruned} pruned"] if o.pruned else []
            detail = f" ({', '.join(parts)})" if parts else ""
            return f"Finished: {o.total} trials{detail} in {elapsed_text(o.seconds)}.{where}"
        if p is not None:  # a sweep folder opened from disk
            return f"Opened: {p.done} of {p.total} trials done.{where}"
        return ""

    def _draw_curves(self, every_view: bool = False) -> None:
        """The best point, and the result views from the rows: the one on show (both with
        every_view; the hidden one is drawn when it is shown)."""
        s = self.sweep
        rows = s.rows
        self._shown_rows = len(rows)
        d = s.definition
        field = self.curve_field_combo.currentData()
        if d is None or field is None or not rows:
            self.curve_plot.set_curve(None)
            self.pc_view.set_data(None)
            self._stale.clear()
            self.curve_stack.setCurrentWidget(self.curve_hint)
            self.pc_stack.setCurrentWidget(self.pc_hint)
            self.best_label.setText("")
            self.use_best_button.setEnabled(False)
            return
        self._stale = {"curve", "pc"}
        on_show = "pc" if self.result_tabs.currentWidget() is self.pc_stack else "curve"
        for view in ("curve", "pc") if every_view else (on_show,):
            self._draw_view(view)
        best = best_point(rows)
        if best is not None:
            values = ", ".join(f"{short_name(k)}={value_text(v)}" for k, v in best["values"].items())
            spread = f" ± {best['dev_error_spread']:.4f}" if best["n"] > 1 else ""
            text = f"best: {values} · dev error {best['dev_error']:.4f}{spread}"
            self.best_label.setText(text)
            self.best_label.setToolTip(text)
        else:
            self.best_label.setText("no finished trial to compare (pruned trials are left out)")
        self.use_best_button.setEnabled(best is not None)

    def _draw_view(self, view: str) -> None:
        s = self.sweep
        d, rows = s.definition, s.rows
        self._stale.discard(view)
        if d is None or not rows:
            return
        if view == "curve":
            field = self.curve_field_combo.currentData()
            if field == "data.train_limit":
                curve = learning_curve(rows)
            else:
                curve = validation_curve(rows, field, log=d.param(field).log)
            fixed = ", ".join(f"{short_name(k)}={value_text(v)}" for k, v in curve.fixed.items())
            self.curve_plot.set_curve(
                curve, self.human_error, DEFAULT_TOLERANCE, f"others at the best: {fixed}" if fixed else ""
            )
            self.curve_stack.setCurrentWidget(self.curve_plot if curve.points else self.curve_hint)
            self.result_tabs.setTabText(0, self.curve_plot.kind)
        elif len(d.fields) >= 2:
            self.pc_view.set_data(parallel_coordinates(rows, list(d.fields)))
            self.pc_stack.setCurrentWidget(self.pc_view)
        else:
            self.pc_stack.setCurrentWidget(self.pc_hint)

    def _on_result_tab_changed(self, _index: int) -> None:
        view = "pc" if self.result_tabs.currentWidget() is self.pc_stack else "curve"
        self.legend_label.setVisible(view == "curve")
        if view in self._stale:
            self._draw_view(view)

    # ------------------------------------------------------------ the trials
    def selected_trial(self) -> str | None:
        return self._selected_trial

    def select_trial(self, trial_id: str) -> None:
        """Select a trial's row (as a click does)."""
        src = self.trials_model.row_of(trial_id)
        if src < 0:
            return
        index = self.trials_proxy.mapFromSource(self.trials_model.index(src, 0))
        self.trials_table.selectionModel().select(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        )
        self.trials_table.scrollTo(index)

    def _on_trial_selection_changed(self, *_args) -> None:
        rows = self.trials_table.selectionModel().selectedRows()
        tid = None
        if rows:
            tid = self.trials_model.trial_id_at(self.trials_proxy.mapToSource(rows[0]).row())
        self._selected_trial = tid
        self.pc_view.mark_trials([tid] if tid else [])
        self._show_trial(tid)
        self._update_trial_buttons()

    def _show_trial(self, trial_id: str | None) -> None:
        d = self.sweep.definition
        if trial_id is None or d is None:
            self.trial_plot.set_history(None, "Click a trial to see its curves", [])
            return
        trial = d.trial(trial_id)
        state = self.sweep.states.get(trial_id)
        status = self.trials_model.row_texts(trial_id).get("Status", "")
        records = self.sweep.trial_history(trial_id) if state is not None and state.status != "queued" else []
        self.trial_plot.set_history(
            trial_id, f"{trial_label(dict(trial.values), trial.seed)} · {status}", records
        )

    def _update_trial_buttons(self) -> None:
        state = self.sweep.states.get(self._selected_trial or "")
        ok = state is not None and state.run_key is not None and state.run_key in self.history
        self.make_current_button.setEnabled(ok)

    def make_trial_current(self, trial_id: str | None = None) -> bool:
        """Make a finished trial the window's current run (its Show box ticked: the current run
        is always on the plots)."""
        trial_id = trial_id or self._selected_trial
        state = self.sweep.states.get(trial_id or "")
        if state is None or state.run_key is None or state.run_key not in self.history:
            return False
        try:
            self.history.set_hidden(state.run_key, False)
        except OSError as exc:
            self._set_message(f"Cannot save the visibility in {state.run_key}: {exc.strerror or exc}")
        self.session.set_current(state.run_key)
        return True

    def _on_brush_changed(self, kept) -> None:
        self.trials_proxy.set_allowed(kept)
        shown = self.trials_proxy.rowCount()
        total = self.trials_model.rowCount()
        self.trials_label.setText(
            "<b>Trials</b>"
            if kept is None
            else f"<b>Trials</b> · {shown} of {total} inside the brushed ranges"
        )

    # ------------------------------------------------------------ use best
    def use_best(self) -> bool:
        """Make the best trial's config (lowest mean dev error; its best seed) the experiment."""
        rows = self.sweep.rows
        row = best_trial(rows) if rows else None
        if row is None or self.sweep.out_dir is None:
            self._set_message("No finished trial to use yet.")
            return False
        path = self.sweep.out_dir / row["run_dir"] / "config.json"
        try:
            cfg = load_config(path)
        except InputError as exc:
            self._set_message(f"Cannot use the best trial: {exc}")
            return False
        self.state.set_config(cfg)
        values = ", ".join(f"{short_name(k)}={value_text(v)}" for k, v in row["values"].items())
        self._set_message(
            f"The experiment is now the best trial: {values}, seed {row['seed']} "
            f"(dev error {row['final_dev_error']:.4f}).",
            error=False,
        )
        return True

    # ------------------------------------------------------------ events
    def _on_sweep_finished(self, outcome) -> None:
        self.refresh()
        if outcome is not None and not outcome.cancelled and self._folder_is_default:
            self._new_default_folder()  # the next sweep gets a folder of its own
        self.finished.emit(outcome)

    def _on_sweep_failed(self, message: str) -> None:
        self.refresh()
        started = bool(self.sweep.cluster)  # refused while preparing: it never started
        prefix = "The sweep stopped" if started else "Cannot start the sweep"
        self._set_message(f"{prefix}: {window_words(message)}")
        if self.sweep.error_kind == "internal":
            self.message_label.setToolTip(self.sweep.error_details)
        self.failed.emit(message)

    def _on_state_config_changed(self, _section: str) -> None:
        c = self.state.config
        self.base_label.setText(
            f"Around the current experiment: {c.data.source}, hidden {list(c.model.hidden)}, "
            f"{c.training.epochs} epochs, {c.optimizer.name} α={c.optimizer.lr:g}"
        )
        self._schedule_preview()

    def _schedule_preview(self, *_args) -> None:
        self._preview_timer.start()

    def _on_sampling_changed(self, *_args) -> None:
        random = self.sampling_combo.currentData() == "random"
        running = self.sweep.is_running()
        self.sample_seed_spin.setEnabled(random and not running)
        self.budget_spin.setSpecialValueText("no limit" if not random else "choose")
        self._schedule_preview()

    def _on_prune_toggled(self, on: bool) -> None:
        running = self.sweep.is_running()
        self.eta_spin.setEnabled(on and not running)
        self.min_epochs_spin.setEnabled(on and not running)
        self._schedule_preview()

    def _on_scheduler_changed(self, text: str) -> None:
        self.workers_spin.setEnabled(not text.strip() and not self.sweep.is_running())
        self._schedule_preview()

    def _on_setup_toggled(self, shown: bool) -> None:
        sizes = self.splitter.sizes()
        total = sum(sizes)
        if shown and sizes[0] == 0:
            self.splitter.setSizes([min(270, total // 2), total - min(270, total // 2)])
        elif not shown and sizes[0] > 0:
            self.splitter.setSizes([0, total])
        self.setup_toggle.setText("Hide setup" if shown else "Show setup")

    def _sync_setup_toggle(self) -> None:
        shown = self.splitter.sizes()[0] > 0
        if shown != self.setup_toggle.isChecked():
            self.setup_toggle.setChecked(shown)

    def _on_folder_edited(self, _text: str) -> None:
        self._folder_is_default = False

    def _new_default_folder(self) -> None:
        path = self.sweeps_dir / now_stamp()
        n = 2
        while path.exists():
            path = self.sweeps_dir / f"{now_stamp()}-{n}"
            n += 1
        self.folder_edit.setText(str(path))
        self._folder_is_default = True

    def _choose_directory(self, title: str) -> str:
        start = self.folder_edit.text().strip() or str(self.sweeps_dir)
        return QFileDialog.getExistingDirectory(self, title, str(Path(start).parent))

    def _on_folder_button_clicked(self) -> None:
        path = self._choose_directory("Sweep folder (a new or empty folder, or a sweep to resume)")
        if path:
            self.folder_edit.setText(path)
            self._folder_is_default = False

    def _on_open_button_clicked(self) -> None:
        path = self._choose_directory("Open a sweep folder")
        if path:
            self.open_sweep(path)

    def _estimate_human_error(self, base: ExperimentConfig) -> None:
        """The human-level error the regions are measured against, as the diagnosis uses it
        (a generated 2-D set's Bayes error takes up to a second the first time: off the GUI thread)."""
        if base.diagnosis.human_error is not None:
            self.human_error = float(base.diagnosis.human_error)
            self._human_for = None
            return
        data = base.data
        self._human_for = data

        def work(_ctx):
            from engine.blas import limited
            from engine.diagnosis import estimate_human_error

            with limited(1):
                return data, estimate_human_error(data)[0]

        self._human_task.start(work)

    def _on_human_error(self, result) -> None:
        data, value = result
        if data == self._human_for:
            self.human_error = float(value)
            if self.sweep.rows:
                self._draw_view("curve")

    def _set_message(self, text: str, error: bool = True) -> None:
        """A refusal or an error (red), or a note on what an action did."""
        self.last_message = text
        self.message_label.setText(text)
        self.message_label.setStyleSheet(ERROR_STYLE if error else "")
        self.message_label.setVisible(bool(text))


def _hint(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setStyleSheet(INFO_STYLE)
    label.setMargin(20)
    return label
