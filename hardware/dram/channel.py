"""One DRAM (pseudo-)channel: per-bank state machines (closed / row open) plus the timing table.

:meth:`Channel.issue` takes a command, its bank address and the cycle the controller wants it, and returns the
earliest legal issue cycle, updating bank state and timing history. The command bus carries one command per
cycle and commands issue in the order they are given (the controller reorders, this model does not), so
issue cycles are strictly increasing. Plain ints, lists and dicts: the engine calls this per command.
"""

from __future__ import annotations

from typing import NamedTuple

from hardware.dram.commands import AIM_ONLY, ALL_BANK, NO_BANK, Command
from hardware.dram.standard import DramStandard
from hardware.dram.timing import build_rules


class DramProtocolError(RuntimeError):
    """A command that is illegal in the current bank state (a controller bug, not a user mistake)."""


class BankAddress(NamedTuple):
    """Where a command goes inside one channel. ``row`` is used by ACT/ACT_AB/RD/WR/MAC_ABK, ``column`` by RD/WR."""

    bank_group: int = 0
    bank: int = 0
    row: int = 0
    column: int = 0


_NOWHERE = BankAddress()
_HISTORY = 4  # recent issue cycles kept per command per node: enough for tFAW's window of 4


class Channel:
    """Timing and bank state of one channel of ``standard``."""

    def __init__(self, standard: DramStandard, trace: bool = False) -> None:
        org = standard.organization
        self.standard = standard
        self.params = standard.params
        self.has_aim = standard.aim is not None
        self.bank_groups = org.bank_groups.value
        self.banks_per_group = org.banks_per_group.value
        self.banks = self.bank_groups * self.banks_per_group
        self.rows = org.rows.value
        self.columns = org.columns.value
        self._rules = build_rules(self.params, self.has_aim)
        #: open row per bank (flat index ``bank_group * banks_per_group + bank``), None when closed
        self.open_row: list[int | None] = [None] * self.banks
        # history[level][node][command] -> most recent issue cycles, oldest first
        self._history: list[list[dict[str, list[int]]]] = [
            [{} for _ in range(self.banks)],
            [{} for _ in range(self.bank_groups)],
            [{}],
        ]
        self.last_issue = -1
        self.counts: dict[str, int] = {}
        self.trace: list[tuple[int, str, BankAddress]] | None = [] if trace else None

    # ------------------------------------------------------------------ addressing
    def bank_address(self, flat_bank: int, row: int = 0, column: int = 0) -> BankAddress:
        """Map a flat bank number to (group, bank) with groups interleaved: bank 0 -> BG0, bank 1 -> BG1, ..."""
        if not 0 <= flat_bank < self.banks:
            raise DramProtocolError(f"bank {flat_bank} out of range 0..{self.banks - 1}")
        return BankAddress(flat_bank % self.bank_groups, flat_bank // self.bank_groups, row, column)

    def _flat(self, addr: BankAddress) -> int:
        if not (0 <= addr.bank_group < self.bank_groups and 0 <= addr.bank < self.banks_per_group):
            raise DramProtocolError(f"bank address {addr} outside {self.bank_groups} groups x {self.banks_per_group} banks")
        return addr.bank_group * self.banks_per_group + addr.bank

    def _nodes(self, cmd: str, addr: BankAddress) -> tuple[list[int], list[int]]:
        """Bank and bank-group nodes a command touches."""
        if cmd in NO_BANK:
            return [], []
        if cmd in ALL_BANK:
            return list(range(self.banks)), list(range(self.bank_groups))
        return [self._flat(addr)], [addr.bank_group]

    # ------------------------------------------------------------------ state machine
    def _check_state(self, cmd: str, addr: BankAddress) -> None:
        if cmd in AIM_ONLY and not self.has_aim:
            raise DramProtocolError(f"{cmd}: standard '{self.standard.name}' has no AiM (aim:) section")
        if cmd in (Command.ACT, Command.ACT_AB, Command.MAC_ABK) and not 0 <= addr.row < self.rows:
            raise DramProtocolError(f"{cmd}: row {addr.row} out of range 0..{self.rows - 1}")
        if cmd in (Command.RD, Command.WR, Command.MAC_ABK) and not 0 <= addr.column < self.columns:
            raise DramProtocolError(f"{cmd}: column {addr.column} out of range 0..{self.columns - 1}")
        if cmd in (Command.ACT, Command.PRE, Command.RD, Command.WR):
            b = self._flat(addr)
            row = self.open_row[b]
            where = f"bank {addr.bank_group}.{addr.bank}"
            if cmd == Command.ACT and row is not None:
                raise DramProtocolError(f"ACT to {where} which has row {row} open: PRE it first")
            if cmd == Command.PRE and row is None:
                raise DramProtocolError(f"PRE to {where} which is already closed")
            if cmd in (Command.RD, Command.WR):
                if row is None:
                    raise DramProtocolError(f"{cmd} to {where} which is closed: ACT row {addr.row} first")
                if row != addr.row:
                    raise DramProtocolError(f"{cmd} to row {addr.row} of {where} but row {row} is open")
        elif cmd in (Command.REF, Command.ACT_AB):
            open_banks = [b for b, r in enumerate(self.open_row) if r is not None]
            if open_banks:
                raise DramProtocolError(f"{cmd} needs every bank closed; banks {open_banks} are open: PREA first")
        elif cmd == Command.MAC_ABK:
            wrong = [b for b, r in enumerate(self.open_row) if r != addr.row]
            if wrong:
                raise DramProtocolError(f"MAC_ABK needs row {addr.row} open in every bank; banks {wrong} are not")

    def _apply_state(self, cmd: str, addr: BankAddress) -> None:
        if cmd == Command.ACT:
            self.open_row[self._flat(addr)] = addr.row
        elif cmd == Command.PRE:
            self.open_row[self._flat(addr)] = None
        elif cmd == Command.PREA:
            self.open_row = [None] * self.banks
        elif cmd == Command.ACT_AB:
            self.open_row = [addr.row] * self.banks

    # ------------------------------------------------------------------ timing
    def earliest(self, command: str, address: BankAddress | None = None, at: int = 0) -> int:
        """Earliest legal issue cycle for ``command`` at or after ``at``, without issuing it (state is checked)."""
        cmd = Command(command)
        address = address or _NOWHERE
        self._check_state(cmd, address)
        return self._earliest(cmd, address, at)

    def _earliest(self, cmd: str, addr: BankAddress, at: int) -> int:
        t = max(at, self.last_issue + 1)
        banks, groups = self._nodes(cmd, addr)
        nodes_by_level = (banks, groups, [0])
        for rule in self._rules.get(cmd, ()):
            hist = self._history[rule.level]
            for node in nodes_by_level[rule.level]:
                seen = hist[node]
                if rule.window == 1:
                    for prev in rule.preceding:
                        cycles = seen.get(prev)
                        if cycles and cycles[-1] + rule.cycles > t:
                            t = cycles[-1] + rule.cycles
                else:
                    recent = sorted(c for prev in rule.preceding for c in seen.get(prev, ()))
                    if len(recent) >= rule.window and recent[-rule.window] + rule.cycles > t:
                        t = recent[-rule.window] + rule.cycles
        return t

    def issue(self, command: str, address: BankAddress | None = None, at: int = 0) -> int:
        """Issue ``command`` at the earliest legal cycle >= ``at``; update state and history; return the cycle."""
        cmd = Command(command)
        address = address or _NOWHERE
        self._check_state(cmd, address)
        t = self._earliest(cmd, address, at)
        banks, groups = self._nodes(cmd, address)
        for level, nodes in ((0, banks), (1, groups), (2, [0])):
            hist = self._history[level]
            for node in nodes:
                cycles = hist[node].setdefault(cmd, [])
                cycles.append(t)
                if len(cycles) > _HISTORY:
                    del cycles[0]
        self._apply_state(cmd, address)
        self.last_issue = t
        self.counts[cmd] = self.counts.get(cmd, 0) + 1
        if self.trace is not None:
            self.trace.append((t, str(cmd), address))
        return t

    def data_done(self, command: str, issue_cycle: int) -> int:
        """Cycle the last data beat of a RD/WR (or RD_MAC/WR_GB) issued at ``issue_cycle`` has crossed the bus."""
        p = self.params
        if command == Command.RD:
            return issue_cycle + p["tCL"] + p["tBL"]
        if command == Command.RD_MAC:  # MAC registers, no array access: AIM-SIM nCLREG = 0, so just the burst
            return issue_cycle + p["tBL"]
        if command == Command.WR:
            return issue_cycle + p["tCWL"] + p["tBL"]
        if command == Command.WR_GB:
            return issue_cycle + p["tCWL_GB"] + p["tBL"]
        return issue_cycle
