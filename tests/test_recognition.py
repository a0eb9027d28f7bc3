"""The recognised IR against the configs the fixture models were built from."""

from __future__ import annotations

import pytest

from mapping.workloads import Model

from conftest import EXAMPLE_MODELS, EXAMPLES, FIXTURE_MODELS, FIXTURES, example_params, shared_model

ARCH = {"bert": "encoder-only", "vit": "encoder-only", "t5": "encoder-decoder"}


def _check(model: Model, entry: dict) -> None:
    cfg = entry["config"]
    ir = model.ir
    assert ir.architecture == ARCH.get(entry["arch"], "decoder-only")
    if entry["arch"] == "t5":
        assert ir.layers == {"encoder": cfg["n_encoder_layers"], "decoder": cfg["n_decoder_layers"]}
        assert len(ir.attentions("cross")) == cfg["n_decoder_layers"]
    else:
        assert ir.n_layers == cfg["n_layers"]
    assert (ir.heads, ir.kv_heads, ir.head_dim) == (cfg["n_heads"], cfg["n_kv_heads"], cfg["head_dim"])
    assert ir.d_ff == cfg["d_ff"]
    assert ir.gated_mlp == cfg["gated_mlp"]
    assert ir.norm == cfg["norm"]
    assert ir.activation.split("_")[0] in cfg["activation"]
    for block in ir.attentions("self"):
        expected_causal = cfg["causal"] and block.stack == "decoder"
        assert block.attention.causal == (expected_causal if entry["arch"] == "t5" else cfg["causal"])
    assert ir.unrecognised == []


@pytest.mark.parametrize("name", sorted(FIXTURE_MODELS))
def test_fixture_ir_matches_config(name: str) -> None:
    _check(shared_model(FIXTURES / name), FIXTURE_MODELS[name])


@pytest.mark.parametrize("name", example_params())
def test_shipped_model_ir_matches_config(name: str) -> None:
    _check(shared_model(EXAMPLES / name), EXAMPLE_MODELS[name])


def test_blocks_own_each_node_once_and_roles_are_set() -> None:
    model = shared_model(FIXTURES / "llama_ts.onnx")
    seen: set[str] = set()
    for b in model.ir.blocks:
        assert not (set(b.nodes) & seen)
        seen |= set(b.nodes)
    roles = {o.role for o in model.prefill(1, 8).ops if o.role}
    assert {"q_proj", "k_proj", "v_proj", "o_proj", "score", "softmax", "pv", "up", "down"} <= roles


def test_encoder_decoder_decode_skips_the_encoder() -> None:
    """A T5 decode step runs only decoder work: encoder and cross-attention K/V are cached from prefill."""
    model = shared_model(FIXTURES / "t5_ts.onnx")
    step = model.decode(batch=1, context=6, prompt_len=7)
    blocks = {o.block for o in step.ops if o.flops}
    assert not any(b.startswith("encoder.") for b in blocks)
    assert any(b.startswith("decoder.") for b in blocks)
