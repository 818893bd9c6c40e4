"""distributed is imported only when a sweep starts: not by the command line, the sweep modules, or the window."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fresh(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_cli_and_sweep_modules_do_not_import_distributed():
    result = fresh(
        "import contextlib, io, json, sys\n"
        "import engine.cli, engine.sweep, engine.sweep_runner, engine.sweep_results, engine.sweep_prune\n"
        "import engine.sweep_worker, engine.sweep_cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    engine.cli.main(['sweep', '--help'])\n"
        "print(json.dumps({'dask': sorted(m for m in sys.modules if m.split('.')[0] in ('distributed', 'dask'))}))\n"
    )
    assert result == {"dask": []}
    # the check itself can fail: a sweep's start does import it
    result = fresh(
        "import json, sys\n"
        "from engine.sweep_runner import start_local_cluster\n"
        "import distributed\n"
        "print(json.dumps({'dask': 'distributed' in sys.modules}))\n"
    )
    assert result == {"dask": True}


def test_the_window_starts_without_distributed():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "main.py", "--quit-after-show"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)", proc.stderr, re.M)
    assert "PySide6" in {m.strip().split(".")[0] for m in imported}  # the window really started
    assert [m for m in imported if m.strip().split(".")[0] in ("distributed", "dask")] == []
