"""Reading an official YOLOX ONNX export: its Conv nodes, their BN-folded parameters, the
conv-to-conv dataflow, the input/output interface and the metadata properties.

The official export folds every BatchNorm into the preceding convolution, so the file holds one
weight and one bias per conv and no BatchNorm statistics (:mod:`.unfold` restores them). In an
INT8 (QDQ) export the weights and biases are integer constants behind ``DequantizeLinear``
nodes; they are read dequantized, as the runtime sees them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import WeightsError

__all__ = ["OnnxConv", "OnnxWeights", "dequantize_constant", "read_onnx_weights"]


def dequantize_constant(node, tensors: dict[str, np.ndarray]) -> np.ndarray:
    """The float32 value of a ``DequantizeLinear`` node whose inputs are all constants:
    ``(x - zero_point) * scale``, per tensor or per channel along the node's ``axis``."""
    values = tensors[node.input[0]].astype(np.float32)
    scale = tensors[node.input[1]].astype(np.float32)
    zero = tensors[node.input[2]].astype(np.float32) if len(node.input) > 2 and node.input[2] else np.float32(0)
    if scale.ndim == 1 and values.ndim > 1:  # per channel: broadcast along ``axis`` (default 1)
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1) % values.ndim
        shape = [1] * values.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
        zero = np.reshape(zero, shape) if np.ndim(zero) == 1 else zero
    return ((values - zero) * scale).astype(np.float32)


@dataclass(frozen=True)
class OnnxConv:
    """One Conv node of an ONNX graph with its (BN-folded) parameters."""

    index: int  # position among the graph's Conv nodes
    name: str
    weight: np.ndarray  # [out, in/groups, kh, kw] float32
    bias: np.ndarray | None  # [out] float32
    groups: int
    strides: tuple[int, ...]
    pads: tuple[int, ...]
    dilations: tuple[int, ...]
    sources: frozenset[int]  # indices of the nearest upstream Conv nodes (empty: fed by the input)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.weight.shape)


@dataclass(frozen=True)
class OnnxWeights:
    """What yoloxkit reads from an ONNX file: its convs and its input/output interface."""

    path: Path
    convs: list[OnnxConv]
    input_name: str
    input_shape: tuple[int | None, ...]  # None for dynamic dimensions
    output_shapes: dict[str, tuple[int | None, ...]]
    metadata: dict[str, str] = field(default_factory=dict)  # the file's metadata properties

    @property
    def num_classes(self) -> int:
        """Class count: the ``num_classes`` metadata ``yoloxkit export`` writes, else the output
        channels of the first prediction conv (the first conv no conv reads), which is the class
        count of an anchor-free YOLOX head (an anchor-based roadmap row's holds every anchor's)."""
        stored = self.metadata.get("num_classes", "")
        if stored.isdigit() and int(stored) > 0:
            return int(stored)
        consumed = set().union(*(conv.sources for conv in self.convs))
        sinks = [conv for conv in self.convs if conv.index not in consumed]
        if not sinks:
            raise WeightsError(f"{self.path}: cannot find the prediction convs of a YOLOX head")
        return int(sinks[0].weight.shape[0])

    @property
    def names(self) -> list[str] | None:
        """Class names stored in the metadata (``yoloxkit export`` writes them), else None."""
        if "names" not in self.metadata:
            return None
        try:
            names = json.loads(self.metadata["names"])
        except ValueError:
            raise WeightsError(f"{self.path}: the 'names' metadata is not a JSON list") from None
        if not isinstance(names, list) or len(names) != self.num_classes:
            raise WeightsError(f"{self.path}: the 'names' metadata does not list {self.num_classes} class names")
        return [str(n) for n in names]

    @property
    def input_hw(self) -> tuple[int, int] | None:
        """Fixed input ``(height, width)``, or None when the export has dynamic spatial axes."""
        if len(self.input_shape) == 4 and self.input_shape[2] and self.input_shape[3]:
            return int(self.input_shape[2]), int(self.input_shape[3])
        return None


def _dims(value_info) -> tuple[int | None, ...]:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims)


def _load(path: Path):
    """The ``onnx.ModelProto`` of ``path``; :class:`WeightsError` for a missing, unreadable or empty file."""
    import onnx

    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError and friends
        raise WeightsError(f"cannot read ONNX file {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    if not model.graph.node:
        raise WeightsError(f"cannot read ONNX file {path}: the graph is empty")
    return model


def _constant_tensors(graph) -> dict[str, np.ndarray]:
    """Every constant of ``graph`` by name: initializers, ``Constant`` nodes (some exporters keep
    weights there) and ``DequantizeLinear`` nodes of constants (QDQ exports), dequantized."""
    from onnx import numpy_helper

    tensors = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    tensors[node.output[0]] = numpy_helper.to_array(attr.t)
        elif node.op_type == "DequantizeLinear" and all(name in tensors for name in node.input if name):
            tensors[node.output[0]] = dequantize_constant(node, tensors)
    return tensors


def _conv(node, index: int, tensors: dict[str, np.ndarray], sources: frozenset[int], path: Path) -> OnnxConv:
    """One Conv node with its constant weight and bias and its attributes."""
    import onnx

    if len(node.input) < 2 or node.input[1] not in tensors:
        raise WeightsError(f"{path}: Conv node {node.name!r} has no constant weight; cannot import it")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    weight = tensors[node.input[1]].astype(np.float32)
    bias = tensors[node.input[2]].astype(np.float32) if len(node.input) > 2 and node.input[2] else None
    ndim = weight.ndim - 2
    return OnnxConv(
        index=index,
        name=node.name or f"Conv_{index}",
        weight=weight,
        bias=bias,
        groups=int(attrs.get("group", 1)),
        strides=tuple(attrs.get("strides", [1] * ndim)),
        pads=tuple(attrs.get("pads", [0] * 2 * ndim)),
        dilations=tuple(attrs.get("dilations", [1] * ndim)),
        sources=sources,
    )


def _convs(graph, tensors: dict[str, np.ndarray], path: Path) -> list[OnnxConv]:
    """The Conv nodes in graph order, each with the nearest upstream convs that feed it."""
    producers: dict[str, frozenset[int]] = {}  # tensor name -> nearest upstream convs
    convs: list[OnnxConv] = []
    for node in graph.node:
        upstream = frozenset().union(*(producers.get(name, frozenset()) for name in node.input if name))
        if node.op_type == "Conv":
            conv = _conv(node, len(convs), tensors, producers.get(node.input[0], frozenset()), path)
            convs.append(conv)
            upstream = frozenset({conv.index})
        elif node.op_type == "Sigmoid":
            # Not followed: a SiLU's product still reads its conv through its other input, and a
            # score's readers (an end-to-end head's selection cues) do not read the conv's features.
            upstream = frozenset()
        for name in node.output:
            producers[name] = upstream
    if not convs:
        raise WeightsError(f"{path} has no Conv nodes; it is not a YOLOX ONNX export")
    return convs


def read_onnx_weights(path: str | os.PathLike) -> OnnxWeights:
    """Read the Conv nodes (weights, attributes, conv-to-conv dataflow) of an ONNX file."""
    path = Path(path)
    model = _load(path)
    graph = model.graph
    tensors = _constant_tensors(graph)
    convs = _convs(graph, tensors, path)
    inputs = [vi for vi in graph.input if vi.name not in tensors]
    if not inputs:
        raise WeightsError(f"{path} has no image input")
    outputs = {vi.name: _dims(vi) for vi in graph.output}
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    return OnnxWeights(path, convs, inputs[0].name, _dims(inputs[0]), outputs, metadata)
