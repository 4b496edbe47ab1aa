"""NNCF quantisation in a child process (``python -m yoloxkit.quantize.nncf_worker JOB.json``).

Quantising and then compiling the float ONNX graph and the fresh INT8 IR in one process
(NNCF 3.4, OpenVINO 2026.4) left that process's heap corrupted: a later, unrelated allocation
crashed it with a segmentation fault (seen in the test suite; a process that only runs an INT8
IR, as predict and serve do, was not affected). ``export --int8`` therefore quantises the graph
and compares it with float in a fresh interpreter, and the exporting process only moves the files. The job is a JSON file (paths, the recipe, and the
validation split named by its root and split) plus the calibration images as ``.npy``; nothing
is pickled.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..data import DetectionData, load_dataset
from ..child_job import child_main, run_child_job
from ..errors import ExportError, last_line
from .accuracy import compiled_accuracy
from .compare import Comparison, compare_files
from .openvino_int8 import OpenVinoInt8Recipe, quantize_openvino

__all__ = ["quantize_openvino_in_child", "run_job"]


def quantize_openvino_in_child(
    float_onnx: Path,
    images: np.ndarray,
    recipe: OpenVinoInt8Recipe,
    out_xml: Path,
    *,
    val_data: DetectionData | None = None,
    names: Sequence[str] | None = None,
    size: tuple[int, int] | None = None,
    interface: str = "raw",
    static_batch: int = 1,
    max_drop: float | None = None,
    check: Sequence[np.ndarray] = (),
    scores_only: bool = True,
) -> Comparison:
    """Write the INT8 IR of ``float_onnx`` to ``out_xml`` (and its ``.bin``) from a child process,
    which also compares it with the float graph on the ``check`` batches
    (:func:`~.compare.compare_files`, the parent's thread count) and returns that comparison;
    with ``val_data`` and ``max_drop``, NNCF's accuracy control on that split. Raises
    :class:`ExportError` with the child's last error line when it fails."""
    work = out_xml.parent
    np.save(work / "calibration.npy", images)
    np.save(work / "check.npy", np.stack(list(check)))
    job = {"float_onnx": str(float_onnx), "images": str(work / "calibration.npy"), "out": str(out_xml),
           "recipe": asdict(recipe), "validation": None, "check": str(work / "check.npy"),
           "scores_only": bool(scores_only), "threads": torch.get_num_threads(), "result": str(work / "result.json")}
    if val_data is not None and max_drop is not None:
        job["validation"] = {"data": str(val_data.root), "split": val_data.split, "names": list(names or []),
                             "size": list(size or ()), "interface": interface, "batch": int(static_batch),
                             "max_drop": float(max_drop), "images": [str(r.path) for r in val_data.records]}
    # NNCF's telemetry is switched off in the child, where import_nncf imports it
    done = run_child_job("yoloxkit.quantize.nncf_worker", job, work / "job.json")
    result = work / "result.json"
    if done.returncode != 0 or not out_xml.is_file() or not result.is_file():
        reason = last_line(done.stderr, f"exit code {done.returncode}")
        raise ExportError(f"NNCF quantisation failed: {reason}")
    return Comparison(**json.loads(result.read_text()))


def run_job(job_path: str | os.PathLike) -> None:
    """The child's side: quantise as the job says and save the IR."""
    import openvino as ov

    job = json.loads(Path(job_path).read_text())
    images = np.load(job["images"])
    recipe = OpenVinoInt8Recipe(**{k: tuple(v) if isinstance(v, list) else v for k, v in job["recipe"].items()})
    control = {}
    validation = job["validation"]
    if validation is not None:
        data = load_dataset(validation["data"], split=validation["split"])
        keep = set(validation["images"])
        data.records = [r for r in data.records if str(r.path) in keep]
        size = tuple(validation["size"])

        def validate(compiled, records) -> float:
            subset = dataclasses.replace(data, records=list(records))
            return compiled_accuracy(compiled, subset, size, validation["names"], validation["interface"],
                                     validation["batch"])

        control = dict(validate=validate, validation_items=list(data.records), max_drop=validation["max_drop"])
    quantized = quantize_openvino(job["float_onnx"], images, recipe, **control)
    ov.save_model(quantized, job["out"], compress_to_fp16=False)
    check = np.load(job["check"])
    compared = compare_files("openvino", Path(job["float_onnx"]), Path(job["out"]), list(check),
                             job["scores_only"], threads=job["threads"])
    Path(job["result"]).write_text(json.dumps(asdict(compared)))


if __name__ == "__main__":
    child_main(run_job)
