"""The one reader of the text files a user gives yoloxkit (label files, split lists, data YAMLs,
class-name files, COCO json).

Accepted: UTF-8 (a leading UTF-8 byte-order mark is dropped) and UTF-16 or UTF-32 that start
with their byte-order mark. Anything else is refused with one line naming the file, what it is
and the first bad byte: undecodable bytes (Latin-1 or cp1252 accents, for instance) are not
guessed at, because a guessed encoding silently changes class names, and binary data (a NUL
byte) is not text.
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path

from .errors import DatasetError

__all__ = ["TextReadError", "read_text", "decode_text"]

# UTF-32 first: its little-endian mark begins with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)


class TextReadError(DatasetError):
    """A user's text file that cannot be read or is not text: ``cannot read WHAT PATH: REASON``.
    ``reason`` is the message without the file, for readers that list it as a data issue."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


def read_text(path: str | os.PathLike, what: str) -> str:
    """The text of ``path``; ``what`` it is (``"YOLO label file"``) names it in errors.

    Raises :class:`TextReadError` (a :class:`~yoloxkit.errors.DatasetError`) with one line when
    the file cannot be read or is not text in an accepted encoding (see the module docstring)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _error(what, path, str(exc.strerror or exc)) from None
    return decode_text(data, path, what)


def decode_text(data: bytes, path: str | os.PathLike, what: str) -> str:
    """``data`` decoded by the rule of :func:`read_text`; ``path`` and ``what`` name it in errors."""
    encoding, label, start = "utf-8", "UTF-8", 0
    for bom, bom_encoding, bom_label in _BOMS:
        if data.startswith(bom):
            encoding, label, start = bom_encoding, bom_label, len(bom)
            break
    if label == "UTF-8" and b"\0" in data:
        raise _error(what, path, _nul(data.index(0)))
    try:
        text = data[start:].decode(encoding)
    except UnicodeDecodeError as exc:
        offset = start + exc.start
        detail = f"byte 0x{data[offset]:02x}" if label == "UTF-8" else exc.reason
        raise _error(what, path, f"not {label} text ({detail} at offset {offset}); save it as UTF-8") from None
    if "\0" in text:
        raise _error(what, path, _nul(start + len(text[: text.index("\0")].encode(encoding))))
    return text


def _nul(offset: int) -> str:
    return (f"not text (NUL byte at offset {offset}: binary data, or UTF-16/UTF-32 without a byte-order mark); "
            "save it as UTF-8")


def _error(what: str, path: str | os.PathLike, reason: str) -> TextReadError:
    return TextReadError(f"cannot read {what} {path}: {reason}", reason)
