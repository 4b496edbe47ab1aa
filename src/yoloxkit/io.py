"""Atomic file writing: nothing written is ever left half-written; checking before a run that
its outputs can be written; reading back the small JSON files a run keeps beside its outputs.

Every failure to write is one :class:`~yoloxkit.errors.OutputError` line naming the file (and the
option that gave it) and the reason: ``cannot write --json-out preds/out.json: its folder preds
is a file``, ``cannot write runs/x/last.pth: No space left on device``. The file that was there
before stays intact and no temporary file is left behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import torch

from .errors import OutputError

__all__ = [
    "atomic_path", "atomic_torch_save", "atomic_write_text", "atomic_write_json_records", "check_writable",
    "check_writable_dir", "make_output_dir", "read_json_mapping", "staging_dir", "write_failure",
]

#: errors of a write that mean the disk refused it (an ``OSError`` without a file name)
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})
#: how torch.save and torch.jit.save report a failed write (a ``RuntimeError``)
_TORCH_WRITE_FAILURES = ("inline_container", "PytorchStreamWriter", "file write failed")


def _label(path: Path, what: str | None) -> str:
    return f"{what} {path}" if what else str(path)


def write_failure(exc: BaseException, tmp: str | os.PathLike | None = None) -> str | None:
    """The reason, in words, when ``exc`` is a failed write (of ``tmp``, or of a file inside the
    folder ``tmp``, if given); else None.

    An ``OSError`` about ``tmp``, or one of the disk's own errors (:data:`DISK_ERRNOS`: full,
    over quota, file too large, read-only, I/O error), gives its ``strerror``; torch's
    ``RuntimeError: [enforce fail at inline_container.cc...]`` gives "write failed (disk full?)"
    and its first line.
    """
    if isinstance(exc, OSError):
        names = [os.fspath(n) for n in (exc.filename, exc.filename2) if n is not None]
        about_tmp = tmp is not None and any(n == os.fspath(tmp) or n.startswith(os.path.join(tmp, "")) for n in names)
        if about_tmp or (not names and exc.errno in DISK_ERRNOS):
            return exc.strerror or str(exc)
        return None
    if isinstance(exc, RuntimeError) and any(key in str(exc) for key in _TORCH_WRITE_FAILURES):
        lines = str(exc).strip().splitlines()
        first = " ".join(lines[0].split()) if lines else type(exc).__name__
        return f"write failed (disk full?): {first[:160]}"
    return None


def _refused(name: str, exc: OSError) -> OutputError:
    """The one line for output ``name`` the OS refused: ``cannot write NAME: REASON``."""
    return OutputError(f"cannot write {name}: {exc.strerror or exc}")


def _nearest_existing(folder: Path) -> Path:
    """``folder``, or the nearest of its parents that exists."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _is_a_file(folder: Path, name: str, own: bool) -> OutputError | None:
    """The error about ``name`` when ``folder`` or a parent of it is a file; else None."""
    existing = _nearest_existing(folder)
    if existing.is_dir():
        return None
    where = "it" if own and existing == folder else f"its folder {existing}"
    return OutputError(f"cannot write {name}: {where} is a file")


def _probe(folder: Path, name: str) -> None:
    """Create, write one byte to and remove a file in ``folder``; :class:`OutputError` if that fails."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".yoloxkit-write-check.", dir=folder)
        try:
            os.write(fd, b"\0")  # a full disk refuses even one byte
        finally:
            os.close(fd)
            os.unlink(tmp)
    except OSError as exc:
        raise _refused(name, exc) from None


def _check_folder(folder: Path, name: str, own: bool = False) -> None:
    """:class:`OutputError` about ``name`` unless files can be written into ``folder`` (created if
    missing: no part of it may be a file; ``own``: ``name`` is the folder itself)."""
    error = _is_a_file(folder, name, own)
    if error is not None:
        raise error
    _probe(_nearest_existing(folder), name)


def check_writable(path: str | os.PathLike, what: str | None = None) -> Path:
    """Check, before any work, that the file ``path`` can be written: it is not a folder, and its
    folder exists or can be created (no part of it is a file) and takes a new file. Nothing is
    left behind. Raises :class:`OutputError` naming ``what`` (e.g. ``--json-out``) and the file."""
    target = Path(path)
    name = _label(target, what)
    if target.is_dir():
        raise OutputError(f"cannot write {name}: it is a folder")
    _check_folder(target.parent, name)
    return target


def check_writable_dir(path: str | os.PathLike, what: str | None = None) -> Path:
    """Check, before any work, that files can be written into the folder ``path`` (existing, or
    one that can be created); :class:`OutputError` naming ``what`` and the folder otherwise."""
    folder = Path(path)
    _check_folder(folder, _label(folder, what), own=True)
    return folder


def _mkdir(folder: Path, name: str, own: bool = False) -> Path:
    """``folder`` and its parents, created; :class:`OutputError` about ``name`` if they cannot be
    (``own``: ``name`` is the folder itself)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise (_is_a_file(folder, name, own) or _refused(name, exc)) from None
    return folder


def make_output_dir(path: str | os.PathLike, what: str | None = None) -> Path:
    """Create the output folder ``path`` (and its parents); :class:`OutputError` if it cannot be."""
    return _mkdir(Path(path), _label(Path(path), what), own=True)


def _publish(tmp_path: Path, target: Path, name: str) -> None:
    """Rename ``tmp_path`` onto ``target`` with the permissions a plain open() would give
    (mkstemp creates 0600 files); :class:`OutputError` about ``name`` if that fails."""
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, target)
    except OSError as exc:
        raise _refused(name, exc) from None


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike, suffix: str | None = None, keep_on_error: bool = False, what: str | None = None
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary file keeps ``path``'s suffix (or ``suffix``) so that writers that infer the
    format from the extension (OpenCV, ONNX tools) still work. With ``keep_on_error`` it is
    renamed into place when the block raises too (for files written in complete pieces, such as
    rows frame by frame, whose pieces so far are worth keeping). A failed write
    (:func:`write_failure`: disk full, read-only, ...) raises :class:`OutputError` naming ``what``
    and ``path``; the temporary file is removed and the previous ``path`` stays as it was.
    """
    target = Path(path)
    name = _label(target, what)
    folder = _mkdir(target.parent, name)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=suffix if suffix is not None else target.suffix, dir=folder
        )
    except OSError as exc:
        raise _refused(name, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
        except BaseException as exc:
            reason = write_failure(exc, tmp_path)
            if reason is not None:
                raise OutputError(f"cannot write {name}: {reason}") from exc
            if keep_on_error:
                _publish(tmp_path, target, name)
            raise
        _publish(tmp_path, target, name)
    finally:
        with contextlib.suppress(OSError):
            tmp_path.unlink()


@contextlib.contextmanager
def staging_dir(path: str | os.PathLike, what: str | None = None) -> Iterator[Path]:
    """Yield a new temporary folder beside ``path`` to write ``path`` and its companion files in
    (OpenVINO's ``.xml`` and ``.bin``), which the block moves into place; the folder is removed
    afterwards. A failed write in it raises :class:`OutputError` naming ``what`` and ``path``."""
    target = Path(path)
    name = _label(target, what)
    folder = _mkdir(target.parent, name)
    try:
        work = Path(tempfile.mkdtemp(prefix=f".{target.stem}.", dir=folder))
    except OSError as exc:
        raise _refused(name, exc) from None
    try:
        yield work
    except (OSError, RuntimeError) as exc:
        reason = write_failure(exc, work)
        if reason is not None:
            raise OutputError(f"cannot write {name}: {reason}") from exc
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def atomic_torch_save(obj: object, path: str | os.PathLike, what: str | None = None) -> Path:
    """``torch.save`` to a temp file, then rename onto ``path`` (a failed write: :class:`OutputError`)."""
    with atomic_path(path, what=what) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def atomic_write_text(text: str, path: str | os.PathLike, what: str | None = None) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8; a failed write: :class:`OutputError`)."""
    with atomic_path(path, what=what) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_json_records(records: list[dict], path: str | os.PathLike, what: str | None = None) -> Path:
    """Write ``records`` atomically as a JSON list, one record a line."""
    return atomic_write_text("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n", path, what=what)


def read_json_mapping(path: str | os.PathLike) -> dict:
    """The JSON object in ``path``; empty when the file is missing, unreadable or holds no object."""
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return values if isinstance(values, dict) else {}
