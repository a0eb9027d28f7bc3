"""onnxruntime's com.microsoft.QEmbedLayerNormalization (a quantized BERT's embedding): EmbedLayerNormalization over
uint8 tables, checked on a graph that runs in onnxruntime 1.32 (CPU: output (1, 16, 64) float32, mask index (1,))."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mapping.workloads import Model

V, P, H, S = 100, 32, 64, 16


def test_qembed_reads_the_selected_int8_rows_as_weights(tmp_path):
    def t(name, arr):
        return numpy_helper.from_array(arr, name)

    inits = [t("we", np.zeros((V, H), np.uint8)), t("pe", np.zeros((P, H), np.uint8)), t("g", np.zeros(H, np.uint8)),
             t("bta", np.zeros(H, np.uint8))]
    inits += [t(n, np.array(0.01, np.float32)) for n in ("we_s", "pe_s", "g_s", "b_s")]
    inits += [t(n, np.array(128, np.uint8)) for n in ("we_z", "pe_z", "g_z", "b_z")]
    ins = ["ids", "", "we", "pe", "", "g", "bta", "", "we_s", "pe_s", "", "g_s", "b_s", "we_z", "pe_z", "", "g_z", "b_z"]
    node = helper.make_node("QEmbedLayerNormalization", ins, ["out", "mask_index"], domain="com.microsoft",
                            name="qemb", epsilon=1e-12)
    graph = helper.make_graph([node], "q", [helper.make_tensor_value_info("ids", TensorProto.INT32, ["batch", "seq"])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("mask_index", TensorProto.INT32, None)], inits)
    path = tmp_path / "qemb.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                      helper.make_opsetid("com.microsoft", 1)]), str(path))
    model = Model(str(path))
    op = next(o for o in model.prefill(1, S).ops if o.name == "qemb")
    assert op.output_shapes[0] == (1, S, H)
    assert op.flops == S * H * ((2 - 1) + 8 + 2 * 2)  # one add of two tables, LayerNorm, dequantising both rows
    assert op.weight_bytes == 2 * S * H + 2 * H + 4  # the selected uint8 rows, gamma, beta, zero points
    assert op.act_write_bytes == S * H * 4 + 4  # float32 output, int32 mask index
    assert model.params == V * H + P * H + 2 * H + 4
