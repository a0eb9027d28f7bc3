"""The four request traces of the DRAM validation (``reports/dram_validation.md``), Ramulator 2 LoadStoreTrace
format (``LD|ST ADDR``), written to ``simulator/validation/data/dram/traces/``:

- ``sequential``: reads of consecutive 64-B lines (streaming; row hits under RoBaRaCoCh);
- ``random``: reads of random 64-B lines in the lowest 256 MiB (every shipped standard's channel holds that);
- ``row_conflict``: reads alternating between two rows of bank 0 (2^27 B apart: a different row of the same bank
  under RoBaRaCoCh for every shipped standard), walking the columns;
- ``mixed_2to1``: two reads per write, random 64-B lines of a 256 KiB working set (so some reads hit queued writes).

    python -m simulator.validation.dram_traces
"""

from __future__ import annotations

import random
from pathlib import Path

TRACE_DIR = Path(__file__).resolve().parent / "data" / "dram" / "traces"
REQUESTS = 5000
SEED = 12
LINE = 64


def traces(n: int = REQUESTS, seed: int = SEED) -> dict[str, list[tuple[bool, int]]]:
    """name -> [(is_write, byte address)]."""
    rng = random.Random(seed)
    out = {
        "sequential": [(False, i * LINE) for i in range(n)],
        "random": [(False, rng.randrange(1 << 28) // LINE * LINE) for _ in range(n)],
        "row_conflict": [(False, (i % 2) * (1 << 27) + (i // 2 % 16) * LINE) for i in range(n)],
    }
    mixed = []
    for i in range(n):
        mixed.append((i % 3 == 2, rng.randrange(1 << 18) // LINE * LINE))
    out["mixed_2to1"] = mixed
    return out


def write_traces(directory: Path = TRACE_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, reqs in traces().items():
        p = directory / f"{name}.trace"
        p.write_text("".join(f"{'ST' if w else 'LD'} 0x{a:x}\n" for w, a in reqs))
        paths.append(p)
    return paths


if __name__ == "__main__":
    for p in write_traces():
        print(f"wrote {p}")
