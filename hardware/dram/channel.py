"""One DRAM (pseudo-)channel: per-bank state machines (closed / row open) plus the standard's timing table.

:meth:`Channel.issue` takes a command, its bank address and the cycle the controller wants it, and returns the
earliest legal issue cycle, updating bank state and timing history. The command bus carries one command per
cycle and commands issue in the order they are given (the controller reorders, this model does not), so
issue cycles are strictly increasing. Plain ints, lists and dicts: the engine calls this per command.

Everything standard-specific is the standard's data (:mod:`hardware.dram.standard`): its commands (level, the bank
state each requires, whether it opens or closes rows, the address fields it checks) and its constraint table.
This module is generic.

Speed (the AiM command mode issues millions of commands): a standard's table is compiled once
(:class:`_Compiled`) into straight-line Python per command: every window-1 rule becomes one term ``last[slot] +
cycles`` of a single ``max`` over one flat list of last-issue cycles, with integer slots and cycles as constants.
Issue cycles strictly increase, so the latest issue of a command in *any* bank is its latest issue in the
channel: an all-bank command (ACT_AB, MAC_ABK, PREA, REF) checks its bank-level rules against channel-level slots
instead of looping over every bank, and its own history lives in those slots too. A channel-level windowed rule
(tFAW) keeps a ring of the last ``window`` cycles. Results are identical to evaluating the table rule by rule, as
the original implementation did (``tests/test_dram_timing.py::test_matches_reference_implementation`` holds its
traces).
"""

from __future__ import annotations

import linecache
import sys
from typing import NamedTuple

from hardware.dram.commands import Command
from hardware.dram.standard import DramStandard, extension_commands
from hardware.dram.timing import build_rules, latency_cycles


class DramProtocolError(RuntimeError):
    """A command that is illegal in the current bank state (a controller bug, not a user mistake)."""


class BankAddress(NamedTuple):
    """Where a command goes inside one channel. ``row`` is used by ACT/ACT_AB/RD/WR/MAC_ABK, ``column`` by RD/WR."""

    bank_group: int = 0
    bank: int = 0
    row: int = 0
    column: int = 0
    rank: int = 0  # rank (or HBM pseudo channel) inside a multi-rank channel (hardware.dram.ranks); a Channel ignores it

    def __repr__(self) -> str:
        fields = self._fields if self.rank else self._fields[:4]  # one-rank addresses read as before ranks existed
        return f"BankAddress({', '.join(f'{f}={getattr(self, f)}' for f in fields)})"


_NOWHERE = BankAddress()
_SINGLE, _ALL, _NONE, _SAME = 0, 1, 2, 3  # one bank, every bank, no bank, one bank index in every bank group
_COMMON = {str(m): m for m in Command}


class _Compiled:
    """The commands and timing table of one standard compiled to Python (shared by every Channel of that standard).

    Command ids follow the standard's ``all_commands`` order. History lives in one flat list of last-issue cycles:
    slot ``c`` for command id ``c`` at channel level, then ``GB + group * N + c`` per bank group and
    ``BB + bank * N + c`` per bank (one-bank commands only). Every window-1 rule of a following command becomes one
    term ``slot + cycles`` of a ``max``; issue and earliest are generated as straight-line code per command with
    those slots and cycles as constants.
    """

    def __init__(self, standard: DramStandard, groups: int, per_group: int, rows: int, columns: int) -> None:
        banks = groups * per_group
        specs = standard.all_commands
        params = standard.params
        self.names: tuple[str, ...] = tuple(specs)
        self.ids: dict[str, int] = {name: i for i, name in enumerate(self.names)}
        self.specs = tuple(specs.values())
        # canonical command objects: the Command member for common names, else the interned name
        self.members: tuple[str, ...] = tuple(_COMMON.get(n) or sys.intern(n) for n in self.names)
        n_cmd = len(self.names)
        self.kind = tuple(_SAME if s.same_bank else _SINGLE if s.level == "bank" else _ALL if s.all_banks else _NONE
                          for s in self.specs)
        self.data: dict[str, int] = {n: latency_cycles(s.data, params) for n, s in specs.items()}
        self.opener = standard.command_role(level="bank", opens=True) or "an opening command"
        self.closer = standard.command_role(level="bank", closes=True) or "a closing command"
        self.all_closer = standard.command_role(level="channel", all_banks=True, closes=True) or "a closing command"
        self.rules = build_rules(standard.table, params)
        self.n = n_cmd
        self.group_base = n_cmd
        self.bank_base = n_cmd + groups * n_cmd
        self.size = self.bank_base + banks * n_cmd
        self.groups, self.per_group = groups, per_group
        # a never-issued command's slot holds a cycle so early that no rule against it can bind (issue cycles >= 0)
        self.never = -1 - max((r.cycles for rules in self.rules.values() for r in rules), default=0)
        # windowed rules (window > 1, tFAW). At channel level the window-th most recent issue of any preceding
        # command is the oldest of a ring of the last ``window`` such issues, read as one more max term. Other
        # windowed rules keep the reference evaluation (_window_rules) over per-node histories.
        self.rings: list[tuple[frozenset[int], int]] = []  # (preceding ids, window) per ring
        self.ring_terms: list[list[tuple[int, int]]] = [[] for _ in self.names]  # per command: (ring, cycles)
        self.windowed: list[tuple[tuple[int, tuple[int, ...], int, int], ...]] = []
        self.history = 1
        wcmds: list[set[int]] = [set(), set(), set()]
        for cid, name in enumerate(self.names):
            generic = []
            for r in self.rules.get(name, ()):
                if r.window == 1:
                    continue
                preceding = tuple(self.ids[p] for p in r.preceding)
                if r.level == 2:
                    ring = (frozenset(preceding), r.window)
                    if ring not in self.rings:
                        self.rings.append(ring)
                    self.ring_terms[cid].append((self.rings.index(ring), r.cycles))
                else:
                    generic.append((r.level, preceding, r.cycles, r.window))
                    wcmds[r.level].update(preceding)
                    self.history = max(self.history, r.window)
            self.windowed.append(tuple(generic))
        self.windowed_cmds = [frozenset(c) for c in wcmds]
        self.bus, self.hold = command_buses(standard, self.names)
        act = standard.activation
        #: id of the first part of a two-part activation (it leaves ``~row`` in open_row: activating), or -1
        self.activating = self.ids[act.first] if act is not None else -1
        self.second = act.second if act is not None else ""
        self.split_bus = standard.command_buses is not None or any(h > 1 for h in self.hold)
        self.source = _generate(self, groups, per_group, rows, columns, banks)
        namespace: dict = {}
        filename = f"<hardware.dram.channel generated {len(_COMPILED)} {standard.name}>"
        linecache.cache[filename] = (len(self.source), None, self.source.splitlines(True), filename)  # tracebacks
        namespace.update(NOWHERE=_NOWHERE, MEMBERS=self.members, IDS=self.ids)
        namespace.update((f"C{i}", m) for i, m in enumerate(self.members))
        exec(compile(self.source, filename, "exec"), namespace)
        self.make = namespace["make"]

    def terms(self, cid: int) -> list[tuple[str, int]]:
        """(slot expression, cycles) of every window-1 rule ``cid`` waits for, largest cycles per slot."""
        kinds = self.kind
        kind = kinds[cid]
        need: dict[str, int] = {}
        for rule in self.rules.get(self.names[cid], ()):
            if rule.window != 1:
                continue
            for name in rule.preceding:
                prev = self.ids[name]
                if rule.level == 2:
                    expr = f"L[{prev}]"  # channel history records every command
                elif kind == _NONE or kinds[prev] == _NONE:
                    continue  # no bank/group node on one side
                elif kind == _ALL or kinds[prev] == _ALL or (kind == _SAME and rule.level == 1):
                    # an all-bank command's bank/group history is the same everywhere: its channel slot; and the
                    # latest issue of a one-bank command over all banks (or all groups: a same-bank command
                    # touches every group) is its latest issue anywhere
                    expr = f"L[{prev}]"
                elif kind == _SAME:  # bank level: the addressed bank index in every group
                    for g in range(self.groups):
                        expr = f"L[bb{g} + {prev}]"
                        if need.get(expr, -1) < rule.cycles:
                            need[expr] = rule.cycles
                    continue
                elif rule.level == 1:
                    expr = f"L[gb + {prev}]"
                else:
                    expr = f"L[bb + {prev}]"
                if need.get(expr, -1) < rule.cycles:
                    need[expr] = rule.cycles
        return list(need.items())


def _state_checks(comp: _Compiled, cid: int, groups: int, per_group: int, rows: int, columns: int, banks: int) -> list[str]:
    """Generated lines that hand command ``cid`` to the slow-path checker when its address or bank state is wrong."""
    spec = comp.specs[cid]
    kind = comp.kind[cid]
    conds = []
    if "row" in spec.uses:
        conds.append(f"0 <= address.row < {rows}")
    if "column" in spec.uses:
        conds.append(f"0 <= address.column < {columns}")
    if kind == _SINGLE:
        conds += [f"0 <= bg < {groups}", f"0 <= bk < {per_group}"]
        body = ["bg = address.bank_group", "bk = address.bank", f"if not ({' and '.join(conds)}):",
                f"    check({cid}, address)", f"fb = bg * {per_group} + bk"]
        bad = {"closed": "row is not None", "open": "row is None", "row": "row is None or row != address.row",
               "activating": "row is None or row != ~address.row"}
        if spec.requires in bad:
            body += ["row = O[B + fb]", f"if {bad[spec.requires]}:", f"    check({cid}, address)"]
        return body + [f"gb = {comp.group_base} + bg * {comp.n}", f"bb = {comp.bank_base} + fb * {comp.n}"]
    if kind == _SAME:  # bank index ``bk`` in every bank group (DDR5 REFsb)
        conds.append(f"0 <= bk < {per_group}")
        body = ["bk = address.bank", f"if not ({' and '.join(conds)}):", f"    check({cid}, address)", "fb = bk"]
        if spec.requires == "closed":
            same = " or ".join(f"O[B + {g * per_group} + bk] is not None" for g in range(groups))
            body += [f"if {same}:", f"    check({cid}, address)"]
        return body + [f"bb{g} = {comp.bank_base} + ({g * per_group} + bk) * {comp.n}" for g in range(groups)]
    body = []
    if kind == _ALL:
        state = {"closed": f"O[B:B + {banks}].count(None) == {banks}", "open": f"None not in O[B:B + {banks}]",
                 "row": f"O[B:B + {banks}].count(row) == {banks}"}
        if spec.requires == "row":
            body.append("row = address.row")
            conds = [c.replace("address.row", "row") for c in conds]
        if spec.requires in state:
            conds.append(state[spec.requires])
    return body + ([f"if not ({' and '.join(conds)}):", f"    check({cid}, address)"] if conds else [])


def _generate(comp: _Compiled, groups: int, per_group: int, rows: int, columns: int, banks: int) -> str:
    """Python source of ``make(channel)`` returning (issue, earliest) specialised to one standard."""
    out = [
        "def make(self):",
        "    L = self._last",
        "    check = self._check_state",
        "    unknown = self._unknown",
        "    window_rules = self._window_rules",
        "    O = self.open_row",
        "    B = self.base",
        "    record_window = self._record_window",
    ]
    out += [f"    W{k} = self._rings[{k}]" for k in range(len(comp.rings))]
    if comp.split_bus:
        out.append("    Q = self.bus_free")
    for fn in ("issue", "earliest", "repeat"):
        commit = fn != "earliest"
        many = fn == "repeat"
        out += [
            f"    def {fn}(command, address=None, at=0{', n=1' if many else ''}):",
            "        address = address or NOWHERE",
        ]
        if many:
            out += ["        if n < 1:", "            raise ValueError(f'issue_repeat needs n >= 1 commands, got {n}')"]
        # split buses: commands issue in time order (a column command may share the cycle of the last row command)
        out += ["        t = self.last_issue", "        if at > t:", "            t = at"] if comp.split_bus else [
            "        t = self.last_issue + 1",
            "        if not t > at:",
            "            t = at",
        ]
        for cid, name in enumerate(comp.names):
            spec = comp.specs[cid]
            kind = comp.kind[cid]
            fb = "fb" if kind in (_SINGLE, _SAME) else "0"
            body = _state_checks(comp, cid, groups, per_group, rows, columns, banks)
            # repeat: a command that leaves the bank state alone is legal every time if it is legal once, so its
            # state checks run once before the loop; every other line runs once per command
            invariant = not (spec.opens or spec.closes or cid == comp.activating)
            prelude: list[str] = []
            if many and invariant:
                prelude, body = body, []
            if comp.split_bus:  # this command's bus is free from Q[bus] on
                body += [f"if Q[{comp.bus[cid]}] > t:", f"    t = Q[{comp.bus[cid]}]"]
            terms = comp.terms(cid) + [(f"W{k}[0]", c) for k, c in comp.ring_terms[cid]]
            if many and invariant:
                # terms on history this command does not write are the same for every command of the run: their
                # max is taken once (``floor``), the rest per command
                written = {f"L[{cid}]", f"L[gb + {cid}]", f"L[bb + {cid}]"} | {f"L[bb{g} + {cid}]" for g in range(groups)}
                written |= {f"W{k}[0]" for k, (preceding, _) in enumerate(comp.rings) if cid in preceding}
                fixed = [(e, c) for e, c in terms if e not in written]
                if len(fixed) > 1:
                    prelude.append("floor = max(" + ", ".join(f"{e} + {c}" for e, c in fixed) + ")")
                    terms = [("floor", 0)] + [(e, c) for e, c in terms if e in written]
            if terms:
                body.append("t = max(t, " + ", ".join(f"{e} + {c}" if c else e for e, c in terms) + ")")
            if comp.windowed[cid]:
                body.append(f"t = window_rules({cid}, {fb}, t)")
            if commit:
                if comp.split_bus:
                    body.append(f"Q[{comp.bus[cid]}] = t + {comp.hold[cid]}")
                body.append(f"L[{cid}] = t")
                if kind == _SINGLE:
                    body += [f"L[gb + {cid}] = t", f"L[bb + {cid}] = t"]
                elif kind == _SAME:
                    body += [f"L[{comp.group_base + g * comp.n + cid}] = t" for g in range(groups)]
                    body += [f"L[bb{g} + {cid}] = t" for g in range(groups)]
                for k, (preceding, _) in enumerate(comp.rings):
                    if cid in preceding:
                        body += [f"W{k}.append(t)", f"del W{k}[0]"]
                if any(cid in w for w in comp.windowed_cmds):
                    body.append(f"record_window({cid}, {fb}, t)")
                if cid == comp.activating:  # the first part of a two-part activation: the bank is activating the row
                    body.append("O[B + fb] = ~address.row")
                elif spec.opens:
                    body.append("O[B + fb] = address.row" if kind == _SINGLE
                                else f"O[B:B + {banks}] = [address.row] * {banks}")
                elif spec.closes:
                    body.append("O[B + fb] = None" if kind == _SINGLE else f"O[B:B + {banks}] = [None] * {banks}")
                # repeat keeps the channel's last issue and trace in locals inside its loop, written back after it
                last, trace = ("last", "trace") if many else ("self.last_issue", "self.trace")
                body += [f"{last} = t"]
                if not many:
                    body += ["counts = self.counts", f"counts[C{cid}] = counts.get(C{cid}, 0) + 1"]
                body += [f"if {trace} is not None:", f"    {trace}.append((t, {name!r}, address))"]
            if many:
                # the i-th command (i >= 1) is wanted one cycle after the one before it, as in a caller's loop
                # ``t = issue(command, address, t + 1)``; counts gain the commands issued, also when one raises
                loop = ["if done:", "    t = last + 1"] + body
                body = prelude + ["trace = self.trace", "last = self.last_issue", "done = 0", "try:",
                                  "    for done in range(n):"]
                body += ["        " + line for line in loop]
                body += ["except BaseException:", "    if done:", "        self.last_issue = last",
                         f"        self.counts[C{cid}] = self.counts.get(C{cid}, 0) + done", "    raise",
                         "self.last_issue = last", f"self.counts[C{cid}] = self.counts.get(C{cid}, 0) + n"]
            body.append("return t")
            out.append(f"        {'if' if cid == 0 else 'elif'} command is C{cid}:  # {name}")
            out += ["            " + line for line in body]
        out += [
            "        try:",
            "            member = MEMBERS[IDS[command]]",
            "        except (KeyError, TypeError):",
            "            member = unknown(command)",
            f"        return {fn}(member, address, at{', n' if many else ''})",
        ]
    out.append("    return issue, earliest, repeat")
    return "\n".join(out) + "\n"


_COMPILED: dict[tuple, _Compiled] = {}
_BY_ID: dict[int, tuple[DramStandard, tuple, _Compiled]] = {}


def _compiled(standard: DramStandard, groups: int, per_group: int, rows: int, columns: int) -> _Compiled:
    geometry = (groups, per_group, rows, columns)
    hit = _BY_ID.get(id(standard))
    if hit is not None and hit[0] is standard and hit[1] == geometry:
        return hit[2]
    key = (tuple(standard.params.items()), tuple(standard.all_commands.items()), standard.table, geometry)
    comp = _COMPILED.get(key)
    if comp is None:
        comp = _COMPILED[key] = _Compiled(standard, groups, per_group, rows, columns)
    _BY_ID[id(standard)] = (standard, geometry, comp)  # holds the standard, so its id stays its own
    return comp


def command_buses(standard: DramStandard, names: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per command of ``names``: its bus (0 row or the only bus, 1 column) and the cycles it holds that bus."""
    buses = standard.command_buses
    bus = tuple(1 if buses is not None and n in buses.column else 0 for n in names)
    hold = tuple(standard.command_cycles[n].value if n in standard.command_cycles else 1 for n in names)
    return bus, hold


class Channel:
    """Timing and bank state of one channel of ``standard``."""

    def __init__(self, standard: DramStandard, trace: bool = False, *, open_row: list[int | None] | None = None,
                 base: int = 0) -> None:
        """``open_row``/``base``: a multi-rank channel (:mod:`hardware.dram.ranks`) shares one open-row list among
        its ranks, this one's banks at ``base .. base + banks - 1``; alone, the channel owns a list of its banks."""
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
        #: open row per bank (flat index ``base + bank_group * banks_per_group + bank``), None when closed, ``~row``
        #: (negative) while a two-part activation of ``row`` is under way; the
        #: generated code holds this list, so it is updated in place, never rebound
        self.open_row: list[int | None] = [None] * self.banks if open_row is None else open_row
        self.base = base
        if not 0 <= base <= len(self.open_row) - self.banks:
            raise ValueError(f"banks {base}..{base + self.banks - 1} outside the shared open-row list")
        # last issue cycle per history slot (channel, bank-group and bank levels; see _Compiled)
        self._last: list[int] = [comp.never] * comp.size
        # last ``window`` issue cycles (oldest first) of each channel-level windowed rule's commands (tFAW)
        self._rings: list[list[int]] = [[comp.never] * window for _, window in comp.rings]
        # other windowed rules only: whist[level][node][command id] -> most recent issue cycles, oldest first
        self._whist: list[list[dict[int, list[int]]]] = [
            [{} for _ in range(self.banks)],
            [{} for _ in range(self.bank_groups)],
            [{}],
        ]
        self.last_issue = -1
        #: with split command buses (or multi-cycle commands): the first free cycle of the row (0) and column (1) bus
        self.bus_free = [0, 0]
        self.counts: dict[str, int] = {}
        self.trace: list[tuple[int, str, BankAddress]] | None = [] if trace else None
        self._install()

    def _install(self) -> None:
        """Bind this standard's generated issue/earliest to the instance (unless a subclass overrides them)."""
        issue, earliest, repeat = self._comp.make(self)
        if type(self).issue is Channel.issue:
            self.__dict__["issue"] = issue
            if type(self).issue_repeat is Channel.issue_repeat:
                self.__dict__["issue_repeat"] = repeat
        if type(self).earliest is Channel.earliest:
            self.__dict__["earliest"] = earliest
        self._fast = issue, earliest

    def __getstate__(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if k not in ("issue", "earliest", "issue_repeat", "_fast", "_comp")}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._comp = _compiled(self.standard, self.bank_groups, self.banks_per_group, self.rows, self.columns)
        self._install()

    # ------------------------------------------------------------------ addressing
    def command(self, name: str) -> str:
        """The canonical object for command ``name`` of this standard (issue compares by identity first)."""
        comp = self._comp
        cid = comp.ids.get(name)
        return comp.members[cid] if cid is not None else self._unknown(name)

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
        kind = self._comp.kind[cid]
        if kind == _NONE:
            return [], []
        if kind == _ALL:
            return range(self.banks), range(self.bank_groups)
        if kind == _SAME:
            bk = fb % self.banks_per_group
            return [g * self.banks_per_group + bk for g in range(self.bank_groups)], range(self.bank_groups)
        return [fb], [fb // self.banks_per_group]

    # ------------------------------------------------------------------ state machine
    def _unknown(self, command: object) -> str:
        """Raise for a command this standard does not declare: DramProtocolError when another standard's extension
        declares it (the standard lacks that section), else ValueError (no such command)."""
        name = str(command) if isinstance(command, str) else None
        ext = extension_commands().get(name) if name is not None else None
        if ext is not None:
            key, title = ext
            raise DramProtocolError(f"{name}: standard '{self.standard.name}' has no {title} ({key}:) section")
        raise ValueError(f"{command!r} is not a valid Command of DRAM standard '{self.standard.name}' "
                         f"(it declares {', '.join(self._comp.names)})")

    def _check_state(self, cid: int, addr: BankAddress) -> None:
        """Raise DramProtocolError if command ``cid`` is illegal now (the generated code calls this on its slow path)."""
        comp = self._comp
        cmd = comp.names[cid]
        spec = comp.specs[cid]
        kind = comp.kind[cid]
        if "row" in spec.uses and not 0 <= addr.row < self.rows:
            raise DramProtocolError(f"{cmd}: row {addr.row} out of range 0..{self.rows - 1}")
        if "column" in spec.uses and not 0 <= addr.column < self.columns:
            raise DramProtocolError(f"{cmd}: column {addr.column} out of range 0..{self.columns - 1}")
        if kind == _SINGLE:
            b = self._flat(addr)
            row = self.open_row[self.base + b]
            where = f"bank {addr.bank_group}.{addr.bank}"
            if spec.requires == "closed" and row is not None:
                raise DramProtocolError(f"{cmd} to {where} which has row {row} open: {comp.closer} it first")
            if spec.requires == "open" and row is None:
                raise DramProtocolError(f"{cmd} to {where} which is already closed")
            if spec.requires == "activating" and (row is None or row != ~addr.row):
                raise DramProtocolError(f"{cmd} to {where} which is not activating row {addr.row}: "
                                        f"{comp.opener} it first")
            if spec.requires == "row":
                if row is None:
                    raise DramProtocolError(f"{cmd} to {where} which is closed: {comp.opener} row {addr.row} first")
                if row < 0:
                    raise DramProtocolError(f"{cmd} to {where} which is still activating row {~row}: "
                                            f"{comp.second} first")
                if row != addr.row:
                    raise DramProtocolError(f"{cmd} to row {addr.row} of {where} but row {row} is open")
        elif kind == _SAME:
            if not 0 <= addr.bank < self.banks_per_group:
                raise DramProtocolError(f"{cmd}: bank {addr.bank} out of range 0..{self.banks_per_group - 1}")
            if spec.requires == "closed":
                per = self.banks_per_group
                open_groups = [g for g in range(self.bank_groups)
                               if self.open_row[self.base + g * per + addr.bank] is not None]
                if open_groups:
                    raise DramProtocolError(f"{cmd} to bank {addr.bank} needs it closed in every bank group; open in "
                                            f"groups {open_groups}: {comp.closer} them first")
        elif kind == _ALL:
            mine = self.open_row[self.base:self.base + self.banks]
            if spec.requires == "closed":
                open_banks = [b for b, r in enumerate(mine) if r is not None]
                if open_banks:
                    raise DramProtocolError(f"{cmd} needs every bank closed; banks {open_banks} are open: "
                                            f"{comp.all_closer} first")
            elif spec.requires == "open":
                closed = [b for b, r in enumerate(mine) if r is None]
                if closed:
                    raise DramProtocolError(f"{cmd} needs a row open in every bank; banks {closed} are closed")
            elif spec.requires == "row":
                wrong = [b for b, r in enumerate(mine) if r != addr.row]
                if wrong:
                    raise DramProtocolError(f"{cmd} needs row {addr.row} open in every bank; banks {wrong} are not")

    # ------------------------------------------------------------------ timing
    def _window_rules(self, cid: int, fb: int, t: int) -> int:
        """Apply the rules over the N most recent commands (below channel level) to candidate cycle ``t``."""
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
        keep = self._comp.history
        for level, nodes in ((0, banks), (1, groups), (2, [0])):
            if cid not in self._comp.windowed_cmds[level]:
                continue
            hist = self._whist[level]
            for node in nodes:
                cycles = hist[node].setdefault(cid, [])
                cycles.append(t)
                if len(cycles) > keep:
                    del cycles[0]

    def earliest(self, command: str, address: BankAddress | None = None, at: int = 0) -> int:
        """Earliest legal issue cycle for ``command`` at or after ``at``, without issuing it (state is checked)."""
        return self._fast[1](command, address, at)

    def issue(self, command: str, address: BankAddress | None = None, at: int = 0) -> int:
        """Issue ``command`` at the earliest legal cycle >= ``at``; update state and history; return the cycle.

        (Each instance binds the generated code for its standard over this method; see :class:`_Compiled`.)
        """
        return self._fast[0](command, address, at)

    def issue_repeat(self, command: str, address: BankAddress | None = None, at: int = 0, n: int = 1) -> int:
        """Issue ``command`` to ``address`` ``n`` times: the first at the earliest legal cycle >= ``at``, each next
        one at the earliest legal cycle after the one before; return the last one's cycle. The same commands, state
        and history as ``n`` calls of :meth:`issue` (``t = issue(command, address, t + 1)``), each checked against
        the timing table; the generated code only runs the loop itself (and a command that changes no bank state
        has its state checked once). A subclass that overrides :meth:`issue` gets this loop over its own issue."""
        if n < 1:
            raise ValueError(f"issue_repeat needs n >= 1 commands, got {n}")
        t = self.issue(command, address, at)
        for _ in range(n - 1):
            t = self.issue(command, address, t + 1)
        return t

    def data_cycles(self, command: str) -> int:
        """Cycles from issuing ``command`` to its last data beat (the standard's ``data:``; 0 without data)."""
        return self._comp.data.get(command, 0)

    def data_done(self, command: str, issue_cycle: int) -> int:
        """Cycle the last data beat of a RD/WR (or RD_MAC/WR_GB) issued at ``issue_cycle`` has crossed the bus."""
        return issue_cycle + self._comp.data.get(command, 0)
