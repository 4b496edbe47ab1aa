"""INT8 OpenVINO IR through NNCF: ``nncf.quantize`` on the OpenVINO model converted from the float
ONNX graph, calibrated on the user's images; ``nncf.quantize_with_accuracy_control`` when a
validation function is given."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from ..errors import ExportError, MissingDependencyError
from ..optional import import_openvino
from ..export.edge import median_ms
from ..infer.openvino_backend import default_float_precision
from .layers import group_patterns
from .onnx_int8 import QUANTIZATION_METADATA

__all__ = [
    "OpenVinoInt8Recipe", "default_precision_latency", "import_nncf", "quantize_openvino", "require_nncf", "NNCF_HINT",
]

NNCF_HINT = "pip install nncf (or pip install 'yoloxkit[int8]')"


def require_nncf() -> None:
    """:class:`MissingDependencyError` with the install hint unless NNCF is installed (checked
    without importing it: quantisation imports it in a child process, :mod:`.nncf_worker`)."""
    if importlib.util.find_spec("nncf") is None:
        raise MissingDependencyError(f"INT8 OpenVINO export needs NNCF: {NNCF_HINT}")


def import_nncf() -> Any:
    """The ``nncf`` module, or :class:`MissingDependencyError` with the install hint."""
    # NNCF's own switch that makes its usage telemetry a stub: nothing at run time reaches the network.
    os.environ.setdefault("NNCF_CI", "1")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import nncf
    except ImportError:
        raise MissingDependencyError(f"INT8 OpenVINO export needs NNCF: {NNCF_HINT}") from None
    logging.getLogger("nncf").setLevel(logging.ERROR)
    return nncf


@dataclass(frozen=True)
class OpenVinoInt8Recipe:
    """How :func:`quantize_openvino` quantises (defaults: the recipe chosen in docs/int8.md).

    ``preset`` is NNCF's ``mixed`` (asymmetric activations: SiLU outputs are far from symmetric)
    or ``performance``; ``float_groups`` (:data:`~.layers.LAYER_GROUPS`) stay in float;
    ``fast_bias_correction`` is NNCF's bias correction (True: the fast one).
    """

    preset: str = "mixed"
    float_groups: tuple[str, ...] = ()
    fast_bias_correction: bool = True

    def describe(self) -> str:
        kept = "+".join(self.float_groups) or "nothing"
        return f"NNCF {self.preset} preset, float: {kept}"


def quantize_openvino(
    float_onnx: str | os.PathLike,
    images: np.ndarray,
    recipe: OpenVinoInt8Recipe = OpenVinoInt8Recipe(),
    *,
    validate: Callable[[Any, list[Any]], float] | None = None,
    validation_items: list[Any] | None = None,
    max_drop: float | None = None,
) -> Any:
    """The INT8 OpenVINO model of the float ONNX file ``float_onnx``, calibrated on ``images``
    (``[N,3,H,W]`` float32, the network input); the metadata the ONNX file holds is kept in the
    IR's ``rt_info`` with :data:`~.onnx_int8.QUANTIZATION_METADATA` added. Save it with
    ``openvino.save_model(model, path, compress_to_fp16=False)``.

    With ``validate`` (a compiled model and some of ``validation_items`` -> the metric on those
    items, higher is better, e.g. AP) and ``max_drop`` (absolute, in the metric's units), NNCF's
    accuracy-aware quantisation ranks the quantised layers by what they cost on the items and
    reverts the worst to float until the drop is within ``max_drop``.
    """
    ov = import_openvino()
    nncf = import_nncf()
    if recipe.preset not in ("mixed", "performance"):
        raise ExportError(f"unknown NNCF preset {recipe.preset!r}; choose mixed or performance")
    model = ov.convert_model(str(float_onnx))
    static = model.inputs[0].get_partial_shape()[0]
    step = int(static.get_length()) if static.is_static else 1
    if len(images) < step:
        raise ExportError(f"the graph has a static batch of {step}: give at least {step} calibration images")
    feeds = [images[i : i + step] for i in range(0, len(images) - step + 1, step)]
    patterns = group_patterns((*recipe.float_groups, "tail"))
    common = dict(
        preset=nncf.QuantizationPreset(recipe.preset),
        subset_size=len(feeds),
        fast_bias_correction=recipe.fast_bias_correction,
        ignored_scope=nncf.IgnoredScope(patterns=patterns, validate=False),
    )
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if validate is None:
            quantized = nncf.quantize(model, nncf.Dataset(feeds), **common)
        else:
            quantized = nncf.quantize_with_accuracy_control(
                model, nncf.Dataset(feeds), nncf.Dataset(validation_items or []),
                lambda compiled, items: (float(validate(compiled, list(items))), None),
                max_drop=float(max_drop if max_drop is not None else 1.0),
                drop_type=nncf.DropType.ABSOLUTE, **common,
            )
    description = {"precision": "int8", "runtime": "openvino", "calibration_images": int(len(images)),
                   **asdict(recipe)}
    quantized.set_rt_info(json.dumps(description), ["framework", QUANTIZATION_METADATA])
    return quantized


def default_precision_latency(float_model: str | os.PathLike, images: np.ndarray, threads: int) -> tuple[str, float] | None:
    """``(precision, median ms)`` of the float model compiled with OpenVINO's own default precision
    on this CPU, where that is not f32 (bf16 on a CPU with AMX or AVX-512 BF16), else None:
    yoloxkit runs float IRs in f32, but a deployment with OpenVINO's defaults runs them in bf16,
    which can be as fast as INT8 (docs/int8.md)."""
    ov = import_openvino()
    core = ov.Core()
    default = default_float_precision(core)
    if default is None:
        return None
    compiled = core.compile_model(str(float_model), "CPU", {"INFERENCE_NUM_THREADS": int(threads),
                                                            "PERFORMANCE_HINT": "LATENCY"})
    return default, median_ms(lambda batch: compiled(batch), images)
