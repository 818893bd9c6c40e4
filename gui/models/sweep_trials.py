"""A sweep's trials as a Qt table model, and the sort/filter proxy the Sweep tab shows it through.

One row per trial of the sweep definition (all of them from the start: queued ones too), with
the varied values, the seed, where it stands (queued, running with its epoch, completed,
pruned, cancelled, …), its final train and dev error, its time and its worker. Sorting is
numeric where the column is a number (``SORT_ROLE``). The proxy filters by a set of trial ids
(brushing on the parallel coordinates); rows of the trials under the mouse are highlighted.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush, QColor

from engine.history import STOP_TEXT

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
TRIAL_ID_ROLE = Qt.ItemDataRole.UserRole + 2
HIGHLIGHT = QColor(255, 200, 60, 110)  # translucent: legible on light and dark palettes
PRUNED_COLOR = QColor("#9467bd")


@dataclass
class TrialState:
    """What the window knows of one trial while the sweep runs."""

    status: str = "queued"  # queued, running, or a stop_reason (completed, pruned, cancelled, …)
    epochs: int = 0
    worker: str = ""
    row: dict | None = None  # its results row once finished
    run_key: str | None = None  # its run folder in the run history, once added


def short_name(field: str) -> str:
    """``regularization.l2`` -> ``l2``; ``data.train_limit`` -> ``train_limit``."""
    return field.rsplit(".", 1)[-1]


def value_text(v: Any) -> str:
    """A varied value as people read it: 0.01, 0.004959, [64, 64], all (a null training-set limit).
    Floats to 4 significant digits (a log range's 0.00495934 is 0.004959 on screen)."""
    if v is None:
        return "all"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value_text(x) for x in v) + "]"
    return str(v)


def trial_label(values: dict, seed: int) -> str:
    """``l2=0.01 seed 0``: a trial's name in the runs table ("sweep: " in front) and the plots."""
    parts = [f"{short_name(k)}={value_text(v)}" for k, v in values.items()]
    return " ".join([*parts, f"seed {seed}"])


class SweepTrialsModel(QAbstractTableModel):
    """Rows: the trials of one sweep (``set_sweep``); ``update_trial`` redraws one row."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._fields: list[str] = []
        self._trials: list[Any] = []  # engine.sweep.Trial
        self._row_of: dict[str, int] = {}
        self._states: dict[str, TrialState] = {}
        self._highlight: set[str] = set()
        self._columns: list[str] = []

    # ---------------------------------------------------------------- content
    def set_sweep(self, fields: list[str], trials: list, states: dict[str, TrialState]) -> None:
        self.beginResetModel()
        self._fields = list(fields)
        self._trials = list(trials)
        self._row_of = {t.id: i for i, t in enumerate(self._trials)}
        self._states = states
        self._highlight = set()
        self._columns = [
            "#",
            *(short_name(f) for f in self._fields),
            "Seed",
            "Status",
            "Epochs",
            "Train error",
            "Dev error",
            "Seconds",
            "Worker",
        ]
        self.endResetModel()

    def columns(self) -> list[str]:
        return list(self._columns)

    def trial_id_at(self, row: int) -> str | None:
        return self._trials[row].id if 0 <= row < len(self._trials) else None

    def row_of(self, trial_id: str) -> int:
        return self._row_of.get(trial_id, -1)

    def update_trial(self, trial_id: str) -> None:
        row = self.row_of(trial_id)
        if row >= 0:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(self._columns) - 1))

    def update_all(self) -> None:
        if self._trials:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._trials) - 1, len(self._columns) - 1))

    def set_highlight(self, trial_ids) -> None:
        """Highlight the rows of these trials (the line under the mouse); () clears."""
        new = set(trial_ids or ())
        if new == self._highlight:
            return
        changed = new ^ self._highlight
        self._highlight = new
        for tid in changed:
            self.update_trial(tid)

    def highlighted(self) -> set[str]:
        return set(self._highlight)

    def row_texts(self, trial_id: str) -> dict[str, str]:
        """Cell texts of one trial by column title (tests and automation)."""
        row = self.row_of(trial_id)
        if row < 0:
            return {}
        return {c: str(self.data(self.index(row, i)) or "") for i, c in enumerate(self._columns)}

    # ---------------------------------------------------------------- Qt model API
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._trials)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._columns)

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self._columns):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._columns[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            k = section - 1
            if 0 <= k < len(self._fields):
                return self._fields[k]
            return {
                "Train error": "1 − train accuracy of the weights the trial kept",
                "Dev error": "1 − dev accuracy of the weights the trial kept",
                "Seconds": "the trial's time on its worker",
            }.get(self._columns[section])
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._trials):
            return None
        trial = self._trials[index.row()]
        state = self._states.get(trial.id) or TrialState()
        column = self._columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(trial, state, column, index.column())
        if role == SORT_ROLE:
            return self._sort_key(trial, state, column, index.column())
        if role == TRIAL_ID_ROLE:
            return trial.id
        if role == Qt.ItemDataRole.BackgroundRole and trial.id in self._highlight:
            return QBrush(HIGHLIGHT)
        if role == Qt.ItemDataRole.ForegroundRole and column == "Status" and state.status == "pruned":
            return QBrush(PRUNED_COLOR)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == "#":
                label = trial_label(dict(trial.values), trial.seed)
                return f"{label}\n{trial.id}" + (f"\n{state.run_key}" if state.run_key else "")
            if column == "Status" and state.status == "pruned":
                return "stopped early by successive halving: its dev loss was not among the best at a rung"
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (
            "#",
            "Seed",
            "Epochs",
            "Train error",
            "Dev error",
            "Seconds",
        ):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _text(self, trial, state: TrialState, column: str, col: int) -> str:
        row = state.row or {}
        if column == "#":
            return str(self._row_of[trial.id] + 1)
        k = col - 1
        if 0 <= k < len(self._fields):
            return value_text(trial.values.get(self._fields[k]))
        if column == "Seed":
            return str(trial.seed)
        if column == "Status":
            if state.status == "running":
                return f"running · epoch {state.epochs}" if state.epochs else "running"
            if state.status == "queued":
                return "queued"
            return STOP_TEXT.get(state.status, state.status)
        if column == "Epochs":
            return str(row.get("epochs_run", state.epochs) or state.epochs or "")
        if column == "Train error":
            return _num(row.get("final_train_error"))
        if column == "Dev error":
            return _num(row.get("final_dev_error"))
        if column == "Seconds":
            s = row.get("seconds")
            return f"{s:.1f}" if isinstance(s, (int, float)) else ""
        if column == "Worker":
            return str(row.get("worker") or state.worker or "")
        return ""

    def _sort_key(self, trial, state: TrialState, column: str, col: int) -> Any:
        row = state.row or {}
        k = col - 1
        if 0 <= k < len(self._fields):
            v = trial.values.get(self._fields[k])
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
            return math.inf if v is None else json.dumps(v)  # "all" sorts after every limit
        numbers = {
            "#": self._row_of[trial.id],
            "Seed": trial.seed,
            "Epochs": row.get("epochs_run", state.epochs),
            "Train error": row.get("final_train_error"),
            "Dev error": row.get("final_dev_error"),
            "Seconds": row.get("seconds"),
        }
        if column in numbers:
            v = numbers[column]
            return float(v) if isinstance(v, (int, float)) else math.inf  # unfinished ones last
        return self._text(trial, state, column, col)


def _num(v: Any) -> str:
    return f"{float(v):.4f}" if isinstance(v, (int, float)) else ""


class TrialsProxy(QSortFilterProxyModel):
    """Sorts by ``SORT_ROLE``; ``set_allowed(ids)`` keeps only those trials (None: all)."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._allowed: frozenset[str] | None = None
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(False)  # live updates never reorder rows under the mouse

    def set_allowed(self, trial_ids) -> None:
        new = None if trial_ids is None else frozenset(trial_ids)
        if new == self._allowed:
            return
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.9; invalidateFilter is deprecated there
            self.beginFilterChange()
            self._allowed = new
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self._allowed = new
            self.invalidateRowsFilter()

    def allowed(self) -> frozenset[str] | None:
        return self._allowed

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:  # noqa: N802
        if self._allowed is None:
            return True
        model = self.sourceModel()
        return model.trial_id_at(source_row) in self._allowed

    def lessThan(self, left: QModelIndex, right: QModelIndex) -> bool:  # noqa: N802
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        if isinstance(a, float) and isinstance(b, float):
            return a < b
        if isinstance(a, float) != isinstance(b, float):
            return isinstance(a, float)  # numbers before text
        return str(a) < str(b)
