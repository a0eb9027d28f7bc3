"""Row-buffer policies: when the controller closes an open row it is not asked to close.

Interface (hooks the controller calls each cycle): ``pre_schedule(clk)`` may queue a precharge (a maintenance
request in the priority queue), ``upgrade(req, clk)`` may turn the RD/WR about to issue into its auto-precharge form
(RDA/WRA, where the standard declares them in ``auto_precharge:``), ``on_issue(req, command)`` sees every issued command,
``next_event(clk)`` is the earliest cycle ``pre_schedule`` could act (for idle-cycle skipping).

- ``open``: rows stay open until a conflict or a refresh closes them.
- ``closed``: Ramulator 2's ClosedCAP (CMU-SAFARI/ramulator2 @c5b1c3a src/ramulator/controller/rowpolicy/impl/
  closed_cap.cpp): after ``cap`` column accesses to a bank's open row (default 1, the textbook closed-page policy;
  Ramulator's default is 4) the next RD/WR to it becomes RDA/WRA when that is legal now, and a PRE is queued as soon
  as it is legal otherwise. As in Ramulator the upgrade comes after the pick, so the controller's "would close an
  active request" check does not see it: an RDA/WRA may close a bank whose ACT another request issued, and that
  request activates again (it stays one active request; Ramulator 2.1 counts it twice, see
  simulator/validation/dram.py WHY_CLOSED).
- ``timeout``: a row is closed (PRE queued) once no RD/WR has used it for ``timeout`` cycles (default 64) and no
  queued request targets it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hardware.dram.registry import Registry

if TYPE_CHECKING:
    from hardware.dram.memory_controller import Request, RequestController

ROW_POLICIES: Registry[type] = Registry("row policy", "--row-policy")
_NEVER = 1 << 62


class RowPolicy:
    name = ""

    def __init__(self, ctrl: RequestController, **options: object) -> None:
        self.ctrl = ctrl

    def pre_schedule(self, clk: int) -> None:
        return None

    def upgrade(self, req: Request, clk: int) -> None:
        return None

    def on_issue(self, req: Request, command: str) -> None:
        return None

    def next_event(self, clk: int) -> int:
        return _NEVER


@ROW_POLICIES.register("open")
class OpenRow(RowPolicy):
    name = "open"


@ROW_POLICIES.register("closed")
class ClosedRow(RowPolicy):
    name = "closed"

    def __init__(self, ctrl: RequestController, cap: int = 1, **options: object) -> None:
        super().__init__(ctrl)
        self.cap = int(cap)
        banks = ctrl.channel.banks
        self.accesses = [0] * banks
        self.queued = [False] * banks
        self.ap = {ctrl.rd: ctrl.rda, ctrl.wr: ctrl.wra} if ctrl.rda and ctrl.wra else {}

    def _due(self):
        ch = self.ctrl.channel
        for fb in range(ch.banks):
            if self.accesses[fb] >= self.cap and not self.queued[fb] and ch.open_row[fb] is not None:
                yield fb

    def pre_schedule(self, clk: int) -> None:
        ctrl = self.ctrl
        for fb in self._due():
            if ctrl.channel.earliest(ctrl.pre, ctrl.bank_addr[fb], clk) == clk:
                ctrl.queue_precharge(fb, clk)
                self.queued[fb] = True

    def next_event(self, clk: int) -> int:
        ctrl = self.ctrl
        return min((ctrl.channel.earliest(ctrl.pre, ctrl.bank_addr[fb], clk) for fb in self._due()), default=_NEVER)

    def upgrade(self, req: Request, clk: int) -> None:
        ap = self.ap.get(req.command)
        if ap is not None and self.accesses[req.bank] >= self.cap \
                and self.ctrl.channel.earliest(ap, req.address, clk) == clk:
            req.command = req.final = ap

    def on_issue(self, req: Request, command: str) -> None:
        ctrl = self.ctrl
        if ctrl.closes.get(command):
            if ctrl.all_banks.get(command):
                self.accesses = [0] * len(self.accesses)
                self.queued = [False] * len(self.queued)
            else:
                self.accesses[req.bank] = 0
                self.queued[req.bank] = False
        elif command is ctrl.rd or command is ctrl.wr:
            self.accesses[req.bank] += 1


@ROW_POLICIES.register("timeout")
class TimeoutRow(RowPolicy):
    name = "timeout"

    def __init__(self, ctrl: RequestController, timeout: int = 64, **options: object) -> None:
        super().__init__(ctrl)
        self.timeout = int(timeout)
        banks = ctrl.channel.banks
        self.last_use = [0] * banks
        self.queued = [False] * banks

    def _idle(self, clk: int):
        ctrl = self.ctrl
        ch = ctrl.channel
        for fb in range(ch.banks):
            row = ch.open_row[fb]
            if row is None or self.queued[fb] or clk - self.last_use[fb] < self.timeout:
                continue
            if any(r.bank == fb and r.row == row for buf in (ctrl.active, ctrl.reads, ctrl.writes) for r in buf):
                continue
            yield fb

    def pre_schedule(self, clk: int) -> None:
        ctrl = self.ctrl
        for fb in self._idle(clk):
            if ctrl.channel.earliest(ctrl.pre, ctrl.bank_addr[fb], clk) == clk:
                ctrl.queue_precharge(fb, clk)
                self.queued[fb] = True

    def next_event(self, clk: int) -> int:
        ctrl = self.ctrl
        ch = ctrl.channel
        soonest = _NEVER
        for fb in range(ch.banks):
            if ch.open_row[fb] is not None and not self.queued[fb]:
                due = self.last_use[fb] + self.timeout
                soonest = min(soonest, ch.earliest(ctrl.pre, ctrl.bank_addr[fb], max(clk, due)))
        return soonest

    def on_issue(self, req: Request, command: str) -> None:
        ctrl = self.ctrl
        if ctrl.closes.get(command):
            if ctrl.all_banks.get(command):
                self.queued = [False] * len(self.queued)
            else:
                self.queued[req.bank] = False
        if command is ctrl.rd or command is ctrl.wr or command is ctrl.act:
            self.last_use[req.bank] = ctrl.clk
