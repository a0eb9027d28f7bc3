"""The PIM target: hand-derived AiM command timing, fast vs command-level agreement, invariants, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from hardware.errors import HwsimError
from hardware.pim.aim import AimTimer, energy, plan_vmm
from hardware.targets import load_target, target_from_dict
from mapping.op_costs import Precision
from mapping.pim.mapper import map_workload
from mapping.workloads import Model
from simulator.cli import main
from simulator.engine import run

from conftest import EXAMPLES, FIXTURES, shared_model

BF16 = Precision("bfloat16", "bfloat16", "bfloat16")


@pytest.fixture(scope="module")
def pim():
    return load_target("pim-gpt")


def test_one_mac_pass_cycles(pim) -> None:
    # GDDR6 preset (AIM-SIM's timing): tMAC 56, tCCD_MAC 2, tRAS 54, tRTP 12, tRPab 32, tRC 89, tCWL_GB 1, tBL 2.
    # ACT_AB @0, WR_GB @1, MAC @max(56, 1+1+2)=56, RD_MAC @58, PREA @max(54, 56+12, 59)=68,
    # banks ready for the next ACT_AB @max(68+32, 0+89)=100.
    for mode in ("fast", "command"):
        c = AimTimer(pim, mode, refresh=False).vmm(16, 1)
        assert (c.cycles, c.act_ab, c.wr_gb, c.mac, c.rd_mac, c.pre) == (100, 1, 1, 1, 1, 1)


def test_full_row_pass_cycles(pim) -> None:
    # k = 1024 bf16 = one 2 KiB row: 64 WR_GB @1,3,..,127; first MAC @max(56, 127+3)=130; 64 MACs to @256;
    # RD_MAC @258; PREA @max(54, 256+12, 259)=268; next ACT_AB @max(268+32, 89)=300.
    for mode in ("fast", "command"):
        c = AimTimer(pim, mode, refresh=False).vmm(1024, 16)
        assert (c.cycles, c.mac, c.wr_gb) == (300, 64, 64)


def test_second_pass_reuses_the_global_buffer(pim) -> None:
    # 32 outputs over 16 banks: two passes. Pass 2 has no GB writes: MAC @56 after its ACT_AB, last MAC @56+126=182,
    # RD_MAC @184, PREA @max(54, 182+12, 185)=194, period max(194+32, 89)=226. Total 300 + 226.
    for mode in ("fast", "command"):
        assert AimTimer(pim, mode, refresh=False).vmm(1024, 32).cycles == 300 + 226


SHAPES = [(16, 1), (64, 128), (100, 50), (768, 96), (1024, 8), (1600, 600), (3072, 96), (4096, 100), (6400, 200),
          (64, 2000), (1023, 17), (50257, 3)]


@pytest.mark.parametrize("k,n", SHAPES)
def test_fast_equals_command_level_without_refresh(pim, k: int, n: int) -> None:
    fast = AimTimer(pim, "fast", refresh=False).vmm(k, n)
    command = AimTimer(pim, "command", refresh=False).vmm(k, n)
    assert fast.cycles == command.cycles
    assert (fast.mac, fast.act_ab, fast.rd_mac, fast.wr_gb) == (command.mac, command.act_ab, command.rd_mac,
                                                                command.wr_gb)


def test_fast_agrees_with_command_level_with_refresh(pim) -> None:
    fast, command = AimTimer(pim, "fast"), AimTimer(pim, "command")
    shapes = [(1600, 600), (64, 128), (1600, 800), (6400, 200), (100, 50)] * 8
    f = sum(fast.vmm(k, n).cycles for k, n in shapes)
    c = sum(command.vmm(k, n).cycles for k, n in shapes)
    assert f == pytest.approx(c, rel=0.01)
    e_f = sum(energy(fast.vmm(k, n), pim).total_j for k, n in shapes[:5])
    assert e_f > 0


def test_refresh_costs_about_trfc_per_trefi(pim) -> None:
    on, off = AimTimer(pim, "fast"), AimTimer(pim, "fast", refresh=False)
    a, b = on.vmm(6400, 2000), off.vmm(6400, 2000)
    p = pim.standard.params
    assert a.ref == pytest.approx(b.cycles / (p["tREFI"] - p["tRFC"]), abs=1)
    assert a.cycles - b.cycles == a.ref * p["tRFC"]


def test_mac_bytes_equal_weight_bytes_for_aligned_shapes(pim) -> None:
    # 16 banks x 32 B per MAC command: a 1024 x 2048 bf16 matrix (per channel) is read exactly once
    c = AimTimer(pim, "fast", refresh=False).vmm(1024, 2048)
    assert energy(c, pim).bytes_by_level["bank_io"] == 1024 * 2048 * 2


def test_plan_packs_short_outputs_into_rows(pim) -> None:
    (chunk,) = plan_vmm(64, 16 * 20, pim)  # 64-element dot products: 16 per 2 KiB row
    assert (chunk.macs, chunk.segments, chunk.passes, chunk.last_segments) == (4, 16, 2, 4)


def _decode_latency(target, model: Model) -> float:
    return run(map_workload(model.decode(1, 64, BF16), target, {})).latency_s


def test_more_channels_never_slower(pim) -> None:
    model = shared_model(EXAMPLES / "gpt2.onnx")
    data = pim.model_dump(mode="json")
    latencies = []
    for channels in (2, 4, 8, 16):
        data["channels"]["value"] = channels
        latencies.append(_decode_latency(target_from_dict(data, "test"), model))
    assert latencies == sorted(latencies, reverse=True)
    assert latencies[0] > 3 * latencies[-1]


def test_decode_step_energy_and_traffic_add_up(pim) -> None:
    model = shared_model(EXAMPLES / "gpt2.onnx")
    work = model.decode(1, 64, BF16)
    result = run(map_workload(work, pim, {}))
    weight_bytes = sum(o.matmul.k * o.matmul.n * 2 for o in work.ops if o.matmul and o.matmul.weight_operand)
    assert result.traffic_bytes["bank_io"] >= weight_bytes  # every weight is read by a MAC, padded to columns
    assert result.traffic_bytes["bank_io"] < 1.1 * weight_bytes + 20e6
    assert result.dynamic_energy_j > 0 and result.static_energy_j > 0
    assert all(r.task.energy_j >= 0 and r.end_s >= r.start_s for r in result.records)
    # the lower bound: all weights streamed at the banks' peak MAC bandwidth
    p = pim.standard.params
    peak = pim.channels.n * pim.banks_per_channel * pim.column_bytes / (p["tCCD_MAC"] * pim.standard.tck_s)
    assert result.latency_s > weight_bytes / peak


def test_cli_simulate_generate_and_outputs(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    trace = tmp_path / "t.json"
    plot = tmp_path / "p.png"
    result = CliRunner().invoke(main, ["simulate", str(EXAMPLES / "gpt2.onnx"), "--target", "pim-gpt", "--phase",
                                       "generate", "--prompt-len", "8", "--gen-len", "4", "--json", str(out),
                                       "--trace", str(trace), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert "tokens/s" in result.output
    data = json.loads(out.read_text())
    for key in ("latency_s", "energy_j", "tokens_per_s", "traffic_bytes", "breakdown", "target"):
        assert key in data
    assert data["phases"][1]["passes"] == 3
    assert data["tokens_per_s"] == pytest.approx(4 / data["latency_s"])
    blocks = data["breakdown"]["blocks"]
    assert sum(v["energy_j"] for v in blocks.values()) == pytest.approx(data["energy_j"], rel=1e-6)
    assert data["target"]["channels"]["source"]
    assert json.loads(trace.read_text())["traceEvents"]
    assert plot.stat().st_size > 10_000


def test_model_too_large_for_target_names_both_sizes() -> None:
    result = CliRunner().invoke(main, ["simulate", str(EXAMPLES / "llama2-7b.onnx"), "--target", "pim-gpt",
                                       "--phase", "decode"])
    assert result.exit_code == 2
    assert "does not fit pim-gpt" in result.output and "GiB" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("change,fragment", [
    (lambda d: d.update(bogus=1), "field 'bogus': unknown field"),
    (lambda d: d["channels"].update(value=-1), "field 'channels.value'"),
    (lambda d: d["energy"]["io"].pop("unit"), "field 'energy.io': missing unit"),
    (lambda d: d["asic"]["clock"].update(unit="GB"), "field 'asic.clock': unit 'GB' is not a frequency"),
    (lambda d: d["energy"]["refresh"].pop("source"), "field 'energy.refresh.source': missing field"),
])
def test_bad_preset_fields_are_named(pim, tmp_path: Path, change, fragment: str) -> None:
    import yaml

    data = pim.model_dump(mode="json")
    change(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(HwsimError, match=fragment.replace("(", r"\(")):
        load_target(str(path))


def test_targets_commands() -> None:
    runner = CliRunner()
    listing = runner.invoke(main, ["targets"])
    assert listing.exit_code == 0 and "pim-gpt" in listing.output
    shown = runner.invoke(main, ["targets", "show", "pim-gpt"])
    assert shown.exit_code == 0 and "CENT" in shown.output and "energy.mac_all_bank" in shown.output
    missing = runner.invoke(main, ["targets", "show", "nope"])
    assert missing.exit_code == 2 and "unknown target 'nope'" in missing.output


def test_single_matmul_graph_on_pim(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1024])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = helper.make_tensor("w", TensorProto.FLOAT, [1024, 1024], [0.0] * (1024 * 1024))
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="gemv")], "g", [x], [y], [w])
    path = tmp_path / "gemv.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    result = CliRunner().invoke(main, ["simulate", str(path), "--target", "pim-gpt", "--phase", "prefill", "--json",
                                       str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "r.json").read_text())
    # 1024 outputs / 8 channels = 128 per channel = 8 passes per bank of one 2 KiB row each:
    # 300 cycles for the first pass (GB load) + 7 x 226 cycles, at 0.5 ns per cycle, plus refresh (none this short)
    assert data["busy_s"]["pim"] == pytest.approx((300 + 7 * 226) * 0.5e-9)
    assert (FIXTURES / "gpt2_ts.onnx").exists()


def test_mac_lanes_beyond_the_column_width_do_not_help(pim) -> None:
    data = pim.model_dump(mode="json")
    cycles = {}
    for lanes in (8, 16, 32):
        data["mac"]["lanes"]["value"] = lanes
        cycles[lanes] = AimTimer(target_from_dict(data, "test"), "fast", refresh=False).vmm(1024, 64).cycles
    # 8 lanes need two MAC commands per 16-element (32-byte) column; 32 lanes still get one column per command
    assert cycles[8] > cycles[16] == cycles[32]
