"""hwsim's request-level DRAM memory system against Ramulator 2 on the same traces: ``reports/dram_validation.md``.

    python -m simulator.validation.dram [--write]

Prints the comparison; ``--write`` also writes the report. Ramulator's numbers are data
(``simulator/validation/data/dram/ramulator.json``, from :mod:`simulator.validation.dram_ramulator`, which records
the Ramulator commit and command); hwsim runs live. Both sides: the same trace (:mod:`simulator.validation.dram_traces`),
the same timing numbers and organisation (ours, given to Ramulator as overrides), RoBaRaCoCh, FR-FCFS, open rows,
all-bank refresh, queues of 32, watermarks 0.2 / 0.8, one channel, one request offered per cycle.

Ramulator's trace frontends stop the simulation when the last request has been *accepted* into a queue, so its
``cycles``, row counts and ``avg_read_latency`` (read latency summed over reads that have left, divided by reads that
issued their RD) are taken at that point; hwsim's ``accept_*`` numbers are the same quantities at the same point.
Ramulator's HBM3 ticks at half the command clock; its cycles and latencies are halved here. GDDR6 and DDR4 also run
closed rows: Ramulator's ClosedCAP with cap 1 against our ``closed`` policy (cap 1, RDA / WRA from the standards).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

from hardware.dram import load_standard
from hardware.dram.memory_controller import simulate
from hardware.dram.trace import read_trace
from simulator.validation import checkout_root, dram_dramsim3, dram_targets, emit, output_args
from simulator.validation.dram_ramulator import DATA, PSEUDO_CHANNELS, RANKS
from simulator.validation.dram_traces import TRACE_DIR

REPORT = checkout_root() / "reports" / "dram_validation.md"
#: the stated tolerance: cycles and mean read latency within this fraction, the row-hit rate (hits / requests)
#: within this many points
TOLERANCE = 0.02
THRESHOLD = 0.01  # gaps over this are explained

#: why the rule tables differ, per standard (read from Ramulator's python/ramulator/dram/*.py at the commit in the data)
WHY = {
    "gddr6": "Ramulator's GDDR6 times RD->WR as nCL + 1 (ours: tCL + tBL + 2 - tCWL, the DDR4 form: 3 cycles shorter "
             "with our numbers; diffing the command streams, the first difference in mixed_2to1 is a WR 3 cycles "
             "earlier after a RD) and lets an all-bank REFab hold every command for nRFCab (ours: ACT and REF); only "
             "runs with writes move.",
    "ddr4": "Ramulator's DDR4 rules are the ones our table was written from.",
    "hbm2": "none left on these traces: ACT takes two row-bus cycles on both sides (hbm2.yaml command_cycles, Ramulator's "
            "command_cycles ACT: 2; before hwsim had it, ACT->RD was one cycle shorter and runs were 0.1-1% off), and "
            "with split buses both issue one row and one column command per cycle. Ramulator's refresh rules differ "
            "(ACT->REFab nRC, REFab->ACT/PREab nRFC; ours PRE/PREA->REF tRP, REF->ACT tRFC) but did not bind here.",
    "hbm3": "Ramulator's HBM3 issues row commands on half-CK edges (tick_multiplier 2; command_cycles ACT 1.5 CK, "
            "PRE/REF 0.5 CK in python/ramulator/dram/hbm3.py; its HBM34 controller also pairs a falling-edge PRE with a "
            "rising-edge row command) and has nRTW for RD->WR and nCCDR; our channel issues whole-cycle commands with "
            "the DDR4-form table. Both sides split row and column buses in the `split buses` rows (hbm3.yaml "
            "command_buses); the half-cycle row bus is what is left, largest with two pseudo channels and writes.",
    "ddr5": "none on these traces: ddr5.yaml is Ramulator 2.1's DDR5 table (two-cycle ACT/RD/WR via command_cycles, "
            "tPPD, separate write tCCD) with its DDR5_4800BN numbers.",
    "lpddr5": "both sides open a row in two commands (JESD209-5's ACT-1 / ACT-2: lpddr5.yaml activation:, Ramulator's "
              "ACT1 / ACT2; before hwsim had it, random was 1.05% and per-bank mixed 1.23% faster); what is left (under "
              "1%) was not traced command by command. Ramulator's CAS / WCK2CK sync commands are issued only by its "
              "LPDDR5 controller, not by the GenericDDR one these runs use, so neither side has them here.",
}


#: closed-row runs (both standards): the mixed_2to1 gaps, traced command by command (Ramulator's CmdTraceRecorder
#: against Channel.trace) and confirmed by rerunning a Ramulator build with the one leak below fixed
WHY_CLOSED = ("closed rows (mixed_2to1: hwsim 2.6% (ddr4) and 17% (gddr6) faster; a Ramulator 2.1 bookkeeping leak): "
              "both simulators issue the same sequence when reads hit a row that a write's ACT opened while the write "
              "waits for the RD->WR turnaround: the second read's RD becomes RDA (ClosedCAP upgrades the command after "
              "the pick, generic_ddr_controller.cpp:52, so would_close_active never sees it) and closes the bank under "
              "the still-active write, which then issues ACT again (gddr6: ACT bank 3.1 row 6 for a write at cycle "
              "919, reads' RD 955 and RDA 964, the write's second ACT 1008). Ramulator sends that second ACT through "
              "promote_to_active (src/ramulator/controller/controller_base.cpp:250), which enqueues a copy of the "
              "request into m_active_buffer, increments m_active_per_bank and removes the original without a decrement, "
              "so that bank's count stays 1 for the rest of the run (hwsim keeps the request where it is, "
              "memory_controller._issue). From then on would_close_active (controller_base.cpp:316) reports every PREpb "
              "to that bank as closing an active request whenever any request is active: the PREpb waits at the head of "
              "the priority queue, and with the priority queue not empty no read or write queue request issues "
              "(generic_ddr_controller.cpp tick). First stall in gddr6: PREpb to bank 2.3, legal and queued at 1489, "
              "waits for the active write to bank 3.1 (WR 1509) and issues at 1510, while hwsim run with Ramulator's "
              "RD->WR rule (one cycle ahead by then) issues it at 1488; Ramulator's 200th column command then "
              "comes 179 cycles after hwsim's. Leaks: gddr6 6 (cycles 1008, 1018, 1023, 11265, 41634, "
              "47298), ddr4 10 (first at 17366), none on random / row_conflict / sequential. Ramulator rebuilt with "
              "promote_to_active returning for a request already in m_active_buffer (hwsim's behaviour): gddr6 "
              "mixed_2to1 49241 cycles, read latency 555.5 (hwsim 49226 / 555.1: -0.03% / -0.07%), ddr4 30457 / 337.2 "
              "(hwsim 30448 / 337.8: -0.03% / +0.19%), the other six closed runs unchanged to the cycle. The gddr6 gap "
              "appeared with the AIM-SIM timing table: its turnaround (nCL + 1 = 51) outlasts tRCDRD 36, so reads can "
              "use a write's row before the write; with the earlier table (nCL 24: 25 < tRCDRD 26) they could not, "
              "and the same Ramulator had no leak on this trace. Also present but worth under 0.2% here: Ramulator issues "
              "a queued PREpb to a bank an RDA/WRA already closed (its PREpb prerequisite is itself, "
              "src/ramulator/dram/commands/PREpb.h), restarting tRP; hwsim drops it. The first difference in gddr6 "
              "mixed_2to1 (WR at 221 in hwsim, 224 in Ramulator) is the RD->WR rule under gddr6 above, not the gap: "
              "with that rule set to tCL + 1, hwsim runs 49145 cycles.")
#: the stated tolerance for the closed-row runs (fraction; hit rate in points likewise)
TOLERANCE_CLOSED = 0.03

#: multi-rank runs against Ramulator's own rank rules
WHY_RANKS = ("ranks (hwsim up to 2.3% slower with writes, exact on reads): Ramulator 2.1's DDR4 times RD->WR to another "
             "rank as nBL + nCS (python/ramulator/dram/ddr4.py, sibling rule), 6 cycles with our numbers, so the write's "
             "data (WR + tCWL) starts while the read's (RD + tCL .. + tBL) is still on the shared data bus; ours is "
             "tCL + tBL + tRTRS - tCWL = 12, the data-bus hand-over DRAMsim3 also uses (src/timing.cc read_to_write_o). "
             "The `Ram. standard RD->WR` rows rerun Ramulator with only that rule replaced by ours "
             "(dram_ramulator.standard_rank_rules): they agree to the cycle, so that rule is the whole difference.")
#: the stated tolerance for several ranks against Ramulator's own rank rules (the standard-rules rows: TOLERANCE)
TOLERANCE_RANK_RULES = 0.03
#: runs outside tolerance because of a bug in the reference, traced command by command (see WHY_CLOSED): (standard,
#: trace, policy). tests/test_dram_validation.py checks that each is still outside tolerance (a stale entry fails).
REFERENCE_BUGS = {("gddr6", "mixed_2to1", "closed"): "Ramulator 2.1 counts a re-activated request twice in its "
                  "active-per-bank bookkeeping (WHY_CLOSED); a build without the leak gives 49241 cycles, -0.03%"}


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def _err(ours: float, ref: float) -> float:
    return (ours - ref) / ref if ref else 0.0


def compare() -> tuple[dict, list[dict]]:
    """(Ramulator data header, one row per standard x trace with both sides' numbers and the errors)."""
    data = json.loads(DATA.read_text())
    rows = []
    sections = [("open", data["results"], {}), ("closed", data.get("results_closed", {}), {}),
                ("open per-bank REF", data.get("results_perbank", {}), {})]
    sections += [(f"open {n} ranks", {s: r for s, r in data.get("results_ranks", {}).items() if RANKS[s] == n},
                  {"ranks": n}) for n in sorted(set(RANKS.values()))]
    sections += [(f"open {n} ranks, Ram. standard RD->WR", {s: r for s, r in data.get("results_ranks_standard", {}).items()
                                                            if RANKS[s] == n}, {"ranks": n})
                 for n in sorted(set(RANKS.values()))]
    for n in sorted({n for v in PSEUDO_CHANNELS.values() for n in v}):
        sections.append((f"open {n} PC, split buses", data.get(f"results_pc{n}", {}), {"pseudo_channels": n}))
    for label, results, options in sections:
        rows += _compare(label, results, **options)
    return data, rows


def _compare(label: str, results: dict, ranks: int = 1, pseudo_channels: int = 0) -> list[dict]:
    """Rows for one section. Without ``pseudo_channels`` Ramulator ran its GenericDDR controller (one command per
    cycle), so a split-bus standard runs with ``one_command_per_cycle``; with it, both run split buses."""
    policy, _, refresh = label.partition(" ")
    refresh = "per-bank" if "per-bank" in refresh else "all-bank"
    rows = []
    for std_name, runs in results.items():
        std = load_standard(std_name)
        for trace_name, ram in sorted(runs.items()):
            if "error" in ram:
                rows.append({"standard": std_name, "trace": trace_name, "policy": label, "error": ram["error"]})
                continue
            trace = read_trace(TRACE_DIR / f"{trace_name}.trace")
            start = time.perf_counter()
            r = simulate(std, trace, row_policy=policy, refresh=refresh, ranks=ranks,
                         pseudo_channels=max(pseudo_channels, 1), one_command_per_cycle=not pseudo_channels)
            wall = time.perf_counter() - start
            k = ram.get("ticks_per_cycle", 1)
            ram_cycles = ram["cycles"] / k
            ram_lat = ram["avg_read_latency"] / k
            rows.append({
                "standard": std_name, "trace": trace_name, "policy": label, "requests": len(trace),
                "cycles": r.accept_cycles, "ram_cycles": ram_cycles, "cycles_err": _err(r.accept_cycles, ram_cycles),
                "drain_cycles": r.cycles,
                "row_hits": r.accept_row_hits, "ram_row_hits": ram["row_hits"],
                "row_misses": r.accept_row_misses, "ram_row_misses": ram["row_misses"],
                "row_conflicts": r.accept_row_conflicts, "ram_row_conflicts": ram["row_conflicts"],
                "hits_err": (r.accept_row_hits - ram["row_hits"]) / len(trace),  # row-hit rate difference
                "latency": r.accept_read_latency_mean, "ram_latency": ram_lat,
                "latency_err": _err(r.accept_read_latency_mean, ram_lat),
                "speed": len(trace) / wall, "ram_speed": ram["requests_per_s"],
            })
    return rows


def within_tolerance(row: dict) -> bool:
    """The stated tolerance: cycles and mean read latency within TOLERANCE (TOLERANCE_CLOSED for closed rows,
    TOLERANCE_RANK_RULES for several ranks against Ramulator's own rank rules), the row-hit rate within as many
    points."""
    policy = row["policy"]
    tol = TOLERANCE_CLOSED if policy == "closed" else TOLERANCE_RANK_RULES if "ranks" in policy and "standard" not in \
        policy else TOLERANCE
    return max(abs(row["cycles_err"]), abs(row["latency_err"]), abs(row["hits_err"])) <= tol


def _why(row: dict) -> str:
    if row["policy"] == "closed":
        return WHY_CLOSED
    if "ranks" in row["policy"]:
        return WHY_RANKS
    return WHY[row["standard"]]


def render(data: dict, rows: list[dict]) -> str:
    ok = [r for r in rows if "error" not in r]
    out = ["# DRAM memory system vs Ramulator 2", "",
           "Generated by `python -m simulator.validation.dram --write` "
           f"({platform.python_implementation()} {platform.python_version()}, {platform.machine()}). Ramulator 2: "
           f"{data['ramulator']} @ {data['commit'][:12]}, numbers in `simulator/validation/data/dram/ramulator.json` "
           f"(regenerate: `{data['command']}`). Traces: `simulator/validation/data/dram/traces/` "
           "(`python -m simulator.validation.dram_traces`), 5000 requests each.", "",
           "Setup on both sides: our timing numbers and organisation (Ramulator gets them as overrides of its "
           "preset), one channel / rank / pseudo channel, RoBaRaCoCh, FR-FCFS, open rows, all-bank refresh, read and "
           "write queues of 32 with watermarks 0.2 / 0.8, one request offered per cycle (LoadStoreTrace, clock ratio 1),"
           " Ramulator's GenericDDR controller; `rows` closed: Ramulator's ClosedCAP (cap 1) against our closed policy "
           "(cap 1), GDDR6 and DDR4; `open per-bank REF`: LPDDR5 and HBM2 with Ramulator 2.1's PerBank refresh "
           "manager (REFpb to one bank every tREFIpb, round robin) against our `per-bank` manager, same REFpb rules "
           "(JESD209-5B / JESD235D values via Ramulator's lpddr5.py and hbm2.py); `open 2 ranks`: DDR4 and DDR5 with two "
           "ranks per channel (RoBaRaCoCh with the rank bit above the column, tRRD / tFAW / refresh per rank, "
           "tRTRS 2 on both sides), against Ramulator's own rank rules and (`Ram. standard RD->WR`) with its "
           "rank-to-rank RD->WR rule replaced by ours; `open N PC, split buses`: HBM2 and HBM3 with separate row "
           "and column command buses (one command on each per cycle; HBM2's ACT two row-bus cycles) and N pseudo "
           "channels sharing them, Ramulator's HBM12 / HBM34 controller against ours (every other HBM row: one "
           "command per cycle, as GenericDDR). "
           "Compared at the point Ramulator "
           "stops (the last request accepted); "
           "`drain` is hwsim's cycle count until the last data beat. Ramulator HBM3 ticks at half CK: halved.", "",
           "Same-bank refresh (DDR5 REFsb, `hwsim dram --refresh same-bank`) has no row here: it is checked by known "
           "answers only (tests/test_dram_same_bank_refresh.py, cycles derived by hand), because neither Ramulator "
           "ships a manager that issues it (2.0's src/dram/impl/DDR5.cpp declares REFsb, its rules and tRFCsb, but its "
           "only refresh manager is all-bank; 2.1's ddr5.py declares no REFsb) and DRAMsim3 has no DDR5 (its REFRESH_BANK "
           "refreshes one bank); the "
           "tREFIsb is an assumption (ddr5.yaml).", "",
           f"Tolerance (tests/test_dram_validation.py): cycles and mean read latency within {TOLERANCE:.0%}, "
           f"row-hit rate (hits / requests) within {TOLERANCE * 100:.0f} points; closed rows within "
           f"{TOLERANCE_CLOSED:.0%} and {TOLERANCE_CLOSED * 100:.0f} points, several ranks against Ramulator's own rank "
           f"rules within {TOLERANCE_RANK_RULES:.0%}. Gaps over {THRESHOLD:.0%} (or 1 point of "
           "hit rate) are explained below; the causes are read from the two rule tables unless the entry says it "
           "traced the command streams.", "",
           "| standard | trace | rows | cycles hwsim | Ramulator | err | drain | row hits hwsim / Ram. | misses | conflicts "
           "| read lat. hwsim | Ramulator | err | hwsim req/s | Ramulator req/s |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['standard']} | {r['trace']} | {r['policy']} | Ramulator failed: {r['error']} |" + " |" * 11)
            continue
        out.append(f"| {r['standard']} | {r['trace']} | {r['policy']} | {r['cycles']} | {r['ram_cycles']:g} "
                   f"| {r['cycles_err']:+.2%} | {r['drain_cycles']} | {r['row_hits']} / {r['ram_row_hits']} | "
                   f"{r['row_misses']} / "
                   f"{r['ram_row_misses']} | {r['row_conflicts']} / {r['ram_row_conflicts']} | {r['latency']:.1f} | "
                   f"{r['ram_latency']:.1f} | {r['latency_err']:+.2%} | {r['speed']:,.0f} | {r['ram_speed']:,.0f} |")
    exact = [r for r in ok if r["cycles"] == r["ram_cycles"] and r["row_hits"] == r["ram_row_hits"]]
    worst = max(ok, key=lambda r: abs(r["cycles_err"]))
    ratios = sorted(r["ram_speed"] / r["speed"] for r in ok)
    out += ["", "## Summary", "",
            f"- {len(ok)} runs; {len(exact)} agree to the cycle and the row hit; every run within tolerance: "
            f"{all(within_tolerance(r) for r in ok)}"
            + "".join(f" (outside: {k[0]} {k[1]} {k[2]} rows, {v})" for k, v in REFERENCE_BUGS.items()
                      if any((r["standard"], r["trace"], r["policy"]) == k and not within_tolerance(r) for r in ok))
            + f"; every other run within tolerance: "
            f"{all(within_tolerance(r) for r in ok if (r['standard'], r['trace'], r['policy']) not in REFERENCE_BUGS)}."
            f" Largest cycle gap: {worst['standard']} {worst['trace']} {worst['cycles_err']:+.2%}.",
            f"- Speed: Ramulator (C++) is {ratios[0]:.1f}x to {ratios[-1]:.1f}x faster than hwsim (Python; median "
            f"{ratios[len(ratios) // 2]:.1f}x) on the same traces, each timed around its simulation loop only on this "
            "machine (Ramulator's figure from when the data was taken; 1-minute load average when this report was "
            f"generated: {_load():.1f}, so on a busy machine the ratios mix two loads).", "",
            f"## Gaps over {THRESHOLD:.0%}", ""]
    gaps = [r for r in ok if max(abs(r["cycles_err"]), abs(r["latency_err"]), abs(r["hits_err"])) > THRESHOLD]
    for r in gaps:
        out.append(f"- {r['standard']} {r['trace']} ({r['policy']} rows): cycles {r['cycles_err']:+.2%}, "
                   f"latency {r['latency_err']:+.2%}, "
                   f"row hits {r['row_hits']} vs {r['ram_row_hits']} ({r['hits_err'] * 100:+.2f} points of hit rate). "
                   f"Likely cause: {_why(r)}")
    if not gaps:
        out.append("- none")
    out += ["", "## Where the standards' rules differ (all runs)", ""]
    out += [f"- {name}: {text}" for name, text in WHY.items()] + [f"- {WHY_CLOSED}", f"- {WHY_RANKS}"]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    output_args(parser, REPORT.name)
    args = parser.parse_args()
    data, rows = compare()
    text = render(data, rows)
    if dram_dramsim3.DATA.exists():  # the DRAMsim3 section (simulator/validation/dram_dramsim3.py)
        text += "\n" + dram_dramsim3.render(json.loads(dram_dramsim3.DATA.read_text()), _load())
    text += "\n" + dram_targets.render()  # the standards as the GPU / FPGA targets' memory
    emit(text, args, REPORT.name)


if __name__ == "__main__":
    main()
