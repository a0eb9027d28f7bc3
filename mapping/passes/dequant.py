"""Quantize/dequantize chains are transparent to matching.

QDQ exports (onnxruntime's ``quantize_static``, QuantFormat.QDQ) wrap every quantized tensor in a
QuantizeLinear -> DequantizeLinear pair, and ``quantize_dynamic`` puts a DynamicQuantizeLinear before each
integer matrix product. They change the number format, not the dataflow, so the passes walk through them as
they walk through a Cast: each pass's set of pass-through ops includes :data:`mapping.quant.TRANSPARENT`.
"""

from __future__ import annotations

from mapping.ir import Block
from mapping.op_costs import VIEW_OPS
from mapping.op_table import OP
from mapping.passes.context import Context
from mapping.quant import TRANSPARENT


def _scale_like(ctx: Context, tensor: str, depth: int = 0) -> bool:
    """True for a run-time quantisation scale: a DynamicQuantizeLinear's scale/zero point, or arithmetic on them."""
    node = ctx.producer(tensor)
    if node is None or depth > 4:
        return False
    if node.op_type == OP.DynamicQuantizeLinear:
        return tensor != node.outputs[0]
    if node.op_type in (OP.Mul, OP.Cast, OP.Reshape, OP.Unsqueeze):
        return all(_scale_like(ctx, i, depth + 1) for i in ctx.act_inputs(node))
    return False


def _owner_through_views(ctx: Context, tensor: str) -> Block | None:
    producer = ctx.producer(tensor)
    while producer is not None and producer.name not in ctx.owner and producer.op_type in VIEW_OPS:
        src = ctx.act_inputs(producer)
        producer = ctx.producer(src[0]) if src else None
    return ctx.owner.get(producer.name) if producer is not None else None


def run(ctx: Context) -> None:
    """Give each unowned quantize/dequantize op, and each rescale (Mul/Cast) of an integer matrix product's result
    by run-time scales, to the block that produced its data input."""
    changed = True
    while changed:
        changed = False
        for node in ctx.graph.nodes:
            if node.name in ctx.owner:
                continue
            ins = ctx.act_inputs(node)
            if not ins:
                continue
            if node.op_type in TRANSPARENT:
                data = node.inputs[0]
            elif node.op_type in (OP.Mul, OP.Cast) and not _scale_like(ctx, ins[0]):
                rest = [i for i in ins if i != ins[0]]
                if not rest or not all(_scale_like(ctx, i) for i in rest):
                    continue
                data = ins[0]
            else:
                continue
            block = _owner_through_views(ctx, data)
            if block is None:
                continue
            scale_nodes = {n for i in ins[1:] for n in ctx.ancestors([i], limit=8) if n not in ctx.owner}
            ctx.claim(block, sorted(scale_nodes | {node.name}, key=ctx.index))
            changed = True
