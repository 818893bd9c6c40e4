"""builtin:shapes, source statistics, the dev/test comparison, previews and the sample folder."""

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.dataset import SourceData
from engine.errors import DataError
from engine.images import compare_sources, load_source, preview_images, source_statistics
from engine.images.shapes import SHAPE_NAMES, make_shapes

ROOT = Path(__file__).resolve().parent.parent


def test_shapes_deterministic_per_seed_and_well_formed():
    a = load_source("builtin:shapes", n_samples=90, noise=0.2, seed=3)
    b = load_source("builtin:shapes", n_samples=90, noise=0.2, seed=3)
    c = load_source("builtin:shapes", n_samples=90, noise=0.2, seed=4)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)
    assert a.X.shape == (90, 32, 32, 3) and a.X.dtype == np.uint8 and a.y.dtype == np.int64
    assert a.classes == ["circle", "square", "triangle"]
    np.testing.assert_array_equal(np.bincount(a.y), [30, 30, 30])
    assert a.report["counts"] == {"circle": 30, "square": 30, "triangle": 30}
    six = load_source("builtin:shapes", n_samples=60, n_classes=6, image_size=(24, 20), color="gray")
    assert six.X.shape == (60, 24, 20, 1) and six.classes == list(SHAPE_NAMES[:6])
    with pytest.raises(DataError, match="n_classes"):
        load_source("builtin:shapes", n_classes=len(SHAPE_NAMES) + 1)


def test_shapes_geometry_without_noise():
    """noise 0: two colours blended at the edge; a circle's coverage sums to π r²."""
    sd = make_shapes(40, 0.0, np.random.default_rng(1), n_classes=2, image_size=(64, 64))
    for img in sd.X[sd.y == 0].astype(np.float64):  # circles
        bg, fg = img[0, 0], img[32, 32]  # corner is background, centre is inside
        d = fg - bg
        coverage = ((img - bg) @ d) / (d @ d)
        assert coverage.min() > -0.02 and coverage.max() < 1.02  # nothing but the two colours
        area = coverage.sum() / 64**2
        # radius 0.25..0.38 of the side: π r² between 0.196 and 0.454 of the image
        assert np.pi * 0.25**2 - 0.01 < area < np.pi * 0.38**2 + 0.01
        edge = ((coverage > 0.05) & (coverage < 0.95)).mean()
        assert edge < 0.1  # antialiased over about one pixel, not blurred


def test_shapes_generation_is_fast():
    make_shapes(100, 0.2, np.random.default_rng(0))  # warm up
    t = time.perf_counter()
    make_shapes(3000, 0.2, np.random.default_rng(0))
    assert time.perf_counter() - t < 2.0  # ~0.1-0.3 s; generous for a loaded CI machine


def test_shapes_are_learnable_but_not_trivially():
    """Nearest-class-mean on raw pixels: clearly above chance (signal) yet far from perfect."""
    sd = make_shapes(900, 0.2, np.random.default_rng(0))
    X = sd.X.reshape(len(sd.X), -1).astype(np.float64) / 255
    X -= X.mean(axis=1, keepdims=True)  # remove per-image colour offset
    tr, te = np.arange(600), np.arange(600, 900)
    means = np.stack([X[tr][sd.y[tr] == k].mean(axis=0) for k in range(3)])
    pred = np.argmin(((X[te, None, :] - means[None]) ** 2).sum(-1), axis=1)
    acc = (pred == sd.y[te]).mean()
    assert 0.4 < acc < 0.95, acc


def sd_from(X, y, name, report=None):
    return SourceData(X=X, y=np.asarray(y, dtype=np.int64), classes=["a", "b"], source=name, report=report)


def test_source_statistics_by_hand():
    X = np.zeros((2, 2, 2, 3), dtype=np.uint8)
    X[..., 0] = 255  # red
    X[1, ..., 2] = 51  # second image adds blue 0.2
    st = source_statistics(
        sd_from(X, [0, 1], "s", {"original_size": {"mean": [5.0, 6.0], "min": [5, 6], "max": [5, 6]}})
    )
    assert st["mean_color"] == pytest.approx([1.0, 0.0, 0.1], abs=1e-4)
    assert st["std_color"] == pytest.approx([0.0, 0.0, 0.1], abs=1e-4)
    assert st["brightness"] == pytest.approx(0.299 + 0.114 * 0.1, abs=1e-4)
    assert st["counts"] == {"a": 1, "b": 1} and st["original_size"]["mean"] == [5.0, 6.0]


def test_compare_sources_warns_only_for_dev_test_mismatch():
    rng = np.random.default_rng(0)
    dark = rng.integers(0, 60, (20, 4, 4, 3), dtype=np.uint8)
    dark2 = rng.integers(0, 60, (20, 4, 4, 3), dtype=np.uint8)
    light = rng.integers(180, 256, (20, 4, 4, 3), dtype=np.uint8)
    y = np.arange(20) % 2
    same = compare_sources(
        {"main": sd_from(dark, y, "m"), "dev": sd_from(light, y, "d"), "test": sd_from(light, y, "t")}
    )
    assert same["warning"] is None and "differs from dev" in same["note"]  # train may differ
    diff = compare_sources(
        {"main": sd_from(dark, y, "m"), "dev": sd_from(dark2, y, "d"), "test": sd_from(light, y, "t")}
    )
    assert "dev (d) and test (t)" in diff["warning"] and "same distribution" in diff["warning"]
    assert set(diff["sources"]) == {"main", "dev", "test"}
    # a separate test source against dev taken from main
    only_test = compare_sources({"main": sd_from(dark, y, "m"), "test": sd_from(light, y, "t")})
    assert only_test["warning"] is not None
    assert compare_sources({"main": sd_from(dark, y, "m")})["warning"] is None


def test_compare_sources_same_classes_in_another_order_are_not_a_difference():
    rng = np.random.default_rng(3)
    X = rng.integers(0, 256, (20, 4, 4, 3), dtype=np.uint8)
    y = np.arange(20) % 2
    main = sd_from(X, y, "m")
    swapped = SourceData(X=X, y=1 - y, classes=["b", "a"], source="t", report=None)
    assert compare_sources({"main": main, "dev": main, "test": swapped})["warning"] is None
    other = SourceData(X=X, y=y, classes=["a", "c"], source="t", report=None)
    assert "different classes" in compare_sources({"main": main, "dev": main, "test": other})["warning"]


def test_preview_images_per_class():
    sd = load_source("builtin:shapes", n_samples=30, seed=1)
    prev = preview_images(sd, 4, np.random.default_rng(0))
    assert list(prev) == sd.classes
    for k, name in enumerate(sd.classes):
        assert prev[name].shape == (4, 32, 32, 3) and prev[name].dtype == np.uint8
        # every thumbnail is an image of that class
        members = sd.X[sd.y == k]
        assert all(any(np.array_equal(t, m) for m in members) for t in prev[name])
    few = preview_images(sd, 50, np.random.default_rng(0))
    assert len(few["circle"]) == 10
    feats = SourceData(X=np.zeros((4, 2)), y=np.array([0, 1, 0, 1]), classes=["a", "b"], source="v")
    assert preview_images(feats, 3, np.random.default_rng(0)) == {}


def test_sample_assets_folder_is_a_small_class_folder():
    folder = ROOT / "assets" / "sample_shapes"
    files = sorted(folder.rglob("*.png"))
    assert sum(f.stat().st_size for f in files) < 2_000_000
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["circle", "square", "triangle"]
    assert len(files) == 120
    with Image.open(files[0]) as im:
        assert im.size == (32, 32) and im.mode == "RGB"
    sd = load_source(str(folder), image_size=(32, 32), use_cache=False)
    assert sd.report["counts"] == {"circle": 40, "square": 40, "triangle": 40} and sd.report["skipped"] == []
