"""How many data-loader worker processes a training run gets by default."""

from __future__ import annotations

import os

__all__ = ["available_cpus", "default_workers", "CPU_INLINE_LOADING_MAX_CPUS"]


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the system has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


#: CPU training on at most this many CPUs loads its data in the main process
CPU_INLINE_LOADING_MAX_CPUS = 2


def default_workers(device: str | None = None) -> int:
    """Data-loader workers per process: 4, or fewer on a machine with fewer CPUs (PyTorch warns
    when the workers outnumber them). Training on the CPU of a machine with at most
    :data:`CPU_INLINE_LOADING_MAX_CPUS` CPUs gets none: the model's threads already use every
    core, and worker processes competing with them made a BCCD epoch (nano, 416, batch 16, 2
    CPUs) 1.4x slower than loading in the main process (docs/BENCHMARKS.md)."""
    cpus = available_cpus()
    if device is not None and device.startswith("cpu") and cpus <= CPU_INLINE_LOADING_MAX_CPUS:
        return 0
    return min(4, cpus)
