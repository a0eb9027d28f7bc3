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
        issue = ch.issue
        bank_address = ch.bank_address
        per_group = ch.banks_per_group
        p = ch.params
        rd_done = p["tCL"] + p["tBL"]  # Channel.data_done of RD / WR
        wr_done = p["tCWL"] + p["tBL"]
        act, pre, rd, wr = Command.ACT, Command.PRE, Command.RD, Command.WR
        cycles = at
        hits = misses = conflicts = 0
        for is_write, flat_bank, row, column in requests:
            if self.refresh and ch.last_issue + 1 >= self.next_refresh:
                self._refresh_if_due(result)
            addr = bank_address(flat_bank, row, column)
            open_row = ch.open_row[addr.bank_group * per_group + addr.bank]
            if open_row == row:
                hits += 1
            else:
                if open_row is None:
                    misses += 1
                else:
                    conflicts += 1
                    issue(pre, addr, at)
                    if self.refresh and ch.last_issue + 1 >= self.next_refresh:
                        self._refresh_if_due(result)
                issue(act, addr, at)
            if is_write:
                done = issue(wr, addr, at) + wr_done
            else:
                done = issue(rd, addr, at) + rd_done
            if done > cycles:
                cycles = done
        result.cycles = cycles
        result.row_hits, result.row_misses, result.row_conflicts = hits, misses, conflicts
        result.commands = {k: v - before.get(k, 0) for k, v in ch.counts.items() if v != before.get(k, 0)}
        return result


def service(standard: DramStandard, requests: Iterable[tuple[bool, int, int, int]], refresh: bool = True) -> ServiceResult:
    """Serve ``requests`` on a fresh channel of ``standard`` with an open-row controller."""
    return OpenRowController(Channel(standard), refresh=refresh).service(requests)
