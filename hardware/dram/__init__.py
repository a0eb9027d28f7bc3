"""DRAM command-level timing (Ramulator 2.0 style): each standard is one YAML file holding its numbers, commands and
timing-constraint table; a generic rule compiler, per-bank state machines in a :class:`Channel`, and a small
open-row controller with refresh read it.

Numbers, rules and their sources: ``hardware/presets/dram/*.yaml`` and ``docs/research/dram_pim.md``.
"""

from hardware.dram.channel import BankAddress, Channel, DramProtocolError
from hardware.dram.commands import Command
from hardware.dram.controller import OpenRowController, ServiceResult, service
from hardware.dram.standard import CommandSpec, DramStandard, load_standard, standard_from_dict
from hardware.dram.timing import TimingConstraint, latency_cycles

__all__ = [
    "BankAddress",
    "Channel",
    "Command",
    "CommandSpec",
    "DramProtocolError",
    "DramStandard",
    "OpenRowController",
    "ServiceResult",
    "TimingConstraint",
    "latency_cycles",
    "load_standard",
    "service",
    "standard_from_dict",
]
