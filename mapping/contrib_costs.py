"""FLOPs and bytes of onnxruntime's contrib operators (``com.microsoft``) and quantized ONNX operators.

Same conventions as :mod:`mapping.op_costs` (2 FLOPs per multiply-accumulate; elementwise work by its usual
decomposition; every input read once and every output written once; quantized weights at their stored
width). A fused op is counted as the ops it replaces, and a fused attention is returned as several
:class:`OpCost` (one per part, named ``<node>/<role>``) so that the targets see the same parts as in an
unfused graph:

- ``Attention`` / ``QAttention``: ``qkv_proj`` GEMM (with bias) + ``score`` (Q.K^T, plus 1 FLOP per score for
  the scaling) + ``softmax`` (5 per score) + ``pv``;
- ``MultiHeadAttention``, ``GroupQueryAttention``, ``DecoderMaskedMultiHeadAttention``: score + softmax + pv
  over past + new keys (GQA: each query head against its shared KV head; rotary, when fused, 3 FLOPs per
  rotated element), reading the past cache and writing the new tokens' K and V to it;
- ``MatMulNBits``: a GEMM whose weight operand is int4 (``bits``), reading ``B`` + scales + zero points as
  stored; ``MatMulInteger`` / ``QLinearMatMul`` / ``DynamicQuantizeMatMul`` / ``MatMulIntegerToFloat``: int8
  GEMMs; ``GatherBlockQuantized``: a gather reading only the selected rows (and their scales) as stored;
- ``SkipLayerNormalization`` 9 per element (add + LayerNorm; +1 with bias), ``SkipSimplifiedLayerNormalization``
  6, ``EmbedLayerNormalization`` = row gathers + adds + LayerNorm (``QEmbedLayerNormalization``: over uint8 tables,
  2 more per gathered element to dequantise), ``FastGelu`` 8 (+1 with bias),
  ``BiasAdd`` 2, ``RotaryEmbedding`` 3, ``GemmFastGelu`` GEMM + bias + GELU, ``FusedGemm`` GEMM + bias + its
  activation, ``FusedMatMul`` alpha A B (either transposed);
- ``CausalConvWithState``: a depthwise causal conv (2 k per output, bias, SiLU);
- ``MoE`` / ``QMoE``: the experts that run under balanced routing, one batched product per expert matrix (fc1, fc3, fc2) plus
  the router's top-k and the weighted combine.
"""

from __future__ import annotations

import math

from hardware.dtypes import tensor_bytes
from hardware.errors import HwsimError
from mapping import contrib_ops, op_table
from mapping.onnx_graph import Node
from mapping.op_costs import MatmulDims, OpCost, Precision, dtype_for
from mapping.op_table import OP
from mapping.shape_binding import BoundGraph


class _Ctx:
    """Byte and dtype helpers for one node."""

    def __init__(self, bound: BoundGraph, node: Node, klass: dict[str, str], precision: Precision,
                 kv_len: int | None = None) -> None:
        self.bound, self.node, self.klass, self.precision, self.kv_len = bound, node, klass, precision, kv_len
        self.entry = op_table.lookup(node.domain, node.op_type)
        self.a = contrib_ops.args(node, bound.shapes, bound.dtypes, bound.values, f"{bound.graph.path}: node "
                                  f"'{node.name}' ({node.op_type})")

    def has(self, slot: int) -> bool:
        return self.a.has(slot)

    @property
    def per_element(self) -> int:
        """The table's FLOPs per element of this op's elementwise part."""
        assert self.entry is not None and self.entry.flops is not None, self.node.op_type
        return self.entry.flops

    def bias(self) -> int:
        """1 when the table's optional bias input of this op is present (one add per element), else 0."""
        slot = self.entry.bias_slot if self.entry is not None else None
        return 1 if slot is not None and self.has(slot) else 0

    def name(self, slot: int) -> str:
        return self.node.inputs[slot]

    def cls(self, tensor: str) -> str:
        return self.klass.get(tensor, "act")

    def dtype(self, tensor: str) -> str:
        return dtype_for(self.bound, tensor, self.cls(tensor), self.precision)

    def nbytes(self, tensor: str) -> int:
        return tensor_bytes(self.bound.numel(tensor), self.dtype(tensor))

    def reads(self, slots: list[int] | None = None) -> dict[str, int]:
        """Bytes read by class (weight, act, kv, const) over input ``slots`` (all when None)."""
        out = {"weight": 0, "act": 0, "kv": 0, "const": 0}
        for i, t in enumerate(self.node.inputs):
            if t and (slots is None or i in slots):
                out[self.cls(t)] += self.nbytes(t)
        return out

    def writes(self, slots: list[int] | None = None) -> int:
        return sum(self.nbytes(o) for i, o in enumerate(self.node.outputs) if o and (slots is None or i in slots))

    def op(self, category: str, flops: float, reads: dict[str, int], writes: int, suffix: str = "",
           matmul: MatmulDims | None = None, role: str = "", kv_write: int = 0) -> OpCost:
        ins = [i for i in self.node.inputs if i]
        outs = [o for o in self.node.outputs if o]
        name = f"{self.node.name}/{suffix}" if suffix else self.node.name
        return OpCost(name, self.node.op_type, category, float(flops), int(reads.get("weight", 0)),
                      int(reads.get("act", 0) + reads.get("const", 0)), int(writes), int(reads.get("kv", 0)),
                      int(kv_write), [self.bound.shapes[i] for i in ins], [self.bound.shapes[o] for o in outs],
                      matmul, role=role, node=self.node.name)


# -- matrix products ---------------------------------------------------------------------------------------------
def _matmul_nbits(c: _Ctx) -> list[OpCost]:
    x = c.bound.shapes[c.name(0)]
    k, n = int(c.node.attr("K")), int(c.node.attr("N"))
    m = math.prod(x[:-1])
    bits = int(c.node.attr("bits", 4))
    mm = MatmulDims(1, m, k, n, True, a_dtype=c.dtype(c.name(0)), b_dtype="int4" if bits <= 4 else "int8")
    flops = 2.0 * m * k * n + (m * n if c.has(5) else 0)
    return [c.op("matmul", flops, c.reads(), c.writes(), matmul=mm)]


def _int_matmul_dims(c: _Ctx, a_slot: int, b_slot: int, a_dtype: str | None = None) -> MatmulDims:
    sa, sb = c.bound.shapes[c.name(a_slot)], c.bound.shapes[c.name(b_slot)]
    out = c.bound.shapes[c.node.outputs[0]]
    weight = c.cls(c.name(b_slot)) == "weight"
    a_dt, b_dt = a_dtype or c.dtype(c.name(a_slot)), c.dtype(c.name(b_slot))
    if len(sa) == 1:
        sa = (1,) + sa
    if len(sb) == 1:
        sb = sb + (1,)
    if weight and len(sb) == 2:
        return MatmulDims(1, math.prod(sa[:-1]), sa[-1], sb[-1], True, a_dt, b_dt)
    batch = math.prod(out[:-2]) if len(out) > 2 else 1
    return MatmulDims(batch, sa[-2], sa[-1], sb[-1], weight, a_dt, b_dt)


def _float_matmul(c: _Ctx) -> list[OpCost]:
    # DynamicQuantizeMatMul quantises A to uint8 inside; MatMulIntegerToFloat reads int8/uint8 A
    dynamic = c.node.op_type == OP.DynamicQuantizeMatMul
    a_dtype = "uint8" if dynamic else None
    mm = _int_matmul_dims(c, 0, 1, a_dtype)
    bias = 4 if dynamic else 6
    out = math.prod(c.bound.shapes[c.node.outputs[0]])
    flops = 2.0 * mm.batch * mm.m * mm.k * mm.n + out * (1 + (1 if c.has(bias) else 0))  # rescale (+ bias)
    return [c.op("matmul", flops, c.reads(), c.writes(), matmul=mm)]


def _qlinear_matmul(c: _Ctx) -> list[OpCost]:
    mm = _int_matmul_dims(c, 0, 3)
    return [c.op("matmul", 2.0 * mm.batch * mm.m * mm.k * mm.n, c.reads(), c.writes(), matmul=mm)]


def _qgemm(c: _Ctx) -> list[OpCost]:
    m, k, n = contrib_ops.gemm_mkn(c.a, 3)
    mm = MatmulDims(1, m, k, n, c.cls(c.name(3)) == "weight", c.dtype(c.name(0)), c.dtype(c.name(3)))
    return [c.op("matmul", 2.0 * m * k * n + (m * n if c.has(6) else 0), c.reads(), c.writes(), matmul=mm)]


def _fused_matmul(c: _Ctx) -> list[OpCost]:
    sa, sb = c.bound.shapes[c.name(0)], c.bound.shapes[c.name(1)]
    if c.node.attr("transA", 0) and len(sa) >= 2:
        sa = sa[:-2] + (sa[-1], sa[-2])
    if c.node.attr("transB", 0) and len(sb) >= 2:
        sb = sb[:-2] + (sb[-1], sb[-2])
    out = c.bound.shapes[c.node.outputs[0]]
    weight = c.cls(c.name(1)) == "weight"
    a_dt, b_dt = c.dtype(c.name(0)), c.dtype(c.name(1))
    if weight and len(sb) == 2:
        mm = MatmulDims(1, math.prod(sa[:-1]), sa[-1], sb[-1], True, a_dt, b_dt)
    else:
        mm = MatmulDims(math.prod(out[:-2]) if len(out) > 2 else 1, sa[-2], sa[-1], sb[-1], weight, a_dt, b_dt)
    return [c.op("matmul", 2.0 * mm.batch * mm.m * mm.k * mm.n, c.reads(), c.writes(), matmul=mm)]


def _fused_gemm(c: _Ctx) -> list[OpCost]:
    """onnxruntime's FusedGemm: alpha A B + beta C with its activation (Relu, Tanh, ...) applied in the epilogue: the
    Gemm's FLOPs, the bias add and the activation's (one op per output element counted; no extra bytes)."""
    m, k, n = contrib_ops.gemm_mkn(c.a, 1)
    mm = MatmulDims(1, m, k, n, c.cls(c.name(1)) == "weight", c.dtype(c.name(0)), c.dtype(c.name(1)))
    flops = 2.0 * m * k * n + m * n * (c.per_element + (1 if c.has(2) else 0))
    return [c.op("matmul", flops, c.reads(), c.writes(), matmul=mm)]


#: input slots of (weights, scales, bias, zero points) of fc1, fc2, fc3 in MoE and QMoE
_MOE_SLOTS = {OP.MoE: {"fc1": (2, None, 3, None), "fc2": (4, None, 5, None), "fc3": (6, None, 7, None)},
              OP.QMoE: {"fc1": (2, 3, 4, 11), "fc2": (5, 6, 7, 12), "fc3": (8, 9, 10, 13)}}


def _moe_bits(c: _Ctx, fc: str) -> int:
    """Stored bits per QMoE weight of ``fc``: 4 for the FP4 formats, 8 for FP8, else the (per-matrix) attribute."""
    quant = str(c.node.attr("quant_type", "int"))
    if quant in ("fp4", "nvfp4", "wfp4afp8"):
        return 4
    if quant == "fp8":
        return 8
    return int(c.node.attr(f"{fc}_expert_weight_bits", c.node.attr("expert_weight_bits", 4)))


def _moe(c: _Ctx) -> list[OpCost]:
    """onnxruntime's MoE and QMoE (com.microsoft): ``T`` tokens each run ``k`` of ``E`` expert MLPs (fc1, the
    activation, the optional fc3 of a SwiGLU, fc2) and are summed by their routing weights. Routing is decided at run
    time, so it is costed as the importer costs any run-time routing (:mod:`mapping.data_dependent`, balanced):
    ``min(E, T k)`` experts run, each on ``T k`` / that many token rows, and read their weights (and QMoE's scales,
    zero points and biases) once; the other experts' are not read. A matrix's size comes from its values, not its
    layout, which onnxruntime releases and execution providers change (``[E, N, K]``, ``[E, K, N]``, prepacked):
    an expert holds ``values / E`` weights, fc1 and fc3 read the hidden size ``K`` (fc1's ``N`` is 2 x inter for a
    fused SwiGLU), fc2 writes it; QMoE's values are its stored bytes x 8 / bits. One OpCost per product (batched
    over the experts that run) plus the router's top-k and the weighted combine; the activation's FLOPs (the table's
    per element) go with fc1."""
    x = c.bound.shapes[c.name(0)]
    hidden, tokens = int(x[-1]), math.prod(int(d) for d in x[:-1])
    slots = _MOE_SLOTS[c.node.op_type]
    experts, top_k = int(c.bound.shapes[c.name(2)][0]), int(c.node.attr("k", 1))
    quantized = c.node.op_type == OP.QMoE

    def per_expert(fc: str) -> int:
        w = c.name(slots[fc][0])
        shape = c.bound.shapes[w]
        if not quantized and (len(shape) != 3 or hidden not in shape[1:]):  # float weights keep their axes
            raise HwsimError(f"{c.a.where}: MoE expert weights {fc} {shape} do not carry the input's hidden size "
                             f"{hidden}; expected [experts, N, hidden] or [experts, hidden, N]")
        values = c.nbytes(w) * 8 / _moe_bits(c, fc) if quantized else c.bound.numel(w)
        width = values / experts / hidden
        if width < 1 or abs(width - round(width)) > 1e-6:
            raise HwsimError(f"{c.a.where}: {fc}'s weights {c.bound.shapes[w]} are not {experts} experts x the input's "
                             f"hidden size {hidden} x a width; check the expert weights (and expert_weight_bits)")
        return int(round(width))

    n1, inter = per_expert("fc1"), per_expert("fc2")
    runs = max(1, min(experts, tokens * top_k))
    share = runs / experts  # of every expert tensor's bytes: the experts that run read theirs
    rows = tokens * top_k
    per_rows = math.ceil(rows / runs)
    a_dt = c.dtype(c.name(0))

    def product(fc: str, k: int, n: int, extra: float = 0.0, reads: dict | None = None) -> OpCost:
        w, scales, bias, zeros = slots[fc]
        stored = sum(c.nbytes(c.name(s)) for s in (w, scales, bias, zeros) if s is not None and c.has(s))
        b_dt = ("int4" if _moe_bits(c, fc) <= 4 else "int8") if quantized else c.dtype(c.name(w))
        mm = MatmulDims(runs, per_rows, k, n, True, a_dt, b_dt)
        flops = 2.0 * rows * k * n + (rows * n if c.has(bias) else 0) + extra
        return c.op("matmul", flops, {**(reads or {}), "weight": int(stored * share)}, 0, suffix=fc, matmul=mm)

    gate = c.bound.numel(c.name(1))
    ops = [c.op("elementwise", gate * 2.0, c.reads([1]), 0, suffix="route"),  # top-k over each token's logits
           product("fc1", hidden, n1, extra=rows * inter * c.per_element, reads=c.reads([0]))]
    if c.has(slots["fc3"][0]):
        ops.append(product("fc3", hidden, inter))
    ops.append(product("fc2", inter, hidden))
    ops.append(c.op("elementwise", 2.0 * rows * hidden, {}, c.writes(), suffix="combine"))
    return ops


def _causal_conv(c: _Ctx) -> list[OpCost]:
    """onnxruntime's CausalConvWithState: a depthwise causal conv, ``k`` multiply-adds per output element (over the
    past state and the new positions), the bias add and the fused SiLU (4 per element) where set; it reads the input,
    the kernel and the past state and writes the output and the present state. A stencil, not a matrix product."""
    out = c.bound.numel(c.node.outputs[0])
    k = int(c.bound.shapes[c.name(1)][-1])
    act = str(c.node.attr("activation", "none"))
    flops = out * (2.0 * k + (1 if c.has(2) else 0) + (4 if act in ("silu", "swish") else 0))
    return [c.op("elementwise", flops, c.reads(), c.writes())]


def _gemm_fast_gelu(c: _Ctx) -> list[OpCost]:
    sa, sb = c.bound.shapes[c.name(0)], c.bound.shapes[c.name(1)]
    m, k, n = math.prod(sa[:-1]), sa[-1], sb[-1]
    mm = MatmulDims(1, m, k, n, c.cls(c.name(1)) == "weight", c.dtype(c.name(0)), c.dtype(c.name(1)))
    flops = 2.0 * m * k * n + m * n * (c.per_element + (1 if c.has(2) else 0))
    return [c.op("matmul", flops, c.reads(), c.writes(), matmul=mm)]


# -- gathers and norms ---------------------------------------------------------------------------------------------
def _gather_block_quantized(c: _Ctx) -> list[OpCost]:
    logical = contrib_ops.gather_block_quantized_table(c.a)
    out_elems = c.bound.numel(c.node.outputs[0])
    fraction = out_elems / max(1, math.prod(logical))  # share of the table's rows selected
    reads = c.reads([1])
    for slot in (0, 2, 3):
        if c.has(slot):
            t = c.name(slot)
            reads[c.cls(t)] += math.ceil(c.nbytes(t) * fraction)
    flops = 2.0 * out_elems  # dequantise: (q - zero_point) * scale
    return [c.op("gather", flops, reads, c.writes())]


def _relative_position_bias(c: _Ctx) -> list[OpCost]:
    # bucket index arithmetic per (query, key) pair (~6 ops: difference, sign, log, scale, clip, add), then a
    # lookup of one table row per pair: the whole (small) table is read once
    out = c.node.outputs[0]
    pairs = c.bound.numel(out) // max(1, c.bound.shapes[out][1])
    return [c.op("gather", 6.0 * pairs, c.reads(), c.writes())]


def _embed_layer_norm(c: _Ctx) -> list[OpCost]:
    """EmbedLayerNormalization: the selected rows of each table, their adds and a LayerNorm; QEmbedLayerNormalization
    the same over int8 tables (rows read at one byte), with its scales and zero points, and 2 FLOPs per gathered
    element to dequantise them."""
    out = c.node.outputs[0]
    rows = c.bound.numel(out)  # batch x seq x hidden
    quantized = c.node.op_type == OP.QEmbedLayerNormalization
    # ids, segment ids, mask, position ids (QEmbed: ids, segment ids, mask and the scales and zero points)
    reads = c.reads([0, 1, 7, *range(8, 18)] if quantized else [0, 1, 7, 8, 9])
    tables = 0
    for slot in (2, 3, 4):  # word, position, segment tables: only the selected rows
        if c.has(slot):
            t = c.name(slot)
            tables += 1
            reads[c.cls(t)] += tensor_bytes(rows, c.dtype(t))
    for slot in (5, 6):  # gamma, beta
        if c.has(slot):
            reads[c.cls(c.name(slot))] += c.nbytes(c.name(slot))
    flops = rows * ((tables - 1) + c.per_element + (2 * tables if quantized else 0))  # dequant, adds, LayerNorm
    return [c.op("gather", flops, reads, c.writes())]


def _pointwise(c: _Ctx, category: str) -> list[OpCost]:
    elems = c.bound.numel(c.node.outputs[0])
    return [c.op(category, elems * (c.per_element + c.bias()), c.reads(), c.writes())]


def _elementwise(c: _Ctx) -> list[OpCost]:
    """BiasAdd-like ops: the table's FLOPs per output element."""
    return _pointwise(c, "elementwise")


def _activation(c: _Ctx) -> list[OpCost]:
    """Fused GELU variants: the table's FLOPs per output element (+1 with the optional bias)."""
    return _pointwise(c, "activation")


def _norm(c: _Ctx) -> list[OpCost]:
    """Fused norms: the table's FLOPs per input element (+1 with the optional bias)."""
    elems = c.bound.numel(c.name(0))
    return [c.op("norm", elems * (c.per_element + c.bias()), c.reads(), c.writes())]


def _rotary(c: _Ctx) -> list[OpCost]:
    x = c.bound.shapes[c.name(0)]
    positions = x[0] * (x[-2] if len(x) == 4 else x[1])  # [B, N, S, H] or [B, S, D]
    reads = c.reads([0, 1])
    for slot in (2, 3):  # cos/sin caches: only the rows of the positions used
        if c.has(slot):
            t = c.name(slot)
            used = min(c.bound.numel(t), positions * c.bound.shapes[t][-1])
            reads[c.cls(t)] += tensor_bytes(used, c.dtype(t))
    return [c.op("elementwise", 3.0 * math.prod(x), reads, c.writes())]


# -- attention ---------------------------------------------------------------------------------------------------
def _core(c: _Ctx, batch: int, heads: int, kv_heads: int, q_len: int, kv_len: int, head: int, v_head: int,
          q_reads: dict[str, int], k_reads: dict[str, int], v_reads: dict[str, int], extra_reads: dict[str, int],
          kv_write: int, act_dtype: str, kv_dtype: str) -> list[OpCost]:
    """score, softmax and pv parts of one fused attention (bytes by class; scores at the activation dtype)."""
    scores = batch * heads * q_len * kv_len
    score_bytes = tensor_bytes(scores, act_dtype)
    q_dt = act_dtype
    score = c.op("matmul", 2.0 * scores * head + scores, _add(q_reads, k_reads), score_bytes, "score",
                 MatmulDims(batch * heads, q_len, head, kv_len, False, q_dt, kv_dtype), "score", kv_write // 2)
    softmax = c.op("softmax", 5.0 * scores, _add({"act": score_bytes}, extra_reads), score_bytes, "softmax",
                   role="softmax")
    out = c.node.outputs[0]
    pv = c.op("matmul", 2.0 * scores * v_head, _add({"act": score_bytes}, v_reads), c.nbytes(out), "pv",
              MatmulDims(batch * heads, q_len, kv_len, v_head, False, act_dtype, kv_dtype), "pv",
              kv_write - kv_write // 2)
    return [score, softmax, pv]


def _add(*parts: dict[str, int]) -> dict[str, int]:
    out = {"weight": 0, "act": 0, "kv": 0, "const": 0}
    for p in parts:
        for k, v in p.items():
            out[k] = out.get(k, 0) + v
    return out


def _kv_dtype(c: _Ctx, past_slot: int | None, fallback: str) -> str:
    if c.precision.kv_cache:
        return c.precision.kv_cache
    if past_slot is not None and c.has(past_slot):
        return c.dtype(c.name(past_slot))
    return fallback


def _gqa(c: _Ctx) -> list[OpCost]:
    batch, seq, heads, kv_heads, head, past, total = contrib_ops.gqa_dims(c.a)
    total = c.kv_len or total
    act = c.dtype(c.name(0))
    kv_dt = _kv_dtype(c, 3, act)
    packed = not c.has(1)
    q_in = c.reads([0])
    if packed:
        share = heads / (heads + 2 * kv_heads)
        q_reads = {k: int(v * share) for k, v in q_in.items()}
        k_new = {k: (v - q_reads[k]) // 2 for k, v in q_in.items()}
        v_new = dict(k_new)
    else:
        q_reads, k_new, v_new = q_in, c.reads([1]), c.reads([2])
    # the past cache: the kernel reads the first (total - new) positions of it
    past_used = max(0, total - seq)
    k_reads, v_reads = dict(k_new), dict(v_new)
    for slot, target in ((3, k_reads), (4, v_reads)):
        if past_used:
            target[c.cls(c.name(slot)) if c.has(slot) else "kv"] += tensor_bytes(batch * kv_heads * past_used * head,
                                                                                  kv_dt)
    extra = c.reads([5, 6, 9, 10])  # seqlens_k, total_sequence_length, position_ids, attention_bias
    writes_present = any(o for o in c.node.outputs[1:3])
    kv_write = 2 * tensor_bytes(batch * kv_heads * seq * head, kv_dt) if writes_present else 0
    ops: list[OpCost] = []
    if c.node.attr("do_rotary", 0):
        rotated = batch * seq * (heads + kv_heads) * head
        cache = _add(c.reads([7, 8]))
        rows = {k: min(v, tensor_bytes(batch * seq * head, act)) for k, v in cache.items()}
        ops.append(c.op("elementwise", 3.0 * rotated, rows, 0, "rotary", role="rotary"))
    ops += _core(c, batch, heads, kv_heads, seq, total, head, head, q_reads, k_reads, v_reads, extra, kv_write,
                 act, kv_dt)
    return ops


def _mha(c: _Ctx, past_k: int, past_v: int) -> list[OpCost]:
    if c.node.op_type == OP.DecoderMaskedMultiHeadAttention:
        q = c.bound.shapes[c.name(0)]
        heads = int(c.node.attr("num_heads"))
        batch, seq, head = q[0], q[1], q[2] // heads
        past = c.bound.shapes[c.name(5)][2] if c.has(5) else 0
        new = c.bound.shapes[c.name(1)][1] if c.has(1) and len(c.bound.shapes[c.name(1)]) == 3 else seq
        total, v_head = past + new, head
        if c.has(7):  # past_sequence_length: the filled part of a max-length buffer
            known = c.a.scalar(7)
            if known is not None:
                total = known + new
    else:
        batch, seq, heads, head, new, v_head = contrib_ops.mha_dims(c.a)
        past = c.bound.shapes[c.name(past_k)][2] if c.has(past_k) else 0
        total = past + new
    if c.kv_len:
        past, total = max(0, c.kv_len - new), c.kv_len
    act = c.dtype(c.name(0))
    kv_dt = _kv_dtype(c, past_k, act)
    q_in = c.reads([0])
    packed_qkv = len(c.bound.shapes[c.name(0)]) == 5
    if packed_qkv:
        q_reads = {k: v // 3 for k, v in q_in.items()}
        k_reads = dict(q_reads)
        v_reads = dict(q_reads)
    else:
        q_reads = q_in
        k_in = c.reads([1])
        if c.has(1) and len(c.bound.shapes[c.name(1)]) == 5:
            k_reads = {k: v // 2 for k, v in k_in.items()}
            v_reads = dict(k_reads)
        else:
            k_reads, v_reads = k_in, c.reads([2])
    for slot, target, h in ((past_k, k_reads, head), (past_v, v_reads, v_head)):
        if c.has(slot) or (c.kv_len and past):
            used = batch * heads * past * h
            if c.has(slot) and not c.kv_len:
                used = min(c.bound.numel(c.name(slot)), used)
            target[c.cls(c.name(slot)) if c.has(slot) else "kv"] += tensor_bytes(used, kv_dt)
    extra = c.reads([3, 4, 5]) if c.node.op_type != OP.DecoderMaskedMultiHeadAttention else c.reads([3, 4])
    bias = c.reads([3]) if c.node.op_type == OP.MultiHeadAttention else {}
    writes_present = any(o for o in c.node.outputs[1:3])
    kv_write = tensor_bytes(batch * heads * new * (head + v_head), kv_dt) if writes_present else 0
    ops = []
    if bias.get("weight") or bias.get("act"):
        ops.append(c.op("elementwise", batch * seq * heads * head + 2 * batch * new * heads * head, bias, 0,
                        "bias", role="bias"))
        extra = {k: v - bias.get(k, 0) for k, v in extra.items()}
    return ops + _core(c, batch, heads, heads, seq, total, head, v_head, q_reads, k_reads, v_reads, extra,
                       kv_write, act, kv_dt)


def _attention(c: _Ctx) -> list[OpCost]:
    quant = c.node.op_type == OP.QAttention
    x = c.bound.shapes[c.name(0)]
    batch, seq, width = x[0], x[1], x[2]
    heads = int(c.node.attr("num_heads"))
    sizes = c.node.attr("qkv_hidden_sizes")
    w = c.bound.shapes[c.name(1)]
    if sizes is not None:
        q_hidden, k_hidden, v_hidden = (int(s) for s in sizes)
    else:
        q_hidden = k_hidden = v_hidden = w[-1] // 3
    head, v_head = q_hidden // heads, v_hidden // heads
    m, n = batch * seq, q_hidden + k_hidden + v_hidden
    act = "float32" if quant else c.dtype(c.name(0))
    if quant:
        act = c.dtype(c.name(3)) if c.has(3) else "float32"
    qkv_bytes = tensor_bytes(m * n, act)
    proj_slots = [0, 1, 2, 3, 4, 6, 7] if quant else [0, 1, 2]
    mm = MatmulDims(1, m, width, n, True, c.dtype(c.name(0)), c.dtype(c.name(1)))
    proj = c.op("matmul", 2.0 * m * width * n + m * n, c.reads(proj_slots), qkv_bytes, "qkv_proj", mm, "qkv_proj")
    past_slot = 8 if quant else 4
    past = c.bound.shapes[c.name(past_slot)][3] if c.has(past_slot) else 0
    if c.has(past_slot) and c.node.attr("past_present_share_buffer", 0):
        known = c.a.scalar(6 if not quant else 9)
        past = known if known is not None else past
    if c.kv_len:
        past = max(0, c.kv_len - seq)
    kv_dt = _kv_dtype(c, past_slot, act)
    q_reads = {"act": tensor_bytes(m * q_hidden, act)}
    k_reads = {"act": tensor_bytes(m * k_hidden, act)}
    v_reads = {"act": tensor_bytes(m * v_hidden, act)}
    if past:
        cls = c.cls(c.name(past_slot)) if c.has(past_slot) else "kv"
        k_reads[cls] = k_reads.get(cls, 0) + tensor_bytes(batch * heads * past * head, kv_dt)
        v_reads[cls] = v_reads.get(cls, 0) + tensor_bytes(batch * heads * past * v_head, kv_dt)
    extra = c.reads([5] if quant else [3, 5])  # mask index, attention bias
    writes_present = (len(c.node.outputs) > 1 and bool(c.node.outputs[1])) or bool(c.kv_len)
    kv_write = tensor_bytes(batch * heads * seq * (head + v_head), kv_dt) if writes_present else 0
    return [proj] + _core(c, batch, heads, heads, seq, past + seq, head, v_head, q_reads, k_reads, v_reads, extra,
                          kv_write, act, kv_dt)


def _mha_rule(c: _Ctx) -> list[OpCost]:
    return _mha(c, 6, 7)


def _dmmha(c: _Ctx) -> list[OpCost]:
    return _mha(c, 5, 6)


def handles(node: Node) -> bool:
    """True when this module costs ``node`` (its op-table entry's cost rule is one of this module's)."""
    entry = op_table.lookup(node.domain, node.op_type)
    return entry is not None and entry.cost.startswith("contrib_costs:")


def cost(bound: BoundGraph, node: Node, klass: dict[str, str], precision: Precision,
         kv_len: int | None = None) -> list[OpCost]:
    """The parts of ``node`` (one OpCost for most ops, several for a fused attention). ``kv_len`` makes a fused
    attention attend to that many keys, the ones beyond its own new tokens read from the KV cache."""
    entry = op_table.lookup(node.domain, node.op_type)
    if entry is None or not entry.cost.startswith("contrib_costs:"):
        raise HwsimError(f"{bound.graph.path}: node '{node.name}' ({node.op_type}) has no contrib cost rule")
    return op_table.rule(entry.cost)(_Ctx(bound, node, klass, precision, kv_len))
