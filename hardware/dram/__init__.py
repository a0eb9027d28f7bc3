"""DRAM command-level timing (Ramulator 2.0 style): standards as YAML data, a timing-constraint table,
per-bank state machines in a :class:`Channel`, and a small open-row controller with refresh.

Numbers and their sources: ``hardware/presets/dram/*.yaml`` and ``docs/research/dram_pim.md``.
"""

from hardware.dram.channel import BankAddress, Channel, DramProtocolError
from hardware.dram.commands import Command
from hardware.dram.controller import OpenRowController, ServiceResult, service
from hardware.dram.standard import DramStandard, load_standard, standard_from_dict
from hardware.dram.timing import AIM_TABLE, BASE_TABLE, TimingConstraint, latency_cycles

__all__ = [
    "AIM_TABLE",
    "BASE_TABLE",
    "BankAddress",
    "Channel",
    "Command",
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
