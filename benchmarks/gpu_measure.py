"""Measure what hwsim's GPU model assumes, on a real NVIDIA GPU, and write ``hardware/calibration/<gpu-name>.json``.

    python benchmarks/gpu_measure.py [--repeats 30] [--warmup 5]
                                     [--only launch,copy,gemm,attention,decode,generation,prefill,gemv]
                                     [--models gpt2,gpt2-xl,llama2-7b] [--contexts 128,512] [--prompts 128,512]
                                     [--batches 1,16] [--generation-models llama2-7b]
                                     [--no-compile] [--budget-s 420] [--out FILE.json]
    python benchmarks/gpu_measure.py --dry-run        # tiny shapes, on CPU if there is no GPU; checks the script

Needs torch (CUDA build) and, for the decode-step models, transformers. hwsim itself is not imported, so the script
runs on a bare GPU machine. Timing: CUDA events around each call (perf_counter on CPU), ``--warmup`` untimed calls,
then the median (and min/max) of ``--repeats`` timed calls. Before each timed call of a GEMM, attention or copy the L2
cache is flushed by reading a buffer of 256 MiB (one sum), outside the timed region, so weights are read from DRAM as
in a real decode step (which streams every layer's weights once). Reading, not writing: a flush that writes its buffer
(``triton.testing.do_bench`` zeroes one, nvbench memsets one) leaves the L2 full of dirty lines, which the timed call
then writes back as its reads evict them (up to the L2's size, e.g. 50 MB on an H100: ~17 us of DRAM time inside a
~45 us GEMV); a read leaves clean lines, and whatever the previous call left dirty is written back during the flush.

Measurements (``kind``):

- ``gemm``: fp16 and bf16 ``torch.matmul`` (cuBLAS) over square sizes 512..16384, skinny decode GEMMs with m = 1..64
  (and short-prefill m = 128, 512) and the (k, n) of GPT-2, GPT-2-XL and Llama-2-7B projections, MLPs and LM heads,
  and wave-quantisation sweeps (m = 128 x t for t around 1x and 2x the SM count, n = 256, k = 16384; the tile cuBLAS
  picks is not known); fp8 (e4m3, ``torch._scaled_mm``, per-tensor scales, bf16 out) on the square and Llama-2-7B
  shapes where the GPU has fp8 tensor cores (shapes ``_scaled_mm`` refuses, e.g. m = 1, are recorded as skipped).
- ``copy``: device-to-device copy of 1 GiB (bytes moved = read + write): achievable DRAM bandwidth.
- ``launch``: back-to-back launches of an (almost) empty kernel (``torch.cuda._sleep(0)``), a one-element eager add,
  and the same add replayed from a CUDA graph; per launch. Also the empty kernel timed as every GEMM, copy and
  attention row is (one call between two events after the L2 flush, ``shape.isolated``): the floor of this script's
  timing, which the report adds to those rows instead of the back-to-back launch cost.
- ``attention_prefill``: ``scaled_dot_product_attention`` with the FlashAttention-2 paper's grid (batch x seqlen =
  16k tokens, hidden 2048, head dim 64 and 128, causal and not), once per SDPA backend that accepts the shape.
- ``attention_decode``: one query token over contexts 128..131072, MHA (32 heads of 128) and GQA (32 query heads,
  8 KV heads), batch 1, per SDPA backend, plus the eager ``repeat_kv`` + matmul/softmax/matmul path of Hugging Face
  models. FlashDecoding and Lean Attention are not in torch: what is recorded is what torch provides, with the
  backend named.
- ``decode_step``: one decode step (batch 1, fp16, KV cache of ``context`` tokens) of GPT-2, GPT-2-XL and
  Llama-2-7B-shaped models built from transformers configs with random weights: eager with the dynamic cache, eager
  with a static cache, and ``torch.compile(mode="reduce-overhead")`` (CUDA graphs) with the static cache when that
  works on the installed versions (a variant that fails is recorded with ``skipped`` and the reason). The board power
  (``nvidia-smi --query-gpu=power.draw`` sampled every 100 ms while the step repeats for ~2 s) is attached to each
  decode-step row as ``board_power_w``; the idle power before the run is in ``device.idle_power_w``.
- ``decode_step`` (``generation`` group): per generated token of a 32-step greedy generation after a prompt of the
  last ``--contexts`` length, at each ``--batches`` size (default 1 and 16; ``--generation-models``, default
  Llama-2-7B), eager, with the KV cache growing as in a real generation: transformers' dynamic cache (``torch.cat``
  per layer and step, variant ``eager_growing``) and a static cache written in place (``eager_static_growing``,
  attention over its whole ``static_slots`` length, masked, as transformers runs it).
  Published Hugging Face eager steps grow with batch far faster than their weights and KV bytes do (optimum's
  Llama-2-13B rows, reports/gpu_validation.md); these rows measure that growth and how much of it the cache's
  re-concatenation explains.
- ``prefill_step``: one short prefill (batch 1, ``--prompts`` tokens) of the same models, eager and compiled.
- ``gemm`` (``gemv`` group, last): the batch-1 (m = 1) weight matmuls of Llama-2-7B compiled by inductor with
  ``coordinate_descent_tuning`` on, as gpt-fast and torchao's generate.py set it: inductor then decomposes a one-row
  matmul into a multiply and a sum, a Triton reduction kernel on CUDA cores (``torch/_inductor/decomposition.py``),
  not cuBLAS. Their rows (``group: gemv-inductor``) measure that kernel class's weight stream against the cuBLAS
  rows of the same shapes (docs/research/gpu_published_decode.md 15).

**A GPU session with little device time** (e.g. 15 minutes on an H100/H200 for everything): check the script here
first (``--dry-run``, seconds on a CPU), then run once there with a budget that leaves room for one rerun, and
commit the file it writes::

    python benchmarks/gpu_measure.py --budget-s 420 --repeats 20
    python -m simulator.validation.gpu --write       # compares every hardware/calibration/*.json with hwsim

**Time budget.** ``--budget-s`` (default 420 s; none in a dry run) bounds the whole run: once it is spent, every
remaining measurement is recorded as ``skipped`` with the reason, and the file is still written. Groups run in the
order launch, copy, gemm, attention, decode, generation, prefill (the compiled variants, which take longest, last), so a run cut
short keeps the cheapest and most used points.

The JSON (schema ``hwsim-gpu-calibration/1``): ``device`` (name, driver, CUDA, capability, SMs, memory), ``torch``,
``transformers``, ``command``, ``settings``, ``dry_run`` and ``measurements``: each with ``kind``, ``name``,
``dtype``, ``shape``, ``median_s``, ``min_s``, ``max_s``, ``repeats`` and, where meaningful, ``flops``, ``bytes``,
``backend``. ``python -m simulator.validation.gpu`` compares every such file in ``hardware/calibration/`` with
hwsim's model. A ``--dry-run`` file is marked ``dry_run: true``, is written outside ``hardware/calibration/`` by
default, and is never used as a measurement.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the calibration format lives in hwsim (standard library only)
from hardware.gpu.calibration import KINDS, MEASUREMENT_KEYS, SCHEMA, validate_document  # noqa: E402, F401

CALIBRATION_DIR = ROOT / "hardware" / "calibration"
GROUPS = ("launch", "copy", "gemm", "attention", "decode", "generation", "prefill", "gemv")

#: (k, n) of the weight GEMMs of the decode models: name -> list of (label, k, n).
MODEL_GEMMS = {
    "gpt2": [("qkv", 768, 2304), ("o", 768, 768), ("up", 768, 3072), ("down", 3072, 768), ("lm_head", 768, 50257)],
    "gpt2-xl": [("qkv", 1600, 4800), ("o", 1600, 1600), ("up", 1600, 6400), ("down", 6400, 1600),
                ("lm_head", 1600, 50257)],
    "llama2-7b": [("q", 4096, 4096), ("qkv", 4096, 12288), ("gate_up", 4096, 22016), ("down", 11008, 4096),
                  ("lm_head", 4096, 32000)],
}
SKINNY_M = (1, 2, 4, 8, 16, 32, 64, 128, 512)
#: models whose GEMMs are also measured in fp8 (where the GPU has fp8 tensor cores)
FP8_MODELS = ("llama2-7b",)
SQUARE = (512, 1024, 2048, 4096, 8192, 16384)
DECODE_CONTEXTS = tuple(128 * 2**i for i in range(11))  # 128 .. 131072
#: decode steps of one timed generation with a growing KV cache (``generation`` group)
GROWTH_STEPS = 32
#: Known device names -> hwsim preset (first match wins; checked in order).
PRESET_BY_NAME = (
    (r"H100.*PCIe", "h100-pcie"), (r"H100", "h100-sxm"), (r"H200", "h200"), (r"A100.*80", "a100-80gb"),
    (r"A100", "a100-40gb"), (r"V100", "v100"), (r"L4\b", "l4"), (r"T4\b", "t4"), (r"4090", "rtx4090"),
    (r"Orin", "jetson-orin"),
)


# -- shape grids and the JSON schema (no torch needed) ------------------------------------------------------------------
def gemm_shapes(sm_count: int, dry_run: bool = False) -> list[dict[str, Any]]:
    """The GEMM grid: dicts with ``group`` (square | skinny | wave), ``label``, ``m``, ``n``, ``k``."""
    if dry_run:
        shapes = [{"group": "square", "label": f"{s}^3", "m": s, "n": s, "k": s} for s in (64, 128)]
        shapes += [{"group": "skinny", "label": f"tiny.up m={m}", "m": m, "n": 256, "k": 128} for m in (1, 4)]
        shapes += [{"group": "wave", "label": f"tiles={t}", "m": 16 * t, "n": 32, "k": 64} for t in (3, 4)]
        return shapes
    shapes = [{"group": "square", "label": f"{s}^3", "m": s, "n": s, "k": s} for s in SQUARE]
    for model, gemms in MODEL_GEMMS.items():
        for label, k, n in gemms:
            shapes += [{"group": "skinny", "label": f"{model}.{label} m={m}", "m": m, "n": n, "k": k} for m in SKINNY_M]
    tiles = sorted({t for c in (sm_count, 2 * sm_count) for t in range(c - 3, c + 4) if t > 0})
    shapes += [{"group": "wave", "label": f"tiles={t} (SMs={sm_count})", "m": 128 * t, "n": 256, "k": 16384}
               for t in tiles]
    return shapes


def attention_prefill_shapes(dry_run: bool = False) -> list[dict[str, Any]]:
    """FlashAttention-2 paper grid (batch x seqlen = 16k tokens, hidden 2048, head dim 64/128, causal or not, MHA),
    plus causal GQA prefills of a Llama-3-8B-shaped layer (32 query heads, 8 KV heads of 128), batch 1."""
    seqs, tokens, hidden = ((64, 128), 256, 128) if dry_run else ((512, 1024, 2048, 4096, 8192, 16384), 16384, 2048)
    out = []
    for head_dim in (64, 128) if not dry_run else (32,):
        for seq in seqs:
            for causal in (False, True):
                heads = hidden // head_dim
                out.append({"batch": tokens // seq, "heads": heads, "kv_heads": heads, "q_len": seq, "kv_len": seq,
                            "head_dim": head_dim, "causal": causal, "layout": "mha"})
    heads, kv_heads, head_dim = (4, 1, 32) if dry_run else (32, 8, 128)
    for seq in seqs[:2] if dry_run else (128, 512, 2048, 8192):
        out.append({"batch": 1, "heads": heads, "kv_heads": kv_heads, "q_len": seq, "kv_len": seq,
                    "head_dim": head_dim, "causal": True, "layout": "gqa"})
    return out


def attention_decode_shapes(dry_run: bool = False, sm_count: int = 108) -> list[dict[str, Any]]:
    """One query token over growing contexts: MHA (32 x 128) and GQA (32 query heads, 8 KV heads), batch 1; then the
    Flash-Decoding blog's grid and POD-Attention's wave step (the paper's batches 54 / 55 and this card's own step,
    where batch x 4 KV heads passes 2 x ``sm_count`` blocks)."""
    contexts = (128, 256) if dry_run else DECODE_CONTEXTS
    heads, head_dim = (4, 32) if dry_run else (32, 128)
    out = []
    for kv_heads, layout in ((heads, "mha"), (heads // 4, "gqa")):
        for ctx in contexts:
            out.append({"batch": 1, "heads": heads, "kv_heads": kv_heads, "q_len": 1, "kv_len": ctx,
                        "head_dim": head_dim, "layout": layout})
    if dry_run:
        return out
    # the Flash-Decoding blog's grid (16 query / 2 KV heads of 128, batch x keys = 65,536, and 1 x 131,072): the
    # published split-KV rows hwsim is 19-28% fast on, measured on our card by torch's own kernels
    for i in range(8, 18):
        batch, keys = (2 ** (16 - i), 2 ** i) if i <= 16 else (1, 2 ** i)
        out.append({"batch": batch, "heads": 16, "kv_heads": 2, "q_len": 1, "kv_len": keys, "head_dim": 128,
                    "layout": "fd-blog"})
    # POD-Attention's wave step (Yi-6B heads, 16K keys): batch 54 fills 2 x 108 A100 slots, 55 does not; on another
    # card the step sits at 2 x SMs / 4 KV heads, so both the paper's batches and this card's are measured
    step = 2 * sm_count // 4
    for batch in sorted({54, 55, step, step + 1}):
        out.append({"batch": batch, "heads": 32, "kv_heads": 4, "q_len": 1, "kv_len": 16384, "head_dim": 128,
                    "layout": "pod-wave"})
    return out


def model_configs(dry_run: bool = False) -> dict[str, dict[str, Any]]:
    """transformers config arguments of the decode-step models (``arch``: gpt2 | llama); tiny under ``dry_run``."""
    if dry_run:
        return {
            "gpt2": {"arch": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 512, "n_positions": 1024},
            "llama2-7b": {"arch": "llama", "hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 2,
                          "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 512,
                          "max_position_embeddings": 1024},
        }
    return {
        "gpt2": {"arch": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257, "n_positions": 1024},
        "gpt2-xl": {"arch": "gpt2", "n_embd": 1600, "n_layer": 48, "n_head": 25, "vocab_size": 50257,
                    "n_positions": 1024},
        "llama2-7b": {"arch": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                      "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000,
                      "max_position_embeddings": 4096},
    }


def attention_flops(shape: dict[str, Any]) -> float:
    """FLOPs of one attention forward, FlashAttention-2's convention: 4 x b x h x q x kv x d, halved when causal
    over a square (prefill) score matrix."""
    flops = 4.0 * shape["batch"] * shape["heads"] * shape["q_len"] * shape["kv_len"] * shape["head_dim"]
    if shape.get("causal") and shape["q_len"] == shape["kv_len"]:
        flops /= 2.0
    return flops


def summarise(samples: list[float]) -> dict[str, Any]:
    """median_s, min_s, max_s and repeats of a list of timings (seconds)."""
    return {"median_s": statistics.median(samples), "min_s": min(samples), "max_s": max(samples),
            "repeats": len(samples)}


def measurement(kind: str, name: str, dtype: str, shape: dict[str, Any], samples: list[float] | None,
                **extra: Any) -> dict[str, Any]:
    """One JSON measurement record; ``samples=None`` with ``skipped=REASON`` in ``extra`` for a failed one."""
    if kind not in KINDS:
        raise ValueError(f"unknown measurement kind {kind!r}")
    row: dict[str, Any] = {"kind": kind, "name": name, "dtype": dtype, "shape": dict(shape)}
    if samples:
        row.update(summarise(samples))
    else:
        row.update({"median_s": None, "min_s": None, "max_s": None, "repeats": 0})
        row.setdefault("skipped", extra.pop("skipped", "no samples"))
    row.update(extra)
    if row.get("median_s") and row.get("flops"):
        row["tflops_per_s"] = row["flops"] / row["median_s"] / 1e12
    if row.get("median_s") and row.get("bytes"):
        row["gb_per_s"] = row["bytes"] / row["median_s"] / 1e9
    return row


def preset_for(device_name: str) -> str | None:
    """The hwsim preset a device name most likely is (None if unknown)."""
    for pattern, preset in PRESET_BY_NAME:
        if re.search(pattern, device_name, re.IGNORECASE):
            return preset
    return None


def file_name(device_name: str) -> str:
    """``NVIDIA H100 80GB HBM3`` -> ``nvidia-h100-80gb-hbm3.json``."""
    return re.sub(r"[^a-z0-9]+", "-", device_name.lower()).strip("-") + ".json"


def calibration_document(device: dict[str, Any], command: str, settings: dict[str, Any],
                         measurements: list[dict[str, Any]], dry_run: bool,
                         versions: dict[str, str] | None = None) -> dict[str, Any]:
    """The whole calibration file."""
    return {"schema": SCHEMA, "device": device, "hwsim_target": preset_for(device.get("name", "")),
            **(versions or {}), "command": command, "settings": settings, "dry_run": dry_run,
            "created_utc": datetime.now(UTC).isoformat(timespec="seconds"), "host": platform.node(),
            "measurements": measurements}


def table(measurements: list[dict[str, Any]]) -> str:
    """A printable table of the measurements."""
    lines = [f"{'kind':18s} {'name':44s} {'dtype':5s} {'median':>11s} {'TFLOP/s':>9s} {'GB/s':>9s}  backend/note"]
    for m in measurements:
        med = m.get("median_s")
        t = f"{med * 1e6:9.2f}us" if med else "  skipped"
        tf = f"{m['tflops_per_s']:9.2f}" if m.get("tflops_per_s") else " " * 9
        gb = f"{m['gb_per_s']:9.1f}" if m.get("gb_per_s") else " " * 9
        note = m.get("backend", "") + (f" SKIPPED: {m['skipped']}" if m.get("skipped") else "")
        lines.append(f"{m['kind']:18s} {m['name'][:44]:44s} {m['dtype']:5s} {t:>11s} {tf} {gb}  {note}")
    return "\n".join(lines)


class Budget:
    """Wall-clock budget of the whole run (``None``: unlimited)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds, self.started = seconds, time.time()

    def spent(self) -> bool:
        return self.seconds is not None and time.time() - self.started > self.seconds

    def reason(self) -> str:
        return f"time budget of {self.seconds:g} s spent (--budget-s)"


class PowerSampler:
    """Board power from ``nvidia-smi --query-gpu=power.draw -lms 100`` while a ``with`` block runs (watts)."""

    def __init__(self, index: int = 0) -> None:
        self.index, self.samples, self.proc = index, [], None

    def __enter__(self) -> PowerSampler:
        try:
            self.proc = subprocess.Popen(["nvidia-smi", f"--id={self.index}", "--query-gpu=power.draw",
                                          "--format=csv,noheader,nounits", "-lms", "100"],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        except OSError:
            self.proc = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        for line in out.splitlines():
            try:
                self.samples.append(float(line.strip()))
            except ValueError:
                continue

    def summary(self) -> dict[str, Any] | None:
        if not self.samples:
            return None
        return {"median": statistics.median(self.samples), "min": min(self.samples), "max": max(self.samples),
                "samples": len(self.samples), "interval_ms": 100}


#: most calls of a decode step while its power is sampled (a static KV cache holds one slot per call)
POWER_CALLS = 300


def sustain(fn: Callable[[], Any], seconds: float, sync: Callable[[], None], sampler: PowerSampler,
            max_calls: int = POWER_CALLS) -> None:
    """Call ``fn`` back to back for about ``seconds`` (at most ``max_calls`` times) while ``sampler`` records board
    power."""
    with sampler:
        t0, calls = time.time(), 0
        while time.time() - t0 < seconds and calls < max_calls:
            for _ in range(10):
                fn()
            calls += 10
            sync()


#: name of the launch row that measures the floor of one isolated, event-timed call
ISOLATED_FLOOR = "empty kernel (torch.cuda._sleep(0)), one call between CUDA events after the L2 flush"


# -- timing (torch) --------------------------------------------------------------------------------------------------------
class Timer:
    """CUDA-event (or perf_counter on CPU) timing with warm-up and an optional L2 flush (a read of ``flush_bytes``,
    see the module docstring) before each timed call."""

    def __init__(self, device: str, warmup: int, repeats: int, flush_bytes: int) -> None:
        import torch

        self.torch, self.device, self.warmup, self.repeats = torch, device, warmup, repeats
        self.cuda = device.startswith("cuda")
        self.flush_buf = torch.zeros(flush_bytes // 4, dtype=torch.float32, device=device) if flush_bytes else None

    def sync(self) -> None:
        """Wait for the device."""
        if self.cuda:
            self.torch.cuda.synchronize()

    def __call__(self, fn: Callable[[], Any], flush: bool = True, repeats: int | None = None,
                 per_call: int = 1, warmup: int | None = None) -> list[float]:
        """Timings (seconds) of ``repeats`` calls of ``fn`` (after ``warmup`` untimed ones), each divided by
        ``per_call``."""
        n = repeats or self.repeats
        for _ in range(self.warmup if warmup is None else warmup):
            fn()
        self.sync()
        out = []
        for _ in range(n):
            if flush and self.flush_buf is not None:
                self.flush_buf.sum()  # a read: evicts the L2 (writing back what was dirty) and leaves clean lines
            if self.cuda:
                start = self.torch.cuda.Event(enable_timing=True)
                end = self.torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                out.append(start.elapsed_time(end) / 1e3 / per_call)
            else:
                t0 = time.perf_counter()
                fn()
                out.append((time.perf_counter() - t0) / per_call)
        return out


def _reason(e: BaseException) -> str:
    text = str(e).splitlines()[0][:200] if str(e) else ""
    return f"{type(e).__name__}: {text}"


def _dtype(torch: Any, name: str) -> Any:
    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[name]


def has_fp8(torch: Any, device: str) -> bool:
    """fp8 tensor cores (compute capability 8.9 or newer) and ``torch._scaled_mm``."""
    if not device.startswith("cuda") or not hasattr(torch, "_scaled_mm") or not hasattr(torch, "float8_e4m3fn"):
        return False
    major, minor = torch.cuda.get_device_capability(device)
    return (major, minor) >= (8, 9)


def _fp8_shapes(shapes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in shapes if s["group"] == "square" or any(s["label"].startswith(m) for m in FP8_MODELS)]


def measure_gemms(timer: Timer, sm_count: int, dry_run: bool, dtypes: tuple[str, ...],
                  budget: Budget | None = None) -> list[dict[str, Any]]:
    """cuBLAS GEMMs over :func:`gemm_shapes` (C = A @ B, A m x k activations, B k x n weights); ``fp8`` through
    ``torch._scaled_mm`` on a subset, where the GPU has fp8 tensor cores."""
    torch = timer.torch
    rows = []
    shapes = gemm_shapes(sm_count, dry_run)
    for dt in dtypes:
        for s in (_fp8_shapes(shapes) if dt == "fp8" else shapes):
            m, n, k = s["m"], s["n"], s["k"]
            shape = {"batch": 1, "m": m, "n": n, "k": k}
            if budget is not None and budget.spent():
                rows.append(measurement("gemm", f"{s['group']} {s['label']}", dt, shape, None, group=s["group"],
                                        skipped=budget.reason()))
                continue
            if dt == "fp8":
                rows.append(_fp8_gemm(timer, s, shape))
                continue
            try:
                a = torch.randn(m, k, device=timer.device, dtype=_dtype(torch, dt))
                b = torch.randn(k, n, device=timer.device, dtype=_dtype(torch, dt))
                c = torch.empty(m, n, device=timer.device, dtype=_dtype(torch, dt))
                samples = timer(lambda a=a, b=b, c=c: torch.matmul(a, b, out=c))
                size = a.element_size()
                rows.append(measurement("gemm", f"{s['group']} {s['label']}", dt, shape, samples, group=s["group"],
                                        flops=2.0 * m * n * k, bytes=float(size * (m * k + k * n + m * n)),
                                        backend="torch.matmul (cuBLAS)" if timer.cuda else "torch.matmul (CPU)"))
            except Exception as e:  # noqa: BLE001 - e.g. out of memory, or a dtype the CPU build lacks: record why
                rows.append(measurement("gemm", f"{s['group']} {s['label']}", dt, shape, None, group=s["group"],
                                        skipped=_reason(e)))
    return rows


def measure_inductor_gemvs(timer: Timer, dry_run: bool, models: list[str], dt: str = "bf16",
                           budget: Budget | None = None) -> list[dict[str, Any]]:
    """One-row matmuls (x @ W, x 1 x k, W k x n) of the decode models compiled by inductor with coordinate-descent
    tuning, the Triton reduction kernels gpt-fast's decode runs (module docstring); timed like the cuBLAS rows."""
    torch = timer.torch
    rows = []
    shapes = [("tiny.up", 128, 256)] if dry_run else [(f"{m}.{label}", k, n) for m in models
                                                         for label, k, n in MODEL_GEMMS.get(m, [])]
    for label, k, n in shapes:
        shape = {"batch": 1, "m": 1, "n": n, "k": k}
        name = f"gemv-inductor {label} m=1"
        if budget is not None and budget.spent():
            rows.append(measurement("gemm", name, dt, shape, None, group="gemv-inductor", skipped=budget.reason()))
            continue
        try:
            import torch._inductor.config as inductor_config

            a = torch.randn(1, k, device=timer.device, dtype=_dtype(torch, dt))
            b = torch.randn(k, n, device=timer.device, dtype=_dtype(torch, dt))
            with inductor_config.patch(coordinate_descent_tuning=True):
                torch._dynamo.reset()
                fn = torch.compile(lambda x, w: x @ w, dynamic=False)
                fn(a, b)  # compile (and tune) outside the timing
                samples = timer(lambda a=a, b=b, fn=fn: fn(a, b))
            rows.append(measurement("gemm", name, dt, shape, samples, group="gemv-inductor", flops=2.0 * k * n,
                                    bytes=float(a.element_size() * (k + k * n + n)),
                                    backend="torch.compile, coordinate_descent_tuning (inductor Triton reduction)"))
        except Exception as e:  # noqa: BLE001 - e.g. no Triton on this machine: record why
            rows.append(measurement("gemm", name, dt, shape, None, group="gemv-inductor", skipped=_reason(e)))
    return rows


def _fp8_gemm(timer: Timer, s: dict[str, Any], shape: dict[str, Any]) -> dict[str, Any]:
    """One fp8 (e4m3 x e4m3, per-tensor scales, bf16 out) ``torch._scaled_mm``; B column-major as cuBLASLt needs."""
    torch = timer.torch
    m, n, k = s["m"], s["n"], s["k"]
    name = f"{s['group']} {s['label']}"
    if not has_fp8(torch, timer.device):
        return measurement("gemm", name, "fp8", shape, None, group=s["group"],
                           skipped="no fp8 tensor cores or torch._scaled_mm on this device")
    try:
        a = torch.randn(m, k, device=timer.device).to(torch.float8_e4m3fn)
        b = torch.randn(n, k, device=timer.device).to(torch.float8_e4m3fn).t()
        one = torch.ones((), device=timer.device)
        samples = timer(lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16))
        return measurement("gemm", name, "fp8", shape, samples, group=s["group"], flops=2.0 * m * n * k,
                           bytes=float(m * k + k * n + 2 * m * n), backend="torch._scaled_mm (cuBLASLt fp8)")
    except Exception as e:  # noqa: BLE001 - e.g. a shape _scaled_mm refuses (dimensions not multiples of 16)
        return measurement("gemm", name, "fp8", shape, None, group=s["group"], skipped=_reason(e))


def measure_copy(timer: Timer, dry_run: bool) -> list[dict[str, Any]]:
    """Device-to-device copy: read + write bytes over time."""
    torch = timer.torch
    n = (8 << 20) if dry_run else (1 << 30)
    src = torch.empty(n, dtype=torch.uint8, device=timer.device)
    dst = torch.empty_like(src)
    samples = timer(lambda: dst.copy_(src), flush=False)
    return [measurement("copy", f"copy {n >> 20} MiB", "uint8", {"bytes": n}, samples, bytes=2.0 * n,
                        backend="Tensor.copy_ (device to device)")]


def measure_launch(timer: Timer) -> list[dict[str, Any]]:
    """Per-launch time of back-to-back tiny kernels: empty kernel, eager one-element add, CUDA-graph replay."""
    torch = timer.torch
    rows = []
    per = 200
    x = torch.zeros(1, device=timer.device)

    def eager() -> None:
        for _ in range(per):
            x.add_(1.0)

    if timer.cuda:
        def empty() -> None:
            for _ in range(per):
                torch.cuda._sleep(0)

        rows.append(measurement("launch", "empty kernel (torch.cuda._sleep(0)), back to back", "-", {"launches": per},
                                timer(empty, flush=False, per_call=per), backend="torch.cuda._sleep"))
        # the floor of this script's own timing: one empty kernel between two events after the L2 flush, as every
        # GEMM, copy and attention row is timed (hwsim adds it to those rows instead of the back-to-back cost)
        rows.append(measurement("launch", ISOLATED_FLOOR, "-", {"launches": 1, "isolated": True},
                                timer(lambda: torch.cuda._sleep(0)), backend="torch.cuda._sleep"))
    rows.append(measurement("launch", "eager one-element add_, back to back", "fp32", {"launches": per},
                            timer(eager, flush=False, per_call=per), backend="torch eager"))
    if timer.cuda:
        try:
            graph = torch.cuda.CUDAGraph()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                eager()
            torch.cuda.current_stream().wait_stream(stream)
            with torch.cuda.graph(graph):
                eager()
            rows.append(measurement("launch", "one-element add_ replayed from a CUDA graph", "fp32", {"launches": per},
                                    timer(graph.replay, flush=False, per_call=per), backend="CUDA graph"))
        except RuntimeError as e:
            rows.append(measurement("launch", "one-element add_ replayed from a CUDA graph", "fp32", {"launches": per},
                                    None, skipped=_reason(e)))
    return rows


def _backends(torch: Any) -> list[tuple[str, Any]]:
    from torch.nn.attention import SDPBackend

    names = ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH")
    return [(n.lower(), getattr(SDPBackend, n)) for n in names if hasattr(SDPBackend, n)]


def _sdpa_rows(timer: Timer, kind: str, shape: dict[str, Any], dt: str) -> list[dict[str, Any]]:
    """One row per SDPA backend that accepts ``shape`` (plus the default dispatch), and for decode the eager
    repeat_kv path."""
    torch = timer.torch
    from torch.nn.attention import sdpa_kernel
    from torch.nn.functional import scaled_dot_product_attention as sdpa

    b, h, hk, q, kv, d = (shape[k] for k in ("batch", "heads", "kv_heads", "q_len", "kv_len", "head_dim"))
    dtype = _dtype(torch, dt)
    Q = torch.randn(b, h, q, d, device=timer.device, dtype=dtype)
    K = torch.randn(b, hk, kv, d, device=timer.device, dtype=dtype)
    V = torch.randn(b, hk, kv, d, device=timer.device, dtype=dtype)
    causal = bool(shape.get("causal", False))
    gqa = {"enable_gqa": True} if hk != h else {}
    flops = attention_flops(shape)
    nbytes = float(Q.element_size() * (2 * Q.numel() + K.numel() + V.numel()))
    label = "x".join(str(shape[k]) for k in ("batch", "heads", "kv_heads", "q_len", "kv_len", "head_dim"))
    rows = []
    for bname, backend in [("default", None), *_backends(torch)]:
        name = f"{kind.split('_')[1]} b,h,hkv,q,kv,d={label}{' causal' if causal else ''}"

        def call(backend: Any = backend) -> Any:
            if backend is None:
                return sdpa(Q, K, V, is_causal=causal, **gqa)
            with sdpa_kernel(backend):
                return sdpa(Q, K, V, is_causal=causal, **gqa)

        try:
            call()
            rows.append(measurement(kind, name, dt, shape, timer(call), backend=f"sdpa:{bname}", flops=flops,
                                    bytes=nbytes))
        except Exception as e:  # noqa: BLE001 - the backend refuses this shape: record why
            rows.append(measurement(kind, name, dt, shape, None, backend=f"sdpa:{bname}",
                                    skipped=_reason(e)))
    if kind == "attention_decode":
        def eager() -> Any:  # Hugging Face eager attention: K/V expanded per query head, scores through memory
            k = K.repeat_interleave(h // hk, dim=1) if hk != h else K
            v = V.repeat_interleave(h // hk, dim=1) if hk != h else V
            s = torch.matmul(Q, k.transpose(-1, -2)) * (d ** -0.5)
            return torch.matmul(torch.softmax(s.float(), dim=-1).to(dtype), v)

        name = f"decode b,h,hkv,q,kv,d={label}"
        try:
            rows.append(measurement(kind, name, dt, shape, timer(eager), backend="eager:repeat_kv+matmul+softmax",
                                    flops=flops, bytes=nbytes))
        except Exception as e:  # noqa: BLE001
            rows.append(measurement(kind, name, dt, shape, None, backend="eager:repeat_kv+matmul+softmax",
                                    skipped=_reason(e)))
    return rows


def measure_attention(timer: Timer, dry_run: bool, dt: str = "fp16", budget: Budget | None = None,
                      sm_count: int = 108) -> list[dict[str, Any]]:
    """SDPA prefill (FlashAttention-2 paper grid, GQA prefills) and decode (one query token) per backend."""
    rows = []
    for kind, shapes in (("attention_prefill", attention_prefill_shapes(dry_run)),
                         ("attention_decode", attention_decode_shapes(dry_run, sm_count))):
        for shape in shapes:
            if budget is not None and budget.spent():
                rows.append(measurement(kind, f"{kind.split('_')[1]} {shape}", dt, shape, None,
                                        skipped=budget.reason()))
                continue
            rows += _sdpa_rows(timer, kind, shape, dt)
    return rows


def _build_model(torch: Any, spec: dict[str, Any], device: str, dtype: Any) -> Any:
    import transformers

    args = {k: v for k, v in spec.items() if k != "arch"}
    cfg = transformers.GPT2Config(**args) if spec["arch"] == "gpt2" else transformers.LlamaConfig(**args)
    with torch.device(device):
        model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    return model.eval()


def built_models(timer: Timer, dry_run: bool, models: list[str], kind: str, rows: list[dict[str, Any]],
                 label: str = " (build)") -> Iterator[tuple[str, Any]]:
    """(name, fp16 model on the timer's device) for each of ``models`` that has a config, built one at a time; a model
    that fails to build is recorded in ``rows`` as a skipped ``kind`` row. The caller drops its own reference at the
    end of each iteration (``model = None``), so that the weights are freed before the next model is built."""
    torch = timer.torch
    configs = model_configs(dry_run)
    for mname in models:
        if mname not in configs:
            continue
        try:
            model = _build_model(torch, configs[mname], timer.device, torch.float16)
        except Exception as e:  # noqa: BLE001 - one model that fails to build must not end a long GPU run
            rows.append(measurement(kind, f"{mname}{label}", "fp16", {"model": mname}, None, skipped=_reason(e)))
            continue
        yield mname, model
        model = None
        if timer.cuda:
            torch.cuda.empty_cache()


def measure_decode_steps(timer: Timer, dry_run: bool, models: list[str], contexts: list[int],
                         compile_: bool, budget: Budget | None = None, power: bool = False) -> list[dict[str, Any]]:
    """One decode step (batch 1, fp16) per model, context and variant; with ``power``, the board power while each
    variant repeats for ~2 s."""
    torch = timer.torch
    rows = []
    try:
        import transformers
    except Exception as e:  # noqa: BLE001 - no (working) transformers: record it, keep the rest of the run
        return [measurement("decode_step", f"{m} (build)", "fp16", {"model": m}, None, skipped=_reason(e))
                for m in models]

    def watts(fn: Callable[[], Any]) -> dict[str, Any]:
        if not power:
            return {}
        sampler = PowerSampler(int(timer.device.split(":")[1]) if ":" in timer.device else 0)
        sustain(fn, 2.0, timer.sync, sampler)
        summary = sampler.summary()
        return {"board_power_w": summary} if summary else {}
    repeats = max(5, timer.repeats // 2)
    for mname, model in built_models(timer, dry_run, models, "decode_step", rows):
        params = sum(p.numel() for p in model.parameters())
        for ctx in contexts:
            base = {"model": mname, "batch": 1, "context": ctx, "params": params}
            if budget is not None and budget.spent():
                rows.append(measurement("decode_step", f"{mname} ctx={ctx} (all variants)", "fp16", base, None,
                                        skipped=budget.reason()))
                continue
            prompt = torch.randint(0, 100, (1, ctx), device=timer.device)
            tok = torch.randint(0, 100, (1, 1), device=timer.device)
            # eager, dynamic cache: each timed step appends one token, then the cache is cropped back (views only)
            try:
                with torch.inference_mode():
                    out = model(input_ids=prompt, use_cache=True)
                    cache = out.past_key_values

                    def step(cache: Any = cache, model: Any = model, tok: Any = tok) -> Any:
                        r = model(input_ids=tok, past_key_values=cache, use_cache=True)
                        cache.crop(-1)  # drop the new token again: every timed step does the same work
                        return r

                    samples = timer(step, flush=False, repeats=repeats)
                    extra = watts(step)
                rows.append(measurement("decode_step", f"{mname} ctx={ctx} eager dynamic cache", "fp16",
                                        {**base, "variant": "eager"}, samples, backend="transformers eager", **extra))
            except Exception as e:  # noqa: BLE001 - one failing variant must not end a long GPU run: record why
                rows.append(measurement("decode_step", f"{mname} ctx={ctx} eager dynamic cache", "fp16",
                                        {**base, "variant": "eager"}, None, skipped=_reason(e)))
            # static cache: every timed step appends one token at the next slot; the cache holds ctx + all steps
            # (attention runs over the whole static length, masked: the same work each step)
            variants = [("eager_static", False)] + ([("compiled_cudagraphs", True)] if compile_ else [])
            for variant, compiled in variants:
                name = f"{mname} ctx={ctx} {variant.replace('_', ' ')}"
                try:
                    with torch.inference_mode():
                        slots = ctx + 2 * (timer.warmup + repeats) + 8 + (POWER_CALLS if power else 0)
                        cache = transformers.StaticCache(config=model.config, max_cache_len=slots)
                        model(input_ids=prompt, past_key_values=cache, use_cache=True)
                        fwd = model.forward
                        if compiled:
                            fwd = torch.compile(model.forward, mode="reduce-overhead", fullgraph=False)

                        def sstep(fwd: Any = fwd, cache: Any = cache, tok: Any = tok) -> Any:
                            return fwd(input_ids=tok, past_key_values=cache, use_cache=True)

                        samples = timer(sstep, flush=False, repeats=repeats)
                        extra = watts(sstep)
                    rows.append(measurement("decode_step", name, "fp16", {**base, "variant": variant, "static_slots": slots},
                                            samples, **extra,
                                            backend="torch.compile reduce-overhead" if compiled else "transformers eager"))
                except Exception as e:  # noqa: BLE001 - compile/static-cache support varies by version: record why
                    rows.append(measurement("decode_step", name, "fp16", {**base, "variant": variant}, None,
                                            skipped=_reason(e)))
        model = None  # free this model's weights before the next one is built
    return rows


def measure_generation(timer: Timer, dry_run: bool, models: list[str], context: int, batches: list[int],
                       budget: Budget | None = None) -> list[dict[str, Any]]:
    """Time per generated token of short generations whose KV cache grows as a real one does: ``GROWTH_STEPS`` greedy
    decode steps after a ``context``-token prompt, per batch size, fp16, eager. Two caches: transformers' dynamic
    cache (``torch.cat`` of every layer's K and V at every step, as its default cache and the legacy tuple cache do;
    hwsim ``--set kv_update=concat``) and a static cache written in place (hwsim's default).
    One timed sample is the whole generation (the dynamic cache is cropped back afterwards, views only), divided by
    its steps; their difference at batch 16 is what the cache growth costs on this machine."""
    torch = timer.torch
    try:
        import transformers
    except Exception as e:  # noqa: BLE001 - no (working) transformers: record it, keep the rest of the run
        return [measurement("decode_step", f"{m} generation (build)", "fp16", {"model": m}, None, skipped=_reason(e))
                for m in models]
    steps = 4 if dry_run else GROWTH_STEPS
    repeats = max(3, timer.repeats // 6)
    rows: list[dict[str, Any]] = []
    for mname, model in built_models(timer, dry_run, models, "decode_step", rows, " generation (build)"):
        params = sum(p.numel() for p in model.parameters())
        for batch in batches:
            base = {"model": mname, "batch": batch, "context": context, "steps": steps, "params": params}
            label = f"{mname} b={batch} ctx={context}+{steps}"
            if budget is not None and budget.spent():
                rows.append(measurement("decode_step", f"{label} (both caches)", "fp16", base, None,
                                        skipped=budget.reason()))
                continue
            prompt = torch.randint(0, 100, (batch, context), device=timer.device)
            tok = torch.randint(0, 100, (batch, 1), device=timer.device)
            try:
                with torch.inference_mode():
                    cache = model(input_ids=prompt, use_cache=True).past_key_values

                    def grow(cache: Any = cache, model: Any = model, tok: Any = tok) -> Any:
                        nxt = tok
                        for _ in range(steps):
                            nxt = model(input_ids=nxt, past_key_values=cache, use_cache=True).logits[:, -1:].argmax(-1)
                        cache.crop(-steps)  # back to the prompt's cache: every sample does the same work
                        return nxt

                    samples = timer(grow, flush=False, repeats=repeats, per_call=steps, warmup=1)
                rows.append(measurement("decode_step", f"{label} eager growing dynamic cache", "fp16",
                                        {**base, "variant": "eager_growing"}, samples, backend="transformers eager"))
            except Exception as e:  # noqa: BLE001 - one failing variant must not end a long GPU run: record why
                rows.append(measurement("decode_step", f"{label} eager growing dynamic cache", "fp16",
                                        {**base, "variant": "eager_growing"}, None, skipped=_reason(e)))
            try:
                with torch.inference_mode():
                    # every sample writes the next slots; attention runs over the whole static length (masked),
                    # so every step does the same work (hwsim: a decode over static_slots keys, written in place)
                    slots = context + steps * (1 + repeats) + 8
                    cache = transformers.StaticCache(config=model.config, max_cache_len=slots)
                    model(input_ids=prompt, past_key_values=cache, use_cache=True)

                    def fill(cache: Any = cache, model: Any = model, tok: Any = tok) -> Any:
                        nxt = tok
                        for _ in range(steps):
                            nxt = model(input_ids=nxt, past_key_values=cache, use_cache=True).logits[:, -1:].argmax(-1)
                        return nxt

                    samples = timer(fill, flush=False, repeats=repeats, per_call=steps, warmup=1)
                rows.append(measurement("decode_step", f"{label} eager static cache", "fp16",
                                        {**base, "variant": "eager_static_growing", "static_slots": slots}, samples,
                                        backend="transformers eager"))
            except Exception as e:  # noqa: BLE001
                rows.append(measurement("decode_step", f"{label} eager static cache", "fp16",
                                        {**base, "variant": "eager_static_growing"}, None, skipped=_reason(e)))
        model = None  # free this model's weights before the next one is built
    return rows


def measure_prefill_steps(timer: Timer, dry_run: bool, models: list[str], prompts: list[int], compile_: bool,
                          budget: Budget | None = None) -> list[dict[str, Any]]:
    """One short prefill (batch 1, fp16, no cache kept) per model, prompt length and variant (eager; compiled with
    CUDA graphs, ``torch.compile(mode="reduce-overhead")``)."""
    torch = timer.torch
    rows: list[dict[str, Any]] = []
    repeats = max(5, timer.repeats // 2)
    chosen = [m for m in models if m != "gpt2" or dry_run]  # GPT-2 small: its decode rows suffice
    for mname, model in built_models(timer, dry_run, chosen, "prefill_step", rows):
        for prompt_len in prompts:
            base = {"model": mname, "batch": 1, "prompt": prompt_len}
            ids = torch.randint(0, 100, (1, prompt_len), device=timer.device)
            for variant, compiled in [("eager", False)] + ([("compiled_cudagraphs", True)] if compile_ else []):
                name = f"{mname} prefill {prompt_len} {variant.replace('_', ' ')}"
                if budget is not None and budget.spent():
                    rows.append(measurement("prefill_step", name, "fp16", {**base, "variant": variant}, None,
                                            skipped=budget.reason()))
                    continue
                try:
                    with torch.inference_mode():
                        fwd = torch.compile(model.forward, mode="reduce-overhead") if compiled else model.forward
                        samples = timer(lambda fwd=fwd, ids=ids: fwd(input_ids=ids, use_cache=False), flush=False,
                                        repeats=repeats)
                    rows.append(measurement("prefill_step", name, "fp16", {**base, "variant": variant}, samples,
                                            backend="torch.compile reduce-overhead" if compiled else "transformers eager"))
                except Exception as e:  # noqa: BLE001 - record why a variant failed and go on
                    rows.append(measurement("prefill_step", name, "fp16", {**base, "variant": variant}, None,
                                            skipped=_reason(e)))
        model = None  # free this model's weights before the next one is built
    return rows


def idle_power(device: str) -> dict[str, Any] | None:
    """Board power while nothing runs (1 s of nvidia-smi samples), or None without nvidia-smi."""
    if not device.startswith("cuda"):
        return None
    sampler = PowerSampler(int(device.split(":")[1]) if ":" in device else 0)
    with sampler:
        time.sleep(1.0)
    return sampler.summary()


def device_info(torch: Any, device: str) -> dict[str, Any]:
    """Name, driver, CUDA, capability, SMs and memory of the device."""
    if not device.startswith("cuda"):
        return {"name": f"CPU {platform.processor() or platform.machine()}", "type": "cpu"}
    p = torch.cuda.get_device_properties(device)
    driver = None
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        pass
    return {"name": p.name, "type": "cuda", "driver": driver, "cuda": torch.version.cuda,
            "capability": f"{p.major}.{p.minor}", "sm_count": p.multi_processor_count,
            "total_memory_bytes": p.total_memory, "l2_cache_bytes": getattr(p, "L2_cache_size", None)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes (CPU if no GPU); not a calibration")
    parser.add_argument("--device", default=None, help="cuda, cuda:1 or cpu (default: cuda if available)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per measurement (default 30; dry run 3)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed calls first (default 5; dry run 1)")
    parser.add_argument("--only", default=",".join(GROUPS), help=f"comma list of {', '.join(GROUPS)}")
    parser.add_argument("--models", default="gpt2,gpt2-xl,llama2-7b")
    parser.add_argument("--contexts", default="128,512", help="decode-step KV-cache lengths (GPT-2: < 1024)")
    parser.add_argument("--prompts", default="128,512", help="prefill-step prompt lengths")
    parser.add_argument("--batches", default="1,16", help="batch sizes of the growing-cache generations")
    parser.add_argument("--generation-models", default="llama2-7b",
                        help="models of the growing-cache generations (prompt: the last --contexts length)")
    parser.add_argument("--budget-s", type=float, default=None, help="wall-clock limit of the whole run (default 420 s; "
                        "none in a dry run): what is left is recorded as skipped")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile / CUDA-graph decode variant")
    parser.add_argument("--out", default=None, help="output JSON (default hardware/calibration/<gpu-name>.json, or a "
                        "timestamped sibling when that file exists)")
    args = parser.parse_args(argv)

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("no CUDA device; use --dry-run (CPU) to check the script")
    if not device.startswith("cuda") and not args.dry_run:
        parser.error("a real measurement needs an NVIDIA GPU; use --dry-run on CPU")
    if args.dry_run:  # tiny models at tiny lengths: the dry run checks the script and the file, in seconds
        args.contexts = args.contexts if args.contexts != "128,512" else "16"
        args.prompts = args.prompts if args.prompts != "128,512" else "16"
    repeats = args.repeats or (3 if args.dry_run else 30)
    warmup = args.warmup if args.warmup is not None else (1 if args.dry_run else 5)
    only = {g.strip() for g in args.only.split(",") if g.strip()}
    if only - set(GROUPS):
        parser.error(f"--only: unknown {', '.join(sorted(only - set(GROUPS)))}")
    info = device_info(torch, device)
    info["idle_power_w"] = idle_power(device)
    budget = Budget(args.budget_s if args.budget_s is not None else (None if args.dry_run else 420.0))
    timer = Timer(device, warmup, repeats, (8 << 20) if args.dry_run else (256 << 20))
    sms = info.get("sm_count") or 4
    rows: list[dict[str, Any]] = []
    started = time.time()
    models = [m for m in args.models.split(",") if m]
    compile_ = not args.no_compile and timer.cuda
    steps: list[tuple[str, Callable[[], list[dict[str, Any]]]]] = [
        ("launch", lambda: measure_launch(timer)),
        ("copy", lambda: measure_copy(timer, args.dry_run)),
        ("gemm", lambda: measure_gemms(timer, sms, args.dry_run, ("fp16", "bf16", "fp8"), budget)),
        ("attention", lambda: measure_attention(timer, args.dry_run, budget=budget, sm_count=sms)),
        ("decode", lambda: measure_decode_steps(timer, args.dry_run, models, [int(c) for c in args.contexts.split(",")],
                                                compile_, budget, power=timer.cuda)),
        ("generation", lambda: measure_generation(timer, args.dry_run, [m for m in args.generation_models.split(",") if m],
                                                  int(args.contexts.split(",")[-1]),
                                                  [int(b) for b in args.batches.split(",") if b], budget)),
        ("prefill", lambda: measure_prefill_steps(timer, args.dry_run, models, [int(c) for c in args.prompts.split(",")],
                                                  compile_, budget)),
        # the Llama-2-7B shapes only (each shape's coordinate-descent tuning takes seconds of device time)
        ("gemv", lambda: measure_inductor_gemvs(timer, args.dry_run, [m for m in models if m == "llama2-7b"],
                                                budget=budget) if compile_ or args.dry_run else []),
    ]
    for group, fn in steps:
        if group in only:
            t0 = time.time()
            new = fn()
            rows += new
            print(f"[{group}] {len(new)} measurements in {time.time() - t0:.1f} s", file=sys.stderr)
    versions = {"torch": torch.__version__, "python": platform.python_version()}
    try:
        import transformers

        versions["transformers"] = transformers.__version__
    except ImportError:
        pass
    settings = {"warmup": warmup, "repeats": repeats, "timer": "cuda events" if timer.cuda else "perf_counter",
                "budget_s": budget.seconds,
                "l2_flush_bytes": 0 if timer.flush_buf is None else timer.flush_buf.numel() * 4,
                "l2_flush": "read (sum of the buffer): leaves clean lines",
                "elapsed_s": round(time.time() - started, 1)}
    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    doc = calibration_document(info, command, settings, rows, args.dry_run, versions)
    problems = validate_document(doc)
    if problems:
        print("warning: " + "; ".join(problems), file=sys.stderr)
    if args.out:
        out = Path(args.out)
    elif args.dry_run:
        out = Path(tempfile.gettempdir()) / f"dry-run-{file_name(info['name'])}"
    else:
        out = CALIBRATION_DIR / file_name(info["name"])
        if out.exists():  # never replace a kept measurement unless --out names it
            out = out.with_name(f"{out.stem}-{time.strftime('%Y%m%d-%H%M%S')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1))
    print(table(rows))
    print(f"wrote {out} ({len(rows)} measurements, {settings['elapsed_s']} s)")
    return doc


if __name__ == "__main__":
    main()
