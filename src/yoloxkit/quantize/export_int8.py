"""``export --int8``: the float graph of :mod:`yoloxkit.export`, quantised by the runtime's own
tool (:mod:`.onnx_int8`, :mod:`.openvino_int8`, and for the edge formats :mod:`.edge_int8`:
MNN's and LiteRT's quantisers), compared with float in the same runtime, and refused when it
loses more AP than allowed. Nothing is written until the file has passed."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..data import DetectionData
from ..errors import ExportError
from ..export import ExportOptions, default_output_path, options_for_model
from ..export.graph import export_module
from ..export.edge import check_edge_options, move_into_place
from ..export.onnx import check_opset, write_onnx
from ..export.verify import sample_input
from ..infer.classes import default_names
from ..infer.openvino_backend import openvino_precision
from ..models import anchor_based
from ..io import check_writable, staging_dir
from ..optional import import_openvino
from ..weights import find_format
from .accuracy import file_accuracy
from .calibration import DEFAULT_CALIB_COUNT, calibration_inputs, calibration_files
from .onnx_int8 import INT8_MIN_OPSET, OnnxInt8Recipe, quantize_onnx
from .compare import compare_files
from .edge_int8 import EDGE_INT8_FORMATS, EdgeInt8Recipes, check_edge_int8, quantize_edge
from .nncf_worker import quantize_openvino_in_child
from .openvino_int8 import OpenVinoInt8Recipe, default_precision_latency, require_nncf

__all__ = ["INT8_FORMATS", "INT8_MIN_OPSET", "check_int8", "Int8Settings", "Int8Result", "export_int8", "int8_output_path"]

INT8_FORMATS = ("onnx", "openvino", *EDGE_INT8_FORMATS)
_CHECK_IMAGES = 8  # calibration images the float/int8 output comparison runs on


@dataclass(frozen=True)
class Int8Settings:
    """What ``export --int8`` needs besides the export options.

    ``calib``: a folder of images (searched recursively; ``calib_count`` of them, spread over the
    folder); ``val_data`` with ``max_ap_drop`` (AP points): measure the float and INT8 AP on that
    split and refuse a larger drop; the recipes say how each runtime quantises.
    """

    calib: str | os.PathLike | list[Path]
    calib_count: int = DEFAULT_CALIB_COUNT
    val_data: DetectionData | None = None
    max_ap_drop: float | None = None
    onnx_recipe: OnnxInt8Recipe = field(default_factory=OnnxInt8Recipe)
    openvino_recipe: OpenVinoInt8Recipe = field(default_factory=OpenVinoInt8Recipe)
    edge_recipes: EdgeInt8Recipes = field(default_factory=EdgeInt8Recipes)


@dataclass(frozen=True)
class Int8Result:
    """Where the INT8 file went and what it kept of the float model, in the same runtime."""

    path: Path
    format: str
    runtime: str
    recipe: str
    calibration_images: int
    max_abs_diff: float  # INT8 against float on calibration images: the scores, or the detection outputs
    output_scale: float  # the largest float value compared, for scale
    compared: str = "scores"  # "scores" ([B, A, 5+C] graphs) or "outputs" (--nms / --topk graphs)
    compared_images: int = 0  # how many calibration images the comparison ran on
    float_ms: float = 0.0  # median latency of each file on this machine, same runtime and threads
    int8_ms: float = 0.0
    float_ap: float | None = None  # percent, with --val-data
    int8_ap: float | None = None
    float_precision: str = "fp32"  # what the float file computed in when it was timed (Backend.precision)
    # OpenVINO on a CPU whose default float precision is not f32 (bf16 with AMX): (precision, ms)
    float_default: tuple[str, float] | None = None

    @property
    def ap_drop(self) -> float | None:
        return None if self.float_ap is None or self.int8_ap is None else self.float_ap - self.int8_ap

    def summary(self) -> str:
        text = (f"exported int8 {self.format} to {self.path} ({self.recipe}; calibrated on"
                f" {self.calibration_images} images); in {self.runtime}, against float on"
                f" {self.compared_images} of them: max abs diff of the {self.compared}"
                f" {self.max_abs_diff:.3g} (values up to {self.output_scale:.3g})")
        if self.ap_drop is not None:
            text += f"; AP {self.int8_ap:.2f} int8 vs {self.float_ap:.2f} float (drop {self.ap_drop:.2f})"
        if self.int8_ms > 0:
            text += (f"; {self.int8_ms:.1f} ms vs {self.float_ms:.1f} ms float here ({self.speedup:.2f}x; float computed"
                     f" in {self.float_precision})")
        if self.float_default is not None:
            text += f"; the float model at OpenVINO's default {self.float_default[0]}: {self.float_default[1]:.1f} ms"
        return text

    @property
    def speedup(self) -> float:
        """Float latency over INT8 latency, measured by the export on this machine."""
        return self.float_ms / self.int8_ms if self.int8_ms > 0 else float("nan")

    def advice(self) -> str | None:
        """A note when INT8 is no faster than float in this runtime here (docs/int8.md says why)."""
        if self.float_default is not None and 0 < self.float_default[1] <= self.int8_ms:
            return (f"note: on this CPU OpenVINO's default runs the float model in {self.float_default[0]} at"
                    f" {self.float_default[1]:.1f} ms, no slower than int8 ({self.int8_ms:.1f} ms): deploy the float IR"
                    " with OpenVINO's defaults unless you need fp32 results (docs/int8.md)")
        if self.int8_ms > 0 and self.speedup < 1.0:
            other = "--format openvino" if self.format == "onnx" else "the float export"
            return (f"note: on this CPU the int8 file runs slower than float in {self.runtime}"
                    f" ({self.speedup:.2f}x); try {other} (docs/int8.md: which runtime for which model)")
        return None


def int8_output_path(model_name: str, fmt: str, options: ExportOptions) -> Path:
    """``yolox-nano-int8.onnx``, ``yolox-nano-int8-nms.onnx``, ``yolox-nano-int8_openvino/...``."""
    return default_output_path(f"{model_name}-int8", fmt, options)


def check_int8(fmt: str, options: ExportOptions, settings: Int8Settings) -> None:
    """Raise :class:`ExportError` (or :class:`MissingDependencyError`) for settings that cannot
    work, before any calibration image is read."""
    check_edge_int8(fmt)  # ncnn: no INT8 tools in its pip packages
    if fmt not in INT8_FORMATS:
        raise ExportError(f"--int8 exports {', '.join(INT8_FORMATS)}, not {fmt}")
    if find_format(fmt).edge:
        check_edge_options(fmt, options)
    if fmt in ("onnx", "openvino"):  # quantised as ONNX QDQ or through it (the edge formats: their own graphs)
        check_opset(options.opset)
        if options.opset < INT8_MIN_OPSET:
            raise ExportError(f"--int8 needs --opset {INT8_MIN_OPSET} or newer (per-channel QDQ), got {options.opset}")
    if settings.calib_count < 1:
        raise ExportError(f"invalid --calib-count {settings.calib_count}: it must be >= 1")
    if settings.max_ap_drop is not None:
        if settings.val_data is None:
            raise ExportError("--max-ap-drop needs --val-data, the split to measure the AP on")
        if not settings.max_ap_drop >= 0:
            raise ExportError(f"invalid --max-ap-drop {settings.max_ap_drop}: it must be >= 0")
    if fmt == "openvino":
        import_openvino()
        require_nncf()


def export_int8(
    model: nn.Module,
    fmt: str,
    path: str | os.PathLike | None,
    options: ExportOptions,
    settings: Int8Settings,
    report: Callable[[str], None] | None = None,
) -> Int8Result:
    """Export ``model`` as INT8 ``fmt`` (``onnx``: onnxruntime QDQ; ``openvino``: NNCF; ``mnn``,
    ``tflite``: :mod:`.edge_int8`) at ``path`` (None: :func:`int8_output_path`), calibrated on
    ``settings.calib``.

    The INT8 file is compared with the float graph in the same runtime; with ``val_data`` the AP
    of both is measured, and with ``max_ap_drop`` a larger drop raises :class:`ExportError`,
    leaving no file. ``report`` receives progress lines. ``path`` is checked for writing before
    any work, and a failed write raises :class:`~yoloxkit.errors.OutputError` naming it.
    """
    say = report or (lambda line: None)
    fmt = fmt.lower()
    check_int8(fmt, options, settings)
    options = options_for_model(options, bool(getattr(model, "end_to_end", False)), anchor_based(model))
    path = Path(path) if path is not None else int8_output_path(options.model_name or "yolox", fmt, options)
    if fmt == "openvino" and path.suffix != ".xml":
        path = path.with_suffix(".xml")
    check_writable(path)
    files = calibration_files(settings.calib, settings.calib_count)
    images, skipped = calibration_inputs(files, options.size)
    if skipped:
        say(f"calibration: skipped {len(skipped)} unreadable image(s), e.g. {skipped[0]}")
    recipe = _recipe(fmt, settings)
    runtime = find_format(fmt).backend
    with staging_dir(path) as work:
        source = "the checkpoint's training images" if isinstance(settings.calib, list) else settings.calib
        say(f"calibrating on {len(images)} images of {source} ({recipe.describe()})")
        if options.batch == 1:
            checked = [images[i : i + 1] for i in range(min(len(images), _CHECK_IMAGES))]
        else:  # a static batch: the first images, as many as it takes
            checked = [np.resize(images, (options.batch, *images.shape[1:]))]
        if fmt in EDGE_INT8_FORMATS:
            float_path, int8_path = quantize_edge(model, fmt, options, images, work, settings.edge_recipes)
            compared = compare_files(fmt, float_path, int8_path, checked, scores_only=not options.detections)
        else:
            float_path, int8_path = work / "float.onnx", work / path.name
            write_onnx(export_module(model, options), sample_input(options.size, options.batch), float_path, options)
            compared = _quantize(model, fmt, float_path, int8_path, images, checked, options, settings, say)
        float_ap, int8_ap = _gate(float_path, int8_path, runtime, options, settings, say)
        default = default_precision_latency(float_path, checked[0], torch.get_num_threads()) if fmt == "openvino" else None
        _move(fmt, int8_path, path)
    return Int8Result(path, fmt, runtime, recipe.describe(), len(images), compared.max_abs_diff, compared.scale,
                      compared="outputs" if options.detections else "scores",
                      compared_images=sum(len(batch) for batch in checked), float_ms=compared.float_ms,
                      int8_ms=compared.int8_ms, float_ap=float_ap, int8_ap=int8_ap,
                      float_precision=_float_precision(fmt), float_default=default)


def _float_precision(fmt: str) -> str:
    """What the float file computed in when the export timed it: fp32 in every runtime here
    (OpenVINO is told to; its own default on a CPU with AMX or AVX-512 BF16 is bf16)."""
    return openvino_precision(import_openvino().Core(), None) if fmt == "openvino" else "fp32"


def _recipe(fmt: str, settings: Int8Settings):
    """The recipe ``fmt`` is quantised with (it describes itself for the report)."""
    if fmt in EDGE_INT8_FORMATS:
        return settings.edge_recipes.of(fmt)
    return settings.onnx_recipe if fmt == "onnx" else settings.openvino_recipe


def _move(fmt: str, staged: Path, path: Path) -> None:
    """Move the verified INT8 file (with its companions: OpenVINO's .bin, an edge file's metadata)
    from the staging folder onto ``path``."""
    if find_format(fmt).edge:
        move_into_place(staged, path)
        return
    if fmt == "openvino":
        os.replace(staged.with_suffix(".bin"), path.with_suffix(".bin"))
    os.replace(staged, path)


def _quantize(model: nn.Module, fmt: str, float_path: Path, int8_path: Path, images: np.ndarray,
              checked: list[np.ndarray], options: ExportOptions, settings: Int8Settings, say: Callable[[str], None]):
    """Quantise ``float_path`` into ``int8_path`` in ``fmt``'s runtime and compare the two on
    ``checked``; the comparison (max abs diff, scale, latencies)."""
    scores_only = not options.detections
    if fmt == "onnx":
        quantize_onnx(float_path, int8_path, images, settings.onnx_recipe)
        return compare_files(fmt, float_path, int8_path, checked, scores_only=scores_only)
    if settings.val_data is not None and settings.max_ap_drop is not None:
        say(f"NNCF accuracy control: keeping layers in float until the AP drop is within"
            f" {settings.max_ap_drop:g} on {len(settings.val_data.records)} images")
    names = list(options.names) if options.names else default_names(int(model.head.num_classes))
    # quantised and compared in a child process (see .nncf_worker)
    return quantize_openvino_in_child(
        float_path, images, settings.openvino_recipe, int8_path, val_data=settings.val_data, names=names,
        size=options.size, interface=options.interface, static_batch=options.batch,
        max_drop=settings.max_ap_drop, check=checked, scores_only=scores_only,
    )


def _gate(float_path: Path, int8_path: Path, runtime: str, options: ExportOptions, settings: Int8Settings,
          say: Callable[[str], None]) -> tuple[float | None, float | None]:
    """``(float AP, int8 AP)`` on ``settings.val_data`` (None without it); :class:`ExportError`
    when the drop exceeds ``settings.max_ap_drop``."""
    if settings.val_data is None:
        return None, None
    say(f"measuring AP on {settings.val_data.root} {settings.val_data.split}"
        f" ({len(settings.val_data.records)} images), float and int8, in {runtime}")
    float_ap = file_accuracy(float_path, runtime, settings.val_data, options.size)
    int8_ap = file_accuracy(int8_path, runtime, settings.val_data, options.size)
    drop = float_ap - int8_ap
    if settings.max_ap_drop is not None and drop > settings.max_ap_drop:
        raise ExportError(
            f"int8 export refused: AP {int8_ap:.2f} is {drop:.2f} below float {float_ap:.2f}, over"
            f" --max-ap-drop {settings.max_ap_drop:g}; nothing written"
        )
    return float_ap, int8_ap
