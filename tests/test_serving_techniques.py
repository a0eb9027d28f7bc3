"""hwsim serve with inference techniques: a lone request matches simulate with the technique; a quantised KV cache
holds more tokens, so more requests run at once."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hardware.targets import load_target
from mapping.op_costs import Precision
from mapping.techniques import Techniques
from simulator.cli import main
from simulator.serving.arrivals import parse_arrivals
from simulator.serving.distributions import parse_length
from simulator.serving.metrics import Slo, summarise
from simulator.serving.setup import prepare, run_serving
from simulator.technique_run import run_simulation

GPT2 = "tests/fixtures/models/gpt2_ts.onnx"
FP16 = Precision("float16", "float16", "float16")


@pytest.fixture(scope="module")
def a100():
    return load_target("a100-80gb")


def _serve(setup, n, rate="poisson:1", prompt="64", gen="16", max_batch=64):
    run = run_serving(setup, parse_arrivals(rate), n, parse_length(prompt, "p"), parse_length(gen, "g"), "vllm",
                      max_batch, 2048, 0)
    return run, summarise(run, Slo())


@pytest.mark.heavy  # a few seconds: the CLI test below runs serve with Medusa heads in the default suite
@pytest.mark.parametrize("flags", [{"spec_heads": 2, "spec_tokens": 2, "acceptance": 0.7},
                                   {"draft": GPT2, "spec_tokens": 3, "acceptance": [0.9, 0.6, 0.5]}])
def test_low_rate_serve_matches_simulate_with_speculation(gpt2, a100, flags):
    """One request at a time (1/s, each lasting microseconds): TTFT is simulate's prefill (with the draft's), TPOT
    its speculative decode time per accepted token, E2E its latency."""
    t = Techniques.from_dict(flags)
    setup = prepare(gpt2, a100, {}, FP16, per_octave=0, techniques=t)
    _, m = _serve(setup, 3, gen="8")
    sim = run_simulation(gpt2, a100, "generate", 1, 64, 8, FP16, {}, t, trace_steps=0)
    prefill = sum(p.latency_s for p in sim.phases if p.name == "prefill")
    decode = sim.latency_s - prefill
    assert m["ttft_s"]["max"] == pytest.approx(prefill, rel=0.02)
    assert m["tpot_s"]["p50"] == pytest.approx(decode / 7, rel=0.02)
    assert m["e2e_s"]["mean"] == pytest.approx(sim.latency_s, rel=0.02)
    plain = prepare(gpt2, a100, {}, FP16, per_octave=0)
    _, base = _serve(plain, 2, gen="8")
    # charged per accepted token: Medusa heads beat plain decoding; a draft as large as the target (itself) cannot
    if "spec_heads" in flags:
        assert 0 < m["tpot_s"]["p50"] < base["tpot_s"]["p50"]
    else:
        assert m["tpot_s"]["p50"] > base["tpot_s"]["p50"]


def _small_memory(gpt2, a100):
    """Setups with memory for the weights and 20 fp16 KV blocks: fp16, int8 and int8 with group scales."""
    fp16 = prepare(gpt2, a100, {}, FP16, per_octave=2)
    fraction = (fp16.weight_bytes + 20 * 16 * fp16.kv_bytes_per_token + 1) / fp16.capacity_bytes
    small = prepare(gpt2, a100, {}, FP16, per_octave=1, memory_fraction=fraction)
    int8 = prepare(gpt2, a100, {}, Precision("float16", "float16", "int8"), per_octave=1, memory_fraction=fraction)
    scaled = prepare(gpt2, a100, {}, Precision("float16", "float16", "int8"), per_octave=1, memory_fraction=fraction,
                     techniques=Techniques(kv_group=32))
    return small, int8, scaled


def test_kv_int8_doubles_the_cache_blocks(gpt2, a100):
    """An int8 cache holds twice the tokens in the same memory; scales (--kv-group) cost some of that back."""
    small, int8, scaled = _small_memory(gpt2, a100)
    assert small.kv_blocks == 20
    assert int8.kv_bytes_per_token * 2 == small.kv_bytes_per_token and int8.kv_blocks == 40
    assert int8.kv_bytes_per_token < scaled.kv_bytes_per_token < small.kv_bytes_per_token
    assert small.kv_blocks < scaled.kv_blocks < int8.kv_blocks


@pytest.mark.heavy  # two overloaded serving runs (a few seconds)
def test_kv_int8_runs_twice_the_requests_at_once(gpt2, a100):
    """Under the same overload the scheduler keeps about twice as many requests running with the int8 cache."""
    small, int8, _ = _small_memory(gpt2, a100)
    runs = [_serve(s, 24, rate="poisson:100000", prompt="24", gen="8") for s in (small, int8)]
    busy = [max(i.decodes + i.prefills for i in run.iterations) for run, _ in runs]
    assert busy[1] >= 1.8 * busy[0]
    assert runs[1][1]["throughput"]["tokens_per_s"] > 1.3 * runs[0][1]["throughput"]["tokens_per_s"]


def test_cli_serve_takes_technique_flags():
    r = CliRunner().invoke(main, ["serve", GPT2, "--target", "a100-80gb", "--arrivals", "poisson:1", "--requests", "2",
                                  "--prompt-len", "32", "--gen-len", "4", "--spec-heads", "2", "--acceptance", "0.8",
                                  "--kv-cache", "int8", "--kv-group", "64"])
    assert r.exit_code == 0, r.output
    assert "2.440 accepted tokens per speculative iteration" in r.output and "kv_group=64" in r.output
    r = CliRunner().invoke(main, ["serve", GPT2, "--target", "a100-80gb", "--arrivals", "poisson:1", "--ep", "2"])
    assert r.exit_code == 2 and "--ep 2" in r.output and "no MoE layers" in r.output
    r = CliRunner().invoke(main, ["serve", GPT2, "--target", "a100-80gb", "--arrivals", "poisson:1", "--kv-group", "32"])
    assert r.exit_code == 2 and "--kv-cache int8" in r.output
