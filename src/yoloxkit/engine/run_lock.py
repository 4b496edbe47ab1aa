"""One writer per run folder: a training run holds an exclusive lock on ``OUT/.lock`` from before
it writes anything into ``OUT`` until it ends, and a second run into the same folder (fresh,
``--resume`` or ``--exist-ok``) stops at once with one line naming the first run's process.

The lock is a POSIX record lock (``fcntl.lockf``) on the lock file, which holds the owner's pid,
host and start time. It belongs to the process alone: its data-loader workers (forked) do not
inherit it, and the kernel releases it the moment the process dies, so a killed run never blocks
the next one. (Closing any descriptor of the file would release it too: the process keeps the
folders it holds in :data:`_HELD` and never opens their lock file again.) Where there is no
``fcntl`` (Windows) the lock file is created with ``O_EXCL`` instead, and a file whose process on
this host no longer runs is stale and taken over. The file is removed when the run ends. Under
DDP only rank 0 holds it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from .config_checks import ConfigError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "RunFolderInUse", "RunLock", "check_run_folder_free", "lock_run_folder"]

#: the lock file in a run folder
LOCK_NAME = ".lock"
_RETRIES = 10  # a probe of check_run_folder_free holds the lock shared for an instant: try again
_RETRY_S = 0.05
#: the run folders this process holds, by resolved path
_HELD: dict[Path, "RunLock"] = {}


class RunFolderInUse(ConfigError):
    """Another training run is writing into the run folder."""


def _describe(info: dict[str, Any]) -> str:
    return f"pid {info.get('pid')} on host {info.get('host')}, started {info.get('started')}"


def _in_use(folder: Path) -> RunFolderInUse:
    held = _HELD.get(folder.resolve())  # never reopen the lock file of a folder this process holds
    info = held.owner if held is not None else _read_owner(folder / LOCK_NAME)
    owner = _describe(info) if info else f"its process could not be read from {folder / LOCK_NAME}"
    return RunFolderInUse(f"run folder {folder} is in use by another training run ({owner})")


def _read_owner(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # pragma: no cover - os.kill would end the process there
        import ctypes

        kernel = ctypes.windll.kernel32
        handle = kernel.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        kernel.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _held_without_fcntl(path: Path) -> bool:
    info = _read_owner(path)
    if info.get("host") != socket.gethostname():
        return path.exists()  # another host's run: only it can say that it ended
    return isinstance(info.get("pid"), int) and _pid_alive(info["pid"])


def check_run_folder_free(folder: str | Path) -> None:
    """Raise :class:`RunFolderInUse` when a running training run holds ``folder``'s lock (a
    look only: nothing is created)."""
    folder = Path(folder)
    path = folder / LOCK_NAME
    if folder.resolve() in _HELD:
        raise _in_use(folder)
    if not path.is_file():
        return
    if fcntl is None:
        if _held_without_fcntl(path):
            raise _in_use(folder)
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # removed by its run, just now
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:  # EAGAIN or EACCES: held
        raise _in_use(folder) from None
    finally:
        os.close(fd)  # also releases the shared lock


class RunLock:
    """The held lock of one run folder; :meth:`release` (or leaving the ``with`` block) ends it."""

    def __init__(self, path: Path, fd: int | None, created_folder: bool, owner: dict[str, Any]) -> None:
        self.path, self._fd, self._created_folder, self.owner = path, fd, created_folder, owner
        _HELD[path.parent.resolve()] = self

    def release(self) -> None:
        """Remove the lock file and release the lock; a folder the lock created and nothing
        else was written to is removed too."""
        if _HELD.get(self.path.parent.resolve()) is not self:
            return
        del _HELD[self.path.parent.resolve()]
        try:
            self.path.unlink()
        except OSError:
            pass
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._created_folder:
            try:
                self.path.parent.rmdir()  # only when empty
            except OSError:
                pass

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _owner_record() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": datetime.now().astimezone().isoformat(timespec="seconds")}


def lock_run_folder(folder: str | Path) -> RunLock:
    """Take ``folder``'s lock (creating the folder), or raise :class:`RunFolderInUse` naming the
    run that holds it."""
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    if folder.resolve() in _HELD:
        raise _in_use(folder)
    path = folder / LOCK_NAME
    for attempt in range(_RETRIES):
        fd = _try_lock(path)
        if fd is not None:
            owner = _owner_record()
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(owner).encode())
            if fcntl is None:  # O_EXCL: the file itself is the lock
                os.close(fd)
                fd = None
            return RunLock(path, fd, created, owner)
        if attempt + 1 < _RETRIES:
            time.sleep(_RETRY_S)
    raise _in_use(folder)


def _try_lock(path: Path) -> int | None:
    """The descriptor of ``path`` with the lock held, or ``None`` when another run holds it."""
    if fcntl is None:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if _held_without_fcntl(path):
                return None
            path.unlink(missing_ok=True)  # stale: its process has ended
            return _try_lock(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        same = os.fstat(fd).st_ino == os.stat(path).st_ino  # not removed by a run ending meanwhile
    except OSError:  # held (EAGAIN, EACCES), or removed (ENOENT)
        same = False
    if not same:
        os.close(fd)
        return None
    return fd
