"""The runs table: every run with the settings that set it apart and its results.

The selected row *is* the session's current run: selecting a row makes it current, and a run
that becomes current (a new run starts, a run is deleted) moves the selection. Delete and
Evaluate on test act on that run, through the window (which asks first and does the file work).
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from gui.models.runs_table import COL, RunsTableModel
from gui.models.training_session import TrainingSession

NAME_WIDTH = 240  # a longer name is elided in the middle (the cell's tooltip has all of it)
NO_TEST_TIP = (
    "This run has no test set (its data.split has no test fraction and no test source), "
    "so there is nothing to evaluate."
)
TEST_TIP = (
    "Measure the current run on the test set. The test set is for the final, unbiased estimate; "
    "looking at it while tuning leaks it into your choices."
)


class RunsView(QWidget):
    """Signals for the window: deleteRequested(key), evaluateRequested(key)."""

    deleteRequested = Signal(str)
    evaluateRequested = Signal(str)

    def __init__(self, model: RunsTableModel, session: TrainingSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("runsPanel")
        self.model = model
        self.session = session
        self.table = QTableView()
        self.table.setObjectName("runsTable")
        self.table.setModel(model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked
        )
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(True)
        # long names ("<lesson title>: <variant>") keep both ends: what sets them apart is at the end
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        # sizes are fitted when runs come and go, not on every live update (fitting re-measures
        # every cell: milliseconds per update with a few dozen runs)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        model.rowsInserted.connect(self._fit_inserted)
        model.modelReset.connect(self._fit)
        model.settingsChanged.connect(self._fit_settings)
        # a finished run changes only its own row's texts
        session.runFinished.connect(self._fit_run)
        self.delete_button = QPushButton("Delete run")
        self.delete_button.setObjectName("deleteRunButton")
        self.evaluate_button = QPushButton("Evaluate on test…")
        self.evaluate_button.setObjectName("evaluateTestButton")
        self.test_label = QLabel("")
        self.test_label.setObjectName("testResultLabel")
        title = QLabel("<b>Runs</b>")
        title.setToolTip("Tick Show to overlay a run's curves; double-click a name to rename it")
        buttons = QHBoxLayout()
        buttons.addWidget(title)
        buttons.addStretch(1)
        buttons.addWidget(self.test_label)
        buttons.addWidget(self.evaluate_button)
        buttons.addWidget(self.delete_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(buttons)
        lay.addWidget(self.table, 1)
        self._syncing = False
        self.table.selectionModel().selectionChanged.connect(self._on_selection_changed)
        # a removed row moves Qt's selection to a neighbour: that is not the user choosing a run
        model.rowsRemoved.connect(self._on_rows_removed)
        self.delete_button.clicked.connect(self._on_delete_clicked)
        self.evaluate_button.clicked.connect(self._on_evaluate_clicked)
        session.currentChanged.connect(self._on_session_current_changed)
        session.stateChanged.connect(lambda _s: self.update_buttons())
        session.history.subscribe(self._on_history_event)
        session.recordsShown.connect(model.refresh_row)
        self._fit()
        self._on_session_current_changed(session.current_key or "")

    # ---------------------------------------------------------------- selection = current run
    def selected_key(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.key_at(rows[0].row()) if rows else None

    def select(self, key: str | None) -> None:
        """Select a run's row (it becomes the current run)."""
        row = self.model.row_of(key)
        if row >= 0:
            self.table.selectRow(row)
        else:
            self.table.clearSelection()

    def _on_selection_changed(self, *_args) -> None:
        if not self._syncing and not self.model.removing:
            self.session.set_current(self.selected_key())
        self.update_buttons()

    def _fit(self, *_args) -> None:
        """Columns to their contents; the settings that differ wrap onto more lines instead of
        being cut off (rows as tall as they need)."""
        self.table.resizeColumnsToContents()
        name = COL["Name"]
        self.table.setColumnWidth(name, min(NAME_WIDTH, self.table.columnWidth(name)))
        self._fit_settings()

    def _fit_settings(self) -> None:
        """The Settings column (160-320 px) and the row heights: the settings shown change for
        every row when a run with other settings comes or goes."""
        settings = COL["Settings"]
        self.table.resizeColumnToContents(settings)
        self.table.setColumnWidth(settings, max(160, min(320, self.table.columnWidth(settings))))
        self.table.resizeRowsToContents()

    def _fit_inserted(self, _parent, first: int, last: int) -> None:
        """New rows: fit their heights and widen the columns they need, measuring only them. A
        full fit re-measures every cell (milliseconds per run; a sweep adds dozens of runs, one
        after another, and the window would stall longer with each)."""
        if first == 0:
            self._fit()
            return
        self._fit_rows(first, last)

    def _fit_run(self, key: str) -> None:
        row = self.model.row_of(key)
        if row >= 0:
            self._fit_rows(row, row)

    def _fit_rows(self, first: int, last: int) -> None:
        """Fit rows first..last and widen the columns they need, measuring only them."""
        for row in range(first, last + 1):
            self.table.resizeRowToContents(row)
        settings = COL["Settings"]
        grid = 1 if self.table.showGrid() else 0  # sizeHintForColumn counts the grid line too
        for col in range(self.model.columnCount()):
            need = grid + max(
                self.table.sizeHintForIndex(self.model.index(r, col)).width() for r in range(first, last + 1)
            )
            if col == settings:
                need = max(160, min(320, need))
            elif col == COL["Name"]:
                need = min(NAME_WIDTH, need)  # as _fit: a long name is elided, not a wide column
            if need > self.table.columnWidth(col):
                self.table.setColumnWidth(col, need)

    def _on_rows_removed(self, *_args) -> None:
        self._on_session_current_changed(self.session.current_key or "")

    def _on_session_current_changed(self, key: str) -> None:
        syncing, self._syncing = self._syncing, True
        try:
            row = self.model.row_of(key or None)
            sel = self.table.selectionModel()
            if row < 0:
                sel.clearSelection()
            elif self.selected_key() != key:
                sel.select(
                    self.model.index(row, 0),
                    QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
                )
                self.table.scrollTo(self.model.index(row, 0))
        finally:
            self._syncing = syncing
        run = self.session.current()
        test = run.test_acc() if run is not None else None
        self.test_label.setText(self.test_text(run.summary) if test is not None else "")
        self.update_buttons()

    def _on_history_event(self, event: str, key: str) -> None:
        if key == self.session.current_key and event == "changed":
            self.update_buttons()
            if event == "changed":
                run = self.session.current()
                if run is not None and run.test_acc() is not None:
                    self.test_label.setText(self.test_text(run.summary))

    # ---------------------------------------------------------------- buttons
    def update_buttons(self) -> None:
        run = self.session.current()
        self.delete_button.setEnabled(run is not None and not run.live)
        self.delete_button.setToolTip(
            "Delete the current run and its folder"
            if run is None or not run.live
            else "A run cannot be deleted while it trains: stop it first"
        )
        if run is None:
            self.evaluate_button.setEnabled(False)
            self.evaluate_button.setToolTip("Select a run to evaluate it on the test set")
        elif run.live or run.summary is None:
            self.evaluate_button.setEnabled(False)
            self.evaluate_button.setToolTip("Only a finished run can be evaluated on the test set")
        elif not run.has_test_set():
            self.evaluate_button.setEnabled(False)
            self.evaluate_button.setToolTip(NO_TEST_TIP)
        else:
            self.evaluate_button.setEnabled(True)
            self.evaluate_button.setToolTip(TEST_TIP)

    def _on_delete_clicked(self) -> None:
        if self.session.current_key:
            self.deleteRequested.emit(self.session.current_key)

    def _on_evaluate_clicked(self) -> None:
        if self.session.current_key:
            self.evaluateRequested.emit(self.session.current_key)

    @staticmethod
    def test_text(result: dict | None) -> str:
        result = result or {}
        acc, loss = result.get("test_acc"), result.get("test_loss")
        if acc is None:
            return ""
        return (
            f"test accuracy {acc:.4f} · test loss {loss:.4f}"
            if loss is not None
            else f"test accuracy {acc:.4f}"
        )

    def set_visible(self, key: str, visible: bool) -> None:
        """Tick or untick a run's Show box (as a click does)."""
        row = self.model.row_of(key)
        if row >= 0:
            self.model.setData(
                self.model.index(row, COL["Show"]),
                Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked,
                Qt.ItemDataRole.CheckStateRole,
            )
