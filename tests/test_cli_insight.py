"""depth-lab, landscape and evaluate's confusion matrix through the real entry point (subprocesses)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.config import from_dict
from engine.experiment import run_experiment
from engine.insight.depthlab import DepthLab

ROOT = Path(__file__).resolve().parent.parent


def run_main(args, timeout=120):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env
    )


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A small finished run on three spiral classes (so the confusion matrix is 3 × 3)."""
    cfg = from_dict(
        {
            "data": {"source": "builtin:spiral", "n_samples": 150, "n_classes": 3, "seed": 2},
            "model": {"hidden": [16]},
            "optimizer": {"name": "adam", "lr": 0.02},
            "training": {"epochs": 5, "batch_size": 32},
        }
    )
    out = tmp_path_factory.mktemp("insight") / "run"
    list(run_experiment(cfg, out).records())
    return out


# ---------------------------------------------------------------- depth-lab


def test_depth_lab_prints_the_views_numbers_as_json():
    args = ["--depth", "6", "--width", "30", "--activation", "tanh", "--init", "xavier", "--scale", "1.3"]
    proc = run_main(["depth-lab", *args, "--samples", "64", "--seed", "3"])
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert len(proc.stdout.strip().splitlines()) == 1
    assert len(result["activation_std"]) == len(result["grad_norm"]) == len(result["layers"]) == 8
    assert result["layers"][0] == "input" and result["layers"][-1] == "output"
    assert (result["depth"], result["width"], result["scale"], result["samples"], result["seed"]) == (
        6,
        30,
        1.3,
        64,
        3,
    )
    # from the same code as the view
    view = DepthLab(6, 30, "tanh", "xavier", samples=64, seed=3).profile(1.3)
    assert result["activation_std"] == list(view.activation_std)
    assert result["grad_norm"] == list(view.grad_norm)


def test_depth_lab_defaults_and_a_linear_slope():
    proc = run_main(
        [
            "depth-lab",
            "--depth",
            "20",
            "--width",
            "100",
            "--activation",
            "linear",
            "--init",
            "lecun",
            "--scale",
            "0.8",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["samples"] == 256 and result["seed"] == 0
    std = np.array(result["activation_std"][:-1])
    factor = np.exp(np.polyfit(np.arange(len(std)), np.log(std), 1)[0])
    assert factor == pytest.approx(0.8, rel=0.03)  # scale · sqrt(width · 1/width)


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"--depth": "1"}, "--depth"),
        ({"--depth": "101"}, "--depth"),
        ({"--width": "0"}, "--width"),
        ({"--init": "orthogonal"}, "--init"),
        ({"--activation": "swish"}, "--activation"),
        ({"--scale": "-0.5"}, "--scale"),
        ({"--scale": "nan"}, "--scale"),
        ({"--scale": "big"}, "--scale"),
        ({"--samples": "0"}, "--samples"),
        ({"--seed": "-1"}, "--seed"),
        ({"--depth": None}, "--depth"),
    ],
)
def test_depth_lab_refuses_bad_arguments_with_one_line(change, needle):
    args = {"--depth": "5", "--width": "10", "--activation": "relu", "--init": "he", "--scale": "1"}
    args.update(change)
    argv = ["depth-lab"]
    for k, v in args.items():
        if v is not None:
            argv += [k, v]
    assert_one_line_error(run_main(argv), needle)


# ---------------------------------------------------------------- landscape and evaluate


def test_landscape_centre_equals_evaluates_loss(run_dir):
    ev = run_main(["evaluate", "--run", str(run_dir), "--data", "builtin:spiral"])
    assert ev.returncode == 0, ev.stderr
    evaluated = json.loads(ev.stdout)
    proc = run_main(
        [
            "landscape",
            "--run",
            str(run_dir),
            "--data",
            "builtin:spiral",
            "--points",
            "9",
            "--span",
            "0.8",
            "--directions",
            "2",
            "--seed",
            "5",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    alphas = np.array(result["alphas"])
    assert len(alphas) == 9 and alphas[4] == 0.0 and np.allclose(alphas, -alphas[::-1])
    assert alphas[0] == pytest.approx(-0.8)
    assert len(result["loss"]) == 9
    assert np.array(result["loss_by_direction"]).shape == (2, 9)
    assert result["loss"] == pytest.approx(np.mean(result["loss_by_direction"], axis=0).tolist(), rel=1e-12)
    assert result["loss"][4] == evaluated["loss"]  # the very same measurement
    assert result["n_samples"] == evaluated["n_samples"] == 150
    assert (
        result["loss"][0] > result["loss"][4] < result["loss"][-1]
    )  # far from the trained weights costs more


def test_landscape_defaults(run_dir):
    proc = run_main(["landscape", "--run", str(run_dir), "--data", "builtin:spiral"])
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert len(result["alphas"]) == 21 and result["directions"] == 3 and result["span"] == 1.0
    assert np.array(result["loss_by_direction"]).shape == (3, 21)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--run", "NORUN"], "NORUN"),
        (["--points", "10"], "--points"),
        (["--points", "1"], "--points"),
        (["--span", "0"], "--span"),
        (["--span", "inf"], "--span"),
        (["--directions", "0"], "--directions"),
        (["--seed", "-3"], "--seed"),
        (["--data", "builtin:circles"], "classes"),
    ],
)
def test_landscape_refuses_bad_arguments_with_one_line(args, needle, run_dir, tmp_path):
    base = {"--run": str(run_dir), "--data": "builtin:spiral"}
    extra = dict(zip(args[::2], args[1::2]))
    if extra.get("--run") == "NORUN":
        extra["--run"] = str(tmp_path / "no_such_run")
        needle = extra["--run"]
    base.update(extra)
    argv = ["landscape"] + [x for kv in base.items() for x in kv]
    assert_one_line_error(run_main(argv), needle)


def test_evaluate_adds_the_confusion_matrix_and_classes(run_dir):
    proc = run_main(["evaluate", "--run", str(run_dir), "--data", "builtin:spiral"])
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    M = np.array(result["confusion"])
    assert (
        M.shape == (3, 3) and result["classes"] == ["arm 0", "arm 1", "arm 2"] or len(result["classes"]) == 3
    )
    assert M.sum() == result["n_samples"] == 150
    assert np.trace(M) / M.sum() == pytest.approx(result["accuracy"], abs=1e-12)
    assert M.sum(axis=1).tolist() == [50, 50, 50]  # rows: true classes of the balanced spiral
