"""Mixture-of-experts layers: the router (gate linear -> softmax -> TopK) and the experts it dispatches to.

A router is a TopK over the output of a linear layer with one column per expert (through softmax/sigmoid and
casts): ``E`` = that width, ``top_k`` = the TopK's ``k``. The routing arithmetic after it (one-hot of the chosen
experts, NonZero token lists, gathers, the weighted scatter-add of expert outputs) joins the ``router`` block.
Expert MLPs are the MLPs whose input rows are gathered with those token lists; an MLP of the same layer fed
with every token is a shared expert. Experts stored as one stacked weight per projection ([E, out, in]) whose
rows are gathered per token-expert pair by the chosen indices, then batched products (transformers 5's
``batched_mm`` experts: GPT-OSS, OLMoE, GraniteMoE...), are one ``mlp`` block holding all E experts
(``attrs["stacked"] = E``). Sizes that depend on the routing follow
:func:`mapping.data_dependent._routing_nonzero` (balanced routing). onnxruntime's fused ``MoE`` / ``QMoE`` node is
one such stacked expert block, behind a router block of the linear that feeds its logits.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from mapping import op_table
from mapping.ir import Block
from mapping.onnx_graph import Node
from mapping.op_table import OP
from mapping.passes.context import Context

#: Ops between the router linear and its TopK.
_SCORE_OPS = op_table.names(joins="moe_score")
#: Ops of the dispatch/combine arithmetic that belong to the router block.
_ROUTING_OPS = op_table.names(joins="moe_routing")
#: Ops between a stacked-expert up product and its down product (the MLP's, and the batched products' views).
_STACKED_MLP_OPS = op_table.names(joins="mlp") | {OP.Squeeze, OP.Unsqueeze}
_GATHERS = (OP.Gather, OP.GatherND)
_REPEAT_OPS = {OP.Tile, OP.Expand, OP.Flatten, OP.Reshape, OP.Unsqueeze}


def _router_linear(ctx: Context, topk_input: str) -> str | None:
    found = ctx.walk_back(topk_input, _SCORE_OPS, set(ctx.linear), limit=12)
    return found[0].name if found else None


def _contrib_moe(ctx: Context) -> None:
    """onnxruntime's fused MoE / QMoE node (onnxruntime-genai's MoE exports): the linear that feeds its router logits
    (through score ops) is a ``router`` block of the node's ``E`` experts and ``k``; the node, which runs the experts'
    MLPs (mapping.contrib_costs._moe), one stacked expert block (``attrs["stacked"] = E``)."""
    for node in ctx.graph.nodes:
        if node.op_type not in (OP.MoE, OP.QMoE) or node.name in ctx.owner:
            continue
        experts, top_k = int(ctx.bound.shapes[node.inputs[2]][0]), int(node.attr("k", 1))
        d = int(ctx.bound.shapes[node.inputs[0]][-1])
        router = _router_linear(ctx, node.inputs[1])
        if router is None or not 1 <= top_k < experts:
            continue
        block = ctx.add(Block("router", "router", None, [], attrs={"experts": experts, "top_k": top_k, "d_model": d}),
                        [router])
        between = (ctx.ancestors([node.inputs[1]], stop={router}) - {router}) & ctx.descendants(ctx.nodes[router],
                                                                                                 limit=40)
        ctx.claim(block, sorted(n for n in between if n not in ctx.owner))
        act = str(node.attr("activation_type", "relu"))
        gated = act in ("swiglu", "geglu")
        fc2 = ctx.bound.shapes[node.inputs[5 if node.op_type == OP.QMoE else 4]]
        d_ff = next((int(x) for x in fc2[1:] if int(x) != d), d) if node.op_type == OP.MoE else None
        activation = {"swiglu": "silu", "geglu": "gelu_tanh", "relu2": "relu"}.get(act, act)
        ctx.add(Block("expert", "mlp", None, [], attrs={
            "activation": activation, "gated": gated, "d_model": d, "d_ff": d_ff, "up": [node.name],
            "down": node.name, "expert": True, "stacked": experts, "fused": node.op_type}), [node.name])


def run(ctx: Context) -> None:
    """Add a ``router`` block per expert choice over a per-expert linear, claiming the routing arithmetic.

    The choice is a TopK of ``k``, or ``k`` ArgMaxes each over the scores with the earlier choices masked
    (PhiMoE's sparsemixer: ArgMax, scatter -inf into it, ArgMax again) whose indices reach the dispatch. When
    several TopKs read the same router linear (DeepSeek-V3's group-limited routing: a TopK over each group's
    scores, a TopK of groups, the losing groups' scores masked), the expert choice is the last one; the others
    are routing arithmetic before it and join its block."""
    _contrib_moe(ctx)
    chosen: dict[str, tuple[list, int]] = {}
    argmaxes: dict[str, list] = {}
    for node in ctx.graph.nodes:
        if node.name in ctx.owner or node.op_type not in (OP.TopK, OP.ArgMax):
            continue
        router = _router_linear(ctx, node.inputs[0])
        if router is None:
            continue
        if node.op_type == OP.ArgMax:
            if _dispatches(ctx, node):
                argmaxes.setdefault(router, []).append(node)
            continue
        k = ctx.bound.values.get(node.inputs[1]) if len(node.inputs) > 1 else None
        if k is not None:
            chosen[router] = ([node], int(np.asarray(k).reshape(-1)[0]))
    for router, nodes in argmaxes.items():
        chosen.setdefault(router, (nodes, len(nodes)))
    for router, (nodes, top_k) in sorted(chosen.items(), key=lambda item: item[1][0][-1].index):
        if any(n.name in ctx.owner for n in nodes):
            continue
        experts = ctx.linear[router][1]
        if not 1 <= top_k < experts:
            continue
        block = ctx.add(Block("router", "router", None, [], attrs={"experts": experts, "top_k": top_k,
                                                                    "d_model": ctx.linear[router][0]}), [router])
        # the score path from the router to the choice (not what feeds the router: a quantized router's scale
        # Mul also reads the activation scale of its input)
        between = (ctx.ancestors([n.inputs[0] for n in nodes], stop={router}) - {router}) & ctx.descendants(
            ctx.nodes[router], limit=400)
        ctx.claim(block, sorted(between | {n.name for n in nodes}, key=ctx.index))
        # the dispatch: forward from the choice through routing ops, not into linear layers
        frontier = [o for n in nodes for o in n.outputs if o]
        seen: set[str] = set()
        while frontier and len(seen) < 600:
            for c in ctx.consumers(frontier.pop()):
                if c.name in seen or c.name in ctx.linear or c.op_type not in _ROUTING_OPS:
                    continue
                seen.add(c.name)
                if c.op_type in (OP.ScatterElements, OP.ScatterND):
                    continue  # the combine: the end of the routing
                frontier.extend(o for o in c.outputs if o)
        ctx.claim(block, sorted(n for n in seen if n not in ctx.owner))
        _stacked_experts(ctx, block)
    _claim_shared_gates(ctx)


def _gathered(ctx: Context, tensor: str, experts: int) -> tuple[Node, tuple[int, int]] | None:
    """The Gather of a stacked expert weight [E, a, b] by run-time indices that ``tensor`` is (through
    Reshape / Unsqueeze / Squeeze), and the per-expert (a, b)."""
    for _ in range(4):
        p = ctx.producer(tensor)
        if p is None:
            return None
        if p.op_type in _GATHERS:
            w = p.inputs[0]
            shape = ctx.bound.shapes.get(w) or ()
            if ctx.klass.get(w) == "weight" and len(shape) == 3 and int(shape[0]) == experts and ctx.is_act(p.inputs[1]):
                return p, (int(shape[1]), int(shape[2]))
            return None
        if p.op_type not in (OP.Reshape, OP.Unsqueeze, OP.Squeeze):
            return None
        tensor = p.inputs[0]
    return None


def _take(ctx: Context, block: Block, names: list[str]) -> None:
    """Claim ``names`` for ``block``, taking them from a router block that claimed them as routing."""
    for name in names:
        old = ctx.owner.get(name)
        if old is not None and old is not block and old.kind == "router":
            old.nodes.remove(name)
            del ctx.owner[name]
    ctx.claim(block, names)


def _stacked_experts(ctx: Context, router: Block) -> None:
    """The batched products over gathered stacked expert weights after ``router``: (K, N) of each product from
    the weight's per-expert shape and which operand it is (``x @ W[ids]``: [in, out]; ``W[ids] @ x``: [out,
    in]); an up product reads d_model, a down product writes it, with the MLP's nonlinearity between."""
    experts, d = router.attrs["experts"], router.attrs["d_model"]
    start = ctx.index(router.nodes[0])
    prods: dict[str, tuple[int, int, Node]] = {}
    for node in ctx.graph.nodes:
        if node.index <= start or node.op_type != OP.MatMul or node.name in ctx.owner or len(ctx.act_inputs(node)) < 2:
            continue
        right, left = _gathered(ctx, node.inputs[1], experts), _gathered(ctx, node.inputs[0], experts)
        if right is not None:
            prods[node.name] = (right[1][0], right[1][1], right[0])
        elif left is not None:
            prods[node.name] = (left[1][1], left[1][0], left[0])
    for name, (_k, n_out, gather) in sorted(prods.items(), key=lambda item: ctx.index(item[0])):
        if n_out != d or name in ctx.owner:
            continue
        down = ctx.nodes[name]
        # its up product: reads d_model, gathers by the same expert indices, comes before it (the expert width
        # may equal d_model: GLM-4.5's 64 x 64 experts in a tiny config)
        ups = {u for u, (k, _, g) in prods.items() if k == d and u != name and g.inputs[1] == gather.inputs[1]
               and ctx.index(u) < ctx.index(name)}
        x = next(i for i in down.inputs if i != gather.outputs[0] and _gathered(ctx, i, experts) is None)
        found = [u for u in ctx.walk_back(x, _STACKED_MLP_OPS, ups, limit=60) if u.name not in ctx.owner]
        if len(found) != 1:
            continue
        up = found[0]
        path = (ctx.ancestors([x], stop={up.name}) & ctx.descendants(up)) - {up.name}
        # (the router's dispatch walk may have claimed the bias adds and the gate's slices: they are the MLP's)
        path = {p for p in path if ctx.nodes[p].op_type in _STACKED_MLP_OPS and ctx.owner.get(p, router) is router}
        ops = {ctx.nodes[p].op_type for p in path}
        nonlinear = ops & op_table.names(joins="mlp_nonlinear")
        if not nonlinear:
            continue
        from mapping.passes.mlp import _activation

        gated = bool(ops & {OP.Split, OP.Slice}) and OP.Mul in ops
        width = prods[up.name][1]
        # the gathered biases (Add of a GatherND of [E, out]) on the way
        biases = {p.name for t in path for i in ctx.nodes[t].inputs if (p := ctx.producer(i)) is not None
                  and p.op_type in _GATHERS and ctx.klass.get(p.inputs[0]) == "weight"}
        after = [c.name for c in ctx.consumers(down.outputs[0]) if c.op_type in (OP.Squeeze, OP.Add)]
        for c in list(after):
            biases |= {p.name for i in ctx.nodes[c].inputs if (p := ctx.producer(i)) is not None
                       and p.op_type in _GATHERS and ctx.klass.get(p.inputs[0]) == "weight"}
        # the token rows repeated top_k times for the up product (repeat_interleave: Tile / Expand and views)
        up_gather = prods[up.name][2].outputs[0]
        rows = [i for i in up.inputs if i != up_gather and _gathered(ctx, i, experts) is None]
        repeat = {n for n in ctx.ancestors(rows, limit=8) if ctx.nodes[n].op_type in _REPEAT_OPS}
        repeat = {n for n in repeat if ctx.owner.get(n, router) is router}
        block = ctx.add(Block("expert", "mlp", None, [], attrs={
            "activation": _activation(ops), "gated": gated, "d_model": d, "d_ff": width // 2 if gated else width,
            "up": [up.name], "down": name, "expert": True, "stacked": experts}), [])
        _take(ctx, block, sorted({prods[up.name][2].name, gather.name, up.name, name} | path | biases | repeat,
                              key=ctx.index))
        _release_after_combine(ctx, router, down)


def _release_after_combine(ctx: Context, router: Block, down: Node) -> None:
    """Give back what the router's dispatch walk claimed after the combine (the ReduceSum over the top-k
    weighted expert outputs): with no scatter to stop it, it had walked on into the residual add and the shared
    expert's sum, and the next layer's MLPs then read as fed by routing."""
    queue = deque(o for o in down.outputs if o)
    seen: set[str] = set()
    while queue and len(seen) < 12:
        for c in ctx.consumers(queue.popleft()):
            if c.name in seen:
                continue
            seen.add(c.name)
            if c.op_type == OP.ReduceSum:
                for n in ctx.descendants(c, limit=2000):
                    if ctx.owner.get(n) is router:
                        router.nodes.remove(n)
                        del ctx.owner[n]
                return
            queue.extend(o for o in c.outputs if o)


def _dispatches(ctx: Context, argmax: Node) -> bool:
    """An ArgMax's indices select experts: they reach a OneHot or NonZero (the per-expert token lists) through
    routing ops; a greedy decoder's ArgMax over the logits reaches none."""
    frontier = deque(o for o in argmax.outputs if o)  # breadth first: the dispatch is a few ops away
    seen: set[str] = set()
    while frontier and len(seen) < 40:
        for c in ctx.consumers(frontier.popleft()):
            if c.op_type in (OP.OneHot, OP.NonZero):
                return True
            if c.name not in seen and c.op_type in _ROUTING_OPS and c.name not in ctx.linear:
                seen.add(c.name)
                frontier.extend(o for o in c.outputs if o)
    return False


def _claim_shared_gates(ctx: Context) -> None:
    """A shared expert's gate (Qwen-MoE: linear to one column, then sigmoid) joins the router before it."""
    routers = sorted((b for b in ctx.blocks if b.kind == "router"), key=lambda b: ctx.index(b.nodes[0]))
    if not routers:
        return
    for name, (_, n) in ctx.linear.items():
        if n != 1 or name in ctx.owner:
            continue
        sig = [c for c in ctx.consumers(ctx.nodes[name].outputs[0]) if c.op_type == OP.Sigmoid]
        before = [b for b in routers if ctx.index(b.nodes[0]) < ctx.index(name)]
        if sig and before:
            ctx.claim(before[-1], [name] + [c.name for c in sig])


def mark_experts(ctx: Context) -> None:
    """Rename the MLPs that routers feed ``expert`` (attrs ``expert``: index in the layer) and claim the
    per-expert gathers and scatters they sit between."""
    routers = [b for b in ctx.blocks if b.kind == "router"]
    if not routers:
        return
    routing = {n for b in routers for n in b.nodes}
    # not past another block (the layer's norm: a shared expert reads the normed hidden states, whose ancestors
    # reach the previous layer's routing in a small model)
    others = {n for n, b in ctx.owner.items() if b.kind != "router"}
    for b in ctx.blocks:
        if b.kind != "mlp":
            continue
        up = ctx.nodes[b.attrs["up"][0]]
        if ctx.ancestors([up.inputs[0]], limit=30, stop=others) & routing:
            b.name = "expert"
            b.attrs["expert"] = True
            # its weights sliced out of the stacked experts (Gather by the hit expert's index, DBRX) are its own
            names = [b.attrs["down"], *b.attrs["up"]]
            slices = [n for name in names for n in ctx.ancestors([ctx.nodes[name].inputs[1]], limit=4, data_only=False)
                      if ctx.nodes[n].op_type in (OP.Gather, OP.Transpose) and ctx.owner.get(n) in routers]
            _take(ctx, b, sorted(set(slices), key=ctx.index))


def summary(blocks: list[Block]) -> dict:
    """``{experts, top_k, layers, expert_d_ff, shared_experts}`` of the MoE layers ({} for a dense model)."""
    routers = [b for b in blocks if b.kind == "router"]
    if not routers:
        return {}
    experts = [b for b in blocks if b.kind == "mlp" and b.attrs.get("expert")]
    found = sum(b.attrs.get("stacked", 1) for b in experts)
    moe_layers = {(b.stack, b.layer) for b in routers}
    shared = [b for b in blocks if b.kind == "mlp" and not b.attrs.get("expert") and (b.stack, b.layer) in moe_layers]
    ff = sorted({b.attrs.get("d_ff") for b in experts if b.attrs.get("d_ff")})
    return {"experts": routers[0].attrs["experts"], "top_k": routers[0].attrs["top_k"], "layers": len(routers),
            "experts_found": found, "expert_d_ff": ff[0] if len(ff) == 1 else ff,
            "shared_experts": len(shared) // max(1, len(moe_layers))}
