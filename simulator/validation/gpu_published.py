"""Published GPU measurements (``hardware/calibration/published.yaml``) against hwsim's predictions.

Each point is a measured number someone published with its setup (cuBLAS GEMM TFLOP/s by shape, a streaming
kernel's GB/s, decode-attention kernel microseconds, decode-step or whole-generation latency), with its source.
Points a preset field was calibrated from carry ``calibrates`` and are reported as circular; all others are
independent checks. Errors are on time (``predicted / measured - 1``): a TFLOP/s or GB/s figure is turned into the
time it implies.
"""

from __future__ import annotations

import copy
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from hardware.dtypes import parse_precision
from hardware.gpu.attention import flash_attention2, flash_decoding
from hardware.gpu.gemm import gemm
from hardware.gpu.kernels import memory_bound
from hardware.targets import load_target as _load_target
from hardware.yaml_file import read_yaml
from mapping.op_costs import Precision
from mapping.workloads import Model
from simulator.simulate import simulate
from simulator.validation import checkout_root, gpu_eager

ROOT = checkout_root()
#: presets are immutable: parse each once per process
load_target = lru_cache(maxsize=None)(_load_target)
PUBLISHED = ROOT / "hardware" / "calibration" / "published.yaml"
EXAMPLES = ROOT / "examples"

#: report category of each point kind (decode-step targets of the issue: GEMMs and decode steps)
CATEGORY = {
    "gemm": "measured (published): GEMM",
    "stream": "measured (published): DRAM streaming",
    "attention_decode": "measured (published): decode attention",
    "attention_chunk_decode": "measured (published): chunked-prefill + decode attention",
    "decode_step": "measured (published): decode step / generation",
    "generate": "measured (published): decode step / generation",
    "prefill": "measured (published): prefill / first token",
}


@lru_cache(maxsize=8)
def _parsed(path: str, mtime_ns: int) -> dict[str, Any]:
    """The file parsed once per version (it is large; the project's reader, with its duplicate-key check)."""
    return read_yaml(Path(path))


def _document(path: Path = PUBLISHED) -> dict[str, Any]:
    path = Path(path)
    doc = copy.deepcopy(_parsed(str(path), path.stat().st_mtime_ns))  # callers may keep and change what they get
    if doc.get("schema") != "hwsim-gpu-published/1":
        raise ValueError(f"{path}: schema must be hwsim-gpu-published/1")
    return doc


def load_points(path: Path = PUBLISHED) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The sources and points of the published-measurements file."""
    doc = _document(path)
    return doc["sources"], doc["points"]


@cache
def load_harnesses(path: Path = PUBLISHED) -> dict[str, dict[str, Any]]:
    """How each source timed a call (the file's ``harnesses``: ``isolated`` or ``graph``), by name."""
    return _document(path).get("harnesses", {})


def harness_offset_s(point: dict[str, Any], target: Any, launches: int = 1) -> float:
    """Seconds the point's timing harness adds to (or takes from) hwsim's time of one call of ``launches`` kernels
    on ``target``.

    hwsim's kernel time carries the preset's ``launch_overhead``: the per-kernel cost of back-to-back launches
    (te42kyfo/gpu-benches gpu-small-kernels), which is what a loop of calls timed as a whole measures.
    - ``isolated`` (``triton.testing.do_bench``: an L2 flush, then one call between two CUDA events, median over
      calls): a call costs that machine's floor, measured with the same harness on a near-empty kernel
      (``floor_us`` for a kernel moving ``floor_bytes``), instead of the back-to-back launch cost. The offset is
      that floor minus hwsim's own time for the near-empty kernel, so the floor point itself is circular.
    - ``graph`` (``triton.testing.do_bench_cudagraph``: calls replayed from one CUDA graph): the preset's
      ``graph_launch_overhead`` per kernel instead of ``launch_overhead`` (so ``launches`` times the difference; xformers'
      decode benchmark times ``torch.cuda.CUDAGraph.replay`` the same way).
    Points without a harness are timed as back-to-back launches (offset 0).
    """
    name = point.get("harness")
    if not name:
        return 0.0
    h = load_harnesses()[name]
    if h["kind"] == "isolated":
        return h["floor_us"] * 1e-6 - memory_bound(target, "floor", h["floor_bytes"]).time_s
    if h["kind"] == "graph":
        return launches * (target.with_graph_launches().launch_overhead.si - target.launch_overhead.si)
    raise ValueError(f"{PUBLISHED}: harness {name}: kind must be isolated or graph")


_models: dict[str, Model] = {}


def _model(name: str) -> Model:
    if name not in _models:
        _models[name] = Model(str(EXAMPLES / name))
    return _models[name]


def point_formats(point: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(weights, activations, KV cache) formats of a point as the CLI reads them (fp8 -> float8e4m3, ...; None: the
    target's native format); an unknown name is an error naming the point's source and field."""
    return tuple(parse_precision(point[f], f"published point {point['source']} {f}") if point.get(f) else None
                 for f in ("weights", "activations", "kv_cache"))  # type: ignore[return-value]


def predict(point: dict[str, Any]) -> tuple[float, float, str, str]:
    """(predicted seconds, measured seconds, item label, hwsim note) for one point."""
    t = load_target(point["target"])
    kind = point["kind"]
    if kind == "gemm":
        m, n, k = point["m"], point["n"], point["k"]
        if point["dtype"] == "fp8":  # e4m3 A and B (1 B each), a 16-bit output
            r = gemm(t, 1, m, k, n, "fp8", 1.0, 1.0, 2.0)
        else:
            r = gemm(t, 1, m, k, n, point["dtype"])
        measured = 2.0 * m * n * k / (point["tflops"] * 1e12)
        shape = f"{m}^3" if m == n == k else f"m={m} n={n} k={k}"
        return r.time_s + harness_offset_s(point, t), measured, f"{point['dtype']} {shape} on {t.name}", \
            f"{r.bound}, tile {r.detail.get('tile')}, split-K {r.detail.get('split_k')}, waves {r.detail.get('waves')}" \
            + _harness_note(point, t)
    if kind == "stream":
        r = memory_bound(t, "stream", point["bytes"])
        size = f"{point['bytes'] / 1e9:.2f} GB" if point["bytes"] >= 1e8 else f"{point['bytes'] / 1e3:.1f} kB"
        return r.time_s + harness_offset_s(point, t), point["bytes"] / (point["gbps"] * 1e9), \
            f"{size} streamed on {t.name}", "bytes / (datasheet x dram_efficiency)" + _harness_note(point, t)
    if kind == "attention_decode":
        args = (t, point["batch"], point["heads"], point["kv_heads"])
        if point["kernel"] == "fa2":
            r = flash_attention2(*args, 1, point["kv_len"], point["head_dim"], causal=False)
        else:
            r = flash_decoding(*args, point["kv_len"], point["head_dim"], slots_per_sm=point.get("slots_per_sm", 2),
                               entry=point.get("entry", "kvcache"))
        label = f"{point['kernel']} batch {point['batch']} x {point['kv_len']} keys ({point['heads']}q/{point['kv_heads']}kv)"
        kernel = r.detail.get("kernel", "split") if point["kernel"] != "fa2" else ""
        return r.time_s + harness_offset_s(point, t, r.launches), point["us"] * 1e-6, label, f"{r.bound}-bound" + (
            f", {r.detail.get('splits')} splits ({kernel} kernel)" if kernel else "") + _harness_note(point, t)
    if kind == "attention_chunk_decode":  # a prefill chunk's FA2 forward kernel, then the decode batch's kernel
        heads, kv_heads, d = point["heads"], point["kv_heads"], point["head_dim"]
        pre = flash_attention2(t, 1, heads, kv_heads, point["chunk"], point["keys"], d, causal=True)
        dec = flash_decoding(t, point["decode_batch"], heads, kv_heads, point["decode_context"], d)
        return pre.time_s + dec.time_s, point["ms"] * 1e-3, \
            (f"FA2 chunk of {point['chunk']} after {point['keys'] - point['chunk']} keys, then decode batch "
             f"{point['decode_batch']} x {point['decode_context']} keys ({heads}q/{kv_heads}kv)"), \
            (f"prefill {pre.time_s * 1e3:.3f} ms ({pre.bound}-bound) + decode {dec.time_s * 1e3:.3f} ms "
             f"({dec.bound}-bound, {dec.detail['splits']} split, {dec.detail['tiles']} CTAs in {dec.detail['waves']} waves)")
    options = {"launch": point.get("launch", "stream"), "stack": point.get("stack", "kernels")}
    options.update(point.get("options", {}))  # other GPU options of the source's setup (quant_group, ...)
    extra = _kernel_options(point)
    model = _model(point["model"])
    batch = point.get("batch", 1)
    formats = point_formats(point)
    precision = Precision(*formats)
    at = f", batch {batch}" if batch > 1 else ""
    tp = int(options.get("tp", 1))
    at += f", tp {tp}" if tp > 1 else ""  # tensor-parallel over tp GPUs: the time is one GPU's (all in step)
    fmt = f", {precision.weights} weights" if precision.weights else ""
    if kind == "prefill":  # time to the first token: the prompt's forward pass, whose logits give that token
        r = simulate(model, t, "prefill", batch, point["prompt"], 1, precision, options)
        bare = kernel_only_s(point["model"], t.name, "prefill", batch, point["prompt"], 1, options["launch"],
                             *formats, extra=extra)
        fmts = point.get("precision", "fp16")
        return r.latency_s, point["ms"] * 1e-3, \
            f"{Path(point['model']).stem} first token, {point['prompt']}-token prompt{at}, {fmts}, {t.name}, " \
            f"stack {options['stack']}", f"one prefill; kernels alone {bare * 1e3:.2f} ms"
    if kind == "decode_step":  # per-token time at the middle of the generation
        context = point["prompt"] + point["gen"] // 2
        r = simulate(model, t, "decode", batch, context, 1, precision, options)
        bare = step_kernels_s(point)
        predicted, note = r.latency_s, f"one decode step at the generation's mean context; kernels alone {bare * 1e3:.2f} ms"
        if point.get("includes_prefill"):  # published per-token time = (prefill + gen - 1 steps) / gen
            pre = simulate(model, t, "prefill", batch, point["prompt"], 1, precision, options).latency_s
            predicted = (pre + (point["gen"] - 1) * r.latency_s) / point["gen"]
            note = (f"(prefill {pre * 1e3:.1f} ms + {point['gen'] - 1} decode steps at the mean context) / {point['gen']}; "
                    f"one step's kernels alone {bare * 1e3:.2f} ms")
        return predicted, point["ms_per_token"] * 1e-3, \
            f"{Path(point['model']).stem} decode step, ctx {context}{at}{fmt}, {t.name}, stack {options['stack']}", note
    r = simulate(model, t, "generate", batch, point["prompt"], point["gen"], precision, options)
    bare = kernel_only_s(point["model"], t.name, "generate", batch, point["prompt"], point["gen"], options["launch"],
                         *formats, extra=extra)
    return r.latency_s, point["total_ms"] * 1e-3, \
        f"{Path(point['model']).stem} {point['prompt']} in / {point['gen']} out{at}{fmt}, {t.name}, stack {options['stack']}", \
        f"prefill + {point['gen'] - 1} decode steps; kernels alone {bare * 1e3:.2f} ms"


def _harness_note(point: dict[str, Any], target: Any) -> str:
    if not point.get("harness"):
        return ""
    return f"; harness {point['harness']} ({harness_offset_s(point, target) * 1e6:+.2f} us per call)"


def _kernel_options(point: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The point's own GPU options for a run with ``stack=kernels`` (host-time overrides need a host: dropped)."""
    return tuple(sorted((k, v) for k, v in point.get("options", {}).items()
                        if k not in ("host_op_us", "host_step_us", "eager_dispatch", "host_dispatches")))


def step_kernels_s(point: dict[str, Any]) -> float:
    """Seconds of a decode_step point's one step (at the generation's mean context) with ``stack=kernels``."""
    extra = _kernel_options(point)
    return kernel_only_s(point["model"], point["target"], "decode", point.get("batch", 1),
                         point["prompt"] + point["gen"] // 2, 1, point.get("launch", "stream"), *point_formats(point),
                         extra=extra)


@lru_cache(maxsize=64)
def kernel_only_s(model: str, target: str, phase: str, batch: int, prompt: int, gen: int, launch: str,
                  weights: str | None = None, activations: str | None = None, kv_cache: str | None = None,
                  extra: tuple[tuple[str, Any], ...] = ()) -> float:
    """Seconds of the same run with ``stack=kernels`` (no host model): what the stack adds is the difference."""
    return simulate(_model(model), load_target(target), phase, batch, prompt, gen,
                    Precision(weights=weights, activations=activations, kv_cache=kv_cache),
                    {"launch": launch, "stack": "kernels", **dict(extra)}).latency_s


def rows(comparison_cls: type, points: list[dict[str, Any]] | None = None) -> list[Any]:
    """Every point (or those given) as a ``comparison_cls`` (simulator.validation.gpu.Comparison), times in us."""
    sources, every = load_points()
    out = []
    for p in every if points is None else points:
        held_out = None
        if gpu_eager.is_eager(p):  # the eager host time per op of the other machines (gpu_eager: leave-one-out)
            held_out = gpu_eager.held_out_host_op_us(p)
            predicted, measured, label, note = predict(dict(p, options={**p.get("options", {}), "host_op_us": held_out}))
            own = gpu_eager.machine_values(in_unit=gpu_eager.unit(p))[gpu_eager.machine(p)][0]
            per = ("per ATen dispatch, " + str(p["options"]["host_dispatches"]) + " per step"
                   if gpu_eager.unit(p) == "dispatch" else "per op")
            note += (f"; host time {per} {held_out:.1f} us, the median of the other machines' (leave-one-machine-out; "
                     + (f"this machine implies {own:.1f} us)" if own is not None else "this machine implies none: "
                        "its measured steps are not above hwsim's kernels)"))
        else:
            predicted, measured, label, note = predict(p)
        category = CATEGORY[p["kind"]]
        if p.get("category"):
            category += f" ({p['category']})"
        status = "circular" if p.get("calibrates") else "independent"
        if p.get("calibrates"):
            note += f"; calibrates {p['calibrates']}"
        out.append(comparison_cls(category, label, predicted * 1e6, measured * 1e6, "us", p["source"], status, note,
                                  {"point": p, "source_text": sources[p["source"]]}))
    return out
