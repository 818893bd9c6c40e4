"""Exactness and statistics of engine.augment (flips, affine sampler, crop, noise, colour)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.augment import Augmenter, _Sampler, affine_matrices, preview
from engine.config import AugmentConfig, ConfigError

ALL_ON = dict(
    hflip=0.5,
    vflip=0.5,
    rotate_deg=15.0,
    zoom=[0.9, 1.1],
    translate=0.1,
    crop_padding=4,
    noise_std=0.05,
    brightness=0.1,
    contrast=0.2,
)


def _images(n: int, h: int = 8, w: int = 8, c: int = 3, seed: int = 0) -> np.ndarray:
    """Random float32 images in 0..1, every pixel distinct (so a moved pixel is recognisable)."""
    return np.random.default_rng(seed).random((n, h, w, c), dtype=np.float32)


def _warp(batch: np.ndarray, *, angle=0.0, scale=1.0, hflip=False, vflip=False, shift=(0.0, 0.0)):
    """Run the internal affine sampler with the same fixed parameters for every image."""
    n, h, w, c = batch.shape
    mats = affine_matrices(
        np.full(n, angle),
        np.full(n, scale),
        np.full(n, hflip),
        np.full(n, vflip),
        np.tile(np.asarray(shift, dtype=float), (n, 1)),
        (h, w),
    )
    return _Sampler((h, w, c)).warp(batch, mats, np.empty_like(batch))


def _shift_edge(img: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Content moved down by dy and right by dx, borders replicated: (H, W, C) -> (H, W, C)."""
    h, w, _ = img.shape
    rows = np.clip(np.arange(h) - dy, 0, h - 1)
    cols = np.clip(np.arange(w) - dx, 0, w - 1)
    return img[rows][:, cols]


# ---------------------------------------------------------------- off / identity


def test_all_off_is_disabled_and_returns_input_unchanged():
    x = _images(5)
    aug = Augmenter(AugmentConfig(), (8, 8, 3), np.random.default_rng(0))
    assert aug.enabled is False
    y = aug.apply(x)
    assert y.dtype == np.float32 and y is not x
    assert np.array_equal(y.view(np.uint32), x.view(np.uint32))


def test_zero_strength_settings_are_identity():
    cfg = AugmentConfig(
        hflip=0.0,
        vflip=0.0,
        rotate_deg=0.0,
        zoom=[1.0, 1.0],
        translate=0.0,
        crop_padding=0,
        noise_std=0.0,
        brightness=0.0,
        contrast=0.0,
    )
    x = _images(4)
    aug = Augmenter(cfg, (8, 8, 3), np.random.default_rng(3))
    assert not aug.enabled
    out = np.empty_like(x)
    assert aug.apply(x, out=out) is out
    assert np.array_equal(out.view(np.uint32), x.view(np.uint32))


@pytest.mark.parametrize(
    "field,value",
    [
        ("hflip", 0.1),
        ("vflip", 0.1),
        ("rotate_deg", 1.0),
        ("zoom", [1.0, 1.2]),
        ("translate", 0.05),
        ("crop_padding", 1),
        ("noise_std", 0.01),
        ("brightness", 0.1),
        ("contrast", 0.1),
    ],
)
def test_any_single_transform_enables(field, value):
    aug = Augmenter(AugmentConfig(**{field: value}), (8, 8, 3), np.random.default_rng(0))
    assert aug.enabled


def test_p0_flip_with_other_pixel_transform_keeps_geometry():
    # flips at p=0 must not move pixels even when another transform is on
    x = np.full((6, 8, 8, 3), 0.5, dtype=np.float32)
    x[:, 0, 0] = 0.9  # a marker pixel, stays top-left
    aug = Augmenter(AugmentConfig(hflip=0.0, vflip=0.0, brightness=0.05), (8, 8, 3), np.random.default_rng(1))
    y = aug.apply(x)
    diff = y - x
    assert np.allclose(diff, diff[:, :1, :1, :1], atol=1e-6)  # one constant shift per image


def test_invalid_config_and_batch_are_refused():
    with pytest.raises(ConfigError, match="augment.hflip"):
        Augmenter(AugmentConfig(hflip=1.5), (8, 8, 3), np.random.default_rng(0))
    aug = Augmenter(AugmentConfig(hflip=1.0), (8, 8, 3), np.random.default_rng(0))
    with pytest.raises(ValueError):
        aug.apply(_images(2, 8, 9))
    with pytest.raises(ValueError):
        aug.apply(_images(2).astype(np.float64))


# ---------------------------------------------------------------- flips


def test_hflip_and_vflip_p1_mirror_exactly():
    x = _images(7, 6, 9)
    h = Augmenter(AugmentConfig(hflip=1.0), (6, 9, 3), np.random.default_rng(0)).apply(x)
    v = Augmenter(AugmentConfig(vflip=1.0), (6, 9, 3), np.random.default_rng(0)).apply(x)
    hv = Augmenter(AugmentConfig(hflip=1.0, vflip=1.0), (6, 9, 3), np.random.default_rng(0)).apply(x)
    assert np.array_equal(h, np.flip(x, axis=2))
    assert np.array_equal(v, np.flip(x, axis=1))
    assert np.array_equal(hv, np.flip(x, axis=(1, 2)))


def test_flips_folded_into_affine_map_are_exact():
    x = _images(3, 6, 9)
    assert np.array_equal(_warp(x, hflip=True), np.flip(x, axis=2))
    assert np.array_equal(_warp(x, vflip=True), np.flip(x, axis=1))


@pytest.mark.parametrize("extra", [{}, {"rotate_deg": 0.01}])  # flip-only path and affine path
def test_flip_fraction_matches_probability(extra):
    n, p = 3000, 0.3
    x = np.zeros((n, 4, 4, 1), dtype=np.float32)
    x[:, :, 0] = 1.0  # left column lit: a flipped image has it on the right
    y = Augmenter(AugmentConfig(hflip=p, **extra), (4, 4, 1), np.random.default_rng(5)).apply(x)
    flipped = np.all(y[:, :, 3, 0] == 1.0, axis=1)
    kept = np.all(y[:, :, 0, 0] == 1.0, axis=1)
    assert np.all(flipped ^ kept)  # every image is exactly one of the two
    assert abs(flipped.mean() - p) < 4 * np.sqrt(p * (1 - p) / n)


# ---------------------------------------------------------------- affine sampler


def test_identity_map_is_exact_for_square_and_non_square():
    for h, w in [(8, 8), (5, 7), (6, 3)]:
        x = _images(3, h, w)
        assert np.array_equal(_warp(x), x)


@pytest.mark.parametrize("angle,k", [(90.0, 1), (-90.0, -1), (180.0, 2)])
def test_rotation_by_quarter_turns_equals_rot90(angle, k):
    for size in (8, 7):
        x = _images(4, size, size)
        assert np.array_equal(_warp(x, angle=angle), np.rot90(x, k=k, axes=(1, 2)))


def test_zoom_out_by_two_samples_every_other_pixel():
    x = _images(2, 7, 7)
    idx = np.clip(2 * np.arange(7) - 3, 0, 6)  # source row/col of each output pixel, centre 3
    assert np.array_equal(_warp(x, scale=0.5), x[:, idx][:, :, idx])


def test_integer_translation_shifts_content_exactly():
    x = _images(3, 8, 10)
    y = _warp(x, shift=(2, -3))
    assert np.array_equal(y[:, 2:, :7], x[:, :6, 3:])
    for i in range(3):
        assert np.array_equal(y[i], _shift_edge(x[i], 2, -3))  # borders: edge pixels repeated


def test_sampler_handles_batches_larger_than_one_index_block(monkeypatch):
    x = _images(10, 8, 8)
    turns = np.arange(10) % 4  # a different quarter turn per image
    expected = np.stack([np.rot90(img, k=k) for img, k in zip(x, turns)])
    sampler = _Sampler((8, 8, 3))
    monkeypatch.setattr(sampler, "max_pixels", 3 * 64)  # three images per gather
    mats = affine_matrices(
        90.0 * turns, np.ones(10), np.zeros(10, bool), np.zeros(10, bool), np.zeros((10, 2)), (8, 8)
    )
    out = sampler.warp(x, mats, np.empty_like(x))
    assert np.array_equal(out, expected)


def test_sub_pixel_shifts_round_to_the_nearest_pixel():
    x = _images(2, 8, 10)
    assert np.array_equal(_warp(x, shift=(0.4, -0.4)), x)
    moved = _warp(x, shift=(0.6, -0.6))
    for i in range(2):
        assert np.array_equal(moved[i], _shift_edge(x[i], 1, -1))


def test_geometry_only_in_place_equals_out_of_place():
    cfg = AugmentConfig(rotate_deg=40.0, zoom=[0.8, 1.2], translate=0.2)
    x = _images(9, 8, 8)
    expected = Augmenter(cfg, (8, 8, 3), np.random.default_rng(6)).apply(x)
    y = x.copy()
    Augmenter(cfg, (8, 8, 3), np.random.default_rng(6)).apply(y, out=y)
    assert np.array_equal(y, expected) and not np.array_equal(y, x)


def test_crop_padding_moves_content_by_a_drawn_integer_offset():
    p, n = 3, 60
    x = _images(n, 10, 10)
    y = Augmenter(AugmentConfig(crop_padding=p), (10, 10, 3), np.random.default_rng(2)).apply(x)
    offsets = []
    for i in range(n):
        found = [
            (dy, dx)
            for dy in range(-p, p + 1)
            for dx in range(-p, p + 1)
            if np.array_equal(y[i], _shift_edge(x[i], dy, dx))
        ]
        assert len(found) == 1, f"image {i}: output is not one integer shift of the input"
        offsets.append(found[0])
    assert len(set(offsets)) > 10  # the offsets are drawn, not fixed
    assert {dy for dy, _ in offsets} == set(range(-p, p + 1))


def test_rotation_keeps_values_and_varies_between_images():
    x = _images(20, 16, 16)
    y = Augmenter(AugmentConfig(rotate_deg=30.0), (16, 16, 3), np.random.default_rng(0)).apply(x)
    for i in range(20):  # nearest-neighbour: every output pixel is some input pixel of the same image
        assert np.isin(y[i, :, :, 0], x[i, :, :, 0]).all()
    assert not np.array_equal(y, x)
    assert (np.mean(y == x, axis=(1, 2, 3)) < 0.9).sum() >= 15  # most images really turned


# ---------------------------------------------------------------- pixel transforms


def test_noise_has_requested_sigma_and_zero_mean():
    sigma = 0.05
    x = np.full((256, 16, 16, 3), 0.5, dtype=np.float32)
    y = Augmenter(AugmentConfig(noise_std=sigma), (16, 16, 3), np.random.default_rng(7)).apply(x)
    d = (y - x).astype(np.float64).ravel()
    assert y.min() > 0.0 and y.max() < 1.0  # no clipping happened
    assert abs(d.std() / sigma - 1.0) < 0.02
    assert abs(d.mean()) < 0.02 * sigma
    z = d / sigma  # Gaussian shape: 1σ and 2σ mass, kurtosis
    assert abs(np.mean(np.abs(z) < 1.0) - 0.6827) < 0.01
    assert abs(np.mean(np.abs(z) < 2.0) - 0.9545) < 0.005
    assert abs(np.mean(z**4) - 3.0) < 0.1
    assert np.corrcoef(z[:-1], z[1:])[0, 1] < 0.02  # neighbouring samples independent


def test_brightness_shifts_each_image_by_one_value_within_b():
    b = 0.2
    x = np.full((200, 4, 4, 3), 0.5, dtype=np.float32)
    x[:, 0, 0, 0] = 0.4
    y = Augmenter(AugmentConfig(brightness=b), (4, 4, 3), np.random.default_rng(1)).apply(x)
    shift = (y - x).reshape(200, -1)
    assert np.allclose(shift, shift[:, :1], atol=1e-6)
    assert np.all(np.abs(shift[:, 0]) <= b + 1e-6)
    assert shift[:, 0].min() < -0.15 and shift[:, 0].max() > 0.15  # spread over ±b


def test_contrast_keeps_mean_and_scales_deviations_within_range():
    c = 0.3
    x = 0.3 + 0.4 * _images(100, 6, 6)  # values stay unclipped for factors in [0.7, 1.3]
    y = Augmenter(AugmentConfig(contrast=c), (6, 6, 3), np.random.default_rng(4)).apply(x)
    xf, yf = x.reshape(100, -1).astype(np.float64), y.reshape(100, -1).astype(np.float64)
    mx, my = xf.mean(axis=1), yf.mean(axis=1)
    assert np.allclose(mx, my, atol=1e-5)
    dx, dy = xf - mx[:, None], yf - my[:, None]
    factor = (dx * dy).sum(axis=1) / (dx * dx).sum(axis=1)
    assert np.allclose(dy, factor[:, None] * dx, atol=1e-5)
    assert np.all((factor >= 1 - c - 1e-5) & (factor <= 1 + c + 1e-5))
    assert factor.min() < 0.8 and factor.max() > 1.2


def test_output_is_float32_and_clipped_to_unit_range():
    cfg = AugmentConfig(**{**ALL_ON, "noise_std": 0.5, "brightness": 1.0, "contrast": 1.0})
    x = _images(64, 8, 8)
    y = Augmenter(cfg, (8, 8, 3), np.random.default_rng(0)).apply(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert y.min() == 0.0 and y.max() == 1.0  # clipping did happen, at exactly the bounds


@pytest.mark.parametrize("shape", [(6, 9, 1), (9, 6, 3), (1, 1, 1)])
def test_all_on_works_for_gray_and_non_square_images(shape):
    x = _images(20, *shape)
    y = Augmenter(AugmentConfig(**ALL_ON), shape, np.random.default_rng(0)).apply(x)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.all((y >= 0.0) & (y <= 1.0))
    assert not np.array_equal(y, x)


def test_in_place_and_out_give_same_result_and_input_untouched():
    cfg = AugmentConfig(**ALL_ON)
    x = _images(16, 8, 8)
    keep = x.copy()
    a = Augmenter(cfg, (8, 8, 3), np.random.default_rng(9)).apply(x)
    assert np.array_equal(x, keep)
    y = x.copy()
    b = Augmenter(cfg, (8, 8, 3), np.random.default_rng(9)).apply(y, out=y)
    assert b is y and np.array_equal(a, b)


def test_same_seed_same_output_different_seed_different():
    cfg = AugmentConfig(**ALL_ON)
    x = _images(32, 8, 8)

    def run(seed):
        aug = Augmenter(cfg, (8, 8, 3), np.random.default_rng(seed))
        return aug.apply(x), aug.apply(x)  # two batches in a row

    first, second = run(11), run(11)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert not np.array_equal(first[0], first[1])  # successive batches differ
    assert not np.array_equal(first[0], run(12)[0])


def test_result_does_not_depend_on_chunking():
    cfg = AugmentConfig(**ALL_ON)
    x = _images(13, 8, 8)
    whole = Augmenter(cfg, (8, 8, 3), np.random.default_rng(21))
    chunked = Augmenter(cfg, (8, 8, 3), np.random.default_rng(21))
    chunked.chunk_values = 4 * 8 * 8 * 3  # four images per chunk, the last one partial
    assert np.array_equal(whole.apply(x), chunked.apply(x))
    y = x.copy()
    assert np.array_equal(whole.apply(x), chunked.apply(y, out=y))  # in place, chunk by chunk


def test_buffers_are_reused_across_batch_sizes():
    cfg = AugmentConfig(**ALL_ON)
    aug = Augmenter(cfg, (8, 8, 3), np.random.default_rng(0))
    for n in (16, 5, 16, 0, 3):
        y = aug.apply(_images(n, 8, 8, seed=n))
        assert y.shape == (n, 8, 8, 3) and np.all((y >= 0) & (y <= 1))


# ---------------------------------------------------------------- preview


def test_preview_returns_n_uint8_variants_reproducibly():
    img = (np.random.default_rng(0).random((12, 10, 3)) * 255).astype(np.uint8)
    cfg = AugmentConfig(**ALL_ON)
    a = preview(img, cfg, 6, seed=3)
    assert a.dtype == np.uint8 and a.shape == (6, 12, 10, 3)
    assert np.array_equal(a, preview(img, cfg, 6, seed=3))
    assert not np.array_equal(a, preview(img, cfg, 6, seed=4))
    assert len({v.tobytes() for v in a}) == 6  # six different variants


def test_preview_with_nothing_on_returns_the_image():
    img = (np.random.default_rng(1).random((5, 6, 3)) * 255).astype(np.uint8)
    out = preview(img, AugmentConfig(), 3, seed=0)
    assert np.array_equal(out, np.broadcast_to(img, (3, 5, 6, 3)))
    gray = preview(img[:, :, 0].astype(np.float32) / 255.0, AugmentConfig(hflip=1.0), 2, seed=0)
    assert gray.shape == (2, 5, 6, 1)
    assert np.array_equal(gray[0, :, :, 0], img[:, ::-1, 0])
