"""Data panel: source, split, separate dev/test sources, normalization, and what was loaded.

Loading (``engine.prepare.load_sources``) and preparing (``prepare_from_sources``, which
fits the normalization statistics) both run through a :class:`TaskRunner`, with a
progress bar and a Cancel button; results land in ``state.set_data``. Config edits are
reconciled after a short debounce: a change of the source or its generation settings
reloads, a change of split / stratify / normalize only prepares again. Per-split,
per-class counts are computed live with ``engine.prepare.set_counts`` (cheap, GUI thread).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
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

from engine.config import BUILTIN_2D, BUILTIN_IMAGES, SPLIT_PRESETS, ConfigError, field_spec
from engine.dataset import SourceData
from engine.errors import DataError
from engine.insight.colors import class_palette
from gui.models.data_session import DataSession, source_views
from gui.panels.dialogs import SkippedFilesDialog
from gui.panels.widgets import (
    CONFIG_FIELD,
    ERROR_STYLE,
    WARN_STYLE,
    ImageGrid,
    OptionalSpin,
    SciSpinBox,
    configure_spin,
    hint_label,
    mark_field,
)
from gui.state import ExperimentState

BUILTINS = (*BUILTIN_2D, *BUILTIN_IMAGES)
CUSTOM = "Custom"
MISMATCH_TEXT = (
    "Dev and test come from different sources. Dev and test should come from the same "
    "distribution — the one you care about doing well on; training data may differ."
)
_N_CLASSES_SOURCES = ("spiral", "blobs", "shapes")  # built-ins whose class count is configurable
_SET_NAMES = ("train", "dev", "test")


def builtin_name(source: str | None) -> str | None:
    if source and source.startswith("builtin:"):
        return source.split(":", 1)[1]
    return None


def _class_colors(n: int) -> list:
    """The classes' colours of every view (the decision boundary, the confusion matrix)."""
    return [pg.mkColor(*map(int, rgb)) for rgb in class_palette(n)]


class DataPanel(QWidget):
    """Choose and load the data, set the split and normalization, and see what was loaded.

    problemsChanged: what :meth:`problems` returns may have changed (a split being typed).

    error_dialog(message) shows load/prepare errors (a QMessageBox by default; tests pass
    their own callable). autoload loads the configured source when the state has none.
    """

    problemsChanged = Signal()

    def __init__(
        self,
        state: ExperimentState,
        session: DataSession | None = None,
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
        self._split_written: list[float] | None = None
        self._edit_error: str | None = None  # an edit the config refused (shown, not applied)
        self.skipped: list[dict] = []
        self.skipped_dialog: SkippedFilesDialog | None = None

        root = QVBoxLayout(self)
        root.setContentsMargins(4, 4, 4, 4)
        root.addWidget(self._build_source_group())
        root.addWidget(self._build_loaded_group())
        root.addWidget(self._build_split_group())
        root.addWidget(self._build_separate_group())
        root.addWidget(self._build_norm_group())
        root.addStretch(1)

        owns_session = session is None
        self.session = session if session is not None else DataSession(state, self, autoload=False)
        self.session.loadStarted.connect(self._on_session_load_started)
        self.session.loadProgressed.connect(self._on_session_load_progressed)
        self.session.loadEnded.connect(self._on_session_load_ended)
        self.session.statusChanged.connect(self._on_session_status_changed)
        self.session.errorOccurred.connect(lambda message: self._error_dialog(message))
        self.session.problemsChanged.connect(self._show_errors)
        state.configChanged.connect(self._on_state_config_changed)
        state.dataChanged.connect(self._on_state_data_changed)
        self.refresh()
        self._on_state_data_changed()
        if self.session.is_loading():  # started before this view existed
            self._on_session_load_started(state.config.data.source)
        elif owns_session and autoload and not state.sources:
            self.load()

    # ------------------------------------------------------------ building

    def _build_source_group(self) -> QGroupBox:
        box = QGroupBox("Source")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        # a row too wide for the settings column puts its field under its label (no cut-off)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.builtin_combo = QComboBox()
        mark_field(self.builtin_combo, "data.source", "builtinCombo")
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
        self.open_file_button = QPushButton("Open file…")
        self.open_file_button.setObjectName("openFileButton")
        self.open_file_button.setToolTip(
            "A dataset file: .npz (arrays X and y), a CSV (image paths and labels, or pixels) or Parquet"
        )
        self.open_file_button.clicked.connect(self._on_open_file_clicked)
        row = QHBoxLayout()
        row.addWidget(self.open_folder_button)
        row.addWidget(self.open_file_button)
        form.addRow("Or", row)
        self.source_label = hint_label("", object_name="sourceLabel")
        form.addRow(self.source_label)

        self.n_samples_spin = configure_spin(QSpinBox(), "data.n_samples", name="nSamplesSpin")
        self.n_samples_spin.setSingleStep(100)
        self.n_samples_spin.setKeyboardTracking(False)
        self.n_samples_spin.valueChanged.connect(lambda v: self._write(n_samples=int(v)))
        form.addRow("Samples", self.n_samples_spin)
        self.noise_spin = configure_spin(QDoubleSpinBox(), "data.noise", name="dataNoiseSpin")
        self.noise_spin.setDecimals(2)
        self.noise_spin.setSingleStep(0.05)
        self.noise_spin.setKeyboardTracking(False)
        self.noise_spin.valueChanged.connect(lambda v: self._write(noise=float(v)))
        form.addRow("Noise", self.noise_spin)
        self.n_classes_spin = configure_spin(QSpinBox(), "data.n_classes", name="nClassesSpin")
        self.n_classes_spin.setKeyboardTracking(False)
        self.n_classes_spin.valueChanged.connect(lambda v: self._write(n_classes=int(v)))
        form.addRow("Classes", self.n_classes_spin)

        self.image_h_spin = configure_spin(QSpinBox(), "data.image_size[0]", name="imageHeightSpin")
        self.image_w_spin = configure_spin(QSpinBox(), "data.image_size[1]", name="imageWidthSpin")
        for spin in (self.image_h_spin, self.image_w_spin):
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
        self.color_combo.addItems(list(field_spec("data.color").choices))
        mark_field(self.color_combo, "data.color", "colorCombo")
        self.color_combo.currentTextChanged.connect(lambda t: self._write(color=t))
        form.addRow("Colour", self.color_combo)
        self.seed_spin = configure_spin(QSpinBox(), "data.seed", name="dataSeedSpin")
        self.seed_spin.setKeyboardTracking(False)
        self.seed_spin.valueChanged.connect(lambda v: self._write(seed=int(v)))
        form.addRow("Data seed", self.seed_spin)
        # features on very different scales (the normalization lesson): 2-D sets only
        self.scale_spins = [
            configure_spin(SciSpinBox(1e-3, 1e3, log_step=10**0.5), f"data.feature_scale[{i}]", name=n)
            for i, n in enumerate(("featureScaleXSpin", "featureScaleYSpin"))
        ]
        scale_row = QHBoxLayout()
        for i, spin in enumerate(self.scale_spins):
            spin.valueChanged.connect(self._on_feature_scale_changed)
            scale_row.addWidget(hint_label(f"x{'₁₂'[i]} ×"))
            scale_row.addWidget(spin, 1)
        form.addRow("Feature scale", scale_row)
        self._scale_row = scale_row
        # the image shape of a CSV of pixels (784 columns are inferred as 28×28 gray)
        self.pixel_check = QCheckBox()  # no text: the row must fit the narrow settings column
        self.pixel_check.setObjectName("pixelShapeCheck")
        self.pixel_check.setToolTip(field_spec("data.pixel_shape").help)
        mark_field(self.pixel_check, "data.pixel_shape")
        self.pixel_spins = [QSpinBox(), QSpinBox()]
        for i, (spin, name) in enumerate(zip(self.pixel_spins, ("pixelHeightSpin", "pixelWidthSpin"))):
            spin.setObjectName(name)
            spin.setRange(1, 4096)  # what the validator takes for data.pixel_shape's H and W
            spin.setProperty(CONFIG_FIELD, f"data.pixel_shape[{i}]")
            spin.setValue(28)
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(self._on_pixel_shape_changed)
        self.pixel_channels = QComboBox()
        self.pixel_channels.setObjectName("pixelChannelsCombo")
        self.pixel_channels.addItems(["gray", "rgb"])  # 1 or 3 channels
        self.pixel_channels.setToolTip("Channels of each image: 1 (gray) or 3 (rgb)")
        self.pixel_channels.currentIndexChanged.connect(self._on_pixel_shape_changed)
        self.pixel_check.toggled.connect(self._on_pixel_shape_changed)
        pixel_row = QHBoxLayout()
        pixel_row.addWidget(self.pixel_check)
        pixel_row.addWidget(self.pixel_spins[0], 1)
        pixel_row.addWidget(hint_label("×"))
        pixel_row.addWidget(self.pixel_spins[1], 1)
        pixel_row.addWidget(self.pixel_channels, 1)
        form.addRow("CSV shape", pixel_row)
        self._pixel_row = pixel_row
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
        for i, (name, label) in enumerate(
            (("trainFracSpin", "train"), ("devFracSpin", "dev"), ("testFracSpin", "test"))
        ):
            spin = configure_spin(QDoubleSpinBox(), f"data.split[{i}]", name=name)
            spin.setDecimals(3)
            spin.setSingleStep(0.05)
            spin.setKeyboardTracking(False)
            spin.setToolTip(f"Fraction of the examples in the {label} set")
            spin.valueChanged.connect(self._on_fraction_changed)
            self.frac_spins.append(spin)
            row.addWidget(spin)
        form.addRow("train / dev / test", row)
        self.stratify_check = QCheckBox("Stratify (keep class proportions in every set)")
        mark_field(self.stratify_check, "data.stratify", "stratifyCheck")
        self.stratify_check.toggled.connect(lambda b: self._write(stratify=bool(b)))
        form.addRow(self.stratify_check)
        self.train_limit = OptionalSpin("data.train_limit", "at most", QSpinBox(), "trainLimit")
        self.train_limit.edited.connect(lambda v: self._write(train_limit=v))
        form.addRow("Training examples", self.train_limit)
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
        self.test_noise = OptionalSpin("data.test_noise", "noise", QDoubleSpinBox(), "testNoise")
        self.test_noise.edited.connect(lambda v: self._write(test_noise=v))
        form.addRow("Generated test set", self.test_noise)
        self._test_noise_form = form
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
        mark_field(edit, f"data.{field}", f"{prefix}Edit")
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
        self.normalize_check = QCheckBox("Standardize (training mean and std)")
        self.normalize_check.setToolTip("Subtract the training set's mean and divide by its std, per input")
        mark_field(self.normalize_check, "data.normalize", "normalizeCheck")
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
            self._source_form.setRowVisible(self._scale_row, is_builtin and not is_image)
            self._source_form.setRowVisible(self._pixel_row, not is_builtin)
            for spin, v in zip(self.scale_spins, d.feature_scale):
                spin.setValue(v)
            self.pixel_check.setChecked(d.pixel_shape is not None)
            if d.pixel_shape is not None:
                self.pixel_spins[0].setValue(d.pixel_shape[0])
                self.pixel_spins[1].setValue(d.pixel_shape[1])
                self.pixel_channels.setCurrentIndex(0 if d.pixel_shape[2] == 1 else 1)
            for w in (*self.pixel_spins, self.pixel_channels):
                w.setEnabled(d.pixel_shape is not None)
            self.train_limit.set_value(d.train_limit)
            self.test_noise.set_value(d.test_noise)
            self._test_noise_form.setRowVisible(
                self.test_noise, bool(d.test_source and d.test_source.startswith("builtin:"))
            )
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
        if self._updating:
            return
        try:
            self._state.update("data", **fields)
        except ConfigError as exc:  # e.g. a typed source that names no dataset: say so, keep the config
            self._edit_error = str(exc)
            self.refresh()
        else:
            self._edit_error = None
        self._show_errors()

    def _on_builtin_combo_changed(self, name: str) -> None:
        if name:
            self._write(source=f"builtin:{name}")

    def _on_image_size_changed(self) -> None:
        self._write(image_size=[int(self.image_h_spin.value()), int(self.image_w_spin.value())])

    def _on_feature_scale_changed(self) -> None:
        self._write(feature_scale=[float(s.value()) for s in self.scale_spins])

    def _on_pixel_shape_changed(self, *_args) -> None:
        on = self.pixel_check.isChecked()
        for w in (*self.pixel_spins, self.pixel_channels):
            w.setEnabled(on)
        shape = [
            self.pixel_spins[0].value(),
            self.pixel_spins[1].value(),
            1 + 2 * self.pixel_channels.currentIndex(),
        ]
        self._write(pixel_shape=shape if on else None)

    def set_source(self, source: str) -> None:
        """Use a folder, file or builtin:NAME as the main source (loads after the debounce)."""
        self._state.update("data", source=source)

    def _on_open_folder_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open an image folder")
        if path:
            self.set_source(path)

    def _on_open_file_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open a dataset file",
            "",
            "Datasets (*.npz *.csv *.parquet);;NumPy arrays (*.npz);;CSV: image list or pixels (*.csv);;"
            "Parquet (*.parquet);;All files (*)",
        )
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
        self.problemsChanged.emit()

    def _write_split(self, split: list[float]) -> None:
        self._split_written = list(split)
        self._write(split=list(split))
        self._update_split_view()

    # ------------------------------------------------------------ loading (the session does it)

    def load(self) -> None:
        self.session.load()

    def is_loading(self) -> bool:
        return self.session.is_loading()

    def cancel_load(self) -> None:
        self.session.cancel()

    @property
    def views(self) -> dict:
        return self.session.views

    def _on_session_load_started(self, source: str) -> None:
        self.load_progress.setRange(0, 0)  # busy until the first progress report
        self.load_progress.setFormat(f"loading {source} …")
        self.load_progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.status_label.setText(f"Loading {source} …")

    def _on_session_load_progressed(self, done: int, total: int) -> None:
        if total > 0:
            self.load_progress.setRange(0, int(total))
            self.load_progress.setValue(int(done))
            self.load_progress.setFormat(f"loading: {done} / {total}")

    def _on_session_load_ended(self) -> None:
        self.load_progress.setVisible(False)
        self.cancel_button.setVisible(False)

    def _on_session_status_changed(self, text: str) -> None:
        if text:
            self.status_label.setText(text)
        else:
            self._update_status_text()
        self._show_errors()

    def shutdown(self, msecs: int = 10000) -> bool:
        return self.session.shutdown(msecs)

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
                thumbs = source_views(self._state.sources).get("thumbnails", {})
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
                pts = source_views(self._state.sources)["points"]
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

        cfg = self._state.config
        if self._fraction_problem() is None:  # fractions being edited, not yet in the config
            cfg = cfg.replace(**{"data.split": list(self._fractions())})
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
        messages = [self._edit_error] if self._edit_error else []
        failed = self.session.load_error or self.session.failed_message
        if failed:
            messages.append(f"Could not load: {failed}")
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
        problem = self._fraction_problem()
        return ([problem] if problem else []) + self.session.problems()


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
