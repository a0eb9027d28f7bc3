"""A tiny in-order open-row controller over one :class:`~hardware.dram.channel.Channel`, with all-bank refresh.

Requests are served in the order given (no FR-FCFS reordering). Per request: row hit -> RD/WR; bank closed
(miss) -> ACT, RD/WR; other row open (conflict) -> PRE, ACT, RD/WR. Every tREFI cycles an all-bank REF is due:
PREA if any bank is open, then REF, which blocks ACTs for tRFC.

The commands come from the standard's data: ``requests`` (read, write), ``refresh`` (command, interval) and the
commands' ``opens``/``closes`` (the one-bank opener and closer, the all-bank closer).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hardware.dram.channel import Channel
from hardware.dram.standard import DramStandard
from hardware.errors import HwsimError


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
        std = channel.standard
        roles = {"open one bank": std.command_role(level="bank", opens=True),
                 "close one bank": std.command_role(level="bank", closes=True)}
        if refresh and std.refresh is not None:
            roles["close every bank"] = std.command_role(level="channel", all_banks=True, closes=True)
        missing = [what for what, name in roles.items() if name is None]
        if missing:
            raise HwsimError(f"DRAM standard '{std.name}': the open-row controller needs a command to {missing[0]} "
                             "(declare one in commands:, with opens/closes)")
        self.channel = channel
        self.refresh = refresh and std.refresh is not None
        cmd = channel.command
        self.act, self.pre = cmd(roles["open one bank"]), cmd(roles["close one bank"])
        self.rd, self.wr = cmd(std.requests.read), cmd(std.requests.write)
        self.act2 = cmd(std.activation.second) if std.activation else None  # LPDDR5 ACT-2
        if self.refresh:
            self.prea, self.ref = cmd(roles["close every bank"]), cmd(std.refresh.command)
            self.interval = channel.params[std.refresh.interval]
            self.next_refresh = self.interval
        else:
            self.next_refresh = self.interval = 0

    def _refresh_if_due(self, result: ServiceResult) -> None:
        ch = self.channel
        while self.refresh and ch.last_issue + 1 >= self.next_refresh:
            if any(row is not None for row in ch.open_row):
                ch.issue(self.prea, at=self.next_refresh)
            ch.issue(self.ref, at=self.next_refresh)
            result.refreshes += 1
            self.next_refresh += self.interval

    def service(self, requests: Iterable[tuple[bool, int, int, int]], at: int = 0) -> ServiceResult:
        """Serve ``(is_write, flat_bank, row, column)`` requests in order from cycle ``at``."""
        ch = self.channel
        before = dict(ch.counts)
        result = ServiceResult(cycles=at)
        issue = ch.issue
        bank_address = ch.bank_address
        per_group = ch.banks_per_group
        act, pre, rd, wr = self.act, self.pre, self.rd, self.wr
        rd_done = ch.data_cycles(rd)  # Channel.data_done of the read / write
        wr_done = ch.data_cycles(wr)
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
                if self.act2 is not None:
                    issue(self.act2, addr, at)
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
