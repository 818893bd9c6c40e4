"""Run ``engine.cli.main`` on several inputs inside one fresh interpreter and measure how much
each raised the peak resident memory (``ru_maxrss``) above a warmed-up baseline.

The baseline is taken after a first, genuine command, so imports and first-use costs are
not counted; what remains is what the refused input itself made the process touch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_PROBE = r"""
import io, json, resource, sys
sys.path.insert(0, sys.argv[1])
from engine.cli import main
spec = json.loads(sys.argv[2])
out = {"warm": main(spec.pop("warm"), stdout=io.StringIO(), stderr=io.StringIO())}
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for name, argv in spec.items():
    err = io.StringIO()
    rc = main(argv, stdout=io.StringIO(), stderr=err)
    grow = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    out[name] = {"rc": rc, "stderr": err.getvalue(), "grow_kb": grow}
print(json.dumps(out))
"""


def probe(warm: list[str], cases: dict[str, list[str]], cwd: Path) -> dict[str, dict]:
    """``{name: {"rc", "stderr", "grow_kb"}}`` for each argv in ``cases`` (run in order)."""
    env = dict(os.environ, REGLAB_CACHE_DIR=str(cwd / "probe-cache"))
    spec = {"warm": warm, **cases}
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(ROOT), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result.pop("warm") == 0
    return result
