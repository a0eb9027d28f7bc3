"""LPDDR5's two-part activation (JESD209-5 ACT-1 / ACT-2; lpddr5.yaml activation:): ACT leaves the bank activating,
ACT2 opens the row, tRCD counts from ACT."""

from __future__ import annotations

import pytest
import yaml

from hardware.dram import load_standard
from hardware.dram.channel import BankAddress, Channel, DramProtocolError
from hardware.dram.memory_controller import MemorySystem
from hardware.dram.standard import PRESET_DIR, standard_from_dict
from hardware.dram.trace import parse_trace
from hardware.errors import HwsimError

L5 = load_standard("lpddr5")
P = L5.params


def test_act2_completes_the_activation_and_trcd_counts_from_act():
    ch = Channel(L5)
    a = BankAddress(0, 0, 7, 0)
    assert ch.issue("ACT", a, 0) == 0
    assert ch.open_row[0] == ~7  # activating row 7
    with pytest.raises(DramProtocolError, match="still activating row 7: ACT2 first"):
        ch.issue("RD", a, 100)
    with pytest.raises(DramProtocolError, match="not activating row 8"):
        ch.issue("ACT2", a._replace(row=8), 0)
    assert ch.issue("ACT2", a, 0) == 1  # only the command bus after ACT
    assert ch.open_row[0] == 7
    assert ch.issue("RD", a, 0) == P["tRCDRD"]  # from ACT (ACT-1), not from ACT2


def test_controller_issues_act2_right_after_act_and_counts_a_miss():
    system = MemorySystem(L5, refresh="none")
    system.controllers[0].channel.trace = []
    r = system.run(parse_trace("R 0,0,0,3,0\nR 0,0,0,3,1\nR 0,1,0,5,0"))
    cmds = [(t, c) for t, c, _ in system.controllers[0].channel.trace]
    assert cmds[:2] == [(1, "ACT"), (2, "ACT2")]
    assert r.commands == {"ACT": 2, "ACT2": 2, "RD": 3}
    assert (r.row_hits, r.row_misses, r.row_conflicts) == (1, 2, 0)


def test_activation_fields_are_checked():
    data = yaml.safe_load((PRESET_DIR / "lpddr5.yaml").read_text())
    data["activation"]["second"] = "RD"
    with pytest.raises(HwsimError, match="field 'commands.ACT2.requires': requires: activating is for the second part"):
        standard_from_dict(data, "lpddr5.yaml")
