"""Data panel: source, split, separate dev/test sources, normalization, and what was loaded.

Loading (``engine.prepare.load_sources``) and preparing (``prepare_from_sources``, which
fits the normalization statistics) both run through a :class:`TaskRunner`, with a
progress bar and a Cancel button; results land in ``state.set_data``. Config edits are
reconciled after a short debounce: a change of the source or its generation settings
reloads, a change of split / stratify / normalize only prepares again. Per-split,
per-class counts are computed live with ``engine.prepare.set_counts`` (cheap, GUI thread).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.config import BUILTIN_2D, BUILTIN_IMAGES, SPLIT_PRESETS, DataConfig, ExperimentConfig
from engine.dataset import PreparedData, SourceData
from engine.errors import DataError, InputError
from gui.panels.dialogs import SkippedFilesDialog
from gui.panels.widgets import ERROR_STYLE, WARN_STYLE, ImageGrid, hint_label
from gui.state import ExperimentState
from gui.tasks import TaskRunner

BUILTINS = (*BUILTIN_2D, *BUILTIN_IMAGES)
CUSTOM = "Custom"
MISMATCH_TEXT = (
    "Dev and test come from different sources. Dev and test should come from the same "
    "distribution — the one you care about doing well on; training data may differ."
)
_PREPARE_ONLY = ("split", "stratify", "normalize")  # data fields that need no reload
_N_CLASSES_SOURCES = ("spiral", "blobs", "shapes")  # built-ins whose class count is configurable
_SET_NAMES = ("train", "dev", "test")
_MAX_SCATTER = 2000
_MAX_NORM_IMAGES = 400
_DEBOUNCE_MS = 250


def load_key(data: DataConfig) -> str:
    """Everything that decides what load_sources returns."""
    d = {k: v for k, v in dataclasses.asdict(data).items() if k not in _PREPARE_ONLY}
    return json.dumps(d, sort_keys=True)


def prepare_key(data: DataConfig) -> str:
    return json.dumps(dataclasses.asdict(data), sort_keys=True)


def builtin_name(source: str | None) -> str | None:
    if source and source.startswith("builtin:"):
        return source.split(":", 1)[1]
    return None


def _class_colors(n: int) -> list:
    return [pg.intColor(i, hues=max(n, 1), values=1, maxValue=220) for i in range(n)]


# ---------------------------------------------------------------- worker-side helpers (no Qt widgets)


def _prepare(cfg: ExperimentConfig, sources: dict[str, SourceData]) -> tuple[PreparedData | None, str | None]:
    from engine.prepare import prepare_from_sources

    try:
        return prepare_from_sources(cfg, sources), None
    except InputError as exc:
        return None, str(exc)


def _source_views(sources: dict[str, SourceData]) -> dict:
    """Thumbnails per class (images) or a subsample of points (2-D) of the main source."""
    main = sources["main"]
    rng = np.random.default_rng(0)
    if main.is_image:
        per_class = 4 if len(main.classes) <= 8 else 2
        try:
            from engine.images import preview_images

            thumbs = preview_images(main, per_class, rng)
        except ImportError:  # engine.images not finished yet: the first images of each class
            thumbs = {
                name: main.X[np.flatnonzero(main.y == c)[:per_class]] for c, name in enumerate(main.classes)
            }
        return {"thumbnails": thumbs}
    X = np.asarray(main.X)
    idx = (
        np.arange(len(X))
        if len(X) <= _MAX_SCATTER
        else np.sort(rng.choice(len(X), _MAX_SCATTER, replace=False))
    )
    return {"points": (X[idx, :2].astype(np.float64), main.y[idx])}


def _norm_views(prepared: PreparedData | None) -> dict | None:
    """Before/after views of the training split: per-channel pixel histograms or 2-D points."""
    if prepared is None or len(prepared.train) == 0:
        return None
    from engine.normalization import apply_standardizer, feature_matrix

    X, y = prepared.train, prepared.train.y  # an ArraySet: indexing reads rows, never the whole set
    rng = np.random.default_rng(0)
    limit = _MAX_NORM_IMAGES if prepared.is_image else _MAX_SCATTER
    if len(X) > limit:
        idx = np.sort(rng.choice(len(X), limit, replace=False))
        X, y = X[idx], y[idx]
    before = feature_matrix(X)
    after = apply_standardizer(before, prepared.norm_mean, prepared.norm_std)
    if not prepared.is_image:
        return {"kind": "points", "before": before[:, :2], "after": after[:, :2], "y": y}
    c = prepared.input_shape[2]
    hist_before, hist_after = [], []
    for ch in range(c):
        b = before[:, ch::c].ravel()
        a = after[:, ch::c].ravel()
        hist_before.append(np.histogram(b, bins=40, range=(0.0, 1.0)))
        lo, hi = float(np.min(a)), float(np.max(a))
        hist_after.append(np.histogram(a, bins=40, range=(lo, hi if hi > lo else lo + 1.0)))
    return {"kind": "hist", "before": hist_before, "after": hist_after, "channels": c}


class DataPanel(QWidget):
    """Choose and load the data, set the split and normalization, and see what was loaded.

    error_dialog(message) shows load/prepare errors (a QMessageBox by default; tests pass
    their own callable). autoload loads the configured source when the state has none.
    """

    def __init__(
        self,
        state: ExperimentState,
        parent: QWidget | None = None,
        *,
        error_dialog: Callable[[str], None] | None = None,
        autoload: bool = True,
    ):
        super().__init__(parent)
        self.setObjectName("dataPanel")
        self._state = state
        self._updating = False
        self._error_dialog = error_dialog or self._message_box
        self._loaded_key: str | None = None  # load_key of state.sources
        self._prepared_key: str | None = None  # prepare_key of state.prepared / prepare_error
        self._loaded_data: DataConfig | None = None  # data config of state.sources
        self._loading_key: str | None = None
        self._preparing_key: str | None = None
        self._load_error: str | None = None  # loading failed and no earlier data is loaded
        self._failed_message: str | None = None  # loading failed; the earlier data stays in use
        self._attempted_key: str | None = None  # load_key of the last load started
        self._split_written: list[float] | None = None
        self.skipped: list[dict] = []
        self.skipped_dialog: SkippedFilesDialog | None = None
        self.views: dict = {}

        root = QVBoxLayout(self)
        root.setContentsMargins(4, 4, 4, 4)
        root.addWidget(self._build_source_group())
        root.addWidget(self._build_loaded_group())
        root.addWidget(self._build_split_group())
        root.addWidget(self._build_separate_group())
        root.addWidget(self._build_norm_group())
        root.addStretch(1)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(_DEBOUNCE_MS)
        self._timer.timeout.connect(self._reconcile)
        self._load_runner = TaskRunner(self)
        self._load_runner.progressed.connect(self._on_load_progressed)
        self._load_runner.finished.connect(self._on_load_finished)
        self._load_runner.errored.connect(self._on_load_errored)
        self._load_runner.aborted.connect(self._on_load_aborted)
        self._prepare_runner = TaskRunner(self)
        self._prepare_runner.finished.connect(self._on_prepare_finished)
        self._prepare_runner.errored.connect(self._on_prepare_errored)

        if state.sources:  # data loaded by someone else: assume it matches the config
            self._loaded_key = load_key(state.config.data)
            self._prepared_key = prepare_key(state.config.data)
            self._loaded_data = dataclasses.replace(state.config.data)
        state.configChanged.connect(self._on_state_config_changed)
        state.dataChanged.connect(self._on_state_data_changed)
        self.refresh()
        self._on_state_data_changed()
        if autoload and not state.sources:
            self.load()

    # ------------------------------------------------------------ building

    def _build_source_group(self) -> QGroupBox:
        box = QGroupBox("Source")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.builtin_combo = QComboBox()
        self.builtin_combo.setObjectName("builtinCombo")
        self.builtin_combo.addItems(list(BUILTINS))
        self.builtin_combo.setToolTip("Generated datasets: 2-D point sets, or 'shapes' images")
        self.builtin_combo.currentTextChanged.connect(self._on_builtin_combo_changed)
        form.addRow("Built-in", self.builtin_combo)

        self.open_folder_button = QPushButton("Open folder…")
        self.open_folder_button.setObjectName("openFolderButton")
        self.open_folder_button.setToolTip(
            "A folder with one sub-folder per class, train/dev/test folders, MNIST idx or CIFAR-10 batches"
        )
        self.open_folder_button.clicked.connect(self._on_open_folder_clicked)
        self.open_file_button = QPushButton("Open .npz…")
        self.open_file_button.setObjectName("openFileButton")
        self.open_file_button.setToolTip("An .npz file with arrays X and y")
        self.open_file_button.clicked.connect(self._on_open_file_clicked)
        row = QHBoxLayout()
        row.addWidget(self.open_folder_button)
        row.addWidget(self.open_file_button)
        form.addRow("Or", row)
        self.source_label = hint_label("", object_name="sourceLabel")
        form.addRow(self.source_label)

        self.n_samples_spin = QSpinBox()
        self.n_samples_spin.setObjectName("nSamplesSpin")
        self.n_samples_spin.setRange(4, 200_000)
        self.n_samples_spin.setSingleStep(100)
        self.n_samples_spin.setKeyboardTracking(False)
        self.n_samples_spin.valueChanged.connect(lambda v: self._write(n_samples=int(v)))
        form.addRow("Samples", self.n_samples_spin)
        self.noise_spin = QDoubleSpinBox()
        self.noise_spin.setObjectName("dataNoiseSpin")
        self.noise_spin.setRange(0.0, 5.0)
        self.noise_spin.setSingleStep(0.05)
        self.noise_spin.setKeyboardTracking(False)
        self.noise_spin.valueChanged.connect(lambda v: self._write(noise=float(v)))
        form.addRow("Noise", self.noise_spin)
        self.n_classes_spin = QSpinBox()
        self.n_classes_spin.setObjectName("nClassesSpin")
        self.n_classes_spin.setRange(2, 10)
        self.n_classes_spin.setKeyboardTracking(False)
        self.n_classes_spin.valueChanged.connect(lambda v: self._write(n_classes=int(v)))
        form.addRow("Classes", self.n_classes_spin)

        self.image_h_spin = QSpinBox()
        self.image_h_spin.setObjectName("imageHeightSpin")
        self.image_w_spin = QSpinBox()
        self.image_w_spin.setObjectName("imageWidthSpin")
        for spin in (self.image_h_spin, self.image_w_spin):
            spin.setRange(4, 1024)
            spin.setKeyboardTracking(False)
            spin.setSuffix(" px")
            spin.valueChanged.connect(self._on_image_size_changed)
        size_row = QHBoxLayout()
        size_row.addWidget(self.image_h_spin)
        size_row.addWidget(hint_label("×"))
        size_row.addWidget(self.image_w_spin)
        form.addRow("Image size (H × W)", size_row)
        self._size_row = size_row
        self.color_combo = QComboBox()
        self.color_combo.setObjectName("colorCombo")
        self.color_combo.addItems(["rgb", "gray"])
        self.color_combo.currentTextChanged.connect(lambda t: self._write(color=t))
        form.addRow("Colour", self.color_combo)
        self.seed_spin = QSpinBox()
        self.seed_spin.setObjectName("dataSeedSpin")
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setKeyboardTracking(False)
        self.seed_spin.setToolTip("Seed of data generation and of the split")
        self.seed_spin.valueChanged.connect(lambda v: self._write(seed=int(v)))
        form.addRow("Data seed", self.seed_spin)
        self._source_form = form

        self.load_progress = QProgressBar()
        self.load_progress.setObjectName("loadProgress")
        self.load_progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelLoadButton")
        self.cancel_button.clicked.connect(self.cancel_load)
        self.reload_button = QPushButton("Reload")
        self.reload_button.setObjectName("reloadButton")
        self.reload_button.setToolTip("Load the source again (e.g. after files changed on disk)")
        self.reload_button.clicked.connect(self.load)
        prow = QHBoxLayout()
        prow.addWidget(self.load_progress, 1)
        prow.addWidget(self.cancel_button)
        prow.addWidget(self.reload_button)
        form.addRow(prow)
        self.load_progress.setVisible(False)
        self.cancel_button.setVisible(False)
        return box

    def _build_loaded_group(self) -> QGroupBox:
        box = QGroupBox("Loaded data")
        lay = QVBoxLayout(box)
        self.status_label = hint_label("", object_name="dataStatusLabel")
        lay.addWidget(self.status_label)
        self.error_label = hint_label("", ERROR_STYLE, "dataErrorLabel")
        self.error_label.setVisible(False)
        lay.addWidget(self.error_label)
        self.skipped_button = QPushButton("")
        self.skipped_button.setObjectName("skippedButton")
        self.skipped_button.setFlat(True)
        self.skipped_button.setStyleSheet(
            "color: palette(link); text-decoration: underline; text-align: left;"
        )
        self.skipped_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.skipped_button.clicked.connect(self.show_skipped)
        self.skipped_button.setVisible(False)
        lay.addWidget(self.skipped_button)
        self.classes_table = QTableWidget(0, 2)
        self.classes_table.setObjectName("classesTable")
        self.classes_table.setHorizontalHeaderLabels(["class", "examples"])
        self._setup_table(self.classes_table)
        lay.addWidget(self.classes_table)

        self.scatter_plot = pg.PlotWidget()
        self.scatter_plot.setObjectName("dataScatter")
        self.scatter_plot.setMinimumHeight(220)
        self.scatter_plot.setMaximumHeight(280)
        self.scatter_plot.setAspectLocked(True)
        self.scatter_plot.hideButtons()
        self.scatter_item = pg.ScatterPlotItem(size=5, pen=None)
        self.scatter_plot.addItem(self.scatter_item)
        self.thumbnail_grid = ImageGrid(columns=4, cell=64)
        self.thumbnail_grid.setObjectName("thumbnailGrid")
        # one of the two is shown; a hidden widget takes no room in the layout
        lay.addWidget(self.scatter_plot)
        lay.addWidget(self.thumbnail_grid)
        self.thumbnail_grid.setVisible(False)
        return box

    def _build_split_group(self) -> QGroupBox:
        box = QGroupBox("Train / dev / test split")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.preset_combo = QComboBox()
        self.preset_combo.setObjectName("splitPresetCombo")
        self.preset_combo.addItems([*SPLIT_PRESETS, CUSTOM])
        self.preset_combo.currentTextChanged.connect(self._on_preset_changed)
        form.addRow("Preset", self.preset_combo)
        self.frac_spins: list[QDoubleSpinBox] = []
        row = QHBoxLayout()
        for name, label in (("trainFracSpin", "train"), ("devFracSpin", "dev"), ("testFracSpin", "test")):
            spin = QDoubleSpinBox()
            spin.setObjectName(name)
            spin.setRange(0.0, 1.0)
            spin.setDecimals(3)
            spin.setSingleStep(0.05)
            spin.setKeyboardTracking(False)
            spin.setToolTip(f"Fraction of the examples in the {label} set")
            spin.valueChanged.connect(self._on_fraction_changed)
            self.frac_spins.append(spin)
            row.addWidget(spin)
        form.addRow("train / dev / test", row)
        self.stratify_check = QCheckBox("Stratify (keep class proportions in every set)")
        self.stratify_check.setObjectName("stratifyCheck")
        self.stratify_check.toggled.connect(lambda b: self._write(stratify=bool(b)))
        form.addRow(self.stratify_check)
        self.split_problem_label = hint_label("", ERROR_STYLE, "splitProblemLabel")
        self.split_problem_label.setVisible(False)
        form.addRow(self.split_problem_label)
        self.split_table = QTableWidget(0, 4)
        self.split_table.setObjectName("splitCountsTable")
        self.split_table.setHorizontalHeaderLabels(["class", "train", "dev", "test"])
        self._setup_table(self.split_table)
        form.addRow(self.split_table)
        self.split_note = hint_label("", object_name="splitNoteLabel")
        form.addRow(self.split_note)
        return box

    def _build_separate_group(self) -> QGroupBox:
        box = QGroupBox("Separate dev / test sources (optional)")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.dev_edit, self.dev_button, self.dev_clear = self._source_row(
            form, "Dev", "devSource", "dev_source"
        )
        self.test_edit, self.test_button, self.test_clear = self._source_row(
            form, "Test", "testSource", "test_source"
        )
        self.mismatch_label = hint_label(MISMATCH_TEXT, WARN_STYLE, "mismatchLabel")
        self.mismatch_label.setVisible(False)
        form.addRow(self.mismatch_label)
        self.compare_label = hint_label("", object_name="compareLabel")
        self.compare_label.setStyleSheet("font-family: monospace; font-size: 9pt;")
        self.compare_label.setVisible(False)
        form.addRow(self.compare_label)
        return box

    def _source_row(self, form: QFormLayout, label: str, prefix: str, field: str):
        edit = QLineEdit()
        edit.setObjectName(f"{prefix}Edit")
        edit.setPlaceholderText(f"none: {label.lower()} comes from the split")
        edit.editingFinished.connect(lambda: self._on_separate_edited(field, edit))
        button = QPushButton("…")
        button.setObjectName(f"{prefix}Button")
        button.setToolTip(f"Choose a {label.lower()} folder (same classes as the main source)")
        button.setMaximumWidth(32)
        button.clicked.connect(lambda: self._on_separate_browse(field))
        clear = QPushButton("✕")
        clear.setObjectName(f"{prefix}ClearButton")
        clear.setToolTip(f"No separate {label.lower()} source")
        clear.setMaximumWidth(32)
        clear.clicked.connect(lambda: self._write(**{field: None}))
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        row.addWidget(button)
        row.addWidget(clear)
        form.addRow(label, row)
        return edit, button, clear

    def _build_norm_group(self) -> QGroupBox:
        box = QGroupBox("Input normalization")
        lay = QVBoxLayout(box)
        self.normalize_check = QCheckBox("Standardize: subtract the training mean, divide by the std")
        self.normalize_check.setObjectName("normalizeCheck")
        self.normalize_check.toggled.connect(lambda b: self._write(normalize="standard" if b else "none"))
        lay.addWidget(self.normalize_check)
        row = QHBoxLayout()
        self.norm_before_plot = self._small_plot("normBeforePlot", "before")
        self.norm_after_plot = self._small_plot("normAfterPlot", "after")
        row.addWidget(self.norm_before_plot)
        row.addWidget(self.norm_after_plot)
        lay.addLayout(row)
        self.norm_note = hint_label("", object_name="normNoteLabel")
        lay.addWidget(self.norm_note)
        return box

    @staticmethod
    def _small_plot(name: str, title: str) -> pg.PlotWidget:
        plot = pg.PlotWidget()
        plot.setObjectName(name)
        plot.setTitle(title, size="9pt")
        plot.setMinimumHeight(150)
        plot.setMaximumHeight(190)
        plot.setMinimumWidth(120)
        plot.hideButtons()
        plot.setMenuEnabled(False)
        return plot

    @staticmethod
    def _setup_table(table: QTableWidget) -> None:
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)

    @staticmethod
    def _fit_table(table: QTableWidget, max_rows: int = 12) -> None:
        rows = min(max(table.rowCount(), 1), max_rows)
        row_h = table.verticalHeader().defaultSectionSize()
        table.setFixedHeight(
            table.horizontalHeader().sizeHint().height() + rows * row_h + 2 * table.frameWidth() + 2
        )

    # ------------------------------------------------------------ config -> widgets

    def _on_state_config_changed(self, section: str) -> None:
        if section in ("data", "all"):
            self.refresh()
            self._timer.start()
        if section == "all":
            self._update_split_view()

    def refresh(self) -> None:
        """Set every control from config.data (no writes back)."""
        d = self._state.config.data
        self._updating = True
        try:
            name = builtin_name(d.source)
            self.builtin_combo.setCurrentIndex(self.builtin_combo.findText(name) if name in BUILTINS else -1)
            self.source_label.setText(f"Built-in generated set '{name}'" if name else f"Path: {d.source}")
            self.n_samples_spin.setValue(d.n_samples)
            self.noise_spin.setValue(d.noise)
            self.n_classes_spin.setValue(d.n_classes)
            self.image_h_spin.setValue(d.image_size[0])
            self.image_w_spin.setValue(d.image_size[1])
            self.color_combo.setCurrentText(d.color)
            self.seed_spin.setValue(d.seed)
            is_builtin = name is not None
            is_image = name is None or name in BUILTIN_IMAGES
            self._source_form.setRowVisible(self.n_samples_spin, is_builtin)
            self._source_form.setRowVisible(self.noise_spin, is_builtin)
            self._source_form.setRowVisible(self.n_classes_spin, name in _N_CLASSES_SOURCES)
            self._source_form.setRowVisible(self.color_combo, is_image)
            self._source_form.setRowVisible(self._size_row, is_image)
            # keep an invalid custom split the user is still typing
            pending = self._split_written == list(d.split) and bool(self._fraction_problem())
            if not pending:
                for spin, f in zip(self.frac_spins, d.split):
                    spin.setValue(f)
                self.preset_combo.setCurrentText(self._preset_of(d.split))
            self.stratify_check.setChecked(d.stratify)
            self.normalize_check.setChecked(d.normalize == "standard")
            self.dev_edit.setText(d.dev_source or "")
            self.test_edit.setText(d.test_source or "")
        finally:
            self._updating = False
        self._update_split_view()
        self._update_mismatch()

    @staticmethod
    def _preset_of(split: list[float]) -> str:
        for name, fr in SPLIT_PRESETS.items():
            if all(abs(a - b) < 1e-9 for a, b in zip(fr, split)):
                return name
        return CUSTOM

    # ------------------------------------------------------------ widgets -> config

    def _write(self, **fields) -> None:
        if not self._updating:
            self._state.update("data", **fields)

    def _on_builtin_combo_changed(self, name: str) -> None:
        if name:
            self._write(source=f"builtin:{name}")

    def _on_image_size_changed(self) -> None:
        self._write(image_size=[int(self.image_h_spin.value()), int(self.image_w_spin.value())])

    def set_source(self, source: str) -> None:
        """Use a folder, file or builtin:NAME as the main source (loads after the debounce)."""
        self._state.update("data", source=source)

    def _on_open_folder_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open an image folder")
        if path:
            self.set_source(path)

    def _on_open_file_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a dataset file", "", "NumPy arrays (*.npz)")
        if path:
            self.set_source(path)

    def _on_separate_browse(self, field: str) -> None:
        path = QFileDialog.getExistingDirectory(self, f"Choose the {field.split('_')[0]} folder")
        if path:
            self._write(**{field: path})

    def _on_separate_edited(self, field: str, edit: QLineEdit) -> None:
        text = edit.text().strip()
        self._write(**{field: text or None})

    def _on_preset_changed(self, name: str) -> None:
        if self._updating:
            return
        if name in SPLIT_PRESETS:
            split = list(SPLIT_PRESETS[name])
            self._updating = True
            for spin, f in zip(self.frac_spins, split):
                spin.setValue(f)
            self._updating = False
            self._write_split(split)
        else:
            self._on_fraction_changed()

    def _fractions(self) -> list[float]:
        return [round(float(s.value()), 6) for s in self.frac_spins]

    def _fraction_problem(self) -> str | None:
        fr = self._fractions()
        total = sum(fr)
        if abs(total - 1.0) > 1e-6:
            return f"The split fractions add up to {total:.3g}; they must add up to 1."
        if fr[0] <= 0:
            return "The train fraction must be > 0."
        if fr[1] <= 0:
            return "The dev fraction must be > 0 (the dev set chooses between models)."
        return None

    def _on_fraction_changed(self) -> None:
        if self._updating:
            return
        fr = self._fractions()
        preset = self._preset_of(fr)
        self._updating = True
        self.preset_combo.setCurrentText(preset)
        self._updating = False
        if self._fraction_problem() is None:
            self._write_split(fr)
        self._update_split_view()

    def _write_split(self, split: list[float]) -> None:
        self._split_written = list(split)
        self._write(split=list(split))
        self._update_split_view()

    # ------------------------------------------------------------ loading and preparing

    def load(self) -> None:
        """Load the configured sources in the background, then prepare the split."""
        cfg = self._state.config.copy()
        self._loading_key = load_key(cfg.data)
        self._attempted_key = self._loading_key
        self._load_error = None
        self._failed_message = None

        def job(ctx):
            from engine.prepare import load_sources

            sources = load_sources(cfg.data, progress=lambda d, t: ctx.progress((d, t)), cancel=ctx.cancelled)
            if ctx.cancelled():
                return None
            prepared, error = _prepare(cfg, sources)
            return {
                "cfg": cfg,
                "sources": sources,
                "prepared": prepared,
                "error": error,
                "views": _source_views(sources),
                "norm": _norm_views(prepared),
            }

        self.load_progress.setRange(0, 0)  # busy until the first progress report
        self.load_progress.setFormat(f"loading {cfg.data.source} …")
        self.load_progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.status_label.setText(f"Loading {cfg.data.source} …")
        self._load_runner.start(job)

    def is_loading(self) -> bool:
        return self._load_runner.is_running() or self._loading_key is not None

    def cancel_load(self) -> None:
        """Stop the running load; the previously loaded data stays (and its settings return)."""
        if self._loading_key is None:
            return
        self._load_runner.cancel()
        self._on_load_aborted()

    def _on_load_progressed(self, value) -> None:
        done, total = value
        if total > 0:
            self.load_progress.setRange(0, int(total))
            self.load_progress.setValue(int(done))
            self.load_progress.setFormat(f"loading: {done} / {total}")

    def _end_load_ui(self) -> None:
        self._loading_key = None
        self.load_progress.setVisible(False)
        self.cancel_button.setVisible(False)

    def _on_load_finished(self, result) -> None:
        self._end_load_ui()
        if result is None:
            return
        cfg: ExperimentConfig = result["cfg"]
        self._load_error = None
        self._loaded_key = load_key(cfg.data)
        self._prepared_key = prepare_key(cfg.data)
        self._loaded_data = dataclasses.replace(cfg.data)
        self.views = {**result["views"], "norm": result["norm"]}
        if self._prepared_key != prepare_key(self._state.config.data):
            # the split changed while loading: never publish a split the config no longer describes
            self._prepared_key = None
            self._state.set_data(result["sources"], None, None)
        else:
            self._state.set_data(result["sources"], result["prepared"], result["error"])
            if result["error"]:
                self._error_dialog(result["error"])
        self._reconcile()

    def _on_load_errored(self, message: str) -> None:
        self._end_load_ui()
        if self._state.sources and self._loaded_data is not None:
            # like Cancel: go back to the data that is loaded, so the user can keep working
            # with it (and train) while the message says what went wrong with the new source
            self._failed_message = message
            self._revert_to_loaded()
            self.status_label.setText("Loading failed; the previous data is still loaded and in use.")
        else:
            self._load_error = message
            self.status_label.setText("Loading failed.")
        self._show_errors()
        self._error_dialog(message)

    def _on_load_aborted(self) -> None:
        self._end_load_ui()
        self.status_label.setText("Loading cancelled; the previous data is kept.")
        self._revert_to_loaded()
        self._update_status_text()

    def _revert_to_loaded(self) -> None:
        """Put back the data settings of the data that is actually loaded."""
        if self._loaded_data is None:
            return
        keep = {
            f.name: getattr(self._loaded_data, f.name)
            for f in dataclasses.fields(DataConfig)
            if f.name not in _PREPARE_ONLY
        }
        self._state.update("data", **keep)

    def _start_prepare(self) -> None:
        if not self._state.sources or self._fraction_problem():
            return
        cfg = self._state.config.copy()
        sources = self._state.sources
        self._preparing_key = prepare_key(cfg.data)

        def job(ctx):
            prepared, error = _prepare(cfg, sources)
            return {
                "cfg": cfg,
                "sources": sources,
                "prepared": prepared,
                "error": error,
                "norm": _norm_views(prepared),
            }

        self._prepare_runner.start(job)

    def _on_prepare_finished(self, result) -> None:
        self._preparing_key = None
        if result["sources"] is not self._state.sources:
            return  # data was reloaded meanwhile
        if prepare_key(result["cfg"].data) != prepare_key(self._state.config.data):
            self._reconcile()  # settings changed meanwhile: prepare again, publish nothing stale
            return
        self._prepared_key = prepare_key(result["cfg"].data)
        self.views["norm"] = result["norm"]
        self._state.set_data(result["sources"], result["prepared"], result["error"])

    def _on_prepare_errored(self, message: str) -> None:
        self._preparing_key = None
        self._prepared_key = prepare_key(self._state.config.data)  # do not retry the same settings
        self._state.set_data(self._state.sources, None, message)

    def _reconcile(self) -> None:
        """Reload or re-prepare when the config no longer matches the loaded data."""
        d = self._state.config.data
        lk = load_key(d)
        if self._loading_key is not None:
            if self._loading_key != lk:
                self.load()
            return
        if lk != self._loaded_key:
            if self._load_error is None or lk != self._attempted_key:
                self.load()
            return
        pk = prepare_key(d)
        if pk != self._prepared_key and pk != self._preparing_key:
            self._start_prepare()

    def shutdown(self, msecs: int = 10000) -> bool:
        """Stop timers and background jobs (the window calls this when it closes)."""
        self._timer.stop()
        ok = self._load_runner.shutdown(msecs)
        return self._prepare_runner.shutdown(msecs) and ok

    # ------------------------------------------------------------ data -> views

    def _on_state_data_changed(self) -> None:
        sources = self._state.sources
        main = sources.get("main")
        self.skipped = []
        for key, sd in sources.items():
            for entry in (sd.report or {}).get("skipped", []) or []:
                entry = dict(entry) if isinstance(entry, dict) else {"file": str(entry), "reason": ""}
                if key != "main":
                    entry["file"] = f"[{key}] {entry.get('file', '?')}"
                self.skipped.append(entry)
        n = len(self.skipped)
        self.skipped_button.setText(f"{n} file{'s' if n != 1 else ''} skipped — show")
        self.skipped_button.setVisible(n > 0)
        self._update_classes_table(main)
        self._update_preview(main)
        self._update_norm_plots()
        self._update_status_text()
        self._update_split_view()
        self._update_mismatch()
        self._show_errors()

    def _update_status_text(self) -> None:
        main = self._state.sources.get("main")
        if main is None:
            self.status_label.setText("No data loaded yet.")
            return
        shape = "×".join(str(s) for s in main.X.shape[1:])
        kind = "images" if main.is_image else "points"
        self.status_label.setText(
            f"{main.source}: {len(main.y)} {kind} of shape {shape}, {len(main.classes)} classes."
        )

    def _update_classes_table(self, main: SourceData | None) -> None:
        t = self.classes_table
        if main is None:
            t.setRowCount(0)
            self._fit_table(t)
            return
        counts = np.bincount(main.y, minlength=len(main.classes))
        t.setRowCount(len(main.classes))
        for i, (name, c) in enumerate(zip(main.classes, counts)):
            t.setItem(i, 0, QTableWidgetItem(str(name)))
            item = QTableWidgetItem(str(int(c)))
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            t.setItem(i, 1, item)
        self._fit_table(t, 8)

    def _update_preview(self, main: SourceData | None) -> None:
        if main is None:
            self.scatter_item.setData([], [])
            self.thumbnail_grid.set_images([])
            return
        if main.is_image:
            thumbs = self.views.get("thumbnails")
            if thumbs is None:
                thumbs = _source_views(self._state.sources).get("thumbnails", {})
            images, captions = [], []
            per_row = max((len(v) for v in thumbs.values()), default=4) or 4
            for name, arr in list(thumbs.items())[:12]:
                for img in arr:
                    images.append(img)
                    captions.append(str(name))
                # pad each class to a full row so every row is one class
                for _ in range(per_row - len(arr)):
                    images.append(np.full_like(arr[0], 255) if len(arr) else np.zeros((1, 1, 3), np.uint8))
                    captions.append("")
            self.thumbnail_grid._columns = per_row
            self.thumbnail_grid._cell = 64 if per_row <= 4 else 44
            self.thumbnail_grid.set_images(images, captions)
            self.scatter_plot.setVisible(False)
            self.thumbnail_grid.setVisible(True)
        else:
            pts = self.views.get("points")
            if pts is None:
                pts = _source_views(self._state.sources)["points"]
            X, y = pts
            colors = _class_colors(len(main.classes))
            self.scatter_item.setData(
                x=X[:, 0], y=X[:, 1], brush=[pg.mkBrush(colors[int(c)]) for c in y], pen=None, size=5
            )
            self.scatter_plot.autoRange()
            self.thumbnail_grid.setVisible(False)
            self.scatter_plot.setVisible(True)

    def _update_norm_plots(self) -> None:
        norm = self.views.get("norm")
        prepared = self._state.prepared
        before, after = self.norm_before_plot, self.norm_after_plot
        before.clear()
        after.clear()
        if norm is None or prepared is None:
            self.norm_note.setText("Shown once the training split is prepared.")
            return
        off = self._state.config.data.normalize == "none"
        if norm["kind"] == "points":
            y = norm["y"]
            colors = _class_colors(len(prepared.classes))
            brushes = [pg.mkBrush(colors[int(c)]) for c in y]
            for plot, P in ((before, norm["before"]), (after, norm["after"])):
                plot.addItem(pg.ScatterPlotItem(x=P[:, 0], y=P[:, 1], brush=brushes, pen=None, size=3))
                plot.autoRange()
            mean = prepared.norm_mean[:2]
            std = prepared.norm_std[:2]
            stats = f"train mean ({mean[0]:.3g}, {mean[1]:.3g}), std ({std[0]:.3g}, {std[1]:.3g})"
        else:
            c = norm["channels"]
            pens = ["#d62728", "#2ca02c", "#1f77b4"] if c == 3 else ["#444444"] * c
            for plot, hists in ((before, norm["before"]), (after, norm["after"])):
                for ch, (counts, edges) in enumerate(hists):
                    plot.plot(edges, counts, stepMode="center", pen=pg.mkPen(pens[ch % len(pens)], width=1.5))
                plot.autoRange()
            cm = prepared.norm_mean[:c]
            cs = prepared.norm_std[:c]
            stats = (
                "per-channel train mean "
                + ", ".join(f"{v:.3g}" for v in cm)
                + "; std "
                + ", ".join(f"{v:.3g}" for v in cs)
            )
        if off:
            self.norm_note.setText(
                "Normalization is off: the network sees the raw features (both pictures agree)."
            )
        else:
            self.norm_note.setText(
                f"Fitted on the training split only ({len(prepared.train)} examples), then applied unchanged "
                f"to dev and test: {stats}."
            )

    def _effective_sets(self) -> tuple[list[str], dict[str, str]]:
        """Which sets the split of the main source supplies, and where each set comes from."""
        d = self._state.config.data
        origin = {"train": d.source, "dev": d.dev_source or d.source, "test": d.test_source or d.source}
        from_main = [s for s, field in zip(_SET_NAMES, (None, d.dev_source, d.test_source)) if field is None]
        return from_main, origin

    def split_counts(self) -> dict[str, dict[str, int]] | None:
        """Per-set, per-class counts the current settings give (what the table shows).

        Computed by the engine (engine.prepare.set_counts), so the table shows exactly the
        sets training will use: pre-split parts, a dev set carved from a pre-split train
        part, separate dev/test sources, or the split; a refused split shows its empty cells
        (prepare reports the refusal itself).
        """
        main = self._state.sources.get("main")
        if main is None:
            return None
        from engine.prepare import set_counts

        cfg = self._state.config.copy()
        if self._fraction_problem() is None:  # fractions being edited, not yet in the config
            cfg.data.split = list(self._fractions())
        return set_counts(cfg, self._state.sources, check=False)

    def _update_split_view(self) -> None:
        problem = self._fraction_problem()
        self.split_problem_label.setText("✖ " + problem if problem else "")
        self.split_problem_label.setVisible(problem is not None)
        t = self.split_table
        try:
            counts = self.split_counts()
        except (DataError, ValueError) as exc:
            counts = None
            self.split_note.setText(str(exc))
        main = self._state.sources.get("main")
        if counts is None or main is None:
            t.setRowCount(0)
            self._fit_table(t)
            return
        classes = list(main.classes)
        t.setRowCount(len(classes) + 1)
        for r, name in enumerate([*classes, "total"]):
            head = QTableWidgetItem(str(name))
            t.setItem(r, 0, head)
            for c, s in enumerate(_SET_NAMES, start=1):
                v = sum(counts[s].values()) if name == "total" else counts[s].get(name, 0)
                item = QTableWidgetItem(str(v))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if v == 0 and name != "total" and sum(counts[s].values()) > 0:
                    item.setForeground(Qt.GlobalColor.red)
                t.setItem(r, c, item)
        self._fit_table(t, 12)
        notes = []
        if main.presplit is not None:
            has_dev = len(main.presplit.get("dev", ())) > 0
            notes.append(
                "The source comes split; its parts are used as given."
                if has_dev
                else "The source comes split into train and test only; dev is carved out of its train "
                "part (dev share = dev / (train + dev) of the fractions above)."
            )
        from_main, _ = self._effective_sets()
        if len(from_main) < 3 and main.presplit is None:
            notes.append(
                "Sets with a separate source are used whole; the main source is split among the others."
            )
        self.split_note.setText(" ".join(notes))
        self.split_note.setVisible(bool(notes))

    def _update_mismatch(self) -> None:
        d = self._state.config.data
        test_used = d.test_source is not None or (d.split[2] > 0 if len(d.split) > 2 else False)
        mismatch = test_used and (d.dev_source or d.source) != (d.test_source or d.source)
        self.mismatch_label.setVisible(mismatch)
        prepared = self._state.prepared
        stats = (prepared.report or {}).get("mismatch") if prepared is not None else None
        text = _format_compare(stats) if (mismatch and stats) else ""
        self.compare_label.setText(text)
        self.compare_label.setVisible(bool(text))

    def _show_errors(self) -> None:
        messages = []
        if self._load_error or self._failed_message:
            messages.append(f"Could not load: {self._load_error or self._failed_message}")
        if self._state.prepare_error:
            messages.append(self._state.prepare_error)
        self.error_label.setText("\n".join("✖ " + m for m in messages))
        self.error_label.setVisible(bool(messages))

    # ------------------------------------------------------------ dialogs and problems

    def show_skipped(self) -> SkippedFilesDialog:
        """Open the skipped-files report (non-blocking)."""
        if self.skipped_dialog is not None:
            self.skipped_dialog.close()
            self.skipped_dialog.deleteLater()
        main = self._state.sources.get("main")
        self.skipped_dialog = SkippedFilesDialog(self.skipped, main.source if main else "", self)
        self.skipped_dialog.show()
        return self.skipped_dialog

    def _message_box(self, message: str) -> None:
        QMessageBox.warning(self, "Data problem", message)

    def problems(self) -> list[str]:
        """Why training cannot start with the current data settings (empty when it can)."""
        out = []
        problem = self._fraction_problem()
        if problem:
            out.append(problem)
        if self._loading_key is not None:
            out.append("The data is still loading.")
        elif self._load_error:
            out.append(f"Could not load the data: {self._load_error}")
        elif not self._state.sources:
            out.append("No data is loaded.")
        elif self._loaded_key != load_key(self._state.config.data):
            out.append("The data settings changed; the data is being reloaded.")
        elif problem is None and self._prepared_key != prepare_key(self._state.config.data):
            out.append("The split is being prepared again.")
        if self._state.prepare_error:
            out.append(self._state.prepare_error)
        return out


def _format_compare(stats: dict) -> str:
    """Short text of the per-set statistics behind the mismatch warning."""
    lines = []
    if not isinstance(stats, dict):
        return ""
    sets = stats.get("sets") or stats.get("sources") or {}
    for name, entry in sets.items():
        if not isinstance(entry, dict):
            continue
        parts = []
        for key, value in entry.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                parts.append(f"{key} {value:.3g}")
            elif (
                isinstance(value, (list, tuple))
                and value
                and len(value) <= 4
                and all(isinstance(v, (int, float)) for v in value)
            ):
                parts.append(f"{key} (" + ", ".join(f"{v:.3g}" for v in value) + ")")
        if parts:
            lines.append(f"{name}: " + ", ".join(parts))
    for key in ("warning", "note"):
        text = stats.get(key)
        if isinstance(text, str) and text:
            lines.append(text)
    return "\n".join(lines)
