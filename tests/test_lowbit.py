"""Low-bit weights and activations on every target (issue 14): GPU dequantisation (fused vs separate), tensor-core
formats by part, PIM MAC modes, FPGA DSP packing and ternary adds, the formats' CLI validation, the published
speedups' file."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner

from hardware.dtypes import parse_precision, tensor_bytes
from hardware.errors import HwsimError
from hardware.fpga.dense import DspShape, dsps_per_multiplier, macs_per_dsp
from hardware.gpu import lowbit
from hardware.gpu.gemm import gemm
from hardware.targets import load_target
from mapping.op_costs import Precision
from mapping.workloads import Model
from simulator.cli import main
from simulator.simulate import simulate
from simulator.sweep.spec import parse_precision_axis
from simulator.validation import techniques as published_techniques

from conftest import EXAMPLES, FIXTURES, shared_model
from conftest import ROOT as REPO

TINY = str(FIXTURES / "gpt2_ts.onnx")

A100 = load_target("a100-80gb")


@pytest.fixture(scope="module")
def llama() -> Model:
    return Model(str(EXAMPLES / "llama2-7b.onnx"))


@pytest.fixture(scope="module")
def tiny() -> Model:
    return Model(TINY)


@pytest.fixture(scope="module")
def gpt2() -> Model:
    return shared_model(EXAMPLES / "gpt2.onnx")


def _decode(model: Model, target: str, precision: Precision, options: dict | None = None):
    return simulate(model, load_target(target), "decode", 1, 64, 1, precision, options or {}, trace_steps=0)


@pytest.mark.heavy
def test_int4_decode_of_a_weight_bound_model_on_a100(llama) -> None:
    """W4A16 Llama-2-7B decode: >= 2.5x faster than fp16, never faster than streaming the int4 weights at the
    datasheet bandwidth, and the kernel table names the dequantising GEMMs (heavy: a 7B model; the default run
    checks the same on its GEMMs and on GPT-2)."""
    fp16 = _decode(llama, "a100-80gb", Precision(weights="float16"))
    int4 = _decode(llama, "a100-80gb", Precision(weights="int4"))
    assert 2.5 <= fp16.latency_s / int4.latency_s < 4.0  # 4x fewer weight bytes is the ceiling
    assert int4.latency_s >= llama.weight_bytes(Precision(weights="int4")) / A100.dram_bandwidth.si
    names = [k["kernel"] for k in int4.kernels()]
    gemms = [n for n in names if ".mlp." in n and not n.endswith(".fused")]
    assert gemms and all(n.endswith(".w4a16") for n in gemms)
    assert not any("w4a16" in k["kernel"] for k in fp16.kernels())


def test_int4_gemv_of_llama_shapes_on_a100() -> None:
    """Llama-2-7B's decode GEMVs (4096 -> 11008 and back, batch 1): the fused W4A16 kernel is >= 2.5x faster than
    fp16 and never faster than its int4 bytes (weights + group scales) at the datasheet bandwidth."""
    for k, n in ((4096, 11008), (11008, 4096), (4096, 4096)):
        fp16 = gemm(A100, 1, 1, k, n, "fp16", 2.0, 2.0, 2.0)
        packed = k * n * 0.5 + lowbit.scale_bytes(k, n, 128)
        int4 = gemm(A100, 1, 1, k, n, "fp16", 2.0, 0.5, 2.0, dram_bytes=packed + 2 * (k + n), dequant=1.5)
        assert 2.5 <= fp16.time_s / int4.time_s < 4.0
        assert int4.time_s >= packed / A100.dram_bandwidth.si


def test_quantised_weights_keep_the_embeddings_and_lm_head_unless_asked(tiny) -> None:
    """--weights int4 leaves the embedding tables and the LM head in the target's format (AWQ, GPTQ, vLLM FP8);
    --head-weights same quantises them too: their bytes shrink by the format's ratio and the head's GEMM dequantises."""
    from mapping.target_plugin import plugin_for
    from simulator.cli import make_precision

    heads = [n for n in tiny.head_tensors() if n in tiny.graph.weight_names]
    assert {"model.transformer.wte.weight", "model.transformer.wpe.weight"} <= set(heads)
    elements = sum(tiny._numel(n) for n in heads)
    kept, same = Precision(weights="int4"), make_precision("int4", None, None, "same")
    assert tiny.weight_bytes(kept) - tiny.weight_bytes(same) == pytest.approx(elements * (4 - 0.5), abs=len(heads))
    assert plugin_for("gpu").default_precision(A100, kept).head == "float16"
    assert plugin_for("gpu").default_precision(A100, Precision(weights="float16")).head is None
    names = {k["kernel"] for k in _decode(tiny, "a100-80gb", kept).kernels()}
    assert "lm_head.matmul" in names and any(n.endswith(".w4a16") for n in names)
    assert "lm_head.matmul.w4a16" in {k["kernel"] for k in _decode(tiny, "a100-80gb", same).kernels()}


def test_the_kernel_table_shows_dequantisation(gpt2) -> None:
    """Every weight GEMM of an int4 decode is a dequantising W4A16 kernel; the separate path lists a memory-bound
    dequantisation kernel before each plain fp16 GEMM and is slower than fp16 itself."""
    fused = _decode(gpt2, "a100-80gb", Precision(weights="int4"))
    names = [k["kernel"] for k in fused.kernels()]
    assert "decoder.0.mlp.up.w4a16" in names and "lm_head.matmul" in names  # the LM head stays fp16 by default
    fp16 = _decode(gpt2, "a100-80gb", Precision())
    separate = _decode(gpt2, "a100-80gb", Precision(weights="int4"), {"quant_kernel": "dequant"})
    assert fused.latency_s < fp16.latency_s < separate.latency_s
    kernels = {k["kernel"]: k for k in separate.kernels()}
    dq = [k for name, k in kernels.items() if name.endswith(".dequant")]
    assert dq and all(k["bound"] in ("memory", "launch") for k in dq)
    assert "decoder.0.mlp.up" in kernels and "decoder.0.mlp.up.dequant" in kernels


def test_fused_dequantisation_costs_time_only_once_it_is_not_hidden_by_memory() -> None:
    """A GEMV's dequantisation hides under its weight stream; it is never free (never faster than fp16-native
    int4 would be), and with 16-row tiles at M = 256 (the whole B converted 16 times) it is a floor of the time."""
    from hardware.gpu.gemm import TENSOR_TILES

    k = n = 8192
    native = gemm(A100, 1, 1, k, n, "fp16", 2.0, 0.5, 2.0)
    fused = gemm(A100, 1, 1, k, n, "fp16", 2.0, 0.5, 2.0, dequant=1.5)
    assert fused.time_s == pytest.approx(native.time_s, rel=0.05) and fused.detail["dequant_s"] > 0
    for m in (16, 64, 256, 1024):
        assert gemm(A100, 1, m, k, n, "fp16", 2.0, 0.5, 2.0, dequant=1.5).time_s >= \
            gemm(A100, 1, m, k, n, "fp16", 2.0, 0.5, 2.0).time_s * (1 - 1e-9)
    small = next(t for t in TENSOR_TILES if t.m == 16)
    slow = gemm(A100, 1, 256, k, n, "fp16", 2.0, 0.5, 2.0, tile=small, dequant=1.5)
    assert slow.time_s > gemm(A100, 1, 256, k, n, "fp16", 2.0, 0.5, 2.0, tile=small).time_s
    assert slow.time_s >= slow.detail["dequant_s"]  # the conversion is a floor of the kernel's time
    assert slow.detail["dequant_s"] == pytest.approx(16 * k * n * 1.5 / (A100.cuda_core_fp32.si / 2))
    assert lowbit.scale_bytes(k, n, 32) == 4 * lowbit.scale_bytes(k, n, 128) == 4 * (k // 128) * n * 2
    assert lowbit.scale_bytes(k, n, 0) == n * 2


def test_tensor_core_formats_by_part() -> None:
    """W8A8 and FP8 run on the int8/fp8 tensor cores at the datasheet's doubled rate (H100); A100 has no FP8 and
    says so; the compute-bound GEMM gets about 2x faster with the format."""
    h100 = load_target("h100-sxm")
    m = k = n = 8192
    fp16 = gemm(h100, 1, m, k, n, "fp16", 2, 2, 2)
    fp8 = gemm(h100, 1, m, k, n, "fp8", 1, 1, 2)
    assert 1.5 < fp16.time_s / fp8.time_s <= 2.0  # the fp8 peak is 2x; L2 traffic per FLOP does not halve
    assert lowbit.needs_dequant("int8", "int8") is False and lowbit.needs_dequant("float8e4m3", "fp8") is False
    assert lowbit.needs_dequant("int4", "int8") and lowbit.needs_dequant("float8e4m3", "fp16")
    r = CliRunner().invoke(main, ["simulate", TINY, "--target", "a100-80gb", "--phase", "decode", "--activations",
                                  "fp8"])
    assert r.exit_code == 2 and "has no fp8 tensor cores" in r.output and "--weights fp8" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_formats_on_the_command_line_and_in_sweeps() -> None:
    assert parse_precision("fp4", "--weights") == "float4e2m1" and parse_precision("ternary", "--weights") == "ternary"
    assert tensor_bytes(1024, "ternary") == 256 and tensor_bytes(1024, "float4e2m1") == 512
    with pytest.raises(HwsimError, match="weight-only"):
        parse_precision("ternary", "--activations")
    assert parse_precision_axis("ternary/int8/fp16") == ("ternary", "int8", "float16")
    with pytest.raises(ValueError, match="weight-only"):
        parse_precision_axis("ternary")
    for args, fragment in ((["--target", "a100-80gb", "--set", "quant_group=100"], "power of two"),
                           (["--target", "u55c", "--set", "quant_group=128"], "not an option"),
                           (["--target", "pim-gpt", "--set", "quant_group=128"], "not an option"),
                           (["--target", "a100-80gb", "--precision", "ternary"], "weight-only")):
        r = CliRunner().invoke(main, ["simulate", TINY, "--phase", "decode", *args])
        assert r.exit_code == 2 and fragment in r.output, r.output


def test_pim_mac_modes(gpt2) -> None:
    """AiM's bf16 MACs refuse integer weights; the int8 variant halves the MAC commands of int8 x int8; the ternary
    variant packs 128 weights a column."""
    r = CliRunner().invoke(main, ["simulate", TINY, "--target", "pim-gpt", "--phase", "decode", "--weights", "int8"])
    assert r.exit_code == 2 and "bfloat16 only" in r.output and "mac_format=int8" in r.output
    bf16 = _decode(gpt2, "pim-gpt", Precision())
    i8 = Precision("int8", "int8", "int8")
    int8 = _decode(gpt2, "pim-gpt", i8, {"mac_format": "int8"})
    tern = _decode(gpt2, "pim-gpt", Precision(weights="ternary"), {"mac_format": "ternary"})
    assert 1.5 < bf16.latency_s / int8.latency_s < 2.0  # the ASIC's share does not shrink
    assert tern.latency_s < 0.5 * int8.latency_s
    with pytest.raises(HwsimError, match="mac_format=int8"):
        _decode(gpt2, "pim-gpt", Precision("int8", "bfloat16", "bfloat16"), {"mac_format": "int8"})


def test_fpga_dsp_packing_and_ternary_adds() -> None:
    dsp = DspShape()
    assert macs_per_dsp("int8", "int8", dsp) == 2  # WP486
    assert macs_per_dsp("int8", "ternary", dsp) == 2  # UG579 TWO24 SIMD adds
    assert macs_per_dsp("float16", "ternary", dsp) == 1
    assert macs_per_dsp("float32", "float32", dsp) == 0.5 and macs_per_dsp("int16", "int16", dsp) == 1
    assert dsps_per_multiplier(16, 2, dsp) == 0 and dsps_per_multiplier(16, 16, dsp) == 1
    assert dsps_per_multiplier(8, 8, dsp) == 0  # below lut_mult_max_bits: a LUT multiplier


def test_published_lowbit_entries_parse() -> None:
    lowbit = [f for f in published_techniques.data_files() if f.name == "techniques_published_lowbit.yaml"]
    entries = published_techniques.entries(lowbit)
    assert len(entries) >= 5 and len({e["id"] for e in entries}) == len(entries)
    for e in entries:
        assert (REPO / e["model"]).exists() and load_target(e["target"]) is not None
        assert len(e["published"]["source"]) > 40


@pytest.mark.heavy
def test_published_lowbit_predictions() -> None:
    """Every entry runs; measured ratios within a factor 1.6, stated maxima not exceeded by more than 30%."""
    models: dict = {}
    lowbit = [f for f in published_techniques.data_files() if f.name == "techniques_published_lowbit.yaml"]
    for e in published_techniques.entries(lowbit):
        p = published_techniques.evaluate(e, models)
        assert p["predicted"] > 1.0
        if p["kind"] == "measured":
            assert 1 / 1.6 < p["predicted"] / p["published"] < 1.6, p
        else:
            assert p["predicted"] < 1.3 * p["published"], p


def test_fp4_runs_on_fp4_tensor_cores_only_where_a_preset_lists_them(tiny) -> None:
    """No bundled part has FP4 tensor cores: fp4 weights are dequantised (wfp4a16) and fp4 activations refused; a
    preset copy with ``tensor_peak.fp4`` computes W4A4 natively (no dequantising kernel)."""
    from hardware.targets import target_from_dict

    weights_only = _decode(tiny, "h100-sxm", Precision(weights="float4e2m1"))
    assert any(k["kernel"].endswith(".wfp4a16") for k in weights_only.kernels())
    with pytest.raises(HwsimError, match="no fp4 tensor cores"):
        _decode(tiny, "h100-sxm", Precision("float4e2m1", "float4e2m1", "float16"))
    data = load_target("h100-sxm").model_dump(mode="json")
    data["tensor_peak"]["fp4"] = {**data["tensor_peak"]["fp8"], "value": 2 * data["tensor_peak"]["fp8"]["value"]}
    fp4 = simulate(tiny, target_from_dict(data, "b-like"), "decode", 1, 64, 1,
                   Precision("float4e2m1", "float4e2m1", "float16"), {}, trace_steps=0)
    assert not any("wfp4" in k["kernel"] for k in fp4.kernels())


def test_fpga_hls4ml_design_follows_integer_formats_and_refuses_ternary() -> None:
    from types import SimpleNamespace

    from mapping.fpga.hls_design import design_choice, design_precision

    work = SimpleNamespace(precision=Precision("int4", "int8", "float16"), phase="prefill", batch=1, params=10)
    assert design_precision(work) == {"precision": "ap_fixed<8,3>", "weight_precision": "ap_fixed<4,2>"}
    assert design_precision(SimpleNamespace(precision=Precision("float16", "float16", "float16"))) == {}
    tern = SimpleNamespace(precision=Precision("ternary", "int8", "float16"), phase="prefill", batch=1, params=10)
    assert design_choice(tern, load_target("u55c"))[2].startswith("ternary weights")


def test_the_lowbit_sweep_example_parses() -> None:
    from simulator.sweep.spec import load_spec

    sw = load_spec(EXAMPLES / "lowbit_sweep.yaml")
    assert sw.size == 2 * 3 * 6


def test_quantised_kv_is_converted_inside_decode_attention() -> None:
    """A quantised cache's K and V are converted in the attention kernel: the conversion instructions add to a
    compute-bound kernel exactly, hide under a memory-bound one's stream, and the kernel table names the format."""
    from hardware.gpu.attention import flash_decoding

    elements = 2 * 16 * 32 * 4096 * 128
    plain = flash_decoding(A100, 16, 32, 32, 4096, 128, 1.0, 2.0, q_len=1, dtype="fp16", name="a")
    convert = elements * lowbit.DEQUANT_INSTRUCTIONS["int8"] / lowbit.instruction_rate(A100)
    dq = lowbit.kv_dequant(A100, dataclasses.replace(plain, detail={}), elements, "int8")
    if plain.bound == "compute":
        assert dq.time_s == pytest.approx(plain.time_s + convert)
    else:
        assert dq.time_s >= plain.time_s
    small = flash_decoding(A100, 1, 32, 32, 256, 128, 1.0, 2.0, q_len=1, dtype="fp16", name="b")
    assert small.bound in ("memory", "launch", "latency")
    assert lowbit.kv_dequant(A100, dataclasses.replace(small, detail={}), 2 * 32 * 256 * 128, "int8").time_s == small.time_s
    llama = Model(str(FIXTURES / "llama_ts.onnx"))
    int8 = _decode(llama, "a100-80gb", Precision(kv_cache="int8"))
    names = [k["kernel"] for k in int8.kernels()]
    assert any(n.endswith(".kv-int8.attention") for n in names)
    assert not any(".kv-" in k["kernel"] for k in _decode(llama, "a100-80gb", Precision()).kernels())


def test_w8a8_gemm_inputs_are_quantised_once_per_tensor() -> None:
    """FP8 activations on an H100: each distinct GEMM input gets one quantisation kernel (Q, K and V share theirs);
    fused into the producer (--set act_quant=fused) there is none and the step is faster; bf16 has none."""
    llama = Model(str(FIXTURES / "llama_ts.onnx"))
    fp8 = Precision("float8e4m3", "float8e4m3", "bfloat16")
    own = _decode(llama, "h100-sxm", fp8)
    quant = [k["kernel"] for k in own.kernels() if k["kernel"].endswith(".act_quant")]
    layer0 = sorted(n for n in quant if ".0." in n)
    assert any(n.endswith("q_proj.act_quant") for n in layer0)
    assert not any(n.endswith(("k_proj.act_quant", "v_proj.act_quant")) for n in layer0)
    fused = _decode(llama, "h100-sxm", fp8, {"act_quant": "fused"})
    assert not any(k["kernel"].endswith(".act_quant") for k in fused.kernels()) and fused.latency_s < own.latency_s
    bf16 = _decode(llama, "h100-sxm", Precision("bfloat16", "bfloat16", "bfloat16"))
    assert not any(k["kernel"].endswith(".act_quant") for k in bf16.kernels())
