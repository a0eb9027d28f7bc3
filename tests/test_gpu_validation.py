"""GPU validation tooling: the report generator on a synthetic calibration file (never shipped) and a few
published points and claims (the full report is the heavy test), the roofline writer, and benchmarks/gpu_measure.py's
shape grids and JSON schema (no torch needed for those)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from hardware.gpu import calibration
from hardware.gpu.attention import flash_decoding
from hardware.gpu.gemm import gemm
from hardware.gpu.kernels import memory_bound
from hardware.targets import load_target
from mapping.op_costs import Precision
from mapping.workloads import Model
from simulator.roofline import roofline_points, write_roofline
from simulator.simulate import simulate
from simulator.validation import gpu as validation
from simulator.validation import gpu_claims, gpu_published

from conftest import EXAMPLES, ROOT, shared_model


def _load_measure():
    spec = importlib.util.spec_from_file_location("gpu_measure", ROOT / "benchmarks" / "gpu_measure.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gm = _load_measure()


def _few_points() -> list[dict]:
    """One published point of each quick kind (the report's code paths; whole generations are the heavy test's)."""
    points = gpu_published.load_points()[1]
    picked = [next(p for p in points if p["kind"] == "gemm"), next(p for p in points if p["kind"] == "stream"),
              next(p for p in points if p["kind"] == "decode_step")]
    picked += [next(p for p in points if p.get("kernel") == k) for k in ("fa2", "flashdecoding")]
    return picked


def _few_claims() -> list[dict]:
    claims = gpu_claims.load_claims()["claims"]
    return [next(c for c in claims if c["kind"] == k) for k in ("gemm_max_achievable", "attention_fraction_of_peak")]


def _synthetic(a100) -> dict:
    """A made-up A100 calibration with known ratios to hwsim's predictions (a test fixture, not a measurement)."""
    big = gemm(a100, 1, 8192, 8192, 8192, "fp16").time_s
    copy = memory_bound(a100, "copy", 2.0 * 2**30).time_s
    # gpu_measure's eager variant: transformers' dynamic cache, grown by torch.cat
    step = validation.decode_step_s("gpt2", a100, 128, stack="eager", kv_update="concat")
    step_s, step_j = validation.step_result("gpt2", a100, "decode", 128, "eager", kv_update="concat")
    prefill = validation.step_result("gpt2", a100, "prefill", 16, "graph")[0]
    fp8 = gemm(a100, 1, 4096, 4096, 4096, "fp8", 1.0, 1.0, 2.0).time_s
    rows = [
        gm.measurement("gemm", "square 8192^3", "fp16", {"batch": 1, "m": 8192, "n": 8192, "k": 8192}, [big * 1.25],
                       group="square", flops=2.0 * 8192**3),
        gm.measurement("copy", "copy 1024 MiB", "uint8", {"bytes": 2**30}, [copy], bytes=2.0 * 2**30),
        gm.measurement("launch", "empty kernel (torch.cuda._sleep(0)), back to back", "-", {"launches": 200}, [5e-6]),
        gm.measurement("launch", "one-element add_ replayed from a CUDA graph", "fp32", {"launches": 200}, [1e-6]),
        gm.measurement("decode_step", "gpt2 ctx=128 eager", "fp16",
                       {"model": "gpt2", "batch": 1, "context": 128, "variant": "eager"}, [step * 2],
                       board_power_w={"median": 2.0 * step_j / step_s, "min": 1.0, "max": 500.0, "samples": 20}),
        gm.measurement("prefill_step", "gpt2 prefill 16 compiled cudagraphs", "fp16",
                       {"model": "gpt2", "batch": 1, "prompt": 16, "variant": "compiled_cudagraphs"}, [prefill]),
        gm.measurement("gemm", "square 4096^3", "fp8", {"batch": 1, "m": 4096, "n": 4096, "k": 4096}, [fp8 / 2],
                       group="square"),
        gm.measurement("gemm", "skinny broken", "bf16", {"batch": 1, "m": 1, "n": 64, "k": 64}, None,
                       group="skinny", skipped="RuntimeError: out of memory"),
    ]
    return gm.calibration_document({"name": "NVIDIA A100-SXM4-80GB", "type": "cuda"}, "synthetic", {}, rows, False,
                                   {"torch": "test"})


@pytest.mark.heavy
def test_report_on_synthetic_calibration(tmp_path):
    a100 = load_target("a100-80gb")
    cal = tmp_path / "calibration"
    cal.mkdir()
    (cal / "synthetic-a100.json").write_text(json.dumps(_synthetic(a100)))
    dry = _synthetic(a100)
    dry["dry_run"] = True
    (cal / "dry.json").write_text(json.dumps(dry))
    (cal / "junk.json").write_text(json.dumps({"schema": "other"}))
    out = tmp_path / "reports"
    result = validation.build_report(cal, out / "gpu_validation.md", _few_points(), _few_claims())

    every = result["calibration"]["synthetic-a100.json"]
    power = [r for r in every if r.unit == "W"]
    rows = {r.item.split(" [")[0]: r for r in every if r.unit == "us"}
    assert set(rows) == {"square 8192^3", "copy 1024 MiB", "empty kernel (torch.cuda._sleep(0)), back to back",
                         "one-element add_ replayed from a CUDA graph", "gpt2 ctx=128 eager",
                         "gpt2 prefill 16 compiled cudagraphs", "square 4096^3"}  # skipped row not compared
    # the eager decode step is predicted with --set stack=eager, the compiled prefill with stack=graph, the fp8
    # GEMM with 1-byte operands; the board power is hwsim's energy / time against nvidia-smi's median
    assert rows["gpt2 prefill 16 compiled cudagraphs"].error == pytest.approx(0.0, abs=1e-9)
    assert rows["square 4096^3"].error == pytest.approx(1.0)
    assert len(power) == 1 and power[0].error == pytest.approx(-0.5)
    assert rows["square 8192^3"].error == pytest.approx(1 / 1.25 - 1)
    assert rows["copy 1024 MiB"].error == pytest.approx(0.0, abs=1e-9)
    assert rows["empty kernel (torch.cuda._sleep(0)), back to back"].error == pytest.approx(
        a100.launch_overhead.si / 5e-6 - 1)
    assert rows["one-element add_ replayed from a CUDA graph"].error == pytest.approx(
        a100.graph_launch_overhead.si / 1e-6 - 1)
    assert rows["gpt2 ctx=128 eager"].error == pytest.approx(-0.5)
    # a host-bound eager step measured at twice hwsim's implies about twice the default host time per op
    from mapping.gpu.stack import EAGER_HOST_PER_OP

    implied = float(rows["gpt2 ctx=128 eager"].note.split("this host implies ")[1].split(" us")[0])
    assert 1.9 * EAGER_HOST_PER_OP * 1e6 < implied < 2.1 * EAGER_HOST_PER_OP * 1e6
    assert all(r.status == "independent" for r in rows.values())
    launch = result["stats"]["calibration: launch"]
    assert launch["n"] == 1 and launch["mean_abs"] == pytest.approx(abs(a100.launch_overhead.si / 5e-6 - 1))
    assert launch["over_10"] == 1
    assert result["stats"]["calibration: gemm square"]["max_abs"] == pytest.approx(0.2)
    assert any("dry.json" in n and "dry-run" in n for n in result["notes"])
    assert any("junk.json" in n for n in result["notes"])

    md = (out / "gpu_validation.md").read_text()
    assert "synthetic-a100.json" in md and "holds no measurement taken by" not in md
    assert "## Decode attention: speedups by context" in md and "| skinny |" in md
    assert "## Software stacks (`--set stack=`)" in md and "| eager |" in md
    assert (out / "gpu_validation_synthetic-a100.png").stat().st_size > 1000
    assert (out / "gpu_validation_published.png").stat().st_size > 1000
    assert all(c["pass"] for c in result["checks"])


def test_measured_generation_rows_are_predicted_with_their_batch_cache_and_keys():
    # gpu_measure's growing-cache generations: the dynamic cache (torch.cat per step) is kv_update=concat at the
    # prompt's context plus half the steps; the static cache attends over all its slots and is written in place
    a100 = load_target("a100-80gb")
    grow = {"model": "gpt2", "batch": 4, "context": 64, "steps": 8, "variant": "eager_growing"}
    static = {"model": "gpt2", "batch": 4, "context": 64, "steps": 8, "variant": "eager_static_growing",
              "static_slots": 100}
    assert validation.measured_step(grow) == (4, 68, "eager", "concat")
    assert validation.measured_step(static) == (4, 100, "eager", "in-place")
    assert validation.measured_step({"model": "gpt2", "context": 128, "variant": "compiled_cudagraphs"}) == \
        (1, 128, "graph", "in-place")
    rows = {v["variant"]: validation.predict_measurement(a100, {"kind": "decode_step", "dtype": "fp16", "shape": v,
                                                                 "name": v["variant"]}) for v in (grow, static)}
    assert rows["eager_growing"][1] == validation.decode_step_s("gpt2", a100, 68, stack="eager", batch=4,
                                                                kv_update="concat")
    assert rows["eager_static_growing"][1] == validation.decode_step_s("gpt2", a100, 100, stack="eager", batch=4)
    # the concatenation copies the cache every step: never free
    kernels = {u: validation.decode_step_s("gpt2", a100, 68, batch=4, kv_update=u) for u in ("in-place", "concat")}
    assert kernels["concat"] > kernels["in-place"]
    assert "batch 4" in rows["eager_growing"][2] and "kv_update=concat" in rows["eager_growing"][2]


def test_report_without_calibration_and_error_rules(tmp_path):
    # the first A100 GEMM point is within 10% with its harness floor; 896^3 (a one-wave grid) is over it
    few = _few_points() + [next(p for p in gpu_published.load_points()[1] if p.get("m") == 896)]
    result = validation.build_report(tmp_path / "none", None, few, [])
    assert result["calibration"] == {} and result["figures"] == []
    assert "holds no measurement taken by" in result["markdown"]
    # the gap explanations quote the rows' own errors
    gemm_rows = [r for r in result["published"] if r.category == "measured (published): GEMM"]
    assert len(gemm_rows) == 2 and abs(gemm_rows[1].error) > 0.1
    low, high = sorted(r.error for r in gemm_rows)
    assert f"hwsim is {low:+.0%} to {high:+.0%}." in result["markdown"]
    assert {r.status for r in result["published"]} <= set(validation.STATUSES)
    # the targets table restates the rows: the decode-step mean of the independent rows, no measured file
    steps = [abs(r.error) for r in result["published"] if r.status == "independent"
             and r.category == "measured (published): decode step / generation"]
    md = result["markdown"]
    assert f"| decode steps and generations | mean abs error < 10% | {len(steps)} points, " \
           f"{sum(steps) / len(steps):.1%} | {'yes' if sum(steps) / len(steps) < 0.1 else 'no'} |" in md
    assert "| measured data of our own | if a GPU was available | none (no GPU was lent) | - |" in md
    c = validation.Comparison("x", "in range", 5.0, (4.0, 6.0), "", "", "prior")
    assert c.error == 0.0
    assert validation.Comparison("x", "below", 2.0, (4.0, 6.0), "", "", "prior").error == pytest.approx(-0.5)
    assert validation.Comparison("x", "above", 9.0, (4.0, 6.0), "", "", "prior").error == pytest.approx(0.5)
    stats = validation.category_stats([c, validation.Comparison("x", "b", 3.0, 2.0, "", "", "bound")])
    assert stats["x"] == {"n": 2, "mean_abs": pytest.approx(0.25), "max_abs": pytest.approx(0.5), "over_10": 1}


def test_roofline_png_and_points(tmp_path):
    model = Model(str(EXAMPLES / "gpt2.onnx"))
    a100 = load_target("a100-80gb")
    result = simulate(model, a100, "generate", 1, 16, 3, Precision(), {})
    path = tmp_path / "roofline.png"
    points = write_roofline(result, a100, path)
    assert path.stat().st_size > 1000
    assert sum(p.time_s for p in points) == pytest.approx(result.latency_s, rel=1e-9)
    assert {p.phase for p in points} == {"prefill", "decode"}
    peak = a100.peak_flops("fp16")[0]
    drawn = [p for p in points if p.flops > 0 and p.dram_bytes > 0]
    assert drawn and all(p.flops_per_s <= peak for p in drawn)
    assert all(p.flops_per_s <= a100.dram_bandwidth.si * p.intensity * 1.0001 for p in drawn)  # under the DRAM roof
    # FLOPs are the workload's, carried by the tasks: the decode steps' GEMM kernels hold their matmul FLOPs
    fp16 = Precision("float16", "float16", "float16")
    steps = [model.decode(1, c, fp16, prompt_len=16) for c in (16, 17)]
    matmul = sum(2.0 * o.matmul.batch * o.matmul.m * o.matmul.k * o.matmul.n  # a Gemm's bias add is no GEMM FLOP
                 for s in steps for o in s.ops if o.matmul is not None and o.role not in ("score", "pv"))
    gemm_flops = sum(p.flops for p in points if p.phase == "decode" and p.kind in ("gemm", "lm_head"))
    assert gemm_flops == pytest.approx(matmul)
    with pytest.raises(Exception, match="GPU target"):
        roofline_points(result, load_target("pim-gpt"))



def test_measure_grids_and_schema():
    shapes = gm.gemm_shapes(132)
    groups = {s["group"] for s in shapes}
    assert groups == {"square", "skinny", "wave"}
    assert [s["m"] for s in shapes if s["group"] == "square"] == [512, 1024, 2048, 4096, 8192, 16384]
    waves = sorted(s["m"] // 128 for s in shapes if s["group"] == "wave")
    assert {131, 132, 133, 263, 264, 265} <= set(waves)
    assert {s["m"] for s in shapes if s["group"] == "skinny"} == {1, 2, 4, 8, 16, 32, 64, 128, 512}
    assert any(s["k"] == 11008 and s["n"] == 4096 for s in shapes)  # Llama-2-7B down projection
    decode = gm.attention_decode_shapes(sm_count=132)
    sweep = [d for d in decode if d["layout"] in ("mha", "gqa")]
    assert {d["kv_len"] for d in sweep} == {128 * 2**i for i in range(11)} and all(d["q_len"] == 1 for d in decode)
    blog = [d for d in decode if d["layout"] == "fd-blog"]  # the Flash-Decoding table's grid, row for row
    assert [(d["batch"], d["kv_len"]) for d in blog] == [(2 ** (16 - i), 2**i) for i in range(8, 17)] + [(1, 131072)]
    assert all((d["heads"], d["kv_heads"], d["head_dim"]) == (16, 2, 128) for d in blog)
    assert sorted(d["batch"] for d in decode if d["layout"] == "pod-wave") == [54, 55, 66, 67]  # 2 x 132 / 4 = 66
    prefill = gm.attention_prefill_shapes()
    fa2_grid = [p for p in prefill if p["layout"] == "mha"]
    assert all(p["batch"] * p["q_len"] == 16384 and p["heads"] * p["head_dim"] == 2048 for p in fa2_grid)
    gqa = [p for p in prefill if p["layout"] == "gqa"]
    assert gqa and all(p["heads"] == 32 and p["kv_heads"] == 8 and p["causal"] for p in gqa)
    assert gm.attention_flops({"batch": 1, "heads": 2, "q_len": 4, "kv_len": 4, "head_dim": 8, "causal": True}) == 512
    assert set(gm.model_configs()) == set(validation.DECODE_MODELS)
    assert gm.file_name("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3.json"
    assert gm.preset_for("NVIDIA H100 PCIe") == "h100-pcie" and gm.preset_for("NVIDIA A100-SXM4-80GB") == "a100-80gb"
    assert gm.SCHEMA == calibration.SCHEMA and gm.KINDS == calibration.KINDS  # one definition, shared

    row = gm.measurement("gemm", "g", "fp16", {"m": 1}, [3e-6, 1e-6, 2e-6], flops=4e6, bytes=2e3)
    assert row["median_s"] == 2e-6 and row["min_s"] == 1e-6 and row["repeats"] == 3
    assert row["tflops_per_s"] == pytest.approx(2.0) and row["gb_per_s"] == pytest.approx(1.0)
    doc = gm.calibration_document({"name": "NVIDIA H100 80GB HBM3"}, "cmd", {}, [row], False)
    assert gm.validate_document(doc) == [] and validation.calibration_problems(doc) == []
    assert doc["hwsim_target"] == "h100-sxm" and validation.preset_for(doc) == "h100-sxm"
    bad = dict(doc, measurements=[{"kind": "gemm"}])
    assert gm.validate_document(bad) and validation.calibration_problems(bad)
    with pytest.raises(ValueError):
        gm.measurement("nonsense", "x", "fp16", {}, [1.0])


def test_measure_dry_run(tmp_path):
    """The dry run (CPU, tiny shapes) writes a file in the format the report reads; the report skips it."""
    pytest.importorskip("torch")
    out = tmp_path / "nvidia-test.json"
    doc = gm.main(["--dry-run", "--device", "cpu", "--only", "gemm,copy,launch", "--repeats", "2", "--out", str(out)])
    assert json.loads(out.read_text())["dry_run"] is True
    assert gm.validate_document(doc) == [] and validation.calibration_problems(doc) == []
    assert {m["kind"] for m in doc["measurements"]} == {"gemm", "copy", "launch"}
    assert {m["dtype"] for m in doc["measurements"] if m["kind"] == "gemm"} == {"fp16", "bf16", "fp8"}
    fp8 = [m for m in doc["measurements"] if m["dtype"] == "fp8"]
    assert fp8 and all(m["median_s"] is None and "fp8" in m["skipped"] for m in fp8)  # no fp8 tensor cores on CPU
    assert doc["settings"]["budget_s"] is None and "idle_power_w" in doc["device"]
    found, notes = validation.load_calibrations(tmp_path)
    assert found == [] and any("dry-run" in n for n in notes)


def test_measure_budget_skips_the_rest():
    """Once the time budget is spent every remaining measurement is recorded as skipped, with the reason."""
    budget = gm.Budget(0.0)
    budget.started -= 1.0
    rows = gm.measure_attention(None, True, budget=budget)
    assert rows and all(r["median_s"] is None and "time budget" in r["skipped"] for r in rows)
    assert {r["kind"] for r in rows} == {"attention_prefill", "attention_decode"}
    doc = gm.calibration_document({"name": "NVIDIA H100 80GB HBM3"}, "cmd", {}, rows, False)
    assert gm.validate_document(doc) == []


def test_published_measurements_file():
    """Every published point names a known source; only calibration points are circular, and each of them is cited
    by the preset it calibrates; a few points predict a positive time (all of them: the heavy test)."""
    from hardware.targets import to_dict

    sources, points = gpu_published.load_points()
    assert len(points) >= 70
    for point in points:
        assert point["source"] in sources and point["kind"] in gpu_published.CATEGORY
        for field in point.get("calibrates", "").split(", ") if point.get("calibrates") else ():
            if field.startswith("mapping.gpu.stack."):  # a software-stack constant: its comment cites the point
                import mapping.gpu.stack as stack

                name = field.rsplit(".", 1)[1]
                assert hasattr(stack, name)
                cited = {"fastertransformer": "FasterTransformer"}[point["source"]]
                assert cited in Path(stack.__file__).read_text()
                continue
            if field.startswith("harness."):  # a timing harness's floor: the harness names the point's source
                harness = gpu_published.load_harnesses()[field.split(".", 1)[1]]
                assert harness["floor_source"] == point["source"] and point["harness"] == field.split(".", 1)[1]
                continue
            preset, name = field.split(".")
            cited = {"flash-decoding-blog": "Flash-Decoding", "zzc-torch-mm": "zzc0721",
                     "triton-vecadd": "vector add"}[point["source"]]
            assert cited in to_dict(load_target(preset))[name]["source"]
    few = _few_points()
    rows = gpu_published.rows(validation.Comparison, few)
    for point, row in zip(few, rows):
        assert row.predicted > 0 and row.reference > 0
        assert (row.status == "circular") == bool(point.get("calibrates"))


def test_published_claims_file():
    """Claims name known sources; the circular ones name the preset field they set, and that field cites them."""
    from hardware.targets import to_dict

    doc = gpu_claims.load_claims()
    for c in doc["claims"]:
        assert c["status"] in validation.STATUSES
        if c["status"] == "circular":
            preset, name = c["calibrates"].split(".")
            source = to_dict(load_target(preset))[name]["source"]
            assert {"mamf": "MAMF", "fa2-paper": "335"}[c["source"]] in source


def test_weight_bound_claim_is_hand_derived():
    # the bound is the fp16 weight bytes a batch-1 decode step of the example model reads over the datasheet
    # bandwidth: Llama-2-7B's 6.74e9 parameters x 2 B but the 32000 x 4096 embedding table, of which the step reads
    # the token's row (4096 x 2 B)
    claim = next(c for c in gpu_claims.load_claims()["claims"] if c["kind"] == "decode_weight_bound")
    t = load_target(claim["target"])
    model = Model(str(EXAMPLES / claim["model"]))
    weights, bound = gpu_claims.weight_bound(claim["model"], t)
    assert weights == pytest.approx(2 * (model.params - 32000 * 4096) + 4096 * 2, rel=1e-6)
    assert bound == pytest.approx(weights / t.dram_bandwidth.si)


@pytest.mark.heavy
def test_full_gpu_report(tmp_path):
    """The whole report (every published point and claim), as ``--write`` builds it."""
    result = validation.build_report(tmp_path / "none", tmp_path / "gpu_validation.md")
    claims = gpu_claims.load_claims()["claims"]
    rows = sum(len(c["seqs"]) if c["kind"] == "attention_fraction_of_peak" else 1 for c in claims)
    assert len(result["published"]) == len(gpu_published.load_points()[1]) + rows
    assert all(r.predicted > 0 for r in result["published"]) and all(c["pass"] for c in result["checks"])
    assert (tmp_path / "gpu_validation_published.png").stat().st_size > 1000


def test_generators_print_unless_asked(tmp_path):
    import argparse

    from simulator.validation import output_args, written_to

    parser = argparse.ArgumentParser()
    output_args(parser, "x.md")
    assert written_to(parser.parse_args([]), "x.md") is None
    assert written_to(parser.parse_args(["--write"]), "x.md") == ROOT / "reports" / "x.md"
    assert written_to(parser.parse_args(["--report", str(tmp_path / "y.md")]), "x.md") == tmp_path / "y.md"
    with pytest.raises(SystemExit):
        parser.parse_args(["--write", "--report", "y.md"])


def test_published_stream_point_is_hand_derived():
    # Triton's vector add: 3 x 4 B x 134,217,728 = 1.611 GB at the A100 80GB PCIe's 1935 GB/s x dram_efficiency, plus
    # one kernel's fixed cost; the published 1684.0 GB/s is the reference
    a100 = load_target("a100-80gb-pcie")
    point = next(p for p in gpu_published.load_points()[1] if p["kind"] == "stream")
    predicted, measured, _, _ = gpu_published.predict(point)
    bytes_ = 3 * 4 * 134217728
    bw = 1935e9 * a100.dram_efficiency.si
    # timed by do_bench on the Triton docs' runner: that runner's measured floor of one call (6.144 us for 49,152 B
    # moved) replaces hwsim's time for the floor kernel (launch_overhead + 49,152 B at bw); the launch cost cancels
    assert point["harness"] == "triton-ci-do-bench"
    assert predicted == pytest.approx(bytes_ / bw + 6.144e-6 - 49152 / bw)
    assert measured == pytest.approx(bytes_ / 1684.0e9)


def test_timing_harness_offsets_are_hand_derived():
    """do_bench points pay their runner's measured one-call floor instead of the back-to-back launch cost; the floor
    point itself is reproduced exactly (circular); CUDA-graph points pay graph_launch_overhead per kernel."""
    points = gpu_published.load_points()[1]
    a100, h100 = load_target("a100-80gb-pcie"), load_target("h100-sxm")
    floor = next(p for p in points if p.get("calibrates") == "harness.triton-ci-do-bench")
    predicted, measured, _, _ = gpu_published.predict(floor)
    assert predicted == pytest.approx(6.144e-6) and measured == pytest.approx(49152 / 8.0e9)  # 8.0 GB/s published
    # 1024^3 on the docs' A100: hwsim's GEMM time + 6.144 us - (2.6 us launch + 49,152 B / (1935 GB/s x 0.868))
    sq = next(p for p in points if p["source"] == "triton-docs" and p["m"] == 1024)
    offset = 6.144e-6 - (2.6e-6 + 49152 / (1935e9 * a100.dram_efficiency.si))
    assert gpu_published.harness_offset_s(sq, a100) == pytest.approx(offset)
    assert gpu_published.predict(sq)[0] == pytest.approx(gemm(a100, 1, 1024, 1024, 1024, "fp16").time_s + offset)
    # vLLM's do_bench_cudagraph points: H100 graph replay 2.2 us per kernel instead of 2.4 us back to back
    skinny = next(p for p in points if p["source"] == "vllm-49363")
    assert gpu_published.harness_offset_s(skinny, h100) == pytest.approx(2.2e-6 - 2.4e-6)
    plain = gemm(h100, 1, skinny["m"], skinny["k"], skinny["n"], skinny["dtype"]).time_s
    assert gpu_published.predict(skinny)[0] == pytest.approx(plain - 0.2e-6)
    # the Flash-Decoding blog (xformers' Timer over CUDAGraph.replay): per kernel of the call, 1.34 instead of 2.6 us
    a80 = load_target("a100-80gb")
    fd = next(p for p in points if p["source"] == "flash-decoding-blog" and p["kernel"] == "flashdecoding"
              and p["batch"] == 1 and p["kv_len"] == 65536)
    assert gpu_published.harness_offset_s(fd, a80, 2) == pytest.approx(2 * (1.34e-6 - 2.6e-6))
    r = flash_decoding(a80, 1, 16, 2, 65536, 128, slots_per_sm=1, entry="fwd")
    assert r.launches == 2 and gpu_published.predict(fd)[0] == pytest.approx(r.time_s - 2 * 1.26e-6)
    # no harness (a timed loop of calls, zzc0721's test.py): hwsim's kernel time as it is
    loop = next(p for p in points if p["source"] == "zzc-torch-mm")
    assert "harness" not in loop and gpu_published.harness_offset_s(loop, h100) == 0.0


def test_calibration_rows_pay_the_files_own_timing_floor(tmp_path):
    """A measured file's event-timed rows (GEMM, copy, attention) are predicted with the file's own isolated-call
    floor instead of the back-to-back launch cost; the floor row is circular; back-to-back launch rows are not moved."""
    a100 = load_target("a100-80gb")
    plain = gemm(a100, 1, 1024, 1024, 1024, "fp16").time_s
    floor = 6e-6
    rows = [
        gm.measurement("launch", gm.ISOLATED_FLOOR, "-", {"launches": 1, "isolated": True}, [floor]),
        gm.measurement("launch", "empty kernel (torch.cuda._sleep(0)), back to back", "-", {"launches": 200}, [5e-6]),
        gm.measurement("gemm", "square 1024^3", "fp16", {"batch": 1, "m": 1024, "n": 1024, "k": 1024},
                       [plain + floor - a100.launch_overhead.si], group="square"),
    ]
    doc = gm.calibration_document({"name": "NVIDIA A100-SXM4-80GB", "type": "cuda"}, "synthetic", {}, rows, False,
                                  {"torch": "test"})
    assert validation.isolated_floor_s(doc) == pytest.approx(floor)
    got = {r.category: r for r in validation.compare_calibration(tmp_path / "synthetic.json", doc)[0]}
    assert got["calibration: launch (one isolated call)"].status == "circular"
    assert got["calibration: launch (one isolated call)"].error == pytest.approx(0.0)
    # 1024^3: hwsim's GEMM time - 2.6 us (launch_overhead) + 6 us (the floor), which the row was built to equal
    assert got["calibration: gemm square"].predicted == pytest.approx((plain - 2.6e-6 + 6e-6) * 1e6)
    assert got["calibration: gemm square"].error == pytest.approx(0.0, abs=1e-12)
    assert got["calibration: launch"].predicted == pytest.approx(a100.launch_overhead.si * 1e6)  # not moved


def test_decode_points_at_a_batch_with_prefill_in_the_per_token_time():
    """A decode_step point with ``batch`` runs the step at that batch; with ``includes_prefill`` its per-token time is
    (prefill + (gen - 1) steps at the mean context) / gen, the way optimum and gpt-fast's CI average over a generate()."""
    t = load_target("a100-80gb")
    point = {"kind": "decode_step", "target": "a100-80gb", "source": "x", "model": "gpt2.onnx", "batch": 4, "prompt": 64,
             "gen": 8, "launch": "stream", "stack": "kernels", "ms_per_token": 1.0}
    model = shared_model(EXAMPLES / "gpt2.onnx")
    step = simulate(model, t, "decode", 4, 68, 1, Precision(), {"launch": "stream", "stack": "kernels"}).latency_s
    one = simulate(model, t, "decode", 1, 68, 1, Precision(), {"launch": "stream", "stack": "kernels"}).latency_s
    assert gpu_published.predict(point)[0] == pytest.approx(step) and step > one
    pre = simulate(model, t, "prefill", 4, 64, 1, Precision(), {"launch": "stream", "stack": "kernels"}).latency_s
    predicted, measured, label, _ = gpu_published.predict({**point, "includes_prefill": True})
    assert predicted == pytest.approx((pre + 7 * step) / 8) and measured == pytest.approx(1e-3) and "batch 4" in label


def test_pod_attention_wave_step_is_reproduced():
    # POD-Attention (ASPLOS'25) measured FA2's decode kernel on an A100 more than 25% slower at batch 55 than at 54
    # (Yi-6B heads, 16K context): 216 CTAs fill 108 SMs twice, 220 need another wave. Held out: nothing is set from it.
    claim = next(c for c in gpu_claims.load_claims()["claims"] if c["kind"] == "decode_wave_step")
    (row,) = gpu_claims.rows(validation.Comparison, [claim])
    assert row.predicted > claim["ratio_above"] and row.error == 0.0 and row.reference_text == ">= 1.250"
    assert "216 -> 220 CTAs" in row.note and "waves 1 -> 2" in row.note


def test_skinny_growth_is_averaged_per_table_and_the_mlx_points_are_held_out_skinny():
    """gpu_explain's M = 16 -> 64 growth: one ratio per (source, layout) table, then their mean; and the MLX PRs'
    cuBLAS points are all skinny, independent and timed back to back (no harness)."""
    from types import SimpleNamespace

    from simulator.validation import gpu_explain

    def row(source, m, ref, pred, layout=None):
        point = {"source": source, "m": m, "n": 4096, "k": 4096, **({"layout": layout} if layout else {})}
        return SimpleNamespace(extra={"point": point}, reference=ref, predicted=pred)

    rows = [row("a", 16, 10.0, 20.0), row("a", 64, 12.0, 21.0),
            row("a", 16, 10.0, 20.0, "n-major"), row("a", 64, 15.0, 20.0, "n-major"),
            row("b", 16, 8.0, 8.0)]  # a table without an M = 64 row adds no ratio
    assert gpu_explain._growth(rows, 4096, True) == pytest.approx((0.2 + 0.5) / 2)
    assert gpu_explain._growth(rows, 4096, False) == pytest.approx((0.05 + 0.0) / 2)
    mlx = [p for p in gpu_published.load_points()[1] if p["source"].startswith("mlx-")]
    assert len(mlx) == 25 and {p["source"] for p in mlx} == {"mlx-3255", "mlx-3315", "mlx-3180", "mlx-3160", "mlx-3173"}
    assert all(validation.gemm_regime(p) == "skinny" and not p.get("harness") and not p.get("calibrates") for p in mlx)


def test_first_token_points_are_one_prefill_in_their_own_category():
    # a first-token point is one prefill of the prompt (its logits give the token) with the point's formats as the
    # CLI reads them (fp8 -> float8e4m3), not a decode step (GPT-2 in place of the real rows' Llama-2-7B: speed)
    real = next(p for p in gpu_published.load_points()[1] if p["kind"] == "prefill" and p["target"] == "h100-sxm")
    point = {**real, "model": "gpt2.onnx", "prompt": 64, "ms": 1.0}
    (row,) = gpu_published.rows(validation.Comparison, [point])
    assert row.category == "measured (published): prefill / first token" and row.status == "independent"
    fp8 = Precision(weights="float8e4m3", activations="float8e4m3", kv_cache="float8e4m3")
    direct = simulate(gpu_published._model("gpt2.onnx"), load_target("h100-sxm"), "prefill", 1, 64, 1, fp8,
                      {"launch": "stream", "stack": "engine", "act_quant": "fused"})
    assert row.predicted == pytest.approx(direct.latency_s * 1e6) and row.reference == pytest.approx(1000.0)
    assert "first token, 64-token prompt" in row.item
