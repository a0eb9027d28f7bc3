"""Read the sections of a cubin (an ELF64 file): the emulator needs the ``.nv.constant2`` bank the compiler fills."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

SHT_NOBITS = 8  # a section that takes no room in the file (zero-filled)


def sections(path: str | Path) -> dict[str, bytes]:
    """Every section of the ELF64 file ``path`` by name, with its contents (zeros for a NOBITS section)."""
    data = Path(path).read_bytes()
    (section_offset,) = struct.unpack_from("<Q", data, 0x28)
    entry_size, count, names_index = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, section_offset + i * entry_size) for i in range(count)]
    names_offset = headers[names_index][4]
    out = {}
    for name_at, kind, _flags, _address, offset, size, *_ in headers:
        start = names_offset + name_at
        name = data[start:data.index(b"\0", start)].decode()
        out[name] = bytes(size) if kind == SHT_NOBITS else data[offset:offset + size]
    return out


def constant_banks(path: str | Path) -> dict[int, bytes]:
    """The compiler-filled constant banks of a cubin: ``{2: contents of .nv.constant2.<kernel>}``."""
    banks = {}
    for name, contents in sections(path).items():
        if name.startswith(".nv.constant2."):
            banks[2] = contents
    return banks


if __name__ == "__main__":
    for section, contents in sections(sys.argv[1]).items():
        print(section, len(contents), contents[:64].hex() if section.startswith(".nv.constant") else "")
