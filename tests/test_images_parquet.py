"""Parquet sources as the Hugging Face Hub exports them (written here with pyarrow), plain
bytes and path columns, bad rows, and the message when pyarrow is missing."""

from __future__ import annotations

import builtins
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from engine.cli import main
from engine.errors import DataError
from engine.images import load_source
from engine.images.parquet import MISSING_PYARROW

ROOT = Path(__file__).resolve().parent.parent


def png_bytes(red: int, size=(4, 4)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (red, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


HF_META = {
    b"huggingface": json.dumps(
        {
            "info": {
                "features": {
                    "image": {"_type": "Image"},
                    "label": {"names": ["cat", "dog", "emu"], "_type": "ClassLabel"},
                }
            }
        }
    ).encode()
}


def hub_table(reds: list[int], labels: list[int | None], paths=None) -> pa.Table:
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    images = pa.array(
        [
            {"bytes": png_bytes(r) if r is not None else None, "path": (paths or {}).get(i)}
            for i, r in enumerate(reds)
        ],
        type=image_type,
    )
    table = pa.table({"image": images, "label": pa.array(labels, type=pa.int64())})
    return table.replace_schema_metadata(HF_META)


def load(path, tmp_path, **kw):
    return load_source(str(path), image_size=(4, 4), cache_dir=tmp_path / "cache", **kw)


def reds(sd) -> list[int]:
    return [int(v) for v in sd.X[:, 0, 0, 0]]


def test_hub_export_folder_with_classlabel_names_and_splits(tmp_path):
    data = tmp_path / "ds" / "data"
    data.mkdir(parents=True)
    pq.write_table(hub_table([10, 20, 30, 40], [0, 1, 2, 0]), data / "train-00000-of-00001.parquet")
    pq.write_table(hub_table([50, 60], [1, 2]), data / "test-00000-of-00001.parquet")
    pq.write_table(hub_table([70], [0]), data / "validation-00000-of-00001.parquet")
    sd = load(tmp_path / "ds", tmp_path)
    assert sd.classes == ["cat", "dog", "emu"]  # from the schema's ClassLabel, in its order
    assert sd.report["kind"] == "parquet"
    parts = {p: [reds(sd)[i] for i in idx] for p, idx in sd.presplit.items()}
    assert parts == {"train": [10, 20, 30, 40], "dev": [70], "test": [50, 60]}
    np.testing.assert_array_equal(sd.y, [0, 1, 2, 0, 0, 1, 2])  # rows: train, dev, test


def test_single_file_plain_bytes_and_string_labels(tmp_path):
    table = pa.table({"img": pa.array([png_bytes(5), png_bytes(6), png_bytes(7)]), "kind": ["b", "a", "b"]})
    pq.write_table(table, tmp_path / "one.parquet")
    sd = load(tmp_path / "one.parquet", tmp_path)
    assert sd.classes == ["a", "b"] and reds(sd) == [5, 6, 7]
    np.testing.assert_array_equal(sd.y, [1, 0, 1])
    assert sd.presplit is None


def test_bad_rows_are_skipped_with_row_numbers(tmp_path):
    table = hub_table([1, None, 3, 4, 5, 6], [0, 1, -1, None, 1, 1])
    # row 5's bytes are not an image
    rows = table.to_pylist()
    rows[5]["image"]["bytes"] = b"garbage"
    table = pa.Table.from_pylist(rows, schema=table.schema)
    pq.write_table(table, tmp_path / "t.parquet")
    sd = load(tmp_path / "t.parquet", tmp_path)
    assert reds(sd) == [1, 5]
    assert sd.report["skipped"] == [
        {"file": "t.parquet:row 1", "reason": "no image (neither bytes nor a path)"},
        {"file": "t.parquet:row 2", "reason": "label -1 is not one of the 3 ClassLabel names"},
        {"file": "t.parquet:row 3", "reason": "no label"},
        {"file": "t.parquet:row 5", "reason": "not a readable image (unknown or corrupt format)"},
    ]


def test_path_column_is_checked_and_not_cached(tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    Image.new("RGB", (4, 4), (11, 0, 0)).save(root / "a.png")
    Image.new("RGB", (4, 4), (22, 0, 0)).save(root / "b.png")
    Image.new("RGB", (4, 4), (99, 0, 0)).save(tmp_path / "outside.png")
    table = pa.table({"path": ["a.png", "b.png", "../outside.png", "/etc/passwd"], "label": [0, 1, 1, 0]})
    pq.write_table(table, root / "files.parquet")
    sd = load(root / "files.parquet", tmp_path)
    assert reds(sd) == [11, 22]
    assert sd.report["skipped"] == [
        {"file": "files.parquet:row 2", "reason": "path leads outside the folder (..) (../outside.png)"},
        {
            "file": "files.parquet:row 3",
            "reason": "absolute path refused (paths must be relative to the CSV's folder) (/etc/passwd)",
        },
    ]
    Image.new("RGB", (4, 4), (33, 0, 0)).save(root / "b.png")  # same size: only a fresh read sees it
    assert reds(load(root / "files.parquet", tmp_path)) == [11, 33]


def test_missing_columns_are_one_line_errors(tmp_path):
    pq.write_table(pa.table({"a": [1, 2], "b": [3, 4], "c": [5, 6]}), tmp_path / "x.parquet")
    with pytest.raises(DataError, match=r"x.parquet: no image column .*; found a, b, c"):
        load(tmp_path / "x.parquet", tmp_path)
    (tmp_path / "y.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match=r"y.parquet: not a readable Parquet file"):
        load(tmp_path / "y.parquet", tmp_path)


def test_without_pyarrow_the_message_names_the_extra(tmp_path, monkeypatch):
    pq.write_table(hub_table([1, 2], [0, 1]), tmp_path / "t.parquet")
    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    for mod in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(DataError) as info:
        load(tmp_path / "t.parquet", tmp_path)
    assert (
        str(info.value)
        == MISSING_PYARROW
        == 'Parquet files need the optional pyarrow package: pip install -e ".[parquet]"'
    )
    err = io.StringIO()
    assert main(["data", "--source", str(tmp_path / "t.parquet")], stdout=io.StringIO(), stderr=err) == 2
    assert err.getvalue() == f"error: {MISSING_PYARROW}\n"


def test_without_pyarrow_through_the_real_command_line(tmp_path):
    pq.write_table(hub_table([1, 2], [0, 1]), tmp_path / "t.parquet")
    blocker = tmp_path / "block" / "pyarrow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('pyarrow is not installed')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "block"), REGLAB_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "data", "--source", str(tmp_path / "t.parquet")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 2
    assert proc.stderr == f"error: {MISSING_PYARROW}\n"
