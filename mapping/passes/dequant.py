"""Quantize/dequantize chains are transparent to matching.

QDQ exports (onnxruntime's ``quantize_static``, QuantFormat.QDQ) wrap every quantized tensor in a
QuantizeLinear -> DequantizeLinear pair, and ``quantize_dynamic`` puts a DynamicQuantizeLinear before each
integer matrix product. They change the number format, not the dataflow, so the passes walk through them as
they walk through a Cast: each pass's set of pass-through ops includes :data:`TRANSPARENT`.
"""

from __future__ import annotations

#: Ops the recognition passes look through (the value they carry is the same tensor, requantised).
TRANSPARENT = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"})

#: Integer matrix products that compute what a MatMul of the dequantized operands would.
INTEGER_MATMULS = frozenset({"MatMulInteger", "QLinearMatMul"})
