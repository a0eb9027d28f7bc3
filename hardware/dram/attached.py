"""A target's off-chip memory as channels of a DRAM standard: its peak bandwidth and what streaming reads sustain.

A GPU or FPGA preset's ``memory:`` section names a DRAM standard preset (``hardware/presets/dram/``), how many of
that standard's channels the part has (HBM: channels per stack x stacks; GDDR6 / LPDDR5: x16 channels; DDR4: 64-bit
channels) and its pin rate, each with a source. The peak is channels x ``bus_width_bits`` x pin rate / 8.

The streaming efficiency is simulated, not measured: one channel of the standard (all its pseudo channels) serves a
long run of sequential reads through the request-level controller (:mod:`hardware.dram.memory_controller`: FR-FCFS,
open rows, all-bank refresh, queues of 32) with the RoCoBaRaCh mapping, in which consecutive bursts go to different
banks, as a controller built for streaming interleaves them. The result is bandwidth delivered / the channel's peak,
over at least four refresh intervals, so refresh, row switches and bank-group spacing are in it. It is computed at
the standard preset's own speed bin and applied at the target's pin rate (an assumption: a faster bin keeps the
timings in ns, so its cycle counts and its efficiency differ a little).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator

from hardware.dram.memory_controller import MemorySystem
from hardware.dram.standard import PRESET_DIR, DramStandard, load_standard
from hardware.dram.trace import TraceEntry
from hardware.errors import HwsimError
from hardware.field_use import FieldUse, Settings
from hardware.quantity import BytesPerSecond, Count, require_positive

#: refresh intervals a streaming run spans, at least
REFRESH_INTERVALS = 4
#: the mapping a streaming controller uses (consecutive bursts to different banks)
STREAM_MAPPING = "RoCoBaRaCh"


@dataclass(frozen=True)
class Streaming:
    """A simulated sequential-read run on one channel of a standard."""

    standard: str
    efficiency: float  # delivered / peak, 0..1
    delivered_gbps: float  # GB/s on one channel
    peak_gbps: float  # GB/s on one channel: bus_width_bits x data_rate_gbps / 8
    requests: int
    refreshes: int
    row_hits: int

    def describe(self) -> str:
        """One line: what was simulated and what it gave."""
        return (f"simulated: {self.requests:,} sequential reads on one {self.standard} channel ({STREAM_MAPPING}, "
                f"FR-FCFS, open rows, {self.refreshes} all-bank refreshes) deliver {self.delivered_gbps:.2f} of "
                f"{self.peak_gbps:.2f} GB/s = {self.efficiency:.3f} (hardware/dram/attached.py)")


def channel_peak_gbps(std: DramStandard) -> float:
    """Peak data bandwidth of one channel of ``std`` at its preset's pin rate (GB/s)."""
    org = std.organization
    return org.bus_width_bits.value * org.data_rate_gbps.value / 8


def streaming(std: DramStandard) -> Streaming:
    """Simulate sequential reads on one channel of ``std`` (see the module docstring)."""
    org, p = std.organization, std.params
    pcs = org.pseudo_channels.value
    burst_cycles = max(p["tBL"], p["tCCD_S"])
    refresh_every = p.get("tREFI", 4096)
    n = max(4096, math.ceil(REFRESH_INTERVALS * refresh_every / burst_cycles) * pcs)
    trace = [TraceEntry(False, addr=i * org.burst_bytes.value) for i in range(n)]
    run = MemorySystem(std, pseudo_channels=pcs, mapping=STREAM_MAPPING).run(trace)
    peak = channel_peak_gbps(std)
    delivered = run.bandwidth_gbps
    return Streaming(std.name, min(1.0, delivered / peak), delivered, peak, n, run.refreshes, run.row_hits)


@lru_cache(maxsize=32)
def streaming_of(name: str) -> Streaming:
    """:func:`streaming` of the standard preset ``name``, computed once per process."""
    return streaming(load_standard(name))


def standard_dram(settings: Settings, target: dict) -> bool:
    """Whether a run takes its DRAM bandwidth from the memory: section (``--set dram=standard``)."""
    return settings.option("dram", "preset") == "standard"


#: field-use declarations of a memory: section, shared by the GPU and FPGA schemas (hardware.field_use)
FIELD_USE: dict[str, FieldUse] = {f"memory.{f}": FieldUse("only with --set dram=standard", standard_dram)
                                  for f in ("standard", "channels", "data_rate")}


def require_memory(name: str, memory: AttachedMemory | None) -> AttachedMemory:
    """Target ``name``'s memory: section, or the one-line error ``--set dram=standard`` gives without one."""
    if memory is None:
        raise HwsimError(f"--set dram=standard: target '{name}' has no memory: section naming its DRAM standard "
                         "(hardware/dram/attached.py); add one, or drop the option")
    return memory


class AttachedMemory(BaseModel):
    """``memory:`` of a GPU or FPGA preset: ``channels`` channels of DRAM standard ``standard`` at pin rate
    ``data_rate`` (a bandwidth per pin, e.g. ``{value: 2.43, unit: Gb/s}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    standard: str
    channels: Count
    data_rate: BytesPerSecond

    _positive = require_positive("channels", "data_rate")

    @field_validator("standard")
    @classmethod
    def _known(cls, value: str) -> str:
        if not (PRESET_DIR / f"{value}.yaml").is_file() and not Path(value).is_file():
            known = ", ".join(sorted(p.stem for p in PRESET_DIR.glob("*.yaml")))
            raise ValueError(f"unknown DRAM standard '{value}' (known: {known}; or a standard YAML file)")
        return value

    def dram(self) -> DramStandard:
        """The DRAM standard preset."""
        return load_standard(self.standard)

    def peak_bandwidth(self) -> float:
        """channels x the standard's bus width x the pin rate (bytes/s)."""
        return self.channels.n * self.dram().organization.bus_width_bits.value * self.data_rate.si

    def streaming(self) -> Streaming:
        """What sequential reads sustain on one channel of the standard (cached per process)."""
        return streaming_of(self.standard)

    def describe(self) -> str:
        """How the peak is made up, in words."""
        bits = self.dram().organization.bus_width_bits.value
        return (f"{self.channels.n} x {bits}-bit {self.standard} channels at {self.data_rate.value:g} "
                f"{self.data_rate.unit} per pin = {self.peak_bandwidth() / 1e9:,.1f} GB/s")
