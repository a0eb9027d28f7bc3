"""Preset validation: counts are whole, fractions in (0, 1], fields models divide by are > 0; all presets load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hardware.errors import HwsimError
from hardware.targets import PRESET_DIR, load_target, preset_names

ROOT = Path(__file__).resolve().parent.parent


def _bad(tmp_path: Path, preset: str, path: tuple[str, ...], value: float, unit: str | None = None) -> str:
    data = yaml.safe_load((PRESET_DIR / f"{preset}.yaml").read_text())
    node = data
    for key in path:
        node = node[key]
    node["value"] = value
    if unit is not None:
        node["unit"] = unit
    out = tmp_path / "bad.yaml"
    out.write_text(yaml.safe_dump(data))
    return str(out)


def test_every_bundled_preset_loads():
    names = preset_names()
    assert {"a100-80gb", "u55c", "pim-gpt"} <= set(names)
    for name in names:
        assert load_target(name).name == name


GPU_BAD = [
    (("dram_efficiency",), 1.9, None, "dram_efficiency.*\\(0, 1\\]"),
    (("dram_efficiency",), 0, None, "dram_efficiency.*\\(0, 1\\]"),
    (("tensor_efficiency",), 150, "%", "tensor_efficiency.*150%"),
    (("attention_efficiency",), -0.5, None, "attention_efficiency"),
    (("sm_count",), 0, None, "sm_count.*> 0"),
    (("sm_count",), 10.5, None, "sm_count.*whole number"),
    (("max_threads_per_sm",), 2047.5, None, "max_threads_per_sm.*whole"),
    (("dram_capacity",), 0, None, "dram_capacity.*> 0"),
    (("dram_bandwidth",), 0, None, "dram_bandwidth.*> 0"),
    (("l2_bandwidth",), 0, None, "l2_bandwidth.*> 0"),
    (("cuda_core_fp32",), 0, None, "cuda_core_fp32.*> 0"),
    (("tensor_peak", "fp16"), 0, None, "tensor_peak.fp16.*> 0"),
]


@pytest.mark.parametrize("path, value, unit, message", GPU_BAD)
def test_bad_gpu_preset_is_one_line_naming_the_field(tmp_path, path, value, unit, message):
    with pytest.raises(HwsimError, match=message) as exc:
        load_target(_bad(tmp_path, "a100-80gb", path, value, unit))
    assert "\n" not in str(exc.value) and f"field '{'.'.join(path)}" in str(exc.value)


FPGA_BAD = [
    (("dsp_efficiency",), 1.9, None, "dsp_efficiency.*\\(0, 1\\]"),
    (("dsp_efficiency",), 0, None, "dsp_efficiency.*\\(0, 1\\]"),
    (("usable_fraction",), 0, None, "usable_fraction"),
    (("usable_fraction",), 120, "%", "usable_fraction"),
    (("dsp",), 0, None, "dsp.*> 0"),
    (("dsp",), 9024.5, None, "dsp.*whole number"),
    (("lut",), 0, None, "lut.*> 0"),
    (("clock",), 0, None, "clock.*> 0"),
    (("dsp_mult_a_bits",), 0, None, "dsp_mult_a_bits.*> 0"),
    (("dsp_mult_b_bits",), 17.5, None, "dsp_mult_b_bits.*whole"),
]


@pytest.mark.parametrize("path, value, unit, message", FPGA_BAD)
def test_bad_fpga_preset_is_one_line_naming_the_field(tmp_path, path, value, unit, message):
    with pytest.raises(HwsimError, match=message) as exc:
        load_target(_bad(tmp_path, "u55c", path, value, unit))
    assert "\n" not in str(exc.value) and f"field '{path[0]}" in str(exc.value)


def test_percentages_convert_and_zero_stays_allowed_where_meaningful(tmp_path):
    t = load_target(_bad(tmp_path, "a100-80gb", ("dram_efficiency",), 90, "%"))
    assert t.dram_efficiency.si == pytest.approx(0.9)
    assert load_target(_bad(tmp_path, "a100-80gb", ("nvlink_bandwidth",), 0)).link_bandwidth == 32e9  # PCIe
    assert load_target(_bad(tmp_path, "u55c", ("lut_mult_max_bits",), 0)).lut_mult_max_bits.n == 0
    assert load_target("xcvu13p").offchip_bandwidth.si == 0  # bare device: the mapper refuses it, loading does not


def test_fpga_presets_have_cited_energies():
    for name in preset_names():
        t = load_target(name)
        if t.kind == "fpga":
            assert t.energy_per_dsp_mac.si > 0 and t.offchip_energy_per_bit.si > 0
            assert "UNCONFIRMED" in t.energy_per_dsp_mac.source and "UNCONFIRMED" in t.offchip_energy_per_bit.source


@pytest.mark.parametrize("path, value", [(("dram_efficiency",), 1.9), (("dram_efficiency",), 0), (("sm_count",), 0),
                                         (("sm_count",), 10.5)])
def test_simulate_refuses_bad_gpu_preset(tmp_path, path, value):
    from simulator.cli import main

    res = CliRunner().invoke(main, ["simulate", str(ROOT / "examples" / "gpt2.onnx"), "--target",
                                    _bad(tmp_path, "a100-80gb", path, value), "--phase", "decode"])
    assert res.exit_code == 2, res.output
    assert f"field '{path[0]}'" in res.output and "internal error" not in res.output


def test_every_dram_standard_feeds_a_target_or_says_what_it_serves():
    """Issue 12: every shipped DRAM standard is used by a target, or its file says which use it serves instead."""
    from hardware.dram.standard import PRESET_DIR as DRAM_DIR

    used = set()
    for n in preset_names():
        data = yaml.safe_load((PRESET_DIR / f"{n}.yaml").read_text())
        used |= {data.get("dram"), (data.get("memory") or {}).get("standard")}  # PIM dram:, GPU / FPGA memory:
    assert {"gddr6", "gddr6-aim", "hbm2", "hbm3", "lpddr5", "ddr4"} <= used
    for path in sorted(DRAM_DIR.glob("*.yaml")):
        if path.stem not in used:
            header = path.read_text().split("\nname:", 1)[0]
            assert "# Use: the trace-driven request-level simulator" in header, path.name


def test_memory_sections_agree_with_the_declared_bandwidth():
    """A GPU's or FPGA board's memory: section (channels x bus width x pin rate) gives the bandwidth the preset
    declares, within 1% (DDR speed bins round), and names a standard that loads."""
    checked = 0
    for name in preset_names():
        t = load_target(name)
        mem = getattr(t, "memory", None)
        if mem is None:
            continue
        declared = t.dram_bandwidth.si if t.kind == "gpu" else t.offchip_bandwidth.si
        assert mem.peak_bandwidth() == pytest.approx(declared, rel=0.01), (name, mem.describe())
        checked += 1
    assert checked >= 15


def test_standard_dram_option_takes_bandwidth_from_the_memory_section():
    """--set dram=standard: a100-40gb streams at 40 x 128 bit x 2.43 Gb/s x the HBM2 controller's simulated streaming
    efficiency; a GPU without a memory: section is refused with a one-line error."""
    from hardware.dram.attached import streaming_of
    from hardware.errors import HwsimError

    t = load_target("a100-40gb").with_standard_dram()
    eff = streaming_of("hbm2").efficiency
    assert 0.8 < eff < 1.0  # refresh (tRFC / tREFI = 6.7%) and row switches cost something, not everything
    assert t.achievable_dram_bandwidth == pytest.approx(40 * 128 * 2.43e9 / 8 * eff)
    with pytest.raises(HwsimError, match="no memory: section"):
        load_target("rtx4090").with_standard_dram()


def test_memory_section_with_an_unknown_standard_is_refused_naming_file_and_field(tmp_path):
    from hardware.targets import load_target as load

    text = (PRESET_DIR / "a100-40gb.yaml").read_text().replace("  standard: hbm2", "  standard: hbm9")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(HwsimError) as exc:
        load(str(bad))
    msg = str(exc.value)
    assert "bad.yaml" in msg and "memory.standard" in msg and "unknown DRAM standard 'hbm9'" in msg and "\n" not in msg
