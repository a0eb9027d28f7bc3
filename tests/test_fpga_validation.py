"""The published csynth data set: it loads, every point predicts, and the held-out Vivado HLS points stay close."""

from __future__ import annotations

import math

import pytest
import yaml

from hardware.errors import HwsimError
from simulator.validation.fpga import DATA, METRICS, evaluate, load_points, summary


@pytest.fixture(scope="module")
def rows():
    return evaluate()


def test_every_point_loads_and_predicts(rows):
    networks, points = load_points()
    assert len(rows) == len(points) >= 20
    assert {p["role"] for p in points} == {"calibration", "held_out"}
    for r in rows:
        assert all(math.isfinite(r["predicted"][m]) and r["predicted"][m] >= 0 for m in METRICS), r["point"]["id"]
        assert r["point"]["source"].split()[1].isalnum() and len(r["point"]["source"].split()[1]) == 40  # a commit


def test_held_out_vivado_points_within_goals(rows):
    # issue 17's goals on held-out points: latency/II/DSP within 15%, LUT/FF/BRAM within 30% (Vivado HLS points;
    # the Vitis HLS 2024.1 points are reported, and missed, in reports/fpga_validation.md)
    s = summary(rows, lambda p: p["tool"].startswith("Vivado"))["held_out"]
    assert s["latency"] <= 0.15 and s["ii"] <= 0.15 and s["dsp"] <= 0.15
    assert s["lut"] <= 0.30 and s["ff"] <= 0.30 and s["bram18"] <= 0.30


def test_vitis_rules_on_held_out_points(rows):
    # the Vitis HLS rules (hardware/fpga/tool.py) were fitted on the unpruned tagger; the pruned one is held out:
    # its LUTs follow the non-zero products and its FFs are a third of Vivado's (reported 34,698 LUT, 5,258 FF)
    by_id = {r["point"]["id"]: r for r in rows}
    pruned = by_id["t3-vitis-pruned-r1"]["errors"]
    assert abs(pruned["lut"]) < 0.10 and abs(pruned["ff"]) < 0.05 and pruned["latency"] == 0 and pruned["bram18"] == 0
    s = summary(rows, lambda p: p["tool"].startswith("Vitis"))["held_out"]
    assert s["latency"] <= 0.15 and s["ii"] <= 0.15 and s["dsp"] <= 0.15 and s["ff"] <= 0.30


def test_resource_conv2d_is_token_serial(rows):
    # hls4ml's test_conv2d (Resource, R = 1): 7 x 7 output positions one per cycle (ParallelizationFactor 1) plus the
    # Resource kernel's 3 stages = 52 cycles, II 49 (reported: Vivado 51 / 49, Vitis 52 / 53); no BRAM at R = 1
    by_id = {r["point"]["id"]: r for r in rows}
    for pid in ("b-conv2d-resource-vivado", "b-conv2d-resource-vitis"):
        got = by_id[pid]["predicted"]
        assert (got["latency"], got["ii"], got["bram18"]) == (49 + 3, 49, 0)


def test_reuse_sweep_shape(rows):
    # the tutorial's reuse sweep (xczu7ev, Vivado HLS 2019.1): at R = 256 the II is set by the 1024-weight layer
    # with 983 non-zeros and 4 multipliers, ceil(983 / 4) = 246, as reported, not R
    by_id = {r["point"]["id"]: r for r in rows}
    assert by_id["t2b-r256"]["predicted"]["ii"] == 246 == by_id["t2b-r256"]["point"]["reported"]["ii"]
    # the pruned model's DSPs at R = 1 are exactly its non-zero weights (+5 softmax multiplies)
    assert by_id["t3-zu3eg-pruned-r1"]["predicted"]["dsp"] == 256 + 512 + 256 + 40 + 5 == 1069


def test_bad_point_is_named(tmp_path):
    data = yaml.safe_load(DATA.read_text())
    del data["points"][0]["reported"]["lut"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(HwsimError, match="t2b-r1.*lut"):
        load_points(path)


def _mlp(tmp_path, zeros=(0, 0, 0, 0)):
    from simulator.validation.fpga_models import mlp

    return str(mlp(tmp_path / "mlp.onnx", [16, 64, 32, 32, 5], list(zeros)))


def test_fit_suggestion_really_fits(tmp_path):
    from hardware.targets import load_target
    from mapping.fpga.fit import suggest_fit
    from mapping.fpga.hls_design import hls_estimate
    from mapping.fpga.pipeline import build_layers, estimate

    layers, _ = build_layers(_mlp(tmp_path))
    zcu = load_target("zcu102")  # 2,520 DSPs, 80% usable = 2,016
    assert not hls_estimate(layers, zcu, 1).fits  # 4,256 products + 5 softmax = 4,261 DSPs
    fix = suggest_fit(layers, zcu, {"reuse": 1})
    # R=2: 2,128 + 5 = 2,133 > 2,016; R=4: 1,064 + 5 = 1,069 fits: the smallest reuse change
    assert fix.changes == {"reuse": 4} and fix.estimate.resources.dsp == 1069
    assert estimate(layers, zcu, {"reuse": 4}).fits and fix.flags() == "--reuse 4"


def test_simulate_and_hls_agree(tmp_path):
    pytest.importorskip("hls4ml")
    from click.testing import CliRunner

    from hardware.targets import load_target
    from mapping.fpga.hls_design import hls_estimate
    from mapping.fpga.pipeline import build_layers
    from simulator.cli import main

    def simulate(model: str, target: str, options: dict | None = None) -> float:
        out = tmp_path / "sim.json"
        args = ["simulate", model, "--target", target, "--json", str(out)]
        for key, value in (options or {}).items():
            args += ["--set", f"{key}={value}"]
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, res.output
        return __import__("json").loads(out.read_text())["latency_s"]

    path = _mlp(tmp_path)
    res = CliRunner().invoke(main, ["hls", path, "--out", str(tmp_path / "prj"), "--target", "u55c"])
    assert res.exit_code == 0, res.output
    est = hls_estimate(build_layers(path)[0], load_target("u55c"), 1)
    assert f"latency {est.latency_cycles} cycles" in res.output and "runs this same design" in res.output
    assert simulate(path, "u55c") == pytest.approx(est.latency_cycles / load_target("u55c").clock_hz)
    # the jet tagger does not fit as hls4ml 1.3 emits it: simulate's default is the overlay, and hls says so;
    # --set design=hls4ml simulates the emitted design, with hls's latency
    jet = str(__import__("pathlib").Path(__file__).resolve().parent.parent / "examples" / "jet_tagger.onnx")
    res = CliRunner().invoke(main, ["hls", jet, "--out", str(tmp_path / "jet"), "--target", "u55c"])
    assert "layer-sequential overlay instead" in res.output
    jet_est = hls_estimate(build_layers(jet)[0], load_target("u55c"), 1)
    forced = simulate(jet, "u55c", options={"design": "hls4ml"})
    assert forced == pytest.approx(jet_est.latency_cycles / load_target("u55c").clock_hz)
    assert simulate(jet, "u55c") != pytest.approx(forced)


def _act_model(tmp_path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.uniform(-0.5, 0.5, (8, 6)).astype(np.float32), "w1"),
             numpy_helper.from_array(np.zeros(6, np.float32), "b1"),
             numpy_helper.from_array(rng.uniform(-0.5, 0.5, (6, 4)).astype(np.float32), "w2"),
             numpy_helper.from_array(np.zeros(4, np.float32), "b2")]
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1"),
             helper.make_node("Tanh", ["h"], ["t"], name="tanh1"),
             helper.make_node("Gemm", ["t", "w2", "b2"], ["g"], name="fc2"),
             helper.make_node("Sigmoid", ["g"], ["y"], name="sig2")]
    graph = helper.make_graph(nodes, "acts", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], inits)
    path = tmp_path / "acts.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


def test_table_activations_are_costed_as_lookups(tmp_path):
    from hardware.targets import load_target
    from mapping.fpga.pipeline import build_layers, estimate

    layers, _ = build_layers(_act_model(tmp_path))
    assert [lay.kind for lay in layers] == ["input", "dense", "tanh", "dense", "sigmoid"]
    est = estimate(layers, load_target("xcvu13p"), {"reuse": 1, "backend": "Vivado"})
    tanh = next(e for e in est.layers if e.kind == "tanh")
    # two cycles in Vivado HLS; ceil(6/2) = 3 dual-ported copies of a 1024 x 18-bit table = 3 BRAM18
    assert tanh.latency_cycles == 2 and tanh.resources.bram36 * 2 == 3
    assert est.latency_cycles == 1 + 2 + 1 + 2  # Dense (R=1) one cycle each, lookups two cycles each
    vitis = estimate(layers, load_target("xcvu13p"), {"reuse": 1})  # Vitis, as `hwsim hls` emits by default
    assert next(e for e in vitis.layers if e.kind == "tanh").latency_cycles == 3


@pytest.mark.heavy
def test_table_activations_emit_and_csim(tmp_path):
    pytest.importorskip("hls4ml")
    from mapping.fpga.hls import csim, write_project

    prj = write_project(_act_model(tmp_path), str(tmp_path / "prj"))
    max_err, _, _, _ = csim(prj, 16)
    assert max_err < 0.05
