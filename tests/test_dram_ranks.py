"""Multi-rank DRAM channels (hardware.dram.ranks): rank-to-rank rules, per-rank tFAW and refresh, the rank field of
the address mapping, and their errors. Cycle counts derived by hand from ddr4.yaml."""

from __future__ import annotations

import json

import pytest

from hardware.dram import load_standard
from hardware.dram.address_mapping import Location, address_mapper
from hardware.dram.channel import BankAddress
from hardware.dram.memory_controller import MemorySystem, RequestController, simulate
from hardware.dram.ranks import RankedChannel
from hardware.dram.trace import parse_trace, read_trace
from hardware.errors import HwsimError
from simulator.validation.dram_ramulator import DATA
from simulator.validation.dram_traces import TRACE_DIR

D4 = load_standard("ddr4")
P = D4.params  # tBL 4, tRTRS 2, tCL 22, tCWL 16, tCCD_S 4, tRCD 22, tRRD_S 4, tFAW 34


def _open(ch: RankedChannel, rank: int, bg: int, row: int = 0) -> BankAddress:
    addr = BankAddress(bg, 0, row, 0, rank)
    ch.issue("ACT", addr, 0)
    return addr


def test_rank_to_rank_data_bus_rules():
    ch = RankedChannel(D4, 2)
    a0, a1, b0 = _open(ch, 0, 0), _open(ch, 1, 0), _open(ch, 0, 1)
    t = ch.issue("RD", a0, 100)
    # another rank: tBL + tRTRS = 6; the same rank, another bank group: tCCD_S = 4
    assert ch.earliest("RD", a1, 0) == t + P["tBL"] + P["tRTRS"] == t + 6
    assert ch.earliest("RD", b0, 0) == t + P["tCCD_S"] == t + 4
    # RD -> WR on another rank: the write's data (WR + tCWL) starts tRTRS after the read's ends (RD + tCL + tBL)
    assert ch.earliest("WR", a1, 0) == t + P["tCL"] + P["tBL"] + P["tRTRS"] - P["tCWL"] == t + 12
    w = ch.issue("WR", a1, 200)
    # WR -> RD on another rank: tCWL + tBL + tRTRS - tCL = 0, so only the command bus binds; WR -> WR: tBL
    assert ch.earliest("RD", a0, 0) == w + 1
    assert ch.earliest("WR", a0, 0) == w + P["tBL"]


def test_command_bus_is_shared_and_tfaw_is_per_rank():
    ch = RankedChannel(D4, 2)
    acts = [ch.issue("ACT", BankAddress(bg, 0, 0, 0, 0), 0) for bg in range(4)]
    assert acts == [0, 4, 8, 12]  # tRRD_S 4 inside rank 0
    # rank 1 is free of rank 0's tRRD and tFAW: its ACT waits only for the command bus
    assert ch.issue("ACT", BankAddress(0, 0, 0, 0, 1), 12) == 13
    # a fifth ACT in rank 0 waits tFAW after the first
    assert ch.earliest("ACT", BankAddress(0, 1, 0, 0, 0), 0) == acts[0] + P["tFAW"] == 34
    assert ch.counts == {"ACT": 5}
    assert ch.open_row[:2] == [0, None] and ch.open_row[16] == 0  # rank-major banks: rank 1 starts at 16


def test_refresh_is_queued_per_rank_and_the_ranks_refresh_one_after_the_other():
    ctrl = RequestController(D4, ranks=2)
    ctrl.refresh.refresh(0)
    assert [(r.address.rank, r.bank) for r in ctrl.priority] == [(0, 0), (1, 16)]
    issued = []
    for _ in range(4):
        if ctrl.tick():
            issued.append(ctrl.clk)
    assert ctrl.stats.refreshes == 2 and ctrl.channel.counts == {"REF": 2} and issued == [1, 2]


def test_mapping_puts_the_rank_bit_above_the_column():
    m = address_mapper("RoBaRaCoCh", D4, channels=1, ranks=2)
    col_bits = 7  # 128 columns; 64-byte bursts
    assert m.map(1 << (6 + col_bits)) == Location(0, 0, 0, 0, 0, rank=1)
    assert m.map((1 << (6 + col_bits)) - 64) == Location(0, 0, 0, 0, 127)
    assert m.capacity_bytes == 2 * address_mapper("RoBaRaCoCh", D4).capacity_bytes
    with pytest.raises(HwsimError, match="ranks = 3 is not a power of two"):
        address_mapper("RoBaRaCoCh", D4, ranks=3)


def test_address_vectors_with_a_rank_and_their_errors():
    trace = parse_trace("R 0,1,0,0,5,0\nR 0,0,0,0,5,0")
    r = simulate(D4, trace, ranks=2, refresh="none")
    assert r.ranks == 2 and r.commands == {"ACT": 2, "RD": 2} and r.row_misses == 2
    with pytest.raises(HwsimError, match=r"rank 1 out of range 0..0 \(raise --ranks\)"):
        simulate(D4, trace)
    with pytest.raises(HwsimError, match="declares no ranks: section"):
        MemorySystem(load_standard("gddr6"), ranks=2)


@pytest.mark.heavy
def test_two_ranks_agree_with_ramulator_given_the_same_rank_rules():
    ram = json.loads(DATA.read_text())["results_ranks_standard"]["ddr4"]["mixed_2to1"]
    r = simulate(D4, read_trace(TRACE_DIR / "mixed_2to1.trace"), ranks=2)
    assert (r.accept_cycles, r.accept_row_hits, r.accept_row_misses, r.accept_row_conflicts) == \
        (ram["cycles"], ram["row_hits"], ram["row_misses"], ram["row_conflicts"])
    assert r.accept_read_latency_mean == pytest.approx(ram["avg_read_latency"], rel=1e-5)


def test_cli_ranks_option(tmp_path):
    from click.testing import CliRunner  # noqa: PLC0415

    from simulator.cli import main  # noqa: PLC0415

    trace = tmp_path / "t.trace"
    trace.write_text("R 0,1,0,0,5,0\nW 0,0,1,0,5,0\n")
    out = CliRunner().invoke(main, ["dram", str(trace), "--standard", "ddr4", "--ranks", "2", "--refresh", "none"])
    assert out.exit_code == 0 and "1 channel(s) x 2 rank(s)" in out.output
    bad = CliRunner().invoke(main, ["dram", str(trace), "--standard", "gddr6", "--ranks", "2"])
    assert bad.exit_code == 2 and "error: --ranks 2: DRAM standard 'gddr6' declares no ranks: section" in bad.output
