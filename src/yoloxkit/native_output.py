"""Capturing what native libraries print: the edge runtimes (ncnn, MNN, LiteRT) and their
converters write progress and notes straight to file descriptors 1 and 2, past Python's streams."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Callable, Iterator

__all__ = ["native_output"]


@contextlib.contextmanager
def native_output() -> Iterator[Callable[[], str]]:
    """Capture what is printed inside the block, by native code (file descriptors 1 and 2) and by
    Python (``sys.stdout``, ``sys.stderr``); yields a function that returns the text captured so
    far (inside the block) or in all (after it), for the message of an error."""
    kept: list[str] = []
    with tempfile.TemporaryFile() as sink, open(os.dup(sink.fileno()), "w", encoding="utf-8",
                                                 errors="replace") as stream:

        def text() -> str:
            if kept:
                return kept[0]
            stream.flush()
            sink.seek(0)
            return sink.read().decode("utf-8", "replace")

        sys.stdout.flush()
        sys.stderr.flush()
        try:
            saved = (os.dup(1), os.dup(2))
        except OSError:  # no file descriptors 1/2 (embedded interpreters): Python's streams only
            saved = None
        try:
            if saved is not None:
                os.dup2(sink.fileno(), 1)
                os.dup2(sink.fileno(), 2)
            with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
                yield text
        finally:
            stream.flush()
            if saved is not None:
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                for fd in saved:
                    os.close(fd)
            kept.append(text())
