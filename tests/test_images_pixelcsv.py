"""CSV files of pixels (the Kaggle MNIST layout and header-less variants), written here."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.errors import DataError
from engine.images import load_source


def write_csv(path: Path, labels, pixels: np.ndarray, header: str | None = "kaggle", fmt="%d") -> None:
    rows = [",".join([str(lab)] + [fmt % v for v in row]) for lab, row in zip(labels, pixels)]
    n = pixels.shape[1]
    head = {"kaggle": "label," + ",".join(f"pixel{i}" for i in range(n)), None: None}[header]
    path.write_text("\n".join(([head] if head else []) + rows) + "\n")


def load(path, **kw):
    kw.setdefault("color", "gray")
    return load_source(str(path), use_cache=False, **kw)


def test_kaggle_mnist_layout_is_28x28_gray(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(6, 784))
    labels = [10, 2, 2, 10, 3, 3]
    write_csv(tmp_path / "train.csv", labels, pixels)
    sd = load(tmp_path / "train.csv", image_size=(28, 28))
    assert sd.classes == ["2", "3", "10"]  # integer labels sort by value
    np.testing.assert_array_equal(sd.y, [2, 0, 0, 2, 1, 1])
    assert sd.X.shape == (6, 28, 28, 1) and sd.X.dtype == np.uint8
    np.testing.assert_array_equal(sd.X[..., 0], pixels.reshape(6, 28, 28))
    assert sd.report["kind"] == "pixel_csv" and sd.report["skipped"] == []
    assert sd.report["original_size"]["mean"] == [28.0, 28.0]


def test_headerless_3k2_values_are_rgb_in_hwc_order(tmp_path):
    pixels = np.arange(2 * 12).reshape(2, 12) * 10  # 12 = 3·2²: a 2×2 RGB image, channels interleaved
    write_csv(tmp_path / "p.csv", ["cat", "dog"], pixels, header=None)
    sd = load(tmp_path / "p.csv", image_size=(2, 2), color="rgb")
    assert sd.classes == ["cat", "dog"]
    np.testing.assert_array_equal(sd.X[1], pixels[1].reshape(2, 2, 3))
    assert tuple(sd.X[0, 0, 1]) == (30, 40, 50)


def test_pixel_shape_is_used_and_checked(tmp_path):
    pixels = np.arange(3 * 12).reshape(3, 12)
    write_csv(tmp_path / "p.csv", [0, 1, 0], pixels)
    sd = load(tmp_path / "p.csv", image_size=(3, 4), pixel_shape=(3, 4, 1))
    np.testing.assert_array_equal(sd.X[2, :, :, 0], pixels[2].reshape(3, 4))
    with pytest.raises(
        DataError, match=r"p.csv: data.pixel_shape \[2, 2, 1\] holds 4 values, but each row has 12"
    ):
        load(tmp_path / "p.csv", pixel_shape=(2, 2, 1))
    write_csv(tmp_path / "q.csv", [0, 1], np.zeros((2, 10), int))
    with pytest.raises(
        DataError, match=r"q.csv: cannot infer the image shape from 10 pixel values .* set data.pixel_shape"
    ):
        load(tmp_path / "q.csv")


def test_malformed_rows_are_skipped_with_line_numbers(tmp_path):
    pixels = np.arange(8 * 16).reshape(8, 16) % 256
    write_csv(tmp_path / "m.csv", [0, 1, 0, 1, 0, 1, 0, 1], pixels)
    lines = (tmp_path / "m.csv").read_text().splitlines()
    lines[3] = lines[3] + ",7"  # line 4: one field too many
    lines[5] = lines[5].replace(",", ",x", 1)  # line 6: a value that is not a number
    lines[7] = "," + lines[7].split(",", 1)[1]  # line 8: no label
    (tmp_path / "m.csv").write_text("\r\n".join(lines) + "\r\n")  # Windows line ends too
    sd = load(tmp_path / "m.csv", image_size=(4, 4))
    assert sd.report["skipped"] == [
        {"file": "m.csv:4", "reason": "row has 18 fields, expected 17"},
        {"file": "m.csv:6", "reason": "a pixel value is not a number"},
        {"file": "m.csv:8", "reason": "no label"},
    ]
    kept = [0, 1, 3, 5, 7]  # data rows 0..7 are lines 2..9
    np.testing.assert_array_equal(sd.X[..., 0], pixels[kept].reshape(-1, 4, 4))
    np.testing.assert_array_equal(sd.y, [0, 1, 1, 1, 1])


def test_float_pixels_in_0_1(tmp_path):
    pixels = np.array([[0.0, 0.5, 1.0, 0.25], [1.0, 1.0, 0.0, 0.0]])
    write_csv(tmp_path / "f.csv", ["a", "b"], pixels, fmt="%.3f")
    sd = load(tmp_path / "f.csv", image_size=(2, 2))
    np.testing.assert_array_equal(sd.X[0, :, :, 0], [[0, 128], [255, 64]])


def test_folder_with_train_and_test_csv_is_presplit(tmp_path):
    write_csv(tmp_path / "train.csv", [0, 1, 1, 0], np.full((4, 4), 9))
    write_csv(tmp_path / "test.csv", [1, 0], np.full((2, 4), 200))
    sd = load(tmp_path, image_size=(2, 2))
    np.testing.assert_array_equal(sd.presplit["train"], [0, 1, 2, 3])
    np.testing.assert_array_equal(sd.presplit["test"], [4, 5])
    assert sd.report["parts"] == {
        "train": {"0": 2, "1": 2},
        "dev": {"0": 0, "1": 0},
        "test": {"0": 1, "1": 1},
    }
    # Kaggle's digit-recognizer test.csv has no label column: it is reported, not used
    (tmp_path / "test.csv").write_text("pixel0,pixel1,pixel2,pixel3\n1,2,3,4\n")
    sd = load(tmp_path, image_size=(2, 2))
    assert sd.presplit is None and len(sd.y) == 4
    assert sd.report["skipped"] == [{"file": "test.csv", "reason": "no label column, so not a test set"}]


def test_one_class_csv_is_refused(tmp_path):
    write_csv(tmp_path / "one.csv", [4, 4, 4], np.zeros((3, 4), int))
    with pytest.raises(DataError, match="one.csv: needs at least two classes, found 1"):
        load(tmp_path / "one.csv")


def test_data_command_takes_pixel_shape(tmp_path):
    write_csv(tmp_path / "p.csv", [0, 1], np.arange(24).reshape(2, 12))
    out, err = io.StringIO(), io.StringIO()
    argv = [
        "data",
        "--source",
        str(tmp_path / "p.csv"),
        "--image-size",
        "2",
        "6",
        "--pixel-shape",
        "2",
        "6",
        "1",
    ]
    assert main(argv + ["--color", "gray"], stdout=out, stderr=err) == 0, err.getvalue()
    report = json.loads(out.getvalue())
    assert report["image_shape"] == [2, 6, 1] and report["original_size"]["min"] == [2, 6]
    err = io.StringIO()
    assert main(argv[:-4] + ["--pixel-shape", "2", "6", "2"], stdout=io.StringIO(), stderr=err) == 2
    assert (
        err.getvalue()
        == "error: --pixel-shape: H and W must be at least 1 and C one of 1, 3, 4; got [2, 6, 2]\n"
    )
    err = io.StringIO()
    assert main(argv[:-4] + ["--pixel-shape", "5", "5", "1"], stdout=io.StringIO(), stderr=err) == 2
    assert "data.pixel_shape [5, 5, 1] holds 25 values, but each row has 12" in err.getvalue()
