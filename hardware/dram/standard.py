"""A DRAM standard as data: organisation, timing parameters, commands and timing-constraint table, each with its source.

One YAML file per standard under ``hardware/presets/dram/`` (Ramulator 2.0 style: adding a standard is a new
data file; the rule compiler in :mod:`hardware.dram.timing` and the bank state machine in
:mod:`hardware.dram.channel` are generic). A file declares:

- ``organization`` and ``timing`` numbers, every one written ``{value: N, source: "..."}`` (timing in CK cycles);
- ``derived``: secondary timings as expressions of other parameters, each with its source (the one place they are
  derived);
- ``levels`` (the hierarchy: ``channel``, optionally ``bankgroup``, ``bank``) and ``commands``: per command the
  level it addresses (``bank``, or ``channel`` with ``all_banks`` for commands acting on every bank), the bank state
  it requires (``closed``, ``open``, ``row`` = the addressed row open), whether it ``opens`` or ``closes`` rows,
  which address fields it range-checks (``uses``), and ``data``: cycles from issue to its last data beat;
- ``constraints``: one line per rule ``{level, preceding, following, latency[, window]}`` (see
  :mod:`hardware.dram.timing`); ``checks``: inequalities the numbers must satisfy for the table to be right;
- ``requests`` / ``refresh``: which commands an open-row controller issues for reads, writes and refresh
  (``refresh_per_bank``: the per-bank refresh command, REFpb, and its interval per bank refresh, tREFIpb;
  ``refresh_same_bank``: DDR5's same-bank refresh, REFsb, of one bank index in every bank group, and its interval);
  ``auto_precharge``: the read / write commands that also close the bank (RDA / WRA), for closed-row policies;
- ``extensions``: named optional command sets with their own timing, commands and constraints (GDDR6-AiM);
- ``idd``: datasheet IDD currents per supply for the energy model (:mod:`hardware.dram.energy`);
- ``ranks``: the rules between commands to different ranks of one channel (rank-to-rank switching, tRTRS), for
  multi-rank channels (:mod:`hardware.dram.ranks`); a standard without it has one rank per channel;
- ``activation``: a two-part activation (LPDDR5 ACT-1 / ACT-2): the opening command leaves the bank activating,
  a second command opens the row;
- ``command_buses``: separate row and column command buses (HBM), one command on each per cycle;
  ``command_cycles``: commands that hold their bus for several cycles (HBM2 ACT), rules counted from the last.

:func:`load_standard` validates the file with pydantic and turns any mistake into a one-line
:class:`~hardware.errors.HwsimError` naming the file and the field (and its line for the rule sections).
"""

from __future__ import annotations

import functools
import re
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hardware.dram.energy import IddSpec
from hardware.dram.timing import LEVELS, TimingConstraint, latency_terms
from hardware.errors import HwsimError
from hardware.yaml_file import read_yaml

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets" / "dram"

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cycles(_Strict):
    """A timing parameter: a non-negative number of command-clock (CK) cycles and where it comes from."""

    value: int = Field(ge=0)
    source: str = Field(min_length=1)


class Count(_Strict):
    """A positive integer (a count or a size) and where it comes from."""

    value: int = Field(ge=1)
    source: str = Field(min_length=1)


class Quantity(_Strict):
    """A positive real number (ns, Gb/s) and where it comes from."""

    value: float = Field(gt=0)
    source: str = Field(min_length=1)


class Derived(_Strict):
    """A secondary timing parameter: an expression of other parameters (``"tRP"``, ``"tRAS + tRP"``) and its source."""

    value: str = Field(min_length=1)
    source: str = Field(min_length=1)


class Organization(_Strict):
    """Geometry of one device. ``columns`` counts burst-sized column addresses, so a row holds
    ``columns * burst_bytes`` bytes per (pseudo-)channel."""

    channels: Count
    pseudo_channels: Count = Count(value=1, source="no pseudo channels")
    bank_groups: Count
    banks_per_group: Count
    rows: Count
    columns: Count
    burst_length: Count
    burst_bytes: Count
    bus_width_bits: Count
    data_rate_gbps: Quantity
    tCK_ns: Quantity


class CommandSpec(_Strict):
    """One command: the level it addresses, the bank state it needs, what it does to rows, its data latency.

    ``level: bank`` addresses one bank; ``level: channel`` addresses the channel, acting on every bank with
    ``all_banks: true`` (PREA, REF, AiM's ACT_AB) or on none (channel buffers: AiM's RD_MAC, WR_GB). ``requires``:
    ``closed`` (every addressed bank closed), ``open`` (some row open), ``row`` (the addressed row open), ``any``.
    ``uses``: address fields range-checked. ``data``: cycles from issue to the last data beat (an expression)."""

    level: str
    all_banks: bool = False
    #: ``level: bank`` only: the command acts on the addressed bank index in every bank group (DDR5 REFsb)
    same_bank: bool = False
    requires: Literal["any", "closed", "open", "row", "activating"] = "any"
    opens: bool = False
    closes: bool = False
    uses: tuple[Literal["row", "column"], ...] = ()
    data: str | int = 0
    description: str = ""


class ConstraintSpec(_Strict):
    """One timing-constraint line as written in the file (see :class:`hardware.dram.timing.TimingConstraint`)."""

    level: str
    preceding: tuple[str, ...] = Field(min_length=1)
    following: tuple[str, ...] = Field(min_length=1)
    latency: str | int
    window: int = Field(default=1, ge=1)


class Requests(_Strict):
    """Commands a controller issues to serve a read or a write request at an open row (``auto_precharge``: the
    forms that close the bank afterwards, RDA / WRA, for closed-row policies)."""

    read: str
    write: str


class Refresh(_Strict):
    """The all-bank refresh command and the parameter naming its interval."""

    command: str
    interval: str


class SiblingRule(_Strict):
    """A rule between commands to two *different* ranks (or pseudo channels) of one channel: a ``following`` command
    to one waits ``latency`` cycles after the most recent ``preceding`` command to any other (tRTRS and the data-bus
    hand-over between ranks)."""

    preceding: tuple[str, ...] = Field(min_length=1)
    following: tuple[str, ...] = Field(min_length=1)
    latency: str | int


class Ranks(_Strict):
    """How ranks of one channel interact (``--ranks N``). Each rank is a full copy of the channel's bank hierarchy
    with its own ``constraints`` (tRRD, tFAW, tCCD, refresh per rank); the ranks share the command bus (one command
    per cycle) and the data bus, whose rank-to-rank rules are ``constraints`` here."""

    source: str = Field(min_length=1)
    constraints: tuple[SiblingRule, ...] = Field(min_length=1)


class CommandBuses(_Strict):
    """A split command bus (HBM): row commands and column commands travel on separate buses, one command on each
    per cycle, so a controller may issue a row and a column command in the same cycle."""

    source: str = Field(min_length=1)
    row: tuple[str, ...] = Field(min_length=1)
    column: tuple[str, ...] = Field(min_length=1)


class Activation(_Strict):
    """A two-part activation (LPDDR5's ACT-1 / ACT-2, JESD209-5): ``first`` (the standard's opening command, whose
    rules -- tRCD, tRAS, tRC, tRRD, tFAW -- are measured from it) leaves the bank *activating* that row; ``second``
    (``requires: activating``, ``opens: true``) completes it, and only then is the row open for RD / WR."""

    source: str = Field(min_length=1)
    first: str
    second: str


class Extension(_Strict):
    """An optional command set (e.g. SK hynix GDDR6-AiM): its own timing numbers, commands and constraints."""

    title: str = Field(min_length=1)
    description: str = ""
    timing: dict[str, Cycles] = {}
    commands: dict[str, CommandSpec] = {}
    constraints: tuple[ConstraintSpec, ...] = ()


class DramStandard(_Strict):
    """One DRAM standard (speed bin, device organisation and command rules), validated."""

    name: str = Field(min_length=1)
    description: str = ""
    organization: Organization
    levels: tuple[str, ...]
    commands: dict[str, CommandSpec]
    requests: Requests
    auto_precharge: Requests | None = None
    refresh: Refresh | None = None
    refresh_per_bank: Refresh | None = None
    refresh_same_bank: Refresh | None = None
    timing: dict[str, Cycles]
    derived: dict[str, Derived] = {}
    constraints: tuple[ConstraintSpec, ...]
    checks: tuple[str, ...] = ()
    extensions: dict[str, Extension] = {}
    idd: IddSpec | None = None  # datasheet currents for the energy model (hardware/dram/energy.py)
    ranks: Ranks | None = None
    command_buses: CommandBuses | None = None
    #: commands that hold their command bus for more than one cycle (HBM2 ACT: 2); the timing rules count from a
    #: command's last cycle, as JEDEC measures them
    command_cycles: dict[str, Count] = {}
    activation: Activation | None = None

    @cached_property
    def params(self) -> dict[str, int]:
        """Every timing parameter by name, in cycles: ``timing``, the extensions' timing, then ``derived``."""
        out = {name: c.value for name, c in self.timing.items()}
        for ext in self.extensions.values():
            out.update((name, c.value) for name, c in ext.timing.items())
        for name, d in self.derived.items():
            out[name] = _evaluate(d.value, out)
        return out

    @cached_property
    def all_commands(self) -> dict[str, CommandSpec]:
        """Commands of the standard and of its extensions, extensions' first (the generated code tries commands in
        this order: the AiM stream's commands are the hot ones)."""
        out: dict[str, CommandSpec] = {}
        for ext in self.extensions.values():
            out.update(ext.commands)
        out.update(self.commands)
        return out

    @cached_property
    def table(self) -> tuple[TimingConstraint, ...]:
        """The timing-constraint table: the standard's lines, then its extensions'."""
        specs = list(self.constraints) + [c for ext in self.extensions.values() for c in ext.constraints]
        cycles = {name: c.value for name, c in self.command_cycles.items()}
        out = []
        for c in specs:
            if not cycles:
                out.append(TimingConstraint(c.level, c.preceding, c.following, str(c.latency), c.window))
                continue
            # rules count from each command's last bus cycle while issue cycles are first cycles: a multi-cycle
            # preceding command adds its extra cycles, a multi-cycle following command subtracts them
            groups: dict[int, tuple[list[str], list[str]]] = {}
            for p in c.preceding:
                for f in c.following:
                    off = cycles.get(p, 1) - cycles.get(f, 1)
                    pre, fol = groups.setdefault(off, ([], []))
                    if p not in pre:
                        pre.append(p)
                    if f not in fol:
                        fol.append(f)
            for off, (pre, fol) in groups.items():
                lat = str(c.latency) if off == 0 else f"{c.latency} {'+' if off > 0 else '-'} {abs(off)}"
                out.append(TimingConstraint(c.level, tuple(pre), tuple(fol), lat, c.window))
        return tuple(out)

    @property
    def aim(self) -> Extension | None:
        """The SK hynix GDDR6-AiM extension, if the standard has one."""
        return self.extensions.get("aim")

    def command_role(self, *, level: str, opens: bool = False, closes: bool = False, all_banks: bool = False) -> str | None:
        """The first row command (no column access, no data) at ``level`` that opens / closes rows (``all_banks`` for
        channel level), or None: the controller's ACT / PRE / PREA (with a two-part activation, its first part). The
        standard's own commands are tried before its extensions' (an AiM WR_AB closes every bank too, but writes data
        on the way)."""
        if opens and level == "bank" and self.activation is not None:
            return self.activation.first
        for name, c in {**self.commands, **self.all_commands}.items():
            if c.level == level and c.all_banks == all_banks and c.opens == opens and c.closes == closes \
                    and "column" not in c.uses and not c.data:
                return name
        return None

    @property
    def banks(self) -> int:
        """Banks per (pseudo-)channel."""
        return self.organization.bank_groups.value * self.organization.banks_per_group.value

    @property
    def row_bytes(self) -> int:
        """Bytes in one open row of one bank (the page), per (pseudo-)channel."""
        return self.organization.columns.value * self.organization.burst_bytes.value

    @property
    def tck_s(self) -> float:
        """Command-clock period in seconds."""
        return self.organization.tCK_ns.value * 1e-9


class _FieldError(Exception):
    """A validation failure at ``loc`` (a path into the YAML document)."""

    def __init__(self, loc: tuple, msg: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line(text: str | None, loc: tuple) -> int | None:
    """1-based line of the YAML node at ``loc`` in ``text`` (None when unknown)."""
    if text is None:
        return None
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
        if node is None:
            return None
    return node.start_mark.line + 1


def _evaluate(expr: str | int, params: dict[str, int]) -> int:
    total = 0
    for sign, term in latency_terms(expr):
        total += sign * (term if isinstance(term, int) else params[term])
    return total


def _names(expr: str | int, loc: tuple) -> list[str]:
    try:
        return [t for _, t in latency_terms(expr) if isinstance(t, str)]
    except ValueError as err:
        raise _FieldError(loc, str(err)) from None


def _need_params(expr: str | int, known: dict[str, int], loc: tuple, used: set[str]) -> None:
    for name in _names(expr, loc):
        if name not in known:
            raise _FieldError(loc, f"unknown timing parameter '{name}' in '{expr}' (add field 'timing.{name}', or fix the name)")
        used.add(name)


def _check_commands(std: DramStandard) -> None:
    seen: dict[str, tuple] = {}
    sections = [(("extensions", key, "commands"), ext.commands) for key, ext in std.extensions.items()]
    for base, commands in [(("commands",), std.commands), *sections]:
        for name, c in commands.items():
            loc = (*base, name)
            if not _NAME.match(name):
                raise _FieldError(loc, f"command name '{name}' must be letters, digits and '_'")
            if name in seen:
                raise _FieldError(loc, f"command '{name}' is declared twice (also at {_dotted(seen[name])})")
            seen[name] = loc
            if c.level not in ("bank", "channel") or c.level not in std.levels:
                raise _FieldError((*loc, "level"), f"command level '{c.level}' must be 'bank' or 'channel', one of the levels")
            if c.all_banks and c.level != "channel":
                raise _FieldError((*loc, "all_banks"), "all_banks needs level: channel")
            if c.same_bank and (c.level != "bank" or c.opens or c.closes or "bankgroup" not in std.levels):
                raise _FieldError((*loc, "same_bank"), "same_bank needs level: bank, a bankgroup level, and neither "
                                                       "opens nor closes")
            touches_banks = c.level == "bank" or c.all_banks
            if not touches_banks and (c.requires != "any" or c.opens or c.closes):
                raise _FieldError((*loc, "requires"), "a channel command without all_banks touches no bank: "
                                                      "it cannot require a bank state or open/close rows")
            if c.opens and c.closes:
                raise _FieldError((*loc, "closes"), "a command may open or close rows, not both")
            if c.opens and "row" not in c.uses:
                raise _FieldError((*loc, "uses"), "a command that opens a row must list 'row' in uses")


def _check(std: DramStandard) -> None:
    """Rules pydantic cannot state per field: names, references between sections, the numbers' inequalities."""
    levels = std.levels
    if not levels or levels[0] != "channel" or levels[-1] != "bank" or len(set(levels)) != len(levels) \
            or any(lv not in LEVELS for lv in levels):
        raise _FieldError(("levels",), f"levels {list(levels)} must run from 'channel' to 'bank' "
                                       f"(supported: channel, bankgroup, bank)")
    if "bankgroup" not in levels and std.organization.bank_groups.value != 1:
        raise _FieldError(("organization", "bank_groups"), "more than one bank group needs level 'bankgroup'")
    _check_commands(std)
    commands = std.all_commands
    # parameter names and collisions between timing sections
    owner: dict[str, tuple] = {}
    sections = [(("timing",), std.timing)] + [(("extensions", k, "timing"), e.timing) for k, e in std.extensions.items()]
    for base, timing in sections:
        for name in timing:
            if not _NAME.match(name):
                raise _FieldError((*base, name), f"parameter name '{name}' must be letters, digits and '_'")
            if name in owner:
                raise _FieldError((*base, name), f"parameter '{name}' is also given at {_dotted(owner[name])}")
            owner[name] = (*base, name)
    known = {name: 0 for name in owner}
    used: set[str] = set()
    for name, d in std.derived.items():
        loc = ("derived", name)
        if name in known:
            raise _FieldError(loc, f"'{name}' is derived and also given at {_dotted(owner[name])}")
        _need_params(d.value, known, (*loc, "value"), used)
        known[name] = 0
    p = std.params  # every name resolves now

    def need_command(name: str, loc: tuple) -> None:
        if name not in commands:
            raise _FieldError(loc, f"unknown command '{name}' (declared: {', '.join(commands)})")

    for base, specs in [(("constraints",), std.constraints)] + [
            (("extensions", k, "constraints"), e.constraints) for k, e in std.extensions.items()]:
        for i, c in enumerate(specs):
            loc = (*base, i)
            if c.level not in levels:
                raise _FieldError((*loc, "level"), f"unknown level '{c.level}' (levels: {', '.join(levels)})")
            for key in ("preceding", "following"):
                for j, name in enumerate(getattr(c, key)):
                    need_command(name, (*loc, key, j))
            _need_params(c.latency, known, (*loc, "latency"), used)
    if std.command_buses is not None:
        buses = std.command_buses
        for key in ("row", "column"):
            for j, name in enumerate(getattr(buses, key)):
                need_command(name, ("command_buses", key, j))
        both = set(buses.row) & set(buses.column)
        missing = [n for n in commands if n not in buses.row and n not in buses.column]
        if both or missing:
            raise _FieldError(("command_buses",), f"every command must be on exactly one bus: "
                                                  f"{sorted(both)[0] + ' is on both' if both else missing[0] + ' is on none'}")
    for name in std.command_cycles:
        need_command(name, ("command_cycles", name))
    act2 = std.activation
    for name, c in commands.items():
        if c.requires == "activating" and (act2 is None or name != act2.second):
            raise _FieldError(("commands", name, "requires"), "requires: activating is for the second part of a "
                                                              "two-part activation (declare activation: {first, second})")
    if act2 is not None:
        need_command(act2.first, ("activation", "first"))
        need_command(act2.second, ("activation", "second"))
        a, b = commands[act2.first], commands[act2.second]
        if not (a.level == "bank" and a.opens and a.requires == "closed"):
            raise _FieldError(("activation", "first"), f"'{act2.first}' must be a bank command that requires the bank "
                                                       "closed and opens a row")
        if not (b.level == "bank" and b.opens and b.requires == "activating"):
            raise _FieldError(("activation", "second"), f"'{act2.second}' must be a bank command with requires: "
                                                        "activating and opens: true")
    if std.ranks is not None:
        for i, c in enumerate(std.ranks.constraints):
            loc = ("ranks", "constraints", i)
            for key in ("preceding", "following"):
                for j, name in enumerate(getattr(c, key)):
                    need_command(name, (*loc, key, j))
            _need_params(c.latency, known, (*loc, "latency"), used)
    for name, c in commands.items():
        base = ("commands", name) if name in std.commands else \
            next(("extensions", k, "commands", name) for k, e in std.extensions.items() if name in e.commands)
        _need_params(c.data, known, (*base, "data"), used)
    need_command(std.requests.read, ("requests", "read"))
    need_command(std.requests.write, ("requests", "write"))
    if std.auto_precharge is not None:
        for key in ("read", "write"):
            name = getattr(std.auto_precharge, key)
            need_command(name, ("auto_precharge", key))
            c = commands[name]
            if not (c.level == "bank" and c.requires == "row" and c.closes and "column" in c.uses):
                raise _FieldError(("auto_precharge", key), f"'{name}' must be a bank command that requires the row "
                                                           "open, uses a column and closes the bank")
    for field, fits, what in (
            ("refresh", lambda c: c.all_banks and c.requires == "closed",
             "an all-bank command that requires closed banks"),
            ("refresh_per_bank", lambda c: c.level == "bank" and c.requires == "closed",
             "a bank command that requires its bank closed"),
            ("refresh_same_bank", lambda c: c.same_bank and c.requires == "closed",
             "a same_bank command that requires its banks closed")):
        spec = getattr(std, field)
        if spec is None:
            continue
        need_command(spec.command, (field, "command"))
        if not fits(commands[spec.command]):
            raise _FieldError((field, "command"), f"'{spec.command}' must be {what}")
        _need_params(spec.interval, known, (field, "interval"), used)
    for i, text in enumerate(std.checks):
        loc = ("checks", i)
        m = re.fullmatch(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*(>=|>)\s*(.+?)\s*", text)
        if not m:
            raise _FieldError(loc, f"check '{text}' must read 'PARAM >= EXPR' or 'PARAM > EXPR'")
        lhs, op, rhs = m.groups()
        _need_params(lhs, known, loc, used)
        _need_params(rhs, known, loc, used)
        lv, rv = p[lhs], _evaluate(rhs, p)
        if not (lv >= rv if op == ">=" else lv > rv):
            field = owner.get(lhs, ("derived", lhs))
            bad = "<" if op == ">=" else "<="
            shown = f"{rhs} = {rv}" if rhs != str(rv) else rhs
            raise _FieldError(field, f"{lhs} {lv} {bad} {shown} (check '{text}')")
    for name, loc in owner.items():
        if name not in used:
            raise _FieldError(loc, f"parameter '{name}' is not used by any constraint, command, derived timing, check "
                                   "or refresh (remove it, or fix its name)")
    org = std.organization
    pc_bits = org.bus_width_bits.value // org.pseudo_channels.value
    burst_bits = pc_bits * org.burst_length.value
    if org.burst_bytes.value * 8 != burst_bits:
        raise _FieldError(("organization", "burst_bytes"), f"{org.burst_bytes.value} B != bus_width_bits/pseudo_channels "
                                                           f"* burst_length / 8 = {burst_bits / 8:g} B")
    _check_clock(std)


def _check_clock(std: DramStandard) -> None:
    """One clock for the pin rate and the cycle counts: ``data_rate_gbps * tCK_ns`` beats per CK must carry one burst
    in ``tBL`` cycles, and back-to-back bursts (one per ``max(tBL, tCCD_S)``) must deliver the bus's declared peak
    ``bus_width_bits * data_rate_gbps / 8`` (within 1%, for tCK rounding). Standards without ``tBL`` (a bare
    timing table) are not checked."""
    org, p = std.organization, std.params
    if "tBL" not in p or "tCCD_S" not in p:
        return
    rate, tck = org.data_rate_gbps.value, org.tCK_ns.value
    beats = rate * tck  # data beats per CK per pin
    need = org.burst_length.value / beats
    if abs(p["tBL"] - need) > 0.01 * need:
        raise _FieldError(("timing", "tBL"), f"tBL {p['tBL']} CK, but burst_length {org.burst_length.value} at "
                                             f"data_rate_gbps {rate:g} x tCK_ns {tck:g} = {beats:g} beats per CK takes "
                                             f"{need:g} CK: make the clock and the cycle counts agree")
    peak = org.bus_width_bits.value * rate / 8  # GB/s per channel
    column = org.pseudo_channels.value * org.burst_bytes.value / (max(p["tBL"], p["tCCD_S"]) * tck)
    if column < 0.99 * peak:
        raise _FieldError(("timing", "tCCD_S"), f"one burst of {org.burst_bytes.value} B per pseudo channel every "
                                                f"max(tBL, tCCD_S) = {max(p['tBL'], p['tCCD_S'])} CK of {tck:g} ns "
                                                f"delivers {column:.1f} GB/s, below the channel's {peak:.1f} GB/s "
                                                f"(bus_width_bits x data_rate_gbps / 8): make the clock and the cycle "
                                                "counts agree")


def _first_error(err: ValidationError) -> tuple[tuple, str]:
    errors = err.errors()
    first = errors[0]
    msg = first["msg"]
    if first["type"] == "model_type" or first["type"] == "model_attributes_type":
        msg += ' (write every number as {value: N, source: "..."})'
    if len(errors) > 1:
        msg += f" (and {len(errors) - 1} more error(s))"
    return tuple(first["loc"]), msg


def _fail(where: str, text: str | None, loc: tuple, msg: str) -> HwsimError:
    line = _line(text, loc)
    return HwsimError(f"{where}: field '{_dotted(loc)}': {msg}{f' (line {line})' if line else ''}")


def standard_from_dict(data: object, where: str = "<dict>", text: str | None = None) -> DramStandard:
    """Validate an already-parsed YAML mapping; ``where`` names it in error messages and ``text`` (the file's YAML,
    when known) gives line numbers."""
    if not isinstance(data, dict):
        raise HwsimError(f"{where}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        std = DramStandard.model_validate(data)
    except ValidationError as err:
        loc, msg = _first_error(err)
        raise _fail(where, text, loc, msg) from None
    try:
        _check(std)
    except _FieldError as err:
        raise _fail(where, text, err.loc, err.msg) from None
    return std


def load_standard(name_or_path: str | Path) -> DramStandard:
    """Load a preset by name (``"gddr6"``, ``"hbm3"``, ...) or a YAML file by path (cached: standards are
    immutable, and every PIM target validation asks for its standard)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return _load(str(path.resolve()), path.stat().st_mtime_ns)
    return _load(str(name_or_path), 0)


@functools.lru_cache(maxsize=64)
def _load(name_or_path: str, _mtime: int) -> DramStandard:
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = PRESET_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in PRESET_DIR.glob("*.yaml")))
            raise HwsimError(f"unknown DRAM standard '{name_or_path}' (known: {known})")
    if not path.is_file():
        raise HwsimError(f"{path}: no such DRAM standard file")
    return standard_from_dict(read_yaml(path, path.name), path.name, path.read_text())


@functools.lru_cache(maxsize=1)
def extension_commands() -> dict[str, tuple[str, str]]:
    """Commands declared by the shipped standards' extensions: name -> (extension key, title). A channel names the
    missing extension when it is given one of these commands and its standard lacks it."""
    out: dict[str, tuple[str, str]] = {}
    for path in sorted(PRESET_DIR.glob("*.yaml")):
        std = load_standard(path.stem)
        for key, ext in std.extensions.items():
            for name in ext.commands:
                out.setdefault(name, (key, ext.title))
    return out
