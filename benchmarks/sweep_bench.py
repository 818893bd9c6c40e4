"""Sweeps on a local Dask cluster: speed-up with 2 workers, per-trial overhead, cluster start-up.

Run:  python benchmarks/sweep_bench.py [--rounds 2] [--epochs 250] [--overhead-trials 20]

1. **Whole-command speed-up.** ``python main.py sweep`` of 8 trials (λ over 8 values;
   ``builtin:spiral`` 3,000 points, 2-128-128-3, batch 64, ``--epochs`` epochs: a few seconds
   per trial) with ``--workers 1`` and ``--workers 2``, each into a fresh folder, start-up and
   teardown included. The two alternate for ``--rounds`` rounds; the ratio of the medians is
   reported. Target: ≥ 1.6× on the 2-core machine.
2. **Scheduling overhead per trial.** On a warm 1-worker cluster, tiny trials (2-8-2, 20
   epochs) are submitted one at a time with the real task function; per trial, the time the
   client waits (submit to result in hand) minus the trial's wall time on the worker
   (``TrialOutput.seconds``). Also the runner's whole per-trial cost: a ``SweepRunner`` sweep
   of the same trials, (wall time after the cluster is up − Σ worker seconds) ÷ trials, which
   adds writing each run folder and results row. Target: ≤ 50 ms.
3. **LocalCluster start-up.** ``engine.sweep_runner.start_local_cluster(2)`` until a client
   is connected and every worker answered the RegLab probe, in a fresh interpreter each time
   (as the command line starts it), median of ``--rounds`` + 1; and a second start in the
   same process (the window's second sweep, the forkserver already warm). Target: < 2 s.
4. **Progress events.** Cost on the worker of one ``Worker.log_event`` (what a batch of
   epochs costs to send) and of one ``DaskChannel.progress`` call (what each epoch costs).
5. **A caller's thread while a sweep runs.** ``SweepRunner.start`` runs a 2-worker sweep of 8
   short trials in its own thread (the window's way) while the main thread ticks every 10 ms
   like an event loop; the gaps between ticks (p50 / p99 / longest) show what the client side
   (Dask client, in-process scheduler and nannies, folder writing) takes from the caller.
   The window's targets: p99 < 50 ms, longest < 200 ms.
6. **BLAS-thread rounding.** A trial of a network big enough that a standalone ``train`` uses
   every core's BLAS thread (2-512-512-3, batch 256) against that standalone run: the largest
   relative difference of any per-epoch loss (the documented tolerance).

Every figure comes from one run on a machine other people use too: compare within a run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

L2_VALUES = "0,0.0001,0.0003,0.001,0.003,0.01,0.03,0.1"


def sweep_config(epochs: int) -> dict:
    return {
        "data": {"source": "builtin:spiral", "n_samples": 3000},
        "model": {"hidden": [128, 128]},
        "training": {"epochs": epochs, "batch_size": 64},
    }


def tiny_config() -> dict:
    return {"data": {"n_samples": 200}, "model": {"hidden": [8]}, "training": {"epochs": 20}}


def load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


# ---------------------------------------------------------------- 1. speed-up


def whole_command(workers: int, base: Path, folder: Path) -> tuple[float, float]:
    """(wall seconds of the whole command, mean trial seconds on the workers)."""
    out = folder / f"w{workers}-{time.monotonic_ns()}"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "main.py", "sweep", "--config", str(base), "--param", f"regularization.l2={L2_VALUES}",
         "--workers", str(workers), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"sweep failed: {proc.stderr}")
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 8
    return wall, statistics.fmean(r["seconds"] for r in rows)


def speedup(rounds: int, epochs: int, folder: Path) -> dict:
    base = folder / "base.json"
    base.write_text(json.dumps(sweep_config(epochs)))
    times: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    for r in range(rounds):
        for w in (1, 2) if r % 2 == 0 else (2, 1):
            times[w].append(whole_command(w, base, folder))
            print(f"  round {r + 1}: {w} worker(s) {times[w][-1][0]:.1f} s (load {load()})", file=sys.stderr)
    med = {w: statistics.median(t for t, _ in v) for w, v in times.items()}
    trial = {w: statistics.fmean(s for _, s in v) for w, v in times.items()}
    return {"wall": times, "median": med, "trial_seconds": trial, "ratio": med[1] / med[2]}


# ---------------------------------------------------------------- 2. overhead


def overhead(n_trials: int, folder: Path) -> dict:
    import distributed

    from engine.config import from_dict
    from engine.sweep import make_definition, parse_param
    from engine.sweep_runner import SweepFinished, SweepRunner, SweepStarted, start_local_cluster
    from engine.sweep_worker import TrialTask, execute

    cluster = start_local_cluster(1)
    client = distributed.Client(cluster, set_as_default=False)
    try:
        cfg = from_dict(tiny_config())
        gaps = []
        for i in range(n_trials + 2):  # the first two warm the worker (imports, data cache)
            task = TrialTask(
                f"t{i}", cfg.replace(**{"training.seed": i}).to_dict(), "bench-topic", "bench-stop"
            )
            t0 = time.perf_counter()
            out = client.submit(execute, task, key=f"bench-{i}", pure=False).result()
            waited = time.perf_counter() - t0
            if i >= 2:
                gaps.append(waited - out.seconds)
        distributed.Event("bench-stop", client=client).set()
    finally:
        client.close()
        cluster.close()

    values = ",".join(str(v) for v in range(n_trials))
    definition = make_definition(cfg, [parse_param(f"training.seed={values}", cfg)])
    runner = SweepRunner(definition, folder / "overhead", workers=1)
    t_up = None
    for event in runner.events():
        if isinstance(event, SweepStarted):
            t_up = time.perf_counter()
        elif isinstance(event, SweepFinished):
            rows = event.outcome.rows
    t_end = time.perf_counter()
    worker_s = sum(r["seconds"] for r in rows)
    return {
        "submit_median_ms": 1000 * statistics.median(gaps),
        "submit_p90_ms": 1000 * sorted(gaps)[int(0.9 * (len(gaps) - 1))],
        "submit_max_ms": 1000 * max(gaps),
        "runner_per_trial_ms": 1000 * ((t_end - t_up) - worker_s) / len(rows),
        "trial_ms": 1000 * statistics.fmean(r["seconds"] for r in rows),
        "n": len(gaps),
    }


# ---------------------------------------------------------------- 3. start-up

STARTUP = r"""
import json, sys, time
sys.path.insert(0, {root!r})
def main():
    import distributed
    from engine.sweep_runner import start_local_cluster
    from engine.sweep_worker import probe
    out = []
    for _ in range(2):
        t0 = time.perf_counter()
        cluster = start_local_cluster(2)
        client = distributed.Client(cluster, set_as_default=False)
        client.run(probe)
        out.append(time.perf_counter() - t0)
        t1 = time.perf_counter()
        client.close(); cluster.close()
        out.append(time.perf_counter() - t1)
    print(json.dumps(out))
if __name__ == "__main__":
    main()
"""


def startup(rounds: int, folder: Path) -> dict:
    script = folder / "startup.py"
    script.write_text(STARTUP.format(root=str(ROOT)))
    first, second, close = [], [], []
    for _ in range(rounds):
        proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        a, c1, b, c2 = json.loads(proc.stdout.strip().splitlines()[-1])
        first.append(a)
        second.append(b)
        close += [c1, c2]
    return {"first": first, "second": second, "close": close}


# ---------------------------------------------------------------- 4. progress events


def events_task(n: int) -> tuple[float, float]:
    """On a worker: seconds per Worker.log_event call, and per DaskChannel.progress call."""
    from distributed import get_worker

    from engine.sweep_worker import DaskChannel, TrialTask

    w = get_worker()
    t0 = time.perf_counter()
    for i in range(n):
        w.log_event("bench-events", {"kind": "progress", "records": [{"epoch": i, "dev_loss": 0.5}]})
    per_event = (time.perf_counter() - t0) / n
    ch = DaskChannel(TrialTask("e", {}, "bench-events", "bench-events-stop"))
    t0 = time.perf_counter()
    for i in range(n):
        ch.progress({"epoch": i, "train_loss": 0.5, "dev_loss": 0.5, "grad_norms": [0.1, 0.2]})
    per_epoch = (time.perf_counter() - t0) / n
    ch.close()
    return per_event, per_epoch


def progress_events(n: int) -> dict:
    import distributed

    from engine.sweep_runner import start_local_cluster

    cluster = start_local_cluster(1)
    client = distributed.Client(cluster, set_as_default=False)
    try:
        received = []
        client.subscribe_topic("bench-events", lambda ev: received.append(ev))
        per_event, per_epoch = client.submit(events_task, n, pure=False).result()
        time.sleep(1.0)
        distributed.Event("bench-events-stop", client=client).set()
    finally:
        client.close()
        cluster.close()
    return {
        "log_event_us": 1e6 * per_event,
        "progress_us": 1e6 * per_epoch,
        "n": n,
        "received": len(received),
    }


# ---------------------------------------------------------------- 5. the caller's thread


def caller_gaps(folder: Path, epochs: int) -> dict:
    from engine.config import from_dict
    from engine.sweep import make_definition, parse_param
    from engine.sweep_runner import SweepRunner

    cfg = from_dict(sweep_config(epochs))
    definition = make_definition(cfg, [parse_param(f"regularization.l2={L2_VALUES}", cfg)])
    runner = SweepRunner(definition, folder / "gaps", workers=2)
    runner.prepare()
    events = []
    runner.start(events.append)
    gaps = []
    last = time.perf_counter()
    while runner.wait(timeout=0) is None:
        time.sleep(0.01)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    gaps.sort()
    return {
        "p50_ms": 1000 * gaps[len(gaps) // 2],
        "p99_ms": 1000 * gaps[int(0.99 * (len(gaps) - 1))],
        "max_ms": 1000 * gaps[-1],
        "seconds": sum(gaps),
        "events": len(events),
    }


# ---------------------------------------------------------------- 6. BLAS rounding


def blas_rounding(folder: Path) -> dict:
    from engine.runs import load_run

    cfg = {
        "data": {"source": "builtin:spiral", "n_samples": 2000},
        "model": {"hidden": [512, 512]},
        "training": {"epochs": 15, "batch_size": 256},
    }
    base = folder / "big.json"
    base.write_text(json.dumps(cfg))
    out = folder / "blas"
    subprocess.run(
        [sys.executable, "main.py", "sweep", "--config", str(base), "--param", "regularization.l2=0.001",
         "--workers", "1", "--out", str(out)],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    trial = next((out / "trials").iterdir())
    alone = folder / "alone"
    subprocess.run(
        [sys.executable, "main.py", "train", "--config", str(trial / "config.json"), "--out", str(alone)],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    a, b = load_run(trial), load_run(alone)
    worst = 0.0
    for x, y in zip(a.metrics, b.metrics):
        for k in ("train_loss", "dev_loss", "cost"):
            worst = max(worst, abs(x[k] - y[k]) / max(abs(y[k]), 1e-30))
    return {"max_rel_diff": worst, "epochs": len(a.metrics)}


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the 1- vs 2-worker sweep (interleaved)")
    ap.add_argument("--epochs", type=int, default=250, help="epochs per trial of the speed-up sweep")
    ap.add_argument("--overhead-trials", type=int, default=20)
    ap.add_argument("--skip-speedup", action="store_true")
    args = ap.parse_args()
    import numpy

    print(f"# sweep_bench  {platform.processor() or platform.machine()}  cores={os.cpu_count()}  "
          f"python {platform.python_version()}  numpy {numpy.__version__}  load {load()}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="reglab-sweep-bench-") as tmp:
        folder = Path(tmp)
        st = startup(args.rounds + 1, folder)
        print(
            f"LocalCluster(2) start, fresh process: median {statistics.median(st['first']):.2f} s "
            f"({', '.join(f'{x:.2f}' for x in st['first'])}); second start in the same process: median "
            f"{statistics.median(st['second']):.2f} s; close: median {statistics.median(st['close']):.2f} s"
        )
        ov = overhead(args.overhead_trials, folder)
        print(
            f"scheduling overhead per trial (client wait − worker time, {ov['n']} trials): median "
            f"{ov['submit_median_ms']:.1f} ms, p90 {ov['submit_p90_ms']:.1f} ms, max {ov['submit_max_ms']:.1f} ms; "
            f"runner's whole per-trial cost (folder + row included): {ov['runner_per_trial_ms']:.1f} ms "
            f"(trials of {ov['trial_ms']:.0f} ms)"
        )
        ev = progress_events(20_000)
        print(
            f"progress: Worker.log_event {ev['log_event_us']:.1f} µs per event; DaskChannel.progress "
            f"{ev['progress_us']:.2f} µs per epoch (batched: {ev['received']} events reached the client "
            f"for {2 * ev['n']} calls)"
        )
        cg = caller_gaps(folder, max(20, args.epochs // 5))
        print(
            f"caller's thread while a 2-worker sweep runs in the background ({cg['seconds']:.1f} s, "
            f"{cg['events']} events): 10 ms tick gaps p50 {cg['p50_ms']:.1f} ms, p99 {cg['p99_ms']:.1f} ms, "
            f"longest {cg['max_ms']:.1f} ms"
        )
        br = blas_rounding(folder)
        print(
            f"BLAS-thread rounding, 2-512-512-3 trial (1 thread) vs standalone train: largest relative "
            f"difference of a per-epoch loss over {br['epochs']} epochs {br['max_rel_diff']:.2e}"
        )
        if not args.skip_speedup:
            sp = speedup(args.rounds, args.epochs, folder)
            print(
                f"8-trial sweep, whole command: 1 worker median {sp['median'][1]:.1f} s, 2 workers median "
                f"{sp['median'][2]:.1f} s -> {sp['ratio']:.2f}x (trial on its worker: "
                f"{sp['trial_seconds'][1]:.2f} s alone, {sp['trial_seconds'][2]:.2f} s two at a time)"
            )
            for w in (1, 2):
                print(f"  {w} worker(s): " + ", ".join(f"{t:.1f} s" for t, _ in sp["wall"][w]))
    print(f"# load at the end {load()}")


if __name__ == "__main__":
    main()
