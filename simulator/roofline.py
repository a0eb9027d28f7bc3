"""Roofline plot of a GPU simulation: every kernel of a :class:`SimulationResult` against the target's ceilings.

x: arithmetic intensity (useful FLOPs per DRAM byte); y: achieved FLOP/s (useful FLOPs / kernel time). Ceilings: the
datasheet peak of every tensor format the part has and CUDA-core fp32 (horizontal), DRAM bandwidth (the slanted
line: datasheet, and datasheet x ``dram_efficiency`` dashed), and the calibrated tensor ceiling (peak x
``tensor_efficiency``) for the format the run used.

Where each number comes from (``result.ops`` has time, energy and bytes per kernel, but no FLOPs and bytes summed
over all memory levels, L2 included):

- **time and DRAM bytes**: the workloads of the run are rebuilt from the model (same phase, batch, prompt and
  generation lengths and precision as the result) and mapped again with the same options; each task's duration and
  ``hbm`` bytes are summed per (phase, kernel name). ``result.ops`` merges prefill and decode kernels of the same
  name, so it cannot separate them; it is used as a check instead: the rebuilt durations summed per kernel name must
  equal ``result.ops[kernel]["latency_s"]`` (mapping is deterministic), else the call is an error (wrong model,
  ``--dim`` bindings or options);
- **FLOPs**: from the rebuilt workloads' ops, grouped into kernels by the GPU mapper's rules
  (``mapping/gpu/mapper.py``): a weight matmul is kernel ``<block>.<role or op type>``; in an attention block with a
  score matmul every other op is ``<block>.attention``; the remaining ops of a block are ``<block>.fused``. These are
  the workload's useful FLOPs (2 per multiply-accumulate; attention's are the score, softmax and PV ops as costed
  by the IR), not the padded FLOPs of the kernel models' tiles.

With ``--tp N`` every kernel is drawn per GPU (FLOPs and bytes / N; durations are per GPU already). Kernels without
FLOPs (all-reduce, pure copies) cannot sit on a log-scale roofline and are counted in the title instead.
Call from the CLI, after ``result = run_simulation(...)``::

    write_roofline(result, target, plot_roofline, model=model, options=options)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardware.errors import HwsimError
from hardware.gpu.spec import TENSOR_DTYPES
from hardware.targets import TargetBase
from mapping.gpu.mapper import block_runs
from mapping.workloads import Model, Workload
from simulator.simulate import SimulationResult, default_precision


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


def kernel_flops(workload: Workload) -> dict[str, float]:
    """Useful FLOPs per GPU kernel name of ``workload``, grouped as ``mapping.gpu.mapper`` groups ops."""
    flops: dict[str, float] = defaultdict(float)
    for block, kind, ops in block_runs(workload.ops):
        label = block or "other"
        gemms = [o for o in ops if o.matmul is not None and o.matmul.weight_operand]
        rest = [o for o in ops if o not in gemms]
        for o in gemms:
            flops[f"{label}.{o.role or o.op_type.lower()}"] += o.flops
        if kind == "attention" and any(o.role == "score" for o in rest):
            flops[f"{label}.attention"] += sum(o.flops for o in rest)
        elif rest:
            flops[f"{label}.fused"] += sum(o.flops for o in rest)
    return dict(flops)


def _workloads(result: SimulationResult, model: Model) -> list[Workload]:
    """The passes of the run, rebuilt as ``simulator.simulate.simulate`` builds them."""
    precision = default_precision(result.target, result.precision)
    b, p, g = result.batch, result.prompt_len, result.gen_len
    if result.phase == "prefill":
        return [model.prefill(b, p, precision)]
    if result.phase == "decode":
        return [model.decode(b, p, precision, prompt_len=p)]
    out = [model.prefill(b, p, precision)]
    out += [model.decode(b, c, precision, prompt_len=p) for c in range(p, p + g - 1)]
    return out


def _kind(name: str) -> str:
    last = name.rsplit(".", 1)[-1]
    if last in ("attention", "fused", "all_reduce"):
        return last
    return "lm_head" if "lm_head" in name else "gemm"


def roofline_points(result: SimulationResult, target: TargetBase, model: Model | None = None,
                    options: dict[str, Any] | None = None) -> list[RooflinePoint]:
    """Every kernel of ``result`` with its FLOPs, DRAM bytes and time (see the module docstring)."""
    if target.kind != "gpu":
        raise HwsimError(f"roofline plots need a GPU target; {target.name} is a {target.kind} target")
    from mapping.gpu.mapper import map_workload

    options = {k: v for k, v in (options or {}).items() if not k.startswith("_")}
    tp = int(options.get("tp", 1) or 1)
    model = model or Model(result.model)
    flops: dict[tuple[str, str], float] = defaultdict(float)
    dram: dict[tuple[str, str], float] = defaultdict(float)
    time_s: dict[tuple[str, str], float] = defaultdict(float)
    for w in _workloads(result, model):
        for name, f in kernel_flops(w).items():
            flops[(w.phase, name)] += f
        for task in map_workload(w, target, options).tasks:
            dram[(w.phase, task.op)] += task.bytes_by_level.get("hbm", 0)
            time_s[(w.phase, task.op)] += task.duration_s
    # the rebuilt run must be the simulated one: same kernels, same time per kernel over all passes
    by_name: dict[str, float] = defaultdict(float)
    for (_, name), t in time_s.items():
        by_name[name] += t
    recorded = {name: row["latency_s"] for name, row in result.ops.items()}
    if set(by_name) != set(recorded) or any(abs(by_name[n] - recorded[n]) > 1e-6 * max(recorded[n], 1e-9)
                                            for n in recorded):
        raise HwsimError("the rebuilt workloads do not reproduce the simulation's kernels; pass the simulated model "
                         "(with its --dim bindings) and the same options (tp, attention, ...) to write_roofline")
    return [RooflinePoint(name, _kind(name), flops.get((phase, name), 0.0) / tp, dram.get((phase, name), 0.0) / tp, t,
                          phase) for (phase, name), t in time_s.items()]


def write_roofline(result: SimulationResult, target: TargetBase, path: str | Path, model: Model | None = None,
                   options: dict[str, Any] | None = None) -> list[RooflinePoint]:
    """Draw every kernel of ``result`` on ``target``'s roofline as a PNG at ``path``; returns the points.

    ``model`` (the :class:`Model` that was simulated; rebuilt from ``result.model`` if omitted, which loses any
    ``--dim`` bindings) and ``options`` (the simulate options: ``tp``, ``attention``, ``tf32``, ``kv_heads``) must be
    those of the simulation for the DRAM bytes and FLOPs to match it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = roofline_points(result, target, model, options)
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
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return points
