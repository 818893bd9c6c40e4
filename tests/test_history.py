"""The Qt-free run history: identity, unique names, labels kept beside the run, observers, reading folders."""

from __future__ import annotations

import json

import pytest

from engine.config import from_dict
from engine.experiment import run_experiment
from engine.history import LABELS_FILE, STOP_TEXT, RunHistory, RunInfo, default_run_name, read_labels

TINY = {
    "data": {"source": "builtin:moons", "n_samples": 120, "noise": 0.2},
    "model": {"hidden": [4]},
    "training": {"epochs": 3, "batch_size": 32},
}


def run_folder(path, **reg):
    raw = json.loads(json.dumps(TINY))
    raw["regularization"] = reg
    for _ in run_experiment(from_dict(raw), path).records():
        pass
    return path


def test_observers_see_every_change_in_order(tmp_path):
    h = RunHistory()
    seen = []
    h.subscribe(lambda event, key: seen.append((event, key)))
    cfg = from_dict(TINY)
    a = RunInfo(key=str(tmp_path / "a"), name="run", config=cfg, live=True)
    h.add(a)
    h.append_records(a.key, [{"epoch": 1}, {"epoch": 2}])
    h.append_records(a.key, [])  # nothing new: no event
    h.update(a.key, live=False, summary={"stop_reason": "completed"})
    h.remove(a.key)
    h.remove(a.key)  # already gone: no event
    assert seen == [("added", a.key), ("records", a.key), ("changed", a.key), ("removed", a.key)]
    assert a.metrics == [{"epoch": 1}, {"epoch": 2}] and a.status_text() == "completed"


def test_names_are_unique_and_labels_persist_beside_the_run(tmp_path):
    h = RunHistory()
    cfg = from_dict(TINY)
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        h.add(RunInfo(key=str(tmp_path / name), name="run 10:00:00", config=cfg))
    assert [r.name for r in h.runs()] == ["run 10:00:00", "run 10:00:00 (2)", "run 10:00:00 (3)"]
    assert h.rename(str(tmp_path / "c"), "  my   run ") == "my run"  # whitespace tidied
    assert h.rename(str(tmp_path / "b"), "my run") == "my run (2)"  # never two alike
    assert h.rename(str(tmp_path / "a"), "   ") is None  # an empty name is refused
    h.set_hidden(str(tmp_path / "c"), True)
    assert read_labels(tmp_path / "c") == {"name": "my run", "hidden": True}
    assert json.loads((tmp_path / "b" / LABELS_FILE).read_text()) == {"name": "my run (2)"}


def test_load_dir_reads_good_runs_and_reports_broken_ones(tmp_path):
    root = tmp_path / "runs"
    run_folder(root / "run-20260101-101010-01")
    run_folder(root / "run-20260101-101010-02", l2=0.1)
    broken = run_folder(root / "run-20260101-101010-03")
    (broken / "summary.json").write_text('{"stop_reason": 7}')
    (root / ".hidden-temp").mkdir()  # a run being replaced: never listed
    (root / "notes").mkdir()  # not a run folder: ignored
    h = RunHistory()
    problems = h.load_dir(root)
    assert [r.name for r in h.runs()] == ["run 10:10:10", "run 10:10:10 (2)"]
    assert len(problems) == 1 and "run-20260101-101010-03/summary.json" in problems[0]
    run = h.runs()[0]
    assert (
        run.stop_reason() == "completed"
        and len(run.metrics) == 3
        and run.param_count == 4 * 2 + 4 + 4 * 2 + 2
    )
    assert run.has_test_set()  # split 0.6/0.2/0.2
    assert h.load_dir(tmp_path / "missing") == []


@pytest.mark.parametrize(
    ("summary", "text"),
    [
        (None, "incomplete"),
        ({"stop_reason": "cancelled"}, "stopped by you"),
        ({"stop_reason": "early_stopping"}, "stopped early"),
        ({"stop_reason": "diverged"}, "diverged"),
    ],
)
def test_one_vocabulary_for_how_a_run_ended(summary, text):
    run = RunInfo(key="k", name="n", config=from_dict(TINY), summary=summary)
    assert run.status_text() == text == STOP_TEXT[summary["stop_reason"] if summary else None]


def test_final_metrics_are_the_restored_weights_after_early_stopping():
    metrics = [{"epoch": e, "dev_acc": 0.5 + e / 100} for e in range(1, 6)]
    summary = {"stop_reason": "early_stopping", "weights_epoch": 3, "restored_best": True,
               "final_metrics": metrics[2]}  # fmt: skip
    run = RunInfo(key="k", name="n", config=from_dict(TINY), metrics=metrics, summary=summary)
    assert run.final_metrics() == (metrics[2], 3) and run.restored_best()
    live = RunInfo(key="k", name="n", config=from_dict(TINY), metrics=metrics, live=True)
    assert live.final_metrics() == (metrics[-1], 5)


def test_default_run_names():
    assert default_run_name("/x/run-20261201-093005-01") == "run 09:30:05"
    assert default_run_name("/x/run-20261201-093005-03") == "run 09:30:05 (3)"
    assert default_run_name("/x/my-experiment") == "my-experiment"
