"""Reproduce PIM-GPT (Wu, Wang, Lu; arXiv 2310.09385) with the pim-gpt and t4 presets: ``reports/pim_gpt.md``.

    python -m simulator.validation.pim_gpt [--write | --report PATH] [--prompt-len P] [--gen-len G] [--models a,b]

prints the report; ``--write`` writes ``reports/pim_gpt.md`` and ``reports/pim_gpt_speedup.png``. The paper's
figures (its stated ranges over 8 GPT models) and our setup (which models, prompt and generation lengths) are data
in ``hardware/calibration/pim_gpt.yaml``; every number in the prose is computed when the report is built.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

import yaml

from hardware.targets import load_target
from mapping.op_costs import Precision
from mapping.workloads import Model
from simulator.simulate import SimulationResult, simulate
from simulator.validation import checkout_root, output_args, written_to

ROOT = checkout_root()
REFERENCE = ROOT / "hardware" / "calibration" / "pim_gpt.yaml"


def load_reference(path: Path = REFERENCE) -> dict[str, Any]:
    """The paper's figures and our setup."""
    doc = yaml.safe_load(Path(path).read_text())
    if doc.get("schema") != "hwsim-paper-figures/1":
        raise ValueError(f"{path}: schema must be hwsim-paper-figures/1")
    return doc


def _gap(value: float, lo: float, hi: float) -> float:
    """Relative distance from ``value`` to the range [lo, hi] (0 inside it), as a signed fraction."""
    if value < lo:
        return value / lo - 1.0
    if value > hi:
        return value / hi - 1.0
    return 0.0


def _run(model: Model, target: str, prompt: int, gen: int, options: dict[str, Any] | None = None) -> SimulationResult:
    return simulate(model, load_target(target), "generate", 1, prompt, gen, Precision(), options or {})


def baseline_dispatches(setup: dict[str, Any]) -> dict[str, int]:
    """The ATen dispatches per decode step of each model's baseline (``baseline_stack.dispatch_cases``: a case of
    hardware/calibration/host/eager_dispatch.json per model)."""
    from simulator.validation.gpu_eager import dispatch_counts

    cases = (setup.get("baseline_stack") or {}).get("dispatch_cases") or {}
    return {model: round(dispatch_counts()[case]["per_step"]["aten"]) for model, case in cases.items()}


def compute(models: list[str], prompt: int, gen: int, pim: str = "pim-gpt", gpu: str = "t4",
            lowest_speedup: float = 41.0, stack: str | None = None,
            dispatches: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """One row per example model: per-token latency and energy on both targets, decode-step times, and the host
    overhead per GPU kernel that would bring the GPU's decode step to ``lowest_speedup`` x the PIM's; with
    ``stack``, the GPU run again issued by that software stack (``--set stack=``: the baseline column), with the
    model's framework dispatches per step from ``dispatches`` (``--set host_dispatches=``) where it names one."""
    rows = []
    for name in models:
        model = Model(str(ROOT / "examples" / f"{name}.onnx"))
        p, g = _run(model, pim, prompt, gen), _run(model, gpu, prompt, gen)
        if stack:
            extra = {"host_dispatches": dispatches[name]} if dispatches and name in dispatches else {}
            b = _run(model, gpu, prompt, gen, {"stack": stack, **extra})
            base = {"base_token_s": b.latency_s / gen, "base_token_j": b.energy_j / gen}
        else:
            base = {}
        p_dec = next(x for x in p.phases if x.name == "decode")
        g_dec = next(x for x in g.phases if x.name == "decode")
        traced_steps = min(4, gen - 1)  # simulate() keeps the first 4 decode steps for the trace
        kernels = sum(1 for phase, _, _ in g.trace if phase == "decode") // max(1, traced_steps)
        r = {"model": name, "params": model.params, "weight_bytes": model.weight_bytes(Precision("float16", "float16",
                                                                                                   "float16")),
             "pim_token_s": p.latency_s / gen, "gpu_token_s": g.latency_s / gen,
             "pim_decode_s": p_dec.latency_s / p_dec.passes, "gpu_decode_s": g_dec.latency_s / g_dec.passes,
             "pim_token_j": p.energy_j / gen, "gpu_token_j": g.energy_j / gen, "kernels": kernels,
             "pim_kinds": p.block_kinds, **base}
        if base:
            r["base_speedup"] = r["base_token_s"] / r["pim_token_s"]
            r["base_efficiency"] = r["base_token_j"] / r["pim_token_j"]
        r["speedup"] = r["gpu_token_s"] / r["pim_token_s"]
        r["efficiency"] = r["gpu_token_j"] / r["pim_token_j"]
        needed = lowest_speedup * r["pim_decode_s"] - r["gpu_decode_s"]
        r["overhead_us"] = needed / kernels * 1e6 if kernels else float("nan")
        rows.append(r)
    return rows


def _plot(path: Path, rows: list[dict[str, Any]], fig: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sp, ef, ef1 = fig["speedup_vs_gpu"]["range"], fig["efficiency_vs_gpu"]["range"], fig["efficiency_vs_gpu_v1"]["range"]
    names = [r["model"] for r in rows]
    f, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    axes[0].bar(names, [r["speedup"] for r in rows], color="tab:blue", label="hwsim (pim-gpt vs t4)")
    axes[0].axhspan(*sp, color="tab:orange", alpha=0.25, label=f"PIM-GPT paper range ({sp[0]:g}-{sp[1]:g}x)")
    axes[0].set(ylabel="speedup over T4 (x)", yscale="log", title="generation latency per token")
    axes[1].bar(names, [r["efficiency"] for r in rows], color="tab:green", label="hwsim")
    axes[1].axhspan(*ef, color="tab:orange", alpha=0.25, label=f"paper v2 ({ef[0]:g}-{ef[1]:g}x)")
    axes[1].axhspan(*ef1, color="tab:red", alpha=0.12, label=f"paper v1 ({ef1[0]:g}-{ef1[1]:g}x)")
    axes[1].set(ylabel="energy efficiency over T4 (x)", yscale="log", title="energy per token")
    for ax in axes:
        ax.tick_params(axis="x", rotation=45)
        ax.legend(fontsize=8)
    f.tight_layout()
    f.savefig(path, dpi=110)
    plt.close(f)


def main(argv: list[str] | None = None) -> str:
    ref = load_reference()
    setup = ref["setup"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    output_args(parser, "pim_gpt.md")
    parser.add_argument("--prompt-len", type=int, default=setup["prompt_len"])
    parser.add_argument("--gen-len", type=int, default=setup["gen_len"])
    parser.add_argument("--models", default=",".join(setup["models"]), help="comma list of examples/ models")
    args = parser.parse_args(argv)
    report = written_to(args, "pim_gpt.md")
    started = time.time()
    rows = compute(args.models.split(","), args.prompt_len, args.gen_len, setup["pim"],
                   ref["figures"]["gpu_baseline"]["value"], ref["figures"]["speedup_vs_gpu"]["range"][0],
                   (setup.get("baseline_stack") or {}).get("value"), baseline_dispatches(setup))
    for r in rows:
        print(f"{r['model']}: PIM {r['pim_token_s'] * 1e3:.3f} ms/token, T4 {r['gpu_token_s'] * 1e3:.3f} ms/token")
    figure = None
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        figure = report.parent / "pim_gpt_speedup.png"
        _plot(figure, rows, ref["figures"])
    text = markdown(rows, ref, args.prompt_len, args.gen_len, time.time() - started, figure)
    if report is None:
        print(text)
    else:
        report.write_text(text)
        print(f"wrote {report} and {figure}")
    return text


def markdown(rows: list[dict[str, Any]], ref: dict[str, Any], prompt: int, gen: int, elapsed: float,
             figure: Path | None) -> str:
    """The report, every figure in the prose computed from ``rows``, the presets and ``ref``."""
    fig = ref["figures"]
    sp, ef, ef1, cpu = (fig[k]["range"] for k in ("speedup_vs_gpu", "efficiency_vs_gpu", "efficiency_vs_gpu_v1",
                                                  "speedup_vs_cpu"))
    pim, t4 = load_target(ref["setup"]["pim"]), load_target(fig["gpu_baseline"]["value"])
    std = pim.standard
    t_mac_ns = std.params["tCCD_MAC"] * std.tck_s * 1e9
    columns = pim.row_bytes // pim.column_bytes
    biggest = max(rows, key=lambda r: r["weight_bytes"])
    stream_ms = biggest["weight_bytes"] / t4.dram_bandwidth.si * 1e3
    t4_text = (f"weights streamed at {t4.dram_efficiency.si:.0%} of {t4.dram_bandwidth.si / 1e9:.0f} GB/s, "
               f"{t4.launch_overhead.si * 1e6:g} us per kernel launch")
    range_text = f"{sp[0]:g}-{sp[1]:g}x"
    from hardware.pim.aim import AimTimer

    _, row_cycles = AimTimer(pim)._pass_cycles(1, columns, 0)
    row_eff = columns * std.params["tCCD_MAC"] / row_cycles
    shown = f"`reports/{figure.name}`" if figure else "none (printed, not written)"
    lines = [
        "# PIM-GPT reproduction",
        "",
        f"Regenerate: `python -m simulator.validation.pim_gpt --write` (prompt {prompt} tokens, {gen} generated; "
        f"{elapsed:.0f} s on {platform.machine()}). Figure: {shown}. The paper's figures and our setup: "
        "`hardware/calibration/pim_gpt.yaml`.",
        "",
        f"PIM-GPT ({ref['paper']}) reports, over 8 GPT models up to 1.4B parameters, **{range_text} speedup** and "
        f"**{ef[0]:g}-{ef[1]:g}x energy efficiency** over an NVIDIA T4 ({ef1[0]:g}-{ef1[1]:g}x in arXiv v1). Its "
        "per-model tables and figures could not be read in this workplace (only the abstract and introduction were "
        "retrievable, docs/research/pim_gpt.md), so each model is compared with that range: the error column is the "
        "distance from our figure to the nearest end of the paper's range (0 inside it).",
        "",
        "Setup (our choices where the paper could not be read):",
        f"- Models: {ref['setup']['models_note']}.",
        f"- Workload: batch 1, prompt {prompt}, {gen} generated tokens; latency and energy per generated token include "
        "the prefill.",
        f"- PIM: `hwsim targets show {pim.name}` ({pim.channels.n} channels x {pim.banks_per_channel} banks of "
        f"{pim.dram}, bf16, AiM timing and CENT energy figures; ASIC parameters are stated assumptions). GPU: `hwsim "
        f"targets show {t4.name}` with hwsim's GPU kernel model (fp16 tensor cores, {t4_text}; calibration pending "
        "measurement).",
        "",
        "| model | params | PIM ms/token | T4 ms/token | speedup | paper | error | PIM mJ/token | T4 mJ/token | "
        "efficiency | paper v2 | error |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params'] / 1e6:.0f}M | {r['pim_token_s'] * 1e3:.3f} | {r['gpu_token_s'] * 1e3:.3f} | "
            f"{r['speedup']:.1f}x | {range_text} | {100 * _gap(r['speedup'], *sp):+.0f}% | "
            f"{r['pim_token_j'] * 1e3:.2f} | {r['gpu_token_j'] * 1e3:.1f} | {r['efficiency']:.1f}x | "
            f"{ef[0]:g}-{ef[1]:g}x | {100 * _gap(r['efficiency'], *ef):+.0f}% |")
    ours_sp = [r["speedup"] for r in rows]
    ours_ef = [r["efficiency"] for r in rows]
    gaps = [abs(_gap(r["speedup"], *sp)) for r in rows] + [abs(_gap(r["efficiency"], *ef)) for r in rows]
    verdict = (f"**below the paper on every model** (every gap is over {int(min(gaps) * 100)}%)"
               if all(r["speedup"] < sp[0] and r["efficiency"] < ef[0] for r in rows)
               else "inside or above the paper's range on some models")
    overheads = [r["overhead_us"] for r in rows]
    lines += [
        "",
        f"Our speedup spans {min(ours_sp):.1f}-{max(ours_sp):.1f}x and our energy efficiency "
        f"{min(ours_ef):.1f}-{max(ours_ef):.1f}x: {verdict}. We have not tuned anything to close it. The reasons, in "
        "order of the evidence we have:",
        "",
        f"1. **The GPU baseline.** Ours is a model of well-implemented fp16 kernels ({t4_text}). A T4 cannot stream "
        f"{biggest['model']}'s {biggest['weight_bytes'] / 1e9:.1f} GB of fp16 weights faster than "
        f"{stream_ms:.1f} ms per token; our T4 decode step takes {biggest['gpu_decode_s'] * 1e3:.1f} ms. The paper's "
        f"{range_text} against a T4 implies T4 latencies far above the weight-streaming bound, i.e. a measured "
        "software stack with large per-operator host overheads (framework dispatch, fp32 weights, no kernel fusion, "
        "small-batch inefficiency). The column below gives the host overhead per GPU kernel that would bring our T4 "
        f"latency to the paper's lowest speedup ({sp[0]:g}x): {min(overheads):.0f}-{max(overheads):.0f} us per "
        "kernel, the order of what eager PyTorch dispatch costs, so this explanation is plausible — but it is not "
        "confirmed, because the paper's measurement method could not be read.",
        f"2. **The PIM side is bounded by the banks' MAC bandwidth**, which we model from AiM's timing (a "
        f"{pim.column_bytes * 8}-bit MAC per bank every tCCD_MAC = {t_mac_ns:g} ns, plus ACT/PRE per "
        f"{pim.row_bytes // 1024} KiB row: MACs fill {row_eff:.0%} of a full row's cycle when its input is already in "
        "the global buffer). PIM-GPT's own timing parameters, channel count and clock could not be read; if it "
        "assumed more channels or no activation overhead its PIM latency would be lower than ours.",
        "3. **Energy.** Our PIM energy per token is dominated by MAC and activation energy from the CENT/AiM power "
        "model (docs/research/dram_pim.md 3.4); the T4's by DRAM traffic and idle power. The paper's v1->v2 revision "
        f"cut its energy-efficiency claim by {ef1[0] / ef[0]:.2f}-{ef1[1] / ef[1]:.2f}x while keeping the speedups, "
        "which says its energy model changed; which model it ended with is unknown here.",
        "",
        f"| model | T4 kernels per decode step | host overhead per kernel for {sp[0]:g}x (us) | PIM decode ms | "
        "T4 decode ms |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['kernels']} | {r['overhead_us']:.1f} | {r['pim_decode_s'] * 1e3:.3f} | "
                     f"{r['gpu_decode_s'] * 1e3:.3f} |")
    base = ref["setup"].get("baseline_stack")
    if base and all("base_speedup" in r for r in rows):
        from mapping.gpu.stack import (
            EAGER_HOST_PER_DISPATCH,
            EAGER_HOST_PER_DISPATCH_SPAN,
            EAGER_HOST_PER_OP,
            EAGER_HOST_PER_OP_SPAN,
        )

        counts = baseline_dispatches(ref["setup"])
        if counts and all(r["model"] in counts for r in rows):
            low, high = (v * 1e6 for v in EAGER_HOST_PER_DISPATCH_SPAN)
            host = (f"With the ATen ops Hugging Face transformers 4.35.2 dispatches per decode step of each shape "
                    f"(GPT2LMHeadModel's generate, counted by benchmarks/eager_dispatch.py: "
                    f"{', '.join(f'{r}: {counts[r]:,}' for r in dict.fromkeys(r['model'] for r in rows))}; "
                    "hardware/calibration/host/eager_dispatch.json; the paper's version is not known) at "
                    f"{EAGER_HOST_PER_DISPATCH * 1e6:.2f} us per dispatch (mapping/gpu/stack.py: the median over the "
                    f"published eager machines that identify one, which span {low:.2f}-{high:.2f} us; the paper's "
                    "host CPU is not known):")
        else:
            low, high = (v * 1e6 for v in EAGER_HOST_PER_OP_SPAN)
            host = (f"With host time per op of {EAGER_HOST_PER_OP * 1e6:.1f} us (mapping/gpu/stack.py: the median "
                    f"over the published eager machines that identify one, which span {low:.1f}-{high:.1f} us per "
                    "op; the paper's host CPU is not known):")

        bsp = [r["base_speedup"] for r in rows]
        lines += [
            "",
            f"**Baseline column: the T4 as the paper most plausibly measured it (`--set stack={base['value']}`).** "
            f"Assumption: {base['assumption']} {host}",
            "",
            f"| model | T4 {base['value']} ms/token | speedup | paper | error | T4 {base['value']} mJ/token | efficiency | "
            "paper v2 | error |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(f"| {r['model']} | {r['base_token_s'] * 1e3:.3f} | {r['base_speedup']:.1f}x | {range_text} | "
                         f"{100 * _gap(r['base_speedup'], *sp):+.0f}% | {r['base_token_j'] * 1e3:.1f} | "
                         f"{r['base_efficiency']:.1f}x | {ef[0]:g}-{ef[1]:g}x | "
                         f"{100 * _gap(r['base_efficiency'], *ef):+.0f}% |")
        inside = [r["model"] for r in rows if _gap(r["base_speedup"], *sp) == 0]
        lines += ["", f"Against that baseline our speedup spans {min(bsp):.1f}-{max(bsp):.1f}x (paper {range_text}), "
                  f"inside the paper's range for {len(inside)} of {len(rows)} models"
                  + (f" ({', '.join(inside)})" if inside else "") + ": the issuing software stack accounts for much of "
                  "the distance between a kernel-level model and the paper's GPU figures, as item 1 argued; the more "
                  "weights a model has per layer, the further below the range it falls, because the PIM's time grows "
                  "with its weights while the eager host time grows only with its dispatch count, set by its layers "
                  "(gpt3-large and gpt3-xl have gpt2-medium's 24 layers and so its dispatches, with 2-3.7x its "
                  "weights). The column scales with the host time per op, which no "
                  f"source states for the paper's machine (the published eager machines span {low:.2f}-{high:.2f} us; "
                  "--set host_op_us= moves it). This column rests on the stated assumption about the paper's stack."]
    kinds = rows[-1]["pim_kinds"]
    total = sum(x["latency_s"] for x in kinds.values())
    lines += [
        "",
        f"Where PIM time goes ({rows[-1]['model']}, whole run): " + ", ".join(
            f"{k} {100 * v['latency_s'] / total:.1f}%" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]["latency_s"])),
        "",
        f"Not reproduced: the CPU baseline ({cpu[0]:g}-{cpu[1]:g}x; hwsim has no CPU target), the paper's row-hit "
        f"rate and off-chip traffic reduction (our mapping opens each {pim.row_bytes // 1024} KiB row once per pass, so "
        f"every column access after the activation is a row hit: {columns - 1}/{columns} = "
        f"{(columns - 1) / columns:.1%} for full rows).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
