"""The run history as a Qt table model: one row per run, oldest first.

Columns put effectiveness beside efficiency: accuracies next to epochs, parameter count and
memory, seconds per epoch and samples per second. The Show column is checkable (the run's
faded curves on the plots), Name is editable (unique names, persisted beside the run), and
Settings lists only what differs between the runs. A live run's row is updated in place as
its epochs arrive (one row, not the table).
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, Qt, Signal
from PySide6.QtGui import QColor

from engine.history import RunHistory, RunInfo

RUN_COLORS = ["#17becf", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f", "#2ca02c"]
COLUMNS = (
    "Show",
    "Name",
    "Settings",
    "Status",
    "Dev acc",
    "Train acc",
    "Test acc",
    "Epochs",
    "Params",
    "Memory",
    "s/epoch",
    "Samples/s",
)
COL = {name: i for i, name in enumerate(COLUMNS)}
TOOLTIPS = {
    "Show": "Show this run's curves on the plots (faded unless it is the current run)",
    "Dev acc": "Dev accuracy of the weights the run ended with (the best epoch's when restored)",
    "Train acc": "Training accuracy of the same weights",
    "Test acc": "Only after you evaluated the run on the test set",
    "Params": "Number of weights and biases",
    "Memory": "Memory of the parameters",
    "s/epoch": "Seconds per epoch (training and evaluation)",
    "Samples/s": "Training samples per second of the mini-batch steps",
    "Settings": "The settings that differ between the runs",
}
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
# leaf names that mean nothing on their own ("enabled=True", "name=sgd"): shown by their section
_SECTION_NAMED = {"early_stopping.enabled": "early_stopping", "optimizer.name": "optimizer"}


def run_color(index: int) -> str:
    return RUN_COLORS[index % len(RUN_COLORS)]


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _short_names(keys: list[str]) -> dict[str, str]:
    """Last component of each dotted key, unless two keys share it (then the full key)."""
    last = [_SECTION_NAMED.get(k, k.rsplit(".", 1)[-1]) for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt_value(x) for x in v) + "]"
    return str(v)


def settings_diff(configs: list[dict]) -> list[str]:
    """For each config, 'name=value' pairs of the settings that differ between the configs.

    With a single config, a few key settings are listed instead.
    """
    return settings_diff_flat([_flatten(c) for c in configs])


def settings_diff_flat(flats: list[dict[str, Any]]) -> list[str]:
    """:func:`settings_diff` of configs already flattened to dotted keys."""
    if not flats:
        return []
    keys = list(dict.fromkeys(k for f in flats for k in f if not k.startswith(IGNORED_PREFIXES)))
    if len(flats) == 1:
        differing = [k for k in KEY_SETTINGS if k in flats[0]]
    else:
        first = flats[0]
        differing = [k for k in keys if any(f.get(k) != first.get(k) for f in flats)]
        # == on JSON values from the same schema is what comparing their JSON text did, without
        # encoding every value of every run each time a run is added
    short = _short_names(differing)
    return [", ".join(f"{short[k]}={_fmt_value(f.get(k))}" for k in differing) for f in flats]


def fmt_num(v: float | None, fmt: str) -> str:
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


class RunsTableModel(QAbstractTableModel):
    """Rows: the runs of a RunHistory. Edits write back to the history (names, visibility).
    settingsChanged() when the Settings texts changed (a run added or removed changed which
    settings differ between the runs)."""

    settingsChanged = Signal()

    def __init__(self, history: RunHistory, parent: QObject | None = None):
        super().__init__(parent)
        self.history = history
        self._keys: list[str] = history.keys()
        self._colors: dict[str, str] = {}
        self._next_color = 0
        for key in self._keys:
            self._assign_color(key)
        self._settings: dict[str, str] = {}
        self._flat: dict[str, tuple] = {}  # key -> (config, its flattened dict): configs are immutable
        self.removing = False
        self._update_settings()
        history.subscribe(self._on_history_event)

    # ---------------------------------------------------------------- lookups
    def key_at(self, row: int) -> str | None:
        return self._keys[row] if 0 <= row < len(self._keys) else None

    def row_of(self, key: str | None) -> int:
        try:
            return self._keys.index(key)
        except ValueError:
            return -1

    def color(self, key: str) -> str:
        return self._colors.get(key) or self._assign_color(key)

    def settings_text(self, key: str) -> str:
        return self._settings.get(key, "")

    def row_texts(self, key: str) -> dict[str, str]:
        """Cell texts of one run by column name (tests and automation)."""
        row = self.row_of(key)
        if row < 0:
            return {}
        return {c: str(self.data(self.index(row, i)) or "") for i, c in enumerate(COLUMNS)}

    # ---------------------------------------------------------------- Qt model API
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._keys)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return TOOLTIPS.get(COLUMNS[section])
        return None

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == COL["Show"]:
            return base | Qt.ItemFlag.ItemIsUserCheckable
        if index.column() == COL["Name"]:
            return base | Qt.ItemFlag.ItemIsEditable
        return base

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        try:
            return self._data(index, role)
        except Exception:  # noqa: BLE001 - an exception inside a Qt override can take the process down
            return "?" if role == Qt.ItemDataRole.DisplayRole else None

    def _data(self, index: QModelIndex, role: int) -> Any:
        run = self.history.get(self.key_at(index.row()))
        if run is None:
            return None
        column = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole or role == Qt.ItemDataRole.EditRole:
            return self._text(run, column)
        if role == Qt.ItemDataRole.CheckStateRole and column == "Show":
            return Qt.CheckState.Unchecked if run.hidden else Qt.CheckState.Checked
        if role == Qt.ItemDataRole.DecorationRole and column == "Name":
            return QColor(self.color(run.key))
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == "Name":
                return f"{run.name}\n{run.key}"  # the whole name, when the cell elides it
            if column == "Settings":
                return self._settings.get(run.key, "")
            if column == "Status" and run.failed:
                return run.failed
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() >= COL["Dev acc"]:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def setData(self, index: QModelIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        key = self.key_at(index.row())
        if key is None:
            return False
        column = COLUMNS[index.column()]
        if column == "Show" and role == Qt.ItemDataRole.CheckStateRole:
            checked = Qt.CheckState(value) == Qt.CheckState.Checked if not isinstance(value, bool) else value
            self.history.set_hidden(key, not checked)
            return True
        if column == "Name" and role == Qt.ItemDataRole.EditRole:
            return self.history.rename(key, str(value)) is not None
        return False

    # ---------------------------------------------------------------- cells
    def _text(self, run: RunInfo, column: str) -> str:
        if column == "Show":
            return ""
        if column == "Name":
            return run.name
        if column == "Status":
            return run.status_text()
        if column == "Dev acc":
            final, _ = run.final_metrics()
            return fmt_num((final or {}).get("dev_acc"), ".4f")
        if column == "Train acc":
            final, _ = run.final_metrics()
            return fmt_num((final or {}).get("train_acc"), ".4f")
        if column == "Test acc":
            return fmt_num(run.test_acc(), ".4f")
        if column == "Epochs":
            return str(len(run.metrics))
        if column == "Params":
            return f"{run.param_count:,}" if run.param_count else "—"
        if column == "Memory":
            return fmt_bytes(run.param_bytes)
        if column == "s/epoch":
            spe = run.seconds_per_epoch()
            return fmt_num(spe * 1000 if spe else None, ".1f") + (" ms" if spe else "")
        if column == "Samples/s":
            return fmt_num(run.samples_per_sec(), ",.0f")
        if column == "Settings":
            return self._settings.get(run.key, "")
        return ""

    # ---------------------------------------------------------------- history events
    def _assign_color(self, key: str) -> str:
        color = run_color(self._next_color)
        self._next_color += 1
        self._colors[key] = color
        return color

    def _update_settings(self) -> None:
        if self._compute_settings() and self._keys:
            self._settings_changed(len(self._keys))

    def _settings_changed(self, rows: int) -> None:
        """The Settings texts of the first ``rows`` rows changed."""
        col = COL["Settings"]
        self.dataChanged.emit(self.index(0, col), self.index(rows - 1, col))
        self.settingsChanged.emit()

    def _compute_settings(self) -> bool:
        """Recompute every row's Settings text; True when a row that was there before changed
        (a new row is fitted as it is inserted, and a run like the previous ones, the usual
        case, changes no other row's text)."""
        runs = self.history.runs()
        flats = []
        for r in runs:
            cached = self._flat.get(r.key)
            if cached is None or cached[0] is not r.config:
                cached = self._flat[r.key] = (r.config, _flatten(r.config.to_dict()))
            flats.append(cached[1])
        for key in [k for k in self._flat if k not in self.history]:
            del self._flat[key]
        diffs = settings_diff_flat(flats)
        new = {r.key: d for r, d in zip(runs, diffs)}
        changed = any(new[k] != old for k, old in self._settings.items() if k in new)
        self._settings = new
        return changed

    def _on_history_event(self, event: str, key: str) -> None:
        if event == "added":
            row = len(self._keys)
            self.beginInsertRows(QModelIndex(), row, row)
            self._keys.append(key)
            self._assign_color(key)
            changed = self._compute_settings()  # before the views measure the new row
            self.endInsertRows()
            if changed:  # rows that were there before; the new one was measured as inserted
                self._settings_changed(row)
        elif event == "removed":
            row = self.row_of(key)
            if row >= 0:
                self.removing = True  # views: selection changes now are Qt's, not the user's
                try:
                    self.beginRemoveRows(QModelIndex(), row, row)
                    self._keys.pop(row)
                    self._colors.pop(key, None)
                    self.endRemoveRows()
                finally:
                    self.removing = False
                self._update_settings()
        elif event == "changed":
            self.refresh_row(key)
            self._update_settings()
        # "records" (every few epochs of a live run) are shown through refresh_row at a bounded
        # rate (the window connects it to the session's recordsShown)

    def refresh_row(self, key: str) -> None:
        """Redraw one run's row (its numbers changed)."""
        row = self.row_of(key)
        if row >= 0:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
