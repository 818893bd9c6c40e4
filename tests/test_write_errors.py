"""A full disk, a read-only file system or any OSError while writing: exit 2, one line naming the
file (never a temporary name) and the cause, and what was on disk before intact."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import train_cli

from engine.config import from_dict
from engine.dataset import ArraySet, PreparedData
from engine.errors import WriteError
from engine.experiment import evaluate_test, run_experiment
from engine.fileio import TMP_SUFFIX, AppendFile, atomic_write_bytes
from engine.normalization import fit_standardizer

SMALL = {
    "data": {"source": "builtin:blobs", "n_samples": 150, "split": [0.6, 0.2, 0.2]},
    "model": {"hidden": [8]},
    "training": {"epochs": 4, "batch_size": 32},
}
ENOSPC = os.strerror(errno.ENOSPC)  # "No space left on device"
EROFS = os.strerror(errno.EROFS)  # "Read-only file system"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def fd_name(fd: int) -> str:
    return os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))


def is_target(name: str, target: str) -> bool:
    """name is target itself or one of our temporary files for it."""
    return name == target or (name.startswith(f".{target}.") and name.endswith(TMP_SUFFIX))


@pytest.fixture
def fail_writes(monkeypatch):
    """fail_writes(target, err, after=0): os.write to target (or its temporary file) raises OSError(err).

    after: bytes that still get through before the failure (a partially written file).
    """

    real_write = os.write

    def install(target: str, err: int = errno.ENOSPC, after: int = 0):
        budget = {"left": after}

        def write(fd, data):
            if is_target(fd_name(fd), target):
                if budget["left"] <= 0:
                    raise OSError(err, os.strerror(err))
                n = min(len(data), budget["left"])
                budget["left"] -= n
                return real_write(fd, bytes(data[:n]))
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", write)

    return install


def train(tmp_path, out, *extra, config=SMALL):
    return train_cli(tmp_path, out, *extra, config=config)


def leftovers(folder: Path) -> list[str]:
    """Our temporary files, lock files and temporary folders below folder's parent."""
    return sorted(
        str(p.relative_to(folder.parent))
        for p in folder.parent.rglob("*")
        if p.name.endswith(TMP_SUFFIX) or p.name == ".reglab.lock" or ".reglab-" in p.name
    )


@pytest.mark.parametrize("target", ["config.json", "split.npz", "metrics.jsonl", "model.npz", "summary.json"])
@pytest.mark.parametrize(
    "err, cause", [(errno.ENOSPC, ENOSPC), (errno.EROFS, EROFS), (errno.EIO, os.strerror(errno.EIO))]
)
def test_overwrite_run_that_cannot_write_leaves_the_old_run_byte_identical(
    tmp_path, fail_writes, target, err, cause
):
    out = tmp_path / "run"
    assert train(tmp_path, out)[0] == 0
    before = snapshot(out)
    fail_writes(target, err, after=100 if target == "metrics.jsonl" else 0)
    code, lines = train(tmp_path, out, "--overwrite", config={**SMALL, "training": {"epochs": 6}})
    assert code == 2
    assert lines[-1] == f"error: cannot write {out / target}: {cause}"  # the final name, not a temporary one
    assert not any("Traceback" in line for line in lines)
    assert snapshot(out) == before
    assert leftovers(out) == []


@pytest.mark.parametrize("target", ["config.json", "metrics.jsonl", "model.npz", "summary.json"])
def test_new_run_that_cannot_write_keeps_what_it_wrote_and_no_temporary_files(tmp_path, fail_writes, target):
    out = tmp_path / "run"
    fail_writes(target, after=300 if target == "metrics.jsonl" else 0)
    code, lines = train(tmp_path, out)
    assert code == 2 and lines[-1] == f"error: cannot write {out / target}: {ENOSPC}"
    assert leftovers(out) == []
    if target == "config.json":
        assert not out.exists()  # nothing was written: the folder it created is gone again
        return
    names = sorted(os.listdir(out))
    assert target not in names or target == "metrics.jsonl"
    assert "config.json" in names and "summary.json" not in names
    text = (out / "metrics.jsonl").read_text()
    assert text == "" or text.endswith("\n")  # whole lines only: a partial one was cut back
    for line in text.splitlines():
        json.loads(line)


def test_a_failed_append_is_cut_back_to_the_last_whole_line(tmp_path, fail_writes):
    path = tmp_path / "metrics.jsonl"
    log = AppendFile(path)
    log.append_line('{"epoch": 1}')
    fail_writes("metrics.jsonl", after=5)
    with pytest.raises(WriteError, match=f"cannot write {path}: {ENOSPC}"):
        log.append_line('{"epoch": 2, "padding": "' + "x" * 100 + '"}')
    log.close()
    assert path.read_text() == '{"epoch": 1}\n'


def test_replace_failing_keeps_the_old_file_and_removes_the_temporary_one(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    path.write_text('{"old": true}\n')

    def replace(src, dst):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(WriteError) as info:
        atomic_write_bytes(path, b'{"new": true}\n')
    assert str(info.value) == f"cannot write {path}: {EROFS}"
    assert isinstance(info.value, OSError)  # callers that catch OSError keep working
    assert path.read_text() == '{"old": true}\n' and os.listdir(tmp_path) == ["summary.json"]


def test_evaluate_test_that_cannot_write_keeps_summary(tmp_path, fail_writes):
    out = tmp_path / "run"
    list(run_experiment(from_dict(SMALL), out).records())
    before = snapshot(out)
    fail_writes("summary.json")
    with pytest.raises(WriteError, match=f"cannot write {out / 'summary.json'}: {ENOSPC}"):
        evaluate_test(out)
    assert snapshot(out) == before


def test_data_report_write_error_names_the_report(tmp_path, fail_writes):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(30, 4, 4, 1), dtype=np.uint8)
    y = np.arange(30) % 2
    mean, std = fit_standardizer(X[:20], is_image=True)
    data = PreparedData(
        ArraySet(X[:20], y[:20]),
        ArraySet(X[20:], y[20:]),
        ArraySet(X[:0], y[:0]),
        ["a", "b"],
        (4, 4, 1),
        mean,
        std,
        split_indices=None,
        report={"classes": ["a", "b"], "skipped": []},
    )
    out = tmp_path / "run"
    fail_writes("data_report.json")
    exp = run_experiment(from_dict({"model": {"hidden": [4]}, "training": {"epochs": 2}}), out, data=data)
    with pytest.raises(WriteError, match=f"cannot write {out / 'data_report.json'}: {ENOSPC}"):
        list(exp.records())
    assert leftovers(out) == []


def test_read_only_folder_cannot_even_be_locked(tmp_path, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    real_open = os.open

    def ro_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", ro_open)
    code, lines = train(tmp_path, out)
    assert code == 2 and lines == [f"error: cannot lock {out}: {EROFS}"]
    assert os.listdir(out) == []
