"""Find normalisations: fused LayerNorm/RMSNorm ops and their decomposed forms (ReduceMean chains)."""

from __future__ import annotations

from mapping import op_table
from mapping.ir import Block
from mapping.op_table import OP
from mapping.passes.context import Context

FUSED = {e.name: e.norm_kind for e in op_table.TABLE.values() if e.norm_kind}
#: Ops a decomposed LayerNorm/RMSNorm is built from.
NORM_PARTS = op_table.names(joins="norm_part")
#: Fused norms that add the residual first (onnxruntime's Skip*LayerNormalization).
_FUSED_RESIDUAL = op_table.names(trait="fused_residual")


def _grow(ctx: Context, x: str, seed: str) -> set[str]:
    """Nodes downstream of ``seed`` built from NORM_PARTS whose run-time inputs are ``x`` or inside the region."""
    region = {seed}
    tensors = {x} | set(ctx.nodes[seed].outputs)
    changed = True
    while changed:
        changed = False
        for t in list(tensors):
            for c in ctx.consumers(t):
                if c.name in region or c.op_type not in NORM_PARTS or c.name in ctx.owner:
                    continue
                if t == x and c.op_type not in (OP.Sub, OP.Mul, OP.Pow, OP.Cast):
                    continue
                if all(i in tensors or not ctx.is_act(i) for i in c.inputs if i):
                    region.add(c.name)
                    tensors.update(o for o in c.outputs if o)
                    changed = True
    return region


def run(ctx: Context) -> None:
    """Add a ``norm`` block for every fused or decomposed normalisation."""
    for node in ctx.graph.nodes:
        if node.name in ctx.owner:
            continue
        kind = FUSED.get(node.op_type)
        if kind is not None:
            width = int(ctx.bound.shapes[node.inputs[0]][-1])
            attrs = {"norm": kind, "dim": width}
            if node.op_type in _FUSED_RESIDUAL:
                attrs["residual"] = True  # onnxruntime's SkipLayerNorm fuses the residual add into the norm
            ctx.add(Block("norm", "norm", None, [], attrs=attrs), [node.name])
            continue
        if not ctx.act_inputs(node) or not (node.op_type == OP.ReduceMean or (
                node.op_type == OP.GlobalAveragePool and len(ctx.bound.shapes[node.inputs[0]]) == 3)):
            continue  # a GlobalAveragePool of a [batch, tokens, width] tensor is the mean over the width
        src = ctx.act_inputs(node)[0]
        pre = ctx.producer(src)
        # RMSNorm reduces x^2 (Pow or Mul(x, x)); LayerNorm reduces x itself, then subtracts the mean
        x = src
        if pre is not None and pre.op_type in (OP.Pow, OP.Mul) and pre.name not in ctx.owner:
            ins = ctx.act_inputs(pre)
            if ins and (pre.op_type == OP.Pow or (len(pre.inputs) == 2 and pre.inputs[0] == pre.inputs[1])):
                x = ins[0]
        region = _grow(ctx, x, node.name)
        if x != src and pre is not None:
            region |= _grow(ctx, x, pre.name)
        ops = {ctx.nodes[n].op_type for n in region}
        if not ({OP.Sqrt, OP.Rsqrt, OP.Reciprocal, OP.Div} & ops) or len(region) < 4:
            continue
        kind = "layernorm" if any(ctx.nodes[n].op_type == OP.Sub and ctx.nodes[n].inputs[0] == x for n in region) \
            else "rmsnorm"
        width = int(ctx.bound.shapes[x][-1])
        ctx.add(Block("norm", "norm", None, [], attrs={"norm": kind, "dim": width, "decomposed": True}),
                sorted(region, key=ctx.index))
