"""One DRAM (pseudo-)channel: per-bank state machines (closed / row open) plus the timing table.

:meth:`Channel.issue` takes a command, its bank address and the cycle the controller wants it, and returns the
earliest legal issue cycle, updating bank state and timing history. The command bus carries one command per
cycle and commands issue in the order they are given (the controller reorders, this model does not), so
issue cycles are strictly increasing. Plain ints, lists and dicts: the engine calls this per command.

Speed (the AiM command mode issues millions of commands): the timing table is compiled once per standard
(:class:`_Compiled`) into straight-line Python per command: every window-1 rule becomes one term ``last[slot] +
cycles`` of a single ``max`` over one flat list of last-issue cycles, with integer slots and cycles as constants.
Issue cycles strictly increase, so the latest issue of a command in *any* bank is its latest issue in the
channel: an all-bank command (ACT_AB, MAC_ABK, PREA, REF) checks its bank-level rules against channel-level slots
instead of looping over every bank, and its own history lives in those slots too. tFAW keeps a ring of the last
four ACT cycles. Results are identical to evaluating the table rule by rule, as the original implementation did
(``tests/test_dram_timing.py::test_matches_reference_implementation`` holds its traces).
"""

from __future__ import annotations

import linecache
from typing import NamedTuple

from hardware.dram import timing
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
_HISTORY = 4  # recent issue cycles kept per command per node for windowed rules: enough for tFAW's window of 4

# integer command ids, in declaration order
_MEMBERS: tuple[Command, ...] = tuple(Command)
_NAMES: tuple[str, ...] = tuple(str(m) for m in _MEMBERS)
_IDS: dict[str, int] = {name: i for i, name in enumerate(_NAMES)}
_N = len(_MEMBERS)
ACT, PRE, PREA, RD, WR, REF, ACT_AB, MAC_ABK, RD_MAC, WR_GB = (_IDS[c] for c in (
    "ACT", "PRE", "PREA", "RD", "WR", "REF", "ACT_AB", "MAC_ABK", "RD_MAC", "WR_GB"))
_SINGLE, _ALL, _NONE = 0, 1, 2
_KIND: tuple[int, ...] = tuple(_ALL if m in ALL_BANK else _NONE if m in NO_BANK else _SINGLE for m in _MEMBERS)
_AIM: tuple[bool, ...] = tuple(m in AIM_ONLY for m in _MEMBERS)


class _Compiled:
    """The timing table of one standard compiled to Python (shared by every Channel of that standard).

    History lives in one flat list of last-issue cycles: slot ``c`` for command id ``c`` at channel level, then
    ``GB + group * N + c`` per bank group and ``BB + bank * N + c`` per bank (one-bank commands only). Every
    window-1 rule of a following command becomes one term ``slot + cycles`` of a ``max``; issue and earliest are
    generated as straight-line code per command with those slots and cycles as constants.
    """

    def __init__(self, params: dict[str, int], aim: bool, groups: int, per_group: int, rows: int, columns: int) -> None:
        banks = groups * per_group
        self.rules = build_rules(params, aim)
        self.group_base = _N
        self.bank_base = _N + groups * _N
        self.size = self.bank_base + banks * _N
        # a never-issued command's slot holds a cycle so early that no rule against it can bind (issue cycles >= 0)
        self.never = -1 - max((r.cycles for rules in self.rules.values() for r in rules), default=0)
        # windowed rules (window > 1, tFAW). At channel level with window <= _HISTORY, the window-th most recent of
        # the last _HISTORY issues of each preceding command is the window-th most recent issue of any of them: a
        # ring of the last ``window`` cycles, oldest first, read as one more max term. Other windowed rules keep
        # the reference evaluation (_window_rules) over per-node histories.
        self.rings: list[tuple[frozenset[int], int]] = []  # (preceding ids, window) per ring
        self.ring_terms: list[list[tuple[int, int]]] = [[] for _ in _NAMES]  # per command: (ring, cycles)
        self.windowed: list[tuple[tuple[int, tuple[int, ...], int, int], ...]] = []
        wcmds: list[set[int]] = [set(), set(), set()]
        for cid, name in enumerate(_NAMES):
            generic = []
            for r in self.rules.get(name, ()):
                if r.window == 1:
                    continue
                preceding = tuple(_IDS[p] for p in r.preceding)
                if r.level == 2 and r.window <= _HISTORY:
                    ring = (frozenset(preceding), r.window)
                    if ring not in self.rings:
                        self.rings.append(ring)
                    self.ring_terms[cid].append((self.rings.index(ring), r.cycles))
                else:
                    generic.append((r.level, preceding, r.cycles, r.window))
                    wcmds[r.level].update(preceding)
            self.windowed.append(tuple(generic))
        self.windowed_cmds = [frozenset(c) for c in wcmds]
        self.source = _generate(self, aim, groups, per_group, rows, columns, banks)
        namespace: dict = {}
        filename = f"<hardware.dram.channel generated {len(_COMPILED)}>"
        linecache.cache[filename] = (len(self.source), None, self.source.splitlines(True), filename)  # tracebacks
        namespace.update(NOWHERE=_NOWHERE, MEMBERS=_MEMBERS, IDS=_IDS, Command=Command)
        namespace.update((f"C{i}", m) for i, m in enumerate(_MEMBERS))
        exec(compile(self.source, filename, "exec"), namespace)
        self.make = namespace["make"]

    def terms(self, cid: int) -> list[tuple[str, int]]:
        """(slot expression, cycles) of every window-1 rule ``cid`` waits for, largest cycles per slot."""
        kind = _KIND[cid]
        need: dict[str, int] = {}
        for rule in self.rules.get(_NAMES[cid], ()):
            if rule.window != 1:
                continue
            for name in rule.preceding:
                prev = _IDS[name]
                if rule.level == 2:
                    expr = f"L[{prev}]"  # channel history records every command
                elif kind == _NONE or _KIND[prev] == _NONE:
                    continue  # no bank/group node on one side
                elif kind == _ALL or _KIND[prev] == _ALL:
                    # an all-bank command's bank/group history is the same everywhere: its channel slot; and the
                    # latest issue of a one-bank command over all banks is its latest issue anywhere
                    expr = f"L[{prev}]"
                elif rule.level == 1:
                    expr = f"L[gb + {prev}]"
                else:
                    expr = f"L[bb + {prev}]"
                if need.get(expr, -1) < rule.cycles:
                    need[expr] = rule.cycles
        return list(need.items())


# hot commands first (the AiM stream), then the controller's
_ORDER = (MAC_ABK, RD_MAC, WR_GB, ACT_AB, PREA, RD, WR, ACT, PRE, REF)


def _generate(comp: _Compiled, aim: bool, groups: int, per_group: int, rows: int, columns: int, banks: int) -> str:
    """Python source of ``make(channel)`` returning (issue, earliest) specialised to one standard."""
    out = [
        "def make(self):",
        "    L = self._last",
        "    check = self._check_state",
        "    window_rules = self._window_rules",
        "    record_window = self._record_window",
    ]
    out += [f"    W{k} = self._rings[{k}]" for k in range(len(comp.rings))]
    for commit in (True, False):
        fn = "issue" if commit else "earliest"
        out += [
            f"    def {fn}(command, address=None, at=0):",
            "        address = address or NOWHERE",
            "        t = self.last_issue + 1",
            "        if not t > at:",
            "            t = at",
        ]
        for n, cid in enumerate(_ORDER):
            body: list[str] = []
            kind = _KIND[cid]
            fb = "0"
            if _AIM[cid] and not aim:
                body.append(f"check({cid}, address)")
            elif kind == _SINGLE:
                conds = [f"0 <= bg < {groups}", f"0 <= bk < {per_group}"]
                if cid == ACT:
                    conds.insert(0, f"0 <= address.row < {rows}")
                if cid in (RD, WR):
                    conds.insert(0, f"0 <= address.column < {columns}")
                body += ["bg = address.bank_group", "bk = address.bank", f"if not ({' and '.join(conds)}):",
                         f"    check({cid}, address)", f"fb = bg * {per_group} + bk", "row = self.open_row[fb]"]
                bad = {ACT: "row is not None", PRE: "row is None"}.get(cid, "row is None or row != address.row")
                body += [f"if {bad}:", f"    check({cid}, address)",
                         f"gb = {comp.group_base} + bg * {_N}", f"bb = {comp.bank_base} + fb * {_N}"]
                fb = "fb"
            elif cid in (REF, ACT_AB):
                cond = f"self.open_row.count(None) != {banks}"
                if cid == ACT_AB:
                    cond = f"not 0 <= address.row < {rows} or " + cond
                body += [f"if {cond}:", f"    check({cid}, address)"]
            elif cid == MAC_ABK:
                body += ["row = address.row",
                         f"if not (0 <= row < {rows} and 0 <= address.column < {columns} "
                         f"and self.open_row.count(row) == {banks}):",
                         f"    check({cid}, address)"]
            terms = comp.terms(cid) + [(f"W{k}[0]", c) for k, c in comp.ring_terms[cid]]
            if terms:
                body.append("t = max(t, " + ", ".join(f"{e} + {c}" for e, c in terms) + ")")
            if comp.windowed[cid]:
                body.append(f"t = window_rules({cid}, {fb}, t)")
            if commit:
                body.append(f"L[{cid}] = t")
                if kind == _SINGLE:
                    body += [f"L[gb + {cid}] = t", f"L[bb + {cid}] = t"]
                for k, (preceding, _) in enumerate(comp.rings):
                    if cid in preceding:
                        body += [f"W{k}.append(t)", f"del W{k}[0]"]
                if any(cid in w for w in comp.windowed_cmds):
                    body.append(f"record_window({cid}, {fb}, t)")
                if cid == ACT:
                    body.append("self.open_row[fb] = address.row")
                elif cid == PRE:
                    body.append("self.open_row[fb] = None")
                elif cid == PREA:
                    body.append(f"self.open_row = [None] * {banks}")
                elif cid == ACT_AB:
                    body.append(f"self.open_row = [address.row] * {banks}")
                body += ["self.last_issue = t", "counts = self.counts",
                         f"counts[C{cid}] = counts.get(C{cid}, 0) + 1",
                         "if self.trace is not None:", f"    self.trace.append((t, {_NAMES[cid]!r}, address))"]
            body.append("return t")
            out.append(f"        {'if' if n == 0 else 'elif'} command is C{cid}:  # {_NAMES[cid]}")
            out += ["            " + line for line in body]
        out += [
            "        try:",
            "            member = MEMBERS[IDS[command]]",
            "        except (KeyError, TypeError):",
            "            member = Command(command)",
            f"        return {fn}(member, address, at)",
        ]
    out.append("    return issue, earliest")
    return "\n".join(out) + "\n"


_COMPILED: dict[tuple, tuple[_Compiled, tuple]] = {}


def _compiled(standard: DramStandard, groups: int, per_group: int, rows: int, columns: int) -> _Compiled:
    params = standard.params
    # the tables by identity (kept alive in the entry), so a patched table compiles afresh
    tables = (timing.BASE_TABLE, timing.AIM_TABLE)
    key = (tuple(params.items()), standard.aim is not None, groups, per_group, rows, columns, *map(id, tables))
    entry = _COMPILED.get(key)
    if entry is None:
        entry = _COMPILED[key] = (_Compiled(params, standard.aim is not None, groups, per_group, rows, columns), tables)
    return entry[0]


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
        comp = _compiled(standard, self.bank_groups, self.banks_per_group, self.rows, self.columns)
        self._comp = comp
        self._rules = comp.rules
        #: open row per bank (flat index ``bank_group * banks_per_group + bank``), None when closed
        self.open_row: list[int | None] = [None] * self.banks
        # last issue cycle per history slot (channel, bank-group and bank levels; see _Compiled)
        self._last: list[int] = [comp.never] * comp.size
        # last ``window`` issue cycles (oldest first) of each channel-level windowed rule's commands (tFAW)
        self._rings: list[list[int]] = [[comp.never] * window for _, window in comp.rings]
        # windowed rules only: whist[level][node][command id] -> most recent issue cycles, oldest first
        self._whist: list[list[dict[int, list[int]]]] = [
            [{} for _ in range(self.banks)],
            [{} for _ in range(self.bank_groups)],
            [{}],
        ]
        self.last_issue = -1
        self.counts: dict[str, int] = {}
        self.trace: list[tuple[int, str, BankAddress]] | None = [] if trace else None
        self._install()

    def _install(self) -> None:
        """Bind this standard's generated issue/earliest to the instance (unless a subclass overrides them)."""
        issue, earliest = self._comp.make(self)
        if type(self).issue is Channel.issue:
            self.__dict__["issue"] = issue
        if type(self).earliest is Channel.earliest:
            self.__dict__["earliest"] = earliest
        self._fast = issue, earliest

    def __getstate__(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if k not in ("issue", "earliest", "_fast", "_comp")}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._comp = _compiled(self.standard, self.bank_groups, self.banks_per_group, self.rows, self.columns)
        self._install()

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

    def _nodes(self, cid: int, fb: int) -> tuple[range | list[int], range | list[int]]:
        """Bank and bank-group nodes command ``cid`` at flat bank ``fb`` touches."""
        kind = _KIND[cid]
        if kind == _NONE:
            return [], []
        if kind == _ALL:
            return range(self.banks), range(self.bank_groups)
        return [fb], [fb // self.banks_per_group]

    # ------------------------------------------------------------------ state machine
    def _check_state(self, cid: int, addr: BankAddress) -> None:
        """Raise DramProtocolError if command ``cid`` is illegal now (the generated code calls this on its slow path)."""
        cmd = _NAMES[cid]
        if _AIM[cid] and not self.has_aim:
            raise DramProtocolError(f"{cmd}: standard '{self.standard.name}' has no AiM (aim:) section")
        if cid in (ACT, ACT_AB, MAC_ABK) and not 0 <= addr.row < self.rows:
            raise DramProtocolError(f"{cmd}: row {addr.row} out of range 0..{self.rows - 1}")
        if cid in (RD, WR, MAC_ABK) and not 0 <= addr.column < self.columns:
            raise DramProtocolError(f"{cmd}: column {addr.column} out of range 0..{self.columns - 1}")
        if cid in (ACT, PRE, RD, WR):
            b = self._flat(addr)
            row = self.open_row[b]
            where = f"bank {addr.bank_group}.{addr.bank}"
            if cid == ACT and row is not None:
                raise DramProtocolError(f"ACT to {where} which has row {row} open: PRE it first")
            if cid == PRE and row is None:
                raise DramProtocolError(f"PRE to {where} which is already closed")
            if cid in (RD, WR):
                if row is None:
                    raise DramProtocolError(f"{cmd} to {where} which is closed: ACT row {addr.row} first")
                if row != addr.row:
                    raise DramProtocolError(f"{cmd} to row {addr.row} of {where} but row {row} is open")
        elif cid in (REF, ACT_AB):
            open_banks = [b for b, r in enumerate(self.open_row) if r is not None]
            if open_banks:
                raise DramProtocolError(f"{cmd} needs every bank closed; banks {open_banks} are open: PREA first")
        elif cid == MAC_ABK:
            wrong = [b for b, r in enumerate(self.open_row) if r != addr.row]
            if wrong:
                raise DramProtocolError(f"MAC_ABK needs row {addr.row} open in every bank; banks {wrong} are not")

    # ------------------------------------------------------------------ timing
    def _window_rules(self, cid: int, fb: int, t: int) -> int:
        """Apply the rules over the N most recent commands (tFAW) to candidate cycle ``t``."""
        banks, groups = self._nodes(cid, fb)
        nodes_by_level = (banks, groups, [0])
        for level, preceding, cycles, window in self._comp.windowed[cid]:
            hist = self._whist[level]
            for node in nodes_by_level[level]:
                seen = hist[node]
                recent = sorted(c for prev in preceding for c in seen.get(prev, ()))
                if len(recent) >= window and recent[-window] + cycles > t:
                    t = recent[-window] + cycles
        return t

    def _record_window(self, cid: int, fb: int, t: int) -> None:
        """Remember issue cycle ``t`` of ``cid`` where windowed rules will look for it."""
        banks, groups = self._nodes(cid, fb)
        for level, nodes in ((0, banks), (1, groups), (2, [0])):
            if cid not in self._comp.windowed_cmds[level]:
                continue
            hist = self._whist[level]
            for node in nodes:
                cycles = hist[node].setdefault(cid, [])
                cycles.append(t)
                if len(cycles) > _HISTORY:
                    del cycles[0]

    def earliest(self, command: str, address: BankAddress | None = None, at: int = 0) -> int:
        """Earliest legal issue cycle for ``command`` at or after ``at``, without issuing it (state is checked)."""
        return self._fast[1](command, address, at)

    def issue(self, command: str, address: BankAddress | None = None, at: int = 0) -> int:
        """Issue ``command`` at the earliest legal cycle >= ``at``; update state and history; return the cycle.

        (Each instance binds the generated code for its standard over this method; see :class:`_Compiled`.)
        """
        return self._fast[0](command, address, at)

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
