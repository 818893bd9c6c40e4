"""Folders described by a CSV manifest: Hugging Face imagefolder metadata.csv (with and
without split folders), the Kaggle train.csv + train/ layout, a CSV file as the source,
and the path checks (absolute, .., links out, missing, duplicates, malformed rows)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.config import from_dict
from engine.errors import DataError
from engine.images import load_source
from engine.prepare import prepare_data


def png(path: Path, red: int, fmt: str = "PNG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), (red, 0, 0)).save(path, format=fmt)


def load(path, tmp_path, **kw):
    return load_source(str(path), image_size=(4, 4), cache_dir=tmp_path / "cache", **kw)


def reds(sd) -> list[int]:
    return [int(v) for v in sd.X[:, 0, 0, 0]]


def test_hugging_face_metadata_csv_at_the_top(tmp_path):
    root = tmp_path / "hf"
    for i in range(4):
        png(root / "images" / f"{i}.png", 10 * i)
    (root / "metadata.csv").write_text(
        "file_name,label,caption\nimages/0.png,cat,a\nimages/1.png,dog,b\nimages/2.png,cat,c\nimages/3.png,dog,d\n"
    )
    sd = load(root, tmp_path)
    assert sd.classes == ["cat", "dog"] and sd.report["kind"] == "manifest"
    assert reds(sd) == [0, 10, 20, 30]
    np.testing.assert_array_equal(sd.y, [0, 1, 0, 1])
    assert sd.presplit is None and sd.report["skipped"] == []


def hf_splits(root: Path) -> None:
    """train/ (6 images), validation/ (2), test/ (2), each with its own metadata.csv."""
    for split, n, base in (("train", 6, 0), ("validation", 2, 100), ("test", 2, 200)):
        rows = ["file_name,label"]
        for i in range(n):
            png(root / split / f"{i}.png", base + i)
            rows.append(f"{i}.png,{'ab'[i % 2]}")
        (root / split / "metadata.csv").write_text("\n".join(rows) + "\n")


def test_hugging_face_split_folders_are_presplit_parts(tmp_path):
    hf_splits(tmp_path / "hf")
    sd = load(tmp_path / "hf", tmp_path)
    assert sd.classes == ["a", "b"]
    parts = {p: [reds(sd)[i] for i in idx] for p, idx in sd.presplit.items()}
    assert parts == {"train": [0, 1, 2, 3, 4, 5], "dev": [100, 101], "test": [200, 201]}
    # prepare uses the parts as given
    cfg = from_dict({"data": {"source": str(tmp_path / "hf"), "image_size": [4, 4]}})
    data = prepare_data(cfg)
    assert (len(data.train), len(data.dev), len(data.test)) == (6, 2, 2)
    assert data.split_indices is None


def test_kaggle_train_csv_next_to_train_folder(tmp_path):
    root = tmp_path / "kaggle"
    for i, name in enumerate(["a1", "b2", "c3", "d4"]):
        png(root / "train" / f"{name}.jpg", 40 * i, fmt="JPEG")
    png(root / "test" / "x.jpg", 7, fmt="JPEG")  # Kaggle's unlabelled test images: not read
    # ids listed with and without the extension (Aerial Cactus vs Dog Breed style)
    (root / "train.csv").write_text("id,has_cactus\na1.jpg,1\nb2,0\nc3.jpg,1\nd4,0\n")
    sd = load(root, tmp_path)
    assert sd.report["kind"] == "kaggle" and sd.classes == ["0", "1"]
    np.testing.assert_array_equal(sd.y, [1, 0, 1, 0])
    assert [abs(r - e) <= 3 for r, e in zip(reds(sd), [0, 40, 80, 120])] == [True] * 4  # JPEG rounding
    assert sd.report["skipped"] == []


def test_a_csv_file_as_the_source(tmp_path):
    root = tmp_path / "d"
    png(root / "x" / "1.png", 1)
    png(root / "x" / "2.png", 2)
    (root / "labels.csv").write_text("path,class\nx/1.png,no\nx/2.png,yes\n")
    sd = load(root / "labels.csv", tmp_path)
    assert sd.classes == ["no", "yes"] and reds(sd) == [1, 2]


def test_paths_are_checked_and_bad_rows_reported(tmp_path):
    root = tmp_path / "hf"
    outside = tmp_path / "secret.png"
    png(outside, 99)
    for i in range(3):
        png(root / f"{i}.png", i)
    os.symlink(outside, root / "link.png")
    (root / "metadata.csv").write_text(
        "\n".join(
            [
                "file_name,label",
                "0.png,a",  # line 2
                f"{outside},a",  # line 3: absolute
                "../secret.png,a",  # line 4: escapes with ..
                "sub/../../secret.png,b",  # line 5: escapes after normalizing
                "link.png,b",  # line 6: a link leading outside
                "missing.png,b",  # line 7
                "1.png,b",  # line 8
                "0.png,b",  # line 9: listed twice
                "2.png",  # line 10: one field
                "2.png,",  # line 11: no label
                "2.png,b",  # line 12
            ]
        )
        + "\n"
    )
    sd = load(root, tmp_path)
    assert reds(sd) == [0, 1, 2] and sd.classes == ["a", "b"]
    real_outside = os.path.realpath(outside)
    assert sd.report["skipped"] == [
        {
            "file": str(outside),
            "reason": "absolute path refused (paths must be relative to the CSV's folder) (metadata.csv line 3)",
        },
        {"file": "../secret.png", "reason": "path leads outside the folder (..) (metadata.csv line 4)"},
        {
            "file": "sub/../../secret.png",
            "reason": "path leads outside the folder (..) (metadata.csv line 5)",
        },
        {
            "file": "link.png",
            "reason": f"symbolic link leads outside the chosen folder (to {real_outside}) (metadata.csv line 6)",
        },
        {"file": "missing.png", "reason": "listed file does not exist (metadata.csv line 7)"},
        {"file": "0.png", "reason": "listed twice (first at metadata.csv line 2; metadata.csv line 9)"},
        {"file": "metadata.csv:10", "reason": "row has 1 fields, the header has 2"},
        {"file": "2.png", "reason": "no label (metadata.csv line 11)"},
    ]


def test_unreadable_listed_image_is_reported_by_the_decoder(tmp_path):
    root = tmp_path / "hf"
    png(root / "a.png", 1)
    png(root / "b.png", 2)
    (root / "c.png").write_bytes(b"not an image")
    (root / "metadata.csv").write_text("file_name,label\na.png,x\nb.png,y\nc.png,y\n")
    sd = load(root, tmp_path)
    assert sd.report["skipped"] == [
        {"file": "c.png", "reason": "not a readable image (unknown or corrupt format)"}
    ]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "name,label\na.png,x\n",
            r"metadata.csv: no file column \(expected one of file_name, .*\); found name, label",
        ),
        (
            "file_name,width,height\na.png,1,2\n",
            r"metadata.csv: no label column .*; found file_name, width, height",
        ),
        (
            "file_name,label\na.png,x\nb.png,x\n",
            r"the CSV's labels name 1 class \(x\); a classifier needs two",
        ),
        (
            "file_name,label\nnope.png,x\n",
            r"the CSV lists no usable images; first skipped: nope.png: listed file does not",
        ),
        ("", r"metadata.csv: empty CSV"),
    ],
)
def test_unusable_manifests_are_one_line_errors(tmp_path, text, needle):
    root = tmp_path / "hf"
    png(root / "a.png", 1)
    png(root / "b.png", 2)
    (root / "metadata.csv").write_text(text)
    with pytest.raises(DataError, match=needle):
        load(root, tmp_path)


def test_cache_follows_the_manifest_and_its_images(tmp_path):
    root = tmp_path / "hf"
    png(root / "a.png", 1)
    png(root / "b.png", 2)
    (root / "metadata.csv").write_text("file_name,label\na.png,x\nb.png,y\n")
    assert load(root, tmp_path).classes == ["x", "y"]
    (root / "metadata.csv").write_text("file_name,label\na.png,p\nb.png,q\n")
    assert load(root, tmp_path).classes == ["p", "q"]
    png(root / "b.png", 77)
    os.utime(root / "b.png", ns=(1, 1))  # a different mtime, whatever the clock's resolution
    assert reds(load(root, tmp_path)) == [1, 77]
