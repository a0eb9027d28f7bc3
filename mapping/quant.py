"""Quantized weights: which integer initializers are parameters, their stored format, and dequantize look-through.

Quantized exports store weights as integer initializers read by a quantized operator: ``MatMulNBits``' packed
int4 ``B`` with its scales and zero points (onnxruntime ``com.microsoft``), ``GatherBlockQuantized``' table,
``MatMulInteger``'s int8 ``B`` (``quantize_dynamic``), and the int8 input of a ``DequantizeLinear`` (QDQ static
quantization). They are weights (tensor class ``weight``) counted at their stored width. Operator input
layouts follow onnxruntime's docs/ContribOperators.md and the ONNX operator specification.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from hardware.dtypes import tensor_bytes
from mapping import op_table
from mapping.op_table import OP

if TYPE_CHECKING:
    from mapping.onnx_graph import Node, OpGraph

#: op type -> input slots that hold quantized weight data, scales or zero points when they are initializers.
#: (MatMulNBits: B, scales, zero_points, g_idx; GatherBlockQuantized: data, scales, zero_points; MatMulInteger: B,
#: b_zero_point; QLinearMatMul / QGemm: b, b_scale, b_zero_point; QAttention: weight, weight_scale,
#: weight_zero_point; DequantizeLinear: x, x_scale, x_zero_point; Gather: an int8 embedding table, dequantized
#: after the gather). The op table keeps them (``weight_slots``).
WEIGHT_SLOTS: dict[str, tuple[int, ...]] = {e.name: e.weight_slots for e in op_table.TABLE.values() if e.weight_slots}

#: Integer formats of quantized weight data (a Gather of an int64 table is shape arithmetic, not a weight).
QUANTIZED_DTYPES = {"int8", "uint8", "int4", "uint4", "int16", "int32"}

#: Ops the recognition passes look through (the value they carry is the same tensor, requantised).
TRANSPARENT = op_table.names(trait="quant_transparent")

#: Integer matrix products that compute what a MatMul of the dequantized operands would.
INTEGER_MATMULS = op_table.names(trait="integer_matmul")

#: Ops that read quantized operands (with their scales): DequantizeLinear, the QOperator-format ops (QLinearAdd,
#: QLinearMul, ...) and the integer matrix products. An integer table gathered into one of them is weight data.
DEQUANTIZING = op_table.names(trait="integer_matmul") | {e.name for e in op_table.TABLE.values() if e.computes} | {
    OP.DequantizeLinear}

#: Ops a dequantized weight or activation may pass through on its way to a matrix product (layout only).
LAYOUT_OPS = op_table.names(trait="layout")


def _packed_bits(node: Node, slot: int, dtype: str) -> int | None:
    """Bits per logical element when a uint8 tensor packs sub-byte values (MatMulNBits B, GatherBlockQuantized)."""
    if dtype != "uint8":
        return None
    bits = int(node.attr("bits", 4))
    if node.op_type == OP.MatMulNBits and slot in (1, 3) and bits < 8:
        return bits
    if node.op_type == OP.GatherBlockQuantized and slot in (0, 3) and bits < 8:
        return bits
    return None


def mark_quantized_weights(graph: OpGraph) -> None:
    """Give integer initializers read as quantized weight data the role ``weight`` (in place).

    The data slot (the first) must hold a non-scalar integer initializer; its scales and zero points are then
    weights too, scalars included (a per-tensor scale belongs to its weight). ``Tensor.bits`` records the bits
    per logical element of packed data so that parameter counts and reported formats follow the stored width.
    """
    for node in graph.nodes:
        slots = WEIGHT_SLOTS.get(node.op_type)
        if not slots or slots[0] >= len(node.inputs):
            continue
        data = graph.tensors.get(node.inputs[slots[0]])
        if data is None or graph.producer.get(data.name) is not None or data.dtype not in QUANTIZED_DTYPES:
            continue
        if math.prod(int(d) for d in data.dims or ()) <= 1:  # type: ignore[arg-type]
            continue
        if node.op_type == OP.Gather and not any(c.op_type in DEQUANTIZING for o in node.outputs
                                                for c in graph.consumers.get(o, [])):
            continue
        for slot in slots:
            if slot >= len(node.inputs) or not node.inputs[slot]:
                continue
            t = graph.tensors.get(node.inputs[slot])
            if t is None or graph.producer.get(t.name) is not None or t.role not in ("constant", "weight"):
                continue
            if t.role == "constant":
                t.role = "weight"
                t.value = None
            bits = _packed_bits(node, slot, t.dtype)
            if bits is not None:
                t.bits = bits


def logical_elements(graph: OpGraph, name: str) -> int:
    """Parameters a weight tensor holds: its elements, times 8/bits for packed sub-byte data."""
    t = graph.tensors[name]
    numel = math.prod(int(d) for d in t.dims or ())  # type: ignore[arg-type]
    return numel * 8 // t.bits if t.bits else numel


def formats(graph: OpGraph) -> dict[str, int]:
    """Stored bytes of the model's weights by format (``int4``, ``int8``, ``float16``...), largest first."""
    out: dict[str, int] = {}
    for name in graph.weight_names:
        t = graph.tensors[name]
        numel = math.prod(int(d) for d in t.dims or ())  # type: ignore[arg-type]
        fmt = stored_format(graph, name)
        out[fmt] = out.get(fmt, 0) + tensor_bytes(numel, t.dtype)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def stored_format(graph: OpGraph, name: str) -> str:
    """The format a weight is stored in: its dtype, or ``int<bits>`` for packed sub-byte data."""
    t = graph.tensors[name]
    return f"int{t.bits}" if t.bits else t.dtype


def weight_sources(graph: OpGraph, tensor: str, limit: int = 16) -> list[str]:
    """The weight initializers behind ``tensor``: itself, or those a parameter transform (DequantizeLinear,
    Transpose, Cast...) computes it from."""
    t = graph.tensors.get(tensor)
    if t is not None and t.role == "weight" and graph.producer.get(tensor) is None:
        return [tensor]
    node = graph.producer.get(tensor)
    if node is None or limit <= 0 or node.op_type not in LAYOUT_OPS | {OP.DequantizeLinear, OP.Cast}:
        return []
    found: list[str] = []
    for i in node.inputs:
        if i:
            found += weight_sources(graph, i, limit - 1)
    return found


def before_qdq(graph: OpGraph, tensor: str) -> str:
    """The tensor a QuantizeLinear -> DequantizeLinear pair (or chain of them) was applied to, else ``tensor``."""
    for _ in range(4):
        dq = graph.producer.get(tensor)
        if dq is None or dq.op_type != OP.DequantizeLinear:
            break
        q = graph.producer.get(dq.inputs[0])
        if q is None or q.op_type != OP.QuantizeLinear:
            break
        tensor = q.inputs[0]
    return tensor


def dequant_source(graph: OpGraph, tensor: str) -> Node | None:
    """The DequantizeLinear node ``tensor`` comes from through layout-only ops, or None."""
    seen = 0
    while seen < 8:
        node = graph.producer.get(tensor)
        if node is None:
            return None
        if node.op_type == OP.DequantizeLinear:
            return node
        if node.op_type not in LAYOUT_OPS:
            return None
        tensor = node.inputs[0]
        seen += 1
    return None


def stored_bytes(bound, node: Node) -> int:  # noqa: ANN001 - BoundGraph (import cycle)
    """Bytes of a DequantizeLinear node's quantized input, scale and zero point as stored."""
    return sum(tensor_bytes(bound.numel(i), bound.dtypes[i]) for i in node.inputs if i)


def fusable_dequant(graph: OpGraph, node: Node, fusing: set[str]) -> bool:
    """True when every reader of a DequantizeLinear's output is an op in ``fusing`` (through layout ops):
    the kernel of that op reads the quantized values directly (QDQ fusion), so the DequantizeLinear moves
    nothing of its own."""
    if node.op_type != OP.DequantizeLinear:
        return False
    frontier = [node.outputs[0]]
    seen = 0
    while frontier and seen < 16:
        t = frontier.pop()
        readers = graph.consumers.get(t, [])
        if not readers and t not in graph.outputs:
            continue
        if t in graph.outputs:
            return False
        for r in readers:
            seen += 1
            if r.op_type in LAYOUT_OPS:
                frontier.extend(o for o in r.outputs if o)
            elif r.op_type not in fusing:
                return False
    return not frontier
