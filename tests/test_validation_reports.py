"""The PIM-GPT and jet-tagger report generators on a small setup (the full reports are `--write` runs): their
numbers follow from the simulation, their prose quotes them, and nothing is written unless asked."""

from __future__ import annotations

import pytest

from hardware.targets import load_target
from simulator.validation import pim_gpt

from conftest import ROOT


def test_pim_gpt_rows_and_prose_are_live():
    ref = pim_gpt.load_reference()
    lo, hi = ref["figures"]["speedup_vs_gpu"]["range"]
    counts = pim_gpt.baseline_dispatches(ref["setup"])
    rows = pim_gpt.compute(["gpt2"], 8, 4, lowest_speedup=lo, stack=ref["setup"]["baseline_stack"]["value"],
                           dispatches=counts)
    r = rows[0]
    # the baseline column: the same T4 run issued by the assumed software stack (eager adds host time, never less),
    # each pass at least its framework's counted dispatches at the per-dispatch host time
    from mapping.gpu.stack import EAGER_HOST_PER_DISPATCH

    assert r["base_token_s"] > r["gpu_token_s"] and r["base_speedup"] == pytest.approx(r["base_token_s"] / r["pim_token_s"])
    assert r["base_token_s"] >= counts["gpt2"] * EAGER_HOST_PER_DISPATCH
    assert r["speedup"] == pytest.approx(r["gpu_token_s"] / r["pim_token_s"])
    assert r["efficiency"] == pytest.approx(r["gpu_token_j"] / r["pim_token_j"])
    # host overhead per kernel that would make the GPU decode step `lo` times the PIM's
    assert r["gpu_decode_s"] + r["overhead_us"] * 1e-6 * r["kernels"] == pytest.approx(lo * r["pim_decode_s"])
    text = pim_gpt.markdown(rows, ref, 8, 4, 0.0, None)
    t4 = load_target("t4")
    assert f"{r['weight_bytes'] / t4.dram_bandwidth.si * 1e3:.1f} ms per token" in text  # weight-streaming bound
    assert f"{r['speedup']:.1f}x | {lo:g}-{hi:g}x" in text and "not written" in text
    assert f"| gpt2 | {r['base_token_s'] * 1e3:.3f} | {r['base_speedup']:.1f}x |" in text and "Assumption:" in text


@pytest.mark.heavy
def test_pim_gpt_prints_unless_asked(tmp_path, capsys):
    report = ROOT / "reports" / "pim_gpt.md"
    before = report.stat().st_mtime_ns
    text = pim_gpt.main(["--models", "gpt2", "--prompt-len", "8", "--gen-len", "2"])
    assert "# PIM-GPT reproduction" in capsys.readouterr().out and report.stat().st_mtime_ns == before
    pim_gpt.main(["--models", "gpt2", "--prompt-len", "8", "--gen-len", "2", "--report", str(tmp_path / "p.md")])
    written = (tmp_path / "p.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| gpt2 |"))
    assert row in written and "Figure: `reports/pim_gpt_speedup.png`" in written
    assert (tmp_path / "pim_gpt_speedup.png").stat().st_size > 1000


def test_jet_tagger_report_on_one_configuration(tmp_path):
    from simulator.validation import fpga_jet_tagger as jt

    data = jt.build((jt.MAIN[0],), (jt.MAIN[1],), "none")
    text = jt.markdown(data, None)
    cap = load_target("xcvu13p").capacity()
    main = data["serial"][jt.MAIN]
    assert f"DSP (of {cap['dsp']:,})" in text and "csim" in text and "not run" in text
    assert f"{main.latency_cycles} cycles = {main.latency_cycles * jt.CLOCK_NS / 1000:.2f} us" in text
    # the unrolled attention products the prose quotes are the estimate's own matmul layers at R=1
    attn = [e for e in data["unrolled"].layers if e.kind == "matmul"]
    assert f"{sum(e.multipliers for e in attn):,} 16-bit multipliers at R=1" in text
    assert attn[0].multipliers == 15 * 15 * 32 * 2  # tokens^2 x key dim x heads (examples/jet_tagger.onnx)
    jt.figure(tmp_path / "f.png", data)
    assert (tmp_path / "f.png").stat().st_size > 1000
