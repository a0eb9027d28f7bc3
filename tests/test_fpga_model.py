"""FPGA target: hls4ml-style layer cost model, pipeline totals, presets, mapper and the `hwsim hls` command."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hardware.errors import HwsimError
from hardware.fpga.dense import DspShape, dense_estimate, dsps_per_multiplier
from hardware.fpga.pipeline import evaluate_pipeline
from hardware.targets import PRESET_DIR, load_target
from mapping.fpga.pipeline import build_layers, estimate

ROOT = Path(__file__).resolve().parent.parent
JET = str(ROOT / "examples" / "jet_tagger.onnx")
DSP48 = DspShape(27, 18, 10)


def test_dsps_per_multiplier():
    assert dsps_per_multiplier(16, 16, DSP48) == 1  # 16 <= 27 and 16 <= 18: one DSP48E2
    assert dsps_per_multiplier(17, 11, DSP48) == 1  # Jiang et al. 17 x 11 bits
    assert dsps_per_multiplier(24, 24, DSP48) == 2  # ceil(24/27) * ceil(24/18) = 1 * 2
    assert dsps_per_multiplier(32, 32, DSP48) == 4  # ceil(32/27) * ceil(32/18) = 2 * 2
    assert dsps_per_multiplier(8, 8, DSP48) == 0  # both <= 10 bits: LUT multiplier
    assert dsps_per_multiplier(24, 24, DspShape(27, 24, 10)) == 1  # DSP58 27 x 24


@pytest.mark.parametrize("reuse, mults, latency", [
    # 16 -> 16, 16-bit operands, one vector, Latency strategy: m = ceil(256/R) multipliers, c = ceil(256/m) = R
    # multiply cycles, depth 0 at R=1, 1 for R <= 4, 2 above; latency = c + depth
    (1, 256, 1 + 0),
    (2, 128, 2 + 1),
    (4, 64, 4 + 1),
    (8, 32, 8 + 2),
])
def test_dense_16x16(reuse, mults, latency):
    e = dense_estimate("d", 16, 16, reuse, "latency", 16, 16, dsp=DSP48)
    assert e.multipliers == mults and e.resources.dsp == mults  # one DSP per 16 x 16 product
    assert e.ii_cycles == reuse and e.latency_cycles == latency
    assert e.resources.bram36 == 0  # Latency strategy keeps weights in registers


@pytest.mark.parametrize("reuse, dsp, cycles", [
    # 16 x 16 = 256 weights, 192 of them zero (75% pruned), 64 non-zero:
    # R=1: m = 64 (the non-zeros), one cycle; R=2: m = 128 - 96 = 32, c = 64/32 = 2; R=4: m = 64 - 48 = 16, c = 4
    (1, 64, 1),
    (2, 32, 2),
    (4, 16, 4),
])
def test_zero_weights_are_skipped(reuse, dsp, cycles):
    e = dense_estimate("d", 16, 16, reuse, "latency", 16, 16, dsp=DSP48, zeros=192)
    assert (e.resources.dsp, e.ii_cycles) == (dsp, cycles)
    full = dense_estimate("d", 16, 16, reuse, "latency", 16, 16, dsp=DSP48)
    assert e.resources.dsp * 4 == full.resources.dsp and e.resources.ff < full.resources.ff
    # LUTs: constants in logic at R=1 follow the non-zeros; from R=2 the weight selection follows all weights
    assert (e.resources.lut < full.resources.lut) if reuse == 1 else (e.resources.lut == full.resources.lut)
    # the Resource kernel multiplies every weight: zeros do not help there
    assert dense_estimate("d", 16, 16, 2, "resource", dsp=DSP48, zeros=192).resources.dsp == 128
    assert dense_estimate("d", 4, 4, 1, zeros=16).resources.dsp == 0  # all zero: no multiplier
    with pytest.raises(HwsimError, match="zeros"):
        dense_estimate("d", 4, 4, 1, zeros=17)


def test_dense_lut_ff_rules():
    # R=1, 16 x 16, 16-bit: LUT = (0.68 * 256 + 0.61 * 256) * 16 = 5283.84; FF = 6.5 * 256 * 1 = 1664
    e = dense_estimate("d", 16, 16, 1, dsp=DSP48)
    assert (e.resources.lut, e.resources.ff) == (5284, 1664)
    # R=2: LUT = 256 * 16 * (1.85 - 0.0485 * 1) = 7378.9; FF = 1664 * (1 + 1.25 * (1/5) ** 1.5) = 1850.0
    e = dense_estimate("d", 16, 16, 2, dsp=DSP48)
    assert (e.resources.lut, e.resources.ff) == (7379, 1850)
    # R=32 and beyond: FF saturates at 1664 * 2.25 = 3744; LUT = 4096 * (1.85 - 0.0485 * 5) = 6584.3
    e = dense_estimate("d", 16, 16, 32, dsp=DSP48)
    assert (e.resources.lut, e.resources.ff) == (6584, 3744)
    assert dense_estimate("d", 16, 16, 64, dsp=DSP48).resources.ff == 3744


@pytest.mark.parametrize("reuse, dsp, ii, latency", [
    # 6 -> 8 per token over 15 tokens, one token at a time: mults = ceil(48/R); c = R; II = 15 R;
    # latency = 15 c + depth (0 at R=1, 1 at R=2, 4)
    (1, 48, 15, 15),
    (2, 24, 30, 31),
    (4, 12, 60, 61),
])
def test_dense_per_token(reuse, dsp, ii, latency):
    e = dense_estimate("ffn", 6, 8, reuse, "latency", 16, 16, vectors=15, parallel=1, dsp=DSP48)
    assert (e.resources.dsp, e.ii_cycles, e.latency_cycles) == (dsp, ii, latency)


@pytest.mark.parametrize("reuse, dsp, ii, latency", [
    # the same 6 -> 8 over 15 tokens, all at once (--token-parallel, hls4ml ParallelizationFactor = 15):
    # mults = ceil(48 / R) * 15; one pass, II = c = R; latency = R + depth
    (1, 720, 1, 1),
    (2, 360, 2, 3),
    (4, 180, 4, 5),
])
def test_dense_token_parallel(reuse, dsp, ii, latency):
    e = dense_estimate("ffn", 6, 8, reuse, "latency", 16, 16, vectors=15, parallel=15, dsp=DSP48)
    assert (e.resources.dsp, e.ii_cycles, e.latency_cycles) == (dsp, ii, latency)


def test_einsum_is_unrolled_over_tokens():
    # Q.K^T of the jet tagger as hls4ml 1.3 emits it (nnet::einsum: PIPELINE II=R, multiplier_limit =
    # L0*L1*C*heads/R = 15*15*32*2/2 = 7200 at R=2, parameters.h config11). As a dense_estimate: n_in = C = 32,
    # n_out = heads*L1 = 30, vectors = parallel = L0 = 15: mults = 960/2 * 15 = 7200, II = c = 2, latency 2 + 1
    e = dense_estimate("qk", 32, 30, 2, "latency", 16, 16, vectors=15, parallel=15, dsp=DSP48, kind="matmul")
    assert (e.multipliers, e.ii_cycles, e.latency_cycles, e.resources.bram36) == (7200, 2, 3, 0)


def test_dense_resource_strategy_uses_bram():
    # 64 -> 64 at R=4: block_factor = 1024 words of 16 bits -> ceil(1024*16/72) = 228 BRAM36, R=4 <= 512 rows deep;
    # latency = R + RESOURCE_DEPTH 3 = 7
    e = dense_estimate("d", 64, 64, 4, "resource", 16, 16, dsp=DSP48)
    assert e.resources.bram36 == 228 and e.latency_cycles == 7 and e.resources.dsp == 1024
    # 15 tokens at once read the same weight rows: 15x the multipliers, the same 228 BRAM36
    e = dense_estimate("d", 64, 64, 4, "resource", 16, 16, vectors=15, parallel=15, dsp=DSP48)
    assert e.resources.bram36 == 228 and e.resources.dsp == 15 * 1024
    with pytest.raises(HwsimError, match="strategy"):
        dense_estimate("d", 4, 4, 1, "fast")


def test_io_stream_adds_one_cycle():
    # hls4ml packs a Dense's input into one stream word: +1 cycle (test_dense_io_stream vs io_parallel baselines);
    # a Dense of one input has no adder tree: 0 cycles and no registers in io_parallel (test_activations baselines)
    par = dense_estimate("d", 1, 2, 1, dsp=DSP48)
    st = dense_estimate("d", 1, 2, 1, dsp=DSP48, io_type="io_stream")
    assert (par.latency_cycles, st.latency_cycles, par.resources.ff) == (0, 1, 0)
    wide = dense_estimate("d", 4, 2, 1, dsp=DSP48)
    assert wide.latency_cycles == 1 and wide.resources.ff > 0


def test_vitis_rules_follow_non_zero_products():
    from hardware.fpga.tool import VITIS

    # Vitis HLS: LUTs follow the non-zero products only (1.54 per product per operand bit), FFs a third of Vivado's,
    # and the adder tree of k non-zero products per output takes 1 + ceil(log2 k / 5) cycles
    full = dense_estimate("d", 64, 32, 1, dsp=DSP48, tool=VITIS)
    pruned = dense_estimate("d", 64, 32, 1, dsp=DSP48, tool=VITIS, zeros=64 * 32 * 3 // 4)
    assert full.resources.lut == round(1.54 * 2048 * 16) and pruned.resources.lut == round(1.54 * 512 * 16)
    assert (full.latency_cycles, pruned.latency_cycles) == (1 + 2, 1 + 1)  # k = 64: 6 levels; k = 16: 4 levels
    vivado = dense_estimate("d", 64, 32, 1, dsp=DSP48)
    assert vivado.latency_cycles == 1 and full.resources.ff == pytest.approx(0.337 * vivado.resources.ff, abs=1)


def test_softmax_rule():
    from hardware.fpga.layers import layernorm_estimate, softmax_estimate

    # n = 5: latency 3 + ceil(2 * 3 / 6) = 4; 5 DSPs; ROM copies ceil(5 / (2R)) + 1 of one BRAM18 (1024 x 18 bits)
    for reuse, bram18 in ((1, 4), (2, 3), (4, 2), (8, 2)):
        e = softmax_estimate("s", 5, reuse=reuse, dsp=DSP48)
        assert (e.latency_cycles, e.resources.dsp, e.resources.bram36 * 2) == (4, 5, bram18)
    # table size is settable: 4096 x 18 bits = 4 BRAM18 per copy
    assert softmax_estimate("s", 5, table_size=4096, dsp=DSP48).resources.bram36 * 2 == 16
    # LUT 10 * 5 * 16 = 800, FF 5 * 5 * 16 = 400 per row; 30 rows at once: 30x
    e = softmax_estimate("s", 5, rows=30, dsp=DSP48)
    assert (e.resources.lut, e.resources.ff, e.resources.dsp) == (24000, 12000, 150)
    # LayerNorm rows: pipelined all at once (pipeline style): depth only; one row at a time: rows * R + depth
    # depth = 2 * adder_depth(8) + 1 + 3 = 2 * ceil(3 / 6) + 4 = 6
    assert layernorm_estimate("ln", 8, rows=15, parallel_rows=15).latency_cycles == 1 + 6
    assert layernorm_estimate("ln", 8, rows=15, parallel_rows=1).latency_cycles == 15 + 6


def test_pipeline_totals_and_fit():
    target = load_target("xcvu13p")
    d1 = dense_estimate("d1", 16, 16, 2, dsp=DSP48)
    d2 = dense_estimate("d2", 16, 16, 2, dsp=DSP48)
    p = evaluate_pipeline([d1, d2], {"d1": ["x"], "d2": ["d1"]}, target)
    assert p.latency_cycles == 3 + 3 and p.ii_cycles == 2  # chain: sum of latencies; II = max II
    assert p.throughput_per_s == pytest.approx(200e6 / 2)
    assert p.resources.dsp == 256 and p.fits
    big = dense_estimate("big", 256, 256, 1, dsp=DSP48)  # 65,536 DSPs > 80% of 12,288
    p = evaluate_pipeline([big], {"big": ["x"]}, target)
    assert not p.fits and p.over[0].startswith("dsp")


def test_jet_tagger_pipeline():
    layers, outputs = build_layers(JET)
    assert outputs == ["probabilities"]
    kinds = [lay.kind for lay in layers]
    assert kinds.count("dense") == 3 * 6 + 4 and kinds.count("matmul") == 6 and kinds.count("softmax") == 4
    target = load_target("xcvu13p")
    r1, r2, r4 = (estimate(layers, target, {"reuse": r}) for r in (1, 2, 4))
    assert r1.latency_cycles < r2.latency_cycles < r4.latency_cycles
    assert r1.resources.dsp > r2.resources.dsp > r4.resources.dsp
    # DSPs at R=2, 16-bit (one DSP48E2 per product), token-serial (--token-serial, the default), by hand, every
    # weight counted (skip_zeros=False):
    #   per block: Q/K/V 6->64: 3 * 384/2 = 576; O 64->6: 192; FFN 6->8, 8->6: 24 + 24        -> 816
    #              Einsum Q.K^T and P.V, unrolled over the 15 tokens: 2 * 15*15*32*2 / 2       -> 14,400
    #              softmax: 15 multiplies (18 x 18 bits: 1 DSP) x 30 rows at once              -> 450
    #   3 blocks = 3 * 15,666 = 46,998; head 90*32/2 + 32*16/2 + 16*8/2 + 8*3/2 = 1,772; output softmax 3
    full = estimate(layers, target, {"reuse": 2, "skip_zeros": False})
    assert full.resources.dsp == 46_998 + 1_772 + 3 == 48_773
    assert r2.resources.dsp <= full.resources.dsp  # weights that quantise to zero cost nothing
    # II: the slowest stage is a per-token Dense, 15 tokens x R
    assert (r1.ii_cycles, r2.ii_cycles, r4.ii_cycles) == (15, 30, 60)
    tp = estimate(layers, target, {"reuse": 2, "token_parallel": True, "skip_zeros": False})
    # token-parallel: each per-token Dense x15 multipliers: 3 * (15 * 816 + 14,400 + 450) + 1,775 = 83,045; II = R
    assert tp.resources.dsp == 83_045 and tp.ii_cycles == 2 and tp.latency_cycles < r2.latency_cycles
    # hls4ml 1.3's unrolled Einsum alone (3 * 14,400 / R) exceeds 80% of the VU13P's 12,288 DSPs for R <= 4
    assert not (r1.fits or r2.fits or r4.fits or tp.fits)
    # Jiang et al.-style attention (one query row per R cycles; not emittable with hls4ml 1.3):
    # Einsum 2 * 15*32*2/2 = 960, softmax 2 rows * 15 = 30 per block: 3 * (816 + 960 + 30) + 1,775 = 7,193 -> fits
    jiang = estimate(layers, target, {"reuse": 2, "matmul_parallel": 1, "skip_zeros": False})
    assert jiang.resources.dsp == 7_193 and jiang.fits
    assert not estimate(layers, load_target("zcu102"), {"reuse": 2, "matmul_parallel": 1}).fits


def test_bad_preset_field_names_it(tmp_path):
    data = yaml.safe_load((PRESET_DIR / "u55c.yaml").read_text())
    data["dsp"]["unit"] = "MHz"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(HwsimError, match="'dsp'"):
        load_target(str(path))
    del data["dsp"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(HwsimError, match="'dsp'.*missing"):
        load_target(str(path))


def test_all_fpga_presets_load():
    for name in ("xcvu13p", "vcu118", "u250", "u280", "u55c", "zcu102", "vck190"):
        t = load_target(name)
        assert t.kind == "fpga" and t.dsp.n > 0 and t.clock_hz > 0


def test_unsupported_op_is_one_line(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    def model(op: str) -> str:
        node = helper.make_node(op, ["x"], ["y"], name=f"ffn_{op.lower()}", domain="")
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8])])
        path = tmp_path / f"{op}.onnx"
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), path)
        return str(path)

    layers, _ = build_layers(model("Gelu"))  # a table-based custom layer (mapping/fpga/hls_ext.py)
    assert layers[-1].kind == "gelu"
    with pytest.raises(HwsimError, match=r"node 'ffn_cos' \(Cos\): not supported by the FPGA emitter; supported:"):
        build_layers(model("Cos"))


def test_mapper_streams_weights():
    from mapping.fpga.mapper import map_workload, memory_capacity_bytes
    from mapping.workloads import Model

    target = load_target("u55c")
    assert memory_capacity_bytes(target) == 16 * 10**9 + target.bram36.n * 4608  # HBM + block RAM
    # a bare device (no off-chip memory) holds a small model in its block RAM: the jet tagger on xcvu13p
    assert memory_capacity_bytes(load_target("xcvu13p")) == 2688 * 4608
    work = Model(JET).prefill(1, 15)
    prog = map_workload(work, target)
    prog.validate()
    assert prog.tasks and {t.resource for t in prog.tasks} == {"dsp", "dma"}
    assert sum(t.energy_j for t in prog.tasks) > 0  # dynamic energy is modelled
    # every weight byte is loaded once, by a load task that precedes its op's compute
    loads = [t for t in prog.tasks if t.resource == "dma"]
    assert sum(t.bytes_by_level["offchip"] for t in loads) == sum(
        o.weight_bytes + o.kv_read_bytes + o.kv_write_bytes for o in work.ops if o.category not in ("view", "folded"))
    names = {t.name for t in loads}
    assert all(f"{t.name}:load" in names for t in prog.tasks if t.resource == "dsp" and any(
        lt.op == t.op for lt in loads))  # every tile of a streaming op computes after its own load
    with pytest.raises(HwsimError, match="offchip_bandwidth"):
        map_workload(work, load_target("xcvu13p"))


def test_fpga_loads_overlap_compute_double_buffered():
    """Weights of the next ops stream in while the DSPs compute: the makespan lies between the larger of the two
    totals and their sum, and a load never runs more than two ops ahead of the compute (two buffers)."""
    from mapping.fpga.mapper import map_workload
    from mapping.workloads import Model
    from simulator.engine import run

    prog = map_workload(Model(str(ROOT / "examples" / "gpt2.onnx")).prefill(1, 64), load_target("u55c"))
    result = run(prog)
    load = sum(t.duration_s for t in prog.tasks if t.resource == "dma")
    compute = sum(t.duration_s for t in prog.tasks if t.resource == "dsp")
    assert max(load, compute) <= result.latency_s < load + compute
    start = {r.task.name: r.start_s for r in result.records}
    end = {r.task.name: r.end_s for r in result.records}
    computes = [t.name for t in prog.tasks if t.resource == "dsp"]
    for t in prog.tasks:
        if t.resource == "dma" and t.deps:
            (freed,) = t.deps
            assert start[t.name] >= end[freed] and freed in computes


def test_hls_command_writes_project(tmp_path):
    pytest.importorskip("hls4ml")
    from simulator.cli import main

    out = tmp_path / "prj"
    res = CliRunner().invoke(main, ["hls", JET, "--out", str(out), "--reuse", "2"])
    assert res.exit_code == 0, res.output
    assert "estimate on xcvu13p" in res.output
    fw = out / "firmware" / "myproject.cpp"
    assert fw.exists() and (out / "build_prj.tcl").exists() and (out / "myproject_test.cpp").exists()
    text = fw.read_text()
    assert text.count("nnet::einsum<") == 6 and "softmax_multidim" in text
    assert "reuse_factor = 2" in (out / "firmware" / "parameters.h").read_text()


def test_hls_command_bad_precision(tmp_path):
    from simulator.cli import main

    res = CliRunner().invoke(main, ["hls", JET, "--out", str(tmp_path / "p"), "--precision", "fixed16"])
    assert res.exit_code == 2 and "--precision" in res.output


@pytest.mark.heavy
@pytest.mark.skipif(shutil.which("g++") is None, reason="csim needs g++")
def test_hls_csim_matches_onnxruntime(tmp_path):
    pytest.importorskip("hls4ml")
    from simulator.cli import main

    # softmax tables of 4096 entries: with hls4ml's default 1024 the 15-wide attention softmax is off by ~0.2
    res = CliRunner().invoke(main, ["hls", JET, "--out", str(tmp_path / "prj"), "--csim", "--tolerance", "0.1",
                                    "--table-size", "4096"])
    assert res.exit_code == 0, res.output
    assert "max abs error" in res.output
    res = CliRunner().invoke(main, ["hls", JET, "--out", str(tmp_path / "prj2"), "--csim", "--precision",
                                    "ap_fixed<8,3>", "--tolerance", "0.01"])
    assert res.exit_code == 2 and "widen --precision" in res.output


def test_token_choice_reaches_the_project(tmp_path):
    pytest.importorskip("hls4ml")
    from mapping.fpga.hls import emitted_reuse, emitted_settings, write_project

    serial = write_project(JET, str(tmp_path / "serial"), reuse=4, strategy="Resource")
    params = (serial.out_dir / "firmware" / "parameters.h").read_text()
    # 18 per-token Dense -> pointwise Conv1D; ParallelizationFactor 1: n_partitions = 15 tokens, one per R cycles
    assert params.count("n_partitions = 15;") == 18 and "n_partitions = 1;" not in params
    assert emitted_settings(serial)["block0_ffn_up_matmul"]["parallelization"] == 1
    # hls4ml's Resource rule for 6 -> 8 at R=4: multfactor = min(6, 4) = 4, ceil(48/4) = 12, 12 % 8 != 0 and 4 < 6:
    # invalid; R=3 (16 % 8 == 0, 48 % 3 == 0) is the closest valid. 8 -> 6 at R=4: 12 % 6 == 0: kept.
    rf = emitted_reuse(serial)
    assert rf["block0_ffn_up_matmul"] == 3 and rf["block0_ffn_down_matmul"] == 4 and rf["block0_attn_score"] == 4
    parallel = write_project(JET, str(tmp_path / "parallel"), reuse=2, token_parallel=True)
    params = (parallel.out_dir / "firmware" / "parameters.h").read_text()
    assert params.count("n_partitions = 1;") == 18
    assert "#pragma HLS PIPELINE" in parallel.firmware.read_text()  # no partition loop left: whole top pipelined


FAKE_CSYNTH = """<profile>
<UserAssignments><TargetClockPeriod>5.00</TargetClockPeriod></UserAssignments>
<PerformanceEstimates>
<SummaryOfTimingAnalysis><EstimatedClockPeriod>4.321</EstimatedClockPeriod></SummaryOfTimingAnalysis>
<SummaryOfOverallLatency><Best-caseLatency>321</Best-caseLatency><Worst-caseLatency>323</Worst-caseLatency>
<Interval-min>30</Interval-min><Interval-max>31</Interval-max></SummaryOfOverallLatency>
</PerformanceEstimates>
<AreaEstimates><Resources><BRAM_18K>14</BRAM_18K><DSP48E>1234</DSP48E><FF>56789</FF><LUT>98765</LUT>
<URAM>0</URAM></Resources><AvailableResources><BRAM_18K>5376</BRAM_18K><DSP48E>12288</DSP48E><FF>3456000</FF>
<LUT>1728000</LUT><URAM>1280</URAM></AvailableResources></AreaEstimates>
</profile>
"""


def _fake_tool(bin_dir: Path, name: str) -> None:
    """An executable that writes what csynth leaves for hls4ml's reader: <prj>/hls.app and the csynth XML."""
    app = "vivado_hls.app" if name == "vivado_hls" else "hls.app"
    report = bin_dir / "csynth.xml"
    report.write_text(FAKE_CSYNTH)
    tool = bin_dir / name
    tool.write_text(f"""#!/bin/sh
echo "$0 $*" > fake_tool_args.txt
mkdir -p myproject_prj/solution1/syn/report
echo '<project><solutions><solution name="solution1"/></solutions></project>' > myproject_prj/{app}
cp {report} myproject_prj/solution1/syn/report/myproject_csynth.xml
""")
    tool.chmod(0o755)


@pytest.mark.parametrize("backend, tool", [("Vitis", "vitis-run"), ("Vitis", "vitis_hls"), ("Vivado", "vivado_hls")])
def test_hls_synth_with_tool_on_path(tmp_path, monkeypatch, backend, tool):
    pytest.importorskip("hls4ml")
    from simulator.cli import main

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_tool(bin_dir, tool)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    out = tmp_path / "prj"
    res = CliRunner().invoke(main, ["hls", JET, "--out", str(out), "--reuse", "2", "--backend", backend, "--synth"])
    assert res.exit_code == 0, res.output
    assert f"csynth ({tool}) vs estimate" in res.output
    lines = {ln.split()[0]: ln.split() for ln in res.output.splitlines() if ln.startswith("  ")}
    assert lines["latency"][2] == "321-323" and lines["II"][2] == "30-31"
    expected = estimate(build_layers(JET)[0], load_target("xcvu13p"), {"reuse": 2}).resources.dsp
    assert lines["DSP"][1] == "1234" and lines["DSP"][2] == str(expected)  # the estimate (test_jet_tagger_pipeline)
    assert lines["LUT"][1] == "98765" and lines["FF"][1] == "56789" and lines["BRAM36"][1] == "7"  # 14 BRAM18
    assert "synth" in (out / "fake_tool_args.txt").read_text()
    if backend == "Vitis":  # build_prj.tcl reads build_opt.tcl: C synthesis only
        opts = (out / "build_opt.tcl").read_text()
        assert "csim       0" in opts and "synth      1" in opts and "cosim      0" in opts


def test_hls_synth_without_tool_prints_the_command(tmp_path, monkeypatch):
    pytest.importorskip("hls4ml")
    from simulator.cli import main

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    for backend, command in (("Vitis", "`vitis_hls -f build_prj.tcl`"), ("Vivado", "`vivado_hls -f build_prj.tcl \"reset=1")):
        out = tmp_path / backend
        res = CliRunner().invoke(main, ["hls", JET, "--out", str(out), "--backend", backend, "--synth"])
        assert res.exit_code == 0, res.output
        note = [ln for ln in res.output.splitlines() if ln.startswith("--synth:")]
        assert len(note) == 1 and command in note[0] and "the estimate above stands" in note[0]
        assert str(out) in note[0]


def test_parse_synth_report_missing(tmp_path):
    pytest.importorskip("hls4ml")
    from mapping.fpga.hls import parse_synth_report, write_project

    prj = write_project(JET, str(tmp_path / "prj"))
    with pytest.raises(HwsimError, match="no C-synthesis report"):
        parse_synth_report(prj.out_dir)


def test_macs_per_dsp_by_format():
    from hardware.fpga.dense import macs_per_dsp

    # WP486: two <= 8-bit integer MACs per DSP48E2; floats: ceil(s/27) * ceil(s/18) DSPs per significand product
    assert macs_per_dsp("int8", "int8", DSP48) == 2 and macs_per_dsp("int8", "int4", DSP48) == 2
    assert macs_per_dsp("float16", "float16", DSP48) == 1  # 11 x 11 -> 1 * 1
    assert macs_per_dsp("float32", "float32", DSP48) == 0.5  # 24 x 24 -> ceil(24/27) * ceil(24/18) = 2
    assert macs_per_dsp("float16", "int4", DSP48) == 1  # weight-only int4 dequantised to fp16
    assert macs_per_dsp("int16", "int16", DSP48) == 1
    assert macs_per_dsp("float32", "float32", DspShape(27, 24, 10)) == 1  # DSP58: 24 x 24 fits one


def _one_matmul(weights: str, activations: str):
    from mapping.op_costs import MatmulDims, OpCost, Precision
    from mapping.workloads import Workload

    op = OpCost("fc", "MatMul", "matmul", 2e12, 10**9, 0, 0, matmul=MatmulDims(1, 1000, 1000, 10**6, True))
    return Workload("m", "prefill", 1, 1000, 0, {}, Precision(weights, activations, activations), [op], 0, 0,
                    5 * 10**8, 10**9)


@pytest.mark.parametrize("weights, acts, factor", [("float16", "float16", 1.0), ("float32", "float32", 2.0),
                                                   ("int8", "int8", 0.5), ("int4", "int8", 0.5)])
def test_mapper_time_and_energy_depend_on_precision(weights, acts, factor):
    from mapping.fpga.mapper import map_workload

    # u55c: 9,024 DSPs x 300 MHz x 0.8 = 2.16576e12 DSP-ops/s; 1e12 MACs at fp16 (1 per DSP) = 0.461732 s, far
    # above the 1 GB / 460 GB/s = 2.17 ms weight stream. Energy: 1e12 MACs x 1.2 pJ = 1.2 J (x 2 fp32, / 2 int8)
    # + 1e9 B x 8 x 3.9 pJ/bit = 0.0312 J.
    from simulator.engine import run

    program = map_workload(_one_matmul(weights, acts), load_target("u55c"), {"tiles": 4})
    loads = [t for t in program.tasks if t.resource == "dma"]
    computes = [t for t in program.tasks if t.resource == "dsp"]
    assert len(loads) == len(computes) == 4
    assert sum(t.duration_s for t in computes) == pytest.approx(1e12 / 2.16576e12 * factor)
    assert sum(t.duration_s for t in loads) == pytest.approx(1e9 / 460e9)
    assert sum(t.energy_by_action["dsp_mac"] for t in computes) == pytest.approx(1.2 * factor)
    assert sum(t.energy_by_action["offchip"] for t in loads) == pytest.approx(0.0312)
    # compute-bound: one tile's load, then the four computes back to back
    assert run(program).latency_s == pytest.approx(1e9 / 460e9 / 4 + 1e12 / 2.16576e12 * factor)


def test_hls_target_sets_part(tmp_path):
    from simulator.hls_command import resolve_part_and_target

    part, fpga = resolve_part_and_target(None, "u55c")
    assert part == "xcu55c-fsvh2892-2L-e" and fpga.name == "u55c"
    part, fpga = resolve_part_and_target("xcu55c-fsvh2892-2L-e", None)
    assert fpga.name == "u55c"
    part, fpga = resolve_part_and_target("XCVU9P-flga2104-2L-e", None)
    assert fpga.name == "vcu118" and part == "XCVU9P-flga2104-2L-e"
    assert resolve_part_and_target(None, None)[1].name == "xcvu13p"
    with pytest.raises(HwsimError, match="--part xcu55c.*contradicts --target u250"):
        resolve_part_and_target("xcu55c-fsvh2892-2L-e", "u250")
    with pytest.raises(HwsimError, match="--part xc7a35t.*no bundled FPGA preset"):
        resolve_part_and_target("xc7a35t-cpg236-1", None)


def test_hls_command_ties_part_and_target(tmp_path):
    pytest.importorskip("hls4ml")
    from simulator.cli import main

    out = tmp_path / "a"
    res = CliRunner().invoke(main, ["hls", JET, "--out", str(out), "--target", "u55c"])
    assert res.exit_code == 0, res.output
    assert 'set part "xcu55c-fsvh2892-2L-e"' in (out / "project.tcl").read_text()
    res = CliRunner().invoke(main, ["hls", JET, "--out", str(tmp_path / "b"), "--part", "xcu55c-fsvh2892-2L-e"])
    assert res.exit_code == 0 and "estimate on u55c" in res.output
    res = CliRunner().invoke(main, ["hls", JET, "--out", str(tmp_path / "c"), "--part", "xcu55c-fsvh2892-2L-e",
                                    "--target", "u250"])
    assert res.exit_code == 2 and "xcu55c" in res.output and "u250" in res.output
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("clock", ["0", "-5"])
def test_hls_bad_clock_refused_up_front(tmp_path, clock):
    from simulator.cli import main

    res = CliRunner().invoke(main, ["hls", JET, "--out", str(tmp_path / "p"), "--clock-ns", clock])
    assert res.exit_code == 2 and "--clock-ns" in res.output and "internal error" not in res.output
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "p").exists()
