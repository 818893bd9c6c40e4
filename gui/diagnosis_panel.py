"""Bias / variance diagnosis: train error, dev error and a human-level error the user types in.

The numbers, verdict and next steps come from ``engine.diagnosis.diagnose``; this panel
only displays them: as text and as a bar picture (human, train, dev error, with the
avoidable-bias and variance gaps labelled). Updated live while a run trains.
"""

from __future__ import annotations

import html
import math
from typing import Any

import pyqtgraph as pg
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from gui.state import ExperimentState

BAR_COLORS = ("#7f7f7f", "#1f77b4", "#ff7f0e")  # human, train, dev
# The bar plot's top stays put while the tallest bar (or gap label) is between 1/BARS_TOP_MAX
# and 1/BARS_TOP_MIN of it; a new top is BARS_TOP x the tallest bar. Live updates then move the
# bars without re-generating the axis (and without the second paint a range change causes).
BARS_TOP, BARS_TOP_MIN, BARS_TOP_MAX = 1.25, 1.15, 1.6


def _pct(v: float | None) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{100 * v:.2f} %"


class DiagnosisPanel(QWidget):
    """Shows diagnose(train_error, dev_error, human_error) for the current or selected run."""

    def __init__(self, state: ExperimentState, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("diagnosisPanel")
        self.state = state
        self.train_error: float | None = None
        self.dev_error: float | None = None
        self.diagnosis: Any = None
        self._shown_verdict: str | None = None
        self._shown_bars: tuple | None = None  # what the bar plot shows, at display precision
        self._bars_top: float | None = None

        self.human_spin = QDoubleSpinBox()
        self.human_spin.setObjectName("humanErrorSpin")
        self.human_spin.setRange(0.0, 100.0)
        self.human_spin.setDecimals(2)
        self.human_spin.setSingleStep(0.5)
        self.human_spin.setSuffix(" %")
        self.human_spin.setToolTip("Human-level error: a proxy for the Bayes (best possible) error")
        self.train_label = QLabel("—")
        self.train_label.setObjectName("trainErrorLabel")
        self.dev_label = QLabel("—")
        self.dev_label.setObjectName("devErrorLabel")
        self.bias_label = QLabel("—")
        self.bias_label.setObjectName("avoidableBiasLabel")
        self.bias_label.setToolTip("avoidable bias = train error − human-level error")
        self.variance_label = QLabel("—")
        self.variance_label.setObjectName("varianceLabel")
        self.variance_label.setToolTip("variance = dev error − train error")
        self.verdict_label = QLabel("Train a run to see a diagnosis.")
        self.verdict_label.setObjectName("verdictLabel")
        self.verdict_label.setWordWrap(True)
        self.steps_label = QTextBrowser()  # scrolls instead of clipping a long recipe
        self.steps_label.setObjectName("nextStepsText")
        self.steps_label.setFrameShape(QTextBrowser.Shape.NoFrame)
        self.steps_label.setMinimumHeight(60)
        self.steps_label.viewport().setAutoFillBackground(False)

        # values wide enough for any percentage: a changing label width would re-lay the panel
        # out and resize (repaint) the bar plot during a run
        value_width = self.train_label.fontMetrics().horizontalAdvance("−100.00 %  ")
        for label in (self.train_label, self.dev_label, self.bias_label, self.variance_label):
            label.setMinimumWidth(value_width)
        form = QFormLayout()
        form.addRow("Human-level error", self.human_spin)
        form.addRow("Train error", self.train_label)
        form.addRow("Dev error", self.dev_label)
        form.addRow("Avoidable bias", self.bias_label)
        form.addRow("Variance", self.variance_label)

        self.bars_plot = pg.PlotWidget()
        self.bars_plot.setObjectName("diagnosisBars")
        self.bars_plot.setMinimumSize(160, 110)
        item = self.bars_plot.getPlotItem()
        item.setMenuEnabled(False)
        item.setMouseEnabled(x=False, y=False)
        item.hideButtons()
        item.setLabel("left", "error %")
        # fixed room for the tick labels ("0.05" … "120"): a left axis that widens with them
        # re-lays the plot out after the paint that found out, which then paints again
        item.getAxis("left").setStyle(
            autoExpandTextSpace=False,
            tickTextWidth=self.bars_plot.fontMetrics().horizontalAdvance("0.00"),
        )
        item.getAxis("bottom").setTicks([[(0, "human"), (1, "train"), (2, "dev")]])
        # "human" sits near the left edge; pyqtgraph would drop a label that nears the axis end
        item.getAxis("bottom").setStyle(hideOverlappingLabels=False)
        self.bars = pg.BarGraphItem(x=[0, 1, 2], height=[0, 0, 0], width=0.6, brushes=list(BAR_COLORS))
        item.addItem(self.bars)
        self.bias_gap = pg.PlotDataItem(pen=pg.mkPen("#d62728", width=2))
        self.var_gap = pg.PlotDataItem(pen=pg.mkPen("#9467bd", width=2))
        item.addItem(self.bias_gap)
        item.addItem(self.var_gap)
        self.bias_text = pg.TextItem("", color="#d62728", anchor=(0.5, 1.0))
        self.var_text = pg.TextItem("", color="#9467bd", anchor=(0.5, 1.0))
        item.addItem(self.bias_text)
        item.addItem(self.var_text)
        item.setXRange(-0.6, 2.6, padding=0)

        left = QVBoxLayout()
        left.addLayout(form)
        left.addWidget(self.verdict_label)
        left.addWidget(self.steps_label, 1)
        box = QGroupBox("Bias / variance diagnosis")
        inner = QHBoxLayout(box)
        inner.addLayout(left, 3)
        inner.addWidget(self.bars_plot, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(box)

        self.refresh()
        self.human_spin.valueChanged.connect(self._on_human_spin_changed)
        state.configChanged.connect(self._on_state_config_changed)

    # ------------------------------------------------------------ public
    def refresh(self) -> None:
        """Re-read human_error from the config and redraw."""
        self.human_spin.blockSignals(True)
        self.human_spin.setValue(100.0 * self.human_error())
        self.human_spin.blockSignals(False)
        self._update()

    def set_errors(self, train_error: float | None, dev_error: float | None) -> None:
        """Train and dev error (fractions) of the run being shown."""
        self.train_error = train_error
        self.dev_error = dev_error
        self._update()

    def human_error(self) -> float:
        from engine.diagnosis import resolve_human_error

        return resolve_human_error(self.state.config)[0]

    # ------------------------------------------------------------ internals
    def _on_human_spin_changed(self, value: float) -> None:
        self.state.update("diagnosis", human_error=round(value / 100.0, 6))

    def _on_state_config_changed(self, section: str) -> None:
        if section in ("diagnosis", "all"):
            self.refresh()

    def _update(self) -> None:
        tr, dv, hu = self.train_error, self.dev_error, self.human_error()
        self.train_label.setText(_pct(tr))
        self.dev_label.setText(_pct(dv))
        if tr is None or dv is None or not (math.isfinite(tr) and math.isfinite(dv)):
            self.diagnosis = None
            self.bias_label.setText("—")
            self.variance_label.setText("—")
            self.verdict_label.setText("Train a run to see a diagnosis.")
            self.steps_label.setHtml("")
            self._shown_verdict = None
            self._draw_bars(hu, None, None)
            return
        from engine.diagnosis import diagnose  # lazy: keeps window start-up fast

        d = diagnose(tr, dv, hu)
        self.diagnosis = d
        self.bias_label.setText(_pct(d.avoidable_bias))
        self.variance_label.setText(_pct(d.variance))
        if d.verdict != self._shown_verdict:  # re-layout the recipe only when it changes
            self._shown_verdict = d.verdict
            self.verdict_label.setText(f"<b>Verdict: {d.verdict}</b>")
            # the recipe is plain text ("keep_prob < 1"): escape it, or Qt eats "< 1) or …"
            steps = "".join(f"<li>{html.escape(s)}</li>" for s in d.next_steps)
            self.steps_label.setHtml(
                f"<b>Next steps</b><ul style='margin-left:-24px'>{steps}</ul>" if steps else ""
            )
        self._draw_bars(hu, tr, dv)

    def _draw_bars(self, human: float, train: float | None, dev: float | None) -> None:
        h = [100 * human, 100 * (train or 0.0), 100 * (dev or 0.0)]
        # live updates come at 10 Hz; repaint only when a number as shown (0.01 %) changes
        shown = (train is None or dev is None, *(round(v, 2) for v in h))
        if shown == self._shown_bars:
            return
        self._shown_bars = shown
        self.bars.setOpts(height=h)
        if train is None or dev is None:
            self.bias_gap.setData([], [])
            self.var_gap.setData([], [])
            self.bias_text.setText("")
            self.var_text.setText("")
            # an empty plot would autorange to a meaningless ±1e-304 axis
            self._set_bars_top(max(10.0, 125 * human), exact=True)
            return
        # gaps drawn as vertical brackets between neighbouring bars
        self.bias_gap.setData([0.5, 0.5], [h[0], h[1]])
        self.var_gap.setData([1.5, 1.5], [h[1], h[2]])
        self.bias_text.setText(f"bias {h[1] - h[0]:.1f}")
        self.bias_text.setPos(0.5, max(h[0], h[1]))
        self.var_text.setText(f"var {h[2] - h[1]:.1f}")
        self.var_text.setPos(1.5, max(h[1], h[2]))
        self._set_bars_top(max(h + [1.0]))

    def _set_bars_top(self, tallest: float, exact: bool = False) -> None:
        """Top of the bar plot: kept while it fits ``tallest`` (see BARS_TOP), else BARS_TOP x it."""
        top = self._bars_top
        if exact:
            top = tallest
        elif top is None or not BARS_TOP_MIN * tallest <= top <= BARS_TOP_MAX * tallest:
            top = BARS_TOP * tallest
        if top != self._bars_top:
            self._bars_top = top
            vb = self.bars_plot.getPlotItem().getViewBox()
            vb.setYRange(0, top, padding=0)
            vb.updateMatrix()  # now, not inside the paint (which would then paint again)
