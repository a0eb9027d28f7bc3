"""`hwsim inspect`'s table says what each number is: tied weights counted once, weights read vs stored, and names
cut in the middle (the layer at the start and the op at the end both stay)."""

from __future__ import annotations

from mapping.workloads import Model
from simulator.inspect_report import _cut, block_rows, inspect_table

from conftest import ROOT

GPT2 = ROOT / "examples" / "gpt2.onnx"  # GPT-2 small: lm_head reads the token embedding's matrix (tied)


def test_tied_head_is_counted_once_and_said_so():
    model = Model(str(GPT2), {})
    work = model.prefill(1, 128)
    rows = {r["block"]: r for r in block_rows(model, work)}
    head, emb = rows["lm_head"], rows["token_embedding"]
    assert head["params"] == 0 and head["shares_weights_of"] == ["token_embedding"]
    assert emb["params"] == 50257 * 768
    assert sum(r["params"] for r in rows.values()) == work.params  # the blocks add up to the total
    text = inspect_table(model, work)
    assert "lm_head reads the weights of token_embedding (tied)" in text
    # the embedding gathers 128 rows of fp32: 128 * 768 * 4 bytes read of its 50257 * 768 * 4 stored
    assert emb["weight_bytes"] == 128 * 768 * 4 and emb["weight_stored_bytes"] == 50257 * 768 * 4
    assert "token_embedding reads 384.00 KiB of the 147.24 MiB its weights take" in text


def test_long_names_keep_both_ends():
    name = "/model/layers.31/self_attn/rotary_emb/MatMul_quant_dequantize_scale"
    cut = _cut(name, 40)
    assert len(cut) == 40 and cut.startswith("/model/layers.31") and cut.endswith("dequantize_scale") and "~" in cut
    assert _cut("short", 40) == "short"


def test_a_merged_constant_is_not_a_tie():
    # the dynamo exporter merges equal initializers: two layers' fresh norms (all ones, all zeros) then read one
    # tensor, which is not a tie of the model's weights; layers cloned with equal random weights stay shared
    path = ROOT / "tests" / "fixtures" / "corpus" / "models" / "dynamo__nn_encoder__op18.onnx"
    model = Model(str(path), {})
    rows = {r["block"]: r for r in block_rows(model, model.prefill(1, 16))}
    assert "encoder.0.norm" not in rows["encoder.0.self_attention"]["shares_weights_of"]
    assert "encoder.0.norm" not in rows["encoder.1.norm"]["shares_weights_of"]
    assert rows["encoder.1.mlp"]["shares_weights_of"] == ["encoder.0.mlp"]
