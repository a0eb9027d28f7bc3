"""Request-level DRAM memory system: hand-derived cycles, scheduling, forwarding, mapping, CLI errors."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hardware.dram import load_standard, standard_from_dict
from hardware.dram.address_mapping import MAPPERS, Location, address_mapper
from hardware.dram.memory_controller import MemorySystem, simulate
from hardware.dram.trace import parse_trace
from hardware.errors import HwsimError
from simulator.cli import main

ENGINE_TABLE = Path(__file__).resolve().parent / "fixtures" / "dram" / "gddr6_engine.yaml"  # fixed numbers
G6 = load_standard(ENGINE_TABLE)
P = G6.params  # tRCDRD 26, tRAS 53, tRP 26, tRC 79, tRTP 4, tCCD_L 6, tCL 24, tBL 2, tRPab 26, tRFC 210


def rw(*lines: str):
    return parse_trace("\n".join(lines))


def traced(std, trace, **options):
    """Run with the channel's command trace on; returns (result, [(cycle, command, bank address)])."""
    system = MemorySystem(std, **options)
    for ct in system.controllers:
        ct.channel.trace = []
    result = system.run(trace)
    return result, system.controllers[0].channel.trace


def test_row_hit_cycles():
    r, cmds = traced(G6, rw("R 0,0,0,0,0", "R 0,0,0,0,1"), refresh="none")
    # ACT at 1 (the first request arrives at 0), RD at 1 + tRCDRD = 27, the hit's RD tCCD_L later (same bank group)
    assert [(t, c) for t, c, _ in cmds] == [(1, "ACT"), (27, "RD"), (33, "RD")]
    assert P["tRCDRD"] == 26 and P["tCCD_L"] == 6
    done = 33 + P["tCL"] + P["tBL"]
    assert r.cycles == done == 59
    assert (r.row_hits, r.row_misses, r.row_conflicts) == (1, 1, 0)
    assert r.read_latency_mean == ((27 + 26 - 0) + (done - 1)) / 2


def test_row_conflict_cycles():
    r, cmds = traced(G6, rw("R 0,0,0,0,0", "R 0,0,0,1,0"), refresh="none")
    # PRE after tRAS from the ACT (1 + 53 = 54 > RD + tRTP = 31), ACT after tRP (80 = also ACT + tRC), RD + tRCDRD
    assert [(t, c) for t, c, _ in cmds] == [(1, "ACT"), (27, "RD"), (54, "PRE"), (80, "ACT"), (106, "RD")]
    assert r.cycles == 106 + 26
    assert (r.row_hits, r.row_misses, r.row_conflicts) == (0, 1, 1)


def test_frfcfs_serves_younger_hit_before_older_conflict():
    trace = rw("R 0,0,0,0,0", "R 0,0,0,1,0", "R 0,0,0,0,1")
    r, cmds = traced(G6, trace, refresh="none")
    # the conflict's PRE may not issue before tRAS (54); the younger hit's RD is ready at 33 and goes first
    assert [(t, c, a.row) for t, c, a in cmds if c != "PRE"] == [(1, "ACT", 0), (27, "RD", 0), (33, "RD", 0),
                                                                 (80, "ACT", 1), (106, "RD", 1)]
    assert [t for t, c, _ in cmds if c == "PRE"] == [54]
    assert (r.row_hits, r.row_conflicts) == (1, 1)
    f, fc = traced(G6, trace, refresh="none", scheduler="fcfs")
    # in order: the hit waits for the conflict and meets row 1 open -> a second conflict
    assert [c for _, c, _ in fc] == ["ACT", "RD", "PRE", "ACT", "RD", "PRE", "ACT", "RD"]
    assert (f.row_hits, f.row_conflicts) == (0, 2)
    assert f.cycles > r.cycles


def test_refresh_closes_banks_and_blocks_for_trfc():
    data = yaml.safe_load(ENGINE_TABLE.read_text())
    data["timing"]["tREFI"]["value"] = 300
    std = standard_from_dict(data, "test-gddr6")
    trace = rw(*(f"R 0,0,0,0,{c}" for c in range(60)))
    r, cmds = traced(std, trace)
    rds = [t for t, c, _ in cmds if c == "RD"]
    # RDs at 27, 33, ... (tCCD_L); the REF is due at 300: the last RD before it at 297, then PREA at 301
    # (297 + tRTP), REF tRPab = 26 later, the next ACT tRFC = 210 after the REF, its RD tRCDRD = 26 later
    assert rds[:46] == list(range(27, 298, 6))
    seq = [(t, c) for t, c, _ in cmds if c in ("PREA", "REF", "ACT")]
    assert seq[:4] == [(1, "ACT"), (301, "PREA"), (327, "REF"), (537, "ACT")]
    assert rds[46] == 563
    assert r.refreshes >= 1 and r.row_misses == 1 + r.refreshes  # the first ACT and one after each refresh


def test_write_drain_at_high_watermark():
    # 10 conflicting reads to bank 0 keep the read queue busy; 7 writes to bank 1 (queue 8: write mode above 6.4
    # writes, back to reads below 1.6)
    lines = [f"R 0,0,0,{row},0" for row in range(10)] + [f"W 0,1,0,0,{c}" for c in range(7)]
    r, cmds = traced(G6, rw(*lines), refresh="none", queue=8)
    bank1 = [(t, c) for t, c, a in cmds if a.bank_group == 1]
    assert [c for _, c in bank1] == ["ACT"] + ["WR"] * 7
    first_write = bank1[0][0]
    # the 7th write arrived before the first write command (the drain waited for the watermark)
    wr_done = [t + P["tCWL"] + P["tBL"] for t, c in bank1 if c == "WR"]
    arrivals = [d - lat for d, lat in zip(wr_done, r.write_latencies, strict=True)]  # latencies in issue order
    assert first_write > max(arrivals)
    # six writes drain (down to 1 < 1.6 queued) with no bank-0 row command in between; the last one waits

    sixth = bank1[6][0]
    assert not [c for t, c, a in cmds if a.bank_group == 0 and c in ("PRE", "ACT") and first_write < t < sixth]
    # the last write waits until the read queue is empty: after the last read's ACT (its RD may follow)
    last_act = max(t for t, c, a in cmds if a.bank_group == 0 and c == "ACT")
    assert bank1[7][0] > last_act
    assert r.writes == 7 and r.reads == 10


def test_write_to_read_forwarding_and_write_merging():
    # the first write opens bank 0 row 0 (and leaves the queue); the second (row 1 = 0x8000) waits in the queue,
    # so the read of its address is forwarded and the third write merges into it
    trace = parse_trace("ST 0x0\nST 0x8000\nLD 0x8000\nST 0x8000\nLD 0x40")
    r, cmds = traced(G6, trace, refresh="none")
    assert r.reads_forwarded == 1 and r.writes_merged == 1
    assert [c for _, c, _ in cmds].count("WR") == 2 and [c for _, c, _ in cmds].count("RD") == 1
    assert min(r.read_latencies) == 1  # the forwarded read


@pytest.mark.parametrize("std_name", ["gddr6", "ddr4", "hbm3", "hbm2", "lpddr5"])
@pytest.mark.parametrize("mapping", ["RoBaRaCoCh", "RoCoBaRaCh", "ChRaBaRoCo"])
def test_mapping_round_trip(std_name, mapping):
    std = load_standard(std_name)
    m = address_mapper(mapping, std, channels=2)
    org = std.organization
    rng = random.Random(3)
    for _ in range(200):
        loc = Location(rng.randrange(2), rng.randrange(org.bank_groups.value), rng.randrange(org.banks_per_group.value),
                       rng.randrange(org.rows.value), rng.randrange(org.columns.value))
        addr = m.unmap(loc)
        assert m.map(addr) == loc
        assert m.map(addr + org.burst_bytes.value - 1) == loc  # bytes inside one burst
        assert m.map(addr + m.capacity_bytes) == loc  # wraps modulo the capacity
    assert m.capacity_bytes == 2 * std.banks * org.rows.value * std.row_bytes


def test_mapping_bit_orders():
    b = G6.organization.burst_bytes.value  # 32 B; 64 columns, 4 bank groups, 4 banks
    ro = address_mapper("RoBaRaCoCh", G6, channels=2)
    assert ro.map(b) == Location(1, 0, 0, 0, 0) and ro.map(2 * b) == Location(0, 0, 0, 0, 1)
    assert ro.map(2 * b * 64) == Location(0, 1, 0, 0, 0) and ro.map(2 * b * 64 * 4) == Location(0, 0, 1, 0, 0)
    rc = address_mapper("rocobarach", G6, channels=1)
    assert rc.map(b) == Location(0, 1, 0, 0, 0) and rc.map(4 * b) == Location(0, 0, 1, 0, 0)
    assert rc.map(16 * b) == Location(0, 0, 0, 0, 1)
    ch = address_mapper("ChRaBaRoCo", G6, channels=1)
    assert ch.map(64 * b) == Location(0, 0, 0, 1, 0) and ch.map(64 * b * 16384) == Location(0, 0, 1, 0, 0)
    assert set(MAPPERS.names()) == {"robaracoch", "rocobarach", "chrabaroco"}


def test_closed_policy_uses_auto_precharge():
    trace = rw("R 0,0,0,0,0", "R 0,0,0,0,1", "R 0,0,0,1,0")
    r, cmds = traced(G6, trace, refresh="none", row_policy="closed")
    # after one access (cap 1) the hit's RD becomes RDA (legal at 33 like the RD); the bank closes by itself, so the
    # next row's ACT waits max(RDA + tRTP + tRP = 63, ACT + tRC = 80) and meets a closed bank: a miss, not a conflict
    assert [(t, c) for t, c, _ in cmds] == [(1, "ACT"), (27, "RD"), (33, "RDA"), (80, "ACT"), (106, "RD")]
    assert (r.row_hits, r.row_misses, r.row_conflicts) == (1, 2, 0)
    o = simulate(G6, trace, refresh="none")
    assert (o.row_hits, o.row_misses, o.row_conflicts) == (1, 1, 1)


def test_closed_policy_rda_under_an_active_write_reactivates_it_once():
    # Four reads open bg0..bg3 bank 0 (ACT 1, 6, 11, 16: tRRD_S 5); the write to bg0 bank 1 arrives at 4, its copies
    # (4..28) merge into it, and its ACT is the fifth: tFAW 28 after the first, 29. Its WR would wait for the reads'
    # RD->WR turnaround (last RD 42 + tCL + tBL + 2 - tCWL = 64), so the two reads arriving after its ACT hit its row
    # first: RD at 29 + tRCDRD = 55 and, cap 1 reached, RDA at 55 + tCCD_L = 61 (the PREs of the closed policy at
    # ACT + tRAS = 54, 59, 64, 69 hold the read queue at 59). The RDA closes the bank under the active write, which
    # activates again at max(RDA + tRTP + tRP = 91, ACT + tRC = 108) and writes tRCDWR later. The write stays one
    # active request (Ramulator 2.1's promote_to_active counts it twice: simulator/validation/dram.py WHY_CLOSED).
    trace = rw("R 0,0,0,0,0", "R 0,1,0,0,0", "R 0,2,0,0,0", "R 0,3,0,0,0", *["W 0,0,1,0,0"] * 25, "R 0,0,1,0,1",
               "R 0,0,1,0,2")
    system = MemorySystem(G6, refresh="none", row_policy="closed")
    ctrl = system.controllers[0]
    ctrl.channel.trace = []
    r = system.run(trace)
    got = [(t, c, (a.bank_group, a.bank)) for t, c, a in ctrl.channel.trace]
    assert got == [(1, "ACT", (0, 0)), (6, "ACT", (1, 0)), (11, "ACT", (2, 0)), (16, "ACT", (3, 0)), (27, "RD", (0, 0)),
                   (29, "ACT", (0, 1)), (32, "RD", (1, 0)), (37, "RD", (2, 0)), (42, "RD", (3, 0)), (54, "PRE", (0, 0)),
                   (55, "RD", (0, 1)), (59, "PRE", (1, 0)), (61, "RDA", (0, 1)), (64, "PRE", (2, 0)),
                   (69, "PRE", (3, 0)), (108, "ACT", (0, 1)), (124, "WR", (0, 1))]
    assert (P["tFAW"], P["tRCDWR"], P["tRTP"] + P["tRP"], P["tRC"]) == (28, 16, 30, 79)
    assert r.cycles == 124 + P["tCWL"] + P["tBL"]
    assert (r.row_hits, r.row_misses, r.row_conflicts, r.writes_merged) == (2, 5, 0, 24)  # the write counted once
    assert ctrl.active == [] and ctrl.active_per_bank == [0] * 16


def test_timeout_policy_closes_idle_rows():
    # 100 reads to bank group 1 keep the queue full, so the last request (bank 0, another row) arrives late
    trace = rw("R 0,0,0,0,0", *(f"R 0,1,0,0,{c % 64}" for c in range(100)), "R 0,0,0,1,0")
    r, cmds = traced(G6, trace, refresh="none", row_policy="timeout", policy_options={"timeout": 64})
    pre0 = [t for t, c, a in cmds if c == "PRE" and a.bank_group == 0]
    # bank 0's only access is its RD at 27: its row is closed once idle 64 cycles (and tRAS has passed)
    assert pre0 and pre0[0] == 27 + 64
    assert (r.row_conflicts, r.row_misses) == (0, 3)  # bank 0 twice, bank group 1 once


def test_trace_errors():
    with pytest.raises(HwsimError, match="line 2: bad address"):
        parse_trace("LD 0x10\nLD 0xzz")
    with pytest.raises(HwsimError, match="line 1: expected 2 tokens"):
        parse_trace("LD")
    with pytest.raises(HwsimError, match="line 2: request type 'R' in a load-store trace"):
        parse_trace("LD 1\nR 0,0,0,0,0")
    with pytest.raises(HwsimError, match="row 99999 out of range"):
        simulate(G6, rw("R 0,0,0,99999,0"))


@pytest.mark.parametrize("args, message", [
    (["--standard", "nosuch"], "unknown DRAM standard 'nosuch'"),
    (["--mapping", "RoRoRo"], "--mapping: unknown address mapping 'RoRoRo'"),
    (["--scheduler", "lifo"], "--scheduler: unknown scheduler 'lifo'"),
    (["--json", "/nonexistent-folder/r.json"], "--json /nonexistent-folder/r.json: folder /nonexistent-folder does not exist"),
])
def test_cli_one_line_errors(tmp_path, args, message):
    trace = tmp_path / "t.trace"
    trace.write_text("LD 0x0\nST 0x40\n")
    res = CliRunner().invoke(main, ["dram", str(trace), *args])
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and res.output.startswith("error: ") and message in res.output


def test_cli_bad_trace_line_and_json(tmp_path):
    bad = tmp_path / "bad.trace"
    bad.write_text("LD 0x0\nLOAD 0x40\n")
    res = CliRunner().invoke(main, ["dram", str(bad)])
    assert res.exit_code == 2 and res.output == f"error: {bad} line 2: request type 'LOAD' in a load-store trace " \
                                                "(expected LD or ST)\n"
    good = tmp_path / "g.trace"
    good.write_text("".join(f"LD {i * 32}\n" for i in range(100)))
    out = tmp_path / "o.json"
    res = CliRunner().invoke(main, ["dram", str(good), "--standard", "hbm3", "--json", str(out)])
    assert res.exit_code == 0, res.output
    import json
    data = json.loads(out.read_text())
    assert data["requests"] == 100 and data["reads"] == 100 and data["cycles"] > 0 and data["bandwidth_GBps"] > 0


def test_aim_standard_serves_plain_requests_with_its_base_commands():
    # gddr6-aim's extension WR_AB also closes every bank, but it writes data: refresh must close banks with PREA
    aim = load_standard("gddr6-aim")
    assert aim.command_role(level="channel", all_banks=True, closes=True) == "PREA"
    r, cmds = traced(aim, rw(*(f"R 0,0,{b},{r},0" for r in range(3) for b in range(4))), refresh="all-bank")
    assert r.reads == 12 and {c for _, c, _ in cmds} <= {"ACT", "RD", "PRE", "PREA", "REF"}


def test_channel_count_that_is_not_a_power_of_two_interleaves_by_modulo():
    # a GPU's 40 or 80 HBM channels: consecutive bursts go to channels 0, 1, ..., n-1, then the next column
    from hardware.dram.address_mapping import address_mapper

    std = load_standard("hbm3")
    m = address_mapper("RoBaRaCoCh", std, channels=80)
    burst = std.organization.burst_bytes.value
    locs = [m.map(i * burst) for i in range(161)]
    assert [loc.channel for loc in locs[:82]] == list(range(80)) + [0, 1]
    assert (locs[80].column, locs[160].column, locs[160].channel) == (1, 2, 0)
    for addr in (0, 5 * burst, 12345 * burst, m.capacity_bytes - burst):
        assert m.unmap(m.map(addr)) == addr
    assert m.capacity_bytes == 80 * std.organization.rows.value * std.organization.columns.value * std.banks * burst
    with pytest.raises(HwsimError, match="channel lowest"):
        address_mapper("ChRaBaRoCo", std, channels=80)


def test_dram_cli_takes_a_targets_memory(tmp_path):
    from click.testing import CliRunner

    from simulator.cli import main

    trace = tmp_path / "t.trace"
    trace.write_text("".join(f"LD {i * 32}\n" for i in range(64)))
    res = CliRunner().invoke(main, ["dram", str(trace), "--target", "pim-gpt"])
    assert res.exit_code == 0, res.output
    assert "target pim-gpt: 8 gddr6 channels" in res.output and "8 channel(s)" in res.output
    res = CliRunner().invoke(main, ["dram", str(trace), "--target", "l4", "--channels", "2"])
    assert res.exit_code == 0 and "12 x 16-bit gddr6 channels" in res.output and "2 channel(s)" in res.output
    res = CliRunner().invoke(main, ["dram", str(trace), "--target", "rtx4090"])
    assert res.exit_code == 2 and "no memory: section" in res.output and len(res.output.strip().splitlines()) == 1


def test_cli_progress_lines_off_a_terminal(tmp_path, monkeypatch):
    import hardware.dram.memory_controller as mc
    import simulator.progress as progress

    monkeypatch.setattr(progress, "PROGRESS_LINE_S", 0.0)
    monkeypatch.setattr(mc, "PROGRESS_EVERY", 8)
    trace = tmp_path / "t.trace"
    trace.write_text("".join(f"LD 0x{64 * i:x}\n" for i in range(40)))
    res = CliRunner().invoke(main, ["dram", str(trace)])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("simulating:")]
    assert [ln.split()[1] for ln in lines] == ["8/40", "16/40", "24/40", "32/40"] and "cycles" in res.stdout
    quiet = CliRunner().invoke(main, ["dram", str(trace), "--quiet"])
    assert quiet.exit_code == 0 and "simulating:" not in quiet.stderr
