"""Large models on an FPGA: layer-sequential execution, weights streamed from off-chip memory.

Each op of the workload is one task on resource ``fpga`` (ops run one after another, as a layer-sequential
overlay does).

Time. A matrix product takes ``max(MACs / (DSPs * clock * m * efficiency), off-chip bytes / bandwidth)``: bound
by the DSP array or by streaming its weights (and KV-cache reads) from off-chip memory. ``m`` is the MACs one DSP
completes per cycle at the operands' formats (:func:`hardware.fpga.dense.macs_per_dsp`): 2 for int8/int4 x
int8/int4 (AMD WP486 packing), 1 for fp16/bf16 (an 11 x 11 significand product fits one 27 x 18 DSP48E2), 1/2
for fp32 (24 x 24 takes two). The operands are the activations and, for a product with a weight, the weights;
for an attention product reading the KV cache, the KV-cache format. Other ops are bound by their bytes at the
off-chip bandwidth, or by one element per DSP lane per cycle (independent of format). ``options['efficiency']``
overrides the preset's ``dsp_efficiency``.

Energy (dynamic, per task): ``MACs / m * energy_per_dsp_mac`` (DSP-slice cycles spent, each at the preset's
full-width MAC energy; a non-matrix op one DSP-slice operation per FLOP) plus ``off-chip bytes * 8 *
offchip_energy_per_bit``; split into actions ``dsp_mac`` and ``offchip``. Static power comes from the preset.
Both energies are preset figures with their sources (UNCONFIRMED; see the FPGA presets).
"""

from __future__ import annotations

from hardware.errors import HwsimError
from hardware.fpga.dense import DspShape, macs_per_dsp
from hardware.fpga.spec import FpgaTarget
from mapping.workloads import Workload
from simulator.program import Program, Resource, Task

#: Format assumed for a tensor class the workload leaves at the model's own type (``simulate`` fills fp16, the
#: FPGA native format, before mapping; this only applies to workloads built by hand).
DEFAULT_DTYPE = "float16"


def memory_capacity_bytes(target: FpgaTarget) -> int:
    """Off-chip memory the weights and KV cache must fit in (bytes)."""
    return int(target.offchip_capacity.si)


def operand_dtypes(workload: Workload, op: object) -> tuple[str, str]:
    """(activation format, other operand's format) of a matrix product: weights, KV cache or activations."""
    prec = workload.precision
    act = prec.activations or DEFAULT_DTYPE
    if getattr(op, "weight_bytes", 0) > 0:
        return act, prec.weights or DEFAULT_DTYPE
    if getattr(op, "kv_read_bytes", 0) > 0:
        return act, prec.kv_cache or act
    return act, act


def map_workload(workload: Workload, target: FpgaTarget, options: dict | None = None) -> Program:
    """One task per op on resource ``fpga``, in program order."""
    opts = dict(options or {})
    eff = float(opts.get("efficiency", target.dsp_efficiency.si))
    if not 0 < eff <= 1:
        raise HwsimError(f"option efficiency={eff}: must be in (0, 1]")
    lanes = target.dsp.n * target.clock_hz * eff  # DSP-slice operations per second
    bandwidth = target.offchip_bandwidth.si
    if bandwidth <= 0:
        raise HwsimError(f"target '{target.name}': offchip_bandwidth is 0; a bare device cannot stream a large "
                         "model's weights; use a board preset (u55c, u250, vcu118...) or `hwsim hls` for small models")
    shape = DspShape(target.dsp_mult_a_bits.n, target.dsp_mult_b_bits.n, target.lut_mult_max_bits.n)
    e_mac = target.energy_per_dsp_mac.si
    e_bit = target.offchip_energy_per_bit.si
    tasks: list[Task] = []
    prev: str | None = None
    for i, op in enumerate(workload.ops):
        if op.category in ("view", "folded"):
            continue
        offchip = op.weight_bytes + op.kv_read_bytes + op.kv_write_bytes
        if op.category in ("matmul", "conv"):
            per_dsp = macs_per_dsp(*operand_dtypes(workload, op), shape)
            dsp_ops = op.flops / 2.0 / per_dsp  # DSP-slice cycles the MACs occupy
        else:
            dsp_ops = op.flops  # one element operation per DSP lane per cycle
        duration = max(dsp_ops / lanes, offchip / bandwidth)
        actions = {"dsp_mac": dsp_ops * e_mac, "offchip": offchip * 8 * e_bit}
        name = f"{i}:{op.name}"
        tasks.append(Task(name, "fpga", duration, sum(actions.values()), {"offchip": int(offchip)},
                          [prev] if prev else [], op.name, op.block, actions))
        prev = name
    return Program([Resource("fpga", 1, target.static_power.si)], tasks)
