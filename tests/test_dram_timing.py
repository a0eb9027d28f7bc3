"""DRAM command-level timing: hand-derived cycle counts on a fixed GDDR6 table, invariants, preset validation.

Numbers used below (cycles, tests/fixtures/dram/gddr6_engine.yaml: the GDDR6 table hwsim shipped until 2026-12,
tCCD_S lowered to tBL; fixed so that these derivations check the engine, not the shipped preset):
tRCDRD 26, tRCDWR 16, tRP 26, tRAS 53, tRC 79, tCCD_S 2, tCCD_L 6, tRRD_S 5, tRRD_L 6, tFAW 28,
tWR 26, tRTP 4, tWTR_S 9, tWTR_L 11, tCL 24, tCWL 6, tBL 2, tREFI 3906, tRFC 210; AiM tMAC 56, tCCD_MAC 2.
"""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
import random
import sys
from pathlib import Path
from unittest import mock

import pytest
import yaml

from hardware.dram import BankAddress, Channel, Command, DramProtocolError, OpenRowController, load_standard, service
from hardware.dram.standard import PRESET_DIR
from hardware.errors import HwsimError

PRESETS = ["gddr6", "hbm2", "hbm3", "ddr4", "lpddr5"]


ENGINE_TABLE = Path(__file__).resolve().parent / "fixtures" / "dram" / "gddr6_engine.yaml"


@pytest.fixture(scope="module")
def gddr6():
    return load_standard(ENGINE_TABLE)


def test_preset_numbers_as_written(gddr6):
    # guards the hand derivations below against silent preset edits
    p = gddr6.params
    assert (p["tRCDRD"], p["tRP"], p["tRAS"], p["tRC"], p["tCCD_S"], p["tCCD_L"]) == (26, 26, 53, 79, 2, 6)
    assert (p["tRRD_S"], p["tRRD_L"], p["tFAW"], p["tRTP"], p["tCL"], p["tCWL"], p["tBL"]) == (5, 6, 28, 4, 24, 6, 2)
    assert (p["tWTR_S"], p["tWTR_L"], p["tRFC"], p["tMAC"], p["tCCD_MAC"], p["tRCDWR"]) == (9, 11, 210, 56, 2, 16)


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load_and_every_number_has_a_source(name):
    std = load_standard(name)
    raw = yaml.safe_load((PRESET_DIR / f"{name}.yaml").read_text())
    for section in ("organization", "timing"):
        for field, entry in raw[section].items():
            assert entry["source"].strip(), f"{name}.{section}.{field}"
    p = std.params
    assert p["tRC"] >= p["tRAS"] + p["tRP"]
    assert std.row_bytes == std.organization.columns.value * std.organization.burst_bytes.value


def test_row_hit(gddr6):
    ch = Channel(gddr6)
    a = BankAddress(0, 0, row=7, column=0)
    assert ch.issue("ACT", a) == 0
    # first RD at ACT + tRCDRD = 26
    assert ch.issue("RD", a) == 26
    # second RD to the same bank (same group): + tCCD_L = 32
    assert ch.issue("RD", a._replace(column=1)) == 32
    # data of the second read: 32 + tCL + tBL = 32 + 24 + 2 = 58
    assert ch.data_done("RD", 32) == 58


def test_row_conflict_then_miss(gddr6):
    ch = Channel(gddr6)
    a = BankAddress(0, 0, row=1)
    b = BankAddress(0, 0, row=2)
    assert ch.issue("ACT", a) == 0
    assert ch.issue("RD", a) == 26  # tRCDRD
    # PRE at max(ACT + tRAS, RD + tRTP) = max(53, 30) = 53
    assert ch.issue("PRE", a) == 53
    # ACT at max(PRE + tRP, ACT + tRC) = max(79, 79) = 79
    assert ch.issue("ACT", b) == 79
    # RD at ACT + tRCDRD = 105; data done at 105 + tCL + tBL = 131
    assert ch.issue("RD", b) == 105
    assert ch.data_done("RD", 105) == 131

    # the same sequence through the open-row controller: 1 miss, 1 conflict, 0 hits
    res = service(gddr6, [(False, 0, 1, 0), (False, 0, 2, 0)], refresh=False)
    assert (res.row_hits, res.row_misses, res.row_conflicts) == (0, 1, 1)
    assert res.cycles == 131
    assert res.commands == {"ACT": 2, "RD": 2, "PRE": 1}


def test_tfaw_limits_fifth_act(gddr6):
    ch = Channel(gddr6)
    # groups 0,1,2,3,0: consecutive ACTs are in different groups, so tRRD_S = 5 apart: 0, 5, 10, 15;
    # the 5th would be at 20 by tRRD_S (and 0 + tRRD_L = 6 for its own group) but tFAW holds it to 0 + 28
    banks = [BankAddress(0, 0), BankAddress(1, 0), BankAddress(2, 0), BankAddress(3, 0), BankAddress(0, 1)]
    cycles = [ch.issue("ACT", b) for b in banks]
    assert cycles == [0, 5, 10, 15, 28]


def test_trrd_short_vs_long(gddr6):
    ch = Channel(gddr6)
    assert ch.issue("ACT", BankAddress(0, 0)) == 0
    assert ch.issue("ACT", BankAddress(0, 1)) == 6  # same group: tRRD_L
    assert ch.issue("ACT", BankAddress(1, 0)) == 11  # other group: + tRRD_S


def test_refresh_blocks_act_for_trfc(gddr6):
    ch = Channel(gddr6)
    assert ch.issue("REF", at=100) == 100
    assert ch.issue("ACT", BankAddress(2, 3, row=5)) == 310  # REF + tRFC


def test_refresh_needs_all_banks_closed(gddr6):
    ch = Channel(gddr6)
    ch.issue("ACT", BankAddress(1, 1))
    with pytest.raises(DramProtocolError, match="PREA"):
        ch.issue("REF")
    # PREA at ACT + tRAS = 53, REF at PREA + tRP(ab) = 79
    assert ch.issue("PREA") == 53
    assert ch.issue("REF") == 79


def test_controller_refreshes_every_trefi(gddr6):
    ctl = OpenRowController(Channel(gddr6))
    # one row, reads at tCCD_L = 6 apart run past tREFI = 3906; the refresh closes the row, so one more miss
    reqs = [(False, 0, 3, i % 64) for i in range(800)]
    res = ctl.service(reqs)
    assert res.refreshes == 1
    assert res.commands["REF"] == 1 and res.commands["PREA"] == 1
    assert res.row_misses == 2 and res.row_conflicts == 0 and res.row_hits == 798


def test_write_to_read_turnaround(gddr6):
    ch = Channel(gddr6)
    a = BankAddress(0, 0)
    assert ch.issue("ACT", a) == 0
    assert ch.issue("WR", a) == 16  # tRCDWR
    # same bank group: WR + tCWL + tBL + tWTR_L = 16 + 6 + 2 + 11 = 35 (> ACT + tRCDRD = 26)
    assert ch.issue("RD", a) == 35

    ch = Channel(gddr6)
    b = BankAddress(1, 0)
    assert ch.issue("ACT", a) == 0
    assert ch.issue("ACT", b) == 5  # tRRD_S
    assert ch.issue("WR", a) == 16
    # other group: max(ACT_b + tRCDRD = 31, WR + tCWL + tBL + tWTR_S = 16 + 17 = 33) = 33
    assert ch.issue("RD", b) == 33


def test_read_to_write_turnaround(gddr6):
    ch = Channel(gddr6)
    a = BankAddress(0, 0)
    ch.issue("ACT", a)
    assert ch.issue("RD", a) == 26
    # bus turnaround: RD + tCL + tBL + 2 - tCWL = 26 + 24 + 2 + 2 - 6 = 48
    assert ch.issue("WR", a) == 48


def test_aim_mac_stream(gddr6):
    ch = Channel(gddr6)
    assert ch.issue("ACT_AB", BankAddress(row=9)) == 0
    # first MAC_ABK at ACT_AB + tMAC = 56; then one per tCCD_MAC (AiM's tCCD_L = 2):
    # the 64th at 56 + 63 * 2 = 182
    cycles = [ch.issue("MAC_ABK", BankAddress(row=9, column=i)) for i in range(64)]
    assert cycles[0] == 56
    assert cycles[-1] == 56 + 63 * 2 == 182
    assert ch.issue("RD_MAC") == 184  # + tCCD_MAC
    # MAC_ABK -> PRE by tRTP (186), but ACT_AB -> PRE by tRAS (53) is long past
    assert ch.issue("PREA") == 186
    assert ch.issue("ACT_AB", BankAddress(row=10)) == 212  # PREA + tRP


def test_aim_needs_open_rows_and_aim_standard(gddr6):
    ch = Channel(gddr6)
    with pytest.raises(DramProtocolError, match="MAC_ABK needs row"):
        ch.issue("MAC_ABK", BankAddress(row=1))
    ch.issue("ACT", BankAddress(0, 0, row=1))
    with pytest.raises(DramProtocolError, match="every bank closed"):
        ch.issue("ACT_AB", BankAddress(row=1))
    with pytest.raises(DramProtocolError, match="no AiM"):
        Channel(load_standard("hbm2")).issue("ACT_AB", BankAddress(row=1))


def test_illegal_sequences(gddr6):
    ch = Channel(gddr6)
    with pytest.raises(DramProtocolError, match="closed: ACT"):
        ch.issue("RD", BankAddress(0, 0, row=3))
    ch.issue("ACT", BankAddress(0, 0, row=3))
    with pytest.raises(DramProtocolError, match="row 4 .* but row 3 is open"):
        ch.issue("RD", BankAddress(0, 0, row=4))
    with pytest.raises(DramProtocolError, match="PRE it first"):
        ch.issue("ACT", BankAddress(0, 0, row=4))
    with pytest.raises(DramProtocolError, match="out of range"):
        ch.issue("RD", BankAddress(0, 0, row=3, column=64))
    with pytest.raises(DramProtocolError):
        ch.issue("ACT", BankAddress(4, 0))


def test_earliest_does_not_change_state(gddr6):
    ch = Channel(gddr6)
    a = BankAddress(0, 0)
    ch.issue("ACT", a)
    assert ch.earliest("RD", a) == 26
    assert ch.earliest("RD", a, at=40) == 40
    assert ch.issue("RD", a) == 26


@pytest.mark.parametrize("name", PRESETS)
def test_command_bus_strictly_increasing(name):
    std = load_standard(name)
    ch = Channel(std, trace=True)
    rng = random.Random(1)
    reqs = [(rng.random() < 0.3, rng.randrange(std.banks), rng.randrange(4), rng.randrange(8)) for _ in range(2000)]
    res = OpenRowController(ch).service(reqs)
    cycles = [t for t, _, _ in ch.trace]
    if std.command_buses is None:
        assert all(b > a for a, b in zip(cycles, cycles[1:]))
    else:  # split buses: time order, and one command per bus per cycle
        assert all(b >= a for a, b in zip(cycles, cycles[1:]))
        per_bus = [(t, c in std.command_buses.column) for t, c, _ in ch.trace]
        assert len(set(per_bus)) == len(per_bus)
    assert res.row_hits + res.row_misses + res.row_conflicts == len(reqs)
    assert res.cycles >= cycles[-1]
    assert res.refreshes >= 1


@pytest.mark.parametrize("name", PRESETS)
def test_more_banks_never_slower_for_streaming(name):
    # stream 16 rows x 8 bursts; with k banks, k rows are open at once and reads interleave across them
    std = load_standard(name)

    def run(k):
        reqs = []
        for first in range(0, 16, k):
            for col in range(8):
                for j in range(k):
                    reqs.append((False, j, first + j, col))
        return service(std, reqs, refresh=False).cycles

    times = [run(k) for k in (1, 2, 4, 8, 16)]
    assert all(b <= a for a, b in zip(times, times[1:])), times


# ---------------------------------------------------------------- bad YAML


def _write(tmp_path, mutate):
    data = yaml.safe_load((PRESET_DIR / "gddr6.yaml").read_text())
    mutate(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_bad_yaml_unknown_field(tmp_path):
    path = _write(tmp_path, lambda d: d["timing"].update(tFOO={"value": 1, "source": "x"}))
    with pytest.raises(HwsimError, match=r"bad\.yaml: field 'timing\.tFOO'"):
        load_standard(path)


def test_bad_yaml_negative_timing(tmp_path):
    path = _write(tmp_path, lambda d: d["timing"]["tRP"].update(value=-1))
    with pytest.raises(HwsimError, match=r"bad\.yaml: field 'timing\.tRP\.value'"):
        load_standard(path)


def test_bad_yaml_missing_source(tmp_path):
    path = _write(tmp_path, lambda d: d["timing"]["tCL"].pop("source"))
    with pytest.raises(HwsimError, match=r"bad\.yaml: field 'timing\.tCL\.source'"):
        load_standard(path)


def test_bad_yaml_missing_timing(tmp_path):
    path = _write(tmp_path, lambda d: d["timing"].pop("tFAW"))
    with pytest.raises(HwsimError, match=r"field 'timing\.tFAW'"):
        load_standard(path)
    path = _write(tmp_path, lambda d: d["timing"].pop("tRCDWR"))
    with pytest.raises(HwsimError, match=r"field 'timing\.tRCDWR'"):
        load_standard(path)


def test_bad_yaml_bare_number_and_inconsistent_trc(tmp_path):
    path = _write(tmp_path, lambda d: d["timing"].update(tRP=26))
    with pytest.raises(HwsimError, match=r"field 'timing\.tRP'.*source"):
        load_standard(path)
    path = _write(tmp_path, lambda d: d["timing"]["tRC"].update(value=40))
    with pytest.raises(HwsimError, match=r"field 'timing\.tRC': tRC 40 < tRAS \+ tRP"):
        load_standard(path)


def test_unknown_standard_name():
    with pytest.raises(HwsimError, match="unknown DRAM standard 'ddr9'"):
        load_standard("ddr9")


# ---------------------------------------------------------------- equivalence with the reference implementation
# Golden digests of (cycle, command, address) traces, per-call results and protocol errors, recorded from the
# original (pre-optimisation) Channel. Regenerate only for an intended behaviour change:
#     python tests/test_dram_timing.py --regen

GOLDEN_PATH = Path(__file__).resolve().parent / "fixtures" / "dram_golden.json"
AIM_SHAPES = [(1600, 600), (64, 128), (100, 50), (6400, 200), (1, 1)]
ALL_COMMANDS = ["ACT", "PRE", "PREA", "RD", "WR", "REF", "ACT_AB", "MAC_ABK", "RD_MAC", "WR_GB"]


def _digest(items) -> str:
    return hashlib.sha256(json.dumps(items, separators=(",", ":")).encode()).hexdigest()


def _channel_summary(ch: Channel) -> dict:
    return {
        "trace": _digest([[t, c, list(a[:4])] for t, c, a in ch.trace]),  # bank group, bank, row, column (rank 0)
        "n": len(ch.trace),
        "head": [[t, c] for t, c, _ in ch.trace[:12]],
        "last_issue": ch.last_issue,
        "counts": [[str(k), v] for k, v in ch.counts.items()],
        "open_row": list(ch.open_row),
    }


def _controller_scenario(name: str) -> dict:
    std = load_standard(name)
    out = {}
    for label, seed, nreq, rows, cols, wr in (("random", 7, 3000, 4, 8, 0.3), ("stream", 3, 3000, 64, 64, 0.0),
                                              ("mixed", 11, 1500, 2, 16, 0.5)):
        ch = Channel(std, trace=True)
        rng = random.Random(seed)
        if label == "stream":
            reqs = [(False, i % std.banks, (i // (std.banks * 8)) % rows, (i // std.banks) % 8) for i in range(nreq)]
        else:
            reqs = [(rng.random() < wr, rng.randrange(std.banks), rng.randrange(rows), rng.randrange(cols))
                    for _ in range(nreq)]
        res = OpenRowController(ch, refresh=label != "mixed").service(reqs)
        out[label] = {**_channel_summary(ch), "cycles": res.cycles, "hits": res.row_hits, "misses": res.row_misses,
                      "conflicts": res.row_conflicts, "refreshes": res.refreshes}
    return out


def _raw_scenario(name: str, seed: int = 5, ops: int = 4000) -> dict:
    """Random command mixes straight into Channel.issue/earliest, legal and illegal, errors recorded."""
    std = load_standard(name)
    ch = Channel(std, trace=True)
    rng = random.Random(seed)
    results = []
    t = 0
    for _ in range(ops):
        open_banks = [b for b, r in enumerate(ch.open_row) if r is not None]
        if rng.random() < 0.75:  # something likely legal
            if open_banks and rng.random() < 0.6:
                b = rng.choice(open_banks)
                cmd = rng.choice(["RD", "WR", "RD", "WR", "PRE", "PREA"])
                addr = ch.bank_address(b, ch.open_row[b], rng.randrange(std.organization.columns.value))
                if std.aim is not None and len(set(ch.open_row)) == 1 and rng.random() < 0.5:
                    cmd = rng.choice(["MAC_ABK", "MAC_ABK", "RD_MAC", "WR_GB", "PREA"])
            elif not open_banks and rng.random() < 0.1:
                cmd, addr = "REF", None
            else:
                cmd = rng.choice(["ACT", "ACT", "ACT_AB"] if std.aim is not None else ["ACT"])
                addr = BankAddress(rng.randrange(std.organization.bank_groups.value),
                                   rng.randrange(std.organization.banks_per_group.value), rng.randrange(3), 0)
        else:  # anything at all, including out-of-range addresses
            cmd = rng.choice(ALL_COMMANDS)
            addr = rng.choice([None, BankAddress(rng.randrange(6), rng.randrange(6), rng.randrange(3) - (rng.random() < 0.05),
                                                 rng.randrange(200) - 1)])
        at = t + rng.choice([0, 0, 0, 1, 5, 100, -50])
        use_earliest = rng.random() < 0.15
        try:
            r = ch.earliest(cmd, addr, at) if use_earliest else ch.issue(cmd, addr, at)
            results.append(r)
            if not use_earliest:
                t = r
        except DramProtocolError as err:
            results.append(f"E:{err}")
    return {**_channel_summary(ch), "results": _digest(results), "errors": sum(isinstance(r, str) for r in results)}


def _aim_scenario() -> dict:
    from hardware.pim import aim as aim_mod
    from hardware.targets import load_target

    target = load_target("pim-gpt")
    made: list[Channel] = []

    def traced(std):
        ch = Channel(std, trace=True)
        made.append(ch)
        return ch

    out = {}
    with mock.patch.object(aim_mod, "Channel", traced):
        for refresh in (True, False):
            timer = aim_mod.AimTimer(target, "command", refresh=refresh)
            for k, n in AIM_SHAPES + AIM_SHAPES[:2]:  # repeated shapes carry refresh debt across calls
                made.clear()
                c = timer.vmm(k, n)
                out[f"{k}x{n}-{'ref' if refresh else 'noref'}-{len(out)}"] = {
                    **_channel_summary(made[0]), "cycles": c.cycles, "ref": c.ref, "mac": c.mac}
    return out


def _golden() -> dict:
    return {
        "aim": _aim_scenario(),
        "controller": {name: _controller_scenario(name) for name in PRESETS},
        "raw": {name: _raw_scenario(name) for name in PRESETS},
    }


def test_matches_reference_implementation():
    expected = json.loads(GOLDEN_PATH.read_text())
    actual = json.loads(json.dumps(_golden()))
    for section in expected:
        for key in expected[section]:
            assert actual[section][key] == expected[section][key], (section, key)
    assert actual == expected


if __name__ == "__main__" and "--regen" in sys.argv:
    GOLDEN_PATH.write_text(json.dumps(_golden(), indent=1) + "\n")
    print(f"wrote {GOLDEN_PATH}")


def test_command_names_and_enum_members_agree(gddr6):
    a, b = Channel(gddr6), Channel(gddr6)
    for cmd, addr in (("ACT_AB", BankAddress(row=3)), ("MAC_ABK", BankAddress(row=3, column=5)), ("RD_MAC", None),
                      ("PREA", None), ("ACT", BankAddress(1, 2, 4)), ("WR", BankAddress(1, 2, 4, 7))):
        assert a.issue(cmd, addr) == b.issue(Command(cmd), addr)
    assert a.counts == b.counts and list(a.counts) == list(b.counts)
    with pytest.raises(ValueError, match="not a valid Command"):
        a.issue("NOP")


def test_copied_channel_is_independent(gddr6):
    ch = Channel(gddr6)
    ch.issue("ACT", BankAddress(0, 0, row=1))
    twin = copy.deepcopy(ch)
    assert twin.issue("RD", BankAddress(0, 0, row=1)) == ch.issue("RD", BankAddress(0, 0, row=1)) == 26
    assert twin.issue("PRE", BankAddress(0, 0)) == 53
    assert ch.open_row[0] == 1 and twin.open_row[0] is None
    again = pickle.loads(pickle.dumps(ch))
    assert again.issue("RD", BankAddress(0, 0, row=1, column=1)) == ch.issue("RD", BankAddress(0, 0, row=1, column=1))


def test_subclass_can_override_issue(gddr6):
    seen = []

    class Logged(Channel):
        def issue(self, command, address=None, at=0):
            seen.append(str(command))
            return super().issue(command, address, at)

    ch = Logged(gddr6)
    assert ch.issue("ACT", BankAddress(0, 0)) == 0 and ch.issue("RD", BankAddress(0, 0)) == 26
    assert seen == ["ACT", "RD"]


@pytest.mark.parametrize("field, value, message", [
    ("tCCD_S", 4, "delivers 16.0 GB/s, below the channel's 32.0 GB/s"),  # Ramulator 2.0's GDDR6 cycles at 2 GHz
    ("tBL", 4, "burst_length 16 at data_rate_gbps 16 x tCK_ns 0.5 = 8 beats per CK takes 2 CK"),
])
def test_clock_and_cycle_counts_must_agree(field, value, message):
    # one clock for the pin rate and the timing table: a 16 Gb/s x16 channel is 32 GB/s, one 32 B burst per 1 ns
    from hardware.dram.standard import standard_from_dict
    data = yaml.safe_load((PRESET_DIR / "gddr6.yaml").read_text())
    data["timing"][field]["value"] = value
    if field == "tCCD_S":
        data["timing"]["tCCD_L"]["value"] = max(value, data["timing"]["tCCD_L"]["value"])
    with pytest.raises(HwsimError) as exc:
        standard_from_dict(data, "g.yaml")
    assert f"timing.{field}" in str(exc.value) and message in str(exc.value), str(exc.value)


@pytest.mark.parametrize("name", PRESETS + ["ddr5", "gddr6-aim"])
def test_every_standard_streams_its_declared_peak(name):
    # the clock check holds for every shipped standard: bursts back to back fill the declared pin bandwidth
    std = load_standard(name)
    org, p = std.organization, std.params
    peak = org.bus_width_bits.value * org.data_rate_gbps.value / 8
    column = org.pseudo_channels.value * org.burst_bytes.value / (max(p["tBL"], p["tCCD_S"]) * org.tCK_ns.value)
    assert column == pytest.approx(peak, rel=0.01)


def _state(ch: Channel) -> tuple:
    return (ch.last_issue, list(ch.open_row), list(ch._last), [list(r) for r in ch._rings], repr(ch._whist),
            list(ch.bus_free), dict(ch.counts), list(ch.trace))


@pytest.mark.parametrize("name", PRESETS + [str(ENGINE_TABLE)])
def test_issue_repeat_is_a_loop_of_issue(name):
    """issue_repeat(cmd, addr, at, n) leaves every piece of channel state, the trace and the counts exactly as the loop
    ``t = issue(cmd, addr, at); t = issue(cmd, addr, t + 1) ...`` does, errors included (a random mix of legal and
    illegal runs, also on standards with split command buses, windowed rules and two-part activations)."""
    std = load_standard(name)
    fast, slow = Channel(std, trace=True), Channel(std, trace=True)
    rng = random.Random(13)
    commands = [c for c in ALL_COMMANDS if c in std.all_commands] + [c for c in std.all_commands if c not in ALL_COMMANDS]
    t = 0
    repeated = 0
    for _ in range(300):
        open_banks = [b for b, r in enumerate(slow.open_row) if r is not None and r >= 0]
        if open_banks and rng.random() < 0.6:
            b = rng.choice(open_banks)
            cmd = rng.choice([c for c in ("RD", "WR", "MAC_ABK", "RD_MAC", "WR_GB", "PRE") if c in std.all_commands])
            addr = slow.bank_address(b, slow.open_row[b], rng.randrange(std.organization.columns.value))
        else:
            cmd = rng.choice(commands)
            addr = BankAddress(rng.randrange(std.organization.bank_groups.value),
                               rng.randrange(std.organization.banks_per_group.value), rng.randrange(3),
                               rng.randrange(4))
        n = rng.choice([1, 1, 2, 3, 8, 40])
        at = max(0, t + rng.choice([0, 1, 7, 300, -20]))
        outcome = []
        for ch in (fast, slow):
            try:
                if ch is fast:
                    outcome.append(ch.issue_repeat(cmd, addr, at, n))
                else:
                    r = ch.issue(cmd, addr, at)
                    for _ in range(n - 1):
                        r = ch.issue(cmd, addr, r + 1)
                    outcome.append(r)
            except (DramProtocolError, ValueError) as err:
                outcome.append(f"{type(err).__name__}: {err}")
        assert outcome[0] == outcome[1], (cmd, addr, at, n)
        assert _state(fast) == _state(slow), (cmd, addr, at, n)
        if isinstance(outcome[0], int):
            t = outcome[0]
            repeated += n > 1
    assert repeated > 15 and sum(fast.counts.values()) > 250  # the mix issued real runs, not only errors
    with pytest.raises(ValueError, match="n >= 1"):
        fast.issue_repeat(commands[0], None, 0, 0)
