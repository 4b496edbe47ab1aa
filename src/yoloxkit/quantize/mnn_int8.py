"""INT8 MNN files through MNN's own offline quantiser (``_tools.mnnquant``): int8 convolutions
with per-channel weights and per-tensor symmetric int8 activations calibrated on the user's
images, chosen layer groups and the output tail kept in float.

What was measured (bundled nano at 416, coco-mini val2017, 64 train2017 calibration images; MNN
float 31.23 AP, the same as onnxruntime): no recipe of MNN 3.6.1 comes within 1 AP of float, and
the INT8 file runs slower than float on this x86 CPU (about 1.3x the time). KL activations with
stem, dark2, the prediction convs and the tail in float: 9.9 AP with ADMM weights (the default
here), 7.8 with MAX_ABS weights; every layer int8: 5.5; EMA: 9.9 (it ignores the layers to
skip); ADMM activations crash the quantiser (segmentation fault); the onnxruntime QDQ INT8
graph, converted, does not run (MNN turns it into float convolutions and fails a shape check).
Weight-only int8 (``--weightQuantBits 8``, float compute): 24.4 AP, 26.7 asymmetric.

Skipping a layer in MNN needs every op of it: the convolution, its activation (``act/Mul``) and
the raster MNN puts before a convolution that reads a concatenation (``..._raster_0``: the Focus
stem's input among them, which int8 would clip at a KL threshold, 48% of its pixel values), and
the tail up to the graph output (named ``output``), whose concatenation would otherwise give
boxes and scores one int8 scale.

The quantiser runs in a child process (``python -c``, in the work folder, importing ``_tools``
only: never ``MNN.tools``, whose scripts install packages and log over the network), because it
can crash the process; the child then runs the INT8 file once, since MNN 3.6.1's int8 kernels
crash the process on nano at 160x160 and below (192 and up run).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np
import onnx
from torch import nn

from ..errors import ExportError
from ..export.edge import check_edge_options, write_edge_sidecar
from ..export.graph import export_module
from ..export.mnn import convert_to_mnn
from ..export.onnx import write_onnx
from ..export.options import ExportOptions
from ..export.verify import sample_input
from .layers import LAYER_GROUPS

__all__ = ["MNN_FEATURE_METHODS", "MNN_WEIGHT_METHODS", "MnnInt8Recipe", "quantize_mnn", "skipped_ops"]

#: activation calibration methods offered (MNN's ADMM crashes its quantiser on YOLOX: left out)
MNN_FEATURE_METHODS = ("KL", "EMA")
MNN_WEIGHT_METHODS = ("MAX_ABS", "ADMM")
#: everything after the head's convolutions up to the output: MNN names the last ops after the graph
#: output (``output``), which :data:`~.layers.LAYER_GROUPS`'s ``tail`` (names starting with ``/``) misses
_MNN_TAIL = r"^(?!/backbone/|/head/(cls|reg|obj|pss|stems|cls_convs|reg_convs))"
_RASTER = "_raster_0"  # the op MNN inserts before a convolution reading a concatenation
# The child: quantise, then run the INT8 file once (MNN 3.6.1's int8 kernels crash on nano at
# 160x160 and below; the parent must never load a file that crashes it). Exit 3: no output.
_QUANTISER = """
import sys, _tools
_tools.mnnquant(['mnnquant', *sys.argv[1:4]])
import numpy, MNN
height, width = int(sys.argv[4]), int(sys.argv[5])
runtime = MNN.nn.create_runtime_manager(({'backend': 'CPU', 'precision': 'high', 'numThread': 1},))
module = MNN.nn.load_module_from_file(sys.argv[2], [], [], runtime_manager=runtime)
image = numpy.full((1, 3, height, width), 114.0, numpy.float32)
print('INT8 RUN', 'OK' if module.forward([MNN.expr.const(image, [1, 3, height, width], MNN.expr.NCHW)]) else 'EMPTY')
sys.exit(0)
"""
_QUANTISER_TIMEOUT_S = 3600


@dataclass(frozen=True)
class MnnInt8Recipe:
    """How :func:`quantize_mnn` quantises (defaults: the best measured, still far from float).

    ``method`` calibrates the activations (``KL`` or ``EMA``; EMA ignores the groups to keep);
    ``weight_method`` quantises the per-channel weights (``MAX_ABS`` or ``ADMM``);
    ``float_groups`` (:data:`~.layers.LAYER_GROUPS`: ``stem``, ``dark2``, ``dark3``, ``preds``)
    stay in float, and the tail always does.
    """

    method: str = "KL"
    weight_method: str = "ADMM"
    float_groups: tuple[str, ...] = ("stem", "dark2", "preds")

    def __post_init__(self) -> None:
        if self.method not in MNN_FEATURE_METHODS:
            raise ExportError(f"unknown MNN calibration method {self.method!r}; choose from: {', '.join(MNN_FEATURE_METHODS)}")
        if self.weight_method not in MNN_WEIGHT_METHODS:
            raise ExportError(f"unknown MNN weight method {self.weight_method!r}; choose from: {', '.join(MNN_WEIGHT_METHODS)}")
        unknown = [g for g in self.float_groups if g not in LAYER_GROUPS or g == "tail"]
        if unknown:
            raise ExportError(f"unknown layer group {unknown[0]!r} for MNN; choose from: stem, dark2, dark3, preds")

    def describe(self) -> str:
        kept = "+".join((*self.float_groups, "tail"))
        return f"MNN quantiser, {self.method} activations, {self.weight_method} per-channel weights, float: {kept}"


def skipped_ops(op_names: Iterable[str], groups: Sequence[str]) -> list[str]:
    """The MNN op names the quantiser must skip to keep ``groups`` and the tail in float: the
    names among ``op_names`` (the ONNX graph's output tensor names, which MNN's ops keep) in those
    groups, each with its ``_raster_0`` twin."""
    patterns = [re.compile(LAYER_GROUPS[g]) for g in groups] + [re.compile(_MNN_TAIL)]
    kept = [name for name in op_names if any(p.search(name) for p in patterns)]
    return [n for name in kept for n in (name, name + _RASTER)]


def _onnx_op_names(onnx_path: Path) -> list[str]:
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    return [out for node in graph.node for out in node.output if out]


def _write_calibration(images: np.ndarray, folder: Path) -> None:
    """The calibration images as PNG files at the network's input size (MNN's resize is then an
    identity; it reads them as RGBA and converts to BGR, the network's channel order)."""
    folder.mkdir()
    for i, image in enumerate(images):
        pixels = np.clip(np.rint(image.transpose(1, 2, 0)), 0, 255).astype(np.uint8)
        if not cv2.imwrite(str(folder / f"{i:05d}.png"), pixels):
            raise ExportError(f"cannot write calibration image {folder / f'{i:05d}.png'}")


def _run_quantiser(src: Path, dst: Path, config: Path, size: tuple[int, int]) -> None:
    """``_tools.mnnquant`` in a child process, which then runs the INT8 file once at ``size``;
    :class:`ExportError` when either fails or crashes."""
    src, dst, config = src.resolve(), dst.resolve(), config.resolve()
    argv = [sys.executable, "-c", _QUANTISER, str(src), str(dst), str(config), str(size[0]), str(size[1])]
    try:  # run in the work folder: ``-c`` puts the current folder first on sys.path
        done = subprocess.run(argv, cwd=dst.parent, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=_QUANTISER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ExportError(f"MNN's quantiser did not finish within {_QUANTISER_TIMEOUT_S} s") from None
    stdout = done.stdout.decode("utf-8", "replace").replace("\r", "\n")
    if done.returncode != 0 and dst.is_file() and "INT8 RUN" not in stdout:
        raise ExportError(f"MNN's runtime crashes on the INT8 file at {size[0]}x{size[1]} (exit {done.returncode}):"
                          " its int8 kernels fail at small input sizes; export at --size 192 or larger")
    if done.returncode != 0 or not dst.is_file() or dst.stat().st_size == 0:
        said = [line.strip() for line in stdout.splitlines() + done.stderr.decode("utf-8", "replace").splitlines()
                if line.strip() and "%" not in line and "device supports" not in line]
        how = f"crashed (signal {-done.returncode})" if done.returncode < 0 else "failed"
        raise ExportError(f"MNN's quantiser {how}: {' | '.join(said[-2:]) or 'no output'}")
    if "INT8 RUN OK" not in stdout:
        raise ExportError(f"MNN cannot run the INT8 file at {size[0]}x{size[1]}: it gives no output")


def quantize_mnn(model: nn.Module, options: ExportOptions, images: np.ndarray, work: Path,
                 recipe: MnnInt8Recipe = MnnInt8Recipe()) -> tuple[Path, Path]:
    """Write into ``work`` the float ``.mnn`` file of ``model``'s export graph and its INT8
    version (``recipe``, calibrated on ``images``: ``[N,3,H,W]`` float32, letterboxed BGR 0-255),
    each with its metadata beside it (INT8: ``precision`` ``int8`` and the recipe under
    ``quantization``); returns ``(float file, int8 file)``."""
    check_edge_options("mnn", options)
    if images.ndim != 4 or len(images) < 1 or images.shape[2:] != tuple(options.size):
        raise ExportError(f"INT8 MNN export needs calibration images [N,3,{options.size[0]},{options.size[1]}],"
                          f" got {list(images.shape)}")
    work = Path(work)
    module = export_module(model, options)
    float_options = replace(options, half=False)
    onnx_path = work / "float.onnx"
    write_onnx(module, sample_input(options.size, 1), onnx_path, float_options)
    float_file = work / "float.mnn"
    convert_to_mnn(onnx_path, float_file)
    write_edge_sidecar(float_file, module, float_options, "mnn")
    _write_calibration(images, work / "calibration")
    config = {
        "format": "BGR", "mean": [0.0, 0.0, 0.0], "normal": [1.0, 1.0, 1.0],
        "width": int(options.size[1]), "height": int(options.size[0]),
        "path": str((work / "calibration").resolve()) + "/", "used_image_num": int(len(images)),
        "feature_quantize_method": recipe.method, "weight_quantize_method": recipe.weight_method,
        "skip_quant_op_names": skipped_ops(_onnx_op_names(onnx_path), recipe.float_groups),
    }
    (work / "mnnquant.json").write_text(json.dumps(config), encoding="utf-8")
    int8_file = work / "int8.mnn"
    _run_quantiser(float_file, int8_file, work / "mnnquant.json", tuple(options.size))
    quantization = {"runtime": "mnn", "calibration_images": int(len(images)), "recipe": recipe.describe(),
                    **asdict(recipe)}
    write_edge_sidecar(int8_file, module, float_options, "mnn", "int8", quantization)
    return float_file, int8_file
