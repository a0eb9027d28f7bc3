"""Split command buses and HBM pseudo channels: one row and one column command per cycle, ACT holding the row bus
two cycles with rules counted from its last cycle (hbm2.yaml), pseudo channels sharing both buses. Cycles derived
by hand from hbm2.yaml's parameters (P)."""

from __future__ import annotations

import pytest
import yaml

from hardware.dram import load_standard
from hardware.dram.channel import BankAddress, Channel
from hardware.dram.memory_controller import MemorySystem, simulate
from hardware.dram.ranks import RankedChannel
from hardware.dram.standard import PRESET_DIR, standard_from_dict
from hardware.dram.trace import parse_trace
from hardware.errors import HwsimError

H2 = load_standard("hbm2")
P = H2.params


def test_act_holds_the_row_bus_two_cycles_and_column_commands_use_their_own():
    ch = Channel(H2)
    a, b = BankAddress(0, 0, 3, 0), BankAddress(1, 0, 3, 0)
    assert ch.issue("ACT", a, 0) == 0
    # tRCDRD counts from the ACT's second cycle
    assert ch.earliest("RD", a, 0) == P["tRCDRD"] + 1
    # the next row command waits for the bus (2 cycles) and tRRD_S, also counted from the ACT's last cycle
    assert ch.earliest("ACT", b, 0) == max(2, P["tRRD_S"])
    rd = ch.issue("RD", a, 0)
    # a row command may share the RD's cycle (another bus), and commands keep time order
    assert ch.issue("ACT", b, rd) == rd
    assert ch.earliest("PRE", BankAddress(1, 0), 0) >= rd + 2


def test_pseudo_channels_share_the_buses_but_not_tfaw():
    ch = RankedChannel(H2, 2, pseudo_channels=True)
    acts = [ch.issue("ACT", BankAddress(bg, 0, 0, 0, 0), 0) for bg in range(4)]
    assert acts == [0, P["tRRD_S"], 2 * P["tRRD_S"], 3 * P["tRRD_S"]]
    assert ch.issue("ACT", BankAddress(0, 0, 0, 0, 1), acts[-1]) == acts[-1] + 2  # the shared row bus only
    assert ch.earliest("ACT", BankAddress(0, 1, 0, 0, 0), 0) == acts[0] + P["tFAW"]
    rd0 = ch.issue("RD", BankAddress(0, 0, 0, 0, 0), 0)
    # another pseudo channel's data bus is its own: its RD waits only for the column bus and its own tRCD
    assert ch.earliest("RD", BankAddress(0, 0, 0, 0, 1), 0) == max(rd0 + 1, acts[-1] + 2 + P["tRCDRD"] + 1)


def test_controller_issues_a_row_and_a_column_command_in_one_cycle():
    # four reads to one row of every bank of both pseudo channels: ACTs (tFAW-bound) go on while row hits stream RDs
    trace = parse_trace("\n".join(f"R 0,{pc},{bg},{ba},1,{col}" for ba in range(4) for bg in range(4) for pc in (0, 1)
                                   for col in range(4)))

    def same_cycle(**options):
        system = MemorySystem(H2, refresh="none", **options)
        system.controllers[0].channel.trace = []
        r = system.run(trace)
        cycles = [t for t, _, _ in system.controllers[0].channel.trace]
        return r, len(cycles) - len(set(cycles))

    split, shared = same_cycle(pseudo_channels=2)
    single, none = same_cycle(pseudo_channels=2, one_command_per_cycle=True)
    assert shared > 0 and none == 0 and split.cycles < single.cycles
    assert split.commands == single.commands == {"ACT": 32, "RD": 128}


def test_pseudo_channel_and_bus_errors():
    with pytest.raises(HwsimError, match=r"--pseudo-channels 4: DRAM standard 'hbm2' has 2 pseudo channel\(s\)"):
        simulate(H2, [], pseudo_channels=4)
    with pytest.raises(HwsimError, match="give one of them"):
        MemorySystem(H2, ranks=2, pseudo_channels=2)
    data = yaml.safe_load((PRESET_DIR / "hbm2.yaml").read_text())
    data["command_buses"]["column"] = [*data["command_buses"]["column"], "PRE"]
    with pytest.raises(HwsimError, match="field 'command_buses': every command must be on exactly one bus: PRE is on both"):
        standard_from_dict(data, "hbm2.yaml")


def test_ddr5_two_cycle_commands_shift_the_rules_to_their_last_cycle():
    d5 = load_standard("ddr5")
    p = d5.params
    ch = Channel(d5)
    a = BankAddress(0, 0, 1, 0)
    assert ch.issue("ACT", a, 0) == 0
    # ACT holds the (single) command bus two cycles; ACT->RD (both two-cycle) keeps tRCD, ACT->PRE (PRE one cycle)
    # is tRAS + 1 (from the ACT's second cycle)
    assert ch.earliest("ACT", BankAddress(1, 0, 1, 0), 0) == max(2, p["tRRD_S"])
    rd = ch.issue("RD", a, 0)
    assert rd == p["tRCD"]
    assert ch.earliest("PRE", a, 0) == max(p["tRAS"] + 1, rd + p["tRTP"] + 1)


def test_cli_pseudo_channels_and_single_issue(tmp_path):
    from click.testing import CliRunner  # noqa: PLC0415

    from simulator.cli import main  # noqa: PLC0415

    trace = tmp_path / "t.trace"
    trace.write_text("".join(f"R 0,{pc},{bg},{ba},1,{col}\n" for ba in range(4) for bg in range(4) for pc in (0, 1)
                             for col in range(4)))
    runs = {}
    for extra in ([], ["--one-command-per-cycle"]):
        out = CliRunner().invoke(main, ["dram", str(trace), "--standard", "hbm2", "--pseudo-channels", "2",
                                        "--refresh", "none", *extra])
        assert out.exit_code == 0 and "x 2 pseudo channel(s)" in out.output
        runs[bool(extra)] = int(out.output.split("cycles")[1].split()[0])
    assert runs[False] < runs[True]  # a row and a column command per cycle beat one command per cycle
    bad = CliRunner().invoke(main, ["dram", str(trace), "--standard", "hbm2", "--pseudo-channels", "3"])
    assert bad.exit_code == 2 and "error: --pseudo-channels 3: DRAM standard 'hbm2' has 2 pseudo channel(s)" in bad.output
