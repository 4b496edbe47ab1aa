"""The folder of a training run: numbered default folders, never two runs in one folder, and
no temporary files left over from a crash.

Without ``--out`` a run gets the first free folder of ``runs/train``, ``runs/train2``,
``runs/train3``, ... (``--resume`` without ``--out`` continues the newest of them that holds a
``last.pth``). An explicit ``--out`` that already holds a run is refused unless ``--resume``
continues it or ``--exist-ok`` starts over in it, which first removes the earlier run's files.
A folder holds a run once the run has trained an epoch (``last.pth``, ``history.json``); what a
run that failed before that left (``config.json``, ``tensorboard/``, the starting weights'
``best.pth``, ...) does not count, and the next run into the folder removes it. A folder another
run is writing into (:mod:`.run_lock`) is refused first, whatever the flags.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Callable

from .config import ConfigError
from .run_lock import check_run_folder_free

__all__ = [
    "DEFAULT_RUNS",
    "RUN_FILES",
    "RUN_FOLDERS",
    "holds_run",
    "numbered_runs",
    "resolve_run_dir",
    "restarts",
    "clear_run",
    "clear_failed_start",
    "remove_stale_temporaries",
]

#: the default output folder; the n-th run in it gets ``train{n}``
DEFAULT_RUNS = Path("runs") / "train"
#: files a run writes into its folder (``clear_run`` removes exactly these)
RUN_FILES = (
    "last.pth", "best.pth", "history.json", "config.json", "loss_curves.png", "ap_per_epoch.png", "results.txt",
    "experiment_trackers.json",
)
#: sub-folders a run writes
RUN_FOLDERS = ("tensorboard", "assign")
#: what marks a folder as holding a run: an epoch trained (the rest may be left by a failed start)
_MARKERS = ("last.pth", "history.json")
#: the temporary files of :func:`yoloxkit.io.atomic_path`: ``.{name}.{random}{suffix}``
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}(?P<suffix>\.[A-Za-z0-9]+)?$")


def holds_run(folder: str | Path) -> bool:
    """Whether ``folder`` holds a training run that trained at least one epoch."""
    folder = Path(folder)
    return any((folder / name).exists() for name in _MARKERS)


def _has_run_files(folder: Path) -> bool:
    return any((folder / name).exists() for name in RUN_FILES + RUN_FOLDERS)


def numbered_runs(base: str | Path = DEFAULT_RUNS) -> list[Path]:
    """``base``, ``base2``, ``base3``, ... as they exist, in number order."""
    base = Path(base)
    found: list[tuple[int, Path]] = []
    if base.parent.is_dir():
        pattern = re.compile(rf"^{re.escape(base.name)}(\d*)$")
        for child in base.parent.iterdir():
            match = pattern.match(child.name)
            if match and child.is_dir() and match.group(1) != "1":
                found.append((int(match.group(1) or 1), child))
    return [path for _, path in sorted(found)]


def _next_free(base: Path) -> Path:
    taken = {p.name for p in numbered_runs(base)}
    number = 1
    while True:
        candidate = base if number == 1 else base.with_name(f"{base.name}{number}")
        if candidate.name not in taken and not candidate.exists():
            return candidate
        number += 1


def resolve_run_dir(out: str | None, resume: bool = False, exist_ok: bool = False) -> Path:
    """The folder a run writes to (nothing is created). Raises
    :class:`~yoloxkit.engine.run_lock.RunFolderInUse` for a folder another run is writing into,
    and :class:`ConfigError` for an explicit ``out`` that holds another run (without ``resume``
    or ``exist_ok``) and for ``resume`` without a run to continue. (A run that stopped before its
    first ``last.pth`` can be resumed: it starts again, see :func:`restarts`.)"""
    folder = _chosen(out, resume, exist_ok)
    check_run_folder_free(folder)
    if out is None:
        return folder
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder} is a file, not a folder")
    if resume and not (folder / "last.pth").is_file() and not _has_run_files(folder):
        raise ConfigError(f"--resume: no checkpoint to resume from at {folder / 'last.pth'}")
    if not resume and not exist_ok and holds_run(folder):
        raise ConfigError(
            f"--out {folder} already holds a training run: pass --resume to continue it,"
            " --exist-ok to start over in it (its files are replaced), or another --out"
        )
    return folder


def _chosen(out: str | None, resume: bool, exist_ok: bool) -> Path:
    if out is not None:
        return Path(out)
    if resume:
        runs = [p for p in numbered_runs(DEFAULT_RUNS) if (p / "last.pth").is_file()]
        if not runs:
            raise ConfigError(f"--resume: no run under {DEFAULT_RUNS.parent} holds a last.pth; pass --out FOLDER")
        return max(runs, key=lambda p: (p / "last.pth").stat().st_mtime)
    return DEFAULT_RUNS if exist_ok else _next_free(DEFAULT_RUNS)


def restarts(folder: str | Path, resume: bool) -> bool:
    """Whether ``--resume`` finds a run that stopped before writing its first ``last.pth``
    (nothing trained yet), which then starts from the beginning."""
    return resume and not (Path(folder) / "last.pth").is_file() and _has_run_files(Path(folder))


def clear_run(folder: str | Path) -> list[str]:
    """Remove the files and folders an earlier run wrote into ``folder`` (``--exist-ok``), so
    that two runs never mix; returns the names removed. Nothing else in the folder is touched."""
    folder = Path(folder)
    removed: list[str] = []
    for name in RUN_FILES:
        path = folder / name
        if path.is_file():
            path.unlink()
            removed.append(name)
    for name in RUN_FOLDERS:
        path = folder / name
        if path.is_dir():
            shutil.rmtree(path)
            removed.append(name + "/")
    return removed


def clear_failed_start(folder: str | Path, exist_ok: bool, log: Callable[[str], None]) -> None:
    """Before a new run writes into ``folder``: remove an earlier run's files (``--exist-ok``) or
    what a run that failed before its first epoch ended left there, and say so."""
    removed = clear_run(folder)
    if removed and exist_ok:
        log(f"--exist-ok: removed the earlier run's {', '.join(removed)} from {folder}")
    elif removed:
        log(f"removed what a run that ended before its first epoch left in {folder}: {', '.join(removed)}")


def remove_stale_temporaries(folder: str | Path) -> list[str]:
    """Delete the temporary files a killed process left while writing one of the run's files
    (``.best.pth.k3j2h1x0.pth`` and the like); returns their names."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        match = _TEMPORARY.match(path.name)
        if match and path.is_file() and match.group("name") in RUN_FILES:
            path.unlink()
            removed.append(path.name)
    return sorted(removed)
