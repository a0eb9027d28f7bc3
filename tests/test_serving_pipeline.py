"""Pipeline-parallel serving: virtual engines whose micro-batches overlap across the stages."""

from __future__ import annotations

import dataclasses

import pytest

from hardware.targets import load_target
from mapping.op_costs import Precision
from mapping.parallel import Parallel
from simulator.serving.arrivals import make_requests, parse_arrivals
from simulator.serving.distributions import parse_length
from simulator.serving.kv_cache import PagedKVCache
from simulator.serving.loop import serve, serve_pipelined
from simulator.serving.metrics import Slo, summarise
from simulator.serving.schedulers import make_scheduler
from simulator.serving.setup import prepare, run_serving

GPT2 = "tests/fixtures/models/gpt2_ts.onnx"


def _requests(n: int, rate: str, seed: int = 3):
    return make_requests(parse_arrivals(rate), n, parse_length("uniform:16,48", "p"), parse_length("uniform:16,64", "g"),
                         seed)


@pytest.fixture(scope="module")
def a100(gpt2):
    return prepare(gpt2, load_target("a100-80gb"), {}, Precision(), per_octave=1)  # few shapes: a fast test


@pytest.mark.parametrize("scheduler", ["vllm", "sarathi"])
def test_one_engine_without_stages_is_the_plain_loop(a100, scheduler):
    """pp=1: the pipelined loop with one engine reproduces serve() exactly (timestamps, iterations, integrals)."""
    setup = a100
    runs = []
    for loop in (serve, lambda reqs, s, c: serve_pipelined(reqs, [s], c)):
        sched = make_scheduler(scheduler, PagedKVCache(12, setup.block_size), 8, 128)  # small: queueing, preemption
        runs.append(loop(_requests(30, "poisson:400"), sched, setup.coster))
    a, b = runs
    assert a.preemptions == b.preemptions and a.preemptions > 0
    assert [(r.first_token_s, r.finish_s, r.preemptions) for r in a.requests] == \
        [(r.first_token_s, r.finish_s, r.preemptions) for r in b.requests]
    assert [dataclasses.astuple(i) for i in a.iterations] == [dataclasses.astuple(i) for i in b.iterations]
    assert (a.start_s, a.end_s, a.in_system_area) == (b.start_s, b.end_s, b.in_system_area)
    assert b.energy_j == pytest.approx(a.energy_j, rel=1e-12)
    # TBT: one gap per token after the first, telescoping to first token -> last (preemption stalls included)
    for r in a.requests:
        assert len(r.tbt_s) == r.gen_len - 1
        assert sum(r.tbt_s) == pytest.approx(r.finish_s - r.first_token_s, rel=1e-9, abs=1e-15)
    m = summarise(a, Slo())
    assert m["tbt_s"]["max"] >= m["tpot_s"]["max"] and m["scheduling_delay_s"]["max"] > 0


@pytest.fixture(scope="module")
def pipelines(gpt2, a100):
    """Saturated runs (every request at once) on 1 and 2 A100s as pipeline stages (the model has 2 layers)."""
    out = {}
    for pp in (1, 2):
        par = Parallel(1, pp) if pp > 1 else None
        setup = prepare(gpt2, load_target("a100-80gb"), {}, Precision(), per_octave=1, parallel=par) if par else a100
        run = run_serving(setup, parse_arrivals("poisson:1e9"), 48, parse_length("32", "p"), parse_length("12", "g"),
                          "vllm", 4, 2048, 0)
        out[pp] = (setup, run, summarise(run, Slo()))
    return out


def test_pipeline_throughput_saturates_at_most_k_times_one_stage(pipelines):
    """pp=k: faster than one device, at most k x its rate; no stage is ever busier than the wall clock."""
    _, _, one = pipelines[1]
    for pp in (2,):
        setup, run, m = pipelines[pp]
        assert m["finished"] == 48
        tok = m["throughput"]["tokens_per_s"]
        assert one["throughput"]["tokens_per_s"] < tok <= pp * one["throughput"]["tokens_per_s"] * 1.01
        # a stage works one micro-batch at a time: each stage's summed work fits in the run, and the
        # throughput is at most the busiest stage's rate
        wall = run.end_s - run.start_s
        assert len(run.stage_busy_s) == pp and all(0 < b <= wall * (1 + 1e-9) for b in run.stage_busy_s)
        assert tok <= m["finished"] * 12 / max(run.stage_busy_s) * (1 + 1e-9)
        assert 0 < m["utilisation"] <= 1 + 1e-9
        assert len({it.engine for it in run.iterations}) == pp  # every virtual engine ran
        assert setup.coster.stages == pp


def test_micro_batches_of_different_engines_overlap(pipelines):
    """Iterations of different engines are in flight at the same time; one engine's never overlap each other."""
    _, run, _ = pipelines[2]
    by_engine: dict[int, list] = {}
    for it in run.iterations:
        by_engine.setdefault(it.engine, []).append(it)
    for its in by_engine.values():
        assert all(b.start_s >= a.end_s for a, b in zip(its, its[1:]))
    a, b = by_engine[0], by_engine[1]
    assert any(x.start_s < y.end_s and y.start_s < x.end_s for x in a[:5] for y in b[:5])


def test_pipeline_energy_counts_static_power_once(pipelines):
    """Overlapping iterations carry dynamic energy only; static power is paid over the wall clock once."""
    setup, run, _ = pipelines[2]
    dynamic = sum(i.energy_j for i in run.iterations)
    assert run.energy_j == pytest.approx(dynamic + setup.coster.static_w * (run.end_s - run.start_s))
    assert dynamic > 0
