"""The FPGA target preset schema: device resources, clock, off-chip memory and power, each with unit and source.

Resource counts are whole-device figures unless a preset's source says "user-available" (Alveo cards lose part of
the fabric to the shell). ``dsp_mult_a_bits`` x ``dsp_mult_b_bits`` is the signed multiplier of one DSP slice
(DSP48E2: 27 x 18; Versal DSP58: 27 x 24); products wider than that take several DSPs, products no wider than
``lut_mult_max_bits`` on both operands are built in LUTs. ``usable_fraction`` is how much of each resource a
design may use and still close timing (FINN's default limits are 0.7-0.8; see docs/research/fpga.md 1).

``energy_per_dsp_mac`` is the dynamic energy of one DSP slice doing one full-width multiply-accumulate;
``offchip_energy_per_bit`` that of moving one bit to or from the off-chip memory (HBM or DDR). The large-model
mapper (:mod:`mapping.fpga.mapper`) charges both. Resources, clock and DSP widths must be > 0; ``offchip_*``
(a bare device has no board memory) and ``lut_mult_max_bits`` (no LUT multipliers) may be 0.

Every field is read by a model; :data:`FIELD_USE` says when: ``part``, ``lut``, ``ff``, ``bram36``,
``lut_mult_max_bits`` and ``usable_fraction`` only by ``hwsim hls`` (the hls4ml pipeline estimate and its fit
check), never by ``hwsim simulate`` or a sweep. UltraRAM is not a field: no design hwsim estimates places
anything in it (the presets keep the datasheet count as a comment).
"""

from __future__ import annotations

from typing import ClassVar

from hardware.dram import attached
from hardware.dram.attached import AttachedMemory, require_memory, standard_dram
from hardware.field_use import ALWAYS, FieldUse, Settings
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
    #: the board's off-chip memory as channels of a DRAM standard (``hardware.dram.attached``); read with
    #: ``--set dram=standard``, which streams at its peak x its simulated efficiency instead of ``offchip_bandwidth``
    memory: AttachedMemory | None = None

    _positive = require_positive("dsp", "lut", "ff", "bram36", "clock", "dsp_mult_a_bits", "dsp_mult_b_bits")

    @property
    def clock_hz(self) -> float:
        """The fabric clock in Hz."""
        return self.clock.si

    def with_standard_dram(self) -> FpgaTarget:
        """This board with ``offchip_bandwidth`` = the memory section's peak x the efficiency its DRAM standard's
        request-level controller sustains on streaming reads (``--set dram=standard``)."""
        mem = require_memory(self.name, self.memory)
        stream = mem.streaming()
        return self.model_copy(update={"offchip_bandwidth": BytesPerSecond(
            value=mem.peak_bandwidth() * stream.efficiency / 1e9, unit="GB/s",
            source=f"derived: {mem.describe()} x {stream.describe()}")})

    def capacity(self) -> dict[str, int]:
        """Resource name -> count on the part (dsp, lut, ff, bram36)."""
        return {"dsp": self.dsp.n, "lut": self.lut.n, "ff": self.ff.n, "bram36": self.bram36.n}


def _never_simulated(s: Settings, target: dict) -> bool:
    return False


def _value(target: dict, field: str) -> float:
    """A quantity field's value in a preset's data (0 when absent)."""
    node = target.get(field)
    return float(node.get("value", 0) or 0) if isinstance(node, dict) else 0.0


HLS_ONLY = FieldUse("only by `hwsim hls` (the hls4ml pipeline estimate), not by `hwsim simulate`", _never_simulated)

#: When each field is read (see :mod:`hardware.field_use`); a sweep runs ``simulate``, so HLS-only fields are not
#: sweepable.
FIELD_USE: dict[str, FieldUse] = {
    "part": HLS_ONLY,
    "dsp": ALWAYS,
    "lut": HLS_ONLY,
    "ff": HLS_ONLY,
    "bram36": FieldUse("by `hwsim hls`, and by the memory-capacity check, where it binds only without off-chip "
                       "memory (a bare device: offchip_capacity 0)", lambda s, t: not _value(t, "offchip_capacity")),
    "clock": ALWAYS,
    "offchip_capacity": ALWAYS,  # the memory-capacity check
    "offchip_bandwidth": FieldUse("always, except with --set dram=standard (then memory: gives it)",
                                  lambda s, t: not standard_dram(s, t)),
    **attached.FIELD_USE,
    "dsp_mult_a_bits": ALWAYS,
    "dsp_mult_b_bits": ALWAYS,
    "lut_mult_max_bits": HLS_ONLY,  # the large-model mapper assumes a DSP array (no LUT multipliers)
    "static_power": ALWAYS,
    "usable_fraction": HLS_ONLY,
    "dsp_efficiency": FieldUse("unless --set efficiency=X overrides it", lambda s, t: "efficiency" not in s.options),
    "energy_per_dsp_mac": ALWAYS,
    "offchip_energy_per_bit": ALWAYS,
}
