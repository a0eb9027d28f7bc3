"""Find feed-forward blocks: up projection(s) -> activation (optionally gated) -> down projection."""

from __future__ import annotations

from mapping import op_table
from mapping.ir import Block
from mapping.op_table import OP
from mapping.passes.context import Context

#: Ops allowed between the up and down projections.
MLP_OPS = op_table.names(joins="mlp")
#: The nonlinearities among them (an MLP has one).
NONLINEAR = op_table.names(joins="mlp_nonlinear")


def _activation(ops: set[str]) -> str:
    if ops & {OP.Gelu, OP.FastGelu, OP.BiasGelu}:
        return "gelu"
    if OP.Erf in ops:
        return "gelu"
    if OP.Tanh in ops and OP.Pow in ops:
        return "gelu_tanh"
    if OP.QuickGelu in ops:
        return "quick_gelu"
    if ops & {OP.Silu, OP.Swish} or OP.Sigmoid in ops:
        return "silu"
    if OP.Relu in ops:
        return "relu"
    if OP.Exp in ops and OP.Where in ops:
        return "elu"  # piecewise with an exponential branch: ELU, Apertus's xIELU
    if OP.Tanh in ops:
        return "gelu_tanh"
    return "unknown"


def run(ctx: Context) -> None:
    """Add an ``mlp`` block for every up -> activation -> down chain of unowned linear layers."""
    for node in ctx.graph.nodes:
        if node.name not in ctx.linear or node.name in ctx.owner:
            continue
        src = ctx.act_inputs(node)
        if not src:
            continue
        ups = ctx.walk_back(src[0], MLP_OPS, set(ctx.linear), limit=40)
        ups = [u for u in ups if u.name not in ctx.owner and u.name != node.name]
        if not ups or len({u.inputs[0] for u in ups}) != 1:
            continue
        path = ctx.ancestors([src[0]], stop={u.name for u in ups}) - {u.name for u in ups}
        path = {n for n in path if ctx.nodes[n].op_type in MLP_OPS and n not in ctx.owner}
        path &= set().union(*(ctx.descendants(u) for u in ups))
        ops = {ctx.nodes[n].op_type for n in path}
        nonlinear = ops & NONLINEAR
        if not nonlinear:
            continue
        split = bool(ops & {OP.Split, OP.Slice})
        gated = len(ups) >= 2 or (split and OP.Mul in ops)
        d_model, width = ctx.linear[ups[0].name]
        d_ff = width // 2 if (split and len(ups) == 1 and gated) else width
        block = Block("mlp", "mlp", None, [], attrs={
            "activation": _activation(ops), "gated": gated, "d_model": d_model, "d_ff": d_ff,
            "up": [u.name for u in sorted(ups, key=lambda n: n.index)], "down": node.name})
        ctx.add(block, sorted({u.name for u in ups} | path | {node.name}, key=ctx.index))
