"""A DRAM standard's commands and timing constraints are its data: a test-local standard file adds commands,
parameters and constraints and the same generic code times them; mistakes in the rule sections are one-line
HwsimErrors naming the file, the field and its line.

GDDR6 preset numbers used below (cycles): tRCDRD 26, tRP 26, tRAS 53, tRC 79, tRTP 4, tRRD_S 5, tCL 24, tBL 2.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from hardware.dram import BankAddress, Channel, DramProtocolError, load_standard, service
from hardware.errors import HwsimError

ENGINE_TABLE = Path(__file__).resolve().parent / "fixtures" / "dram" / "gddr6_engine.yaml"  # fixed numbers
GDDR6 = ENGINE_TABLE.read_text()

# Per-bank refresh (REFpb, after Ramulator 2.0 gddr6.py) and a test-local read with auto-precharge (RD_AP): two new
# commands, two new parameters (values picked for the test), five new constraint lines. No code change.
EXTRA_COMMANDS = """  REFpb: {level: bank, requires: closed, description: "per-bank refresh"}
  RD_AP: {level: bank, requires: row, closes: true, uses: [column], data: "tCL + tBL", description: "read, then close"}
"""
EXTRA_TIMING = """  tRFCpb: {value: 100, source: "test value"}
  tRREFD: {value: 15, source: "test value"}
"""
EXTRA_CONSTRAINTS = """  - {level: bank, preceding: [REFpb], following: [ACT, REFpb], latency: tRFCpb}
  - {level: bank, preceding: [ACT], following: [REFpb], latency: tRC}
  - {level: channel, preceding: [REFpb], following: [REFpb], latency: tRREFD}
  - {level: bank, preceding: [ACT], following: [RD_AP], latency: tRCDRD}
  - {level: bank, preceding: [RD_AP], following: [ACT], latency: "tRTP + tRP"}
"""


def _extended(tmp_path):
    text = GDDR6.replace("commands:\n  RD:", "commands:\n" + EXTRA_COMMANDS + "  RD:", 1)
    text = text.replace("timing:\n  tRCDRD:", "timing:\n" + EXTRA_TIMING + "  tRCDRD:", 1)
    text = text.replace("constraints:\n  # --- same bank ---\n", "constraints:\n" + EXTRA_CONSTRAINTS, 1)
    assert text.count("REFpb") > 5 and "tRREFD: {" in text  # every insertion point was found
    path = tmp_path / "gddr6_extra.yaml"
    path.write_text(text)
    return load_standard(path)


def test_test_local_standard_times_new_commands(tmp_path):
    std = _extended(tmp_path)
    assert "REFpb" in std.all_commands and std.params["tRFCpb"] == 100
    ch = Channel(std)
    assert ch.issue("REFpb", BankAddress(0, 0)) == 0
    assert ch.issue("ACT", BankAddress(1, 0, row=2)) == 1  # another bank: the per-bank refresh does not hold it
    assert ch.issue("ACT", BankAddress(0, 0, row=3)) == 100  # REFpb + tRFCpb
    assert ch.earliest("REFpb", BankAddress(2, 0)) == 101  # channel tRREFD (15 after 0) is long past
    with pytest.raises(DramProtocolError, match="REFpb to bank 0.0 which has row 3 open: PRE it first"):
        ch.issue("REFpb", BankAddress(0, 0))
    # RD_AP: ACT + tRCDRD = 126; data done 126 + tCL + tBL = 152; the bank is closed afterwards
    assert ch.issue("RD_AP", BankAddress(0, 0, row=3)) == 126
    assert ch.data_done("RD_AP", 126) == 152
    assert ch.open_row[0] is None
    with pytest.raises(DramProtocolError, match="closed: ACT row 3 first"):
        ch.issue("RD", BankAddress(0, 0, row=3))
    # ACT again: max(ACT + tRC = 179, RD_AP + tRTP + tRP = 156, ACT(1,0) + tRRD_S) = 179
    assert ch.issue("ACT", BankAddress(0, 0, row=4)) == 179
    # the preset itself knows neither command
    with pytest.raises(ValueError, match="not a valid Command of DRAM standard 'gddr6'"):
        Channel(load_standard("gddr6")).issue("RD_AP", BankAddress(0, 0))


def test_extra_rules_leave_other_streams_unchanged(tmp_path):
    # the added commands are never issued by the controller, so every RD/WR/ACT/PRE/REF stream times as before
    std = _extended(tmp_path)
    rng = random.Random(3)
    reqs = [(rng.random() < 0.3, rng.randrange(16), rng.randrange(4), rng.randrange(64)) for _ in range(3000)]
    a, b = service(std, reqs), service(load_standard(ENGINE_TABLE), reqs)
    assert (a.cycles, a.commands, a.refreshes) == (b.cycles, b.commands, b.refreshes)
    assert a.refreshes >= 1


def test_constraint_table_is_data(tmp_path):
    # weakening one line of the file changes the timing: ACT -> RD at tRCDRD (26) becomes 3 cycles
    text = GDDR6.replace("following: [RD], latency: tRCDRD}", "following: [RD], latency: 3}", 1)
    path = tmp_path / "fast_rcd.yaml"
    path.write_text(text)
    ch = Channel(load_standard(path))
    ch.issue("ACT", BankAddress(0, 0))
    assert ch.issue("RD", BankAddress(0, 0)) == 3


def _bad(tmp_path, old, new):
    assert old in GDDR6
    text = GDDR6.replace(old, new, 1)
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    line = text[: text.index(new)].count("\n") + 1
    with pytest.raises(HwsimError) as err:
        load_standard(path)
    msg = str(err.value)
    assert msg.startswith("bad.yaml: field '") and "\n" not in msg
    return msg, line


def test_unknown_command_in_constraint(tmp_path):
    msg, line = _bad(tmp_path, "{level: bank, preceding: [ACT], following: [RD], latency: tRCDRD}",
                     "{level: bank, preceding: [ACTT], following: [RD], latency: tRCDRD}")
    assert "field 'constraints[0].preceding[0]': unknown command 'ACTT'" in msg
    assert msg.endswith(f"(line {line})")


def test_unknown_level_in_constraint(tmp_path):
    msg, line = _bad(tmp_path, "{level: bankgroup, preceding: [ACT], following: [ACT], latency: tRRD_L}",
                     "{level: rank, preceding: [ACT], following: [ACT], latency: tRRD_L}")
    assert "field 'constraints[9].level': unknown level 'rank' (levels: channel, bankgroup, bank)" in msg
    assert msg.endswith(f"(line {line})")


def test_unknown_parameter_in_constraint(tmp_path):
    msg, line = _bad(tmp_path, 'following: [RD], latency: "tCWL + tBL + tWTR_S"}',
                     'following: [RD], latency: "tCWL + tBL + tWTR_X"}')
    assert "field 'constraints[19].latency': unknown timing parameter 'tWTR_X'" in msg
    assert msg.endswith(f"(line {line})")


def test_unknown_names_in_extension_and_commands(tmp_path):
    msg, line = _bad(tmp_path, "following: [MAC_ABK], latency: tMAC}", "following: [MAC], latency: tMAC}")
    assert "field 'extensions.aim.constraints[0].following[0]': unknown command 'MAC'" in msg
    assert msg.endswith(f"(line {line})")
    msg, _ = _bad(tmp_path, "requests: {read: RD, write: WR}", "requests: {read: RDX, write: WR}")
    assert "field 'requests.read': unknown command 'RDX'" in msg
    msg, _ = _bad(tmp_path, "RD: {level: bank,", "RD: {level: row,")
    assert "field 'commands.RD.level'" in msg


def test_malformed_latency_and_failed_check(tmp_path):
    msg, _ = _bad(tmp_path, "latency: tRCDRD}", "latency: tRCDRD * 2}")
    assert "field 'constraints[0].latency': latency 'tRCDRD * 2' must be parameter names and integers" in msg
    msg, _ = _bad(tmp_path, '"tRRD_L >= tRRD_S"', '"tRRD_S >= tRRD_L"')
    assert "field 'timing.tRRD_S': tRRD_S 5 < tRRD_L = 6" in msg


def test_unused_parameter_is_an_error(tmp_path):
    msg, _ = _bad(tmp_path, "  tRCDWR: {", '  tUNUSED: {value: 1, source: "x"}\n  tRCDWR: {')
    assert "field 'timing.tUNUSED': parameter 'tUNUSED' is not used" in msg


def test_windowed_rule_below_channel_level(tmp_path):
    # a test-local bank-group window: at most 2 ACTs per 40 cycles in one bank group (the generic windowed path)
    text = GDDR6.replace("constraints:\n  # --- same bank ---\n",
                         "constraints:\n  - {level: bankgroup, preceding: [ACT], following: [ACT], latency: 40, window: 2}\n", 1)
    path = tmp_path / "bg_window.yaml"
    path.write_text(text)
    ch = Channel(load_standard(path))
    # BG0: 0, then tRRD_L 6, then the window holds the third to 0 + 40; BG1 only waits tRRD_S after it
    cycles = [ch.issue("ACT", BankAddress(g, b)) for g, b in ((0, 0), (0, 1), (0, 2), (1, 0))]
    assert cycles == [0, 6, 40, 45]
