"""The hwsim CLI: inspect output and one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from simulator.cli import main

from conftest import EXAMPLES, FIXTURES


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_inspect_json_has_the_documented_fields() -> None:
    result = run("inspect", str(EXAMPLES / "gpt2.onnx"), "--seq", "64", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for key in ("params", "flops", "weight_bytes", "activation_bytes", "kv_cache_bytes", "layers", "attention", "ops"):
        assert key in data
    assert data["layers"] == 12
    assert data["attention"] == {"heads": 12, "kv_heads": 12, "head_dim": 64}
    assert data["params"] == 124439808
    assert data["weight_bytes"] == 4 * 124439808
    assert data["kv_cache_bytes"] == 2 * 12 * 12 * 64 * 64 * 4
    op = data["ops"][0]
    assert {"name", "op", "input_shapes", "output_shapes", "flops", "bytes"} <= set(op)
    assert sum(o["flops"] for o in data["ops"]) == pytest.approx(data["flops"])


def test_inspect_table_and_decode() -> None:
    result = run("inspect", str(FIXTURES / "llama_ts.onnx"), "--phase", "decode", "--context", "32",
                 "--weights", "int4", "--kv-cache", "fp8")
    assert result.exit_code == 0, result.output
    assert "decoder.1.self_attention" in result.output
    assert "heads 4, kv_heads 2, head_dim 16" in result.output
    assert "decode: batch 1, 1 new token(s), context 32" in result.output


def _assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_not_an_onnx_file(tmp_path: Path) -> None:
    bad = tmp_path / "notes.onnx"
    bad.write_text("this is not a protobuf\n" * 10)
    _assert_one_line_error(run("inspect", str(bad)), str(bad))


def test_truncated_file(tmp_path: Path) -> None:
    data = (FIXTURES / "gpt2_ts.onnx").read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 3])
    _assert_one_line_error(run("inspect", str(cut)), str(cut))


def test_missing_file() -> None:
    _assert_one_line_error(run("inspect", "nope/missing.onnx"), "nope/missing.onnx", "no such file")


def _tiny_model(tmp_path: Path, dim: str = "tokens") -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", dim, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = helper.make_tensor("w", TensorProto.FLOAT, [8, 4], [0.1] * 32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="proj")], "g", [x], [y], [w])
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_missing_binding_names_the_dimension(tmp_path: Path) -> None:
    path = _tiny_model(tmp_path, dim="frames")
    _assert_one_line_error(run("inspect", str(path)), "'frames'", "--dim frames=N")
    ok = run("inspect", str(path), "--dim", "frames=10", "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["flops"] == 2 * 1 * 10 * 8 * 4


def test_op_without_shape_information(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    node = helper.make_node("MysteryOp", ["x"], ["y"], name="mystery", domain="com.example")
    graph = helper.make_graph([node], "g", [x], [y])
    path = tmp_path / "custom.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                      helper.make_opsetid("com.example", 1)]), str(path))
    _assert_one_line_error(run("inspect", str(path)), "mystery", "MysteryOp")


def test_impossible_override() -> None:
    _assert_one_line_error(run("inspect", str(FIXTURES / "gpt2_ts.onnx"), "--weights", "fp5"), "--weights", "fp5")


def test_bad_dim_syntax_and_negative_batch() -> None:
    _assert_one_line_error(run("inspect", str(FIXTURES / "gpt2_ts.onnx"), "--dim", "seq"), "--dim")
    _assert_one_line_error(run("inspect", str(FIXTURES / "gpt2_ts.onnx"), "--batch", "0"), "batch")


def test_a_single_matmul_graph_is_costed_op_by_op(tmp_path: Path) -> None:
    result = run("inspect", str(_tiny_model(tmp_path)), "--seq", "3", "--batch", "2", "--json")
    data = json.loads(result.output)
    assert data["architecture"] == "none"
    assert data["flops"] == 2 * 2 * 3 * 8 * 4
    assert data["unrecognised"] == [] or data["unrecognised"][0]["op"] == "MatMul"


def test_one_vocabulary_for_lengths_and_a_precision_shorthand(tmp_path):
    """``--seq`` and ``--prompt-len`` are the same flag on inspect and simulate; ``--precision`` sets all three
    formats, and a per-class flag overrides it."""
    import json as _json

    from click.testing import CliRunner

    from simulator.cli import main

    model = str(EXAMPLES / "gpt2.onnx")
    a = CliRunner().invoke(main, ["inspect", model, "--prompt-len", "16", "--precision", "int8", "--json"])
    b = CliRunner().invoke(main, ["inspect", model, "--seq", "16", "--weights", "int8", "--activations", "int8",
                                  "--kv-cache", "int8", "--json"])
    assert a.exit_code == 0 and b.exit_code == 0
    da, db = _json.loads(a.output), _json.loads(b.output)
    assert da["seq"] == 16 and da["precision"] == db["precision"] and da["weight_bytes"] == db["weight_bytes"]
    s = CliRunner().invoke(main, ["simulate", model, "--target", "h100-sxm", "--seq", "8", "--gen-len", "2",
                                  "--precision", "fp8", "--kv-cache", "fp16", "--quiet"])
    assert s.exit_code == 0 and "prompt 8" in s.output and "KV float16" in s.output and "weights float8e4m3" in s.output
    bad = CliRunner().invoke(main, ["simulate", model, "--target", "a100-80gb", "--precision", "int7"])
    assert bad.exit_code == 2 and bad.output.startswith("error: --precision")
    # W/A/KV, as `compare --precision` and sweep specs write it
    slash = CliRunner().invoke(main, ["inspect", model, "--seq", "16", "--precision", "int8/int8/int8", "--json"])
    assert slash.exit_code == 0 and _json.loads(slash.output)["precision"] == db["precision"]
    two = CliRunner().invoke(main, ["simulate", model, "--target", "a100-80gb", "--precision", "int8/fp16"])
    assert two.exit_code == 2 and two.output.startswith("error: --precision int8/fp16: give one format")
    # inspect's --context (the KV cache before a decode step) is simulate's decode context too
    runs = [CliRunner().invoke(main, ["simulate", model, "--target", "a100-80gb", "--phase", "decode", flag, "300",
                                      "--json", str(tmp_path / f"{flag[2:]}.json"), "--quiet"])
            for flag in ("--context", "--prompt-len")]
    assert [r.exit_code for r in runs] == [0, 0]
    by_context, by_prompt = ((tmp_path / f"{f}.json").read_text() for f in ("context", "prompt-len"))
    assert by_context == by_prompt and _json.loads(by_context)["prompt_len"] == 300
    piped = CliRunner().invoke(main, ["simulate", model, "--target", "a100-80gb", "--phase", "decode", "--context", "300",
                                      "--json", "-", "--quiet"])  # `-`: the JSON alone on stdout, the table on stderr
    assert piped.exit_code == 0 and piped.stdout.strip() == by_context.strip() and "latency" in piped.stderr


def test_a_long_simulate_off_a_terminal_prints_progress_lines_to_stderr(monkeypatch) -> None:
    import simulator.progress as progress

    monkeypatch.setattr(progress, "PROGRESS_LINE_S", 0.0)  # every pass is 'long enough'
    model = str(FIXTURES / "gpt2_ts.onnx")
    args = ["simulate", model, "--target", "a100-80gb", "--phase", "generate", "--prompt-len", "4", "--gen-len", "4"]
    loud = CliRunner().invoke(main, args)
    assert loud.exit_code == 0, loud.output
    lines = [ln for ln in loud.stderr.splitlines() if ln.startswith("simulating:")]
    assert [ln.split(" passes")[0] for ln in lines] == ["simulating: 1/4", "simulating: 2/4", "simulating: 3/4"]
    assert "simulating:" not in loud.stdout and "latency" in loud.stdout  # the result's table stays clean
    quiet = CliRunner().invoke(main, args + ["--quiet"])
    assert quiet.exit_code == 0 and "simulating:" not in quiet.stderr


def test_a_long_serve_off_a_terminal_prints_progress_lines_to_stderr(monkeypatch) -> None:
    import simulator.progress as progress

    monkeypatch.setattr(progress, "PROGRESS_LINE_S", 0.0)
    args = ["serve", str(FIXTURES / "gpt2_ts.onnx"), "--target", "a100-80gb", "--arrivals", "poisson:50",
            "--requests", "6", "--prompt-len", "8", "--gen-len", "3"]
    loud = CliRunner().invoke(main, args)
    assert loud.exit_code == 0, loud.output
    counts = [int(ln.split()[1].split("/")[0]) for ln in loud.stderr.splitlines() if ln.startswith("serving:")]
    assert counts and counts == sorted(counts) and all(0 < c < 6 for c in counts)  # requests done, never all
    assert all(ln.split()[1].endswith("/6") for ln in loud.stderr.splitlines() if ln.startswith("serving:"))
    assert "serving:" not in loud.stdout and "TTFT" in loud.stdout
    swept = CliRunner().invoke(main, args + ["--sweep-rate", "20,50"])  # both rates' requests count: of 12
    assert swept.exit_code == 0 and any(ln.split()[1].endswith("/12") for ln in swept.stderr.splitlines()
                                        if ln.startswith("serving:"))
    quiet = CliRunner().invoke(main, args + ["--quiet"])
    assert quiet.exit_code == 0 and "serving:" not in quiet.stderr
