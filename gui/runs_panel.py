"""The runs table: every finished run with the settings that set it apart and its results.

A row shows: a checkbox that shows/hides the run's overlay on the plots, an editable
name (persisted in the run folder as ``reglab_gui.json``), the settings that differ
between runs (``l2=0.01, keep_prob=0.8``), best dev accuracy, test accuracy (only once
the user evaluated it), epochs, stop reason, and cost figures (seconds, seconds per
epoch, samples per second, parameter memory). File operations (delete, evaluate) are
asked for through signals; the window does them.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.fileio import atomic_write_json

GUI_FILE = "reglab_gui.json"  # window-only metadata of a run (its display name, hidden flag)
COLUMNS = [
    "Show",
    "Name",
    "Settings",
    "Dev acc @ best",
    "Test acc",
    "Epochs",
    "Stop",
    "Seconds",
    "s/epoch",
    "Samples/s",
    "Params",
]
COL_SHOW, COL_NAME, COL_SETTINGS, COL_BEST, COL_TEST = 0, 1, 2, 3, 4
# settings always shown for a lone run; with several runs only the differing ones are shown
KEY_SETTINGS = (
    "model.hidden",
    "regularization.l2",
    "regularization.l1",
    "regularization.keep_prob",
    "optimizer.lr",
    "training.epochs",
)
IGNORED_PREFIXES = ("diagnosis.",)


@dataclass
class RunEntry:
    """One run as the window shows it. key: the run folder path (str)."""

    key: str
    name: str
    config: dict
    metrics: list[dict]
    summary: dict | None
    color: str
    hidden: bool = False
    param_count: int = 0
    param_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return Path(self.key)

    def best_dev_acc(self) -> float | None:
        accs = [m.get("dev_acc") for m in self.metrics if m.get("dev_acc") is not None]
        best_epoch = (self.summary or {}).get("best_epoch")
        for m in self.metrics:
            if best_epoch and m.get("epoch") == best_epoch and m.get("dev_acc") is not None:
                return float(m["dev_acc"])
        return max(accs) if accs else None

    def seconds(self) -> float:
        return float(sum(m.get("seconds") or 0.0 for m in self.metrics))

    def seconds_per_epoch(self) -> float | None:
        return self.seconds() / len(self.metrics) if self.metrics else None

    def samples_per_sec(self) -> float | None:
        v = [m["samples_per_sec"] for m in self.metrics if m.get("samples_per_sec")]
        return float(np.mean(v)) if v else None

    def stop_reason(self) -> str:
        if self.summary is None:
            return "incomplete"
        return str(self.summary.get("stop_reason") or "")


_STAMPED = re.compile(r"^run-(\d{8})-(\d{2})(\d{2})(\d{2})-(\d+)$")


def default_run_name(run_dir: str | Path) -> str:
    """A short display name: 'run 09:51:14' for the window's run-YYYYMMDD-HHMMSS-NN folders."""
    name = Path(run_dir).name
    m = _STAMPED.match(name)
    if not m:
        return name
    suffix = "" if m.group(5) == "01" else f" ({int(m.group(5))})"
    return f"run {m.group(2)}:{m.group(3)}:{m.group(4)}{suffix}"


def read_gui_meta(run_dir: str | Path) -> dict:
    path = Path(run_dir) / GUI_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        return meta if isinstance(meta, dict) else {}
    except (OSError, ValueError):
        return {}


def write_gui_meta(run_dir: str | Path, **fields: Any) -> None:
    meta = read_gui_meta(run_dir)
    meta.update(fields)
    atomic_write_json(Path(run_dir) / GUI_FILE, meta)


def param_size(model_path: str | Path) -> tuple[int, int]:
    """(number of parameters, bytes) of the W*/b* arrays in a model.npz, read from headers only."""
    count = nbytes = 0
    try:
        with zipfile.ZipFile(model_path) as zf:
            for name in zf.namelist():
                stem = name[:-4] if name.endswith(".npy") else name
                if not (stem[:1] in ("W", "b") and stem[1:].isdigit()):
                    continue
                with zf.open(name) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                n = int(np.prod(shape)) if shape else 1
                count += n
                nbytes += n * np.dtype(dtype).itemsize
    except (OSError, zipfile.BadZipFile, ValueError):
        return 0, 0
    return count, nbytes


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


# leaf names that mean nothing on their own ("enabled=True", "name=sgd"): shown by their section
_SECTION_NAMED = {"early_stopping.enabled": "early_stopping", "optimizer.name": "optimizer"}


def _short_names(keys: list[str]) -> dict[str, str]:
    """Last component of each dotted key, unless two keys share it (then the full key)."""
    last = [_SECTION_NAMED.get(k, k.rsplit(".", 1)[-1]) for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt_value(x) for x in v) + "]"
    return str(v)


def settings_diff(configs: list[dict]) -> list[str]:
    """For each config, 'name=value' pairs of the settings that differ between the configs.

    With a single config, a few key settings are listed instead.
    """
    flats = [_flatten(c) for c in configs]
    if not flats:
        return []
    keys = list(
        dict.fromkeys(k for f in flats for k in f if not k.startswith(IGNORED_PREFIXES))
    )  # config order
    if len(flats) == 1:
        differing = [k for k in KEY_SETTINGS if k in flats[0]]
    else:
        differing = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1]
    short = _short_names(differing)
    return [", ".join(f"{short[k]}={_fmt_value(f.get(k))}" for k in differing) for f in flats]


def _fmt_num(v: float | None, fmt: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return format(v, fmt)


def fmt_bytes(n: int) -> str:
    if n <= 0:
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


class RunsPanel(QWidget):
    """Table of runs. Signals: visibilityChanged(key, visible), renamed(key, name),
    deleteRequested(key), evaluateRequested(key), selectedChanged(key or '')."""

    visibilityChanged = Signal(str, bool)
    renamed = Signal(str, str)
    deleteRequested = Signal(str)
    evaluateRequested = Signal(str)
    selectedChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("runsPanel")
        self._entries: list[RunEntry] = []
        self._filling = False
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("runsTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeaderItem(COLUMNS.index("Dev acc @ best")).setToolTip(
            "Dev accuracy at the best epoch (chosen by the early-stopping monitor, dev loss by default)"
        )
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked
        )
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COL_SETTINGS, QHeaderView.ResizeMode.Stretch)
        self.table.setAlternatingRowColors(True)
        self.delete_button = QPushButton("Delete run")
        self.delete_button.setObjectName("deleteRunButton")
        self.evaluate_button = QPushButton("Evaluate on test…")
        self.evaluate_button.setObjectName("evaluateTestButton")
        self.evaluate_button.setToolTip(
            "The test set is for the final, unbiased estimate; looking at it while tuning "
            "leaks it into your choices."
        )
        self.test_label = QLabel("")
        self.test_label.setObjectName("testResultLabel")
        buttons = QHBoxLayout()
        title = QLabel("<b>Runs</b>")
        title.setToolTip("Tick a run to overlay its dev curves; double-click a name to rename it")
        buttons.addWidget(title)
        buttons.addStretch(1)
        buttons.addWidget(self.test_label)
        buttons.addWidget(self.evaluate_button)
        buttons.addWidget(self.delete_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(buttons)
        lay.addWidget(self.table, 1)
        self.table.itemChanged.connect(self._on_table_item_changed)
        self.table.itemSelectionChanged.connect(self._on_table_selection_changed)
        self.delete_button.clicked.connect(self._on_delete_clicked)
        self.evaluate_button.clicked.connect(self._on_evaluate_clicked)
        self._update_buttons()

    # ------------------------------------------------------------ entries
    def entries(self) -> list[RunEntry]:
        return list(self._entries)

    def entry(self, key: str) -> RunEntry | None:
        return next((e for e in self._entries if e.key == key), None)

    def add_entry(self, entry: RunEntry) -> None:
        self._entries = [e for e in self._entries if e.key != entry.key] + [entry]
        self._fill()

    def remove_entry(self, key: str) -> None:
        self._entries = [e for e in self._entries if e.key != key]
        self._fill()

    def update_entry(self, entry: RunEntry) -> None:
        self._fill()

    def selected_key(self) -> str:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return ""
        row = rows[0].row()
        return self._entries[row].key if 0 <= row < len(self._entries) else ""

    def select(self, key: str) -> None:
        for row, e in enumerate(self._entries):
            if e.key == key:
                self.table.selectRow(row)
                return

    def row_texts(self, key: str) -> dict[str, str]:
        """Cell texts of one run by column name (for the window and tests)."""
        for row, e in enumerate(self._entries):
            if e.key == key:
                return {
                    c: (self.table.item(row, i).text() if self.table.item(row, i) else "")
                    for i, c in enumerate(COLUMNS)
                }
        return {}

    # ------------------------------------------------------------ table
    def _fill(self) -> None:
        selected = self.selected_key()
        self._filling = True
        try:
            diffs = settings_diff([e.config for e in self._entries])
            self.table.setRowCount(len(self._entries))
            for row, (e, diff) in enumerate(zip(self._entries, diffs)):
                show = QTableWidgetItem()
                show.setFlags(
                    Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                )
                show.setCheckState(Qt.CheckState.Unchecked if e.hidden else Qt.CheckState.Checked)
                show.setToolTip("Show this run's curves as an overlay")
                name = QTableWidgetItem(e.name)
                name.setFlags(name.flags() | Qt.ItemFlag.ItemIsEditable)
                pix = QPixmap(12, 12)
                pix.fill(QColor(e.color))
                name.setIcon(QIcon(pix))
                name.setToolTip(e.key)
                test_acc = (e.summary or {}).get("test_acc")
                spe = e.seconds_per_epoch()
                cells = [
                    show,
                    name,
                    QTableWidgetItem(diff),
                    QTableWidgetItem(_fmt_num(e.best_dev_acc(), ".4f")),
                    QTableWidgetItem(_fmt_num(test_acc, ".4f")),
                    QTableWidgetItem(str(len(e.metrics))),
                    QTableWidgetItem(e.stop_reason()),
                    QTableWidgetItem(_fmt_num(e.seconds(), ".2f")),
                    QTableWidgetItem(_fmt_num(spe * 1000 if spe else None, ".1f") + (" ms" if spe else "")),
                    QTableWidgetItem(_fmt_num(e.samples_per_sec(), ",.0f")),
                    QTableWidgetItem(
                        f"{e.param_count:,} ({fmt_bytes(e.param_bytes)})" if e.param_count else "—"
                    ),
                ]
                for col, item in enumerate(cells):
                    if col != COL_NAME and col != COL_SHOW:
                        item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                    if col >= COL_BEST:
                        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                    self.table.setItem(row, col, item)
                self.table.item(row, COL_SETTINGS).setToolTip(diff)
        finally:
            self._filling = False
        if selected:
            self.select(selected)
        self._update_buttons()

    def _on_table_item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling:
            return
        row = item.row()
        if not 0 <= row < len(self._entries):
            return
        e = self._entries[row]
        if item.column() == COL_SHOW:
            visible = item.checkState() == Qt.CheckState.Checked
            if e.hidden == (not visible):
                return
            e.hidden = not visible
            self.visibilityChanged.emit(e.key, visible)
        elif item.column() == COL_NAME:
            name = item.text().strip()
            if not name:
                self._fill()
                return
            if name != e.name:
                e.name = name
                self.renamed.emit(e.key, name)

    def set_visible(self, key: str, visible: bool) -> None:
        """Tick or untick the Show box of a run (as a click does)."""
        for row, e in enumerate(self._entries):
            if e.key == key:
                self.table.item(row, COL_SHOW).setCheckState(
                    Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked
                )

    def _on_table_selection_changed(self) -> None:
        self._update_buttons()
        self.selectedChanged.emit(self.selected_key())

    def _update_buttons(self) -> None:
        has = bool(self.selected_key())
        self.delete_button.setEnabled(has)
        self.evaluate_button.setEnabled(has)

    def _on_delete_clicked(self) -> None:
        key = self.selected_key()
        if key:
            self.deleteRequested.emit(key)

    def _on_evaluate_clicked(self) -> None:
        key = self.selected_key()
        if key:
            self.evaluateRequested.emit(key)
