"""A tiny in-order open-row controller over one :class:`~hardware.dram.channel.Channel`, with all-bank refresh.

Requests are served in the order given (no FR-FCFS reordering). Per request: row hit -> RD/WR; bank closed
(miss) -> ACT, RD/WR; other row open (conflict) -> PRE, ACT, RD/WR. Every tREFI cycles an all-bank REF is due:
PREA if any bank is open, then REF, which blocks ACTs for tRFC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hardware.dram.channel import Channel
from hardware.dram.commands import Command
from hardware.dram.standard import DramStandard


@dataclass
class ServiceResult:
    """Outcome of :meth:`OpenRowController.service`; ``cycles`` is when the last data beat finished."""

    cycles: int = 0
    row_hits: int = 0
    row_misses: int = 0
    row_conflicts: int = 0
    refreshes: int = 0
    commands: dict[str, int] = field(default_factory=dict)


class OpenRowController:
    """Open-row policy, in-order issue, refresh every tREFI."""

    def __init__(self, channel: Channel, refresh: bool = True) -> None:
        self.channel = channel
        self.refresh = refresh
        self.next_refresh = channel.params["tREFI"]

    def _refresh_if_due(self, result: ServiceResult) -> None:
        ch = self.channel
        while self.refresh and ch.last_issue + 1 >= self.next_refresh:
            if any(row is not None for row in ch.open_row):
                ch.issue(Command.PREA, at=self.next_refresh)
            ch.issue(Command.REF, at=self.next_refresh)
            result.refreshes += 1
            self.next_refresh += ch.params["tREFI"]

    def service(self, requests: Iterable[tuple[bool, int, int, int]], at: int = 0) -> ServiceResult:
        """Serve ``(is_write, flat_bank, row, column)`` requests in order from cycle ``at``."""
        ch = self.channel
        before = dict(ch.counts)
        result = ServiceResult(cycles=at)
        for is_write, flat_bank, row, column in requests:
            self._refresh_if_due(result)
            addr = ch.bank_address(flat_bank, row, column)
            b = ch._flat(addr)
            open_row = ch.open_row[b]
            if open_row == row:
                result.row_hits += 1
            else:
                if open_row is None:
                    result.row_misses += 1
                else:
                    result.row_conflicts += 1
                    ch.issue(Command.PRE, addr, at)
                    self._refresh_if_due(result)
                ch.issue(Command.ACT, addr, at)
            cmd = Command.WR if is_write else Command.RD
            t = ch.issue(cmd, addr, at)
            result.cycles = max(result.cycles, ch.data_done(cmd, t))
        result.commands = {k: v - before.get(k, 0) for k, v in ch.counts.items() if v != before.get(k, 0)}
        return result


def service(standard: DramStandard, requests: Iterable[tuple[bool, int, int, int]], refresh: bool = True) -> ServiceResult:
    """Serve ``requests`` on a fresh channel of ``standard`` with an open-row controller."""
    return OpenRowController(Channel(standard), refresh=refresh).service(requests)
