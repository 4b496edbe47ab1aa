"""Optional dependencies: imported on first use, with a one-line install hint when missing."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from .errors import MissingDependencyError

__all__ = [
    "import_optional", "import_openvino", "import_onnxruntime", "import_ncnn", "import_pnnx", "import_mnn",
    "import_litert", "import_litert_torch", "import_ai_edge_quantizer", "require_optional", "AI_EDGE_QUANTIZER", "CONVERTERS",
]

_OPENVINO_HINT = "pip install openvino (or pip install yoloxkit[openvino])"


def import_optional(module: str, message: str) -> ModuleType:
    """The module named ``module``, or :class:`MissingDependencyError` with ``message``
    (one line naming what needs it and the install command)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(message) from None


def require_optional(module: str, message: str) -> None:
    """:class:`MissingDependencyError` with ``message`` unless ``module`` is installed, checked
    without importing it (a converter that takes seconds to import, checked before any work)."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module set to None
        found = False
    if not found:
        raise MissingDependencyError(message)


def import_openvino() -> ModuleType:
    """The ``openvino`` module (the OpenVINO export format and backend need it)."""
    return import_optional("openvino", f"the OpenVINO format/backend needs the openvino package: {_OPENVINO_HINT}")


def import_onnxruntime() -> ModuleType:
    """The ``onnxruntime`` module (the onnxruntime backend needs it)."""
    return import_optional("onnxruntime", "the onnxruntime backend needs onnxruntime: pip install onnxruntime")


def import_ncnn() -> ModuleType:
    """The ``ncnn`` runtime module (the ncnn backend)."""
    return import_optional("ncnn", "the ncnn format/backend needs the ncnn package: pip install 'yoloxkit[ncnn]'")


#: the converter of each edge format: its module and the one-line message when it is missing
CONVERTERS = {
    "ncnn": ("pnnx", "export --format ncnn needs the pnnx converter: pip install 'yoloxkit[ncnn]'"),
    "mnn": ("MNN", "the mnn format/backend needs MNN: pip install 'yoloxkit[mnn]'"),
    "tflite": ("litert_torch",
               "export --format tflite needs the litert-torch converter: pip install 'yoloxkit[litert-export]'"),
}


#: LiteRT's quantiser (``export --format tflite`` with ``--half`` or ``--int8``)
AI_EDGE_QUANTIZER = ("ai_edge_quantizer",
                     "export --format tflite --half/--int8 needs ai-edge-quantizer: pip install 'yoloxkit[litert-export]'")


def import_pnnx() -> ModuleType:
    """The ``pnnx`` converter module (``export --format ncnn``)."""
    return import_optional(*CONVERTERS["ncnn"])


def import_mnn() -> ModuleType:
    """The ``MNN`` module: converter and runtime in one package (the mnn format and backend)."""
    return import_optional(*CONVERTERS["mnn"])


def import_litert() -> ModuleType:
    """The LiteRT runtime's interpreter module, ``ai_edge_litert.interpreter`` (the litert backend)."""
    return import_optional("ai_edge_litert.interpreter",
                           "the litert backend (.tflite files) needs the LiteRT runtime: pip install 'yoloxkit[litert]'")


def import_litert_torch() -> ModuleType:
    """The ``litert_torch`` converter (``export --format tflite``; a large install)."""
    return import_optional(*CONVERTERS["tflite"])


def import_ai_edge_quantizer() -> ModuleType:
    """The ``ai_edge_quantizer`` module (``export --format tflite`` with ``--half`` or ``--int8``)."""
    return import_optional(*AI_EDGE_QUANTIZER)
