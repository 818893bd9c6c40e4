"""Sweeps on real Dask clusters on 127.0.0.1: trials equal standalone runs, resume, cancel, pruning,
an outside scheduler with two `dask worker` processes, and bad input.

Trials are tiny (a 2-D set, one small hidden layer, tens of epochs: well under a second each),
so the time goes into starting processes. Every cluster, client and subprocess started here is
torn down by a fixture finalizer, also when a test fails.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from engine.config import from_dict
from engine.runs import load_run, read_metrics
from engine.sweep import PruneSettings, make_definition, parse_param
from engine.sweep_results import read_results, validation_curve
from engine.sweep_runner import SweepRunner, TrialFinished, TrialProgress, TrialStarted

ROOT = Path(__file__).resolve().parent.parent
BASE = {
    "data": {"source": "builtin:moons", "n_samples": 240, "noise": 0.25},
    "model": {"hidden": [12]},
    "optimizer": {"lr": 0.02},
    "training": {"epochs": 15, "batch_size": 32, "seed": 7},
}
# Trials run with one BLAS thread; a standalone `train` of these small networks does too (the
# trainer picks one thread below engine.trainer.SMALL_STEP_FLOP), so the numbers agree to the
# last bit. The documented tolerance (README, Sweeps) is 1e-9 relative for such networks.
REL_TOL = 1e-9
SWEEP_TIMEOUT = 240


def write_base(folder: Path, **overrides) -> Path:
    raw = json.loads(json.dumps(BASE))
    for section, values in overrides.items():
        raw.setdefault(section, {}).update(values)
    path = folder / "base.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def run_cli(*args: str, timeout: float = SWEEP_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def rows_by_id(out: Path) -> dict[str, dict]:
    return {r["trial_id"]: r for r in read_results(out)}


def assert_same_numbers(a: dict, b: dict, keys) -> None:
    for k in keys:
        x, y = a[k], b[k]
        if isinstance(x, float) or isinstance(y, float):
            assert math.isclose(x, y, rel_tol=REL_TOL, abs_tol=1e-12), (k, x, y)
        else:
            assert x == y, (k, x, y)


METRIC_KEYS = ("train_loss", "train_acc", "dev_loss", "dev_acc", "cost", "penalty", "weight_norm")
ROW_NUMBERS = (
    "final_train_error",
    "final_dev_error",
    "final_train_loss",
    "final_dev_loss",
    "best_train_error",
    "best_dev_error",
    "best_train_loss",
    "best_dev_loss",
    "best_epoch",
    "epochs_run",
    "stop_reason",
    "n_train",
    "seed",
)


# ---------------------------------------------------------------- one local sweep, shared


@pytest.fixture(scope="module")
def l2_sweep(tmp_path_factory):
    """`main.py sweep` over three λ values × 2 seeds on a local 2-worker cluster."""
    folder = tmp_path_factory.mktemp("l2")
    base = write_base(folder)
    out = folder / "sweep"
    proc = run_cli(
        "sweep", "--config", str(base), "--param", "regularization.l2=0,0.03,1", "--seeds", "2",
        "--workers", "2", "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return folder, base, out, proc


def test_sweep_writes_the_documented_folder(l2_sweep):
    folder, base, out, proc = l2_sweep
    definition = json.loads((out / "sweep.json").read_text())
    assert definition["format"] == "reglab-sweep/1" and definition["seeds"] == 2
    rows = read_results(out)
    assert len(rows) == 6 == len(definition["trials"])
    assert {r["trial_id"] for r in rows} == {t["id"] for t in definition["trials"]}
    assert sorted({r["values"]["regularization.l2"] for r in rows}) == [0.0, 0.03, 1.0]
    assert sorted(r["seed"] for r in rows) == [7, 7, 7, 8, 8, 8]  # training.seed = base + k
    for r in rows:
        run = load_run(out / r["run_dir"])  # an ordinary run folder
        assert run.summary["stop_reason"] == r["stop_reason"] == "completed"
        assert run.config.regularization.l2 == r["values"]["regularization.l2"]
        assert len(run.metrics) == r["epochs_run"] == 15
        assert r["final_dev_error"] == pytest.approx(1 - run.summary["final_metrics"]["dev_acc"])
        assert r["worker"].startswith("tcp://127.0.0.1:")
    # data once per worker: each worker loaded the data for its first trial only
    workers = {r["worker"] for r in rows}
    assert 1 <= len(workers) <= 2
    for w in workers:
        assert sum(r["data_loaded"] for r in rows if r["worker"] == w) == 1
    # stderr: the cluster line and one line per trial
    assert "6 of 6 trials to run, on local (2 workers)" in proc.stderr
    noise = [line for line in proc.stderr.splitlines() if not line.startswith(("sweep: ", "["))]
    assert noise == []  # no Dask logging, dashboard or bokeh warnings
    assert proc.stderr.count("completed after 15 epochs") == 6
    assert "best: regularization.l2=" in proc.stdout
    # results.csv has the same rows
    csv_lines = (out / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("trial_id,regularization.l2,seed,stop_reason") and len(csv_lines) == 7


def test_three_l2_trials_equal_three_standalone_train_runs(l2_sweep, tmp_path):
    folder, base, out, _ = l2_sweep
    rows = [r for r in read_results(out) if r["seed"] == 7]
    assert len(rows) == 3
    for r in rows:
        trial_dir = out / r["run_dir"]
        alone = tmp_path / r["trial_id"]
        proc = run_cli("train", "--config", str(trial_dir / "config.json"), "--out", str(alone))
        assert proc.returncode == 0, proc.stderr
        mine, theirs = load_run(trial_dir), load_run(alone)
        assert mine.config == theirs.config
        assert len(mine.metrics) == len(theirs.metrics) == 15
        for a, b in zip(mine.metrics, theirs.metrics):
            assert_same_numbers(a, b, METRIC_KEYS)
        for stage in ("final_metrics", "best_metrics"):
            assert_same_numbers(mine.summary[stage], theirs.summary[stage], METRIC_KEYS)
        assert mine.summary["best_epoch"] == theirs.summary["best_epoch"]


def test_validation_curve_points_equal_the_results_file(l2_sweep):
    _, _, out, _ = l2_sweep
    lines = (out / "results.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    curve = validation_curve(rows, "regularization.l2")
    assert curve.log  # λ's spec asks for a log axis
    assert [p.value for p in curve.points] == [0.0, 0.03, 1.0]
    for p in curve.points:
        mine = [r for r in rows if r["values"]["regularization.l2"] == p.value]
        dev = [r["final_dev_error"] for r in mine]
        train = [r["final_train_error"] for r in mine]
        assert p.n == 2 and set(p.trial_ids) == {r["trial_id"] for r in mine}
        assert p.dev_error == pytest.approx(sum(dev) / 2)
        assert p.dev_error_spread == pytest.approx(abs(dev[0] - dev[1]) / math.sqrt(2))
        assert p.train_error == pytest.approx(sum(train) / 2)
        assert p.train_error_spread == pytest.approx(statistics.stdev(train))
    assert curve.best.dev_error == min(p.dev_error for p in curve.points)


def test_resume_runs_only_what_is_missing(l2_sweep, tmp_path):
    _, base, out0, _ = l2_sweep
    out = tmp_path / "sweep"
    shutil.copytree(out0, out)
    before = rows_by_id(out)
    ids = sorted(before)
    gone, half, kept = ids[0], ids[1], ids[2:]
    # one trial's row and folder deleted; another's folder half-written (no summary.json);
    # a staging folder of a killed run; a file of the user's own
    lines = [line for line in (out / "results.jsonl").read_text().splitlines() if gone not in line]
    (out / "results.jsonl").write_text("\n".join(lines) + "\n")
    shutil.rmtree(out / "trials" / gone)
    (out / "trials" / half / "summary.json").unlink()
    (out / "trials" / f".{half}.partial-0badc0de").mkdir()
    (out / "trials" / "notes.txt").write_text("mine")
    stamps = {k: (out / "trials" / k / "summary.json").stat().st_mtime_ns for k in kept}

    proc = run_cli("sweep", "--config", str(base), "--param", "regularization.l2=0,0.03,1", "--seeds", "2",
                   "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "2 of 6 trials to run, 4 kept from an earlier run" in proc.stderr
    assert proc.stderr.count("completed after") == 2
    after = rows_by_id(out)
    assert set(after) == set(before)
    for k in kept:  # untouched
        assert after[k] == before[k]
        assert (out / "trials" / k / "summary.json").stat().st_mtime_ns == stamps[k]
    for k in (gone, half):  # run again, the same numbers
        assert_same_numbers(after[k], before[k], ROW_NUMBERS)
    assert not any(p.name.startswith(".") for p in (out / "trials").iterdir())
    assert (out / "trials" / "notes.txt").read_text() == "mine"
    csv_ids = [line.split(",")[0] for line in (out / "results.csv").read_text().splitlines()[1:]]
    assert sorted(csv_ids) == sorted(before)  # the CSV was rewritten from results.jsonl


def test_a_complete_sweep_starts_no_cluster(l2_sweep, tmp_path, monkeypatch):
    import distributed

    _, base, out0, _ = l2_sweep
    out = tmp_path / "sweep"
    shutil.copytree(out0, out)

    def no_cluster(*a, **k):
        raise AssertionError("a LocalCluster was started for a complete sweep")

    monkeypatch.setattr(distributed, "LocalCluster", no_cluster)
    cfg = from_dict(json.loads(base.read_text()))
    definition = make_definition(
        cfg, [parse_param("regularization.l2=1,0.03,0", cfg)], seeds=2
    )  # other order
    events = []
    outcome = SweepRunner(definition, out).run(on_event=events.append)
    assert outcome.ran == 0 and outcome.resumed == 6 and outcome.complete and not outcome.cluster_started
    assert [type(e).__name__ for e in events] == ["SweepStarted", "SweepFinished"]


def test_bad_input_exits_2_naming_it(l2_sweep, tmp_path):
    _, base, out, _ = l2_sweep
    cases = [
        (["--param", "regularization.l3=0.1"], "--param regularization.l3=0.1: regularization.l3 is not a config field"),
        (["--param", "regularization.keep_prob=0.5,0"], "--param regularization.keep_prob=0.5,0: regularization.keep_prob must be in [0.01, 1], got 0"),
        (["--param", "optimizer.lr=log:0:1:3"], "a log range needs LO > 0"),
        (["--param", "regularization.l2=0,1", "--eta", "2"], "--eta and --min-epochs need --prune halving"),
        (["--param", "regularization.l2=0,1", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "--workers applies to the local cluster only"),
        (["--param", "regularization.l2=0,1", "--scheduler", "nowhere"], "--scheduler nowhere: expected tcp://HOST:PORT"),
    ]  # fmt: skip
    for args, message in cases:
        proc = run_cli("sweep", "--config", str(base), *args, "--out", str(tmp_path / "new"), timeout=60)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "new").exists()  # nothing was written for bad input
    # an --out that holds a different sweep is refused, not mixed
    proc = run_cli(
        "sweep", "--config", str(base), "--param", "regularization.l2=0,0.5", "--out", str(out), timeout=60
    )
    assert proc.returncode == 2
    assert f"--out {out} holds a different sweep: its trials differ" in proc.stderr
    # and a folder with other things in it
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("x")
    proc = run_cli(
        "sweep",
        "--config",
        str(base),
        "--param",
        "regularization.l2=0",
        "--out",
        str(tmp_path / "busy"),
        timeout=60,
    )
    assert proc.returncode == 2 and "is not empty and holds no sweep.json" in proc.stderr


# ---------------------------------------------------------------- pruning


def fake_trial(task):
    """A stand-in for engine.sweep_worker.execute: epoch e of a trial with λ = l2 has dev loss
    l2 + 1/e, reported through the real channel (progress, rung verdicts) without training."""
    from engine.sweep_worker import DaskChannel, TrialOutput

    channel = DaskChannel(task)
    try:
        channel.started()
        l2 = task.config["regularization"]["l2"]
        metrics, stop, message = [], "completed", "trained all epochs"
        for epoch in range(1, task.config["training"]["epochs"] + 1):
            m = {
                "epoch": epoch,
                "train_loss": l2,
                "train_acc": 0.5,
                "dev_loss": l2 + 1 / epoch,
                "dev_acc": 0.5,
            }
            metrics.append(m)
            channel.progress(m)
            if epoch in task.rungs:
                verdict = channel.ask_rung(epoch, m["dev_loss"])
                if not verdict["promote"]:
                    stop, message = "pruned", verdict["message"]
                    break
        summary = {
            "epochs_run": len(metrics),
            "best_epoch": len(metrics),
            "stop_reason": stop,
            "message": message,
            "final_metrics": metrics[-1],
            "best_metrics": metrics[-1],
        }
        files = {
            "config.json": json.dumps(task.config).encode(),
            "metrics.jsonl": "".join(json.dumps(m) + "\n" for m in metrics).encode(),
            "summary.json": json.dumps(summary).encode(),
        }
        return TrialOutput(task.trial_id, channel.address, 0.0, n_train=10, summary=summary, files=files)
    finally:
        channel.close()


def asha_replay(order, values, eta, rungs, epochs):
    """Independent replay of the documented rule: (stop_reason, epochs_run) per trial."""
    seen = {r: [] for r in rungs}
    out = {}
    for tid in order:
        result = ("completed", epochs)
        for r in rungs:
            v = values[tid] + 1 / r
            seen[r].append(v)
            keep = max(1, len(seen[r]) // eta)
            if v > sorted(seen[r])[keep - 1]:
                result = ("pruned", r)
                break
        out[tid] = result
    return out


def test_pruning_by_successive_halving_with_a_fake_trial(tmp_path):
    cfg = from_dict({"training": {"epochs": 8}})
    definition = make_definition(
        cfg,
        [parse_param("regularization.l2=0.5,0.7,0.1,0.9,0.3,0.2", cfg)],
        prune=PruneSettings(eta=2, min_epochs=1),
    )
    runner = SweepRunner(definition, tmp_path / "sweep", workers=1, trial_function=fake_trial)
    outcome = runner.run()
    rows = outcome.rows
    by_l2 = {r["values"]["regularization.l2"]: (r["stop_reason"], r["epochs_run"]) for r in rows}
    # one worker runs the trials one after the other in submission order (rows are in finish order)
    assert [r["values"]["regularization.l2"] for r in rows] == [0.5, 0.7, 0.1, 0.9, 0.3, 0.2]
    # hand-computed with rungs 1, 2, 4 and η = 2 (see test_sweep_prune for the rule)
    assert by_l2 == {
        0.5: ("completed", 8),  # first at every rung
        0.7: ("pruned", 1),  # 1.7 vs 1.5: only the best of 2 continues
        0.1: ("completed", 8),  # best so far at every rung
        0.9: ("pruned", 1),  # 4th at rung 1: the best 2 (1.1, 1.5) continue
        0.3: ("pruned", 2),  # rung 2: 0.8 vs 0.6 (0.1) and 1.0 (0.5): the best 1 of 3
        0.2: ("pruned", 4),  # rung 4: 0.45 vs 0.35 and 0.75
    }
    replay = asha_replay(
        [r["trial_id"] for r in rows],
        {r["trial_id"]: r["values"]["regularization.l2"] for r in rows},
        2,
        (1, 2, 4),
        8,
    )
    assert {r["trial_id"]: (r["stop_reason"], r["epochs_run"]) for r in rows} == replay
    assert outcome.pruned == 4
    pruned = next(r for r in rows if r["values"]["regularization.l2"] == 0.2)
    summary = json.loads((tmp_path / "sweep" / pruned["run_dir"] / "summary.json").read_text())
    assert summary["stop_reason"] == "pruned"
    assert summary["message"].startswith("pruned at epoch 4 by successive halving")


def test_pruned_real_trials_keep_valid_run_folders(tmp_path):
    base = write_base(tmp_path, training={"epochs": 6})
    out = tmp_path / "sweep"
    # one worker: trials run in order; the large rate learns most in epoch 1, the tiny ones least
    proc = run_cli("sweep", "--config", str(base), "--param", "optimizer.lr=0.05,0.0001,0.00001",
                   "--prune", "halving", "--eta", "3", "--min-epochs", "1", "--workers", "1", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = {r["values"]["optimizer.lr"]: r for r in read_results(out)}
    assert rows[0.05]["stop_reason"] == "completed" and rows[0.05]["epochs_run"] == 6
    for lr in (0.0001, 0.00001):
        r = rows[lr]
        assert (r["stop_reason"], r["epochs_run"]) == ("pruned", 1)
        run = load_run(out / r["run_dir"])  # the window loads it like any run
        assert run.summary["stop_reason"] == "pruned" and len(run.metrics) == 1
        assert "successive halving" in run.summary["message"]
        assert (out / r["run_dir"] / "model.npz").is_file()
    assert "pruned after 1 epochs" in proc.stderr


# ---------------------------------------------------------------- cancel, locally


def worker_processes() -> set[int]:
    """Dask worker processes of this test process's local clusters: children of our forkserver."""
    found = set()
    for server in psutil.Process().children():
        try:
            if "forkserver" in " ".join(server.cmdline()):
                found.update(p.pid for p in server.children())
        except psutil.Error:
            pass
    return found


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def long_definition(epochs=100_000):
    cfg = from_dict({**BASE, "training": {**BASE["training"], "epochs": epochs}})
    return make_definition(cfg, [parse_param("regularization.l2=0,0.1,1", cfg)])


@pytest.fixture
def background():
    """Runners started in a thread by a test are cancelled and waited for at its end, pass or fail."""
    runners: list[SweepRunner] = []
    yield runners.append
    for runner in runners:
        runner.cancel()
        try:
            runner.wait(timeout=120)
        except Exception:
            pass


def test_cancel_stops_running_trials_and_leaves_no_worker(tmp_path, background):
    out = tmp_path / "sweep"
    runner = SweepRunner(long_definition(), out, workers=2, progress_interval=0.05)
    background(runner)
    seen: list = []
    during: set[int] = set()

    def on_event(event):
        seen.append(event)
        if isinstance(event, TrialProgress) and not runner.cancelled:
            during.update(worker_processes())
            runner.cancel()

    runner.start(on_event)
    outcome = runner.wait(timeout=SWEEP_TIMEOUT)
    assert outcome is not None and outcome.cancelled and not outcome.complete
    finished = [e for e in seen if isinstance(e, TrialFinished)]
    started = {e.trial_id for e in seen if isinstance(e, TrialStarted)}
    assert started and {e.trial_id for e in finished if e.run_dir is not None} == started
    for e in finished:
        assert e.stop_reason == "cancelled" and e.row is None
        if e.run_dir is not None:
            summary = json.loads((e.run_dir / "summary.json").read_text())
            assert summary["stop_reason"] == "cancelled"
            assert summary["epochs_run"] < 100_000
    assert read_results(out) == []  # cancelled trials get no row: a re-run runs them again
    assert during, "no worker process was seen while trials ran"
    deadline = time.monotonic() + 20
    while any(alive(p) for p in during) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in during)


# ---------------------------------------------------------------- an outside cluster


class Processes:
    """Subprocesses started by a fixture, each in its own process group, all ended at teardown."""

    def __init__(self):
        self.procs: list[subprocess.Popen] = []

    def start(self, args, cwd, env, log: Path) -> subprocess.Popen:
        fh = open(log, "w")
        p = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
        fh.close()
        self.procs.append(p)
        return p

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)


def start_cluster(procs: Processes, folder: Path, workers: list[dict]) -> tuple[str, list[str]]:
    """A `dask scheduler` (RegLab importable) and workers; returns (address, worker addresses)."""
    import distributed

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    sched_file = folder / "scheduler.json"
    procs.start(
        [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(sched_file)],
        ROOT, env, folder / "scheduler.log",
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not sched_file.is_file() and time.monotonic() < deadline:
        time.sleep(0.1)
    address = json.loads(sched_file.read_text())["address"]
    for i, w in enumerate(workers):
        procs.start(
            [sys.executable, "-m", "dask", "worker", address, "--nthreads", "1", "--nworkers", "1",
             "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}"],
            w.get("cwd", ROOT), w.get("env", env), folder / f"worker{i}.log",
        )  # fmt: skip
    with distributed.Client(address, set_as_default=False, timeout=30) as client:
        client.wait_for_workers(len(workers), timeout=60)
        worker_addresses = sorted(client.scheduler_info()["workers"])
    return address, worker_addresses


@pytest.fixture(scope="module")
def outside_cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask")
    procs = Processes()
    try:
        yield start_cluster(procs, folder, [{}, {}])
    finally:
        procs.stop()


def test_scheduler_runs_the_sweep_on_its_workers_with_the_local_numbers(outside_cluster, l2_sweep, tmp_path):
    address, workers = outside_cluster
    _, base, local_out, _ = l2_sweep
    out = tmp_path / "sweep"
    proc = run_cli("sweep", "--config", str(base), "--param", "regularization.l2=0,0.03,1", "--seeds", "2",
                   "--scheduler", address, "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"on {address}" in proc.stderr
    assert [line for line in proc.stderr.splitlines() if not line.startswith(("sweep: ", "["))] == []
    remote, local = rows_by_id(out), rows_by_id(local_out)
    assert set(remote) == set(local)
    assert {r["worker"] for r in remote.values()} <= set(workers)
    for tid, r in remote.items():
        assert_same_numbers(r, local[tid], ROW_NUMBERS)
    # data once per worker there too
    for w in {r["worker"] for r in remote.values()}:
        assert sum(r["data_loaded"] for r in remote.values() if r["worker"] == w) == 1


def test_cancel_on_an_outside_cluster_leaves_nothing_running(outside_cluster, tmp_path, background):
    import distributed

    address, workers = outside_cluster
    runner = SweepRunner(long_definition(), tmp_path / "sweep", scheduler=address, progress_interval=0.05)
    background(runner)

    def on_event(event):
        if isinstance(event, TrialProgress):
            runner.cancel()

    runner.start(on_event)
    outcome = runner.wait(timeout=SWEEP_TIMEOUT)
    assert outcome is not None and outcome.cancelled and outcome.cluster_started
    with distributed.Client(address, set_as_default=False, timeout=30) as client:
        assert all(len(keys) == 0 for keys in client.processing().values())
        executing = client.run(lambda dask_worker: dask_worker.state.executing_count)
        assert executing == dict.fromkeys(workers, 0)
        assert sorted(client.scheduler_info()["workers"]) == workers  # the cluster itself stays up


def test_a_worker_without_reglab_is_named(tmp_path):
    procs = Processes()
    try:
        # a Python environment where RegLab cannot be imported: run from elsewhere, and (for a
        # machine where RegLab is pip-installed, like CI's) an empty `engine` that fails to import
        # as a missing one does, first on the worker's path
        shadow = tmp_path / "no-reglab"
        (shadow / "engine").mkdir(parents=True)
        (shadow / "engine" / "__init__.py").write_text(
            'raise ModuleNotFoundError("No module named \'engine\'", name="engine")\n'
        )
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["PYTHONPATH"] = str(shadow)
        address, workers = start_cluster(procs, tmp_path, [{"cwd": tmp_path, "env": env}])
        base = write_base(tmp_path)
        proc = run_cli("sweep", "--config", str(base), "--param", "regularization.l2=0,1", "--scheduler", address,
                       "--out", str(tmp_path / "sweep"), timeout=120)  # fmt: skip
    finally:
        procs.stop()
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == (
        f"error: worker {workers[0]} cannot run RegLab trials (ModuleNotFoundError: No module named 'engine'); "
        "install RegLab in its Python environment (the scheduler and every worker need it)"
    )


def test_an_unreachable_scheduler_is_named(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = write_base(tmp_path)
    proc = run_cli("sweep", "--config", str(base), "--param", "regularization.l2=0,1", "--scheduler",
                   f"tcp://127.0.0.1:{port}", "--out", str(tmp_path / "sweep"), timeout=120)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(f"error: --scheduler tcp://127.0.0.1:{port}: cannot connect")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_live_history_of_a_trial_matches_its_metrics(l2_sweep, tmp_path):
    """Per-epoch progress from the workers reaches the caller (what the window's live curves use)."""
    _, base, _, _ = l2_sweep
    cfg = from_dict(json.loads(base.read_text()))
    definition = make_definition(cfg, [parse_param("regularization.l2=0,1", cfg)])
    runner = SweepRunner(definition, tmp_path / "sweep", workers=1, progress_interval=0.0)
    live: dict[str, list] = {}
    for event in runner.events():
        if isinstance(event, TrialProgress):
            live.setdefault(event.trial_id, []).extend(event.records)
    for trial in definition.trials:
        metrics = read_metrics(tmp_path / "sweep" / "trials" / trial.id / "metrics.jsonl")
        assert len(metrics) == 15 and runner.trial_history(trial.id) == metrics
        # epochs arrive in order while the trial runs (the last batch may land after the result,
        # which carries the whole history anyway)
        assert live[trial.id] and live[trial.id] == metrics[: len(live[trial.id])]


# ---------------------------------------------------------------- failing trials


def crashing_trial(task):
    """A trial function with a bug: the sweep must stop and name the trial and its worker."""
    from distributed import get_worker

    if task.config["regularization"]["l2"] > 0.5:
        raise ZeroDivisionError(f"bug on {get_worker().address}")
    return fake_trial(task)


def test_a_crashing_trial_stops_the_sweep_naming_trial_and_worker(tmp_path):
    from engine.sweep_runner import TrialFailed

    cfg = from_dict({"training": {"epochs": 3}})
    definition = make_definition(cfg, [parse_param("regularization.l2=0,1", cfg)])
    runner = SweepRunner(definition, tmp_path / "sweep", workers=1, trial_function=crashing_trial)
    with pytest.raises(TrialFailed) as info:
        runner.run()
    bad = next(t.id for t in definition.trials if t.values["regularization.l2"] == 1.0)
    message = str(info.value)
    assert message.startswith(f"trial {bad} failed on worker tcp://127.0.0.1:")
    assert "ZeroDivisionError: bug on tcp://127.0.0.1:" in message and "\n" not in message


def test_data_a_worker_cannot_load_exits_2_naming_the_trial(tmp_path):
    base = write_base(tmp_path, data={"source": str(tmp_path / "no-such-folder")})
    proc = run_cli("sweep", "--config", str(base), "--param", "regularization.l2=0,1", "--workers", "1",
                   "--out", str(tmp_path / "sweep"), timeout=120)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: trial l2=") and " on worker tcp://127.0.0.1:" in last
    assert "no-such-folder" in last and "Traceback" not in proc.stderr
    assert read_results(tmp_path / "sweep") == []


def test_random_sampling_from_the_command_line(tmp_path):
    base = write_base(tmp_path, training={"epochs": 3})
    out = tmp_path / "sweep"
    args = ("sweep", "--config", str(base), "--param", "optimizer.lr=log:0.001:0.1", "--param",
            "training.batch_size=16,32", "--sample", "random", "--budget", "3", "--seed", "5",
            "--workers", "1", "--out", str(out))  # fmt: skip
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    stored = json.loads((out / "sweep.json").read_text())
    assert (stored["sampling"], stored["budget"], stored["sample_seed"]) == ("random", 3, 5)
    cfg = from_dict(json.loads(base.read_text()))
    expected = make_definition(
        cfg,
        [parse_param("optimizer.lr=log:0.001:0.1", cfg), parse_param("training.batch_size=16,32", cfg)],
        sampling="random",
        budget=3,
        sample_seed=5,
    )
    rows = rows_by_id(out)
    assert set(rows) == {t.id for t in expected.trials}
    for t in expected.trials:
        assert rows[t.id]["values"] == {
            "optimizer.lr": t.values["optimizer.lr"],
            "training.batch_size": t.values["training.batch_size"],
        }
        assert 0.001 <= t.values["optimizer.lr"] <= 0.1
    # the same command again: the same points, nothing to run
    again = run_cli(*args)
    assert again.returncode == 0 and "all 3 trials are done already" in again.stderr


def test_start_hands_errors_to_wait_and_a_runner_runs_once(tmp_path):
    from engine.errors import InputError

    cfg = from_dict({})
    definition = make_definition(cfg, [parse_param("regularization.l2=0,1", cfg)])
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    runner = SweepRunner(definition, busy)
    runner.start()
    with pytest.raises(InputError, match="is not empty and holds no sweep.json"):
        runner.wait(timeout=60)
    with pytest.raises(RuntimeError, match="runs once"):
        next(runner.events())


def test_ctrl_c_cancels_the_command_which_exits_130_and_resumes_later(tmp_path):
    base = write_base(tmp_path, training={"epochs": 100_000})
    out = tmp_path / "sweep"
    proc = subprocess.Popen(
        [sys.executable, "main.py", "sweep", "--config", str(base), "--param", "regularization.l2=0,1",
         "--workers", "2", "--out", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = proc.stderr.readline()  # "sweep: 2 of 2 trials to run, on local (2 workers)"
        assert line.startswith("sweep: 2 of 2 trials to run"), line
        time.sleep(3)  # the trials start within a fraction of a second of that line
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "stopping the sweep" in stderr and "cancelled (no results row" in stderr
    assert "cancelled; re-run the same command to finish" in stdout
    assert read_results(out) == []
    trials = list((out / "trials").iterdir())
    assert len(trials) == 2  # both were training when Ctrl-C came
    for trial in trials:
        summary = json.loads((trial / "summary.json").read_text())
        assert summary["stop_reason"] == "cancelled" and summary["epochs_run"] < 100_000


def test_the_end_of_a_trial_whose_future_is_done_still_counts(tmp_path):
    # the order that hung a sweep for its whole cancel timeout: a trial is cancelled as queued,
    # its start event arrives before the cancelled future's callback, then its end event; the
    # end must take it off the running trials, or the runner waits for an end already received
    runner = SweepRunner(long_definition(), tmp_path / "sweep", workers=1)
    tid = runner.definition.trials[1].id
    assert runner._on_message(None, None, "topic", {"kind": "start", "trial": tid, "worker": "w"}) is not None
    assert runner._running_count() == 1
    runner._finished.add(tid)  # the cancelled future's done callback
    assert runner._on_message(None, None, "topic", {"kind": "end", "trial": tid}) is None
    assert runner._running_count() == 0
    # a start that comes after the task is over is ignored (the trial stops on the stop event)
    assert runner._on_message(None, None, "topic", {"kind": "start", "trial": tid, "worker": "w"}) is None
    assert runner._running_count() == 0
