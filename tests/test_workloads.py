"""Workload invariants: precision overrides, KV-cache growth, generation, bytes."""

from __future__ import annotations

import pytest

from hardware.dtypes import parse_precision
from hardware.errors import HwsimError
from mapping.op_costs import Precision
from mapping.workloads import Model

from conftest import FIXTURES


@pytest.fixture(scope="module")
def llama() -> Model:
    return Model(str(FIXTURES / "llama_ts.onnx"))


def test_weight_bytes_follow_precision(llama: Model) -> None:
    fp32 = llama.prefill(1, 8).weight_bytes
    assert fp32 == 4 * llama.params
    assert llama.prefill(1, 8, Precision(weights="float16")).weight_bytes == 2 * llama.params
    whole = Precision(weights="int4", head="same")  # the embedding and LM head quantised too
    assert llama.prefill(1, 8, whole).weight_bytes == pytest.approx(llama.params / 2, abs=64)
    # by default they keep the model's format (fp32 here): 4 - 0.5 bytes more per element of theirs
    heads = sum(llama._numel(n) for n in llama.head_tensors() if n in llama.graph.weight_names)
    assert llama.prefill(1, 8, Precision(weights="int4")).weight_bytes == pytest.approx(
        llama.params / 2 + 3.5 * heads, abs=64)


def test_kv_cache_bytes_gqa(llama: Model) -> None:
    # 2 (K and V) x layers x batch x kv_heads x head_dim x tokens x bytes; GQA: 2 kv heads, not 4
    work = llama.decode(batch=3, context=10, precision=Precision(kv_cache="float16"))
    assert work.kv_cache_bytes == 2 * 2 * 3 * 2 * 16 * 11 * 2
    assert work.kv_write_bytes == 2 * 2 * 3 * 2 * 16 * 1 * 2


def test_decode_reads_more_kv_as_context_grows(llama: Model) -> None:
    kv = [sum(o.kv_read_bytes for o in llama.decode(1, c).ops) for c in (4, 8, 16)]
    assert kv[0] < kv[1] < kv[2]
    # the KV-cache reads are linear in the keys attended to (context + 1)
    assert (kv[2] - kv[1]) * 1 == pytest.approx((kv[1] - kv[0]) * 2)


def test_activation_precision_changes_activation_bytes_only(llama: Model) -> None:
    base = llama.prefill(1, 8)
    half = llama.prefill(1, 8, Precision(activations="float16"))
    assert half.activation_bytes < base.activation_bytes
    assert half.weight_bytes == base.weight_bytes
    assert half.flops == base.flops


def test_generate_steps_and_contexts(llama: Model) -> None:
    gen = llama.generate(batch=1, prompt_len=5, gen_len=4)
    steps = list(gen.steps())
    assert [s.context for s in steps] == [5, 6, 7]
    assert gen.prefill.seq == 5
    assert steps[-1].kv_cache_bytes > steps[0].kv_cache_bytes


def test_bytes_are_non_negative_and_add_up(llama: Model) -> None:
    work = llama.prefill(2, 8)
    for o in work.ops:
        assert o.flops >= 0 and o.bytes >= 0
    assert work.bytes_moved == sum(o.weight_bytes + o.act_read_bytes + o.act_write_bytes + o.kv_read_bytes
                                   + o.kv_write_bytes for o in work.ops)


def test_decode_on_encoder_only_model_is_a_clear_error() -> None:
    model = Model(str(FIXTURES / "bert_ts.onnx"))
    with pytest.raises(HwsimError, match="decode phase needs"):
        model.decode(1, 4)


@pytest.mark.parametrize("text,expected", [("fp16", "float16"), ("BF16", "bfloat16"), ("int4", "int4"),
                                           ("fp8", "float8e4m3"), ("float32", "float32")])
def test_precision_names(text: str, expected: str) -> None:
    assert parse_precision(text, "--weights") == expected


def test_unknown_precision_names_the_flag() -> None:
    with pytest.raises(HwsimError, match="--weights: unknown precision 'fp5'"):
        parse_precision("fp5", "--weights")


def test_fixed_length_graph_counts_its_own_tokens() -> None:
    # ViT 32x32 image, patch 8: 16 patches + [CLS] = 17 tokens whatever --seq says
    work = Model(str(FIXTURES / "vit_ts.onnx")).prefill(batch=2, prompt_len=128)
    assert work.seq == 17 and work.tokens == 34
