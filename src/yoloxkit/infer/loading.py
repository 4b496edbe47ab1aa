"""Getting a detector's network ready: from a zoo name and/or a weights file, or from an
in-memory module. The result, :class:`LoadedNetwork`, is what :class:`~.detector.Detector`
is built from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from torch import nn

from ..errors import InferenceError, WeightsMismatchError
from ..models import get_spec
from ..packaged import BUNDLED_MODEL
from ..weights import WeightsInfo, format_of, open_weights
from .backends import Backend, backend_key, make_backend, resolve_device
from .checks import input_size

__all__ = ["DEFAULT_MODEL", "LoadedNetwork", "choose_backend", "load_network", "wrap_model"]

#: ``Detector()`` runs the model whose COCO weights ship in the package
DEFAULT_MODEL = BUNDLED_MODEL
#: the model name of a network whose zoo model is unknown
UNKNOWN_MODEL = "yolox"


@dataclass(frozen=True)
class LoadedNetwork:
    """A backend ready to run, with what the weights said about it."""

    network: Backend
    model_name: str
    size: tuple[int, int]  # the input size the detector letterboxes to
    stored_names: list[str] | None = None  # class names stored in the weights file, if any
    weights: Path | None = None  # the weights file (None for an in-memory module)
    weights_label: str | None = None  # how the commands name it: as given, else WeightsSource.label()
    precision: str = "float32"  # what the network computes in: float32, float16 (half) or int8 (export --int8)


def choose_backend(backend: str | None, weights: str | os.PathLike | None) -> str:
    """The backend name: ``backend`` if given (checked), else the one that runs ``weights`` as
    it is, the format registry's default (:func:`~yoloxkit.weights.format_of`): ``onnxruntime``
    for ``.onnx``, ``openvino`` for an OpenVINO ``.xml``, ``torch`` for checkpoints, TorchScript
    exports and zoo names."""
    if backend is None:
        return format_of(weights).backend if weights is not None else "torch"
    return backend_key(backend)


def _backend_options(half: bool) -> dict[str, bool]:
    # Only the torch backend takes ``half``; passing it at all asks for it (and others refuse it).
    return {"half": True} if half else {}


def _export_model_name(info: WeightsInfo, requested: str | None) -> str:
    """The model name of an exported file run as is (not imported into PyTorch)."""
    if requested is not None and info.model_name is not None and info.model_name != requested:
        raise WeightsMismatchError(
            f"{info.path} does not fit {requested}: it is {info.model_name}; pass --model {info.model_name}"
        )
    return requested or info.model_name or UNKNOWN_MODEL


def load_network(
    model: str | None = None,
    weights: str | os.PathLike | None = None,
    size: int | Sequence[int] | None = None,
    device: str = "cpu",
    backend: str | None = None,
    half: bool = False,
) -> LoadedNetwork:
    """Resolve the weights (a file, or a zoo name: bundled or downloaded), build the backend and
    settle the input size (see :class:`~.detector.Detector` for the arguments).

    Every file ``yoloxkit export`` writes (ONNX, OpenVINO IR, TorchScript; plain, ``--decode`` or
    ``--nms``) runs in a runtime backend as is; ``backend="torch"`` imports an ``.onnx`` file into
    PyTorch instead. A file with a static input size fixes the size: an explicit other ``size`` is
    an error. Otherwise the size is ``size``, else the one the file stores (the training size of a
    checkpoint, the export size of an export), else the model's, else 640.
    """
    backend_name = choose_backend(backend, weights)
    resolve_device(device)  # fail on an unavailable device before loading anything
    if model is None and weights is None:
        model = DEFAULT_MODEL
    opened = open_weights(weights, get_spec(model).name if model is not None else None)
    label = os.fspath(weights) if weights is not None else opened.source.label()  # as the user named them
    path, fmt = opened.path, opened.format
    torch_model, export = None, None
    # An export runs in its runtime as it is, unless the torch backend imports it (ONNX).
    if fmt.runs_as_is and not (backend_name == "torch" and fmt.holds_torch_weights):
        info = opened.describe()
        model_name, stored_names, export = _export_model_name(info, opened.model_name_requested), info.names, info.export
    else:
        loaded = opened.build()
        torch_model, stored_names, model_name, info = loaded.model, loaded.names, loaded.model_name, loaded.info
    spec_size = get_spec(model_name).input_size if model_name != UNKNOWN_MODEL else None
    wanted = input_size(size) if size is not None else None
    default = wanted or info.input_size or input_size(spec_size or 640)
    network = make_backend(
        backend_name, model=torch_model, onnx_path=path if export is not None and fmt.name == "onnx" else None,
        size=default, device=device, export=export, **_backend_options(half),
    )
    fixed = network.fixed_size
    if fixed is not None and wanted is not None and wanted != fixed:
        raise InferenceError(
            f"{path} has a fixed input size {fixed[0]}x{fixed[1]};"
            f" size {wanted[0]}x{wanted[1]} does not fit it (omit --size or re-export)"
        )
    precision = export.precision if export is not None else "float16" if half else "float32"
    return LoadedNetwork(network, model_name, fixed or default, stored_names, Path(path), label, precision)


def wrap_model(
    model: nn.Module,
    size: int | Sequence[int],
    device: str = "cpu",
    backend: str = "torch",
    model_name: str = UNKNOWN_MODEL,
    half: bool = False,
) -> LoadedNetwork:
    """A backend on an in-memory YOLOX module (left untouched: backends run a fused copy)."""
    wanted = input_size(size)
    network = make_backend(backend, model=model, size=wanted, device=device, **_backend_options(half))
    return LoadedNetwork(network, model_name, wanted, precision="float16" if half else "float32")
