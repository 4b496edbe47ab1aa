"""Weights: where they come from, what they are, and how they load.

- :mod:`.hub`: the official release catalogue (from the model zoo) and the download cache;
- :mod:`.checkpoint`: reading and atomic writing of ``.pth`` checkpoints, strict loading;
- :mod:`.exported`: the metadata every export stores and reading it back (ONNX, OpenVINO IR,
  TorchScript);
- :mod:`.identify`: which zoo model a state dict or an ONNX export belongs to;
- :mod:`.onnx_reader`, :mod:`.pairing`, :mod:`.calibration`, :mod:`.unfold`: importing an
  official ONNX export (read the graph, pair its convs, calibrate and un-fold the BatchNorms);
- :mod:`.source`: where weights come from (a file, the bundled checkpoint, the official
  download): ``resolve_weights_source``;
- :mod:`.formats`: the one registry of file formats (recognising, reading, the default backend,
  the writer in ``export/``); :mod:`.contents`: one reader per format;
- :mod:`.opened`: the one way to open weights, ``open_weights(weights, model) -> WeightsFile``
  (format, model, names, input size; ``load_into``, ``build``, ``state_dict``);
- :mod:`.load`: the long-standing functions as thin uses of it (``load_weights``,
  ``describe_weights``, ``load_model``, ``convert_weights``, ...).
"""

from ..packaged import BUNDLED_MODEL, bundled_demo_image, bundled_weights_path
from .calibration import CalibrationSource, calibration_images
from .checkpoint import load_state_dict_checked, read_checkpoint, save_checkpoint
from .hub import (
    cached_official,
    download_official,
    official_weights_url,
    official_weights_urls,
    weights_cache_dir,
)
from .exported import NMS_OUTPUTS, TORCHSCRIPT_METADATA, ExportInfo, export_metadata
from .identify import guess_model_name, identify_state_dict
from .contents import WeightsInfo
from .formats import FileFormat, export_format_names, find_format, format_of, register_format
from .load import (
    build_model_with_weights,
    convert_weights,
    describe_weights,
    is_onnx_file,
    load_model,
    load_weights,
    read_names_file,
    load_state,
    resolve_weights,
    weights_format,
)
from .opened import LoadedModel, WeightsFile, open_weights
from .source import WeightsSource, resolve_weights_source
from .onnx_reader import OnnxWeights, read_onnx_weights
from .unfold import ImportReport, import_onnx_into

__all__ = [
    "BUNDLED_MODEL",
    "CalibrationSource",
    "ExportInfo",
    "FileFormat",
    "ImportReport",
    "LoadedModel",
    "NMS_OUTPUTS",
    "TORCHSCRIPT_METADATA",
    "OnnxWeights",
    "WeightsFile",
    "WeightsInfo",
    "WeightsSource",
    "build_model_with_weights",
    "bundled_demo_image",
    "bundled_weights_path",
    "cached_official",
    "calibration_images",
    "convert_weights",
    "describe_weights",
    "download_official",
    "export_format_names",
    "export_metadata",
    "find_format",
    "format_of",
    "guess_model_name",
    "identify_state_dict",
    "import_onnx_into",
    "is_onnx_file",
    "load_model",
    "load_state_dict_checked",
    "load_weights",
    "official_weights_url",
    "official_weights_urls",
    "open_weights",
    "read_checkpoint",
    "read_names_file",
    "read_onnx_weights",
    "register_format",
    "load_state",
    "resolve_weights",
    "resolve_weights_source",
    "save_checkpoint",
    "weights_cache_dir",
    "weights_format",
]
