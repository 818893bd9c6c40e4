"""Data preparation: which set comes from where, class checks, mismatch notes, normalization, transform."""

import numpy as np
import pytest

from engine.config import from_dict
from engine.dataset import SourceData
from engine.datasets2d import make_2d
from engine.errors import DataError
from engine.normalization import fit_standardizer
from engine.prepare import (
    MISMATCH_NOTE,
    load_sources,
    prepare_data,
    prepare_from_sources,
    set_counts,
    transform,
)
from engine.splits import split_indices, split_rng


def cfg_of(**data):
    return from_dict({"data": data})


def vec_source(name, n=100, classes=("a", "b"), shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(classes)
    X = rng.normal(size=(n, 2)) + shift + y[:, None]
    return SourceData(X=X, y=y.astype(np.int64), classes=list(classes), source=name)


def rows(X, ref):
    """Indices of X's rows in ref (every row must be found exactly)."""
    lookup = {tuple(r): i for i, r in enumerate(ref)}
    return np.array([lookup[tuple(r)] for r in X])


def test_single_source_is_split_as_configured():
    cfg = cfg_of(source="builtin:moons", n_samples=1000, split=[0.6, 0.2, 0.2], seed=4)
    prep = prepare_data(cfg)
    assert (len(prep.train), len(prep.dev), len(prep.test)) == (600, 200, 200)
    main = make_2d("moons", 1000, cfg.data.noise, np.random.default_rng(4))
    expect = split_indices(main.y, [0.6, 0.2, 0.2], True, split_rng(4))
    for s in ("train", "dev", "test"):
        np.testing.assert_array_equal(prep.split_indices[f"{s}_idx"], expect[f"{s}_idx"])
        np.testing.assert_array_equal(getattr(prep, s).X, main.X[expect[f"{s}_idx"]])
        np.testing.assert_array_equal(getattr(prep, s).y, main.y[expect[f"{s}_idx"]])
    assert prep.input_shape == (2,) and prep.classes == main.classes and prep.notes == []
    mean, std = fit_standardizer(prep.train.X, False)
    np.testing.assert_array_equal(prep.norm_mean, mean)
    np.testing.assert_array_equal(prep.norm_std, std)
    assert prep.norm_mean.dtype == np.float32


def test_load_sources_seeds_separate_generated_sources():
    data = cfg_of(source="builtin:moons", dev_source="builtin:moons", n_samples=50, seed=3).data
    src = load_sources(data)
    assert set(src) == {"main", "dev"}
    np.testing.assert_array_equal(src["main"].X, make_2d("moons", 50, data.noise, np.random.default_rng(3)).X)
    np.testing.assert_array_equal(src["dev"].X, make_2d("moons", 50, data.noise, np.random.default_rng(4)).X)


def test_separate_dev_source_renormalizes_train_and_test():
    main, dev = vec_source("main.npz", 200), vec_source("other.npz", 40, seed=1)
    cfg = cfg_of(source="main.npz", dev_source="other.npz", split=[0.6, 0.2, 0.2])
    prep = prepare_from_sources(cfg, {"main": main, "dev": dev})
    assert (len(prep.train), len(prep.dev), len(prep.test)) == (150, 40, 50)  # 60:20 of main -> 75/25
    np.testing.assert_array_equal(prep.dev.X, dev.X)
    assert len(prep.split_indices["dev_idx"]) == 0
    np.testing.assert_array_equal(prep.train.X, main.X[prep.split_indices["train_idx"]])
    # dev (other.npz) and test (main.npz) come from different sources: the course rule is noted
    assert len(prep.notes) == 1 and MISMATCH_NOTE in prep.notes[0]
    assert "same distribution" in prep.notes[0] and "training data may differ" in prep.notes[0]
    mismatch = prep.report["mismatch"]
    assert set(mismatch["sources"]) == {"main", "dev"}
    assert mismatch["sources"]["dev"]["n"] == 40


def test_separate_dev_with_two_way_split_trains_on_all_of_main():
    main, dev = vec_source("main.npz", 90), vec_source("other.npz", 30, seed=1)
    cfg = cfg_of(source="main.npz", dev_source="other.npz", split=[0.7, 0.3])
    prep = prepare_from_sources(cfg, {"main": main, "dev": dev})
    assert (len(prep.train), len(prep.dev), len(prep.test)) == (90, 30, 0)
    assert prep.split_indices is None and prep.notes == []  # no test set, nothing to mismatch


def test_separate_test_source_splits_main_into_train_and_dev():
    main, test = vec_source("main.npz", 200), vec_source("field.npz", 30, seed=2)
    cfg = cfg_of(source="main.npz", test_source="field.npz", split=[0.6, 0.2, 0.2])
    prep = prepare_from_sources(cfg, {"main": main, "test": test})
    assert (len(prep.train), len(prep.dev), len(prep.test)) == (150, 50, 30)
    np.testing.assert_array_equal(prep.test.X, test.X)
    assert len(prep.split_indices["test_idx"]) == 0
    assert any(MISMATCH_NOTE in n for n in prep.notes)


def test_dev_and_test_from_the_same_separate_source_are_not_a_mismatch():
    main = vec_source("main.npz", 100)
    dev, test = vec_source("target.npz", 20, seed=5), vec_source("target.npz", 20, seed=5)
    cfg = cfg_of(source="main.npz", dev_source="target.npz", test_source="target.npz")
    prep = prepare_from_sources(cfg, {"main": main, "dev": dev, "test": test})
    assert len(prep.train) == 100 and prep.split_indices is None
    assert prep.notes == [] and prep.report is None


def test_presplit_source_is_used_as_given():
    main = vec_source("root", 60)
    parts = {"train": np.arange(0, 40), "dev": np.arange(40, 50), "test": np.arange(50, 60)}
    main = SourceData(X=main.X, y=main.y, classes=main.classes, source="root", presplit=parts)
    prep = prepare_from_sources(cfg_of(source="root", split=[0.98, 0.01, 0.01]), {"main": main})
    for s, idx in parts.items():
        np.testing.assert_array_equal(getattr(prep, s).X, main.X[idx])
    assert prep.split_indices is None and prep.notes == []
    # a separate test source replaces the test part
    other = vec_source("elsewhere", 8, seed=9)
    prep = prepare_from_sources(cfg_of(source="root", test_source="elsewhere"), {"main": main, "test": other})
    np.testing.assert_array_equal(prep.test.X, other.X)
    np.testing.assert_array_equal(prep.dev.X, main.X[40:50])
    assert any(MISMATCH_NOTE in n for n in prep.notes)


def _presplit_without_dev(n_train, n_test, classes=("a", "b")):
    base = vec_source("root", n_train + n_test, classes=classes)
    parts = {
        "train": np.arange(n_train),
        "dev": np.zeros(0, np.int64),
        "test": np.arange(n_train, n_train + n_test),
    }
    return SourceData(X=base.X, y=base.y, classes=base.classes, source="root", presplit=parts)


def _assert_carved(prep, main, n_train_part, n_dev, n_test):
    """train + dev partition the train part, test is the given test part, split.npz indices match."""
    idx = prep.split_indices
    assert (len(prep.train), len(prep.dev), len(prep.test)) == (n_train_part - n_dev, n_dev, n_test)
    assert len(np.intersect1d(idx["train_idx"], idx["dev_idx"])) == 0
    np.testing.assert_array_equal(
        np.sort(np.concatenate([idx["train_idx"], idx["dev_idx"]])), np.arange(n_train_part)
    )
    np.testing.assert_array_equal(idx["test_idx"], np.arange(n_train_part, n_train_part + n_test))
    for s in ("train", "dev", "test"):
        np.testing.assert_array_equal(getattr(prep, s).X, main.X[idx[f"{s}_idx"]])
        np.testing.assert_array_equal(getattr(prep, s).y, main.y[idx[f"{s}_idx"]])


@pytest.mark.parametrize(
    ("split", "n_dev"),
    [([0.6, 0.2, 0.2], 50), ([0.7, 0.3], 60), ([0.98, 0.01, 0.01], 2)],  # dev share = f1 / (f0 + f1)
)
def test_presplit_without_dev_carves_dev_from_train(split, n_dev):
    main = _presplit_without_dev(200, 40)
    prep = prepare_from_sources(cfg_of(source="root", split=split, seed=3), {"main": main})
    _assert_carved(prep, main, 200, n_dev, 40)
    # stratified: each of the two classes gives half of the dev set (98/1/1: one each)
    np.testing.assert_array_equal(np.bincount(prep.dev.y, minlength=2), [n_dev // 2, n_dev // 2])
    # normalization is fitted on the carved training set only
    mean, _ = fit_standardizer(prep.train.X, False)
    np.testing.assert_array_equal(prep.norm_mean, mean)
    # seeded: the same seed gives the same carve, another seed another one
    again = prepare_from_sources(cfg_of(source="root", split=split, seed=3), {"main": main})
    np.testing.assert_array_equal(again.split_indices["dev_idx"], prep.split_indices["dev_idx"])
    other = prepare_from_sources(cfg_of(source="root", split=split, seed=4), {"main": main})
    assert not np.array_equal(other.split_indices["dev_idx"], prep.split_indices["dev_idx"])


def test_carving_is_noted_and_set_counts_match_the_prepared_sets():
    carved = _presplit_without_dev(200, 40)
    prep = prepare_from_sources(cfg_of(source="root", split=[0.6, 0.2, 0.2]), {"main": carved})
    assert prep.notes == [
        "root has no dev part: the dev set (50 examples, 25% of its training part, stratified) "
        "was split off its training part."
    ]
    assert set_counts(cfg_of(source="root", split=[0.6, 0.2, 0.2]), {"main": carved}) == {
        "train": {"a": 75, "b": 75},
        "dev": {"a": 25, "b": 25},
        "test": {"a": 20, "b": 20},
    }
    full = vec_source("root", 60)
    parts = {"train": np.arange(0, 40), "dev": np.arange(40, 50), "test": np.arange(50, 60)}
    full = SourceData(X=full.X, y=full.y, classes=full.classes, source="root", presplit=parts)
    cases = [
        (cfg_of(source="builtin:moons", split=[0.6, 0.2, 0.2]), {"main": vec_source("m", 100, seed=3)}),
        (cfg_of(source="root", split=[0.7, 0.3], stratify=False), {"main": carved}),
        (cfg_of(source="root"), {"main": full}),
        (
            cfg_of(source="m", dev_source="d"),
            {"main": vec_source("m", 90), "dev": vec_source("d", 30, seed=1)},
        ),
    ]
    for cfg, sources in cases:
        prep = prepare_from_sources(cfg, sources)
        expected = {
            s: dict(zip(prep.classes, np.bincount(getattr(prep, s).y, minlength=2).tolist()))
            for s in ("train", "dev", "test")
        }
        assert set_counts(cfg, sources) == expected


def test_presplit_without_dev_and_a_test_source_keeps_the_separate_test_set():
    main = _presplit_without_dev(60, 20)
    other = vec_source("field", 8, seed=9)
    cfg = cfg_of(source="root", test_source="field", split=[0.6, 0.2, 0.2])
    prep = prepare_from_sources(cfg, {"main": main, "test": other})
    assert (len(prep.train), len(prep.dev), len(prep.test)) == (45, 15, 8)
    np.testing.assert_array_equal(prep.test.X, other.X)
    assert len(prep.split_indices["test_idx"]) == 0  # the main source's test part is not used
    assert len(np.intersect1d(prep.split_indices["train_idx"], prep.split_indices["dev_idx"])) == 0
    assert prep.split_indices["dev_idx"].max() < 60


def test_presplit_without_dev_and_a_dev_source_is_not_carved():
    main = _presplit_without_dev(60, 20)
    dev = vec_source("devsrc", 10, seed=7)
    prep = prepare_from_sources(cfg_of(source="root", dev_source="devsrc"), {"main": main, "dev": dev})
    assert (len(prep.train), len(prep.dev), len(prep.test)) == (60, 10, 20)
    assert prep.split_indices is None


def test_presplit_train_part_too_small_to_carve_is_refused():
    # 6 training examples: a 98/1/1 dev share (about 1 %) of them is empty
    main = _presplit_without_dev(6, 4)
    with pytest.raises(DataError, match=r"data.source root has no dev part.*leaves the dev set empty"):
        prepare_from_sources(cfg_of(source="root", split=[0.98, 0.01, 0.01]), {"main": main})


def _write_idx(path, arr):
    import struct

    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


def test_mnist_folder_gets_a_dev_set_carved_from_its_train_files(tmp_path):
    rng = np.random.default_rng(5)
    n_train, n_test = 200, 50  # 20 training and 5 test images per digit
    imgs = rng.integers(0, 256, (n_train + n_test, 28, 28), dtype=np.uint8)
    labels = (np.arange(n_train + n_test) % 10).astype(np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte", imgs[:n_train])
    _write_idx(tmp_path / "train-labels-idx1-ubyte", labels[:n_train])
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", imgs[n_train:])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels[n_train:])
    cfg = cfg_of(source=str(tmp_path), image_size=[28, 28], color="gray", split=[0.6, 0.2, 0.2])
    prep = prepare_data(cfg)
    # dev share of the train files: 0.2 / (0.6 + 0.2) = 25 % -> 150 / 50, test = the 50 t10k images
    assert (len(prep.train), len(prep.dev), len(prep.test)) == (150, 50, 50)
    np.testing.assert_array_equal(prep.test.X[..., 0], imgs[n_train:])
    np.testing.assert_array_equal(prep.test.y, labels[n_train:])
    np.testing.assert_array_equal(np.bincount(prep.dev.y, minlength=10), [5] * 10)
    idx = prep.split_indices
    assert len(np.intersect1d(idx["train_idx"], idx["dev_idx"])) == 0
    np.testing.assert_array_equal(np.union1d(idx["train_idx"], idx["dev_idx"]), np.arange(n_train))
    np.testing.assert_array_equal(idx["test_idx"], np.arange(n_train, n_train + n_test))
    np.testing.assert_array_equal(prep.dev.X[..., 0], imgs[idx["dev_idx"]])
    np.testing.assert_array_equal(prep.train.X[..., 0], imgs[idx["train_idx"]])


def test_train_and_test_folders_without_dev_train_and_save_the_carved_split(tmp_path):
    from engine.experiment import run_experiment

    root = tmp_path / "root"
    _image_folder(root / "train", 80, 10)  # 10 cats, 10 dogs
    _image_folder(root / "test", 120, 3)  # 3 cats, 3 dogs
    cfg = cfg_of(source=str(root), image_size=[8, 8], split=[0.7, 0.3])
    cfg = cfg.replace(**{"training.epochs": 1})
    prep = prepare_data(cfg)
    assert (len(prep.train), len(prep.dev), len(prep.test)) == (14, 6, 6)
    np.testing.assert_array_equal(np.bincount(prep.dev.y), [3, 3])
    exp = run_experiment(cfg, tmp_path / "run", data=prep)
    for _ in exp.records():
        pass
    with np.load(tmp_path / "run" / "split.npz", allow_pickle=False) as z:
        for s in ("train", "dev", "test"):
            np.testing.assert_array_equal(z[f"{s}_idx"], prep.split_indices[f"{s}_idx"])
        assert len(np.intersect1d(z["train_idx"], z["dev_idx"])) == 0
        assert sorted(np.concatenate([z["train_idx"], z["dev_idx"]]).tolist()) == list(range(20))
        np.testing.assert_array_equal(z["test_idx"], np.arange(20, 26))


def test_class_lists_must_match_and_are_reordered():
    main = vec_source("main.npz", 60, classes=("cat", "dog"))
    wrong = vec_source("dogs_and_birds", 20, classes=("bird", "dog"))
    with pytest.raises(DataError) as exc:
        prepare_from_sources(
            cfg_of(source="main.npz", dev_source="dogs_and_birds"), {"main": main, "dev": wrong}
        )
    msg = str(exc.value)
    assert "data.dev_source" in msg and "dogs_and_birds" in msg and "'cat'" in msg and "'bird'" in msg
    # same classes, other order: labels are remapped to the main source's order
    swapped = vec_source("swapped", 20, classes=("dog", "cat"))
    prep = prepare_from_sources(
        cfg_of(source="main.npz", dev_source="swapped"), {"main": main, "dev": swapped}
    )
    np.testing.assert_array_equal(prep.dev.y, 1 - swapped.y)
    assert prep.classes == ["cat", "dog"]


def test_shape_mismatch_names_the_source():
    main = vec_source("main.npz", 60)
    odd = SourceData(X=np.zeros((10, 3)), y=np.arange(10) % 2, classes=["a", "b"], source="three.npz")
    with pytest.raises(DataError, match="data.test_source three.npz"):
        prepare_from_sources(cfg_of(source="main.npz", test_source="three.npz"), {"main": main, "test": odd})


def test_refused_split_surfaces_as_data_error():
    # 150 blobs, 50 per class: 98/1/1 gives 147/2/1 examples, so one class cannot be in the test set
    cfg = cfg_of(source="builtin:blobs", n_samples=150, n_classes=3, split=[0.98, 0.01, 0.01])
    with pytest.raises(DataError, match=r"data.split 98/1/1 leaves class 'blob 1' with no test examples"):
        prepare_data(cfg)


def test_image_source_through_engine_images():
    cfg = cfg_of(source="builtin:shapes", n_samples=60, n_classes=3, image_size=[8, 8], color="rgb")
    prep = prepare_data(cfg)
    assert prep.is_image and prep.input_shape == (8, 8, 3)
    assert prep.train.X.dtype == np.uint8 and len(prep.train) + len(prep.dev) + len(prep.test) == 60
    train = prep.train.X.reshape(-1, 3).astype(np.float64) / 255
    np.testing.assert_allclose(prep.norm_mean[:3], train.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(prep.norm_mean, np.tile(prep.norm_mean[:3], 64))
    Z = transform(prep.train.X, prep.input_shape, prep.norm_mean, prep.norm_std, np.float32)
    assert Z.shape == (len(prep.train), 192)
    np.testing.assert_allclose(Z.reshape(-1, 3).mean(axis=0), 0.0, atol=1e-4)


def test_transform_refuses_wrong_shape():
    with pytest.raises(DataError, match=r"shape \(3,\).*expects \(2,\)"):
        transform(np.zeros((4, 3)), (2,), np.zeros(2, np.float32), np.ones(2, np.float32), np.float32)


def test_transform_matches_hand_formula():
    X = np.array([[1.0, 2.0], [3.0, 6.0]])
    Z = transform(X, (2,), np.array([2.0, 4.0], np.float32), np.array([1.0, 2.0], np.float32), np.float64)
    np.testing.assert_allclose(Z, [[-1.0, -1.0], [1.0, 1.0]])
    assert Z.dtype == np.float64


def _image_folder(folder, level, n):
    from PIL import Image

    rng = np.random.default_rng(level)
    for c, offset in (("cat", 0), ("dog", 40)):
        d = folder / c
        d.mkdir(parents=True)
        for i in range(n):
            arr = np.clip(rng.normal(level + offset, 20, (8, 8, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(d / f"{i}.png")


def test_image_folders_with_a_brighter_dev_source_get_the_note_and_statistics(tmp_path):
    _image_folder(tmp_path / "main", 80, 10)
    _image_folder(tmp_path / "bright", 200, 6)
    cfg = cfg_of(source=str(tmp_path / "main"), dev_source=str(tmp_path / "bright"), image_size=[8, 8])
    prep = prepare_data(cfg)
    # 20 main images split 60:20 (dev share dropped) -> train/test 75/25; dev = the 12 bright images
    assert (len(prep.train), len(prep.dev), len(prep.test)) == (15, 12, 5)
    assert prep.classes == ["cat", "dog"] and prep.input_shape == (8, 8, 3)
    assert len(prep.notes) == 1 and "training data may differ" in prep.notes[0]
    mismatch = prep.report["mismatch"]
    assert mismatch["sources"]["dev"]["brightness"] > mismatch["sources"]["main"]["brightness"] + 0.3
    assert "brightness" in mismatch["warning"]
    assert prep.report["counts"] == {"cat": 10, "dog": 10}  # the main source's data report is kept
