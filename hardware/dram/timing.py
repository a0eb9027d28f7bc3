"""The generic timing-rule compiler: a standard's constraint table (data) resolved against its parameters.

A constraint (one line of a standard's ``constraints:`` in ``hardware/presets/dram/*.yaml``, Ramulator 2.0 style)
says: at ``level`` (the same bank, the same bank group, or anywhere in the channel), a command in ``following``
may issue no earlier than ``latency`` cycles after the most recent command in ``preceding`` (with ``window: N``:
after the N-th most recent one, which is how tFAW limits four ACTs per window). ``latency`` is a sum and
difference of parameter names and integers, e.g. ``"tCL + tBL + 2 - tCWL"``; it never goes below 0.

Same-bank-group rules live at the ``bankgroup`` level with the ``_L`` parameter and the cross-group rules at the
``channel`` level with the ``_S`` one; the standards' ``checks`` keep ``_L >= _S`` so the larger one wins inside a
group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hardware.errors import HwsimError

#: hierarchy levels a constraint may name, innermost first (the index is the level number the compiler uses)
LEVELS = ("bank", "bankgroup", "channel")

_TERM = re.compile(r"\s*([+-])?\s*([A-Za-z][A-Za-z0-9_]*|\d+)\s*")


@dataclass(frozen=True, slots=True)
class TimingConstraint:
    """One rule: ``following`` waits ``latency`` cycles after ``preceding`` at ``level`` (over ``window`` commands)."""

    level: str
    preceding: tuple[str, ...]
    following: tuple[str, ...]
    latency: str
    window: int = 1


def latency_terms(expr: str | int) -> list[tuple[int, int | str]]:
    """``"tCL + tBL + 2 - tCWL"`` -> ``[(1, 'tCL'), (1, 'tBL'), (1, 2), (-1, 'tCWL')]``; ValueError if malformed."""
    if isinstance(expr, int):
        return [(1, expr)]
    terms: list[tuple[int, int | str]] = []
    pos = 0
    text = str(expr)
    while pos < len(text):
        m = _TERM.match(text, pos)
        if not m or m.end() == pos or (terms and m.group(1) is None):
            raise ValueError(f"latency '{expr}' must be parameter names and integers joined by + and -")
        sign = -1 if m.group(1) == "-" else 1
        term = m.group(2)
        terms.append((sign, int(term) if term.isdigit() else term))
        pos = m.end()
    if not terms:
        raise ValueError("latency is empty: give parameter names and integers joined by + and -")
    return terms


def latency_cycles(expr: str | int, params: dict[str, int]) -> int:
    """Evaluate a latency such as ``"tCL+tBL+2-tCWL"`` against ``params`` (cycles); never below 0."""
    try:
        terms = latency_terms(expr)
    except ValueError as err:
        raise HwsimError(f"timing constraint: {err}") from None
    total = 0
    for sign, term in terms:
        if isinstance(term, str):
            if term not in params:
                raise HwsimError(f"timing constraint '{expr}': unknown parameter '{term}'")
            term = params[term]
        total += sign * term
    return max(total, 0)


@dataclass(frozen=True, slots=True)
class Rule:
    """A constraint resolved for one following command: level index, preceding commands, cycles, window."""

    level: int
    preceding: tuple[str, ...]
    cycles: int
    window: int


def build_rules(table: tuple[TimingConstraint, ...], params: dict[str, int]) -> dict[str, list[Rule]]:
    """Resolve a standard's table against its parameters, indexed by following command."""
    rules: dict[str, list[Rule]] = {}
    for con in table:
        if con.level not in LEVELS:
            raise HwsimError(f"timing constraint level '{con.level}' is not one of {LEVELS}")
        rule = Rule(LEVELS.index(con.level), con.preceding, latency_cycles(con.latency, params), con.window)
        for cmd in con.following:
            rules.setdefault(cmd, []).append(rule)
    return rules
