"""Multi-device runs (mapping/parallel.py): tensor and pipeline parallelism on GPU, PIM and FPGA targets."""

from __future__ import annotations

import pytest

from hardware.errors import DoesNotFit, HwsimError
from hardware.link import load_link
from hardware.targets import load_target
from mapping.op_costs import Precision
from mapping.parallel import (
    Parallel,
    ParallelLowering,
    all_reduce_s,
    parse_parallel,
    shard,
    stage_split,
    stage_weight_shares,
    stage_workloads,
)
from mapping.target_plugin import plugin_for
from simulator.engine import run
from simulator.serving.arrivals import parse_arrivals
from simulator.serving.distributions import parse_length
from simulator.serving.metrics import Slo, summarise
from simulator.serving.setup import prepare, run_serving
from simulator.simulate import simulate

GPT2 = "tests/fixtures/models/gpt2_ts.onnx"
BF16 = Precision("bfloat16", "bfloat16", "bfloat16")


def _lowering(target: str, parallel: Parallel) -> ParallelLowering:
    spec = load_target(target)
    plugin = plugin_for(spec.kind)
    return ParallelLowering(plugin, spec, plugin.parse_options({}), parallel)


def test_parse_parallel_defaults_and_errors():
    assert parse_parallel(4, None, "gpu") == Parallel(4, 1, None)
    assert parse_parallel(4, None, "pim") == Parallel(1, 4, "cxl3-x16")
    assert parse_parallel(8, "tp=2", "pim") == Parallel(2, 4, "cxl3-x16")
    assert parse_parallel(None, "tp=2,pp=2,link=pcie4-x16", "fpga") == Parallel(2, 2, "pcie4-x16")
    for devices, text, message in ((4, "tp=3", "not 4"), (None, "tp=x", "whole number"), (None, "dp=2", "expected"),
                                   (0, None, ">= 1"), (None, "pp=0", ">= 1")):
        with pytest.raises(HwsimError, match=message):
            parse_parallel(devices, text, "pim")
    with pytest.raises(HwsimError, match="unknown link"):
        load_link("no-such-link")


@pytest.mark.heavy
def test_one_device_is_bit_identical(gpt2):
    """--devices 1 and no --devices give the same numbers on every kind (the single-device path is untouched)."""
    for target in ("pim-gpt", "u55c"):
        spec = load_target(target)
        a = simulate(gpt2, spec, "decode", 1, 16, 1, Precision())
        b = simulate(gpt2, spec, "decode", 1, 16, 1, Precision(), parallel=parse_parallel(1, None, spec.kind))
        assert (a.latency_s, a.energy_j) == (b.latency_s, b.energy_j)


def test_gpu_parallel_tp_is_the_gpu_plugins_tp(gpt2):
    spec = load_target("a100-80gb")
    native = simulate(gpt2, spec, "decode", 2, 16, 1, Precision(), {"tp": 2})
    via = simulate(gpt2, spec, "decode", 2, 16, 1, Precision(), parallel=Parallel(2, 1))
    assert (native.latency_s, native.energy_j) == (via.latency_s, via.energy_j)


def test_stages_split_layers_evenly_and_keep_every_op(gpt2):
    w = gpt2.prefill(1, 16, BF16)
    for pp in (1, 2):
        stages = stage_split(w.ops, pp)
        assert sum(len(s) for s in stages) == len(w.ops)
        layers = [sorted({o.layer for o in s if o.layer is not None}) for s in stages]
        assert all(layers) and max(map(len, layers)) - min(map(len, layers)) <= 1
        assert [o.name for s in stages for o in s] == [o.name for o in w.ops]  # contiguous, in order
    with pytest.raises(HwsimError, match="pp=3: the model has 2 layers"):
        stage_split(w.ops, 3)
    with pytest.raises(HwsimError, match="pp=99"):
        stage_split(w.ops, 99)


@pytest.mark.parametrize("target", ["pim-gpt", "u55c", "a100-80gb"])
def test_one_micro_batch_is_the_sum_of_its_stages_and_links(gpt2, target):
    """A pass through pp stages takes each stage's own makespan plus one link transfer per boundary."""
    low = _lowering(target, Parallel(1, 2, "pcie4-x16"))
    w = gpt2.decode(1, 16, BF16 if target == "pim-gpt" else Precision("float16", "float16", "float16"))
    stage_times = [run(p).latency_s for p in _lowering(target, Parallel(1, 2)).stage_programs(w)]
    link = load_link("pcie4-x16")
    expected = sum(stage_times) + link.transfer_s(low.hidden_bytes(w))
    assert run(low.lower(w)).latency_s == pytest.approx(expected, rel=1e-9)


@pytest.mark.heavy
def test_micro_batches_overlap_across_stages(gpt2):
    """m micro-batches through 2 stages: faster than m passes one after another, never faster than the busiest
    stage working all m."""
    low = _lowering("a100-80gb", Parallel(1, 2))
    w = gpt2.decode(2, 16)
    one = run(low.lower(w)).latency_s
    stages = [run(p).latency_s for p in low.stage_programs(w)]
    for m in (2, 4):
        t = run(low.micro_batched([w], m)).latency_s
        assert m * max(stages) <= t < m * one


def test_pim_tensor_parallel_splits_work_and_all_reduces(gpt2):
    """tp=2 on PIM: half the matrix columns/rows per device, one all-reduce after every attention and MLP block
    with the ring formula (on this tiny model the link's latency outweighs the halved compute)."""
    w = gpt2.decode(1, 16, BF16)
    part = shard(w, 2)
    for a, b in zip(w.ops, part.ops, strict=True):
        if a.block_kind in ("attention", "mlp") and a.matmul is not None:
            assert b.flops == pytest.approx(a.flops / 2, rel=0.02)
            assert b.weight_bytes == a.weight_bytes // 2
        elif a.block_kind not in ("attention", "mlp"):
            assert b is a
    low = _lowering("pim-gpt", Parallel(2, 1))
    program = low.lower(w)
    reduces = [t for t in program.tasks if t.kind == "all_reduce"]
    layers = len({o.layer for o in w.ops if o.layer is not None})
    assert len(reduces) == 2 * layers
    out = next(o for o in w.ops if o.role == "down").act_write_bytes
    assert reduces[-1].duration_s == pytest.approx(all_reduce_s(load_link("cxl3-x16"), out, 2))
    single = plugin_for("pim").lower(w, load_target("pim-gpt"), plugin_for("pim").parse_options({}))
    assert run(program).latency_s - sum(t.duration_s for t in reduces) < run(single).latency_s


def test_moe_layer_reduced_once_with_its_combined_output():
    """A tensor-parallel MoE layer's experts share one all-reduce (after the last expert, of the layer's combined
    output: tokens x width, the attention output's bytes), on PIM as on GPUs: a 2-layer Mixtral (4 experts,
    top-2) has 2 x 2 reductions at tp=2, where one per expert would make 6; in a prefill of 8 tokens each expert
    takes a share of the tokens, but the reduction carries all 8."""
    from mapping.parallel import expert_reductions
    from mapping.workloads import Model

    model = Model("tests/fixtures/corpus/models/torch-torchscript__mixtral__tf4.onnx")
    for work in (model.decode(1, 16, BF16), model.prefill(1, 8, BF16)):
        moe = expert_reductions(work)
        attention_out = max(o.act_write_bytes for o in work.ops if o.role == "o_proj")
        tokens = 1 if work.phase == "decode" else 8
        assert attention_out == tokens * 64 * 2  # tokens x width 64 x 2 B
        assert moe.bytes and all(v == attention_out for v in moe.bytes.values())
        program = _lowering("pim-gpt", Parallel(2, 1)).lower(work)
        reduces = [t for t in program.tasks if t.kind == "all_reduce"]
        assert len(reduces) == 4
        expert = [t for t in reduces if t.block in moe.bytes]
        assert len(expert) == 2 and all(
            t.duration_s == pytest.approx(all_reduce_s(load_link("cxl3-x16"), attention_out, 2)) for t in expert)


def test_token_mixer_sharded_and_reduced_on_pim():
    """--parallel tp=2 on PIM shards a token mixer as the GPU mapper does: LFM2's short convolution's input
    projection by columns and its output projection by rows (half the weights each), one all-reduce of the
    mixer's output (one token x width 64 x 2 B)."""
    from mapping.parallel import mixer_out_projections
    from mapping.workloads import Model

    model = Model("tests/fixtures/heldout5/torchscript__lfm2.onnx")
    work = model.decode(1, 16, BF16)
    rows = mixer_out_projections(work)
    mixers = {o.block for o in work.ops if o.block_kind == "mixer"}
    assert len(rows) == len(mixers) >= 1
    part = shard(work, 2)
    for a, b in zip(work.ops, part.ops, strict=True):
        if a.block in mixers and a.matmul is not None and a.matmul.weight_operand:
            assert b.weight_bytes == a.weight_bytes // 2
            if a.name in rows:
                assert b.matmul.k == a.matmul.k // 2 and b.matmul.n == a.matmul.n
            else:
                assert b.matmul.n == -(-a.matmul.n // 2) and b.matmul.k == a.matmul.k
    program = _lowering("pim-gpt", Parallel(2, 1)).lower(work)
    reduces = [t for t in program.tasks if t.kind == "all_reduce" and t.block in mixers]
    assert len(reduces) == len(mixers)
    assert all(t.duration_s == pytest.approx(all_reduce_s(load_link("cxl3-x16"), 64 * 2, 2)) for t in reduces)


def test_capacity_is_checked_per_device(gpt2):
    """Each device must hold its stage's weights: a device below the fuller stage's share fails at pp=2 although
    the two devices together hold the model; just above it, pp=2 fits and one device does not."""
    spec = load_target("pim-gpt")
    weights = gpt2.weight_bytes(BF16)
    w = gpt2.decode(1, 16, BF16)
    share = max(stage_weight_shares(w, 2))
    assert 0.5 <= share < 1 and len(stage_workloads(w, 2)) == 2

    def sized(fraction: float):
        return spec.model_copy(update={"capacity_per_channel": spec.capacity_per_channel.model_copy(
            update={"value": weights * fraction / spec.channels.n, "unit": "B"})})

    with pytest.raises(DoesNotFit, match="stage . of 2"):
        simulate(gpt2, sized(share * 0.98), "decode", 1, 16, 1, Precision(), parallel=Parallel(1, 2, "cxl3-x16"))
    simulate(gpt2, sized(share * 1.05), "decode", 1, 16, 1, Precision(), parallel=Parallel(1, 2, "cxl3-x16"))
    with pytest.raises(DoesNotFit):
        simulate(gpt2, sized(share * 1.05), "decode", 1, 16, 1, Precision())


def test_serving_on_a_pipeline_matches_simulate_at_a_low_rate(gpt2):
    """One request at a time on pp=2: TTFT is simulate's prefill over the same two devices (one micro-batch)."""
    spec = load_target("pim-gpt")
    par = Parallel(1, 2, "cxl3-x16")
    setup = prepare(gpt2, spec, {}, Precision(), per_octave=2, parallel=par)
    run_ = run_serving(setup, parse_arrivals("poisson:0.5"), 6, parse_length("32", "p"), parse_length("2", "g"),
                       "vllm", 64, 2048, 0)
    m = summarise(run_, Slo())
    prefill = simulate(gpt2, spec, "prefill", 1, 32, 1, Precision(), parallel=par).latency_s
    assert m["ttft_s"]["p50"] == pytest.approx(prefill, rel=0.02)


@pytest.mark.parametrize("pp", [1, 2])  # the fixture has 2 layers
def test_pipeline_stages_share_the_passs_framework_dispatches(gpt2, pp):
    """--set host_dispatches=N is one pass's count: over pp stages the host time adds up to N dispatches, not N per
    stage (a review found every stage charged the whole N), and the stages' shares follow their ops."""
    from mapping.gpu.stack import EAGER_HOST_PER_DISPATCH

    spec = load_target("a100-80gb")
    plugin = plugin_for(spec.kind)
    opts = plugin.parse_options({"stack": "eager", "host_dispatches": 3000})
    low = ParallelLowering(plugin, spec, opts, Parallel(1, pp))
    w = gpt2.decode(1, 16, Precision("float16", "float16", "float16"))
    programs = low.stage_programs(w)
    hosts = [sum(t.duration_s for t in p.tasks if t.resource == "host") for p in programs]
    assert sum(hosts) == pytest.approx(3000 * EAGER_HOST_PER_DISPATCH, rel=1e-6)
    stages = stage_workloads(w, pp)
    assert all(s.pass_ops == (len(w.ops) if pp > 1 else None) for s in stages)
    for host, stage in zip(hosts, stages, strict=True):  # each stage's share by its ops (all of them launch work here)
        assert host == pytest.approx(3000 * EAGER_HOST_PER_DISPATCH * len(stage.ops) / len(w.ops), rel=0.05)


def test_a_draft_model_refuses_the_targets_dispatch_count():
    from mapping.techniques import Techniques
    from simulator.technique_run import check_target

    spec = load_target("a100-80gb")
    with pytest.raises(HwsimError, match="host_dispatches.*draft"):
        check_target(Techniques(draft=GPT2), spec, {"stack": "eager", "host_dispatches": 100}, "generate")
    assert check_target(Techniques(), spec, {"stack": "eager", "host_dispatches": 100}, "generate")
