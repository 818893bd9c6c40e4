"""Run labels (name, hidden) of a live run wait for the end of the run: the training process
refuses a run folder that already holds files, so writing them at once would break the run."""

from __future__ import annotations

import json

import pytest

from engine.config import from_dict
from engine.errors import InputError
from engine.experiment import run_experiment
from engine.history import LABELS_FILE, RunHistory, RunInfo, read_labels, write_labels

CFG = from_dict(
    {
        "data": {"source": "builtin:moons", "n_samples": 100, "split": [0.6, 0.2, 0.2]},
        "model": {"hidden": [4]},
        "training": {"epochs": 2, "batch_size": 32},
    }
)


def _train(run_dir) -> dict:
    exp = run_experiment(CFG, run_dir)
    for _ in exp.records():
        pass
    return exp.summary


def test_a_label_file_in_a_new_run_folder_stops_the_run(tmp_path):
    """Why the labels wait: the engine refuses to start in a folder holding reglab_gui.json."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_labels(run_dir, name="early")
    with pytest.raises(InputError, match="already holds files"):
        run_experiment(CFG, run_dir)


def test_renaming_and_hiding_a_live_run_are_written_when_it_ends(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()  # as the training session makes it, before the training process starts
    history = RunHistory()
    events = []
    history.subscribe(lambda event, key: events.append(event))
    history.add(RunInfo(key=str(run_dir), name="run 10:00:00", config=CFG, live=True))
    assert history.rename(str(run_dir), "Lesson: variant") == "Lesson: variant"
    history.set_hidden(str(run_dir), True)
    assert history.get(str(run_dir)).name == "Lesson: variant"  # shown at once
    assert events == ["added", "changed", "changed"]
    assert not (run_dir / LABELS_FILE).exists()  # the folder stays empty for the run's writer
    summary = _train(run_dir)  # the run starts and finishes in that folder
    assert summary["stop_reason"] == "completed"
    history.update(str(run_dir), live=False, summary=summary)
    assert read_labels(run_dir) == {"name": "Lesson: variant", "hidden": True}
    # a finished run's labels are written at once
    history.rename(str(run_dir), "renamed later")
    assert json.loads((run_dir / LABELS_FILE).read_text())["name"] == "renamed later"


def test_a_removed_live_run_leaves_no_labels_behind(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    history = RunHistory()
    history.add(RunInfo(key=str(run_dir), name="run", config=CFG, live=True))
    history.rename(str(run_dir), "gone")
    history.remove(str(run_dir))
    history.add(RunInfo(key=str(run_dir), name="run", config=CFG, live=True))
    history.update(str(run_dir), live=False)
    assert not (run_dir / LABELS_FILE).exists()
