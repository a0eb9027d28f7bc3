"""Validate hwsim's GPU model: ``reports/gpu_validation.md`` and its figures.

    python -m simulator.validation.gpu [--out reports] [--calibration hardware/calibration]

Compares the GPU kernel models (:mod:`hardware.gpu`) and the GPU mapper against

(a) every measured calibration file in ``hardware/calibration/*.json`` (written on a GPU by
    ``benchmarks/gpu_measure.py``; schema ``hwsim-gpu-calibration/1``; files marked ``dry_run`` are skipped), and
(b) the published figures collected in ``docs/research/gpu.md``: FlashAttention-2's achieved TFLOP/s, Lean
    Attention's and Flash-Decoding's stated speedups, large-GEMM efficiency priors, and weight-streaming lower bounds
    of a decode step.

Every comparison carries a status: ``circular`` when the reference is what a preset's calibration factor was set
from (agreement is by construction), ``independent`` when nothing in the model was fitted to it, ``bound`` when the
reference is a physical lower bound (the prediction must be above it), ``prior`` for another model's assumption,
``method`` for a different card (shape of a curve only) and ``qualitative`` for a claim without a number. The error
is ``predicted / reference - 1`` (0 inside a reference range).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardware.gpu.attention import flash_attention2, flash_decoding, lean_attention, naive_decode
from hardware.gpu.calibration import validate_document as calibration_problems
from hardware.gpu.gemm import Tile, gemm
from hardware.gpu.kernels import memory_bound
from hardware.gpu.spec import GpuTarget
from hardware.targets import load_target, to_dict
from mapping.op_costs import Precision
from mapping.workloads import Model
from simulator.simulate import simulate
from simulator.validation import checkout_root, gpu_published

ROOT = checkout_root()
CALIBRATION_DIR = ROOT / "hardware" / "calibration"
EXAMPLES = ROOT / "examples"
PRESET_BY_NAME = (
    (r"H100.*PCIe", "h100-pcie"), (r"H100", "h100-sxm"), (r"H200", "h200"), (r"A100.*80", "a100-80gb"),
    (r"A100", "a100-40gb"), (r"V100", "v100"), (r"L4\b", "l4"), (r"T4\b", "t4"), (r"4090", "rtx4090"),
    (r"Orin", "jetson-orin"),
)
#: decode-step models measured by gpu_measure.py -> the example ONNX file with the same shapes
DECODE_MODELS = {"gpt2": "gpt2.onnx", "gpt2-xl": "gpt2-xl.onnx", "llama2-7b": "llama2-7b.onnx"}
STATUSES = ("independent", "circular", "bound", "prior", "method", "qualitative")
THRESHOLD = 0.10


@dataclass
class Comparison:
    """One predicted-vs-reference pair. ``reference`` is a number or a (low, high) range."""

    category: str
    item: str
    predicted: float
    reference: float | tuple[float, float]
    unit: str
    source: str
    status: str
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def error(self) -> float:
        """Signed relative error, predicted / reference - 1; 0 inside a range, else to its nearest end."""
        if isinstance(self.reference, tuple):
            lo, hi = self.reference
            if self.predicted < lo:
                return self.predicted / lo - 1.0
            if self.predicted > hi:
                return self.predicted / hi - 1.0
            return 0.0
        return self.predicted / self.reference - 1.0 if self.reference else math.inf

    @property
    def reference_text(self) -> str:
        if isinstance(self.reference, tuple):
            return f"{_num(self.reference[0])}-{_num(self.reference[1])}"
        return _num(self.reference)


def _num(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 0.01:
        return f"{x:.3f}"
    return f"{x:.3g}"


def category_stats(rows: Iterable[Comparison]) -> dict[str, dict[str, float]]:
    """Per category: count, mean and max absolute error, and how many exceed 10%."""
    groups: dict[str, list[float]] = {}
    for r in rows:
        groups.setdefault(r.category, []).append(abs(r.error))
    return {c: {"n": len(e), "mean_abs": statistics.fmean(e), "max_abs": max(e),
                "over_10": sum(1 for x in e if x > THRESHOLD)} for c, e in groups.items()}


# -- (a) calibration files ---------------------------------------------------------------------------------------------
def preset_for(doc: dict[str, Any]) -> str | None:
    """The hwsim preset of a calibration file: its ``hwsim_target``, else guessed from the device name."""
    if doc.get("hwsim_target"):
        return str(doc["hwsim_target"])
    name = str(doc.get("device", {}).get("name", ""))
    return next((p for pat, p in PRESET_BY_NAME if re.search(pat, name, re.IGNORECASE)), None)


def load_calibrations(directory: Path) -> tuple[list[tuple[Path, dict[str, Any]]], list[str]]:
    """Valid measured calibration files in ``directory`` and notes on the files skipped."""
    found, notes = [], []
    for path in sorted(Path(directory).glob("*.json")) if Path(directory).is_dir() else []:
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            notes.append(f"{path.name}: unreadable ({e})")
            continue
        problems = calibration_problems(doc)
        if problems:
            notes.append(f"{path.name}: not a calibration file ({'; '.join(problems[:3])})")
        elif doc.get("dry_run"):
            notes.append(f"{path.name}: a --dry-run file (not a measurement), skipped")
        else:
            found.append((path, doc))
    return found, notes


def _fitted_from(target: GpuTarget, path: Path) -> bool:
    """True when any source of the preset cites this calibration file (the comparison is then circular)."""
    return path.name in json.dumps(to_dict(target))


_decode_cache: dict[tuple[str, str, int, str], float] = {}


def decode_step_s(model_name: str, target: GpuTarget, context: int, attention: str = "flashdecoding") -> float:
    """hwsim's fp16 batch-1 decode step of an example model over ``context`` cached tokens."""
    key = (model_name, target.name, context, attention)
    if key not in _decode_cache:
        model = Model(str(EXAMPLES / DECODE_MODELS[model_name]))
        r = simulate(model, target, "decode", 1, context, 1, Precision(), {"attention": attention})
        _decode_cache[key] = r.latency_s
    return _decode_cache[key]


def predict_measurement(target: GpuTarget, m: dict[str, Any]) -> tuple[str, float, str] | None:
    """(category, predicted seconds, note) for one measurement, or None when hwsim models nothing comparable."""
    s, kind, dtype = m["shape"], m["kind"], m["dtype"]
    backend = str(m.get("backend", ""))
    if kind == "gemm":
        r = gemm(target, s.get("batch", 1), s["m"], s["k"], s["n"], dtype if dtype in ("fp16", "bf16") else "fp16")
        group = m.get("group") or m["name"].split()[0]
        return f"calibration: gemm {group}", r.time_s, f"hwsim: {r.bound}-bound, tile {r.detail.get('tile')}, " \
                                                      f"split-K {r.detail.get('split_k')}, waves {r.detail.get('waves')}"
    if kind == "copy":
        r = memory_bound(target, "copy", m.get("bytes") or 2.0 * s["bytes"])
        return "calibration: DRAM copy", r.time_s, "hwsim: bytes / (datasheet x dram_efficiency)"
    if kind == "launch":
        if "graph" in m["name"].lower():
            return "calibration: launch (CUDA graph)", target.with_graph_launches().launch_overhead.si, \
                "hwsim: graph_launch_overhead per kernel"
        return "calibration: launch", target.launch_overhead.si, "hwsim: launch_overhead per kernel"
    if kind == "attention_prefill":
        if "math" in backend:
            return None  # unfused reference path: hwsim models FlashAttention-2 only for prefill
        r = flash_attention2(target, s["batch"], s["heads"], s["kv_heads"], s["q_len"], s["kv_len"], s["head_dim"],
                             causal=bool(s.get("causal")), dtype=dtype)
        return "calibration: attention prefill", r.time_s, f"hwsim FlashAttention-2 vs {backend}"
    if kind == "attention_decode":
        args = (target, s["batch"], s["heads"], s["kv_heads"], s["kv_len"], s["head_dim"])
        if "math" in backend or "eager" in backend:
            return "calibration: attention decode (unfused)", naive_decode(*args).time_s, f"hwsim naive vs {backend}"
        return "calibration: attention decode (fused)", flash_decoding(*args).time_s, \
            f"hwsim FlashDecoding vs {backend} (torch may not split the KV axis)"
    if kind == "decode_step":
        model = s.get("model")
        if model not in DECODE_MODELS or not s.get("context"):
            return None
        variant = s.get("variant", "eager")
        return f"calibration: decode step ({variant})", decode_step_s(model, target, int(s["context"])), \
            f"hwsim examples/{DECODE_MODELS[model]} decode, fp16, batch 1"
    return None


def compare_calibration(path: Path, doc: dict[str, Any]) -> tuple[list[Comparison], list[str]]:
    """Comparisons of one calibration file with hwsim, and notes (skipped measurements, unknown device)."""
    preset = preset_for(doc)
    if preset is None:
        return [], [f"{path.name}: device '{doc['device'].get('name')}' matches no preset; set 'hwsim_target'"]
    target = load_target(preset)
    status = "circular" if _fitted_from(target, path) else "independent"
    rows, notes, skipped, unmodelled = [], [], 0, 0
    for m in doc["measurements"]:
        if m.get("median_s") is None:
            skipped += 1
            continue
        pred = predict_measurement(target, m)
        if pred is None:
            unmodelled += 1
            continue
        category, seconds, note = pred
        rows.append(Comparison(category, f"{m['name']} [{m['dtype']}{', ' + m['backend'] if m.get('backend') else ''}]",
                               seconds * 1e6, m["median_s"] * 1e6, "us", f"{path.name} (measured)", status, note,
                               {"kind": m["kind"], "file": path.name}))
    notes.append(f"{path.name}: device '{doc['device'].get('name')}' compared with preset {preset}; "
                 f"{len(rows)} compared, {skipped} skipped at measurement time, {unmodelled} not modelled by hwsim "
                 f"(CUDA-graph launches, the math SDPA backend in prefill)")
    return rows, notes


# -- (b) published figures -----------------------------------------------------------------------------------------------
FA2_SEQS = (512, 1024, 2048, 4096, 8192, 16384)
LEAN_CONTEXTS = tuple(1024 * 2**i for i in range(10))  # 1k .. 512k
#: decode attention layouts used for the published decode speedups (the papers' exact grids were not retrieved)
LEAN_LAYOUTS = ((32, 32, "MHA 32x128 (Llama-2-7B)"), (64, 8, "GQA 64q/8kv x128 (CodeLlama-34B)"))


def fa2_tflops(target: GpuTarget, seq: int, head_dim: int, causal: bool = False) -> float:
    """hwsim FlashAttention-2 forward TFLOP/s on the FA2 paper's grid (batch x seqlen = 16k, hidden 2048)."""
    heads = 2048 // head_dim
    return flash_attention2(target, 16384 // seq, heads, heads, seq, seq, head_dim,
                            causal=causal).achieved_flops_per_s / 1e12


def decode_times(target: GpuTarget, heads: int, kv_heads: int, ctx: int) -> dict[str, float]:
    """Seconds of each decode attention kernel (batch 1, head dim 128); ``fa2``: FlashAttention-2 with one query."""
    return {"fa2": flash_attention2(target, 1, heads, kv_heads, 1, ctx, 128, causal=False).time_s,
            "flashdecoding": flash_decoding(target, 1, heads, kv_heads, ctx, 128).time_s,
            "lean": lean_attention(target, 1, heads, kv_heads, ctx, 128).time_s,
            "naive": naive_decode(target, 1, heads, kv_heads, ctx, 128).time_s}


def gemm_efficiency(target: GpuTarget, size: int) -> float:
    """Achieved / datasheet fp16 tensor peak of a square GEMM."""
    return gemm(target, 1, size, size, size, "fp16").achieved_flops_per_s / target.peak_flops("fp16")[0]


def published_comparisons() -> list[Comparison]:
    """hwsim against published figures: measured points (hardware/calibration/published.yaml) and the claims of
    docs/research/gpu.md (FlashAttention-2 TFLOP/s, Lean Attention and Flash-Decoding speedups, MAMF maxima)."""
    a100, h100 = load_target("a100-80gb"), load_target("h100-sxm")
    rows: list[Comparison] = list(gpu_published.rows(Comparison))
    # FlashAttention-2 (Dao, arXiv 2307.08691): 50-73% of A100 peak (fwd+bwd headline); up to ~335 TFLOP/s on H100
    lo, hi = 0.50 * 312, 0.73 * 312
    for seq in (2048, 16384):
        rows.append(Comparison(
            "published: attention TFLOP/s", f"FA2 fwd A100, seqlen {seq}, hdim 128, non-causal", fa2_tflops(a100, seq, 128),
            (lo, hi), "TFLOP/s", "FA2 paper abstract: 50-73% of theoretical max on A100 (docs/research/gpu.md 2d)",
            "independent", "the A100 presets' attention_efficiency comes from the Flash-Decoding table's FA2 row"))
    rows.append(Comparison(
        "published: attention TFLOP/s", "FA2 fwd H100 (no Hopper features), best of the grid",
        max(fa2_tflops(h100, s, d) for s in FA2_SEQS for d in (64, 128)), 335.0, "TFLOP/s",
        "FA2 paper: 'up to ~335 TFLOP/s' on H100 (docs/research/gpu.md 2d)", "circular",
        "attention_efficiency 0.34 of h100-sxm = 335 / 989.4, derived from this number"))
    # maximum achievable matmul (MAMF): what tensor_efficiency was set from
    for t, shape, tflops in ((a100, (1024, 10240, 5120), 271.2), (h100, (2048, 2048, 13312), 794.5)):
        m, n, k = shape
        r = gemm(t, 1, m, k, n, "bf16")
        rows.append(Comparison("published: GEMM maximum achievable (MAMF)", f"bf16 {m}x{n}x{k} on {t.name}",
                               r.time_s * 1e6, 2.0 * m * n * k / (tflops * 1e12) * 1e6, "us",
                               f"stas00/ml-engineering MAMF table: {tflops} TFLOP/s (docs/research/gpu_published_gemm.md 1.2)",
                               "circular", f"tensor_efficiency = {tflops} / dense peak"))
    # Lean Attention (Sanovar et al., arXiv 2405.10480): pin the version
    grid = [(h, kvh, label, ctx, decode_times(a100, h, kvh, ctx)) for h, kvh, label in LEAN_LAYOUTS
            for ctx in LEAN_CONTEXTS]
    fd_lean = [t["flashdecoding"] / t["lean"] for *_, t in grid]
    fa2_lean = [t["fa2"] / t["lean"] for *_, t in grid]
    at = {(label, ctx): t for _, _, label, ctx, t in grid}
    gqa = LEAN_LAYOUTS[1][2]
    rows += [
        Comparison("published: decode attention speedups", "Lean vs FlashDecoding, mean over hwsim grid (A100)",
                   statistics.fmean(fd_lean), 1.73, "x", "Lean Attention later arXiv version (after v1): average 1.73x "
                   "over FlashDecoding (docs/research/gpu.md 2f)", "independent"),
        Comparison("published: decode attention speedups", "Lean vs FlashDecoding at 256k, GQA (A100)",
                   at[(gqa, 262144)]["flashdecoding"] / at[(gqa, 262144)]["lean"], 2.18, "x",
                   "Lean Attention later arXiv version: maximum 2.18x at 256k context", "independent"),
        Comparison("published: decode attention speedups", "Lean vs FlashAttention-2, mean over hwsim grid (A100)",
                   statistics.fmean(fa2_lean), 2.6, "x", "Lean Attention arXiv v1 (2405.10480v1): average 2.6x over "
                   "FlashAttention-2", "independent"),
        Comparison("published: decode attention speedups", "Lean vs FlashAttention-2 at 512k, GQA (A100)",
                   at[(gqa, 524288)]["fa2"] / at[(gqa, 524288)]["lean"], 8.33, "x",
                   "Lean Attention arXiv v1: maximum 8.33x at 512k context", "independent"),
    ]
    # board power during decode (docs/research/gpu_published_power.md 2): Ma et al. (arXiv 2605.11999) measured
    # 137-300 W on an H200 over four attention types' decode; hwsim's static (measured idle) + dynamic power
    h200 = load_target("h200")
    r = simulate(Model(str(EXAMPLES / "llama2-7b.onnx")), h200, "decode", 1, 1024, 1, Precision(), {})
    rows.append(Comparison("published: board power during decode", "Llama-2-7B fp16 decode, ctx 1024, h200, average "
                           "power", r.energy_j / r.latency_s, (137.0, 300.0), "W", "Ma, Afzal, Eitzinger, Wellein, arXiv "
                           "2605.11999: 'decode draws only 137-300 W on a 700 W GPU' (H200; docs/research/"
                           "gpu_published_power.md 2)", "independent", "their models (GQA, MLA, Gated DeltaNet, Mamba2) are "
                           "not ours; a range check"))
    # weight-streaming lower bounds of a decode step (docs/research/gpu.md 4)
    for target, bound_ms in ((a100, 6.6), (h100, 4.0)):
        step_ms = decode_step_s("llama2-7b", target, 128) * 1e3
        rows.append(Comparison("published: decode-step bounds", f"Llama-2-7B fp16 decode, ctx 128, {target.name} vs "
                               "datasheet bound", step_ms, bound_ms, "ms", "docs/research/gpu.md 4 [derived]: 13.5 GB / "
                               "datasheet bandwidth", "bound"))
    return rows


def _pair(n: int) -> tuple[int, int]:
    """(a, b) with a x b = n and a the largest divisor of n not above its square root."""
    a = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    return a, n // a


# -- known-answer checks -----------------------------------------------------------------------------------------------
def known_answer_checks() -> list[dict[str, Any]]:
    """The issue's hand-computed checks, evaluated live: name, expected, hwsim, pass."""
    a100, h100 = load_target("a100-80gb"), load_target("h100-sxm")
    out = []
    cal = 312e12 * a100.tensor_efficiency.si
    r = gemm(a100, 1, 8192, 8192, 8192, "fp16")
    out.append({"check": "large GEMM approaches the calibrated peak (A100 fp16 8192^3)",
                "expected": f">= 97% of 312 x {a100.tensor_efficiency.si:.2f} = {cal / 1e12:.1f} TFLOP/s, compute-bound",
                "hwsim": f"{r.achieved_flops_per_s / 1e12:.1f} TFLOP/s ({r.achieved_flops_per_s / cal:.1%}), {r.bound}",
                "pass": r.bound == "compute" and r.achieved_flops_per_s >= 0.97 * cal})
    r = gemm(a100, 1, 1, 8192, 8192, "fp16")
    bw = a100.dram_bandwidth.si * a100.dram_efficiency.si
    exp = (8192 * 8192 * 2 + 8192 * 2 * 2) / bw + a100.launch_overhead.si
    out.append({"check": "GEMV is bandwidth-bound at datasheet x efficiency (A100, 1x8192x8192 fp16)",
                "expected": f"{exp * 1e6:.1f} us (134 MB at 2039 GB/s x {a100.dram_efficiency.si:.3f} + "
                            f"{a100.launch_overhead.si * 1e6:.1f} us per kernel), memory",
                "hwsim": f"{r.time_s * 1e6:.1f} us, {r.achieved_bytes_per_s / 1e9:.0f} GB/s, {r.bound}",
                "pass": r.bound == "memory" and abs(r.time_s / exp - 1) < 0.02})
    tile = Tile(128, 256, 32, 3, 8)
    for t in (a100, h100):
        # tiles of 128 x 256 (1 block per SM): A100 as in tests/test_gpu_model.py (m = 128 x tiles, n = 256); on H100
        # that grid is memory-bound (ridge 279 FLOP/B), so its tiles are laid out as a x b (132 = 12 x 11, 133 = 7 x 19)
        shapes = [(128 * n, 256) if t is a100 else (128 * _pair(n)[0], 256 * _pair(n)[1]) for n in (t.sms, t.sms + 1)]
        one, two = (gemm(t, 1, m, 16384, n, "fp16", tile=tile, split_k=1) for m, n in shapes)
        ratio = two.time_s / one.time_s
        out.append({"check": f"wave quantisation at the SM count ({t.name}: {t.sms} vs {t.sms + 1} tiles of 128x256, "
                             f"k = 16384, m x n = {shapes[0][0]}x{shapes[0][1]} / {shapes[1][0]}x{shapes[1][1]})",
                    "expected": "1 wave -> 2 waves (the extra tile costs a whole wave), compute-bound, time ratio ~2.0",
                    "hwsim": f"waves {one.detail['waves']} -> {two.detail['waves']}, {one.bound}/{two.bound}, "
                             f"ratio {ratio:.3f}",
                    "pass": one.detail["waves"] == 1 and two.detail["waves"] == 2 and abs(ratio - 2) < 0.06})
    mha, gqa = flash_decoding(a100, 1, 32, 32, 32768, 128), flash_decoding(a100, 1, 32, 8, 32768, 128)
    mqa, naive = lean_attention(a100, 1, 32, 1, 32768, 128), naive_decode(a100, 1, 32, 8, 32768, 128)
    ratio_g, ratio_q = mha.detail["kv_bytes"] / gqa.detail["kv_bytes"], mha.detail["kv_bytes"] / mqa.detail["kv_bytes"]
    out.append({"check": "MQA/GQA KV traffic (32 query heads, 32k keys, d=128, fp16)",
                "expected": "K+V read once per KV head: MHA 536.9 MB; GQA(8) 4x less; MQA 32x less; naive expands",
                "hwsim": f"MHA {mha.detail['kv_bytes'] / 1e6:.1f} MB, GQA /{ratio_g:.0f}, MQA /{ratio_q:.0f}, naive "
                         f"{naive.detail['kv_bytes'] / 1e6:.1f} MB",
                "pass": ratio_g == 4 and ratio_q == 32 and naive.detail["kv_bytes"] == mha.detail["kv_bytes"]})
    t_mha = mha.detail["kv_bytes"] / (a100.dram_bandwidth.si * a100.dram_efficiency.si)
    out.append({"check": "long-context MHA decode is memory-bound near achievable bandwidth",
                "expected": f"{t_mha * 1e6:.1f} us (536.9 MB / {bw / 1e9:.0f} GB/s), within 5%",
                "hwsim": f"{mha.time_s * 1e6:.1f} us", "pass": abs(mha.time_s / t_mha - 1) < 0.05})
    return out


# -- report ------------------------------------------------------------------------------------------------------------
EXPLAIN = {
    "measured (published): GEMM": (
        "hwsim is optimistic on small and mid-size GEMMs: its tile model has no per-tile prologue/epilogue (first "
        "K-slices in flight before any MMA, C written at the end) and gives a 4-warp block the whole SM's calibrated "
        "tensor rate, so grids of one or two waves (A100 768^3-1792^3, H100 1024^3) come out 10-48% fast. From 1920^3 "
        "up the A100 points are +7% to -22%: tensor_efficiency is the best shape's maximum (MAMF, 86.9%) while the "
        "Triton docs' cuBLAS plateaus at ~70% of 312 TFLOP/s (the CI runner's A100 variant, clocks and power limit "
        "are not stated; its 1.69 TB/s vector add would also fit an A100 80GB PCIe at 300 W). L4 and V100 take their "
        "tensor_efficiency from the best size of the same torch.mm data (that point is circular): "
        "V100 is then within 16% (1024^3) and 8% (larger); L4 is +27% at 1024^3 and 21-23% fast from 4096^3, "
        "where the 72 W card throttles under sustained tensor load, which a model at a fixed clock cannot show. RTX 4090 "
        "is 11-20% slow from 2048^3: torch.mm reached 168 TFLOP/s, above the preset's rated 165 TFLOP/s peak (GeForce "
        "boards run above their rated boost clock), and its tensor_efficiency (0.85) is an assumption. "
        "The H100 skinny GEMMs (decode shapes, weight streaming) are within 2.2%."),
    "measured (published): decode attention": (
        "The FA2 column (no KV split) is reproduced within -12% / +9% on all nine held-out rows: the padded 128-row "
        "MMA per (sequence, head) block and the block count (batch x 16 query heads) explain both the flat region and "
        "the doubling below batch 8. Flash-Decoding is predicted 21-41% faster than measured: hwsim streams K/V at the "
        "achievable bandwidth (1770 GB/s on an 80 GB A100) while the blog's kernel reached 1.0-1.26 TB/s. The blog "
        "does not say which A100 it used (on a 40 GB card, 1.49 TB/s achievable, hwsim would still be 12-35% fast), "
        "and its Flash-Decoding was the xformers split-K kernel of Oct 2023, while hwsim models FA2's split-KV kernel "
        "and its combine at full bandwidth, with no cost per split beyond the partials' bytes."),
    "measured (published): decode step / generation": (
        "gpt-fast (CUDA graphs) is 15% slower than hwsim: gpt-fast reports 1397 GB/s of weights on a card "
        "power-limited to 330 W, 79% of the 1769 GB/s stream read that sets dram_efficiency, and hwsim runs the "
        "decode GEMVs at that stream rate. FasterTransformer's GPT-350M / GPT-1.3B totals are 1.7-2.7x hwsim's: FT "
        "spends ~3 ms per generated token on models whose weights stream in 0.4-1.5 ms, i.e. per-step host work and "
        "synchronisation (sampling, finished-sequence checks, memory copies) that hwsim's kernel-only model does not "
        "contain. hwsim's decode-step time is the GPU's kernel time, not a framework's."),
    "measured (published): decode step / generation (precision unstated)": (
        "NVIDIA's NeMo/TensorRT-LLM page does not state the precision (fp16 assumed here) and its latency includes "
        "the serving framework; hwsim is 28-29% fast on both GPUs, so the A100/H100 ratio (1.52 measured) is close."),
    "published: attention TFLOP/s": (
        "FA2's 50-73% is forward+backward training throughput; hwsim models the forward kernel only, at a flat fraction "
        "of peak (A100: 0.65, from the Flash-Decoding table; H100: 0.34, from FA2's ~335 TFLOP/s)."),
    "published: decode attention speedups": (
        "The papers' grids (batch x heads, head dim, the FA2 baseline's exact kernel and FlashDecoding's split limits) "
        "were not retrieved; ours are assumptions (MHA 32x128 and GQA 64/8x128, batch 1). At batch 1 FA2 runs one "
        "block per query head with 128-row MMAs on one query (padding-bound, as the Flash-Decoding table confirms), so "
        "hwsim's Lean/FA2 ratios at batch 1 exceed the papers' averages over their (larger) grids. FlashDecoding and "
        "Lean both fill a wave and run at DRAM bandwidth at long context, so hwsim's Lean vs FlashDecoding stays "
        "~1.0x beyond 8k; the papers' 1.73x / 2.18x are not reproduced. Nothing was fitted to these numbers."),
    "published: decode-step bounds": (
        "A bound, not a reference value: the prediction must lie above it. The excess over the datasheet bound is "
        "the achievable-bandwidth fraction (dram_efficiency, measured) plus per-kernel fixed cost (launch_overhead, "
        "measured) and the KV-cache and LM-head traffic."),
}


def _table(rows: list[Comparison]) -> list[str]:
    lines = ["| item | predicted | reference | unit | error | status | source |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.item} | {_num(r.predicted)} | {r.reference_text} | {r.unit} | {r.error:+.1%} | {r.status} | "
                     f"{r.source} |")
    return lines


def _plots(out: Path, published: list[Comparison], calibration: dict[str, list[Comparison]]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    measured = [r for r in published if r.category.startswith("measured")]
    fig, axes = plt.subplots(1, 3, figsize=(18, 5))
    # (1) square GEMMs: measured TFLOP/s and hwsim's, per GPU
    square = [r for r in measured if r.extra["point"]["kind"] == "gemm" and r.extra["point"]["m"] == r.extra["point"]["n"]]
    for i, tgt in enumerate(dict.fromkeys(r.extra["point"]["target"] for r in square)):
        sel = sorted((r for r in square if r.extra["point"]["target"] == tgt), key=lambda r: r.extra["point"]["m"])
        sizes = [r.extra["point"]["m"] for r in sel]
        flops = [2.0 * n**3 / 1e12 for n in sizes]
        color = f"C{i}"
        axes[0].plot(sizes, [f / (r.reference * 1e-6) for f, r in zip(flops, sel)], "o", color=color, ms=4,
                     label=f"{tgt} measured")
        axes[0].plot(sizes, [f / (r.predicted * 1e-6) for f, r in zip(flops, sel)], "-", color=color, label=f"{tgt} hwsim")
    axes[0].set(xscale="log", xlabel="square GEMM size (m = n = k)", ylabel="TFLOP/s (fp16)",
                title="GEMM: published measurements (dots) vs hwsim (lines)")
    axes[0].legend(fontsize=6, ncol=2)
    # (2) decode attention, Flash-Decoding blog table
    for kernel, marker in (("fa2", "s"), ("flashdecoding", "o")):
        sel = [r for r in measured if r.extra["point"].get("kernel") == kernel]
        ctx = [r.extra["point"]["kv_len"] for r in sel]
        axes[1].plot(ctx, [r.reference for r in sel], marker, color="k", ms=5, label=f"{kernel} measured")
        axes[1].plot(ctx, [r.predicted for r in sel], marker + "--", label=f"{kernel} hwsim")
    axes[1].set(xscale="log", yscale="log", xlabel="keys per sequence (batch x keys = 65,536; last point 131,072)",
                ylabel="us", title="decode attention, A100, 16q/2kv x 128 (Flash-Decoding blog)")
    axes[1].legend(fontsize=7)
    # (3) decode steps and generations
    steps = [r for r in measured if r.extra["point"]["kind"] in ("decode_step", "generate")]
    y = range(len(steps))
    axes[2].barh([i + 0.2 for i in y], [r.predicted / 1e3 for r in steps], height=0.4, label="hwsim")
    axes[2].barh([i - 0.2 for i in y], [r.reference / 1e3 for r in steps], height=0.4, label="published measurement")
    axes[2].set_yticks(list(y), [r.item.replace(" launches", "") for r in steps], fontsize=6)
    axes[2].set(xscale="log", xlabel="ms", title="decode step (per token) / whole generation")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    path = out / "gpu_validation_published.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    files.append(path.name)
    for name, rows in calibration.items():
        fig, ax = plt.subplots(figsize=(6.5, 6))
        kinds = sorted({r.category for r in rows})
        for k in kinds:
            sel = [r for r in rows if r.category == k]
            ax.scatter([r.reference for r in sel], [r.predicted for r in sel], s=14, label=k.replace("calibration: ", ""))
        vals = [v for r in rows for v in (r.predicted, r.reference) if v > 0]
        lo, hi = min(vals) / 2, max(vals) * 2
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="gray", alpha=0.2, label="+-10%")
        ax.set(xscale="log", yscale="log", xlabel="measured (us)", ylabel="hwsim (us)", title=f"hwsim vs {name}")
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"gpu_validation_{Path(name).stem}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path.name)
    return files


def build_report(calibration_dir: Path, out: Path) -> dict[str, Any]:
    """Compute every comparison, write ``out/gpu_validation.md`` and the PNGs; return the numbers."""
    started = time.time()
    out.mkdir(parents=True, exist_ok=True)
    files, notes = load_calibrations(calibration_dir)
    calibration: dict[str, list[Comparison]] = {}
    for path, doc in files:
        rows, more = compare_calibration(path, doc)
        notes += more
        if rows:
            calibration[path.name] = rows
    published = published_comparisons()
    checks = known_answer_checks()
    stats = category_stats(everything_rows(calibration, published))
    figures = _plots(out, published, calibration)
    _write_markdown(out / "gpu_validation.md", calibration_dir, calibration, notes, published, checks, stats, figures,
                    time.time() - started)
    return {"calibration": calibration, "published": published, "checks": checks, "stats": stats, "notes": notes,
            "figures": figures}


def everything_rows(calibration: dict[str, list[Comparison]], published: list[Comparison]) -> list[Comparison]:
    """Every comparison of the report: the measured calibration files' rows, then the published ones."""
    return [r for rows in calibration.values() for r in rows] + published


def _inputs() -> list[str]:
    """The calibration factors of the A100 and H100 presets, as the report's list of inputs."""
    out = []
    for name in ("a100-80gb", "h100-sxm"):
        t = load_target(name)
        graph = t.graph_launch_overhead.si * 1e6 if t.graph_launch_overhead else float("nan")
        out.append(f"{name}: tensor_efficiency {t.tensor_efficiency.si:g}, dram_efficiency {t.dram_efficiency.si:g}, "
                   f"attention_efficiency {t.attention_efficiency.si:g}, launch_overhead "
                   f"{t.launch_overhead.si * 1e6:g} us (graph {graph:g} us), dram_latency {t.dram_latency.si * 1e9:g} ns")
    return out


def _write_markdown(path: Path, calibration_dir: Path, calibration: dict[str, list[Comparison]], notes: list[str],
                    published: list[Comparison], checks: list[dict[str, Any]], stats: dict[str, dict[str, float]],
                    figures: list[str], elapsed: float) -> None:
    try:
        shown_dir = calibration_dir.resolve().relative_to(ROOT)
    except ValueError:
        shown_dir = calibration_dir
    n_measured = sum(len(v) for v in calibration.values())
    lines = [
        "# GPU model validation",
        "",
        f"Regenerate: `python -m simulator.validation.gpu` ({elapsed:.1f} s). Figures: "
        + ", ".join(f"`reports/{f}`" for f in figures) + ". Measurements: `python benchmarks/gpu_measure.py` on a "
        "machine with an NVIDIA GPU writes `hardware/calibration/<gpu-name>.json`; this report then compares every such "
        "file.",
        "",
        "Error = predicted / reference - 1 (0 inside a reference range, else to the nearest end). Status: **circular** = "
        "the reference is what a preset's calibration factor was set from (agreement by construction, not evidence); "
        "**independent** = nothing in hwsim was fitted to it; **bound** = a physical lower bound the prediction must "
        "exceed (its 'error' is the excess); **prior** = another model's assumption; **method** = a different card "
        "(curve shape only); **qualitative** = a claim without a measured number.",
        "",
        "## Summary",
        "",
    ]
    if n_measured:
        lines.append(f"**{n_measured} measured data points** from {len(calibration)} calibration file(s) in "
                     f"`{shown_dir}`.")
    else:
        lines.append(f"**No GPU was available to this project's sessions**: `{shown_dir}` holds no measurement taken by "
                     "`benchmarks/gpu_measure.py`. The presets are calibrated from, and checked against, published "
                     "measurements instead (`hardware/calibration/published.yaml`, each point with its source).")
    for n in notes:
        lines.append(f"- {n}")
    everything = everything_rows(calibration, published)
    indep = [r for r in everything if r.status == "independent"]
    gemm_rows = [r for r in indep if r.category == "measured (published): GEMM"]
    step_rows = [r for r in indep if r.category == "measured (published): decode step / generation"]
    lines += ["", "**The issue's target, mean absolute error under 10% on GEMMs and decode steps, is not met:**", ""]
    for label, sel in (("GEMMs (independent published measurements)", gemm_rows),
                       ("decode steps and generations (independent published measurements)", step_rows)):
        if sel:
            errs = [abs(r.error) for r in sel]
            lines.append(f"- {label}: {len(sel)} points, mean abs error {statistics.fmean(errs):.1%}, max "
                         f"{max(errs):.1%}, {sum(e <= THRESHOLD for e in errs)} within 10%.")
    if gemm_rows:
        lines += ["", "GEMMs by GPU and size regime (independent points; 'large' = measured time >= 25 us, three times the "
                  "8.2 us that Triton's harness reports for a 256^3 GEMM, i.e. past the timing floor of the "
                  "measurement method):", "", "| GPU | points | mean abs error (all) | large: points | large: mean abs "
                  "error |", "|---|---|---|---|---|"]
        for tgt in dict.fromkeys(r.extra["point"]["target"] for r in gemm_rows):
            sel = [r for r in gemm_rows if r.extra["point"]["target"] == tgt]
            big = [r for r in sel if r.reference >= 25.0]
            lines.append(f"| {tgt} | {len(sel)} | {statistics.fmean(abs(r.error) for r in sel):.1%} | {len(big)} | "
                         + (f"{statistics.fmean(abs(r.error) for r in big):.1%}" if big else "-") + " |")
        big = [r for r in gemm_rows if r.reference >= 25.0]
        lines.append(f"| all | {len(gemm_rows)} | {statistics.fmean(abs(r.error) for r in gemm_rows):.1%} | {len(big)} | "
                     f"{statistics.fmean(abs(r.error) for r in big):.1%} |")
    lines += ["", "| category | n | mean abs error | max abs error | over 10% | statuses |", "|---|---|---|---|---|---|"]
    for cat, s in stats.items():
        statuses = sorted({r.status for r in everything if r.category == cat})
        lines.append(f"| {cat} | {s['n']} | {s['mean_abs']:.1%} | {s['max_abs']:.1%} | {s['over_10']} | "
                     f"{', '.join(statuses)} |")
    lines += [
        "",
        f"Of the {len(published)} published comparisons, {sum(r.status == 'circular' for r in published)} are circular "
        f"(a preset was set from them), {sum(r.status == 'bound' for r in published)} are lower bounds and "
        f"{len([r for r in published if r.status == 'independent'])} are independent checks.",
        "",
        "### What is an input and what is a check",
        "",
        "- **Inputs (circular)**, each cited in its preset: " + "; ".join(_inputs()) + ".",
        "- **Independent**: every other point of `hardware/calibration/published.yaml` (GEMMs by shape on A100, H100, "
        "V100, L4, RTX 4090; skinny GEMMs on H100; a streaming kernel; the Flash-Decoding table's FA2 and "
        "Flash-Decoding columns; decode steps and whole generations of Llama-2-7B, GPT-350M and GPT-1.3B), the "
        "decode-attention speedup claims, and every measured calibration file once one exists.",
        "- **Structural (known-answer checks below)**: hand-computed consequences of the model's equations; they verify "
        "the implementation, not the hardware.",
        "",
        "## Known-answer checks",
        "",
        "| check | expected | hwsim | pass |",
        "|---|---|---|---|",
    ]
    for c in checks:
        lines.append(f"| {c['check']} | {c['expected']} | {c['hwsim']} | {'yes' if c['pass'] else '**NO**'} |")
    lines += ["", "Wave quantisation only shows in compute-bound grids: the A100 layout (n = 256, k = 16384) is memory-bound "
              "in its first wave on H100 (ridge 989 x 0.85 / (3350 x 0.9) = 279 FLOP/B), where hwsim gives a ratio of "
              "1.89 instead of 2, so the H100 row uses a 12 x 11 / 7 x 19 tile layout."]
    lines += ["", "## (a) Measured calibration", ""]
    if not calibration:
        lines.append("None. The code path (schema check, preset matching, per-kind prediction, error statistics, "
                     "scatter plot) is exercised by `tests/test_gpu_validation.py` on a synthetic file that is never "
                     "shipped. Run `python benchmarks/gpu_measure.py` on an H100/A100 and regenerate.")
        lines.append("")
    for name, rows in calibration.items():
        lines += [f"### {name}", "", *_table(rows), ""]
        over = [r for r in rows if abs(r.error) > THRESHOLD]
        if over:
            lines += [f"{len(over)} of {len(rows)} points differ by more than 10%. hwsim's limit for each (the likely "
                      "cause of the gap, automatic, from the kernel model's bound):", ""]
            lines += [f"- {r.item}: {r.error:+.0%}; {r.note}" for r in over]
            lines.append("")
    lines += ["## (b) Published figures", ""]
    cats = list(dict.fromkeys(r.category for r in published))
    for cat in cats:
        rows = [r for r in published if r.category == cat]
        lines += [f"### {cat.replace('published: ', '')}", "", *_table(rows), ""]
        over = [r for r in rows if abs(r.error) > THRESHOLD]
        if over:
            lines.append(f"**Gaps over 10% ({len(over)} of {len(rows)}).** {EXPLAIN.get(cat, '')}")
            lines.append("")
    cited = {r.source: r.extra["source_text"] for r in published if "source_text" in r.extra}
    if cited:
        lines += ["Sources of the measured points (`hardware/calibration/published.yaml`):", ""]
        lines += [f"- **{key}**: {text}" for key, text in cited.items()]
        lines.append("")
    lines += [
        "Setups that are ours, not the sources': Lean/Flash-Decoding comparisons use A100-80GB, batch 1, head dim 128, "
        f"contexts 1k-512k, layouts {', '.join(label for _, _, label in LEAN_LAYOUTS)}; 'FlashAttention-2' in decode is "
        "hwsim's FA2 kernel with one query row per (batch, head) block and no KV split. The Lean Attention arXiv "
        "versions disagree (v1: 2.6x average / 8.33x max vs FA2; later: 1.73x / 2.18x vs FlashDecoding); both are "
        "listed with the version named. The FA2 paper's per-seqlen forward figures were not retrieved, so its "
        "fwd+bwd headline range is used for the forward kernel.",
        "",
        "## Not compared (missing data)",
        "",
        "- Measurements on a GPU of our own: no GPU was lent to this project's sessions so far; "
        "`benchmarks/gpu_measure.py` is ready for one.",
        "- FA2 per-(seqlen, head-dim) forward TFLOP/s (paper Figs. 4-7), Lean Attention per-context speedups: figures "
        "not retrieved (docs/research/gpu.md 2d-2f, docs/research/gpu_published_attention.md).",
        "- Published batch-1 decode latencies on H200, L4, V100 and T4 at fp16 (none found: "
        "docs/research/gpu_published_decode.md); eager-framework numbers (HF transformers, eager gpt-fast) are CPU-bound "
        "and hwsim has no host-overhead model.",
        "- Energy per FLOP and per byte: no measurement was found (docs/research/gpu_published_power.md 3); the presets' "
        "per-FLOP energies are upper bounds, (TDP - measured idle) / peak, and their idle power is measured (nvidia-smi "
        "logs, docs/research/gpu_published_power.md 1). Only one power-under-load range is checked.",
    ]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "reports"))
    parser.add_argument("--calibration", default=str(CALIBRATION_DIR), help="folder of calibration JSON files")
    args = parser.parse_args()
    result = build_report(Path(args.calibration), Path(args.out))
    for cat, s in result["stats"].items():
        print(f"{cat:50s} n={s['n']:3d} mean |err| {s['mean_abs']:7.1%} max {s['max_abs']:7.1%}")
    print(f"wrote {Path(args.out) / 'gpu_validation.md'} and {', '.join(result['figures'])}")


if __name__ == "__main__":
    main()
