"""The timing-constraint table: one line per datasheet rule, Ramulator 2.0 style.

A constraint says: at ``level`` (the same bank, the same bank group, or anywhere in the channel), a command in
``following`` may issue no earlier than ``latency`` cycles after the most recent command in ``preceding``
(with ``window=N``: after the N-th most recent one, which is how tFAW limits four ACTs per window).
``latency`` is a sum of parameter names and integers, e.g. ``"tCWL+tBL+tWR"``.

Same-bank-group rules live at the ``bankgroup`` level with the ``_L`` parameter and the cross-group rules at the
``channel`` level with the ``_S`` one; since ``_L >= _S`` the larger one wins inside a group.
"""

from __future__ import annotations

from dataclasses import dataclass

from hardware.errors import HwsimError

LEVELS = ("bank", "bankgroup", "channel")


@dataclass(frozen=True, slots=True)
class TimingConstraint:
    """One rule: ``following`` waits ``latency`` cycles after ``preceding`` at ``level`` (over ``window`` commands)."""

    level: str
    preceding: tuple[str, ...]
    following: tuple[str, ...]
    latency: str
    window: int = 1


C = TimingConstraint

# RD->WR bus turnaround: the read's last data beat leaves at RD+tCL+tBL; the write's first beat arrives at
# WR+tCWL; two idle cycles separate them on the bidirectional data bus, so WR >= RD + tCL + tBL + 2 - tCWL.
BASE_TABLE: tuple[TimingConstraint, ...] = (
    # --- same bank ---
    C("bank", ("ACT",), ("RD",), "tRCDRD"),
    C("bank", ("ACT",), ("WR",), "tRCDWR"),
    C("bank", ("ACT",), ("ACT",), "tRC"),
    C("bank", ("ACT",), ("PRE", "PREA"), "tRAS"),
    C("bank", ("PRE",), ("ACT", "REF"), "tRP"),
    C("bank", ("PREA",), ("ACT", "REF"), "tRPab"),
    C("bank", ("RD",), ("PRE", "PREA"), "tRTP"),
    C("bank", ("WR",), ("PRE", "PREA"), "tCWL+tBL+tWR"),
    C("bank", ("REF",), ("ACT", "REF"), "tRFC"),
    # --- same bank group ---
    C("bankgroup", ("ACT",), ("ACT",), "tRRD_L"),
    C("bankgroup", ("RD",), ("RD",), "tCCD_L"),
    C("bankgroup", ("WR",), ("WR",), "tCCD_L"),
    C("bankgroup", ("WR",), ("RD",), "tCWL+tBL+tWTR_L"),
    # --- anywhere in the channel ---
    C("channel", ("ACT",), ("ACT",), "tRRD_S"),
    C("channel", ("ACT",), ("ACT",), "tFAW", window=4),
    C("channel", ("RD",), ("RD",), "tCCD_S"),
    C("channel", ("WR",), ("WR",), "tCCD_S"),
    C("channel", ("RD",), ("RD",), "tBL"),
    C("channel", ("WR",), ("WR",), "tBL"),
    C("channel", ("WR",), ("RD",), "tCWL+tBL+tWTR_S"),
    C("channel", ("RD",), ("WR",), "tCL+tBL+2-tCWL"),
)

# SK hynix GDDR6-AiM, after AIM-SIM GDDR6.cpp populate_timingcons (docs/research/dram_pim.md section 3.3).
# ACT_AB is an ACT in every bank (not counted in tFAW: AIM-SIM comments that rule out); MAC_ABK reads every bank.
AIM_TABLE: tuple[TimingConstraint, ...] = (
    C("bank", ("ACT", "ACT_AB"), ("MAC_ABK",), "tMAC"),
    C("bank", ("ACT_AB",), ("RD",), "tRCDRD"),
    C("bank", ("ACT_AB",), ("WR",), "tRCDWR"),
    C("bank", ("ACT", "ACT_AB"), ("ACT_AB",), "tRC"),
    C("bank", ("ACT_AB",), ("ACT",), "tRC"),
    C("bank", ("ACT_AB",), ("PRE", "PREA"), "tRAS"),
    C("bank", ("PRE",), ("ACT_AB",), "tRP"),
    C("bank", ("PREA",), ("ACT_AB",), "tRPab"),
    C("bank", ("REF",), ("ACT_AB",), "tRFC"),
    C("bank", ("MAC_ABK",), ("PRE", "PREA"), "tRTP"),
    C("channel", ("MAC_ABK", "RD", "RD_MAC"), ("MAC_ABK", "RD", "RD_MAC"), "tCCD_MAC"),
    C("channel", ("RD", "RD_MAC"), ("RD", "RD_MAC"), "tBL"),
    C("channel", ("WR", "WR_GB"), ("WR", "WR_GB"), "tBL"),
    C("channel", ("WR_GB",), ("MAC_ABK",), "tCWL_GB+tBL"),
)


def latency_cycles(expr: str, params: dict[str, int]) -> int:
    """Evaluate a latency such as ``"tCL+tBL+2-tCWL"`` against ``params`` (cycles); never below 0."""
    total = 0
    for raw in expr.replace("-", "+-").split("+"):
        term = raw.strip()
        if not term:
            continue
        sign = -1 if term.startswith("-") else 1
        name = term.lstrip("-").strip()
        if name.isdigit():
            value = int(name)
        elif name in params:
            value = params[name]
        else:
            raise HwsimError(f"timing constraint '{expr}': unknown parameter '{name}'")
        total += sign * value
    return max(total, 0)


@dataclass(frozen=True, slots=True)
class Rule:
    """A constraint resolved for one following command: level index, preceding commands, cycles, window."""

    level: int
    preceding: tuple[str, ...]
    cycles: int
    window: int


def build_rules(params: dict[str, int], aim: bool) -> dict[str, list[Rule]]:
    """Resolve the table against a standard's parameters, indexed by following command."""
    table = BASE_TABLE + (AIM_TABLE if aim else ())
    rules: dict[str, list[Rule]] = {}
    for con in table:
        if con.level not in LEVELS:
            raise HwsimError(f"timing constraint level '{con.level}' is not one of {LEVELS}")
        rule = Rule(LEVELS.index(con.level), con.preceding, latency_cycles(con.latency, params), con.window)
        for cmd in con.following:
            rules.setdefault(cmd, []).append(rule)
    return rules
