"""`reglab` (or `python main.py`) without a sub-command: open the RegLab window.

Options: ``--runs-dir DIR`` (where runs are kept; default $REGLAB_RUNS_DIR or the
application data folder), ``--screenshot PATH`` (train a short demo — a plain run and
one with L2 — render the window to a PNG without a display and exit), ``--quit-after-show``
(print "window shown" once the window is up and exit; used to time start-up) and
``--dark`` (a dark palette).
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
    p.add_argument("--runs-dir", metavar="DIR", help="folder where runs are written and read back")
    p.add_argument(
        "--screenshot", metavar="PATH", help="train a short demo, save the window as a PNG and exit"
    )
    p.add_argument("--quit-after-show", action="store_true", help="exit as soon as the window is shown")
    p.add_argument("--dark", action="store_true", help="use a dark palette")
    return p


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
    runs_dir = args.runs_dir or (str(Path(tmp.name) / "runs") if tmp else None)
    window = MainWindow(runs_dir=runs_dir)
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
    app.exec()
    if tmp is not None:
        tmp.cleanup()
    return status["code"]


def _run_demo(app: QApplication, window, out: Path, status: dict) -> None:
    """Two short runs (plain, then L2) so the runs table and overlays show, then grab the window."""
    from PySide6.QtCore import QTimer

    from engine.config import from_dict

    window.show_dialogs = False
    window.state.set_config(from_dict(DEMO_CONFIG))
    step = {"n": 0}

    def grab() -> None:
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
