"""Sizes of data-dependent axes (outputs whose size depends on values, not shapes) and why they are unknown.

ONNX shape inference leaves such an axis without a size. hwsim gives it one by a documented rule where the
graph is a known pattern (:data:`RULES`), and otherwise explains why it cannot: most often because the values
it depends on are in an external-data file that was not shipped with the graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hardware.errors import HwsimError
from mapping import op_table
from mapping.onnx_graph import Node
from mapping.op_table import OP


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


#: Ops a routing mask passes through between the one-hot of the chosen experts and the NonZero that lists them.
_ROUTING_PATH = op_table.names(joins="routing_path")
_REDUCE = {OP.ReduceSum, OP.ReduceMax}


def _one_hot_source(binder: Any, node: Node) -> tuple[Node, bool] | None:
    """The OneHot (of the top-k expert indices) that ``node``'s input is read from, and whether it was reduced."""
    g = binder.g
    frontier = [(node.inputs[0], False)]
    seen: set[str] = set()
    while frontier and len(seen) < 40:
        t, reduced = frontier.pop()
        p = g.producer.get(t)
        if p is None or p.name in seen:
            continue
        seen.add(p.name)
        if p.op_type == OP.OneHot:
            return p, reduced
        if p.op_type in _ROUTING_PATH:
            frontier.append((p.inputs[0], reduced or p.op_type in _REDUCE))
    return None


def _routing_nonzero(binder: Any, node: Node, output: str, axis: int) -> int | None:
    """Count of a NonZero over an expert-routing mask, under balanced routing.

    The router picks ``top_k`` of ``E`` experts for each of ``T`` tokens: ``T x top_k`` selections, the
    OneHot's indices. A NonZero of the one-hot (or of one expert's slice of it) lists selections: hwsim spreads
    them as evenly as the count allows — expert ``i`` (in graph order) gets ``T*top_k // E`` plus one of the
    remainder when ``i < T*top_k mod E`` — so that the experts' rows add up to ``T*top_k`` exactly (an expert may
    get 0 rows). A NonZero of a reduced mask (which experts got any token) counts all ``E``: traced exports have a
    branch per expert and split that list into ``E`` parts.
    """
    if axis != 1:
        return None
    found = _one_hot_source(binder, node)
    if found is None:
        return None
    onehot, reduced = found
    depth = binder.values.get(onehot.inputs[1])
    if depth is None:
        return None
    experts = int(np.asarray(depth).reshape(-1)[0])
    width = _chosen_width(binder, onehot)
    if width is not None and 0 < width < experts:  # DBRX's one_hot(num_classes=E + 1): a class TopK never picks
        experts = width
    selections = int(np.prod(binder.shapes[onehot.inputs[0]]))
    n_in = int(np.prod(binder.shapes[node.inputs[0]]))
    if experts <= 0:
        return None
    if reduced:
        traced = _split_total(binder, node)
        size = traced if traced is not None else min(experts, n_in)
        binder.notes[node.name] = (f"data-dependent size {size}: experts listed as hit, " + (
            f"the {size} expert branches the export traced" if traced is not None else f"all E={experts}") +
            " (an expert without tokens runs on 0 rows)")
        return size
    if n_in >= selections * experts:
        binder.notes[node.name] = f"data-dependent size {selections}: tokens x top_k selections"
        return selections
    order = _expert_order(binder, onehot)
    i = order.index(node.name) if node.name in order else 0
    size = selections // experts + (1 if i < selections % experts else 0)
    binder.notes[node.name] = (f"data-dependent size {size}: tokens routed to expert {i}, tokens x top_k / E = "
                               f"{selections}/{experts} under balanced routing (remainder on the first experts)")
    return size


def _chosen_width(binder: Any, onehot: Node) -> int | None:
    """The width of the scores a TopK chose the OneHot's indices from (through views), None if not a TopK's."""
    t = onehot.inputs[0]
    for _ in range(6):
        p = binder.g.producer.get(t)
        if p is None:
            return None
        if p.op_type == OP.TopK:
            shape = binder.shapes.get(p.inputs[0]) or ()
            axis = int(p.attr("axis", -1))
            return int(shape[axis]) if shape else None
        if p.op_type not in (OP.Reshape, OP.Unsqueeze, OP.Squeeze, OP.Cast, OP.Flatten):
            return None
        t = p.inputs[0]
    return None


def _split_total(binder: Any, node: Node) -> int | None:
    """The total of the constant sizes of a Split that the NonZero's list is cut into (one part per traced expert)."""
    frontier = [node.outputs[0]]
    for _ in range(4):
        nxt = []
        for t in frontier:
            for c in binder.g.consumers.get(t, []):
                if c.op_type == OP.Split and len(c.inputs) > 1:
                    t = binder.g.tensors.get(c.inputs[1])  # a constant, maybe not visited yet
                    value = binder.values.get(c.inputs[1], t.value if t is not None else None)
                    if value is not None:
                        return int(np.asarray(value).sum())
                if c.op_type in (OP.Transpose, OP.Cast, OP.Identity):
                    nxt.extend(o for o in c.outputs if o)
        frontier = nxt
    return None


def _expert_order(binder: Any, onehot: Node) -> list[str]:
    """The per-expert NonZero nodes reading ``onehot`` (unreduced), in graph order."""
    cache = binder.__dict__.setdefault("_expert_orders", {})
    if onehot.name not in cache:
        names = []
        for n in binder.g.nodes:
            if n.op_type == OP.NonZero:
                found = _one_hot_source(binder, n)
                if found is not None and found[0] is onehot and not found[1]:
                    names.append(n.name)
        cache[onehot.name] = names
    return cache[onehot.name]


RULES[OP.NonZero] = _routing_nonzero


def _derives_from(binder: Any, tensor: str, ops: set[str], limit: int = 24) -> bool:
    """Whether ``tensor``'s values come (within ``limit`` producers) from one of ``ops``."""
    frontier, seen = [tensor], set()
    while frontier and len(seen) < limit:
        p = binder.g.producer.get(frontier.pop())
        if p is None or p.name in seen:
            continue
        seen.add(p.name)
        if p.op_type in ops:
            return True
        frontier.extend(i for i in p.inputs if i)
    return False


def split_shape(binder: Any, node: Node, output: str) -> tuple[int, ...] | None:
    """The shape of one part of a Split whose sizes are counted at run time, under balanced routing.

    A mixture of experts that sorts its tokens by expert (JetMoE's torch.export graph) splits the sorted rows by the
    per-expert counts (a ReduceSum over the routing one-hot): the sizes are data, so no shape inference gives the
    parts a shape. hwsim spreads the ``L`` rows as evenly as the count allows over the ``N`` parts (part ``i`` gets
    ``L // N`` plus one of the remainder when ``i < L mod N``), the rule :func:`_routing_nonzero` applies to a
    NonZero's list, so the parts add up to ``L``. None where the sizes are constants or not such counts."""
    if node.op_type != OP.Split or len(node.inputs) < 2 or not node.inputs[1] or node.inputs[1] in binder.values:
        return None
    shape = binder.shapes.get(node.inputs[0])
    if not shape or not _derives_from(binder, node.inputs[1], _REDUCE):
        return None
    axis = int(node.attr("axis", 0)) % len(shape)
    parts = [o for o in node.outputs]
    i, n, rows = parts.index(output), len(parts), int(shape[axis])
    size = rows // n + (1 if i < rows % n else 0)
    binder.notes[node.name] = (f"data-dependent sizes: {rows} rows split by run-time counts into {n} parts, "
                               f"{rows // n} each (+1 on the first {rows % n}) under balanced routing")
    return tuple(size if a == axis else int(d) for a, d in enumerate(shape))
