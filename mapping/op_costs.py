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

import math
import string
from dataclasses import dataclass, field

import numpy as np

from hardware.dtypes import is_float, tensor_bytes
from mapping import op_table, quant
from mapping.onnx_graph import Node
from mapping.op_table import OP
from mapping.shape_binding import BoundGraph

#: Name sets of the op table, kept for callers of this module (the table is the source: mapping/op_table.py).
MATMUL_OPS = op_table.names(trait="linear") | op_table.names(cost="op_costs:_einsum")
CONV_OPS = op_table.names(cost="op_costs:_conv")
VIEW_OPS = op_table.names(trait="view")
MOVE_OPS = op_table.names(cost="op_costs:_movement") | op_table.names(cost="op_costs:_gather")
NO_FLOP_ELEMENTWISE = op_table.names(cost="op_costs:_zero_flop")
FLOPS_PER_ELEMENT = {e.name: e.flops for e in op_table.TABLE.values()
                     if e.domain == op_table.ONNX and e.flops is not None and e.category in ("softmax", "norm", "activation")}
NORM_OPS = op_table.names(category="norm", domain=op_table.ONNX)
REDUCE_OPS = op_table.names(cost="op_costs:_reduce")


#: Weight formats of weight-only and low-bit quantisation (narrower than 16 bits): with one of them as ``--weights``
#: the embedding tables and the LM head keep the model's format unless ``Precision.head`` says otherwise.
QUANTISED_WEIGHTS = ("int8", "uint8", "int4", "uint4", "float8e4m3", "float8e5m2", "float4e2m1", "ternary")


@dataclass
class Precision:
    """Formats chosen for each class of tensor; None keeps the model's own type.

    ``head``: the format of the embedding tables and the LM head's weight. None: ``weights``, except that a
    quantised ``weights`` format (:data:`QUANTISED_WEIGHTS`) leaves them in the model's own format, as AWQ
    (llm-awq quantises the decoder layers' linears only), GPTQ/AutoGPTQ (``lm_head`` is not in the quantised
    modules) and vLLM's FP8 ("all Linear modules (except for the final lm_head)") do; ``"same"``: ``weights`` for
    them too. ``head_tensors`` names those tensors (set by :class:`mapping.workloads.Model`)."""

    weights: str | None = None
    activations: str | None = None
    kv_cache: str | None = None
    head: str | None = None
    head_tensors: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def weight_format(self, name: str, own: str) -> str:
        """Format of float weight tensor ``name`` whose model format is ``own``."""
        if name in self.head_tensors:
            if self.head == "same":
                return self.weights or own
            if self.head:
                return self.head
            return own if self.weights in QUANTISED_WEIGHTS else (self.weights or own)
        return self.weights or own


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
WEIGHT_TRANSFORMS = op_table.names(trait="weight_transform")


_SHAPE_READERS = (OP.Shape, OP.Size)


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
        if node.op_type in _SHAPE_READERS or all(c == "const" for c in ins):
            c = "const"
        elif node.op_type in WEIGHT_TRANSFORMS and all(c in ("weight", "const") for c in ins):
            c = "weight"
        elif _expert_slice(bound, node, ins):
            c = "weight"
        else:
            c = "act"
        for o in node.outputs:
            if o:
                klass[o] = c
    return klass


def _expert_slice(bound: BoundGraph, node: Node, ins: list[str]) -> bool:
    """A Gather of one matrix out of a stacked rank-3 weight by a scalar index (a traced MoE's ``w1[expert_idx]``,
    DBRX, the index read from the list of experts hit): one expert's parameters, as a Slice of them would be (an
    embedding lookup gathers rows of a matrix by a tensor of ids)."""
    if node.op_type != OP.Gather or len(ins) != 2 or ins[0] != "weight" or int(node.attr("axis", 0)) != 0:
        return False
    shape = bound.shapes.get(node.inputs[0]) or ()
    index = bound.shapes.get(node.inputs[1])
    return len(shape) == 3 and index == ()


def dtype_for(bound: BoundGraph, name: str, klass: str, precision: Precision) -> str:
    """Format of tensor ``name`` of class ``klass`` under ``precision`` (integer tensors keep their type)."""
    dtype = bound.dtypes[name]
    if not is_float(dtype):
        return dtype
    if klass == "weight" and (precision.weights or precision.head):
        return precision.weight_format(name, dtype)
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
    if node.op_type == OP.Gemm:
        m = sa[1] if node.attr("transA", 0) else sa[0]
        k = sa[0] if node.attr("transA", 0) else sa[1]
        n = sb[0] if node.attr("transB", 0) else sb[1]
        return MatmulDims(1, int(m), int(k), int(n), weight_operand)
    if node.op_type == OP.MatMulNBits:
        k = int(node.attr("K"))
        n = int(node.attr("N"))
        m = math.prod(int(d) for d in sa[:-1])
        return MatmulDims(1, m, k, n, True)
    if len(sa) == 1:
        sa = (1,) + sa
    if len(sb) == 1:
        sb = sb + (1,)
    m, k, n = sa[-2], sa[-1], sb[-1]
    batch = math.prod(int(d) for d in out[:-2]) if len(out) > 2 else 1
    if weight_operand and len(sb) == 2:
        # activation [.., m, k] @ weight [k, n]: fold the batch into m (one GEMM)
        return MatmulDims(1, batch * m, k, n, True)
    return MatmulDims(batch, int(m), int(k), int(n), weight_operand)


def _einsum_flops(bound: BoundGraph, node: Node) -> float:
    shapes = [bound.shapes[name] for name in node.inputs]
    lhs = expand_ellipsis(str(node.attr("equation")), shapes).split("->")[0].split(",")
    sizes: dict[str, int] = {}
    for term, shape in zip(lhs, shapes):
        letters = [c for c in term if c in string.ascii_letters]
        for c, s in zip(letters, shape[-len(letters):] if letters else ()):
            sizes[c] = int(s)
    macs = int(np.prod(list(sizes.values()))) if sizes else 0
    return 2.0 * macs if len(lhs) > 1 else float(macs)


#: Ops whose kernels read DequantizeLinear outputs as the quantized values (ONNX Runtime's QDQ fusions).
_QDQ_FUSING = op_table.names(trait="qdq_fusing")


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
    outs = [o for o in node.outputs if o]
    entry = op_table.lookup(node.domain, node.op_type)
    if entry is not None and not entry.cost.startswith("op_costs:") and not (
            outs and klass.get(outs[0]) in ("const", "weight")):
        from mapping import contrib_costs  # contrib_costs builds on this module

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
    entry = op_table.lookup(node.domain, op)
    ref = entry.cost if entry is not None and entry.cost.startswith("op_costs:") else "op_costs:_elementwise"
    category, flops, matmul = op_table.rule(ref)(_Parts(bound, node, klass, precision, entry, ins, outs, reads))
    return OpCost(node.name, op, category, flops, reads["weight"], reads["act"] + reads["const"], writes,
                  reads["kv"], 0, in_shapes, out_shapes, matmul)


@dataclass
class _Parts:
    """What a generic cost rule reads: the node, its tensors and the bytes it reads by class (rules may adjust)."""

    bound: BoundGraph
    node: Node
    klass: dict[str, str]
    precision: Precision
    entry: op_table.OpInfo | None
    ins: list[str]
    outs: list[str]
    reads: dict[str, int]

    @property
    def out_elems(self) -> int:
        return sum(self.bound.numel(o) for o in self.outs)

    @property
    def per_element(self) -> int:
        assert self.entry is not None and self.entry.flops is not None, self.node.op_type
        return self.entry.flops


Rule = tuple[str, float, MatmulDims | None]  # (OpCost category, FLOPs, matrix-product dims)


# -- generic cost rules: the op table's ``cost`` of standard ONNX ops points at these ---------------------------------
def _matmul(p: _Parts) -> Rule:
    matmul = _matmul_dims(p.bound, p.node, p.klass)
    matmul.a_dtype, matmul.b_dtype = (_operand_dtype(p.bound, p.node.inputs[i], p.klass, p.precision) for i in (0, 1))
    flops = 2.0 * matmul.batch * matmul.m * matmul.k * matmul.n
    if p.node.op_type == OP.Gemm and len(p.ins) > 2:
        flops += p.out_elems  # bias add
    return "matmul", flops, matmul


def expand_ellipsis(equation: str, shapes: list[tuple[int, ...]]) -> str:
    """``equation`` with every ``...`` replaced by letters of its own, one per axis it stands for in that operand
    (operands of ``shapes``' ranks; numpy's broadcasting: an ellipsis's axes align from the right, the output's
    ellipsis is the longest), so that LongT5's local attention ``...qhd,...khd->...hqk`` reads as the batched product
    it is. An equation without an ellipsis, or whose ranks do not fit it, is returned unchanged (spaces removed)."""
    equation = equation.replace(" ", "")
    if "..." not in equation:
        return _einsum_explicit(equation)
    if "->" not in equation:  # numpy's implicit output: the broadcast axes, then the indices that occur once
        letters = equation.replace("...", "").replace(",", "")
        equation += "->..." + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    lhs, out = equation.split("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        return equation
    used = set(equation) - set(".,->")
    pool = [c for c in string.ascii_letters if c not in used]
    spans = []
    for term, shape in zip(terms, shapes):
        n = len(shape) - len(term.replace("...", ""))
        if "..." in term and n < 0:
            return equation
        spans.append(n if "..." in term else 0)
    width = max(spans, default=0)
    if width > len(pool):
        return equation
    axes = pool[:width]  # right-aligned: an operand whose ellipsis is shorter takes the last of them
    terms = [t.replace("...", "".join(axes[width - n:])) for t, n in zip(terms, spans)]
    return ",".join(terms) + "->" + out.replace("...", "".join(axes))


def einsum_bmm(equation: str) -> bool:
    """Whether an Einsum ``equation`` is a batched matrix product: two operands whose shared leading (batch)
    indices lead the output, one index contracted that is A's last, and an output ending in A's row index then B's
    column index (``bhid,bhjd->bhij``: attention's scores with K untransposed; ``bhij,bhjd->bhid``: its PV product).
    Letters may be spaced and upper-case (torchvision's ``B G H I D, B G H J D -> B G H I J``)."""
    equation = equation.replace(" ", "")
    if "->" not in equation or "." in equation:
        return False
    lhs, out = equation.split("->")
    operands = lhs.split(",")
    if len(operands) != 2:
        return False
    a, b = operands
    if min(len(a), len(b), len(out)) < 3 or len(set(a)) != len(a) or len(set(b)) != len(b):
        return False
    contracted = (set(a) | set(b)) - set(out)
    if len(contracted) != 1 or a[-1] not in contracted or a[-1] not in b:
        return False
    batch = out[:-2]
    return (out[-2] in a and out[-2] not in b and out[-1] in b and out[-1] not in a and a[:-2] == batch
            and b.replace(out[-1], "").replace(a[-1], "") == batch)


def einsum_product(equation: str) -> bool:
    """Whether an Einsum ``equation`` multiplies two matrices per batch index in any axis order: two operands that
    share every index but one each, one contracted index that is A's last (attention's scores and PV products
    in XLNet's sequence-first layout: ``ibnd,jbnd->bnij``, ``bnij,jbnd->ibnd``), every other index in the output.
    :func:`einsum_bmm` is the case that is costed as a GEMM."""
    equation = equation.replace(" ", "")
    if "->" not in equation or "." in equation:
        return False
    lhs, out = equation.split("->")
    operands = lhs.split(",")
    if len(operands) != 2:
        return False
    a, b = operands
    if min(len(a), len(b), len(out)) < 3 or len(set(a)) != len(a) or len(set(b)) != len(b) or len(set(out)) != len(out):
        return False
    contracted = (set(a) | set(b)) - set(out)
    return (contracted == {a[-1]} and a[-1] in b and len(set(a) - set(b)) == 1 and len(set(b) - set(a)) == 1
            and set(out) == (set(a) | set(b)) - contracted)


def _einsum_explicit(equation: str) -> str:
    """``equation`` without spaces and with its output: ONNX's implicit output is the indices that occur once, in
    alphabetical order."""
    equation = equation.replace(" ", "")
    if "->" in equation:
        return equation
    letters = equation.replace(",", "")
    return equation + "->" + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))


def einsum_gemm(equation: str, shapes: list[tuple[int, ...]], b_first: bool = False) -> tuple[int, int, int, int] | None:
    """(batch, m, k, n) of a two-operand Einsum as the batched matrix product it computes, in any index order:
    batch indices are in both operands and the output, m's only in A and the output, n's only in B and the output,
    k's in both operands and not the output (each group's sizes multiplied). A projection onto heads is one
    (XLNet's ``ibh,hnd->ibnd``: m = i x b, k = h, n = n x d), as are attention's products in any layout
    (``bhid,bhjd->bhij``, ``ibnd,jbnd->bnij``). ``b_first``: the first operand is B (a weight written first,
    ``oi,bsi->bso``: n = o). None for anything else: an ellipsis, a repeated index, an index summed within one
    operand, no contracted index (an outer product) or shapes that disagree on an index. An equation without
    ``->`` has ONNX's implicit output."""
    equation = _einsum_explicit(equation)
    if "." in equation or len(shapes) != 2:
        return None
    lhs, out = equation.split("->")
    operands = lhs.split(",")
    if len(operands) != 2:
        return None
    a, b = reversed(operands) if b_first else operands
    shape_a, shape_b = reversed(shapes) if b_first else shapes
    if any(len(set(t)) != len(t) for t in (a, b, out)) or len(a) != len(shape_a) or len(b) != len(shape_b):
        return None
    size: dict[str, int] = {}
    for term, shape in ((a, shape_a), (b, shape_b)):
        for c, d in zip(term, shape):
            if size.setdefault(c, int(d)) != int(d):
                return None
    if not set(out) <= set(a) | set(b) or (set(a) ^ set(b)) - set(out):
        return None  # an output index from nowhere, or one summed within one operand
    k_idx = (set(a) & set(b)) - set(out)
    if not k_idx:
        return None

    def prod(idx: set[str]) -> int:
        return math.prod(size[c] for c in idx)

    return (prod(set(a) & set(b) & set(out)), prod(set(a) - set(b)), prod(k_idx), prod(set(b) - set(a)))


def _einsum(p: _Parts) -> Rule:
    """An Einsum's MACs; a two-operand one is costed as the batched matrix product it computes
    (:func:`einsum_gemm`), whatever its index order."""
    flops = _einsum_flops(p.bound, p.node)
    if len(p.node.inputs) != 2:
        return "matmul", flops, None
    weight_first = p.klass.get(p.node.inputs[0]) == "weight" and p.klass.get(p.node.inputs[1]) != "weight"
    order = (1, 0) if weight_first else (0, 1)
    shapes = [p.bound.shapes[i] for i in p.node.inputs]
    dims = einsum_gemm(expand_ellipsis(str(p.node.attr("equation", "")), shapes), shapes, b_first=weight_first)
    if dims is None:
        return "matmul", flops, None
    weight = any(p.klass.get(name) == "weight" for name in p.node.inputs)
    matmul = MatmulDims(*dims, weight)  # the weight, if any, is B: k x n (its outputs are n, as a MatMul's)
    matmul.a_dtype, matmul.b_dtype = (_operand_dtype(p.bound, p.node.inputs[i], p.klass, p.precision) for i in order)
    return "matmul", 2.0 * matmul.batch * matmul.m * matmul.k * matmul.n, matmul


def _conv(p: _Parts) -> Rule:
    w = p.bound.shapes[p.node.inputs[1]]
    return "conv", 2.0 * p.out_elems * int(np.prod(w[1:])), None


def _softmax(p: _Parts) -> Rule:
    return "softmax", float(p.per_element * p.out_elems), None


def _norm(p: _Parts) -> Rule:
    return "norm", float(p.per_element * p.bound.numel(p.ins[0])), None


def _activation(p: _Parts) -> Rule:
    return "activation", float(p.per_element * p.out_elems), None


def _reduce(p: _Parts) -> Rule:
    return "reduce", float(p.bound.numel(p.ins[0])), None


def _gather(p: _Parts) -> Rule:
    table = p.ins[0]
    if p.klass.get(table) == "weight":
        # an embedding lookup reads only the selected rows of the table
        p.reads["weight"] = tensor_bytes(p.bound.numel(p.outs[0]), dtype_for(p.bound, table, "weight", p.precision))
    return "gather", 0.0, None


def _movement(p: _Parts) -> Rule:
    return "movement", 0.0, None


def _zero_flop(p: _Parts) -> Rule:
    return "elementwise", 0.0, None


def _elementwise(p: _Parts) -> Rule:
    return "elementwise", float(p.out_elems), None


def _view(p: _Parts) -> Rule:
    return "view", 0.0, None  # never reached: cost_node returns views before it looks up a rule
