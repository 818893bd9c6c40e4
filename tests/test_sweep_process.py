"""A sweep in a child process (engine.sweep_process): the messages the window reads, in order,
against the sweep folder's files; a refused folder; cancel. Real local Dask clusters on
127.0.0.1 with one or two workers and tiny trials."""

from __future__ import annotations

import time

import psutil
import pytest

from engine.config import from_dict
from engine.history import RunInfo
from engine.runs import read_metrics
from engine.sweep import make_definition, make_param
from engine.sweep_process import SweepProcess, wait_for
from engine.sweep_results import read_results
from engine.sweep_runner import SweepFinished, SweepStarted, TrialFinished, TrialProgress, TrialStarted

BASE = {
    "data": {"source": "builtin:moons", "n_samples": 200, "noise": 0.25},
    "model": {"hidden": [8]},
    "training": {"epochs": 5, "batch_size": 32},
}


def definition(epochs: int = 5, values=(0.0, 0.1)):
    cfg = from_dict({**BASE, "training": {**BASE["training"], "epochs": epochs}})
    return make_definition(cfg, [make_param("regularization.l2", list(values), cfg)])


@pytest.fixture
def processes():
    """Sweep processes of a test are shut down at its end, pass or fail."""
    made: list[SweepProcess] = []
    yield made.append
    for proc in made:
        proc.shutdown(60)


def test_messages_in_order_with_the_finished_trials_run_folders(tmp_path, processes):
    d = definition()
    proc = SweepProcess(d, tmp_path / "sweep", workers=1, progress_interval=0.05)
    processes(proc)
    proc.start()
    msgs = wait_for(proc, 120)
    assert proc.done() and proc.join(10)
    kinds = [m[0] for m in msgs]
    assert kinds[0] == "prepared" and kinds[-1] == "end" and set(kinds[1:-1]) == {"event"}
    assert msgs[0][1:] == ([], 2)  # nothing kept from before, two trials to run
    events = [m[1] for m in msgs if m[0] == "event"]
    assert isinstance(events[0], SweepStarted) and events[0].cluster == "local (1 worker)"
    assert isinstance(events[-1], SweepFinished)
    started = [e.trial_id for e in events if isinstance(e, TrialStarted)]
    assert sorted(started) == sorted(t.id for t in d.trials)
    rows = {r["trial_id"]: r for r in read_results(tmp_path / "sweep")}
    for m in msgs:
        if m[0] == "event" and isinstance(m[1], TrialFinished):
            ev, info = m[1], m[2]
            assert ev.row == rows[ev.trial_id]
            # the run folder, read in the child: what the window adds to its runs table
            assert isinstance(info, RunInfo) and info.key == str(ev.run_dir)
            assert info.metrics == read_metrics(ev.run_dir / "metrics.jsonl")
            assert info.summary["stop_reason"] == "completed"
    live = [r for e in events if isinstance(e, TrialProgress) for r in e.records]
    assert [r["epoch"] for r in live] == [1, 2, 3, 4, 5] * 2  # every epoch, once
    outcome = msgs[-1][1]
    assert outcome.complete and outcome.ran == 2 and list(outcome.rows) == list(rows.values())


def test_a_folder_with_other_files_is_refused_before_any_cluster(tmp_path, processes):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    proc = SweepProcess(definition(), out)
    processes(proc)
    t0 = time.monotonic()
    proc.start()
    msgs = wait_for(proc, 60)
    assert [m[0] for m in msgs] == ["error"]
    _, message, kind = msgs[0]
    assert kind == "input"
    assert message == f"--out {out}: the folder is not empty and holds no sweep.json; use a new folder"
    assert time.monotonic() - t0 < 30
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_cancel_ends_the_child_and_its_workers(tmp_path, processes):
    proc = SweepProcess(definition(epochs=100_000), tmp_path / "sweep", workers=2, progress_interval=0.05)
    processes(proc)
    proc.start()
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(
        m[0] == "event" and isinstance(m[1], TrialProgress) for m in seen
    ):
        seen.extend(proc.poll())
        time.sleep(0.02)
    tree = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)} | {proc.pid}
    assert len(tree) >= 3  # the child, its fork server and the workers
    proc.cancel()
    seen.extend(wait_for(proc, 120))
    assert seen[-1][0] == "end" and seen[-1][1].cancelled
    assert proc.join(15)
    finished = [m[1] for m in seen if m[0] == "event" and isinstance(m[1], TrialFinished)]
    assert finished and all(e.stop_reason == "cancelled" and e.row is None for e in finished)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(psutil.pid_exists(p) and _alive(p) for p in tree):
        time.sleep(0.05)
    assert not [p for p in tree if psutil.pid_exists(p) and _alive(p)]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
