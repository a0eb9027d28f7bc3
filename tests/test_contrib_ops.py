"""onnxruntime contrib ops: bound shapes equal onnxruntime's, and FLOPs/bytes equal independent counts.

Each case is a one-node model built with onnx.helper (weights present so that onnxruntime runs it on CPU);
the shapes hwsim binds for every output must equal the ones onnxruntime produces.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from mapping.onnx_graph import load_graph
from mapping.op_costs import Precision, cost_ops, tensor_classes
from mapping.shape_binding import bind

ort = pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(0)
B, S, P, D, N, KV, H = 2, 3, 4, 32, 4, 2, 16 # batch, new tokens, past, hidden, heads, kv heads, head dim


def _f(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _u8(*shape: int) -> np.ndarray:
    return RNG.integers(0, 255, size=shape).astype(np.uint8)


def _i8(*shape: int) -> np.ndarray:
    return RNG.integers(-100, 100, size=shape).astype(np.int8)


def _model(op: str, inputs: list[tuple[str, np.ndarray | None, bool]], outputs: list[str], domain="com.microsoft",
           **attrs) -> onnx.ModelProto:
    """One node; each input is (name, value, is_initializer); a None value is an absent optional input."""
    inits, graph_inputs, names = [], [], []
    for name, value, init in inputs:
        if value is None:
            names.append("")
            continue
        names.append(name)
        if init:
            inits.append(numpy_helper.from_array(value, name))
        else:
            graph_inputs.append(helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(value.dtype), list(value.shape)))
    node = helper.make_node(op, names, outputs, name="n0", domain=domain, **attrs)
    outs = [helper.make_empty_tensor_value_info(o) for o in outputs if o]
    graph = helper.make_graph([node], "g", graph_inputs, outs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])


def _nbits(k: int, n: int, block: int = 16):
    blocks = k // block
    return [("B", _u8(n, blocks, block // 2), True), ("scales", _f(n * blocks), True),
            ("zp", _u8(n * ((blocks + 1) // 2)), True)]


CASES = {
    "MatMulNBits": lambda: _model("MatMulNBits", [("A", _f(B, S, D), False), *_nbits(D, 48)], ["Y"],
                                  K=D, N=48, bits=4, block_size=16),
    "SkipLayerNormalization": lambda: _model(
        "SkipLayerNormalization", [("x", _f(B, S, D), False), ("skip", _f(B, S, D), False), ("g", _f(D), True),
                                   ("b", _f(D), True), ("bias", _f(D), True)], ["y", "mean", "inv_std", "sum"]),
    "SkipLayerNormalization_two_outputs": lambda: _model(
        "SkipLayerNormalization", [("x", _f(B, S, D), False), ("skip", _f(B, S, D), False), ("g", _f(D), True),
                                   ("b", _f(D), True)], ["y", "", "", "sum"]),
    "SkipSimplifiedLayerNormalization": lambda: _model(
        "SkipSimplifiedLayerNormalization", [("x", _f(B, S, D), False), ("skip", _f(B, S, D), False),
                                             ("g", _f(D), True)], ["y", "", "", "sum"], epsilon=1e-6),
    "SimplifiedLayerNormalization": lambda: _model(
        "SimplifiedLayerNormalization", [("x", _f(B, S, D), False), ("g", _f(D), True)], ["y"], domain="",
        axis=-1, epsilon=1e-6),
    "FastGelu": lambda: _model("FastGelu", [("x", _f(B, S, D), False), ("b", _f(D), True)], ["y"]),
    "BiasGelu": lambda: _model("BiasGelu", [("x", _f(B, S, D), False), ("b", _f(D), True)], ["y"]),
    "Gelu": lambda: _model("Gelu", [("x", _f(B, S, D), False)], ["y"]),
    "QuickGelu": lambda: _model("QuickGelu", [("x", _f(B, S, D), False)], ["y"], alpha=1.702),
    "FusedMatMul": lambda: _model("FusedMatMul", [("a", _f(B, S, D), False), ("w", _f(48, D), True)], ["y"],
                                  transB=1, alpha=0.5),
    "RotaryEmbedding": lambda: _model(
        "RotaryEmbedding", [("x", _f(B, S, N * H), False),
                            ("pos", np.tile(np.arange(S, dtype=np.int64), (B, 1)), False),
                            ("cos", _f(16, H // 2), True), ("sin", _f(16, H // 2), True)], ["y"], num_heads=N),
    "GatherBlockQuantized": lambda: _model(
        "GatherBlockQuantized", [("table", _u8(50, D // 2), True),
                                 ("ids", RNG.integers(0, 50, size=(B, S)).astype(np.int64), False),
                                 ("scales", _f(50, D // 16), True)], ["y"],
        gather_axis=0, quantize_axis=1, block_size=16, bits=4),
    "EmbedLayerNormalization": lambda: _model(
        "EmbedLayerNormalization", [("ids", RNG.integers(0, 50, size=(B, S)).astype(np.int32), False),
                                    ("seg", np.zeros((B, S), np.int32), False), ("word", _f(50, D), True),
                                    ("posemb", _f(16, D), True), ("segemb", _f(2, D), True), ("g", _f(D), True),
                                    ("b", _f(D), True), ("mask", np.ones((B, S), np.int32), False)],
        ["y", "mask_index"], epsilon=1e-12),
    "Attention": lambda: _model(
        "Attention", [("x", _f(B, S, D), False), ("w", _f(D, 3 * D), True), ("bias", _f(3 * D), True),
                      ("mask", np.ones((B, P + S), np.int32), False), ("past", _f(2, B, N, P, D // N), False)],
        ["y", "present"], num_heads=N, unidirectional=1),
    "Attention_no_past": lambda: _model(
        "Attention", [("x", _f(B, S, D), False), ("w", _f(D, 3 * D), True), ("bias", _f(3 * D), True)],
        ["y"], num_heads=N),
    "MultiHeadAttention": lambda: _model(
        "MultiHeadAttention", [("q", _f(B, S, D), False), ("k", _f(B, S, D), False), ("v", _f(B, S, D), False),
                               ("bias", None, True), ("kpm", None, False), ("ab", None, False),
                               ("past_k", _f(B, N, P, D // N), False), ("past_v", _f(B, N, P, D // N), False)],
        ["y", "present_k", "present_v"], num_heads=N),
    "MultiHeadAttention_cross": lambda: _model(
        "MultiHeadAttention", [("q", _f(B, S, D), False), ("k", _f(B, 7, D), False), ("v", _f(B, 7, D), False)],
        ["y"], num_heads=N),
    "GroupQueryAttention": lambda: _model(
        "GroupQueryAttention", [("q", _f(B, 1, N * H), False), ("k", _f(B, 1, KV * H), False),
                                ("v", _f(B, 1, KV * H), False), ("past_k", _f(B, KV, P, H), False),
                                ("past_v", _f(B, KV, P, H), False),
                                ("seqlens_k", np.full((B,), P, np.int32), False),
                                ("total", np.array(P + 1, np.int32), False)],
        ["y", "present_k", "present_v"], num_heads=N, kv_num_heads=KV),
    "GroupQueryAttention_packed_rotary": lambda: _model(
        "GroupQueryAttention", [("qkv", _f(B, 1, (N + 2 * KV) * H), False), ("k", None, False),
                                ("v", None, False), ("past_k", _f(B, KV, P, H), False),
                                ("past_v", _f(B, KV, P, H), False),
                                ("seqlens_k", np.full((B,), P, np.int32), False),
                                ("total", np.array(P + 1, np.int32), False),
                                ("cos", _f(16, H // 2), True), ("sin", _f(16, H // 2), True)],
        ["y", "present_k", "present_v"], num_heads=N, kv_num_heads=KV, do_rotary=1),
    "QAttention": lambda: _model(
        "QAttention", [("x", _u8(B, S, D), False), ("w", _u8(D, 3 * D), True), ("bias", _f(3 * D), True),
                       ("xs", np.array(0.02, np.float32), True), ("ws", np.array(0.01, np.float32), True),
                       ("mask", None, False), ("xzp", np.array(128, np.uint8), True),
                       ("wzp", np.array(128, np.uint8), True)], ["y"], num_heads=N),
    "DynamicQuantizeMatMul": lambda: _model(
        "DynamicQuantizeMatMul", [("a", _f(B, S, D), False), ("w", _i8(D, 48), True),
                                  ("ws", np.array([0.01], np.float32), True), ("wzp", np.array([0], np.int8), True),
                                  ("bias", _f(48), True)], ["y"]),
    "MatMulIntegerToFloat": lambda: _model(
        "MatMulIntegerToFloat", [("a", _u8(B, S, D), False), ("w", _i8(D, 48), True),
                                 ("as", np.array(0.02, np.float32), True), ("ws", np.array(0.01, np.float32), True),
                                 ("azp", np.array(128, np.uint8), True)], ["y"]),
}


def _run(name: str, tmp_path) -> tuple:
    model = CASES[name]()
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    values = {}
    for vi in model.graph.input:
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        dt = helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
        gqa = "GroupQuery" in name  # onnxruntime's CPU kernel takes one new token per sequence with a past
        if vi.name == "seqlens_k":
            values[vi.name] = np.full(shape, P + (0 if gqa else S - 1), dt)
        elif vi.name == "total":
            values[vi.name] = np.array(P + (1 if gqa else S), dt)
        elif vi.name == "pos":
            values[vi.name] = np.tile(np.arange(S, dtype=dt), (B, 1))
        elif vi.name in ("qlen", "klen"):
            values[vi.name] = np.array(S if vi.name == "qlen" else P + S, dt)
        elif vi.name == "mask":
            values[vi.name] = np.ones(shape, dt)
        elif np.issubdtype(dt, np.integer):
            values[vi.name] = np.zeros(shape, dt)
        else:
            values[vi.name] = RNG.standard_normal(shape).astype(dt)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    results = session.run(None, values)
    small = {k: v for k, v in values.items() if v.size <= 64 and np.issubdtype(v.dtype, np.integer)}
    graph = load_graph(str(path))
    bound = bind(graph, {}, small)
    return model, graph, bound, dict(zip([o.name for o in session.get_outputs()], results))


@pytest.mark.parametrize("name", sorted(CASES))
def test_contrib_output_shapes_equal_onnxruntime(name: str, tmp_path) -> None:
    _, graph, bound, results = _run(name, tmp_path)
    for out, value in results.items():
        assert bound.shapes[out] == tuple(value.shape), (name, out)
    classes = tensor_classes(bound, set())
    parts = cost_ops(bound, graph.nodes[0], classes, Precision())
    assert parts and all(np.isfinite(p.flops) and p.flops > 0 and p.bytes > 0 for p in parts)


def test_gqa_flops_and_kv_bytes_match_analytic(tmp_path) -> None:
    _, graph, bound, _ = _run("GroupQueryAttention", tmp_path)
    parts = cost_ops(bound, graph.nodes[0], tensor_classes(bound, {"past_k", "past_v"}), Precision())
    by_role = {p.role: p for p in parts}
    total = P + 1
    assert by_role["score"].matmul.batch == B * N and by_role["score"].matmul.n == total
    assert by_role["score"].matmul.k == H and by_role["pv"].matmul.n == H
    scores = B * N * 1 * total
    # scores 2*H per score + scaling; softmax 5 per score; PV 2*H per score
    assert sum(p.flops for p in parts) == 2 * scores * H + scores + 5 * scores + 2 * scores * H
    # KV cache: the past positions of K and V read (fp32), the new tokens' K and V written
    assert sum(p.kv_read_bytes for p in parts) == 2 * B * KV * P * H * 4
    assert sum(p.kv_write_bytes for p in parts) == 2 * B * KV * 1 * H * 4


def test_attention_parts_match_analytic(tmp_path) -> None:
    _, graph, bound, _ = _run("Attention", tmp_path)
    parts = cost_ops(bound, graph.nodes[0], tensor_classes(bound, {"past"}), Precision())
    assert [p.role for p in parts] == ["qkv_proj", "score", "softmax", "pv"]
    proj = parts[0]
    assert (proj.matmul.m, proj.matmul.k, proj.matmul.n, proj.matmul.weight_operand) == (B * S, D, 3 * D, True)
    assert proj.weight_bytes == (D * 3 * D + 3 * D) * 4
    mm = 2 * B * S * D * 3 * D + 2 * 2 * B * N * S * (P + S) * (D // N)
    assert sum(2 * p.matmul.batch * p.matmul.m * p.matmul.k * p.matmul.n for p in parts if p.matmul) == mm


def test_matmul_nbits_reads_int4_weights_as_stored(tmp_path) -> None:
    _, graph, bound, _ = _run("MatMulNBits", tmp_path)
    (op,) = cost_ops(bound, graph.nodes[0], tensor_classes(bound, set()), Precision(weights="float16"))
    blocks = D // 16
    stored = 48 * blocks * 8 + 48 * blocks * 2 + 48 * ((blocks + 1) // 2)  # B (uint8) + scales (fp16) + zp
    assert op.weight_bytes == stored
    assert op.matmul.b_dtype == "int4" and (op.matmul.m, op.matmul.k, op.matmul.n) == (B * S, D, 48)
    assert op.flops == 2 * B * S * D * 48
    assert graph.tensors["B"].role == "weight" and graph.tensors["B"].bits == 4


def _save(tmp_path, nodes, inputs, outputs, inits, name="g.onnx") -> str:
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    path = str(tmp_path / name)
    onnx.save(model, path)
    return path


def _tiny_decoder(tmp_path, vocab: int = 40) -> str:
    """ids -> embedding -> fused causal Attention (no KV-cache inputs) -> output projection -> LM head."""
    ids = helper.make_tensor_value_info("input_ids", onnx.TensorProto.INT64, ["batch", "sequence"])
    logits = helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["batch", "sequence", vocab])
    inits = [numpy_helper.from_array(_f(vocab, D), "emb"), numpy_helper.from_array(_f(D, 3 * D), "wqkv"),
             numpy_helper.from_array(_f(3 * D), "bqkv"), numpy_helper.from_array(_f(D, D), "wo"),
             numpy_helper.from_array(_f(D, vocab), "head")]
    nodes = [helper.make_node("Gather", ["emb", "input_ids"], ["x"], name="embed"),
             helper.make_node("Attention", ["x", "wqkv", "bqkv"], ["att"], name="attn", domain="com.microsoft",
                              num_heads=N, unidirectional=1),
             helper.make_node("MatMul", ["att", "wo"], ["o"], name="o_proj"),
             helper.make_node("Add", ["o", "x"], ["r"], name="residual"),
             helper.make_node("MatMul", ["r", "head"], ["logits"], name="lm_head")]
    return _save(tmp_path, nodes, [ids], [logits], inits)


def test_fused_attention_decode_without_kv_inputs_attends_to_the_context(tmp_path) -> None:
    from mapping.workloads import Model

    model = Model(_tiny_decoder(tmp_path))
    (block,) = model.ir.attentions()
    a = block.attention
    assert (a.heads, a.kv_heads, a.head_dim, a.causal, a.kind) == (N, N, D // N, True, "self")
    assert a.o_proj == "o_proj" and a.fused_qkv and model.ir.architecture == "decoder-only"
    step = model.decode(2, 30)
    # one token per sequence: QKV, O and LM-head GEMMs, plus scores and PV over 31 keys per head
    expected = 2 * 2 * (D * 3 * D + D * D + D * 40) + 2 * 2 * 2 * N * 31 * (D // N)
    assert step.matmul_flops == expected
    score = next(o for o in step.ops if o.role == "score")
    assert score.matmul.n == 31 and score.kv_read_bytes == 2 * N * 30 * (D // N) * 4  # the 30 cached keys
    assert model.prefill(2, 7).matmul_flops == 2 * 2 * 7 * (D * 3 * D + D * D + D * 40) + 2 * 2 * 2 * N * 7 * 7 * (D // N)


def test_multi_head_attention_cross_and_cached_self(tmp_path) -> None:
    from mapping.recognize import recognise

    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", "sequence", D])
    enc = helper.make_tensor_value_info("encoder_hidden_states", onnx.TensorProto.FLOAT, ["batch", "enc", D])
    pk = helper.make_tensor_value_info("past_key", onnx.TensorProto.FLOAT, ["batch", N, "past", D // N])
    pv = helper.make_tensor_value_info("past_value", onnx.TensorProto.FLOAT, ["batch", N, "past", D // N])
    out = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", "sequence", D])
    inits = [numpy_helper.from_array(_f(D, D), n) for n in ("wq", "wk", "wv", "wq2", "wk2", "wv2")]
    nodes = [helper.make_node("MatMul", ["x", "wq"], ["q"], name="q_proj"),
             helper.make_node("MatMul", ["x", "wk"], ["k"], name="k_proj"),
             helper.make_node("MatMul", ["x", "wv"], ["v"], name="v_proj"),
             helper.make_node("MultiHeadAttention", ["q", "k", "v", "", "", "", "past_key", "past_value"],
                              ["s", "present_key", "present_value"], name="self_attn", domain="com.microsoft",
                              num_heads=N),
             helper.make_node("MatMul", ["s", "wq2"], ["q2"], name="q2_proj"),
             helper.make_node("MatMul", ["encoder_hidden_states", "wk2"], ["k2"], name="k2_proj"),
             helper.make_node("MatMul", ["encoder_hidden_states", "wv2"], ["v2"], name="v2_proj"),
             helper.make_node("MultiHeadAttention", ["q2", "k2", "v2"], ["y"], name="cross_attn",
                              domain="com.microsoft", num_heads=N)]
    ir = recognise(load_graph(_save(tmp_path, nodes, [x, enc, pk, pv], [out], inits)))
    by_name = {b.attention.score: b.attention for b in ir.attentions()}
    self_attn, cross = by_name["self_attn"], by_name["cross_attn"]
    assert (self_attn.kind, self_attn.causal, self_attn.q_proj, self_attn.k_proj) == ("self", True, "q_proj", "k_proj")
    assert (cross.kind, cross.causal, cross.k_proj, cross.v_proj) == ("cross", False, "k2_proj", "v2_proj")
    assert self_attn.head_dim == D // N and cross.heads == N


def test_bad_contrib_nodes_are_hwsim_errors(tmp_path) -> None:
    from hardware.errors import HwsimError

    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, D])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    bad_k = helper.make_node("MatMulNBits", ["x", "B", "scales"], ["y"], name="mm", domain="com.microsoft",
                             K=D * 2, N=48, bits=4, block_size=16)
    inits = [numpy_helper.from_array(v, n) for n, v, _ in _nbits(D * 2, 48)[:2]]
    with pytest.raises(HwsimError, match="'mm'.*K is 64"):
        bind(load_graph(_save(tmp_path, [bad_k], [x], [y], inits, "k.onnx")), {})
    unknown = helper.make_node("NoSuchFusedOp", ["x"], ["y"], name="odd", domain="com.microsoft")
    with pytest.raises(HwsimError, match="'odd'.*NoSuchFusedOp"):
        bind(load_graph(_save(tmp_path, [unknown], [x], [y], [], "u.onnx")), {})


def test_relative_position_bias_shape_per_onnxruntime_docs(tmp_path) -> None:
    # CUDA-only in onnxruntime, so no CPU run: ContribOperators.md gives output (1, num_heads, q_len, k_len)
    model = _model("RelativePositionBias", [("table", _f(32, N), True), ("qlen", np.array(S, np.int64), False),
                                            ("klen", np.array(P + S, np.int64), False)], ["y"], max_distance=128,
                   is_bidirectional=1)
    path = tmp_path / "rpb.onnx"
    onnx.save(model, path)
    graph = load_graph(str(path))
    bound = bind(graph, {}, {"qlen": np.array(S, np.int64), "klen": np.array(P + S, np.int64)})
    assert bound.shapes["y"] == (1, N, S, P + S)
    (op,) = cost_ops(bound, graph.nodes[0], tensor_classes(bound, set()), Precision())
    assert op.weight_bytes == 32 * N * 4 and op.act_write_bytes == N * S * (P + S) * 4
