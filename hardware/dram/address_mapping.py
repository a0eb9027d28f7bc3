"""Address mappers: a physical byte address -> (channel, bank group, bank, row, column) of one request.

Names and bit orders are Ramulator 2's (CMU-SAFARI/ramulator2 @c5b1c3a src/ramulator/controller/addr_mapper/impl):
the name lists fields from the most to the least significant bit; ``Ba`` is the bank group and the bank (bank
group in the lower bits for RoBaRaCoCh / RoCoBaRaCh, as Ramulator's level loop does, the bank in the lower bits for
ChRaBaRoCo, whose loop runs the other way); ``Ra`` is the rank (``log2(ranks)`` bits, 0 for one rank). The
lowest ``log2(burst_bytes)`` bits are the byte inside one burst and are dropped. Every field takes ``log2`` of its
count bits, so each count must be a power of two; bits above the top field are ignored (an address wraps modulo
the capacity), as in Ramulator.

- ``RoBaRaCoCh`` (Ramulator's default): channel at the bottom (cache-line interleaving), then column, rank, bank
  group, bank, row.
- ``RoCoBaRaCh``: channel, rank, bank group, bank, column, row (consecutive bursts spread over the banks).
- ``ChRaBaRoCo``: column, row, bank, bank group, rank, channel (one row of one bank after another).
"""

from __future__ import annotations

from typing import NamedTuple

from hardware.dram.registry import Registry
from hardware.dram.standard import DramStandard
from hardware.errors import HwsimError


class Location(NamedTuple):
    """Where one request goes: channel index and the bank address inside that channel."""

    channel: int
    bank_group: int
    bank: int
    row: int
    column: int
    rank: int = 0


def _log2(n: int, what: str, std: str) -> int:
    if n < 1 or n & (n - 1):
        fix = (" (or, for channels, a mapping with the channel lowest: RoBaRaCoCh, RoCoBaRaCh, which interleave any "
               "count by address modulo)") if what == "channels" else ""
        raise HwsimError(f"DRAM standard '{std}': {what} = {n} is not a power of two; address mapping needs 2^k{fix}")
    return n.bit_length() - 1


class AddressMapper:
    """Bit-field mapper; subclasses set ``order``: fields from the least significant bit up."""

    name = ""
    order: tuple[str, ...] = ()

    def __init__(self, standard: DramStandard, channels: int = 1, ranks: int = 1) -> None:
        org = standard.organization
        #: channels interleaved by address modulo (a count that is not a power of two, as GPUs have: 40, 80 ...),
        #: possible when the channel is the lowest field; None: channel bits like every other field
        self.modulo = None
        if channels > 1 and channels & (channels - 1) and self.order and self.order[0] == "channel":
            self.modulo, channels = channels, 1
        counts = {"channel": channels, "rank": ranks, "bank_group": org.bank_groups.value,
                  "bank": org.banks_per_group.value, "row": org.rows.value, "column": org.columns.value}
        self.bits = {f: _log2(n, f + "s" if f in ("channel", "rank") else f, standard.name) for f, n in counts.items()}
        self.offset = _log2(org.burst_bytes.value, "burst_bytes", standard.name)
        self.shifts: dict[str, int] = {}
        pos = self.offset
        for field in self.order:
            self.shifts[field] = pos
            pos += self.bits[field]
        self.capacity_bytes = (1 << pos) * (self.modulo or 1)
        # (shift, mask) per Location field, in Location order
        self._fields = tuple((self.shifts[f], (1 << self.bits[f]) - 1) for f in Location._fields)

    def map(self, addr: int) -> Location:
        """The location of byte address ``addr`` (high bits beyond the capacity are ignored)."""
        if self.modulo:
            unit, low = addr >> self.offset, addr & ((1 << self.offset) - 1)
            rest = ((unit // self.modulo) << self.offset) | low
            return Location(*((rest >> s) & m for s, m in self._fields))._replace(channel=unit % self.modulo)
        return Location(*((addr >> s) & m for s, m in self._fields))

    def unmap(self, loc: Location) -> int:
        """The lowest byte address of ``loc`` (inverse of :meth:`map` for in-range fields)."""
        addr = 0
        channel = loc.channel
        if self.modulo:
            if not 0 <= channel < self.modulo:
                raise ValueError(f"{loc}: channel {channel} out of range 0..{self.modulo - 1}")
            loc = loc._replace(channel=0)
        for value, (shift, mask) in zip(loc, self._fields, strict=True):
            if not 0 <= value <= mask:
                raise ValueError(f"{loc}: field value {value} out of range 0..{mask}")
            addr |= value << shift
        if self.modulo:
            unit = addr >> self.offset
            addr = ((unit * self.modulo + channel) << self.offset) | (addr & ((1 << self.offset) - 1))
        return addr


MAPPERS: Registry[type[AddressMapper]] = Registry("address mapping", "--mapping")


@MAPPERS.register("RoBaRaCoCh")
class RoBaRaCoCh(AddressMapper):
    name = "RoBaRaCoCh"
    order = ("channel", "column", "rank", "bank_group", "bank", "row")


@MAPPERS.register("RoCoBaRaCh")
class RoCoBaRaCh(AddressMapper):
    name = "RoCoBaRaCh"
    order = ("channel", "rank", "bank_group", "bank", "column", "row")


@MAPPERS.register("ChRaBaRoCo")
class ChRaBaRoCo(AddressMapper):
    name = "ChRaBaRoCo"
    order = ("column", "row", "bank", "bank_group", "rank", "channel")


def address_mapper(name: str, standard: DramStandard, channels: int = 1, ranks: int = 1) -> AddressMapper:
    """The mapper registered as ``name`` (case-insensitive) for ``standard`` with ``channels`` channels of ``ranks``
    ranks each."""
    return MAPPERS.get(name)(standard, channels, ranks)
