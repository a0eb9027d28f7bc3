"""Inline the branch of ``If`` nodes that a graph input selects (optimum's merged decoders).

``optimum-cli export onnx`` merges a decoder without and with a KV cache into one file
(``decoder_model_merged.onnx``): a single ``If`` node on the boolean input ``use_cache_branch`` whose
``then_branch`` reads the cache and ``else_branch`` computes everything from scratch. hwsim costs the branch a
pass takes: prefill runs the no-cache branch, decode steps the cache branch. The chosen subgraph's nodes and
initializers replace the ``If``; graph inputs no node reads any more are dropped (the no-cache branch ignores
``past_key_values.*``).
"""

from __future__ import annotations

import onnx
from onnx import helper


def selector_inputs(model: onnx.ModelProto) -> list[str]:
    """Graph inputs that are the condition of a top-level ``If`` node."""
    inputs = {i.name for i in model.graph.input}
    return [n.input[0] for n in model.graph.node if n.op_type == "If" and n.input and n.input[0] in inputs]


def inline(model: onnx.ModelProto, take_then: bool) -> onnx.ModelProto:
    """A copy of ``model`` where each ``If`` on a graph input is replaced by its then (True) or else branch."""
    selectors = set(selector_inputs(model))
    if not selectors:
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type != "If" or node.input[0] not in selectors:
            nodes.append(node)
            continue
        branch = next(a.g for a in node.attribute if a.name == ("then_branch" if take_then else "else_branch"))
        graph.initializer.extend(branch.initializer)
        graph.value_info.extend(branch.value_info)
        nodes.extend(branch.node)
        for sub, outer in zip(branch.output, node.output):
            if outer and sub.name != outer:
                nodes.append(helper.make_node("Identity", [sub.name], [outer], name=f"{node.name}/{outer}"))
    del graph.node[:]
    graph.node.extend(nodes)
    read = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    kept = [i for i in graph.input if i.name in read]
    del graph.input[:]
    graph.input.extend(kept)
    return out
