"""Outputs of a simulation: the summary table, a Chrome/Perfetto trace, and a breakdown figure."""

from __future__ import annotations

import json
from pathlib import Path

from simulator.simulate import SimulationResult


def _time(seconds: float) -> str:
    for factor, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if seconds >= factor:
            return f"{seconds / factor:.3f} {unit}"
    return f"{seconds * 1e9:.1f} ns"


def _energy(joules: float) -> str:
    for factor, unit in ((1.0, "J"), (1e-3, "mJ"), (1e-6, "uJ")):
        if joules >= factor:
            return f"{joules / factor:.3f} {unit}"
    return f"{joules * 1e9:.1f} nJ"


def _bytes(n: float) -> str:
    for factor, unit in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= factor:
            return f"{n / factor:.2f} {unit}"
    return f"{n:.0f} B"


def summary_table(r: SimulationResult) -> str:
    """A readable summary: totals, phases, breakdown by block kind, energy by action, traffic by level."""
    lines = [
        f"model      {r.model}",
        f"target     {r.target.name} ({r.target.kind}): {r.target.description}",
        f"workload   {r.phase}: batch {r.batch}, prompt {r.prompt_len}"
        + (f", generate {r.gen_len}" if r.phase == "generate" else "")
        + f"; weights {r.precision.weights}, activations {r.precision.activations}, KV {r.precision.kv_cache}; "
          f"{r.mode} mode",
        f"memory     {_bytes(r.memory_bytes)} of {_bytes(r.capacity_bytes)}",
        *([f"devices    {r.parallel.devices} x {r.target.name}: tensor parallel {r.parallel.tp}, pipeline stages "
           f"{r.parallel.pp}" + f", link {r.parallel.link or 'the GPU preset NVLink/PCIe'}"
           + " (capacity checked per device)"] if r.parallel is not None else []),
        "",
        f"latency    {_time(r.latency_s)}    energy {_energy(r.energy_j)}    {r.tokens_per_s:,.1f} tokens/s    "
        f"{(r.tokens / r.energy_j if r.energy_j else 0):,.2f} tokens/J",
    ]
    for p in r.phases:
        per = f" ({_time(p.latency_s / p.passes)} per pass)" if p.passes > 1 else ""
        lines.append(f"  {p.name:8s} {p.passes:5d} pass(es)  {_time(p.latency_s):>12s}{per}   {_energy(p.energy_j):>12s} "
                     f"(static {_energy(p.static_energy_j)})")
    lines += ["", f"{'block kind':16s} {'time':>12s} {'share':>6s} {'energy':>12s} {'share':>6s} {'bytes':>11s}  "
              "(bytes: moved at every memory level, e.g. GPU DRAM + L2; DRAM alone: --json traffic_bytes)"]
    busy = sum(v["latency_s"] for v in r.block_kinds.values()) or 1.0
    energy = sum(v["energy_j"] for v in r.block_kinds.values()) or 1.0
    for kind, v in sorted(r.block_kinds.items(), key=lambda kv: -kv[1]["latency_s"]):
        lines.append(f"{kind:16s} {_time(v['latency_s']):>12s} {100 * v['latency_s'] / busy:5.1f}% "
                     f"{_energy(v['energy_j']):>12s} {100 * v['energy_j'] / energy:5.1f}% {_bytes(v['bytes']):>11s}")
    if r.energy_by_action:
        lines.append("")
        lines.append("dynamic energy by action: " + ", ".join(
            f"{k} {_energy(v)}" for k, v in sorted(r.energy_by_action.items(), key=lambda kv: -kv[1])))
    static = sum(p.static_energy_j for p in r.phases)
    lines.append(f"static energy: {_energy(static)}")
    if r.traffic_bytes:
        lines.append("traffic: " + ", ".join(f"{k} {_bytes(v)}" for k, v in r.traffic_bytes.items()))
    return "\n".join(lines)


def kernel_table(r: SimulationResult, top: int) -> str:
    """The ``top`` slowest kernels: time, calls, achieved TFLOP/s and GB/s, bound, occupancy."""
    rows = r.kernels()
    if not rows:
        return f"(no per-kernel figures: {r.target.kind} targets are not modelled kernel by kernel)"
    lines = [f"{'kernel':44s} {'time':>11s} {'calls':>6s} {'TFLOP/s':>8s} {'GB/s':>7s} {'bound':>8s} {'occupancy':>9s}"]
    for k in rows[:top]:
        occ = f"{k['occupancy']:.0%}" if k["occupancy"] is not None else "-"
        lines.append(f"{k['kernel'][:44]:44s} {_time(k['time_s']):>11s} {k['calls']:6d} "
                     f"{k['achieved_flops_per_s'] / 1e12:8.2f} {k['achieved_dram_bytes_per_s'] / 1e9:7.0f} "
                     f"{k['bound']:>8s} {occ:>9s}")
    if len(rows) > top:
        lines.append(f"... {len(rows) - top} more (all of them in --json's 'kernels')")
    return "\n".join(lines)


def write_trace(r: SimulationResult, path: str) -> None:
    """A Chrome/Perfetto trace (JSON array format) of the prefill and the first decode steps."""
    events = []
    tids: dict[str, int] = {}
    for phase, rec, offset in r.trace:
        tid = tids.setdefault(rec.task.resource, len(tids) + 1)
        events.append({"name": rec.task.op or rec.task.name, "cat": f"{phase},{rec.task.block}", "ph": "X",
                       "ts": (offset + rec.start_s) * 1e6, "dur": (rec.end_s - rec.start_s) * 1e6, "pid": 1,
                       "tid": tid, "args": {"block": rec.task.block, "energy_j": rec.task.energy_j,
                                            "bytes": dict(rec.task.bytes_by_level)}})
    meta = [{"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": res}} for res, tid in tids.items()]
    meta.append({"name": "process_name", "ph": "M", "pid": 1, "args": {"name": f"{r.target.name}: {r.model}"}})
    Path(path).write_text(json.dumps({"traceEvents": meta + events, "displayTimeUnit": "ns"}))


def write_plot(r: SimulationResult, path: str) -> None:
    """Latency and energy by block kind, and dynamic energy by action, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = sorted(r.block_kinds, key=lambda k: -r.block_kinds[k]["latency_s"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    axes[0].barh(kinds, [r.block_kinds[k]["latency_s"] * 1e3 for k in kinds], color="tab:blue")
    axes[0].set_xlabel("time (ms)")
    axes[0].set_title("latency by block kind")
    axes[1].barh(kinds, [r.block_kinds[k]["energy_j"] * 1e3 for k in kinds], color="tab:orange")
    axes[1].set_xlabel("energy (mJ)")
    axes[1].set_title("energy by block kind (static included)")
    actions = sorted(r.energy_by_action, key=lambda a: -r.energy_by_action[a])
    axes[2].barh(actions, [r.energy_by_action[a] * 1e3 for a in actions], color="tab:green")
    axes[2].set_xlabel("energy (mJ)")
    axes[2].set_title("dynamic energy by action")
    for ax in axes:
        ax.invert_yaxis()
    fig.suptitle(f"{Path(r.model).name} on {r.target.name}: {r.phase}, latency {_time(r.latency_s)}, "
                 f"energy {_energy(r.energy_j)}")
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
