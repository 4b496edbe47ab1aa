"""Atomic file writing: nothing written is ever left half-written; reading back the small JSON
files a run keeps beside its outputs."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

import torch

__all__ = ["atomic_path", "atomic_torch_save", "atomic_write_text", "atomic_write_json_records", "read_json_mapping"]


def _publish(tmp_path: Path, target: Path) -> None:
    """Rename ``tmp_path`` onto ``target`` with the permissions a plain open() would give
    (mkstemp creates 0600 files)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    os.replace(tmp_path, target)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None, keep_on_error: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary file keeps ``path``'s suffix (or ``suffix``) so that writers that infer the
    format from the extension (OpenCV, ONNX tools) still work. With ``keep_on_error`` it is
    renamed into place when the block raises too (for files written in complete pieces, such as
    rows frame by frame, whose pieces so far are worth keeping).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=suffix if suffix is not None else target.suffix, dir=target.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
        except BaseException:
            if keep_on_error:
                _publish(tmp_path, target)
            raise
        _publish(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_torch_save(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temp file, then rename onto ``path``."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_json_records(records: list[dict], path: str | os.PathLike) -> Path:
    """Write ``records`` atomically as a JSON list, one record a line."""
    return atomic_write_text("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n", path)


def read_json_mapping(path: str | os.PathLike) -> dict:
    """The JSON object in ``path``; empty when the file is missing, unreadable or holds no object."""
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return values if isinstance(values, dict) else {}
