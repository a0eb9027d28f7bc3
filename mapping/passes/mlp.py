"""Find feed-forward blocks: up projection(s) -> activation (optionally gated) -> down projection."""

from __future__ import annotations

from mapping.ir import Block
from mapping.passes.context import Context
from mapping.quant import TRANSPARENT

#: Ops allowed between the up and down projections.
MLP_OPS = {"Gelu", "FastGelu", "BiasGelu", "QuickGelu", "Relu", "Sigmoid", "Tanh", "Erf", "Mul", "Add", "Div",
           "Pow", "Sub", "Cast", "Split", "Slice", "Silu", "Swish", "HardSigmoid", "HardSwish", "Mish", "Elu",
           "LeakyRelu", "Softplus", "Clip", "Identity", "Dropout", "Reshape", "Exp", "Neg", "Reciprocal"} | TRANSPARENT


def _activation(ops: set[str]) -> str:
    if ops & {"Gelu", "FastGelu", "BiasGelu"}:
        return "gelu"
    if "Erf" in ops:
        return "gelu"
    if "Tanh" in ops and "Pow" in ops:
        return "gelu_tanh"
    if "QuickGelu" in ops:
        return "quick_gelu"
    if ops & {"Silu", "Swish"} or "Sigmoid" in ops:
        return "silu"
    if "Relu" in ops:
        return "relu"
    if "Tanh" in ops:
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
        nonlinear = ops & {"Gelu", "FastGelu", "BiasGelu", "QuickGelu", "Relu", "Sigmoid", "Tanh", "Erf", "Silu",
                           "Swish", "HardSigmoid", "HardSwish", "Mish", "Elu", "LeakyRelu", "Softplus"}
        if not nonlinear:
            continue
        split = bool(ops & {"Split", "Slice"})
        gated = len(ups) >= 2 or (split and "Mul" in ops)
        d_model, width = ctx.linear[ups[0].name]
        d_ff = width // 2 if (split and len(ups) == 1 and gated) else width
        block = Block("mlp", "mlp", None, [], attrs={
            "activation": _activation(ops), "gated": gated, "d_model": d_model, "d_ff": d_ff,
            "up": [u.name for u in sorted(ups, key=lambda n: n.index)], "down": node.name})
        ctx.add(block, sorted({u.name for u in ups} | path | {node.name}, key=ctx.index))
