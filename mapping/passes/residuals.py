"""Residual adds (two run-time tensors of one shape) and the attention-mask arithmetic."""

from __future__ import annotations

from mapping import op_table
from mapping.ir import Block
from mapping.onnx_graph import Node
from mapping.op_costs import VIEW_OPS
from mapping.op_table import OP
from mapping.passes.context import Context

#: Blocks whose outputs are hidden states, never mask arithmetic.
_HIDDEN_KINDS = {"attention", "mlp", "mixer", "norm"}


def _weighted_conv(ctx: Context, node: Node) -> bool:
    return node.op_type == OP.Conv and len(node.inputs) > 1 and ctx.klass.get(node.inputs[1]) == "weight"


def run_masks(ctx: Context) -> None:
    """Give the unowned nodes that build the attention masks an ``attention_mask`` block."""
    sides: list[str] = []
    for b in ctx.blocks:
        if b.attention is None:
            continue
        core = set(b.attention.core)
        operands = {b.attention.q_tensor, b.attention.k_tensor, b.attention.v_tensor}
        for name in core:
            for i in ctx.nodes[name].inputs:
                p = ctx.producer(i) if i else None
                if p is not None and p.name not in core and i not in operands:
                    sides.append(i)
    if not sides:
        return
    cores = {n for b in ctx.blocks if b.attention is not None for n in b.attention.core}
    # mask arithmetic never passes through an attention core: stop there (not through the hidden states upstream
    # of a core that a side branch reads, an unrecognised mixer's among them)
    nodes = ctx.ancestors(sides, limit=2000, stop=cores) - set(ctx.owner)
    # keep only mask arithmetic: nodes not downstream of any weight-bearing computation (a relative-position
    # score added to the scores reads the queries: the walk up from it must not take the hidden states, a
    # Conformer's convolution module and a conv feature encoder among them)
    nodes = {n for n in nodes if n not in ctx.linear}
    hidden: set[str] = set()
    for name in sorted(nodes, key=ctx.index):
        for i in ctx.act_inputs(ctx.nodes[name]):
            p = ctx.producer(i)
            if p is not None and (p.name in hidden or p.name in ctx.linear or _weighted_conv(ctx, p) or (
                    (b := ctx.owner.get(p.name)) is not None and b.kind in _HIDDEN_KINDS)):
                hidden.add(name)
                break
    if hidden:  # what is left must still reach a core through mask arithmetic (not the audio input's Unsqueeze)
        weights = hidden | set(ctx.linear) | {n for n in nodes if _weighted_conv(ctx, ctx.nodes[n])}
        sides = [i for i in sides if (p := ctx.producer(i)) is not None and p.name not in weights]
        nodes &= ctx.ancestors(sides, limit=2000, stop=cores | weights) - weights
    if nodes:
        ctx.add(Block("attention_mask", "attention_mask", None, []), sorted(nodes, key=ctx.index))


def run(ctx: Context) -> None:
    """Add a ``residual`` block for each unowned Add of two run-time tensors of equal shape."""
    for node in ctx.graph.nodes:
        if node.name in ctx.owner or op_table.computes(node.op_type) != OP.Add:
            continue
        ins = ctx.act_inputs(node)
        owners = [ctx.owner.get(p.name) for i in ins if (p := ctx.producer(i)) is not None]
        embedding = owners[0] if len(owners) == 2 and all(
            b is not None and b.kind == "embedding" for b in owners) else None
        if embedding is not None:
            ctx.claim(embedding, [node.name])  # token + position (+ segment) embedding sum
        elif len(ins) == 2 and ctx.bound.shapes[ins[0]] == ctx.bound.shapes[ins[1]]:
            ctx.add(Block("residual", "residual", None, []), [node.name])


#: Elementwise ops that finish the block whose output they read (bias add, cast, pooler tanh, CLS select).
EPILOGUE_OPS = op_table.names(joins="residual_epilogue")


def run_epilogues(ctx: Context) -> None:
    """Give each unowned elementwise node with one run-time input to the block that produced that input."""
    for node in ctx.graph.nodes:
        if node.name in ctx.owner or node.op_type not in EPILOGUE_OPS:
            continue
        ins = ctx.act_inputs(node)
        if len(ins) != 1:
            continue
        views = []
        producer = ctx.producer(ins[0])
        while producer is not None and producer.name not in ctx.owner and producer.op_type in VIEW_OPS:
            views.append(producer.name)
            src = ctx.act_inputs(producer)
            producer = ctx.producer(src[0]) if src else None
        block = ctx.owner.get(producer.name) if producer is not None else None
        if block is not None:
            ctx.claim(block, views + [node.name])


#: Views between a precomputed sin / cos table's lookup and the attention's Q / K path (CodeGen, GPT-J style).
_TABLE_VIEWS = {OP.Split, OP.Expand, OP.Reshape, OP.Unsqueeze, OP.Squeeze, OP.Slice, OP.Concat, OP.Tile, OP.Cast,
                OP.Transpose}


def run_rotary_tables(ctx: Context) -> None:
    """A lookup of a precomputed sin / cos table by positions (``embed_positions[position_ids]``: a Gather of a
    2-D table by position ids, given or counted from the length) whose rows reach only attention blocks through
    views: a rotary embedding (run before the embeddings pass, which would take it for a position embedding)."""
    attention = {n for b in ctx.blocks if b.attention is not None for n in b.nodes}
    for node in ctx.graph.nodes:
        if node.name in ctx.owner or node.op_type not in (OP.Gather, OP.GatherND):
            continue
        table = ctx.bound.shapes.get(node.inputs[0]) or ()
        if ctx.klass.get(node.inputs[0]) not in ("weight", "const") or len(table) != 2 or \
                ctx.klass.get(node.inputs[1]) == "weight":
            continue
        views = _views_into(ctx, [o for o in node.outputs if o], attention)
        if views:
            ctx.add(Block("rotary_embedding", "embedding", None, [], attrs={"kind": "rotary"}),
                    sorted(views | {node.name}, key=ctx.index))


def _views_into(ctx: Context, tensors: list[str], attention: set[str]) -> set[str] | None:
    """The unowned view ops between ``tensors`` and the attention nodes they reach, when views are all they pass
    (None otherwise, or when there are none)."""
    views: set[str] = set()
    frontier = list(tensors)
    while frontier and len(views) < 30:
        for c in ctx.consumers(frontier.pop()):
            if c.name in attention:
                continue
            if c.name in ctx.owner or c.op_type not in _TABLE_VIEWS:
                return None
            if c.name not in views:
                views.add(c.name)
                frontier.extend(o for o in c.outputs if o)
    return views or None


def run_rotary(ctx: Context) -> None:
    """Rotary position tables: Cos/Sin of position x inverse frequency, with the arithmetic feeding them, and
    lookups of a precomputed table (:func:`run_rotary_tables`)."""
    run_rotary_tables(ctx)
    found = [n for n in ctx.graph.nodes if n.op_type in (OP.Cos, OP.Sin) and n.name not in ctx.owner
             and any(ctx.klass.get(o) == "act" for o in n.outputs)]
    if not found:
        return
    nodes = ctx.ancestors([i for n in found for i in n.inputs if i], limit=200) - set(ctx.owner)
    nodes |= {n.name for n in found}
    for n in found:
        nodes |= {c.name for o in n.outputs for c in ctx.consumers(o) if c.op_type == OP.Cast and c.name not in ctx.owner}
    # the views that take the tables to the attention's rotation (ERNIE 4.5's repeat_interleave: Unsqueeze,
    # Expand, Reshape)
    attention = {n for b in ctx.blocks if b.attention is not None for n in b.nodes}
    for n in found:
        outs = [o for o in n.outputs if o]
        outs += [o for c in ctx.consumers(outs[0]) if c.name in nodes for o in c.outputs if o]
        views = _views_into(ctx, outs, attention | nodes)
        nodes |= views or set()
    ctx.add(Block("rotary_embedding", "embedding", None, [], attrs={"kind": "rotary"}), sorted(nodes, key=ctx.index))
