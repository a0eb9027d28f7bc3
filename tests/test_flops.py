"""The importer's FLOP counts against independent analytic counts (within 1%, as the issue requires)."""

from __future__ import annotations

import pytest

from mapping.workloads import Model

from analytic import decoder_only, prefill_flops
from conftest import EXAMPLE_MODELS, EXAMPLES, FIXTURE_MODELS, FIXTURES, example_params, shared_model


def _model(folder, name: str, entry: dict) -> Model:
    dims = {"dec_seq": 5} if entry["arch"] == "t5" else None
    return shared_model(folder / name, dims)


@pytest.mark.parametrize("name", sorted(FIXTURE_MODELS))
def test_fixture_prefill_matmul_flops_match_analytic(name: str) -> None:
    entry = FIXTURE_MODELS[name]
    model = _model(FIXTURES, name, entry)
    work = model.prefill(batch=2, prompt_len=7)
    expected = prefill_flops(entry, batch=2, seq=7)
    assert work.matmul_flops == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize("name", example_params())
def test_shipped_model_flops_match_analytic(name: str) -> None:
    entry = EXAMPLE_MODELS[name]
    model = _model(EXAMPLES, name, entry)
    work = model.prefill(batch=1, prompt_len=128)
    expected = prefill_flops(entry, batch=1, seq=128)
    assert work.matmul_flops == pytest.approx(expected, rel=0.01)
    # at real widths the elementwise work is a small fraction: all FLOPs are within 1% of the matmul count too
    assert work.flops == pytest.approx(expected, rel=0.01)
    assert work.params == entry["n_params"] or abs(work.params - entry["n_params"]) <= entry["config"]["vocab"] * \
        entry["config"]["d_model"]  # exporters may store a tied LM head twice


@pytest.mark.parametrize("name", [n for n, e in sorted(FIXTURE_MODELS.items()) if e["config"]["causal"]
                                  and e["arch"] != "t5"])
def test_decode_step_flops_match_analytic(name: str) -> None:
    entry = FIXTURE_MODELS[name]
    model = shared_model(FIXTURES / name)
    context = 9
    work = model.decode(batch=3, context=context)
    expected = decoder_only(entry["config"], batch=3, q_len=1, kv_len=context + 1)
    assert work.matmul_flops == pytest.approx(expected, rel=0.01)


def test_decode_with_and_without_kv_inputs_agree() -> None:
    """The same GPT-2 config exported with and without past_key_values gives the same decode matmul work."""
    with_past = shared_model(FIXTURES / "gpt2_past_ts.onnx").decode(batch=2, context=20)
    without = shared_model(FIXTURES / "gpt2_ts.onnx").decode(batch=2, context=20)
    assert with_past.matmul_flops == pytest.approx(without.matmul_flops, rel=1e-9)
    assert with_past.kv_cache_bytes == without.kv_cache_bytes


def test_prefill_flops_grow_quadratically_in_attention_only() -> None:
    model = shared_model(FIXTURES / "gpt2_ts.onnx")
    a, b, c = (model.prefill(1, s).matmul_flops for s in (8, 16, 24))
    # f(s) = alpha*s + beta*s^2 with equal steps of 8: the second difference is 2 * 8^2 * beta
    beta = (c - 2 * b + a) / (2 * 8 ** 2)
    alpha = (b - beta * 16 ** 2) / 16
    assert beta == pytest.approx(2 * 2 * 4 * 16 * 2, rel=1e-9)  # 2 matmuls x 2 x heads x head_dim x layers
    assert alpha > 0
