"""The FPGA target preset schema: device resources, clock, off-chip memory and power, each with unit and source.

Resource counts are whole-device figures unless a preset's source says "user-available" (Alveo cards lose part of
the fabric to the shell). ``dsp_mult_a_bits`` x ``dsp_mult_b_bits`` is the signed multiplier of one DSP slice
(DSP48E2: 27 x 18; Versal DSP58: 27 x 24); products wider than that take several DSPs, products no wider than
``lut_mult_max_bits`` on both operands are built in LUTs. ``usable_fraction`` is how much of each resource a
design may use and still close timing (FINN's default limits are 0.7-0.8; see docs/research/fpga.md 1).

``energy_per_dsp_mac`` is the dynamic energy of one DSP slice doing one full-width multiply-accumulate;
``offchip_energy_per_bit`` that of moving one bit to or from the off-chip memory (HBM or DDR). The large-model
mapper (:mod:`mapping.fpga.mapper`) charges both. Resources, clock and DSP widths must be > 0; ``uram``,
``offchip_*`` (a bare device has no board memory) and ``lut_mult_max_bits`` (no LUT multipliers) may be 0.
"""

from __future__ import annotations

from typing import ClassVar

from hardware.quantity import Bytes, BytesPerSecond, Count, Hertz, Joules, JoulesPerBit, Ratio, Watts, require_positive
from hardware.targets import TargetBase


class FpgaTarget(TargetBase):
    """One FPGA device on a board (kind ``fpga``)."""

    KIND: ClassVar[str] = "fpga"

    part: str
    dsp: Count
    lut: Count
    ff: Count
    bram36: Count
    uram: Count
    clock: Hertz
    offchip_capacity: Bytes
    offchip_bandwidth: BytesPerSecond
    dsp_mult_a_bits: Count
    dsp_mult_b_bits: Count
    lut_mult_max_bits: Count
    static_power: Watts
    usable_fraction: Ratio
    dsp_efficiency: Ratio
    energy_per_dsp_mac: Joules
    offchip_energy_per_bit: JoulesPerBit

    _positive = require_positive("dsp", "lut", "ff", "bram36", "clock", "dsp_mult_a_bits", "dsp_mult_b_bits")

    @property
    def clock_hz(self) -> float:
        """The fabric clock in Hz."""
        return self.clock.si

    def capacity(self) -> dict[str, int]:
        """Resource name -> count on the part (dsp, lut, ff, bram36, uram)."""
        return {"dsp": self.dsp.n, "lut": self.lut.n, "ff": self.ff.n, "bram36": self.bram36.n, "uram": self.uram.n}
