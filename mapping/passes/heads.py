"""Classify the remaining linear layers: the LM head (output width = vocabulary) and other projections."""

from __future__ import annotations

from mapping.ir import Block
from mapping.passes.context import Context


def run(ctx: Context) -> None:
    """Add an ``lm_head`` block for vocabulary projections and a ``projection`` block for other linears."""
    vocab = max((b.attrs["rows"] for b in ctx.blocks if b.kind == "embedding" and b.attrs.get("kind") == "token"),
                default=None)
    for node in ctx.graph.nodes:
        if node.name not in ctx.linear or node.name in ctx.owner:
            continue
        k, n = ctx.linear[node.name]
        if vocab is not None and n == vocab:
            ctx.add(Block("lm_head", "lm_head", None, [], attrs={"d_model": k, "vocab": n}), [node.name])
        else:
            ctx.add(Block("projection", "projection", None, [], attrs={"in": k, "out": n}), [node.name])
