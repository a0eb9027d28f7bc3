"""The PIM-GPT host ASIC: vector units for softmax, normalisation, activations, residual adds and the
accumulation of partial sums, working out of an on-chip SRAM."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hardware.pim.spec import PimTarget


@dataclass(frozen=True)
class AsicWork:
    """Seconds, joules and SRAM bytes of one piece of vector work."""

    seconds: float
    energy_j: float
    sram_bytes: int


def vector_work(flops: float, sram_bytes: int, target: PimTarget) -> AsicWork:
    """Time (whole clock cycles at the vector throughput) and energy (per FLOP + per SRAM bit) of ``flops``."""
    a = target.asic
    per_cycle = a.vector_flops.si / a.clock.si
    cycles = max(1, math.ceil(flops / per_cycle)) if flops or sram_bytes else 0
    energy = flops * a.energy_per_flop.si + sram_bytes * 8 * a.sram_energy_per_bit.si
    return AsicWork(cycles / a.clock.si, energy, sram_bytes)
