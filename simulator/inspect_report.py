"""What ``hwsim inspect`` prints: a workload summarised per block (table) or in full (JSON)."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from hardware.dtypes import tensor_bytes
from hardware.errors import HwsimError
from mapping.op_costs import OpCost
from mapping.quant import formats, logical_elements, weight_sources
from mapping.workloads import Model, Workload


def _cut(text: str, width: int) -> str:
    """``text`` in ``width`` characters: long names keep their start and their end, with ``~`` between (a
    node name's start says which layer, its end which op: neither may go)."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "~" + text[len(text) - (width - 1 - head):]


def _si(value: float, unit: str = "") -> str:
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {prefix}{unit}".rstrip()
    return f"{value:.0f} {unit}".rstrip()


def _bytes(value: float) -> str:
    for factor, prefix in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {prefix}"
    return f"{value:.0f} B"


def _uniform(graph: Any, name: str) -> bool:
    """Whether a weight holds one value throughout (a fresh norm's ones, a bias's zeros): an exporter that merges
    equal constants (the dynamo exporter's optimizer) shares such a tensor between layers that do not tie weights."""
    try:
        values = graph.array(name)
    except HwsimError:  # no data here (a graph-only file's external weights): cannot tell
        return False
    return values.size > 1 and bool((values == values.reshape(-1)[0]).all())


def block_rows(model: Model, work: Workload) -> list[dict]:
    """One row per block (in graph order), plus one for ops no block owns."""
    model = model.for_phase(work.phase)
    rows: OrderedDict[str, dict] = OrderedDict()
    weight_of: dict[str, set[str]] = {}
    nodes = {n.name: n for n in model.graph.nodes}
    for op in work.ops:
        key = op.block or "(unrecognised)"
        row = rows.setdefault(key, {"block": key, "kind": op.block_kind or "other", "layer": op.layer, "ops": 0,
                                    "flops": 0.0, "matmul_flops": 0.0, "weight_bytes": 0, "activation_bytes": 0,
                                    "kv_bytes": 0, "bytes": 0, "largest": ""})
        if op.category in ("view", "folded"):
            continue
        node = op.node or op.name
        row["ops"] += 0 if node in row.setdefault("_nodes", set()) else 1  # a fused attention's parts: one op
        row["_nodes"].add(node)
        row["flops"] += op.flops
        if op.category in ("matmul", "conv"):
            row["matmul_flops"] += op.flops
        row["weight_bytes"] += op.weight_bytes
        row["activation_bytes"] += op.act_read_bytes + op.act_write_bytes
        row["kv_bytes"] += op.kv_read_bytes + op.kv_write_bytes
        row["bytes"] += op.bytes
        if op.matmul is not None and op.flops >= row.get("_largest_flops", 0):
            row["_largest_flops"] = op.flops
            mm = op.matmul
            row["largest"] = (f"{mm.batch}x" if mm.batch > 1 else "") + f"[{mm.m}x{mm.k}]@[{mm.k}x{mm.n}]"
        for i in nodes[op.node or op.name].inputs:
            if i:  # the weights it reads, directly or through a dequantize / transpose of them
                weight_of.setdefault(key, set()).update(weight_sources(model.graph, i))
    owner: dict[str, str] = {}  # a weight read by several blocks (a tied LM head) is counted in the first one
    for key, row in rows.items():
        row.pop("_largest_flops", None)
        row.pop("_nodes", None)
        mine = sorted(weight_of.get(key, ()))
        for w in mine:
            owner.setdefault(w, key)
        row["params"] = sum(logical_elements(model.graph, w) for w in mine if owner[w] == key)
        row["shares_weights_of"] = sorted({owner[w] for w in mine if owner[w] != key and not _uniform(model.graph, w)})
        row["weight_stored_bytes"] = sum(_stored(model.graph, w) for w in mine)
        row["arithmetic_intensity"] = row["flops"] / row["bytes"] if row["bytes"] else 0.0
    return [r for r in rows.values() if r["ops"] or r["params"] or r["shares_weights_of"]]


def _stored(graph, name: str) -> int:  # noqa: ANN001 - OpGraph
    t = graph.tensors[name]
    return tensor_bytes(math.prod(int(d) for d in t.dims or ()), t.dtype)


def op_dict(op: OpCost) -> dict:
    """One op as JSON."""
    out = {
        "name": op.name, "op": op.op_type, "category": op.category, "block": op.block, "layer": op.layer,
        "role": op.role, "input_shapes": [list(s) for s in op.input_shapes],
        "output_shapes": [list(s) for s in op.output_shapes], "flops": op.flops, "bytes": op.bytes,
        "weight_bytes": op.weight_bytes, "activation_read_bytes": op.act_read_bytes,
        "activation_write_bytes": op.act_write_bytes, "kv_read_bytes": op.kv_read_bytes,
    }
    if op.note:
        out["note"] = op.note
    if op.matmul is not None:
        out["matmul"] = {"batch": op.matmul.batch, "m": op.matmul.m, "k": op.matmul.k, "n": op.matmul.n}
    return out


def inspect_dict(model: Model, work: Workload) -> dict:
    """The full ``inspect --json`` object."""
    model = model.for_phase(work.phase)
    ir = model.ir
    summary = ir.summary()
    return {
        "model": model.path,
        "phase": work.phase,
        "batch": work.batch,
        "seq": work.seq,
        "context": work.context,
        "bindings": work.bindings,
        "traced_length": model.graph.traced_length,
        "precision": {"weights": work.precision.weights, "activations": work.precision.activations,
                      "kv_cache": work.precision.kv_cache},
        **summary,
        "moe": work.moe,
        "params": work.params,
        "flops": work.flops,
        "matmul_flops": work.matmul_flops,
        "weight_bytes": work.weight_bytes,
        "weight_formats": formats(model.graph),
        "activation_bytes": work.activation_bytes,
        "kv_cache_bytes": work.kv_cache_bytes,
        "kv_write_bytes": work.kv_write_bytes,
        "bytes_moved": work.bytes_moved,
        "arithmetic_intensity": work.flops / work.bytes_moved if work.bytes_moved else 0.0,
        "blocks": block_rows(model, work),
        "ops": [op_dict(o) for o in work.ops if o.category not in ("view", "folded")],
        "unrecognised": [{"name": n, "op": model._node(n).op_type} for n in ir.unrecognised],
    }


def inspect_table(model: Model, work: Workload, show_ops: bool = False) -> str:
    """A readable report: model facts, one row per block, totals, and what was not recognised."""
    model = model.for_phase(work.phase)
    ir = model.ir
    lines = []
    att = f"heads {ir.heads}, kv_heads {ir.kv_heads}, head_dim {ir.head_dim}" if ir.heads else "none found"
    stacks = ", ".join(f"{k} {v}" for k, v in ir.layers.items()) or "0"
    lines.append(f"model        {model.path}")
    lines.append(f"architecture {ir.architecture}: layers {stacks}; d_model {ir.d_model}, d_ff {ir.d_ff}, "
                 f"vocab {ir.vocab}")
    lines.append(f"attention    {att}" + (f"; MLP {ir.activation}{' gated' if ir.gated_mlp else ''}"
                                           if ir.activation else "") + (f"; norm {ir.norm}" if ir.norm else ""))
    if work.moe:
        m = work.moe
        lines.append(f"moe          {m['experts']} experts, top-{m['top_k']}, {m['layers']} layers, expert d_ff "
                     f"{m['expert_d_ff']}, {m['shared_experts']} shared; {m['tokens_per_expert']:g} tokens per expert "
                     "per layer (balanced routing)")
    if ir.causal:
        lines.append(f"causal       {ir.causal['value']} ({ir.causal['evidence']})")
    lines.append(f"workload     {work.phase}: batch {work.batch}, {work.seq} new token(s), context {work.context}"
                 f"  (bindings {', '.join(f'{k}={v}' for k, v in work.bindings.items()) or 'none'})")
    if model.graph.traced_length is not None:
        lines.append(f"length       fixed at {model.graph.traced_length} by the graph's own reshapes (a traced length): "
                     "other lengths are refused")
    encoder = model.encoder_length(work)
    if encoder is not None:
        lines.append(f"encoder      {encoder[0]} positions read by cross-attention ({encoder[1]})")
    lines.append("")
    header = f"{'block':30s} {'ops':>4s} {'largest matmul':>24s} {'params':>9s} {'FLOPs':>10s} " \
             f"{'weights read':>12s} {'activ.':>11s} {'KV':>11s} {'FLOP/B':>7s}"
    lines.append(header)
    lines.append("-" * len(header))
    notes = []
    for r in block_rows(model, work):
        params = "tied" if r["shares_weights_of"] and not r["params"] else _si(r["params"])
        lines.append(f"{_cut(r['block'], 30):30s} {r['ops']:4d} {r['largest'][:24]:>24s} {params:>9s} "
                     f"{_si(r['flops']):>10s} {_bytes(r['weight_bytes']):>12s} {_bytes(r['activation_bytes']):>11s} "
                     f"{_bytes(r['kv_bytes']):>11s} {r['arithmetic_intensity']:7.1f}")
        if r["shares_weights_of"]:
            notes.append(f"{r['block']} reads the weights of {', '.join(r['shares_weights_of'])} (tied): their "
                         "parameters are counted once, there")
        if r["weight_stored_bytes"] and r["weight_bytes"] < 0.5 * r["weight_stored_bytes"]:
            notes.append(f"{r['block']} reads {_bytes(r['weight_bytes'])} of the {_bytes(r['weight_stored_bytes'])} "
                         "its weights take (an embedding gathers only the rows of its tokens)")
    lines.append("-" * len(header))
    ai = work.flops / work.bytes_moved if work.bytes_moved else 0.0
    lines.append(f"params {_si(work.params)}   FLOPs {_si(work.flops)} (matmul {_si(work.matmul_flops)})   "
                 f"weights stored {_bytes(work.weight_bytes)}   activations written {_bytes(work.activation_bytes)}   "
                 f"KV cache {_bytes(work.kv_cache_bytes)}   moved {_bytes(work.bytes_moved)}   "
                 f"intensity {ai:.1f} FLOP/B")
    lines += [f"note: {n}" for n in notes]
    stored = ", ".join(f"{fmt} {_bytes(b)}" for fmt, b in formats(model.graph).items())
    lines.append(f"weights stored as: {stored or 'none'}")
    if ir.unrecognised:
        names = ", ".join(f"{n} ({model._node(n).op_type})" for n in ir.unrecognised[:20])
        more = f" and {len(ir.unrecognised) - 20} more" if len(ir.unrecognised) > 20 else ""
        lines.append(f"not recognised (costed op by op): {names}{more}")
    else:
        lines.append("not recognised: nothing (every costed op belongs to a block)")
    if show_ops:
        lines.append("")
        lines.append(f"{'op':40s} {'type':18s} {'block':28s} {'FLOPs':>10s} {'bytes':>11s}  shapes")
        for o in work.ops:
            if o.category in ("view", "folded"):
                continue
            shapes = " ".join("x".join(map(str, s)) or "()" for s in o.input_shapes) + " -> " + \
                " ".join("x".join(map(str, s)) or "()" for s in o.output_shapes)
            lines.append(f"{_cut(o.name, 40):40s} {_cut(o.op_type, 18):18s} {_cut(o.block, 28):28s} {_si(o.flops):>10s} "
                         f"{_bytes(o.bytes):>11s}  {shapes}")
    return "\n".join(lines)
