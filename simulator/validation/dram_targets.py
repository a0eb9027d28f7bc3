"""The DRAM standards as the GPU and FPGA targets' memory: a section of ``reports/dram_validation.md``.

For every target preset with a ``memory:`` section (:mod:`hardware.dram.attached`): its peak from channels x bus
width x pin rate against the preset's datasheet bandwidth, and the streaming efficiency the standard's request-level
controller sustains (what ``--set dram=standard`` uses) against the preset's own efficiency, which on most GPUs is a
measured STREAM kernel. Nothing in the DRAM model was fitted to those measurements, so this is an independent check
of the simulated refresh, row-switch and bank-spacing overheads (with the caveats the section states).
"""

from __future__ import annotations

from hardware.dram.attached import REFRESH_INTERVALS, STREAM_MAPPING
from hardware.dram.standard import PRESET_DIR as DRAM_DIR
from hardware.targets import load_target, preset_names


def _kind_of(source: str) -> str:
    low = source.lower()
    if low.startswith("measured"):
        return "measured"
    if "assumption" in low:
        return "assumption"
    if low.startswith("calibrated"):
        return "calibrated"
    return "other"


def rows() -> list[dict]:
    """One row per target preset with a memory: section."""
    out = []
    for name in preset_names():
        t = load_target(name)
        mem = getattr(t, "memory", None)
        if mem is None:
            continue
        stream = mem.streaming()
        if t.kind == "gpu":
            declared, eff, src = t.dram_bandwidth.si, t.dram_efficiency.si, t.dram_efficiency.source
            kind = _kind_of(src)
        else:
            declared, eff, kind = t.offchip_bandwidth.si, 1.0, "none (offchip_bandwidth used as is)"
        out.append({"target": name, "kind": t.kind, "memory": mem.describe(), "peak": mem.peak_bandwidth(),
                    "declared": declared, "simulated": stream.efficiency, "preset": eff, "preset_kind": kind,
                    "standard": mem.standard})
    return out


def render() -> str:
    """The Markdown section."""
    data = rows()
    used = {r["standard"] for r in data}
    unused = sorted(p.stem for p in DRAM_DIR.glob("*.yaml") if p.stem not in used and not p.stem.endswith("-aim"))
    out = ["## The standards as the targets' memory (`--set dram=standard`)", "",
           "Every GPU and FPGA board preset whose memory is a standard hwsim ships names it in a `memory:` section "
           "(channels of the standard's bus width at the part's pin rate, `hardware/dram/attached.py`). "
           "`--set dram=standard` then streams at that peak x the efficiency the standard's own request-level "
           f"controller sustains on sequential reads (one channel with all its pseudo channels, {STREAM_MAPPING}, "
           f"FR-FCFS, open rows, all-bank refresh, over {REFRESH_INTERVALS} refresh intervals), instead of the "
           "preset's bandwidth x its `dram_efficiency`. The default stays the preset's: where that efficiency is a "
           "measured STREAM kernel it is better evidence than a simulation of second-hand timings. Nothing was "
           "fitted to the measured efficiencies below, so the comparison checks the simulated overheads; but the "
           "simulation runs the standard preset's own speed bin (HBM2 at 2 Gb/s for an HBM2e part at 3.2 Gb/s, "
           "HBM3 at 6.4 Gb/s for HBM3e), a GPU's memory controller and address hashing are not public, and the "
           "measured kernels include the GPU's own on-chip path, so gaps of several percent are expected.", "",
           "| target | memory | peak / datasheet | simulated streaming efficiency | preset's efficiency (kind) | "
           "simulated vs preset |",
           "|---|---|---:|---:|---:|---:|"]
    for r in data:
        out.append(f"| {r['target']} | {r['memory']} | {r['peak'] / r['declared'] - 1:+.2%} | {r['simulated']:.3f} | "
                   f"{r['preset']:.3f} ({r['preset_kind']}) | {r['simulated'] / r['preset'] - 1:+.1%} |")
    measured = [r for r in data if r["preset_kind"] == "measured"]
    if measured:
        mean = sum(abs(r["simulated"] / r["preset"] - 1) for r in measured) / len(measured)
        out += ["", f"Against the {len(measured)} measured efficiencies: mean |difference| {mean:.1%}."]
    out += ["", "Standards without a target: " + (", ".join(unused) if unused else "none") + ". DDR5: none of the "
            "GPUs and boards modelled has DDR5 memory, and no published PIM device on DDR5 is modelled; it serves the "
            "trace-driven simulator and its Ramulator 2.1 check only."]
    return "\n".join(out) + "\n"
