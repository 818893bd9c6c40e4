"""The command line: exit statuses, one-line errors, train/gradcheck/evaluate/data end to end, Ctrl-C, examples."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine import cli
from engine.config import load_config
from engine.experiment import run_experiment

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))

TINY = {
    "data": {"source": "builtin:moons", "n_samples": 120, "noise": 0.2, "split": [0.6, 0.2, 0.2], "seed": 1},
    "model": {"hidden": [8]},
    "optimizer": {"name": "adam", "lr": 0.01},
    "training": {"epochs": 4, "batch_size": 32},
}


def write(path: Path, obj) -> Path:
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj), encoding="utf-8")
    return path


def run_main(args, timeout=120, **kw):
    """The real entry point in a fresh interpreter, as a user runs it."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "main.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        **kw,
    )


def assert_one_line_error(rc, err, *needles):
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]


# ---------------------------------------------------------------- refused input

BAD_CONFIGS = {
    "unknown key": ({"data": {"sourc": "builtin:moons"}}, "data.sourc"),
    "keep_prob 0": ({"regularization": {"keep_prob": 0}}, "regularization.keep_prob"),
    "keep_prob list length": (
        {"model": {"hidden": [4, 4]}, "regularization": {"keep_prob": [0.5]}},
        "regularization.keep_prob",
    ),
    "split sum": ({"data": {"split": [0.5, 0.2, 0.2]}}, "data.split"),
    "lr negative": ({"optimizer": {"lr": -0.1}}, "optimizer.lr"),
    "bad activation": ({"model": {"activation": "swish"}}, "model.activation"),
    "bad init": ({"model": {"init": "orthogonal"}}, "model.init"),
    "epochs 0": ({"training": {"epochs": 0}}, "training.epochs"),
    "image_size length": ({"data": {"image_size": [32]}}, "data.image_size"),
    "bad source name": ({"data": {"source": "builtin:mnist"}}, "data.source"),
    "top-level not object": ([1, 2], "config"),
    "bad dtype": ({"training": {"dtype": "float16"}}, "training.dtype"),
    "split refused by data": (
        {"data": {"source": "builtin:moons", "n_samples": 30, "split": [0.98, 0.01, 0.01]}},
        "data.split 98/1/1",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
@pytest.mark.parametrize("command", ["train", "gradcheck"])
def test_refused_config_in_process(name, command, tmp_path, capsys):
    raw, field = BAD_CONFIGS[name]
    cfg = write(tmp_path / "cfg.json", raw)
    args = [command, "--config", str(cfg)] + (["--out", str(tmp_path / "run")] if command == "train" else [])
    rc = cli.main(args)
    out, err = capsys.readouterr()
    assert_one_line_error(rc, err, field)
    assert out == ""
    assert not (tmp_path / "run" / "summary.json").exists()


def test_missing_config_file(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    rc = cli.main(["train", "--config", str(missing), "--out", str(tmp_path / "run")])
    assert_one_line_error(rc, capsys.readouterr().err, str(missing), "no such config file")


def test_invalid_json(tmp_path, capsys):
    cfg = write(tmp_path / "broken.json", '{"data": {"source": "builtin:moons",}')
    rc = cli.main(["gradcheck", "--config", str(cfg)])
    assert_one_line_error(rc, capsys.readouterr().err, str(cfg), "not valid JSON")


def test_missing_data_folder(tmp_path, capsys):
    folder = tmp_path / "no_such_folder"
    cfg = write(tmp_path / "cfg.json", {"data": {"source": str(folder)}})
    rc = cli.main(["train", "--config", str(cfg), "--out", str(tmp_path / "run")])
    assert_one_line_error(rc, capsys.readouterr().err, str(folder))


@pytest.mark.parametrize(
    "args, needle",
    [
        (["train", "--config", "CFG", "--out", "RUN", "--human-error", "1.5"], "--human-error"),
        (["train", "--config", "CFG", "--out", "RUN", "--human-error", "nan"], "--human-error"),
        (["train", "--config", "CFG", "--out", "RUN", "--human-error", "abc"], "--human-error"),
        (["train", "--config", "CFG"], "--out"),
        (["evaluate", "--run", "NORUN", "--data", "builtin:moons"], "NORUN"),
        (["evaluate", "--run", "RUNDIR", "--data", "builtin:moons"], "model.npz"),
        (["evaluate", "--run", "RUNDIR", "--data", "builtin:nothing"], "--data"),
        (["data", "--source", "builtin:shapes", "--image-size", "0", "8"], "--image-size"),
        (["data", "--source", "builtin:shapes", "--image-size", "8"], "--image-size"),
        (["data", "--source", "builtin:shapes", "--color", "cmyk"], "--color"),
        (["data", "--source", "NOFOLDER"], "NOFOLDER"),
        (["frobnicate"], "frobnicate"),
    ],
)
def test_refused_arguments(args, needle, tmp_path, capsys):
    cfg = write(tmp_path / "cfg.json", TINY)
    (tmp_path / "rundir").mkdir()
    subst = {
        "CFG": str(cfg),
        "RUN": str(tmp_path / "run"),
        "NORUN": str(tmp_path / "norun"),
        "RUNDIR": str(tmp_path / "rundir"),
        "NOFOLDER": str(tmp_path / "nofolder"),
    }
    args = [subst.get(a, a) for a in args]
    needle = subst.get(needle, needle)
    rc = cli.main(args)
    assert_one_line_error(rc, capsys.readouterr().err, needle)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "raw, needle",
    [
        ('{"regularization": {"keep_prob": 0}}', "regularization.keep_prob"),
        ('{"data": ', "not valid JSON"),
        (None, "no such config file"),
    ],
)
def test_refused_config_subprocess(raw, needle, tmp_path):
    cfg = tmp_path / "cfg.json"
    if raw is not None:
        cfg.write_text(raw)
    proc = run_main(["train", "--config", str(cfg), "--out", str(tmp_path / "run")])
    assert_one_line_error(proc.returncode, proc.stderr, needle, str(cfg))
    assert proc.stdout == ""


def test_help_exits_zero(capsys):
    assert cli.main(["--help"]) == 0
    assert "train" in capsys.readouterr().out
    assert cli.main(["train", "--help"]) == 0
    assert "--evaluate-test" in capsys.readouterr().out


# ---------------------------------------------------------------- train and evaluate


def test_train_end_to_end_then_evaluate_reproduces_accuracy(tmp_path):
    cfg = write(tmp_path / "cfg.json", TINY)
    run = tmp_path / "run"
    proc = run_main(
        ["train", "--config", str(cfg), "--out", str(run), "--evaluate-test", "--human-error", "0.05"]
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("config.json", "metrics.jsonl", "summary.json", "model.npz", "split.npz"):
        assert (run / name).is_file(), name
    metrics = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "completed" and summary["human_error"] == 0.05
    assert "test_acc" in summary
    # progress on stderr, one line per epoch (stderr is not a terminal here)
    epoch_lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("epoch ")]
    assert len(epoch_lines) == 4 and epoch_lines[-1].startswith("epoch 4/4")
    assert "train loss" in epoch_lines[0] and "dev loss" in epoch_lines[0]
    # the summary on stdout: verdict and next steps
    assert f"diagnosis: {summary['diagnosis']['verdict']}" in proc.stdout
    assert "next steps:" in proc.stdout and "test_acc" in proc.stdout
    with np.load(run / "split.npz", allow_pickle=False) as split:
        n = {k: len(split[f"{k}_idx"]) for k in ("train", "dev", "test")}
    assert n == {"train": 72, "dev": 24, "test": 24}

    # evaluate on the whole (regenerated) source = the split-weighted mean of the summary's accuracies
    proc = run_main(["evaluate", "--run", str(run), "--data", "builtin:moons"])
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result) == {"accuracy", "loss", "n_samples", "classes", "confusion"}
    final = summary["final_metrics"]
    expected = (
        n["train"] * final["train_acc"] + n["dev"] * final["dev_acc"] + n["test"] * summary["test_acc"]
    ) / 120
    assert result["n_samples"] == 120
    assert result["accuracy"] == pytest.approx(expected, abs=1e-9)
    exp_loss = (
        n["train"] * final["train_loss"] + n["dev"] * final["dev_loss"] + n["test"] * summary["test_loss"]
    ) / 120
    assert result["loss"] == pytest.approx(exp_loss, rel=1e-5)
    assert result["classes"] == ["upper moon", "lower moon"]


def test_evaluate_in_process_and_class_mismatch(tmp_path, capsys):
    cfg = write(tmp_path / "cfg.json", TINY)
    run = tmp_path / "run"
    assert cli.main(["train", "--config", str(cfg), "--out", str(run)]) == 0
    out, err = capsys.readouterr()
    assert "run directory" in out and "epoch 4/4" in err
    assert cli.main(["evaluate", "--run", str(run), "--data", "builtin:moons"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.5 < result["accuracy"] <= 1.0 and result["n_samples"] == 120
    rc = cli.main(["evaluate", "--run", str(run), "--data", "builtin:circles"])
    assert_one_line_error(rc, capsys.readouterr().err, "builtin:circles", "classes")


def test_ctrl_c_cancels_cleanly(tmp_path):
    long = dict(TINY, training={"epochs": 100000, "batch_size": 32})
    cfg = write(tmp_path / "cfg.json", long)
    run = tmp_path / "run"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "main.py", "train", "--config", str(cfg), "--out", str(run)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        seen = False
        for line in proc.stderr:  # wait until training is under way
            seen = bool(re.match(r"epoch\s+3/100000", line))
            if seen or time.monotonic() > deadline:
                break
        assert seen, "training never reached epoch 3"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "cancelled"
    assert 3 <= summary["epochs_run"] < 100000
    assert (run / "model.npz").is_file()
    assert "stopped: cancelled" in out


# ---------------------------------------------------------------- gradcheck and data


def test_gradcheck_prints_one_json_object(tmp_path):
    small = {
        "data": {"source": "builtin:blobs", "n_samples": 60, "n_classes": 3},
        "model": {"hidden": [5, 4], "activation": "tanh"},
        "regularization": {"l2": 0.3},
        "training": {"dtype": "float64"},
    }
    cfg = write(tmp_path / "cfg.json", small)
    proc = run_main(["gradcheck", "--config", str(cfg)])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["passed"] is True
    assert 0 <= result["relative_difference"] < 1e-7
    assert "dropout" in result["note"]


def test_gradcheck_failure_exit_status(tmp_path, capsys, monkeypatch):
    import engine.gradcheck

    def failing(cfg, data, n_samples=32):
        return {"relative_difference": np.float64(0.3), "passed": False, "note": "x"}

    monkeypatch.setattr(engine.gradcheck, "check_config", failing)
    cfg = write(tmp_path / "cfg.json", TINY)
    assert cli.main(["gradcheck", "--config", str(cfg)]) == 1
    assert json.loads(capsys.readouterr().out) == {"relative_difference": 0.3, "passed": False, "note": "x"}


def test_data_report_2d_and_images(capsys):
    assert cli.main(["data", "--source", "builtin:spiral"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"] == {"arm 1": 334, "arm 2": 333, "arm 3": 333}
    assert report["n_samples"] == 1000
    assert cli.main(["data", "--source", "builtin:shapes", "--image-size", "8", "12", "--color", "gray"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["image_shape"] == [8, 12, 1]
    assert sum(report["counts"].values()) == report["n_images"]


def test_data_subprocess_prints_json(tmp_path):
    proc = run_main(["data", "--source", "builtin:shapes", "--image-size", "8", "8"])
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["image_shape"] == [8, 8, 3] and report["classes"]


# ---------------------------------------------------------------- examples

EXPECTED_EXAMPLES = {
    "init_zeros",
    "init_random_x10",
    "init_he",
    "overfit_moons_plain",
    "overfit_moons_l2",
    "overfit_moons_dropout",
    "early_stopping",
    "shapes_augment",
}


def test_examples_exist_and_validate():
    assert EXPECTED_EXAMPLES <= {p.stem for p in EXAMPLES}
    inits = {p.stem: load_config(p) for p in EXAMPLES if p.stem.startswith("init_")}
    assert {c.data.source for c in inits.values()} == {"builtin:circles"}
    assert inits["init_zeros"].model.init == "zeros"
    assert inits["init_random_x10"].model.init == "random" and inits["init_random_x10"].model.init_scale == 10
    assert inits["init_he"].model.init == "he"
    plain = load_config(ROOT / "examples" / "overfit_moons_plain.json")
    assert load_config(ROOT / "examples" / "overfit_moons_l2.json").regularization.l2 > 0
    assert load_config(ROOT / "examples" / "overfit_moons_dropout.json").keep_probs() == [0.5, 0.5]
    assert plain.regularization.l2 == 0 and plain.keep_probs() == [1.0, 1.0]
    assert load_config(ROOT / "examples" / "early_stopping.json").early_stopping.enabled
    shapes = load_config(ROOT / "examples" / "shapes_augment.json")
    assert shapes.data.source == "builtin:shapes" and shapes.augment.hflip > 0


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_trains_a_few_epochs(path, tmp_path):
    cfg = load_config(path)
    cfg = cfg.replace(**{"training.epochs": 2})
    exp = run_experiment(cfg, tmp_path / "run")
    records = list(exp.records())
    assert [r.epoch for r in records] == [1, 2]
    assert exp.summary["stop_reason"] == "completed"
    assert all(np.isfinite(r.train_loss) and np.isfinite(r.dev_loss) for r in records)
    assert (tmp_path / "run" / "model.npz").is_file()


class _FakeTerminal:
    def __init__(self):
        self.parts = []

    def isatty(self):
        return True

    def write(self, s):
        self.parts.append(s)

    def flush(self):
        pass


def test_terminal_progress_is_one_updating_line():
    from types import SimpleNamespace

    term = _FakeTerminal()
    reporter = cli._EpochReporter(50, term)
    for epoch in range(1, 51):
        rec = SimpleNamespace(
            epoch=epoch,
            train_loss=1.0 / epoch,
            train_acc=0.5,
            dev_loss=float("nan"),
            dev_acc=0.4,
            seconds=0.001,
            stop_reason="completed" if epoch == 50 else None,
            message=None,
        )
        reporter.show(rec)
    reporter.close()
    text = "".join(term.parts)
    assert text.count("\n") == 1 and text.endswith("\n")  # the line is rewritten in place, ended once
    assert text.count("\r") < 50  # throttled, not redrawn for every epoch
    last = text.rsplit("\r", 1)[1]
    assert last.startswith("epoch 50/50") and "dev loss nan" in last and "train loss 0.0200" in last
