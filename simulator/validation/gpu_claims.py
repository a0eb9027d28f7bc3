"""Published GPU claims (``hardware/calibration/gpu_claims.yaml``) against hwsim's predictions.

A claim is a stated range, maximum, speedup or physical bound rather than one measured point: FlashAttention-2's
fraction of peak and maximum TFLOP/s, the maximum achievable matmul a ``tensor_efficiency`` was set from, Lean
Attention's speedups, a board-power range during decode, and the weight-streaming lower bound of a decode step.
The figures and sources are data; this module only computes hwsim's side.
"""

from __future__ import annotations

import math
import statistics
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import yaml

from hardware.gpu.attention import flash_attention2, flash_decoding, lean_attention, naive_decode
from hardware.gpu.gemm import gemm
from hardware.gpu.spec import GpuTarget
from mapping.op_costs import Precision
from mapping.workloads import Model
from simulator.simulate import simulate
from simulator.validation.gpu_published import EXAMPLES, ROOT, load_target  # one preset cache for both

CLAIMS = ROOT / "hardware" / "calibration" / "gpu_claims.yaml"
CATEGORY = {
    "attention_fraction_of_peak": "published: attention TFLOP/s",
    "attention_max_tflops": "published: attention TFLOP/s",
    "gemm_max_achievable": "published: GEMM maximum achievable (MAMF)",
    "decode_speedup": "published: decode attention speedups",
    "decode_power": "published: board power during decode",
    "decode_weight_bound": "published: decode-step bounds",
    "decode_wave_step": "published: decode-attention wave quantisation",
}


def load_claims(path: Path = CLAIMS) -> dict[str, Any]:
    """The claims file: ``sources``, ``lean_setup`` and ``claims``; every claim names a known source."""
    doc = yaml.safe_load(Path(path).read_text())
    if doc.get("schema") != "hwsim-gpu-claims/1":
        raise ValueError(f"{path}: schema must be hwsim-gpu-claims/1")
    for i, c in enumerate(doc["claims"]):
        if c.get("source") not in doc["sources"] or c.get("kind") not in CATEGORY:
            raise ValueError(f"{path}: claims.{i}: unknown source or kind")
    return doc


def fa2_tflops(target: GpuTarget, seq: int, head_dim: int, causal: bool = False) -> float:
    """hwsim FlashAttention-2 forward TFLOP/s on the FA2 paper's grid (batch x seqlen = 16k, hidden 2048)."""
    heads = 2048 // head_dim
    return flash_attention2(target, 16384 // seq, heads, heads, seq, seq, head_dim,
                            causal=causal).achieved_flops_per_s / 1e12


#: decode-attention kernels the speedup claims can name as a baseline (see decode_times)
DECODE_KERNELS = {
    "fa2": "FlashAttention-2 v2.0-2.1 forward (one CTA per sequence and query head, 128-row tile, no KV split)",
    "fa2_nosplit": "FlashAttention-2's decode kernel without KV split (flash_attn_with_kvcache(num_splits=1): one CTA "
                   "per sequence and KV head, GQA group packed into 64 rows)",
    "flashdecoding": "FlashDecoding = FA2's split-KV kernel, num_splits heuristic over 2 x SMs (v2.5.7 on) + combine",
    "flashdecoding_1x": "FlashDecoding with the v2.3-v2.5.6 heuristic over 1 x SMs + combine",
    "lean": "Lean Attention (the authors' kernel in onnxruntime: 2 x SMs stream-K CTAs, FA2 split-KV tile)",
    "naive": "unfused eager attention",
}


def decode_times(target: GpuTarget, heads: int, kv_heads: int, ctx: int, batch: int = 1) -> dict[str, float]:
    """Seconds of each decode attention kernel of :data:`DECODE_KERNELS` (head dim 128, fp16)."""
    args = (target, batch, heads, kv_heads, ctx, 128)
    return {"fa2": flash_attention2(target, batch, heads, kv_heads, 1, ctx, 128, causal=False).time_s,
            "fa2_nosplit": flash_decoding(*args, splits=1).time_s,
            "flashdecoding": flash_decoding(*args).time_s,
            "flashdecoding_1x": flash_decoding(*args, slots_per_sm=1).time_s,
            "lean": lean_attention(*args).time_s,
            "naive": naive_decode(*args).time_s}


def speedup_grid(setup: dict[str, Any]) -> list[tuple[int, dict[str, Any], int, dict[str, float]]]:
    """(batch, layout, context, kernel seconds) over the setup's grid, leaving out points whose fp16 K/V cache
    (2 x batch x kv_heads x context x 128 x 2 B per layer) does not fit the target's memory."""
    t = load_target(setup["target"])
    out = []
    for batch in setup.get("batches", [1]):
        for lay in setup["layouts"]:
            for ctx in setup["contexts"]:
                if 4.0 * batch * lay["kv_heads"] * ctx * 128 > t.dram_capacity.si:
                    continue
                out.append((batch, lay, ctx, decode_times(t, lay["heads"], lay["kv_heads"], ctx, batch)))
    return out


@lru_cache(maxsize=4)
def _model(name: str) -> Model:
    return Model(str(EXAMPLES / name))


@cache
def decode_result(model: str, target: str, context: int) -> tuple[float, float]:
    """(seconds, joules) of hwsim's fp16 batch-1 decode step of an example model."""
    r = simulate(_model(model), load_target(target), "decode", 1, context, 1, Precision(), {})
    return r.latency_s, r.energy_j


def weight_bound(model: str, target: GpuTarget) -> tuple[float, float]:
    """(fp16 weight bytes one batch-1 decode step of an example model reads, seconds to read them once at the
    datasheet DRAM bandwidth). The step reads every projection whole but only the token's rows of the embedding
    table (Llama-3-8B: 15.01 GB of its 16.06 GB, the "model size" torchao's table gives)."""
    fp16 = Precision("float16", "float16", "float16")
    weights = float(sum(o.weight_bytes for o in _model(model).decode(1, 16, fp16).ops))
    return weights, weights / target.dram_bandwidth.si


def predict(claim: dict[str, Any], setup: dict[str, Any]) -> tuple[str, float, Any, str, str]:
    """(item, predicted, reference (number or (low, high)), unit, note) of one claim."""
    kind = claim["kind"]
    if kind == "decode_speedup":
        t = load_target(setup["target"])
        layouts = setup["layouts"]
        if claim["over"] == "mean":
            grid = speedup_grid(setup)
            value = statistics.fmean(r[claim["baseline"]] / r[claim["kernel"]] for *_, r in grid)
            where = f"mean over hwsim grid ({len(grid)} points)"
        else:
            lay = layouts[claim["layout"]]
            r = decode_times(t, lay["heads"], lay["kv_heads"], int(claim["over"]))
            value = r[claim["baseline"]] / r[claim["kernel"]]
            where = f"at {int(claim['over']) // 1024}k, {lay['label'].split()[0]}"
        names = {"lean": "Lean", "flashdecoding": "FlashDecoding", "flashdecoding_1x": "FlashDecoding (1 x SMs)",
                 "fa2": "FlashAttention-2", "fa2_nosplit": "FlashAttention-2 (no KV split)"}
        return (f"{names[claim['kernel']]} vs {names[claim['baseline']]}, {where} ({t.name})", value, claim["speedup"],
                "x", "")
    t = load_target(claim["target"])
    if kind == "attention_fraction_of_peak":
        raise ValueError("attention_fraction_of_peak has one row per seqlen: use rows()")
    if kind == "attention_max_tflops":
        best = max(fa2_tflops(t, s, d) for s in claim["seqs"] for d in claim["head_dims"])
        return f"FA2 fwd {t.name} (no Hopper features), best of the grid", best, claim["tflops"], "TFLOP/s", ""
    if kind == "gemm_max_achievable":
        m, n, k = claim["m"], claim["n"], claim["k"]
        r = gemm(t, 1, m, k, n, claim["dtype"])
        return (f"{claim['dtype']} {m}x{n}x{k} on {t.name}", r.time_s * 1e6, 2.0 * m * n * k / (claim["tflops"] * 1e12) * 1e6,
                "us", f"maximum achievable {claim['tflops']} TFLOP/s")
    if kind == "decode_power":
        seconds, joules = decode_result(claim["model"], t.name, claim["context"])
        return (f"{Path(claim['model']).stem} fp16 decode, ctx {claim['context']}, {t.name}, average power",
                joules / seconds, tuple(claim["watts"]), "W", "")
    if kind == "decode_weight_bound":
        seconds, _ = decode_result(claim["model"], t.name, claim["context"])
        weights, bound = weight_bound(claim["model"], t)
        return (f"{Path(claim['model']).stem} fp16 decode, ctx {claim['context']}, {t.name} vs datasheet bound",
                seconds * 1e3, bound * 1e3, "ms", f"{weights / 1e9:.2f} GB of weights / {t.dram_bandwidth.si / 1e9:,.0f} GB/s")
    if kind == "decode_wave_step":  # FA2's decode kernel one sequence past a full wave of CTAs
        args = (t, claim["heads"], claim["kv_heads"], claim["context"], claim["head_dim"])
        before, after = (flash_decoding(t, b, *args[1:]) for b in (claim["batch"], claim["more"]))
        return (f"FA2 decode time, batch {claim['batch']} -> {claim['more']} ({claim['heads']}q/{claim['kv_heads']}kv x"
                f"{claim['head_dim']}, {claim['context'] // 1024}k keys, {t.name})", after.time_s / before.time_s,
                (claim["ratio_above"], math.inf), "x",
                f"{before.detail['tiles']} -> {after.detail['tiles']} CTAs, {before.detail['splits']} -> "
                f"{after.detail['splits']} split(s), waves {before.detail['waves']} -> {after.detail['waves']}")
    raise ValueError(f"unknown claim kind {kind!r}")


def rows(comparison_cls: type, claims: list[dict[str, Any]] | None = None) -> list[Any]:
    """Every claim (or those given) as ``comparison_cls`` rows."""
    doc = load_claims()
    out = []
    for c in doc["claims"] if claims is None else claims:
        source = doc["sources"][c["source"]]
        note = c.get("note", "")
        if c.get("calibrates"):
            note = (note + "; " if note else "") + f"calibrates {c['calibrates']}"
        extra = {"claim": c, "source_text": source}
        if c["kind"] == "attention_fraction_of_peak":
            t = load_target(c["target"])
            peak = t.peak_flops("fp16")[0] / 1e12
            lo, hi = (f * peak for f in c["fraction"])
            for seq in c["seqs"]:
                out.append(comparison_cls(CATEGORY[c["kind"]], f"FA2 fwd {t.name}, seqlen {seq}, hdim {c['head_dim']}, "
                                          "non-causal", fa2_tflops(t, seq, c["head_dim"]), (lo, hi), "TFLOP/s",
                                          c["source"], c["status"], note, extra))
            continue
        item, predicted, reference, unit, more = predict(c, doc["lean_setup"])
        full = "; ".join(x for x in (more, note) if x)
        out.append(comparison_cls(CATEGORY[c["kind"]], item, predicted, reference, unit, c["source"], c["status"], full,
                                  extra))
    return out
