"""The window's event loop while a sweep runs from the Sweep tab, beside the same sweep run by
the command line next to an idle window (the same load on the cores, none of the tab's work).

Alternating, round by round, in one process with the real window (offscreen, 1400×900, the
Sweep tab on show):

- ``tab``: the sweep is started from the tab (Start sweep); it runs in its own process and
  the tab draws progress, the trials table, the curves and adds each trial to the runs table;
- ``cli``: ``python main.py sweep …`` of the same sweep in a subprocess while the window idles.

A 10 ms QTimer records its gaps from the start until the sweep has ended, and the GUI thread's
CPU time between two ticks (``time.thread_time``): the gaps are what a user feels, but on a
loaded machine they include waiting for a core; the CPU time between ticks is the window's own
work, whatever the load. Targets (issue 7, the window's event loop): p99 gap < 50 ms, longest
< 200 ms.

    QT_QPA_PLATFORM=offscreen python benchmarks/sweep_window.py [--rounds 2] [--epochs 300]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BASE = ROOT / "examples" / "overfit_moons_plain.json"
PARAM = "regularization.l2=log:0.001:10:6"
SEEDS = 2
WORKERS = 2


def gaps_while(app, start, done) -> tuple[np.ndarray, np.ndarray]:
    """Wall-clock gaps and GUI-thread CPU time (ms) between the ticks of a 10 ms timer, from
    start() until done() is true."""
    from PySide6.QtCore import QEventLoop, QTimer

    ticks: list[tuple[float, float]] = []
    timer = QTimer()
    timer.setInterval(10)
    loop = QEventLoop()

    def tick() -> None:
        ticks.append((time.perf_counter(), time.thread_time()))
        if done():
            loop.quit()

    timer.timeout.connect(tick)
    timer.start()
    start()
    loop.exec()
    timer.stop()
    t = np.array(ticks)
    return np.diff(t[:, 0]) * 1000.0, np.diff(t[:, 1]) * 1000.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=300)
    args = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from engine.config import load_config
    from engine.prepare import load_sources, prepare_from_sources
    from gui.state import ExperimentState
    from gui.window import MainWindow

    app = QApplication.instance() or QApplication([])
    tmp = Path(tempfile.mkdtemp(prefix="reglab-sweep-window-"))
    cfg = load_config(BASE).replace(**{"training.epochs": args.epochs})
    base_file = tmp / "base.json"
    base_file.write_text(cfg.to_json())
    results: dict[str, list[tuple[float, ...]]] = {"tab": [], "cli": []}
    try:
        for rnd in range(args.rounds):
            for mode in ("tab", "cli") if rnd % 2 == 0 else ("cli", "tab"):
                state = ExperimentState(cfg)
                sources = load_sources(cfg.data)
                state.set_data(sources, prepare_from_sources(cfg, sources))
                win = MainWindow(state, runs_dir=tmp / f"runs-{rnd}-{mode}")
                win.show_dialogs = False
                win.resize(1400, 900)
                win.show()
                panel = win.sweep_panel
                win.view_tabs.setCurrentWidget(panel)
                t_settle = time.perf_counter()
                while time.perf_counter() - t_settle < 1.5:  # start-up work and the fork server warm-up
                    app.processEvents()
                out = tmp / f"sweep-{rnd}-{mode}"
                if mode == "tab":
                    row = panel.params.rows[0]
                    row.set_mode("log")
                    row.set_range(0.001, 10.0, 6)
                    panel.seeds_spin.setValue(SEEDS)
                    panel.workers_spin.setValue(WORKERS)
                    panel.folder_edit.setText(str(out))
                    ended: list = []
                    panel.finished.connect(ended.append)
                    panel.failed.connect(ended.append)
                    t0 = time.perf_counter()
                    gaps, cpu = gaps_while(app, panel.start, lambda ended=ended: bool(ended))
                else:
                    cmd = [sys.executable, str(ROOT / "main.py"), "sweep", "--config", str(base_file),
                           "--param", PARAM, "--seeds", str(SEEDS), "--workers", str(WORKERS), "--out", str(out)]  # fmt: skip
                    procs: list = []
                    t0 = time.perf_counter()
                    gaps, cpu = gaps_while(
                        app,
                        lambda procs=procs, cmd=cmd: procs.append(
                            subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                        ),
                        lambda procs=procs: procs[0].poll() is not None,
                    )
                seconds = time.perf_counter() - t0
                rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line]
                win.close()
                app.processEvents()
                entry = (
                    float(np.median(gaps)),
                    float(np.percentile(gaps, 99)),
                    float(gaps.max()),
                    seconds,
                    float(np.percentile(cpu, 99)),
                    float(cpu.max()),
                    float(cpu.sum()),
                )
                results[mode].append(entry)
                print(
                    f"round {rnd + 1} {mode}: {len(rows)} trials in {seconds:.1f} s; event loop p50 {entry[0]:.1f} ms, "
                    f"p99 {entry[1]:.1f} ms, longest {entry[2]:.1f} ms ({len(gaps)} ticks); GUI-thread CPU between "
                    f"ticks p99 {entry[4]:.1f} ms, longest {entry[5]:.1f} ms, total {entry[6] / 1000:.2f} s",
                    flush=True,
                )
        print()
        for mode, label in (
            ("tab", "sweep from the Sweep tab"),
            ("cli", "same sweep by the CLI, window idle"),
        ):
            rs = results[mode]
            print(
                f"{label}: p50 {statistics.median(r[0] for r in rs):.1f} ms, "
                f"p99 {statistics.median(r[1] for r in rs):.1f} ms, longest {max(r[2] for r in rs):.1f} ms, "
                f"sweep {statistics.median(r[3] for r in rs):.1f} s; GUI-thread CPU between ticks p99 "
                f"{statistics.median(r[4] for r in rs):.1f} ms, longest {max(r[5] for r in rs):.1f} ms, total "
                f"{statistics.median(r[6] for r in rs) / 1000:.2f} s (medians of {len(rs)} rounds; targets p99 < 50, "
                "longest < 200)"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
