"""Regressions of the eighth held-out batch (deployment-style graphs; tests/fixtures/heldout8/manifest.json): an
onnxruntime-genai GroupQueryAttention graph quantized to QDQ by onnxruntime's quantize_static left the KV cache's
head size (``kv_cache_dim``) unbound: the width walk from the attention's query back to its projection stopped at
the DequantizeLinear in front of it, and read no weight width through the weight's DequantizeLinear."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from hardware.errors import HwsimWarning
from mapping.workloads import Model

from conftest import assert_matches_heldout_truth

HERE = Path(__file__).resolve().parent / "fixtures" / "heldout8"
MANIFEST = json.loads((HERE / "manifest.json").read_text())["files"]


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_heldout8_files_facts_and_flops(name: str) -> None:
    entry = MANIFEST[name]
    assert {"prefill_matmul_flops", "decode_matmul_flops"} <= set(entry["truth"])  # both passes are checked
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HwsimWarning)
        model = Model(str(HERE / name))  # no --dim kv_cache_dim=N needed
    assert_matches_heldout_truth(model, entry["facts"], entry["truth"])


def test_session_optimized_scores_are_attention() -> None:
    """onnxruntime's session optimizer fuses the scores into com.microsoft.FusedMatMul (alpha = 1/sqrt(d), transB = 1;
    MatMulScaleFusion and MatmulTransposeFusion): a matrix product of two activations like any other, so the
    attention pass reads it as the score (it did not, and the KV-cache graph had no attention and no decode phase).
    The decode step's matmul FLOPs are the config's, counted by hand: per layer q 64x64, k and v 64x32, o 64x64, the
    MLP's three 64x128, the score and P.V of 4 heads x 16 over 33 keys; the LM head 64x256; the rotary MatMul of
    8 frequencies."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", HwsimWarning)  # no "KV-cache inputs but no attention" warning
        model = Model(str(HERE / "ortsess-ext__llama_past.onnx"))
    attn = [b.attention for b in model.ir.blocks if b.attention is not None]
    assert len(attn) == 2 and all("MatMulScaleFusion" in a.score for a in attn)
    assert (attn[0].heads, attn[0].kv_heads, attn[0].head_dim) == (4, 2, 16)
    per_layer = 2 * (64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 128) + 2 * (2 * 4 * 16 * 33)
    assert model.decode(1, 32).matmul_flops == 2 * per_layer + 2 * 64 * 256 + 2 * 8


def test_fused_gemm_is_a_gemm_with_its_activation() -> None:
    """com.microsoft.FusedGemm (the session optimizer's Gemm + Tanh of BERT's pooler) has a shape and cost rule: the
    Gemm's FLOPs and bias plus one op per output for the activation; the file imported (it was refused)."""
    from mapping.op_table import OP

    model = Model(str(HERE / "ortsess-ext__bert_fusedgemm.onnx"))
    work = model.prefill(1, 16)
    fused = [o for o in work.ops if o.op_type == OP.FusedGemm]
    assert len(fused) == 1 and fused[0].matmul is not None
    mm = fused[0].matmul
    assert (mm.m, mm.k, mm.n) == (1, 64, 64)  # the pooler's first token, transB weight [64, 64]
    assert fused[0].flops == 2 * 64 * 64 + 64 * (1 + 1)  # product, bias, activation


def test_kv_cache_graph_without_a_recognised_attention_says_so(tmp_path) -> None:
    """A graph with KV-cache inputs in which no attention is found (here: the cache is only appended to, no score
    product reads it) is warned of: its decode phase is unavailable and a default run is one forward pass."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((8, 8), np.float32), "w")
    shape = numpy_helper.from_array(np.array([1, 1, 2, 4], np.int64), "shape")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="proj"),
             helper.make_node("Reshape", ["y", "shape"], ["y4"], name="heads"),
             helper.make_node("Transpose", ["y4"], ["k"], perm=[0, 2, 1, 3], name="kt"),
             helper.make_node("Concat", ["past_key_values.0.key", "k"], ["present.0.key"], axis=2, name="append")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 8]),
                     helper.make_tensor_value_info("past_key_values.0.key", onnx.TensorProto.FLOAT, [1, 2, "past", 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 1, 8]),
         helper.make_tensor_value_info("present.0.key", onnx.TensorProto.FLOAT, [1, 2, "total", 4])], [w, shape])
    path = tmp_path / "append_only.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.warns(HwsimWarning, match="KV-cache inputs .* but hwsim found no attention"):
        Model(str(path))


def test_genai_moe_graph_costs_its_experts_by_hand() -> None:
    """onnxruntime-genai 0.18's builder on a random-weight GPT-OSS config (hidden 64, 4 heads on 2 KV heads of 16,
    2 layers, 4 experts top-2 with a fused SwiGLU of 128, vocab 512; fp32, CPU): GroupQueryAttention and
    com.microsoft.MoE (it was refused). The decode step's matmul FLOPs after 32 cached tokens, counted by hand: per
    layer q and o 64x64, k and v 64x32, the scores and P.V of 4 heads x 16 over 33 keys, the router 64x4, two
    experts' gate-up 64x256 and down 128x64; the LM head 64x512."""
    model = Model(str(HERE / "genai__gptoss_moe.onnx"))
    per_layer = 2 * (64 * 64 * 2 + 64 * 32 * 2) + 2 * 2 * 4 * 16 * 33 + 2 * 64 * 4 + 2 * 2 * (64 * 256 + 128 * 64)
    assert model.decode(1, 32).matmul_flops == 2 * per_layer + 2 * 64 * 512
    moe = [o for o in model.decode(1, 32).ops if o.op_type == "MoE" and o.name.endswith("/fc1")]
    assert len(moe) == 2 and all(o.matmul.batch == 2 for o in moe)  # top-2 of 4 experts run for one token


def test_genai_moe_nodes_are_the_layers_experts() -> None:
    """Each com.microsoft.MoE node is its layer's stacked experts behind a router block (the linear feeding its
    logits), so the MoE summary and the MoE techniques (--moe-routing, --ep) see the layers."""
    model = Model(str(HERE / "genai__gptoss_moe.onnx"))
    moe = model.ir.moe
    assert (moe["experts"], moe["top_k"], moe["layers"], moe["experts_found"], moe["expert_d_ff"]) == (4, 2, 2, 8, 128)
    experts = [b for b in model.ir.blocks if b.kind == "mlp" and b.attrs.get("expert")]
    assert [b.layer for b in experts] == [0, 1] and all(b.attrs["gated"] for b in experts)
