"""Input normalization: training-split statistics, zero variance, per-channel image statistics."""

import numpy as np

from engine.config import from_dict
from engine.dataset import SourceData
from engine.normalization import apply_standardizer, feature_matrix, fit_standardizer, identity_standardizer
from engine.prepare import prepare_from_sources, transform


def test_feature_matrix_vectors_and_images():
    X = np.arange(6, dtype=np.float64).reshape(3, 2)
    F = feature_matrix(X)
    assert F.dtype == np.float32 and F.shape == (3, 2)
    np.testing.assert_array_equal(F, X)
    imgs = np.array([[[[0, 255, 51]]], [[[102, 0, 255]]]], dtype=np.uint8)  # (2, 1, 1, 3)
    F = feature_matrix(imgs, np.float64)
    assert F.dtype == np.float64 and F.shape == (2, 3)
    np.testing.assert_allclose(F, [[0, 1, 0.2], [0.4, 0, 1]])


def test_vector_stats_by_hand_and_zero_variance():
    X = np.array([[1.0, 5.0, 3.0], [3.0, 5.0, 7.0], [5.0, 5.0, 8.0]])
    mean, std = fit_standardizer(X, is_image=False)
    assert mean.dtype == np.float32 and std.dtype == np.float32 and mean.shape == (3,)
    np.testing.assert_allclose(mean, [3.0, 5.0, 6.0], rtol=1e-6)
    # the constant middle column gets std 1 instead of 0
    np.testing.assert_allclose(std, [np.sqrt(8 / 3), 1.0, np.sqrt(14 / 3)], rtol=1e-6)
    Z = apply_standardizer(feature_matrix(X), mean, std)
    assert np.all(np.isfinite(Z))
    np.testing.assert_allclose(Z[:, 1], 0.0)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(Z[:, [0, 2]].std(axis=0), 1.0, rtol=1e-5)


def test_image_stats_per_channel_tiled():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(50, 4, 3, 3), dtype=np.uint8)
    imgs[..., 2] = 77  # a constant channel
    mean, std = fit_standardizer(imgs, is_image=True)
    assert mean.shape == (4 * 3 * 3,)
    scaled = imgs.astype(np.float64) / 255
    m_c = scaled.reshape(-1, 3).mean(axis=0)
    s_c = scaled.reshape(-1, 3).std(axis=0)
    np.testing.assert_allclose(mean[:3], m_c, rtol=1e-6)
    np.testing.assert_allclose(std[:2], s_c[:2], rtol=1e-6)
    assert std[2] == 1.0  # zero variance -> 1
    np.testing.assert_allclose(mean, np.tile(m_c, 12), rtol=1e-6)  # channel fastest, as (H, W, C) flattens
    Z = transform(imgs, (4, 3, 3), mean, std, np.float32)
    assert Z.shape == (50, 36) and Z.dtype == np.float32
    np.testing.assert_allclose(Z.reshape(-1, 3)[:, :2].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(Z.reshape(-1, 3)[:, :2].std(axis=0), 1.0, rtol=1e-4)


def test_chunked_reduction_matches_direct(monkeypatch):
    import engine.normalization as norm

    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, size=(30, 5, 5, 3), dtype=np.uint8)
    direct = fit_standardizer(imgs, True)
    monkeypatch.setattr(norm, "_CHUNK_ELEMENTS", 10)  # force many small passes
    chunked = fit_standardizer(imgs, True)
    np.testing.assert_allclose(direct[0], chunked[0], rtol=1e-6)
    np.testing.assert_allclose(direct[1], chunked[1], rtol=1e-6)


def test_identity():
    mean, std = identity_standardizer(4)
    np.testing.assert_array_equal(mean, 0.0)
    np.testing.assert_array_equal(std, 1.0)
    assert mean.dtype == np.float32


def _shifted_source():
    # train part (indices 0..59 after a pre-split) centred at (10, -4); dev/test far away at (100, 50)
    rng = np.random.default_rng(2)
    X_train = rng.normal([10.0, -4.0], [2.0, 0.5], size=(60, 2))
    X_other = rng.normal([100.0, 50.0], [30.0, 9.0], size=(40, 2))
    X = np.vstack([X_train, X_other])
    y = np.tile([0, 1], 50).astype(np.int64)
    presplit = {"train": np.arange(60), "dev": np.arange(60, 80), "test": np.arange(80, 100)}
    return SourceData(X=X, y=y, classes=["a", "b"], source="shifted.npz", presplit=presplit), X_train


def test_statistics_come_from_the_training_split_only():
    sd, X_train = _shifted_source()
    cfg = from_dict({"data": {"source": "shifted.npz", "normalize": "standard"}})
    prep = prepare_from_sources(cfg, {"main": sd})
    np.testing.assert_allclose(prep.norm_mean, X_train.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(prep.norm_std, X_train.std(axis=0), rtol=1e-6)
    all_mean = sd.X.mean(axis=0)
    assert np.all(np.abs(prep.norm_mean - all_mean) > 10)  # not the statistics of everything
    # dev is transformed with the train statistics, so it is far from zero mean
    dev_z = transform(prep.dev.X, prep.input_shape, prep.norm_mean, prep.norm_std, np.float32)
    assert np.all(dev_z.mean(axis=0) > 10)
    train_z = transform(prep.train.X, prep.input_shape, prep.norm_mean, prep.norm_std, np.float32)
    np.testing.assert_allclose(train_z.mean(axis=0), 0.0, atol=1e-5)


def test_normalize_none():
    sd, _ = _shifted_source()
    cfg = from_dict({"data": {"source": "shifted.npz", "normalize": "none"}})
    prep = prepare_from_sources(cfg, {"main": sd})
    np.testing.assert_array_equal(prep.norm_mean, [0.0, 0.0])
    np.testing.assert_array_equal(prep.norm_std, [1.0, 1.0])
    np.testing.assert_allclose(
        transform(prep.dev.X, (2,), prep.norm_mean, prep.norm_std, np.float64), prep.dev.X
    )
