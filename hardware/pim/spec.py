"""Schema of a PIM target preset (kind ``pim``): PIM DRAM channels with per-bank MAC units and a host ASIC.

The DRAM timing and organisation come from a DRAM standard preset (``hardware/presets/dram/``); this file adds
what PIM needs on top: how many PIM channels, the MAC datapath, the global buffer, energy per action, and the
ASIC that does non-linear functions, accumulation and data movement (PIM-GPT's split). Every field is read by a
model; :data:`FIELD_USE` says when.
"""

from __future__ import annotations

from functools import cached_property
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from hardware.dram import DramStandard, load_standard
from hardware.field_use import ALWAYS, FieldUse
from hardware.quantity import Bytes, Count, FlopsPerSecond, Hertz, Joules, JoulesPerBit, Watts, require_positive
from hardware.targets import TargetBase

#: timing parameters :class:`hardware.pim.aim.AimTimer`'s closed forms and command stream read (cycles)
AIM_PARAMS = ("tBL", "tCCD_L", "tCCD_MAC", "tCL", "tCWL", "tCWL_GB", "tMAC", "tRAS", "tRC", "tRCDRD", "tRCDWR", "tREFI",
              "tRFC", "tRP", "tRPab", "tRTP", "tWR")
#: commands its command mode issues
AIM_COMMANDS = ("ACT_AB", "WR_GB", "MAC_ABK", "RD_MAC", "PREA", "REF")


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MacUnit(_Part):
    """Per-bank processing unit: ``lanes`` multipliers feeding an adder tree (one 256-bit column per command).
    The units compute in bf16 (the PIM target's native format, ``simulator.backends.NATIVE_DTYPE``)."""

    lanes: Count

    _positive = require_positive("lanes")


class PimEnergy(_Part):
    """Energy per DRAM/PIM action and background power per channel."""

    act_per_bank: Joules
    mac_all_bank: Joules
    read_burst: Joules
    write_burst: Joules
    refresh: Joules
    io: JoulesPerBit
    background_per_channel: Watts


class Asic(_Part):
    """The PIM-GPT host ASIC: vector units for non-linear functions and accumulation, SRAM traffic, its power.
    (No SRAM size: nothing bounds what the ASIC holds; the preset keeps its assumed size as a comment.)"""

    clock: Hertz
    vector_flops: FlopsPerSecond
    energy_per_flop: Joules
    sram_energy_per_bit: JoulesPerBit
    static_power: Watts

    _positive = require_positive("clock", "vector_flops")


class PimTarget(TargetBase):
    """A PIM system: ``channels`` channels of the ``dram`` standard, every bank with a MAC unit."""

    KIND: ClassVar[str] = "pim"

    dram: str
    channels: Count
    capacity_per_channel: Bytes
    mac: MacUnit
    global_buffer: Bytes
    energy: PimEnergy
    asic: Asic

    _positive = require_positive("channels", "capacity_per_channel", "global_buffer")

    @field_validator("dram")
    @classmethod
    def _aim_standard(cls, name: str) -> str:
        """A DRAM standard preset with the AiM timing section and commands the PIM timer uses (the error is the
        field's)."""
        try:
            std = load_standard(name)
        except Exception as exc:  # noqa: BLE001 - an unknown or broken standard: its message, under this field
            raise ValueError(str(exc)) from None
        if std.aim is None:
            raise ValueError(f"DRAM standard '{name}' has no AiM (PIM) timing section")
        missing = [n for n in AIM_PARAMS if n not in std.params]
        missing += [n for n in AIM_COMMANDS if n not in std.all_commands]
        if missing:
            raise ValueError(f"DRAM standard '{name}' lacks {', '.join(missing)}, which the AiM timer uses")
        return name

    @model_validator(mode="after")
    def _check(self) -> PimTarget:
        if self.kind != "pim":
            raise ValueError("kind must be 'pim' for this schema")
        return self

    @cached_property
    def standard(self) -> DramStandard:
        """The DRAM standard preset this target builds on."""
        return load_standard(self.dram)

    @property
    def banks_per_channel(self) -> int:
        """Banks (each with a MAC unit) per channel."""
        return self.standard.banks

    @property
    def row_bytes(self) -> int:
        """Bytes of one DRAM row (page) per bank."""
        return self.standard.row_bytes

    @property
    def column_bytes(self) -> int:
        """Bytes per column access (one MAC command's operand per bank)."""
        return self.standard.organization.burst_bytes.value


#: When each field is read (see :mod:`hardware.field_use`).
FIELD_USE: dict[str, FieldUse] = {
    "dram": ALWAYS,
    "channels": ALWAYS,
    "capacity_per_channel": ALWAYS,  # the memory-capacity check
    "mac.lanes": ALWAYS,
    "global_buffer": ALWAYS,
    **{f"energy.{k}": ALWAYS for k in ("act_per_bank", "mac_all_bank", "read_burst", "write_burst", "io",
                                        "background_per_channel")},
    "energy.refresh": FieldUse("unless --set refresh=false",
                               lambda s, t: s.option("refresh", True) not in (False, "false", "no", "0", "off")),
    **{f"asic.{k}": ALWAYS for k in ("clock", "vector_flops", "energy_per_flop", "sram_energy_per_bit", "static_power")},
}
