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
    # 16 -> 16, 16-bit operands, one vector: mults = ceil(16*16/R); depth = MULT_LATENCY 2 + ceil(log2(16)=4 / 2) = 4
    (1, 256, 1 + 4),
    (2, 128, 2 + 4),
    (4, 64, 4 + 4),
])
def test_dense_16x16(reuse, mults, latency):
    e = dense_estimate("d", 16, 16, reuse, "latency", 16, 16, dsp=DSP48)
    assert e.multipliers == mults and e.resources.dsp == mults  # one DSP per 16 x 16 product
    assert e.ii_cycles == reuse and e.latency_cycles == latency
    assert e.resources.bram36 == 0  # Latency strategy keeps weights in registers


@pytest.mark.parametrize("reuse, dsp, ii, latency", [
    # 6 -> 8 per token over 15 tokens, one token at a time: mults = ceil(48/R); II = 15 R;
    # depth = 2 + ceil(ceil(log2 6)=3 / 2) = 4; latency = 15 R + 4
    (1, 48, 15, 19),
    (2, 24, 30, 34),
    (4, 12, 60, 64),
])
def test_dense_per_token(reuse, dsp, ii, latency):
    e = dense_estimate("ffn", 6, 8, reuse, "latency", 16, 16, vectors=15, parallel=1, dsp=DSP48)
    assert (e.resources.dsp, e.ii_cycles, e.latency_cycles) == (dsp, ii, latency)


def test_dense_resource_strategy_uses_bram():
    # 64 -> 64 at R=4: block_factor = 1024 words of 16 bits -> ceil(1024*16/72) = 228 BRAM36, R=4 <= 512 rows deep;
    # depth = 2 + ceil(6/2) + 1 (BRAM read) = 6; latency = 4 + 6
    e = dense_estimate("d", 64, 64, 4, "resource", 16, 16, dsp=DSP48)
    assert e.resources.bram36 == 228 and e.latency_cycles == 10 and e.resources.dsp == 1024
    with pytest.raises(HwsimError, match="strategy"):
        dense_estimate("d", 4, 4, 1, "fast")


def test_pipeline_totals_and_fit():
    target = load_target("xcvu13p")
    d1 = dense_estimate("d1", 16, 16, 2, dsp=DSP48)
    d2 = dense_estimate("d2", 16, 16, 2, dsp=DSP48)
    p = evaluate_pipeline([d1, d2], {"d1": ["x"], "d2": ["d1"]}, target)
    assert p.latency_cycles == 6 + 6 and p.ii_cycles == 2  # chain: sum of latencies; II = max II
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
    assert not r1.fits and r2.fits  # 16-bit products at R=1 exceed 80% of the VU13P's DSPs
    assert not estimate(layers, load_target("zcu102"), {"reuse": 2}).fits


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

    node = helper.make_node("Gelu", ["x"], ["y"], name="ffn_gelu", domain="")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8])])
    path = tmp_path / "gelu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), path)
    layers, _ = build_layers(str(path))  # costed (as a lookup) ...
    assert layers[-1].kind == "gelu"
    pytest.importorskip("hls4ml")
    from mapping.fpga.hls import write_project

    with pytest.raises(HwsimError, match="ffn_gelu.*GELU.*ReLU"):  # ... but not emitted
        write_project(str(path), str(tmp_path / "prj"))


def test_mapper_streams_weights():
    from mapping.fpga.mapper import map_workload, memory_capacity_bytes
    from mapping.workloads import Model

    target = load_target("u55c")
    assert memory_capacity_bytes(target) == 16 * 10**9
    work = Model(JET).prefill(1, 15)
    prog = map_workload(work, target, {})
    prog.validate()
    assert prog.tasks and all(t.resource == "fpga" for t in prog.tasks)
    with pytest.raises(HwsimError, match="offchip_bandwidth"):
        map_workload(work, load_target("xcvu13p"), {})


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

    res = CliRunner().invoke(main, ["hls", JET, "--out", str(tmp_path / "prj"), "--csim", "--tolerance", "0.1"])
    assert res.exit_code == 0, res.output
    assert "max abs error" in res.output
    res = CliRunner().invoke(main, ["hls", JET, "--out", str(tmp_path / "prj2"), "--csim", "--precision",
                                    "ap_fixed<8,3>", "--tolerance", "0.01"])
    assert res.exit_code == 2 and "widen --precision" in res.output
