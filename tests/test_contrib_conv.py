"""onnxruntime's com.microsoft.CausalConvWithState (the fused Concat + Conv + Slice of Mamba / Gated DeltaNet
exports): a depthwise causal conv carrying its last k - 1 positions. Shapes and costs against hand counts on a graph
checked to run in onnxruntime 1.32 (CPU: output (1, 32, 8), present state (1, 32, 3))."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hardware.errors import HwsimError
from mapping.workloads import Model

B, C, K = 1, 32, 4


def _graph(tmp_path, past: bool = True, **attrs) -> str:
    inits = [numpy_helper.from_array(np.zeros((C, 1, K), np.float32), "w"),
             numpy_helper.from_array(np.zeros(C, np.float32), "b")]
    inputs = ["x", "w", "b"] + (["conv_state"] if past else [])
    node = helper.make_node("CausalConvWithState", inputs, ["y", "present"], domain="com.microsoft", name="cc", **attrs)
    graph_inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [B, C, "seq"])]
    if past:
        graph_inputs.append(helper.make_tensor_value_info("conv_state", TensorProto.FLOAT, [B, C, K - 1]))
    graph = helper.make_graph([node], "cc", graph_inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                                                          helper.make_tensor_value_info("present", TensorProto.FLOAT, None)],
                              inits)
    path = tmp_path / f"cc_{past}_{sorted(attrs.items())}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                      helper.make_opsetid("com.microsoft", 1)]), str(path))
    return str(path)


@pytest.mark.parametrize("past", [True, False])
def test_causal_conv_is_a_stencil_over_its_state(tmp_path, past):
    op = next(o for o in Model(_graph(tmp_path, past, activation="silu")).prefill(1, 8).ops if o.name == "cc")
    assert op.output_shapes == [(B, C, 8), (B, C, K - 1)]  # the present state as the past one, or (k - 1) wide
    assert op.flops == B * C * 8 * (2 * K + 1 + 4)  # k multiply-adds, the bias, SiLU per output
    assert op.matmul is None and op.weight_bytes == (C * K + C) * 4
    assert op.act_write_bytes == (B * C * 8 + B * C * (K - 1)) * 4  # the output and the present state


def test_causal_conv_cuda_extensions_are_refused(tmp_path):
    with pytest.raises(HwsimError, match="state_window"):
        Model(_graph(tmp_path, state_window=2)).prefill(1, 8)
