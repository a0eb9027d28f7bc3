"""Find embeddings: table lookups (token, position, segment) and patch embeddings (Conv on the input image)."""

from __future__ import annotations

from mapping import op_table
from mapping.ir import Block
from mapping.op_table import OP
from mapping.passes.context import Context

#: Views between an embedding lookup and its reader.
_VIEWS = op_table.names(joins="embedding_view")


#: Per-element ops through which lookup indices stay a function of one input's values, element by element
#: (Keras' Embedding maps negative ids: ``where(ids < 0, ids + rows, ids)``).
_PER_ELEMENT = (op_table.names(category="elementwise") | op_table.names(category="logic")
                | op_table.names(category="cast") | _VIEWS)


def _per_element_source(ctx: Context, tensor: str, int_inputs: set[str]) -> str | None:
    """The one integer graph input ``tensor`` is a per-element function of (constants aside), else None (RoBERTa's
    positions, a cumulative sum of its ids' mask, are not)."""
    found: set[str] = set()
    frontier, seen = [tensor], set()
    while frontier:
        t = frontier.pop()
        if t in seen:
            continue
        seen.add(t)
        if t in int_inputs:
            found.add(t)
            continue
        node = ctx.producer(t)
        if node is None:  # a constant or an initializer
            if ctx.graph.tensors[t].role == "input":
                return None
            continue
        if node.op_type not in _PER_ELEMENT:
            return None
        frontier.extend(i for i in node.inputs if i)
    return next(iter(found)) if len(found) == 1 else None


def _index_kind(ctx: Context, tensor: str, int_inputs: set[str]) -> str:
    """``token``, ``segment`` or ``position``: what the lookup indices are, by the graph input they come from."""
    source = tensor
    while source not in int_inputs:
        node = ctx.producer(source)
        if node is not None and node.op_type not in _VIEWS:
            source = _per_element_source(ctx, tensor, int_inputs) or source
            if source in int_inputs:
                break
        if node is None or node.op_type not in _VIEWS:
            value = ctx.bound.values.get(tensor)
            if value is not None and value.size > 1 and (value == value.flat[0]).all():
                return "segment"  # a constant index for every token: token-type ids buffered as zeros
            return "position"
        source = node.inputs[0]
    low = source.lower()
    if "position" in low:
        return "position"
    if "type" in low or "segment" in low:
        return "segment"
    return "token"


def run(ctx: Context) -> None:
    """Add an ``embedding`` block per lookup table or patch projection, with the index arithmetic feeding it."""
    g = ctx.graph
    int_inputs = {i for i in g.inputs if not g.tensors[i].dtype.startswith(("float", "bfloat"))}
    for node in g.nodes:
        if node.name in ctx.owner:
            continue
        if node.op_type == OP.Gather and ctx.klass.get(node.inputs[0]) == "weight":
            rows, dim = ctx.bound.shapes[node.inputs[0]][0], ctx.bound.shapes[node.inputs[0]][-1]
            index_src = node.inputs[1]
            kind = _index_kind(ctx, index_src, int_inputs)
            if kind == "position" and rows < 32:
                kind = "segment"  # position tables span the context (hundreds of rows); type tables a handful
            # the arithmetic that computes the indices (position ids from the mask or from Range)
            feeding = ctx.ancestors([index_src], limit=80) - set(ctx.owner)
            ctx.add(Block(f"{kind}_embedding", "embedding", None, [],
                          attrs={"kind": kind, "rows": int(rows), "dim": int(dim)}),
                    sorted(feeding | {node.name}, key=ctx.index))
        elif node.op_type == OP.Conv and ctx.klass.get(node.inputs[1]) == "weight" and node.inputs[0] in g.inputs:
            w = ctx.bound.shapes[node.inputs[1]]
            ctx.add(Block("patch_embedding", "embedding", None, [],
                          attrs={"kind": "patch", "dim": int(w[0]), "patch": list(map(int, w[2:]))}), [node.name])
