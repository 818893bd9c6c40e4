"""Weights as pictures: tiles are the weights reshaped, the mosaic's colours, the histogram, the diagram."""

import numpy as np
import pytest

from engine.insight.colors import DIVERGING_LUT, diverging_rgb
from engine.insight.weights import network_diagram, tile_mosaic, weight_histogram, weight_tiles
from engine.normalization import feature_matrix

RED, WHITE, BLUE = (178, 24, 43), (247, 247, 247), (33, 102, 172)


def test_tiles_are_the_weight_columns_reshaped():
    H, W, C, n = 4, 3, 2, 5
    W1 = np.arange(H * W * C * n, dtype=np.float64).reshape(H * W * C, n)
    tiles = weight_tiles(W1, (H, W, C))
    assert tiles.shape == (n, H, W, C)
    for j in range(n):
        for h in range(H):
            for w in range(W):
                for c in range(C):
                    # flattening order (H, W, C), channel fastest
                    assert tiles[j, h, w, c] == W1[(h * W + w) * C + c, j]


def test_tiles_line_up_with_how_images_are_flattened_for_the_network():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 5, 4, 3), dtype=np.uint8)
    W1 = rng.standard_normal((5 * 4 * 3, 7))
    tiles = weight_tiles(W1, (5, 4, 3))
    pre = feature_matrix(images, np.float64) @ W1  # what hidden unit j computes (before bias)
    by_tiles = np.einsum("nhwc,jhwc->nj", images / 255.0, tiles)
    np.testing.assert_allclose(pre, by_tiles, rtol=1e-12)


def test_tiles_of_gray_and_vector_inputs_and_bad_shapes():
    assert weight_tiles(np.zeros((12, 2)), (3, 4)).shape == (2, 3, 4, 1)
    assert weight_tiles(np.zeros((2, 8)), (2,)).shape == (8, 1, 2, 1)
    with pytest.raises(ValueError):
        weight_tiles(np.zeros((10, 2)), (3, 4))


def test_diverging_map_is_symmetric_about_zero():
    rgb = diverging_rgb(np.array([-2.0, -1.0, 0.0, 1.0, 5.0, np.nan]), vmax=1.0)
    assert [tuple(p) for p in rgb] == [BLUE, BLUE, WHITE, RED, RED, WHITE]
    assert DIVERGING_LUT.shape == (257, 3) and tuple(DIVERGING_LUT[128]) == WHITE
    half = diverging_rgb(np.array([-0.5, 0.5]), 1.0)
    # the same distance from white on both sides
    assert np.abs(half[0].astype(int) - WHITE).sum() == pytest.approx(
        np.abs(np.subtract(BLUE, WHITE)).sum() * 0.5, rel=0.02
    )
    assert np.abs(half[1].astype(int) - WHITE).sum() == pytest.approx(
        np.abs(np.subtract(RED, WHITE)).sum() * 0.5, rel=0.02
    )
    assert (diverging_rgb(np.ones(3), 0.0) == WHITE).all()


def test_mosaic_layout_and_global_versus_tile_scale():
    tiles = np.zeros((5, 3, 4, 1))
    tiles[0, 0, 0, 0] = 2.0  # the largest weight overall
    tiles[3, 1, 2, 0] = -0.5  # tile 3's largest weight
    m = tile_mosaic(tiles, scale="global", pad=1)
    assert m.shape == (2 * 4 - 1, 3 * 5 - 1, 3)  # 5 tiles -> 2 rows x 3 columns
    assert tuple(m[0, 0]) == RED
    assert tuple(m[0, 4]) == (128, 128, 128)  # the gap between tiles
    r, c = 1, 0  # tile 3: row 1, column 0 -> top-left pixel (4, 0)
    assert tuple(m[4 + 1, 0 + 2]) == tuple(diverging_rgb(np.array(-0.5), 2.0))  # a quarter blue
    assert tuple(m[4, 11]) == (128, 128, 128)  # the unused sixth cell
    m = tile_mosaic(tiles, scale="tile")
    assert tuple(m[4 + 1, 0 + 2]) == BLUE  # full colour at its own maximum
    assert tuple(m[4 + r, c]) == WHITE
    with pytest.raises(ValueError):
        tile_mosaic(tiles, scale="local")


def test_mosaic_of_colour_tiles():
    tiles = np.zeros((1, 1, 3, 3))
    tiles[0, 0, 0] = [1.0, 0.0, -1.0]
    m = tile_mosaic(tiles)
    assert tuple(m[0, 0]) == (255, 128, 0)  # 0 is mid-grey, +max full, -max none
    assert tuple(m[0, 1]) == (128, 128, 128)
    m = tile_mosaic(tiles, rgb="mean")
    assert tuple(m[0, 0]) == WHITE  # channel mean 0


def test_histogram_and_near_zero_share_relative_to_the_largest_weight():
    Ws = [np.array([[-1.0, -0.005], [0.0, 0.005]]), np.array([[0.5], [1.0 / 100]])]
    h = weight_histogram(Ws, bins=4, near_zero=0.01)
    assert h.max_abs == 1.0 and h.threshold == pytest.approx(0.01)
    np.testing.assert_allclose(h.edges, [-1.0, -0.5, 0.0, 0.5, 1.0])
    # bins [-1,-0.5) [-0.5,0) [0,0.5) [0.5,1]: -1 | -0.005 | 0, 0.005, 0.01 | 0.5
    assert h.counts.tolist() == [1, 1, 3, 1]
    assert h.n_weights == 6
    assert h.near_zero_share == pytest.approx(4 / 6)  # |w| <= 0.01: -0.005, 0, 0.005, 0.01
    assert h.per_layer_near_zero == pytest.approx((3 / 4, 1 / 2))
    assert h.to_dict()["counts"] == [1, 1, 3, 1]
    z = weight_histogram([np.zeros((2, 2))], bins=3)
    assert z.counts.tolist() == [0, 4, 0] and z.near_zero_share == 1.0


def test_network_diagram_nodes_and_edges_carry_the_weights():
    W = [np.arange(6, dtype=float).reshape(2, 3), -np.arange(6, dtype=float).reshape(3, 2)]
    b = [np.array([0.1, 0.2, 0.3]), np.array([-1.0, 1.0])]
    d = network_diagram(W, b)
    assert len(d.positions) == 7 and len(d.edges) == 12
    assert d.layer.tolist() == [0, 0, 1, 1, 1, 2, 2]
    assert d.positions[:, 0].tolist() == [0, 0, 1, 1, 1, 2, 2]
    assert d.positions[2:5, 1].tolist() == [1.0, 0.0, -1.0]  # centred, unit 0 on top
    assert d.bias.tolist() == [0, 0, 0.1, 0.2, 0.3, -1.0, 1.0]
    for (s, t), w in zip(d.edges, d.weights):
        layer = d.layer[s]
        assert d.layer[t] == layer + 1
        assert w == W[layer][d.unit[s], d.unit[t]]
    assert d.max_abs == 5.0
    assert d.node_index(2, 1) == 6
    seg = d.segments()
    assert seg.shape == (24, 2)
    np.testing.assert_array_equal(seg[0], d.positions[d.edges[0, 0]])
    np.testing.assert_array_equal(seg[1], d.positions[d.edges[0, 1]])
    with pytest.raises(ValueError):
        network_diagram([np.zeros((2, 3)), np.zeros((2, 2))])
