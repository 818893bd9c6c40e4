"""Bias / variance diagnosis of the current run: train error, dev error and a human-level error.

The numbers, verdict, notes and next steps come from ``engine.diagnosis``; this view only
shows them, as text and as bars (human, train, dev error). It follows the session's current
run: a live run's latest epoch while it trains; once it ended, the weights it ended with (the
restored best epoch after early stopping), saying which epoch that is, so the numbers are the
same at the end of training and when the run is clicked later. The run's outcome (diverged,
not learning, stopped by you) shapes the advice.

The human-level error is the experiment's ``diagnosis.human_error``: "auto" (null) uses the
Bayes error of a generated 2-D set estimated from its generator, else 0.
"""

from __future__ import annotations

import html
import math

import pyqtgraph as pg
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from engine.diagnosis import HUMAN_ERROR_NOTE, Diagnosis
from engine.history import RunInfo
from gui.models.training_session import TrainingSession
from gui.panels.widgets import CONFIG_SCALE, configure_spin
from gui.state import ExperimentState
from gui.tasks import TaskRunner

BAR_COLORS = ("#7f7f7f", "#1f77b4", "#ff7f0e")  # human, train, dev
# The bar plot's top stays put while the tallest bar is between 1/BARS_TOP_MAX and 1/BARS_TOP_MIN
# of it; a new top is BARS_TOP x the tallest bar. Live updates then move the bars without
# re-generating the axis (and without the second paint a range change causes).
BARS_TOP, BARS_TOP_MIN, BARS_TOP_MAX = 1.3, 1.2, 1.7


def pct(v: float | None) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{100 * v:.2f} %"


def gap_text(value: float | None, tolerance: float, kind: str) -> str:
    """A gap as a signed percentage with a word on what a negative one means."""
    if value is None or not math.isfinite(value):
        return "—"
    if value < -tolerance:
        return f"{pct(value)} ({'below human' if kind == 'bias' else 'dev < train'}, see below)"
    return pct(value)


class DiagnosisView(QWidget):
    """Shows engine.diagnosis for the session's current run."""

    def __init__(self, session: TrainingSession, state: ExperimentState, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("diagnosisPanel")
        self.session = session
        self.state = state
        self.diagnosis: Diagnosis | None = None
        self.train_error: float | None = None
        self.dev_error: float | None = None
        self._shown_text: tuple | None = None
        self._shown_bars: tuple | None = None
        self._bars_top: float | None = None
        self._estimating = None  # the data config whose Bayes error is being estimated
        self._estimator = TaskRunner(self)
        self._estimator.finished.connect(self._on_estimated)

        self.human_spin = QDoubleSpinBox()
        self.human_spin.setDecimals(2)
        configure_spin(self.human_spin, "diagnosis.human_error", scale=100.0, name="humanErrorSpin")
        self.human_spin.setProperty(CONFIG_SCALE, 100.0)
        self.human_spin.setSingleStep(0.5)
        self.human_spin.setSuffix(" %")
        self.human_spin.setKeyboardTracking(False)
        self.human_spin.setToolTip(HUMAN_ERROR_NOTE)
        self.human_auto = QCheckBox("auto")
        self.human_auto.setObjectName("humanErrorAutoCheck")
        self.human_auto.setToolTip(
            "Use the Bayes error of a generated 2-D set, estimated from its generator (0 for other data)"
        )
        self.human_note = QLabel("")
        self.human_note.setObjectName("humanErrorNote")
        self.human_note.setWordWrap(True)
        self.human_note.setStyleSheet("color: palette(placeholder-text);")
        self.epoch_label = QLabel("")
        self.epoch_label.setObjectName("diagnosisEpochLabel")
        self.epoch_label.setWordWrap(True)
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

        human_row = QHBoxLayout()
        human_row.addWidget(self.human_spin)
        human_row.addWidget(self.human_auto)
        form = QFormLayout()
        form.addRow("Human-level error", human_row)
        form.addRow(self.human_note)
        form.addRow("Train error", self.train_label)
        form.addRow("Dev error", self.dev_label)
        form.addRow("Avoidable bias", self.bias_label)
        form.addRow("Variance", self.variance_label)

        self.bars_plot = pg.PlotWidget()
        self.bars_plot.setObjectName("diagnosisBars")
        self.bars_plot.setMinimumSize(150, 110)
        item = self.bars_plot.getPlotItem()
        item.setMenuEnabled(False)
        item.setMouseEnabled(x=False, y=False)
        item.hideButtons()
        item.setLabel("left", "error %")
        item.getAxis("left").setStyle(
            autoExpandTextSpace=False, tickTextWidth=self.bars_plot.fontMetrics().horizontalAdvance("0.00")
        )
        item.getAxis("bottom").setTicks([[(0, "human"), (1, "train"), (2, "dev")]])
        small = self.font()
        small.setPointSizeF(max(6.0, small.pointSizeF() * 0.85))
        item.getAxis("bottom").setStyle(hideOverlappingLabels=False, tickFont=small)
        self.bars = pg.BarGraphItem(x=[0, 1, 2], height=[0, 0, 0], width=0.55, brushes=list(BAR_COLORS))
        item.addItem(self.bars)
        # the gaps as brackets between neighbouring bars; their sizes are in the form on the left,
        # and each bar carries its own value on top, so no label can overlap another
        self.bias_gap = pg.PlotDataItem(pen=pg.mkPen("#d62728", width=2))
        self.var_gap = pg.PlotDataItem(pen=pg.mkPen("#9467bd", width=2))
        item.addItem(self.bias_gap)
        item.addItem(self.var_gap)
        self.bar_texts = [pg.TextItem("", color=c, anchor=(0.5, 1.0)) for c in BAR_COLORS]
        for t in self.bar_texts:
            item.addItem(t)
        item.setXRange(-0.6, 2.6, padding=0)

        left = QVBoxLayout()
        left.addWidget(self.epoch_label)
        left.addLayout(form)
        left.addWidget(self.verdict_label)
        left.addWidget(self.steps_label, 1)
        box = QGroupBox("Bias / variance diagnosis of the current run")
        inner = QHBoxLayout(box)
        inner.addLayout(left, 3)
        inner.addWidget(self.bars_plot, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(box)

        self.human_spin.valueChanged.connect(self._on_human_spin_changed)
        self.human_auto.toggled.connect(self._on_human_auto_toggled)
        state.configChanged.connect(self._on_state_config_changed)
        session.currentChanged.connect(lambda _key: self.refresh())
        session.history.subscribe(self._on_history_event)
        session.recordsShown.connect(self._on_session_records_shown)
        self.refresh()

    # ---------------------------------------------------------------- public
    def human_error(self) -> float:
        """The human-level error used for the current run (a fraction)."""
        return self._human()[0]

    def _human(self) -> tuple[float, str, object]:
        """(value, source, data config): the experiment's setting, or (auto) the estimate for the
        shown run's data, never computed on the GUI thread (see _estimate_later)."""
        from engine.diagnosis import estimate_human_error

        value = self.state.config.diagnosis.human_error
        run = self.session.current()
        data = (run.config if run is not None else self.state.config).data
        if value is not None:
            return float(value), "config", data
        est, source = estimate_human_error(data, compute=False)
        if source == "pending":
            self._estimate_later(data)
        return est, source, data

    def _estimate_later(self, data) -> None:
        if self._estimating == data:
            return
        self._estimating = data

        def estimate(_ctx):
            from engine.diagnosis import estimate_human_error

            return estimate_human_error(data, compute=True)

        self._estimator.start(estimate)

    def _on_estimated(self, _result) -> None:
        self._estimating = None
        self.refresh()

    def refresh(self) -> None:
        self._refresh_human()
        self._update()

    # ---------------------------------------------------------------- edits
    def _on_human_spin_changed(self, value: float) -> None:
        if not self.human_auto.isChecked():
            self.state.update("diagnosis", human_error=round(value / 100.0, 6))

    def _on_human_auto_toggled(self, auto: bool) -> None:
        value = None if auto else round(self.human_spin.value() / 100.0, 6)
        self.state.update("diagnosis", human_error=value)

    def _on_state_config_changed(self, section: str) -> None:
        if section in ("diagnosis", "data", "all"):
            self.refresh()

    def _on_history_event(self, event: str, key: str) -> None:
        if key == self.session.current_key and event == "changed":
            self._update()

    def _on_session_records_shown(self, key: str) -> None:
        if key == self.session.current_key:
            self._update()

    # ---------------------------------------------------------------- display
    def _refresh_human(self) -> None:
        value, source, data = self._human()
        auto = source != "config"
        for w, v in ((self.human_spin, 100.0 * value), (self.human_auto, auto)):
            w.blockSignals(True)
            (w.setValue if w is self.human_spin else w.setChecked)(v)
            w.blockSignals(False)
        self.human_spin.setEnabled(not auto)
        # one short line (the panel is low; a wrapped note was clipped), the rest in the tooltip
        if source == "bayes_estimate":
            note = f"Auto: the Bayes error of {data.source} at noise {data.noise:g}"
            more = (
                f"{pct(value)} is the Bayes error of {data.source} at noise {data.noise:g}, estimated "
                "from its generator: no model can do better on average."
            )
        elif source == "pending":
            note = f"Auto: estimating the Bayes error of {data.source}…"
            more = "The Bayes error of a generated set is estimated from its generator."
        elif source == "default":
            note = "Auto: 0 % (no estimate for this data)"
            more = "Untick auto and enter the error you think is achievable."
        else:
            note = "The lowest error you think is achievable"
            more = "The lowest error you think is achievable here: a proxy for the Bayes error."
        self.human_note.setText(note)
        self.human_note.setToolTip(more)

    def _run_errors(self, run: RunInfo | None) -> tuple[float | None, float | None, str]:
        """(train error, dev error, which weights they describe) for a run."""
        if run is None:
            return None, None, ""
        metrics, epoch = run.final_metrics()
        if not metrics or metrics.get("train_acc") is None or metrics.get("dev_acc") is None:
            return (
                None,
                None,
                f"{run.name}: no epoch finished yet." if run.live else f"{run.name}: no epoch finished.",
            )
        tr, dv = 1.0 - float(metrics["train_acc"]), 1.0 - float(metrics["dev_acc"])
        if run.live:
            where = f"{run.name}, epoch {epoch} (training)"
        elif run.restored_best():
            where = f"{run.name}, epoch {epoch}: the best epoch, whose weights were restored"
        else:
            where = f"{run.name}, epoch {epoch}: the weights the run ended with"
        return tr, dv, where

    def _update(self) -> None:
        from engine.diagnosis import diagnose_run

        run = self.session.current()
        tr, dv, where = self._run_errors(run)
        self.train_error, self.dev_error = tr, dv
        hu, hu_source, _ = self._human()
        self.train_label.setText(pct(tr))
        self.dev_label.setText(pct(dv))
        self.epoch_label.setText(where)
        if tr is None or dv is None or not (math.isfinite(tr) and math.isfinite(dv)):
            self.diagnosis = None
            self.bias_label.setText("—")
            self.variance_label.setText("—")
            self.verdict_label.setText("Train a run to see a diagnosis." if run is None else "")
            self.steps_label.setHtml("")
            self._shown_text = None
            self._draw_bars(hu, None, None)
            return
        stop = None if run.live else run.stop_reason()  # a live run is not finished, nor stopped
        metrics, _ = run.final_metrics()
        d = diagnose_run(
            run.config,
            metrics,
            stop,
            run.warning_codes(),
            image_data=run.is_image(),
            human_error=hu,
            human_estimated=hu_source != "config",
        )
        self.diagnosis = d
        self.bias_label.setText(gap_text(d.avoidable_bias, d.tolerance, "bias"))
        self.variance_label.setText(gap_text(d.variance, d.tolerance, "variance"))
        shown = (d.verdict_code, tuple(d.advice), tuple(d.notes))
        if shown != self._shown_text:  # re-layout the text only when it changes
            self._shown_text = shown
            self.verdict_label.setText(f"<b>Verdict: {html.escape(d.verdict)}</b>")
            notes = "".join(f"<p>{html.escape(n)}</p>" for n in d.notes)
            steps = "".join(f"<li>{html.escape(s)}</li>" for s in d.next_steps)
            self.steps_label.setHtml(
                notes + (f"<b>Next steps</b><ul style='margin-left:-24px'>{steps}</ul>" if steps else "")
            )
        self._draw_bars(hu, tr, dv)

    def _draw_bars(self, human: float, train: float | None, dev: float | None) -> None:
        h = [100 * human, 100 * (train or 0.0), 100 * (dev or 0.0)]
        # live updates come at up to 20 Hz; repaint only when a number as shown (0.1 %) changes
        shown = (train is None or dev is None, *(round(v, 1) for v in h))
        if shown == self._shown_bars:
            return
        self._shown_bars = shown
        self.bars.setOpts(height=h)
        if train is None or dev is None:
            self.bias_gap.setData([], [])
            self.var_gap.setData([], [])
            for i, t in enumerate(self.bar_texts):
                t.setText(f"{h[0]:.1f}" if i == 0 else "")
                t.setPos(i, h[i])
            self._set_bars_top(max(10.0, 130 * human), exact=True)
            return
        self.bias_gap.setData([0.5, 0.5], [h[0], h[1]])
        self.var_gap.setData([1.5, 1.5], [h[1], h[2]])
        for i, t in enumerate(self.bar_texts):
            t.setText(f"{h[i]:.1f}")
            t.setPos(i, h[i])
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
