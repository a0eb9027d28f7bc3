"""Every output path option of every command: a path that cannot be written is refused in one line (exit 2), before
the command computes anything. The commands and options are read from the CLI itself, so a new output option fails
this test until it has a case here (and the check it needs)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from simulator.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
#: parameter names that hold a path the command writes
OUTPUT_PARAMS = {"json_out", "trace_out", "plot_out", "roofline_out", "out_dir", "out"}


def _trace(tmp: Path, kind: str) -> str:
    path = tmp / f"{kind}.trace"
    path.write_text("LD 0x0\nST 0x40\n" if kind == "dram" else "AiM EOC\n")
    return str(path)


#: command -> its arguments besides the output option (a run that would succeed with a writable path)
CASES = {
    "simulate": lambda tmp: [str(EXAMPLES / "gpt2.onnx"), "--target", "a100-80gb", "--phase", "decode"],
    "serve": lambda tmp: [str(EXAMPLES / "gpt2.onnx"), "--target", "a100-80gb", "--arrivals", "poisson:5",
                          "--requests", "3"],
    "hls": lambda tmp: [str(EXAMPLES / "jet_tagger.onnx")],
    "sweep": lambda tmp: [str(EXAMPLES / "pim_sweep.yaml")],
    "compare": lambda tmp: [str(EXAMPLES / "gpt2.onnx"), "--targets", "a100-80gb"],
    "dram": lambda tmp: [_trace(tmp, "dram")],
    "aim": lambda tmp: [_trace(tmp, "aim")],
}


def _output_options() -> list[tuple[str, str]]:
    found = []

    def walk(cmd: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, path + (name,))
            return
        for p in cmd.params:
            if isinstance(p, click.Option) and p.name in OUTPUT_PARAMS:
                found.append((" ".join(path), p.opts[0]))

    walk(main, ())
    return found


def test_every_output_option_has_a_case() -> None:
    options = _output_options()
    assert {c for c, _ in options} <= set(CASES), "add the new command's arguments to CASES"
    assert len(options) >= 10  # simulate 4, serve 3, hls, sweep, compare, dram, aim


@pytest.mark.parametrize("command, option", _output_options())
def test_an_unwritable_output_is_one_line_before_any_work(tmp_path, command, option) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    suffix = ".png" if option.startswith("--plot") else ".json"
    args = [*command.split(), *CASES[command](tmp_path), option, str(blocker / f"out{suffix}")]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    assert res.output.startswith(f"error: {option} ") and res.output.count("\n") == 1, res.output
    assert "internal error" not in res.output and "Traceback" not in res.output


def test_eager_simulate_reports_the_published_hosts_span():
    # the eager default is the median of the published machines' host time per op; simulate also gives the latency
    # at the least and the most of those machines' values, monotone around the default's, in the table and the JSON;
    # a host time the user set has no span (it is theirs)
    import json

    from mapping.gpu.stack import EAGER_HOST_PER_OP_SPAN

    args = [str(EXAMPLES / "gpt2.onnx"), "--target", "a100-80gb", "--phase", "decode", "--set", "stack=eager", "--quiet"]
    res = CliRunner().invoke(main, ["simulate", *args, "--json", "-"])
    assert res.exit_code == 0, res.output
    span = json.loads(res.stdout)["eager_host_span"]
    assert span["span_host_op_us"] == pytest.approx([v * 1e6 for v in EAGER_HOST_PER_OP_SPAN])
    low, high = span["span_latency_s"]
    assert low < span["latency_s"] < high  # gpt2 decode on an A100 is host-bound in eager
    assert f"they span {EAGER_HOST_PER_OP_SPAN[0] * 1e6:.1f}-{EAGER_HOST_PER_OP_SPAN[1] * 1e6:.1f} us" in res.stderr
    own = CliRunner().invoke(main, ["simulate", *args, "--set", "host_op_us=20"])
    assert own.exit_code == 0 and "they span" not in own.output
    kernels = CliRunner().invoke(main, ["simulate", *args[:-3], "--quiet"])
    assert kernels.exit_code == 0 and "they span" not in kernels.output
