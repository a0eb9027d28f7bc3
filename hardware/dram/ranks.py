"""A multi-rank channel (or an HBM channel of pseudo channels): one :class:`~hardware.dram.channel.Channel` per
rank behind a shared command bus and the standard's rank-to-rank rules (``ranks:`` in the standard's YAML).

Each rank keeps its own bank states and its whole timing table, so tRRD, tFAW, tCCD, tWTR and refresh are per rank
(JESD79-4 states them per rank; Ramulator 2 and DRAMsim3 put them at rank level). Across ranks two things bind:

- the command bus: one command per cycle on the channel, whatever rank it addresses (with the standard's
  ``command_buses``, one row and one column command per cycle: HBM pseudo channels share both buses);
- the data bus: the standard's ``ranks.constraints``, a following command to rank r waiting ``latency`` cycles
  after the most recent preceding command to any other rank (tRTRS, the DQS hand-over).

Banks are numbered across the channel, rank-major (``rank * banks_per_rank + bank_group * banks_per_group + bank``);
the ranks share one open-row list in that order, so a controller reads any bank's state in one place. A command's
rank is its address's ``rank`` field.

HBM pseudo channels (JESD235 / JESD238 pseudo-channel mode) are the same structure with no rules between them: each
has its own banks, data bus and timing table (tRRD, tFAW, refresh per pseudo channel, Ramulator 2's PseudoChannel
level), and they share the channel's row and column command buses.
"""

from __future__ import annotations

from hardware.dram.channel import BankAddress, Channel, DramProtocolError
from hardware.dram.standard import DramStandard
from hardware.dram.timing import latency_cycles
from hardware.errors import HwsimError

_NOWHERE = BankAddress()


class RankedChannel:
    """``ranks`` ranks of ``standard`` on one channel (the interface of :class:`Channel`, banks across ranks)."""

    def __init__(self, standard: DramStandard, ranks: int, trace: bool = False, *, pseudo_channels: bool = False) -> None:
        """``pseudo_channels``: the ``ranks`` units are HBM pseudo channels (at most the organisation's
        ``pseudo_channels``): separate banks and data buses, shared command buses, no rules between them."""
        option = "--pseudo-channels" if pseudo_channels else "--ranks"
        if ranks < 1:
            raise HwsimError(f"{option} {ranks}: need at least 1")
        if pseudo_channels:
            limit = standard.organization.pseudo_channels.value
            if ranks > limit:
                raise HwsimError(f"--pseudo-channels {ranks}: DRAM standard '{standard.name}' has {limit} pseudo "
                                 f"channel(s) per channel (organization.pseudo_channels)")
        elif ranks > 1 and standard.ranks is None:
            raise HwsimError(f"--ranks {ranks}: DRAM standard '{standard.name}' declares no ranks: section (the "
                             "rules between ranks); use --ranks 1")
        first = Channel(standard, trace)
        self.open_row: list[int | None] = [None] * (ranks * first.banks)
        del first
        self.subs = [Channel(standard, trace, open_row=self.open_row, base=r * len(self.open_row) // ranks)
                     for r in range(ranks)]
        one = self.subs[0]
        self.standard = standard
        self.params = one.params
        self.ranks = ranks
        self.bank_groups = one.bank_groups
        self.banks_per_group = one.banks_per_group
        self.banks_per_rank = one.banks
        self.banks = ranks * one.banks
        self.rows, self.columns = one.rows, one.columns
        self.last_issue = -1
        comp = one._comp
        self.split_bus = comp.split_bus
        #: split buses: per command, (bus, cycles held); the first free cycle of each bus, shared by the ranks
        self._bus = {m: (comp.bus[i], comp.hold[i]) for i, m in enumerate(comp.members)}
        self.bus_free = [0, 0]
        # rank rule k: (preceding command set, cycles); _following[command] -> [(k, cycles)]; _preceding[command] -> [k]
        self._following: dict[str, list[tuple[int, int]]] = {}
        self._preceding: dict[str, list[int]] = {}
        rules = standard.ranks.constraints if standard.ranks is not None and ranks > 1 and not pseudo_channels else ()
        for k, rule in enumerate(rules):
            cycles = latency_cycles(rule.latency, self.params)
            for name in rule.following:
                self._following.setdefault(one.command(name), []).append((k, cycles))
            for name in rule.preceding:
                self._preceding.setdefault(one.command(name), []).append(k)
        never = -1 - max((c for terms in self._following.values() for _, c in terms), default=0)
        #: last issue cycle of rule k's preceding commands, per rank
        self._last = [[never] * ranks for _ in rules]

    # ------------------------------------------------------------------ the Channel interface
    def command(self, name: str) -> str:
        return self.subs[0].command(name)

    def data_cycles(self, command: str) -> int:
        return self.subs[0].data_cycles(command)

    def data_done(self, command: str, issue_cycle: int) -> int:
        return self.subs[0].data_done(command, issue_cycle)

    def bank_address(self, flat_bank: int, row: int = 0, column: int = 0) -> BankAddress:
        """The address of bank ``flat_bank`` (rank-major) with groups interleaved inside the rank as
        :meth:`Channel.bank_address`."""
        if not 0 <= flat_bank < self.banks:
            raise DramProtocolError(f"bank {flat_bank} out of range 0..{self.banks - 1}")
        rank, fb = divmod(flat_bank, self.banks_per_rank)
        return self.subs[rank].bank_address(fb, row, column)._replace(rank=rank)

    @property
    def counts(self) -> dict[str, int]:
        """Commands issued, by name, over every rank."""
        out: dict[str, int] = {}
        for sub in self.subs:
            for k, v in sub.counts.items():
                out[k] = out.get(k, 0) + v
        return out

    @property
    def trace(self) -> list[tuple[int, str, BankAddress]] | None:
        """Issued commands (cycle, command, address with its rank) in issue order, or None when not traced."""
        if self.subs[0].trace is None:
            return None
        return sorted(((t, c, a._replace(rank=r)) for r, sub in enumerate(self.subs) for t, c, a in sub.trace),
                      key=lambda e: e[0])

    @trace.setter
    def trace(self, value: list | None) -> None:
        """Turn tracing on (``[]``) or off (None) on every rank."""
        for sub in self.subs:
            sub.trace = None if value is None else []

    def _bound(self, command: str, address: BankAddress, at: int) -> tuple[int, Channel]:
        r = address.rank
        if not 0 <= r < self.ranks:
            raise DramProtocolError(f"{command}: rank {r} out of range 0..{self.ranks - 1}")
        if self.split_bus:
            bus = self._bus.get(command)
            if bus is None:
                bus = self._bus[self.command(command)]
            t = self.bus_free[bus[0]]
        else:
            t = self.last_issue + 1
        if at > t:
            t = at
        terms = self._following.get(command)
        if terms:
            last = self._last
            for k, cycles in terms:
                for other, cycle in enumerate(last[k]):
                    if other != r and cycle + cycles > t:
                        t = cycle + cycles
        return t, self.subs[r]

    def earliest(self, command: str, address: BankAddress | None = None, at: int = 0) -> int:
        """Earliest legal issue cycle for ``command`` at or after ``at`` (its rank's rules and the rank rules)."""
        address = address or _NOWHERE
        t, sub = self._bound(command, address, at)
        return sub.earliest(command, address, t)

    def issue(self, command: str, address: BankAddress | None = None, at: int = 0) -> int:
        """Issue ``command`` at the earliest legal cycle >= ``at``; return the cycle."""
        address = address or _NOWHERE
        t, sub = self._bound(command, address, at)
        t = sub.issue(command, address, t)
        self.last_issue = t
        if self.split_bus:
            bus, hold = self._bus.get(command) or self._bus[self.command(command)]
            self.bus_free[bus] = t + hold
        for k in self._preceding.get(command, ()):
            self._last[k][address.rank] = t
        return t
