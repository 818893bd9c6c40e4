"""data.feature_scale (features on different scales) and data.test_noise (a shifted test set)."""

import numpy as np
import pytest

from engine.config import ConfigError, from_dict
from engine.datasets2d import make_2d
from engine.images.shapes import make_shapes
from engine.prepare import load_sources, prepare_data


def test_feature_scale_multiplies_each_feature_of_a_generated_2d_set():
    cfg = from_dict(
        {"data": {"source": "builtin:moons", "n_samples": 50, "seed": 4, "feature_scale": [1, 100]}}
    )
    main = load_sources(cfg.data)["main"]
    plain = make_2d("moons", 50, cfg.data.noise, np.random.default_rng(4))
    np.testing.assert_array_equal(main.y, plain.y)
    np.testing.assert_allclose(main.X, plain.X * [1.0, 100.0], rtol=1e-15)
    assert from_dict({}).data.feature_scale == (1.0, 1.0)


def test_feature_scale_is_undone_by_standardization_only():
    base = {"source": "builtin:blobs", "n_samples": 300, "seed": 1, "feature_scale": [0.01, 50]}
    std = prepare_data(from_dict({"data": base}))
    raw = prepare_data(from_dict({"data": {**base, "normalize": "none"}}))
    np.testing.assert_allclose(std.norm_std / raw.train.X.std(axis=0), 1.0, rtol=1e-6)  # stored as float32
    assert raw.norm_std.tolist() == [1.0, 1.0]


def test_test_noise_shifts_only_a_generated_test_source_and_names_it():
    cfg = from_dict(
        {
            "data": {
                "source": "builtin:moons",
                "dev_source": "builtin:moons",
                "test_source": "builtin:moons",
                "n_samples": 200,
                "noise": 0.1,
                "test_noise": 0.6,
                "split": [0.7, 0.3],
                "seed": 2,
            }
        }
    )
    sources = load_sources(cfg.data)
    np.testing.assert_array_equal(sources["dev"].X, make_2d("moons", 200, 0.1, np.random.default_rng(3)).X)
    np.testing.assert_array_equal(sources["test"].X, make_2d("moons", 200, 0.6, np.random.default_rng(4)).X)
    assert sources["dev"].source == "builtin:moons" and sources["test"].source == "builtin:moons (noise 0.6)"
    data = prepare_data(cfg)
    assert any("dev and test come from different sources" in n and "noise 0.6" in n for n in data.notes)


def test_test_noise_on_images_and_its_default():
    cfg = from_dict(
        {
            "data": {
                "source": "builtin:shapes",
                "test_source": "builtin:shapes",
                "n_samples": 30,
                "image_size": [12, 12],
                "color": "gray",
                "noise": 0.0,
                "test_noise": 0.5,
                "seed": 0,
            }
        }
    )
    test = load_sources(cfg.data)["test"]
    ref = make_shapes(30, 0.5, np.random.default_rng(2), n_classes=3, image_size=(12, 12), color="gray")
    np.testing.assert_array_equal(test.X, ref.X)
    same = load_sources(cfg.replace(**{"data.test_noise": None}).data)["test"]
    assert same.source == "builtin:shapes"
    assert np.abs(same.X.astype(int) - test.X.astype(int)).mean() > 5  # the noisy copy really differs


@pytest.mark.parametrize(
    "data,needle",
    [
        ({"feature_scale": [1, 0]}, "data.feature_scale[1] must be in [0.001, 1000]"),
        ({"feature_scale": [1]}, "data.feature_scale must have 2 entries"),
        ({"test_noise": -1}, "data.test_noise must be in [0, 10]"),
    ],
)
def test_bad_values_name_the_field(data, needle):
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        from_dict({"data": data})
