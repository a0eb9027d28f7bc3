"""Find attention: Q.K^T matmul -> (scale, mask, softmax) -> P.V matmul, then its projections and mask."""

from __future__ import annotations

from collections import deque

import numpy as np

from mapping import op_table
from mapping.ir import AttentionInfo, Block
from mapping.onnx_graph import Node
from mapping.op_costs import einsum_bmm, einsum_product, expand_ellipsis
from mapping.op_table import OP
from mapping.passes import causality
from mapping.passes.context import B_SLOT, PATH_OPS, Context
from mapping.quant import INTEGER_MATMULS

#: Ops allowed between the score matmul and the PV matmul.
CORE_OPS = op_table.names(joins="attention_core")
#: Layout ops around a cached K/V.
_LAYOUT_OPS = op_table.names(joins="attention_layout")


def _b_operand(node: Node) -> str:
    """The B operand of a matrix product node (the keys of a score, the values of a PV)."""
    return node.inputs[B_SLOT.get(node.op_type, 1)]


def _bmm(ctx: Context, node: Node) -> bool:
    """A matrix product of two activations: a MatMul (or an integer one), or an Einsum that computes one."""
    if node.op_type == OP.Einsum:
        if len(node.inputs) != 2 or any(i not in ctx.bound.shapes for i in node.inputs):
            return False
        eq = expand_ellipsis(str(node.attr("equation", "")), [ctx.bound.shapes[i] for i in node.inputs])
        return (einsum_bmm(eq) or einsum_product(eq)) and len(ctx.act_inputs(node)) >= 2
    if node.op_type == OP.FusedMatMul:  # onnxruntime's alpha A B^T (session-optimized scores), batch dims untouched
        plain = not any(node.attr(a, 0) for a in ("transA", "transBatchA", "transBatchB"))
        return plain and len(ctx.act_inputs(node)) >= 2
    return (node.op_type == OP.MatMul or node.op_type in INTEGER_MATMULS) and len(ctx.act_inputs(node)) >= 2


def _find_core(ctx: Context, score: Node) -> tuple[Node, Node, set[str]] | None:
    """Softmax and PV matmul reached forwards from ``score`` through core ops, and the core node set."""
    softmax: Node | None = None
    parents: dict[str, str] = {}
    queue = deque([score])
    seen = {score.name}
    while queue:
        node = queue.popleft()
        for out in node.outputs:
            for c in ctx.consumers(out):
                if c.name in seen:
                    continue
                if _bmm(ctx, c) and c.inputs[0] == out and softmax is not None and _on_path(parents, node, softmax):
                    core = {score.name, c.name}
                    walker = node.name
                    while walker != score.name:
                        core.add(walker)
                        walker = parents[walker]
                    # include side branches that start and end inside the core (e.g. max-subtraction, SDPA's
                    # Where(IsNaN(p), 0, p) after the softmax): from the inputs of every core node
                    sides = [i for n in core | {c.name} for i in ctx.nodes[n].inputs if i]
                    core |= (ctx.ancestors(sides, stop=core) - core) & ctx.descendants(score, limit=60)
                    return softmax, c, core
                if c.op_type in CORE_OPS:
                    seen.add(c.name)
                    parents[c.name] = node.name
                    if op_table.computes(c.op_type) == OP.Softmax and softmax is None:
                        softmax = c
                    queue.append(c)
        if len(seen) > 60:
            break
    return None


def _on_path(parents: dict[str, str], node: Node, softmax: Node) -> bool:
    walker = node.name
    while walker in parents or walker == softmax.name:
        if walker == softmax.name:
            return True
        walker = parents[walker]
    return False


#: Also between a fused QKV projection and K/V: Falcon's dynamo export picks heads with GatherND.
_QKV_PATH_OPS = op_table.names(joins="qkv_path_gather")


#: Fused norm ops a Q / K path may pass (QK layernorm after a fused QKV projection: Persimmon's TorchScript).
_QK_NORMS = {OP.LayerNormalization, OP.SimplifiedLayerNormalization, OP.RMSNormalization}


def _projection(ctx: Context, tensor: str) -> Node | None:
    # QDQ exports put a quantize/dequantize pair after every op: three times the path (rotary included)
    found = ctx.walk_back(tensor, _QKV_PATH_OPS | _QK_NORMS, set(ctx.linear), limit=120)
    return max(found, key=lambda n: n.index) if found else None


def _output_projection(ctx: Context, pv: Node) -> Node | None:
    """The output projection after an attention's P.V (through layout ops)."""
    return ctx.first_linear_after([pv.outputs[0]], _LAYOUT_OPS)


def _heads(ctx: Context, score: Node, q_proj: Node | None) -> tuple[int, int]:
    """(heads, head_dim) from the score matmul's shapes."""
    q_shape = ctx.bound.shapes[score.inputs[0]]
    s_shape = ctx.bound.shapes[score.outputs[0]]
    head_dim = int(q_shape[-1])
    if len(s_shape) >= 4:
        return int(np.prod(s_shape[1:-2])), head_dim
    # [batch*heads, q, kv]: recover the batch from the projection's row count
    q_len = int(s_shape[-2])
    if q_proj is not None:
        rows = int(np.prod(ctx.bound.shapes[q_proj.inputs[0]][:-1]))
        batch = max(1, rows // max(1, q_len))
        return max(1, int(s_shape[0]) // batch), head_dim
    return int(s_shape[0]), head_dim


def _path_kv_heads(ctx: Context, k_t: str, k_proj: Node | None, head_dim: int, score: Node) -> int:
    """The fewest heads any 4-D tensor on K's path carries: the real K width before a GQA/MQA repeat.

    A tensor [batch, heads, length, head_dim] in any axis order carries numel / (batch x length x head_dim)
    heads; fused-QKV exports show all heads before the K slice is taken, so the minimum is K's own.
    """
    s_shape = ctx.bound.shapes[score.outputs[0]]
    batch = int(ctx.bound.shapes[score.inputs[0]][0])
    lengths = {int(s_shape[-1]), int(s_shape[-2])}
    stop = {k_proj.name} if k_proj is not None else None
    names = ctx.ancestors([k_t], limit=60, stop=stop)
    if k_proj is not None:
        names &= ctx.descendants(k_proj, limit=400) | {k_proj.name}
    tensors = {o for n in names for o in ctx.nodes[n].outputs if o} | {k_t}
    tensors |= {i for n in names for i in ctx.nodes[n].inputs if i in ctx.kv_inputs}

    def heads(t: str) -> int | None:
        shape = ctx.bound.shapes.get(t, ())
        if len(shape) != 4 or head_dim not in shape or batch not in shape:
            return None
        length = next((n for n in shape if n in lengths), None)
        if length is None:
            return None
        total = int(np.prod(shape))
        return total // (batch * length * head_dim) if total % (batch * length * head_dim) == 0 else None

    # per-head pieces joined back (StableLM's and Cohere's per-head K norm: K split into one slice per head, each
    # normalised, then concatenated): the slices carry fewer heads than K, so they and what they came from on the
    # way are not K's width. A Concat of one tensor repeated (a GQA repeat) or along the length (a KV cache) is not
    # such a join: its inputs repeat, or carry as many heads as its output.
    pieces: set[str] = set()
    for n in names:
        node = ctx.nodes[n]
        ins = [i for i in node.inputs if i]
        if node.op_type != OP.Concat or len(ins) < 2 or len(set(ins)) < len(ins):
            continue
        joined = heads(node.outputs[0])
        if joined and all((heads(i) or joined) < joined for i in ins):
            pieces |= {t for m in ctx.ancestors(ins, limit=40) & names for t in ctx.nodes[m].outputs
                       if (heads(t) or joined) < joined} | set(ins)
    counts = [h for t in tensors - pieces if (h := heads(t))]
    return min(counts, default=1 << 30)


def _other_sequence(ctx: Context, q_proj: Node, k_proj: Node) -> bool:
    """K is projected from another sequence than Q (cross attention): its input does not depend on every graph
    input Q's does. Different projection inputs alone do not make it cross: multi-head latent attention (DeepSeek)
    projects Q and K/V from two low-rank compressions of the same hidden states; a decoder's K/V of the encoder
    states (a graph input, or the encoder stack) never depend on the decoder's own tokens. Queries that no input's
    data reaches (a learned probe, only Tile'd to the batch) attend over another sequence too."""
    q_in, k_in = q_proj.inputs[0], k_proj.inputs[0]
    if q_in != k_in and not ctx.data_sources(q_in) and ctx.data_sources(k_in):
        return True  # learned queries (SigLIP's attention-pooling probe, a Perceiver's latents) over the tokens
    if q_in != k_in and _after_cross(ctx, q_in) and not _after_cross(ctx, k_in):
        # the stream of learned queries after their first cross attention (DETR's object queries, BLIP-2's
        # Q-Former tokens in the second layer on): its data now comes from the image too, but the keys are still
        # the encoder's states, which no cross attention's output reaches
        return True
    return q_in != k_in and not ctx.input_sources(q_in) <= ctx.input_sources(k_in)


def _after_cross(ctx: Context, tensor: str) -> bool:
    """Whether ``tensor`` depends on the output of a cross attention found so far."""
    pvs = {b.attention.pv for b in ctx.blocks if b.attention is not None and b.attention.kind == "cross"}
    return bool(pvs) and bool(ctx.ancestors([tensor], limit=20000) & pvs)


def run(ctx: Context) -> None:
    """Recognise every attention in the graph and add its block (unnumbered; the layers pass numbers it)."""
    used: set[str] = set()
    for node in ctx.graph.nodes:
        if node.name in used or not _bmm(ctx, node):
            continue
        found = _find_core(ctx, node)
        if found is None:
            continue
        softmax, pv, core = found
        used |= {node.name, pv.name}
        q_t, k_t, v_t = node.inputs[0], _b_operand(node), _b_operand(pv)
        q_proj, k_proj, v_proj = _projection(ctx, q_t), _projection(ctx, k_t), _projection(ctx, v_t)
        o_proj = _output_projection(ctx, pv)
        heads, head_dim = _heads(ctx, node, q_proj)
        v_head_dim = int(ctx.bound.shapes[pv.outputs[0]][-1])  # DeepSeek's MLA: 16 against a score head size of 24
        fused = q_proj is not None and q_proj is k_proj
        if q_proj is not None and q_proj.name in ctx.linear and len(ctx.bound.shapes[node.outputs[0]]) >= 5:
            # scores [B, windows, heads, I, J] (MaxViT's block and grid attention as Einsums, LongT5's local blocks
            # as Einsums with an ellipsis, Hiera's mask units as 5-D MatMuls): the projection's width says how many
            # of the leading axes' product are heads, the rest are windows riding in the batch
            width = ctx.linear[q_proj.name][1] // (3 if fused and ctx.linear[q_proj.name][1] % (3 * head_dim) == 0
                                                   else 1)
            per = width // head_dim if width % head_dim == 0 else heads
            if 0 < per < heads and heads % per == 0:
                heads = per
        kv_heads = heads
        if fused and q_proj is not None:
            width = ctx.linear[q_proj.name][1]
            rest = width - heads * head_dim  # K and V of kv_heads each: K of the score's head size, V of PV's
            if rest > 0 and rest % (head_dim + v_head_dim) == 0:  # LeViT: V 4x wider than Q and K per head
                kv_heads = max(1, rest // (head_dim + v_head_dim))
            elif width // head_dim > heads:
                kv_heads = max(1, (width // head_dim - heads) // 2)
        elif k_proj is not None:
            width = ctx.linear[k_proj.name][1]
            if k_proj is v_proj and width % (2 * head_dim) == 0:
                width //= 2  # one projection for K and V (nn.MultiheadAttention's packed in_proj over other keys)
            kv_heads = max(1, width // head_dim)
        kv_heads = min(kv_heads, _path_kv_heads(ctx, k_t, k_proj, head_dim, node))
        cross = (q_proj is not None and k_proj is not None and _other_sequence(ctx, q_proj, k_proj)) or (
            k_proj is None and causality.cross_from_cache(ctx, k_t))
        s_shape = ctx.bound.shapes[node.outputs[0]]
        verdict = causality.Verdict(False, True, "cross attention") if cross else causality.judge(
            ctx, core, {q_t, k_t, v_t}, int(s_shape[-2]), int(s_shape[-1]), k_t)
        causal = verdict.causal
        info = AttentionInfo(heads=heads, kv_heads=kv_heads, head_dim=head_dim, causal=causal,
                             kind="cross" if cross else "self", score=node.name, softmax=softmax.name,
                             pv=pv.name, q_proj=q_proj.name if q_proj else None,
                             k_proj=k_proj.name if k_proj else None, v_proj=v_proj.name if v_proj else None,
                             o_proj=o_proj.name if o_proj else None, fused_qkv=fused,
                             core=sorted(core, key=ctx.index), q_tensor=q_t, k_tensor=k_t, v_tensor=v_t,
                             causal_known=verdict.known, causal_evidence=verdict.evidence,
                             v_head_dim=v_head_dim if v_head_dim != head_dim else None)
        block = Block(name="attention", kind="attention", layer=None, nodes=[], attention=info,
                      attrs={"heads": heads, "kv_heads": kv_heads, "head_dim": head_dim, "causal": causal,
                             "kind": info.kind, "fused_qkv": fused})
        ctx.add(block, sorted(core, key=ctx.index))
        # the paths from the projections into the core (reshape, transpose, rotary, GQA repeat) belong here too
        for tensor, proj in ((q_t, q_proj), (k_t, k_proj), (v_t, v_proj)):
            if proj is None:
                # K/V read straight from a cache input (cached cross attention): the reshapes on the way
                path = ctx.ancestors([tensor], limit=10)
                if all(ctx.nodes[n].op_type in PATH_OPS for n in path):
                    ctx.claim(block, sorted(path, key=ctx.index))
                continue
            # (a long path: QK norms, partial rotary's slices and concats; the forward walk is breadth first)
            path = ctx.ancestors([tensor], stop={proj.name}) & ctx.descendants(proj, limit=2000)
            ctx.claim(block, sorted(path, key=ctx.index))
            ctx.claim(block, [proj.name])
        if o_proj is not None:
            between = (ctx.ancestors([o_proj.inputs[0]], stop={pv.name}) & ctx.descendants(pv)) - {pv.name}
            ctx.claim(block, sorted(between, key=ctx.index))
            ctx.claim(block, [o_proj.name])
    _claim_position_scores(ctx)


def _claim_position_scores(ctx: Context) -> None:
    """A relative-position score added to the scores (the queries times projected position encodings, shifted:
    Conformer, DeBERTa-v2's c2p / p2c, XLNet, Funnel) is a side input of the core that reads this attention's own
    Q or K: that branch is the attention's. The walk stops at owned nodes; a branch that reaches no node of the
    block, or that reads hidden states (a linear or weight Conv over run-time data), is left alone (a mask)."""
    cores = {n for b in ctx.blocks if b.attention is not None for n in b.attention.core}
    for block in [b for b in ctx.blocks if b.attention is not None]:
        core = set(block.attention.core)
        operands = {block.attention.q_tensor, block.attention.k_tensor, block.attention.v_tensor}
        own = set(block.nodes)
        for name in block.attention.core:
            for i in ctx.nodes[name].inputs:
                p = ctx.producer(i) if i else None
                if p is None or p.name in core or i in operands or p.name in ctx.owner:
                    continue
                seen = ctx.ancestors([i], limit=400, stop=set(ctx.owner) | cores)
                branch = seen - set(ctx.owner) - cores
                if len(seen) >= 400 or not seen & own or any(
                        n in ctx.linear and ctx.data_sources(ctx.nodes[n].inputs[0]) or ctx.nodes[n].op_type == OP.Conv
                        for n in branch):
                    continue
                ctx.claim(block, sorted(branch, key=ctx.index))
