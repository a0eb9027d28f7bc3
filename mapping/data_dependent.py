"""Sizes of data-dependent axes (outputs whose size depends on values, not shapes) and why they are unknown.

ONNX shape inference leaves such an axis without a size. hwsim gives it one by a documented rule where the
graph is a known pattern (:data:`RULES`), and otherwise explains why it cannot: most often because the values
it depends on are in an external-data file that was not shipped with the graph.
"""

from __future__ import annotations

from typing import Any

from hardware.errors import HwsimError
from mapping.onnx_graph import Node


def absent_source(binder: Any, node: Node, limit: int = 400) -> tuple[str, str] | None:
    """(initializer, missing file) of the first initializer without data that ``node``'s values derive from."""
    g = binder.g
    seen: set[str] = set()
    frontier = [i for i in node.inputs if i]
    while frontier and len(seen) < limit:
        t = frontier.pop()
        if t in seen:
            continue
        seen.add(t)
        tensor = g.tensors.get(t)
        if tensor is not None and tensor.absent_data is not None and t not in binder.values:
            return t, tensor.absent_data
        p = g.producer.get(t)
        if p is not None and t not in binder.values:
            frontier.extend(i for i in p.inputs if i)
    return None


def size(binder: Any, node: Node, output: str, axis: int) -> int | None:
    """A size for axis ``axis`` of ``output`` by rule, None when no rule applies.

    Raises :class:`HwsimError` when the size depends on initializer data that is absent.
    """
    rule = RULES.get(node.op_type)
    if rule is not None:
        value = rule(binder, node, output, axis)
        if value is not None:
            return int(value)
    missing = absent_source(binder, node)
    if missing is not None:
        name, location = missing
        raise HwsimError(
            f"{binder.g.path}: node '{node.name}' ({node.op_type}): the size of axis {axis} of '{output}' depends on "
            f"the values of initializer '{name}', whose data is in external file '{location}', which is absent; "
            "ship the .data file next to the .onnx, or save the model with onnx's default size_threshold (1024 bytes) "
            "so that small constants stay inline")
    return None


RULES: dict[str, Any] = {}
