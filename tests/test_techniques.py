"""Inference techniques (mapping.techniques, simulator.speculative): known answers and invariants."""

from __future__ import annotations

import math

import pytest
from click.testing import CliRunner

from hardware.errors import HwsimError
from hardware.targets import load_target
from mapping.op_costs import Precision
from mapping.techniques import TechniqueModel, Techniques
from mapping.techniques.attention import decode_keys, prefill_keys
from mapping.techniques.kv import kv_factor, resident_tokens
from mapping.techniques.moe import expected_experts
from mapping.techniques.speculative import expected_tokens, leviathan
from mapping.workloads import Model
from simulator.cli import main
from simulator.technique_run import run_simulation

LLAMA = "tests/fixtures/models/llama_ts.onnx"
MIXTRAL = "tests/fixtures/corpus/models/torch-torchscript__mixtral__tf4.onnx"
FP16 = Precision("float16", "float16", "float16")


@pytest.fixture(scope="module")
def llama() -> Model:
    return Model(LLAMA)


@pytest.fixture(scope="module")
def a100():
    return load_target("a100-80gb")


def test_expected_tokens_formula():
    # Leviathan et al. eq. 1 by hand: K = 3, A = 0.5 -> 1 + .5 + .25 + .125
    assert leviathan(3, 0.5) == pytest.approx(1.875)
    for k in (1, 4, 7):
        for a in (0.0, 0.3, 0.8, 0.99):
            assert expected_tokens(k, a) == pytest.approx(leviathan(k, a))
        assert expected_tokens(k, 1.0) == k + 1
        assert expected_tokens(k, 0.0) == 1
    # per position: 1 + .9 + .9 x .5
    assert expected_tokens(2, [0.9, 0.5]) == pytest.approx(2.35)


def _spec(llama, a100, acceptance, plain, k=3, gen=5):
    from simulator.speculative import simulate_speculative

    t = Techniques(spec_tokens=k, acceptance=acceptance, draft=LLAMA)
    return simulate_speculative(llama, a100, 1, 8, gen, FP16, {}, t, llama, 0, plain).techniques["speculative"]


def test_speculative_bounds(llama, a100):
    from simulator.simulate import simulate

    plain = simulate(llama, a100, "generate", 1, 8, 5, FP16, {}, trace_steps=0)
    none = _spec(llama, a100, 0.0, plain)
    assert none["tokens_per_iteration"] == 1.0
    assert none["speedup"] < 1.0  # A = 0: K draft steps and a K+1-token pass per token, never faster
    full = _spec(llama, a100, 1.0, plain)
    assert full["tokens_per_iteration"] == 4.0  # K + 1
    assert full["iterations"] == pytest.approx(4 / 4)
    assert full["speedup"] > none["speedup"]
    assert full["energy_per_accepted_token_j"] < none["energy_per_accepted_token_j"]


def test_kv_quantised_bytes(llama):
    half = llama.kv_cache_bytes(1, 4096, Precision(kv_cache="int8"))
    assert half * 2 == llama.kv_cache_bytes(1, 4096, FP16)
    scaled = TechniqueModel(llama, Techniques(kv_group=128))
    assert scaled.kv_cache_bytes(1, 4096, Precision(kv_cache="int8")) == int(half * (1 + 4 / 128))
    # KIVI residual: the last 128 tokens in fp16 -> (3968 x (0.5 + 4/32) + 128 x 2) / (4096 x 0.5)
    assert kv_factor("int4", 4096, 32, 128) == pytest.approx((3968 * 0.625 + 128 * 2) / 2048)
    assert resident_tokens(100, block=16) == 112 and resident_tokens(100, budget=40, block=16) == 48


def test_kv_int8_long_context_decode(llama, a100):
    # default decode kernel (FlashDecoding): the fixture's head dim 16 is outside Lean's supported set (64, 128), where
    # its grid cap of 32 CTAs per KV head leaves the kernel latency-bound whatever the KV bytes
    runs = {kv: run_simulation(llama, a100, "decode", 1, 1 << 21, 1, Precision(kv_cache=kv), {}, Techniques())
            for kv in ("float16", "int8")}
    dense, q8 = runs["float16"], runs["int8"]
    assert q8.traffic_bytes["dram"] < 0.55 * dense.traffic_bytes["dram"]  # the KV cache dominates the reads
    # half the bytes, but not half the time: FlashDecoding pads each head's one query row to a 64-row tensor-core
    # tile, so with int8 K/V (plus their conversion) the kernel turns compute-bound (MHA at batch 1)
    assert q8.latency_s < 0.9 * dense.latency_s
    assert q8.latency_s >= q8.traffic_bytes["dram"] / a100.achievable_dram_bandwidth  # never below its bytes


def test_window_caps_attention(llama, a100):
    t = TechniqueModel(llama, Techniques(window=256))
    assert decode_keys(10_000, window=256) == 256 and decode_keys(100, window=256) == 100
    assert decode_keys(10_000, window=256, sinks=4) == 260
    cost = {c: run_simulation(llama, a100, "decode", 1, c, 1, FP16, {}, Techniques(window=256)).latency_s
            for c in (1024, 8192, 65536)}
    assert cost[1024] == pytest.approx(cost[65536], rel=1e-9)
    assert t.kv_cache_bytes(1, 65536, FP16) == llama.kv_cache_bytes(1, 256, FP16)  # rolling buffer
    pre = t.prefill(1, 2048, FP16)
    score = next(o for o in pre.ops if o.role == "score")
    assert score.matmul.n == round(prefill_keys(2048, 256))
    assert prefill_keys(2048, 256) == pytest.approx((256 * 257 / 2 + (2048 - 256) * 256) / 2048)
    assert prefill_keys(2048, 4096) == 2048  # a window longer than the prompt changes nothing


def test_moe_expected_experts_and_ep(a100):
    assert expected_experts(8, 2, 1) == pytest.approx(2.0)
    assert expected_experts(8, 2, 4) == pytest.approx(8 * (1 - 0.75 ** 4))
    m = Model(MIXTRAL)
    plain = m.decode(2, 16, FP16)
    moe = TechniqueModel(m, Techniques()).decode(2, 16, FP16)
    experts = {b.name for b in m.ir.blocks if b.attrs.get("expert")}
    before = sum(o.weight_bytes for o in plain.ops if o.block in experts)
    after = sum(o.weight_bytes for o in moe.ops if o.block in experts)
    assert after == pytest.approx(before * expected_experts(4, 2, 2) / 4, rel=1e-3)  # balanced: 4 of 4 run
    ep = run_simulation(m, a100, "decode", 2, 16, 1, FP16, {}, Techniques(ep=2))
    assert any("all_to_all" in k for k in ep.ops)


@pytest.mark.parametrize("flags,message", [
    ({"kv_group": 64}, None), ({"sinks": 4}, "give --window"), ({"spec_tokens": 4}, "needs a draft"),
    ({"moe_imbalance": 2.0}, "add --ep N"), ({"block_sparse": 0.0}, "in (0, 1]"),
])
def test_flag_errors(flags, message):
    if message is None:
        from simulator.technique_run import check_precision

        with pytest.raises(HwsimError, match="add --kv-cache int8"):
            check_precision(Techniques.from_dict(flags), FP16)
        return
    with pytest.raises(HwsimError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Techniques.from_dict(flags)


def test_not_applicable_on_target():
    from simulator.technique_run import check_target

    with pytest.raises(HwsimError, match="expert parallelism needs several devices"):
        check_target(Techniques(ep=2), load_target("pim-gpt"), {}, "decode")
    with pytest.raises(HwsimError, match="use --phase generate"):
        check_target(Techniques(spec_heads=2, spec_tokens=2), load_target("a100-80gb"), {}, "decode")
    assert check_target(Techniques(window=8), load_target("u55c"), {}, "prefill")["design"] == "overlay"
    r = CliRunner().invoke(main, ["simulate", LLAMA, "--target", "pim-gpt", "--quiet", "--ep", "2"])
    assert r.exit_code == 2 and r.output.startswith("error: --ep 2: expert parallelism") and r.output.count("\n") == 1


def test_cli_speculative_on_pim():
    r = CliRunner().invoke(main, ["simulate", LLAMA, "--target", "pim-gpt", "--gen-len", "4", "--quiet",
                                  "--spec-heads", "2", "--acceptance", "0.8,0.5"])
    assert r.exit_code == 0, r.output
    assert "speculative medusa heads: K=2, 2.200 tokens per iteration" in r.output


@pytest.mark.heavy
def test_cli_techniques_on_fpga():
    for flags in (["--spec-heads", "2"], ["--window", "8"], ["--h2o", "8"]):
        r = CliRunner().invoke(main, ["simulate", LLAMA, "--target", "u55c", "--gen-len", "4", "--quiet", *flags])
        assert r.exit_code == 0, r.output


def test_sweep_technique_axis(tmp_path):
    from simulator.sweep.spec import sweep_from_dict

    spec = {"models": [LLAMA], "target": "a100-80gb",
            "workload": {"techniques": [{}, {"window": 64}, {"draft": LLAMA, "spec_tokens": 2}]}}
    sweep = sweep_from_dict(spec)
    points = [sweep.point(c) for c in sweep.grid()]
    assert [p.workload["techniques"] for p in points][:2] == [{}, {"window": 64}]
    assert len({p.point_id for p in points}) == 3
    plain = sweep_from_dict({"models": [LLAMA], "target": "a100-80gb"})
    assert "techniques" not in plain.point(plain.grid()[0]).workload  # older specs keep their ids
    with pytest.raises(HwsimError, match="unknown technique 'windw'"):
        sweep_from_dict({**spec, "workload": {"techniques": [{"windw": 3}]}})
    assert math.isfinite(sweep.size)


def test_published_files_parse_and_glob(tmp_path):
    from simulator.validation import techniques as tv

    assert any(p.name == "techniques_published.yaml" for p in tv.data_files())
    rows = tv.entries()
    assert len({r["id"] for r in rows}) == len(rows)
    na = next(r for r in rows if r.get("not_applicable"))
    row = tv.evaluate(na)
    assert row["predicted"] is None and row["reason"].startswith("not applicable: ")
    other = tmp_path / "techniques_published_lowbit.yaml"
    other.write_text("entries:\n  - {id: x, technique: int4, target: a100-80gb, published: {speedup: 2}}\n")
    with pytest.raises(HwsimError, match="source"):
        tv.entries([other])
    text = tv.report([{**row, "file": "a.yaml"}, {**row, "id": "y", "predicted": 2.2, "published": 2.0, "error": 0.1,
                                                   "file": "b.yaml"}])
    assert "| y |" in text and "+10%" in text and "not applicable" in text
    # a stated range is listed as such; an unconfirmed figure is marked and kept out of the mean error
    done = {**row, "id": "z", "predicted": 3.0, "published": 2.0, "error": 0.5, "file": "b.yaml", "kind": "measured",
            "unconfirmed": "table not read"}
    text = tv.report([{**row, "id": "r", "kind": "range", "high": 3.0, "published": 2.0, "file": "a.yaml"},
                      {**done, "id": "y", "unconfirmed": "", "predicted": 2.2, "error": 0.1}, done])
    assert "2.00-3.00x" in text and "+50% (unconfirmed)" in text and "mean absolute error is 10%" in text
    assert "**Unconfirmed**: table not read" in text
    other.write_text("entries:\n  - {id: x, technique: a, target: t4, model: m, published: {speedup: 2, source: s, "
                     "kind: range}}\n")
    with pytest.raises(HwsimError, match="speedup_high"):
        tv.entries([other])
    # an absolute figure (one run, no baseline) needs its measure; the report shows its unit
    other.write_text("entries:\n  - {id: x, technique: a, target: t4, model: m, published: {value: 81, source: s}}\n")
    with pytest.raises(HwsimError, match="measure decode_tokens_per_s"):
        tv.entries([other])
    other.write_text("entries:\n  - {id: x, technique: a, target: t4, model: m, measure: decode_tokens_per_s, "
                     "published: {value: 81, source: s}}\n")
    (absolute,) = tv.entries([other])
    text = tv.report([{**tv.evaluate({**absolute, "not_applicable": "n"}), "predicted": 90.0, "error": 90 / 81 - 1}])
    assert "| 90.00 tokens/s | 81.00 tokens/s | +11% |" in text


@pytest.mark.heavy
def test_techniques_report_window_entry():
    from simulator.validation import techniques as tv

    row = tv.evaluate(next(e for e in tv.entries() if e["id"] == "mistral-swa-16k"))
    # a window of a quarter of the prompt: faster, and never more than the ratio of keys read (dense causal / window)
    assert 1.0 < row["predicted"] <= 8192.5 / prefill_keys(16384, 4096) * 1.05
