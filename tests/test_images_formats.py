"""Array formats built here byte by byte: .npz, MNIST idx (raw and gzip), CIFAR-10 batches.

The CIFAR batches are pickles written exactly like the real ones (dicts with b'data' uint8
(N, 3072) and b'labels' lists); a malicious pickle must be refused without running.
"""

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from engine.errors import DataError
from engine.images import load_source
from engine.images.arrays import resample_matrix, resize_batch
from engine.images.formats import read_idx
from engine.images.unpickle import ALLOWED_GLOBALS, RefusedPickle, restricted_load

# ------------------------------------------------------------------ npz


def test_npz_float_images_and_string_labels(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.random((6, 8, 8)).astype(np.float32)  # 0..1 gray
    y = np.array(["dog", "cat", "dog", "emu", "cat", "dog"])
    np.savez(tmp_path / "d.npz", X=X, y=y)
    sd = load_source(str(tmp_path / "d.npz"), image_size=(8, 8), color="rgb", use_cache=False)
    assert sd.classes == ["cat", "dog", "emu"]
    np.testing.assert_array_equal(sd.y, [1, 0, 1, 2, 0, 1])
    assert sd.X.shape == (6, 8, 8, 3) and sd.X.dtype == np.uint8
    np.testing.assert_array_equal(sd.X[..., 0], np.rint(X * 255).astype(np.uint8))
    np.testing.assert_array_equal(sd.X[..., 0], sd.X[..., 2])
    # 0..255 floats are taken as they are
    np.savez(tmp_path / "e.npz", X=X * 255, y=y)
    sd2 = load_source(str(tmp_path / "e.npz"), image_size=(8, 8), color="gray", use_cache=False)
    np.testing.assert_array_equal(sd2.X[..., 0], np.rint(X * 255).astype(np.uint8))


def test_npz_rgba_uint8_with_class_names(tmp_path):
    X = np.zeros((4, 2, 2, 4), dtype=np.uint8)
    X[..., 0] = 255
    X[..., 3] = 255
    X[1, ..., 3] = 0  # fully transparent -> grey background
    np.savez(tmp_path / "r.npz", X=X, y=np.array([1, 0, 1, 1]), classes=np.array(["no", "yes"]))
    sd = load_source(str(tmp_path / "r.npz"), image_size=(2, 2), color="rgb", use_cache=False)
    assert sd.classes == ["no", "yes"] and sd.X.shape == (4, 2, 2, 3)
    assert tuple(sd.X[0, 0, 0]) == (255, 0, 0) and tuple(sd.X[1, 0, 0]) == (128, 128, 128)
    np.testing.assert_array_equal(sd.y, [1, 0, 1, 1])


def test_npz_feature_vectors_stay_float(tmp_path):
    X = np.arange(20, dtype=np.float64).reshape(5, 4) / 7
    np.savez(tmp_path / "f.npz", X=X, y=np.array([3, 1, 3, 1, 1]))
    sd = load_source(str(tmp_path / "f.npz"), use_cache=False)
    assert sd.X.dtype == np.float64 and sd.X.shape == (5, 4) and not sd.is_image
    np.testing.assert_array_equal(sd.X, X)
    assert sd.classes == ["1", "3"]
    np.testing.assert_array_equal(sd.y, [1, 0, 1, 0, 0])
    assert sd.report["n_features"] == 4


def test_npz_object_array_and_missing_keys_are_refused(tmp_path):
    np.savez(tmp_path / "o.npz", X=np.array([{"a": 1}, None], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DataError, match=r"o.npz: holds an object array"):
        load_source(str(tmp_path / "o.npz"), use_cache=False)
    np.savez(tmp_path / "k.npz", data=np.zeros((2, 3)))
    with pytest.raises(DataError, match=r"k.npz: missing array 'X'"):
        load_source(str(tmp_path / "k.npz"), use_cache=False)
    np.savez(tmp_path / "m.npz", X=np.zeros((3, 4)), y=np.array([0, 1]))
    with pytest.raises(DataError, match=r"y must have shape \(3,\)"):
        load_source(str(tmp_path / "m.npz"), use_cache=False)
    (tmp_path / "t.npz").write_text("just some text, not numpy")
    with pytest.raises(DataError, match=r"t.npz: not an .npz archive"):
        load_source(str(tmp_path / "t.npz"), use_cache=False)
    (tmp_path / "z.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="z.npz"):
        load_source(str(tmp_path / "z.npz"), use_cache=False)


def test_resize_matrix_matches_hand_values():
    # 4 -> 2: antialiased triangle of half-width 2 centred at 1 and 3 (pixel centres 0.5..3.5)
    w = resample_matrix(4, 2)
    np.testing.assert_allclose(w[0], np.array([0.75, 0.75, 0.25, 0]) / 1.75)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    X = np.zeros((1, 4, 4, 1), dtype=np.uint8)
    X[0, :, 2:] = 200
    out = resize_batch(X, (2, 2))
    assert out.shape == (1, 2, 2, 1)
    assert out[0, 0, 0, 0] == round(200 * 0.25 / 1.75) and out[0, 0, 1, 0] == round(200 * 1.5 / 1.75)


# ------------------------------------------------------------------ MNIST


def write_idx(path: Path, arr: np.ndarray, gz: bool) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def mnist_folder(root: Path, gz: bool, n_train=7, n_test=3) -> tuple[np.ndarray, np.ndarray]:
    root.mkdir()
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, (n_train + n_test, 28, 28), dtype=np.uint8)
    labels = np.arange(n_train + n_test) % 10
    write_idx(root / "train-images-idx3-ubyte", imgs[:n_train], gz)
    write_idx(root / "train-labels-idx1-ubyte", labels[:n_train], gz)
    write_idx(root / "t10k-images-idx3-ubyte", imgs[n_train:], gz)
    write_idx(root / "t10k-labels-idx1-ubyte", labels[n_train:], gz)
    return imgs, labels


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_folder_raw_and_gzip(tmp_path, gz):
    imgs, labels = mnist_folder(tmp_path / "mnist", gz)
    sd = load_source(str(tmp_path / "mnist"), image_size=(28, 28), color="gray", use_cache=False)
    assert sd.X.shape == (10, 28, 28, 1)
    np.testing.assert_array_equal(sd.X[..., 0], imgs)
    np.testing.assert_array_equal(sd.y, labels)
    assert sd.classes == [str(i) for i in range(10)]
    np.testing.assert_array_equal(sd.presplit["train"], np.arange(7))
    np.testing.assert_array_equal(sd.presplit["test"], np.arange(7, 10))
    assert len(sd.presplit["dev"]) == 0
    rgb = load_source(str(tmp_path / "mnist"), image_size=(32, 32), color="rgb", use_cache=False)
    assert rgb.X.shape == (10, 32, 32, 3) and rgb.report["original_size"]["mean"] == [28.0, 28.0]


def test_mnist_bad_magic_and_sizes(tmp_path):
    p = tmp_path / "x-idx3-ubyte"
    p.write_bytes(b"\x00\x00\x09\x03" + b"\x00" * 12)  # data type 0x09 (signed byte), not 0x08
    with pytest.raises(DataError, match="not unsigned byte"):
        read_idx(p, 3)
    p.write_bytes(struct.pack(">BBBB", 0, 0, 8, 1) + struct.pack(">I", 5) + b"\x00" * 4)  # 1 byte short
    with pytest.raises(DataError, match="shorter than the idx header"):
        read_idx(p, 1)
    p.write_bytes(struct.pack(">BBBB", 0, 0, 8, 1) + struct.pack(">I", 2) + b"\x00" * 3)
    with pytest.raises(DataError, match="longer than the idx header"):
        read_idx(p, 1)
    p.write_bytes(b"\x01\x02\x08\x03")
    with pytest.raises(DataError, match="bad magic"):
        read_idx(p, 3)
    root = tmp_path / "m"
    mnist_folder(root, gz=False)
    write_idx(root / "t10k-labels-idx1-ubyte", np.zeros(2, dtype=np.uint8), gz=False)  # 2 labels, 3 images
    with pytest.raises(DataError, match="2 labels for 3 images"):
        load_source(str(root), use_cache=False)


# ------------------------------------------------------------------ CIFAR-10


def cifar_folder(root: Path, n_per_batch=4, protocol=pickle.DEFAULT_PROTOCOL) -> None:
    root.mkdir()
    names = [
        b"airplane",
        b"automobile",
        b"bird",
        b"cat",
        b"deer",
        b"dog",
        b"frog",
        b"horse",
        b"ship",
        b"truck",
    ]
    for b, name in enumerate(["data_batch_1", "data_batch_2", "test_batch"]):
        data = np.zeros((n_per_batch, 3072), dtype=np.uint8)
        for i in range(n_per_batch):
            data[i, :1024] = 10 * b + i  # red plane
            data[i, 1024:2048] = 100  # green plane
            data[i, 2048:] = np.arange(1024) % 32  # blue: the column index (row-major 32x32)
        batch = {
            b"batch_label": f"batch {b}".encode(),
            b"labels": [(b + i) % 10 for i in range(n_per_batch)],
            b"data": data,
            b"filenames": [f"f{i}.png".encode() for i in range(n_per_batch)],
        }
        with open(root / name, "wb") as fh:
            pickle.dump(batch, fh, protocol=protocol)
    with open(root / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": names, b"num_cases_per_batch": n_per_batch}, fh, protocol=protocol)


def test_cifar_batches_via_restricted_unpickler(tmp_path):
    cifar_folder(tmp_path / "c")
    sd = load_source(str(tmp_path / "c"), image_size=(32, 32), color="rgb", use_cache=False)
    assert sd.classes[:3] == ["airplane", "automobile", "bird"] and len(sd.classes) == 10
    assert sd.X.shape == (12, 32, 32, 3)
    np.testing.assert_array_equal(sd.X[5, :, :, 0], 10 * 1 + 1)  # batch 2, image 1
    assert np.all(sd.X[..., 1] == 100)
    np.testing.assert_array_equal(sd.X[0, 7, :, 2], np.arange(32))  # columns, not rows
    np.testing.assert_array_equal(sd.y, [0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5])
    np.testing.assert_array_equal(sd.presplit["train"], np.arange(8))
    np.testing.assert_array_equal(sd.presplit["test"], np.arange(8, 12))


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running(tmp_path):
    cifar_folder(tmp_path / "c")
    marker = tmp_path / "pwned"
    with open(tmp_path / "c" / "test_batch", "wb") as fh:
        pickle.dump({b"data": Evil(marker), b"labels": [0]}, fh)
    with pytest.raises(DataError, match=r"test_batch: refused or unreadable pickle .*system"):
        load_source(str(tmp_path / "c"), use_cache=False)
    assert not marker.exists()
    # the restricted unpickler refuses any other global, e.g. builtins.eval
    with pytest.raises(RefusedPickle, match="refused to load builtins.eval"):
        restricted_load(pickle.dumps(eval))
    assert "numpy.ndarray" in ALLOWED_GLOBALS and "builtins.eval" not in ALLOWED_GLOBALS


def test_cifar_wrong_data_shape_is_refused(tmp_path):
    cifar_folder(tmp_path / "c")
    with open(tmp_path / "c" / "data_batch_2", "wb") as fh:
        pickle.dump({b"data": np.zeros((2, 100), dtype=np.uint8), b"labels": [0, 1]}, fh)
    with pytest.raises(DataError, match=r"data_batch_2: b'data' must be a uint8 array of shape \(N, 3072\)"):
        load_source(str(tmp_path / "c"), use_cache=False)
