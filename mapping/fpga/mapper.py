"""Large models on an FPGA: layer-sequential execution, weights streamed from off-chip memory.

Each op of the workload computes on resource ``dsp`` (the DSP array, one op at a time, as a layer-sequential
overlay runs them). An op that reads off-chip data (weights, KV cache) streams it in tiles on resource ``dma``:
its bytes are cut into ``tiles`` equal pieces (``--set tiles=N``, default 8), each loaded into one of two on-chip
tile buffers (double buffering) and then computed on. A tile's load waits for the compute that frees its buffer
(two tiles earlier), a tile's compute for its load; the first tile of an op also waits for the ops whose outputs
it reads. So the DMA streams the next tiles, and the next op's first tiles, while the DSPs compute: an op alone
takes ``max(compute, load)`` plus one tile of the other, and loads of a memory-bound op overlap a compute-bound
neighbour. ``tiles`` is the resolution of the streaming model (the closed form ``max`` is its limit), not a
hardware figure.

Time. A matrix product computes for ``MACs / (DSPs * clock * m * efficiency)`` and loads for ``off-chip bytes /
bandwidth`` (its weights and KV-cache reads and writes). ``m`` is the MACs one DSP
completes per cycle at the operands' formats (:func:`hardware.fpga.dense.macs_per_dsp`): 2 for int8/int4 x
int8/int4 (AMD WP486 packing), 1 for fp16/bf16 (an 11 x 11 significand product fits one 27 x 18 DSP48E2), 1/2
for fp32 (24 x 24 takes two). The operands are the activations and, for a product with a weight, the weights;
for an attention product reading the KV cache, the KV-cache format. Other ops compute one element per DSP lane
per cycle (independent of format). ``options['efficiency']``
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
from mapping.dataflow import Dataflow
from mapping.fpga.options import FpgaOptions
from mapping.program import Program, ProgramBuilder, Resource
from mapping.workloads import Workload

#: Format assumed for a tensor class the workload leaves at the model's own type (``simulate`` fills fp16, the
#: FPGA native format, before mapping; this only applies to workloads built by hand).
DEFAULT_DTYPE = "float16"


#: bytes of one 36 Kb block RAM (AMD UG573, UltraScale Architecture Memory Resources: "36 Kb" block RAM, i.e.
#: 36 x 1024 bits with the parity bits, which an 18- or 36-bit wide weight memory uses as data)
BRAM36_BYTES = 36 * 1024 // 8


def onchip_capacity_bytes(target: FpgaTarget) -> int:
    """Block RAM on the part (bytes): where an hls4ml design keeps a small model's weights."""
    return target.bram36.n * BRAM36_BYTES


def memory_capacity_bytes(target: FpgaTarget) -> int:
    """Memory the weights and KV cache must fit in (bytes): the board's off-chip memory plus the part's block RAM
    (a bare device, with no off-chip memory, still holds a small model on chip, as its hls4ml design does)."""
    return int(target.offchip_capacity.si) + onchip_capacity_bytes(target)


def operand_dtypes(workload: Workload, op: object) -> tuple[str, str]:
    """(activation format, other operand's format) of a matrix product: weights, KV cache or activations."""
    prec = workload.precision
    act = prec.activations or DEFAULT_DTYPE
    if getattr(op, "weight_bytes", 0) > 0:
        return act, prec.weights or DEFAULT_DTYPE
    if getattr(op, "kv_read_bytes", 0) > 0:
        return act, prec.kv_cache or act
    return act, act


#: Memory levels of an FPGA program and their roles.
LEVELS = {"offchip": "dram"}


def map_workload(workload: Workload, target: FpgaTarget, options: FpgaOptions | dict | None = None) -> Program:
    """Loads on ``dma`` and computes on ``dsp``, in program order, double-buffered (see the module docstring)."""
    opts = FpgaOptions.parse(options)
    eff = opts.efficiency if opts.efficiency is not None else target.dsp_efficiency.si
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
    program = ProgramBuilder()
    flow = Dataflow()
    buffers: list[str] = []  # compute tiles in order, each freeing the tile buffer its load filled
    for i, op in enumerate(workload.ops):
        if op.category in ("view", "folded"):
            flow.passed_through(op)
            continue
        offchip = op.weight_bytes + op.kv_read_bytes + op.kv_write_bytes
        if op.category in ("matmul", "conv"):
            per_dsp = macs_per_dsp(*operand_dtypes(workload, op), shape)
            dsp_ops = op.flops / 2.0 / per_dsp  # DSP-slice cycles the MACs occupy
        else:
            dsp_ops = op.flops  # one element operation per DSP lane per cycle
        needs = set(flow.needs(op))
        pieces = opts.tiles if offchip else 1
        last = ""
        for j in range(pieces):
            after = set(needs) if j == 0 else set()
            tag = f"{i}:{op.name}" + (f"#{j}" if pieces > 1 else "")
            if offchip:
                share = offchip / pieces
                load = program.add(after=[buffers[-2]] if len(buffers) >= 2 else [], name=f"{tag}:load",
                                   resource="dma", duration_s=share / bandwidth, energy_j=share * 8 * e_bit,
                                   energy_by_action={"offchip": share * 8 * e_bit},
                                   bytes_by_level={"offchip": int(offchip) // pieces + (j < int(offchip) % pieces)},
                                   op=op.name, block=op.block, kind="load", bound="memory")
                after.add(load.name)
            task = program.add(after=sorted(after), name=tag, resource="dsp", duration_s=dsp_ops / pieces / lanes,
                               energy_j=dsp_ops / pieces * e_mac, energy_by_action={"dsp_mac": dsp_ops / pieces * e_mac},
                               op=op.name, block=op.block, kind=op.category, flops=op.flops / pieces, bound="compute")
            if offchip:
                buffers.append(task.name)
            last = task.name
        flow.produced(op, last)
    resources = [Resource(name="dsp", capacity=1, static_power_w=target.static_power.si),
                 Resource(name="dma", capacity=1)]
    return program.build(resources, LEVELS)
