"""Sweep throughput: design points per second for a GPT-2-medium decode sweep on pim-gpt and a100-80gb.

Each configuration runs in a fresh process into a fresh output folder (no cache hits). Worker counts run through
the same local process pool (fork), so 1 and 2 workers are measured the same way: the driver process (submitting
points, persisting rows in SQLite) runs beside the workers in both. The in-process executor (what ``--workers 1``
uses: no pool, the driver evaluates points itself) is measured too, as a reference row. The time is
``run_sweep``'s: it covers loading the model in the driver, forking the pool's workers, simulation and persisting
every point in SQLite; not the imports, not the pool's shutdown, not the outputs (CSV, plots). Loading the model
(about 0.2 s, once, in the driver, before the workers fork and inherit it) cannot be shared out between workers,
so the report also gives the rate without it.

    python benchmarks/bench_sweep.py [--workers 1,2] [--repeat 3] [--report reports/sweep_benchmark.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SPECS = {
    "pim-gpt": {"parameters": {"channels.value": [4, 8, 16, 32], "asic.vector_flops.value": [64, 128, 256, 512],
                               "mac.lanes.value": [8, 12, 16]},
                "workload": {"phase": ["decode"], "prompt_len": [64, 128, 256, 512, 768, 1000]}},
    "a100-80gb": {"parameters": {"dram_bandwidth.value": [1000, 1555, 2039, 3000, 4000],
                                 "sm_count.value": [54, 80, 108, 132], "tensor_efficiency.value": [0.6, 0.75, 0.85]},
                  "workload": {"phase": ["decode"], "prompt_len": [64, 128, 256, 512, 768, 1000]}},
}

CHILD = r"""
import json, sys, tempfile
from simulator.sweep.runner import PoolExecutor, SerialExecutor, run_sweep
from simulator.sweep.spec import sweep_from_dict
data, workers = json.loads(sys.argv[1]), int(sys.argv[2])
sw = sweep_from_dict(data)
with tempfile.TemporaryDirectory() as out:
    ex = SerialExecutor() if workers == 0 else PoolExecutor(workers)
    res = run_sweep(sw, out, ex, progress=False)
    ex.close()
errors = sum(1 for r in res.rows if r.get("error"))
print(json.dumps({"points": res.computed, "elapsed_s": res.elapsed_s, "warm_s": res.warm_s, "errors": errors}))
"""


def measure(target: str, workers: int) -> dict:
    """One run in a fresh process; ``workers`` 0 means the in-process executor."""
    data = {"name": f"bench-{target}", "model": str(ROOT / "examples" / "gpt2-medium.onnx"), "target": target,
            **SPECS[target]}
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(data), str(workers)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2", help="comma-separated pool worker counts (default 1,2)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per configuration; the best is kept")
    ap.add_argument("--report", help="also write this markdown report")
    args = ap.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    configs = [0, *counts]
    rows = []
    for target in SPECS:
        runs: dict[int, list[dict]] = {w: [] for w in configs}
        for _ in range(args.repeat):  # repeats interleaved, so that a slow spell of a shared machine hits all
            for w in configs:
                runs[w].append(measure(target, w))
        best = {w: min(runs[w], key=lambda r: r["elapsed_s"]) for w in configs}
        base = best[counts[0]]
        base_rate = base["points"] / base["elapsed_s"]
        base_steady = base["points"] / (base["elapsed_s"] - base["warm_s"])
        for w in configs:
            b = best[w]
            rate = b["points"] / b["elapsed_s"]
            steady = b["points"] / (b["elapsed_s"] - b["warm_s"])
            label = "in-process" if w == 0 else f"pool, {w} worker{'s' if w > 1 else ''}"
            rows.append((target, label, b["points"], b["elapsed_s"], b["warm_s"], rate, rate / base_rate, steady,
                         steady / base_steady, b["errors"]))
            print(f"{target:10s} {label:18s}: {b['points']} points in {b['elapsed_s']:.2f} s "
                  f"(model load {b['warm_s']:.2f} s) = {rate:.1f} points/s, x{rate / base_rate:.2f}; "
                  f"without the model load {steady:.1f} points/s, x{steady / base_steady:.2f}", flush=True)
    if args.report:
        lines = ["# Sweep benchmark", "",
                 f"Regenerate: `python benchmarks/bench_sweep.py --report {args.report}`", "",
                 f"Machine: {platform.machine()}, CPython {platform.python_version()}, {os.cpu_count()} cores. "
                 "GPT-2-medium (`examples/gpt2-medium.onnx`) decode, grid sweeps of 3 hardware axes x 6 context "
                 "lengths, fresh output folder (no cache hits), fresh process per run, best of "
                 f"{args.repeat} (repeats interleaved across configurations). Time covers loading the model in the "
                 "driver, forking the pool's workers, simulation and SQLite persistence of every point; not the "
                 "imports, the pool's shutdown or the CSV/plot outputs.", "",
                 "Worker counts all run through the same local process pool (fork), so the speed-up compares like "
                 "with like; it is relative to the 1-worker pool. `in-process` is the executor that `--workers 1` "
                 "uses (the driver evaluates the points itself, no pool), shown for reference. The model is loaded "
                 "once, in the driver, before the workers fork (they inherit it); that serial part cannot scale "
                 "with workers, so the last columns give the rate and speed-up without it.", "",
                 "| target | executor | points | seconds | model load (s) | points/s | speed-up "
                 "| points/s without model load | speed-up without model load | failed points |",
                 "|---|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {t} | {label} | {n} | {s:.2f} | {ws:.2f} | {r:.1f} | {x:.2f} | {sr:.1f} | {sx:.2f} | {e} |"
                  for t, label, n, s, ws, r, x, sr, sx, e in rows]
        lines += ["", "Target: >= 20 points/s and near-linear scaling from 1 to 2 workers.", "",
                  "Where 2 workers still lose time (timelines of the chunks inside the workers): the model load runs "
                  "once in the driver before the fork (the `model load` column; a larger share of the shorter "
                  "2-worker run); forking the workers and their first task take about 0.04 s; each chunk costs a "
                  "round trip of 1-3 ms (one chunk per worker is in flight, so that the worker that just finished "
                  "takes the next chunk of the workload it has built); and at the end one worker usually builds a "
                  "workload the other one was on, to share the last points. The simulation itself, inside the "
                  "workers, scales about 1.9x. This machine is a shared 2-vCPU VM: single runs vary by about 10%.",
                  ""]
        Path(args.report).write_text("\n".join(lines))
        print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
