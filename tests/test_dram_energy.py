"""IDD energy model (hardware/dram/energy.py): hand-computed known answers, invariants on request-level runs,
and bad ``idd:`` sections."""

from __future__ import annotations

import copy

import pytest
import yaml

from hardware.dram import load_standard, standard_from_dict
from hardware.dram.energy import COMPONENTS, command_energies, energy
from hardware.dram.memory_controller import MemorySystem, RequestController, simulate
from hardware.dram.standard import PRESET_DIR
from hardware.dram.trace import parse_trace
from hardware.errors import HwsimError

# DDR4-3200 preset, by hand (V x mA x ns = pJ; tCK 0.625 ns; 8 devices):
#   ACT  VDD 1.2 (57-52) 52 cyc = 1.2*5*32.5*8  = 1560    VPP 2.5 (3-3) ... = 0
#   PRE  VDD 1.2 (57-37) 22 cyc = 1.2*20*13.75*8 = 2640   VPP 0
#   RD   VDD 1.2 (168-52) 4 cyc = 1.2*116*2.5*8 = 2784   VPP 0
#   WR   VDD 1.2 (150-52) 4 cyc = 1.2*98*2.5*8  = 2352   VPP 0
#   REF  VDD 1.2 (250-52) 560 cyc = 1.2*198*350*8 = 665280; VPP 2.5 (28-3) 350 ns 8 = 175000
#   per cycle active VDD 1.2*52*0.625*8 = 312 + VPP 2.5*3*0.625*8 = 37.5 -> 349.5
#   per cycle precharged VDD 1.2*37*0.625*8 = 222 + 37.5 -> 259.5
ACT, PRE, RD, WR, REF, ACTIVE, PRECHARGED = 1560.0, 2640.0, 2784.0, 2352.0, 840280.0, 349.5, 259.5


def test_ddr4_known_answer():
    std = load_standard("ddr4")
    e = energy(std, activates=2, precharges=1, reads=3, writes=1, refreshes=1, active_cycles=100, precharged_cycles=50)
    assert e.components["activate"] == pytest.approx(2 * ACT)
    assert e.components["precharge"] == pytest.approx(PRE)
    assert e.components["read"] == pytest.approx(3 * RD)
    assert e.components["write"] == pytest.approx(WR)
    assert e.components["refresh"] == pytest.approx(REF)
    assert e.by_domain["VPP"]["refresh"] == pytest.approx(175000.0)
    assert e.total == pytest.approx(904669.0)


def test_idle_is_background_only():
    std = load_standard("ddr4")
    e = energy(std, precharged_cycles=1000)
    assert e.total == pytest.approx(1000 * PRECHARGED)
    assert {k for k, v in e.components.items() if v} == {"background_precharged"}


def test_single_read_run_matches_the_equations():
    std = load_standard("ddr4")
    r = simulate(std, parse_trace("LD 0x0\n"))
    p = std.params
    act_at = r.cycles - (p["tRCD"] + p["tCL"] + p["tBL"])  # ACT -> RD tRCD, RD -> last beat tCL + tBL
    e = r.energy
    assert r.commands == {"ACT": 1, "RD": 1}
    assert e.components["activate"] == pytest.approx(ACT)
    assert e.components["read"] == pytest.approx(RD)
    assert e.components["precharge"] == 0  # the row stays open
    bg = e.components["background_active"] + e.components["background_precharged"]
    assert bg == pytest.approx((r.cycles - act_at) * ACTIVE + act_at * PRECHARGED)


def _trace(n: int) -> str:
    return "".join(f"{'ST' if i % 3 == 2 else 'LD'} 0x{(i * 7919 % 4096) * 64:x}\n" for i in range(n))


@pytest.mark.parametrize("name", ["ddr4", "gddr6", "hbm2"])
def test_invariants(name):
    std = load_standard(name)
    small, big = simulate(std, parse_trace(_trace(60))), simulate(std, parse_trace(_trace(120)))
    for r in (small, big):
        assert all(v >= 0 for v in r.energy.components.values())
        assert r.energy.total == pytest.approx(sum(r.energy.components[k] for k in COMPONENTS))
        per = command_energies(std).per_command["VDD"]
        closed = r.energy.by_domain["VDD"]["precharge"] / per["precharge"]
        opened = r.energy.by_domain["VDD"]["activate"] / per["activate"]
        assert opened == pytest.approx(r.commands["ACT"])
        assert closed <= opened + 1e-9  # every closed bank was opened first
    assert big.energy.total >= small.energy.total
    assert big.energy.components["read"] > small.energy.components["read"]


def test_standards_without_idd_values():
    std = load_standard("lpddr5")
    assert std.idd.unavailable
    assert simulate(std, parse_trace("LD 0x0\n")).energy is None
    with pytest.raises(HwsimError, match="no IDD energy model"):
        command_energies(std)


def _ddr4_dict() -> dict:
    return yaml.safe_load((PRESET_DIR / "ddr4.yaml").read_text())


def test_bad_idd_sections():
    data = _ddr4_dict()
    bad = copy.deepcopy(data)
    bad["idd"]["domains"]["VDD"]["IDD4R"]["value"] = 10
    with pytest.raises(HwsimError, match="IDD4R .*below IDD3N"):
        standard_from_dict(bad, "ddr4.yaml")
    both = copy.deepcopy(data)
    both["idd"]["unavailable"] = "none"
    with pytest.raises(HwsimError, match="either 'unavailable'"):
        standard_from_dict(both, "ddr4.yaml")
    with pytest.raises(HwsimError, match="must be >= 0"):
        energy(load_standard("ddr4"), reads=-1)


def test_dramsim3_config_carries_our_numbers():
    import configparser

    from simulator.validation.dram_dramsim3 import config_ini

    for name, bus, cols in (("ddr4", 64, 1024), ("hbm2", 64, 64)):
        std = load_standard(name)
        ini = configparser.ConfigParser(inline_comment_prefixes=(";",))
        ini.read_string(config_ini(std))
        p, vdd, n = std.params, std.idd.domains["VDD"], std.idd.devices.value
        assert int(ini["timing"]["tRAS"]) == p["tRAS"] and int(ini["timing"]["CL"]) == p["tCL"]
        assert int(ini["system"]["bus_width"]) == int(ini["dram_structure"]["device_width"]) == bus
        assert int(ini["dram_structure"]["columns"]) == cols  # DRAMsim3 keeps log2(columns') - log2(BL) bits
        assert float(ini["power"]["IDD0"]) == pytest.approx(vdd.IDD0.value * n)


def test_dramsim3_data_covers_every_trace():
    import json

    from simulator.validation.dram_dramsim3 import DATA, PROTOCOLS
    from simulator.validation.dram_traces import TRACE_DIR

    results = json.loads(DATA.read_text())["results"]
    traces = {p.stem for p in TRACE_DIR.glob("*.trace")}
    assert set(results) == set(PROTOCOLS)
    for runs in results.values():
        assert set(runs) == traces
        assert all(r["num_reads_done"] + r["num_writes_done"] == r["requests"] for r in runs.values())


@pytest.mark.heavy
@pytest.mark.parametrize("name", ["ddr4", "hbm2"])
def test_energy_agrees_with_dramsim3_where_the_controllers_agree(name):
    """Streaming and random reads: both controllers open the same rows, so the IDD energies must agree."""
    import json

    from simulator.validation import dram_dramsim3

    rows = dram_dramsim3.compare(json.loads(dram_dramsim3.DATA.read_text()), (name,), ("sequential", "random"))
    assert len(rows) == 2
    for r in rows:
        assert abs(r["energy_err"]) < 0.01, r
        assert abs(r["cycles_err"]) < 0.025, r


def test_per_bank_refresh_energy():
    # by hand, HBM2 (tCK 1 ns, half a 128-bit channel): REF 1.2 V x (250 - 55) mA x 260 ns x 0.5 = 30420 pJ
    ce = command_energies(load_standard("hbm2"))
    assert ce.per_command["VDD"]["refresh"] == pytest.approx(30420.0)
    assert ce.per_command["VDD"]["refresh_per_bank"] == pytest.approx(30420.0 / 16)  # no IDD5PB: one bank's share
    data = yaml.safe_load((PRESET_DIR / "hbm2.yaml").read_text())
    data["idd"]["domains"]["VDD"]["IDD5PB"] = {"value": 100, "source": "test"}
    # with IDD5PB: 1.2 V x (100 - 55) mA x tRFCpb 160 ns x 0.5 = 4320 pJ
    assert command_energies(standard_from_dict(data, "hbm2.yaml")).per_command["VDD"]["refresh_per_bank"] == \
        pytest.approx(4320.0)


def test_idle_two_ranks_cost_twice_one_ranks_background():
    std = load_standard("ddr4")
    one, two = RequestController(std, ranks=1), RequestController(std, ranks=2)
    e1, e2 = one.energy(1000), two.energy(1000)
    assert e1.total == pytest.approx(1000 * PRECHARGED)
    assert e2.total == pytest.approx(2 * 1000 * PRECHARGED)
    assert e2.components["background_precharged"] == pytest.approx(2 * e1.components["background_precharged"])
    # HBM2 pseudo channels alike: each holds half a channel's devices (idd.devices 0.5), two make one channel
    hbm2 = load_standard("hbm2")
    pc1, pc2 = RequestController(hbm2).energy(1000), RequestController(hbm2, pseudo_channels=2).energy(1000)
    vdd = hbm2.idd.domains["VDD"]
    one = vdd.voltage.value * vdd.IDD2N.value * hbm2.organization.tCK_ns.value * 0.5 * 1000
    assert pc1.by_domain["VDD"]["background_precharged"] == pytest.approx(one)
    assert pc2.total == pytest.approx(2 * pc1.total)


def test_background_and_refresh_are_per_rank():
    """One read on rank 0 of a two-rank DDR4 channel: rank 0 is in active standby from its ACT on, rank 1 stays
    precharged the whole run; with refresh, every rank's REF is charged once."""
    std = load_standard("ddr4")
    r = simulate(std, parse_trace("R 0,0,0,0,0,0\n"), ranks=2, refresh="none")
    p = std.params
    act_at = r.cycles - (p["tRCD"] + p["tCL"] + p["tBL"])
    e = r.energy
    assert e.components["background_active"] == pytest.approx((r.cycles - act_at) * ACTIVE)
    assert e.components["background_precharged"] == pytest.approx((act_at + r.cycles) * PRECHARGED)
    # a run long enough for one refresh round: each rank refreshes once, each REF costs one rank's REF
    trace = "".join(f"R 0,{i % 2},{i % 4},0,{i % 8},0\n" for i in range(400))
    ctrl = MemorySystem(std, ranks=2)
    ctrl.controllers[0].refresh.next = 10  # the first round early (tREFI is 12480 cycles)
    rr = ctrl.run(parse_trace(trace))
    assert rr.commands["REF"] == 2
    assert rr.energy.components["refresh"] == pytest.approx(2 * REF)
