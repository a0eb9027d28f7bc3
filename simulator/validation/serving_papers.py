"""Iteration costs against the measurements the Sarathi-Serve and Vidur authors committed to their repositories.

Serving simulators (Vidur, and hwsim's :mod:`simulator.serving`) stand on one number per iteration: the time of a
batch of a given composition. The Sarathi-Serve (Agrawal et al., OSDI'24) and Vidur (Agrawal et al., MLSys'24)
authors committed measured batch and operator times with their artifacts; hwsim rebuilds each setup (the model's
published architecture as an ONNX graph built from its config, the GPU, tensor parallelism, the batch) and costs
it with the serving cost model (:class:`simulator.serving.cost_model.IterationCoster`, exact shapes). Nothing here
was used to set a constant.

Sources (values copied below with their units):

- **Sarathi-Serve artifact**, github.com/microsoft/sarathi-serve @02d2567 ``osdi-experiments/``: Yi-34B
  (``01-ai/Yi-34B-200K``), tensor parallel 2 on A100 80GB PCIe GPUs joined pairwise by NVLink (Azure NC96ads v4,
  the READMEs): ``figure-2/prefill.csv`` (one prompt of N tokens), ``figure-2/decode.csv`` (decode batches of B
  requests with about 1,020 tokens cached: ``operation_time_split_runs.sh`` makes 1,024-token requests with a
  prefill:decode ratio of 255), ``table-2/results.csv`` (a 1,024-token prefill, 4 decodes, and the hybrid of
  1,021 prefill tokens with 3 decodes), ``figure-9/chunking-overhead.csv`` (a prompt prefilled in chunks of 512,
  1,024 or 2,048 tokens, relative to one pass).
- **Vidur profiles**, github.com/microsoft/vidur @7d47513 ``data/profiling/compute/a100/meta-llama/Llama-2-7b-hf/
  mlp.csv``: CUDA-event medians (ms) of each token-level operator of one Llama-2-7B layer on one A100 (the folder
  names only "a100"), tensor parallel 1, for N tokens in the batch.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from hardware.targets import load_target, target_from_dict
from mapping.op_costs import Precision
from mapping.workloads import Model
from simulator.engine import run
from simulator.serving.setup import prepare

ROOT = Path(__file__).resolve().parents[2]
SARATHI = "github.com/microsoft/sarathi-serve @02d2567 osdi-experiments/"
VIDUR = "github.com/microsoft/vidur @7d47513 data/profiling/compute/a100/meta-llama/Llama-2-7b-hf/mlp.csv"

#: figure-2/prefill.csv: prompt tokens -> batch_execution_time (s)
SARATHI_PREFILL_S = {128: 0.04809, 256: 0.12135, 512: 0.10558, 1024: 0.21430, 2048: 0.36603, 4096: 0.75760,
                     8192: 1.86326, 16384: 4.40750}
#: figure-2/decode.csv: decode batch size -> batch_execution_time (s), about 1,020 tokens cached per request
SARATHI_DECODE_S = {1: 0.04680, 2: 0.04750, 4: 0.04885, 8: 0.06968, 16: 0.07725, 32: 0.08790, 64: 0.12781,
                    128: 0.18933}
DECODE_CONTEXT = 1020
#: table-2/results.csv: (prefill tokens, decode tokens) -> batch_execution_time (ms)
SARATHI_TABLE2_MS = {(1024, 0): 217.236, (0, 4): 68.122, (1021, 3): 217.650}
#: figure-9/chunking-overhead.csv: (prompt tokens, chunk) -> prefill time relative to one 16,384-token-chunk pass
SARATHI_CHUNKING = {(2047, 512): 1.1522, (2047, 1024): 1.1746, (2047, 2048): 0.9989,
                    (4095, 512): 1.1889, (4095, 1024): 1.2022, (4095, 2048): 1.0238,
                    (8191, 512): 1.1165, (8191, 1024): 1.1095, (8191, 2048): 0.9368,
                    (16383, 512): 0.9951, (16383, 1024): 0.9609, (16383, 2048): 0.8052}

#: Vidur's Llama-2-7B profile, tp 1: tokens -> medians (ms) of input_layernorm, attn_pre_proj (fused QKV),
#: attn_rope, attn_post_proj, post_attention_layernorm, mlp_up_proj (fused gate+up), mlp_act, mlp_down_proj, add
VIDUR_OPS = ("input_layernorm", "attn_pre_proj", "attn_rope", "attn_post_proj", "post_attention_layernorm",
             "mlp_up_proj", "mlp_act", "mlp_down_proj", "add")
VIDUR_LAYER_MS = {
    1: (0.005, 0.065, 0.005, 0.025, 0.005, 0.116, 0.007, 0.06, 0.002),
    8: (0.004, 0.063, 0.005, 0.025, 0.004, 0.111, 0.008, 0.061, 0.002),
    32: (0.004, 0.066, 0.006, 0.027, 0.005, 0.115, 0.008, 0.065, 0.002),
    128: (0.005, 0.0745, 0.007, 0.032, 0.005, 0.157, 0.011, 0.088, 0.003),
    512: (0.012, 0.234, 0.022, 0.088, 0.012, 0.402, 0.0365, 0.229, 0.007),
    1024: (0.022, 0.475, 0.038, 0.176, 0.022, 0.877, 0.07, 0.431, 0.012),
    2048: (0.053, 0.979, 0.076, 0.301, 0.055, 1.694, 0.135, 0.851, 0.028),
    4096: (0.105, 1.911, 0.149, 0.611, 0.104, 3.365, 0.266, 1.604, 0.055),
}

#: A100 80GB PCIe, the Sarathi-Serve testbed: the SXM preset with the PCIe card's memory bandwidth (NVIDIA A100
#: Tensor Core GPU datasheet: 1,935 GB/s for the 80GB PCIe card, 2,039 GB/s for SXM). Its NVLink bridge joins
#: two cards at 600 GB/s (the same datasheet), the preset's ``nvlink_bandwidth``; clocks and tensor peaks are equal.
PCIE_BANDWIDTH_GBS = 1935


def _quiet_model(name: str) -> Model:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Model(str(ROOT / "examples" / name))


def a100_pcie() -> Any:
    """The a100-80gb preset with the 80GB PCIe card's memory bandwidth."""
    base = load_target("a100-80gb").model_dump(mode="json")
    base.update(name="a100-80gb-pcie", description="NVIDIA A100 80GB PCIe (a100-80gb with the PCIe card's bandwidth)")
    base["dram_bandwidth"] = {"value": PCIE_BANDWIDTH_GBS, "unit": "GB/s",
                              "source": "NVIDIA A100 Tensor Core GPU datasheet, A100 80GB PCIe"}
    return target_from_dict(base, "a100-80gb-pcie")


def _err(sim: float, pub: float) -> float:
    return sim / pub - 1


def sarathi_rows(stack: str = "kernels") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Batch times (rows: what, published, hwsim) and chunking ratios of Yi-34B, tp 2, on A100 80GB PCIe."""
    model = _quiet_model("yi-34b.onnx")
    setup = prepare(model, a100_pcie(), {"tp": 2, "stack": stack}, Precision(), per_octave=0)
    cost = setup.coster.cost
    rows: list[dict[str, Any]] = []
    for n, pub in SARATHI_PREFILL_S.items():
        rows.append({"what": f"prefill {n:,} tokens", "source": "figure-2/prefill.csv", "pub_ms": pub * 1e3,
                     "sim_ms": cost([(n, 0)], []).time_s * 1e3})
    for b, pub in SARATHI_DECODE_S.items():
        rows.append({"what": f"decode batch {b} (~{DECODE_CONTEXT:,} cached)", "source": "figure-2/decode.csv",
                     "pub_ms": pub * 1e3, "sim_ms": cost([], [DECODE_CONTEXT] * b).time_s * 1e3})
    for (p, d), pub in SARATHI_TABLE2_MS.items():
        what = (f"hybrid: {p:,} prefill + {d} decodes" if p and d else f"prefill {p:,} tokens" if p
                else f"decode batch {d} (~1,020 cached)")
        chunks = [(p, 0)] if p else []
        rows.append({"what": what, "source": "table-2/results.csv", "pub_ms": pub,
                     "sim_ms": cost(chunks, [1024 - d] * d).time_s * 1e3})
    chunking = []
    for (n, c), pub in SARATHI_CHUNKING.items():
        whole = cost([(n, 0)], []).time_s
        parts = sum(cost([(min(c, n - s), s)], []).time_s for s in range(0, n, c))
        chunking.append({"prompt": n, "chunk": c, "pub": pub, "sim": parts / whole})
    return rows, chunking


def vidur_rows() -> list[dict[str, Any]]:
    """One Llama-2-7B layer's token-level operators on an A100: Vidur's measured medians against hwsim's kernels."""
    model = _quiet_model("llama2-7b.onnx")
    target = load_target("a100-80gb")
    setup = prepare(model, target, {}, Precision(), per_octave=0)
    session = setup.coster.plugin.session(target, setup.options)
    rows = []
    for n, ms in VIDUR_LAYER_MS.items():
        v = dict(zip(VIDUR_OPS, ms, strict=True))
        linear_v = v["attn_pre_proj"] + v["attn_post_proj"] + v["mlp_up_proj"] + v["mlp_down_proj"]
        # two residual adds per layer; RoPE is left out: hwsim streams it inside the attention kernel
        layer_v = linear_v + v["input_layernorm"] + v["post_attention_layernorm"] + v["mlp_act"] + 2 * v["add"]
        result = run(session.lower(model.prefill(1, n, setup.precision)))
        kernels: dict[str, float] = {}
        for rec in result.records:
            name = rec.task.name
            if ".decoder.3." in name:  # one middle layer (all 32 are alike)
                key = name.split(".decoder.3.", 1)[1]
                kernels[key] = kernels.get(key, 0.0) + (rec.end_s - rec.start_s) * 1e3
        linear_h = sum(t for k, t in kernels.items() if k.endswith("_proj") or k in ("mlp.up", "mlp.down"))
        layer_h = sum(t for k, t in kernels.items() if not k.endswith(".attention"))
        rows.append({"tokens": n, "linear_pub": linear_v, "linear_sim": linear_h, "layer_pub": layer_v,
                     "layer_sim": layer_h})
    return rows


def section() -> list[str]:
    """The report section (markdown lines)."""
    rows, chunking = sarathi_rows()
    eager, _ = sarathi_rows("eager")
    vidur = vidur_rows()
    out = ["", "### Sarathi-Serve's measured batch times (Yi-34B, tensor parallel 2, A100 80GB PCIe)", "",
           f"Source: {SARATHI} (the file named per row). hwsim: `examples/yi-34b.onnx` (60 layers, d 7168, GQA "
           "56/8 heads, SwiGLU 20480, from the model's config), `--parallel tp=2` on a100-80gb with the PCIe card's "
           f"{PCIE_BANDWIDTH_GBS} GB/s (NVIDIA datasheet), fp16 (hwsim's GPU default; fp16 and bf16 run at the same "
           "A100 tensor rate). `kernels`: the GPU kernels alone (the default); "
           "`eager`: with the host time per op and per step of eager PyTorch (`--set stack=eager`, "
           "mapping/gpu/stack.py; its constants come from other measurements).", "",
           "| batch | file | published | hwsim kernels | error | hwsim eager | error |",
           "|---|---|---:|---:|---:|---:|---:|"]
    errs, errs_eager = [], []
    for r, e in zip(rows, eager, strict=True):
        err, err_e = _err(r["sim_ms"], r["pub_ms"]), _err(e["sim_ms"], r["pub_ms"])
        errs.append(err)
        errs_eager.append(err_e)
        out.append(f"| {r['what']} | {r['source']} | {r['pub_ms']:.1f} ms | {r['sim_ms']:.1f} ms | {err:+.0%} | "
                   f"{e['sim_ms']:.1f} ms | {err_e:+.0%} |")
    pre = [e for r, e in zip(rows, errs, strict=True) if "prefill" in r["what"] and "hybrid" not in r["what"]]
    dec = [e for r, e in zip(rows, errs, strict=True) if "decode batch" in r["what"]]
    out += ["", f"Mean absolute error, kernels: prefills {_mae(pre):.0%}, decode batches {_mae(dec):.0%}, all "
                f"{_mae(errs):.0%} ({len(errs)} batches); eager: all {_mae(errs_eager):.0%}.", "",
            "Chunked prefill (figure-9/chunking-overhead.csv): a prompt's prefill time in chunks relative to one pass "
            "(the artifact's reference is one 16,384-token chunk).", "",
            "| prompt | chunk | published | hwsim | difference |", "|---:|---:|---:|---:|---:|"]
    for c in chunking:
        out.append(f"| {c['prompt']:,} | {c['chunk']:,} | {c['pub']:.2f} | {c['sim']:.2f} | {c['sim'] - c['pub']:+.2f} |")
    out += ["", "### Vidur's profiled operators (Llama-2-7B, one A100, tensor parallel 1)", "",
            f"Source: {VIDUR}: medians per operator of one layer for N tokens in the batch. hwsim: "
            "`examples/llama2-7b.onnx` on a100-80gb, the kernels of one layer of a prefill of N tokens. Linear: "
            "the QKV, output, gate/up and down projections (Vidur fuses QKV and gate+up into one GEMM each, hwsim "
            "times them as the graph has them, 3 and 2 GEMMs); layer: linear plus the two norms, the activation and "
            "the two residual adds (RoPE and the attention core excluded: hwsim times them inside its attention "
            "kernel).", "",
            "| tokens | linear, Vidur | linear, hwsim | error | layer, Vidur | layer, hwsim | error |",
            "|---:|---:|---:|---:|---:|---:|---:|"]
    verrs = []
    for r in vidur:
        el, ey = _err(r["linear_sim"], r["linear_pub"]), _err(r["layer_sim"], r["layer_pub"])
        verrs.append(ey)
        out.append(f"| {r['tokens']:,} | {r['linear_pub'] * 1e3:.0f} us | {r['linear_sim'] * 1e3:.0f} us | {el:+.0%} | "
                   f"{r['layer_pub'] * 1e3:.0f} us | {r['layer_sim'] * 1e3:.0f} us | {ey:+.0%} |")
    out += ["", f"Mean absolute error of the layer time: {_mae(verrs):.0%} over {len(verrs)} batch sizes."]
    return out


def _mae(errors: list[float]) -> float:
    return sum(abs(e) for e in errors) / len(errors) if errors else 0.0


# -- Sarathi-Serve's capacity under a P99 TBT SLO (Mistral-7B, one A100) ---------------------------------------
ARXIV = Path(__file__).parent / "data" / "serving" / "arxiv_lengths.csv"
#: Sarathi-Serve, abstract (arXiv 2403.02310, OSDI'24): "up to 2.6x higher serving capacity for Mistral-7B on single
#: A100 GPUs" than vLLM, "within desired latency SLOs"; the per-trace capacities of its Figures 5-6 could not be
#: retrieved. Setup from the artifact's osdi-experiments/figure-5-6/mistral7b_{strict,relaxed}.yml and
#: sarathi/benchmark/capacity_search/: vLLM with batch 128 against Sarathi-Serve with chunk 512 (strict, P99 TBT
#: <= 0.1 s) or 2,048 (relaxed, <= 0.5 s), batch 128; capacity is the highest QPS whose P99 TBT and median
#: scheduling delay (<= 2 s) are within their limits, found by bisection.
SARATHI_CAPACITY_RATIO = 2.6
CAPACITY_CASES = (("strict", 0.1, 512), ("relaxed", 0.5, 2048))
SCHEDULING_DELAY_S = 2.0


def arxiv_lengths(n: int, seed: int = 0) -> list[tuple[int, int]]:
    """``n`` (prompt, output) lengths drawn from the committed arXiv-summarisation rows."""
    import numpy as np

    rows = [tuple(int(x) for x in line.split(",")) for line in ARXIV.read_text().splitlines()[2:] if line.strip()]
    pick = np.random.default_rng(seed).integers(0, len(rows), n)
    return [(rows[i][0], max(1, rows[i][1])) for i in pick]


def _capacity_run(setup: Any, scheduler: str, chunk: int, qps: float, lengths: list[tuple[int, int]]) -> dict[str, Any]:
    import numpy as np

    from simulator.serving.kv_cache import PagedKVCache
    from simulator.serving.loop import serve
    from simulator.serving.metrics import Slo, summarise
    from simulator.serving.request import Request
    from simulator.serving.schedulers import make_scheduler

    gaps = np.random.default_rng(1).exponential(1.0 / qps, len(lengths))
    t = np.cumsum(gaps)
    reqs = [Request(i, float(a), p, g) for i, (a, (p, g)) in enumerate(zip(t, lengths, strict=True))]
    tokens = chunk if scheduler == "sarathi" else 16384
    sched = make_scheduler(scheduler, PagedKVCache(setup.kv_blocks, setup.block_size), 128, tokens)
    m = summarise(serve(reqs, sched, setup.coster), Slo())
    return {"tbt_p99": m["tbt_s"]["p99"], "delay_p50": m["scheduling_delay_s"]["p50"], "finished": m["finished"]}


def capacity(setup: Any, scheduler: str, chunk: int, slo_s: float, lengths: list[tuple[int, int]],
             steps: int = 7) -> float:
    """Highest QPS (bisection over ``steps`` runs) with P99 TBT <= ``slo_s`` and median scheduling delay <= 2 s."""
    lo, hi = 0.0, 8.0
    for _ in range(steps):
        qps = (lo + hi) / 2
        r = _capacity_run(setup, scheduler, chunk, qps, lengths)
        if r["tbt_p99"] <= slo_s and r["delay_p50"] <= SCHEDULING_DELAY_S:
            lo = qps
        else:
            hi = qps
    return lo


def capacity_rows(requests: int = 256) -> list[dict[str, Any]]:
    """Capacity of vLLM and Sarathi-Serve for Mistral-7B on one A100 80GB PCIe, arXiv-summarisation lengths."""
    model = _quiet_model("mistral-7b.onnx")
    setup = prepare(model, a100_pcie(), {}, Precision(), per_octave=8, memory_fraction=0.9)
    lengths = arxiv_lengths(requests)
    rows = []
    for name, slo, chunk in CAPACITY_CASES:
        v = capacity(setup, "vllm", 0, slo, lengths)
        s = capacity(setup, "sarathi", chunk, slo, lengths)
        rows.append({"case": name, "slo_s": slo, "chunk": chunk, "vllm": v, "sarathi": s,
                     "ratio": s / v if v > 0 else float("nan")})
    return rows


def capacity_section(requests: int = 384) -> list[str]:
    """Markdown lines: vLLM and Sarathi-Serve capacities in hwsim against the published capacity ratio."""
    rows = capacity_rows(requests)
    out = ["", "### Sarathi-Serve's capacity gain over vLLM (Mistral-7B, one A100 80GB PCIe)", "",
           "Published: Sarathi-Serve (Agrawal et al., OSDI'24, arXiv 2403.02310, abstract) serves 'up to 2.6x' the "
           "capacity of vLLM for Mistral-7B on one A100 within the latency SLO (the maximum over its traces and SLOs; "
           "the per-trace capacities of its Figures 5-6 were not retrievable). Rebuilt from the artifact "
           "(osdi-experiments/figure-5-6/mistral7b_*.yml, sarathi/benchmark/capacity_search/): "
           "`examples/mistral-7b.onnx` (32 layers, GQA 32/8, SwiGLU 14336, from its config) on a100-80gb with the "
           f"PCIe card's bandwidth, 90% of memory for weights and KV cache, {requests} requests with Poisson arrivals "
           "and prompt/output lengths drawn from the arXiv-summarisation rows Vidur committed "
           "(`simulator/validation/data/serving/arxiv_lengths.csv`), vLLM at batch 128 and Sarathi-Serve at batch "
           "128 with chunk 512 (strict) or 2,048 (relaxed); capacity: the highest QPS (7 bisection steps in 0-8) "
           f"with P99 TBT within the SLO and median scheduling delay <= {SCHEDULING_DELAY_S:g} s.", "",
           "| SLO (P99 TBT) | vLLM capacity | Sarathi-Serve capacity | hwsim ratio | published (up to) |",
           "|---|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['case']} ({r['slo_s']:g} s), chunk {r['chunk']:,} | {r['vllm']:.2f} QPS | {r['sarathi']:.2f} QPS | "
                   f"{r['ratio']:.2f}x | {SARATHI_CAPACITY_RATIO:g}x |")
    return out
