"""Real optimized / quantized deployment graphs (tests/fixtures/contrib, made by make_contrib.py with
onnxruntime-genai's model builder, onnxruntime's transformer optimizer and its quantizers): they import, their
contrib-op shapes equal the ones onnxruntime produced, weights count at their stored width, the recognised
attention matches the config, and FLOPs equal the independent analytic count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mapping.op_costs import Precision
from mapping.shape_binding import bind
from mapping.workloads import Model
from simulator.inspect_report import inspect_table

from analytic import bert, decoder_only

FOLDER = Path(__file__).resolve().parent / "fixtures" / "contrib"
MODELS = json.loads((FOLDER / "manifest.json").read_text())["models"]

#: The tiny configs make_contrib.py builds from (hand-checked against its LLAMA / BERT dicts).
LLAMA = {"d_model": 64, "n_heads": 4, "n_kv_heads": 2, "head_dim": 16, "d_ff": 128, "gated_mlp": True,
         "n_layers": 2, "vocab": 256, "has_lm_head": True}
BERT = {"d_model": 64, "n_heads": 4, "n_kv_heads": 4, "head_dim": 16, "d_ff": 128, "n_layers": 2,
        "has_pooler": True, "gated_mlp": False}


@pytest.fixture(scope="module")
def models() -> dict[str, Model]:
    return {name: Model(str(FOLDER / entry["file"])) for name, entry in MODELS.items()}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_contrib_shapes_equal_onnxruntime(name: str, models) -> None:
    entry = MODELS[name]
    model = models[name]
    bound = bind(model.graph, entry["dims"])
    assert entry["contrib_output_shapes"] or "qd" in name
    for tensor, shape in entry["contrib_output_shapes"].items():
        assert bound.shapes[tensor] == tuple(shape), tensor


@pytest.mark.parametrize("name", sorted(MODELS))
def test_weight_bytes_are_the_stored_initializers(name: str, models) -> None:
    stored = models[name].weight_bytes(Precision())
    assert abs(stored - MODELS[name]["parameter_bytes"]) <= 0.01 * MODELS[name]["parameter_bytes"]
    # a weight precision override does not inflate already-quantized weights
    if "int4" in name or "q" in name.split("_")[-1]:
        assert models[name].weight_bytes(Precision(weights="float16")) < 0.6 * 2 * stored


@pytest.mark.parametrize("name", sorted(MODELS))
def test_recognised_attention_matches_config(name: str, models) -> None:
    ir = models[name].ir
    cfg = LLAMA if name.startswith("llama") else BERT
    assert (ir.heads, ir.kv_heads, ir.head_dim) == (cfg["n_heads"], cfg["n_kv_heads"], cfg["head_dim"])
    assert ir.architecture == ("decoder-only" if name.startswith("llama") else "encoder-only")
    assert ir.n_layers == cfg["n_layers"] and ir.d_ff == cfg["d_ff"]
    assert all(b.attention.causal == name.startswith("llama") for b in ir.attentions())
    assert not ir.unrecognised


@pytest.mark.parametrize("name", [n for n in sorted(MODELS) if n.startswith("llama")])
def test_genai_decode_and_prefill_flops_match_analytic(name: str, models) -> None:
    model = models[name]
    assert model.prefill(2, 9).matmul_flops == decoder_only(LLAMA, 2, 9, 9)
    step = model.decode(2, 40)
    assert step.matmul_flops == decoder_only(LLAMA, 2, 1, 41)
    # KV cache: 2 layers x (K and V) x batch x kv_heads x (context + 1) x head_dim, float32
    assert step.kv_cache_bytes == 2 * 2 * 2 * 2 * 41 * 16 * 4
    kv_read = sum(o.kv_read_bytes for o in step.ops)
    assert kv_read == 2 * 2 * 2 * 2 * 40 * 16 * 4  # the past positions of every layer's K and V


@pytest.mark.parametrize("name", ["bert_ortopt", "bert_qdynamic", "bert_qdq"])
def test_bert_graphs_flops_match_analytic(name: str, models) -> None:
    assert models[name].prefill(2, 8).matmul_flops == bert(BERT, 2, 8)


def test_int4_weights_read_at_half_a_byte(models) -> None:
    model = models["llama_genai_int4"]
    work = model.prefill(1, 4)
    nbits = [o for o in work.ops if o.op_type == "MatMulNBits"]
    assert nbits and all(o.matmul.b_dtype == "int4" and o.matmul.weight_operand for o in nbits)
    for o in nbits:  # B at 0.5 B/element, plus per-block scales (fp32) and packed zero points when present
        k, n = o.matmul.k, o.matmul.n
        node = model._node(o.node)
        blocks = -(-k // int(node.attr("block_size")))
        zero_points = n * -(-blocks // 2) if len(node.inputs) > 3 and node.inputs[3] else 0
        assert o.weight_bytes == k * n // 2 + n * blocks * 4 + zero_points
    text = inspect_table(model, work)
    assert "int4" in text and "not recognised: nothing" in text


def test_qdq_matmuls_read_int8(models) -> None:
    work = models["bert_qdq"].prefill(1, 8)
    linears = [o for o in work.ops if o.matmul is not None and o.matmul.weight_operand]
    assert linears and all(o.matmul.b_dtype == "int8" and o.matmul.a_dtype == "int8" for o in linears)
    for o in linears:
        if o.op_type == "MatMul":  # int8 weight + its per-tensor fp32 scale and int8 zero point, not fp32 weights
            assert o.weight_bytes == o.matmul.k * o.matmul.n + 4 + 1


def test_dynamic_quantized_matmuls_read_int8(models) -> None:
    work = models["bert_qdynamic"].prefill(1, 8)
    ints = [o for o in work.ops if o.op_type == "MatMulInteger" and o.matmul.weight_operand]
    assert len(ints) == 2 * 6 + 1  # q, k, v, o, up, down per layer + pooler
    for o in ints:  # int8 B and its int8 zero point; the uint8 activation quantized by DynamicQuantizeLinear
        assert o.weight_bytes == o.matmul.k * o.matmul.n + 1
        assert (o.matmul.a_dtype, o.matmul.b_dtype) == ("uint8", "int8")


@pytest.mark.parametrize("target", ["a100-80gb", "pim-gpt"])
def test_genai_graphs_simulate_with_int4_weights_moving_less(target: str, models) -> None:
    import math

    from hardware.targets import load_target
    from simulator.simulate import simulate

    preset = load_target(target)
    results = {name: simulate(models[name], preset, "generate", 1, 8, 2, Precision(), {})
               for name in ("llama_genai_int4", "llama_genai_fp32")}
    for r in results.values():
        assert math.isfinite(r.latency_s) and r.latency_s > 0
    if target == "a100-80gb":  # the int4 file's decode steps read packed weights: less DRAM traffic
        dram = {name: r.traffic_bytes.get("dram") or r.traffic_bytes.get("hbm") for name, r in results.items()}
        assert 0 < dram["llama_genai_int4"] < 0.6 * dram["llama_genai_fp32"]
