"""A restricted unpickler for CIFAR-10 python batches, which are untrusted pickles.

Genuine batches need very little: dicts, lists, strings/bytes and numbers, plus NumPy
arrays and scalars as NumPy pickles them. Those arrive in four shapes:

- ``numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b')`` followed by a BUILD
  with ``(1, shape, dtype, fortran, raw_bytes)``: every protocol below 5, Python 2's cPickle
  (the real CIFAR-10 files) included; NumPy 2 names ``numpy._core.multiarray``;
- ``numpy._core.numeric._frombuffer(buffer, dtype, shape, order)``: protocol 5 (the buffer
  in-band; out-of-band buffers are refused);
- ``numpy.core.multiarray.scalar(dtype, raw_bytes)``: NumPy scalars such as labels stored
  as ``np.int64``;
- ``numpy.dtype(code, align, copy)`` followed by a BUILD with its state tuple; and, for
  bytes objects written by Python 3 with protocol 0-2, ``_codecs.encode(text, 'latin1')``
  (``bytes()`` for an empty one).

None of the real NumPy callables is ever handed to the unpickler. Each allowed name maps to
a small stand-in that checks its arguments (a known plain dtype; a byte string exactly as
long as the shape and dtype declare; the ``(0,)`` placeholder shape of ``_reconstruct``)
and only then wraps the bytes with ``np.frombuffer`` (no copy). ``numpy.ndarray`` is only a
marker: called as a constructor (``ndarray((10**12,), ...)``) it is refused, so a tiny file
cannot allocate gigabytes. Every other global is refused before anything runs.

Before unpickling, :func:`pickletools.genops` walks the opcode stream (no objects are built):
it refuses out-of-band buffers, extension codes, persistent ids, class-instantiating
opcodes (INST, OBJ, NEWOBJ), memo indices beyond the stream and streams with absurdly many
opcodes, and it fails on a length that runs past the end of the data, without allocating
that length.
"""

from __future__ import annotations

import io
import math
import pickle
import pickletools

import numpy as np

MAX_OPCODES = 5_000_000  # a real 10,000-image batch has about 40,000
MAX_NDIM = 32
_ALLOWED_DTYPES = frozenset({"b1", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8"})
_REFUSED_OPCODES = frozenset(
    {
        "NEXT_BUFFER",  # out-of-band buffers
        "READONLY_BUFFER",
        "EXT1",  # copyreg extension registry
        "EXT2",
        "EXT4",
        "PERSID",
        "BINPERSID",
        "INST",  # these build instances of classes named in the stream
        "OBJ",
        "NEWOBJ",
        "NEWOBJ_EX",
    }
)
_PUT_OPCODES = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


class RefusedPickle(pickle.UnpicklingError):
    """The pickle uses something a genuine CIFAR batch does not."""


def _text(value, what: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("ascii")
        except UnicodeDecodeError:
            raise RefusedPickle(f"{what} is not ASCII") from None
    if isinstance(value, str):
        return value
    raise RefusedPickle(f"{what} must be a string, got {type(value).__name__}")


class _Stub:
    """Base of the stand-ins: no attributes can be set on them and no state can be given
    except where a stand-in defines it."""

    __slots__ = ()

    def __setstate__(self, state) -> None:
        raise RefusedPickle(f"{type(self).__name__.strip('_')} takes no state")


class _Callable(_Stub):
    __slots__ = ("_fn", "_name")

    def __init__(self, fn, name: str) -> None:
        object.__setattr__(self, "_fn", fn)
        object.__setattr__(self, "_name", name)

    def __call__(self, *args):
        return self._fn(*args)

    def __setstate__(self, state) -> None:
        raise RefusedPickle(f"{self._name} takes no state")


class _NdarrayMarker(_Stub):
    """Stands for ``numpy.ndarray``: only an argument of ``_reconstruct``, never called."""

    __slots__ = ()

    def __call__(self, *args):
        raise RefusedPickle("numpy.ndarray may not be called as a constructor")


_NDARRAY = _NdarrayMarker()


class _Dtype(_Stub):
    """``numpy.dtype(code, align, copy)``; complete once its BUILD state has been checked."""

    __slots__ = ("code", "dtype")

    def __init__(self, code, align=False, copy=True) -> None:
        code = _text(code, "dtype code")
        if code not in _ALLOWED_DTYPES:
            raise RefusedPickle(f"dtype {code!r} is not a plain numeric type")
        self.code = code
        self.dtype = None

    def __setstate__(self, state) -> None:
        if self.dtype is not None:
            raise RefusedPickle("dtype state given twice")
        if not isinstance(state, tuple) or len(state) not in (8, 9):
            raise RefusedPickle("dtype state is not a plain dtype's")
        version, endian, subarray, names, fields, elsize, alignment, flags = state[:8]
        endian = _text(endian, "dtype byte order")
        if version not in (3, 4) or endian not in ("<", ">", "|", "="):
            raise RefusedPickle("dtype state is not a plain dtype's")
        if subarray is not None or names is not None or fields is not None:
            raise RefusedPickle("structured or sub-array dtypes are refused")
        if len(state) == 9 and state[8] not in (None, {}):
            raise RefusedPickle("dtype metadata is refused")
        base = np.dtype(self.code)
        if elsize not in (-1, base.itemsize) or not isinstance(alignment, int) or not isinstance(flags, int):
            raise RefusedPickle("dtype state is not a plain dtype's")
        self.dtype = base.newbyteorder(endian) if endian in "<>" else base

    def finished(self) -> np.dtype:
        if self.dtype is None:
            raise RefusedPickle("dtype used before its state was given")
        return self.dtype


def _as_dtype(value) -> np.dtype:
    if not isinstance(value, _Dtype):
        raise RefusedPickle("array dtype is not a numpy.dtype")
    return value.finished()


def _shape(value) -> tuple[int, ...]:
    if not isinstance(value, tuple) or len(value) > MAX_NDIM:
        raise RefusedPickle("array shape must be a tuple of at most 32 sizes")
    if not all(type(v) is int and v >= 0 for v in value):
        raise RefusedPickle("array shape must hold non-negative integers")
    return value


def _wrap(raw, dtype: np.dtype, shape: tuple[int, ...], order: str) -> np.ndarray:
    """``raw`` as an array of ``shape``; its length must be exactly what shape and dtype declare."""
    if isinstance(raw, str):  # Python 2 str read with encoding="latin1"
        raw = raw.encode("latin-1")
    if not isinstance(raw, (bytes, bytearray)):
        raise RefusedPickle("array data must be bytes (object arrays are refused)")
    declared = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if declared != len(raw):
        raise RefusedPickle(f"array declares {declared} bytes but holds {len(raw)}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order=order)


class _Array(_Stub):
    """An array under construction by ``_reconstruct`` + BUILD, or finished by ``_frombuffer``."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray | None = None) -> None:
        self.array = array

    def __setstate__(self, state) -> None:
        if self.array is not None:
            raise RefusedPickle("array state given twice")
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise RefusedPickle("array state is not an ndarray's")
        if len(state) == 5:
            if state[0] != 1:
                raise RefusedPickle("unknown ndarray state version")
            state = state[1:]
        shape, dtype, fortran, raw = state
        if not isinstance(fortran, (bool, int)):
            raise RefusedPickle("array order flag must be a boolean")
        self.array = _wrap(raw, _as_dtype(dtype), _shape(shape), "F" if fortran else "C")

    def finished(self) -> np.ndarray:
        if self.array is None:
            raise RefusedPickle("array was never given its data")
        return self.array


class _Scalar(_Stub):
    __slots__ = ("value",)

    def __init__(self, value) -> None:
        self.value = value


def _reconstruct(subtype, shape, typecode) -> _Array:
    if subtype is not _NDARRAY:
        raise RefusedPickle("_reconstruct may only build numpy.ndarray")
    if shape != (0,) or typecode not in (b"b", "b"):
        raise RefusedPickle("_reconstruct must start from the empty placeholder array")
    return _Array()


def _frombuffer(buf, dtype, shape, order="C") -> _Array:
    order = _text(order, "array order")
    if order not in ("C", "F", "A"):
        raise RefusedPickle("array order must be C or F")
    return _Array(_wrap(buf, _as_dtype(dtype), _shape(shape), "F" if order == "F" else "C"))


def _scalar(dtype, raw=None) -> _Scalar:
    dt = _as_dtype(dtype)
    if isinstance(raw, str):
        raw = raw.encode("latin-1")
    if not isinstance(raw, bytes) or len(raw) != dt.itemsize:
        raise RefusedPickle("numpy scalar data does not match its dtype")
    return _Scalar(np.frombuffer(raw, dtype=dt)[0])


def _encode(text, encoding="utf-8") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise RefusedPickle("_codecs.encode is allowed only as Python 3 writes bytes (latin1)")
    return text.encode("latin-1")


def _empty_bytes(*args) -> bytes:
    if args:
        raise RefusedPickle("bytes() is allowed only without arguments (an empty bytes object)")
    return b""


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _Callable(_reconstruct, "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): _Callable(_reconstruct, "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"): _Callable(_frombuffer, "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"): _Callable(_frombuffer, "_frombuffer"),
    ("numpy.core.multiarray", "scalar"): _Callable(_scalar, "scalar"),
    ("numpy._core.multiarray", "scalar"): _Callable(_scalar, "scalar"),
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _Callable(_Dtype, "numpy.dtype"),
    ("_codecs", "encode"): _Callable(_encode, "_codecs.encode"),
    ("__builtin__", "bytes"): _Callable(_empty_bytes, "bytes"),
    ("builtins", "bytes"): _Callable(_empty_bytes, "bytes"),
}
ALLOWED_GLOBALS = frozenset(f"{m}.{n}" for m, n in _ALLOWED)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose globals are the stand-ins above; anything else raises RefusedPickle."""

    def find_class(self, module: str, name: str):
        found = _ALLOWED.get((module, name))
        if found is None:
            raise RefusedPickle(f"refused to load {module}.{name}")
        return found

    def persistent_load(self, pid):
        raise RefusedPickle("persistent ids are refused")


def prescan(data: bytes) -> None:
    """Walk the opcodes without building anything; raise RefusedPickle for what genuine
    batches never contain, or for a malformed stream."""
    n_ops = 0
    try:
        for op, arg, _pos in pickletools.genops(data):
            n_ops += 1
            if n_ops > MAX_OPCODES:
                raise RefusedPickle(f"more than {MAX_OPCODES} opcodes")
            name = op.name
            if name in _REFUSED_OPCODES:
                raise RefusedPickle(f"opcode {name} is refused")
            if name in _PUT_OPCODES and arg > n_ops:
                raise RefusedPickle(f"memo index {arg} is out of range")
            if name == "GLOBAL":
                module, _, attr = str(arg).partition(" ")
                if (module, attr) not in _ALLOWED:
                    raise RefusedPickle(f"refused to load {module}.{attr}")
    except RefusedPickle:
        raise
    except ValueError as exc:  # genops: truncated data, bad opcode, bad length
        raise RefusedPickle(f"malformed pickle ({exc})") from None


def _finish(obj):
    """Replace stand-ins by the arrays and scalars they hold, in dicts and lists
    (iteratively, each container once, so shared or cyclic references are harmless)."""

    def value(v):
        if isinstance(v, _Array):
            return v.finished()
        if isinstance(v, _Scalar):
            return v.value
        if isinstance(v, _Dtype):
            return v.finished()
        return v

    root = value(obj)
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, dict):
            for k, v in node.items():
                node[k] = value(v)
                if isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                node[i] = value(v)
                if isinstance(v, (dict, list)):
                    stack.append(v)
    return root


def restricted_load(data: bytes):
    """Unpickle ``data`` (``encoding="bytes"``, as Python 2 batches need) with the checks
    above; returns plain containers, bytes/str, numbers and read-only NumPy arrays."""
    prescan(data)
    try:
        obj = RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except RefusedPickle:
        raise
    except pickle.UnpicklingError as exc:
        raise RefusedPickle(str(exc)) from None
    except (TypeError, ValueError, AttributeError, EOFError, IndexError, KeyError, MemoryError) as exc:
        raise RefusedPickle(f"{type(exc).__name__}: {exc}") from None
    return _finish(obj)
