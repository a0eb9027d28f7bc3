"""Regressions of a sceptical new-user review and CLI fuzz (2026-12-03): wrong answers given with exit 0 and
messages that sent the user to a command that then failed."""

from __future__ import annotations

import io
import sys

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from hardware.targets import load_target
from simulator.cli import main
from simulator.serving.metrics import percentiles

from conftest import FIXTURES, ROOT

JET = str(ROOT / "examples" / "jet_tagger.onnx")


def test_no_finished_request_has_no_latency(tmp_path) -> None:
    """A serve run in which every request is rejected reports n/a, not 0.00 ms, and null in JSON."""
    assert percentiles([]) == {"mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    out = tmp_path / "s.json"
    result = CliRunner().invoke(main, ["serve", str(FIXTURES / "gpt2_ts.onnx"), "--target", "a100-80gb", "--arrivals",
                                       "poisson:1", "--requests", "5", "--kv-blocks", "1", "--json", str(out),
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    assert "5 rejected" in result.output
    assert "TTFT                 n/a" in result.output and "0.00" not in result.output.split("TTFT")[1].split("\n")[0]
    import json

    m = json.loads(out.read_text())
    assert m["ttft_s"]["p50"] is None and m["energy"]["per_request_j"] is None


def test_bare_fpga_holds_a_small_model_on_chip_and_says_why_it_runs_nothing() -> None:
    """xcvu13p has no off-chip memory: the jet tagger fits its block RAM (no 'needs 0.00 GiB but holds 0.00 GiB'),
    and where its hls4ml design does not fit the part the error says so and how to run it anyway."""
    run = CliRunner().invoke(main, ["simulate", JET, "--target", "xcvu13p", "--set", "reuse=2"])
    assert run.exit_code == 2
    assert "does not fit xcvu13p: needs" not in run.output
    assert "bare device" in run.output and "--set design=hls4ml" in run.output and "dsp:" in run.output
    ok = CliRunner().invoke(main, ["simulate", JET, "--target", "xcvu13p", "--set", "reuse=2", "--set", "design=hls4ml"])
    assert ok.exit_code == 0, ok.output
    assert "memory     17.84 KiB of 11.81 MiB" in ok.output  # 2688 BRAM36 x 4.5 KiB
    assert "whatever --prompt-len says" not in ok.output  # the default length is the graph's own 15 tracks


def test_hls_note_does_not_promise_a_design_simulate_will_not_run(tmp_path) -> None:
    result = CliRunner().invoke(main, ["hls", JET, "--out", str(tmp_path / "p"), "--target", "xcvu13p", "--attention",
                                       "row-serial", "--reuse", "2"])
    assert result.exit_code == 0, result.output
    note = next(line for line in result.output.splitlines() if line.startswith("note: `hwsim simulate"))
    assert "runs the hls4ml design" not in note and "--set design=hls4ml" in note


def test_compare_runs_an_encoder_as_one_forward_pass() -> None:
    result = CliRunner().invoke(main, ["compare", str(FIXTURES / "bert_ts.onnx"), "--targets", "a100-80gb,pim-gpt",
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("bert_ts.onnx, prefill:")


def test_does_not_fit_names_the_flags_that_split_a_model() -> None:
    result = CliRunner().invoke(main, ["simulate", str(ROOT / "examples" / "llama2-70b.onnx"), "--target",
                                       "a100-80gb", "--phase", "decode"])
    assert result.exit_code == 2 and "--tp N" in result.output and "--devices N" in result.output


def test_zero_size_weight_is_refused(tmp_path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 0])
    w = numpy_helper.from_array(np.zeros((16, 0), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [w])
    path = tmp_path / "zero.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    result = CliRunner().invoke(main, ["simulate", str(path), "--target", "pim-gpt"])
    assert result.exit_code == 2
    assert "initializer 'w' has a zero-size dimension [16, 0]" in result.output


def test_sweep_progress_off_a_terminal_is_lines(monkeypatch) -> None:
    """tqdm's carriage-return refreshes become one line each when stderr is a log, at most every 10 s."""
    from simulator.sweep import runner

    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)
    out = runner._bar_output()
    assert out["mininterval"] == 10.0
    out["file"].write("\rsweep s:  50%|#####     | 1/2")
    out["file"].write("\r")
    assert buf.getvalue() == "sweep s:  50%|#####     | 1/2\n"


@pytest.mark.parametrize("name", ["u55c", "xcvu13p"])
def test_fpga_capacity_is_offchip_plus_block_ram(name: str) -> None:
    from mapping.fpga.mapper import memory_capacity_bytes

    t = load_target(name)
    assert memory_capacity_bytes(t) == int(t.offchip_capacity.si) + t.bram36.n * 36 * 1024 // 8


def test_hls_on_a_symbolic_length_names_no_flag_it_lacks(tmp_path) -> None:
    result = CliRunner().invoke(main, ["hls", str(FIXTURES / "gpt2_ts.onnx"), "--out", str(tmp_path / "p")])
    assert result.exit_code == 2
    assert "built for fixed input sizes" in result.output and "--dim" not in result.output


@pytest.mark.parametrize("field, value, says", [
    ("channels", {"value": 0}, "field 'channels': channels must be > 0"),
    ("global_buffer", {"value": 0, "unit": "B"}, "field 'global_buffer': global_buffer must be > 0"),
    ("dram", "nonsense-std", "field 'dram': unknown DRAM standard 'nonsense-std'")])
def test_pim_preset_errors_name_their_field(tmp_path, field, value, says) -> None:
    """A PIM preset with no channels or no global buffer (which made decode 23x slower) is refused naming the
    field; so is an unknown DRAM standard."""
    import yaml

    data = yaml.safe_load((ROOT / "hardware" / "presets" / "targets" / "pim-gpt.yaml").read_text())
    data[field] = {**data[field], **value} if isinstance(value, dict) else value
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(main, ["simulate", str(FIXTURES / "gpt2_ts.onnx"), "--target", str(path), "--phase",
                                       "decode"])
    assert result.exit_code == 2 and says in result.output, result.output


@pytest.mark.parametrize("args, says", [
    (["--channels", "100000"], "--channels 100000: more than 1024"),
    (["--row-policy", "closed", "--cap", "0"], "--cap 0"),
    (["--row-policy", "timeout", "--timeout", "-5"], "--timeout -5"),
])
def test_dram_refuses_counts_that_ran_unbounded_or_meant_nothing(args, says) -> None:
    trace = ROOT / "simulator" / "validation" / "data" / "dram" / "traces" / "sequential.trace"
    result = CliRunner().invoke(main, ["dram", str(trace), *args])
    assert result.exit_code == 2 and says in result.output, result.output


def test_dram_refuses_an_address_wider_than_64_bits(tmp_path) -> None:
    trace = tmp_path / "t.trace"
    trace.write_text("LD 0x1000000000000000000000000\n")
    result = CliRunner().invoke(main, ["dram", str(trace)])
    assert result.exit_code == 2 and "wider than 64 bits" in result.output


def test_an_opset_newer_than_onnx_knows_is_said(tmp_path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])
    w = numpy_helper.from_array(np.ones((16, 8), np.float32), "w")
    model = helper.make_model(helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [w]),
                              opset_imports=[helper.make_opsetid("", 99)])
    path = tmp_path / "o99.onnx"
    onnx.save(model, path)
    result = CliRunner().invoke(main, ["simulate", str(path), "--target", "pim-gpt"])
    assert result.exit_code == 0 and "opset 99 is newer than this onnx package knows" in result.output


def test_a_cycle_is_called_a_cycle(tmp_path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 4])
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="A"), helper.make_node("Relu", ["a"], ["b"], name="B")]
    path = tmp_path / "cycle.onnx"
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)]),
              path)
    result = CliRunner().invoke(main, ["inspect", str(path)])
    assert result.exit_code == 2 and "the graph has a cycle ('A' -> 'B' -> 'A')" in result.output, result.output


def test_set_trims_values_and_refuses_a_key_given_twice() -> None:
    from simulator.cli import _parse_sets

    assert _parse_sets(("attention = lean",)) == {"attention": "lean"}
    assert _parse_sets(("tp=2", "tp=2")) == {"tp": 2}
    with pytest.raises(Exception, match="--set attention is given twice"):
        _parse_sets(("attention=lean", "attention=fa2"))


def test_serving_spec_slo_is_checked_when_it_loads(tmp_path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(f"name: s\nmodel: {FIXTURES / 'gpt2_ts.onnx'}\ntarget: a100-80gb\n"
                    "serving: {rate: [1], slo: 'ttft=abc'}\n")
    result = CliRunner().invoke(main, ["sweep", str(spec), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "field 'serving.slo'" in result.output


def test_a_plain_number_for_a_quantity_says_how_to_write_it(tmp_path) -> None:
    text = (ROOT / "hardware" / "presets" / "targets" / "a100-80gb.yaml").read_text()
    lines = [("sm_count: 108" if line.startswith("sm_count:") else line) for line in text.splitlines()]
    path = tmp_path / "a.yaml"
    path.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(main, ["simulate", str(FIXTURES / "gpt2_ts.onnx"), "--target", str(path)])
    assert result.exit_code == 2 and "field 'sm_count': a plain number (108)" in result.output


def test_compare_takes_target_options() -> None:
    """compare's PIM rows suggest --set mac_format=...; compare now has --set (each target's row shows an option its
    kind lacks as that row's error)."""
    result = CliRunner().invoke(main, ["compare", str(FIXTURES / "gpt2_ts.onnx"), "--targets", "pim-gpt,a100-80gb",
                                       "--set", "attention=lean", "--quiet"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()[2:]}
    assert "not an option of pim targets" in rows["pim-gpt"] and " ms " in rows["a100-80gb"]


def test_nan_option_says_finite() -> None:
    result = CliRunner().invoke(main, ["simulate", str(FIXTURES / "gpt2_ts.onnx"), "--target", "u55c", "--set",
                                       "efficiency=nan"])
    assert result.exit_code == 2 and "finite number" in result.output


def test_aim_reports_progress_inside_a_long_instruction() -> None:
    """A 2-line trace whose MAC_ABK issues 200,000 columns shows progress within it (an opsize of 10^9 ran for an
    hour without a word)."""
    from hardware.dram import load_standard
    from hardware.pim.isr import PROGRESS_COLUMNS, AimSystem, parse_trace

    calls: list[tuple[int, int]] = []
    program = parse_trace("AiM MAC_ABK 200000 0x1 0\nAiM EOC\n", "t")
    AimSystem(load_standard("gddr6-aim")).run(program, lambda done, total: calls.append((done, total)))
    assert len(calls) >= 200000 // PROGRESS_COLUMNS + 2
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and calls[-1] == (200001, 200001)


@pytest.mark.parametrize("args", [
    ["--target", "u55c", "--phase", "prefill", "--prompt-len", "16"],  # loads overlap the DSP work
    ["--target", "a100-80gb", "--phase", "prefill", "--prompt-len", "16", "--set", "stack=eager"],  # GPU waits
    ["--target", "a100-80gb", "--phase", "decode", "--tp", "2"],  # all-reduces beside the GEMMs
])
def test_every_energy_breakdown_adds_up_to_the_total(args) -> None:
    """Static energy was charged twice where tasks overlap (FPGA breakdowns 4-10% over the total) and the GPU's idle
    static energy behind an eager host appeared in the blocks table only (block kinds and ops 81% short)."""
    import json

    result = CliRunner().invoke(main, ["simulate", str(FIXTURES / "gpt2_ts.onnx"), *args, "--json", "-"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.output[result.output.index("{"):])
    for table in ("blocks", "block_kinds", "ops"):
        assert sum(v["energy_j"] for v in d["breakdown"][table].values()) == pytest.approx(d["energy_j"], rel=1e-9)
