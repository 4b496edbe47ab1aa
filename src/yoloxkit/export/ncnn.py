"""ncnn export (``STEM.param`` + ``STEM.bin``, with its metadata ``STEM.param.json`` beside them):
the model traced by TorchScript and converted by pnnx (the converter of the ``pnnx`` pip package),
verified in ncnn's runtime against PyTorch and timed against onnxruntime.

pnnx cannot convert the Focus stem (``slice with step 2``): the traced model has it replaced by
the equal 6x6 stride-2 convolution (:func:`~.focus_conv.focus_as_conv`). ``pnnx.export`` traces,
runs the ``pnnx`` executable in a child process (its stdout captured, its pass log on stderr left
to the terminal), then imports the Python module pnnx generated to build a PyTorch model; here
the executable is run directly with both streams captured (shown only when it fails), in a
folder of its own inside the staging folder, where its side files (the TorchScript ``.pt``,
``.pnnx.param``/``.pnnx.bin``/``.pnnx.onnx``, ``_pnnx.py``, ``_ncnn.py``) stay; only the ``.param``,
the ``.bin`` and the metadata are moved into place. pnnx exits with 0 even when it leaves
operators it cannot map in the graph (as ``Tensor.slice``): the ``.param`` is checked for them.

Float16 weights (``--half``): pnnx writes them by default, but its conversion flushes float16
subnormals (magnitudes below 6.1e-5) to zero and is off by one unit in the last place on some
values. The Focus stem's BatchNorm-folded weights are that small (about 1e-5) and multiply
0-255 pixels, so for nano at 416 the raw outputs of the anchors that score move by 1.8 (an
objectness off by 0.36). Here pnnx writes float32 weights (``fp16=0``) and :func:`half_weights`
rounds them to float16 to nearest (subnormals kept, as ncnn reads them): the same anchors move by
0.02, as much as rounding the PyTorch weights to float16 moves them.
"""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..errors import ExportError
from ..infer.ncnn_backend import load_ncnn_runner
from ..io import staging_dir
from ..optional import import_ncnn, import_pnnx
from .edge import check_edge_options, edge_path, verify_and_place, weights_precision, write_edge_sidecar
from .focus_conv import focus_as_conv
from .graph import export_module, quiet_tracing
from .options import ExportOptions, ExportResult
from .verify import sample_input, torch_outputs

__all__ = ["export_ncnn", "run_ncnn_file", "write_ncnn", "unconverted_operators", "half_weights"]

_PNNX_FOLDER = "pnnx"  # inside the staging folder: pnnx's side files
#: the tag before a float16 weight array in an ncnn ``.bin`` (float32 arrays: 0)
FP16_TAG = 0x01306B47
#: the layers pnnx writes for YOLOX graphs that hold no weights
_WEIGHTLESS = frozenset({
    "Input", "Split", "Concat", "BinaryOp", "UnaryOp", "Swish", "Sigmoid", "ReLU", "Pooling", "Interp",
    "Reshape", "Permute", "Slice", "Crop", "Flatten", "Softmax", "Clip", "HardSigmoid", "HardSwish", "Noop",
})


def run_ncnn_file(path: Path, threads: int) -> Callable[[np.ndarray], list[np.ndarray]]:
    """The ncnn model at ``path`` (``.param``; its ``.bin`` beside it) loaded once (float32
    compute, ``threads`` CPU threads): a function of a float32 NCHW batch of one ``[1,3,H,W]``
    (BGR 0-255, letterboxed: the ONNX input) that returns the outputs as numpy arrays in graph
    order (with their batch axis)."""
    run, _ = load_ncnn_runner(path, threads)
    return run


def unconverted_operators(param_text: str) -> list[str]:
    """The layer types of an ncnn ``.param`` text that pnnx left as PyTorch operators
    (``Tensor.slice``, ``F.grid_sample``, ``torch.xxx``, ``pnnx.Expression``: a dot in the
    type; ncnn's own layer types have none), in order of appearance."""
    found = []
    for line in param_text.splitlines()[2:]:
        kind = line.split(maxsplit=1)[0] if line.strip() else ""
        if "." in kind and kind not in found:
            found.append(kind)
    return found


def _layer_params(tokens: list[str]) -> dict[str, str]:
    return dict(token.partition("=")[::2] for token in tokens)


def half_weights(param_text: str, data: bytes) -> bytes:
    """The float32 ncnn weights ``data`` (the ``.bin`` of ``param_text``) with every convolution
    weight array rounded to float16 to nearest (tagged :data:`FP16_TAG`, padded to 4 bytes, as
    ncnn reads them); biases and ``MemoryData`` (the decode grid) stay float32. ExportError for a
    layer type it does not know the weights of, or a ``.bin`` that does not fit the ``.param``."""
    out, pos = bytearray(), 0
    try:
        for line in param_text.splitlines()[2:]:
            fields = line.split()
            if not fields or fields[0] in _WEIGHTLESS:
                continue
            kind, blobs = fields[0], int(fields[2]) + int(fields[3])
            params = _layer_params(fields[4 + blobs:])
            if kind in ("Convolution", "ConvolutionDepthWise"):
                count = int(params["6"])
                if struct.unpack_from("<I", data, pos)[0] != 0:
                    raise ExportError(f"--half: the weights of ncnn layer {fields[1]} are not float32")
                weights = np.frombuffer(data, np.float32, count, pos + 4).astype(np.float16).tobytes()
                out += struct.pack("<I", FP16_TAG) + weights + bytes(-len(weights) % 4)
                pos += 4 + 4 * count
                kept = 4 * int(params["0"]) if params.get("5", "0") == "1" else 0  # the float32 bias
            elif kind == "MemoryData":
                kept = 4 * int(np.prod([max(int(params.get(key, "0")), 1) for key in ("0", "1", "11", "2")]))
            else:
                raise ExportError(f"--half is not offered for this graph: ncnn layer {kind} ({fields[1]}) is not"
                                  " handled")
            out += data[pos:pos + kept]
            pos += kept
    except (struct.error, ValueError, KeyError, IndexError):
        pos = -1
    if pos != len(data):
        raise ExportError(f"--half: the ncnn weights ({len(data)} bytes) do not fit the graph")
    return bytes(out)


def _pnnx_failure(done: subprocess.CompletedProcess) -> str:
    """The last lines pnnx wrote (its reason), without its pass log."""
    lines = [line.strip() for line in (done.stderr + done.stdout).splitlines()
             if line.strip() and not line.startswith(("inline module", "#####", "ignore "))]
    return " | ".join(lines[-3:]) or f"exit status {done.returncode}"


def write_ncnn(module: nn.Module, images: torch.Tensor, param_path: Path, half: bool = False) -> None:
    """Write ``module`` (from :func:`~.graph.export_module`, its Focus stem rewritten by
    :func:`~.focus_conv.focus_as_conv`) as ``param_path`` and the ``.bin`` beside it, traced on
    ``images`` ``[1,3,H,W]`` (the static input) and converted by pnnx in a ``pnnx`` folder beside
    them (its side files stay there); ``half``: float16 weights (:func:`half_weights`). No
    metadata, not atomic: callers write into a staging folder. :class:`ExportError` quoting pnnx when it fails or leaves
    operators ncnn has no layer for."""
    pnnx = import_pnnx()
    work = param_path.parent / _PNNX_FOLDER
    work.mkdir(exist_ok=True)
    with quiet_tracing(), torch.no_grad():
        torch.jit.trace(module, images, check_trace=False).save(str(work / "model.pt"))
    shape = ",".join(str(int(n)) for n in images.shape)
    command = [pnnx.EXEC_PATH, "model.pt", f"inputshape=[{shape}]f32", "device=cpu",
               "ncnnparam=model.ncnn.param", "ncnnbin=model.ncnn.bin", "fp16=0"]
    try:
        done = subprocess.run(command, cwd=work, capture_output=True, text=True, errors="replace")
    except OSError as exc:
        raise ExportError(f"cannot run pnnx ({pnnx.EXEC_PATH}): {exc.strerror or exc}") from None
    param, weights = work / "model.ncnn.param", work / "model.ncnn.bin"
    if done.returncode != 0 or not param.is_file() or not weights.is_file():
        raise ExportError(f"pnnx could not convert the model to ncnn: {_pnnx_failure(done)}")
    unmapped = unconverted_operators(param.read_text(encoding="utf-8", errors="replace"))
    if unmapped:
        raise ExportError("--format ncnn cannot hold this model: pnnx left operators ncnn has no layer for:"
                          f" {', '.join(unmapped)}")
    if half:
        (work / "model.fp16.bin").write_bytes(half_weights(param.read_text(encoding="utf-8"), weights.read_bytes()))
        weights = work / "model.fp16.bin"
    os.replace(param, param_path)
    os.replace(weights, param_path.with_suffix(".bin"))


def _convertible(module: nn.Module) -> nn.Module:
    """``module`` with its Focus stem as one conv (:func:`focus_as_conv`); ExportError if it cannot be."""
    try:
        return focus_as_conv(module)
    except ValueError as exc:
        raise ExportError(f"--format ncnn: {exc}") from None


def export_ncnn(model: nn.Module, path: str | os.PathLike, options: ExportOptions,
                check: Callable[[Path], None] | None = None) -> ExportResult:
    """Write an ncnn model to ``path`` (``.param``; the weights go to ``.bin``, the metadata to
    ``.param.json`` beside it).

    Raw (``[1, A, 5+C]``) or ``--decode``d graph, batch 1, static size; ``options.half`` stores
    float16 weights (computed in float32 by yoloxkit's backend). The file is verified in ncnn on
    the demo picture against PyTorch (the model with its Focus stem; a ``--half`` file on the
    anchors that score, :func:`~.edge.scored_anchors`), timed against the float ONNX graph in
    onnxruntime (same threads), passed to ``check`` (an accuracy gate that raises
    :class:`ExportError`) and only then moved into place.
    """
    check_edge_options("ncnn", options)
    import_pnnx()  # a missing package: one line before any work
    import_ncnn()
    path = edge_path(path, ".param")
    module = export_module(model, options)
    convertible = _convertible(module)
    images = sample_input(options.size, 1)
    expected = torch_outputs(module, images)
    with staging_dir(path) as workdir:
        staged = workdir / path.name
        write_ncnn(convertible, images, staged, half=options.half)
        write_edge_sidecar(staged, module, options, "ncnn", weights_precision(options))
        run = run_ncnn_file(staged, torch.get_num_threads())
        return verify_and_place("ncnn", module, options, images, expected, run, staged, path, check, (".bin",))
