"""Serving simulation speed: requests simulated per second for Llama-2-7B on a100-80gb (``hwsim serve``'s loop).

The time covers building the requests, every scheduler decision, costing every distinct pass shape (lowering
through the GPU plugin and running the engine; the first run of a shape binds the ONNX graph, about 0.5 s for
Llama-2-7B) and the metrics; not loading the model. A second run on the same setup shows the rate once the
shape cache is warm (what a ``--sweep-rate`` run gets after its first rate).

    python benchmarks/bench_serving.py [--requests 10000] [--rate 4] [--scheduler vllm] [--report reports/serving_benchmark.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hardware.targets import load_target  # noqa: E402
from mapping.op_costs import Precision  # noqa: E402
from mapping.workloads import Model  # noqa: E402
from simulator.serving.arrivals import parse_arrivals  # noqa: E402
from simulator.serving.distributions import parse_length  # noqa: E402
from simulator.serving.metrics import Slo, summarise  # noqa: E402
from simulator.serving.setup import prepare, run_serving  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "examples" / "llama2-7b.onnx"))
    ap.add_argument("--target", default="a100-80gb")
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--rate", type=float, default=4.0, help="Poisson arrival rate (requests/s)")
    ap.add_argument("--prompt-len", default="uniform:64,1024")
    ap.add_argument("--gen-len", default="uniform:16,512")
    ap.add_argument("--schedulers", default="vllm,sarathi")
    ap.add_argument("--report", default=None, metavar="PATH")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    load_before = os.getloadavg()[0]
    t = time.perf_counter()
    model = Model(args.model)
    load_s = time.perf_counter() - t
    prompt, gen = parse_length(args.prompt_len, "--prompt-len"), parse_length(args.gen_len, "--gen-len")
    rows = []
    for scheduler in args.schedulers.split(","):
        setup = prepare(model, load_target(args.target), {}, Precision())
        tokens = 512 if scheduler == "sarathi" else 2048
        for label in ("cold", "warm"):
            t, cpu = time.perf_counter(), time.process_time()
            run = run_serving(setup, parse_arrivals(f"poisson:{args.rate}"), args.requests, prompt, gen, scheduler,
                              256, tokens, 0)
            m = summarise(run, Slo(), args.rate)
            wall, cpu = time.perf_counter() - t, time.process_time() - cpu
            rows.append((scheduler, label, wall, cpu, args.requests / wall, m["iterations"], setup.coster.shapes_run,
                         m["throughput"]["tokens_per_s"], m["e2e_s"]["p99"], m["utilisation"]))
            print(f"{scheduler:8s} {label}: {args.requests} requests in {wall:.1f} s ({cpu:.1f} s CPU) = "
                  f"{args.requests / wall:,.0f} "
                  f"requests/s ({m['iterations']} iterations, {setup.coster.shapes_run} distinct passes; simulated "
                  f"{m['throughput']['tokens_per_s']:,.0f} tokens/s, p99 E2E {m['e2e_s']['p99']:.2f} s, "
                  f"utilisation {m['utilisation']:.0%})", flush=True)
    if args.report:
        lines = [
            "# Serving simulation speed", "",
            "Regenerate: `python benchmarks/bench_serving.py --report reports/serving_benchmark.md`", "",
            f"{Path(args.model).name} on {args.target}; {args.requests} requests, Poisson {args.rate:g} requests/s, "
            f"prompt {args.prompt_len}, generation {args.gen_len}; model load {load_s:.1f} s (not counted). "
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}; load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after the "
            "run (other jobs on the machine slow every wall-clock figure here by about the load over the cores; the "
            "CPU column is this process's own CPU time, which they do not inflate).", "",
            "A cold run costs every distinct pass shape for the first time; the warm run reuses the cache.", "",
            "| scheduler | cache | wall (s) | CPU (s) | requests/s | iterations | distinct passes | simulated tokens/s | "
            "p99 E2E (s) | utilisation |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for s, label, wall, cpu, rps, its, shapes, tps, p99, util in rows:
            lines.append(f"| {s} | {label} | {wall:.1f} | {cpu:.1f} | {rps:,.0f} | {its} | {shapes} | {tps:,.0f} | {p99:.2f} | "
                         f"{util:.0%} |")
        Path(args.report).write_text("\n".join(lines) + "\n")
        print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
