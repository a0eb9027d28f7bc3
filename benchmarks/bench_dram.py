"""DRAM command-level benchmark: commands per second through :class:`hardware.dram.Channel`.

Streams: (a) the AiM VMM stream of ``AimTimer(load_target('pim-gpt'), 'command').vmm(k, n)`` (ACT_AB / WR_GB /
MAC_ABK / RD_MAC / PREA / REF), repeated; (b) the open-row controller (:mod:`hardware.dram.controller`) over
random and streaming read patterns. Target: at least 1,000,000 commands/s in command-level mode on the 2-core
CI machine.

    python benchmarks/bench_dram.py [--report reports/dram_benchmark.md] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hardware.dram import Channel, OpenRowController, load_standard  # noqa: E402
from hardware.pim.aim import AimTimer  # noqa: E402
from hardware.targets import load_target  # noqa: E402

TARGET = 1_000_000
REGEN = "python benchmarks/bench_dram.py --report reports/dram_benchmark.md"


def _aim(k: int, n: int, times: int, refresh: bool = True) -> Callable[[], int]:
    target = load_target("pim-gpt")

    def run() -> int:
        timer = AimTimer(target, "command", refresh=refresh)
        for _ in range(times):
            timer.vmm(k, n)
        return timer.commands_issued

    return run


def _controller(standard: str, pattern: str, requests: int = 20_000) -> Callable[[], int]:
    std = load_standard(standard)
    rng = random.Random(1)
    if pattern == "random":  # 30% writes, random bank / row (of 8) / column
        reqs = [(rng.random() < 0.3, rng.randrange(std.banks), rng.randrange(8), rng.randrange(std.organization.columns.value))
                for _ in range(requests)]
    else:  # streaming reads: consecutive columns of a row, interleaved over every bank, then the next rows
        cols = std.organization.columns.value
        reqs = [(False, i % std.banks, i // (std.banks * cols), (i // std.banks) % cols) for i in range(requests)]

    def run() -> int:
        ch = Channel(std)
        OpenRowController(ch).service(reqs)
        return sum(ch.counts.values())

    return run


CASES: list[tuple[str, str, Callable[[], int]]] = [
    ("AiM VMM 1600x600 x10 (pim-gpt)", "ACT_AB, WR_GB, MAC_ABK, RD_MAC, PREA, REF", _aim(1600, 600, 10)),
    ("AiM VMM 6400x200 x5 (pim-gpt)", "ACT_AB, WR_GB, MAC_ABK, RD_MAC, PREA, REF", _aim(6400, 200, 5)),
    ("AiM VMM 64x128 x200 (pim-gpt)", "short rows, many streams", _aim(64, 128, 200)),
    ("controller random, gddr6", "20k requests, 30% writes, refresh", _controller("gddr6", "random")),
    ("controller stream, gddr6", "20k sequential reads, refresh", _controller("gddr6", "stream")),
    ("controller random, hbm3", "20k requests, 30% writes, refresh", _controller("hbm3", "random")),
    ("controller stream, ddr4", "20k sequential reads, refresh", _controller("ddr4", "stream")),
]


def measure(run: Callable[[], int], repeats: int) -> tuple[int, float]:
    """(commands, best seconds) over ``repeats`` runs."""
    best = float("inf")
    commands = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        commands = run()
        best = min(best, time.perf_counter() - t0)
    return commands, best


def python_speed_ns(repeats: int = 5) -> float:
    """This machine's pure-Python speed: best ns per iteration of a fixed loop (a max of three ints, an add, a list
    store), so that command rates measured on different machines can be compared (they scale with it)."""
    best = float("inf")
    last = [0] * 8
    for _ in range(repeats):
        t0 = time.perf_counter()
        t = 0
        for i in range(200_000):
            t = max(t + 1, last[i & 7] + 2, i)
            last[i & 7] = t
        best = min(best, time.perf_counter() - t0)
    return best / 200_000 * 1e9


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", help="also write a Markdown report here")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    header = f"{'stream':34s} {'commands':>9s} {'best s':>8s} {'commands/s':>12s}"
    print(header)
    print("-" * len(header))
    for name, what, run in CASES:
        commands, seconds = measure(run, args.repeats)
        rate = commands / seconds
        rows.append((name, what, commands, seconds, rate))
        print(f"{name:34s} {commands:9d} {seconds:8.3f} {rate:12,.0f}")
    speed = python_speed_ns()
    print(f"machine reference: {speed:.0f} ns per iteration of a fixed pure-Python loop")
    aim_rates = [r[4] for r in rows if r[0].startswith("AiM")]
    verdict = (f"AiM command-level mode: {min(aim_rates):,.0f} commands/s at worst (target >= {TARGET:,}): "
               f"{'PASS' if min(aim_rates) >= TARGET else 'FAIL'}")
    print(verdict)
    if args.report:
        lines = ["# DRAM command-level benchmark", "", f"Regenerate: `{REGEN}`", "",
                 f"Machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
                 f"{_cores()} cores. Best of {args.repeats} runs per stream, wall time of issuing every command through "
                 "`hardware.dram.Channel.issue` (AiM rows: including `AimTimer`'s own loop; controller rows: including "
                 "the open-row controller; request lists are built beforehand; runs of one command, such as an AiM "
                 "row's MAC_ABK, through `Channel.issue_repeat`, which checks each of them against the timing table "
                 "as `issue` does). Machine reference: a fixed pure-Python loop (`python_speed_ns`: a max of three "
                 f"ints, an add and a list store) takes {speed:.0f} ns per iteration here; command rates on another "
                 "machine scale with it.", "",
                 "| stream | commands | best s | commands/s |", "|---|---|---|---|"]
        for name, what, commands, seconds, rate in rows:
            lines.append(f"| {name} ({what}) | {commands} | {seconds:.3f} | {rate:,.0f} |")
        lines += ["", verdict, ""]
        Path(args.report).write_text("\n".join(lines))


if __name__ == "__main__":
    main()
