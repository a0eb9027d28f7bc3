"""Refresh managers: which refresh requests the controller queues, and when.

- ``all-bank``: the standard's ``refresh:`` command (an all-bank REF) every ``refresh.interval`` (tREFI) cycles,
  queued at the priority queue at cycles tREFI, 2 tREFI, ... as Ramulator 2's AllBank manager does (CMU-SAFARI/
  ramulator2 @c5b1c3a src/ramulator/controller/refresh/impl/all_bank.cpp, scatter_interval 0). The controller
  closes the open banks first (PREA) and lets requests whose ACT already issued finish.
- ``none``: no refresh.

The standards here declare no per-bank refresh command (REFpb) and no ranks, so there is no per-bank or per-rank
manager yet; a standard that adds them needs one registered here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hardware.dram.registry import Registry

if TYPE_CHECKING:
    from hardware.dram.memory_controller import RequestController
from hardware.errors import HwsimError

REFRESH: Registry[type] = Registry("refresh manager", "--refresh")
_NEVER = 1 << 62


@REFRESH.register("all-bank")
class AllBankRefresh:
    name = "all-bank"

    def __init__(self, ctrl: RequestController) -> None:
        std = ctrl.channel.standard
        if std.refresh is None:
            raise HwsimError(f"--refresh all-bank: DRAM standard '{std.name}' declares no refresh: (use --refresh none)")
        self.ctrl = ctrl
        self.interval = ctrl.channel.params[std.refresh.interval]
        self.next = self.interval

    def tick(self, clk: int) -> None:
        if clk >= self.next:
            self.next += self.interval
            self.ctrl.queue_refresh(clk)

    def next_event(self, clk: int) -> int:
        return self.next


@REFRESH.register("none")
class NoRefresh:
    name = "none"

    def __init__(self, ctrl: RequestController) -> None:
        self.ctrl = ctrl

    def tick(self, clk: int) -> None:
        return None

    def next_event(self, clk: int) -> int:
        return _NEVER
