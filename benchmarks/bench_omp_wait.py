"""``yoloxkit predict`` under OpenMP's wait policies, on a quiet machine and beside busy processes.

The ``yoloxkit`` command sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment already sets a
policy (issue 11, item 12). This times the whole command (start-up, model loading, every image)
as a user runs it, ``python -m yoloxkit predict DIR --no-save``, in three variants:

* ``PASSIVE (CLI default)``: ``OMP_WAIT_POLICY`` removed from the environment, so the command's
  default applies;
* ``ACTIVE``: ``OMP_WAIT_POLICY=ACTIVE`` set explicitly (OpenMP threads spin while they wait);
* ``unset (before)``: the same command started through ``python -c`` (``yoloxkit.cli.main``
  called as a library would), which leaves the variable unset: libgomp's own default, spinning
  for a while before sleeping; what the command did before it chose PASSIVE;

each first with nothing else started by the benchmark ("quiet"), then beside ``--burners``
CPU-burning Python processes ("busy"). The variants alternate within each condition, repeated
``--repeats`` times; the table gives the median wall time and the command's CPU time
(user + system of the child process).

    .venv/bin/python benchmarks/bench_omp_wait.py                       # 40 images, nano at 416
    .venv/bin/python benchmarks/bench_omp_wait.py --images 160 --burners 2 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = REPO.parent / "shared" / "data" / "coco-mini" / "val2017"
VARIANTS = (("PASSIVE (CLI default)", None), ("ACTIVE", "ACTIVE"), ("unset (before)", "unset"))
AS_LIBRARY = "import sys; from yoloxkit.cli import main; sys.exit(main())"
BURN = "while True:\n    pass\n"


def _subset(folder: Path, count: int, into: Path) -> int:
    """Link the first ``count`` images of ``folder`` (sorted) into ``into``; return how many."""
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:count]
    if not images:
        raise SystemExit(f"no images in {folder}")
    for path in images:
        (into / path.name).symlink_to(path.resolve())
    return len(images)


def _run_predict(folder: Path, policy: str | None, model: str, size: int) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one ``yoloxkit predict`` run."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy not in (None, "unset"):
        env["OMP_WAIT_POLICY"] = policy
    start_command = ["-c", AS_LIBRARY] if policy == "unset" else ["-m", "yoloxkit"]
    command = [sys.executable, *start_command, "predict", str(folder), "--model", model, "--size", str(size),
               "--no-save", "--no-progress"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"predict failed ({done.returncode}): {done.stderr.strip()}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _start_burners(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(count)]


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40, help="how many images (default 40)")
    parser.add_argument("--source", type=Path, default=DEFAULT_IMAGES, help="image folder (default coco-mini val2017)")
    parser.add_argument("--model", default="yolox-nano")
    parser.add_argument("--size", type=int, default=416)
    parser.add_argument("--burners", type=int, default=2, help="CPU-burning processes in the busy runs (default 2)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per variant and condition (default 1)")
    args = parser.parse_args()

    import torch

    from yoloxkit import __version__

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        count = _subset(args.source, args.images, folder)
        print(f"# bench_omp_wait: {args.model} at {args.size}, {count} images, {platform.machine()}, "
              f"{os.cpu_count()} CPUs, torch {torch.__version__}, yoloxkit {__version__}, "
              f"python {platform.python_version()}; load average at start {os.getloadavg()[0]:.1f}")
        for condition, burners in (("quiet", 0), ("busy", args.burners)):
            processes = _start_burners(burners)
            try:
                time.sleep(1.0 if burners else 0.0)
                loads, times = [], {name: [] for name, _ in VARIANTS}
                for repeat in range(args.repeats):
                    order = VARIANTS if repeat % 2 == 0 else VARIANTS[::-1]
                    for name, policy in order:
                        times[name].append(_run_predict(folder, policy, args.model, args.size))
                        loads.append(os.getloadavg()[0])
            finally:
                _stop(processes)
            for name, _ in VARIANTS:
                walls = [w for w, _ in times[name]]
                cpus = [c for _, c in times[name]]
                rows.append((condition, burners, name, statistics.median(walls), min(walls),
                             statistics.median(cpus), count / statistics.median(walls), max(loads)))
    print()
    print("| machine | busy processes | OMP_WAIT_POLICY | median wall s | best wall s | CPU s | images/s | load avg (max) |")
    print("|---|---|---|---|---|---|---|---|")
    for condition, burners, name, wall, best, cpu, rate, load in rows:
        print(f"| {condition} | {burners} | {name} | {wall:.1f} | {best:.1f} | {cpu:.1f} | {rate:.2f} | {load:.1f} |")
    for condition in ("quiet", "busy"):
        passive, active, unset = (r[3] for r in rows if r[0] == condition)
        print(f"# {condition}: wall time against PASSIVE: ACTIVE {active / passive:.2f}x, unset {unset / passive:.2f}x")


if __name__ == "__main__":
    main()
