"""``Detector``: the one object users need for inference.

source -> :mod:`yoloxkit.imaging` (read, letterbox) -> backend (network, decode)
-> :mod:`.postprocess` (confidence filter, class-aware NMS), or :mod:`.topk` (confidence filter,
top ``max_dets``, no NMS) for end-to-end networks -> :class:`.Detections`.
Loading the network lives in :mod:`.loading`, class names and filters in :mod:`.classes`.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any, Sequence

import numpy as np
from torch import nn

from ..errors import InferenceError
from ..imaging import ImageInput, as_bgr, letterbox_batch, load_images
from .backends import Backend
from .checks import input_size, threshold
from .defaults import DEFAULT_BATCH_SIZE, DEFAULT_CONF, DEFAULT_MAX_DETS, DEFAULT_NMS, DEFAULT_SLICE_OVERLAP
from .classes import choose_names, class_ids, default_names
from .detections import Detections
from .loading import LoadedNetwork, load_network, wrap_model
from .postprocess import postprocess
from .sliced import Output, detect_sliced
from .slicing import Slicing
from .topk import topk_postprocess

__all__ = ["DEFAULT_NMS", "Detector", "default_names"]

logger = logging.getLogger("yoloxkit")


class Detector:
    """YOLOX object detector on images (paths or BGR arrays), one :class:`Detections` per image.

    ``Detector()`` / ``Detector("yolox-nano")`` uses the bundled COCO weights. ``weights`` takes
    a ``.pth`` checkpoint (official or yoloxkit), any file ``yoloxkit export`` writes (ONNX plain,
    ``--decode`` or ``--nms``; OpenVINO ``.xml``; TorchScript) or an official ``.onnx`` export, or a
    zoo name (``"yolox-s"``: bundled for nano, the official download otherwise); with weights and no
    ``model`` the model is that name, else read from the file. ``size`` is the network input (an int
    or ``(h, w)``, multiples of 32; default: the size the file stores (training or export size),
    else the model's); a file with a fixed input size runs at that size. ``backend`` is ``torch``
    (default; also runs TorchScript), ``onnxruntime`` (default for ``.onnx``) or ``openvino``
    (default for ``.xml``); ``backend="torch"`` imports an ``.onnx`` file into PyTorch. For an
    ``--nms`` export the graph's thresholds are fixed at export: ``conf``/``nms`` can only filter
    further (a higher ``conf``, a lower ``nms``). Class names come from ``names``, else the
    weights file, else COCO names for 80 classes, else ``class0..``. ``half=True`` runs the
    torch backend in float16 (CUDA only). ``batch_size`` caps the images per network call.

    End-to-end networks (``-e2e`` models; exports of them, which say so in their metadata) are
    NMS-free: their scores are final, so post-processing keeps the best class per anchor, the
    anchors scoring at least ``conf`` and then the top ``max_dets`` (default 100) per image,
    without NMS; ``nms`` is ignored (a warning on logger ``yoloxkit`` when one is given).
    ``nms_free`` overrides the choice: None (default) follows the network (:attr:`end_to_end`;
    a ``--topk`` export is NMS-free too), False runs the classic class-aware NMS on the same
    scores, True runs top-k without NMS on any model (a base model then keeps its duplicates).
    ``max_dets`` applies to NMS-free post-processing only.

    ``slice_size`` (``640``, ``"640x480"`` or ``(h, w)``: height x width in image pixels) turns on
    sliced inference for small objects in large images: each image is cut into tiles of that
    size overlapping by ``slice_overlap`` (default 0.2), the tiles run through the network in
    batches of ``batch_size``, with the whole image too when ``slice_full``, and their boxes are
    merged across tile borders by class-aware greedy merging (:class:`~.slicing.Slicing`, which
    can also be passed as ``slice_size``). A slice larger than an image is an error.

    :meth:`from_pretrained` is the same as the constructor; :meth:`from_model` wraps a module
    in memory.
    """

    def __init__(
        self,
        model: str | None = None,
        weights: str | os.PathLike | None = None,
        size: int | Sequence[int] | None = None,
        conf: float = DEFAULT_CONF,
        nms: float | None = None,
        device: str = "cpu",
        backend: str | None = None,
        names: Sequence[str] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        half: bool = False,
        nms_free: bool | None = None,
        max_dets: int = DEFAULT_MAX_DETS,
        slice_size: int | str | Sequence[int] | Slicing | None = None,
        slice_overlap: float = DEFAULT_SLICE_OVERLAP,
        slice_full: bool = False,
        *,
        _network: LoadedNetwork | None = None,
        _note_nms: bool = True,
    ) -> None:
        # ``_network`` (private): an already loaded network, which replaces the loading arguments;
        # ``_note_nms`` (private): log the note that an NMS-free network ignores ``nms``.
        given_nms = nms is not None and _note_nms
        conf, nms = threshold(conf, "conf"), threshold(DEFAULT_NMS if nms is None else nms, "nms")
        if isinstance(max_dets, bool) or not isinstance(max_dets, int) or max_dets < 1:
            raise InferenceError(f"max_dets must be an integer >= 1, got {max_dets!r}")
        if nms_free is not None and not isinstance(nms_free, bool):
            raise InferenceError(f"nms_free must be True, False or None, got {nms_free!r}")
        #: sliced-inference settings (None: every image runs whole)
        self.slicing = Slicing.from_options(slice_size, slice_overlap, slice_full)
        if _network is None:
            loaded = load_network(model, weights, size, device=device, backend=backend, half=half)
        else:
            loaded = _network
        names = choose_names(names, loaded.stored_names, int(loaded.network.num_classes))
        if int(batch_size) < 1:
            raise InferenceError(f"batch_size must be >= 1, got {batch_size}")
        self._network = loaded.network
        self.model_name = loaded.model_name
        self.names = names
        #: the input size ``(h, w)`` every image is letterboxed to
        self.size = loaded.size
        #: the weights file the network came from (None for :meth:`from_model`)
        self.weights = loaded.weights
        self._weights_label = loaded.weights_label or (None if loaded.weights is None else str(loaded.weights))
        #: what the network computes in: ``float32``, ``float16`` (``half``) or ``int8`` (``export --int8``)
        self.precision = loaded.precision
        self.conf = conf
        self.nms = nms
        self.batch_size = int(batch_size)
        #: detections kept per image by NMS-free post-processing
        self.max_dets = int(max_dets)
        #: True: post-processing is top-k without NMS (the network's own choice unless overridden)
        self.nms_free = self._network.nms_free if nms_free is None else nms_free
        if self.nms_free and given_nms:
            why = "is NMS-free" if self._network.nms_free else "runs NMS-free (nms_free=True)"
            logger.warning("%s %s: --nms is ignored", self.model_name, why)

    @classmethod
    def from_pretrained(
        cls, model: str | None = None, weights: str | os.PathLike | None = None, **options
    ) -> "Detector":
        """A detector on a zoo model's weights (bundled or downloaded; ``weights`` may be the
        zoo name) or a weights file; the same as ``Detector(model, weights, **options)``."""
        return cls(model, weights, **options)

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        names: Sequence[str] | None,
        size: int | Sequence[int],
        conf: float = DEFAULT_CONF,
        nms: float | None = None,
        device: str = "cpu",
        backend: str = "torch",
        model_name: str = "yolox",
        batch_size: int = DEFAULT_BATCH_SIZE,
        half: bool = False,
        nms_free: bool | None = None,
        max_dets: int = DEFAULT_MAX_DETS,
    ) -> "Detector":
        """Wrap an in-memory YOLOX module (e.g. a training EMA model); an end-to-end module
        (``model.end_to_end``) is NMS-free unless ``nms_free=False``, and then ignores ``nms``
        silently (training evaluation passes its NMS threshold for every model).

        The module itself is not modified: inference runs on a fused eval-mode copy, so call
        this again after the weights change.
        """
        network = wrap_model(model, size, device=device, backend=backend, model_name=model_name, half=half)
        return cls(names=names, conf=conf, nms=nms, batch_size=batch_size, nms_free=nms_free, max_dets=max_dets,
                   _network=network, _note_nms=False)

    @classmethod
    def from_backend(cls, backend: Backend, size: int | Sequence[int], names: Sequence[str] | None = None,
                     model_name: str = "yolox", **options: Any) -> "Detector":
        """A detector on any :class:`~.registry.Backend` object (a runtime yoloxkit does not
        register, or a model being compiled elsewhere), letterboxing to ``size``; ``options`` are
        the constructor's (``conf``, ``nms``, ``batch_size``, ``max_dets``, ...)."""
        network = LoadedNetwork(backend, model_name, input_size(size))
        return cls(names=names, _network=network, **options)

    # ------------------------------------------------------------------------------------
    # properties

    @property
    def backend(self) -> str:
        """Name of the inference backend (``torch``, ``onnxruntime``, ...)."""
        return self._network.name

    @property
    def network(self) -> Backend:
        """The backend object that runs the network (``network.infer(letterboxed_batch)``)."""
        return self._network

    @property
    def runner(self) -> Backend:
        """Deprecated alias of :attr:`network`."""
        warnings.warn("Detector.runner is deprecated; use Detector.network", DeprecationWarning, stacklevel=2)
        return self._network

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def model(self) -> nn.Module | None:
        """The (fused, eval-mode) torch module the torch backend runs; None for other backends."""
        return self._network.model

    @property
    def device(self) -> str:
        return str(self._network.device)

    @property
    def end_to_end(self) -> bool:
        """Whether the network is end-to-end (an ``-e2e`` model: scores final without NMS)."""
        return bool(self._network.end_to_end)

    def describe(self) -> str:
        """One line for the commands to print, e.g. ``model yolox-nano, input 320x320, weights
        best.pth, backend torch, device cpu`` (``(h x w)`` follows a non-square input); then
        ``, NMS-free (top-k 100)`` when post-processing runs without NMS, or ``, NMS 0.45
        (nms_free=False)`` for an NMS-free network run with NMS."""
        height, width = self.size
        text = f"model {self.model_name}, input {height}x{width}{' (h x w)' if height != width else ''}"
        if self._weights_label is not None:
            text += f", weights {self._weights_label}"
        text += f", backend {self.backend}, device {self.device}"
        if self.precision == "int8":
            text += ", int8"
        if self.nms_free:
            text += f", NMS-free (top-k {min(self.max_dets, self._network.graph_topk or self.max_dets)})"
        elif self._network.nms_free:
            text += f", NMS {self.nms} (nms_free=False)"
        if self.slicing is not None:
            text += f", {self.slicing.label()}"
        return text

    def __repr__(self) -> str:
        post = f"nms_free=True, max_dets={self.max_dets}" if self.nms_free else f"nms={self.nms}"
        return (
            f"Detector({self.model_name}, backend={self.backend}, device={self.device}, size={self.size[0]}x"
            f"{self.size[1]}, classes={self.num_classes}, conf={self.conf}, {post})"
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
        slicing: Slicing | bool | None = None,
    ) -> list[Detections]:
        """Detect objects in image paths and/or BGR arrays; one :class:`Detections` per image.

        ``conf``/``nms`` override the detector's thresholds for this call (``nms`` does nothing
        when :attr:`nms_free`); ``classes`` keeps only those class ids or names; ``slicing`` a
        :class:`~.slicing.Slicing` for this call, or False for whole images (default: the
        detector's). Images run in batches of ``batch_size``.
        """
        if isinstance(images, (str, os.PathLike, np.ndarray)):
            images = [images]
        images = list(images)
        results: list[Detections] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            arrays, image_names = load_images(chunk)
            results.extend(self._run(arrays, image_names, chunk, conf, nms, classes, slicing))
        return results

    def predict_arrays(
        self,
        arrays: Sequence[np.ndarray],
        conf: float | None = None,
        nms: float | None = None,
        classes: Sequence[int | str] | None = None,
        image_names: Sequence[str | None] | None = None,
        slicing: Slicing | bool | None = None,
    ) -> list[Detections]:
        """Detect objects in BGR ``uint8`` arrays, all in one batch (their tiles in batches of
        ``batch_size`` when sliced); ``image_names`` label results; ``slicing`` as in :meth:`predict`."""
        arrays = [as_bgr(a, name=f"arrays[{i}]") for i, a in enumerate(arrays)]
        image_names = list(image_names) if image_names is not None else [None] * len(arrays)
        if len(image_names) != len(arrays):
            raise InferenceError(f"{len(image_names)} image_names given for {len(arrays)} arrays")
        return self._run(arrays, image_names, arrays, conf, nms, classes, slicing)

    def resolve_classes(self, classes: Sequence[int | str] | None) -> list[int] | None:
        """Class ids for class names or ids; :class:`InferenceError` for an unknown one."""
        return class_ids(classes, self.names)

    def _run(
        self,
        arrays: list[np.ndarray],
        image_names: Sequence[str | None],
        sources: Sequence[object],
        conf: float | None,
        nms: float | None,
        classes: Sequence[int | str] | None,
        slicing: Slicing | bool | None = None,
    ) -> list[Detections]:
        if not arrays:
            return []
        conf = self.conf if conf is None else threshold(conf, "conf")
        nms = self.nms if nms is None else threshold(nms, "nms")
        class_ids = self.resolve_classes(classes)
        if slicing is None or slicing is True:
            slicing = self.slicing
        if slicing is not None and slicing is not False and not isinstance(slicing, Slicing):
            raise InferenceError(f"slicing must be a Slicing, False or None, got {slicing!r}")

        def detect(crops: list[np.ndarray]) -> list[Output]:
            return self._detect(crops, conf, nms, class_ids)

        if slicing:
            outputs = detect_sliced(arrays, slicing, detect, self.batch_size, image_names)
        else:
            outputs = detect(arrays)
        sizes = [a.shape[:2] for a in arrays]
        return [
            Detections(boxes, scores, ids, self.names, name, int(w), int(h), source)
            for (boxes, scores, ids), name, (h, w), source in zip(outputs, image_names, sizes, sources)
        ]

    def _detect(self, arrays: list[np.ndarray], conf: float, nms: float, class_ids: list[int] | None) -> list[Output]:
        """One network call on ``arrays`` and its post-processing: boxes in each array's pixels."""
        batch, ratios = letterbox_batch(arrays, self.size)
        predictions = self._network.infer(batch)
        sizes = [a.shape[:2] for a in arrays]
        if self.nms_free:
            return topk_postprocess(predictions, ratios, sizes, conf=conf, max_dets=self.max_dets, classes=class_ids)
        return postprocess(predictions, ratios, sizes, conf=conf, nms=nms, classes=class_ids)
