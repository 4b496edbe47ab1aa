"""Reading and writing weights: official ``.pth`` checkpoints, yoloxkit's own, and ONNX exports.

Checkpoint format (a superset of the official one)::

    {"model": state_dict, "names": [class names...], "model_name": "yolox-nano", ...}

Official checkpoints carry only ``"model"`` (plus optimizer/epoch fields we ignore). An official
ONNX export (``.onnx``) is imported by :mod:`yoloxkit.onnx_import` (BatchNorms un-folded and
calibrated). :func:`resolve_weights` picks the file a model uses: an explicit path, the bundled
yolox-nano COCO weights, or a cached download of the official release checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Sequence, Union

import numpy as np
import torch
from torch import nn

from .errors import WeightsError, WeightsMismatchError
from .io import atomic_torch_save

__all__ = [
    "BUNDLED_MODEL",
    "WeightsInfo",
    "read_checkpoint",
    "save_checkpoint",
    "load_weights",
    "load_state_dict_checked",
    "identify_state_dict",
    "describe_weights",
    "resolve_weights",
    "build_model_with_weights",
    "convert_weights",
    "read_names_file",
    "bundled_weights_path",
    "bundled_demo_image",
]

logger = logging.getLogger("yoloxkit")

BUNDLED_MODEL = "yolox-nano"
BUNDLED_WEIGHTS = "yolox_nano_coco.pth"
BUNDLED_DEMO_IMAGE = "dog.jpg"

CalibrationSource = Union[Sequence[np.ndarray], str, os.PathLike, Iterable[Union[str, os.PathLike]], None]


def _asset(name: str) -> Path:
    return Path(str(resources.files("yoloxkit") / "assets" / name))


def bundled_weights_path() -> Path:
    """The yolox-nano COCO checkpoint shipped in the package (converted from the official ONNX)."""
    return _asset(BUNDLED_WEIGHTS)


def bundled_demo_image() -> Path:
    """The YOLOX demo picture shipped in the package (a dog, a bicycle and a truck)."""
    return _asset(BUNDLED_DEMO_IMAGE)


def is_onnx_file(path: str | os.PathLike) -> bool:
    """True for ``.onnx`` files (weights imported through :mod:`yoloxkit.onnx_import`)."""
    return Path(path).suffix.lower() == ".onnx"


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint file with ``weights_only=True``; return a dict with a ``"model"`` key."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and unpickler errors have no common base
        raise WeightsError(f"cannot read weights file {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        return data
    if isinstance(data, dict) and data and all(isinstance(v, torch.Tensor) for v in data.values()):
        return {"model": data}  # a bare state dict
    raise WeightsError(f"{path} is not a YOLOX checkpoint (expected a dict with a 'model' state dict)")


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    names: list[str] | tuple[str, ...] | None = None,
    model_name: str | None = None,
    **extra: Any,
) -> Path:
    """Write ``{"model": state_dict, "names": ..., "model_name": ...}`` atomically."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload: dict[str, Any] = {"model": state, **extra}
    if names is not None:
        payload["names"] = list(names)
    if model_name is not None:
        payload["model_name"] = model_name
    return atomic_torch_save(payload, path)


@lru_cache(maxsize=None)
def _zoo_shapes(name: str, num_classes: int) -> dict[str, tuple[int, ...]]:
    """State-dict shapes of a zoo model, built on the meta device (no memory, no init cost)."""
    from .models import build_model

    with torch.device("meta"):
        model = build_model(name, num_classes=num_classes)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _num_classes_of(state: dict[str, torch.Tensor]) -> int | None:
    weight = state.get("head.cls_preds.0.weight")
    return int(weight.shape[0]) if isinstance(weight, torch.Tensor) and weight.ndim >= 1 else None


def identify_state_dict(state: dict[str, torch.Tensor]) -> str | None:
    """Name of the zoo model whose keys and shapes match ``state`` (any class count), or None."""
    from .models import MODEL_SPECS

    num_classes = _num_classes_of(state)
    if num_classes is None:
        return None
    shapes = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
    for name in MODEL_SPECS:
        if _zoo_shapes(name, num_classes) == shapes:
            return name
    return None


def _mismatch_hint(state: dict[str, torch.Tensor], model: nn.Module) -> str:
    """``looks like yolox-s weights; pass --model yolox-s``, or a class-count note, or nothing."""
    name = identify_state_dict(state)
    file_classes = _num_classes_of(state)
    model_classes = getattr(model, "num_classes", None)
    if name is None:
        return "it belongs to another model size or class count (check --model)"
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if model_classes is not None and _zoo_shapes(name, model_classes) == own:
        return f"it is {name} with {file_classes} classes, the model has {model_classes}"
    return f"it looks like {name} weights; pass --model {name}"


def load_state_dict_checked(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict(strict=True)`` with one-line errors that say which model the file fits."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or mismatched:
        detail = []
        if mismatched:
            k = mismatched[0]
            detail.append(
                f"{len(mismatched)} tensors have other shapes (e.g. {k}: file {tuple(state[k].shape)}"
                f" vs model {tuple(own[k].shape)})"
            )
        if missing:
            detail.append(f"{len(missing)} keys missing (e.g. {missing[0]})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        raise WeightsMismatchError(
            f"{source} does not fit this model: {'; '.join(detail)}; {_mismatch_hint(state, model)}"
        )
    model.load_state_dict(state, strict=True)


def _default_names(num_classes: int, source: str | os.PathLike) -> list[str] | None:
    """COCO names for an 80-class file without names (official exports are COCO models), else None."""
    from .coco_names import COCO_NAMES

    if num_classes == len(COCO_NAMES):
        return list(COCO_NAMES)
    logger.info("%s stores no class names and has %d classes; names default to class ids", source, num_classes)
    return None


def load_weights(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    calib_images: CalibrationSource = None,
) -> list[str] | None:
    """Load weights from ``path`` into ``model`` strictly; return the class names, if known.

    ``.pth`` (official or yoloxkit checkpoints): the stored names, or None for official files.
    ``.onnx`` (official exports): the folded convs are imported and each BatchNorm is calibrated on
    ``calib_images`` (default: the bundled demo picture); returns the names stored in the file's
    metadata (``yoloxkit export`` writes them), else the COCO names for an 80-class file (official
    exports are COCO models), else None.
    """
    if is_onnx_file(path):
        from .onnx_import import read_onnx_weights

        return _load_onnx(model, read_onnx_weights(path), calib_images)
    ckpt = read_checkpoint(path)
    load_state_dict_checked(model, ckpt["model"], str(path))
    names = ckpt.get("names")
    return list(names) if names is not None else None


def _load_onnx(model: nn.Module, onnx_weights, calib_images: CalibrationSource) -> list[str] | None:
    """Import already-read ONNX weights into ``model``; return the stored or default class names."""
    from .onnx_import import import_onnx_into

    import_onnx_into(model, onnx_weights, calib_images)
    stored = onnx_weights.names
    return stored if stored is not None else _default_names(onnx_weights.num_classes, onnx_weights.path)


@dataclass(frozen=True)
class WeightsInfo:
    """What a weights file says about the model it belongs to (read without building a model)."""

    path: Path
    format: str  # "checkpoint" or "onnx"
    model_name: str | None  # stored, or identified from the shapes; None if unknown
    num_classes: int | None
    names: list[str] | None  # stored class names (checkpoints; ONNX files exported by yoloxkit)


def describe_weights(path: str | os.PathLike) -> WeightsInfo:
    """Model name, class count and names of a weights file, so the right model can be built for it."""
    path = Path(path)
    if is_onnx_file(path):
        from .onnx_import import read_onnx_weights

        return _describe_onnx(path, read_onnx_weights(path))
    return _describe_checkpoint(path, read_checkpoint(path))


def _describe_onnx(path: Path, onnx_weights, identify: bool = True) -> WeightsInfo:
    from .onnx_import import guess_model_name

    name: str | None = None
    if identify:
        try:
            name = guess_model_name(onnx_weights)
        except WeightsMismatchError:
            pass
    return WeightsInfo(path, "onnx", name, onnx_weights.num_classes, onnx_weights.names)


def _describe_checkpoint(path: Path, ckpt: dict[str, Any], identify: bool = True) -> WeightsInfo:
    state = ckpt["model"]
    stored = ckpt.get("model_name")
    name = stored if isinstance(stored, str) else identify_state_dict(state) if identify else None
    names = ckpt.get("names")
    return WeightsInfo(path, "checkpoint", name, _num_classes_of(state), list(names) if names is not None else None)


def resolve_weights(model_name: str | None, weights: str | os.PathLike | None = None) -> Path:
    """The weights file to use for ``model_name``.

    An explicit ``weights`` path must exist (else :class:`WeightsError` naming it). Without one,
    yolox-nano uses the bundled COCO checkpoint and other zoo models the official release
    checkpoint, downloaded once into the cache (:func:`yoloxkit.hub.download_official`).
    """
    from .models import get_spec

    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(f"weights file not found: {weights}")
        return path
    if model_name is None:
        raise WeightsError("give a model name or a weights file")
    name = get_spec(model_name).name
    if name == BUNDLED_MODEL:
        bundled = bundled_weights_path()
        if not bundled.is_file():
            raise WeightsError(f"bundled weights missing from the package ({bundled}); reinstall yoloxkit")
        return bundled
    from .hub import download_official

    return download_official(name)


def build_model_with_weights(
    model_name: str | None,
    weights: str | os.PathLike | None = None,
    *,
    calib_images: CalibrationSource = None,
) -> tuple[nn.Module, list[str] | None, str]:
    """Build the model a weights file belongs to and load it; return ``(model, names, model_name)``.

    ``model_name`` (if given) wins over the name stored in or guessed from the file; the class count
    always comes from the file. With ``weights=None`` the default weights of ``model_name`` are used.
    The model is returned in eval mode.
    """
    from .models import build_model, get_spec

    path = resolve_weights(model_name, weights)
    # Each file is read once: its description and its weights come from the same read.
    if is_onnx_file(path):
        from .onnx_import import read_onnx_weights

        onnx_weights = read_onnx_weights(path)
        info = _describe_onnx(path, onnx_weights, identify=not model_name)
    else:
        ckpt = read_checkpoint(path)
        info = _describe_checkpoint(path, ckpt, identify=not model_name)
    name = get_spec(model_name).name if model_name else info.model_name
    if name is None:
        raise WeightsMismatchError(f"{path} matches no zoo model; pass --model NAME")
    model = build_model(name, num_classes=info.num_classes or 80)
    if info.format == "onnx":
        names = _load_onnx(model, onnx_weights, calib_images)
    else:
        load_state_dict_checked(model, ckpt["model"], str(path))
        names = info.names
    return model.eval(), names, name


def read_names_file(path: str | os.PathLike) -> list[str]:
    """Class names from a file: one per line (``.txt``), or a JSON/YAML list or ``{names: ...}``."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"names file not found: {path}")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        if path.suffix.lower() == ".json":
            data: Any = json.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = [line.strip() for line in text.splitlines() if line.strip()]
    except Exception as exc:
        raise WeightsError(f"cannot parse names file {path}: {str(exc).splitlines()[0]}") from None
    if isinstance(data, dict):
        data = data.get("names")
        if isinstance(data, dict):  # YOLO-style {0: name, 1: name}
            data = [data[k] for k in sorted(data)]
    if not isinstance(data, list) or not data or not all(isinstance(n, (str, int)) for n in data):
        raise WeightsError(f"names file {path} holds no list of class names")
    return [str(n) for n in data]


def convert_weights(
    source: str | os.PathLike,
    destination: str | os.PathLike,
    model_name: str | None = None,
    calib_images: CalibrationSource = None,
    names: Sequence[str] | None = None,
) -> Path:
    """Convert an ONNX export or a ``.pth`` checkpoint into a yoloxkit checkpoint (atomic write).

    The model comes from ``model_name``, else the name stored in or guessed from ``source``.
    Class names: ``names``, else those stored in ``source``, else COCO names for 80 classes.
    """
    source = Path(source)
    if not source.is_file():
        raise WeightsError(f"weights file not found: {source}")
    model, stored_names, name = build_model_with_weights(model_name, source, calib_images=calib_images)
    num_classes = model.head.num_classes
    if names is not None:
        names = list(names)
        if len(names) != num_classes:
            raise WeightsError(f"{len(names)} class names given but {source} has {num_classes} classes")
    else:
        names = stored_names or _default_names(num_classes, source)
    return save_checkpoint(destination, model, names, name)
