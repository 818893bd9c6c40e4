"""engine.jsonfile: every kind of bad JSON file becomes one line naming the file, nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine import jsonfile
from engine.config import ConfigError, load_config
from engine.errors import DataError
from engine.jsonfile import parse_json, read_json_file

ROOT = Path(__file__).resolve().parent.parent


def read(path, max_bytes=1 << 20):
    return read_json_file(path, what="config file", max_bytes=max_bytes)


def write(tmp_path, name, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def refused(path, *needles, max_bytes=1 << 20):
    with pytest.raises(DataError) as info:
        read(path, max_bytes)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)), message
    for needle in needles:
        assert needle in message, message
    return message


def test_plain_and_bom_utf8_are_read(tmp_path):
    value = {"a": [1, 2.5, None, True, "é"]}
    assert read(write(tmp_path, "plain.json", '{"a": [1, 2.5, null, true, "é"]}'.encode())) == value
    assert (
        read(write(tmp_path, "bom.json", b"\xef\xbb\xbf" + '{"a": [1, 2.5, null, true, "é"]}'.encode()))
        == value
    )


@pytest.mark.parametrize(
    "encoding, needle",
    [
        ("utf-16", "is UTF-16 text; save it as UTF-8"),  # with a byte-order mark (Notepad's "Unicode")
        ("utf-16-le", "looks like UTF-16 text; save it as UTF-8"),
        ("utf-16-be", "looks like UTF-16 text; save it as UTF-8"),
        ("utf-32", "is UTF-32 text; save it as UTF-8"),
    ],
)
def test_utf16_and_utf32_are_named(tmp_path, encoding, needle):
    refused(write(tmp_path, "cfg.json", '{"training": {"epochs": 3}}'.encode(encoding)), needle)


def test_other_encodings_are_named_with_the_line(tmp_path):
    path = write(tmp_path, "latin.json", '{\n"a": "café"}'.encode("latin-1"))
    refused(path, "not UTF-8 text", "byte 0xe9 on line 2", "save it as UTF-8")


@pytest.mark.parametrize(
    "text, needle",
    [
        ('{"lr": NaN}', "NaN is not a JSON number"),
        ('{"lr": Infinity}', "Infinity is not a JSON number"),
        ('{"lr": -Infinity}', "-Infinity is not a JSON number"),
        ('{"lr": 1e999}', "the number 1e999 is out of range"),
        ('{"n": 9223372036854775808}', "the integer 9223372036854775808 is out of range"),
        ('{"n": -9223372036854775808}', "out of range"),
        ('{"n": ' + "7" * 5000 + "}", "(5000 digits) is out of range"),  # beyond Python's int digit limit
        ('{"a": 1, "a": 2}', "the key 'a' appears twice"),
        ('{"a": [1, 2', "Expecting"),
        ("  \n ", "is empty"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),  # RecursionError inside the parser
        ("[" * 65 + "]" * 65, "nested more than 64 levels deep"),  # deeper than any RegLab file
    ],
)
def test_bad_json_is_one_line_naming_the_file(tmp_path, text, needle):
    refused(write(tmp_path, "bad.json", text.encode()), needle)


def test_limits_that_are_still_fine(tmp_path):
    ok = (
        '{"n": 9223372036854775807, "m": -9223372036854775807, "x": 1.5e308, "d": '
        + "[" * 63
        + "]" * 63
        + "}"
    )
    value = read(write(tmp_path, "ok.json", ok.encode()))
    assert value["n"] == 2**63 - 1 and value["m"] == -(2**63 - 1) and value["x"] == 1.5e308


def test_binary_garbage_and_nul_bytes(tmp_path):
    refused(write(tmp_path, "garbage.json", bytes(range(256)) * 4), "not UTF-8 text")
    refused(write(tmp_path, "nul.json", b'{"a"\x00: 1}'), "not valid JSON")


def test_size_is_bounded_for_files_devices_and_growing_files(tmp_path):
    big = write(tmp_path, "big.json", b"[" + b"1," * 600 + b"1]")
    refused(big, "larger than 1 kB", max_bytes=1024)
    assert len(read(big, max_bytes=2000)) == 601
    # /dev/zero never ends: the read must stop at max_bytes + 1 bytes
    with pytest.raises(DataError, match="/dev/zero: the config file is larger than 1 kB"):
        read("/dev/zero", max_bytes=1024)


def test_missing_folder_and_unreadable(tmp_path):
    refused(tmp_path / "missing.json", "no such config file")
    refused(tmp_path, "is a folder, not a config file")
    loop = tmp_path / "loop.json"
    loop.symlink_to(loop)
    refused(loop, "cannot read the config file")


def test_a_fifo_without_writer_is_refused_instead_of_hanging(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonfile, "STREAM_TIMEOUT", 0.5)
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    with pytest.raises(DataError) as info:
        read(fifo)
    assert time.monotonic() - t0 < 5
    assert str(fifo) in str(info.value)


def test_a_fifo_with_a_writer_is_read(tmp_path):
    """`--config <(generate-config)` hands RegLab a pipe: it must work."""
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)

    def writer():
        with open(fifo, "wb") as fh:  # blocks until the reader has opened the pipe
            fh.write(b'{"a": ')
            fh.flush()
            time.sleep(0.2)
            fh.write(b"[1, 2]}")

    t = threading.Thread(target=writer)
    t.start()
    try:
        deadline = time.monotonic() + 5
        while True:  # the non-blocking open may come before the writer's open; retry on "empty"
            try:
                assert read(fifo) == {"a": [1, 2]}
                break
            except DataError as exc:
                assert "empty" in str(exc) and time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        t.join(5)


def test_parse_json_names_where(tmp_path):
    with pytest.raises(DataError, match=r"^metrics.jsonl: line 3: not valid JSON \(NaN"):
        parse_json('{"a": NaN}', where="metrics.jsonl: line 3")


def test_load_config_reads_through_jsonfile(tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_bytes('{"training": {"epochs": 3}}'.encode("utf-16"))
    with pytest.raises(ConfigError, match=r"cfg.json: the config file is UTF-16 text; save it as UTF-8"):
        load_config(cfg)
    cfg.write_bytes(b'\xef\xbb\xbf{"training": {"epochs": 3}}')
    assert load_config(cfg).training.epochs == 3
    cfg.write_text('{"training": {"epochs": ' + "9" * 5000 + "}}")
    with pytest.raises(ConfigError, match="out of range"):
        load_config(cfg)


@pytest.mark.parametrize(
    "content, needle",
    [
        (b'{"training": {"epochs": 1e999}}', "out of range"),
        (("[" * 50_000 + "]" * 50_000).encode(), "nested too deeply"),
        ('{"training": {"epochs": 3}}'.encode("utf-16"), "UTF-16"),
        (b'{"optimizer": {"lr": NaN}}', "NaN is not a JSON number"),
    ],
)
def test_cli_bad_config_files_exit_2_with_one_line(tmp_path, content, needle):
    cfg = tmp_path / "cfg.json"
    cfg.write_bytes(content)
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "main.py"),
            "train",
            "--config",
            str(cfg),
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert str(cfg) in lines[0] and needle in lines[0]
    assert not (tmp_path / "run").exists()


def test_cli_config_from_dev_zero_exits_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "gradcheck", "--config", "/dev/zero"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert (
        proc.returncode == 2
        and proc.stderr.strip() == "error: /dev/zero: the config file is larger than 1 MB"
    )
