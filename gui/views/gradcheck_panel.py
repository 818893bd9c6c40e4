"""Gradient check of the current run's model, in the background, with progress and Cancel.

Runs :func:`engine.gradcheck.check_network` on a float64 copy of the current model (a live
run's latest snapshot, or a finished run's saved weights) and the first
``N_SAMPLES`` training samples, with the run's L2/L1 penalty and dropout off, and shows the
relative difference ‖g − g_num‖ / (‖g‖ + ‖g_num‖), passed or failed, and the rule. The check
of 784-512-256-10 takes about a minute, so it reports progress and can be cancelled.

Reachable from the Weights view (``gradCheckButton``) and the Run menu (:attr:`action`,
``gradCheckAction``), which brings the Weights view to the front and starts the check.
"""

from __future__ import annotations

import html
import time

import numpy as np
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from gui.models.current_model import CurrentModel, ModelSnapshot
from gui.models.training_session import TrainingSession
from gui.tasks import TaskRunner
from gui.views.latest_runner import niced
from gui.views.model_views import bring_to_front, hint_text_label, snapshot_hint

N_SAMPLES = 32
PROGRESS_SECONDS = 0.05  # progress reaches the window at most 20 times a second


SHORT_RULE = (
    "Passes when ‖g − g_num‖ / (‖g‖ + ‖g_num‖) < 1e-7 (backprop vs centred differences; float64 copy, "
    "dropout off, L2/L1 included)."
)


def sci(value: float, digits: int = 3) -> str:
    """1.234e-07 as '1.234e-7' (no padded exponent)."""
    mantissa, exponent = f"{value:.{digits}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def result_text(result: dict) -> str:
    """One line: the relative difference against the threshold, and the verdict."""
    rel, thr = float(result["relative_difference"]), float(result["threshold"])
    if result["passed"]:
        return f"relative difference {sci(rel)} < {sci(thr, 0)}: passed ✓"
    return f"relative difference {sci(rel)} ≥ {sci(thr, 0)}: FAILED ✗"


class GradCheckPanel(QWidget):
    """The button, progress, Cancel and result of a gradient check of the current model."""

    def __init__(self, model: CurrentModel, session: TrainingSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("gradCheckPanel")
        self.model = model
        self.session = session
        self.result: dict | None = None
        self._pending = False  # asked before the model's snapshot was there
        self._checking_key: str | None = None
        self._runner = TaskRunner(self)
        self._runner.progressed.connect(self._on_progress)
        self._runner.finished.connect(self._on_finished)
        self._runner.errored.connect(self._on_errored)

        self.button = QPushButton("Check gradients")
        self.button.setObjectName("gradCheckButton")
        self.button.setToolTip(
            "Compare backpropagation's gradient with finite differences on the current model "
            f"(first {N_SAMPLES} training samples, float64, dropout off, penalty included)"
        )
        self.button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("gradCheckCancelButton")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setObjectName("gradCheckProgress")
        self.progress.setVisible(False)
        self.progress.setFormat("%p %")
        self.progress.setMaximumWidth(160)
        self.result_label = QLabel("")
        self.result_label.setObjectName("gradCheckResult")
        self.result_label.setWordWrap(True)
        self.rule_label = hint_text_label("gradCheckRule")
        from engine.gradcheck import RULE

        self.rule_label.setText(SHORT_RULE)
        self.rule_label.setToolTip(f"The check {RULE}.")

        row = QHBoxLayout()
        row.addWidget(self.button)
        row.addWidget(self.cancel_button)
        row.addWidget(self.progress)
        row.addWidget(self.result_label, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addLayout(row)
        lay.addWidget(self.rule_label)

        self.action = QAction("Check &gradients…", self)
        self.action.setObjectName("gradCheckAction")
        self.action.setStatusTip("Gradient check of the current run's model (shown in the Weights view)")
        self.action.triggered.connect(self._on_action_triggered)
        model.changed.connect(self._on_model_changed)
        session.currentChanged.connect(self._on_current_changed)

    # ---------------------------------------------------------------- public
    def is_running(self) -> bool:
        return self._runner.is_running()

    def start(self) -> bool:
        """Check the current model now (or as soon as its snapshot is there); False without a run."""
        snap = self.model.snapshot()
        if snap is None:
            if self.session.current() is None:
                self.result_label.setText("Train a run (or select one) first: the check needs a model.")
                return False
            self._pending = True
            self.result_label.setText(snapshot_hint(self.model, self.session, "its gradient check"))
            return True
        if snap.data is None:
            self.result_label.setText("The run's data is not available, so there is nothing to check on.")
            return False
        self._run(snap)
        return True

    def cancel(self) -> None:
        self._pending = False
        if self._runner.is_running():
            self._runner.cancel()
            self.result_label.setText("Gradient check cancelled.")
        self._set_running(False)

    def shutdown(self) -> None:
        self._runner.shutdown()

    # ---------------------------------------------------------------- running
    def _run(self, snap: ModelSnapshot) -> None:
        self._pending = False
        self.result = None
        data, net = snap.data, snap.net
        reg = snap.config.regularization
        l2, l1 = float(reg.l2), float(reg.l1)
        self._checking_key = snap.key
        sizes = "-".join(str(s) for s in net.layer_sizes)
        epoch = f"epoch {snap.epoch}" if snap.epoch is not None else "saved weights"
        self._what = f"{sizes}, {epoch}"

        def check(ctx):
            from engine import blas
            from engine.batches import to_network_input
            from engine.gradcheck import check_network

            last = [0.0]

            def progress(done: int, total: int) -> None:
                now = time.monotonic()
                if now - last[0] >= PROGRESS_SECONDS or done == total:
                    last[0] = now
                    ctx.progress((done, total))

            X = to_network_input(data.train.head(N_SAMPLES), data.norm_mean, data.norm_std, np.float64)
            y = np.asarray(data.train.y[:N_SAMPLES])
            with blas.limited(1):  # the training process may be using the other core
                return check_network(
                    net, X, y, l2=l2, l1=l1, n_samples=N_SAMPLES, progress=progress, cancel=ctx.cancelled
                )

        self.progress.setRange(0, int(net.n_params))
        self.progress.setValue(0)
        self.result_label.setText(f"Checking {int(net.n_params):,} parameters ({self._what})…")
        self._set_running(True)
        self._runner.start(niced(check))

    def _set_running(self, running: bool) -> None:
        self.button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.progress.setVisible(running)

    def _on_progress(self, value) -> None:
        done, total = value
        self.progress.setMaximum(int(total))
        self.progress.setValue(int(done))

    def _on_finished(self, result: dict) -> None:
        self._set_running(False)
        self.result = result
        color = "#2ca02c" if result["passed"] else "#d62728"
        self.result_label.setText(
            f"<span style='color:{color}; font-weight:bold'>{html.escape(result_text(result))}</span> "
            f"({html.escape(self._what)}: {result['n_params']:,} parameters, {result['n_samples']} samples)"
        )
        layers = "\n".join(
            f"layer {d['layer']}: W {sci(d['W'], 2)}, b {sci(d['b'], 2)}" for d in result["layers"]
        )
        self.result_label.setToolTip(f"{result['note']}.\n\nRelative difference per layer:\n{layers}")

    def _on_errored(self, message: str) -> None:
        self._set_running(False)
        self.result_label.setText(f"The gradient check failed: {message.splitlines()[0]}")

    def _on_model_changed(self) -> None:
        if self._pending and self.model.snapshot() is not None:
            self.start()

    def _on_current_changed(self, _key: str) -> None:
        if self._runner.is_running() or self._pending:
            self.cancel()
        self.result = None
        self.result_label.setText("")
        self.result_label.setToolTip("")

    def _on_action_triggered(self) -> None:
        bring_to_front(self)
        self.start()
