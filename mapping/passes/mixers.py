"""Token mixers other than attention: the gated short convolution of hybrid models (LFM2), and state-space /
linear-attention mixers (Mamba-2 in Granite-4 / Bamba, Gated DeltaNet in Qwen3-Next) recognised by their causal
depthwise convolution.

A short-conv mixer is ``in_proj`` (a linear d -> 3d) whose output is split into B, C and x, ``B * x`` through a
depthwise causal Conv (one group per channel, kernel k, padded on the left and sliced back to the length),
``C * conv``, then ``out_proj`` (d -> d). A state-space or linear-attention mixer has the same depthwise Conv after
its input projection(s), then a scan or chunked recurrence of many small ops, then its output projection: the
mixer block holds every unowned op between them (``attrs["mixer"] = "ssm"``). Either is a ``mixer`` block, and
the layers pass opens a layer for it as it does for a self-attention: these are layers of the decoder.
"""

from __future__ import annotations

from collections import deque

from mapping.ir import Block
from mapping.onnx_graph import Node
from mapping.op_table import OP
from mapping.passes.context import Context

#: Ops between the in / out projections and the depthwise convolution of a short-conv mixer.
_CONV_PATH = {OP.Mul, OP.Transpose, OP.Split, OP.Slice, OP.Reshape, OP.Squeeze, OP.Unsqueeze, OP.Cast}
#: Activations a state-space mixer may apply before its convolution.
_ACT = {OP.Sigmoid, OP.Softplus, OP.Pad, OP.Concat}


def _depthwise(ctx: Context, node: Node) -> tuple[int, int] | None:
    """(channels, kernel) of a causal 1-D depthwise Conv over an activation with a weight [C, 1, k], else None."""
    if node.op_type != OP.Conv or len(node.inputs) < 2 or not ctx.is_act(node.inputs[0]):
        return None
    if ctx.klass.get(node.inputs[1]) != "weight":
        return None
    w = ctx.bound.shapes.get(node.inputs[1]) or ()
    if len(w) != 3 or int(w[1]) != 1 or int(node.attr("group", 1)) != int(w[0]) or int(w[0]) < 2:
        return None
    return (int(w[0]), int(w[2])) if _causal(ctx, node, int(w[2])) else None


def _causal(ctx: Context, conv: Node, kernel: int) -> bool:
    """Whether output position t of ``conv`` (stride 1) reads no input after t: its left padding is at least
    kernel - 1, the Conv's own (``pads``, or ``auto_pad`` SAME_LOWER / SAME_UPPER's split of kernel - 1) plus a Pad
    before it on the time axis, or its input prepends a state (a Concat: a cached step's conv state). A Conformer's
    convolution module is padded (k - 1) / 2 on each side, sees the future, and is no mixer of a causal stack.
    Mamba / LFM2 / Gated DeltaNet pad k - 1 on both sides and slice the first length positions back."""
    auto = str(conv.attr("auto_pad", "NOTSET"))
    dilation = int((conv.attr("dilations") or [1])[0])
    span = dilation * (kernel - 1)
    left = {"SAME_LOWER": (span + 1) // 2, "SAME_UPPER": span // 2}.get(auto, int((conv.attr("pads") or [0, 0])[0]))
    src = ctx.producer(conv.inputs[0])
    while src is not None and src.op_type in (OP.Cast, OP.Identity):
        src = ctx.producer(src.inputs[0])
    if src is not None and src.op_type == OP.Concat:
        return True
    if src is not None and src.op_type == OP.Pad and len(src.inputs) > 1:
        pads = ctx.bound.values.get(src.inputs[1])
        rank = len(ctx.bound.shapes.get(src.inputs[0]) or ())
        axes = ctx.bound.values.get(src.inputs[3]) if len(src.inputs) > 3 and src.inputs[3] else None
        axes = list(range(rank)) if axes is None else [int(a) % rank for a in axes.reshape(-1)] if rank else []
        if pads is not None and rank - 1 in axes and pads.size == 2 * len(axes):  # begins then ends, per axis
            left += int(pads.reshape(-1)[axes.index(rank - 1)])
    return left >= span


def run(ctx: Context) -> None:
    """Add a ``mixer`` block for every gated short convolution between two unowned linear layers (``mixer:
    short_conv``), and for every other mixer around a depthwise causal convolution (``mixer: ssm``)."""
    for node in ctx.graph.nodes:
        dw = _depthwise(ctx, node)
        if dw is None or node.name in ctx.owner:
            continue
        channels, kernel = dw
        ins = {n.name for n in ctx.walk_back(node.inputs[0], _CONV_PATH, set(ctx.linear), limit=20)}
        out = ctx.first_linear_after(node.outputs, _CONV_PATH)
        in_proj = ctx.nodes[next(iter(ins))] if len(ins) == 1 else None
        if in_proj is None or out is None or in_proj.name in ctx.owner or out.name in ctx.owner or \
                ctx.linear[in_proj.name][1] != 3 * channels:  # not LFM2's B, C and x of the conv's width
            _ssm(ctx, node, dw)
            continue
        path = (ctx.ancestors([out.inputs[0]], stop={in_proj.name}) & ctx.descendants(in_proj)) - {in_proj.name}
        path = {p for p in path if p not in ctx.owner and (ctx.nodes[p].op_type in _CONV_PATH or p == node.name)}
        ctx.add(Block("short_conv", "mixer", None, [], attrs={"mixer": "short_conv", "d_model": ctx.linear[in_proj.name][0],
                                                                "channels": channels, "kernel": kernel}),
                sorted({in_proj.name, out.name} | path, key=ctx.index))


def _ssm(ctx: Context, conv: Node, dw: tuple[int, int]) -> None:
    """A state-space / linear-attention mixer around the depthwise ``conv``: its input projections are the linear
    layers the conv's input comes from (through views, slices, activations), its output projection the first
    linear reached forwards from the conv; every unowned op between them joins the block."""
    found = ctx.walk_back(conv.inputs[0], _CONV_PATH | _ACT, set(ctx.linear), limit=40)
    if not found or any(n.name in ctx.owner for n in found):
        return
    queue = deque(o for o in conv.outputs if o)
    seen: set[str] = set()
    out: Node | None = None
    while queue and len(seen) < 3000 and out is None:
        for c in ctx.consumers(queue.popleft()):
            if c.name in seen:
                continue
            seen.add(c.name)
            if c.name in ctx.linear:
                out = c
                break
            queue.extend(o for o in c.outputs if o)
    if out is None or out.name in ctx.owner:
        return
    ins = {n.name for n in found}
    # every input projection of the layer: the linears reading what the first one reads (Qwen3-Next's in_proj_ba)
    x = found[0].inputs[0]
    ins |= {c.name for c in ctx.consumers(x) if c.name in ctx.linear and c.name not in ctx.owner}
    start = set().union(*(ctx.descendants(ctx.nodes[n], limit=20000) for n in ins))
    between = (ctx.ancestors([i for i in out.inputs if i], limit=20000, stop=ins) & start) - ctx.owner.keys()
    if conv.name not in between:
        return
    channels, kernel = dw
    ctx.add(Block("ssm_mixer", "mixer", None, [], attrs={"mixer": "ssm", "d_model": ctx.linear[out.name][1],
                                                           "channels": channels, "kernel": kernel}),
            sorted(ins | between | {out.name}, key=ctx.index))
