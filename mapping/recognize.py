"""Run the recognition passes over a graph and build the :class:`mapping.ir.TransformerIR`.

Recognition works on a *probe* binding: every symbolic dim gets a distinct small value and integer inputs
get plausible values (ones for masks, ranges for positions) so that masks can be read and heads told apart
from batch and sequence. The structure found does not depend on the binding the user later asks for.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from hardware.errors import HwsimError
from mapping import dims as dims_meaning
from mapping import op_table
from mapping.contrib_ops import implied_dims
from mapping.ir import Block, TransformerIR
from mapping.onnx_graph import OpGraph
from mapping.op_table import OP
from mapping.passes import (
    attention,
    causality,
    contrib_attention,
    dequant,
    embeddings,
    heads,
    layers,
    mixers,
    mlp,
    moe,
    norms,
    residuals,
)
from mapping.passes.context import Context
from mapping.shape_binding import BoundGraph, FixedReshapeError, bind

#: Probe sizes: distinct so that heads, batch and sequence are never confused.
PROBE = {"batch": 2, "seq": 13, "past": 5, "total": 18, "other": [11, 7, 17, 19, 23]}
#: The probe length of a graph that cannot run on 13 positions: a strided feature encoder over raw audio samples
#: (wav2vec2's conv stack needs 400 samples for one frame) gets one second at 16 kHz, plus one to stay distinct.
LONG_SEQ_PROBE = 16001


#: Ops never reported as unrecognised (views, shape reads, constants).
_STRUCTURAL = op_table.names(trait="structural")


def kv_cache_inputs(graph: OpGraph) -> list[str]:
    """Graph inputs that carry a past KV cache (float, rank >= 3, named past*/cache*/*key_values*)."""
    found = []
    for name in graph.inputs:
        t = graph.tensors[name]
        low = name.lower()
        if t.dtype.startswith(("float", "bfloat")) and t.dims is not None and len(t.dims) >= 3 and (
                "past" in low or "cache" in low or "key_values" in low):
            found.append(name)
    return found


def classify_dim(name: str, kv_dims: set[str]) -> str:
    """Meaning of a symbolic dim name: ``batch``, ``encoder``, ``total``, ``past``, ``seq`` or ``other``."""
    return dims_meaning.classify(name, kv_dims)


def concat_axes(graph: OpGraph, inputs: set[str]) -> dict[str, int]:
    """The axis each of ``inputs`` is concatenated along (through casts), where a Concat takes it."""
    out: dict[str, int] = {}
    for name in inputs:
        concat = next((c for c, _ in dims_meaning.reached(graph, name) if c.op_type == OP.Concat), None)
        if concat is not None:
            axis = int(concat.attr("axis", 0))
            out[name] = axis + len(graph.tensors[name].dims or ()) if axis < 0 else axis
    return out


def dim_kinds(graph: OpGraph) -> dict[str, str]:
    """The kind of every dim a binding needs (derived names such as ``past + seq`` are left out: see mapping.dims)."""
    dims = dims_meaning.free_dims(graph)
    kv = set(kv_cache_inputs(graph))
    # a dim only KV-cache inputs carry is their past length: the axis the cache is concatenated along (the new
    # token's keys join it there: [B, H, T, D] on axis 2, a sequence-first [T, B, H, D] on axis 0); a cache with no
    # Concat (a static one, updated in place) keeps it off axis 0, its batch (torch.export names each input's batch
    # apart when the example does not tie them)
    joined = concat_axes(graph, kv)
    kv_dims = {d for d, places in dims.items() if places and all(
        p[0] in kv and (p[1] == joined[p[0]] if p[0] in joined else p[1] != 0) for p in places)}
    kinds = {name: classify_dim(name, kv_dims) for name in dims}
    ranged = dims_meaning.ranged_axes(graph) if "other" in kinds.values() else set()
    for name, kind in kinds.items():
        if kind == "other":
            kinds[name] = dims_meaning.positional_kind(graph, dims[name], ranged)
    # the positions of the new tokens (transformers' cache_position [seq], position_ids [batch, seq]): their last
    # axis is the new tokens' length, whatever the exporter named it (torch.export names each input's dims apart
    # when the example does not tie them: input_ids [s29, s46] beside cache_position [s80])
    for inp in graph.inputs:
        t = graph.tensors[inp]
        if "position" in inp.lower() and t.dtype.startswith("int") and t.dims and isinstance(t.dims[-1], str) \
                and kinds.get(t.dims[-1]) == "other" and "seq" in kinds.values():
            kinds[t.dims[-1]] = "seq"
    return kinds


def probe_bindings(graph: OpGraph, dims: dict[str, int] | None = None, seq: int = PROBE["seq"],
                   batch: int = PROBE["batch"]) -> dict[str, int]:
    """A distinct value for every symbolic input dim (see :data:`PROBE`).

    Dims that are sizes of the model take the value the graph's evidence gives them, or ``dims`` (the user's
    ``--dim``) where given; only lengths and the batch are probed with arbitrary sizes.
    """
    kinds = dim_kinds(graph)
    others = iter(PROBE["other"])
    past = 0 if graph.cache_branch is False else PROBE["past"]  # a merged decoder's no-cache branch: no past
    values = {"batch": batch, "seq": seq, "encoder": seq, "past": past, "total": past + seq}
    out: dict[str, int] = {}
    evidence = dims_meaning.evidence_dims(graph, kinds)
    fixed = implied_dims(graph)  # e.g. a KV cache's head size named as a dim (onnxruntime-genai)
    for name, kind in kinds.items():
        out[name] = fixed[name] if name in fixed else values[kind] if kind in values else evidence.get(
            name, next(others, 29))
    for name, value in (dims or {}).items():
        if kinds.get(name) == "other":
            out[name] = value
    return out


def probe_input_values(graph: OpGraph, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Values for small integer inputs: ones for masks, positions 0..n-1, zeros for ids."""
    values: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        t = graph.tensors[name]
        if t.dtype.startswith(("float", "bfloat")) or name not in shapes:
            continue
        shape = shapes[name]
        low = name.lower()
        if "mask" in low:
            values[name] = np.ones(shape, dtype=np.int64 if t.dtype == "int64" else np.int32)
        elif "position" in low and shape:
            values[name] = np.broadcast_to(np.arange(shape[-1]), shape).astype(np.int64)
        else:
            values[name] = np.zeros(shape, dtype=np.int64 if t.dtype == "int64" else np.int32)
        if t.dtype == "bool":
            values[name] = values[name].astype(bool)
    return values


def _step_inputs(ctx: Context) -> list[str]:
    """Integer inputs that feed a causal self-attention's queries: the tokens a decode step consumes."""
    steps = []
    for name in ctx.graph.inputs:
        if name in ctx.kv_inputs or ctx.graph.tensors[name].dtype.startswith(("float", "bfloat")):
            continue
        reach: set[str] = set()
        for c in ctx.consumers(name):
            reach.add(c.name)
            reach |= ctx.descendants(c, limit=100000)
        first = next((b.attention for b in sorted(ctx.blocks, key=lambda b: ctx.index(b.attention.score)
                                                   if b.attention else 0)
                      if b.attention is not None and b.attention.kind == "self" and b.attention.causal), None)
        if first is not None and (first.q_proj in reach or first.q_proj is None and first.score in reach):
            steps.append(name)
    return steps


def _probe_bind(graph: OpGraph, dims: dict[str, int] | None) -> tuple[dict[str, int], BoundGraph]:
    """The probe binding and its shapes; a graph too short for the probe's 13 positions (a strided conv stack
    that reduces 13 raw audio samples to no frame) is probed with :data:`LONG_SEQ_PROBE` instead, and a graph
    that runs only at batch 1 with batch 1 (torch.export specialises a batch-1 example's size inside the graph,
    in its reshapes, while the inputs still declare a symbolic batch). When all fail, the first probe's error is
    raised. A graph whose opaque dims (torch.export's ``s31``) bind only sequence-first is marked so
    (``graph.seq_first``)."""
    first = probe_bindings(graph, dims)
    layouts = [False, True] if any(re.fullmatch(r"s\d+", d) for d in dims_meaning.free_dims(graph)) else [False]
    for seq_first in layouts:  # opaque dims: batch-first, else sequence-first (nn.Transformer's default)
        graph.seq_first = seq_first
        candidates = [probe_bindings(graph, dims)]
        probes = [(LONG_SEQ_PROBE, PROBE["batch"]), (PROBE["seq"], 1), (LONG_SEQ_PROBE, 1)]
        if kv_cache_inputs(graph):  # a decode-step graph exported at one new token (torch.export bakes that 1 in)
            probes += [(1, PROBE["batch"]), (1, 1)]
        for seq, batch in probes:
            other = probe_bindings(graph, dims, seq, batch)
            if other not in candidates:
                candidates.append(other)
        for bindings in candidates:
            try:
                bound = bind(graph, bindings)
            except HwsimError:
                continue
            if seq_first or len(layouts) == 1 or not _rows_are_the_batch(bound, bindings):
                if any(kind == "seq" and bindings.get(name) == 1 for name, kind in dim_kinds(graph).items()):
                    graph.traced_length = 1  # it computes one new token whatever --seq says
                return bindings, bound
            break  # both layouts bind; batch-first puts the batch in the attention's rows: try sequence-first
    for seq_first in layouts:  # no probe binds: a length the graph's reshapes fix, in either layout
        graph.seq_first = seq_first
        traced = traced_length_bind(graph, dims)
        if traced is not None:
            return traced
    graph.seq_first = False
    return first, bind(graph, first)


def traced_length_bind(graph: OpGraph, dims: dict[str, int] | None) -> tuple[dict[str, int], BoundGraph] | None:
    """The probe at the one length a graph's own reshapes fix (TorchScript bakes the traced length into
    nn.MultiheadAttention's ``view(tgt_len, bsz * num_heads, head_dim)`` while the inputs keep a symbolic length),
    or None. The length follows from the first reshape that refuses the probe: its input is proportional to the
    length, so ``length = probe length x target elements / input elements``. Only the product of a fixed batch and
    a fixed length is in those counts, so a solution counts only when the self-attention then runs over that
    length (a softmax over [..., length, length]; without a softmax, a graph output with an axis of that length):
    a batch-1 trace probed at batch 2 would otherwise read as half the length at twice the batch. The probe's batch
    is tried, then 1. Sets ``graph.traced_length``, and ``graph.traced_batch`` when the reshapes fix the batch too
    (no other batch binds at that length)."""
    for batch in (PROBE["batch"], 1):
        seq = PROBE["seq"]
        for _ in range(3):  # a second reshape may fix another product (rare): follow it twice at most
            bindings = probe_bindings(graph, dims, seq, batch)
            try:
                bound = bind(graph, bindings)
            except FixedReshapeError as exc:
                src, out = exc.elements
                if not src or (seq * out) % src:
                    break
                length = seq * out // src
                if length < 1 or length == seq:
                    break
                seq = length
                continue
            except HwsimError:
                break
            if seq != PROBE["seq"] and runs_over(bound, graph, seq):
                graph.traced_length = seq
                try:
                    bind(graph, probe_bindings(graph, dims, seq, batch + 1))
                except HwsimError:
                    graph.traced_batch = batch
                return bindings, bound
            break
    return None


def runs_over(bound: BoundGraph, graph: OpGraph, length: int) -> bool:
    """Whether a binding's self-attention runs over ``length`` positions: a softmax input of rank >= 2 whose last
    two axes are both ``length``; in a graph without such a softmax, an output with an axis of that length."""
    softmax = [bound.shapes.get(n.inputs[0]) for n in graph.nodes if op_table.computes(n.op_type) == OP.Softmax]
    softmax = [s for s in softmax if s is not None and len(s) >= 2]
    if softmax:
        return any(s[-1] == s[-2] == length for s in softmax)
    return any(shape and length in shape for shape in (bound.shapes.get(o) for o in graph.outputs))


def _rows_are_the_batch(bound: BoundGraph, bindings: dict[str, int]) -> bool:
    """Whether the attention scores of a binding have the probe's batch as their rows and not its length: an
    opaque-dim graph read batch-first whose tokens are really sequence-first ([T, B] ids, no Range or Trilu to
    tell), where the softmax then runs over the batch. Rows: the second-to-last axis of a rank-3+ Softmax input."""
    values = set(bindings.values())
    batch, seqs = PROBE["batch"], {PROBE["seq"], LONG_SEQ_PROBE}
    if batch not in values or not values & seqs:
        return False
    rows = [bound.shapes.get(n.inputs[0]) for n in bound.graph.nodes if op_table.computes(n.op_type) == OP.Softmax]
    rows = [r[-2] for r in rows if r is not None and len(r) >= 3]
    return bool(rows) and all(r == batch for r in rows)


def recognise(graph: OpGraph, dims: dict[str, int] | None = None, causal: bool | None = None) -> TransformerIR:
    """Find the transformer structure of ``graph``.

    ``dims``: the user's bindings of model-size dims; ``causal``: the user's ``--causal``/``--no-causal``
    (see :func:`mapping.passes.causality.override`).
    """
    try:
        bindings, shapes_only = _probe_bind(graph, dims)
    except HwsimError as exc:
        kinds = dim_kinds(graph)
        known = {**dims_meaning.evidence_dims(graph, kinds), **implied_dims(graph)}
        guessed = [d for d, k in kinds.items() if k == "other" and d not in known and d not in (dims or {})]
        if not guessed:
            raise
        names = ", ".join(guessed)
        # the probe's guess for those dims is what failed (an image size of 7 pixels gives no patch), so the reshape
        # error's advice (re-export) does not apply: name the node and the dims only
        where = f"node '{exc.node}' cannot reshape its input at the probe's sizes" if isinstance(exc, FixedReshapeError) \
            else str(exc).removeprefix(f"{graph.path}: ")
        raise HwsimError(f"{graph.path}: the graph does not say what its dimension(s) {names} are (sizes of the model, "
                         f"not lengths; {where}): bind them with --dim, e.g. --dim {guessed[0]}=N") from None
    values = probe_input_values(graph, shapes_only.shapes)
    bound = bind(graph, bindings, values) if values else shapes_only
    kv_inputs = kv_cache_inputs(graph)
    ctx = Context(bound, set(kv_inputs))
    contrib_attention.run(ctx)  # fused onnxruntime attention ops first: their projections are theirs
    attention.run(ctx)
    causality.override(ctx, causal)
    norms.run(ctx)
    moe.run(ctx)
    mixers.run(ctx)  # before the MLPs: a mixer's in and out projections around its gating look like one
    mlp.run(ctx)
    moe.mark_experts(ctx)
    residuals.run_rotary_tables(ctx)  # a sin / cos table's lookup feeds the attention, not the hidden states
    embeddings.run(ctx)
    heads.run(ctx)
    residuals.run_rotary(ctx)
    residuals.run_masks(ctx)
    residuals.run_epilogues(ctx)
    dequant.run(ctx)
    residuals.run(ctx)
    residuals.run_epilogues(ctx)
    dequant.run(ctx)
    residuals.run(ctx)  # adds whose inputs only now have owners (through quantize/dequantize pairs)
    residuals.run_epilogues(ctx)
    dequant.run(ctx)
    layers.run(ctx)
    return _summarise(ctx, kv_inputs)


def _most_common(values: list) -> object | None:
    values = [v for v in values if v is not None]
    return Counter(values).most_common(1)[0][0] if values else None


def _summarise(ctx: Context, kv_inputs: list[str]) -> TransformerIR:
    blocks: list[Block] = ctx.blocks
    # a layer per self-attention, per token mixer of another kind (LFM2's short convolutions), and per cross
    # attention before any self-attention (Perceiver's)
    opened = {(b.stack, b.layer) for b in blocks if b.stack and b.layer is not None and (
        b.attention is not None and b.attention.kind == "self" or b.kind == "mixer" or b.attrs.get("opens_layer"))}
    stacks = Counter(stack for stack, _ in opened)
    layers_by_stack = dict(stacks)
    if "encoder" in stacks and "decoder" in stacks:
        arch = "encoder-decoder"
    elif "decoder" in stacks:
        # a seq2seq decoder file (optimum's decoder_model / decoder_with_past): cross attention over an encoder
        # that lives in another file
        arch = "encoder-decoder" if any(b.attention is not None and b.attention.kind == "cross" for b in blocks) \
            else "decoder-only"
    elif "encoder" in stacks:
        arch = "encoder-only"
    else:
        arch = "none"
    selfs = [b.attention for b in blocks if b.attention is not None and b.attention.kind == "self"]
    mlps = [b for b in blocks if b.kind == "mlp"]
    mlps = [b for b in mlps if b.attrs.get("expert")] or mlps  # an MoE model's d_ff is its experts'
    norms_ = [b for b in blocks if b.kind == "norm"]
    vocab = _most_common([b.attrs.get("rows") for b in blocks if b.attrs.get("kind") == "token"]) or \
        _most_common([b.attrs.get("vocab") for b in blocks if b.kind == "lm_head"])
    d_model = _most_common([b.attrs.get("d_model") for b in mlps]) or \
        _most_common([a.heads * a.head_dim for a in selfs])
    unrecognised = []
    owner = ctx.owner
    for node in ctx.graph.nodes:
        if node.name in owner:
            continue
        outs = [o for o in node.outputs if o]
        if all(ctx.klass.get(o) in ("const", "weight") for o in outs) or node.op_type in _STRUCTURAL:
            continue
        unrecognised.append(node.name)
    ir = TransformerIR(
        architecture=arch, blocks=blocks, unrecognised=unrecognised, d_model=d_model,
        d_ff=_most_common([b.attrs.get("d_ff") for b in mlps]), vocab=vocab,
        heads=_most_common([a.heads for a in selfs]), kv_heads=_most_common([a.kv_heads for a in selfs]),
        head_dim=_most_common([a.head_dim for a in selfs]),
        activation=_most_common([b.attrs.get("activation") for b in mlps]),
        gated_mlp=_most_common([b.attrs.get("gated") for b in mlps]),
        norm=_most_common([b.attrs.get("norm") for b in norms_]), layers=layers_by_stack,
        kv_inputs=list(kv_inputs), causal=causality.summary(selfs), moe=moe.summary(blocks))
    ir.step_inputs = _step_inputs(ctx) if arch in ("decoder-only", "encoder-decoder") else []
    return ir
