"""Regressions of the fifth held-out batch (tests/fixtures/corpus/export_log.md, Held-out batch 5): Hugging Face
transformers 5 architectures the corpus had not covered, exported by torch.onnx (make_heldout5.py). Graph-only
files in tests/fixtures/heldout5 (truth: matmul FLOPs counted from an onnxruntime run of the un-stripped file,
manifest.json there) and small onnx.helper graphs:

- GPT-OSS's attention sinks (scores concatenated with a learned per-head logit, softmax, the sink column sliced
  off before P.V): no attention was found (architecture ``none``, no decode step);
- transformers 5's ``batched_mm`` experts (GPT-OSS, OLMoE, GraniteMoE: the stacked [E, out, in] expert weights
  gathered per token-expert pair, batched products): no expert MLP found, and a warning that the export had
  dropped experts it never reached (it had not); the products sat in ``attention_mask``;
- DBRX's one_hot over E + 1 classes: balanced routing spread the selections over 5 experts of which 4 exist
  (-12.8% prefill FLOPs); its per-expert weights (``w1[expert_idx]``, a Gather by the hit expert's index) were
  activations, so its expert MLPs were unrecognised;
- SigLIP's attention-pooling head (a learned probe query over the patch tokens) was a third self-attention
  layer, with twice its KV heads (nn.MultiheadAttention's packed K/V projection);
- CLIP's text tower (causal, no LM head, no cache) was simulated as generating 32 tokens by default;
- hybrid models counted only their attention layers: LFM2's gated short-convolution layers and Granite-4's
  (granitemoehybrid) Mamba-2 layers were no layer (1 of 2), their projections an "mlp", their scan ops
  unrecognised; SDPA's Where(IsNaN(p), 0, p) side branch was left out of the attention core, so the mask pass
  took the hidden states upstream of it (LFM2's residual adds) for mask arithmetic;
- stacked experts whose width equals d_model (GLM-4.5-style, a tiny config) and a shared expert next to stacked
  experts (Granite-4, Qwen3-Next) were missed or counted as routed experts.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from hardware.errors import HwsimWarning
from mapping.workloads import Model
from simulator.cli import main

from conftest import assert_matches_heldout_truth

HERE = Path(__file__).resolve().parent / "fixtures" / "heldout5"
MANIFEST = json.loads((HERE / "manifest.json").read_text())["files"]
RNG = np.random.default_rng(0)


def _model(name: str) -> Model:
    with warnings.catch_warnings():
        warnings.simplefilter("error", HwsimWarning)  # none of these files deserves a warning on import
        return Model(str(HERE / name))


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_heldout5_files_facts_and_flops(name: str) -> None:
    entry = MANIFEST[name]
    assert "prefill_matmul_flops" in entry["truth"]  # every file of this batch has a prefill truth
    assert_matches_heldout_truth(_model(name), entry["facts"], entry["truth"])


@pytest.mark.parametrize(("name", "layers", "d_ff", "shared"), [
    ("dynamo__gpt_oss_kv.onnx", 2, 128, 0), ("torchscript__dbrx.onnx", 2, 128, 0),
    ("dynamo__granitemoehybrid.onnx", 2, 128, 1), ("torchscript__glm4_moe.onnx", 1, 64, 1)])
def test_moe_experts_are_found(name: str, layers: int, d_ff: int, shared: int) -> None:
    """Every expert of the MoE layers is found (stacked: one block of E; DBRX: one block per traced expert),
    with its d_ff (GLM-4.5's equals d_model), a shared expert is not a routed one, and nothing of them is left
    unrecognised or in the attention mask."""
    ir = _model(name).ir
    assert ir.moe["experts"] == 4 and ir.moe["top_k"] == 2 and ir.moe["layers"] == layers
    assert ir.moe["experts_found"] == 4 * layers and ir.moe["expert_d_ff"] == d_ff
    assert ir.moe["shared_experts"] == shared
    assert not [n for n in ir.unrecognised if "expert" in n or "bmm" in n or "Gather" in n]
    experts = [b for b in ir.blocks if b.kind == "mlp" and b.attrs.get("expert")]
    assert all(b.attrs["gated"] for b in experts)
    mask = [b for b in ir.blocks if b.kind == "attention_mask"]
    assert not any(ir_node.endswith(("bmm", "bmm_1")) or "/mlp/MatMul" in ir_node for b in mask for ir_node in b.nodes)


@pytest.mark.parametrize(("name", "mixer"), [("torchscript__lfm2.onnx", "short_conv"),
                                             ("dynamo__granitemoehybrid.onnx", "ssm")])
def test_hybrid_mixer_layers_are_layers(name: str, mixer: str) -> None:
    """LFM2's short convolution and Granite-4's Mamba-2 open decoder layer 0; the attention is layer 1; nothing is
    left to the attention mask but mask arithmetic."""
    ir = _model(name).ir
    assert ir.layers == {"decoder": 2}
    mixers = [b for b in ir.blocks if b.kind == "mixer"]
    assert [(b.attrs["mixer"], b.stack, b.layer) for b in mixers] == [(mixer, "decoder", 0)]
    assert [(b.stack, b.layer) for b in ir.attentions("self")] == [("decoder", 1)]
    mask = [n for b in ir.blocks if b.kind == "attention_mask" for n in b.nodes]
    assert not any("add" in n.lower() and "mask" not in n.lower() and "layers" in n for n in mask)


def test_gpt_oss_sink_attention_is_causal_self_attention() -> None:
    ir = _model("dynamo__gpt_oss_kv.onnx").ir
    selfs = [b.attention for b in ir.blocks if b.attention is not None]
    assert len(selfs) == 2 and all(a.kind == "self" and a.causal for a in selfs)
    assert ir.kv_inputs and ir.step_inputs == ["input_ids"]


def test_siglip_pooling_head_is_cross_attention() -> None:
    ir = _model("torchscript__siglip_vision.onnx").ir
    kinds = [(b.attention.kind, b.attention.kv_heads) for b in ir.blocks if b.attention is not None]
    assert kinds == [("self", 4), ("self", 4), ("cross", 4)]


def test_clip_text_tower_simulates_one_pass_by_default() -> None:
    result = CliRunner().invoke(main, ["simulate", str(HERE / "torchscript__clip_text.onnx"), "--target", "a100-80gb"])
    assert result.exit_code == 0, result.output
    assert "no LM head and no KV cache" in result.output and "prefill: batch 1, prompt 32" in result.output
    assert "decode" not in result.output.split("latency")[1]
    forced = CliRunner().invoke(main, ["simulate", str(HERE / "torchscript__clip_text.onnx"), "--target", "a100-80gb",
                                       "--phase", "generate", "--gen-len", "2"])
    assert forced.exit_code == 0 and "decode" in forced.output


def _w(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array((RNG.standard_normal(shape) * 0.1).astype(np.float32), name)


def _i64(name: str, *values: int) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def test_attention_with_sinks_built_by_hand(tmp_path: Path) -> None:
    """A minimal sink attention (x [1, T, 16], 2 heads of 8): scores [1, 2, T, T] concatenated with a learned
    per-head sink logit expanded to [1, 2, T, 1], softmax over T + 1, the sink column sliced off, P.V: one causal
    self-attention whose FLOPs are the graph's (the sink adds no matmul)."""
    n = helper.make_node
    d, heads, hd = 16, 2, 8
    nodes = [n("Shape", ["x"], ["xs"], name="shape"), n("Gather", ["xs", "one_s"], ["t"], axis=0, name="t"),
             n("Unsqueeze", ["t", "zero"], ["t1"], name="t1"),
             n("Concat", ["one_v", "heads_v", "t1", "one_v"], ["sink_shape"], axis=0, name="sink_shape")]
    for p in ("q", "k", "v"):
        nodes += [n("MatMul", ["x", f"w{p}"], [p], name=f"{p}_proj"),
                  n("Reshape", [p, "split"], [f"{p}4"], name=f"r{p}"),
                  n("Transpose", [f"{p}4"], [f"{p}h"], perm=[0, 2, 3, 1] if p == "k" else [0, 2, 1, 3], name=f"t{p}")]
    nodes += [n("MatMul", ["qh", "kh"], ["s"], name="score"),
              n("Where", ["tri_b", "zeros_tt", "neg_tt"], ["mask"], name="mask"),
              n("Add", ["s", "mask"], ["sm"], name="mask_add"),
              n("Expand", ["sink", "sink_shape"], ["sink_e"], name="sink_expand"),
              n("Concat", ["sm", "sink_e"], ["cat"], axis=-1, name="cat"),
              n("Softmax", ["cat"], ["p"], axis=-1, name="softmax"),
              n("Slice", ["p", "zero", "t1", "minus1"], ["p_s"], name="drop_sink"),
              n("MatMul", ["p_s", "vh"], ["o4"], name="pv"), n("Transpose", ["o4"], ["o3"], perm=[0, 2, 1, 3], name="to"),
              n("Reshape", ["o3", "flat"], ["o"], name="ro"), n("MatMul", ["o", "wo"], ["y"], name="o_proj")]
    t = 8  # a fixed-shape graph of 8 positions, its causal mask a constant lower triangle
    tri = np.tril(np.ones((t, t), dtype=bool))
    inits = [_w("wq", d, d), _w("wk", d, d), _w("wv", d, d), _w("wo", d, d), _i64("split", 1, -1, heads, hd),
             _i64("flat", 1, -1, d), numpy_helper.from_array(np.array(1, np.int64), "one_s"), _i64("zero", 0),
             _i64("minus1", -1), _i64("one_v", 1),
             _i64("heads_v", heads), numpy_helper.from_array(np.zeros((1, heads, 1, 1), np.float32), "sink"),
             numpy_helper.from_array(tri, "tri_b"), numpy_helper.from_array(np.zeros((t, t), np.float32), "zeros_tt"),
             numpy_helper.from_array(np.full((t, t), -1e9, np.float32), "neg_tt")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, t, d])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    path = tmp_path / "sinks.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    import onnxruntime as ort  # the graph is valid: it runs

    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"x": RNG.standard_normal((1, t, d)).astype(np.float32)})[0]
    assert out.shape == (1, t, d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HwsimWarning)
        model = Model(str(path))
        work = model.prefill(1, t)
    blocks = [b for b in model.ir.blocks if b.attention is not None]
    assert len(blocks) == 1 and blocks[0].attention.heads == heads and blocks[0].attention.head_dim == hd
    assert "drop_sink" in blocks[0].attention.core and "cat" in blocks[0].attention.core
    assert work.matmul_flops == 4 * 2.0 * t * d * d + 2 * 2.0 * heads * t * t * hd


def test_a_piecewise_exponential_activation_makes_an_mlp(tmp_path: Path) -> None:
    """Apertus's xIELU between the up and down projections (where(x > 0, a x^2 + b x, (exp(min(x, eps)) - 1 - x)
    a + b x)): Greater, Min, Exp, Where were no MLP ops, so its MLP was two projections and 8 unrecognised ops."""
    n = helper.make_node
    d, ff = 16, 32
    nodes = [n("MatMul", ["x", "w_up"], ["h"], name="up"), n("Greater", ["h", "zero_f"], ["pos"], name="gt"),
             n("Mul", ["h", "h"], ["h2"], name="sq"), n("Mul", ["h2", "alpha"], ["pa"], name="pa"),
             n("Mul", ["h", "beta"], ["bx"], name="bx"), n("Add", ["pa", "bx"], ["p_branch"], name="p_add"),
             n("Min", ["h", "eps"], ["hm"], name="min"), n("Exp", ["hm"], ["e"], name="exp"),
             n("Sub", ["e", "one_f"], ["em1"], name="expm1"), n("Sub", ["em1", "h"], ["d1"], name="sub"),
             n("Mul", ["d1", "alpha"], ["na"], name="na"), n("Add", ["na", "bx"], ["n_branch"], name="n_add"),
             n("Where", ["pos", "p_branch", "n_branch"], ["act"], name="where"),
             n("MatMul", ["act", "w_down"], ["y"], name="down")]
    scalars = {"zero_f": 0.0, "alpha": 0.8, "beta": 0.5, "eps": -1e-6, "one_f": 1.0}
    inits = [_w("w_up", d, ff), _w("w_down", ff, d)] + [numpy_helper.from_array(np.array(v, np.float32), k)
                                                        for k, v in scalars.items()]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", d])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    path = tmp_path / "xielu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    ir = Model(str(path)).ir
    mlps = [b for b in ir.blocks if b.kind == "mlp"]
    assert len(mlps) == 1 and mlps[0].attrs["d_ff"] == ff and mlps[0].attrs["activation"] == "elu"
    assert not ir.unrecognised


def test_two_scores_of_the_same_queries_are_one_layer(tmp_path: Path) -> None:
    """ProphetNet's n-gram self-attention: one Q / K / V projection of the main and n-gram streams together, split,
    then a main-stream score and an n-gram-stream score over all keys. Each score opened a layer (6 layers for its
    2 + 2); the second score of the same queries joins the first one's layer."""
    n = helper.make_node
    d, t = 16, 4
    nodes = [n("MatMul", ["x", f"w{p}"], [p], name=f"{p}_proj") for p in ("q", "k", "v")]
    nodes += [n("Split", ["q", "halves"], ["q_main", "q_ngram"], axis=1, name="split_q"),
              n("Split", ["k", "halves"], ["k_main", "k_ngram"], axis=1, name="split_k"),
              n("Split", ["v", "halves"], ["v_main", "v_ngram"], axis=1, name="split_v"),
              n("Transpose", ["k_main"], ["kt_main"], perm=[0, 2, 1], name="tk_main"),
              n("MatMul", ["q_main", "kt_main"], ["s_main"], name="score_main"),
              n("Softmax", ["s_main"], ["p_main"], axis=-1, name="softmax_main"),
              n("MatMul", ["p_main", "v_main"], ["o_main"], name="pv_main"),
              n("Transpose", ["k"], ["kt"], perm=[0, 2, 1], name="tk"),
              n("MatMul", ["q_ngram", "kt"], ["s_ngram"], name="score_ngram"),
              n("Softmax", ["s_ngram"], ["p_ngram"], axis=-1, name="softmax_ngram"),
              n("MatMul", ["p_ngram", "v"], ["o_ngram"], name="pv_ngram"),
              n("Concat", ["o_main", "o_ngram"], ["o"], axis=1, name="cat"),
              n("MatMul", ["o", "wo"], ["y"], name="o_proj")]
    inits = [_w("wq", d, d), _w("wk", d, d), _w("wv", d, d), _w("wo", d, d), _i64("halves", t, t)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2 * t, d])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    path = tmp_path / "ngram.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HwsimWarning)
        ir = Model(str(path)).ir
    selfs = ir.attentions("self")
    assert len(selfs) == 2 and {(b.stack, b.layer) for b in selfs} == {("encoder", 0)}
    assert ir.layers == {"encoder": 1}


def test_a_precomputed_sin_cos_table_lookup_is_a_rotary_embedding(tmp_path: Path) -> None:
    """CodeGen's rotary: ``embed_positions[position_ids]`` (a Gather of a [positions, rotary] table by positions
    counted from the length), split into sin and cos, applied to Q and K. Before, the lookup and its split were
    unrecognised (or, through the mask pass, an attention mask)."""
    n = helper.make_node
    d, pos = 16, 32
    nodes = [n("Shape", ["x"], ["xs"], name="shape"), n("Gather", ["xs", "one_s"], ["len"], axis=0, name="len"),
             n("Range", ["zero_s", "len", "one_s"], ["positions"], name="range"),
             n("Gather", ["table", "positions"], ["rows"], axis=0, name="lookup"),
             n("Split", ["rows"], ["sin", "cos"], axis=-1, num_outputs=2, name="split_sincos")]
    for p in ("q", "k"):
        nodes += [n("MatMul", ["x", f"w{p}"], [p], name=f"{p}_proj"), n("Mul", [p, "cos"], [f"{p}c"], name=f"{p}_cos"),
                  n("Mul", [p, "sin"], [f"{p}s"], name=f"{p}_sin"), n("Add", [f"{p}c", f"{p}s"], [f"{p}r"], name=f"{p}_rot")]
    nodes += [n("MatMul", ["x", "wv"], ["v"], name="v_proj"), n("Transpose", ["kr"], ["kt"], perm=[0, 2, 1], name="tk"),
              n("MatMul", ["qr", "kt"], ["s"], name="score"), n("Softmax", ["s"], ["p"], axis=-1, name="softmax"),
              n("MatMul", ["p", "v"], ["o"], name="pv"), n("MatMul", ["o", "wo"], ["y"], name="o_proj")]
    inits = [_w("wq", d, d), _w("wk", d, d), _w("wv", d, d), _w("wo", d, d), _w("table", pos, 2 * d),
             numpy_helper.from_array(np.array(1, np.int64), "one_s"), numpy_helper.from_array(np.array(0, np.int64), "zero_s")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq", d])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    path = tmp_path / "rotary_table.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HwsimWarning)
        ir = Model(str(path)).ir
    rotary = [b for b in ir.blocks if b.attrs.get("kind") == "rotary"]
    assert len(rotary) == 1 and set(rotary[0].nodes) == {"lookup", "split_sincos"}
    assert not [u for u in ir.unrecognised if u in ("lookup", "split_sincos")]


def test_a_fused_qk_layernorm_after_a_fused_qkv_projection_keeps_the_projection(tmp_path: Path) -> None:
    """Persimmon's TorchScript export: one QKV projection, split, a LayerNormalization op on Q and on K, then the
    scores. The walk from Q back to its projection stopped at the norm, so Q and K had no projection and their
    partial-rotary ops were unrecognised (8) or an attention mask."""
    n = helper.make_node
    d, t = 16, 8
    nodes = [n("MatMul", ["x", "w_qkv"], ["qkv"], name="qkv_proj"),
             n("Split", ["qkv"], ["q", "k", "v"], axis=-1, num_outputs=3, name="split"),
             n("LayerNormalization", ["q", "ln_w", "ln_b"], ["qn"], axis=-1, name="q_norm"),
             n("LayerNormalization", ["k", "ln_w", "ln_b"], ["kn"], axis=-1, name="k_norm"),
             n("Transpose", ["kn"], ["kt"], perm=[0, 2, 1], name="tk"),
             n("MatMul", ["qn", "kt"], ["s"], name="score"), n("Softmax", ["s"], ["p"], axis=-1, name="softmax"),
             n("MatMul", ["p", "v"], ["o"], name="pv"), n("MatMul", ["o", "wo"], ["y"], name="o_proj")]
    inits = [_w("w_qkv", d, 3 * d), _w("wo", d, d), numpy_helper.from_array(np.ones(d, np.float32), "ln_w"),
             numpy_helper.from_array(np.zeros(d, np.float32), "ln_b")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, t, d])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    path = tmp_path / "qk_norm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HwsimWarning)
        ir = Model(str(path)).ir
    a = ir.attentions("self")[0].attention
    assert a.q_proj == a.k_proj == "qkv_proj" and a.fused_qkv
    assert not ir.unrecognised


def test_the_views_after_cos_and_sin_join_the_rotary_embedding(tmp_path: Path) -> None:
    """ERNIE 4.5's interleaved rotary: cos / sin of positions x inverse frequency, repeated per pair of channels
    (Unsqueeze, Expand, Reshape) before they rotate Q and K. The repeat was an attention mask (through the mask
    pass), then unrecognised; it is the rotary embedding's."""
    n = helper.make_node
    d, t = 16, 8
    nodes = [n("MatMul", ["positions", "inv_freq"], ["freqs"], name="freqs")]
    for f in ("cos", "sin"):
        nodes += [n(f.capitalize(), ["freqs"], [f], name=f), n("Unsqueeze", [f, "minus1"], [f"{f}_u"], name=f"{f}_u"),
                  n("Expand", [f"{f}_u", "pairs"], [f"{f}_e"], name=f"{f}_expand"),
                  n("Reshape", [f"{f}_e", "flat_rot"], [f"{f}_r"], name=f"{f}_reshape")]
    for p in ("q", "k"):
        nodes += [n("MatMul", ["x", f"w{p}"], [p], name=f"{p}_proj"), n("Mul", [p, "cos_r"], [f"{p}c"], name=f"{p}_cos"),
                  n("Mul", [p, "sin_r"], [f"{p}s"], name=f"{p}_sin"), n("Add", [f"{p}c", f"{p}s"], [f"{p}r"], name=f"{p}_rot")]
    nodes += [n("MatMul", ["x", "wv"], ["v"], name="v_proj"), n("Transpose", ["kr"], ["kt"], perm=[0, 2, 1], name="tk"),
              n("MatMul", ["qr", "kt"], ["s"], name="score"), n("Softmax", ["s"], ["p"], axis=-1, name="softmax"),
              n("MatMul", ["p", "v"], ["o"], name="pv"), n("MatMul", ["o", "wo"], ["y"], name="o_proj")]
    inits = [_w("wq", d, d), _w("wk", d, d), _w("wv", d, d), _w("wo", d, d), _w("inv_freq", 1, d // 2),
             _i64("minus1", -1), _i64("pairs", 1, t, d // 2, 2), _i64("flat_rot", 1, t, d)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, t, d]),
                                           helper.make_tensor_value_info("positions", TensorProto.FLOAT, [1, t, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    path = tmp_path / "rotary_views.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HwsimWarning)
        ir = Model(str(path)).ir
    rotary = [b for b in ir.blocks if b.attrs.get("kind") == "rotary"]
    assert len(rotary) == 1 and {"cos_expand", "sin_expand", "cos_reshape", "sin_reshape"} <= set(rotary[0].nodes)
    assert not ir.unrecognised
