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

from mapping.op_table import OP


def selector_inputs(model: onnx.ModelProto) -> list[str]:
    """Graph inputs that are the condition of a top-level ``If`` node."""
    inputs = {i.name for i in model.graph.input}
    return [n.input[0] for n in model.graph.node if n.op_type == OP.If and n.input and n.input[0] in inputs]


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
        if node.op_type != OP.If or node.input[0] not in selectors:
            nodes.append(node)
            continue
        branch = next(a.g for a in node.attribute if a.name == ("then_branch" if take_then else "else_branch"))
        graph.initializer.extend(branch.initializer)
        graph.value_info.extend(branch.value_info)
        nodes.extend(branch.node)
        for sub, outer in zip(branch.output, node.output):
            if outer and sub.name != outer:
                nodes.append(helper.make_node(OP.Identity, [sub.name], [outer], name=f"{node.name}/{outer}"))
    del graph.node[:]
    graph.node.extend(nodes)
    if take_then:
        _mask_covers_past(graph)
    read = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    kept = [i for i in graph.input if i.name in read]
    del graph.input[:]
    graph.input.extend(kept)
    return out


def _mask_covers_past(graph: onnx.GraphProto) -> None:
    """Declare the self-attention mask as past + new tokens in the cache branch.

    optimum declares the merged file's ``attention_mask`` as ``[batch, sequence_length]`` (the no-cache
    branch's shape); the cache branch reads it as ``[batch, past_sequence_length + sequence_length]``.
    """
    def dims(vi: onnx.ValueInfoProto) -> list:
        return list(vi.type.tensor_type.shape.dim) if vi.type.tensor_type.HasField("shape") else []

    seq = next((d[1].dim_param for vi in graph.input if vi.name == "input_ids" and len(d := dims(vi)) == 2), "")
    past = next((d[2].dim_param for vi in graph.input if vi.name.startswith("past_key_values")
                 and "encoder" not in vi.name and len(d := dims(vi)) == 4 and d[2].dim_param), "")
    if not seq or not past:
        return
    for vi in graph.input:
        d = dims(vi)
        if vi.name == "attention_mask" and len(d) == 2 and d[1].dim_param == seq:
            d[1].dim_param = f"{past} + {seq}"
