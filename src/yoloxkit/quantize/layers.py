"""Which parts of a YOLOX graph stay in float: layer groups named by the PyTorch module they come
from, matched against the node names the exporter writes (``/backbone/backbone/stem/...``)."""

from __future__ import annotations

import re
from typing import Iterable, Sequence

from ..errors import ExportError

__all__ = ["LAYER_GROUPS", "group_patterns", "nodes_in_groups"]

#: group name -> regular expression over exported node names (ONNX node names; OpenVINO keeps them)
LAYER_GROUPS: dict[str, str] = {
    # the first conv (Focus for CSPDarknet, a plain conv for Darknet-53): its input is the raw image
    "stem": r"/backbone/backbone/stem/",
    # the first stage: its SiLU outputs have very uneven ranges across channels
    "dark2": r"/backbone/backbone/dark2/",
    "dark3": r"/backbone/backbone/dark3/",
    # the 1x1 prediction convs of the head (class, box, objectness and the NMS-free PSS score)
    "preds": r"/head/(cls|reg|obj|pss)_preds",
    # the decode, NMS and top-k tail of --decode/--nms/--topk graphs (everything after the head)
    "tail": r"^/(?!backbone/|head/(cls|reg|obj|pss|stems|cls_convs|reg_convs))",
}


def group_patterns(groups: Sequence[str]) -> list[str]:
    """The node-name patterns of ``groups``; an unknown group is an :class:`ExportError`."""
    unknown = [g for g in groups if g not in LAYER_GROUPS]
    if unknown:
        raise ExportError(f"unknown layer group {unknown[0]!r}; choose from: {', '.join(LAYER_GROUPS)}")
    return [LAYER_GROUPS[g] for g in groups]


def nodes_in_groups(node_names: Iterable[str], groups: Sequence[str]) -> list[str]:
    """The names among ``node_names`` that belong to any of ``groups``, in their order."""
    patterns = [re.compile(p) for p in group_patterns(groups)]
    return [name for name in node_names if any(p.search(name) for p in patterns)]
