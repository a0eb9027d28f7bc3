"""The committed Ramulator 2 numbers (simulator/validation/data/dram/ramulator.json) against hwsim, within the
tolerance reports/dram_validation.md states."""

from __future__ import annotations

import json

import pytest

from hardware.dram import load_standard
from hardware.dram.memory_controller import simulate
from hardware.dram.trace import read_trace
from simulator.validation.dram import REFERENCE_BUGS, TOLERANCE, compare, within_tolerance
from simulator.validation.dram_ramulator import DATA
from simulator.validation.dram_traces import TRACE_DIR, traces


def _ramulator():
    return json.loads(DATA.read_text())


def test_data_records_ramulator_commit_and_command():
    data = _ramulator()
    assert len(data["commit"]) == 40 and "dram_ramulator" in data["command"]
    assert set(data["results"]) == {"gddr6", "ddr4", "hbm2", "hbm3", "lpddr5", "ddr5"}


def test_committed_traces_match_their_generator():
    for name, reqs in traces().items():
        lines = (TRACE_DIR / f"{name}.trace").read_text().splitlines()
        assert lines == [f"{'ST' if w else 'LD'} 0x{a:x}" for w, a in reqs]


# (gddr6 no longer agrees to the cycle on any trace since its preset took AIM-SIM's timing: Ramulator's RD->WR rule
# nCL + 1 differs from the standard's tCL + tBL + 2 - tCWL by 3 cycles at tCL 50 and shifts a few row misses; the
# report lists it, within 0.25%)
@pytest.mark.parametrize("std_name, trace", [("ddr4", "sequential"), ("hbm2", "random")])
def test_agrees_with_ramulator_to_the_cycle(std_name, trace):
    ram = _ramulator()["results"][std_name][trace]
    r = simulate(load_standard(std_name), read_trace(TRACE_DIR / f"{trace}.trace"))
    assert (r.accept_cycles, r.accept_row_hits, r.accept_row_misses, r.accept_row_conflicts) == \
        (ram["cycles"], ram["row_hits"], ram["row_misses"], ram["row_conflicts"])
    assert r.accept_read_latency_mean == pytest.approx(ram["avg_read_latency"], rel=1e-5)


@pytest.mark.heavy
def test_hbm2_mixed_within_tolerance():
    ram = _ramulator()["results"]["hbm2"]["mixed_2to1"]
    r = simulate(load_standard("hbm2"), read_trace(TRACE_DIR / "mixed_2to1.trace"))
    assert abs(r.accept_cycles / ram["cycles"] - 1) <= TOLERANCE
    assert abs(r.accept_read_latency_mean / ram["avg_read_latency"] - 1) <= TOLERANCE


def test_closed_rows_ddr4_random_agree_to_the_cycle():
    ram = _ramulator()["results_closed"]["ddr4"]["random"]
    r = simulate(load_standard("ddr4"), read_trace(TRACE_DIR / "random.trace"), row_policy="closed")
    assert (r.accept_cycles, r.accept_row_hits, r.accept_row_misses) == (ram["cycles"], ram["row_hits"], ram["row_misses"])


@pytest.mark.heavy
def test_every_run_within_tolerance():
    # except the runs a reference bug puts outside it (traced command by command), which must still be outside it
    _, rows = compare()
    key = lambda r: (r["standard"], r["trace"], r["policy"])  # noqa: E731
    assert rows and all("error" not in r for r in rows)
    assert all(within_tolerance(r) for r in rows if key(r) not in REFERENCE_BUGS)
    known = [r for r in rows if key(r) in REFERENCE_BUGS]
    assert len(known) == len(REFERENCE_BUGS) and not any(within_tolerance(r) for r in known)


def test_per_bank_refresh_lpddr5_row_conflict_agrees_to_the_cycle():
    ram = _ramulator()["results_perbank"]["lpddr5"]["row_conflict"]
    r = simulate(load_standard("lpddr5"), read_trace(TRACE_DIR / "row_conflict.trace"), refresh="per-bank")
    assert (r.accept_cycles, r.accept_row_hits) == (ram["cycles"], ram["row_hits"])


def test_per_bank_refresh_refreshes_one_bank_per_interval():
    std = load_standard("lpddr5")
    trace = read_trace(TRACE_DIR / "sequential.trace")[:1500]
    per_bank = simulate(std, trace, refresh="per-bank")
    all_bank = simulate(std, trace, refresh="all-bank")
    none = simulate(std, trace, refresh="none")
    interval = std.params["tREFIpb"]
    # one REFpb per tREFIpb cycles (round robin) against one REF per tREFI (the last one queued may not have issued)
    assert per_bank.cycles // interval - 1 <= per_bank.refreshes <= per_bank.cycles // interval
    assert all_bank.cycles // std.params["tREFI"] - 1 <= all_bank.refreshes <= all_bank.cycles // std.params["tREFI"]
    assert per_bank.refreshes > 4 * all_bank.refreshes
    assert none.refreshes == 0


def test_per_bank_refresh_needs_the_standard_to_declare_it():
    from hardware.errors import HwsimError

    with pytest.raises(HwsimError, match="refresh_per_bank"):
        simulate(load_standard("ddr4"), read_trace(TRACE_DIR / "sequential.trace")[:10], refresh="per-bank")
