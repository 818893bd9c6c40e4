"""A run folder is never overwritten silently and has one writer at a time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import train_cli

from engine import fileio
from engine.config import from_dict
from engine.errors import InputError
from engine.experiment import evaluate_test, run_experiment
from engine.fileio import LOCK_FILE, FolderBusy, FolderLock, atomic_write_text
from engine.runs import RunFolder, load_run

ROOT = Path(__file__).resolve().parent.parent
SMALL = {
    "data": {"source": "builtin:blobs", "n_samples": 150, "split": [0.6, 0.2, 0.2]},
    "model": {"hidden": [8]},
    "training": {"epochs": 3, "batch_size": 32},
}
# long enough to be signalled or contended: ~0.05-0.2 s per epoch on the build machine
LONG = {
    "data": {"source": "builtin:blobs", "n_samples": 4000},
    "model": {"hidden": [128, 128]},
    "training": {"epochs": 5000, "batch_size": 16},
}


def cfg(**training):
    raw = json.loads(json.dumps(SMALL))
    raw["training"].update(training)
    return from_dict(raw)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below folder (relative name -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cli(tmp_path, out, *extra, config=SMALL):
    return train_cli(tmp_path, out, *extra, config=config)


def siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


# ------------------------------------------------------------------ refusing and replacing


def test_a_new_or_empty_folder_is_written_and_left_without_lock_or_temp_files(tmp_path):
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "new" / "nested"):
        list(run_experiment(cfg(), out).records())
        assert sorted(os.listdir(out)) == [
            "config.json",
            "metrics.jsonl",
            "model.npz",
            "split.npz",
            "summary.json",
        ]


def test_a_folder_holding_files_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "run"
    list(run_experiment(cfg(), out).records())
    (out / "notes.txt").write_text("mine")
    before = snapshot(out)
    with pytest.raises(InputError) as info:
        run_experiment(cfg(), out)  # the window's entry point: refused at once
    message = str(info.value)
    assert str(out) in message and "already holds files" in message and "--overwrite" in message
    assert snapshot(out) == before

    only_foreign = tmp_path / "other"
    only_foreign.mkdir()
    (only_foreign / "thesis.tex").write_text("years of work")
    with pytest.raises(InputError, match="already holds files .thesis.tex."):
        run_experiment(cfg(), only_foreign)
    with pytest.raises(InputError, match="not part of a RegLab run .thesis.tex.*choose another folder"):
        run_experiment(cfg(), only_foreign, overwrite=True)
    assert snapshot(only_foreign) == {"thesis.tex": b"years of work"}


def test_cli_refuses_a_run_folder_with_exit_2_naming_overwrite(tmp_path):
    out = tmp_path / "run"
    assert run_cli(tmp_path, out)[0] == 0
    before = snapshot(out)
    code, lines = run_cli(tmp_path, out)
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(f"error: {out}: the folder already holds files") and "--overwrite" in lines[0]
    assert snapshot(out) == before


def test_overwrite_replaces_the_old_run_once_the_new_one_has_finished(tmp_path):
    out = tmp_path / "run"
    assert run_cli(tmp_path, out)[0] == 0
    (out / "reglab_gui.json").write_text('{"name": "old"}')  # the window's metadata is part of a run
    old_summary = json.loads((out / "summary.json").read_text())
    seen_during_run = []

    exp = run_experiment(cfg(epochs=5), out, overwrite=True)
    for _record in exp.records():
        # while the new run trains, the old run is intact under its name
        seen_during_run.append(json.loads((out / "summary.json").read_text()) == old_summary)
        assert (out / "reglab_gui.json").exists()
    assert all(seen_during_run) and len(seen_during_run) == 5
    assert load_run(out).summary["epochs_run"] == 5
    assert sorted(os.listdir(out)) == [
        "config.json",
        "metrics.jsonl",
        "model.npz",
        "split.npz",
        "summary.json",
    ]
    assert siblings(out) == []


def test_overwrite_that_fails_leaves_the_old_folder_untouched(tmp_path):
    out = tmp_path / "run"
    assert run_cli(tmp_path, out)[0] == 0
    before = snapshot(out)
    exp = run_experiment(cfg(epochs=5), out, overwrite=True)
    records = exp.records()
    next(records)
    with pytest.raises(RuntimeError, match="boom"):
        records.throw(RuntimeError("boom"))
    assert snapshot(out) == before
    assert siblings(out) == []


def test_overwrite_without_atomic_exchange_renames_twice(tmp_path, monkeypatch):
    monkeypatch.setattr("engine.runs.exchange_folders", lambda a, b: False)
    out = tmp_path / "run"
    assert run_cli(tmp_path, out)[0] == 0
    assert run_cli(tmp_path, out, "--overwrite", config={**SMALL, "training": {"epochs": 2}})[0] == 0
    assert load_run(out).summary["epochs_run"] == 2
    assert siblings(out) == [] and not (out / LOCK_FILE).exists()


def test_a_swap_that_fails_keeps_the_old_run_and_drops_the_new_one(tmp_path, monkeypatch):
    out = tmp_path / "run"
    list(run_experiment(cfg(), out).records())
    before = snapshot(out)

    def refuse(a, b):
        raise OSError(13, "Permission denied")

    monkeypatch.setattr("engine.runs.exchange_folders", refuse)
    exp = run_experiment(cfg(epochs=2), out, overwrite=True)
    with pytest.raises(OSError, match=f"cannot replace the run folder {out}: Permission denied"):
        list(exp.records())
    assert snapshot(out) == before and siblings(out) == []


def test_overwrite_refuses_a_link_to_a_run(tmp_path):
    out = tmp_path / "run"
    list(run_experiment(cfg(), out).records())
    (tmp_path / "link").symlink_to(out)
    with pytest.raises(InputError, match=f"link: is a link; to replace the run it points to, give {out}"):
        run_experiment(cfg(), tmp_path / "link", overwrite=True)


def test_a_swap_killed_between_its_two_renames_is_undone_by_the_next_writer(tmp_path):
    out = tmp_path / "run"
    list(run_experiment(cfg(), out).records())
    before = snapshot(out)
    # what a kill -9 between "rename run -> .run.reglab-old-…" and "rename new -> run" leaves
    old = tmp_path / ".run.reglab-old-99999999-abcd"
    out.rename(old)
    (tmp_path / ".run.reglab-new-99999999-abcd").mkdir()
    with pytest.raises(InputError, match="already holds files"):
        list(run_experiment(cfg(), out).records())
    assert snapshot(out) == before and siblings(out) == []


# ------------------------------------------------------------------ one writer at a time


def _spawn_long_train(tmp_path, out, *extra):
    config = tmp_path / "long.json"
    config.write_text(json.dumps(LONG))
    return subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "train", "--config", str(config), "--out", str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _wait_for_epoch(proc) -> str:
    """Read stderr until the first epoch line (training has begun and the folder is locked)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if line.startswith("epoch"):
            return line
        assert line, f"train ended early: {proc.stderr.read()}"
    raise AssertionError("no epoch line within 120 s")


def test_two_writers_the_second_gets_exit_2_naming_the_pid(tmp_path):
    out = tmp_path / "run"
    first = _spawn_long_train(tmp_path, out)
    try:
        _wait_for_epoch(first)
        second = subprocess.run(
            [sys.executable, str(ROOT / "main.py"), "train", "--config", str(tmp_path / "long.json")]
            + ["--out", str(out), "--overwrite"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert second.returncode == 2
        assert second.stderr.strip().splitlines() == [
            f"error: {out}: another RegLab process (pid {first.pid}) is writing this run folder; "
            "wait until it has finished or choose another"
        ]
        with pytest.raises(FolderBusy, match=f"pid {first.pid}"):
            evaluate_test(out)  # rewrites summary.json: must wait for the writer too
        assert not (out / "summary.json").exists()
    finally:
        first.send_signal(signal.SIGINT)
        assert first.wait(120) == 130
        first.stderr.close()
        first.stdout.close()
    assert load_run(out).summary["stop_reason"] == "cancelled"
    assert not (out / LOCK_FILE).exists()


def test_kill_9_never_leaves_a_folder_locked_and_stale_temp_files_go(tmp_path):
    out = tmp_path / "run"
    proc = _spawn_long_train(tmp_path, out)
    try:
        _wait_for_epoch(proc)
        assert (out / LOCK_FILE).read_text().strip() == str(proc.pid)
    finally:
        proc.kill()
        proc.wait(30)
        proc.stderr.close()
        proc.stdout.close()
    # the lock file is still there, but the OS let go of the lock with the process
    assert (out / LOCK_FILE).exists()
    with FolderLock.acquire(out):
        pass
    # the killed run is incomplete (no summary) and its metrics are readable
    run = load_run(out)
    assert run.summary is None and len(run.metrics) >= 1
    stale = out / f".summary.json.{proc.pid}-0badcafe{fileio.TMP_SUFFIX}"
    stale.write_text('{"half": ')  # what a kill -9 in the middle of an atomic write leaves
    alive = out / f".summary.json.{os.getpid()}-0badcafe{fileio.TMP_SUFFIX}"
    alive.write_text("{")  # a live writer's temporary file must stay
    # the next write of that file removes the dead writer's temporary file
    atomic_write_text(out / "summary.json", "{}\n")
    assert not stale.exists() and alive.exists()


def test_a_lock_file_someone_unlinked_is_not_trusted(tmp_path):
    """The lock file is removed on release; a writer that opened it just before must retry."""
    first = FolderLock.acquire(tmp_path)
    fd = os.open(tmp_path / LOCK_FILE, os.O_RDWR)  # a second writer got this far ...
    first.release()  # ... then the first one finished and removed the file
    assert not (tmp_path / LOCK_FILE).exists()
    try:
        assert fileio._lock_fd(fd)  # locking the orphaned file succeeds, so it must not count:
        with FolderLock.acquire(tmp_path) as second:  # acquire checks the file is the one at the path
            assert os.path.samestat(os.fstat(second._fd), os.stat(tmp_path / LOCK_FILE))
    finally:
        os.close(fd)


def test_run_folder_open_refuses_while_another_holds_it(tmp_path):
    holder = FolderLock.acquire(tmp_path / "")
    try:
        with pytest.raises(FolderBusy, match=f"pid {os.getpid()}"):
            RunFolder(tmp_path).open()
    finally:
        holder.release()
    assert os.listdir(tmp_path) == []
