"""Names from files are printed with control characters escaped: the helper, the data
report and JSON, and the one-line error on stderr."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from engine.cli import main
from engine.text import printable

ROOT = Path(__file__).resolve().parent.parent


def test_printable_escapes_controls_and_keeps_text():
    assert printable("cats") == "cats"
    assert printable("chats élégants 猫") == "chats élégants 猫"
    assert printable("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert printable("line\nbreak\ttab\r") == "line\\nbreak\\ttab\\r"
    assert printable("\x7f\x85") == "\\x7f\\x85"  # DEL and a C1 control
    assert printable("abc\u202egnp.exe") == "abc\\u202egnp.exe"  # right-to-left override
    assert printable("zero\u200bwidth") == "zero\\u200bwidth"
    assert printable("para\u2029sep") == "para\\u2029sep"
    assert printable(os.fsdecode(b"bad\xffbyte")) == "bad\\xffbyte"  # undecodable byte
    assert printable("no\u00a0break") == "no\u00a0break"  # a visible space stays
    assert printable(Path("x/y")) == "x/y"


def make_folder(root: Path) -> None:
    for cls, red in (("plain", 10), ("evil\x1b[2J", 20)):
        d = root / cls
        d.mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (4, 4), (red + i, 0, 0)).save(d / f"{i}.png")
    (root / "plain" / "bad\nname\x07.png").write_bytes(b"not a png")


def test_class_and_file_names_are_escaped_in_the_data_report(tmp_path):
    make_folder(tmp_path / "src")
    out = io.StringIO()
    rc = main(
        ["data", "--source", str(tmp_path / "src"), "--image-size", "4", "4"],
        stdout=out,
        stderr=io.StringIO(),
    )
    assert rc == 0
    text = out.getvalue()
    assert "\x1b" not in text and "\\u001b" not in text  # escaped by us, not by json
    report = json.loads(text)
    assert report["classes"] == ["evil\\x1b[2J", "plain"]
    assert report["counts"] == {"evil\\x1b[2J": 2, "plain": 2}
    assert report["skipped"] == [
        {"file": "plain/bad\\nname\\x07.png", "reason": "not a readable image (unknown or corrupt format)"}
    ]


def test_error_line_escapes_names_through_the_real_command_line(tmp_path):
    root = tmp_path / "src"
    (root / "ok").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(root / "ok" / "a.png")
    (root / os.fsdecode(b"empty\x1b]0;pwned\x07\xff")).mkdir()  # holds no images
    proc = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "data", "--source", str(root)],
        capture_output=True,
        timeout=120,
        env=dict(os.environ, REGLAB_CACHE_DIR=str(tmp_path / "cache")),
    )
    assert proc.returncode == 2
    line = proc.stderr.decode("utf-8")
    assert line == f"error: {root}/empty\\x1b]0;pwned\\x07\\xff: class folder holds no images\n"
