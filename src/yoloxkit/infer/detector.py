"""``Detector``: the one object users need for inference.

source -> :mod:`.images` -> :mod:`.preprocess` (letterbox) -> backend (network, decode)
-> :mod:`.postprocess` (confidence filter, class-aware NMS) -> :class:`.Detections`.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from torch import nn

from ..coco_names import COCO_NAMES
from ..errors import InferenceError, WeightsMismatchError
from ..models import get_spec
from .backends import Backend, backend_names, make_backend, resolve_device
from .detections import Detections
from .images import ImageInput, as_bgr, load_images
from .postprocess import postprocess
from .preprocess import letterbox_batch, to_size

__all__ = ["Detector", "default_names"]

DEFAULT_MODEL = "yolox-nano"


def default_names(num_classes: int) -> list[str]:
    """COCO names for 80 classes, else ``class0, class1, ...``."""
    if num_classes == len(COCO_NAMES):
        return list(COCO_NAMES)
    return [f"class{i}" for i in range(num_classes)]


def _threshold(value: float, argument: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InferenceError(f"{argument} must be a number between 0 and 1, got {value!r}") from None
    if not 0.0 <= value <= 1.0:
        raise InferenceError(f"{argument} must be between 0 and 1, got {value}")
    return value


def _size(size: int | Sequence[int], argument: str = "size") -> tuple[int, int]:
    try:
        return to_size(size)
    except (ValueError, TypeError) as exc:
        raise InferenceError(f"invalid {argument}: {exc}") from None


class Detector:
    """YOLOX object detector on images (paths or BGR arrays), one :class:`Detections` per image.

    ``Detector()`` / ``Detector("yolox-nano")`` uses the bundled COCO weights. ``weights`` takes
    a ``.pth`` checkpoint (official or yoloxkit) or an official ``.onnx`` export; with weights and
    no ``model`` the model is read from the file. ``size`` is the network input (an int or
    ``(h, w)``, multiples of 32; default: the model's). ``backend`` is ``torch`` (default),
    ``onnxruntime`` or ``openvino``; an ``.onnx`` weights file runs in onnxruntime unless
    ``backend="torch"`` asks to import it into PyTorch. Class names come from ``names``, else
    the checkpoint, else COCO names for 80 classes, else ``class0..``. ``half=True`` runs the
    torch backend in float16 (CUDA only). ``batch_size`` caps the images per network call.
    """

    def __init__(
        self,
        model: str | None = None,
        weights: str | os.PathLike | None = None,
        size: int | Sequence[int] | None = None,
        conf: float = 0.25,
        nms: float = 0.45,
        device: str = "cpu",
        backend: str | None = None,
        names: Sequence[str] | None = None,
        batch_size: int = 16,
        half: bool = False,
    ) -> None:
        from ..weights import build_model_with_weights, describe_weights, is_onnx_file, resolve_weights

        conf, nms = _threshold(conf, "conf"), _threshold(nms, "nms")
        backend_name = self._backend_name(backend, weights)
        resolve_device(device)  # fail on an unavailable device before loading anything
        if model is None and weights is None:
            model = DEFAULT_MODEL
        requested = get_spec(model).name if model is not None else None
        path = resolve_weights(requested, weights)
        torch_model: nn.Module | None = None
        onnx_path = None
        if is_onnx_file(path) and backend_name != "torch":
            info = describe_weights(path)
            if requested is not None and info.model_name is not None and info.model_name != requested:
                raise WeightsMismatchError(
                    f"{path} does not fit {requested}: it looks like {info.model_name}; pass --model {info.model_name}"
                )
            model_name = requested or info.model_name or "yolox"
            stored_names = info.names
            onnx_path = path
        else:
            torch_model, stored_names, model_name = build_model_with_weights(requested, path)
        spec_size = get_spec(model_name).input_size if model_name != "yolox" else None
        wanted_size = _size(size) if size is not None else None
        backend_obj = make_backend(
            backend_name, model=torch_model, onnx_path=onnx_path,
            size=wanted_size or _size(spec_size or 640), device=device, **({"half": True} if half else {}),
        )
        if backend_obj.fixed_size is not None:
            if wanted_size is not None and wanted_size != backend_obj.fixed_size:
                raise InferenceError(
                    f"{path} has a fixed input size {backend_obj.fixed_size[0]}x{backend_obj.fixed_size[1]};"
                    f" size {wanted_size[0]}x{wanted_size[1]} does not fit it (omit --size or re-export)"
                )
            final_size = backend_obj.fixed_size
        else:
            final_size = wanted_size or _size(spec_size or 640)
        self._setup(backend_obj, model_name, names, stored_names, final_size, conf, nms, batch_size)

    # ------------------------------------------------------------------------------------
    # construction helpers

    @staticmethod
    def _backend_name(backend: str | None, weights: str | os.PathLike | None) -> str:
        if backend is None:
            onnx = weights is not None and str(weights).lower().endswith(".onnx")
            return "onnxruntime" if onnx else "torch"
        name = str(backend).strip().lower()
        choices = backend_names()
        if name not in choices:
            raise InferenceError(f"unknown backend {backend!r}; choose one of: {', '.join(choices)}")
        return name

    def _setup(
        self,
        backend: Backend,
        model_name: str,
        names: Sequence[str] | None,
        stored_names: Sequence[str] | None,
        size: tuple[int, int],
        conf: float,
        nms: float,
        batch_size: int = 16,
    ) -> None:
        num_classes = int(backend.num_classes)
        chosen = list(names) if names is not None else (list(stored_names) if stored_names else None)
        if chosen is None:
            chosen = default_names(num_classes)
        if len(chosen) != num_classes:
            raise InferenceError(f"{len(chosen)} class names given but the model has {num_classes} classes")
        if int(batch_size) < 1:
            raise InferenceError(f"batch_size must be >= 1, got {batch_size}")
        self._backend = backend
        self.model_name = model_name
        self.names = [str(n) for n in chosen]
        self.size = size
        self.conf = conf
        self.nms = nms
        self.batch_size = int(batch_size)

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        names: Sequence[str] | None,
        size: int | Sequence[int],
        conf: float = 0.25,
        nms: float = 0.45,
        device: str = "cpu",
        backend: str = "torch",
        model_name: str = "yolox",
        batch_size: int = 16,
        half: bool = False,
    ) -> "Detector":
        """Wrap an in-memory YOLOX module (e.g. a training EMA model).

        The module itself is not modified: inference runs on a fused eval-mode copy, so call
        this again after the weights change.
        """
        detector = cls.__new__(cls)
        backend_obj = make_backend(
            backend, model=model, size=_size(size), device=device, **({"half": True} if half else {})
        )
        detector._setup(
            backend_obj, model_name, names, None, _size(size), _threshold(conf, "conf"), _threshold(nms, "nms"),
            batch_size,
        )
        return detector

    # ------------------------------------------------------------------------------------
    # properties

    @property
    def backend(self) -> str:
        """Name of the inference backend (``torch``, ``onnxruntime``, ...)."""
        return self._backend.name

    @property
    def runner(self) -> Backend:
        """The backend object that runs the network (``runner.infer(letterboxed_batch)``)."""
        return self._backend

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def model(self) -> nn.Module | None:
        """The (fused, eval-mode) torch module the torch backend runs; None for other backends."""
        return self._backend.model

    @property
    def device(self) -> str:
        return str(self._backend.device)

    def __repr__(self) -> str:
        return (
            f"Detector({self.model_name}, backend={self.backend}, device={self.device}, size={self.size[0]}x"
            f"{self.size[1]}, classes={self.num_classes}, conf={self.conf}, nms={self.nms})"
        )

    # ------------------------------------------------------------------------------------
    # inference

    def __call__(self, images: ImageInput | Sequence[ImageInput], **overrides) -> list[Detections]:
        """Same as :meth:`predict`."""
        return self.predict(images, **overrides)

    def predict(
        self,
        images: ImageInput | Sequence[ImageInput],
        conf: float | None = None,
        nms: float | None = None,
        classes: Sequence[int | str] | None = None,
    ) -> list[Detections]:
        """Detect objects in image paths and/or BGR arrays; one :class:`Detections` per image.

        ``conf``/``nms`` override the detector's thresholds for this call; ``classes`` keeps
        only those class ids or names. Images run in batches of ``batch_size``.
        """
        if isinstance(images, (str, os.PathLike, np.ndarray)):
            images = [images]
        images = list(images)
        results: list[Detections] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            arrays, image_names = load_images(chunk)
            results.extend(self._run(arrays, image_names, chunk, conf, nms, classes))
        return results

    def predict_arrays(
        self,
        arrays: Sequence[np.ndarray],
        conf: float | None = None,
        nms: float | None = None,
        classes: Sequence[int | str] | None = None,
        image_names: Sequence[str | None] | None = None,
    ) -> list[Detections]:
        """Detect objects in BGR ``uint8`` arrays, all in one batch; ``image_names`` label results."""
        arrays = [as_bgr(a, name=f"arrays[{i}]") for i, a in enumerate(arrays)]
        image_names = list(image_names) if image_names is not None else [None] * len(arrays)
        if len(image_names) != len(arrays):
            raise InferenceError(f"{len(image_names)} image_names given for {len(arrays)} arrays")
        return self._run(arrays, image_names, arrays, conf, nms, classes)

    def resolve_classes(self, classes: Sequence[int | str] | None) -> list[int] | None:
        """Class ids for class names or ids; :class:`InferenceError` for an unknown one."""
        if classes is None:
            return None
        ids = []
        for item in classes:
            if isinstance(item, str) and not item.isdigit():
                if item not in self.names:
                    known = ", ".join(self.names[:20]) + (", ..." if len(self.names) > 20 else "")
                    raise InferenceError(f"unknown class {item!r}; the model's classes are: {known}")
                ids.append(self.names.index(item))
            else:
                index = int(item)
                if not 0 <= index < self.num_classes:
                    raise InferenceError(f"class id {index} out of range 0..{self.num_classes - 1}")
                ids.append(index)
        return ids

    def _run(
        self,
        arrays: list[np.ndarray],
        image_names: Sequence[str | None],
        sources: Sequence[object],
        conf: float | None,
        nms: float | None,
        classes: Sequence[int | str] | None,
    ) -> list[Detections]:
        if not arrays:
            return []
        conf = self.conf if conf is None else _threshold(conf, "conf")
        nms = self.nms if nms is None else _threshold(nms, "nms")
        class_ids = self.resolve_classes(classes)
        batch, ratios = letterbox_batch(arrays, self.size)
        predictions = self._backend.infer(batch)
        sizes = [a.shape[:2] for a in arrays]
        outputs = postprocess(predictions, ratios, sizes, conf=conf, nms=nms, classes=class_ids)
        return [
            Detections(boxes, scores, ids, self.names, name, int(w), int(h), source)
            for (boxes, scores, ids), name, (h, w), source in zip(outputs, image_names, sizes, sources)
        ]
