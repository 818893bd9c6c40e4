"""CIFAR-10 batches as untrusted pickles: what genuine batches contain loads, nothing else does.

Genuine batches are built three ways: the opcode stream Python 2's cPickle writes (the real
CIFAR-10 files, assembled here byte by byte), Python 3 ``pickle.dumps`` with every protocol
0-5, and labels stored as NumPy scalars or arrays. The expected arrays are the ones put in,
and the unrestricted ``pickle.loads`` of the same (trusted, test-made) bytes is the
independent reference. Malicious pickles are refused with exit status 2, one stderr line,
and no large allocation (peak RSS growth measured inside a subprocess).
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from memprobe import probe

from engine.errors import DataError
from engine.images import load_source
from engine.images.unpickle import RefusedPickle, restricted_load

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ a Python 2 cPickle stream


class Py2Pickler:
    """Writes the opcodes Python 2.7's cPickle.dump(obj, f, 2) writes for CIFAR batches:
    str as SHORT_BINSTRING/BINSTRING, every non-trivial object memoized with BINPUT,
    bools as NEWFALSE/NEWTRUE, lists appended in MARK ... APPENDS batches of 1000,
    numpy arrays and dtypes through their __reduce__ (GLOBAL + REDUCE + BUILD)."""

    def __init__(self) -> None:
        self.out = bytearray(b"\x80\x02")
        self.memo = 0

    def put(self) -> None:
        self.memo += 1
        self.out += b"q" + bytes([self.memo]) if self.memo < 256 else b"r" + struct.pack("<I", self.memo)

    def int(self, v: int) -> None:
        if 0 <= v < 256:
            self.out += b"K" + bytes([v])
        elif 0 <= v < 65536:
            self.out += b"M" + struct.pack("<H", v)
        else:
            self.out += b"J" + struct.pack("<i", v)

    def str(self, s: bytes) -> None:
        self.out += (b"U" + bytes([len(s)]) if len(s) < 256 else b"T" + struct.pack("<i", len(s))) + s
        if len(s) > 1:
            self.put()

    def glob(self, module: str, name: str) -> None:
        self.out += b"c" + module.encode() + b"\n" + name.encode() + b"\n"
        self.put()

    def tuple(self, items) -> None:
        if len(items) <= 3:
            for v in items:
                self.save(v)
            self.out += {0: b")", 1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(items)]
        else:
            self.out += b"("
            for v in items:
                self.save(v)
            self.out += b"t"
            self.put()

    def dtype(self, dt: np.dtype) -> None:
        self.glob("numpy", "dtype")
        self.tuple([dt.str[1:].encode(), 0, 1])  # Python 2 numpy passes ints for align/copy
        self.out += b"R"
        self.put()
        self.tuple([3, dt.str[0].encode(), None, None, None, -1, -1, 0])
        self.out += b"b"

    def array(self, a: np.ndarray) -> None:
        self.glob("numpy.core.multiarray", "_reconstruct")
        self.glob("numpy", "ndarray")
        self.tuple([0])
        self.str(b"b")
        self.out += b"\x87R"
        self.put()
        self.out += b"("
        self.int(1)
        self.tuple(list(a.shape))
        self.dtype(a.dtype)
        self.out += b"\x89"  # NEWFALSE: not Fortran-ordered
        self.str(a.tobytes())
        self.out += b"t"
        self.put()
        self.out += b"b"

    def save(self, v) -> None:
        if v is None:
            self.out += b"N"
        elif isinstance(v, bool):
            self.out += b"\x88" if v else b"\x89"
        elif isinstance(v, int):
            self.int(v)
        elif isinstance(v, bytes):
            self.str(v)
        elif isinstance(v, np.ndarray):
            self.array(v)
        elif isinstance(v, list):
            self.out += b"]"
            self.put()
            for s in range(0, len(v), 1000):
                self.out += b"("
                for item in v[s : s + 1000]:
                    self.save(item)
                self.out += b"e"
        elif isinstance(v, dict):
            self.out += b"}"
            self.put()
            self.out += b"("
            for k, item in v.items():
                self.save(k)
                self.save(item)
            self.out += b"u"
        else:
            raise TypeError(type(v))

    def dumps(self, obj) -> bytes:
        self.save(obj)
        return bytes(self.out + b".")


def batch(n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), [int(v) for v in rng.integers(0, 10, n)]


NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


def write_py2_cifar(root: Path, n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """data_batch_1, data_batch_2 and test_batch as Python 2 wrote them (1200 labels in one
    batch exercise the 1000-item APPENDS batching)."""
    root.mkdir(parents=True, exist_ok=True)
    Xs, ys = [], []
    for i, (fname, size) in enumerate([("data_batch_1", 1200), ("data_batch_2", n), ("test_batch", n)]):
        data, labels = batch(size, i)
        obj = {
            b"batch_label": f"training batch {i + 1} of 5".encode(),
            b"labels": labels,
            b"data": data,
            b"filenames": [f"img_{i}_{k}.png".encode() for k in range(size)],
        }
        (root / fname).write_bytes(Py2Pickler().dumps(obj))
        Xs.append(data)
        ys.append(labels)
    meta = {b"num_cases_per_batch": 10000, b"label_names": NAMES, b"num_vis": 3072}
    (root / "batches.meta").write_bytes(Py2Pickler().dumps(meta))
    return np.concatenate(Xs), np.concatenate(ys)


def to_images(data: np.ndarray) -> np.ndarray:
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def test_python2_stream_is_what_cpickle_writes_and_loads(tmp_path):
    data, labels = batch(3, 7)
    raw = Py2Pickler().dumps({b"data": data, b"labels": labels})
    # the opcodes of a real CIFAR-10 batch: protocol 2, py2 str keys, numpy.core._reconstruct
    assert raw.startswith(b"\x80\x02}q\x01(U\x04dataq\x02cnumpy.core.multiarray\n_reconstruct\nq\x03")
    assert b"cnumpy\nndarray\nq\x04K\x00\x85U\x01b\x87Rq\x05(K\x01K\x03M\x00\x0c\x86cnumpy\ndtype\n" in raw
    assert b"U\x02u1q\x07K\x00K\x01\x87R" in raw and b"\x89T\x00$\x00\x00" in raw  # 3*3072 = 0x2400 bytes
    # the trusted reference (unrestricted, with the real numpy) and ours agree
    ref = pickle.loads(raw, encoding="bytes")
    ours = restricted_load(raw)
    assert set(ours) == {b"data", b"labels"}
    np.testing.assert_array_equal(ours[b"data"], data)
    np.testing.assert_array_equal(ours[b"data"], ref[b"data"])
    assert ours[b"data"].dtype == np.uint8 and ours[b"data"].shape == (3, 3072)
    assert ours[b"labels"] == labels == ref[b"labels"]


def test_python2_cifar_folder_loads(tmp_path):
    X, y = write_py2_cifar(tmp_path / "c")
    sd = load_source(str(tmp_path / "c"), image_size=(32, 32), color="rgb", use_cache=False)
    assert sd.classes == [n.decode() for n in NAMES]
    np.testing.assert_array_equal(sd.X, to_images(X))
    np.testing.assert_array_equal(sd.y, y)
    np.testing.assert_array_equal(sd.presplit["train"], np.arange(1205))
    np.testing.assert_array_equal(sd.presplit["test"], np.arange(1205, 1210))


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize("labels_as", ["list", "numpy_scalars", "array"])
def test_python3_batches_every_protocol(tmp_path, protocol, labels_as):
    data, labels = batch(4, protocol)
    if labels_as == "numpy_scalars":
        stored = [np.int64(v) for v in labels]
    elif labels_as == "array":
        stored = np.array(labels, dtype=np.int64)
    else:
        stored = labels
    root = tmp_path / "c"
    root.mkdir()
    obj = {"batch_label": "py3", "labels": stored, "data": data, "filenames": [b"", b"a.png", b"b", b"c"]}
    (root / "data_batch_1").write_bytes(pickle.dumps(obj, protocol=protocol))
    sd = load_source(str(root), image_size=(32, 32), use_cache=False)
    np.testing.assert_array_equal(sd.X, to_images(data))
    np.testing.assert_array_equal(sd.y, labels)
    # the stream of each protocol holds what the docstring says it does
    raw = (root / "data_batch_1").read_bytes()
    if protocol <= 2:
        assert b"_codecs" in raw and b"encode" in raw
    if protocol == 5:
        assert b"_frombuffer" in raw


def test_fortran_ordered_and_big_endian_arrays(tmp_path):
    a = np.asfortranarray(np.arange(24, dtype=">i4").reshape(4, 6))
    for protocol in (2, 5):
        out = restricted_load(pickle.dumps({"a": a}, protocol=protocol))["a"]
        np.testing.assert_array_equal(out, a)
        assert out.dtype == np.dtype(">i4")


# ------------------------------------------------------------------ malicious pickles


class Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned-marker",))


def _op_global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def malicious() -> dict[str, bytes]:
    """name -> pickle bytes; each would allocate gigabytes or run code if loaded naively."""
    huge = 10**12
    cases = {}
    # numpy.ndarray called as a constructor with a huge shape (REDUCE), or through NEWOBJ
    cases["ndarray_constructor"] = (
        b"\x80\x02" + _op_global("numpy", "ndarray") + b"J" + struct.pack("<i", 2**31 - 1) + b"\x85\x85R."
    )
    cases["ndarray_newobj"] = b"\x80\x02" + _op_global("numpy", "ndarray") + b"J\xff\xff\xff\x7f\x85\x85\x81."
    # _reconstruct asked for a huge array straight away
    cases["reconstruct_huge"] = (
        b"\x80\x02"
        + _op_global("numpy.core.multiarray", "_reconstruct")
        + _op_global("numpy", "ndarray")
        + b"\x8a\x06"
        + huge.to_bytes(6, "little")
        + b"\x85C\x01b\x87R."
    )
    # a genuine-looking array whose state declares far more than it holds
    p = Py2Pickler()
    p.glob("numpy.core.multiarray", "_reconstruct")
    p.glob("numpy", "ndarray")
    p.tuple([0])
    p.str(b"b")
    p.out += b"\x87R("
    p.int(1)
    p.out += b"J\xff\xff\xff\x7fM\x00\x0c\x86"
    p.dtype(np.dtype(np.uint8))
    p.out += b"\x89U\x03abctb."
    cases["state_declares_more"] = bytes(p.out)
    # os.system through GLOBAL (protocol 2) and STACK_GLOBAL (protocol 4)
    cases["os_system_global"] = pickle.dumps({b"data": Evil()}, protocol=2)
    cases["os_system_stack_global"] = pickle.dumps({b"data": Evil()}, protocol=4)
    cases["builtins_eval"] = pickle.dumps(eval, protocol=2)
    code = b"bytearray(10**12)"
    cases["eval_call"] = (
        b"\x80\x02" + _op_global("builtins", "eval") + b"X" + struct.pack("<I", len(code)) + code + b"\x85R."
    )
    # numpy.frombuffer with a huge count, and the protocol-5 helper with a huge shape
    cases["frombuffer_count"] = (
        b"\x80\x02"
        + _op_global("numpy", "frombuffer")
        + b"C\x03abcX\x02\x00\x00\x00u1J\xff\xff\xff\x7f\x87R."
    )
    p = Py2Pickler()
    p.glob("numpy._core.numeric", "_frombuffer")
    p.out += b"(C\x03abc"
    p.dtype(np.dtype(np.uint8))
    p.out += b"J\xff\xff\xff\x7f\x85X\x01\x00\x00\x00CtR."
    cases["_frombuffer_shape"] = bytes(p.out)
    # nested references: 64 levels, each a list holding the level below twice (2**64 leaves),
    # plus a list that contains itself, as the labels
    p = Py2Pickler()
    p.out += b"}("
    p.str(b"data")
    p.array(np.zeros((2, 3072), np.uint8))
    p.str(b"labels")
    p.out += b"]"
    p.put()
    m = bytes([p.memo])
    for _ in range(64):  # each level: drop the previous list from the stack, push [previous, previous]
        p.out += b"0(h" + m + b"h" + m + b"lq" + m
    p.str(b"self")
    p.out += b"]"
    p.put()
    p.out += b"h" + bytes([p.memo]) + b"a"  # a list that contains itself
    cases["nested_references"] = bytes(p.out + b"u.")
    # a memo index that would make the C unpickler resize its memo to 32 GB
    cases["memo_index"] = b"\x80\x02Nr\xf0\xff\xff\xff."
    # a bytes opcode declaring 16 GB in a file of a few bytes
    cases["bytes8_length"] = b"\x80\x04\x8e" + struct.pack("<Q", 1 << 34) + b"abc."
    # out-of-band buffer and an object array
    cases["out_of_band"] = pickle.dumps(
        {b"data": np.zeros((2, 3072), np.uint8)}, protocol=5, buffer_callback=lambda b: False
    )
    cases["object_array"] = pickle.dumps({b"data": np.array([1, None], dtype=object)}, protocol=2)
    cases["extension_code"] = b"\x80\x02\x82\x01."
    return cases


def test_each_malicious_pickle_is_refused_in_process():
    cases = malicious()
    # shared and cyclic references are plain containers: they load (cheaply) and are refused
    # later as labels; see the subprocess test below
    nested = restricted_load(cases.pop("nested_references"))
    level = nested[b"labels"]
    for _ in range(64):
        assert len(level) == 2 and level[0] is level[1]
        level = level[0]
    assert level == [] and nested[b"self"][0] is nested[b"self"]
    for name, raw in cases.items():
        with pytest.raises(RefusedPickle):
            restricted_load(raw)
        assert not Path("pwned-marker").exists(), name


def test_malicious_batches_exit_2_with_bounded_memory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folders = {}
    write_py2_cifar(tmp_path / "genuine")
    folders["genuine"] = str(tmp_path / "genuine")
    for name, raw in malicious().items():
        root = tmp_path / name
        root.mkdir()
        (root / "test_batch").write_bytes(raw)
        folders[name] = str(root)
    warm = ["data", "--source", folders.pop("genuine")]
    result = probe(warm, {name: ["data", "--source", f] for name, f in folders.items()}, tmp_path)
    assert set(result) == set(malicious())
    for name, r in result.items():
        assert r["rc"] == 2, (name, r)
        lines = r["stderr"].splitlines()
        expected = (
            "b'labels' must hold integers" if name == "nested_references" else "refused or unreadable pickle"
        )
        assert len(lines) == 1 and lines[0].startswith(f"error: test_batch: {expected}"), (name, r)
        assert "Traceback" not in r["stderr"]
        assert r["grow_kb"] < 64 * 1024, (name, r)  # peak RSS grew by less than 64 MB
    assert not (tmp_path / "pwned-marker").exists()


def test_os_system_pickle_through_the_real_command_line(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    (root / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil(), b"labels": [0]}, protocol=4))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "data", "--source", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=dict(os.environ, REGLAB_CACHE_DIR=str(tmp_path / "cache")),
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: data_batch_1: refused or unreadable pickle (refused to load posix.system)"
    )
    assert not (tmp_path / "pwned-marker").exists()


def test_labels_must_be_flat_integers(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    data, _ = batch(2, 0)
    for labels, needle in [
        ([[1, 2], [3]], "must hold integers"),
        ([1.5, 2.0], "must hold integers"),
        ([True, False], "must hold integers"),
        ([1], "must be a list of 2 integers"),
        (np.zeros((2, 1), np.int64), "must be 2 integers"),
    ]:
        (root / "data_batch_1").write_bytes(pickle.dumps({b"data": data, b"labels": labels}, protocol=2))
        with pytest.raises(DataError, match=needle):
            load_source(str(root), use_cache=False)
