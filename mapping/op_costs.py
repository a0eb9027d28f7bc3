"""FLOPs and bytes of each ONNX node at concrete shapes.

Conventions (documented because every number downstream depends on them):

- Matrix products count 2 FLOPs per multiply-accumulate (``MatMul``, ``Gemm``, ``Einsum``, ``Conv``).
- Elementwise arithmetic counts 1 FLOP per output element; comparisons, logic, casts, selects and pure data
  movement count 0. Fused ops count the elementwise FLOPs of their usual decomposition per element:
  softmax 5 (max, subtract, exp, sum, divide), LayerNorm 8, RMSNorm 5, GELU 8 (tanh form), SiLU 4.
- Reductions count 1 FLOP per input element.
- Bytes are what a straightforward kernel moves: every input read once and every output written once, with
  views (Reshape, Squeeze, Unsqueeze, Flatten, Identity) free. A Gather reads only the gathered rows.
- Nodes whose values are known at bind time (shape arithmetic) or that depend only on weights (a transposed
  tied embedding) are folded: they cost nothing at run time.
- Bytes follow the chosen precision of each class of tensor: weights, activations, KV cache; integer tensors
  (ids, indices, masks) keep their own type.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

import numpy as np

from hardware.dtypes import is_float, tensor_bytes
from mapping import quant
from mapping.onnx_graph import Node
from mapping.shape_binding import BoundGraph

MATMUL_OPS = {"MatMul", "Gemm", "MatMulInteger", "QLinearMatMul", "MatMulNBits", "FusedMatMul", "Einsum"}
CONV_OPS = {"Conv", "ConvTranspose", "QLinearConv", "ConvInteger"}
VIEW_OPS = {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity"}
MOVE_OPS = {"Transpose", "Concat", "Split", "Slice", "Expand", "Tile", "Pad", "Gather", "GatherND",
            "GatherElements", "ScatterND", "ScatterElements", "DepthToSpace", "SpaceToDepth", "Resize",
            "Trilu", "CumSum", "Range", "ConstantOfShape", "Shape", "Size", "EyeLike", "OneHot", "NonZero"}
NO_FLOP_ELEMENTWISE = {"Cast", "CastLike", "Where", "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual",
                       "And", "Or", "Xor", "Not", "IsNaN", "IsInf", "Dropout", "Sign", "BitShift"}
FLOPS_PER_ELEMENT = {
    "Softmax": 5, "LogSoftmax": 6,
    "LayerNormalization": 8, "SkipLayerNormalization": 9, "GroupNormalization": 8, "InstanceNormalization": 8,
    "BatchNormalization": 2, "SimplifiedLayerNormalization": 5, "RMSNormalization": 5,
    "SkipSimplifiedLayerNormalization": 6,
    "Gelu": 8, "FastGelu": 8, "BiasGelu": 9, "QuickGelu": 4, "Silu": 4, "Swish": 4, "Mish": 5, "HardSwish": 3,
}
NORM_OPS = {"LayerNormalization", "SkipLayerNormalization", "GroupNormalization", "InstanceNormalization",
            "BatchNormalization", "SimplifiedLayerNormalization", "RMSNormalization",
            "SkipSimplifiedLayerNormalization"}
REDUCE_OPS = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceL1",
              "ReduceSumSquare", "ReduceLogSumExp", "ArgMax", "ArgMin", "TopK"}


@dataclass
class Precision:
    """Formats chosen for each class of tensor; None keeps the model's own type."""

    weights: str | None = None
    activations: str | None = None
    kv_cache: str | None = None


@dataclass
class MatmulDims:
    """A batched matrix product ``[batch] x (m x k) @ (k x n)``; ``weight_operand`` tells which side is a weight.

    ``a_dtype`` / ``b_dtype`` are the operands' formats as the kernel reads them (``int4`` for MatMulNBits'
    weights, ``int8`` behind a DequantizeLinear, the chosen precision otherwise); empty when unknown.
    """

    batch: int
    m: int
    k: int
    n: int
    weight_operand: bool
    a_dtype: str = ""
    b_dtype: str = ""


@dataclass
class OpCost:
    """What one node computes and moves at one binding.

    ``category`` is one of matmul, conv, norm, softmax, activation, elementwise, reduce, gather, movement, view,
    folded. Bytes are split by class: weights read, activations read/written, KV cache read/written (bytes).
    """

    name: str
    op_type: str
    category: str
    flops: float
    weight_bytes: int
    act_read_bytes: int
    act_write_bytes: int
    kv_read_bytes: int = 0
    kv_write_bytes: int = 0
    input_shapes: list[tuple[int, ...]] = field(default_factory=list)
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)
    matmul: MatmulDims | None = None
    block: str = ""
    block_kind: str = ""
    layer: int | None = None
    role: str = ""
    node: str = ""  # the graph node this op is (a part of); empty means ``name``
    #: names of the tensors the node reads and writes (dataflow between ops; filled by the workload builder)
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    #: How a data-dependent size of this op was chosen (MoE routing), empty otherwise.
    note: str = ""

    @property
    def bytes(self) -> int:
        """All bytes moved (reads plus writes)."""
        return self.weight_bytes + self.act_read_bytes + self.act_write_bytes + self.kv_read_bytes + self.kv_write_bytes


#: Ops that turn parameters into parameters (done once, offline): their outputs stay weights.
WEIGHT_TRANSFORMS = {"Transpose", "Cast", "DequantizeLinear", "Reshape", "Identity", "Unsqueeze", "Squeeze",
                     "Concat", "Split", "Slice", "Flatten", "Mul", "Div", "Expand"}


def tensor_classes(bound: BoundGraph, kv_inputs: set[str]) -> dict[str, str]:
    """Class of every tensor, decided by structure alone: ``weight``, ``const``, ``kv`` or ``act``.

    Graph inputs are run-time values (``kv`` for past caches). A computed tensor is ``const`` if all its inputs
    are constants or it only reads shapes (Shape, Size); a ``weight`` if a parameter transform (transpose,
    cast, dequantise...) of weights and constants; an activation otherwise.
    """
    g = bound.graph
    klass: dict[str, str] = {}
    for t in g.tensors.values():
        if g.producer.get(t.name) is None:
            if t.role == "weight":
                klass[t.name] = "weight"
            elif t.role == "constant":
                klass[t.name] = "const"
            elif t.name in kv_inputs:
                klass[t.name] = "kv"
            else:
                klass[t.name] = "act"
    for node in g.nodes:
        ins = [klass[i] for i in node.inputs if i]
        if node.op_type in ("Shape", "Size") or all(c == "const" for c in ins):
            c = "const"
        elif node.op_type in WEIGHT_TRANSFORMS and all(c in ("weight", "const") for c in ins):
            c = "weight"
        else:
            c = "act"
        for o in node.outputs:
            if o:
                klass[o] = c
    return klass


def dtype_for(bound: BoundGraph, name: str, klass: str, precision: Precision) -> str:
    """Format of tensor ``name`` of class ``klass`` under ``precision`` (integer tensors keep their type)."""
    dtype = bound.dtypes[name]
    if not is_float(dtype):
        return dtype
    if klass == "weight" and precision.weights:
        return precision.weights
    if klass == "kv" and precision.kv_cache:
        return precision.kv_cache
    if klass == "act" and precision.activations:
        return precision.activations
    return dtype


def _matmul_dims(bound: BoundGraph, node: Node, klass: dict[str, str]) -> MatmulDims | None:
    a, b = node.inputs[0], node.inputs[1]
    sa, sb = bound.shapes[a], bound.shapes[b]
    out = bound.shapes[node.outputs[0]]
    weight_operand = klass.get(b) == "weight" or klass.get(a) == "weight"
    if node.op_type == "Gemm":
        m = sa[1] if node.attr("transA", 0) else sa[0]
        k = sa[0] if node.attr("transA", 0) else sa[1]
        n = sb[0] if node.attr("transB", 0) else sb[1]
        return MatmulDims(1, int(m), int(k), int(n), weight_operand)
    if node.op_type == "MatMulNBits":
        k = int(node.attr("K"))
        n = int(node.attr("N"))
        m = int(np.prod(sa[:-1]))
        return MatmulDims(1, m, k, n, True)
    if len(sa) == 1:
        sa = (1,) + sa
    if len(sb) == 1:
        sb = sb + (1,)
    m, k, n = sa[-2], sa[-1], sb[-1]
    batch = int(np.prod(out[:-2])) if len(out) > 2 else 1
    if weight_operand and len(sb) == 2:
        # activation [.., m, k] @ weight [k, n]: fold the batch into m (one GEMM)
        return MatmulDims(1, batch * m, k, n, True)
    return MatmulDims(batch, int(m), int(k), int(n), weight_operand)


def _einsum_flops(bound: BoundGraph, node: Node) -> float:
    eq = node.attr("equation").replace(" ", "")
    lhs = eq.split("->")[0].split(",")
    sizes: dict[str, int] = {}
    for term, name in zip(lhs, node.inputs):
        shape = bound.shapes[name]
        letters = [c for c in term if c in string.ascii_letters]
        if "..." in term:
            extra = len(shape) - len(letters)
            letters = [f"_{i}" for i in range(extra)] + letters if term.startswith("...") else letters
        for c, s in zip(letters, shape[-len(letters):] if letters else ()):
            sizes[c] = int(s)
    macs = int(np.prod(list(sizes.values()))) if sizes else 0
    return 2.0 * macs if len(lhs) > 1 else float(macs)


#: Ops whose kernels read DequantizeLinear outputs as the quantized values (ONNX Runtime's QDQ fusions).
_QDQ_FUSING = {"MatMul", "Gemm", "Conv", "Gather"}


def _operand_dtype(bound: BoundGraph, name: str, klass: dict[str, str], precision: Precision) -> str:
    """Format a matrix product reads operand ``name`` in: the quantized type behind a DequantizeLinear."""
    dq = quant.dequant_source(bound.graph, name)
    if dq is not None:
        return bound.dtypes[dq.inputs[0]]
    t = bound.graph.tensors.get(name)
    if t is not None and t.bits:
        return f"int{t.bits}"
    return dtype_for(bound, name, klass.get(name, "act"), precision)


def cost_ops(bound: BoundGraph, node: Node, klass: dict[str, str], precision: Precision,
             kv_len: int | None = None) -> list[OpCost]:
    """The costed parts of ``node``: one :class:`OpCost`, or several for a fused contrib attention
    (see :mod:`mapping.contrib_costs`); ``kv_len`` re-costs a fused attention over that many keys (a decode step
    of a graph without KV-cache inputs)."""
    from mapping import contrib_costs  # contrib_costs builds on this module

    outs = [o for o in node.outputs if o]
    if contrib_costs.handles(node) and not (outs and klass.get(outs[0]) in ("const", "weight")):
        return contrib_costs.cost(bound, node, klass, precision, kv_len)
    return [cost_node(bound, node, klass, precision)]


def cost_node(bound: BoundGraph, node: Node, klass: dict[str, str], precision: Precision) -> OpCost:
    """The :class:`OpCost` of ``node`` at the shapes of ``bound``."""
    ins = [i for i in node.inputs if i]
    outs = [o for o in node.outputs if o]
    in_shapes = [bound.shapes[i] for i in ins]
    out_shapes = [bound.shapes[o] for o in outs]
    op = node.op_type
    out_class = klass.get(outs[0], "act") if outs else "act"

    def nbytes(name: str) -> int:
        k = klass.get(name, "act")
        dq = quant.dequant_source(bound.graph, name) if op in _QDQ_FUSING else None
        if dq is not None and (k == "weight" or quant.fusable_dequant(bound.graph, dq, _QDQ_FUSING)):
            return quant.stored_bytes(bound, dq)  # the kernel reads the quantized values (QDQ fusion)
        return tensor_bytes(bound.numel(name), dtype_for(bound, name, k, precision))

    if out_class in ("const", "weight"):
        return OpCost(node.name, op, "folded", 0.0, 0, 0, 0, 0, 0, in_shapes, out_shapes)
    if op in VIEW_OPS or quant.fusable_dequant(bound.graph, node, _QDQ_FUSING):
        return OpCost(node.name, op, "view", 0.0, 0, 0, 0, 0, 0, in_shapes, out_shapes)

    reads = {"weight": 0, "act": 0, "kv": 0, "const": 0}
    for i in ins:
        reads[klass.get(i, "act")] += nbytes(i)
    writes = sum(nbytes(o) for o in outs)
    out_elems = sum(bound.numel(o) for o in outs)
    matmul = None
    if op in MATMUL_OPS:
        category = "matmul"
        if op == "Einsum":
            flops = _einsum_flops(bound, node)
        else:
            matmul = _matmul_dims(bound, node, klass)
            matmul.a_dtype, matmul.b_dtype = (_operand_dtype(bound, node.inputs[i], klass, precision) for i in (0, 1))
            flops = 2.0 * matmul.batch * matmul.m * matmul.k * matmul.n
            if op == "Gemm" and len(ins) > 2:
                flops += out_elems  # bias add
    elif op in CONV_OPS:
        category = "conv"
        w = bound.shapes[node.inputs[1]]
        flops = 2.0 * out_elems * int(np.prod(w[1:]))
    elif op in ("Softmax", "LogSoftmax"):
        category = "softmax"
        flops = float(FLOPS_PER_ELEMENT[op] * out_elems)
    elif op in NORM_OPS:
        category = "norm"
        flops = float(FLOPS_PER_ELEMENT[op] * bound.numel(ins[0]))
    elif op in FLOPS_PER_ELEMENT:
        category = "activation"
        flops = float(FLOPS_PER_ELEMENT[op] * out_elems)
    elif op in REDUCE_OPS:
        category = "reduce"
        flops = float(bound.numel(ins[0]))
    elif op in ("Gather", "GatherND", "GatherElements"):
        category = "gather"
        flops = 0.0
        table = ins[0]
        if klass.get(table) == "weight":
            # an embedding lookup reads only the selected rows of the table
            reads["weight"] = tensor_bytes(bound.numel(outs[0]), dtype_for(bound, table, "weight", precision))
    elif op in MOVE_OPS:
        category = "movement"
        flops = 0.0
    elif op in NO_FLOP_ELEMENTWISE:
        category = "elementwise"
        flops = 0.0
    else:
        category = "elementwise"
        flops = float(out_elems)
    return OpCost(node.name, op, category, flops, reads["weight"], reads["act"] + reads["const"], writes,
                  reads["kv"], 0, in_shapes, out_shapes, matmul)
