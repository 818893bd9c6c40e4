"""`reglab` (or `python main.py`) without a sub-command: open the RegLab window.

``reglab [EXPERIMENT.json]`` opens that experiment (as File > Open would; a bad file is
reported and the default experiment opens). Options: ``--runs-dir DIR`` (where runs are
kept; default $REGLAB_RUNS_DIR or the application data folder), ``--screenshot PATH`` (train
a short demo — a plain run and one with L2 — render the window to a PNG without a display and
exit), ``--quit-after-show`` (print "window shown" once the window is up and exit; used to
time start-up), ``--train-and-quit`` (train the experiment once through the real event loop,
print one JSON line with the engine's seconds and the event-loop gaps, exit; used by
benchmarks/gui_responsiveness.py) and ``--dark`` (a dark palette).

An exception that escapes a slot is shown in a dialog that says in words what happened
(:func:`install_exception_dialog`), never lost in a console.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from gui import qt_platform

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

# exit status when Qt cannot start here (no display, missing system libraries)
EXIT_NO_QT = 1

# The demo shows what the tool is for: a big network overfits a small noisy set (dev loss
# climbs, the weight norm grows), and the same run with L2 does not.
DEMO_CONFIG = {
    "data": {"source": "builtin:moons", "n_samples": 400, "noise": 0.25, "split": [0.25, 0.75], "seed": 2},
    "model": {"hidden": [128, 128]},
    "optimizer": {"name": "adam", "lr": 0.003},
    "training": {"epochs": 300, "batch_size": 100},
    "diagnosis": {"human_error": 0.03},
}
DEMO_L2 = 1.0


def window_parser() -> argparse.ArgumentParser:
    """The window's options (``reglab [OPTIONS]``; sub-commands are engine.cli's)."""
    p = argparse.ArgumentParser(prog="reglab", description="Open the RegLab workbench window.")
    p.add_argument("experiment", nargs="?", metavar="EXPERIMENT.json", help="open this experiment config")
    p.add_argument("--runs-dir", metavar="DIR", help="folder where runs are written and read back")
    p.add_argument(
        "--screenshot", metavar="PATH", help="train a short demo, save the window as a PNG and exit"
    )
    p.add_argument("--quit-after-show", action="store_true", help="exit as soon as the window is shown")
    p.add_argument(
        "--train-and-quit",
        action="store_true",
        help="train the experiment once, print the engine's seconds and event-loop gaps as JSON, exit",
    )
    p.add_argument("--dark", action="store_true", help="use a dark palette")
    return p


def install_exception_dialog() -> None:
    """Show an exception that escapes a Qt slot in a dialog, in words, instead of losing it."""
    import traceback

    from PySide6.QtWidgets import QApplication, QMessageBox

    previous = sys.excepthook

    def hook(exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            previous(exc_type, exc, tb)
            return
        detail = "".join(traceback.format_exception(exc_type, exc, tb))
        print(detail, file=sys.stderr)
        app = QApplication.instance()
        if app is None:
            return
        text = str(exc).strip() or "no further detail"
        box = QMessageBox(
            QMessageBox.Icon.Critical,
            "RegLab",
            "RegLab could not finish what you asked because of an internal error "
            f"({text}). Your runs and settings are safe; the window keeps working. "
            "If it happens again, please report the details below.",
        )
        box.setDetailedText(detail)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    from PySide6.QtCore import Qt

    sys.excepthook = hook


def main(argv: list[str] | None = None) -> int:
    args = window_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.screenshot and not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a screenshot needs no display
    # a QApplication that cannot load its platform plugin aborts the process: check first
    problem = qt_platform.startup_problem(os.environ)
    if problem is not None:
        print(problem, file=sys.stderr)
        return EXIT_NO_QT
    try:
        from PySide6.QtCore import QSettings, QTimer
        from PySide6.QtWidgets import QApplication
    except ImportError as exc:
        problem = qt_platform.import_problem(exc)
        if problem is None:
            raise
        print(problem, file=sys.stderr)
        return EXIT_NO_QT

    from gui.settings_store import APPLICATION, ORGANIZATION

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "reglab"])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("RegLab")
    tmp: tempfile.TemporaryDirectory | None = None
    if args.screenshot:
        # a demo must not touch the user's settings or runs
        tmp = tempfile.TemporaryDirectory(prefix="reglab-shot-")
        QSettings.setDefaultFormat(QSettings.Format.IniFormat)
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp.name)
    if args.dark:
        from gui.theme import dark_palette

        app.setStyle("Fusion")
        app.setPalette(dark_palette())

    from gui.theme import apply_plot_theme
    from gui.window import MainWindow

    apply_plot_theme(app)
    from engine import blas

    # the window's own products are small (curves, a view's grid): more BLAS threads would only
    # busy-wait on the core the training process needs (0.25 s of a 2 s image run, measured)
    blas.set_threads(1)
    runs_dir = args.runs_dir or (str(Path(tmp.name) / "runs") if tmp else None)
    install_exception_dialog()
    if args.experiment and not args.screenshot:
        from engine.config import load_config
        from engine.errors import InputError

        try:
            load_config(args.experiment)
        except InputError as exc:  # the window shows it too; say it where the command was typed
            print(f"error: Cannot open experiment: {' '.join(str(exc).split())}", file=sys.stderr)
    window = MainWindow(runs_dir=runs_dir, experiment=None if args.screenshot else args.experiment)
    if args.train_and_quit:
        window.show_dialogs = False
    if args.screenshot:
        window.resize(1400, 900)
    window.show()
    status = {"code": 0}

    if args.quit_after_show:

        def quit_now() -> None:
            print("window shown", flush=True)
            window.close()
            app.quit()

        QTimer.singleShot(0, quit_now)
    elif args.screenshot:
        _run_demo(app, window, Path(args.screenshot), status)
    elif args.train_and_quit:
        _train_and_quit(app, window, status)
    app.exec()
    if tmp is not None:
        tmp.cleanup()
    return status["code"]


def _train_and_quit(app: QApplication, window, status: dict) -> None:
    """Train the opened experiment once through the real event loop and report, as one JSON line,
    the engine's seconds (sum over epochs, as in metrics.jsonl) and the event loop's gaps."""
    import json
    import time

    import numpy as np
    from PySide6.QtCore import QTimer

    ticks: list[float] = []
    tick = QTimer(window)
    tick.setInterval(10)
    tick.timeout.connect(lambda: ticks.append(time.perf_counter()))

    def report(key: str) -> None:
        tick.stop()
        run = window.history.get(key)
        gaps = np.diff(ticks) * 1000.0 if len(ticks) > 1 else np.zeros(1)
        out = {
            "run": key,
            "epochs": len(run.metrics) if run else 0,
            "engine_seconds": run.seconds() if run else None,
            "stop_reason": run.stop_reason() if run else None,
            "runs_shown": len(window.history),
            "gap_p50_ms": float(np.median(gaps)),
            "gap_p99_ms": float(np.percentile(gaps, 99)),
            "gap_longest_ms": float(gaps.max()),
            # the three longest gaps: (seconds after training started, milliseconds)
            "gap_worst": [
                (round(ticks[i] - ticks[0], 3), round(float(gaps[i]), 1)) for i in np.argsort(gaps)[-3:][::-1]
            ]
            if len(ticks) > 1
            else [],
        }
        print(json.dumps(out), flush=True)
        window.close()
        app.quit()

    def fail(message: str) -> None:
        print(f"training failed: {message}", file=sys.stderr)
        status["code"] = 1
        window.close()
        app.quit()

    def start_when_ready() -> None:
        if window.problems():  # the data is still loading
            QTimer.singleShot(50, start_when_ready)
            return
        if not window.start_training():
            fail(window.last_error or "refused")
            return
        tick.start()

    window.runFinished.connect(report)
    window.runFailed.connect(fail)
    QTimer.singleShot(0, start_when_ready)


def _run_demo(app: QApplication, window, out: Path, status: dict) -> None:
    """Two short runs (plain, then L2) so the runs table and overlays show, then grab the window."""
    from PySide6.QtCore import QTimer

    from engine.config import from_dict

    window.show_dialogs = False
    window.state.set_config(from_dict(DEMO_CONFIG))
    step = {"n": 0}

    def grab() -> None:
        if window.curves.is_redrawing():  # the end of a run is drawn one plot per timer tick
            QTimer.singleShot(50, grab)
            return
        pixmap = window.grab()
        if not pixmap.save(str(out), "PNG"):
            print(f"cannot write {out}", file=sys.stderr)
            status["code"] = 1
        window.close()
        app.quit()

    def fail(message: str) -> None:
        print(f"demo training failed: {message}", file=sys.stderr)
        status["code"] = 1
        window.close()
        app.quit()

    def on_finished(_run_dir: str) -> None:
        step["n"] += 1
        if step["n"] == 1:
            window.state.update("regularization", l2=DEMO_L2)
            QTimer.singleShot(50, window.start_training)
        else:
            QTimer.singleShot(300, grab)

    window.runFinished.connect(on_finished)
    window.runFailed.connect(fail)

    def start_when_ready() -> None:
        if window.problems():  # the default data is still loading
            QTimer.singleShot(50, start_when_ready)
        elif not window.start_training():
            fail(window.last_error or "refused")

    QTimer.singleShot(0, start_when_ready)
    QTimer.singleShot(120_000, lambda: fail("timed out"))
