"""Bit-identity check of simulations: run a matrix of ``hwsim simulate`` commands on PIM, GPU and FPGA targets and
write (or compare) their ``--json`` and ``--trace`` outputs byte for byte.

    python benchmarks/output_identity.py write DIR      # run the matrix, keep every output under DIR
    python benchmarks/output_identity.py check DIR      # run it again, compare with DIR's files (exit 1 on a difference)
    python benchmarks/output_identity.py check DIR --only gpu   # only the runs whose name contains "gpu"

Use it around a speed change (a memo, a faster loop): ``write`` on the commit before, ``check`` after. The PIM
runs cover GPT-2 and Llama-2-7B, every PIM preset (pim-gpt's AiM timer, aim-32ch's instruction-level timer), one
device and pipelines / tensor parallelism over several, prefill, decode and generate, the command-level mode,
refresh off and the int8 MAC variant. The GPU runs (names ``gpu-...``) cover fast and detailed modes, every
software stack, tp with chunked all-reduces, a tp x pp layout, weight-only int4 (fused and dequant), W8A8 int8 and
fp8, an int8 KV cache, a ``kv_heads`` override, the Lean / naive attention kernels with a concatenating cache, MoE
with expert parallelism, a speculative draft and the fixtures' graphs with past K/V inputs; the FPGA runs
(``fpga-...``) two presets and the tile count. All runs share one process, so a cache that leaked from one run into
the next would show too.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from simulator.cli import main as cli

#: (name, arguments after `hwsim simulate`)
RUNS: list[tuple[str, list[str]]] = []
for _target in ("pim-gpt", "aim-32ch"):
    for _model, _gen in (("gpt2", 120), ("llama2-7b", 40)):
        _m = [f"examples/{_model}.onnx", "--target", _target]
        for _dev in ("1", "4"):
            RUNS.append((f"{_model}-{_target}-d{_dev}-generate", _m + ["--devices", _dev, "--phase", "generate",
                                                                        "--prompt-len", "32", "--gen-len", str(_gen)]))
            RUNS.append((f"{_model}-{_target}-d{_dev}-prefill", _m + ["--devices", _dev, "--phase", "prefill",
                                                                       "--prompt-len", "64"]))
            RUNS.append((f"{_model}-{_target}-d{_dev}-decode", _m + ["--devices", _dev, "--phase", "decode",
                                                                      "--prompt-len", "300"]))
        RUNS.append((f"{_model}-{_target}-tp2pp2c2-generate", _m + ["--parallel", "tp=2,pp=2,chunks=2", "--devices", "4",
                                                                     "--phase", "generate", "--gen-len", "24"]))
        RUNS.append((f"{_model}-{_target}-tp4-generate", _m + ["--parallel", "tp=4", "--devices", "4", "--phase",
                                                                "generate", "--gen-len", "24"]))
    RUNS.append((f"gpt2-{_target}-b3-norefresh-generate", ["examples/gpt2.onnx", "--target", _target, "--batch", "3",
                                                           "--set", "refresh=false", "--phase", "generate",
                                                           "--prompt-len", "17", "--gen-len", "50"]))
    RUNS.append((f"gpt2-{_target}-int8-generate", ["examples/gpt2.onnx", "--target", _target, "--set", "mac_format=int8",
                                                   "--precision", "int8", "--phase", "generate", "--gen-len", "40"]))
    RUNS.append((f"opt-125m-{_target}-d2-generate", ["examples/opt-125m.onnx", "--target", _target, "--devices", "2",
                                                     "--phase", "generate", "--gen-len", "30"]))
for _dev in ("1", "4"):
    RUNS.append((f"gpt2-pim-gpt-detailed-d{_dev}-generate", ["examples/gpt2.onnx", "--target", "pim-gpt", "--mode",
                                                             "detailed", "--devices", _dev, "--phase", "generate",
                                                             "--prompt-len", "20", "--gen-len", "6"]))
RUNS.append(("gpt2-pim-gpt-detailed-prefill", ["examples/gpt2.onnx", "--target", "pim-gpt", "--mode", "detailed",
                                               "--phase", "prefill", "--prompt-len", "8"]))
RUNS.append(("llama2-7b-pim-gpt-d4-generate-long", ["examples/llama2-7b.onnx", "--target", "pim-gpt", "--devices", "4",
                                                    "--phase", "generate", "--prompt-len", "32", "--gen-len", "200"]))


_GPU: list[tuple[str, str]] = [
    ("gpt2-a100-generate", "examples/gpt2.onnx --target a100-80gb --phase generate --prompt-len 32 --gen-len 40"),
    ("gpt2-h100-eager", "examples/gpt2.onnx --target h100-sxm --phase generate --prompt-len 16 --gen-len 30 --set stack=eager"),
    ("gpt2-a100-detailed", "examples/gpt2.onnx --target a100-80gb --phase generate --prompt-len 8 --gen-len 20 --mode detailed"),
    ("gpt2-a100-tp2", "examples/gpt2.onnx --target a100-80gb --phase generate --prompt-len 8 --gen-len 20 --tp 2"),
    ("gpt2-t4-streamk", "examples/gpt2.onnx --target t4 --phase generate --prompt-len 8 --gen-len 20 "
                        "--set gemm_schedule=stream-k"),
    ("gpt2-a100-b64-kvint8", "examples/gpt2.onnx --target a100-80gb --phase generate --prompt-len 16 --gen-len 8 "
                             "--batch 64 --kv-cache int8"),
    ("gpt2-a100-tp2pp2", "examples/gpt2.onnx --target a100-80gb --phase generate --prompt-len 16 --gen-len 8 "
                         "--devices 4 --parallel tp=2,pp=2"),
    ("llama2-7b-a100-engine", "examples/llama2-7b.onnx --target a100-80gb --phase generate --prompt-len 128 "
                              "--gen-len 24 --set stack=engine"),
    ("llama2-7b-a100-lean-concat", "examples/llama2-7b.onnx --target a100-80gb --phase generate --prompt-len 64 "
                                   "--gen-len 12 --set attention=lean --set kv_update=concat"),
    ("llama2-7b-h100-int4", "examples/llama2-7b.onnx --target h100-sxm --phase generate --prompt-len 64 --gen-len 12 "
                            "--weights int4"),
    ("llama2-7b-a100-int4-dequant", "examples/llama2-7b.onnx --target a100-80gb --phase generate --prompt-len 64 "
                                    "--gen-len 8 --weights int4 --set quant_kernel=dequant"),
    ("llama2-7b-h100-w8a8", "examples/llama2-7b.onnx --target h100-sxm --phase generate --prompt-len 64 --gen-len 8 "
                            "--precision int8"),
    ("llama2-7b-h100-fp8", "examples/llama2-7b.onnx --target h100-sxm --phase generate --prompt-len 64 --gen-len 8 "
                           "--weights float8e4m3 --activations float8e4m3"),
    ("llama2-7b-a100-kvheads8", "examples/llama2-7b.onnx --target a100-80gb --phase generate --prompt-len 64 "
                                "--gen-len 8 --set kv_heads=8"),
    ("llama2-7b-a100-tp4-chunks", "examples/llama2-7b.onnx --target a100-80gb --phase generate --prompt-len 64 "
                                  "--gen-len 8 --tp 4 --set comm_chunks=4"),
    ("llama2-7b-a100-decode-b8", "examples/llama2-7b.onnx --target a100-80gb --phase decode --prompt-len 500 --batch 8"),
    ("llama2-7b-a100-prefill", "examples/llama2-7b.onnx --target a100-80gb --phase prefill --prompt-len 300"),
    ("llama2-7b-a100-draft", "examples/llama2-7b.onnx --target a100-80gb --phase generate --prompt-len 64 --gen-len 8 "
                             "--spec-tokens 4 --draft examples/gpt2.onnx"),
    ("mixtral-h100-tp2-ep2", "examples/mixtral-8x7b.onnx --target h100-sxm --phase generate --prompt-len 16 "
                             "--gen-len 4 --tp 2 --ep 2"),
    ("mistral-a100-graph-b4", "examples/mistral-7b.onnx --target a100-80gb --phase generate --prompt-len 32 "
                              "--gen-len 10 --set launch=graph --batch 4"),
    ("opt-125m-v100-graph", "examples/opt-125m.onnx --target v100 --phase generate --prompt-len 16 --gen-len 8 "
                            "--set stack=graph"),
    ("gpt2-past-a100", "tests/fixtures/models/gpt2_past_ts.onnx --target a100-80gb --phase generate --prompt-len 16 "
                       "--gen-len 8"),
    ("llama-fixture-h100-naive", "tests/fixtures/models/llama_ts.onnx --target h100-sxm --phase generate "
                                 "--prompt-len 16 --gen-len 8 --set attention=naive --set kv_update=concat"),
]
RUNS += [(f"gpu-{name}", args.split()) for name, args in _GPU]
RUNS += [("fpga-gpt2-u55c-generate", "examples/gpt2.onnx --target u55c --phase generate --prompt-len 8 --gen-len 12 "
          "--set tiles=3".split()),
         ("fpga-llama2-7b-u250-decode", "examples/llama2-7b.onnx --target u250 --phase decode --prompt-len 100".split()),
         ("fpga-opt-125m-u55c-generate", "examples/opt-125m.onnx --target u55c --phase generate --prompt-len 8 "
          "--gen-len 6".split())]


def run_all(out: Path, only: str = "") -> float:
    """Run the matrix (the runs whose name contains ``only``), writing ``NAME.json`` and ``NAME.trace.json`` (and the
    printed summary) under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    runner = CliRunner()
    total = 0.0
    for name, args in RUNS:
        if only not in name:
            continue
        started = time.perf_counter()
        res = runner.invoke(cli, ["simulate", *args, "--quiet", "--json", str(out / f"{name}.json"),
                                  "--trace", str(out / f"{name}.trace.json")])
        took = time.perf_counter() - started
        total += took
        (out / f"{name}.txt").write_text(f"exit {res.exit_code}\n{res.output}".replace(str(out), "OUT"))
        print(f"{name:45s} exit {res.exit_code}  {took:6.2f} s", flush=True)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("write", "check"))
    parser.add_argument("dir")
    parser.add_argument("--only", default="", help="run only the runs whose name contains this")
    args = parser.parse_args()
    ref = Path(args.dir)
    if args.action == "write":
        print(f"total {run_all(ref, args.only):.1f} s")
        return
    new = ref.with_name(ref.name + ".new")
    print(f"total {run_all(new, args.only):.1f} s")
    bad = []
    files = [f for f in sorted(ref.iterdir()) if args.only in f.name]
    for f in files:
        other = new / f.name
        if not other.exists() or other.read_bytes() != f.read_bytes():
            bad.append(f.name)
    print(f"{len(files) - len(bad)} files identical, {len(bad)} differ" + (": " + ", ".join(bad) if bad else ""))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
