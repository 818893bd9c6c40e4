"""Reading runs back is a parser of untrusted files: only DataError ever escapes load_run, and
scan_runs reads a runs folder with broken runs in it without failing."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.config import from_dict
from engine.errors import DataError
from engine.experiment import run_experiment
from engine.runs import RunRecord, load_run, scan_runs
from engine.trainer import METRIC_KEYS

SMALL = {
    "data": {"source": "builtin:blobs", "n_samples": 150, "split": [0.6, 0.2, 0.2]},
    "model": {"hidden": [8, 6]},
    "training": {"epochs": 3, "batch_size": 32},
}


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("good") / "run"
    list(run_experiment(from_dict(SMALL), out).records())
    return out


@pytest.fixture
def run_copy(good_run, tmp_path):
    def make(name="run") -> Path:
        dest = tmp_path / name
        shutil.copytree(good_run, dest)
        return dest

    return make


def assert_well_typed(rec: RunRecord) -> None:
    """What load_run promises the window about a run it accepted."""
    last = 0
    for m in rec.metrics:
        assert list(m) == list(METRIC_KEYS)
        assert type(m["epoch"]) is int and m["epoch"] > last
        last = m["epoch"]
        for key in METRIC_KEYS:
            if key == "grad_norms":
                assert all(g is None or (type(g) is float and math.isfinite(g)) for g in m[key])
            elif key != "epoch":
                assert m[key] is None or (type(m[key]) is float and math.isfinite(m[key]))
    s = rec.summary
    if s is not None:
        assert type(s["epochs_run"]) is int and type(s["best_epoch"]) is int
        assert s["stop_reason"] in ("completed", "early_stopping", "diverged", "cancelled")
        for key in ("final_metrics", "best_metrics"):
            if s.get(key) is not None:
                assert list(s[key]) == list(METRIC_KEYS)
        for w in s.get("warnings", []):
            assert type(w["code"]) is str and type(w["message"]) is str
        for note in s.get("notes", []):
            assert type(note) is str


def load_or_dataerror(path: Path) -> RunRecord | None:
    """load_run(path): a well-typed record, or a one-line DataError naming a file in the run."""
    try:
        rec = load_run(path)
    except DataError as exc:
        message = str(exc)
        assert "\n" not in message and str(path) in message, message
        assert len(message) < 1000
        return None
    assert_well_typed(rec)
    return rec


def summary_of(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


# ------------------------------------------------------------------ named cases

SUMMARY_CASES = [
    ("[]", "must be a JSON object"),
    ("null", "must be a JSON object"),
    ('"text"', "must be a JSON object"),
    ("{}", "has no epochs_run"),
]
SUMMARY_FIELD_CASES = [
    ("epochs_run", "3", "epochs_run must be an integer"),
    ("epochs_run", -1, "epochs_run must be an integer ≥ 0"),
    ("epochs_run", True, "epochs_run must be an integer"),
    ("epochs_run", 2.5, "epochs_run must be an integer"),
    ("best_epoch", None, "best_epoch must be an integer"),
    ("stop_reason", "exploded", "stop_reason must be one of"),
    ("stop_reason", 7, "stop_reason must be one of"),
    ("message", 5, "message must be text"),
    ("final_metrics", [], "final_metrics must be a JSON object"),
    ("final_metrics", {"train_loss": 0.5}, "final_metrics has no epoch"),
    ("best_metrics", {"epoch": 1, "train_acc": "high"}, "best_metrics.train_acc must be a number"),
    ("best_metrics", {"epoch": 1, "dev_acc": 1.5}, "best_metrics.dev_acc must be a number in [0, 1]"),
    ("weights_epoch", "x", "weights_epoch must be an integer"),
    ("restored_best", "yes", "restored_best must be true or false"),
    ("human_error", "5%", "human_error must be a number"),
    ("human_error", 3, "human_error must be a number in [0, 1]"),
    ("diagnosis", "fine", "diagnosis must be an object"),
    ("diagnosis", {"next_steps": "rest"}, "diagnosis.next_steps must be a list"),
    ("diagnosis", {"next_steps": [1, 2]}, "diagnosis.next_steps[0] must be text"),
    ("diagnosis", {"variance": "big"}, "diagnosis.variance must be a number"),
    ("diagnosis", {"high_bias": 1}, "diagnosis.high_bias must be true or false"),
    ("notes", "a note", "notes must be a list"),
    ("notes", [None], "notes[0] must be text"),
    ("warnings", {}, "warnings must be a list"),
    ("warnings", ["stalled"], "warnings[0] must be an object"),
    ("warnings", [{"code": 1, "message": "m"}], "warnings[0].code must be text"),
    ("warnings", [{"code": "stalled"}], "warnings[0].message must be text"),
    ("total_seconds", -3, "total_seconds must be a number ≥ 0"),
    ("test_acc", [0.9], "test_acc must be a number"),
    ("n_test", 1e3, "n_test must be an integer"),
]


@pytest.mark.parametrize("text, needle", SUMMARY_CASES)
def test_summary_that_is_not_an_object(run_copy, text, needle):
    run = run_copy()
    (run / "summary.json").write_text(text)
    with pytest.raises(DataError, match=f"summary.json: {needle}"):
        load_run(run)


@pytest.mark.parametrize("key, value, needle", SUMMARY_FIELD_CASES)
def test_summary_field_of_the_wrong_type(run_copy, key, value, needle):
    run = run_copy()
    summary = summary_of(run)
    summary[key] = value
    (run / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(DataError) as info:
        load_run(run)
    assert str(info.value).startswith(f"{run / 'summary.json'}: {needle}"), str(info.value)


def test_unknown_summary_keys_are_kept_and_known_ones_typed(run_copy):
    run = run_copy()
    summary = summary_of(run)
    summary["from_a_later_version"] = {"x": [1, 2]}
    (run / "summary.json").write_text(json.dumps(summary))
    rec = load_run(run)
    assert rec.summary["from_a_later_version"] == {"x": [1, 2]}
    assert rec.summary["epochs_run"] == 3


def metrics_line(**changes) -> str:
    line = dict.fromkeys(METRIC_KEYS, 0.5)
    line.update(epoch=1, grad_norms=[0.1, 0.2, 0.3])
    line.update(changes)
    return json.dumps(line)


@pytest.mark.parametrize(
    "lines, needle",
    [
        ([metrics_line(epoch=None)], "line 1: the object has no epoch"),
        ([json.dumps({"train_loss": 0.5})], "line 1: the object has no epoch"),
        ([metrics_line(epoch="1")], "line 1: the object.epoch must be an integer ≥ 1"),
        ([metrics_line(epoch=0)], "line 1: the object.epoch must be an integer ≥ 1"),
        ([metrics_line(epoch=1.0)], "the object.epoch must be an integer"),
        ([metrics_line(epoch=True)], "the object.epoch must be an integer"),
        ([metrics_line(epoch=2), metrics_line(epoch=2)], "line 2: epoch 2 does not follow epoch 2"),
        ([metrics_line(train_loss="0.5")], "the object.train_loss must be a number or null"),
        ([metrics_line(train_acc=1.01)], "the object.train_acc must be a number in [0, 1]"),
        ([metrics_line(dev_loss=-1)], "the object.dev_loss must be a number ≥ 0"),
        ([metrics_line(grad_norms="big")], "the object.grad_norms must be a list of numbers"),
        ([metrics_line(grad_norms=[[1]])], "the object.grad_norms[0] must be a number"),
        ([metrics_line(grad_norms=[0.1] * 5000)], "grad_norms must be a list of numbers"),
        (["[1, 2, 3]"], "line 1: the object must be a JSON object"),
        (['"epoch"'], "line 1: the object must be a JSON object"),
        (['{"epoch": NaN}'], "line 1: not valid JSON (NaN is not a JSON number"),
        (['{"epoch": 1e999}'], "line 1: the object.epoch must be an integer ≥ 1, got inf"),
        (
            ['{"epoch": 1, "train_loss": 1e999}'],
            "line 1: the object.train_loss must be a number ≥ 0, got inf",
        ),
        (['{"epoch": ' + "9" * 30 + "}"], "line 1: the object.epoch must be an integer ≥ 1"),
        (['{"epoch": ' + "9" * 5000 + "}"], "line 1: not valid JSON (Exceeds the limit (4300 digits)"),
        (["{broken", metrics_line()], "line 1: not valid JSON"),
        (["[" * 5000 + "]" * 5000, metrics_line()], "line 1: not valid JSON (nested too deeply)"),
    ],
)
def test_broken_metrics_lines(run_copy, lines, needle):
    run = run_copy()
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as info:
        load_run(run)
    assert str(info.value).startswith(f"{run / 'metrics.jsonl'}: "), str(info.value)
    assert needle in str(info.value), str(info.value)


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"[]", "config must be a JSON object"),
        (b'{"model": {"hidden": "many"}}', "model.hidden"),
        (b'{"nonsense": 1}', "nonsense"),
        (b'{"training": {"epochs": ' + b"9" * 5000 + b"}}", "out of range"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ('{"training": {}}'.encode("utf-16"), "UTF-16"),
        (b"", "empty"),
        (bytes(range(256)), "not UTF-8"),
    ],
)
def test_broken_config(run_copy, content, needle):
    run = run_copy()
    (run / "config.json").write_bytes(content)
    with pytest.raises(DataError) as info:
        load_run(run)
    assert str(info.value).startswith(f"{run / 'config.json'}: ") and needle in str(info.value)


def test_files_that_are_not_regular_files(run_copy, tmp_path):
    cases = {
        "summary.json": lambda p: p.symlink_to("/dev/zero"),
        "metrics.jsonl": lambda p: os.mkfifo(p),  # would block a reader that waits for data
        "config.json": lambda p: p.mkdir(),
    }
    for i, (name, make) in enumerate(cases.items()):
        run = run_copy(f"run{i}")
        (run / name).unlink()
        make(run / name)
        with pytest.raises(DataError, match=f"{name}: .*(not a regular file|is a folder)"):
            load_run(run)
    run = run_copy("loop")
    (run / "summary.json").unlink()
    (run / "summary.json").symlink_to(run / "summary.json")
    with pytest.raises(DataError, match="summary.json: cannot read the summary"):
        load_run(run)
    run = run_copy("huge")
    with open(run / "metrics.jsonl", "wb") as fh:  # 200 MB, sparse: refused from its size
        fh.truncate(200 << 20)
    with pytest.raises(DataError, match="metrics.jsonl: the metrics file is larger than 128 MB"):
        load_run(run)


# ------------------------------------------------------------------ random fuzzing


def mutations(data: bytes, rng: np.random.Generator) -> bytes:
    """One random corruption: truncate, flip bytes, splice in a token, or duplicate a slice."""
    kind = rng.integers(0, 5)
    n = len(data)
    if kind == 0:
        return data[: rng.integers(0, n + 1)]
    if kind == 1:
        out = bytearray(data)
        for i in rng.integers(0, max(n, 1), size=rng.integers(1, 8)):
            if n:
                out[i] = int(rng.integers(0, 256))
        return bytes(out)
    tokens = [
        b"NaN",
        b"-1",
        b"1e400",
        b"[",
        b"]",
        b"{",
        b'"x"',
        b"null",
        b"true",
        b"9" * 30,
        b"\xff",
        b",",
        b":",
    ]
    if kind == 2:
        i = int(rng.integers(0, n + 1))
        return data[:i] + tokens[rng.integers(0, len(tokens))] + data[i:]
    if kind == 3:
        i, j = sorted(int(v) for v in rng.integers(0, n + 1, size=2))
        return data[:j] + data[i:j] + data[j:]
    # replace one JSON value after a colon by a token
    i = data.find(b":", int(rng.integers(0, n + 1)))
    if i < 0:
        return data
    j = i + 1
    while j < n and data[j : j + 1] not in (b",", b"}", b"\n"):
        j += 1
    return data[: i + 1] + b" " + tokens[rng.integers(0, len(tokens))] + data[j:]


def test_random_corruptions_raise_only_dataerror(good_run, tmp_path):
    rng = np.random.default_rng(20261201)
    originals = {
        name: (good_run / name).read_bytes() for name in ("config.json", "summary.json", "metrics.jsonl")
    }
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    outcomes = {"accepted": 0, "refused": 0}
    for _ in range(600):
        for name, data in originals.items():
            (run / name).write_bytes(data)
        name = list(originals)[rng.integers(0, 3)]
        corrupted = originals[name]
        for _ in range(int(rng.integers(1, 4))):
            corrupted = mutations(corrupted, rng)
        (run / name).write_bytes(corrupted)
        rec = load_or_dataerror(run)  # any other exception fails the test here
        outcomes["accepted" if rec is not None else "refused"] += 1
    # the corruptions exercised both paths: refused files and harmless edits
    assert outcomes["refused"] > 200 and outcomes["accepted"] > 20, outcomes


# ------------------------------------------------------------------ scan_runs


def test_scan_runs_skips_and_reports_broken_runs_and_never_fails(good_run, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    for name in ("run-b", "run-a", "run-c"):
        shutil.copytree(good_run, runs / name)
    shutil.copytree(good_run, runs / "broken-summary")
    (runs / "broken-summary" / "summary.json").write_text("[]")
    shutil.copytree(good_run, runs / "broken-metrics")
    (runs / "broken-metrics" / "metrics.jsonl").write_text('{"train_loss": 1}\n')
    (runs / "no-config").mkdir()
    (runs / "no-config" / "metrics.jsonl").write_text("")
    (runs / "not-a-run").mkdir()  # no run files: not reported
    (runs / "notes.txt").write_text("hello")
    (runs / ".run-a.reglab-new-1-ab").mkdir()  # a run being replaced: hidden
    shutil.copytree(good_run, runs / ".run-a.reglab-new-1-ab", dirs_exist_ok=True)
    (runs / "loop").symlink_to(runs / "loop")
    (runs / "link-to-run").symlink_to(runs / "run-a")

    records, problems = scan_runs(runs)
    assert [r.path.name for r in records] == ["link-to-run", "run-a", "run-b", "run-c"]
    assert all(r.summary["epochs_run"] == 3 for r in records)
    assert len(problems) == 3 and all("\n" not in p for p in problems)
    assert problems[0].startswith(str(runs / "broken-metrics" / "metrics.jsonl"))
    assert problems[1].startswith(str(runs / "broken-summary" / "summary.json"))
    assert problems[2] == f"{runs / 'no-config'}: not a run directory (no config.json)"


def test_scan_runs_of_a_missing_or_unreadable_folder(tmp_path):
    assert scan_runs(tmp_path / "missing") == ([], [])
    (tmp_path / "file").write_text("x")
    assert scan_runs(tmp_path / "file") == ([], [f"{tmp_path / 'file'}: not a folder"])
