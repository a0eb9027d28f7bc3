"""Refresh managers: which refresh requests the controller queues, and when.

- ``all-bank``: the standard's ``refresh:`` command (an all-bank REF) every ``refresh.interval`` (tREFI) cycles,
  queued at the priority queue at cycles tREFI, 2 tREFI, ... as Ramulator 2's AllBank manager does (CMU-SAFARI/
  ramulator2 @c5b1c3a src/ramulator/controller/refresh/impl/all_bank.cpp, scatter_interval 0). The controller
  closes the open banks first (PREA) and lets requests whose ACT already issued finish. With several ranks every
  rank gets its REF at the same cycle (Ramulator's rank scope), rank 0 first.
- ``per-bank``: the standard's ``refresh_per_bank:`` command (REFpb) to one bank every ``refresh_per_bank.interval``
  (tREFIpb) cycles, banks in round-robin order (bank group major), as Ramulator 2.1's PerBank manager does
  (src/ramulator/controller/refresh/impl/per_bank.cpp); the controller precharges that bank first. The other banks
  keep serving requests. With several ranks each rank refreshes its own bank of the round at the same cycle (tREFIpb
  is per rank).
- ``same-bank``: the standard's ``refresh_same_bank:`` command (DDR5 REFsb) to one bank index in every bank group
  every ``refresh_same_bank.interval`` (tREFIsb) cycles, bank indices in round-robin order; the controller first
  precharges that bank in every group, and REFsb blocks only those banks (for tRFCsb); the others keep serving
  requests. Ramulator 2.0 / 2.1 declare REFsb and its rules (DDR5.cpp) but ship no manager that issues it, so this
  one follows the per-bank manager's pattern. With several ranks each rank refreshes the same index at once.
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


class _PeriodicRefresh:
    """A refresh command every ``interval`` cycles of the standard's rule named ``field`` (``refresh`` or
    ``refresh_per_bank``); subclasses say what one refresh does."""

    name = ""
    field = ""
    instead = ""  # the --refresh values to suggest when the standard lacks the rule

    def __init__(self, ctrl: RequestController) -> None:
        std = ctrl.channel.standard
        rule = getattr(std, self.field)
        if rule is None:
            raise HwsimError(f"--refresh {self.name}: DRAM standard '{std.name}' declares no {self.field}: "
                             f"(use --refresh {self.instead})")
        self.ctrl = ctrl
        self.interval = ctrl.channel.params[rule.interval]
        self.next = self.interval

    def tick(self, clk: int) -> None:
        if clk >= self.next:
            self.next += self.interval
            self.refresh(clk)

    def refresh(self, clk: int) -> None:
        raise NotImplementedError

    def next_event(self, clk: int) -> int:
        return self.next


@REFRESH.register("all-bank")
class AllBankRefresh(_PeriodicRefresh):
    name = "all-bank"
    field = "refresh"
    instead = "none"

    def refresh(self, clk: int) -> None:
        for rank in range(self.ctrl.ranks):
            self.ctrl.queue_refresh(clk, rank)


class _RoundRobinRefresh(_PeriodicRefresh):
    """A periodic refresh of one bank index at a time, round robin, in every rank."""

    instead = "all-bank or none"

    def __init__(self, ctrl: RequestController) -> None:
        super().__init__(ctrl)
        self.bank = 0

    def refresh(self, clk: int) -> None:
        for rank in range(self.ctrl.ranks):
            self.queue(rank, clk)
        self.bank = (self.bank + 1) % self.banks()

    def queue(self, rank: int, clk: int) -> None:
        """Queue this round's refresh of bank index ``self.bank`` in ``rank``."""
        raise NotImplementedError

    def banks(self) -> int:
        """Bank indices the round robin goes over."""
        raise NotImplementedError


@REFRESH.register("per-bank")
class PerBankRefresh(_RoundRobinRefresh):
    name = "per-bank"
    field = "refresh_per_bank"

    def queue(self, rank: int, clk: int) -> None:
        self.ctrl.queue_bank_refresh(rank * self.ctrl.banks_per_rank + self.bank, clk)

    def banks(self) -> int:
        return self.ctrl.banks_per_rank


@REFRESH.register("same-bank")
class SameBankRefresh(_RoundRobinRefresh):
    name = "same-bank"
    field = "refresh_same_bank"

    def queue(self, rank: int, clk: int) -> None:
        self.ctrl.queue_same_bank_refresh(rank, self.bank, clk)

    def banks(self) -> int:
        return self.ctrl.channel.banks_per_group


@REFRESH.register("none")
class NoRefresh:
    name = "none"

    def __init__(self, ctrl: RequestController) -> None:
        self.ctrl = ctrl

    def tick(self, clk: int) -> None:
        return None

    def next_event(self, clk: int) -> int:
        return _NEVER
