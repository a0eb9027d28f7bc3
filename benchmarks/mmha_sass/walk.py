"""Walk one iteration of a loop in a SASS listing and count the warp-instructions it issues.

The walk starts at the loop's first instruction and follows the path a converged warp takes, by these rules:

* every instruction on the path counts once, predicated-off ones too (they still issue);
* ``BRA.DIV`` (the check for a diverged warp) is not taken: the warp is converged;
* the loop's back-edge ends the iteration;
* an unconditional ``BRA`` is taken;
* a conditional ``BRA`` is resolved from the instruction on the walked path that last set its predicate, with the value
  assumption ``mode`` (only the software fp8 decode of sm_80 has such data-dependent branches):

  - ``normal``: the fp8 bytes are finite and normal (non-zero exponent): ``ISETP.NE x, 0x7f..`` (not NaN) is true and
    ``ISETP.NE x, RZ`` (exponent or mantissa non-zero) is true;
  - ``zero``: the fp8 bytes are +-0: ``ISETP.NE x, 0x7f..`` is true and ``ISETP.NE x, RZ`` false;

* any other conditional branch, a branch out of the loop, or an ``EXIT`` raises :class:`WalkError`: nothing is guessed.
"""

from __future__ import annotations

import re
from collections import Counter

from sass import Instruction, branch_target, opcode

MODES = ("normal", "zero")
#: walked instructions before the walk gives up
MAX_STEPS = 100_000

_CONVERSIONS = ("F2FP", "F2F", "F2I", "I2FP", "F2IP", "FRND")
_FP32 = ("FFMA", "FMUL", "FADD", "FMNMX", "FSEL", "FSETP", "FCHK")
_FP16X2 = ("HFMA2", "HADD2", "HMUL2", "HMNMX2", "HSETP2")
_PREDICATE = ("ISETP", "PLOP3", "P2R", "R2P", "VOTE", "VOTEU")
_CONTROL = ("BRA", "BSSY", "BSYNC", "EXIT", "WARPSYNC", "CALL", "RET", "BREAK", "BMOV")
_INTEGER = ("IMAD", "IADD3", "LEA", "SHF", "LOP3", "IMNMX", "SEL", "IABS", "ISCADD", "FLO", "POPC", "MOV", "IMUL",
            "VIMNMX", "VIADD", "VIADDMNMX", "IMNMX3")
_UNIFORM = ("UIADD3", "UMOV", "ULDC", "UIMAD", "ULOP3", "USHF", "ULEA", "UISETP", "S2UR", "R2UR", "USEL")
_MISC = ("S2R", "CS2R", "NOP", "DEPBAR")
#: the instructions that write a predicate as their first or second destination
_PREDICATE_WRITERS = ("ISETP", "LOP3", "FSETP", "PLOP3", "HSETP2", "R2P")


class WalkError(RuntimeError):
    """The walk met a branch it may not resolve, left the loop, or did not end."""


def classify(op: str) -> str:
    """The fine instruction class of an opcode (``fp32_FFMA``, ``cvt_HADD2.F32``, ``int_LOP3``, ``ctrl_BRA``, ...)."""
    base = op.split(".")[0]
    if op.startswith("HADD2.F32"):
        return "cvt_HADD2.F32"
    if base in ("I2F", "I2FP"):
        return "cvt_I2F"
    if base == "LDC":
        return "LDC"
    if base in _CONVERSIONS:
        return "cvt_" + base
    if base == "PRMT":
        return "PRMT"
    if base in _FP32:
        return "fp32_" + base
    if base in _FP16X2:
        return "HFMA2.MMA(mov)" if op.startswith("HFMA2.MMA") else "fp16x2_" + base
    if base in ("SHFL", "LDG", "STG", "LDS", "STS", "LDSM", "MUFU", "BAR"):
        return base
    if base in ("LDL", "STL"):
        return "local_" + base
    if base in _PREDICATE:
        return "pred_" + base
    if base in _CONTROL:
        return "ctrl_" + base
    if base in _INTEGER:
        return "int_" + base
    if base in _UNIFORM:
        return "uniform_" + base
    if base in _MISC:
        return "misc_" + base
    return "other_" + base


def guard(text: str) -> tuple[str | None, bool]:
    """The guard predicate of an instruction and whether it is negated: ``("P0", True)`` for ``@!P0 ...``."""
    match = re.match(r"^@(!?)(U?P[0-9T])\s", text)
    return (match.group(2), match.group(1) == "!") if match else (None, False)


def writes_predicate(text: str, predicate: str) -> bool:
    """Whether the instruction sets ``predicate`` as one of its first two destinations."""
    fields = re.sub(r"^@!?U?P[T0-9]\s+", "", text).split(None, 1)
    if len(fields) < 2:
        return False
    destinations = [d.strip() for d in fields[1].split(",")[:2]]
    return fields[0].split(".")[0] in _PREDICATE_WRITERS and predicate in destinations


def evaluate_predicate(definition: str, mode: str) -> bool | None:
    """The value the predicate-setting instruction ``definition`` gives under the assumption ``mode``, or None when
    the rules do not cover it."""
    text = re.sub(r"\s+", " ", definition).replace(".reuse", "")
    if re.search(r"ISETP\.NE\.AND P\d, PT, R\d+, 0x7f(00)*, PT", text):  # the fp8 byte is not NaN
        return True
    if re.search(r"ISETP\.NE\.AND P\d, PT, R\d+, RZ, PT", text):  # its exponent (or mantissa) is not zero
        return mode == "normal"
    if re.search(r"ISETP\.GE(\.U32)?\.AND P\d, PT, R\d+, c\[0x0\]\[0x258\], PT", text):
        return False  # multi-block builds: local_ti < timesteps_per_block (the key is in range)
    return None


def walk(instructions: list[Instruction], labels: dict[str, int], start: int, end: int,
         mode: str = "normal") -> tuple[list[Instruction], list[tuple[str, str, str, bool]]]:
    """Walk one iteration of the loop ``[start, end]`` (addresses; ``end`` is its back-edge).

    Returns the walked path (every issued instruction, in issue order) and the data-dependent branches it resolved,
    as ``(address, branch, predicate definition, taken)``."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: not one of {MODES}")
    index = {address: i for i, (address, _) in enumerate(instructions)}
    i = index[start]
    path: list[Instruction] = []
    decisions: list[tuple[str, str, str, bool]] = []
    while True:
        if len(path) >= MAX_STEPS:
            raise WalkError(f"no back-edge after {MAX_STEPS} instructions")
        address, text = instructions[i]
        op = opcode(text)
        path.append((address, text))
        if address == end:
            return path, decisions
        if op.startswith("BRA"):
            target = labels[branch_target(text)]
            predicate, negated = guard(text)
            if op.startswith("BRA.DIV"):
                taken = False
            elif predicate is None:
                taken = True
            else:
                definition = next((t for _, t in reversed(path[:-1]) if writes_predicate(t, predicate)), None)
                value = evaluate_predicate(definition, mode) if definition else None
                if value is None:
                    raise WalkError(f"unresolved branch at {address:#x}: {text} (predicate set by: {definition})")
                taken = (not value) if negated else value
                decisions.append((hex(address), text.strip(), definition.strip(), taken))
            if taken:
                if not start <= target <= end:
                    raise WalkError(f"branch at {address:#x} leaves the loop")
                i = index[target]
                continue
        elif op == "EXIT":
            raise WalkError(f"EXIT at {address:#x} inside the loop")
        i += 1


def count(path: list[Instruction]) -> Counter[str]:
    """The walked path's instructions by :func:`classify` class."""
    return Counter(classify(opcode(text)) for _, text in path)
