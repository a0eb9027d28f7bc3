"""Output shapes and dtypes of onnxruntime's contrib operators (domain ``com.microsoft``) and of the few ops that
onnxruntime registers in the ONNX domain without an ONNX schema (``SimplifiedLayerNormalization``).

ONNX's shape inference does not know these ops; the rules here follow onnxruntime's operator documentation
(docs/ContribOperators.md) and its symbolic shape inference (onnxruntime/tools/symbolic_shape_infer.py), and
tests/test_contrib_ops.py checks each against the shapes onnxruntime produces when it runs the op. Only shapes
are computed; nothing is evaluated.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hardware.errors import HwsimError
from mapping import op_table
from mapping.onnx_graph import Node
from mapping.op_table import OP

Shape = tuple[int, ...]
Out = dict[str, tuple[Shape, str]]

#: Attention-like contrib ops (fused attention cores); recognised as attention blocks.
ATTENTION_OPS = op_table.names(category="attention", domain=op_table.MS)


class _Args:
    """The input shapes/dtypes/values of one node, by slot."""

    def __init__(self, node: Node, shapes: dict[str, Shape], dtypes: dict[str, str],
                 values: dict[str, np.ndarray], where: str) -> None:
        self.node, self.shapes, self.dtypes, self.values, self.where = node, shapes, dtypes, values, where

    def has(self, slot: int) -> bool:
        return slot < len(self.node.inputs) and bool(self.node.inputs[slot])

    def shape(self, slot: int) -> Shape:
        if not self.has(slot):
            raise HwsimError(f"{self.where}: input {slot} is required by {self.node.op_type} but missing")
        return tuple(self.shapes[self.node.inputs[slot]])

    def dtype(self, slot: int) -> str:
        return self.dtypes[self.node.inputs[slot]]

    def scalar(self, slot: int) -> int | None:
        """Value of a scalar input known at bind time (e.g. GQA's total_sequence_length), else None."""
        if not self.has(slot):
            return None
        v = self.values.get(self.node.inputs[slot])
        if v is None or np.asarray(v).size != 1:
            return None
        return int(np.asarray(v).reshape(-1)[0])

    def out(self, outs: list[tuple[Shape, str] | None]) -> Out:
        result: Out = {}
        for name, value in zip(self.node.outputs, outs):
            if name and value is not None:
                result[name] = (tuple(int(s) for s in value[0]), value[1])
        missing = [o for o in self.node.outputs[len(outs):] if o]
        if missing:
            raise HwsimError(f"{self.where}: {self.node.op_type} output '{missing[0]}' is not one hwsim knows")
        return result


def _same(a: _Args) -> Out:
    return a.out([(a.shape(0), a.dtype(0))])


def _stat_shape(shape: Shape, axis: int) -> Shape:
    axis = axis + len(shape) if axis < 0 else axis
    return shape[:axis] + (1,) * (len(shape) - axis)


def _skip_norm(a: _Args) -> Out:
    # outputs: output, mean, inv_std_var (float32, [..., 1]), input_skip_bias_sum (input's shape)
    x, dt = a.shape(0), a.dtype(0)
    stat = (_stat_shape(x, -1), "float32")
    return a.out([(x, dt), stat, stat, (x, dt)])


def _simplified_norm(a: _Args) -> Out:
    # LayerNormalization-like: Y, then mean / inv_std_var in float32 with the normalised axes reduced
    x, dt = a.shape(0), a.dtype(0)
    stat = (_stat_shape(x, int(a.node.attr("axis", -1))), "float32")
    if a.node.op_type == OP.SimplifiedLayerNormalization:
        return a.out([(x, dt), stat])  # Y, inv_std_var
    return a.out([(x, dt), stat, stat])


def _bias_split_gelu(a: _Args) -> Out:
    x = a.shape(0)
    return a.out([(x[:-1] + (x[-1] // 2,), a.dtype(0))])


def _matmul_shape(sa: Shape, sb: Shape, where: str) -> Shape:
    if len(sa) == 1:
        sa = (1,) + sa
        drop_m = True
    else:
        drop_m = False
    drop_n = len(sb) == 1
    if drop_n:
        sb = sb + (1,)
    if sa[-1] != sb[-2]:
        raise HwsimError(f"{where}: matrix product of {sa} and {sb}: inner dimensions differ")
    batch = tuple(np.broadcast_shapes(sa[:-2], sb[:-2]))
    out = batch + (sa[-2], sb[-1])
    if drop_m:
        out = out[:-2] + out[-1:]
    if drop_n:
        out = out[:-1]
    return out


def _matmul_nbits(a: _Args) -> Out:
    x = a.shape(0)
    n = int(a.node.attr("N"))
    k = int(a.node.attr("K"))
    if x[-1] != k:
        raise HwsimError(f"{a.where}: MatMulNBits input has {x[-1]} columns but its attribute K is {k}")
    return a.out([(x[:-1] + (n,), a.dtype(0))])


def _float_matmul(a: _Args) -> Out:
    # DynamicQuantizeMatMul / MatMulIntegerToFloat: a float result of int8 operands (dtype of the B scale)
    dynamic = a.node.op_type == OP.DynamicQuantizeMatMul
    scale_slot = 2 if dynamic else 3
    dtype = a.dtype(scale_slot) if a.has(scale_slot) else "float32"
    if dynamic:
        dtype = a.dtype(0)
    return a.out([(_matmul_shape(a.shape(0), a.shape(1), a.where), dtype)])


def _fused_matmul(a: _Args) -> Out:
    sa, sb = a.shape(0), a.shape(1)
    if a.node.attr("transBatchA", 0) or a.node.attr("transBatchB", 0):
        raise HwsimError(f"{a.where}: FusedMatMul with transBatchA/transBatchB is not supported")
    if a.node.attr("transA", 0) and len(sa) >= 2:
        sa = sa[:-2] + (sa[-1], sa[-2])
    if a.node.attr("transB", 0) and len(sb) >= 2:
        sb = sb[:-2] + (sb[-1], sb[-2])
    return a.out([(_matmul_shape(sa, sb, a.where), a.dtype(0))])


def _causal_conv(a: _Args) -> Out:
    """onnxruntime's CausalConvWithState (a depthwise causal conv carrying its last positions, Mamba / Gated
    DeltaNet): the output as the input, the present state as the past one, else ``(batch, channels, (k - 1) x
    dilation)`` (channels-first, one spatial axis; the CUDA-only extensions are refused)."""
    for attr in ("state_window", "state_update_capacity", "input_channels", "input_channel_offset", "state_length"):
        if a.node.attr(attr, 0):
            raise HwsimError(f"{a.where}: CausalConvWithState with {attr} (a CUDA extension) is not supported")
    if a.node.attr("ndim", 1) != 1:
        raise HwsimError(f"{a.where}: CausalConvWithState with ndim {a.node.attr('ndim')} is not supported (1-D only)")
    x, w = a.shape(0), a.shape(1)
    if a.has(3):
        state = a.shape(3)
    else:
        width = (int(w[-1]) - 1) * int(a.node.attr("dilation", 1))
        state = (x[0], x[-1], width) if a.node.attr("channels_last", 0) else (x[0], x[1], width)
    return a.out([(x, a.dtype(0)), (state, a.dtype(0))])


def gemm_mkn(a: _Args, b_slot: int) -> tuple[int, int, int]:
    """(M, K, N) of a Gemm-like op (QGemm, FusedGemm) from its A (slot 0) and B and transA / transB."""
    sa, sb = a.shape(0), a.shape(b_slot)
    m, k = (sa[1], sa[0]) if a.node.attr("transA", 0) else (sa[0], sa[1])
    n = sb[0] if a.node.attr("transB", 0) else sb[1]
    return int(m), int(k), int(n)


def _fused_gemm(a: _Args) -> Out:
    """onnxruntime's FusedGemm (a Gemm with its activation fused): [M, N], as Gemm."""
    if len(a.shape(0)) != 2 or len(a.shape(1)) != 2:
        raise HwsimError(f"{a.where}: FusedGemm takes 2-D A and B (got {a.shape(0)} and {a.shape(1)})")
    m, _, n = gemm_mkn(a, 1)
    return a.out([((m, n), a.dtype(0))])


def _gemm_fast_gelu(a: _Args) -> Out:
    return a.out([(_matmul_shape(a.shape(0), a.shape(1), a.where), a.dtype(0))])


def _qgemm(a: _Args) -> Out:
    m, _, n = gemm_mkn(a, 3)
    dtype = a.dtype(8) if a.has(8) else "float32"
    return a.out([((m, n), dtype)])


def gather_block_quantized_table(a: _Args) -> Shape:
    """Logical shape of GatherBlockQuantized's table: uint8 data packs 8/bits values along the quantize axis."""
    data = a.shape(0)
    bits = int(a.node.attr("bits", 4))
    if a.dtype(0) == "uint8" and bits < 8:
        axis = int(a.node.attr("quantize_axis", 1))
        axis = axis + len(data) if axis < 0 else axis
        data = data[:axis] + (data[axis] * (8 // bits),) + data[axis + 1:]
    return data


def _gather_block_quantized(a: _Args) -> Out:
    data = gather_block_quantized_table(a)
    axis = int(a.node.attr("gather_axis", 0))
    axis = axis + len(data) if axis < 0 else axis
    return a.out([(data[:axis] + a.shape(1) + data[axis + 1:], a.dtype(2))])


def _embed_layer_norm(a: _Args) -> Out:
    ids, table = a.shape(0), a.shape(2)
    # QEmbedLayerNormalization's tables are int8: its output is in the scales' float type
    dtype = a.dtype(8) if a.node.op_type == OP.QEmbedLayerNormalization else a.dtype(2)
    out = (ids + (table[-1],), dtype)
    return a.out([out, ((ids[0],), "int32"), out])


def _attention_present(a: _Args, past_slot: int, batch: int, seq: int, heads: int, head: int) -> Shape:
    """present [2, B, N, past + S, H] of Attention/QAttention (the mask's last axis when it gives the total)."""
    if a.has(past_slot):
        past = a.shape(past_slot)
        if a.node.attr("past_present_share_buffer", 0):
            return past
        return (2, past[1], past[2], past[3] + seq, past[4])
    return (2, batch, heads, seq, head)


def _attention(a: _Args) -> Out:
    # Attention: input [B, S, in], weights [in, q+k+v], bias [q+k+v]; QAttention has scales/zero points between
    x = a.shape(0)
    heads = int(a.node.attr("num_heads"))
    sizes = a.node.attr("qkv_hidden_sizes")
    if sizes is not None:
        q_hidden, v_hidden = int(sizes[0]), int(sizes[2])
    else:
        total = a.shape(2)[0] if a.has(2) else a.shape(1)[-1]
        q_hidden = v_hidden = total // 3
    qattention = a.node.op_type == OP.QAttention
    dtype = a.dtype(3) if qattention else a.dtype(0)
    past_slot = 8 if qattention else 4
    present = _attention_present(a, past_slot, x[0], x[1], heads, q_hidden // heads)
    return a.out([(x[:2] + (v_hidden,), dtype), (present, dtype)])


def mha_dims(a: _Args) -> tuple[int, int, int, int, int, int]:
    """(batch, q_len, heads, head_dim, kv_len_new, v_head_dim) of a MultiHeadAttention node's inputs."""
    q = a.shape(0)
    heads = int(a.node.attr("num_heads"))
    if len(q) == 5:  # packed QKV [B, S, N, 3, H]
        return q[0], q[1], q[2], q[4], q[1], q[4]
    head = q[2] // heads
    if not a.has(1):
        return q[0], q[1], heads, head, q[1], head
    k = a.shape(1)
    if len(k) == 5:  # packed KV [B, L, N, 2, H]
        return q[0], q[1], heads, head, k[1], k[4]
    if len(k) == 4:  # [B, N, L, H]: already projected and split (cross-attention with a cached key)
        v_head = a.shape(2)[-1] if a.has(2) else head
        return q[0], q[1], heads, head, k[2], v_head
    v_head = a.shape(2)[-1] // heads if a.has(2) and len(a.shape(2)) == 3 else head
    return q[0], q[1], heads, head, k[1], v_head


def _mha(a: _Args) -> Out:
    batch, seq, heads, head, kv_new, v_head = mha_dims(a)
    dtype = a.dtype(0)
    total = kv_new
    if a.has(6):
        past = a.shape(6)
        total = past[2] + kv_new
    key_4d = a.has(1) and len(a.shape(1)) == 4
    if key_4d and not a.has(6):
        total = kv_new
    present = ((batch, heads, total, head), dtype)
    present_v = ((batch, heads, total, v_head), dtype)
    qk = ((batch, heads, seq, total), dtype)
    return a.out([((batch, seq, heads * v_head), dtype), present, present_v, qk])


def _dmmha(a: _Args) -> Out:
    q = a.shape(0)
    dtype = a.dtype(0)
    past = (a.shape(5), dtype) if a.has(5) else None
    return a.out([(q, dtype), past, past])


def gqa_dims(a: _Args) -> tuple[int, int, int, int, int, int, int]:
    """(batch, q_len, heads, kv_heads, head_dim, past_len, total_len) of a GroupQueryAttention node.

    The total length is the ``total_sequence_length`` input when its value is known at bind time, else
    past + new tokens.
    """
    q = a.shape(0)
    heads = int(a.node.attr("num_heads"))
    kv_heads = int(a.node.attr("kv_num_heads", heads))
    if a.has(1):
        head = q[2] // heads
    else:
        head = q[2] // (heads + 2 * kv_heads)  # packed QKV
    past = a.shape(3)[2] if a.has(3) else 0
    total = a.scalar(6)
    if total is None:
        total = past + q[1]
    return q[0], q[1], heads, kv_heads, head, past, total


def _gqa(a: _Args) -> Out:
    batch, seq, heads, kv_heads, head, past, total = gqa_dims(a)
    dtype = a.dtype(0)
    present = ((batch, kv_heads, max(past, total), head), dtype)
    qk = ((batch, heads, seq, total), dtype)
    return a.out([((batch, seq, heads * head), dtype), present, present, qk])


def _relative_position_bias(a: _Args) -> Out:
    # bias_table [buckets, heads], query_length, key_length (int64 scalars) -> [1, heads, q, k]
    q, k = a.scalar(1), a.scalar(2)
    if q is None or k is None:
        raise HwsimError(f"{a.where}: query_length/key_length are not known at bind time")
    return a.out([((1, a.shape(0)[1], q, k), a.dtype(0))])


def _qlinear_binary(a: _Args) -> Out:
    return a.out([(tuple(np.broadcast_shapes(a.shape(0), a.shape(3))), a.dtype(0))])


def _qlinear_concat(a: _Args) -> Out:
    """QLinearConcat (Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) per input): the inputs' shapes
    joined along ``axis``, in the output zero point's type (onnxruntime ContribOperators.md)."""
    parts = [a.shape(slot) for slot in range(2, len(a.node.inputs), 3) if a.has(slot)]
    if not parts:
        raise HwsimError(f"{a.where}: QLinearConcat has no input tensor")
    rank = len(parts[0])
    axis = int(a.node.attr("axis", 0))
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank or any(len(p) != rank or p[:axis] + p[axis + 1:] != parts[0][:axis] + parts[0][axis + 1:]
                                   for p in parts):
        raise HwsimError(f"{a.where}: QLinearConcat inputs {parts} cannot be joined on axis {a.node.attr('axis', 0)}")
    shape = parts[0][:axis] + (sum(p[axis] for p in parts),) + parts[0][axis + 1:]
    return a.out([(shape, a.dtype(1) if a.has(1) else a.dtype(2))])


def _quant_linear(a: _Args) -> Out:
    if a.node.op_type == OP.DequantizeLinear:
        return a.out([(a.shape(0), a.dtype(1))])
    return a.out([(a.shape(0), a.dtype(2) if a.has(2) else "uint8")])


#: Ops onnxruntime registers in the ONNX domain that ONNX itself has no schema for.
ONNX_DOMAIN_EXTRAS = frozenset(e.name for e in op_table.TABLE.values() if e.domain == op_table.ONNX and e.shape)


def _rule(node: Node) -> Callable[[_Args], Out] | None:
    entry = op_table.get(node.domain, node.op_type)
    return op_table.rule(entry.shape) if entry is not None and entry.shape else None


def handles(node: Node) -> bool:
    """True when this module gives ``node``'s output shapes (the op table names a shape rule for its exact domain:
    contrib ops and ONNX-domain extras)."""
    return node.domain in ("", "ai.onnx", op_table.MS) and _rule(node) is not None


def args(node: Node, shapes: dict[str, Shape], dtypes: dict[str, str], values: dict[str, np.ndarray],
         where: str) -> _Args:
    """The input view the rules (and :mod:`mapping.contrib_costs`) read."""
    return _Args(node, shapes, dtypes, values, where)


def infer(node: Node, shapes: dict[str, Shape], dtypes: dict[str, str], values: dict[str, np.ndarray],
          where: str) -> Out:
    """Output name -> (shape, dtype) of a node :func:`handles` accepts; HwsimError naming ``where`` if malformed."""
    for i in node.inputs:
        if i and i not in shapes:
            raise HwsimError(f"{where}: reads '{i}' whose shape is unknown")
    try:
        rule = _rule(node)
        if rule is None:
            raise HwsimError(f"{where}: hwsim has no shape rule for {node.domain or 'ai.onnx'}.{node.op_type}")
        return rule(_Args(node, shapes, dtypes, values, where))
    except HwsimError:
        raise
    except (IndexError, KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise HwsimError(f"{where}: cannot infer the output shapes of {node.op_type} from input shapes "
                         f"{[shapes.get(i) for i in node.inputs if i]} ({type(exc).__name__}: {exc})") from None


_WEIGHT_AT_1 = (OP.MatMul, OP.Gemm, OP.MatMulInteger, OP.FusedMatMul, OP.FusedGemm)
_WIDTH_KEEPING = (OP.Add, OP.Cast, OP.Mul, OP.RotaryEmbedding, OP.Identity, OP.QuantizeLinear, OP.DequantizeLinear)


def _width(graph, tensor: str, depth: int = 0) -> int | None:  # noqa: ANN001 - OpGraph
    """Last-axis size of ``tensor`` from the weight of the linear layer producing it (None if not found)."""
    t = graph.tensors.get(tensor)
    if t is not None and t.dims and isinstance(t.dims[-1], int):
        return int(t.dims[-1])
    node = graph.producer.get(tensor)
    if node is None or depth > 8:  # QDQ graphs put a quantize/dequantize pair after each op
        return None
    if node.op_type == OP.MatMulNBits:
        return int(node.attr("N"))
    if node.op_type in _WEIGHT_AT_1:
        w = graph.tensors.get(node.inputs[1])
        deq = graph.producer.get(node.inputs[1])
        if (w is None or not w.dims) and deq is not None and deq.op_type == OP.DequantizeLinear:
            w = graph.tensors.get(deq.inputs[0])  # a QDQ weight: the quantized initializer's shape
        if w is not None and w.dims and isinstance(w.dims[-1], int):
            trans = node.attr("transB", 0)
            return int(w.dims[0] if trans else w.dims[-1])
    acts = [i for i in node.inputs if i and graph.producer.get(i) is not None or i in graph.inputs]
    if node.op_type in _WIDTH_KEEPING and acts:
        return _width(graph, acts[0], depth + 1)
    return None


def implied_dims(graph) -> dict[str, int]:  # noqa: ANN001 - OpGraph
    """Symbolic dims of KV-cache inputs fixed by an attention op's attributes (onnxruntime-genai names the head
    size ``kv_cache_dim``): past_key [batch, kv_heads, past, head_size] of GroupQueryAttention /
    MultiHeadAttention."""
    found: dict[str, int] = {}
    for node in graph.nodes:
        if node.domain != op_table.MS or node.op_type not in (OP.GroupQueryAttention, OP.MultiHeadAttention):
            continue
        heads = int(node.attr("num_heads", 0) or 0)
        kv = int(node.attr("kv_num_heads", heads) or heads)
        gqa = node.op_type == OP.GroupQueryAttention
        slots = (3, 4) if gqa else (6, 7)
        width = _width(graph, node.inputs[0])
        packed = len(node.inputs) < 2 or not node.inputs[1]
        head = None
        if width and heads:
            head = width // (heads + 2 * kv) if packed and gqa else width // heads
        for slot in slots:
            if slot >= len(node.inputs) or node.inputs[slot] not in graph.inputs:
                continue
            dims = graph.tensors[node.inputs[slot]].dims or ()
            if len(dims) == 4:
                if isinstance(dims[1], str) and kv:
                    found[dims[1]] = kv
                if isinstance(dims[3], str) and head:
                    found[dims[3]] = head
    return found
