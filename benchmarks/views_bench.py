"""Training throughput with an insight view open against closed, through the real window.

The real :class:`gui.window.MainWindow` (offscreen, real event loop) trains the same 2-D
experiment (2-64-64-2 on moons, Adam, batch 64) again and again, round by round, with the
Curves tab in front ("closed": no view of the model wants weights) or with a view of the model
in front ("open": it asks the training process for its weights at up to 5 Hz and redraws from
them). Training runs in the window's child process; the views compute in the window's
process, so they compete with training for a core, not for its GIL.

The figure compared is the *engine's* seconds (the sum of metrics.jsonl's ``seconds``), so
start-up does not count. Ratio = closed seconds / open seconds of the runs of one round (1.0:
the open view costs nothing). Target (issue 9): ≥ 0.9 with the decision boundary open. Also
reported: how many pictures the view drew per second, and the time of one 200×200
``BoundaryGrid.compute`` of 2-64-64-2 measured inside the view while training (target ≤ 5 ms)
and alone in this process with one BLAS thread.

    QT_QPA_PLATFORM=offscreen python benchmarks/views_bench.py [--rounds 5] [--epochs 1500]
        [--views boundary weights confusion]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONFIG = {
    "data": {"source": "builtin:moons", "n_samples": 1000, "noise": 0.2, "split": [0.6, 0.2, 0.2]},
    "model": {"hidden": [64, 64]},
    "optimizer": {"name": "adam", "lr": 0.01},
    "training": {"epochs": 1500, "batch_size": 64},
}
VIEWS = {"boundary": "boundary_view", "weights": "weights_view", "confusion": "confusion_view"}


def run_once(app, win, tab, timeout: float = 900.0) -> dict:
    """Train once with ``tab`` in front; returns engine seconds and what the view drew."""
    from PySide6.QtCore import QEventLoop, QTimer

    win.view_tabs.setCurrentWidget(tab)
    app.processEvents()
    drawn_before = len(getattr(tab, "compute_ms", []))
    frames = {"n": 0}
    job = getattr(tab, "_job", None)
    counter = (lambda _r: frames.__setitem__("n", frames["n"] + 1)) if job is not None else None
    if counter is not None:
        job.finished.connect(counter)
    loop = QEventLoop()
    finished: list[str] = []
    failed: list[str] = []

    def on_finished(key: str) -> None:
        finished.append(key)
        loop.quit()

    def on_failed(message: str) -> None:
        failed.append(message)
        loop.quit()

    win.runFinished.connect(on_finished)
    win.runFailed.connect(on_failed)
    QTimer.singleShot(int(timeout * 1000), loop.quit)
    child_cpu = {"s": 0.0}

    def sample_child() -> None:  # the training process's CPU seconds, read until it exits
        proc = win.session._process
        pid = proc.pid if proc is not None else None
        if pid:
            try:
                t = psutil.Process(pid).cpu_times()
                child_cpu["s"] = t.user + t.system
            except psutil.Error:
                pass

    sampler = QTimer()
    sampler.setInterval(100)
    sampler.timeout.connect(sample_child)
    sampler.start()
    t0 = time.perf_counter()
    cpu0 = time.process_time()  # the window process only (every thread); training is a child process
    if not win.start_training():
        raise RuntimeError(win.last_error or "training refused")
    loop.exec()
    sampler.stop()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    win.runFinished.disconnect(on_finished)
    win.runFailed.disconnect(on_failed)
    if counter is not None:
        job.finished.disconnect(counter)
    if failed or not finished:
        raise RuntimeError(f"training failed: {failed[0] if failed else 'timed out'}")
    run = win.history.get(finished[0])
    seconds = run.seconds()
    compute = list(getattr(tab, "compute_ms", []))[drawn_before:]
    win.delete_run(finished[0], confirm=False)  # the same window state for every run
    return {
        "seconds": seconds,
        "wall": wall,
        "cpu": cpu,
        "child_cpu": child_cpu["s"],
        "frames": frames["n"],
        "compute_ms": compute,
    }


def boundary_alone(repeats: int = 200) -> tuple[float, float]:
    """(best, median) ms of one 200×200 BoundaryGrid.compute of an initialized 2-64-64-2, one BLAS thread."""
    import numpy as np

    from engine import blas
    from engine.insight.boundary import BoundaryGrid
    from engine.network import MLP

    net = MLP([2, 64, 64, 2], "relu", dtype="float32")
    net.initialize("he", 1.0, np.random.default_rng(0))
    grid = BoundaryGrid(200)
    times = []
    with blas.limited(1):
        grid.compute(net, [0, 0], [1, 1], (-2, 3), (-1.5, 2))
        for _ in range(repeats):
            t0 = time.perf_counter()
            grid.compute(net, [0, 0], [1, 1], (-2, 3), (-1.5, 2))
            times.append(1000 * (time.perf_counter() - t0))
    return min(times), statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=1500)
    p.add_argument("--views", nargs="*", default=["boundary"], choices=list(VIEWS))
    args = p.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from engine.config import from_dict
    from engine.prepare import load_sources, prepare_from_sources
    from gui.state import ExperimentState
    from gui.window import MainWindow

    with tempfile.TemporaryDirectory(prefix="reglab-views-bench-") as name:
        tmp = Path(name)
        app = QApplication.instance() or QApplication(["views_bench"])
        QSettings.setDefaultFormat(QSettings.Format.IniFormat)
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))
        raw = {**CONFIG, "training": {**CONFIG["training"], "epochs": args.epochs}}
        state = ExperimentState(from_dict(raw))
        sources = load_sources(state.config.data)
        state.set_data(sources, prepare_from_sources(state.config, sources))
        win = MainWindow(state, runs_dir=tmp / "runs")
        win.show_dialogs = False
        win.resize(1024, 768)
        win.show()
        app.processEvents()
        best, median = boundary_alone()
        print(
            f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; python {sys.version.split()[0]}"
        )
        print(
            f"200x200 BoundaryGrid.compute of 2-64-64-2 alone, 1 BLAS thread: best {best:.1f} ms, "
            f"median {median:.1f} ms (target <= 5 ms)"
        )
        cases = {"closed": win.curves, **{v: getattr(win, VIEWS[v]) for v in args.views}}
        run_once(app, win, win.curves)  # warm-up: fork server, first imports
        results: dict[str, list[dict]] = {c: [] for c in cases}
        for r in range(args.rounds):
            order = list(cases) if r % 2 == 0 else list(reversed(cases))
            for case in order:
                results[case].append(run_once(app, win, cases[case]))
        print(
            f"\n2-64-64-2 on moons (600 training points, batch 64, Adam), {args.epochs} epochs per run, "
            f"{args.rounds} rounds; engine seconds per run (sum of metrics.jsonl seconds), medians:"
        )
        closed = [x["seconds"] for x in results["closed"]]

        def cpu_share(rows: list[dict]) -> float:
            return statistics.median(x["cpu"] / x["wall"] for x in rows)

        def child_share(rows: list[dict]) -> float:
            """CPU seconds the training process got per engine second (1.0: a core all to itself)."""
            return statistics.median(x["child_cpu"] / x["seconds"] for x in rows)

        print(
            f"  view closed (Curves tab): {statistics.median(closed):.2f} s; window process CPU "
            f"{100 * cpu_share(results['closed']):.0f} % of a core; training process CPU per engine second "
            f"{child_share(results['closed']):.2f}"
        )
        for case in args.views:
            opened = [x["seconds"] for x in results[case]]
            ratios = [c / o for c, o in zip(closed, opened)]
            frames = [x["frames"] / x["wall"] for x in results[case]]
            line = (
                f"  {case} open: {statistics.median(opened):.2f} s, ratio closed/open "
                f"{statistics.median(ratios):.3f} (rounds {', '.join(f'{x:.2f}' for x in ratios)}; "
                f"target >= 0.9); {statistics.median(frames):.1f} pictures/s; window process CPU "
                f"{100 * cpu_share(results[case]):.0f} % of a core; training process CPU per engine second "
                f"{child_share(results[case]):.2f}"
            )
            ms = [t for x in results[case] for t in x["compute_ms"]]
            if ms:
                line += (
                    f"; BoundaryGrid.compute while training: median {statistics.median(ms):.1f} ms, "
                    f"best {min(ms):.1f} ms over {len(ms)} pictures"
                )
            print(line)
        win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
