"""Read the SASS listing that ``nvdisasm -c`` writes and find its loops.

A listing line holding an instruction looks like ``        /*6e60*/  @!P0 FADD R30, RZ, R45 ;`` and a label line like
``.L_x_94:``. :func:`parse` turns the listing into ``(address, text)`` pairs (the text without the trailing ``;``) and
a map from each label to the address of the instruction that follows it. :func:`back_edges` lists the branches whose
target lies at or before the branch itself: each one closes a loop that spans ``[target, branch]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

#: an instruction line: its address in a comment, then the instruction up to the ``;``
INSTRUCTION_RE = re.compile(r"^\s+/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;?\s*$")
#: a label line: nvdisasm's local ``.L_x_N`` labels and the ``$name`` labels of called subroutines
LABEL_RE = re.compile(r"^(\.L_x_\d+|\$[\w$]+):")
#: a guard predicate in front of an instruction (``@P0``, ``@!UP3``, ``@PT``)
GUARD_RE = re.compile(r"^@!?U?P[T0-9]\s+")
#: the local label a branch names, as in ``BRA `(.L_x_94)``
BRANCH_TARGET_RE = re.compile(r"\(\s*(\.L_x_\d+)\s*\)")

Instruction = tuple[int, str]


def parse_lines(lines: Iterable[str]) -> tuple[list[Instruction], dict[str, int]]:
    """The instructions ``(address, text)`` of a listing, in order, and the address each label points to."""
    instructions: list[Instruction] = []
    labels: dict[str, int] = {}
    pending: list[str] = []  # labels seen since the last instruction
    for line in lines:
        match = LABEL_RE.match(line)
        if match:
            pending.append(match.group(1))
            continue
        match = INSTRUCTION_RE.match(line)
        if match:
            address = int(match.group(1), 16)
            for label in pending:
                labels[label] = address
            pending = []
            instructions.append((address, match.group(2).rstrip(" ;")))
    return instructions, labels


def parse(path: str | Path) -> tuple[list[Instruction], dict[str, int]]:
    """:func:`parse_lines` of the ``nvdisasm -c`` listing in the file ``path``."""
    with open(path) as listing:
        return parse_lines(listing)


def opcode(text: str) -> str:
    """The opcode with its modifiers (``LDG.E.128``) of an instruction's text, without the guard predicate."""
    fields = GUARD_RE.sub("", text).split()
    return fields[0] if fields else ""


def branch_target(text: str) -> str | None:
    """The local label a branch instruction jumps to, or None if it names none."""
    match = BRANCH_TARGET_RE.search(text)
    return match.group(1) if match else None


def back_edges(instructions: list[Instruction], labels: dict[str, int]) -> list[tuple[int, int, str, str]]:
    """The loops of a listing: ``(start, end, label, branch text)`` for every branch (``BRA`` of any kind) whose
    target address is at or before its own; the loop body is the instructions from ``start`` to ``end``."""
    loops = []
    for address, text in instructions:
        if "BRA" not in opcode(text):
            continue
        label = branch_target(text)
        if label is not None and labels[label] <= address:
            loops.append((labels[label], address, label, text))
    return loops
