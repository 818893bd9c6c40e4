"""Decision boundary: grid probabilities against predict_proba at the same raw points; the RGBA picture."""

import numpy as np
import pytest

from engine.insight.boundary import (
    BoundaryGrid,
    boundary_grid,
    boundary_rgba,
    confidence_lut,
    data_range,
    pixel_rect,
    unit_maps,
)
from engine.insight.colors import CLASS_COLORS
from engine.network import MLP

MEAN = np.array([0.5, -1.0])
STD = np.array([2.0, 0.5])


def _net(sizes=(2, 16, 16, 3), dtype="float32", seed=0):
    net = MLP(list(sizes), "relu", dtype=dtype)
    rng = np.random.default_rng(seed)
    net.initialize("he", 1.0, rng)
    for b in net.b:
        b[...] = rng.standard_normal(b.shape) * 0.2
    return net


def test_grid_probabilities_equal_predict_proba_at_the_raw_points():
    net = _net()
    probs, xs, ys = boundary_grid(net, MEAN, STD, (-3.0, 4.0), (-2.0, 1.0), resolution=30)
    assert probs.shape == (30, 30, 3) and xs.shape == (30,) and ys.shape == (30,)
    np.testing.assert_allclose(xs, np.linspace(-3, 4, 30))
    np.testing.assert_allclose(ys, np.linspace(-2, 1, 30))
    # independently: pixel (i, j) is the raw point (xs[j], ys[i]), normalized by hand
    points = np.array([[x, y] for y in ys for x in xs])
    expected = net.predict_proba(((points - MEAN) / STD).astype(np.float32)).reshape(30, 30, 3)
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=2), 1.0, rtol=1e-5)


def test_orientation_rows_follow_y_and_columns_follow_x():
    # a 2 -> 2 linear net whose class-1 logit is x (raw, since mean 0 / std 1): only columns change
    net = MLP([2, 2], dtype="float64")
    net.W[0][...] = [[0.0, 1.0], [0.0, 0.0]]
    probs, xs, ys = boundary_grid(net, [0, 0], [1, 1], (-2.0, 2.0), (0.0, 1.0), resolution=5)
    np.testing.assert_allclose(probs[:, :, 1], np.tile(1 / (1 + np.exp(-xs)), (5, 1)), rtol=1e-12)
    net.W[0][...] = [[0.0, 0.0], [0.0, 1.0]]  # now y: only rows change, row 0 = lowest y
    probs, xs, ys = boundary_grid(net, [0, 0], [1, 1], (-2.0, 2.0), (0.0, 1.0), resolution=5)
    np.testing.assert_allclose(probs[:, 0, 1], 1 / (1 + np.exp(-ys)), rtol=1e-12)
    assert probs[0, 0, 1] < probs[-1, 0, 1]


def test_boundary_grid_reuses_buffers_and_follows_the_network_without_touching_it():
    net = _net()
    grid = BoundaryGrid(20)
    grads, params = net.grads.copy(), net.params.copy()
    p1 = grid.compute(net, MEAN, STD, (-1, 1), (-1, 1))[0].copy()
    net.W[-1][...] *= -1  # training moved on: the next picture shows the new weights
    p2, xs, ys = grid.compute(net, MEAN, STD, (-1, 1), (-1, 1))
    assert not np.allclose(p1, p2)
    np.testing.assert_allclose(p2, boundary_grid(net, MEAN, STD, (-1, 1), (-1, 1), 20)[0], atol=1e-6)
    np.testing.assert_array_equal(net.grads, grads)
    net.W[-1][...] *= -1
    np.testing.assert_array_equal(net.params, params)
    other = _net((2, 5, 2), seed=1)  # another architecture: rebuilt, right shape
    p3 = grid.compute(other, MEAN, STD, (-1, 1), (-1, 1))[0]
    assert p3.shape == (20, 20, 2)
    with pytest.raises(ValueError):
        grid.compute(_net((3, 4, 2)), [0, 0, 0], [1, 1, 1], (-1, 1), (-1, 1))
    with pytest.raises(ValueError):
        BoundaryGrid(1)


def test_data_range_adds_the_margin_and_never_collapses():
    X = np.array([[0.0, 10.0], [4.0, 10.0], [2.0, 10.0]])
    (x0, x1), (y0, y1) = data_range(X, margin=0.25)
    assert (x0, x1) == (-1.0, 5.0)  # extent 4, 1 on each side
    assert (y0, y1) == (9.0, 11.0)  # flat: ±1
    with pytest.raises(ValueError):
        data_range(np.zeros((3, 3)))


def test_pixel_rect_covers_whole_pixels():
    xs, ys = np.linspace(0, 1, 3), np.linspace(10, 20, 6)
    assert pixel_rect(xs, ys) == pytest.approx((-0.25, 9.0, 1.5, 12.0))


def _blend(color, t):
    """Background white blended towards ``color`` by t, rounded (independent of confidence_lut)."""
    return tuple(int(np.rint(255 + t * (c - 255))) for c in color)


def test_rgba_takes_the_class_colour_with_intensity_equal_to_confidence():
    probs = np.array([[[0.5, 0.5], [1.0, 0.0]], [[0.0, 1.0], [0.25, 0.75]]], dtype=np.float32)
    rgba = boundary_rgba(probs)
    assert rgba.dtype == np.uint8 and rgba.shape == (2, 2, 4)
    assert tuple(rgba[0, 0]) == (255, 255, 255, 255)  # chance: background
    assert tuple(rgba[0, 1, :3]) == CLASS_COLORS[0]  # certain: the class colour
    assert tuple(rgba[1, 0, :3]) == CLASS_COLORS[1]
    # p = 0.75 of two classes: confidence (0.75 - 0.5) / 0.5 = 0.5, level round(127.5) = 128
    assert tuple(rgba[1, 1, :3]) == _blend(CLASS_COLORS[1], 128 / 255)
    assert (rgba[..., 3] == 255).all()


def test_rgba_three_classes_custom_colours_background_and_lut():
    colors = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
    probs = np.array([[[1 / 3, 1 / 3, 1 / 3], [0.1, 0.2, 0.7]]])
    rgba = boundary_rgba(probs, colors=colors, background=(0, 0, 0), alpha=200)
    assert tuple(rgba[0, 0]) == (0, 0, 0, 200)
    level = int((0.7 - 1 / 3) / (2 / 3) * 255 + 0.5)  # 140
    assert tuple(rgba[0, 1]) == (0, 0, int(np.rint(255 * level / 255)), 200)
    lut = confidence_lut(3, colors, (0, 0, 0), 200)
    np.testing.assert_array_equal(boundary_rgba(probs, lut=lut), rgba)


def test_unit_maps_are_each_hidden_units_activation_over_the_plane():
    net = _net((2, 4, 3, 2), dtype="float64")
    maps = unit_maps(net, MEAN, STD, (-1.0, 2.0), (0.0, 3.0), resolution=7)
    assert [m.shape for m in maps] == [(4, 7, 7), (3, 7, 7)]
    xs, ys = np.linspace(-1, 2, 7), np.linspace(0, 3, 7)
    i, j = 5, 2  # row = y index, column = x index
    f = (np.array([xs[j], ys[i]]) - MEAN) / STD
    a1 = np.maximum(f @ net.W[0] + net.b[0], 0)
    a2 = np.maximum(a1 @ net.W[1] + net.b[1], 0)
    np.testing.assert_allclose(maps[0][:, i, j], a1, rtol=1e-12)
    np.testing.assert_allclose(maps[1][:, i, j], a2, rtol=1e-12)
