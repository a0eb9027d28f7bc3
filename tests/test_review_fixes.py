"""Regressions for problems found in review: each test names the bug it guards against."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hardware.pim.aim import AimTimer
from hardware.targets import load_target, target_from_dict
from mapping.gpu.mapper import map_workload as gpu_map
from mapping.op_costs import Precision
from mapping.workloads import Model
from simulator.cli import main
from simulator.engine import run

from conftest import EXAMPLES, FIXTURES


def _one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_gpu_costs_t5_encoder_attention_as_non_causal() -> None:
    """The GPU mapper used to call every attention causal when the model had a KV cache (T5's encoder too)."""
    from mapping.gpu.mapper import _Context

    model = Model(str(FIXTURES / "t5_ts.onnx"))
    work = model.prefill(1, 24, Precision("float16", "float16", "float16"))
    ctx = _Context(work, load_target("a100-80gb"), 1, "flashdecoding", False, None)
    assert ctx.causal("encoder.0.self_attention") is False
    assert ctx.causal("decoder.0.self_attention") is True
    assert ctx.causal("decoder.0.cross_attention") is False
    assert run(gpu_map(work, load_target("a100-80gb"), {})).latency_s > 0


def test_pim_refuses_formats_its_mac_units_do_not_compute() -> None:
    result = CliRunner().invoke(main, ["simulate", str(EXAMPLES / "gpt2.onnx"), "--target", "pim-gpt", "--phase",
                                       "decode", "--weights", "int4"])
    _one_line_error(result, "--weights int4", "bfloat16")


def test_dim_cannot_contradict_the_counting_flags() -> None:
    result = CliRunner().invoke(main, ["simulate", str(EXAMPLES / "gpt2.onnx"), "--target", "a100-80gb", "--phase",
                                       "prefill", "--dim", "seq=2048"])
    _one_line_error(result, "--dim seq", "--seq/--prompt-len")
    unknown = CliRunner().invoke(main, ["inspect", str(EXAMPLES / "gpt2.onnx"), "--dim", "foo=3"])
    _one_line_error(unknown, "no symbolic dimension 'foo'", "batch, seq")


def test_unknown_set_options_and_impossible_tp_are_refused() -> None:
    base = ["simulate", str(EXAMPLES / "gpt2.onnx"), "--phase", "decode"]
    _one_line_error(CliRunner().invoke(main, base + ["--target", "a100-80gb", "--set", "sm_count=10"]),
                    "--set sm_count", "attention")
    _one_line_error(CliRunner().invoke(main, base + ["--target", "pim-gpt", "--tp", "2"]), "--tp 2", "pim")
    _one_line_error(CliRunner().invoke(main, base + ["--target", "a100-80gb", "--tp", "5"]), "12 attention heads")


def test_refresh_flag_accepts_yes_and_no() -> None:
    base = ["simulate", str(EXAMPLES / "gpt2.onnx"), "--target", "pim-gpt", "--phase", "decode", "--json"]
    import json
    import tempfile

    runner = CliRunner()
    with tempfile.TemporaryDirectory() as tmp:
        on, off = Path(tmp) / "on.json", Path(tmp) / "off.json"
        r_on = runner.invoke(main, base + [str(on), "--set", "refresh=yes"])
        r_off = runner.invoke(main, base + [str(off), "--set", "refresh=no"])
        assert r_on.exit_code == 0 and r_off.exit_code == 0, r_on.output + r_off.output
        assert json.loads(off.read_text())["latency_s"] < json.loads(on.read_text())["latency_s"]
        _one_line_error(runner.invoke(main, base + [str(Path(tmp) / "x.json"), "--set", "refresh=maybe"]),
                        "refresh=maybe")


def test_outputs_to_missing_folders_fail_before_simulating(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["simulate", str(EXAMPLES / "gpt2.onnx"), "--target", "pim-gpt", "--phase",
                                       "decode", "--json", str(tmp_path / "missing" / "r.json")])
    _one_line_error(result, "--json", "does not exist")


def test_tensor_parallel_memory_counts_every_gpu() -> None:
    """Llama-2-7B in fp32 (25 GiB) does not fit one 24 GiB RTX 4090 but fits two."""
    base = ["simulate", str(EXAMPLES / "llama2-7b.onnx"), "--target", "rtx4090", "--weights", "fp32", "--phase",
            "decode", "--prompt-len", "16"]
    _one_line_error(CliRunner().invoke(main, base), "does not fit rtx4090")
    assert CliRunner().invoke(main, base + ["--tp", "2"]).exit_code == 0


def test_learned_position_table_bound_is_warned_once() -> None:
    from hardware.errors import HwsimWarning

    model = Model(str(EXAMPLES / "gpt2.onnx"))
    with pytest.warns(HwsimWarning, match="1024 positions"):
        model.prefill(1, 4096)
    with pytest.warns(HwsimWarning, match="context of 1025 tokens"):
        model.decode(1, 1024)
    result = CliRunner().invoke(main, ["inspect", str(EXAMPLES / "gpt2.onnx"), "--seq", "2048"])
    assert result.exit_code == 0 and "warning: " in result.output and "learned position table" in result.output


def test_a_smaller_global_buffer_costs_more_passes() -> None:
    pim = load_target("pim-gpt")
    data = pim.model_dump(mode="json")
    cycles = []
    for kib in (2, 1, 0.5):
        data["global_buffer"]["value"] = kib
        cycles.append(AimTimer(target_from_dict(data, "test"), "fast", refresh=False).vmm(4096, 512).cycles)
    assert cycles[0] < cycles[1] < cycles[2]
