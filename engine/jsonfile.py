"""The one reader of untrusted JSON files (config files, run files).

Every file a user opens may be anything: a FIFO, ``/dev/zero``, a 4 GB file, UTF-16
from Notepad, ``[[[[…`` nested a million deep, a 10,000-digit number. This module turns
each of those into ONE line naming the file and the problem, raised as the caller's
:class:`engine.errors.InputError` subclass (``DataError`` by default), and nothing else:

- the read is bounded: at most ``max_bytes`` bytes are read from the stream (a file that
  grows while read, a character device, a pipe), and a pipe or device that sends nothing
  for :data:`STREAM_TIMEOUT` seconds is refused instead of hanging;
- UTF-8 with or without a byte-order mark is accepted; UTF-16/UTF-32 (BOM or NUL
  pattern) and other encodings are named ("…is UTF-16 text; save it as UTF-8");
- ``NaN``/``Infinity`` constants and numbers that overflow a float (``1e999``) are refused
  (they are not JSON, and NumPy code downstream would compute with them);
- integers must fit in 64 bits (so ``float(n)`` and ``np.int64(n)`` downstream cannot
  overflow), which also keeps Python's 4,300-digit int parsing limit out of reach;
- nesting deeper than ``max_depth`` levels (default :data:`MAX_DEPTH`) is refused, also when it
  is deep enough to exhaust Python's recursion limit inside the parser;
- a key that appears twice in one object is refused (JSON parsers silently keep the last).
"""

from __future__ import annotations

import json
import math
import os
import select
import stat
import time
from pathlib import Path
from typing import Any

from engine.errors import DataError, InputError

MAX_DEPTH = 64  # deeper than any RegLab file; keeps later recursive code far from the recursion limit
STREAM_TIMEOUT = 10.0  # seconds a pipe or device may stay silent before it is refused
INT_LIMIT = 2**63  # integers must satisfy |n| < INT_LIMIT


class _Refused(Exception):
    """A problem found while parsing; turned into the caller's error with the file name."""


def _size_text(n: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} bytes"


def read_bytes(
    path: str | Path,
    *,
    what: str,
    max_bytes: int,
    error: type[InputError] = DataError,
    streams: bool = True,
) -> bytes:
    """At most ``max_bytes`` bytes of the file at path; ``error`` naming it when it cannot be read.

    Opens without blocking (a FIFO without writer does not hang the open), refuses folders and
    anything larger than max_bytes, and gives up on a pipe or device that stays silent for
    :data:`STREAM_TIMEOUT` seconds. streams=False refuses anything but a regular file at once
    (files that RegLab itself wrote, such as a run's, are never pipes or devices).
    """
    flags = (
        os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    )
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder, not a {what}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    try:
        return _read_fd(fd, path, what, max_bytes, error, streams)
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def _read_fd(fd: int, path, what: str, max_bytes: int, error: type[InputError], streams: bool) -> bytes:
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{path}: is a folder, not a {what}")
    too_big = f"{path}: the {what} is larger than {_size_text(max_bytes)}"
    regular = stat.S_ISREG(st.st_mode)
    if not regular and not streams:
        raise error(f"{path}: the {what} is not a regular file (a pipe or a device?)")
    if regular and st.st_size > max_bytes:
        raise error(too_big)
    # pipes and devices are polled with a deadline; select() takes only sockets on Windows
    poll = not regular and os.name == "posix"
    if not poll:
        os.set_blocking(fd, True)
    chunks: list[bytes] = []
    total = 0
    deadline = time.monotonic() + STREAM_TIMEOUT
    while True:
        if poll:
            remaining = deadline - time.monotonic()
            ready = remaining > 0 and select.select([fd], [], [], remaining)[0]
            if not ready:
                raise error(f"{path}: no data arrived within {STREAM_TIMEOUT:g} s; is the {what} a pipe?")
        try:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
        except BlockingIOError:
            continue
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise error(too_big)
    return b"".join(chunks)


def decode_text(data: bytes, *, path: str | Path, what: str, error: type[InputError] = DataError) -> str:
    """UTF-8 text of data (a UTF-8 byte-order mark is dropped); other encodings are named."""
    for bom, name in (
        (b"\xff\xfe\x00\x00", "UTF-32"),
        (b"\x00\x00\xfe\xff", "UTF-32"),
        (b"\xff\xfe", "UTF-16"),
        (b"\xfe\xff", "UTF-16"),
    ):
        if data.startswith(bom):
            raise error(f"{path}: the {what} is {name} text; save it as UTF-8")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    head = data[:64] if len(data) % 2 == 0 else data[:63]
    if len(head) >= 2 and any(
        head[zero::2].count(0) == len(head) // 2 and head[1 - zero :: 2].count(0) == 0 for zero in (0, 1)
    ):
        # ASCII stored as UTF-16 without a byte-order mark: every other byte is 0
        raise error(f"{path}: the {what} looks like UTF-16 text; save it as UTF-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start]
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(
            f"{path}: the {what} is not UTF-8 text (byte 0x{bad:02x} on line {line}); save it as UTF-8"
        ) from None


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number (write null)")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text[:20]} is out of range")
    return value


def _parse_int(text: str) -> int:
    digits = len(text) - (text[0] == "-")
    if digits > 19:  # checked before int(): never reaches Python's digit limit
        raise _Refused(f"the integer {text[:20]}… ({digits} digits) is out of range")
    value = int(text)
    if abs(value) >= INT_LIMIT:
        raise _Refused(f"the integer {text} is out of range")
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"the key {key[:40]!r} appears twice in one object")
            seen.add(key)
    return obj


def _depth_exceeds(value: Any, limit: int) -> bool:
    """True when containers nest deeper than limit (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        if depth > limit:
            return True
        stack.extend((v, depth + 1) for v in item if isinstance(v, (dict, list)))
    return False


def parse_json(
    text: str,
    *,
    where: str,
    error: type[InputError] = DataError,
    max_depth: int | None = MAX_DEPTH,
    checked: bool = False,
) -> Any:
    """json.loads with the refusals of this module; errors read ``{where}: not valid JSON (…)``.

    checked=True is for small records whose every field the caller type-checks (metrics
    lines): it skips the depth walk and the per-number and duplicate-key hooks — 2.5x
    faster — so 1e999 arrives as inf and huge integers as ints, for the caller to refuse.
    NaN/Infinity constants and nesting that exhausts the recursion limit are refused either way.
    """
    hooks = (
        {}
        if checked
        else {"parse_float": _parse_float, "parse_int": _parse_int, "object_pairs_hook": _object}
    )
    if checked:
        max_depth = None
    try:
        value = json.loads(text, parse_constant=_refuse_constant, **hooks)
    except json.JSONDecodeError as exc:
        raise error(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except _Refused as exc:
        raise error(f"{where}: not valid JSON ({exc})") from None
    except RecursionError:
        raise error(f"{where}: not valid JSON (nested too deeply)") from None
    except (ValueError, OverflowError) as exc:  # any other refusal inside the parser
        raise error(f"{where}: not valid JSON ({' '.join(str(exc).split())[:200]})") from None
    if max_depth is not None and _depth_exceeds(value, max_depth):
        raise error(f"{where}: not valid JSON (nested more than {max_depth} levels deep)")
    return value


def read_text_file(
    path: str | Path,
    *,
    what: str,
    max_bytes: int,
    error: type[InputError] = DataError,
    streams: bool = True,
) -> str:
    """The bounded, decoded text of an untrusted UTF-8 file (see :func:`read_bytes`)."""
    data = read_bytes(path, what=what, max_bytes=max_bytes, error=error, streams=streams)
    return decode_text(data, path=path, what=what, error=error)


def read_json_file(
    path: str | Path,
    *,
    what: str,
    max_bytes: int,
    error: type[InputError] = DataError,
    max_depth: int = MAX_DEPTH,
    streams: bool = True,
) -> Any:
    """The JSON value in an untrusted file, or ``error`` with one line naming the file and the problem.

    what names the kind of file in messages ("config file", "summary"); max_bytes bounds
    the read. Returns plain dict/list/str/int/float/bool/None values: finite floats,
    integers with |n| < 2**63, at most max_depth levels of nesting. streams=False refuses
    pipes and devices at once (see :func:`read_bytes`).
    """
    text = read_text_file(path, what=what, max_bytes=max_bytes, error=error, streams=streams)
    if not text.strip():
        raise error(f"{path}: the {what} is empty")
    return parse_json(text, where=str(path), error=error, max_depth=max_depth)
