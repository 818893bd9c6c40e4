"""Depth lab: time from a scale-slider move to the redrawn curves (depth 50 × width 100).

Run with ``QT_QPA_PLATFORM=offscreen python benchmarks/depth_lab_latency.py``. Three figures:

1. **single moves**: one slider step at a time, waiting for its curves; latency = slider
   ``valueChanged`` → curves set (``DepthLabView.latencies``) and → the plot painted
   (``repaint()`` of the plot's viewport right after, timed separately);
2. **a drag**: a move every 16 ms (a 60 Hz mouse) for ``--drag-seconds``; the lag of every
   drawn result behind its own move, and how long after the *last* move its curves appear;
3. **the profile alone**: ``DepthLab.profile(scale)`` in this thread with one BLAS thread, for
   comparison (what each move computes, on the GUI thread while it stays under
   ``depth_lab_view.SYNC_LIMIT``, else in the worker thread).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _pump(app, seconds: float) -> None:
    """Run the event loop for a while (a real loop: the GUI thread waits in C++ without the GIL)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(max(0, round(1000 * seconds)), loop.quit)
    loop.exec()


def _wait_drawn(lab, cond, timeout: float = 30.0) -> None:
    """Run the event loop until the lab has drawn and cond() holds. Woken by the lab's drawn
    signal, never by polling: a polling timer (or processEvents + sleep) runs Python in this
    thread every millisecond, takes the GIL from the worker thread each time and measured
    the worker 3-4x slower than it is."""
    from PySide6.QtCore import QEventLoop, QTimer

    if cond():
        return
    loop = QEventLoop()

    def on_drawn(_settings) -> None:
        if cond():
            loop.quit()

    lab.drawn.connect(on_drawn)
    QTimer.singleShot(round(1000 * timeout), loop.quit)
    loop.exec()
    lab.drawn.disconnect(on_drawn)
    if not cond():
        raise TimeoutError("the depth lab did not draw in time")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=30, help="single moves (default 30)")
    parser.add_argument("--drag-seconds", type=float, default=3.0, help="length of the drag (default 3 s)")
    parser.add_argument(
        "--sync-limit", type=float, default=None, metavar="MS",
        help="override depth_lab_view.SYNC_LIMIT (0: always the worker thread; 1000: always the GUI thread)",
    )  # fmt: skip
    args = parser.parse_args(argv)

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from engine import blas
    from engine.insight.depthlab import DepthLab
    from gui.theme import apply_plot_theme
    from gui.views.depth_lab_view import DepthLabView

    apply_plot_theme()
    if args.sync_limit is not None:
        import gui.views.depth_lab_view as depth_lab_view

        depth_lab_view.SYNC_LIMIT = args.sync_limit / 1000
    lab = DepthLabView()
    lab.resize(900, 560)
    lab.show()
    lab.set_settings(depth=50, width=100, activation="relu", init="he", scale=1.0)
    _wait_drawn(lab, lambda: lab.shown_settings == (50, 100, "relu", "he", 1.0) and not lab.is_computing())

    # 1. single moves
    lab.latencies.clear()
    painted = []
    for i in range(args.moves):
        value = 60 + (i % 2) * 90 + i  # alternate between small and large scales
        lab.scale_slider.setValue(value)
        target = value / 100
        _wait_drawn(lab, lambda t=target: lab.shown_settings[-1] == t and not lab.is_computing())
        t0 = time.perf_counter()
        lab.plot.viewport().repaint()
        painted.append(lab.latencies[-1] + time.perf_counter() - t0)
    single = list(lab.latencies)

    # 2. a drag at 60 Hz (the slider held down: curves without antialiasing, as in the window)
    lab.latencies.clear()
    lab.scale_slider.sliderPressed.emit()
    value = 50
    end = time.perf_counter() + args.drag_seconds
    moves = 0
    while time.perf_counter() < end:
        value = 50 + (value - 49) % 200
        lab.scale_slider.setValue(value)
        moves += 1
        _pump(app, 0.016)
    last_move = time.perf_counter()
    lab.scale_slider.sliderReleased.emit()
    final = value / 100
    _wait_drawn(lab, lambda: lab.shown_settings[-1] == final and not lab.is_computing())
    after_last = time.perf_counter() - last_move
    drag = list(lab.latencies)

    # 3. the profile alone
    profile_lab = DepthLab(50, 100, "relu", "he")
    alone = []
    with blas.limited(1):
        for i in range(20):
            t0 = time.perf_counter()
            profile_lab.profile(0.5 + i / 20)
            alone.append(time.perf_counter() - t0)

    def ms(values) -> str:
        v = sorted(values)
        p90 = v[min(len(v) - 1, int(0.9 * len(v)))]
        return (
            f"median {1000 * statistics.median(v):.1f} ms, p90 {1000 * p90:.1f} ms, max {1000 * v[-1]:.1f} ms"
        )

    print(f"single moves ({len(single)}): move → curves set: {ms(single)}")
    print(f"single moves ({len(painted)}): move → plot painted: {ms(painted)}")
    print(
        f"drag at 60 Hz: {moves} moves, {len(drag)} redraws; lag of each redraw behind its move: {ms(drag)}"
    )
    print(f"drag: last move → its curves: {1000 * after_last:.1f} ms")
    print(f"DepthLab.profile alone (one BLAS thread): {ms(alone)}")
    print(f"profiles on the GUI thread: {lab.sync_count} (the others in the worker thread)")
    with open("/proc/loadavg") as f:
        print(f"load average: {f.read().split()[0]}")
    lab.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
