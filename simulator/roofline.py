"""Roofline plot of a GPU simulation: every kernel of a :class:`SimulationResult` against the target's ceilings.

x: arithmetic intensity (useful FLOPs per DRAM byte); y: achieved FLOP/s (useful FLOPs / kernel time). Ceilings: the
datasheet peak of every tensor format the part has and CUDA-core fp32 (horizontal), DRAM bandwidth (the slanted
line: datasheet, and datasheet x ``dram_efficiency`` dashed), and the calibrated tensor ceiling (peak x
``tensor_efficiency``) for the format the run used.

Every number is a fact the target plugin's tasks carried (``Task.kind``, ``flops``, DRAM bytes at the program's
``dram`` level, duration), summed per (phase, kernel) by :func:`simulator.simulate.simulate` into
``result.kernel_rows``: nothing is re-mapped here. FLOPs are the kernel models' useful FLOPs (2 per
multiply-accumulate; a GEMM's are its workload op's), not the padded FLOPs of their tiles.

With ``--tp N`` every kernel is drawn per GPU (FLOPs and bytes / N; durations are per GPU already). Kernels without
FLOPs (all-reduce, pure copies) cannot sit on a log-scale roofline and are counted in the title instead.
Call from the CLI, after ``result = run_simulation(...)``::

    write_roofline(result, target, plot_roofline)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardware.errors import HwsimError
from hardware.gpu.spec import TENSOR_DTYPES
from hardware.targets import TargetBase
from simulator.simulate import SimulationResult


@dataclass
class RooflinePoint:
    """One kernel of one phase (summed over that phase's passes), per GPU."""

    name: str
    kind: str
    flops: float
    dram_bytes: float
    time_s: float
    phase: str = "decode"

    @property
    def intensity(self) -> float:
        """FLOP per DRAM byte."""
        return self.flops / self.dram_bytes if self.dram_bytes else float("inf")

    @property
    def flops_per_s(self) -> float:
        """Achieved FLOP/s."""
        return self.flops / self.time_s if self.time_s else 0.0


def roofline_points(result: SimulationResult, target: TargetBase) -> list[RooflinePoint]:
    """Every kernel of ``result`` with its FLOPs, DRAM bytes and time, per GPU (see the module docstring)."""
    if target.kind != "gpu":
        raise HwsimError(f"roofline plots need a GPU target; {target.name} is a {target.kind} target")
    tp = int(getattr(result.options, "tp", 1) or 1)
    return [RooflinePoint(name, row["kind"] or "gemm", row["flops"] / tp, row["dram_bytes"] / tp, row["time_s"], phase)
            for (phase, name), row in result.kernel_rows.items()]


def write_roofline(result: SimulationResult, target: TargetBase, path: str | Path) -> list[RooflinePoint]:
    """Draw every kernel of ``result`` on ``target``'s roofline as a PNG at ``path``; returns the points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = roofline_points(result, target)
    shown = [p for p in points if p.flops > 0 and p.dram_bytes > 0 and p.time_s > 0]
    left_out = len(points) - len(shown)
    t: Any = target
    bw = t.dram_bandwidth.si
    peaks = [(d, getattr(t.tensor_peak, d).si) for d in TENSOR_DTYPES if getattr(t.tensor_peak, d, None) is not None]
    peaks.append(("fp32 CUDA cores", t.cuda_core_fp32.si))
    merged: dict[float, list[str]] = {}
    for d, v in peaks:
        merged.setdefault(v, []).append(d)
    top = max(merged)
    xs = [p.intensity for p in shown] or [1.0]
    x_lo = min(min(xs) / 3, 0.1)
    x_hi = max(max(xs) * 3, top / bw * 4)
    fig, ax = plt.subplots(figsize=(10, 6.5))
    ax.plot([x_lo, top / bw], [bw * x_lo, top], color="black", lw=1.2, label=f"DRAM {bw / 1e9:,.0f} GB/s (datasheet)")
    eff = t.achievable_dram_bandwidth
    ax.plot([x_lo, top / eff], [eff * x_lo, top], color="black", lw=0.8, ls="--",
            label=f"DRAM x dram_efficiency {eff / 1e9:,.0f} GB/s")
    for i, (v, names) in enumerate(sorted(merged.items(), reverse=True)):
        ax.plot([v / bw, x_hi], [v, v], color=f"C{i % 10}", lw=1.0, alpha=0.8)
        ax.text(x_hi, v, f" {'/'.join(names)} {v / 1e12:,.0f} T", va="center", fontsize=7, color=f"C{i % 10}")
    act = str(result.precision.activations or "float16")
    fmt = "bf16" if act == "bfloat16" else "fp16" if act == "float16" else None
    if fmt and getattr(t.tensor_peak, fmt, None) is not None:
        cal = getattr(t.tensor_peak, fmt).si * t.tensor_efficiency.si
        ax.plot([cal / bw, x_hi], [cal, cal], color="gray", ls=":",
                label=f"{fmt} x tensor_efficiency {cal / 1e12:,.0f} TFLOP/s")
    total = sum(p.time_s for p in shown) or 1.0
    colors = {"gemm": "tab:blue", "lm_head": "tab:purple", "attention": "tab:red", "fused": "tab:green"}
    markers = {"prefill": "s", "decode": "o"}
    for kind, color in colors.items():
        for phase, marker in markers.items():
            sel = [p for p in shown if p.kind == kind and p.phase == phase]
            if sel:
                ax.scatter([p.intensity for p in sel], [p.flops_per_s for p in sel],
                           s=[20 + 600 * p.time_s / total for p in sel], color=color, marker=marker, alpha=0.6,
                           edgecolors="k", linewidths=0.4, label=f"{phase} {kind} ({len(sel)} kernels, "
                                                                 f"{sum(p.time_s for p in sel) / total:.0%} of time)")
    seen: set[tuple[float, float]] = set()
    for p in sorted(shown, key=lambda p: -p.time_s):
        spot = (round(p.intensity, 1), round(p.flops_per_s / 1e9))
        if spot in seen:
            continue  # identical layers sit on one spot: label it once
        seen.add(spot)
        ax.annotate(p.name, (p.intensity, p.flops_per_s), fontsize=6, xytext=(4, -8), textcoords="offset points")
        if len(seen) == 6:
            break
    ax.set(xscale="log", yscale="log", xlim=(x_lo, x_hi * 6), xlabel="arithmetic intensity (FLOP / DRAM byte)",
           ylabel="achieved FLOP/s (per GPU)")
    note = f"; {left_out} kernel(s) without FLOPs or DRAM bytes not drawn" if left_out else ""
    ax.set_title(f"{Path(result.model).name} on {target.name}: {result.phase}, batch {result.batch}, "
                 f"prompt {result.prompt_len}{', generate ' + str(result.gen_len) if result.phase == 'generate' else ''}"
                 f"{note}", fontsize=9)
    ax.grid(True, which="both", alpha=0.2)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return points
