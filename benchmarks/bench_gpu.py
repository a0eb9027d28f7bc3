"""GPU simulation benchmark: how fast `hwsim simulate --phase generate` runs decode steps on GPU presets.

    python benchmarks/bench_gpu.py [--report reports/gpu_benchmark.md] [--repeats 3]

Each case is one generate run (a prefill, then one decode step per generated token after the first), simulated
``--repeats`` times in this process after one warm-up step (the ONNX import and the first binding are the import
benchmark's business); the table gives the best repeat. CPU seconds are this process's own time, so other load on
a shared machine inflates them less than wall time. There is no target: the table is the speed a sweep or a long
generation can count on, per decode step.
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from pathlib import Path

from hardware.targets import load_target
from mapping.op_costs import Precision
from mapping.workloads import Model
from simulator.simulate import simulate

ROOT = Path(__file__).resolve().parent.parent

#: (model file, target, options, prompt tokens, generated tokens)
CASES: list[tuple[str, str, dict, int, int]] = [
    ("gpt2.onnx", "a100-80gb", {}, 32, 512),
    ("gpt2.onnx", "a100-80gb", {"mode": "detailed"}, 32, 64),
    ("llama2-7b.onnx", "a100-80gb", {}, 128, 256),
    ("llama2-7b.onnx", "a100-80gb", {"stack": "eager"}, 128, 128),
    ("llama2-7b.onnx", "h100-sxm", {"tp": 2}, 128, 128),
    ("mixtral-8x7b.onnx", "h100-sxm", {"tp": 4}, 128, 64),
]


def measure(path: str, target_name: str, options: dict, prompt: int, gen: int, repeats: int) -> dict:
    """Best-of-``repeats`` wall and CPU seconds of one generate run, and of its decode steps alone."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Model(str(ROOT / "examples" / path))
        target = load_target(target_name)
        simulate(model, target, "generate", 1, prompt, 2, Precision(), dict(options))  # warm-up: import, bindings
        best: dict = {}
        marks: list[tuple[float, float]] = []

        def progress(done: int, total: int) -> None:
            marks.append((time.perf_counter(), time.process_time()))

        for _ in range(repeats):
            marks.clear()
            wall0, cpu0 = time.perf_counter(), time.process_time()
            result = simulate(model, target, "generate", 1, prompt, gen, Precision(), dict(options), progress=progress)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            step_cpu = (marks[-1][1] - marks[0][1]) / max(1, len(marks) - 1)
            if not best or cpu < best["cpu_s"]:
                best = {"wall_s": wall, "cpu_s": cpu, "step_cpu_s": step_cpu, "latency_s": result.latency_s}
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for path, target, options, prompt, gen in CASES:
        m = measure(path, target, options, prompt, gen, args.repeats)
        opts = " ".join(f"{k}={v}" for k, v in options.items()) or "defaults"
        rows.append((f"{path.removesuffix('.onnx')} on {target} ({opts}), prompt {prompt}, {gen} tokens",
                     f"{m['wall_s']:.2f}", f"{m['cpu_s']:.2f}", f"{1000 * m['step_cpu_s']:.1f}",
                     f"{1 / m['step_cpu_s']:.0f}", f"{m['latency_s'] * 1000:.1f} ms"))
        print(f"{rows[-1][0]:75s} wall {rows[-1][1]:>7s} s  cpu {rows[-1][2]:>7s} s  {rows[-1][3]:>6s} ms/step  "
              f"{rows[-1][4]:>5s} steps/s  simulated {rows[-1][5]}", flush=True)
    if args.report:
        lines = ["# GPU simulation benchmark", "",
                 "Regenerate: `python benchmarks/bench_gpu.py --report reports/gpu_benchmark.md`", "",
                 f"Machine: {platform.machine()}, CPython {platform.python_version()}, 2 cores (shared). Each case is one "
                 "`simulate(..., phase='generate')` run in a warm process (model imported, first step bound), best of "
                 f"{args.repeats}; CPU seconds are the process's own. 'per decode step' excludes the prefill.", "",
                 "| case | wall (s) | CPU (s) | CPU per decode step (ms) | decode steps/s | simulated latency |",
                 "|---|---|---|---|---|---|"]
        lines += [f"| {' | '.join(r)} |" for r in rows]
        lines.append("")
        Path(args.report).write_text("\n".join(lines))


if __name__ == "__main__":
    main()
