"""The memory-bounded data path: .npy row files, the v2 disk cache, index sets, chunked
normalization statistics, per-batch normalization and the chunked shuffle."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from engine.arrayfile import ArrayFile, NpyWriter
from engine.batches import BatchPipeline, EvalSet
from engine.config import from_dict
from engine.dataset import ArraySet, SourceData, is_in_memory
from engine.images import cache, load_source
from engine.images import loader as loader_mod
from engine.normalization import fit_standardizer
from engine.prepare import prepare_from_sources
from engine.trainer import Trainer

# ---------------------------------------------------------------- .npy files by rows


def test_writer_output_is_a_standard_npy_and_compaction_keeps_the_given_rows(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(1000, 5, 4, 3), dtype=np.uint8)
    w = NpyWriter(tmp_path / "a.npy", X.shape, np.uint8)
    order = rng.permutation(10)  # chunks arrive in any order
    for c in order:
        w.put(np.arange(100 * c, 100 * c + 100), X[100 * c : 100 * c + 100])
    keep = np.sort(rng.choice(1000, 997, replace=False))  # three failed files
    f = w.finish(keep)
    assert f.shape == (997, 5, 4, 3)
    # np.load reads the rewritten header, with and without a memory map
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy", allow_pickle=False), X[keep])
    m = np.load(tmp_path / "a.npy", mmap_mode="r", allow_pickle=False)
    assert isinstance(m, np.memmap) and not m.flags.writeable
    np.testing.assert_array_equal(m, X[keep])
    assert os.path.getsize(tmp_path / "a.npy") == f.offset + 997 * 60


@pytest.mark.parametrize("row_shape", [(3,), (40, 40, 3)])  # tiny rows merge across gaps; big ones do not
def test_array_file_reads_any_rows_like_numpy(tmp_path, row_shape):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(700, *row_shape)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    f = ArrayFile(tmp_path / "x.npy")
    assert (f.shape, f.dtype, f.ndim, len(f), f.nbytes) == (X.shape, X.dtype, X.ndim, 700, X.nbytes)
    for rows in (
        np.arange(700),
        np.sort(rng.choice(700, 300, replace=False)),
        rng.integers(0, 700, 500),  # any order, repeats
        np.array([699, 0]),
    ):
        np.testing.assert_array_equal(f.take(rows), X[rows])
        np.testing.assert_array_equal(f[rows], X[rows])
    np.testing.assert_array_equal(f[10:20], X[10:20])
    np.testing.assert_array_equal(f[-1], X[-1])
    np.testing.assert_array_equal(np.asarray(f), X)
    assert not is_in_memory(f) and not is_in_memory(np.load(tmp_path / "x.npy", mmap_mode="r"))
    with pytest.raises(IndexError):
        f.take(np.array([700]))


# ---------------------------------------------------------------- the disk cache


def _folder(root, n_per_class=(7, 5), size=(10, 12)):
    for k, n in enumerate(n_per_class):
        d = root / f"class{k}"
        d.mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", size, (20 * i, 100 * k, 7)).save(d / f"{i:03d}.png")


def test_folder_decodes_into_the_cache_file_never_into_memory(tmp_path, monkeypatch):
    _folder(tmp_path / "src")
    (tmp_path / "src" / "class1" / "bad.png").write_bytes(b"not a png")
    reference = load_source(str(tmp_path / "src"), image_size=(8, 8), use_cache=False)

    def no_memory_rows(*a, **k):
        raise AssertionError("a folder with a writable cache must not be decoded into memory")

    monkeypatch.setattr(loader_mod, "_MemoryRows", no_memory_rows)
    sd = load_source(str(tmp_path / "src"), image_size=(8, 8), cache_dir=tmp_path / "cache")
    assert isinstance(sd.X, np.memmap) and not sd.X.flags.writeable
    np.testing.assert_array_equal(sd.X, reference.X)  # the failed file's row is compacted away
    np.testing.assert_array_equal(sd.y, reference.y)
    assert sd.report == reference.report and len(sd.report["skipped"]) == 1
    # the files: metadata (no pickles) + one raw uint8 .npy, nothing temporary left
    names = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(names) == 2 and names[0].endswith(".npy") and names[1].endswith(".npz")
    with np.load(tmp_path / "cache" / names[1], allow_pickle=False) as z:
        assert str(z["data_file"]) == names[0] and int(z["version"]) == cache.FORMAT_VERSION
        assert json.loads(str(z["report"]))["counts"] == {"class0": 7, "class1": 5}
    raw = np.load(tmp_path / "cache" / names[0], allow_pickle=False)
    assert raw.dtype == np.uint8 and raw.shape == (12, 8, 8, 3)
    # a second load is a cache hit, also memory-mapped
    again = load_source(str(tmp_path / "src"), image_size=(8, 8), cache_dir=tmp_path / "cache")
    assert isinstance(again.X, np.memmap)
    np.testing.assert_array_equal(again.X, reference.X)


def test_version_1_entries_are_ignored_and_removed(tmp_path):
    _folder(tmp_path / "src", (2, 2))
    src = tmp_path / "src"
    legacy = cache._legacy_path(src, (8, 8), "rgb", tmp_path / "cache")
    legacy.parent.mkdir(parents=True)
    # a version-1 entry: one .npz with X inside, holding different pixels
    np.savez(legacy, X=np.zeros((4, 8, 8, 3), np.uint8), y=np.zeros(4, np.int64), version=np.array(1))
    assert legacy != cache.entry_path(src, (8, 8), "rgb", tmp_path / "cache")
    sd = load_source(str(src), image_size=(8, 8), cache_dir=tmp_path / "cache")
    assert sd.X[:, 0, 0, 1].tolist() == [0, 0, 100, 100]  # decoded, not the legacy zeros
    assert not legacy.exists()


def test_a_rewritten_entry_replaces_the_old_data_file(tmp_path):
    _folder(tmp_path / "src", (2, 2))
    src = tmp_path / "src"
    load_source(str(src), image_size=(8, 8), cache_dir=tmp_path / "cache")
    Image.new("RGB", (10, 12), (1, 2, 3)).save(src / "class0" / "new.png")
    sd = load_source(str(src), image_size=(8, 8), cache_dir=tmp_path / "cache")
    assert len(sd.y) == 5
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1  # the stale data file was deleted


def test_in_memory_sources_are_stored_and_come_back_memory_mapped(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3)).astype(np.float32)
    np.savez(tmp_path / "v.npz", X=X, y=np.arange(50) % 2)
    sd = load_source(str(tmp_path / "v.npz"), cache_dir=tmp_path / "cache")
    assert isinstance(sd.X, np.memmap) and sd.X.dtype == np.float32
    np.testing.assert_array_equal(sd.X, X)


# ---------------------------------------------------------------- sets and normalization


def _old_whole_array_normalization(X: np.ndarray) -> np.ndarray:
    """The pre-change reference: whole training array in float64, per-channel statistics."""
    F = X.astype(np.float64) / 255.0
    mean_c = F.reshape(-1, X.shape[-1]).mean(axis=0)
    std_c = F.reshape(-1, X.shape[-1]).std(axis=0)
    mean, std = np.tile(mean_c, X.shape[1] * X.shape[2]), np.tile(std_c, X.shape[1] * X.shape[2])
    return (F.reshape(len(X), -1) - mean) / std


def _cached_source(tmp_path, X, y) -> SourceData:
    """X written as a cache data file and memory-mapped back, as a decoded folder would be."""
    entry = tmp_path / "cache" / f"images-{'0' * 32}.npz"
    sd = SourceData(X=X, y=y, classes=["a", "b", "c"], source="s", report={"classes": ["a", "b", "c"]})
    stored = cache.store_entry(entry, sd, "fp")
    assert isinstance(stored.X, np.memmap)
    return stored


@pytest.mark.parametrize("where", ["memory", "mapped", "file"])
@pytest.mark.parametrize("shuffle", ["random", "chunked"])
def test_per_batch_normalization_equals_whole_array_normalization(tmp_path, where, shuffle):
    rng = np.random.default_rng(3)
    n = 600
    X = rng.integers(0, 256, size=(n, 6, 5, 3), dtype=np.uint8)
    X[:, :, :, 2] //= 4  # channels with different statistics
    y = np.arange(n) % 3
    sd = SourceData(X=X, y=y, classes=["a", "b", "c"], source="s")
    if where != "memory":
        sd = _cached_source(tmp_path, X, y)
        if where == "file":
            sd = SourceData(X=ArrayFile(sd.X.filename), y=sd.y, classes=sd.classes, source="s")
    cfg = from_dict({"data": {"split": [0.6, 0.2, 0.2]}})
    data = prepare_from_sources(cfg, {"main": sd})
    train_idx = data.split_indices["train_idx"]
    assert data.train.idx is not None and np.array_equal(data.train.idx, train_idx)  # an index, not a copy
    expected = _old_whole_array_normalization(X[train_idx])
    pipe = BatchPipeline(
        data.train,
        32,
        data.norm_mean,
        data.norm_std,
        np.random.default_rng(0),
        shuffle=shuffle,
        chunk_bytes=90 * 60,  # 60 samples a chunk, blocks of 15: several chunks per epoch
        block_bytes=15 * 90,
    )
    assert pipe.shuffle == shuffle
    order = pipe.epoch_order()
    seen = 0
    for xb, yb in pipe.epoch():
        pos = order[seen : seen + len(yb)]
        np.testing.assert_allclose(xb, expected[pos], rtol=1e-5, atol=2e-5)
        np.testing.assert_array_equal(yb, data.train.y[pos])
        seen += len(yb)
    assert seen == len(data.train)


def test_chunked_statistics_do_not_depend_on_the_chunk_size(monkeypatch):
    from engine import normalization

    rng = np.random.default_rng(5)
    X = rng.integers(0, 256, size=(301, 4, 4, 3), dtype=np.uint8)
    V = rng.normal(50.0, 3.0, size=(301, 5))
    whole = [fit_standardizer(X, True), fit_standardizer(V, False)]
    monkeypatch.setattr(normalization, "_CHUNK_ELEMENTS", 100)  # chunks of a couple of rows
    for (m1, s1), (m2, s2) in zip(whole, [fit_standardizer(X, True), fit_standardizer(V, False)]):
        np.testing.assert_allclose(m1, m2, rtol=1e-6)
        np.testing.assert_allclose(s1, s2, rtol=1e-6)
    np.testing.assert_allclose(whole[1][0], V.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(whole[1][1], V.std(axis=0), rtol=1e-6)


# ---------------------------------------------------------------- the chunked shuffle


def _indexed_images(n):
    """Images whose first pixel spells their own row number (two base-256 digits)."""
    X = np.zeros((n, 2, 2, 3), np.uint8)
    X[:, 0, 0, 0], X[:, 0, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
    return X


def _rows_of(xb):
    return np.rint(xb[:, 0] * 255).astype(int) + 256 * np.rint(xb[:, 1] * 255).astype(int)


def test_chunked_shuffle_visits_every_sample_once_per_epoch_and_is_seeded():
    n = 3000
    X = _indexed_images(n)
    idx = np.sort(np.random.default_rng(0).choice(n, 2100, replace=False))  # a split's train rows
    data = ArraySet(X, np.arange(n)[idx], idx)

    def pipeline(seed):
        return BatchPipeline(
            data, 50, np.zeros(12), np.ones(12), np.random.default_rng(seed),
            shuffle="chunked", chunk_bytes=300 * 12, block_bytes=40 * 12,
        )  # fmt: skip

    def epochs(pipe, k):
        out = []
        for _ in range(k):
            rows = []
            for xb, yb in pipe.epoch():
                assert np.array_equal(_rows_of(xb), yb)  # pixels and labels stay together
                rows.extend(yb.tolist())
            out.append(rows)
        return out

    a, b, c = epochs(pipeline(7), 3), epochs(pipeline(7), 3), epochs(pipeline(8), 1)
    for rows in a:
        assert sorted(rows) == idx.tolist()  # every training sample exactly once
    assert a == b and a[0] != a[1] and a[0] != c[0]  # seeded, fresh each epoch
    # chunk-local: the first group (up to 300 samples from whole blocks of 40 source rows,
    # ~28 training rows each) draws on about a dozen blocks; a full shuffle would draw the
    # first 250 samples from nearly all 75 blocks
    pipe = pipeline(7)
    assert len(pipe._slots) == 2 and pipe._slots[0].shape[0] == 300
    blocks = {int(r) // 40 for r in a[0][:250]}
    assert len(blocks) <= 20
    full = {int(r) // 40 for r in idx[np.random.default_rng(7).permutation(len(idx))[:250]]}
    assert len(full) > 60


def test_chunked_shuffle_from_a_row_file_trains_like_the_product_path(tmp_path, monkeypatch):
    n = 1200
    rng = np.random.default_rng(0)
    y = np.arange(n) % 3
    X = (rng.integers(0, 100, size=(n, 4, 4, 3)) + 70 * y[:, None, None, None]).astype(np.uint8)
    sd = _cached_source(tmp_path, X, y)
    sd = SourceData(X=ArrayFile(sd.X.filename), y=sd.y, classes=sd.classes, source="s")
    cfg = from_dict(
        {"model": {"hidden": [8]}, "optimizer": {"lr": 0.01}, "training": {"epochs": 3, "batch_size": 32}}
    )
    data = prepare_from_sources(cfg, {"main": sd})
    trainer = Trainer(cfg, data)
    assert trainer.pipeline.shuffle == "chunked"  # a file that is not mapped is streamed
    records = list(trainer.run())
    assert "streamed from the disk cache in shuffled chunks" in records[0].message
    assert records[-1].dev_acc > 0.9
    monkeypatch.setenv("REGLAB_SHUFFLE", "random")
    assert Trainer(cfg, data).pipeline.shuffle == "random"


def test_streamed_evaluation_equals_the_cached_one(tmp_path):
    from engine.network import MLP

    rng = np.random.default_rng(2)
    X = rng.integers(0, 256, size=(500, 5, 5, 3), dtype=np.uint8)
    y = rng.integers(0, 3, 500)
    mapped = _cached_source(tmp_path, X, y).X
    idx = np.sort(rng.choice(500, 300, replace=False))
    mean, std = fit_standardizer(X[idx], True)
    net = MLP([75, 6, 3])
    net.initialize("he", 1.0, rng)
    cached = EvalSet(ArraySet(X[idx], y[idx]), mean, std).evaluate(net)
    for base in (mapped, ArrayFile(mapped.filename)):
        streamed = EvalSet(ArraySet(base, y[idx], idx), mean, std, chunk_size=37)
        streamed._cached = None
        assert streamed.evaluate(net) == pytest.approx(cached, rel=1e-5)


def test_an_index_set_reads_its_samples_without_copying_the_set(tmp_path):
    rng = np.random.default_rng(4)
    X = rng.integers(0, 256, size=(40, 3, 3, 1), dtype=np.uint8)
    idx = np.array([3, 5, 8, 13, 21, 34])
    for base in (X, _cached_source(tmp_path, X, np.arange(40) % 3).X):
        s = ArraySet(base, np.arange(6), idx)
        assert len(s) == 6 and s.shape == (6, 3, 3, 1) and s.nbytes == 6 * 9
        np.testing.assert_array_equal(s[2], X[8])
        np.testing.assert_array_equal(s[-1], X[34])
        np.testing.assert_array_equal(s[[4, 0]], X[[21, 3]])
        np.testing.assert_array_equal(s[1:3], X[[5, 8]])
        np.testing.assert_array_equal(np.asarray(s), X[idx])
        np.testing.assert_array_equal(s.X, X[idx])
        sub = s.subset(np.array([1, 4]))
        assert np.array_equal(sub.idx, [5, 21]) and sub.y.tolist() == [1, 4] and sub.base is base
        chunks = [c.copy() for _, _, c in s.chunks(4)]
        np.testing.assert_array_equal(np.concatenate(chunks), X[idx])
        with pytest.raises(IndexError):
            s[6]


def test_chunked_and_augmented_batches_do_not_depend_on_the_producer_thread():
    from engine.augment import Augmenter
    from engine.config import AugmentConfig

    rng = np.random.default_rng(6)
    X = rng.integers(0, 256, size=(400, 6, 6, 3), dtype=np.uint8)
    data = ArraySet(X, np.arange(400))

    def batches(prefetch):
        aug = Augmenter(AugmentConfig(hflip=0.5, noise_std=0.05), (6, 6, 3), np.random.default_rng(1))
        pipe = BatchPipeline(
            data, 16, np.full(108, 0.5), np.full(108, 0.25), np.random.default_rng(2), augmenter=aug,
            prefetch=prefetch, shuffle="chunked", chunk_bytes=100 * 108, block_bytes=25 * 108,
        )  # fmt: skip
        assert pipe.prefetching == prefetch and len(pipe._slots) == 2
        return [(xb.copy(), yb.copy()) for _ in range(2) for xb, yb in pipe.epoch()]

    a, b = batches(True), batches(False)
    assert len(a) == 2 * 25
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)
    assert sorted(np.concatenate([y for _, y in a[:25]]).tolist()) == list(range(400))
