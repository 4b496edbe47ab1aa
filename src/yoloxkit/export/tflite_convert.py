"""The LiteRT conversion in a child process (``python -m yoloxkit.export.tflite_convert JOB.json``).

``litert-torch`` imports JAX, and JAX's threads make every later ``os.fork()`` of the importing
process unsafe (JAX warns that it "will likely lead to a deadlock"): a training run's DataLoader
workers, a multiprocessing pool, a test runner's workers. A test-suite worker that had converted a
file once crashed later while forking DataLoader workers. So the exporting process never imports
the converter: it exports the graph with ``torch.export`` and saves it (``graph.pt2``, read back
with ``torch.export.load``; nothing is pickled), and a fresh interpreter converts it and writes
the ``.tflite`` file. The exporting process then verifies that file against its own PyTorch
module, so what the child converted is checked, not trusted.

The child captures what the converter prints (its progress lines, absl and MLIR notes); a failed
conversion is answered in ``result.json`` with the converter's reason and the last line it
printed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..child_job import child_main, run_child_job
from ..errors import ExportError, first_line, last_line
from ..native_output import native_output
from ..optional import CONVERTERS, import_litert_torch, require_optional
from .graph import quiet_tracing

__all__ = ["convert_tflite", "failure_reason", "import_converter", "run_job"]

#: ``litert-torch``'s switch for its progress lines (``(00:03) [START] LiteRT-Torch Convert ...``)
_PROGRESS_SWITCH = "LITERT_TORCH_SHOW_PROGRESS"


def import_converter():
    """The ``litert_torch`` converter module, imported without what its dependencies print on
    import (absl and oneDNN notices, a torch deprecation warning);
    :class:`~yoloxkit.errors.MissingDependencyError` with the install hint when it is missing.
    This imports JAX: call it in the converting child only."""
    with native_output():
        return import_litert_torch()


def convert_tflite(module: nn.Module, images: torch.Tensor, target: Path) -> Path:
    """Convert the eval-mode ``module`` (exported on ``images``, ``[1,3,H,W]`` float32) to the
    ``.tflite`` file ``target`` with ``litert-torch`` in a child process; :class:`ExportError`
    quoting the converter's reason when it fails. The calling process never imports the
    converter (see the module docstring)."""
    require_optional(*CONVERTERS["tflite"])
    target = Path(target)
    work = target.parent
    with quiet_tracing():
        try:
            program = torch.export.export(module, (images,), strict=False)
        except Exception as exc:  # torch.export raises for what it cannot trace
            raise ExportError(f"torch.export cannot export the model for {target.name}: {first_line(exc)}") from None
    graph, inputs, result = work / f"{target.stem}.pt2", work / f"{target.stem}.input.npy", work / f"{target.stem}.result.json"
    torch.export.save(program, graph)
    np.save(inputs, images.numpy())
    job = {"graph": str(graph), "images": str(inputs), "target": str(target), "result": str(result),
           "threads": torch.get_num_threads()}
    job_path = work / f"{target.stem}.job.json"
    try:
        done = run_child_job("yoloxkit.export.tflite_convert", job, job_path, env={_PROGRESS_SWITCH: "n"})
        answer = json.loads(result.read_text()) if result.is_file() else {}
    finally:
        for path in (graph, inputs, job_path, result):
            path.unlink(missing_ok=True)
    if done.returncode == 0 and answer.get("ok") and target.is_file():
        return target
    reason = answer.get("error") or last_line(done.stderr, f"the converting process ended with code {done.returncode}")
    raise ExportError(f"litert-torch cannot convert the model to {target.name}: {reason}")


def failure_reason(exc: BaseException, printed: str) -> str:
    """The converter's reason for ``exc``, with the last line it ``printed`` (often the MLIR or
    torch.export note that names the layer) when it printed one."""
    said = last_line(printed)
    return f"{first_line(exc)} (it printed: {said})" if said else first_line(exc)


def run_job(job_path: str | os.PathLike) -> None:
    """The child's side: convert the saved graph and answer ``{"ok": true}`` or
    ``{"ok": false, "error": "..."}`` (the converter's reason and the last line it printed) in the
    job's result file."""
    job = json.loads(Path(job_path).read_text())
    torch.set_num_threads(int(job["threads"]))
    litert_torch = import_converter()
    module = torch.export.load(job["graph"]).module()
    # the graph was exported in eval mode; its module refuses .eval() and would say "training",
    # which the converter reports as a warning the failure message would then quote
    module.training = False
    images = torch.from_numpy(np.load(job["images"]))
    answer = {"ok": True}
    with native_output() as printed, quiet_tracing():
        try:
            litert_torch.convert(module, (images,)).export(job["target"])
        except Exception as exc:  # the converter raises from torch.export, MLIR and its own passes
            answer = {"ok": False, "error": failure_reason(exc, printed())}
    Path(job["result"]).write_text(json.dumps(answer))


if __name__ == "__main__":
    child_main(run_job)
