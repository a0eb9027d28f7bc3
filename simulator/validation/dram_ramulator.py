"""Run Ramulator 2 on the DRAM validation traces and store its numbers as data
(``simulator/validation/data/dram/ramulator.json``), for ``python -m simulator.validation.dram``.

CI cannot build Ramulator, so its results are committed. To regenerate: build Ramulator 2 from
github.com/CMU-SAFARI/ramulator2 (commit below; cmake + g++ 12, its Python bindings on), then

    PYTHONPATH=$PWD:RAMULATOR/python python -m simulator.validation.dram_ramulator

Both sides get the same numbers: Ramulator's standard (its DRAM spec, timing preset and rule table) with every
timing parameter and the organisation overridden by ours (``hardware/presets/dram/*.yaml``), one rank / pseudo
channel / SID, one channel, LoadStoreTrace at clock ratio 1 into a GenericDDR controller (FRFCFS, AllBank refresh,
Open rows, RoBaRaCoCh, queues of 32, watermarks 0.2 / 0.8, Ramulator's defaults); for GDDR6 and DDR4 also
ClosedCAP with cap 1 (``results_closed``) against our ``closed`` policy (cap 1); for LPDDR5 and HBM2 also Ramulator's PerBank
refresh manager (``results_perbank``) against our ``per-bank`` one (``--only-per-bank`` reruns just that section);
for DDR4 also two ranks per channel (``results_ranks``; ``results_ranks_standard`` with Ramulator's rank-to-rank
RD->WR rule replaced by our standard's, :func:`standard_rank_rules`); for HBM2 also Ramulator's split-bus HBM12
controller with one and two pseudo channels (``results_pc1``, ``results_pc2``). ``--only SECTION`` reruns one section.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from hardware.dram import load_standard
from simulator.validation.dram_traces import TRACE_DIR

DATA = Path(__file__).resolve().parent / "data" / "dram" / "ramulator.json"
RAMULATOR_COMMIT = "c5b1c3a478b68853a61a0b8f99510d0dde7e6fd0"

#: our standard -> (Ramulator DRAM class, org preset, timing preset, levels set to 1)
SPECS = {
    "gddr6": ("GDDR6", "GDDR6_8Gb_x16", "GDDR6_14000_1350mV_double", ()),
    "ddr4": ("DDR4", "DDR4_8Gb_x8", "DDR4_3200AA", ("rank",)),
    "hbm2": ("HBM2", "HBM2_8Gb", "HBM2_2000Mbps", ("pseudochannel",)),
    "hbm3": ("HBM3", "HBM3_16Gb_8hi", "HBM3_6400Mbps", ("pseudochannel", "sid")),
    "lpddr5": ("LPDDR5", "LPDDR5_8Gb_x16", "LPDDR5_6400", ("rank",)),
    "ddr5": ("DDR5", "DDR5_16Gb_x8", "DDR5_4800BN", ("rank",)),
}
#: our parameter -> Ramulator's, where it is not 'n' + the name without '_'
RENAME = {("gddr6", "tRFC"): "nRFCab", ("hbm2", "tRTP"): "nRTPL", ("lpddr5", "tBL"): "nBL_min", ("lpddr5", "tBL_max"): "nBL_max",
          ("ddr4", "tRTRS"): "nCS", ("ddr5", "tRTRS"): "nCS", ("ddr5", "tCCD_S_WR"): "nCCDS_WR",
          ("ddr5", "tCCD_L_WR"): "nCCDL_WR"}


def ramulator_overrides(name: str, dram_cls: type) -> dict:
    """Organisation and timing overrides that give Ramulator our standard's numbers."""
    std = load_standard(name)
    org = std.organization
    over = {"bankgroup": org.bank_groups.value, "bank": org.banks_per_group.value, "row": org.rows.value,
            "column": org.columns.value * dram_cls.internal_prefetch_size}
    for level in SPECS[name][3]:
        over[level] = 1
    known = set(dram_cls.timing_params)
    for p, v in std.timing.items():
        rname = RENAME.get((name, p), "n" + p[1:].replace("_", ""))
        if rname in known:
            over[rname] = v.value
    for p in ("tRCDRD", "tRCDWR", "tRPab"):  # derived on our side, primary on Ramulator's
        rname = "n" + p[1:]
        if rname in known and rname not in over:
            over[rname] = std.params[p]
    return over


#: standards also compared under the closed-row policy (Ramulator ClosedCAP with cap 1 against ours)
CLOSED = ("gddr6", "ddr4")
#: standards also compared with per-bank refresh (Ramulator's PerBank manager against our per-bank), open rows
PER_BANK = ("lpddr5", "hbm2")
#: standards also compared with split command buses (Ramulator's HBM12 / HBM34 controller against ours, one row and
#: one column command per cycle), with this many pseudo channels per channel (1: one pseudo channel, both buses)
PSEUDO_CHANNELS = {"hbm2": (1, 2), "hbm3": (1, 2)}
#: Ramulator's split-bus controller per standard
SPLIT_BUS_CONTROLLER = {"hbm2": "HBM12", "hbm3": "HBM34"}
#: standards also compared with several ranks per channel (Ramulator's rank level against our ``ranks:``), open rows
RANKS = {"ddr4": 2, "ddr5": 2}


def standard_rank_rules(dram_cls: type) -> type:
    """``dram_cls`` with its sibling (rank-to-rank) RD->WR rule replaced by the data-bus form our standard uses
    (tCL + tBL + tRTRS - tCWL, as DRAMsim3's read_to_write_o), to show that rule is the only difference."""
    from ramulator.dram.spec import DRAMStandard, TimingConstraint  # noqa: PLC0415

    rules = []
    for tc in dram_cls.timing_constraints:
        if tc.sibling and list(tc.preceding) == ["RD", "RDA"]:
            rules.append(TimingConstraint(level=tc.level, preceding=["RD", "RDA"], following=["RD", "RDA"],
                                          latency="nBL + nCS", window=1, sibling=True))
            rules.append(TimingConstraint(level=tc.level, preceding=["RD", "RDA"], following=["WR", "WRA"],
                                          latency="nCL + nBL + nCS - nCWL", window=1, sibling=True))
        else:
            rules.append(tc)
    variant = type(dram_cls.__name__, (dram_cls,), {"timing_constraints": rules})  # same name: same C++ standard
    DRAMStandard._registry[dram_cls.name] = dram_cls  # subclassing re-registered the name; keep Ramulator's class
    return variant


def run_one(name: str, trace: Path, row_policy: str = "open", refresh: str = "all-bank", ranks: int = 1,
            rank_rules: str = "ramulator", pseudo_channels: int = 0) -> dict:
    """One Ramulator run; ``ranks`` > 1 sets its rank count, ``rank_rules="standard"`` swaps in our RD->WR rule
    between ranks (:func:`standard_rank_rules`); ``pseudo_channels`` > 0 runs that many pseudo channels under the
    standard's split-bus controller (:data:`SPLIT_BUS_CONTROLLER`) instead of GenericDDR."""
    import ramulator  # noqa: PLC0415 (needs Ramulator's Python package on the path)

    cls_name, org_preset, timing_preset, _ = SPECS[name]
    dram_cls = getattr(ramulator.dram, cls_name)
    over = ramulator_overrides(name, dram_cls)
    if ranks > 1:
        over["rank"] = ranks
        if rank_rules == "standard":
            dram_cls = standard_rank_rules(dram_cls)
    if pseudo_channels:
        over["pseudochannel"] = pseudo_channels
    dram = dram_cls(org_preset=org_preset, timing_preset=timing_preset, **over)
    controller = getattr(ramulator.controller, SPLIT_BUS_CONTROLLER[name]) if pseudo_channels \
        else ramulator.controller.GenericDDR
    ctrl = controller(dram=dram, scheduler=ramulator.scheduler.FRFCFS(),
                                           refresh_manager=ramulator.refresh_manager.AllBank() if refresh == "all-bank"
                                           else ramulator.refresh_manager.PerBank(),
                                           row_policy=ramulator.row_policy.Open() if row_policy == "open"
                                           else ramulator.row_policy.ClosedCAP(cap=1),
                                           addr_mapper=ramulator.addr_mapper.RoBaRaCoCh())
    mem = ramulator.memory_system.GenericDRAM(clock_ratio=1, controllers=[ctrl],
                                             channel_mapper=ramulator.channel_mapper.CacheLineInterleave())
    fe = ramulator.frontend.LoadStoreTrace(clock_ratio=1, path=str(trace))
    sim = ramulator.Simulation(fe, mem)
    start = time.perf_counter()
    sim.run()
    wall = time.perf_counter() - start
    st = sim.stats["memory_system"]["controller"]
    requests = sum(1 for _ in trace.open())
    ticks = int(getattr(dram_cls, "tick_multiplier", 1))  # HBM3: Ramulator ticks at half CK
    return {"ticks_per_cycle": ticks, "cycles": int(st["cycles"]), "row_hits": int(st["row_hits"]),
            "row_misses": int(st["row_misses"]),
            "row_conflicts": int(st["row_conflicts"]), "avg_read_latency": float(st["avg_read_latency"]),
            "reads": int(st["num_read_reqs"]), "writes": int(st["num_write_reqs"]),
            "reads_forwarded": int(st["num_read_reqs_forwarded"]), "requests": requests,
            "wall_s": wall, "requests_per_s": requests / wall if wall else 0.0, "overrides": over,
            "config": f"{cls_name}(org_preset={org_preset}, timing_preset={timing_preset}, overrides) + "
                      + (f"{SPLIT_BUS_CONTROLLER[name]}, {pseudo_channels} pseudo channel(s)" if pseudo_channels
                         else "GenericDDR")
                      + ("" if refresh == "all-bank" else " + PerBank refresh")
                      + (f", {ranks} ranks" + (", sibling RD->WR nCL + nBL + nCS - nCWL" if rank_rules == "standard"
                                               else "") if ranks > 1 else "")}


def main() -> None:
    import argparse  # noqa: PLC0415

    import ramulator  # noqa: F401, PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only-per-bank", action="store_true", help="rerun only the per-bank refresh section")
    parser.add_argument("--only", action="append", default=[], metavar="SECTION",
                        help="rerun only this section of the data (results, results_closed, results_perbank, "
                             "results_ranks, results_ranks_standard, results_pc1, results_pc2; repeatable), "
                             "keeping the others")
    args = parser.parse_args()
    if args.only_per_bank:
        args.only.append("results_perbank")

    root = Path(ramulator.__file__).resolve().parents[2]
    commit = RAMULATOR_COMMIT  # a source archive (git archive) has no .git
    if (root / ".git").exists():
        try:
            commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                    check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            pass
    old = json.loads(DATA.read_text()) if DATA.exists() else {}
    sections = [("results", "open", "all-bank", tuple(SPECS), {}), ("results_closed", "closed", "all-bank", CLOSED, {}),
                ("results_perbank", "open", "per-bank", PER_BANK, {})]
    sections += [("results_ranks", "open", "all-bank", tuple(RANKS), {"rank_rules": "ramulator"}),
                 ("results_ranks_standard", "open", "all-bank", tuple(RANKS), {"rank_rules": "standard"})]
    sections += [(f"results_pc{n}", "open", "all-bank", tuple(k for k, v in PSEUDO_CHANNELS.items() if n in v),
                  {"pseudo_channels": n}) for n in sorted({n for v in PSEUDO_CHANNELS.values() for n in v})]
    keys = [s[0] for s in sections]
    bad = [k for k in args.only if k not in keys]
    if bad:
        parser.error(f"--only {bad[0]}: sections are {', '.join(keys)}")
    out = {k: old[k] for k in keys if args.only and k not in args.only and k in old}
    for key, policy, refresh, names, extra in sections:
        if args.only and key not in args.only:
            continue
        results = out[key] = {}
        for name in names:
            if "rank_rules" in extra:
                extra = {**extra, "ranks": RANKS[name]}
            for trace in sorted(TRACE_DIR.glob("*.trace")):
                try:
                    results.setdefault(name, {})[trace.stem] = run_one(name, trace, policy, refresh, **extra)
                except Exception as err:  # noqa: BLE001 (record why a standard does not run)
                    results.setdefault(name, {})[trace.stem] = {"error": f"{type(err).__name__}: {err}"}
                res = results[name][trace.stem]
                print(key, name, trace.stem, res.get("cycles", res.get("error")))
    out = {k: out[k] for k in keys if k in out}  # sections in a fixed order
    DATA.write_text(json.dumps({"ramulator": "CMU-SAFARI/ramulator2", "commit": commit,
                                "command": "PYTHONPATH=$PWD:RAMULATOR/python python -m simulator.validation.dram_ramulator",
                                "build": old.get("build", ""), "machine": old.get("machine", ""), **out},
                               indent=1) + "\n")
    print(f"wrote {DATA}")


if __name__ == "__main__":
    main()
