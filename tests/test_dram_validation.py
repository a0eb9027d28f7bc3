"""The committed Ramulator 2 numbers (simulator/validation/data/dram/ramulator.json) against hwsim, within the
tolerance reports/dram_validation.md states."""

from __future__ import annotations

import json

import pytest

from hardware.dram import load_standard
from hardware.dram.memory_controller import simulate
from hardware.dram.trace import read_trace
from simulator.validation.dram import TOLERANCE, compare, within_tolerance
from simulator.validation.dram_ramulator import DATA
from simulator.validation.dram_traces import TRACE_DIR, traces


def _ramulator():
    return json.loads(DATA.read_text())


def test_data_records_ramulator_commit_and_command():
    data = _ramulator()
    assert len(data["commit"]) == 40 and "dram_ramulator" in data["command"]
    assert set(data["results"]) == {"gddr6", "ddr4", "hbm2", "hbm3", "lpddr5"}


def test_committed_traces_match_their_generator():
    for name, reqs in traces().items():
        lines = (TRACE_DIR / f"{name}.trace").read_text().splitlines()
        assert lines == [f"{'ST' if w else 'LD'} 0x{a:x}" for w, a in reqs]


@pytest.mark.parametrize("std_name, trace", [("ddr4", "sequential"), ("gddr6", "random")])
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
    _, rows = compare()
    assert rows and all("error" not in r and within_tolerance(r) for r in rows)
