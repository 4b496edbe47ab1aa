"""Optional dependencies: imported on first use, with a one-line install hint when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

__all__ = ["import_optional", "import_openvino", "import_onnxruntime"]

_OPENVINO_HINT = "pip install openvino (or pip install yoloxkit[openvino])"


def import_optional(module: str, message: str) -> ModuleType:
    """The module named ``module``, or :class:`MissingDependencyError` with ``message``
    (one line naming what needs it and the install command)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(message) from None


def import_openvino() -> ModuleType:
    """The ``openvino`` module (the OpenVINO export format and backend need it)."""
    return import_optional("openvino", f"the OpenVINO format/backend needs the openvino package: {_OPENVINO_HINT}")


def import_onnxruntime() -> ModuleType:
    """The ``onnxruntime`` module (the onnxruntime backend needs it)."""
    return import_optional("onnxruntime", "the onnxruntime backend needs onnxruntime: pip install onnxruntime")
