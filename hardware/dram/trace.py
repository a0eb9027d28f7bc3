"""Memory request traces in Ramulator 2's formats (CMU-SAFARI/ramulator2 @c5b1c3a src/ramulator/frontend/impl/
memory_trace): one request per line, two space-separated tokens.

- LoadStoreTrace: ``LD ADDR`` / ``ST ADDR``, ADDR a byte address in decimal or ``0x`` hex; mapped by an address
  mapper (:mod:`hardware.dram.address_mapping`).
- ReadWriteTrace: ``R ADDRVEC`` / ``W ADDRVEC``, ADDRVEC comma-separated integers ``channel,bankgroup,bank,row,
  column`` (one value per level of the standard, outermost first; ``column`` counts bursts).

Blank lines and lines starting with ``#`` are skipped (Ramulator rejects them). Any other malformed line is a
one-line :class:`~hardware.errors.HwsimError` naming the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hardware.errors import HwsimError, unreadable

_LS = {"LD": False, "ST": True}
_RW = {"R": False, "W": True}


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One request: write or read, and either a byte address (``addr``) or an address vector (``vector``)."""

    is_write: bool
    addr: int = -1
    vector: tuple[int, ...] | None = None


def parse_trace(text: str, where: str = "<trace>") -> list[TraceEntry]:
    """Parse a LoadStoreTrace or ReadWriteTrace (the first request line decides which; no mixing)."""
    out: list[TraceEntry] = []
    kind = None
    for num, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tokens = line.split()
        if len(tokens) != 2:
            raise HwsimError(f"{where} line {num}: expected 2 tokens 'LD|ST ADDR' or 'R|W ch,bg,ba,row,col', "
                             f"got {len(tokens)}: '{line[:60]}'")
        op, arg = tokens
        if kind is None:
            kind = "ls" if op in _LS else "rw" if op in _RW else None
            if kind is None:
                raise HwsimError(f"{where} line {num}: unknown request type '{op}' (LD/ST for a load-store trace, "
                                 "R/W for a read-write trace)")
        ops = _LS if kind == "ls" else _RW
        if op not in ops:
            raise HwsimError(f"{where} line {num}: request type '{op}' in a {'load-store' if kind == 'ls' else 'read-write'}"
                             f" trace (expected {' or '.join(ops)})")
        try:
            if kind == "ls":
                addr = int(arg[2:], 16) if arg[:2].lower() == "0x" else int(arg, 10)
                if addr < 0:
                    raise ValueError
                if addr >= 1 << 64:  # the address mapper would drop the high bits silently
                    raise HwsimError(f"{where} line {num}: address '{arg[:40]}' is wider than 64 bits")
                out.append(TraceEntry(ops[op], addr=addr))
            else:
                vec = tuple(int(v, 10) for v in arg.split(","))
                if any(v < 0 for v in vec):
                    raise ValueError
                out.append(TraceEntry(ops[op], vector=vec))
        except ValueError:
            what = "a non-negative decimal or 0x-hex byte address" if kind == "ls" else \
                "comma-separated non-negative integers ch,bg,ba,row,col"
            raise HwsimError(f"{where} line {num}: bad address '{arg[:40]}' (expected {what})") from None
    if not out:
        raise HwsimError(f"{where}: the trace has no requests")
    return out


def read_trace(path: str | Path) -> list[TraceEntry]:
    """Read and parse a trace file; HwsimError if it cannot be read."""
    p = Path(path)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise HwsimError(f"{p}: cannot read the trace: {unreadable(err, 'a text trace')}") from None
    return parse_trace(text, str(p))
