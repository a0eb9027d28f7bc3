"""Run the AiM simulator (arkhadem/aim_simulator) on the AiM validation traces and store its numbers as data
(``simulator/validation/data/aim/aimsim.yaml``), for ``python -m simulator.validation.aim``.

CI cannot build it, so its results are committed. To regenerate: clone github.com/arkhadem/aim_simulator at the
commit below, build it (cmake + g++ 12; yaml-cpp and spdlog from the system; its ``argparse`` header only parses
``-f CONFIG -t TRACE``), then

    PYTHONPATH=$PWD python -m simulator.validation.aim_aimsim --binary AIMSIM/build/ramulator2

Each trace (:mod:`simulator.validation.aim_cases`) runs with the simulator's own example configuration
(``test/example.yaml``: AiMTrace frontend, AiMDRAM memory system, GDDR6 ``GDDR6_AiM_org`` / ``GDDR6_AiM_timing``,
AiM controller, all clock ratios 1), reproduced in :data:`CONFIG`. Stored per case: ``memory_system_cycles``, the
DRAM commands of channel 0 (``CH0_num_*_commands``) summed over channels, the trace's sha256 and the wall time.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from simulator.validation.aim_cases import CASES

DATA = Path(__file__).resolve().parent / "data" / "aim" / "aimsim.yaml"
AIMSIM_COMMIT = "0f28a07bdb83e42b9305ad3d45410ebd3aa2c091"
#: aim_simulator test/example.yaml @0f28a07, verbatim in substance
CONFIG = """Frontend:
  impl: AiMTrace
  clock_ratio: 1
  Translation:
    impl: NoTranslation
    max_addr: 2147483648
MemorySystem:
  impl: AiMDRAM
  clock_ratio: 1
  DRAM:
    impl: GDDR6
    org:
      preset: GDDR6_AiM_org
    timing:
      preset: GDDR6_AiM_timing
  Controller:
    impl: AiM
    clock_ratio: 1
    Scheduler:
      impl: FRFCFS
    RefreshManager:
      impl: AllBank
    plugins:
  AddrMapper:
    impl: RoBaRaCoCh
"""
_STAT = re.compile(r"^\s*(\S+):\s*(-?\d+)\s*(#.*)?$")


def run_case(binary: str, trace: str, workdir: Path) -> dict:
    """One run: cycles, command counts summed over channels, wall seconds."""
    cfg = workdir / "config.yaml"
    cfg.write_text(CONFIG)
    tr = workdir / "case.trace"
    tr.write_text(trace)
    start = time.perf_counter()
    proc = subprocess.run([binary, "-f", str(cfg), "-t", str(tr)], capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - start
    if proc.returncode:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1][:300]}
    cycles = None
    commands: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        m = _STAT.match(line)
        if not m:
            continue
        key, value = m.group(1), int(m.group(2))
        if key == "memory_system_cycles":
            cycles = value
        cm = re.match(r"CH\d+_num_(\w+)_commands", key)
        if cm and value:
            commands[cm.group(1)] = commands.get(cm.group(1), 0) + value
    return {"cycles": cycles, "commands": dict(sorted(commands.items())), "wall_s": round(wall, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True, help="path to the built aim_simulator ramulator2 executable")
    parser.add_argument("--only", nargs="*", help="case names (default: all)")
    args = parser.parse_args()
    old = yaml.safe_load(DATA.read_text()) if DATA.exists() else {}
    results = dict(old.get("results", {}))
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            if args.only and case.name not in args.only:
                continue
            r = run_case(args.binary, case.trace, Path(tmp))
            r["trace_sha256"] = case.sha256
            results[case.name] = r
            print(case.name, r.get("cycles", r.get("error")), r.get("wall_s"))
    data = {
        "simulator": "arkhadem/aim_simulator",
        "commit": AIMSIM_COMMIT,
        "command": f"{Path(args.binary).name} -f config.yaml -t case.trace (config: simulator.validation.aim_aimsim.CONFIG)",
        "regenerate": "PYTHONPATH=$PWD python -m simulator.validation.aim_aimsim --binary AIMSIM/build/ramulator2",
        "build": "cmake (Release, -O3) with g++ 12.2, system yaml-cpp 0.7 and spdlog 1.10; FetchContent and argparse "
                 "replaced by those and a minimal -f/-t argument parser; unused DRAM standards, plugins and frontends "
                 "left out of the build (no change to the GDDR6, AiM controller, AiM memory system or AiM trace code)",
        "clock": "cycles are memory_system_cycles of the CK clock, tCK 0.5 ns (see reports/aim_validation.md)",
        "results": dict(sorted(results.items())),
    }
    DATA.parent.mkdir(parents=True, exist_ok=True)
    DATA.write_text(yaml.safe_dump(data, sort_keys=False, width=120))
    print(f"wrote {DATA}")


if __name__ == "__main__":
    main()
