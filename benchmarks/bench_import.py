"""Import benchmark: wall time and peak memory to import graph-only models and cost one prefill.

Each model runs in a fresh subprocess (so the peak RSS is that import's alone). Targets from the foundation
issue: Llama-2-7B-shaped graph-only file in under 3 s and under 500 MB RSS on the 2-core CI machine.

    python benchmarks/bench_import.py [--report reports/import_benchmark.md]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ["gpt2.onnx", "opt-125m.onnx", "bert-base.onnx", "gpt2-medium.onnx", "opt-350m.onnx", "gpt2-large.onnx",
          "opt-1.3b.onnx", "gpt2-xl.onnx", "llama2-7b.onnx"]

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from mapping.workloads import Model
t1 = time.perf_counter()
model = Model(sys.argv[1])
t2 = time.perf_counter()
work = model.prefill(1, 128)
t3 = time.perf_counter()
print(json.dumps({"startup_s": t1 - t0, "import_s": t2 - t1, "prefill_s": t3 - t2, "total_s": t3 - t1,
                  "nodes": len(model.graph.nodes), "params": model.params,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "flops": work.flops}))
"""


def measure(path: Path, repeats: int = 3) -> dict:
    """Best of ``repeats`` fresh-process runs."""
    best: dict | None = None
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, cwd=ROOT,
                             check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if best is None or result["total_s"] < best["total_s"]:
            best = result
    assert best is not None
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", help="also write a Markdown report here")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    header = (f"{'model':18s} {'startup s':>9s} {'nodes':>6s} {'params':>8s} {'import s':>9s} {'prefill s':>10s} "
              f"{'total s':>8s} {'RSS MB':>7s}")
    print(header)
    print("-" * len(header))
    for name in MODELS:
        r = measure(ROOT / "examples" / name, args.repeats)
        rows.append((name, r))
        print(f"{name:18s} {r['startup_s']:9.2f} {r['nodes']:6d} {r['params'] / 1e6:7.0f}M {r['import_s']:9.2f} "
              f"{r['prefill_s']:10.2f} "
              f"{r['total_s']:8.2f} {r['rss_mb']:7.0f}")
    llama = dict(rows)["llama2-7b.onnx"]
    verdict = (f"Llama-2-7B: {llama['total_s']:.2f} s (target < 3 s), {llama['rss_mb']:.0f} MB RSS "
               f"(target < 500 MB): {'PASS' if llama['total_s'] < 3 and llama['rss_mb'] < 500 else 'FAIL'}")
    print(verdict)
    if args.report:
        lines = ["# Import benchmark", "",
                 "Regenerate: `python benchmarks/bench_import.py --report reports/import_benchmark.md`", "",
                 f"Machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
                 f"{_cores()} cores. Best of {args.repeats} fresh processes per model. 'import' is load + shape "
                 "binding at a probe size + recognition of the transformer IR; 'prefill' binds and costs a "
                 "batch-1, 128-token prefill; 'startup' is importing hwsim and its libraries (onnx, numpy), paid once "
                 "per process and not included in 'total'. RSS is the peak of the whole process (Python and numpy included).", "",
                 "| model | startup s | nodes | params | import s | prefill s | total s | peak RSS MB |",
                 "|---|---|---|---|---|---|---|---|"]
        for name, r in rows:
            lines.append(f"| {name} | {r['startup_s']:.2f} | {r['nodes']} | {r['params'] / 1e6:.0f}M | {r['import_s']:.2f} | "
                         f"{r['prefill_s']:.2f} | {r['total_s']:.2f} | {r['rss_mb']:.0f} |")
        lines += ["", verdict, ""]
        Path(args.report).write_text("\n".join(lines))


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    main()
