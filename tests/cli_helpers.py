"""`main.py train` called in-process the way the run-folder and write-error tests need it."""

from __future__ import annotations

import json
from pathlib import Path

from engine.cli import main


class Sink:
    """A text stream that keeps what is written (not a terminal)."""

    def __init__(self):
        self.parts = []

    def write(self, text):
        self.parts.append(text)
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False

    def lines(self):
        return "".join(self.parts).strip().splitlines()


def train_cli(tmp_path: Path, out: Path, *extra: str, config: dict) -> tuple[int, list[str]]:
    """Exit code and stderr lines of `train --config <config> --out <out> <extra>`."""
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(config))
    err = Sink()
    code = main(["train", "--config", str(path), "--out", str(out), *extra], stdout=Sink(), stderr=err)
    return code, err.lines()
