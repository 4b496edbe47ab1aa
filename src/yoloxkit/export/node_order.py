"""Keep an ONNX graph's nodes in the model's forward order after simplification.

Graph simplifiers re-sort nodes topologically in an order of their own (e.g. head convs between
neck convs). The file stays valid, but tools that read convs in forward order (the ONNX import
of :mod:`yoloxkit.weights.pairing`, human readers) prefer the traced order, which this restores.
"""

from __future__ import annotations

import heapq

import onnx

__all__ = ["restore_node_order"]


def _topological(consumers: list[list[int]], waiting: list[int]) -> list[int]:
    """Node indices in a topological order (inputs first)."""
    waiting = list(waiting)
    ready = [i for i, count in enumerate(waiting) if count == 0]
    order = []
    while ready:
        i = ready.pop()
        order.append(i)
        for j in consumers[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
    return order


def restore_node_order(graph: onnx.GraphProto, reference: onnx.GraphProto, new_before_consumer: bool = False) -> None:
    """Re-sort ``graph.node`` in place: a topological order that follows the order of
    ``reference`` (the graph before simplification) for nodes named as there; other nodes
    stay next to the node that preceded them, or, with ``new_before_consumer`` (nodes a
    quantiser inserted: QuantizeLinear/DequantizeLinear), just before the first node that reads them."""
    position = {node.name: index for index, node in enumerate(reference.node) if node.name}
    nodes = list(graph.node)
    keys: list[tuple[float, int]] = []
    previous = -1.0
    for index, node in enumerate(nodes):
        if node.name in position:
            previous = float(position[node.name])
            keys.append((previous, index))
        else:
            keys.append((previous + 0.5, index))
    producer = {name: i for i, node in enumerate(nodes) for name in node.output if name}
    consumers: list[list[int]] = [[] for _ in nodes]
    waiting = [0] * len(nodes)
    for i, node in enumerate(nodes):
        for name in {n for n in node.input if n in producer}:
            consumers[producer[name]].append(i)
            waiting[i] += 1
    if new_before_consumer:
        for i in reversed(_topological(consumers, waiting)):
            if nodes[i].name not in position and consumers[i]:
                keys[i] = (min(keys[j][0] for j in consumers[i]) - 0.25, i)
    ready = [keys[i] for i in range(len(nodes)) if waiting[i] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, i = heapq.heappop(ready)
        order.append(i)
        for j in consumers[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, keys[j])
    if len(order) != len(nodes):  # a cycle cannot happen in a valid graph; keep it untouched
        return
    sorted_nodes = [nodes[i] for i in order]
    del graph.node[:]
    graph.node.extend(sorted_nodes)
