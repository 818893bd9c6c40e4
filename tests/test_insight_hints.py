"""The insight views' readings in words, the landscape's sharpness, the why-normalize step count and
the fixed batch of an ArraySet, against hand-computed values."""

import math

import numpy as np
import pytest

from engine.dataset import ArraySet
from engine.insight.depthlab import DepthLab
from engine.insight.hints import depth_hint, format_ratio, layers_hint, power_of_ten, trend
from engine.insight.landscape import rise_width
from engine.insight.layers import fixed_batch, layer_statistics
from engine.insight.normalize_demo import DescentPicture, normalization_demo, steps_to_within
from engine.network import MLP


def test_power_of_ten_and_ratios_in_words():
    assert power_of_ten(1e-5) == "10⁻⁵"
    assert power_of_ten(3e-5) == "10⁻⁵"  # log10 = -4.52 rounds to -5
    assert power_of_ten(4e-5) == "10⁻⁴"
    assert power_of_ten(2.5e12) == "10¹²"
    assert power_of_ten(1.2) == "1" and power_of_ten(12) == "10" and power_of_ten(0.0) == "0"
    assert power_of_ten(math.inf) == "∞" and power_of_ten(math.nan) == "NaN"
    assert format_ratio(0.523) == "0.52" and format_ratio(38.4) == "38" and format_ratio(2e-4) == "10⁻⁴"
    assert [trend(r) for r in (1e-4, 0.05, 0.5, 5.0, 50.0, 2e3, 0.0, math.inf)] == [
        "vanishing", "shrinking", "level", "level", "growing", "exploding", "vanishing", "exploding",
    ]  # fmt: skip


def _layer(layer, grad, dead=None, sat=None, std=1.0):
    return {"layer": layer, "grad_std": grad, "act_std": std, "dead_share": dead, "saturated_share": sat}


def test_layers_hint_names_vanishing_exploding_dead_and_saturated_layers():
    vanishing = [_layer(1, 2e-6), _layer(2, 1e-3, dead=0.6), _layer(3, 0.2)]
    assert layers_hint(vanishing) == (
        "layer 1 gradients are 10⁻⁵ of the output layer's: vanishing; layer 2: 60 % of the ReLUs are dead"
    )
    exploding = [_layer(1, 5e4, sat=0.75), _layer(2, 3.0)]
    assert layers_hint(exploding) == (
        "layer 1 gradients are 10⁴ × the output layer's: exploding; layer 1: 75 % of the values are saturated"
    )
    assert layers_hint([_layer(1, 0.3, dead=0.2), _layer(2, 0.1)]) == (
        "gradients stay within a factor 10 from the output back to layer 1"
    )
    assert "diverged" in layers_hint([_layer(1, math.nan), _layer(2, 0.1)])
    # activations that grow 10⁸× over three hidden layers, and a saturated output that passes nothing
    exploding_acts = [
        _layer(1, 1.0, std=2.0),
        _layer(2, 1.0, std=3e3),
        _layer(3, 1.0, std=2e8),
        _layer(4, 0.0),
    ]
    assert layers_hint(exploding_acts) == (
        "layer 3's activations are 10⁸ × layer 1's: exploding; the output layer's gradient is 0 on this "
        "batch (its predictions are saturated at 0 or 1): no layer can learn"
    )
    assert "no gradient at all" in layers_hint([_layer(1, 0.0), _layer(2, 0.1)])


def test_layers_hint_on_a_real_deep_relu_network_with_small_weights():
    rng = np.random.default_rng(0)
    net = MLP([4] + [32] * 10 + [3], "relu", dtype="float64")
    net.initialize("he", 0.4, rng)  # each ReLU layer multiplies by about 0.4 (0.4^10 ≈ 1e-4)
    X, y = rng.standard_normal((128, 4)), rng.integers(0, 3, 128)
    stats = layer_statistics(net, X, y)
    ratio = stats[0].grad_std / stats[-1].grad_std  # per value: the widths (32 and 3) do not matter
    assert ratio < 1e-3
    acts = stats[-2].act_std / stats[0].act_std  # the signal shrinks forward too
    assert acts <= 1e-3
    expected = (
        f"layer 10's activations are {power_of_ten(acts)} × layer 1's: vanishing; "
        f"layer 1 gradients are {power_of_ten(ratio)} of the output layer's: vanishing"
    )
    assert layers_hint(stats) == expected
    assert layers_hint([s.to_dict() for s in stats]) == expected  # the dicts statsArrived carries


@pytest.mark.parametrize(
    "scale, verdict", [(0.5, "vanishing"), (1.0, "level (within a factor 10)"), (1.5, "exploding")]
)
def test_depth_hint_for_a_linear_xavier_network(scale, verdict):
    p = DepthLab(30, 64, "linear", "xavier", seed=2).profile(scale)
    text = depth_hint(p.activation_std, p.grad_norm)
    act = p.activation_std[-2] / p.activation_std[0]
    grad = p.grad_norm[0] / p.grad_norm[-2]
    assert text == (
        f"after 30 layers the activations' std is {format_ratio(act)} × the input's and the gradient at "
        f"the input is {format_ratio(grad)} × the last layer's: {verdict}"
    )
    if scale != 1.0:  # 0.5^30 ≈ 1e-9 and 1.5^30 ≈ 2e5, in both directions
        assert abs(math.log10(act) - 30 * math.log10(scale)) < 1.0
        assert abs(math.log10(grad) - 30 * math.log10(scale)) < 1.0


def test_depth_hint_for_zero_weights_and_overflow():
    p = DepthLab(5, 8, "relu", "zeros").profile(1.0)
    assert depth_hint(p.activation_std, p.grad_norm).startswith("every activation and gradient is 0")
    assert "overflow" in depth_hint([1.0, math.inf, math.inf, 1.0], [1.0, 1.0, 1.0, 1.0])


def test_rise_width_of_a_parabola_and_of_a_flat_slice():
    alphas = np.linspace(-1, 1, 21)
    alphas[10] = 0.0
    loss = 1.0 + alphas**2  # rises by 0.1 at |α| = √0.1; interpolated between 0.3 (0.09) and 0.4 (0.16)
    crossing = 0.3 + (0.1 - 0.09) / (0.16 - 0.09) * 0.1
    assert rise_width(alphas, loss) == pytest.approx(2 * crossing, rel=1e-12)
    assert rise_width(alphas, 1.0 + 4 * alphas**2) < rise_width(alphas, loss)  # sharper: narrower
    assert rise_width(alphas, np.full(21, 0.5)) is None  # flat over the whole slice
    skewed = 1.0 + np.where(alphas > 0, 10 * alphas**2, 0.05 * alphas**2)
    assert rise_width(alphas, skewed) is None  # never rises by 0.1 on the left
    nan_right = loss.copy()
    nan_right[12:] = np.nan  # a diverged evaluation counts as a rise
    assert rise_width(alphas, nan_right) == pytest.approx(alphas[12] + crossing)


def test_steps_to_within_counts_the_first_step_inside_the_radius():
    path = np.array([[1.0, 0.0], [0.5, 0.0], [0.1, 0.0], [0.009, 0.0], [0.0, 0.0]])
    pic = DescentPicture(
        np.zeros(2), np.zeros(2), np.zeros((2, 2)), path, np.zeros(5), np.zeros(2), np.ones(2), 0.1, 1.0
    )
    assert steps_to_within(pic, 0.01) == 3  # 0.009 ≤ 0.01 · 1.0
    assert steps_to_within(pic, 0.2) == 2
    assert steps_to_within(pic, 0.0) == 4
    demo = normalization_demo(scale=20.0, steps=3000)
    # the standardized problem at its own best rate gets there far sooner than the raw one
    raw, own = steps_to_within(demo.raw), steps_to_within(demo.normalized_own_lr)
    assert own is not None and raw is not None and own * 20 < raw
    d = np.linalg.norm(demo.raw.path - demo.raw.minimum, axis=1)
    assert d[raw] <= 0.01 * d[0] < d[raw - 1]


def test_fixed_batch_of_an_array_set_reads_only_its_rows():
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, (900, 4, 4, 3), dtype=np.uint8)
    y = rng.integers(0, 3, 900)
    idx = np.sort(rng.choice(900, 700, replace=False))
    s = ArraySet(base, y[idx], idx)
    mean, std = np.full(48, 0.5, np.float32), np.full(48, 0.25, np.float32)
    X1, y1 = fixed_batch(s, s.y, mean, std, n=256, seed=3)
    X2, y2 = fixed_batch(s.X, s.y, mean, std, n=256, seed=3)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    # the rows are a seeded sample, in set order, normalized as training does: (x/255 − mean)/std
    pick = np.sort(np.random.default_rng(3).choice(700, 256, replace=False))
    np.testing.assert_allclose(X1, (base[idx[pick]].reshape(256, -1) / 255.0 - 0.5) / 0.25, atol=1e-6)
