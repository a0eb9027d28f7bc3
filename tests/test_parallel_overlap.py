"""PIM/FPGA tensor parallelism with chunked all-reduces overlapping compute (``--parallel tp=2,chunks=C``)."""

from __future__ import annotations

import pytest

from hardware.errors import HwsimError
from hardware.targets import load_target
from mapping.op_costs import Precision
from mapping.parallel import Parallel, make_lowering, options_for, parse_parallel, resolve_link
from mapping.target_plugin import plugin_for
from simulator.engine import run
from simulator.simulate import prepare_run

GPT2 = "tests/fixtures/models/gpt2_ts.onnx"


def test_parse_chunks():
    assert parse_parallel(None, "tp=2,chunks=4", "pim") == Parallel(2, 1, "cxl3-x16", 4)
    assert parse_parallel(4, "chunks=2", "fpga") == Parallel(1, 4, "qsfp28-100g", 2)  # --devices alone still a pipeline
    assert Parallel(2, 1, None, 4).text == "tp=2,pp=1,chunks=4" and Parallel(2, 1).text == "tp=2,pp=1"
    for bad in ("tp=2,chunks=0", "tp=2,chunks=65", "tp=2,chunks=x"):
        with pytest.raises(HwsimError, match="chunks"):
            parse_parallel(None, bad, "pim")


def test_gpu_chunks_are_its_comm_chunks():
    plugin = plugin_for("gpu")
    opts = plugin.parse_options({})
    assert options_for(plugin, opts, Parallel(2, 1, None, 4)).comm_chunks == 4  # type: ignore[attr-defined]
    assert options_for(plugin, opts, Parallel(2, 1)).comm_chunks == 1  # type: ignore[attr-defined]


def _busy(result) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in result.records:
        out[r.task.resource] = out.get(r.task.resource, 0.0) + (r.end_s - r.start_s)
    return out


def _runs(model, target, chunk_counts, workload):
    spec = load_target(target)
    out = {}
    for chunks in chunk_counts:
        par = Parallel(2, 1, None, chunks)
        plugin, opts, prec, _, _ = prepare_run(model, spec, {}, Precision(), par)
        out[chunks] = run(make_lowering(plugin, spec, opts, par).lower(workload(prec)))
    return out


@pytest.mark.parametrize(("target", "phase"), [("pim-gpt", "prefill"), ("u280", "decode")])
def test_chunked_all_reduce_invariants(gpt2, target, phase):
    """Pieces keep every resource's work (the link pays one more latency per extra piece), the run is never slower
    than the serial schedule plus those latencies and never faster than its busiest resource."""
    link = resolve_link(Parallel(2, 1), load_target(target).kind)
    assert link is not None
    workload = ((lambda p: gpt2.prefill(1, 64, p)) if phase == "prefill"
                else (lambda p: gpt2.decode(1, 32, p, prompt_len=1)))
    results = _runs(gpt2, target, (1, 4), workload)
    serial, chunked = results[1], results[4]
    reduces = sum(1 for r in serial.records if r.task.kind == "all_reduce")
    assert reduces == 4  # attention and MLP of 2 layers
    assert sum(1 for r in chunked.records if r.task.kind == "all_reduce") == 4 * reduces
    base, busy = _busy(serial), _busy(chunked)
    extra = 3 * link.latency.si * reduces
    assert busy["link"] == pytest.approx(base["link"] + extra, rel=1e-9)
    assert {k: v for k, v in busy.items() if k != "link"} == pytest.approx({k: v for k, v in base.items() if k != "link"},
                                                                         rel=1e-9)
    assert chunked.latency_s <= serial.latency_s + extra + 1e-15
    assert chunked.latency_s >= max(busy.values()) - 1e-15
    assert chunked.dynamic_energy_j == pytest.approx(serial.dynamic_energy_j, rel=1e-9)
    if target == "pim-gpt":  # a prefill moves enough bytes over CXL that overlapping beats the extra latencies
        assert chunked.latency_s < serial.latency_s
        # the first piece's reduction runs on the link while the projection's next pieces compute
        first = next(r for r in chunked.records if r.task.kind == "all_reduce")
        later = [r.start_s for r in chunked.records if r.task.block == first.task.block and r.task.kind != "all_reduce"
                 and r.task.name.endswith("#3")]
        assert later and first.start_s < max(later)
