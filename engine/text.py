"""Names that came from files (folder names, file names, CSV cells), made safe to print.

A folder called ``"cat\\x1b[2J"`` would clear the user's terminal when an error message
or the ``data`` report names it, and a file name holding undecodable bytes (Python keeps
them as lone surrogates) cannot even be written to a UTF-8 stream. :func:`printable`
escapes every such character and leaves ordinary text, accents and CJK included, alone.
"""

from __future__ import annotations

import unicodedata

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# control (Cc), format (Cf: bidi overrides, zero-width), line/paragraph separators, surrogates
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _escape(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's surrogateescape of an undecodable byte
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(name: object) -> str:
    """``str(name)`` with control, format and separator characters escaped as ``\\xNN``,
    ``\\uNNNN`` (``\\n``, ``\\r``, ``\\t`` for those three); undecodable bytes kept by
    ``surrogateescape`` come back as ``\\xNN``. Backslashes are left as they are."""
    text = str(name)
    if text.isprintable():  # the common case: nothing to do (isprintable is C-fast)
        return text
    return "".join(_escape(ch) if unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch for ch in text)
