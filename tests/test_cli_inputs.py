"""Every input file a command reads (the model, a trace, a sweep spec, a target or link preset): a folder, an empty
file, binary junk or a missing path is one line naming it, exit 2, never an internal error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulator.cli import main

ROOT = Path(__file__).resolve().parent.parent
GPT2 = str(ROOT / "examples" / "gpt2.onnx")

#: (name, the command line with {} where the input path goes)
USES = [
    ("inspect", ["inspect", "{}"]),
    ("simulate", ["simulate", "{}", "--target", "a100-80gb", "--phase", "decode"]),
    ("serve", ["serve", "{}", "--target", "a100-80gb", "--arrivals", "poisson:1", "--requests", "2"]),
    ("hls", ["hls", "{}", "--out", "HLS_OUT"]),
    ("compare", ["compare", "{}", "--targets", "a100-80gb,pim-gpt"]),
    ("sweep", ["sweep", "{}", "--out", "SWEEP_OUT"]),
    ("dram", ["dram", "{}"]),
    ("aim", ["aim", "{}"]),
    ("target preset", ["simulate", GPT2, "--target", "{}", "--phase", "decode"]),
    ("link preset", ["simulate", GPT2, "--target", "a100-80gb", "--phase", "decode", "--parallel", "tp=2,link={}"]),
]


def _inputs(tmp: Path) -> dict[str, Path]:
    folder = tmp / "folder.onnx"
    folder.mkdir()
    empty = tmp / "empty.onnx"
    empty.write_bytes(b"")
    junk = tmp / "junk.onnx"
    junk.write_bytes(bytes(range(256)) * 8)
    return {"folder": folder, "empty": empty, "junk": junk, "missing": tmp / "missing.onnx"}


@pytest.mark.parametrize("use, line", USES, ids=[u for u, _ in USES])
def test_a_bad_input_file_is_one_line(tmp_path, use, line) -> None:
    for kind, path in _inputs(tmp_path).items():
        args = [str(path) if a == "{}" else str(tmp_path / a) if a.endswith("_OUT") else a for a in line]
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 2, (kind, res.output)
        assert res.output.startswith("error: ") and res.output.count("\n") == 1, (kind, res.output)
        assert "internal error" not in res.output and "Traceback" not in res.output, (kind, res.output)
        for p in tmp_path.iterdir():  # keep only the inputs made above for the next kind
            if p.name not in ("folder.onnx", "empty.onnx", "junk.onnx"):
                shutil.rmtree(p) if p.is_dir() else p.unlink()


@pytest.mark.parametrize(("target", "key", "hint"), [
    ("a100-80gb", "atention", "(did you mean --set attention?)"),  # a typo of an option of this kind
    ("u55c", "stack", "(it is an option of gpu targets)"),        # a GPU option on an FPGA
    ("pim-gpt", "zzz", None),                                      # neither: no hint, the list of options only
])
def test_unknown_set_key_says_what_was_meant(target, key, hint):
    res = CliRunner().invoke(main, ["simulate", GPT2, "--target", target, "--phase", "decode", "--set", f"{key}=1"])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert f"--set {key}: not an option of" in res.output and "; options: " in res.output
    assert (hint in res.output) if hint else "(did you mean" not in res.output and "(it is an option" not in res.output
