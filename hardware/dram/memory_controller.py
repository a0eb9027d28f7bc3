"""A request-level DRAM memory system: address mapping, per-channel read/write queues with write-drain watermarks,
a pluggable scheduler, row policy and refresh manager over the command-level :class:`~hardware.dram.channel.Channel`.

The controller follows Ramulator 2's GenericDDR controller cycle by cycle (CMU-SAFARI/ramulator2 @c5b1c3a
src/ramulator/controller/controller_base.cpp, impl/generic_ddr_controller.cpp), so the two can be compared on the
same trace:

- a request arrives into the read queue or the write queue (each ``queue`` entries, default 32; a full queue
  refuses it and the frontend retries next cycle). A read of an address a queued write will store is served from
  that write (write-to-read forwarding: done the next cycle, no DRAM access); a write to an address already queued
  is merged into it.
- each cycle, after completed reads leave and the refresh manager and row policy had their turn, at most one
  command issues: first for a request whose ACT has issued (the "active" set, one per bank), else for the head of
  the priority queue (refresh, row-policy precharges), else -- only when the priority queue is empty -- from the
  write queue in write mode and the read queue otherwise. Write mode starts when the write queue holds more than
  ``high_watermark`` x its size (or no read waits) and ends when it holds fewer than ``low_watermark`` x its size
  and a read waits. A request's next command is ACT (bank closed), PRE (another row open) or its RD/WR; a command
  that would close a bank with an active request waits.
- a row hit / miss / conflict is counted when a request's first command issues; a read is done ``tCL + tBL`` after
  its RD (the standard's ``data:``), a write ``tCWL + tBL`` after its WR.

Cycles in which nothing can issue and no request can arrive are skipped (the next cycle anything can happen is the
earliest legal issue cycle of a waiting command, the next refresh or row-policy action), which changes no result.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hardware.dram.address_mapping import Location, address_mapper
from hardware.dram.channel import BankAddress, Channel
from hardware.dram.energy import EnergyReport, add_reports, command_kinds, energy
from hardware.dram.ranks import RankedChannel
from hardware.dram.refresh import REFRESH
from hardware.dram.row_policy import ROW_POLICIES
from hardware.dram.scheduling import SCHEDULERS
from hardware.dram.standard import DramStandard
from hardware.dram.trace import TraceEntry
from hardware.errors import HwsimError

READ, WRITE, MAINTENANCE = 0, 1, 2
_NEVER = 1 << 62
#: requests accepted between two calls of :meth:`MemorySystem.run`'s progress callback
PROGRESS_EVERY = 4096


class Request:
    """One request in a controller queue; ``command`` is its next command, ``final`` the one that completes it."""

    __slots__ = ("kind", "key", "address", "bank", "row", "arrive", "final", "command", "counted", "epoch", "bound")

    def __init__(self, kind: int, key: object, address: BankAddress, bank: int, arrive: int, final: str) -> None:
        self.kind = kind
        self.key = key
        self.address = address
        self.bank = bank
        self.row = address.row
        self.arrive = arrive
        self.final = final
        self.command = None
        self.counted = False
        self.epoch = -1  # bank epoch at which ``command`` was derived (scheduler cache)
        self.bound = -1  # a lower bound of ``command``'s legal issue cycle (scheduler cache)


@dataclass
class ControllerStats:
    """Counters of one controller. Latencies in cycles; ``read_latencies`` includes forwarded reads (1 cycle)."""

    reads: int = 0
    writes: int = 0
    reads_forwarded: int = 0
    writes_merged: int = 0
    reads_served: int = 0
    writes_served: int = 0
    row_hits: int = 0
    row_misses: int = 0
    row_conflicts: int = 0
    refreshes: int = 0
    read_latencies: list[int] = field(default_factory=list)
    write_latencies: list[int] = field(default_factory=list)
    last_done: int = 0


class RequestController:
    """One channel's controller (see the module docstring)."""

    def __init__(self, standard: DramStandard, *, scheduler: str = "frfcfs", row_policy: str = "open",
                 refresh: str = "all-bank", queue: int = 32, low_watermark: float = 0.2, high_watermark: float = 0.8,
                 policy_options: dict | None = None, ranks: int = 1, pseudo_channels: int = 1,
                 one_command_per_cycle: bool = False) -> None:
        if ranks > 1 and pseudo_channels > 1:
            raise HwsimError(f"--ranks {ranks} with --pseudo-channels {pseudo_channels}: give one of them")
        if pseudo_channels > 1:
            ch = self.channel = RankedChannel(standard, pseudo_channels, pseudo_channels=True)
            ranks = pseudo_channels
        else:
            ch = self.channel = Channel(standard) if ranks == 1 else RankedChannel(standard, ranks)
        #: ranks (or pseudo channels) on this channel and banks per rank (flat bank numbers run rank-major:
        #: ``rank * banks_per_rank + ...``)
        self.ranks = ranks
        self.banks_per_rank = ch.banks // ranks
        std = standard
        roles = {"open one bank": std.command_role(level="bank", opens=True),
                 "close one bank": std.command_role(level="bank", closes=True)}
        missing = [what for what, name in roles.items() if name is None]
        if missing:
            raise HwsimError(f"DRAM standard '{std.name}': the request controller needs a command to {missing[0]} "
                             "(declare one in commands:, with opens/closes)")
        if queue < 1 or not 0 <= low_watermark <= high_watermark <= 1:
            raise HwsimError(f"queue size {queue} must be >= 1 and watermarks 0 <= low {low_watermark} <= high "
                             f"{high_watermark} <= 1")
        cmd = ch.command
        self.act, self.pre = cmd(roles["open one bank"]), cmd(roles["close one bank"])
        all_closer = std.command_role(level="channel", all_banks=True, closes=True)
        self.prea = cmd(all_closer) if all_closer else None
        self.rd, self.wr = cmd(std.requests.read), cmd(std.requests.write)
        ap = std.auto_precharge
        self.rda, self.wra = (cmd(ap.read), cmd(ap.write)) if ap else (None, None)
        self.ref = cmd(std.refresh.command) if std.refresh else None
        #: the second part of a two-part activation (LPDDR5 ACT-2), or None
        self.act2 = cmd(std.activation.second) if std.activation else None
        self.refpb = cmd(std.refresh_per_bank.command) if std.refresh_per_bank else None
        self.refsb = cmd(std.refresh_same_bank.command) if std.refresh_same_bank else None
        specs = std.all_commands
        self.closes = {cmd(n): s.closes for n, s in specs.items()}
        self.opens = {cmd(n): s.opens for n, s in specs.items()}
        self.all_banks = {cmd(n): s.all_banks for n, s in specs.items()}
        buses = std.command_buses
        #: command bus of each command (0 row or the only bus, 1 column); ``dual``: a row and a column command may
        #: issue in one cycle (a split-bus standard, unless ``one_command_per_cycle``: Ramulator's GenericDDR)
        self.bus_of = {cmd(n): 1 if buses is not None and n in buses.column else 0 for n in specs}
        self.dual = buses is not None and not one_command_per_cycle
        self.read_latency = ch.data_cycles(self.rd)
        self.write_latency = ch.data_cycles(self.wr)
        per_group, per_rank = ch.banks_per_group, self.banks_per_rank
        #: bank address of flat bank ``fb`` (the Channel's open_row index ``rank * banks_per_rank + bank_group *
        #: banks_per_group + bank``)
        self.bank_addr = [BankAddress((fb % per_rank) // per_group, fb % per_group, 0, 0, fb // per_rank)
                          for fb in range(ch.banks)]
        self.queue = queue
        self.low, self.high = low_watermark, high_watermark
        self.reads: list[Request] = []
        self.writes: list[Request] = []
        self.active: list[Request] = []
        self.priority: list[Request] = []
        self.active_per_bank = [0] * ch.banks
        #: per flat bank, bumped whenever a command opens or closes it (schedulers cache next commands per epoch)
        self.epoch = [0] * ch.banks
        self.write_keys: set = set()
        self.pending: deque[tuple[int, int]] = deque()  # (depart, arrive) of reads, in completion order
        self.write_mode = False
        self.clk = 0
        self.wake = 0
        self.stats = ControllerStats()
        # bank-state bookkeeping for the energy model, per rank (each rank's devices draw their own background
        # current): open banks now, since when, cycles with any of the rank's banks open; banks closed (all ranks)
        self.open_banks = [0] * ranks
        self.banks_since = [0] * ranks
        self.active_cycles = [0] * ranks
        self.banks_closed = 0
        self.scheduler = SCHEDULERS.get(scheduler)
        self.refresh = REFRESH.get(refresh)(self)
        self.policy = ROW_POLICIES.get(row_policy)(self, **(policy_options or {}))

    # ------------------------------------------------------------------ requests in
    def accepts(self, is_write: bool, key: object) -> bool:
        """Whether :meth:`send` would take this request now."""
        if key in self.write_keys:
            return True
        return len(self.writes if is_write else self.reads) < self.queue

    def send(self, is_write: bool, key: object, address: BankAddress, bank: int) -> bool:
        """Offer a request at the current cycle; False if its queue is full (the frontend retries)."""
        st = self.stats
        clk = self.clk
        if key in self.write_keys:  # forwarding / merging
            if is_write:
                st.writes += 1
                st.writes_merged += 1
            else:
                st.reads += 1
                st.reads_forwarded += 1
                self.pending.append((clk + 1, clk))
            return True
        if is_write:
            if len(self.writes) >= self.queue:
                return False
            self.writes.append(Request(WRITE, key, address, bank, clk, self.wr))
            self.write_keys.add(key)
            st.writes += 1
        else:
            if len(self.reads) >= self.queue:
                return False
            self.reads.append(Request(READ, key, address, bank, clk, self.rd))
            st.reads += 1
        return True

    def queue_refresh(self, clk: int, rank: int = 0) -> None:
        """Queue an all-bank refresh of ``rank`` (refresh managers call this); its ``bank`` is the rank's first."""
        self.priority.append(Request(MAINTENANCE, None, BankAddress(rank=rank), rank * self.banks_per_rank, clk,
                                     self.ref))

    def queue_bank_refresh(self, bank: int, clk: int) -> None:
        """Queue a per-bank refresh of flat bank ``bank`` (the per-bank refresh manager calls this)."""
        self.priority.append(Request(MAINTENANCE, None, self.bank_addr[bank], bank, clk, self.refpb))

    def queue_same_bank_refresh(self, rank: int, bank: int, clk: int) -> None:
        """Queue a same-bank refresh (REFsb) of bank index ``bank`` in every bank group of ``rank``: first a precharge
        of that bank in each group (a no-op where it is closed), then the REFsb (the same-bank refresh manager)."""
        per_group, first = self.channel.banks_per_group, rank * self.banks_per_rank
        for fb in range(first + bank, first + self.banks_per_rank, per_group):
            self.queue_precharge(fb, clk)
        self.priority.append(Request(MAINTENANCE, None, self.bank_addr[first + bank], first + bank, clk, self.refsb))

    def queue_precharge(self, bank: int, clk: int) -> None:
        """Queue a precharge of flat bank ``bank`` (row policies call this)."""
        self.priority.append(Request(MAINTENANCE, None, self.bank_addr[bank], bank, clk, self.pre))

    # ------------------------------------------------------------------ scheduling helpers
    def next_command(self, req: Request) -> str | None:
        """The command ``req`` needs next (None: a queued precharge whose bank is already closed)."""
        open_row = self.channel.open_row
        if req.kind == MAINTENANCE:
            if req.final is self.ref:
                n = self.banks_per_rank
                return self.ref if open_row[req.bank:req.bank + n].count(None) == n else self.prea
            if req.final is self.refpb and req.final is not None:
                return self.refpb if open_row[req.bank] is None else self.pre
            if req.final is self.refsb and req.final is not None:
                # the precharges queued ahead of it closed the bank in the other groups; none can reopen while the
                # priority queue is not empty (requests whose ACT issued are never precharged under them)
                return self.refsb if open_row[req.bank] is None else self.pre
            return self.pre if open_row[req.bank] is not None else None
        row = open_row[req.bank]
        if row is None:
            return self.act
        if row == req.row:
            return req.final
        if row < 0 and self.act2 is not None:  # activating: ACT-2 completes it (a request to another row waits)
            return self.act2 if ~row == req.row else self.pre
        return self.pre

    def ordered(self, buffer: list) -> bool:
        """True when ``buffer`` is in arrival order (the read and write queues; not the active set)."""
        return buffer is not self.active

    def _would_close_active(self, req: Request) -> bool:
        cmd = req.command
        if not self.closes.get(cmd) or not self.active:
            return False
        if self.all_banks.get(cmd):  # every bank of the request's rank
            return self.ranks == 1 or any(self.active_per_bank[req.bank:req.bank + self.banks_per_rank])
        return self.active_per_bank[req.bank] > 0

    def _set_write_mode(self) -> None:
        nw, size = len(self.writes), self.queue
        if not self.write_mode:
            if nw > self.high * size or not self.reads:
                self.write_mode = True
        elif nw < self.low * size and self.reads:
            self.write_mode = False

    # ------------------------------------------------------------------ one cycle
    def tick(self) -> bool:
        """Advance one cycle; issue at most one command (split buses: one per bus). Returns whether one issued (else
        ``wake`` is the earliest cycle anything can happen)."""
        clk = self.clk = self.clk + 1
        pend = self.pending
        if pend and pend[0][0] <= clk:
            lat = self.stats.read_latencies
            while pend and pend[0][0] <= clk:
                depart, arrive = pend.popleft()
                lat.append(depart - arrive)
        self.refresh.tick(clk)
        self.policy.pre_schedule(clk)
        if self.dual:
            return self._tick_buses(clk)
        cand, buf, soonest = self._slot(clk, None)
        if cand is None:
            self.wake = min(soonest, self.refresh.next_event(clk + 1), self.policy.next_event(clk + 1),
                            pend[0][0] if pend else _NEVER)
            return False
        self._issue(cand, buf, clk)
        self.wake = clk + 1
        return True

    def _slot(self, clk: int, bus: int | None) -> tuple[Request | None, list, int]:
        """The request to issue at ``clk`` on command bus ``bus`` (None: the channel's one bus) and the buffer holding
        it, picking in order among active requests (not on a row bus), the priority queue's head, then the read or
        write queue; else None and the earliest cycle something could issue."""
        pick = self.scheduler.pick
        soonest = _NEVER
        buf = self.active
        if buf and bus != 0:
            cand, soonest = pick(buf, self, clk, False, bus)
            if cand is not None:
                return cand, buf, soonest
        prio = self.priority
        while prio:
            head = prio[0]
            cmd = head.command = self.next_command(head)
            if cmd is None:
                del prio[0]
                continue
            if (bus is None or self.bus_of[cmd] == bus) and not self._would_close_active(head):
                t = self.channel.earliest(cmd, head.address, clk)
                if t == clk:
                    return head, prio, soonest
                soonest = min(soonest, t)
            break
        if not prio:
            self._set_write_mode()
            buf = self.writes if self.write_mode else self.reads
            if buf:
                cand, t = pick(buf, self, clk, True, bus)
                return cand, buf, min(soonest, t)
        return None, buf, soonest

    def _tick_buses(self, clk: int) -> bool:
        """One cycle of a split-bus channel, as Ramulator 2.1's HBM controller (src/ramulator/controller/impl/
        hbm_controller_base.cpp): a column slot (bus 1), then a row slot (bus 0), each picked by :meth:`_slot` among
        the commands on its bus."""
        issued = False
        soonest = _NEVER
        for bus in (1, 0):
            cand, buf, t = self._slot(clk, bus)
            soonest = min(soonest, t)
            if cand is not None:
                self._issue(cand, buf, clk)
                issued = True
        if issued:
            self.wake = clk + 1
            return True
        self.wake = min(soonest, self.refresh.next_event(clk + 1), self.policy.next_event(clk + 1),
                        self.pending[0][0] if self.pending else _NEVER)
        return False

    def _issue(self, req: Request, buf: list, clk: int) -> None:
        st = self.stats
        self.policy.upgrade(req, clk)
        req.epoch = -1
        if not req.counted and req.kind != MAINTENANCE:
            req.counted = True
            row = self.channel.open_row[req.bank]
            if row == req.row:
                st.row_hits += 1
            elif row is not None and row >= 0:  # an activating bank has no row open yet (a miss, as Ramulator)
                st.row_conflicts += 1
            else:
                st.row_misses += 1
        cmd = req.command
        t = self.channel.issue(cmd, req.address, clk)
        if t != clk:  # the scheduler checked legality at clk
            raise AssertionError(f"{cmd} at {req.address} legal at {t}, not at {clk}")
        self.policy.on_issue(req, cmd)
        if self.opens.get(cmd) or self.closes.get(cmd):
            self._track_banks(clk, req.bank // self.banks_per_rank)
            if self.all_banks.get(cmd):
                if self.ranks == 1:
                    self.epoch = [e + 1 for e in self.epoch]
                else:
                    first = req.address.rank * self.banks_per_rank
                    for b in range(first, first + self.banks_per_rank):
                        self.epoch[b] += 1
            else:
                self.epoch[req.bank] += 1
        if cmd is req.final:
            if buf is self.active:
                self.active_per_bank[req.bank] -= 1
            elif buf is self.writes:
                self.write_keys.discard(req.key)
            buf.remove(req)
            if req.kind == READ:
                st.reads_served += 1
                self.pending.append((clk + self.read_latency, req.arrive))
                done = clk + self.read_latency
            elif req.kind == WRITE:
                st.writes_served += 1
                done = clk + self.write_latency
                st.write_latencies.append(done - req.arrive)
            else:
                done = clk
                if cmd is self.ref or cmd is self.refpb or cmd is self.refsb:
                    st.refreshes += 1
            if done > st.last_done:
                st.last_done = done
        elif self.opens.get(cmd) and buf is not self.active and len(self.active) < self.channel.banks:
            self.active.append(req)
            self.active_per_bank[req.bank] += 1
            if buf is self.writes:
                self.write_keys.discard(req.key)
            buf.remove(req)

    def _track_banks(self, clk: int, rank: int) -> None:
        """After a command that opened or closed banks of ``rank``: count the banks closed and the cycles with any of
        the rank's banks open."""
        n = self.banks_per_rank
        first = rank * n
        now = n - self.channel.open_row[first:first + n].count(None)
        before = self.open_banks[rank]
        if before:
            self.active_cycles[rank] += clk - self.banks_since[rank]
        if now < before:
            self.banks_closed += before - now
        self.open_banks[rank], self.banks_since[rank] = now, clk

    def background_cycles(self, cycles: int) -> tuple[int, int]:
        """(active, precharged) standby cycles over a run of ``cycles``, summed over ranks: each rank is in active
        standby while any of its banks is open (IDD3N), else in precharged standby (IDD2N), so an idle run of R
        ranks costs R times one rank's background (JESD79-4 / Micron TN-40-07 give IDD per device; every rank's
        devices draw it)."""
        active = 0
        for r in range(self.ranks):
            a = self.active_cycles[r] + (max(0, cycles - self.banks_since[r]) if self.open_banks[r] else 0)
            active += min(a, cycles)
        return active, self.ranks * cycles - active

    def energy(self, cycles: int) -> EnergyReport:
        """This channel's energy over ``cycles`` (the run's length) from its command counts and each rank's bank
        states (refresh: one REF's energy per rank refreshed, the REF count being per rank)."""
        active, precharged = self.background_cycles(cycles)
        counts = {kind: 0 for kind in ("activate", "read", "write", "refresh", "refresh_per_bank",
                                       "refresh_same_bank")}
        for name, kind in command_kinds(self.channel.standard).items():
            counts[kind] += self.channel.counts.get(self.channel.command(name), 0)
        return energy(self.channel.standard, activates=counts["activate"], precharges=self.banks_closed,
                      reads=counts["read"], writes=counts["write"], refreshes=counts["refresh"],
                      refreshes_per_bank=counts["refresh_per_bank"], refreshes_same_bank=counts["refresh_same_bank"],
                      active_cycles=active,
                      precharged_cycles=precharged)

    def busy(self) -> bool:
        """Whether requests (not refreshes) are still queued or in flight."""
        return bool(self.reads or self.writes or self.active or self.pending)


@dataclass
class RunResult:
    """Outcome of :meth:`MemorySystem.run`, summed over channels. ``cycles``: until the last request's data is
    done. ``accept_*``: the state when the last request was accepted into a queue, which is where Ramulator 2's
    trace frontends stop the simulation (its ``cycles``, row counts and ``avg_read_latency``)."""

    standard: str
    mapping: str
    scheduler: str
    row_policy: str
    channels: int
    requests: int
    reads: int
    writes: int
    cycles: int
    tck_ns: float
    burst_bytes: int
    row_hits: int
    row_misses: int
    row_conflicts: int
    reads_forwarded: int
    writes_merged: int
    refreshes: int
    read_latency_mean: float
    read_latency_p99: float
    write_latency_mean: float
    write_latency_p99: float
    commands: dict[str, int]
    accept_cycles: int
    accept_row_hits: int
    accept_row_misses: int
    accept_row_conflicts: int
    accept_read_latency_mean: float
    ranks: int = 1
    pseudo_channels: int = 1
    read_latencies: list[int] = field(default_factory=list, repr=False)
    write_latencies: list[int] = field(default_factory=list, repr=False)
    #: IDD energy over ``cycles`` (hardware/dram/energy.py), None when the standard has no IDD values
    energy: EnergyReport | None = field(default=None, repr=False)

    @property
    def bandwidth_gbps(self) -> float:
        """Delivered data bandwidth in GB/s (every request moves one burst)."""
        return self.requests * self.burst_bytes / (self.cycles * self.tck_ns) if self.cycles else 0.0

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if not k.endswith("_latencies") and k != "energy"}
        out["energy"] = self.energy.as_dict() if self.energy is not None else None
        out["bandwidth_GBps"] = round(self.bandwidth_gbps, 4)
        return out


def _p99(values: list[int]) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return float(s[min(len(s) - 1, math.ceil(0.99 * len(s)) - 1)])


def _mean(values: list[int]) -> float:
    return sum(values) / len(values) if values else 0.0


#: The most channels one simulated memory system may have: far above any real one (an 8-stack HBM3 GPU has 128
#: channels), low enough that a mistyped count is refused instead of building that many controllers.
MAX_CHANNELS = 1024

class MemorySystem:
    """``channels`` request controllers behind one address mapper, driven by a trace frontend that offers one
    request per cycle (Ramulator 2's LoadStoreTrace / ReadWriteTrace with both clock ratios 1)."""

    def __init__(self, standard: DramStandard, *, channels: int = 1, mapping: str = "RoBaRaCoCh",
                 scheduler: str = "frfcfs", row_policy: str = "open", refresh: str = "all-bank", queue: int = 32,
                 low_watermark: float = 0.2, high_watermark: float = 0.8, policy_options: dict | None = None,
                 ranks: int = 1, pseudo_channels: int = 1, one_command_per_cycle: bool = False) -> None:
        if channels < 1:
            raise HwsimError(f"--channels {channels}: need at least 1")
        if channels > MAX_CHANNELS:
            raise HwsimError(f"--channels {channels}: more than {MAX_CHANNELS}, more than any memory system has "
                             "(8 HBM3 stacks: 128 channels); give the channels of one system")
        for option, n in (("--ranks", ranks), ("--pseudo-channels", pseudo_channels)):
            if n < 1:
                raise HwsimError(f"{option} {n}: need at least 1")
        limit = standard.organization.pseudo_channels.value
        if pseudo_channels > limit:
            raise HwsimError(f"--pseudo-channels {pseudo_channels}: DRAM standard '{standard.name}' has {limit} pseudo "
                             f"channel(s) per channel (organization.pseudo_channels)")
        self.standard = standard
        self.ranks = ranks
        self.pseudo_channels = pseudo_channels
        # pseudo channels take the rank's place in the mappings (Ramulator 2's HBM level order)
        self.mapper = address_mapper(mapping, standard, channels, max(ranks, pseudo_channels))
        self.options = dict(scheduler=scheduler, row_policy=row_policy)
        self.controllers = [RequestController(standard, scheduler=scheduler, row_policy=row_policy, refresh=refresh,
                                              queue=queue, low_watermark=low_watermark, high_watermark=high_watermark,
                                              policy_options=policy_options, ranks=ranks, pseudo_channels=pseudo_channels,
                                              one_command_per_cycle=one_command_per_cycle) for _ in range(channels)]

    def locate(self, entry: TraceEntry, where: str = "trace") -> Location:
        """The location of one trace entry (a byte address through the mapper, or an address vector checked)."""
        if entry.vector is None:
            return self.mapper.map(entry.addr)
        vec = entry.vector
        if len(vec) == 5:  # ch, bg, bank, row, column: rank 0
            vec = (vec[0], 0) + vec[1:]
        if len(vec) != 6:
            raise HwsimError(f"{where}: address vector {','.join(map(str, vec))} needs 6 values ch,ra,bg,ba,row,col "
                             "(or 5 without the rank)")
        org = self.standard.organization
        limits = (len(self.controllers), max(self.ranks, self.pseudo_channels), org.bank_groups.value,
                  org.banks_per_group.value, org.rows.value, org.columns.value)
        for name, v, n in zip(("channel", "rank", "bank group", "bank", "row", "column"), vec, limits, strict=True):
            if v >= n:
                fix = " (raise --ranks)" if name == "rank" else ""
                raise HwsimError(f"{where}: address vector {','.join(map(str, vec))}: {name} {v} out of range "
                                 f"0..{n - 1}{fix}")
        return Location(vec[0], *vec[2:], rank=vec[1])

    def run(self, trace: Sequence[TraceEntry], source: str = "trace",
            progress: Callable[[int, int], None] | None = None) -> RunResult:
        """Serve ``trace`` (each entry once, in order) to completion; ``source`` (the trace file) names a request
        whose address is out of range; ``progress(accepted, total)`` is called every :data:`PROGRESS_EVERY` requests
        accepted, and once at the end."""
        ctrls = self.controllers
        per_group = self.standard.organization.banks_per_group.value
        per_rank = self.standard.banks
        reqs = []
        for i, e in enumerate(trace):
            loc = self.locate(e, f"{source} request {i + 1}")
            key = e.addr if e.vector is None else e.vector
            reqs.append((loc.channel, e.is_write, key,
                         BankAddress(loc.bank_group, loc.bank, loc.row, loc.column, loc.rank),
                         loc.rank * per_rank + loc.bank_group * per_group + loc.bank))
        n = len(reqs)
        i = 0
        clk = 0
        snap = None
        while True:
            if i < n:
                c, is_write, key, addr, bank = reqs[i]
                if ctrls[c].send(is_write, key, addr, bank):
                    i += 1
                    if i == n:
                        snap = self._snapshot(clk)
                    if progress is not None and not i % PROGRESS_EVERY:
                        progress(i, n)
            elif not any(ct.busy() for ct in ctrls):
                break
            issued = False
            for ct in ctrls:
                issued |= ct.tick()
            clk += 1
            if not issued and (i >= n or not ctrls[reqs[i][0]].accepts(reqs[i][1], reqs[i][2])):
                wake = min(ct.wake for ct in ctrls)
                if wake >= _NEVER:
                    if i < n or any(ct.busy() for ct in ctrls):
                        raise AssertionError("memory system stalled: nothing can ever issue")
                elif wake - 1 > clk:
                    clk = wake - 1
                    for ct in ctrls:
                        ct.clk = clk
        if progress is not None:
            progress(n, n)
        return self._result(n, snap)

    def _snapshot(self, clk: int) -> tuple:
        sts = [ct.stats for ct in self.controllers]
        served = sum(s.reads_served for s in sts)
        lat = sum(sum(s.read_latencies) for s in sts)
        return (clk, sum(s.row_hits for s in sts), sum(s.row_misses for s in sts), sum(s.row_conflicts for s in sts),
                lat / served if served else 0.0)

    def _result(self, n: int, snap: tuple) -> RunResult:
        sts = [ct.stats for ct in self.controllers]
        commands: dict[str, int] = {}
        for ct in self.controllers:
            for k, v in ct.channel.counts.items():
                commands[str(k)] = commands.get(str(k), 0) + v
        rl = [x for s in sts for x in s.read_latencies]
        wl = [x for s in sts for x in s.write_latencies]
        org = self.standard.organization
        return RunResult(
            standard=self.standard.name, mapping=self.mapper.name, scheduler=self.options["scheduler"],
            row_policy=self.options["row_policy"], channels=len(self.controllers), ranks=self.ranks,
            pseudo_channels=self.pseudo_channels, requests=n,
            reads=sum(s.reads for s in sts), writes=sum(s.writes for s in sts),
            cycles=max(s.last_done for s in sts) if n else 0, tck_ns=org.tCK_ns.value, burst_bytes=org.burst_bytes.value,
            row_hits=sum(s.row_hits for s in sts), row_misses=sum(s.row_misses for s in sts),
            row_conflicts=sum(s.row_conflicts for s in sts), reads_forwarded=sum(s.reads_forwarded for s in sts),
            writes_merged=sum(s.writes_merged for s in sts), refreshes=sum(s.refreshes for s in sts),
            read_latency_mean=_mean(rl), read_latency_p99=_p99(rl), write_latency_mean=_mean(wl),
            write_latency_p99=_p99(wl), commands=dict(sorted(commands.items())),
            accept_cycles=snap[0], accept_row_hits=snap[1], accept_row_misses=snap[2], accept_row_conflicts=snap[3],
            accept_read_latency_mean=snap[4], read_latencies=rl, write_latencies=wl, energy=self._energy(sts))

    def _energy(self, sts: list[ControllerStats]) -> EnergyReport | None:
        idd = self.standard.idd
        if idd is None or idd.unavailable:
            return None
        cycles = max((s.last_done for s in sts), default=0)
        return add_reports([ct.energy(cycles) for ct in self.controllers])


def simulate(standard: DramStandard, trace: Sequence[TraceEntry], **options) -> RunResult:
    """Serve ``trace`` on a fresh :class:`MemorySystem` of ``standard`` (options as its constructor's)."""
    return MemorySystem(standard, **options).run(trace)
