"""Fused onnxruntime ops as blocks: Attention / MultiHeadAttention / GroupQueryAttention / QAttention nodes as
attention blocks, EmbedLayerNormalization and GatherBlockQuantized as embeddings, and the quantized / contrib
matrix products (MatMulNBits, DynamicQuantizeMatMul, ...) as linear layers.

Facts come from the op's attributes (num_heads, kv_num_heads, unidirectional) and its bound input shapes;
causality: GroupQueryAttention is causal by definition, Attention and MultiHeadAttention follow their
``unidirectional`` attribute, else a self-attention that reads or writes a KV cache is a decoder's (causal),
else a known attention-bias/mask value that is lower-triangular makes it causal.
"""

from __future__ import annotations

import math

import numpy as np

from mapping import contrib_ops
from mapping.ir import AttentionInfo, Block
from mapping.onnx_graph import Node
from mapping.op_table import OP
from mapping.passes.attention import _output_projection, _projection
from mapping.passes.context import Context

#: Contrib matrix products with a weight operand: op -> slot of the weight.
LINEAR_WEIGHT_SLOT = {OP.DynamicQuantizeMatMul: 1, OP.MatMulIntegerToFloat: 1, OP.GemmFastGelu: 1, OP.QGemm: 3,
                      OP.QLinearMatMul: 3}


def register_linears(ctx: Context) -> None:
    """Add the quantized/contrib matrix products with a weight operand to ``ctx.linear`` as (in, out) widths."""
    for n in ctx.graph.nodes:
        slot = LINEAR_WEIGHT_SLOT.get(n.op_type)
        if slot is None or n.name in ctx.linear or len(n.inputs) <= slot:
            continue
        if ctx.klass.get(n.inputs[slot]) == "weight" and ctx.is_act(n.inputs[0]):
            w = ctx.bound.shapes[n.inputs[slot]]
            trans = n.op_type == OP.QGemm and n.attr("transB", 0)
            ctx.linear[n.name] = (int(w[-1]), int(w[0])) if trans else (int(w[-2]), int(w[-1]))


def _args(ctx: Context, node: Node) -> contrib_ops._Args:
    return contrib_ops.args(node, ctx.bound.shapes, ctx.bound.dtypes, ctx.bound.values, node.name)


def _slot(node: Node, i: int) -> str:
    return node.inputs[i] if i < len(node.inputs) else ""


def _triangular(ctx: Context, tensor: str) -> bool | None:
    """True/False when ``tensor``'s probe value is a causal / a full mask over [q, kv]; None when unknown."""
    value = ctx.bound.values.get(tensor)
    if value is None or value.ndim < 2 or value.shape[-2] <= 1:
        return None
    m = np.asarray(value).reshape(-1, value.shape[-2], value.shape[-1])[0]
    allowed = m if m.dtype == np.bool_ else m > -1e3
    q, kv = allowed.shape
    expected = np.arange(kv)[None, :] <= (np.arange(q)[:, None] + (kv - q))
    if np.array_equal(allowed, expected):
        return True
    return False if allowed.all() else None


def _facts(ctx: Context, node: Node) -> dict:
    a = _args(ctx, node)
    op = node.op_type
    heads = int(node.attr("num_heads"))
    out: dict = {"heads": heads, "kv_heads": heads, "cross": False}
    if op == OP.GroupQueryAttention:
        _, _, heads, kv_heads, head, _, _ = contrib_ops.gqa_dims(a)
        out.update(kv_heads=kv_heads, head_dim=head, causal=True, past=(_slot(node, 3), _slot(node, 4)),
                   q=node.inputs[0], k=_slot(node, 1), v=_slot(node, 2), rotary=bool(node.attr("do_rotary", 0)),
                   window=int(node.attr("local_window_size", -1)))
        return out
    if op in (OP.Attention, OP.QAttention):
        sizes = node.attr("qkv_hidden_sizes")
        width = int(sizes[0]) if sizes is not None else ctx.bound.shapes[node.inputs[1]][-1] // 3
        past = _slot(node, 8 if op == OP.QAttention else 4)
        out.update(head_dim=width // heads, causal=bool(node.attr("unidirectional", 0)), past=(past, past),
                   q=node.inputs[0], k="", v="", packed_projection=True)
        return out
    # MultiHeadAttention / DecoderMaskedMultiHeadAttention
    if op == OP.MultiHeadAttention:
        _, _, _, head, _, _ = contrib_ops.mha_dims(a)
        past = (_slot(node, 6), _slot(node, 7))
        bias_slots = (4, 5)
    else:
        q = ctx.bound.shapes[node.inputs[0]]
        head = q[-1] // heads
        past = (_slot(node, 5), _slot(node, 6))
        bias_slots = (3, 4)
    k, v = _slot(node, 1), _slot(node, 2)
    q_src = _source(ctx, node.inputs[0])
    k_src = _source(ctx, k) if k else q_src
    cross = bool(k) and (k in ctx.graph.inputs or (q_src is not None and k_src is not None and q_src != k_src))
    cached = any(p for p in past) or any(o for o in node.outputs[1:3])
    unidirectional = node.attr("unidirectional")
    if cross:
        causal = False
    elif unidirectional is not None:
        causal = bool(unidirectional)
    elif op == OP.DecoderMaskedMultiHeadAttention or cached:
        causal = True  # a self-attention that keeps a KV cache generates token by token
    else:
        evidence = [_triangular(ctx, _slot(node, s)) for s in bias_slots if _slot(node, s)]
        causal = any(e is True for e in evidence)
    out.update(head_dim=head, causal=causal, cross=cross, past=past, q=node.inputs[0], k=k, v=v)
    return out


def _source(ctx: Context, tensor: str) -> str | None:
    """The input tensor of the linear layer producing ``tensor`` (None if none)."""
    proj = _projection(ctx, tensor) if tensor else None
    return proj.inputs[0] if proj is not None else None


def run(ctx: Context) -> None:
    """Add an attention block for every fused attention op, and embedding blocks for fused lookups."""
    register_linears(ctx)
    for node in ctx.graph.nodes:
        if node.name in ctx.owner or node.domain != "com.microsoft":
            continue
        if node.op_type in contrib_ops.ATTENTION_OPS:
            _attention(ctx, node)
        elif node.op_type == OP.EmbedLayerNormalization:
            table = ctx.bound.shapes[node.inputs[2]]
            ctx.add(Block("token_embedding", "embedding", None, [],
                          attrs={"kind": "token", "rows": int(table[0]), "dim": int(table[1]), "fused_norm": True}),
                    [node.name])
        elif node.op_type == OP.GatherBlockQuantized and ctx.klass.get(node.inputs[0]) == "weight":
            table = contrib_ops.gather_block_quantized_table(_args(ctx, node))
            ctx.add(Block("token_embedding", "embedding", None, [],
                          attrs={"kind": "token", "rows": int(table[0]), "dim": int(math.prod(table[1:])),
                                 "quantized": True}), [node.name])


def _attention(ctx: Context, node: Node) -> None:
    f = _facts(ctx, node)
    heads, kv_heads, head_dim = f["heads"], f["kv_heads"], f["head_dim"]
    if f.get("packed_projection"):
        q_proj = k_proj = v_proj = node
        fused = True
    else:
        q_proj = _projection(ctx, f["q"])
        k_proj = _projection(ctx, f["k"]) if f["k"] else q_proj
        v_proj = _projection(ctx, f["v"]) if f["v"] else q_proj
        fused = q_proj is not None and q_proj is k_proj
    o_proj = _output_projection(ctx, node)
    kind = "cross" if f["cross"] else "self"
    info = AttentionInfo(heads=heads, kv_heads=kv_heads, head_dim=head_dim, causal=f["causal"], kind=kind,
                         score=node.name, softmax=node.name, pv=node.name,
                         q_proj=q_proj.name if q_proj else None, k_proj=k_proj.name if k_proj else None,
                         v_proj=v_proj.name if v_proj else None, o_proj=o_proj.name if o_proj else None,
                         fused_qkv=fused, core=[node.name], q_tensor=f["q"], k_tensor=f["k"], v_tensor=f["v"])
    attrs = {"heads": heads, "kv_heads": kv_heads, "head_dim": head_dim, "causal": f["causal"], "kind": kind,
             "fused_qkv": fused, "fused_op": node.op_type, "kv_cache": any(p for p in f["past"])}
    if f.get("rotary"):
        attrs["rotary"] = True
    if f.get("window", -1) > 0:
        attrs["local_window"] = f["window"]
    block = ctx.add(Block("attention", "attention", None, [], attention=info, attrs=attrs), [node.name])
    for tensor, proj in ((f["q"], q_proj), (f["k"], k_proj), (f["v"], v_proj)):
        if proj is None or proj is node or not tensor:
            continue
        path = ctx.ancestors([tensor], stop={proj.name}) & ctx.descendants(proj)
        if any(ctx.nodes[n].op_type == OP.RotaryEmbedding for n in path):
            attrs["rotary"] = True
        ctx.claim(block, sorted(path, key=ctx.index))
        ctx.claim(block, [proj.name])
    if o_proj is not None:
        between = (ctx.ancestors([o_proj.inputs[0]], stop={node.name}) & ctx.descendants(node)) - {node.name}
        ctx.claim(block, sorted(between, key=ctx.index))
        ctx.claim(block, [o_proj.name])
