"""DDR5 same-bank refresh (REFsb, ``--refresh same-bank``): hand-derived cycles at the channel and the controller.

DDR5-4800 (ddr5.yaml): tRFCsb 313, tREFIsb 1171, tRP 36, tRTP 18, tCCD_L 12; ACT and RD hold the command bus two
cycles and the rules count from their second cycle, so an ACT may *start* one cycle before a rule's latency ends.
"""

from __future__ import annotations

import random

import pytest
import yaml
from click.testing import CliRunner

from hardware.dram import load_standard, standard_from_dict
from hardware.dram.channel import BankAddress, Channel, DramProtocolError
from hardware.dram.memory_controller import MemorySystem
from hardware.dram.standard import PRESET_DIR
from hardware.dram.trace import parse_trace
from hardware.errors import HwsimError
from simulator.cli import main

D5 = load_standard("ddr5")
P = D5.params


def _ddr5(**timing: int):
    data = yaml.safe_load((PRESET_DIR / "ddr5.yaml").read_text())
    for name, value in timing.items():
        data["timing"][name]["value"] = value
    return data


def test_refsb_blocks_its_bank_index_in_every_group_only():
    ch = Channel(D5)
    assert ch.issue("REFsb", BankAddress(0, 1), 0) == 0
    # bank 1 of any group: the ACT's second cycle at tRFCsb = 313, so it starts at 312
    for group in (0, 3, 7):
        assert ch.earliest("ACT", BankAddress(group, 1, 0), 0) == P["tRFCsb"] - 1
    assert ch.earliest("ACT", BankAddress(3, 2, 0), 0) == 1  # another bank index: only the command bus
    assert ch.earliest("REFsb", BankAddress(0, 1), 0) == P["tRFCsb"]  # REFsb to REFsb, same bank
    assert ch.earliest("REF", None, 0) == P["tRFCsb"]  # an all-bank REF waits for it too


def test_refsb_needs_its_bank_closed_in_every_group():
    ch = Channel(D5)
    ch.issue("ACT", BankAddress(5, 2, 9), 0)
    with pytest.raises(DramProtocolError, match=r"REFsb to bank 2 needs it closed in every bank group; open in groups \[5\]"):
        ch.issue("REFsb", BankAddress(0, 2), 200)
    t_pre = ch.issue("PRE", BankAddress(5, 2), 200)
    assert ch.issue("REFsb", BankAddress(0, 2), 0) == t_pre + P["tRP"]
    assert ch.issue("REFsb", BankAddress(0, 3), 0) == t_pre + P["tRP"] + 1  # another index: not held by the first


def test_controller_refreshes_round_robin_and_other_banks_keep_serving():
    std = standard_from_dict(_ddr5(tREFIsb=400), "test-ddr5")
    lines = [line for c in range(64) for line in (f"R 0,5,0,0,{c}", f"R 0,6,1,0,{c}")]
    system = MemorySystem(std, refresh="same-bank")
    system.controllers[0].channel.trace = []
    r = system.run(parse_trace("\n".join(lines)))
    cmds = system.controllers[0].channel.trace
    seq = [(t, c, a.bank_group, a.bank) for t, c, a in cmds if c != "RD"]
    # due at 400: bank 0. Bank 0 is open in group 5: its last RD at 389 (reads alternate every 8 cycles from 37),
    # PRE at 389 + 1 + tRTP = 408, REFsb at 408 + tRP = 444, the ACT for the waiting reads 444 + 313 - 1 = 756.
    # Due at 800: bank 1 (group 6): last RD at 782, PRE 801, REFsb 837, ACT 1149. Due at 1200: bank 2, closed
    # everywhere: REFsb at 1200 exactly.
    assert seq == [(1, "ACT", 5, 0), (9, "ACT", 6, 1),
                   (408, "PRE", 5, 0), (444, "REFsb", 0, 0), (756, "ACT", 5, 0),
                   (801, "PRE", 6, 1), (837, "REFsb", 0, 1), (1149, "ACT", 6, 1),
                   (1200, "REFsb", 0, 2)]
    rd = [(t, a.bank_group) for t, c, a in cmds if c == "RD"]
    # while bank 0 refreshes (444..757) group 6's bank 1 keeps reading every tCCD_L = 12 cycles; group 5 waits
    during = [(t, g) for t, g in rd if 444 < t < 756]
    assert [t for t, _ in during] == list(range(445, 746, 12)) and {g for _, g in during} == {6}
    assert r.refreshes == 3 == r.cycles // 400


@pytest.mark.parametrize("ranks", [1, 2])
def test_refresh_count_is_cycles_over_trefisb(ranks):
    rng = random.Random(7)
    lines = [f"R 0,{rng.randrange(8)},{rng.randrange(4)},{rng.randrange(64)},0" if ranks == 1 else
             f"R 0,{rng.randrange(2)},{rng.randrange(8)},{rng.randrange(4)},{rng.randrange(64)},0"
             for _ in range(600)]
    system = MemorySystem(D5, refresh="same-bank", ranks=ranks)
    r = system.run(parse_trace("\n".join(lines)))
    assert r.cycles > 4 * P["tREFIsb"]
    assert r.refreshes == ranks * (r.cycles // P["tREFIsb"])
    assert r.commands["REFsb"] == r.refreshes


def test_same_bank_refresh_refused_without_the_section(tmp_path):
    with pytest.raises(HwsimError, match="--refresh same-bank: DRAM standard 'gddr6' declares no refresh_same_bank"):
        MemorySystem(load_standard("gddr6"), refresh="same-bank")
    trace = tmp_path / "one.trace"
    trace.write_text("R 0,0,0,0,0\n")
    out = CliRunner().invoke(main, ["dram", str(trace), "--standard", "lpddr5", "--refresh", "same-bank"])
    assert out.exit_code == 2 and out.output.count("\n") == 1 and "declares no refresh_same_bank" in out.output


def test_refresh_same_bank_must_name_a_same_bank_command():
    data = _ddr5()
    data["refresh_same_bank"]["command"] = "REF"
    with pytest.raises(HwsimError, match="field 'refresh_same_bank.command': 'REF' must be a same_bank command"):
        standard_from_dict(data, "ddr5.yaml")
    data = _ddr5()
    data["commands"]["REFsb"]["level"] = "channel"
    with pytest.raises(HwsimError, match="same_bank needs level: bank"):
        standard_from_dict(data, "ddr5.yaml")


def test_refsb_energy_is_one_per_bank_refresh_per_group():
    from hardware.dram.energy import energy
    d4 = load_standard("ddr4")  # has IDD values; DDR5 has none
    groups = d4.organization.bank_groups.value
    one_pb = energy(d4, refreshes_per_bank=1).components["refresh_per_bank"]
    sb = energy(d4, refreshes_same_bank=1)
    assert one_pb > 0 and sb.components["refresh_per_bank"] == pytest.approx(groups * one_pb)
    assert "same-bank refresh charged as one per-bank refresh per bank group" in sb.notes
