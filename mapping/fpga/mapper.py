"""Large models on an FPGA: layer-sequential execution, weights streamed from off-chip memory.

Each op of the workload is one task on resource ``fpga`` (ops run one after another, as a layer-sequential
overlay does). A matrix product takes ``max(flops / (DSPs * clock * 2 * efficiency), weight bytes / bandwidth)``:
bound by the DSP array (one multiply-accumulate, 2 FLOPs, per DSP per cycle, at ``dsp_efficiency`` of peak) or
by streaming its weights (and KV-cache reads) from off-chip memory. Other ops are bound by their bytes at the
off-chip bandwidth, or by one element per DSP lane per cycle. ``options['efficiency']`` overrides the preset's
``dsp_efficiency``. Energy is not modelled yet (0 J dynamic; static power from the preset).
"""

from __future__ import annotations

from hardware.errors import HwsimError
from hardware.fpga.spec import FpgaTarget
from mapping.workloads import Workload
from simulator.program import Program, Resource, Task


def memory_capacity_bytes(target: FpgaTarget) -> int:
    """Off-chip memory the weights and KV cache must fit in (bytes)."""
    return int(target.offchip_capacity.si)


def map_workload(workload: Workload, target: FpgaTarget, options: dict | None = None) -> Program:
    """One task per op on resource ``fpga``, in program order."""
    opts = dict(options or {})
    eff = float(opts.get("efficiency", target.dsp_efficiency.si))
    if not 0 < eff <= 1:
        raise HwsimError(f"option efficiency={eff}: must be in (0, 1]")
    peak = target.dsp.n * target.clock_hz * 2.0 * eff
    bandwidth = target.offchip_bandwidth.si
    if bandwidth <= 0:
        raise HwsimError(f"target '{target.name}': offchip_bandwidth is 0; a bare device cannot stream a large "
                         "model's weights; use a board preset (u55c, u250, vcu118...) or `hwsim hls` for small models")
    tasks: list[Task] = []
    prev: str | None = None
    for i, op in enumerate(workload.ops):
        if op.category in ("view", "folded"):
            continue
        offchip = op.weight_bytes + op.kv_read_bytes + op.kv_write_bytes
        if op.category in ("matmul", "conv"):
            duration = max(op.flops / peak, offchip / bandwidth)
        else:
            duration = max(op.flops / (peak / 2.0), offchip / bandwidth)
        name = f"{i}:{op.name}"
        tasks.append(Task(name, "fpga", duration, 0.0, {"offchip": int(offchip)}, [prev] if prev else [],
                          op.name, op.block))
        prev = name
    return Program([Resource("fpga", 1, target.static_power.si)], tasks)
