"""Training inside the real window against headless training, the window's event loop, start-up.

For each case the same experiment file is trained, alternating, round by round:

- headless: ``python main.py train --config CASE.json --out DIR``;
- in the window: ``python main.py CASE.json --runs-dir RUNS --train-and-quit`` (offscreen), the
  real event loop with ten finished runs stored in RUNS and overlaid on the plots, as a user has
  them after a while. The window reports the engine's seconds and the gaps of a 10 ms timer.

The figure compared is the *engine's* seconds (the sum of metrics.jsonl's ``seconds``, which
both paths write the same way), so start-up and data loading do not count. Ratio = headless
seconds / window seconds (1.0: the window costs nothing). Targets (issue 7): ≥ 0.9 for a small
2-D network over many epochs and for an augmented image run, ≥ 0.6 for 784-512-256-10 on a
2-core machine (the window keeps one core for itself there), event-loop p99 gap < 50 ms and
longest < 200 ms, start-up < 2 s.

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_responsiveness.py [--rounds 3] [--starts 5]
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

CASES = {
    "small 2-D (2-64-32-2, 1500 epochs)": {
        "data": {"source": "builtin:moons", "n_samples": 600, "noise": 0.3},
        "model": {"hidden": [64, 32]},
        "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"epochs": 1500, "batch_size": 64},
    },
    "augmented images (shapes 32x32, flips, shifts, noise)": {
        "data": {"source": "builtin:shapes", "n_samples": 3000, "noise": 0.1, "image_size": [32, 32]},
        "augment": {"hflip": 0.5, "translate": 0.1, "noise_std": 0.05},
        "model": {"hidden": [128]},
        "optimizer": {"name": "adam", "lr": 0.001},
        "training": {"epochs": 12, "batch_size": 64},
    },
    "784-512-256-10 (20,000 samples)": {
        "data": {"source": "{mnist_like}", "split": [0.8, 0.2]},
        "model": {"hidden": [512, 256]},
        "optimizer": {"name": "adam", "lr": 0.001},
        "training": {"epochs": 6, "batch_size": 128},
    },
}
TARGETS = {0: 0.9, 1: 0.9, 2: 0.6}


def env(tmp: Path) -> dict:
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    # a user's Python caches bytecode; without the cache every start compiles RegLab (~0.3 s here)
    return dict(
        environ,
        QT_QPA_PLATFORM="offscreen",
        XDG_CONFIG_HOME=str(tmp / "config"),
        XDG_DATA_HOME=str(tmp / "data"),
        REGLAB_CACHE_DIR=str(tmp / "cache"),
    )


def mnist_like(path: Path, n: int = 25_000, seed: int = 0) -> None:
    """(n, 784) float32 vectors with 10 classes a linear teacher can explain."""
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal((784, 10)).astype(np.float32)
    X = rng.standard_normal((n, 784), dtype=np.float32)
    y = np.argmax(X @ teacher + 0.5 * rng.standard_normal((n, 10), dtype=np.float32), axis=1)
    np.savez(path, X=X, y=y.astype(np.int64))


def engine_seconds(run_dir: Path) -> float:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return sum(json.loads(line)["seconds"] for line in lines if line.strip())


def headless(cfg: Path, out: Path, environ: dict) -> float:
    subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "train", "--config", str(cfg), "--out", str(out)],
        check=True,
        env=environ,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return engine_seconds(out)


def in_window(cfg: Path, runs: Path, environ: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), str(cfg), "--runs-dir", str(runs), "--train-and-quit"],
        check=True,
        env=environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
    report = json.loads(line)
    return report


def seed_runs(runs: Path, environ: dict, n: int = 10) -> None:
    """Ten finished runs of 300 epochs in the window's runs folder (they are overlaid)."""
    for i in range(n):
        cfg = runs.parent / f"old-{i}.json"
        cfg.write_text(
            json.dumps(
                {
                    "data": {"source": "builtin:moons", "n_samples": 400, "noise": 0.3},
                    "model": {"hidden": [32, 32]},
                    "regularization": {"l2": 0.01 * i},
                    "training": {"epochs": 300, "seed": i},
                }
            )
        )
        headless(cfg, runs / f"run-20260101-0000{i:02d}-01", environ)


def startup(n: int, tmp: Path) -> list[float]:
    times = []
    for i in range(n):
        environ = env(tmp)
        environ["REGLAB_RUNS_DIR"] = str(tmp / f"start-runs-{i}")
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "--quit-after-show"],
            cwd=ROOT,
            env=environ,
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
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--starts", type=int, default=5)
    p.add_argument("--only", type=int, nargs="*", help="case numbers to run (0, 1, 2)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="reglab-gui-bench-") as name:
        tmp = Path(name)
        environ = env(tmp)
        runs = tmp / "runs"
        runs.mkdir()
        seed_runs(runs, environ)
        mnist = tmp / "mnist_like.npz"
        mnist_like(mnist)
        print(
            f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; python {sys.version.split()[0]}"
        )
        print(
            "engine seconds per run (sum of metrics.jsonl seconds); medians over rounds; 10 runs overlaid\n"
        )
        for index, (title, raw) in enumerate(CASES.items()):
            if args.only and index not in args.only:
                continue
            raw = json.loads(json.dumps(raw).replace("{mnist_like}", str(mnist)))
            cfg = tmp / f"case-{index}.json"
            cfg.write_text(json.dumps(raw))
            heads, wins, p99, longest = [], [], [], []
            for r in range(args.rounds):
                heads.append(headless(cfg, tmp / f"head-{index}-{r}", environ))
                report = in_window(cfg, runs, environ)
                wins.append(report["engine_seconds"])
                p99.append(report["gap_p99_ms"])
                longest.append(report["gap_longest_ms"])
                # keep the overlay count at ten: the window's new run joins the stored ones
                new = Path(report["run"])
                if new.exists():
                    shutil.rmtree(new)
            ratios = [h / w for h, w in zip(heads, wins)]
            print(
                f"{title}: headless {statistics.median(heads):.2f} s, window {statistics.median(wins):.2f} s, "
                f"ratio {statistics.median(ratios):.2f} (rounds {', '.join(f'{x:.2f}' for x in ratios)}; "
                f"target ≥ {TARGETS[index]}); event loop p99 {statistics.median(p99):.1f} ms, "
                f"longest {max(longest):.1f} ms (targets < 50, < 200)"
            )
        times = startup(args.starts, tmp)
        if times:
            print(
                f"\nstart-up to window shown: median {statistics.median(times):.2f} s "
                f"(runs {', '.join(f'{t:.2f}' for t in times)}; target < 2 s)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
