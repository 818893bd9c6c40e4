"""Lessons: configs validate, every lesson runs headless (quick) and shows its classic outcome, the CLI.

Each lesson runs once per test session (a module fixture); the assertions are the qualitative
outcomes the lessons teach, read from the run folders the lesson wrote.
"""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import cli
from engine.config import load_config
from engine.errors import DataError, InputError
from engine.lessons import (
    LESSON_FILE,
    LESSONS,
    LESSONS_DIR,
    VIEWS,
    check_output_folder,
    comparison_table,
    get_lesson,
    load_lesson,
    read_lesson,
    run_lesson,
)
from engine.runs import load_model, load_run

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lesson_run(tmp_path_factory):
    """run(name) -> LessonResult of the quick lesson, run once per module."""
    cache = {}
    base = tmp_path_factory.mktemp("lessons")

    def run(name):
        if name not in cache:
            seen = []
            result = run_lesson(
                name, base / name, quick=True, progress=lambda v, r: seen.append((v, r.epoch))
            )
            cache[name] = (result, seen)
        return cache[name][0]

    run.progress = lambda name: cache[name][1]
    return run


def _grad_norms_at_init(result, variant):
    """Per-layer gradient norms of the first epoch (full batch: the gradient at the initial weights)."""
    return np.array(load_run(result.run(variant).run_dir).metrics[0]["grad_norms"], dtype=float)


# ---------------------------------------------------------------- the lesson records and files


def test_every_lesson_is_described_and_its_configs_validate():
    assert list(LESSONS) == [
        "initialization",
        "regularization",
        "early-stopping",
        "normalization",
        "depth",
        "augmentation",
        "mismatch",
        "bias-variance",
    ]
    referenced = set()
    for name, lesson in LESSONS.items():
        assert lesson.name == name and lesson.title
        assert lesson.view in VIEWS
        sentences = [s for s in lesson.look_for.replace("e.g.", "eg").split(". ") if s.strip()]
        assert 2 <= len(sentences) <= 4, lesson.look_for
        assert len({v.name for v in lesson.variants}) == len(lesson.variants) >= 2
        loaded = load_lesson(name)
        assert list(loaded.configs) == [v.name for v in lesson.variants]
        for v in lesson.variants:
            path = LESSONS_DIR / v.config
            assert path == LESSONS_DIR / name / f"{v.name}.json"
            referenced.add(path)
            assert load_config(path) == loaded.configs[v.name]  # an ordinary experiment file
    assert set(LESSONS_DIR.glob("*/*.json")) == referenced  # no stray files
    assert LESSONS["depth"].depth_lab is not None and LESSONS["depth"].depth_lab.hidden_layers == 15


@pytest.mark.parametrize("name", list(LESSONS))
def test_quick_mode_is_the_same_experiment_with_fewer_epochs(name):
    full, quick = load_lesson(name), load_lesson(name, quick=True)
    for variant in full.configs:
        a, b = full.configs[variant].to_dict(), quick.configs[variant].to_dict()
        assert b["training"]["epochs"] <= a["training"]["epochs"]
        a["training"].pop("epochs"), b["training"].pop("epochs")
        assert a == b


def test_variants_of_a_lesson_differ_only_in_what_the_lesson_is_about():
    def diff(lesson, a, b):
        cfgs = load_lesson(lesson).configs
        da, db = cfgs[a].to_dict(), cfgs[b].to_dict()
        return {f"{s}.{k}" for s in da for k in da[s] if da[s][k] != db[s][k]}

    assert diff("initialization", "zeros", "he") == {"model.init"}
    assert diff("initialization", "random", "he") == {"model.init", "model.init_scale"}
    assert diff("regularization", "none", "l2") == {"regularization.l2"}
    assert diff("regularization", "none", "dropout") == {"regularization.keep_prob"}
    assert diff("early-stopping", "no-stopping", "early-stopping") == {"early_stopping.enabled"}
    assert diff("normalization", "raw", "standardized") == {"data.normalize"}
    assert diff("depth", "he-0.5", "xavier-1.5") == {"model.init", "model.init_scale"}
    assert diff("mismatch", "same-distribution", "shifted-test") == {"data.test_noise"}
    assert diff("bias-variance", "tiny", "large") == {"model.hidden"}
    assert diff("bias-variance", "large", "large-more-data") == {"data.n_samples", "training.epochs"}
    init = load_lesson("initialization").configs["he"]
    assert init.model.output == "sigmoid" and list(init.model.hidden) == [10, 5]
    assert init.optimizer.name == "sgd" and init.optimizer.lr == 0.01 and init.training.epochs == 15000
    reg = load_lesson("regularization").configs
    assert list(reg["none"].model.hidden) == [20, 3] and reg["none"].optimizer.lr == 0.3
    assert reg["l2"].regularization.l2 == 0.7 and reg["dropout"].regularization.keep_prob == 0.86
    assert reg["none"].training.epochs == 30000


def test_unknown_lesson_and_variant_name_the_known_ones():
    with pytest.raises(InputError, match="unknown lesson 'nope'.*initialization.*bias-variance"):
        get_lesson("nope")
    with pytest.raises(InputError, match="no variant 'x'.*zeros, random, he"):
        LESSONS["initialization"].variant("x")


def test_output_folder_must_be_new_or_empty_unless_overwrite(tmp_path):
    assert check_output_folder(tmp_path / "new") == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    check_output_folder(tmp_path / "empty")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("keep")
    with pytest.raises(InputError, match="not empty"):
        check_output_folder(tmp_path / "full")
    check_output_folder(tmp_path / "full", overwrite=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="not a folder"):
        check_output_folder(tmp_path / "file", overwrite=True)
    with pytest.raises(InputError, match="not empty"):
        run_lesson("normalization", tmp_path / "full", quick=True)
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["x.txt"]


# ---------------------------------------------------------------- the outcomes


def test_initialization(lesson_run):
    result = lesson_run("initialization")
    rows = {r["variant"]: r for r in comparison_table(result)}
    assert rows["zeros"]["train_acc"] <= 0.55
    assert rows["zeros"]["first_cost"] == pytest.approx(np.log(2), abs=1e-4)  # σ(0) = 0.5 everywhere
    assert rows["he"]["train_acc"] >= 0.95 and rows["he"]["dev_acc"] >= 0.90
    assert rows["random"]["first_cost"] >= 5 * rows["he"]["first_cost"]
    assert rows["random"]["dev_acc"] < rows["he"]["dev_acc"]  # and it ends worse
    # the sigmoid output: one unit in every saved model
    for v in ("zeros", "random", "he"):
        assert load_model(result.run(v).run_dir).net.layer_sizes == [2, 10, 5, 1]


def test_regularization_shrinks_the_train_dev_gap(lesson_run):
    rows = {r["variant"]: r for r in comparison_table(lesson_run("regularization"))}
    for r in rows.values():
        assert r["gap"] == pytest.approx(r["train_acc"] - r["dev_acc"])
    assert rows["l2"]["gap"] < rows["none"]["gap"]
    assert rows["dropout"]["gap"] < rows["none"]["gap"]
    assert (
        rows["l2"]["dev_acc"] > rows["none"]["dev_acc"]
        and rows["dropout"]["dev_acc"] > rows["none"]["dev_acc"]
    )


def test_early_stopping_stops_at_the_dev_minimum_and_restores_it(lesson_run):
    result = lesson_run("early-stopping")
    plain = load_run(result.run("no-stopping").run_dir)
    dev_loss = np.array([m["dev_loss"] for m in plain.metrics])
    best = int(np.argmin(dev_loss))
    assert best < len(dev_loss) // 2 and dev_loss[-1] > 1.5 * dev_loss[best]  # the dev curve turns up
    stopped = result.run("early-stopping").summary
    assert stopped["stop_reason"] == "early_stopping" and stopped["restored_best"]
    assert stopped["best_epoch"] == best + 1  # same seed: the same curve until the stop
    assert stopped["epochs_run"] < plain.summary["epochs_run"]
    assert stopped["final_metrics"]["dev_loss"] == pytest.approx(dev_loss[best])
    assert stopped["final_metrics"]["dev_loss"] < plain.summary["final_metrics"]["dev_loss"]


def test_normalized_inputs_reach_a_lower_cost_in_the_same_epochs(lesson_run):
    result = lesson_run("normalization")
    raw, std = (load_run(result.run(v).run_dir) for v in ("raw", "standardized"))
    assert len(raw.metrics) == len(std.metrics)
    assert std.metrics[-1]["train_loss"] < 0.6 * raw.metrics[-1]["train_loss"]
    assert std.metrics[-1]["cost"] < raw.metrics[-1]["cost"]
    with np.load(result.run("raw").run_dir / "model.npz", allow_pickle=False) as f:
        assert f["norm_std"].tolist() == [1.0, 1.0]  # raw: no normalization
    with np.load(result.run("standardized").run_dir / "model.npz", allow_pickle=False) as f:
        assert 50 < f["norm_std"][1] / f["norm_std"][0] < 200  # the second feature is ~100× larger


def test_depth_gradients_vanish_and_explode(lesson_run):
    result = lesson_run("depth")
    g = {v: np.median(_grad_norms_at_init(result, v)) for v in ("he-0.5", "he-1.0", "he-1.5", "xavier-1.0")}
    assert len(_grad_norms_at_init(result, "he-1.0")) == 16  # 15 hidden layers + output
    assert g["he-0.5"] < 1e-3 * g["he-1.0"]  # vanishing: 0.5^14 ≈ 6e-5
    assert g["xavier-1.0"] < 1e-2 * g["he-1.0"]  # Xavier with ReLU: (1/√2)^14 ≈ 8e-3
    assert g["he-1.5"] > 1e2 * g["he-1.0"]  # exploding: 1.5^14 ≈ 3e2
    rows = {r["variant"]: r for r in comparison_table(result)}
    assert rows["he-1.0"]["train_acc"] >= 0.9
    assert rows["he-0.5"]["train_acc"] < rows["he-1.0"]["train_acc"] - 0.1
    assert rows["xavier-0.5"]["train_acc"] <= 0.55
    assert (
        rows["he-1.5"]["stop_reason"] == "diverged"
        or rows["he-1.5"]["first_cost"] > 100 * rows["he-1.0"]["first_cost"]
    )


def test_augmentation_does_not_lower_dev_accuracy(lesson_run):
    rows = {r["variant"]: r for r in comparison_table(lesson_run("augmentation"))}
    assert rows["none"]["train_acc"] == 1.0  # memorized
    assert rows["augmented"]["dev_acc"] >= rows["none"]["dev_acc"]


def test_mismatch_dev_promises_what_a_shifted_test_set_does_not_keep(lesson_run):
    result = lesson_run("mismatch")
    rows = {r["variant"]: r for r in comparison_table(result)}
    same, shifted = rows["same-distribution"], rows["shifted-test"]
    assert same["dev_acc"] == shifted["dev_acc"]  # identical training; only the test set differs
    assert abs(same["test_acc"] - same["dev_acc"]) <= 0.05
    assert shifted["test_acc"] <= shifted["dev_acc"] - 0.1
    notes_same = " ".join(result.run("same-distribution").summary["notes"])
    notes_shifted = " ".join(result.run("shifted-test").summary["notes"])
    assert "same distribution" in notes_shifted and "noise 0.5" in notes_shifted
    assert "same distribution" not in notes_same
    report = json.loads((result.run("shifted-test").run_dir / "data_report.json").read_text())
    assert "mismatch" in report


def test_bias_variance_follows_the_basic_recipe(lesson_run):
    result = lesson_run("bias-variance")
    diag = {r.name: r.summary["diagnosis"] for r in result.runs}
    assert diag["tiny"]["verdict_code"] == "bias" and "bigger_network" in diag["tiny"]["advice"]
    assert diag["large"]["verdict_code"] == "variance" and "more_data" in diag["large"]["advice"]
    assert diag["large-more-data"]["variance"] < diag["large"]["variance"] / 2
    assert result.run("tiny").summary["human_error_source"] == "bayes_estimate"


# ---------------------------------------------------------------- what run_lesson writes


def test_run_folders_lesson_json_and_progress(lesson_run):
    result = lesson_run("normalization")
    lesson = LESSONS["normalization"]
    assert [r.name for r in result.runs] == ["raw", "standardized"] and not result.cancelled
    for r in result.runs:
        names = {p.name for p in r.run_dir.iterdir()}
        assert {"config.json", "metrics.jsonl", "summary.json", "model.npz", "split.npz"} <= names
        assert r.run_dir == result.out_dir / r.name
        metrics = load_run(r.run_dir).metrics
        assert r.first_cost == pytest.approx(metrics[0]["cost"])
    record = json.loads((result.out_dir / LESSON_FILE).read_text())
    assert record["lesson"] == "normalization" and record["quick"] is True and record["cancelled"] is False
    assert record["view"] == lesson.view and record["look_for"] == lesson.look_for
    assert [v["name"] for v in record["variants"]] == ["raw", "standardized"]
    assert record["table"] == comparison_table(result)
    row = record["table"][1]
    final = result.run("standardized").summary["final_metrics"]
    assert row["train_acc"] == final["train_acc"] and row["final_cost"] == final["cost"]
    assert row["epochs"] == 30 and row["stop_reason"] == "completed"
    # progress: one call per epoch of every variant, in order
    assert lesson_run.progress("normalization") == [("raw", e) for e in range(1, 31)] + [
        ("standardized", e) for e in range(1, 31)
    ]
    # the folder read back gives the same table and metrics (the window can overlay it again)
    again = read_lesson(result.out_dir)
    assert comparison_table(again) == comparison_table(result) and again.quick and not again.cancelled
    assert [r.metrics for r in again.runs] == [r.metrics for r in result.runs]
    depth = json.loads((lesson_run("depth").out_dir / LESSON_FILE).read_text())
    assert depth["depth_lab"] == {
        "hidden_layers": 15,
        "width": 32,
        "activation": "relu",
        "inits": ["he", "xavier"],
        "scales": [0.5, 1.0, 1.5],
    }


def test_should_stop_ends_the_lesson_with_the_runs_so_far(tmp_path):
    calls = {"n": 0}

    def stop_after_first_variant():
        calls["n"] += 1
        return stopped["raw_done"]

    stopped = {"raw_done": False}

    def progress(variant, record):
        if variant == "raw" and record.stop_reason is not None:
            stopped["raw_done"] = True

    result = run_lesson(
        "normalization", tmp_path / "out", quick=True, progress=progress, should_stop=stop_after_first_variant
    )
    assert result.cancelled and [r.name for r in result.runs] == ["raw"]
    assert result.runs[0].summary["stop_reason"] == "completed"
    assert not (tmp_path / "out" / "standardized").exists()
    assert json.loads((tmp_path / "out" / LESSON_FILE).read_text())["cancelled"] is True
    again = read_lesson(tmp_path / "out")
    assert again.cancelled and [r.name for r in again.runs] == ["raw"]
    with pytest.raises(DataError, match="not a lesson folder"):
        read_lesson(tmp_path)


# ---------------------------------------------------------------- the command line


def _main(args, timeout=300):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env
    )


def _one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_lesson_command_runs_prints_the_table_and_refuses_a_used_folder(tmp_path):
    out = tmp_path / "norm"
    proc = _main(["lesson", "normalization", "--out", str(out), "--quick"])
    assert proc.returncode == 0, proc.stderr
    record = json.loads((out / LESSON_FILE).read_text())
    lines = proc.stdout.splitlines()
    assert lines[0].split() == [
        "variant",
        "stop",
        "epochs",
        "train",
        "acc",
        "dev",
        "acc",
        "gap",
        "first",
        "cost",
        "final",
        "cost",
    ]
    for line, row in zip(lines[1:3], record["table"]):
        cells = line.split()
        assert cells[:3] == [row["variant"], "completed", "30"]
        assert float(cells[3]) == pytest.approx(row["train_acc"], abs=5e-4)
        assert float(cells[4]) == pytest.approx(row["dev_acc"], abs=5e-4)
        assert float(cells[5]) == pytest.approx(row["gap"], abs=5e-4)
        assert float(cells[6]) == pytest.approx(row["first_cost"], rel=1e-3)
        assert float(cells[7]) == pytest.approx(row["final_cost"], rel=1e-3)
    assert "What to look for:" in proc.stdout and LESSONS["normalization"].look_for in proc.stdout
    assert (
        "variant 1/2 raw (30 epochs)" in proc.stderr and "variant 2/2 standardized (30 epochs)" in proc.stderr
    )
    assert "epoch 30/30" in proc.stderr
    for v in ("raw", "standardized"):
        assert (out / v / "model.npz").is_file() and (out / v / "summary.json").is_file()

    _one_line_error(
        _main(["lesson", "normalization", "--out", str(out), "--quick"]), str(out), "not empty", "--overwrite"
    )
    before = (out / "raw" / "metrics.jsonl").read_text()
    proc = _main(["lesson", "normalization", "--out", str(out), "--quick", "--overwrite"])
    assert proc.returncode == 0, proc.stderr
    assert (out / "raw" / "metrics.jsonl").read_text().count("\n") == before.count("\n") == 30


def test_lesson_command_exits_0_when_a_variant_diverges(tmp_path, capsys):
    rc = cli.main(["lesson", "depth", "--out", str(tmp_path / "depth"), "--quick"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    row = next(ln for ln in out.splitlines() if ln.startswith("he-1.5 "))
    assert "diverged" in row
    assert "Training diverged" in err  # the variant's message, on stderr


@pytest.mark.parametrize(
    "args,needles",
    [
        (["lesson", "nope", "--out", "X"], ["unknown lesson 'nope'", "initialization", "bias-variance"]),
        (["lesson"], ["lesson NAME", "--list"]),
        (["lesson", "depth"], ["--out DIR is required"]),
        (["lesson", "depth", "--out", "X", "--bogus"], ["unrecognized arguments: --bogus"]),
    ],
)
def test_lesson_command_bad_input(args, needles, tmp_path):
    args = [str(tmp_path / a) if a == "X" else a for a in args]
    _one_line_error(_main(args, timeout=60), *needles)
    assert not (tmp_path / "X").exists()


def test_lesson_command_refuses_a_file_as_out(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("")
    assert cli.main(["lesson", "depth", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert "not a folder" in err and len(err.strip().splitlines()) == 1


def test_lesson_list(capsys):
    assert cli.main(["lesson", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == list(LESSONS)
    assert all(LESSONS[ln.split()[0]].title in ln for ln in lines)


def test_ctrl_c_stops_the_lesson_cleanly(tmp_path):
    out = tmp_path / "init"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "main.py", "lesson", "initialization", "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        seen = False
        for line in proc.stderr:  # wait until the first variant is training
            seen = re.search(r"epoch\s+1/15000", line) is not None
            if seen:
                break
        assert seen, "the lesson never started training"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    record = json.loads((out / LESSON_FILE).read_text())
    assert record["cancelled"] is True
    assert [(row["variant"], row["stop_reason"]) for row in record["table"]] == [("zeros", "cancelled")]
    assert 1 <= record["table"][0]["epochs"] < 15000
    assert not (out / "random").exists() and not (out / "he").exists()
    assert stdout.splitlines()[1].split()[:2] == ["zeros", "cancelled"]
