"""Class folders, pre-split folders, refusals, the disk cache, progress, cancel and the pool."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import Cancelled, DataError
from engine.images import data_report, load_source
from engine.images.loader import decode_files, start_method


def write_class_folder(root: Path, spec: dict[str, int], size=(8, 8)) -> None:
    """One solid-colour PNG per image; red channel = 10·class + image number."""
    for k, (cls, n) in enumerate(spec.items()):
        d = root / cls
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("RGB", size, (10 * k + i, 50, 200)).save(d / f"img{i:03d}.png")


def test_class_folder_labels_follow_sorted_names(tmp_path):
    write_class_folder(tmp_path / "src", {"zebra": 2, "ant": 3, "Mole": 1})
    sd = load_source(str(tmp_path / "src"), image_size=(4, 4), color="gray", cache_dir=tmp_path / "c")
    assert sd.classes == ["Mole", "ant", "zebra"]
    assert sd.X.shape == (6, 4, 4, 1)
    np.testing.assert_array_equal(sd.y, [0, 1, 1, 1, 2, 2])
    assert sd.presplit is None
    assert sd.report["counts"] == {"Mole": 1, "ant": 3, "zebra": 2}
    # gray of (r, 50, 200): 0.299 r + 0.587·50 + 0.114·200; "ant" was written second (k=1, i=0 -> r=10)
    assert abs(int(sd.X[1, 0, 0, 0]) - (0.299 * 10 + 0.587 * 50 + 0.114 * 200)) <= 1


@pytest.mark.parametrize(
    "layout, message",
    [
        ({"a": 2, "empty": 0}, r"empty: class folder holds no images"),
        ({"only": 3}, r"needs at least two class folders, found 1: only"),
        ({}, r"no class sub-folders found"),
        ({"a": 0, "b": 0}, r"no images found"),
    ],
)
def test_unusable_folders_raise_data_error_naming_the_folder(tmp_path, layout, message):
    root = tmp_path / "bad_source"
    root.mkdir()
    for cls, n in layout.items():
        (root / cls).mkdir()
        write_class_folder(root, {cls: n}) if n else None
        (root / cls / "readme.txt").write_text("not an image")
    with pytest.raises(DataError, match=message) as info:
        load_source(str(root), cache_dir=tmp_path / "c")
    assert "bad_source" in str(info.value) and "\n" not in str(info.value)


def test_missing_source(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_source(str(tmp_path / "nope"))
    (tmp_path / "x.txt").write_text("1,2\n")
    with pytest.raises(
        DataError, match=r"x.txt: a file source must be an .npz .*, a .csv .* or a .parquet file"
    ):
        load_source(str(tmp_path / "x.txt"))


def test_presplit_folders_used_as_given(tmp_path):
    root = tmp_path / "pre"
    write_class_folder(root / "train", {"a": 3, "b": 2, "c": 2})
    write_class_folder(root / "dev", {"a": 1, "b": 2})
    write_class_folder(root / "test", {"c": 1, "a": 1})
    sd = load_source(str(root), image_size=(8, 8), cache_dir=tmp_path / "cache")
    assert sd.classes == ["a", "b", "c"]
    assert len(sd.y) == 7 + 3 + 2
    p = sd.presplit
    assert [len(p["train"]), len(p["dev"]), len(p["test"])] == [7, 3, 2]
    np.testing.assert_array_equal(np.sort(np.concatenate([p["train"], p["dev"], p["test"]])), np.arange(12))
    np.testing.assert_array_equal(np.bincount(sd.y[p["train"]], minlength=3), [3, 2, 2])
    np.testing.assert_array_equal(np.bincount(sd.y[p["test"]], minlength=3), [1, 0, 1])
    assert sd.report["parts"] == {
        "train": {"a": 3, "b": 2, "c": 2},
        "dev": {"a": 1, "b": 2, "c": 0},
        "test": {"a": 1, "b": 0, "c": 1},
    }
    # a cached reload keeps the parts and the report
    again = load_source(str(root), image_size=(8, 8), cache_dir=tmp_path / "cache")
    assert again.report == sd.report
    for part in ("train", "dev", "test"):
        np.testing.assert_array_equal(again.presplit[part], p[part])
    # without test/ the test part is empty
    root2 = tmp_path / "pre2"
    write_class_folder(root2 / "train", {"a": 2, "b": 2})
    write_class_folder(root2 / "dev", {"a": 1, "b": 1})
    sd2 = load_source(str(root2), image_size=(8, 8), cache_dir=tmp_path / "cache")
    assert len(sd2.presplit["test"]) == 0 and len(sd2.presplit["dev"]) == 2


def test_presplit_class_missing_from_train_is_an_error(tmp_path):
    root = tmp_path / "pre"
    write_class_folder(root / "train", {"a": 2, "b": 2})
    write_class_folder(root / "test", {"a": 1, "zzz": 1})
    with pytest.raises(DataError, match="missing from train: zzz"):
        load_source(str(root), cache_dir=tmp_path / "cache")
    root3 = tmp_path / "pre3"
    write_class_folder(root3 / "dev", {"a": 2, "b": 2})
    with pytest.raises(DataError, match="no train/ folder"):
        load_source(str(root3), cache_dir=tmp_path / "cache")


def test_cache_hit_skips_decoding_and_is_invalidated_by_changes(tmp_path):
    root = tmp_path / "src"
    write_class_folder(root, {"a": 3, "b": 3})
    (root / "b" / "broken.png").write_bytes(b"")
    cache = tmp_path / "cache"
    first = load_source(str(root), image_size=(8, 8), cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 1
    # overwrite a file with garbage of the same size and put its mtime back: the cache,
    # keyed by size and mtime, must serve the old pixels, which proves nothing is decoded
    victim = root / "a" / "img000.png"
    st = victim.stat()
    victim.write_bytes(b"x" * st.st_size)
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = load_source(str(root), image_size=(8, 8), cache_dir=cache)
    np.testing.assert_array_equal(second.X, first.X)
    np.testing.assert_array_equal(second.y, first.y)
    assert second.report == first.report and second.report["skipped"] == [
        {"file": "b/broken.png", "reason": "empty file (0 bytes)"}
    ]
    # other decode settings are a different entry
    gray = load_source(str(root), image_size=(8, 8), color="gray", cache_dir=cache)
    assert gray.X.shape[-1] == 1 and gray.report["skipped"][0]["file"] == "a/img000.png"
    # touching the file invalidates: now it is read (and found broken)
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = load_source(str(root), image_size=(8, 8), cache_dir=cache)
    assert len(third.y) == 5 and {s["file"] for s in third.report["skipped"]} == {
        "a/img000.png",
        "b/broken.png",
    }
    # adding a file invalidates too
    Image.new("RGB", (8, 8), (9, 9, 9)).save(root / "b" / "new.png")
    fourth = load_source(str(root), image_size=(8, 8), cache_dir=cache)
    assert len(fourth.y) == 6 and fourth.report["counts"] == {"a": 2, "b": 4}


def test_corrupt_cache_entry_is_ignored_and_rewritten(tmp_path):
    root = tmp_path / "src"
    write_class_folder(root, {"a": 2, "b": 2})
    cache = tmp_path / "cache"
    first = load_source(str(root), image_size=(8, 8), cache_dir=cache)
    (entry,) = cache.glob("*.npz")
    entry.write_bytes(b"PK\x03\x04 garbage")
    again = load_source(str(root), image_size=(8, 8), cache_dir=cache)
    np.testing.assert_array_equal(again.X, first.X)
    with np.load(entry, allow_pickle=False) as z:  # rewritten as valid metadata
        assert tuple(z["shape"]) == first.X.shape and z["y"].tolist() == first.y.tolist()
        data_file = cache / str(z["data_file"])
    np.testing.assert_array_equal(np.load(data_file, allow_pickle=False), first.X)


def test_cache_folder_from_environment(tmp_path, monkeypatch):
    root = tmp_path / "src"
    write_class_folder(root, {"a": 2, "b": 2})
    monkeypatch.setenv("REGLAB_CACHE_DIR", str(tmp_path / "envcache"))
    load_source(str(root), image_size=(8, 8))
    assert len(list((tmp_path / "envcache").glob("images-*.npz"))) == 1


def test_second_load_comes_from_the_cache_without_decoding(tmp_path, monkeypatch):
    # how much faster that is, is measured in benchmarks/data_throughput.py, not asserted here
    import engine.images.sources as sources_mod

    root = tmp_path / "src"
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(150):
            Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(root / cls / f"{i}.png")
    cache = tmp_path / "cache"
    first = load_source(str(root), image_size=(32, 32), cache_dir=cache)

    def no_decoding(*args, **kwargs):
        raise AssertionError("the second load decoded images instead of reading the cache")

    monkeypatch.setattr(sources_mod, "decode_files", no_decoding)
    second = load_source(str(root), image_size=(32, 32), cache_dir=cache)
    np.testing.assert_array_equal(first.X, second.X)
    np.testing.assert_array_equal(first.y, second.y)


def test_progress_reaches_total_and_cancel_raises(tmp_path):
    root = tmp_path / "src"
    write_class_folder(root, {"a": 30, "b": 30})
    calls = []
    load_source(str(root), image_size=(8, 8), progress=lambda d, t: calls.append((d, t)), use_cache=False)
    assert calls[-1] == (60, 60) and len(calls) >= 2
    assert all(b[0] > a[0] for a, b in zip(calls, calls[1:]))
    seen = []
    with pytest.raises(Cancelled):
        load_source(
            str(root),
            image_size=(8, 8),
            progress=lambda d, t: seen.append(d),
            cancel=lambda: len(seen) >= 1,
            use_cache=False,
        )
    assert seen and seen[-1] < 60  # stopped between chunks


def test_process_pool_matches_serial_and_cancels(tmp_path):
    root = tmp_path / "src"
    write_class_folder(root, {"a": 40, "b": 40}, size=(12, 12))
    (root / "b" / "bad.png").write_bytes(b"not a png")
    paths = sorted(str(p) for p in root.rglob("*.png"))
    serial = decode_files(paths, (8, 8), "rgb", mode="serial")
    pooled = decode_files(paths, (8, 8), "rgb", mode="process", workers=2, chunk_size=16)
    threaded = decode_files(paths, (8, 8), "rgb", mode="thread", workers=2, chunk_size=16)
    for other in (pooled, threaded):
        np.testing.assert_array_equal(other.X, serial.X)
        np.testing.assert_array_equal(other.ok, serial.ok)
        assert other.failed == serial.failed
    assert len(serial.failed) == 1 and serial.X.shape == (80, 8, 8, 3)
    assert start_method() in ("forkserver", "spawn")
    done = []
    with pytest.raises(Cancelled):
        decode_files(
            paths,
            (8, 8),
            "rgb",
            mode="process",
            workers=2,
            chunk_size=8,
            progress=lambda d, t: done.append(d),
            cancel=lambda: len(done) >= 2,
        )
    assert done[-1] < len(paths)


def test_data_report_keys(tmp_path):
    root = tmp_path / "src"
    write_class_folder(root, {"a": 2, "b": 1}, size=(10, 6))
    rep = data_report(str(root), image_size=(8, 8), color="rgb")
    assert rep["classes"] == ["a", "b"] and rep["counts"] == {"a": 2, "b": 1}
    assert rep["n_images"] == 3 and rep["image_shape"] == [8, 8, 3] and rep["skipped"] == []
    assert rep["original_size"] == {"mean": [6.0, 10.0], "min": [6, 10], "max": [6, 10]}
    shapes = data_report("builtin:shapes", image_size=(16, 16), color="gray", n_samples=30)
    assert shapes["image_shape"] == [16, 16, 1] and shapes["n_images"] == 30
