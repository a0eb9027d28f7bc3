"""AiM instruction-level timing (hardware/pim/isr.py on gddr6-aim): hand-derived cycles of short programs, the
mode-switch and blocking rules, lockstep channels, trace parsing errors, the mapper's use of it, and the agreement
with the AiM simulator's committed numbers (reports/aim_validation.md)."""

from __future__ import annotations

import math

import pytest
import yaml

from hardware.dram import load_standard
from hardware.errors import HwsimError
from hardware.pim import aim_programs as ap
from hardware.pim.aim_isr_timer import IsrTimer
from hardware.pim.isr import AimSystem, Isr, channels_of, mask_of, parse_trace, simulate
from hardware.targets import load_target
from simulator.validation import aim as aim_validation
from simulator.validation.aim_aimsim import DATA
from simulator.validation.aim_cases import BY_NAME, CASES

CH0 = mask_of([0])


def run(*program: Isr) -> int:
    return AimSystem().run([*program, Isr("EOC")]).cycles


def test_clock_is_half_a_nanosecond_and_one_tflops_per_chip() -> None:
    std = load_standard("gddr6-aim")
    assert std.organization.tCK_ns.value == 0.5
    # one MAC16 per tCCD_L cycles: 2 channels x 16 banks x 16 lanes x 2 FLOP per tCCD_L x 0.5 ns = 1.024 TFLOPS
    flops = 2 * 16 * 16 * 2 / (std.params["tCCD_L"] * std.tck_s)
    assert flops == pytest.approx(1.024e12)


def test_wr_gb_pays_one_mode_switch() -> None:
    # TMOD @1 (where WR_GB could issue), WR_GB @1+32; EOC takes the controller @34, waits for WR_GB's data
    # (33 + tCWL_GB 1 + tBL 2 = 36) to leave, answers @37
    assert run(Isr("WR_GB", opsize=1, mask=CH0)) == 37


def test_mac_abk_opens_the_row_in_all_banks() -> None:
    # ACT_AB @1, MACs @1+56, 59, 61, 63 (tCCD_L 2); EOC @64, answers after the last MAC's data (64) @65
    assert run(Isr("MAC_ABK", opsize=4, mask=CH0, row=3)) == 65
    # a second row: PREA @ max(63 + tRTP 12, 1 + tRAS 54) = 75, ACT_AB @ max(75 + tRP 32, 1 + tRC 89) = 107
    assert run(Isr("MAC_ABK", opsize=4, mask=CH0, row=3), Isr("MAC_ABK", opsize=4, mask=CH0, row=4)) == 107 + 56 + 6 + 2


def test_an_all_bank_mac_after_a_host_read_of_its_row_precharges_first(tmp_path) -> None:
    """A host read leaves bank 0 open at the row a following all-bank MAC uses, the other banks closed: ACT_AB
    needs every bank closed, so the controller precharges (PREA) first, as it does for another open row (found by
    the trace fuzzer: it had issued ACT_AB and failed as an internal error)."""
    import json

    from click.testing import CliRunner

    from simulator.cli import main

    trace = tmp_path / "host_read_then_mac.trace"
    trace.write_text("R MEM 0 0 0\nAiM WR_BIAS 0 0xffffffff\nAiM MAC_ABK 48 0xffffffff 0\nAiM RD_MAC 0 0xffffffff\n"
                     "AiM EOC\n")
    out = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["aim", str(trace), "--json", str(out)])
    assert result.exit_code == 0, result.output
    commands = json.loads(out.read_text())["commands"]
    assert commands["PREA"] == 1 and commands["ACT"] == 1 and commands["RD"] == 1


def test_rd_mac_blocks_the_next_instruction() -> None:
    # TMOD @1, RD_MAC @33, data @35: the DMA decodes EOC at tick 35, the controller takes it @36, answers @37
    assert run(Isr("RD_MAC", mask=CH0)) == 37
    # two RD_MACs: the second is decoded only after the first returned (tick 35), issues @36, returns @38
    assert run(Isr("RD_MAC", mask=CH0), Isr("RD_MAC", mask=CH0)) == 37 + 3


def test_mode_switch_counts_follow_the_instruction_order() -> None:
    reuse = AimSystem().run(ap.vmm(1024, 1024, [0]) + [Isr("EOC")])
    single = AimSystem().run(ap.vmm(1024, 1024, [0], order="no-reuse") + [Isr("EOC")])
    # 64 outputs per bank; reuse-GB: 2 groups of 32, a switch into array mode and back per group, plus the first
    assert reuse.commands["TMOD"] == 1 + 2 * 2
    assert single.commands["TMOD"] == 1 + 2 * 64
    assert reuse.commands["MAC_ABK"] == single.commands["MAC_ABK"] == 64 * 64
    assert reuse.cycles < single.cycles


def test_channels_in_lockstep_cost_one_channel() -> None:
    one = AimSystem().run(ap.vmm(1024, 256, [0]) + [Isr("EOC")])
    four = AimSystem().run(ap.vmm(1024, 1024, range(4)) + [Isr("EOC")])
    assert four.cycles == one.cycles
    assert four.commands["MAC_ABK"] == 4 * one.commands["MAC_ABK"]
    # different programs on two channels: they split, and run one after the other through the blocking RD_MACs
    both = AimSystem().run(ap.vmm(1024, 256, [0]) + ap.vmm(1024, 256, [1]) + [Isr("EOC")])
    assert both.cycles == pytest.approx(2 * one.cycles, rel=0.01)


def test_mask_convention() -> None:
    assert channels_of(0x80000000) == [0]
    assert channels_of(mask_of([3, 5])) == [5, 3]
    assert sorted(channels_of(0xFFFFFFFF)) == list(range(32))


@pytest.mark.parametrize("text,needle", [
    ("AiM FOO 1 2\n", "unknown AiM opcode"),
    ("AiM MAC_ABK 1 0x1\n", "takes 3 fields"),
    ("AiM MAC_ABK x 0x1 0\n", "not a number"),
    ("AiM WR_ABK 0 0x3 0\n", "exactly one channel"),
    ("Q MEM 0 0 0\n", "starts with"),
    ("AiM MAC_ABK 0 0x1 0\n", "opsize"),
])
def test_bad_trace_lines_name_the_line(text: str, needle: str) -> None:
    with pytest.raises(HwsimError, match=needle) as err:
        parse_trace("# header\n" + text, "t.trace")
    assert "t.trace:2" in str(err.value)


def test_bad_addresses_are_errors() -> None:
    with pytest.raises(HwsimError, match="bank 16"):
        simulate("AiM MAC_SBK 1 0x80000000 16 0\nAiM EOC\n")
    with pytest.raises(HwsimError, match="channel 3"):
        AimSystem(channels=2).run(parse_trace("R MEM 3 0 0\nAiM EOC\n"))


def test_attention_costs_extend_linearly_as_simulated() -> None:
    timer = IsrTimer(load_target("aim-32ch"), refresh=False)
    for ctx in (1536, 3000):
        direct = AimSystem(channels=1).run(ap.scores(ctx, 128, 8, 4, [0], banks=16 * 32) + [Isr("EOC")]).cycles
        assert timer.attention_scores(ctx, 128, 8, 4, 32).cycles == pytest.approx(direct, rel=0.002)
    direct = AimSystem(channels=1).run(ap.context(2500, 128, 1, 1, [0]) + [Isr("EOC")]).cycles
    assert timer.attention_context(2500, 128, 32, 1, 32).cycles == pytest.approx(direct, rel=0.01)


def test_attention_per_token_cost_grows_with_context() -> None:
    timer = IsrTimer(load_target("aim-32ch"), refresh=False)
    short = timer.attention_scores(512, 128, 32, 1, 32).cycles
    long = timer.attention_scores(8192, 128, 32, 1, 32).cycles
    # one token block of 512 keys per iteration: 16 iterations cost about 16x one (plus the first's overheads)
    assert long / short == pytest.approx(16, rel=0.1)


def test_committed_aimsim_data_matches_the_cases() -> None:
    data = yaml.safe_load(DATA.read_text())
    assert data["commit"].startswith("0f28a07")
    for case in CASES:
        ref = data["results"][case.name]
        assert ref["trace_sha256"] == case.sha256, f"{case.name}: trace changed; rerun simulator.validation.aim_aimsim"


# the default run covers the short micro-traces; the heavy test every case
MICRO = [c.name for c in CASES if c.group == "micro" and len(c.program) <= 64 and c.name not in aim_validation.KNOWN_GAPS]


@pytest.mark.parametrize("name", MICRO)
def test_micro_traces_within_tolerance_of_the_aim_simulator(name: str) -> None:
    data = yaml.safe_load(DATA.read_text())
    ref = data["results"][name]["cycles"]
    case = BY_NAME[name]
    ours = AimSystem().run(parse_trace(case.trace)).cycles
    assert abs(ours - ref) / ref <= aim_validation.TOLERANCE["micro"], (ours, ref)


@pytest.mark.heavy
def test_every_case_within_tolerance() -> None:
    _, rows = aim_validation.compare()
    bad = [(r["name"], r.get("err")) for r in rows if not aim_validation.explained(r)]
    assert not bad


def test_vmm_1024x4096_one_channel_within_tolerance() -> None:
    data = yaml.safe_load(DATA.read_text())
    ref = data["results"]["vmm_1024x4096_1ch"]["cycles"]
    timer = IsrTimer(load_target("aim-32ch"), refresh=False)
    ours = timer.vmm(1024, 4096).cycles
    assert abs(ours - ref) / ref <= 0.05


def test_mapper_times_attention_and_vmms_by_their_programs() -> None:
    from mapping.op_costs import Precision
    from mapping.pim.mapper import map_workload
    from simulator.engine import run as run_program

    from conftest import EXAMPLES, shared_model

    target = load_target("aim-32ch")
    work = shared_model(EXAMPLES / "gpt2.onnx").decode(1, 256, Precision("bfloat16", "bfloat16", "bfloat16"))
    program = map_workload(work, target, {"refresh": False})
    tasks = {t.name: t for t in program.tasks}
    timer = IsrTimer(target, refresh=False)
    tck = target.standard.tck_s
    score = next(o for o in work.ops if o.role == "score")
    pv = next(o for o in work.ops if o.role == "pv" and o.block == score.block)
    att = work.attention(score.block)
    expect = timer.attention_scores(score.matmul.n, att.head_dim, att.kv_heads, 1, 32).cycles
    assert tasks[f"attn:{score.name}"].duration_s == pytest.approx(expect * tck)
    expect = timer.attention_context(pv.matmul.k, att.head_dim, att.kv_heads, 1, 32).cycles
    assert tasks[f"attn:{pv.name}"].duration_s == pytest.approx(expect * tck)
    vmm = next(o for o in work.ops if o.matmul is not None and o.matmul.weight_operand)
    expect = timer.vmm(vmm.matmul.k, math.ceil(vmm.matmul.n / 32)).cycles
    assert tasks[f"vmm:{vmm.name}"].duration_s == pytest.approx(expect * tck)
    result = run_program(program)
    assert result.latency_s > 0 and result.dynamic_energy_j > 0


def test_cli_aim_runs_a_trace(tmp_path) -> None:
    import json

    from click.testing import CliRunner

    from simulator.cli import main

    trace = tmp_path / "t.trace"
    trace.write_text(BY_NAME["rd_mac"].trace)
    out = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["aim", str(trace), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["cycles"] == yaml.safe_load(DATA.read_text())["results"]["rd_mac"]["cycles"]
    piped = CliRunner().invoke(main, ["aim", str(trace), "--json", "-"])  # `-`: the JSON alone on stdout
    assert piped.exit_code == 0 and json.loads(piped.stdout)["cycles"] == json.loads(out.read_text())["cycles"]
    assert "cycles " in piped.stderr
    nowhere = CliRunner().invoke(main, ["aim", str(trace), "--json", str(tmp_path / "no" / "r.json")])
    assert nowhere.exit_code == 2 and nowhere.output.startswith("error: --json") and "does not exist" in nowhere.output
    trace.write_text("AiM MAC_ABK 1 0x1\n")
    result = CliRunner().invoke(main, ["aim", str(trace)])
    assert result.exit_code == 2 and "t.trace:1" in result.output and "Traceback" not in result.output


def test_kv_append_extends_at_the_write_rate_as_simulated() -> None:
    timer = IsrTimer(load_target("aim-32ch"), refresh=False)
    # 100 tokens over 32 channels: 4 tokens' keys (64 bursts each) and 7 bursts per V dimension on a channel
    direct = AimSystem(channels=1).run(ap.kv_append(4, 7, 64, 1) + [Isr("EOC")]).cycles
    assert timer.kv_append(100, 64, 32, 32).cycles == pytest.approx(direct, rel=0.01)
    one = timer.kv_append(1, 64, 32, 32)
    assert one.cycles == AimSystem(channels=1).run(ap.kv_append(1, 1, 64, 1) + [Isr("EOC")]).cycles
    assert one.wr == 64 + 64 and one.act > 0


def test_an_opsize_beyond_the_formats_32_bit_field_is_one_line(tmp_path) -> None:
    """Found by the heavy trace fuzzer: an opsize of 2**31 (0x80000000) or 99999999999999999999 unrolled that many
    column commands and ran for hours; AIM-SIM's Request::opsize is an int32_t, so such a line is refused, naming
    it (exit status 2), while the largest representable value still parses."""
    from click.testing import CliRunner

    from hardware.pim.isr import OPSIZE_MAX, parse_trace
    from simulator.cli import main

    for size in ("0x80000000", "99999999999999999999"):
        trace = tmp_path / "big.trace"
        trace.write_text(f"AiM MAC_SBK 64 0x80000000 0 3\nAiM MAC_SBK {size} 0x80000000 3 3\nAiM EOC\n")
        result = CliRunner().invoke(main, ["aim", str(trace)])
        assert result.exit_code == 2 and "big.trace:2: opsize" in result.output, result.output
        assert "Traceback" not in result.output and result.output.count("\n") == 1
    assert parse_trace(f"AiM MAC_SBK {OPSIZE_MAX} 0x80000000 0 3\n")[0].opsize == OPSIZE_MAX
