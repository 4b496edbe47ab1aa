"""INT8 ONNX through ``onnxruntime.quantization``: static QDQ quantisation, per-channel int8
weights, activations calibrated on the user's images, chosen layer groups kept in float."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx

from ..errors import ExportError
from ..export.node_order import restore_node_order
from .layers import nodes_in_groups

__all__ = ["CALIBRATION_METHODS", "INT8_MIN_OPSET", "OnnxInt8Recipe", "quantize_onnx", "QUANTIZATION_METADATA"]

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
INT8_MIN_OPSET = 13  # per-channel QuantizeLinear/DequantizeLinear
#: metadata key of a quantised export: a JSON description of its recipe
QUANTIZATION_METADATA = "quantization"


@dataclass(frozen=True)
class OnnxInt8Recipe:
    """How :func:`quantize_onnx` quantises (defaults: the recipe chosen in docs/int8.md).

    ``method`` calibrates the activation ranges (``minmax``, ``entropy`` or ``percentile``);
    ``float_groups`` (:data:`~.layers.LAYER_GROUPS`) stay in float; ``op_types`` are the operator
    types quantised (None: every type onnxruntime can quantise); ``activations`` is ``uint8`` or
    ``int8``; ``percentile`` is the ``percentile`` method's cut.
    """

    method: str = "percentile"
    float_groups: tuple[str, ...] = ("stem", "dark2", "preds")
    op_types: tuple[str, ...] | None = None
    activations: str = "uint8"
    percentile: float = 99.999

    def describe(self) -> str:
        kept = "+".join(self.float_groups) or "nothing"
        ops = "all op types" if self.op_types is None else "+".join(self.op_types) + " only"
        return f"onnxruntime QDQ, {self.method} calibration, {ops}, float: {kept}"


_FEEDS_PER_PASS = 8  # calibration feeds whose activations are held in memory at once


class _Reader:
    """onnxruntime's calibration data reader over a ``[N,3,H,W]`` batch, ``step`` images a feed,
    read in ranges (``set_range``) so that the calibrator keeps only one range's activations."""

    def __init__(self, input_name: str, images: np.ndarray, step: int) -> None:
        self._feeds = [{input_name: images[i : i + step]} for i in range(0, len(images) - step + 1, step)]
        self._pending = iter(self._feeds)

    def __len__(self) -> int:
        return len(self._feeds)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._pending = iter(self._feeds[start_index:end_index])

    def get_next(self):
        return next(self._pending, None)

    @property
    def stride(self) -> int:
        """The largest range size up to :data:`_FEEDS_PER_PASS` that divides the feed count."""
        return max(s for s in range(1, min(_FEEDS_PER_PASS, len(self._feeds)) + 1) if len(self._feeds) % s == 0)


def _static_batch(model: onnx.ModelProto) -> int:
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    return int(dim.dim_value) if dim.HasField("dim_value") and dim.dim_value > 0 else 1


def quantize_onnx(float_path: str | os.PathLike, out_path: str | os.PathLike, images: np.ndarray,
                  recipe: OnnxInt8Recipe = OnnxInt8Recipe()) -> None:
    """Quantise the float ONNX file ``float_path`` into ``out_path`` (not atomic: callers write to
    a temp path), calibrated on ``images`` (``[N,3,H,W]`` float32, the network input).

    The file keeps the float file's metadata and adds :data:`QUANTIZATION_METADATA`. The decode,
    NMS and top-k tail of detection graphs always stays in float.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if recipe.method not in CALIBRATION_METHODS:
        raise ExportError(f"unknown calibration method {recipe.method!r}; choose from: {', '.join(CALIBRATION_METHODS)}")
    if recipe.activations not in ("uint8", "int8"):
        raise ExportError(f"activations must be uint8 or int8, not {recipe.activations!r}")
    source = onnx.load(str(float_path))
    if max((o.version for o in source.opset_import if o.domain in ("", "ai.onnx")), default=0) < INT8_MIN_OPSET:
        raise ExportError(f"per-channel INT8 needs opset >= {INT8_MIN_OPSET}; export with --opset {INT8_MIN_OPSET} or newer")
    step = _static_batch(source)
    if len(images) < step:
        raise ExportError(f"the graph has a static batch of {step}: give at least {step} calibration images")
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    with tempfile.TemporaryDirectory(prefix="yoloxkit-int8-") as work:
        prepared = Path(work) / "prepared.onnx"
        with contextlib.redirect_stdout(io.StringIO()), _quiet("root"):
            quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
        prepared_model = onnx.load(str(prepared))
        excluded = nodes_in_groups([n.name for n in prepared_model.graph.node], (*recipe.float_groups, "tail"))
        activation = QuantType.QUInt8 if recipe.activations == "uint8" else QuantType.QInt8
        reader = _Reader(source.graph.input[0].name, images, step)
        with contextlib.redirect_stdout(io.StringIO()), _quiet("root"):
            quantize_static(
                str(prepared), str(out_path), reader,
                quant_format=QuantFormat.QDQ, per_channel=True, activation_type=activation,
                weight_type=QuantType.QInt8, nodes_to_exclude=excluded,
                op_types_to_quantize=list(recipe.op_types) if recipe.op_types else None,
                calibrate_method=methods[recipe.method],
                calibration_cache_path=None,
                extra_options={"CalibPercentile": recipe.percentile, "ActivationSymmetric": False,
                               "CalibStridedMinMax": reader.stride,
                               "WeightSymmetric": True, "CalibTensorRangeSymmetric": False},
            )
    quantized = onnx.load(str(out_path))
    restore_node_order(quantized.graph, source.graph, new_before_consumer=True)  # the forward order, as every yoloxkit export has
    entries = {p.key: p.value for p in source.metadata_props}
    entries[QUANTIZATION_METADATA] = json.dumps({"precision": "int8", "runtime": "onnxruntime",
                                                 "calibration_images": int(len(images)), **asdict(recipe)})
    del quantized.metadata_props[:]
    for key, value in entries.items():
        prop = quantized.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(quantized, str(out_path))


@contextlib.contextmanager
def _quiet(name: str):
    """Silence a logger's warnings (onnxruntime's quantiser logs advice for every run)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
