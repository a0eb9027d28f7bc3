"""Is a self-attention causal, and on what evidence? Is an attention without K/V projections cross attention?

Evidence, strongest first (each verdict names the one it used, see :class:`Verdict`):

1. ``mask values``: a tensor on the mask side of the core, known at the probe binding, that is the causal
   [q, kv] pattern (lower triangle shifted by the cached length) or its complement — either the mask added to
   the scores or one it is built from (T5 adds a relative position bias to the mask, which hides the sum);
   a mask that lets every position through is evidence of a bidirectional attention;
2. ``is_causal`` / ``unidirectional`` attributes of the attention op;
3. mask construction ops: ``Trilu``; a Less/Greater comparison of two position ranges that forms a [q, kv]
   matrix and does not feed a bias-table lookup (T5's bucketing compares ranges too);
4. a self-attention cache (``past``/``present`` K/V) — only decoders keep one;
5. none of these, but a square mask constant whose data is absent (a causal mask folded into an external
   initializer): the verdict is *unknown*; the attention is costed as causal when the graph ends in an LM head
   over the vocabulary (a decoder-only stack), else as bidirectional, and the note says to decide with
   ``--causal`` / ``--no-causal``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mapping import op_table
from mapping.onnx_graph import Node
from mapping.op_table import OP
from mapping.passes.context import PATH_OPS, Context
from mapping.quant import before_qdq

_COMPARE = op_table.names(joins="mask_compare")
#: Ops that read a folded mask buffer (slicing it to [q, kv] and applying it); a weight is read by a matmul, a
#: position table by a Gather.
_MASK_READERS = op_table.names(joins="mask_reader")


@dataclass
class Verdict:
    """``causal``: the value costed; ``known``: False when no evidence decided it; ``evidence``: a short note."""

    causal: bool
    known: bool
    evidence: str


def _causal_pattern(q: int, kv: int) -> np.ndarray:
    return np.arange(kv)[None, :] <= (np.arange(q)[:, None] + (kv - q))


def _as_allowed(value: np.ndarray) -> np.ndarray | None:
    """The [q, kv] boolean matrix of a mask-like value (first batch/head), None if it is not one."""
    if value.ndim < 2 or value.shape[-2] <= 1 or value.shape[-1] <= 1:
        return None
    m = np.asarray(value).reshape(-1, value.shape[-2], value.shape[-1])[0]
    if m.dtype == np.bool_:
        return m
    if np.issubdtype(m.dtype, np.floating):
        return m > -1e3 if (m < -1e3).any() else m != 0
    return m != 0


def _bias_lookups(ctx: Context, nodes: set[str]) -> set[str]:
    """Nodes among ``nodes`` that only feed the index of a bias-table Gather (T5 relative position buckets)."""
    # the table is a weight, or a quantized one (an integer initializer dequantized after the lookup)
    lookups = [ctx.nodes[n] for n in nodes if ctx.nodes[n].op_type in (OP.Gather, OP.GatherBlockQuantized)
               and ctx.klass.get(ctx.nodes[n].inputs[0]) in ("weight", "const")
               and len(ctx.bound.shapes.get(ctx.nodes[n].inputs[0], ())) == 2]
    if not lookups:
        return set()
    return ctx.ancestors([g.inputs[1] for g in lookups], limit=400, data_only=False) & nodes


def _side_tensors(ctx: Context, core: set[str], operands: set[str]) -> list[tuple[Node, str, str]]:
    """(core node, mask tensor, score-side tensor) for each Add/Where in the core."""
    out = []
    for name in core:
        node = ctx.nodes[name]
        if op_table.computes(node.op_type) not in (OP.Add, OP.Where):
            continue
        ins = [i for i in node.inputs if i]
        score_side = next((i for i in ins if (p := ctx.producer(i)) is not None and p.name in core), "")
        for mask in ins:
            if mask != score_side and mask not in operands:
                out.append((node, mask, score_side))
    return out


def judge(ctx: Context, core: set[str], operands: set[str], q_len: int, kv_len: int, k_tensor: str) -> Verdict:
    """The causality :class:`Verdict` of the self-attention whose core is ``core``."""
    sides = _side_tensors(ctx, core, operands)
    expected = _causal_pattern(q_len, kv_len) if q_len > 1 else None
    full_seen = False
    # 1. the mask itself, then every known [q, kv] tensor it is built from (not the bias-table indices)
    for node, mask, score_side in sides:
        # before any quantize/dequantize pair: a QDQ export may quantize the mask's -inf to nonsense
        value = ctx.bound.values.get(before_qdq(ctx.graph, mask))
        if value is not None:
            allowed = _as_allowed(value)
            if allowed is not None and node.op_type == OP.Where:
                allowed = value.reshape(-1, *value.shape[-2:])[0].astype(bool)
                allowed = allowed if node.inputs[1] == score_side else ~allowed
            if allowed is not None and allowed.shape == (q_len, kv_len):
                if allowed.all():
                    full_seen = True
                    continue
                if expected is not None and np.array_equal(allowed, expected):
                    return Verdict(True, True, "mask values")
    side_nodes = ctx.ancestors([m for _, m, _ in sides], limit=600, stop=core, data_only=False)
    side_nodes -= core
    side_nodes -= _bias_lookups(ctx, side_nodes)
    masking = _mask_path(ctx, side_nodes, core)
    if expected is not None:
        for name in sorted(masking, key=ctx.index, reverse=True):
            for out in ctx.nodes[name].outputs:
                value = ctx.bound.values.get(out)
                if value is None or value.shape[-2:] != (q_len, kv_len):
                    continue
                allowed = _as_allowed(value)
                if allowed is not None and (np.array_equal(allowed, expected) or np.array_equal(~allowed, expected)):
                    return Verdict(True, True, "mask values")
    # 2. attributes
    for name in core | side_nodes:
        node = ctx.nodes[name]
        for key in ("is_causal", "unidirectional"):
            if node.attr(key) is not None:
                return Verdict(bool(node.attr(key)), True, f"{key} attribute of {node.name}")
    # 3. construction ops
    for name in side_nodes:
        node = ctx.nodes[name]
        if node.op_type == OP.Trilu:
            return Verdict(True, True, f"triangular mask ({node.name})")
        if node.op_type in _COMPARE:
            shape = ctx.bound.shapes.get(node.outputs[0], ())
            # a comparison whose known value is the same everywhere masks nothing here (SeamlessM4T-v2's chunk
            # mask, one chunk at this length): a causal one is triangular at any length > 1
            value = ctx.bound.values.get(node.outputs[0])
            if value is not None and value.size > 1 and bool(np.all(value == value.flat[0])):
                continue
            if len(shape) >= 2 and shape[-2] > 1 and shape[-1] > 1 and _from_ranges(ctx, node) and name in masking:
                return Verdict(True, True, f"position comparison ({node.name})")
    # 4. a self-attention cache
    if _reads_cache(ctx, k_tensor):
        return Verdict(True, True, "KV cache")
    if full_seen:
        return Verdict(False, True, "mask values (every position visible)")
    # 5. a mask folded into an initializer whose data is absent
    folded = _absent_mask(ctx, side_nodes | core, q_len)
    if folded is not None:
        guess = _lm_head_over_vocab(ctx)
        how = "costed as causal (LM head over the vocabulary)" if guess else "costed as bidirectional"
        return Verdict(guess, False, f"mask folded into initializer {folded} whose data is absent; {how}; "
                                     "decide with --causal or --no-causal")
    return Verdict(False, True, "no causal mask")


#: Ops whose output is an index list or a shape, not values: a comparison read only through them selects
#: positions (Moonshine's partial rotary: arange < n -> NonZero), it does not mask scores.
_INDEX_OPS = frozenset({OP.NonZero, OP.Shape, OP.Size})


def _mask_path(ctx: Context, side_nodes: set[str], core: set[str]) -> set[str]:
    """The mask-side nodes whose values reach the attention core, not only through index or shape ops: a
    comparison counted through NonZero or Shape (the arithmetic of a slice end) selects positions, it masks
    nothing."""
    found: set[str] = set()
    frontier = [i for name in core for i in ctx.nodes[name].inputs if i]
    while frontier:
        p = ctx.producer(frontier.pop())
        if p is None or p.name in found or p.name not in side_nodes:
            continue
        found.add(p.name)
        if p.op_type not in _INDEX_OPS:
            frontier.extend(i for i in p.inputs if i)
    return found


def _from_ranges(ctx: Context, node: Node) -> bool:
    """Both operands of a comparison come from Range ops (position indices)."""
    for i in node.inputs[:2]:
        names = ctx.ancestors([i], limit=40, data_only=False)
        if not any(ctx.nodes[n].op_type == OP.Range for n in names) and not (
                (v := ctx.bound.values.get(i)) is not None and v.size > 1):
            return False
    return True


def _reads_cache(ctx: Context, k_tensor: str) -> bool:
    """K comes (through reshapes and a Concat) from a self-attention past-K/V graph input."""
    for node in ctx.ancestors([k_tensor], limit=60):
        for i in ctx.nodes[node].inputs:
            if i in ctx.kv_inputs and not is_cross_cache(i):
                return True
    return False


def _absent_mask(ctx: Context, nodes: set[str], q_len: int) -> str | None:
    """A square initializer without data ([.., N, N], N >= q) read on the mask side: a folded causal mask."""
    for name in nodes:
        for i in ctx.nodes[name].inputs:
            t = ctx.graph.tensors.get(i)
            if t is None or ctx.producer(i) is not None or t.role not in ("weight", "constant") or t.value is not None:
                continue
            if t.role == "weight" and not t.dtype.startswith(("float", "bfloat", "bool")):
                continue  # quantized weight data (a DequantizeLinear's input), not a mask
            dims = t.dims or ()
            readers = {c.op_type for c in ctx.consumers(i)}
            if len(dims) >= 2 and dims[-1] == dims[-2] and int(dims[-1]) >= q_len and readers <= _MASK_READERS:
                return t.name
    return None


def _lm_head_over_vocab(ctx: Context) -> bool:
    """A graph output has as many columns as the token embedding has rows: logits over the vocabulary."""
    vocab = {int(ctx.bound.shapes[n.inputs[0]][0]) for n in ctx.graph.nodes
             if n.op_type == OP.Gather and ctx.klass.get(n.inputs[0]) == "weight" and len(ctx.bound.shapes[n.inputs[0]]) == 2}
    return any((shape := ctx.bound.shapes.get(out, ())) and int(shape[-1]) in vocab for out in ctx.graph.outputs)


def is_cross_cache(name: str) -> bool:
    """A cached cross-attention K/V input: optimum's ``past_key_values.N.encoder.key`` and kin."""
    low = name.lower()
    return "encoder" in low or "cross" in low


def cross_from_cache(ctx: Context, tensor: str) -> bool:
    """``tensor`` (an attention's K or V) is read from a cached cross-attention input, not projected here."""
    seen: set[str] = set()
    frontier = [tensor]
    while frontier and len(seen) < 40:
        t = frontier.pop()
        if t in ctx.graph.inputs:
            if is_cross_cache(t):
                return True
            continue
        node = ctx.producer(t)
        if node is None or node.name in seen or node.op_type not in PATH_OPS:
            continue
        seen.add(node.name)
        frontier.extend(ctx.act_inputs(node))
    return False


def override(ctx: Context, causal: bool | None) -> None:
    """Apply the user's ``--causal`` / ``--no-causal`` to the self-attentions.

    The flag decides every self-attention whose causality no evidence decided; when evidence decided all of
    them, it decides all of them, unless the graph has both causal and bidirectional ones (an encoder-decoder
    file), whose known verdicts stand.
    """
    if causal is None:
        return
    selfs = [b.attention for b in ctx.blocks if b.attention is not None and b.attention.kind == "self"]
    unknown = [a for a in selfs if not a.causal_known]
    mixed = len({a.causal for a in selfs if a.causal_known}) > 1
    for a in unknown or ([] if mixed else selfs):
        a.causal = causal
        a.causal_known = True
        a.causal_evidence = "--causal" if causal else "--no-causal"
    for b in ctx.blocks:
        if b.attention is not None:
            b.attrs["causal"] = b.attention.causal


def summary(attentions: list) -> dict:
    """``{"value": yes|no|unknown|mixed, "evidence": ...}`` over the self-attentions (AttentionInfo objects)."""
    selfs = [a for a in attentions if a.kind == "self"]
    if not selfs:
        return {"value": "none", "evidence": "no self-attention"}
    unknown = [a for a in selfs if not a.causal_known]
    if unknown:
        return {"value": "unknown", "evidence": unknown[0].causal_evidence}
    values = {a.causal for a in selfs}
    value = "mixed" if len(values) > 1 else ("yes" if values.pop() else "no")
    notes = sorted({a.causal_evidence for a in selfs if a.causal_evidence})
    return {"value": value, "evidence": "; ".join(notes)}
