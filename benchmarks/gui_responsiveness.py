"""Window responsiveness while training at full speed, and start-up time of `python main.py`.

1. Event-loop stalls: the window (offscreen) trains the 784-512-256-10 network (Adam,
   batch 128, float32) on synthetic MNIST-sized data passed as PreparedData, with live
   plots, for --seconds; a 10 ms QTimer records the gaps between its ticks. Reported:
   p50 / p99 / longest gap (targets: p99 < 50 ms, longest < 200 ms) and the training
   speed (samples/s) so the cost of keeping the window live is visible. With --compare
   the same run is repeated with Python's default GIL switch interval (5 ms) to show
   what the worker's shorter interval buys.
2. Start-up: wall time from launching `python main.py --quit-after-show` to the line
   "window shown" (target < 2 s), median of --starts runs.

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_responsiveness.py [--seconds 15] [--compare]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402


def synthetic_data(n_train: int, n_dev: int, seed: int = 0):
    """MNIST-sized vectors (n, 784) float32 with labels a linear teacher can explain (10 classes)."""
    from engine.dataset import ArraySet, PreparedData

    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal((784, 10)).astype(np.float32)

    def make(n: int) -> ArraySet:
        X = rng.standard_normal((n, 784), dtype=np.float32)
        y = np.argmax(X @ teacher + 0.5 * rng.standard_normal((n, 10), dtype=np.float32), axis=1)
        return ArraySet(X, y.astype(np.int64))

    return PreparedData(
        train=make(n_train),
        dev=make(n_dev),
        test=make(200),
        classes=[str(i) for i in range(10)],
        input_shape=(784,),
        norm_mean=np.zeros(784, np.float32),
        norm_std=np.ones(784, np.float32),
    )


def measure_stalls(seconds: float, switch_interval: float | None, data, runs_dir: Path) -> dict:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    import gui.training_worker as tw
    from gui.window import MainWindow

    app = QApplication.instance()
    if switch_interval is not None:
        tw.TRAINING_SWITCH_INTERVAL = switch_interval
    win = MainWindow(runs_dir=runs_dir)
    win.show_dialogs = False
    win.resize(1400, 900)
    win.show()
    deadline = time.perf_counter() + 30
    while win.problems() and time.perf_counter() < deadline:  # the default data loads first
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
    win.state.update("model", hidden=[512, 256])
    win.state.update("regularization", keep_prob=1.0)
    win.state.update("optimizer", name="adam", lr=0.001)
    win.state.update("training", epochs=10_000, batch_size=128, dtype="float32")
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    done: list[str] = []
    win.runFinished.connect(done.append)
    if not win.start_training(data=data):
        raise SystemExit(f"training refused: {win.last_error}")
    timer.start()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
    timer.stop()
    win.stop_training()
    deadline = time.perf_counter() + 60
    while not done and time.perf_counter() < deadline:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
    rec = win._last_record
    epochs = len(win.curves.epochs())
    if win.last_error:
        print(f"error during the run: {win.last_error}", file=sys.stderr)
    win.close()
    gaps = np.diff(ticks) * 1000.0
    worst = np.argsort(gaps)[-3:][::-1]
    where = ", ".join(f"{gaps[i]:.0f} ms at t={ticks[i] - ticks[0]:.1f} s" for i in worst)
    return {
        "worst": where,
        "switch_interval_ms": 1000
        * (switch_interval if switch_interval is not None else tw.TRAINING_SWITCH_INTERVAL),
        "ticks": len(gaps),
        "p50_ms": float(np.median(gaps)),
        "p99_ms": float(np.percentile(gaps, 99)),
        "longest_ms": float(gaps.max()),
        "epochs": epochs,
        "samples_per_sec": float(rec.samples_per_sec) if rec is not None else float("nan"),
        "sec_per_epoch": float(rec.seconds) if rec is not None else float("nan"),
    }


def measure_startup(n: int) -> list[float]:
    times = []
    for _ in range(n):
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(
                os.environ,
                QT_QPA_PLATFORM="offscreen",
                REGLAB_RUNS_DIR=str(Path(tmp) / "runs"),
                XDG_CONFIG_HOME=str(Path(tmp) / "config"),
                XDG_DATA_HOME=str(Path(tmp) / "data"),
            )
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, str(ROOT / "main.py"), "--quit-after-show"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            for line in proc.stdout:
                if "window shown" in line:
                    times.append(time.perf_counter() - t0)
                    break
            proc.wait(timeout=60)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=15.0, help="training time measured per setting")
    p.add_argument("--train-samples", type=int, default=20_000)
    p.add_argument(
        "--compare", action="store_true", help="also run with the default 5 ms GIL switch interval"
    )
    p.add_argument("--starts", type=int, default=3, help="start-up measurements")
    args = p.parse_args(argv)

    from PySide6.QtCore import QCoreApplication, QSettings
    from PySide6.QtWidgets import QApplication

    tmp = tempfile.TemporaryDirectory(prefix="reglab-bench-")
    app = QApplication([sys.argv[0]])
    QCoreApplication.setOrganizationName("RegLabBench")
    QCoreApplication.setApplicationName("RegLabBench")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp.name)
    data = synthetic_data(args.train_samples, 2000)
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, numpy {np.__version__}")
    print(
        f"network 784-512-256-10, Adam, batch 128, float32, {args.train_samples} training samples, live plots"
    )
    settings = [None] + ([0.005] if args.compare else [])
    for i, si in enumerate(settings):
        r = measure_stalls(args.seconds, si, data, Path(tmp.name) / f"runs{i}")
        print(
            f"GIL switch interval {r['switch_interval_ms']:.1f} ms: {r['ticks']} ticks, event-loop gap "
            f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, longest {r['longest_ms']:.1f} ms; "
            f"{r['epochs']} epochs, {r['sec_per_epoch']:.2f} s/epoch, {r['samples_per_sec']:,.0f} samples/s "
            f"(targets: p99 < 50 ms, longest < 200 ms)"
        )
        print(f"  longest gaps: {r['worst']}")
    app.quit()
    times = measure_startup(args.starts)
    if times:
        print(
            f"start-up to window shown: median {np.median(times):.2f} s, runs {', '.join(f'{t:.2f}' for t in times)} "
            f"(target < 2 s)"
        )
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
