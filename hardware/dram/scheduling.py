"""Request schedulers: pick which queued request's next command issues this cycle.

Interface: ``pick(buffer, ctrl, clk, guard, bus) -> (request or None, earliest)``. ``buffer`` is a list of
:class:`~hardware.dram.memory_controller.Request`; the scheduler sets each request's ``command`` (its next
command, :meth:`RequestController.next_command`), skips (with ``guard``) those whose command would close a bank
whose active request has not finished, and returns
the request to issue now (its command legal at ``clk``) or None, plus the earliest cycle any examined request's
command becomes legal (the controller skips idle cycles up to it). ``bus`` (0 row, 1 column; None: any): only
requests whose next command goes on that command bus are candidates (split-bus standards, one slot per bus).

- ``frfcfs``: first ready, first come first served, as Ramulator 2's FRFCFS (CMU-SAFARI/ramulator2 @c5b1c3a
  src/ramulator/controller/scheduler/impl/frfcfs.cpp): the oldest request whose next command can issue now wins,
  so a row hit (its RD is ready) goes ahead of an older miss whose ACT must still wait (tRRD, tFAW, tRP).
- ``fcfs``: strictly the oldest eligible request; nothing issues while its command waits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hardware.dram.registry import Registry

if TYPE_CHECKING:
    from hardware.dram.memory_controller import Request, RequestController

SCHEDULERS: Registry[type] = Registry("scheduler", "--scheduler")
_NEVER = 1 << 62


@SCHEDULERS.register("frfcfs")
class FrFcfs:
    name = "frfcfs"

    @staticmethod
    def pick(buffer: list[Request], ctrl: RequestController, clk: int,
             guard: bool = False, bus: int | None = None) -> tuple[Request | None, int]:
        earliest = ctrl.channel.earliest
        nxt = ctrl.next_command
        epoch = ctrl.epoch
        closes = ctrl.closes
        ordered = ctrl.ordered(buffer)
        busy = ctrl.active_per_bank if guard and ctrl.active else None
        on_bus = ctrl.bus_of
        soonest = _NEVER
        best = None
        memo: dict = {}  # (command, bank) -> earliest legal cycle: timing does not depend on the row or column
        for req in buffer:
            # a request's next command depends only on its bank's state (epoch); its legal cycle only grows while
            # the command stays the same, so a cached cycle in the future still means "not ready"
            bank = req.bank
            if req.epoch != epoch[bank]:
                req.epoch = epoch[bank]
                req.command = nxt(req)
                req.bound = -1
            if busy is not None and busy[bank] and closes[req.command]:
                continue  # would close a bank whose active request has not finished
            if bus is not None and on_bus[req.command] != bus:
                continue  # another command bus's slot
            t = req.bound
            if t <= clk:
                key = (req.command, bank)
                t = memo.get(key)
                if t is None:
                    t = memo[key] = earliest(req.command, req.address, clk)
                req.bound = t
            if t == clk:
                if best is None or req.arrive < best.arrive:
                    best = req
                    if ordered:
                        break
            elif t < soonest:
                soonest = t
        return best, (clk if best is not None else soonest)


@SCHEDULERS.register("fcfs")
class Fcfs:
    name = "fcfs"

    @staticmethod
    def pick(buffer: list[Request], ctrl: RequestController, clk: int,
             guard: bool = False, bus: int | None = None) -> tuple[Request | None, int]:
        nxt = ctrl.next_command
        busy = ctrl.active_per_bank if guard and ctrl.active else None
        oldest = None
        for req in buffer:
            req.command = nxt(req)
            req.epoch = -1
            if busy is not None and busy[req.bank] and ctrl.closes[req.command]:
                continue
            if bus is not None and ctrl.bus_of[req.command] != bus:
                continue
            if oldest is None or req.arrive < oldest.arrive:
                oldest = req
                if ctrl.ordered(buffer):
                    break
        if oldest is None:
            return None, _NEVER
        t = ctrl.channel.earliest(oldest.command, oldest.address, clk)
        return (oldest, clk) if t == clk else (None, t)
