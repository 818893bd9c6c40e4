"""Signals sent to real subprocesses: training saves on SIGTERM/SIGHUP like Ctrl-C, and the image
loader's worker processes die with their parent even after SIGKILL."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.runs import load_model, load_run

ROOT = Path(__file__).resolve().parent.parent
LONG = {
    "data": {"source": "builtin:blobs", "n_samples": 4000},
    "model": {"hidden": [128, 128]},
    "training": {"epochs": 5000, "batch_size": 16},
}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signal_mid_training_saves_the_run_as_cancelled(tmp_path, sig):
    config = tmp_path / "long.json"
    config.write_text(json.dumps(LONG))
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "train", "--config", str(config), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 120
        while not proc.stderr.readline().startswith("epoch"):
            assert time.monotonic() < deadline and proc.poll() is None
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"stopping ({'Ctrl-C' if sig == signal.SIGINT else sig.name})" in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "cancelled"
    assert 1 <= summary["epochs_run"] < LONG["training"]["epochs"]
    assert len(load_run(out).metrics) == summary["epochs_run"]
    assert load_model(out / "model.npz").net.layer_sizes == [2, 128, 128, 3]
    assert "stopped: cancelled" in stdout


def _children() -> dict[int, int]:
    """pid -> parent pid of every process (from /proc)."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as fh:
                    stat = fh.read()
            except OSError:
                continue
            out[int(name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def _descendants(pid: int) -> set[int]:
    parents = _children()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def _running(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_killing_the_cli_while_it_decodes_ends_every_worker_and_releases_the_pipes(tmp_path):
    folder = tmp_path / "images"
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (folder / c).mkdir(parents=True)
        for i in range(1500):
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / c / f"{i}.png")
    env = {**os.environ, "REGLAB_CACHE_DIR": str(tmp_path / "cache")}
    kids: set[int] = set()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "data", "--source", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    try:
        # wait until the pool's workers run: grandchildren (children of the fork server)
        deadline = time.monotonic() + 60
        while True:
            kids = _descendants(proc.pid)
            parents = _children()
            workers = {k for k in kids if parents.get(k) != proc.pid}
            if workers:
                break
            assert proc.poll() is None and time.monotonic() < deadline, "no worker process appeared"
            time.sleep(0.01)
        kids = _descendants(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert len(kids) >= 3  # resource tracker, fork server, at least one worker
        # nothing may keep the caller's stdout/stderr open: both pipes reach EOF within a few seconds
        for stream in (proc.stdout, proc.stderr):
            fd = stream.fileno()
            t_end = time.monotonic() + 5
            while True:
                ready, _, _ = select.select([fd], [], [], max(0.0, t_end - time.monotonic()))
                assert ready, "a pipe is still held open 5 s after SIGKILL"
                if os.read(fd, 65536) == b"":
                    break
        t_end = time.monotonic() + 5
        while any(_running(k) for k in kids) and time.monotonic() < t_end:
            time.sleep(0.05)
        assert [k for k in kids if _running(k)] == []
    finally:  # never leave processes behind, also when the test fails
        for k in kids | (_descendants(proc.pid) if proc.poll() is None else set()):
            if _running(k):
                os.kill(k, signal.SIGKILL)
        proc.kill()
        proc.stdout.close()
        proc.stderr.close()
