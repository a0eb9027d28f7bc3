"""Reproduce PIM-GPT (Wu, Wang, Lu; arXiv 2310.09385) with the pim-gpt and t4 presets: ``reports/pim_gpt.md``.

    python -m simulator.validation.pim_gpt [--out reports] [--prompt-len 32] [--gen-len 256]

The paper's per-model tables could not be read here (docs/research/pim_gpt.md): what we compare against are its
stated ranges over 8 GPT models: 41-137x speedup over a GPU (an NVIDIA T4) and 123-383x energy efficiency (339-1085x
in arXiv v1). Which 8 models, and the prompt/generation lengths, are our assumptions, stated in the report.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

from hardware.targets import load_target
from mapping.op_costs import Precision
from mapping.workloads import Model
from simulator.simulate import SimulationResult, simulate
from simulator.validation import checkout_root

ROOT = checkout_root()
#: GPT-2 S/M/L/XL and GPT-3 Small/Medium/Large/XL shapes: our reading of "8 GPT models up to 1.4B parameters".
MODELS = ["gpt2", "gpt3-small", "gpt2-medium", "gpt3-medium", "gpt2-large", "gpt3-large", "gpt3-xl", "gpt2-xl"]
PAPER_SPEEDUP = (41.0, 137.0)
PAPER_EFFICIENCY_V2 = (123.0, 383.0)
PAPER_EFFICIENCY_V1 = (339.0, 1085.0)


def _gap(value: float, lo: float, hi: float) -> float:
    """Relative distance from ``value`` to the range [lo, hi] (0 inside it), as a signed fraction."""
    if value < lo:
        return value / lo - 1.0
    if value > hi:
        return value / hi - 1.0
    return 0.0


def _run(model: Model, target: str, prompt: int, gen: int) -> SimulationResult:
    return simulate(model, load_target(target), "generate", 1, prompt, gen, Precision())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "reports"))
    parser.add_argument("--prompt-len", type=int, default=32)
    parser.add_argument("--gen-len", type=int, default=256)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    started = time.time()
    for name in MODELS:
        model = Model(str(ROOT / "examples" / f"{name}.onnx"))
        pim = _run(model, "pim-gpt", args.prompt_len, args.gen_len)
        gpu = _run(model, "t4", args.prompt_len, args.gen_len)
        pim_dec = next(p for p in pim.phases if p.name == "decode")
        gpu_dec = next(p for p in gpu.phases if p.name == "decode")
        traced_steps = min(4, args.gen_len - 1)  # simulate() keeps the first 4 decode steps for the trace
        kernels = sum(1 for phase, _, _ in gpu.trace if phase == "decode") // max(1, traced_steps)
        rows.append({
            "model": name, "params": model.params, "layers": model.ir.n_layers, "d_model": model.ir.d_model,
            "pim_token_s": pim.latency_s / args.gen_len, "gpu_token_s": gpu.latency_s / args.gen_len,
            "pim_decode_s": pim_dec.latency_s / pim_dec.passes, "gpu_decode_s": gpu_dec.latency_s / gpu_dec.passes,
            "pim_token_j": pim.energy_j / args.gen_len, "gpu_token_j": gpu.energy_j / args.gen_len,
            "kernels": kernels,
            "pim_kinds": pim.block_kinds, "pim_actions": dict(pim.energy_by_action),
        })
        print(f"{name}: PIM {rows[-1]['pim_token_s'] * 1e3:.3f} ms/token, T4 {rows[-1]['gpu_token_s'] * 1e3:.3f} ms/token")
    elapsed = time.time() - started
    _write(out, rows, args, elapsed)


def _write(out: Path, rows: list[dict], args: argparse.Namespace, elapsed: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for r in rows:
        r["speedup"] = r["gpu_token_s"] / r["pim_token_s"]
        r["efficiency"] = r["gpu_token_j"] / r["pim_token_j"]
        # host overhead per GPU kernel that would bring our T4 latency up to the paper's lowest speedup (41x)
        needed = PAPER_SPEEDUP[0] * r["pim_decode_s"] - r["gpu_decode_s"]
        r["overhead_for_41x_us"] = needed / r["kernels"] * 1e6 if r["kernels"] else float("nan")
    names = [r["model"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    axes[0].bar(names, [r["speedup"] for r in rows], color="tab:blue", label="hwsim (pim-gpt vs t4)")
    axes[0].axhspan(*PAPER_SPEEDUP, color="tab:orange", alpha=0.25, label="PIM-GPT paper range (41-137x)")
    axes[0].set_ylabel("speedup over T4 (x)")
    axes[0].set_yscale("log")
    axes[0].set_title("generation latency per token")
    axes[1].bar(names, [r["efficiency"] for r in rows], color="tab:green", label="hwsim")
    axes[1].axhspan(*PAPER_EFFICIENCY_V2, color="tab:orange", alpha=0.25, label="paper v2 (123-383x)")
    axes[1].axhspan(*PAPER_EFFICIENCY_V1, color="tab:red", alpha=0.12, label="paper v1 (339-1085x)")
    axes[1].set_ylabel("energy efficiency over T4 (x)")
    axes[1].set_yscale("log")
    axes[1].set_title("energy per token")
    for ax in axes:
        ax.tick_params(axis="x", rotation=45)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "pim_gpt_speedup.png", dpi=110)
    plt.close(fig)

    lines = [
        "# PIM-GPT reproduction",
        "",
        "Regenerate: `python -m simulator.validation.pim_gpt` "
        f"(defaults: prompt {args.prompt_len} tokens, {args.gen_len} generated; {elapsed:.0f} s on "
        f"{platform.machine()}, 2 cores). Figure: `reports/pim_gpt_speedup.png`.",
        "",
        "PIM-GPT (Wu, Wang, Lu; arXiv 2310.09385, v1 2023 and revised 2024) reports, over 8 GPT models up to 1.4B "
        "parameters, **41-137x speedup** and **123-383x energy efficiency** over an NVIDIA T4 (339-1085x in arXiv v1). "
        "Its per-model tables and figures could not be read in this workplace (only the abstract and introduction "
        "were retrievable, docs/research/pim_gpt.md), so each model is compared with that range: the error column is "
        "the distance from our figure to the nearest end of the paper's range (0 inside it).",
        "",
        "Setup (our choices where the paper could not be read):",
        "- Models: GPT-2 S/M/L/XL and GPT-3 Small/Medium/Large/XL shapes (`examples/`), our reading of '8 GPT models "
        "up to 1.4B'; GPT-2 XL is 1.56B with embeddings.",
        f"- Workload: batch 1, prompt {args.prompt_len}, {args.gen_len} generated tokens; latency and energy per generated "
        "token include the prefill.",
        "- PIM: `hwsim targets show pim-gpt` (8 GDDR6-AiM channels x 16 banks, bf16, AiM timing and CENT energy "
        "figures; ASIC parameters are stated assumptions). GPU: `hwsim targets show t4` with hwsim's GPU kernel model "
        "(fp16 tensor cores, weights streamed at 90% of 320 GB/s, 4 us per kernel launch; calibration pending "
        "measurement).",
        "",
        "| model | params | PIM ms/token | T4 ms/token | speedup | paper | error | PIM mJ/token | T4 mJ/token | "
        "efficiency | paper v2 | error |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params'] / 1e6:.0f}M | {r['pim_token_s'] * 1e3:.3f} | {r['gpu_token_s'] * 1e3:.3f} | "
            f"{r['speedup']:.1f}x | 41-137x | {100 * _gap(r['speedup'], *PAPER_SPEEDUP):+.0f}% | "
            f"{r['pim_token_j'] * 1e3:.2f} | {r['gpu_token_j'] * 1e3:.1f} | {r['efficiency']:.1f}x | 123-383x | "
            f"{100 * _gap(r['efficiency'], *PAPER_EFFICIENCY_V2):+.0f}% |")
    sp = [r["speedup"] for r in rows]
    ef = [r["efficiency"] for r in rows]
    lines += [
        "",
        f"Our speedup spans {min(sp):.1f}-{max(sp):.1f}x and our energy efficiency {min(ef):.1f}-{max(ef):.1f}x: "
        "**well below the paper on every model** (every gap is over 15%). We have not tuned anything to close it. "
        "The reasons, in order of the evidence we have:",
        "",
        "1. **The GPU baseline.** Ours is a model of well-implemented fp16 kernels (cuBLAS-class GEMV at 90% of the "
        "T4's 320 GB/s, 4 us per launch). A T4 cannot stream GPT-2 XL's 3.1 GB of fp16 weights faster than about "
        "10 ms per token, and our T4 figures sit just above that bound. The paper's 41-137x against a T4 implies "
        "T4 latencies far above the weight-streaming bound, i.e. a measured software stack with large per-operator "
        "host overheads (framework dispatch, fp32 weights, no kernel fusion, small-batch inefficiency). The column "
        "below gives the host overhead per GPU kernel that would bring our T4 latency to the paper's lowest speedup "
        "(41x): tens of microseconds per kernel, which is what eager PyTorch dispatch costs, so this explanation is "
        "plausible — but it is not confirmed, because the paper's measurement method could not be read.",
        "2. **The PIM side is bounded by the banks' MAC bandwidth**, which we model from AiM's timing (a 256-bit MAC "
        "per bank every tCCD_MAC = 1 ns, plus ACT/PRE per 2 KiB row: 57% row efficiency for full rows). PIM-GPT's own "
        "timing parameters, channel count and clock could not be read; if it assumed more channels or no "
        "activation overhead its PIM latency would be lower than ours.",
        "3. **Energy.** Our PIM energy per token is dominated by MAC and activation energy from the CENT/AiM power "
        "model (docs/research/dram_pim.md 3.4); the T4's by DRAM traffic and idle power. The paper's v1->v2 revision "
        "cut its energy-efficiency claim by ~2.8x while keeping the speedups, which says its energy model changed; "
        "which model it ended with is unknown here.",
        "",
        "| model | T4 kernels per decode step | host overhead per kernel for 41x (us) | PIM decode ms | T4 decode ms |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['kernels']} | {r['overhead_for_41x_us']:.1f} | {r['pim_decode_s'] * 1e3:.3f} | "
                     f"{r['gpu_decode_s'] * 1e3:.3f} |")
    lines += [
        "",
        "Where PIM time goes (largest model, whole run): " + ", ".join(
            f"{k} {100 * v['latency_s'] / sum(x['latency_s'] for x in rows[-1]['pim_kinds'].values()):.1f}%"
            for k, v in sorted(rows[-1]["pim_kinds"].items(), key=lambda kv: -kv[1]["latency_s"])),
        "",
        "Not reproduced: the CPU baseline (631-1074x, Xeon Gold 6154; hwsim has no CPU target), the paper's row-hit "
        "rate and off-chip traffic reduction (our mapping opens each 2 KiB row once per pass, so every column access "
        "after the activation is a row hit: 63/64 = 98.4% for full rows).",
        "",
    ]
    (out / "pim_gpt.md").write_text("\n".join(lines))
    print(f"wrote {out / 'pim_gpt.md'} and {out / 'pim_gpt_speedup.png'}")


if __name__ == "__main__":
    main()
