"""Files that declare more than they hold, or more than the machine has, are refused before
anything large is allocated: .npz member headers, zip bombs, idx headers, memory checks."""

from __future__ import annotations

import gzip
import io
import os
import re
import struct
import zipfile

import numpy as np
import pytest
from memprobe import probe

from engine.errors import DataError
from engine.images import limits, load_source
from engine.images.formats import read_idx


def npy_header(shape, dtype="<f8") -> bytes:
    """The bytes np.save writes before the data of an array of ``shape`` (version 1.0)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


def write_zip(path, members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def y_member(n: int) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.arange(n) % 2)
    return buf.getvalue()


def test_npy_header_helper_matches_numpy():
    buf = io.BytesIO()
    np.save(buf, np.zeros((3, 4)))
    assert buf.getvalue()[: len(npy_header((3, 4)))] == npy_header((3, 4))


def test_npz_declaring_8_terabytes_is_refused(tmp_path):
    # X.npy says (10**12, 8) float64 = 8 TB but holds 64 bytes
    write_zip(tmp_path / "big.npz", {"X.npy": npy_header((10**12, 8)) + bytes(64), "y.npy": y_member(1)})
    with pytest.raises(DataError) as info:
        load_source(str(tmp_path / "big.npz"), use_cache=False)
    assert str(info.value) == (
        "big.npz: member X.npy declares shape (1000000000000, 8) of float64 (58.2 TB) but holds 64 bytes"
    )


def write_bomb(path, n_bytes: int) -> None:
    """An .npz whose X.npy inflates to ``n_bytes`` of zeros (written in 1 MB steps)."""
    n_rows = n_bytes // (8 * 1024)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("X.npy", "w", force_zip64=True) as fh:
            fh.write(npy_header((n_rows, 1024)))
            zero = bytes(1 << 20)
            left = n_rows * 8 * 1024
            while left:
                step = min(left, len(zero))
                fh.write(zero[:step])
                left -= step
        zf.writestr("y.npy", y_member(n_rows))


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    path = tmp_path_factory.mktemp("bomb") / "bomb.npz"
    write_bomb(path, 1 << 30)  # 1 GiB of zeros, ~1 MB on disk (written once: it takes seconds)
    return path


def test_zip_bomb_is_refused_by_its_ratio(bomb):
    assert os.path.getsize(bomb) < 2 << 20
    with pytest.raises(DataError) as info:
        load_source(str(bomb), use_cache=False)
    # the compressed size depends a little on the zlib build; the ratio of zeros is ~1000:1
    assert re.fullmatch(
        r"bomb\.npz: member X: inflates \d+\.\d KB to 1\.0 GB \((\d+):1\), which looks like a "
        r"decompression bomb; refused",
        str(info.value),
    )
    assert int(re.search(r"\((\d+):1\)", str(info.value)).group(1)) > limits.MAX_COMPRESSION_RATIO


def test_small_highly_compressible_npz_still_loads(tmp_path):
    # below the 64 MB floor the ratio is never held against a file (zeros compress 1000:1)
    X = np.zeros((20, 4, 4), np.uint8)
    X[::2] = 255
    np.savez_compressed(tmp_path / "z.npz", X=X, y=np.arange(20) % 2)
    sd = load_source(str(tmp_path / "z.npz"), image_size=(4, 4), color="gray", use_cache=False)
    assert sd.X.shape == (20, 4, 4, 1) and sd.classes == ["0", "1"]


@pytest.mark.parametrize(
    ("X", "needle"),
    [
        (np.float64(3.0), r"X must have shape \(N, features\), \(N, H, W\) or \(N, H, W, C\); got \(\)"),
        (np.arange(4.0), r"X must have shape .*; got \(4,\)"),
    ],
)
def test_0d_and_1d_X_are_refused(tmp_path, X, needle):
    np.savez(tmp_path / "d.npz", X=X, y=np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match="d.npz: " + needle):
        load_source(str(tmp_path / "d.npz"), use_cache=False)


def test_member_that_is_not_npy_is_refused(tmp_path):
    write_zip(tmp_path / "n.npz", {"X.npy": b"hello, not numpy", "y.npy": y_member(2)})
    with pytest.raises(DataError, match=r"^n.npz: member X.npy is not an .npy array \(bad magic string\)$"):
        load_source(str(tmp_path / "n.npz"), use_cache=False)
    write_zip(tmp_path / "m.npz", {"X": b"plain bytes under the bare name", "y.npy": y_member(2)})
    with pytest.raises(DataError, match=r"^m.npz: member X is not an .npy array"):
        load_source(str(tmp_path / "m.npz"), use_cache=False)


@pytest.mark.parametrize("as_images", [False, True])
def test_one_class_npz_is_refused_at_load(tmp_path, as_images):
    X = np.zeros((6, 4, 4)) if as_images else np.zeros((6, 3))
    np.savez(tmp_path / "one.npz", X=X, y=np.full(6, 7))
    with pytest.raises(DataError, match=r"^one.npz: y holds 1 class \(7\); a classifier needs at least two$"):
        load_source(str(tmp_path / "one.npz"), use_cache=False)


def test_npz_larger_than_available_memory_is_refused(tmp_path, monkeypatch):
    np.savez(tmp_path / "d.npz", X=np.zeros((100, 10)), y=np.arange(100) % 2)
    monkeypatch.setattr(limits, "available_memory", lambda: 4000)
    with pytest.raises(DataError, match=r"^d.npz: needs 8\.\d KB of memory but only 3\.9 KB is available$"):
        load_source(str(tmp_path / "d.npz"), use_cache=False)


def idx_bytes(dims, data: bytes) -> bytes:
    return bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + data


def test_idx_dimensions_that_overflow_int64_are_refused(tmp_path):
    # 2**31 * 2**31 * 4 = 2**64, which wraps to 0 in int64 arithmetic
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes((2**31, 2**31, 4), b""))
    with pytest.raises(DataError) as info:
        read_idx(tmp_path / "train-images-idx3-ubyte", 3)
    assert str(info.value) == (
        "train-images-idx3-ubyte: data is shorter than the idx header declares (2147483648, 2147483648, 4) "
        "(16384.0 PB; the file holds 0 bytes)"
    )


def test_gzipped_idx_declaring_gigabytes_is_refused_before_reading(tmp_path):
    raw = idx_bytes((100_000, 200, 200), bytes(1000))  # declares 4 GB, holds 1 KB
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw))
    with pytest.raises(
        DataError, match=r"idx header declares \(100000, 200, 200\): inflates .* looks like a"
    ):
        read_idx(tmp_path / "train-images-idx3-ubyte.gz", 3)


def test_available_memory_is_plausible():
    avail = limits.available_memory()
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert avail is not None and 0 < avail <= total
    assert limits.human_bytes(1536) == "1.5 KB" and limits.human_bytes(12) == "12 bytes"
    assert limits.human_bytes(3 * 2**40) == "3.0 TB"


def test_refusals_exit_2_quickly_without_touching_gigabytes(tmp_path, bomb):
    np.savez(tmp_path / "ok.npz", X=np.zeros((10, 4, 4)), y=np.arange(10) % 2)
    write_zip(tmp_path / "big.npz", {"X.npy": npy_header((10**12, 8)) + bytes(64), "y.npy": y_member(1)})
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    (mnist / "train-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes((100_000, 200, 200), bytes(10)))
    )
    (mnist / "train-labels-idx1-ubyte").write_bytes(idx_bytes((100_000,), bytes(100_000)))
    cases = {
        "big": ["data", "--source", str(tmp_path / "big.npz")],
        "bomb": ["data", "--source", str(bomb)],
        "mnist": ["data", "--source", str(mnist)],
    }
    result = probe(["data", "--source", str(tmp_path / "ok.npz")], cases, tmp_path)
    for name, r in result.items():
        assert r["rc"] == 2, (name, r)
        lines = r["stderr"].splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, r)
        assert r["grow_kb"] < 64 * 1024, (name, r)
    assert "bomb.npz: member X: inflates" in result["bomb"]["stderr"]
    assert "train-images-idx3-ubyte.gz: idx header declares" in result["mnist"]["stderr"]
