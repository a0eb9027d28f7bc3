"""Refresh managers: which refresh requests the controller queues, and when.

- ``all-bank``: the standard's ``refresh:`` command (an all-bank REF) every ``refresh.interval`` (tREFI) cycles,
  queued at the priority queue at cycles tREFI, 2 tREFI, ... as Ramulator 2's AllBank manager does (CMU-SAFARI/
  ramulator2 @c5b1c3a src/ramulator/controller/refresh/impl/all_bank.cpp, scatter_interval 0). The controller
  closes the open banks first (PREA) and lets requests whose ACT already issued finish.
- ``per-bank``: the standard's ``refresh_per_bank:`` command (REFpb) to one bank every ``refresh_per_bank.interval``
  (tREFIpb) cycles, banks in round-robin order (bank group major), as Ramulator 2.1's PerBank manager does
  (src/ramulator/controller/refresh/impl/per_bank.cpp); the controller precharges that bank first. The other banks
  keep serving requests.
- ``none``: no refresh.
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


@REFRESH.register("per-bank")
class PerBankRefresh:
    name = "per-bank"

    def __init__(self, ctrl: RequestController) -> None:
        std = ctrl.channel.standard
        if std.refresh_per_bank is None:
            raise HwsimError(f"--refresh per-bank: DRAM standard '{std.name}' declares no refresh_per_bank: "
                             "(use --refresh all-bank or none)")
        self.ctrl = ctrl
        self.interval = ctrl.channel.params[std.refresh_per_bank.interval]
        self.next = self.interval
        self.bank = 0

    def tick(self, clk: int) -> None:
        if clk >= self.next:
            self.next += self.interval
            self.ctrl.queue_bank_refresh(self.bank, clk)
            self.bank = (self.bank + 1) % self.ctrl.channel.banks

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
