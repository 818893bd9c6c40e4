"""The Lessons menu and the lesson panel.

:class:`LessonsMenu` lists :data:`engine.lessons.LESSONS` (one action per lesson, its look-for
text as the tooltip) with a Quick option and Stop lesson. :class:`LessonPanel` shows the
lesson of a :class:`gui.models.lesson_session.LessonSession`: its title, what to look for, a
progress line (variant i of n, its epoch), a button that brings up the view the lesson points
at, and the comparison table (:func:`engine.lessons.comparison_table` of the variants that
have ended), one row per variant in its run colour.

Views are found by objectName when they are needed (:func:`find_view`), so a view added to the
window later needs no change here. The depth lesson hands its settings to the depth lab view
when the window has one: the view implements ``apply_lesson_settings(settings)`` taking an
:class:`engine.lessons.DepthLabSettings`.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QColor, QFont, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractScrollArea,
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.diagnosis import VERDICTS
from engine.history import STOP_TEXT
from engine.lessons import LESSONS, DepthLabSettings, Lesson
from gui.models.lesson_session import LessonSession
from gui.models.runs_table import RunsTableModel

# what the lesson's view is called in words (objectName -> name)
VIEW_TITLES = {
    "lossPlot": "loss curves",
    "decisionBoundaryPlot": "decision boundary",
    "depthLab": "depth lab",
    "landscapePlot": "loss landscape",
    "confusionMatrix": "confusion matrix",
    "diagnosisPanel": "bias / variance diagnosis",
    "normalizeView": "normalization view",
}
QUICK_TIP = (
    "Train fewer epochs where the lesson's outcome is already clear (seconds instead of minutes); "
    "untick for the full-length runs"
)
HEADER_WRAP = 12  # characters per line of a variant's column header
# (comparison_table field, header, header tooltip)
TABLE_COLUMNS = (
    ("label", "Variant", "The variant; its colour is its colour on the plots"),
    ("stop_reason", "Result", "How the run ended"),
    ("epochs", "Epochs", "Epochs trained"),
    ("best_epoch", "Best", "The epoch with the best dev loss (or accuracy)"),
    ("train_acc", "Train acc", "Training accuracy of the weights the run kept"),
    ("dev_acc", "Dev acc", "Dev accuracy of the same weights"),
    ("gap", "Gap", "Train − dev accuracy in percentage points: the variance"),
    ("first_cost", "First cost", "Mean mini-batch cost of the first epoch"),
    ("final_cost", "Final cost", "Mean mini-batch cost of the epoch whose weights the run kept"),
    ("test_acc", "Test acc", "Accuracy on the test set, measured after the run"),
    ("verdict", "Verdict", "The bias / variance diagnosis of the run"),
)


def find_view(root: QWidget, name: str) -> QWidget | None:
    """The widget with objectName ``name`` below ``root`` (None when the window has none)."""
    return root.findChild(QWidget, name)


def bring_up(root: QWidget, widget: QWidget) -> None:
    """Make a widget below ``root`` visible where it lives: show and select the tab that holds it
    in every tab widget on the way, and show the dock it is in.

    Pages are matched among the tab widgets' own pages (``tabs.widget(i)``), never by walking
    up through Qt's internal stacked widget: a Python wrapper of a widget Qt created and later
    deletes could outlive it."""
    for tabs in root.findChildren(QTabWidget):
        for i in range(tabs.count()):
            page = tabs.widget(i)
            if page is widget or page.isAncestorOf(widget):
                tabs.setTabVisible(i, True)
                tabs.setCurrentIndex(i)
                break
    for dock in root.findChildren(QDockWidget):
        if dock.isAncestorOf(widget):
            dock.show()
            dock.raise_()


def depth_lab_text(d: DepthLabSettings) -> str:
    inits = " and ".join("He" if i == "he" else i.capitalize() for i in d.inits)
    scales = ", ".join(f"{s:g}" for s in d.scales)
    return f"{d.hidden_layers} {d.activation} layers of {d.width} units, {inits} at scales {scales}"


def format_cell(field: str, value: Any) -> str:
    """Display text of one comparison-table value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if field in ("train_acc", "dev_acc", "test_acc"):
        return f"{100 * value:.1f} %"
    if field == "gap":
        return f"{100 * value:+.1f} pts"
    if field in ("first_cost", "final_cost"):
        return f"{value:.4g}"
    if field == "stop_reason":
        return STOP_TEXT.get(value, str(value))
    if field == "verdict":
        return VERDICTS.get(value, str(value))
    return str(value)


class LessonsMenu(QMenu):
    """Lessons ▸ Quick, one entry per lesson, Stop lesson. lessonChosen(name) for the window
    (which asks first when something is running)."""

    lessonChosen = Signal(str)

    def __init__(self, lessons: LessonSession, parent: QWidget | None = None):
        super().__init__("&Lessons", parent)
        self.setObjectName("lessonsMenu")
        self.setToolTipsVisible(True)  # each lesson's tooltip says what it shows
        self.lessons = lessons
        self.quick_action = QAction("Quick (fewer epochs)", self)
        self.quick_action.setObjectName("lessonQuickAction")
        self.quick_action.setCheckable(True)
        self.quick_action.setChecked(True)
        self.quick_action.setToolTip(QUICK_TIP)
        self.quick_action.setStatusTip(QUICK_TIP)
        self.addAction(self.quick_action)
        self.addSeparator()
        self.lesson_actions: dict[str, QAction] = {}
        for name, lesson in LESSONS.items():
            act = QAction(lesson.title, self)
            act.setObjectName(f"lesson_{name}Action")
            act.setToolTip(lesson.look_for)
            act.setStatusTip(
                f"{len(lesson.variants)} runs, one after another; see {self._view_words(lesson)}"
            )
            act.triggered.connect(lambda _checked=False, n=name: self.lessonChosen.emit(n))
            self.addAction(act)
            self.lesson_actions[name] = act
        self.addSeparator()
        self.stop_action = QAction("Stop lesson", self)
        self.stop_action.setObjectName("lessonStopAction")
        self.stop_action.setToolTip("Stop the running variant (it is kept) and start no further variant")
        self.stop_action.triggered.connect(lambda _checked=False: lessons.stop())
        self.addAction(self.stop_action)
        lessons.changed.connect(self._update)
        self._update()

    @staticmethod
    def _view_words(lesson: Lesson) -> str:
        return f"the {VIEW_TITLES.get(lesson.view, lesson.view)}"

    def is_quick(self) -> bool:
        return self.quick_action.isChecked()

    def _update(self) -> None:
        self.stop_action.setEnabled(self.lessons.is_active())


class LessonPanel(QWidget):
    """The lesson being run or last run; see the module docstring.

    lessons: the LessonSession; runs: the runs table model (each variant's colour);
    view_root: the widget below which the lesson's view is looked for (the window).
    closeRequested: the user closed the panel (the window hides it).
    """

    closeRequested = Signal()

    def __init__(
        self,
        lessons: LessonSession,
        runs: RunsTableModel,
        view_root: QWidget,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.setObjectName("lessonPanel")
        self.lessons = lessons
        self.runs = runs
        self.view_root = view_root
        self._shown_table: tuple | None = None
        self.view_note = ""  # what the view button or the depth lab said

        self.title_label = QLabel("")
        self.title_label.setObjectName("lessonTitle")
        font = QFont(self.title_label.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.title_label.setFont(font)
        self.title_label.setWordWrap(True)
        self.mode_label = QLabel("")
        self.mode_label.setObjectName("lessonMode")
        self.mode_label.setStyleSheet("color: palette(placeholder-text);")
        self.close_button = QPushButton("Close")
        self.close_button.setObjectName("lessonCloseButton")
        self.close_button.setToolTip("Hide this panel (Lessons ▸ Lesson panel brings it back)")
        self.look_label = QLabel("")
        self.look_label.setObjectName("lessonLookFor")
        self.look_label.setWordWrap(True)
        self.look_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("lessonProgress")
        self.progress_label.setWordWrap(True)
        self.view_button = QPushButton("")
        self.view_button.setObjectName("lessonViewButton")
        self.stop_button = QPushButton("■  Stop lesson")
        self.stop_button.setObjectName("lessonStopButton")
        self.stop_button.setToolTip("Stop the running variant (it is kept) and start no further variant")
        self.others_button = QPushButton("")
        self.others_button.setObjectName("lessonShowOthersButton")
        self.others_button.setToolTip("Tick Show again for the runs that were on the plots before the lesson")
        self.note_label = QLabel("")
        self.note_label.setObjectName("lessonNote")
        self.note_label.setWordWrap(True)
        self.note_label.setStyleSheet("color: palette(placeholder-text);")
        # one column per variant (a lesson has 2 to 6), one row per figure: fits a narrow panel
        self.table = QTableWidget(0, 0)
        self.table.setObjectName("lessonTable")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # as tall as its rows (no empty table below them); wide tables scroll sideways
        self.table.setSizeAdjustPolicy(QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents)
        self.table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Maximum)
        self.table_label = QLabel("<b>Comparison</b>")

        head = QHBoxLayout()
        head.addWidget(self.title_label, 1)
        head.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        buttons = QHBoxLayout()
        buttons.addWidget(self.view_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.addLayout(head)
        lay.addWidget(self.mode_label)
        lay.addWidget(self.look_label)
        lay.addSpacing(4)
        lay.addWidget(self.progress_label)
        lay.addLayout(buttons)
        lay.addWidget(self.others_button, 0, Qt.AlignmentFlag.AlignLeft)
        lay.addWidget(self.note_label)
        lay.addSpacing(4)
        lay.addWidget(self.table_label)
        lay.addWidget(self.table)
        lay.addStretch(1)

        self.view_button.clicked.connect(self.show_lesson_view)
        self.stop_button.clicked.connect(lessons.stop)
        self.others_button.clicked.connect(lessons.show_other_runs)
        self.close_button.clicked.connect(self.closeRequested)
        lessons.lessonStarted.connect(self._on_lessons_lesson_started)
        lessons.changed.connect(self.refresh)
        lessons.lessonFinished.connect(lambda _name: self.refresh())
        runs.dataChanged.connect(lambda *_args: self._refresh_table())  # a renamed or recoloured run
        self.refresh()

    # ---------------------------------------------------------------- actions
    def show_lesson_view(self) -> bool:
        """Bring up the view the lesson points at; says so when the window has no such view."""
        lesson = self.lessons.lesson
        if lesson is None:
            return False
        title = VIEW_TITLES.get(lesson.view, lesson.view)
        view = find_view(self.view_root, lesson.view)
        if view is None:
            self.view_note = (
                f"This window has no {title} view yet; the curves and the table below show the comparison."
            )
            self.refresh()
            return False
        bring_up(self.view_root, view)
        self.view_note = ""
        self.refresh()
        return True

    def _on_lessons_lesson_started(self, _name: str) -> None:
        self.view_note = ""
        self._shown_table = None
        lesson = self.lessons.lesson
        if lesson is not None and lesson.depth_lab is not None:
            self.view_note = self._apply_depth_lab(lesson.depth_lab)
        self.refresh()

    def _apply_depth_lab(self, settings: DepthLabSettings) -> str:
        text = depth_lab_text(settings)
        view = find_view(self.view_root, "depthLab")
        if view is None:
            return (
                f"This window has no depth lab yet; the gradient-norm plot shows each run's layers ({text})."
            )
        apply = getattr(view, "apply_lesson_settings", None)
        if not callable(apply):
            return f"Set the depth lab to {text} to compare with the runs."
        apply(settings)
        return f"The depth lab is set to {text}: move its scale slider."

    # ---------------------------------------------------------------- display
    def refresh(self) -> None:
        lessons = self.lessons
        lesson = lessons.lesson
        if lesson is None:
            self.title_label.setText("No lesson yet")
            self.mode_label.setText("")
            self.look_label.setText(
                "Choose a lesson from the Lessons menu: it runs a classic comparison (initialization, "
                "regularization, early stopping, …) one run after another, overlays the runs and says "
                "what to look for."
            )
            self.progress_label.setText(lessons.progress_text())
            self.view_button.setVisible(False)
            self.stop_button.setEnabled(False)
            self.others_button.setVisible(False)
            self.note_label.setVisible(False)
            self._refresh_table()
            return
        self.title_label.setText(lesson.title)
        n = len(lesson.variants)
        mode = "quick: fewer epochs" if lessons.quick else "full length"
        self.mode_label.setText(f"{n} runs, one after another · {mode}")
        extra = [
            "Each variant's settings become the window's experiment while it runs; the last one stays "
            "(File ▸ New or Open to go back)."
        ]
        if lessons.quick:
            extra.insert(
                0, "Quick: fewer epochs than the full lesson, so the differences can be smaller than quoted."
            )
        self.look_label.setText(lesson.look_for + "\n\n" + " ".join(extra))
        self.progress_label.setText(lessons.progress_text())
        title = VIEW_TITLES.get(lesson.view, lesson.view)
        self.view_button.setText(f"Show the {title}")
        self.view_button.setToolTip(f"Bring up the view this lesson points at ({lesson.view})")
        self.view_button.setVisible(True)
        self.stop_button.setEnabled(lessons.is_active())
        n_hidden = len(lessons.hidden_keys)
        self.others_button.setText(f"Show the {n_hidden} earlier run{'s' if n_hidden != 1 else ''} again")
        self.others_button.setVisible(n_hidden > 0)
        notes = [n for n in (lessons.error and f"The lesson stopped: {lessons.error}", self.view_note) if n]
        notes += lessons.notes
        self.note_label.setText("\n".join(notes))
        self.note_label.setVisible(bool(notes))
        self._refresh_table()

    def _status(self, variant: str) -> str:
        lessons = self.lessons
        key = lessons.variant_key(variant)
        v = lessons.variant()
        current = v is not None and v.name == variant
        if key is None:
            if current and lessons.phase == "loading":
                return "loading data…"
            return "not run" if lessons.phase == "finished" else "waiting"
        run = lessons.history.get(key)
        if run is None:
            return "deleted"
        if run.live:
            return "training…"
        if current and lessons.phase == "evaluating":
            return "measuring test…"
        return run.status_text()

    def _fields(self) -> list[tuple[str, str, str]]:
        lesson = self.lessons.lesson
        test = bool(lesson and lesson.evaluate_test)
        return [c for c in TABLE_COLUMNS if c[0] != "label" and (c[0] != "test_acc" or test)]

    def _refresh_table(self) -> None:
        lessons = self.lessons
        lesson = lessons.lesson
        rows = {row["variant"]: row for row in lessons.table()}
        variants = lesson.variants if lesson is not None else ()
        fields = self._fields()
        keys = [lessons.variant_key(v.name) for v in variants]
        signature = (
            tuple(f[0] for f in fields),
            tuple(
                (v.name, self._status(v.name), self.runs.color(k) if k else "")
                for v, k in zip(variants, keys)
            ),
            tuple(tuple(sorted((k, repr(x)) for k, x in r.items())) for r in rows.values()),
        )
        if signature == self._shown_table:
            return  # unchanged (changed() fires up to 10 times a second while a variant trains)
        self._shown_table = signature
        self.table.setRowCount(len(fields))
        self.table.setColumnCount(len(variants))
        for r, (_field, header, tip) in enumerate(fields):
            item = QTableWidgetItem(header)
            item.setToolTip(tip)
            self.table.setVerticalHeaderItem(r, item)
        for c, (v, key) in enumerate(zip(variants, keys)):
            head = QTableWidgetItem(
                textwrap.fill(v.label, HEADER_WRAP, break_long_words=False)
            )  # narrow columns
            run = lessons.history.get(key) if key is not None else None
            if run is not None:
                swatch = QPixmap(12, 12)
                swatch.fill(QColor(self.runs.color(key)))
                head.setIcon(QIcon(swatch))
                head.setToolTip(f"{run.name}\n{run.key}")
            self.table.setHorizontalHeaderItem(c, head)
            row = rows.get(v.name)
            for r, (field, _header, _tip) in enumerate(fields):
                if row is None:
                    item = QTableWidgetItem(self._status(v.name) if field == "stop_reason" else "")
                else:
                    value = row.get(field)
                    item = QTableWidgetItem(format_cell(field, value))
                    item.setData(Qt.ItemDataRole.UserRole, value)
                if field not in ("stop_reason", "verdict"):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)

    # ---------------------------------------------------------------- for tests and automation
    def table_values(self) -> list[dict]:
        """The values behind the table's cells (comparison_table's), one dict per ended variant
        with its label, in lesson order."""
        fields = [f[0] for f in self._fields()]
        out = []
        for c in range(self.table.columnCount()):
            epochs = self.table.item(fields.index("epochs"), c)
            if epochs is None or epochs.data(Qt.ItemDataRole.UserRole) is None:
                continue  # not run (yet)
            row = {"label": " ".join(self.table.horizontalHeaderItem(c).text().split())}
            for r, f in enumerate(fields):
                row[f] = self.table.item(r, c).data(Qt.ItemDataRole.UserRole)
            out.append(row)
        return out
