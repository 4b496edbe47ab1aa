"""Work done in a child Python process: a job written as JSON, ``python -m MODULE JOB.json``.

The NNCF quantiser and the LiteRT converter run this way, each for its own reason (their module
docstrings say which). The child writes its answer where the job says; when it fails, it prints
one line, ``Type: first line of the error``, which the parent quotes (:func:`~.errors.last_line`
of its stderr).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import first_line

__all__ = ["run_child_job", "child_main"]


def run_child_job(module: str, job: Mapping[str, Any], job_path: Path,
                  env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """Write ``job`` to ``job_path`` and run ``python -m module job_path`` to its end, its
    output captured (text); ``env`` adds to this process's environment."""
    Path(job_path).write_text(json.dumps(job))
    return subprocess.run([sys.executable, "-m", module, str(job_path)], capture_output=True, text=True,
                          env={**os.environ, **env} if env else None)


def child_main(run_job: Callable[[str], None]) -> None:
    """The child's entry: ``run_job(sys.argv[1])``; an error ends it with status 1 and one line
    on stderr for the parent to quote."""
    try:
        run_job(sys.argv[1])
    except Exception as exc:  # the parent reports the last stderr line
        print(f"{type(exc).__name__}: {first_line(exc)}", file=sys.stderr)
        sys.exit(1)
