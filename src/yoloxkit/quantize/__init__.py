"""INT8 post-training quantisation for deployment (docs/int8.md): calibration on the user's
images (:mod:`.calibration`), the onnxruntime QDQ recipe (:mod:`.onnx_int8`), the NNCF recipe for
OpenVINO (:mod:`.openvino_int8`), the layer groups kept in float (:mod:`.layers`), and
``export --int8`` with its accuracy gate (:func:`yoloxkit.quantize.export_int8.export_int8`,
which loads the inference and evaluation stack, so it is not imported here)."""

from __future__ import annotations

from .calibration import DEFAULT_CALIB_COUNT, calibration_inputs, calibration_files, recorded_training_images
from .layers import LAYER_GROUPS
from .onnx_int8 import CALIBRATION_METHODS, QUANTIZATION_METADATA, OnnxInt8Recipe, quantize_onnx
from .openvino_int8 import OpenVinoInt8Recipe, quantize_openvino

__all__ = [
    "CALIBRATION_METHODS", "DEFAULT_CALIB_COUNT", "LAYER_GROUPS", "QUANTIZATION_METADATA", "OnnxInt8Recipe",
    "OpenVinoInt8Recipe", "calibration_inputs", "calibration_files", "quantize_onnx", "quantize_openvino",
    "recorded_training_images",
]
