"""INT8 LiteRT files through ``ai-edge-quantizer``: static A8W8 quantisation (int8 activations
calibrated on the user's images, per-channel int8 weights) of the float ``.tflite`` graph, with
chosen layer groups and the output tail kept in float.

The tail (the head's concatenation of boxes, objectness and class scores, and a ``--decode``
graph's decode) always stays in float: quantised, boxes in pixels and scores in [0, 1] would share
one int8 scale. So the file's input and output stay float32 too, and it runs wherever the float
file runs. The groups are named as in :mod:`.layers` (``stem``, ``dark2``, ``dark3``, ``preds``)
and matched against the tensor names ``litert-torch`` writes, which record the PyTorch module
path (``.../CSPDarknet_backbone/torch.nn.modules.container.Sequential_dark2/...``).

The recipes, measured on the bundled nano at 416 (calibrated on the 64 images ``--calib-count``
takes from coco-mini train2017; COCO AP on coco-mini val2017, 79 images; the float file: 31.23,
as onnxruntime; latency: 2 and 1 threads, against the float file, one run):

=====================================  =====  ===============  ===============
float groups (and the tail)            AP     2 threads        1 thread
=====================================  =====  ===============  ===============
none: every layer int8                 21.11  0.76x            0.68x
stem                                   21.79
dark2 / dark2+preds                    20.75 / 21.21
stem+dark2                             30.42  0.94x            0.72x
stem+dark2+preds                       30.78  0.80x            0.71x
stem+dark2+preds, symmetric            29.14
**stem+dark2+dark3+preds** (default)   30.67  0.77x            0.71x
=====================================  =====  ===============  ===============

The stem (its input is the raw 0-255 image) and dark2 carry the uneven activation ranges: with
either in int8 the file loses about 9 AP. The default adds dark3 (the stride-8 stage that feeds
the small-object level) by the rule "the smallest worst drop over both datasets measured": on a
nano fine-tuned on BCCD (blood cells, benchmarks/bench_edge_int8.py, docs/BENCHMARKS.md) it keeps
91.67 mAP50 against float's 91.61 (stem+dark2+preds: 91.03), while on coco-mini it costs 0.11 AP
against stem+dark2+preds; worst drops 0.55 against 0.59, for about 5% more latency.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from ..errors import ExportError, first_line
from ..export.edge import check_edge_options, write_edge_sidecar
from ..export.graph import export_module
from ..export.options import ExportOptions
from ..export.tflite import convert_tflite
from ..export.verify import sample_input
from ..native_output import native_output
from ..optional import import_ai_edge_quantizer

__all__ = ["TFLITE_LAYER_GROUPS", "TfliteInt8Recipe", "quantize_tflite", "int8_tflite"]

#: group name -> regular expression over the output tensor names of a converted YOLOX graph
TFLITE_LAYER_GROUPS: dict[str, str] = {
    # the first conv (Focus / space-to-depth for CSPDarknet, a plain conv for Darknet-53) and its slicing
    "stem": r"_backbone/[\w.]+_stem[/;]",
    "dark2": r"\.Sequential_dark2[/;]",
    "dark3": r"\.Sequential_dark3[/;]",
    # the 1x1 prediction convs of the head (ModuleLists: the head's direct Conv2d children)
    "preds": r"Head_head/torch\.nn\.modules\.conv\.Conv2d_\d+;",
    # what the head computes after its convs (sigmoids, concatenations, the decode) and the output
    "tail": r"Head_head;|^serving_default_",
}


@dataclass(frozen=True)
class TfliteInt8Recipe:
    """How :func:`quantize_tflite` quantises (defaults: the best recipe of the module's table).

    ``float_groups`` (:data:`TFLITE_LAYER_GROUPS`; the ``tail`` always) stay in float;
    ``symmetric`` makes the int8 activations symmetric (zero point 0) instead of asymmetric
    (SiLU outputs are far from symmetric); the weights are per-channel symmetric int8.
    """

    float_groups: tuple[str, ...] = ("stem", "dark2", "dark3", "preds")
    symmetric: bool = False

    def __post_init__(self) -> None:
        unknown = [g for g in self.float_groups if g not in TFLITE_LAYER_GROUPS]
        if unknown:
            raise ExportError(f"unknown layer group {unknown[0]!r}; choose from: {', '.join(TFLITE_LAYER_GROUPS)}")

    def describe(self) -> str:
        kept = "+".join((*self.float_groups, "tail"))
        kind = "symmetric" if self.symmetric else "asymmetric"
        return f"ai-edge-quantizer A8W8 static, min/max calibration, {kind} activations, float: {kept}"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The quantiser's output captured, and LiteRT's warning that its calibration interpreters keep
    every intermediate tensor (they do so on purpose) ignored."""
    with native_output(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Warning: Enabling `experimental_preserve_all_tensors`", UserWarning)
        yield


def _quantizer(float_file: Path, recipe: TfliteInt8Recipe):
    """An ``ai_edge_quantizer.Quantizer`` of ``float_file`` set up with ``recipe``."""
    aeq = import_ai_edge_quantizer()
    from ai_edge_quantizer import algorithm_manager, qtyping  # noqa: PLC0415 (optional, imported above)

    ops = qtyping.TFLOperationName.ALL_SUPPORTED
    quantizer = aeq.Quantizer(str(float_file))
    int8 = dict(num_bits=8, granularity=qtyping.QuantGranularity.TENSORWISE, dtype=qtyping.TensorDataType.INT)
    config = qtyping.OpQuantizationConfig(
        activation_tensor_config=qtyping.TensorQuantizationConfig(symmetric=recipe.symmetric, **int8),
        weight_tensor_config=qtyping.TensorQuantizationConfig(
            num_bits=8, symmetric=True, granularity=qtyping.QuantGranularity.CHANNELWISE,
            dtype=qtyping.TensorDataType.INT),
        compute_precision=qtyping.ComputePrecision.INTEGER,
    )
    quantizer.update_quantization_recipe(regex=".*", operation_name=ops, op_config=config,
                                         algorithm_key=algorithm_manager.AlgorithmName.MIN_MAX_UNIFORM_QUANT)
    for group in (*recipe.float_groups, "tail"):
        quantizer.update_quantization_recipe(regex=TFLITE_LAYER_GROUPS[group], operation_name=ops,
                                             algorithm_key=algorithm_manager.AlgorithmName.NO_QUANTIZE)
    return quantizer


def int8_tflite(float_file: Path, images: np.ndarray, target: Path, recipe: TfliteInt8Recipe = TfliteInt8Recipe(),
                threads: int | None = None) -> Path:
    """Write ``target``: the float ``.tflite`` file ``float_file`` quantised with ``recipe``,
    its activations calibrated on ``images`` (``[N,3,H,W]`` float32, the network input, fed one
    at a time)."""
    quantizer = _quantizer(float_file, recipe)
    (signature, inputs), = _signatures(float_file).items()
    if len(inputs) != 1:
        raise ExportError(f"{float_file.name} is not a YOLOX graph: {len(inputs)} inputs, expected 1")
    name = inputs[0]
    feeds = [{name: np.ascontiguousarray(images[i : i + 1], dtype=np.float32)} for i in range(len(images))]
    try:
        with _quiet():
            ranges = quantizer.calibrate({signature: feeds}, num_threads=int(threads or torch.get_num_threads()))
            result = quantizer.quantize(ranges, enable_progress_bar=False, enable_progress_report=False)
    except Exception as exc:  # the quantiser raises ValueError/RuntimeError for what it cannot quantise
        raise ExportError(f"ai-edge-quantizer cannot quantise {float_file.name}: {first_line(exc)}") from None
    target.write_bytes(bytes(result.quantized_model))
    return target


def _signatures(float_file: Path) -> dict[str, list[str]]:
    """``{signature key: [input names]}`` of a ``.tflite`` file (``litert-torch`` writes one,
    ``serving_default``, with one input)."""
    from ai_edge_quantizer.utils import tfl_interpreter_utils  # noqa: PLC0415 (optional)

    with _quiet():
        interpreter = tfl_interpreter_utils.create_tfl_interpreter(str(float_file))
    return {key: list(value["inputs"]) for key, value in interpreter.get_signature_list().items()}


def quantize_tflite(model: nn.Module, options: ExportOptions, images: np.ndarray, work: Path,
                    recipe: TfliteInt8Recipe = TfliteInt8Recipe()) -> tuple[Path, Path]:
    """Write into ``work`` the float ``.tflite`` file of ``model``'s export graph and its INT8
    version (``recipe``, calibrated on ``images``: ``[N,3,H,W]`` float32, letterboxed BGR 0-255),
    each with its metadata beside it (INT8: ``precision`` ``int8`` and the recipe under
    ``quantization``); returns ``(float file, int8 file)``."""
    check_edge_options("tflite", options)
    if len(images) < 1:
        raise ExportError("INT8 LiteRT export needs at least one calibration image")
    module = export_module(model, options)
    work = Path(work)
    float_file = convert_tflite(module, sample_input(options.size, 1), work / "float.tflite")
    write_edge_sidecar(float_file, module, options, "tflite")
    int8_file = int8_tflite(float_file, images, work / "int8.tflite", recipe)
    quantization = {"runtime": "litert", "calibration_images": int(len(images)), "recipe": recipe.describe(),
                    **asdict(recipe)}
    write_edge_sidecar(int8_file, module, options, "tflite", "int8", quantization)
    return float_file, int8_file
