"""onnxruntime's com.microsoft.MoE (onnxruntime-genai's Mixtral / Phi-MoE exports): T tokens run top-k of E expert
MLPs; under the importer's balanced routing min(E, T k) experts run and read their weights. FLOPs and bytes are
checked against hand counts; both fc1 weight layouts (onnxruntime >= 1.22 [E, N, hidden], earlier [E, hidden, N])
give the same costs. The graphs were checked to run in onnxruntime 1.32 (CPU: the plain and fused-SwiGLU forms)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hardware.errors import HwsimError
from mapping.workloads import Model

E, H, INTER, K = 4, 64, 128, 2


def _graph(tmp_path, act: str = "silu", fc3: bool = False, fused: bool = False, old_layout: bool = False,
           bad: bool = False) -> str:
    n1 = 2 * INTER if fused else INTER
    w1 = np.zeros((E, H, n1) if old_layout else (E, n1, H), np.float32)
    w2 = np.zeros((E, INTER, H) if old_layout else (E, H, INTER), np.float32)
    if bad:
        w2 = np.zeros((E, INTER, INTER), np.float32)
    inits = [numpy_helper.from_array(np.zeros((H, E), np.float32), "router_w"), numpy_helper.from_array(w1, "w1"),
             numpy_helper.from_array(np.zeros((E, n1), np.float32), "b1"), numpy_helper.from_array(w2, "w2"),
             numpy_helper.from_array(np.zeros((E, H), np.float32), "b2"),
             numpy_helper.from_array(np.array([-1, H], np.int64), "flat")]
    ins = ["xf", "logits", "w1", "b1", "w2", "b2"]
    if fc3:
        inits.append(numpy_helper.from_array(np.zeros((E, INTER, H), np.float32), "w3"))
        ins += ["w3"]
    attrs = {"k": K, "activation_type": act, **({"swiglu_fusion": 1 if fused else 0} if act == "swiglu" else {})}
    nodes = [helper.make_node("Reshape", ["x", "flat"], ["xf"], name="flatten"),
             helper.make_node("MatMul", ["xf", "router_w"], ["logits"], name="router"),
             helper.make_node("MoE", ins, ["y"], domain="com.microsoft", name="moe", **attrs)]
    graph = helper.make_graph(nodes, "moe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", H])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["tokens", H])], inits)
    path = tmp_path / f"moe_{act}_{fc3}_{fused}_{old_layout}_{bad}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                      helper.make_opsetid("com.microsoft", 1)]), str(path))
    return str(path)


def _moe_ops(path: str, tokens: int) -> dict:
    return {o.name.split("/")[-1]: o for o in Model(path).prefill(1, tokens).ops if o.op_type == "MoE"}


@pytest.mark.parametrize("old_layout", [False, True])
def test_moe_costs_are_the_experts_that_run(tmp_path, old_layout):
    path = _graph(tmp_path, old_layout=old_layout)
    one = _moe_ops(path, 1)  # 1 token x top-2: 2 of 4 experts run
    assert one["fc1"].flops == 2 * K * H * INTER + K * INTER + K * INTER * 4  # product, bias, SiLU (4 per element)
    assert one["fc2"].flops == 2 * K * INTER * H + K * H
    assert one["fc1"].weight_bytes == (E * INTER * H + E * INTER) * 4 * 2 // E  # half the experts' fc1 and bias
    assert one["fc1"].matmul.batch == 2 and one["fc1"].matmul.m == 1
    many = _moe_ops(path, 16)  # 32 selections: every expert runs, 8 rows each
    assert many["fc2"].weight_bytes == (E * H * INTER + E * H) * 4
    assert (many["fc1"].matmul.batch, many["fc1"].matmul.m, many["fc1"].matmul.k, many["fc1"].matmul.n) == (E, 8, H, INTER)
    assert many["fc1"].flops == 16 * (2 * K * H * INTER + K * INTER + K * INTER * 4)  # linear in the tokens


def test_swiglu_forms_cost_the_same_products(tmp_path):
    fused = _moe_ops(_graph(tmp_path, act="swiglu", fused=True), 16)
    split = _moe_ops(_graph(tmp_path, act="swiglu", fc3=True), 16)
    products = lambda ops: sum(o.matmul.batch * o.matmul.m * o.matmul.k * o.matmul.n for o in ops.values()  # noqa: E731
                               if o.matmul is not None)
    assert products(fused) == products(split) == E * 8 * H * (2 * INTER + INTER)  # gate and up, then down
    assert "fc3" in split and "fc3" not in fused


def test_moe_weights_that_miss_the_hidden_size_are_refused(tmp_path):
    with pytest.raises(HwsimError, match="MoE expert weights .* hidden size"):
        Model(_graph(tmp_path, bad=True)).prefill(1, 4)


def test_qmoe_sizes_come_from_its_stored_values(tmp_path):
    """QMoE (int4 experts, onnxruntime's raw [E, N, K/2] layout; the graph runs in onnxruntime 1.32 CPU): the same
    products as the float MoE of that shape, reading the packed weights and their scales of the experts that run."""
    inits = [numpy_helper.from_array(np.zeros((H, E), np.float32), "router_w"),
             numpy_helper.from_array(np.zeros((E, INTER, H // 2), np.uint8), "w1"),
             numpy_helper.from_array(np.zeros((E, INTER), np.float32), "s1"),
             numpy_helper.from_array(np.zeros((E, H, INTER // 2), np.uint8), "w2"),
             numpy_helper.from_array(np.zeros((E, H), np.float32), "s2"),
             numpy_helper.from_array(np.array([-1, H], np.int64), "flat")]
    nodes = [helper.make_node("Reshape", ["x", "flat"], ["xf"], name="flatten"),
             helper.make_node("MatMul", ["xf", "router_w"], ["logits"], name="router"),
             helper.make_node("QMoE", ["xf", "logits", "w1", "s1", "", "w2", "s2"], ["y"], domain="com.microsoft",
                              name="moe", k=K, activation_type="silu", expert_weight_bits=4)]
    graph = helper.make_graph(nodes, "qmoe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", H])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["tokens", H])], inits)
    path = tmp_path / "qmoe.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                      helper.make_opsetid("com.microsoft", 1)]), str(path))
    ops = {o.name.split("/")[-1]: o for o in Model(str(path)).prefill(1, 1).ops if o.op_type == "QMoE"}
    fc1, fc2 = ops["fc1"], ops["fc2"]
    assert (fc1.matmul.batch, fc1.matmul.k, fc1.matmul.n, fc1.matmul.b_dtype) == (2, H, INTER, "int4")
    assert (fc2.matmul.k, fc2.matmul.n) == (INTER, H)
    assert fc1.flops == 2 * K * H * INTER + K * INTER * 4  # no bias
    assert fc1.weight_bytes == (E * INTER * H // 2 + E * INTER * 4) // 2  # half the experts' packed weights + scales
