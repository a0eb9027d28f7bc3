"""``reports/serving.md``: continuous batching on A100/H100 against published vLLM serving measurements and the
vLLM, Sarathi-Serve and Vidur papers' artifacts (:mod:`.serving_papers`), and PIM against GPU serving at an equal
SLO.

Run ``python -m simulator.validation.serving`` to print the report, ``--write`` to write ``reports/serving.md``.

Published points (each with its source below): vLLM's ``vllm bench serve`` with ``--max-concurrency C`` and an
infinite request rate keeps ``C`` requests in flight; hwsim emulates it with every request arriving at once and
``--max-batch C`` (the scheduler admits at most ``C`` sequences, the rest wait). Compared: output tokens/s and the
median TPOT. TTFT is not compared: the benchmark starts a request's clock when a slot frees, hwsim when it
arrives (queueing included).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

from hardware.targets import load_target
from mapping.op_costs import Precision
from mapping.parallel import Parallel
from mapping.workloads import Model
from simulator.serving.arrivals import parse_arrivals
from simulator.serving.distributions import parse_length
from simulator.serving.metrics import Slo, summarise
from simulator.serving.rate_sweep import max_rate_in_slo, sweep_rates
from simulator.serving.setup import prepare, run_serving
from simulator.validation import emit, output_args, serving_papers

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "llama2-7b.onnx"
REPORT = ROOT / "reports" / "serving.md"

#: Published serving measurements (closed loop at a fixed concurrency). ``tok_s``: output tokens/s; ``tpot_ms``:
#: median time per output token; None where the source gives no number.
PUBLISHED: list[dict[str, Any]] = [
    {"source": "J. Musgrave, 'vLLM throughput-latency sweep on NVIDIA A100' (johnmusgrave.com/p/vllm-throughput-latency-"
               "sweep-on): vLLM 0.23, Llama-3.1-8B-Instruct bf16, A100 40GB, 1024 in / 128 out, --max-concurrency C",
     "target": "a100-40gb", "prompt": 1024, "gen": 128, "points": [
         {"c": 1, "tok_s": 75.0, "tpot_ms": None, "note": "'decode at one request per time runs at about 75 tokens/sec'"},
         {"c": 8, "tok_s": 75.0 * 6.6, "tpot_ms": None, "note": "'a 6.6x gain' over C=1 at C=8"}]},
    {"source": "InferenceBench concurrency-sweep recipe (yobitelcomm.github.io/bench/recipes/concurrency-sweep): vLLM "
               "0.21, Llama-3.1-8B-Instruct fp16, H100-80GB-HBM3, 'chatbot-short' workload (lengths not stated; hwsim "
               "assumes 128 in / 128 out)",
     "target": "h100-sxm", "prompt": 128, "gen": 128, "points": [
         {"c": 1, "tok_s": 122.2, "tpot_ms": 6.48, "note": ""},
         {"c": 4, "tok_s": 580.3, "tpot_ms": 6.59, "note": ""},
         {"c": 16, "tok_s": 1384.2, "tpot_ms": 10.94, "note": ""}]},
]


def _model() -> Model:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Model(str(MODEL))


def _closed_loop(model: Model, target: str, c: int, prompt: int, gen: int) -> dict[str, Any]:
    setup = prepare(model, load_target(target), {}, Precision(), per_octave=8, memory_fraction=0.9)
    n = max(8, 4 * c)
    run = run_serving(setup, parse_arrivals("poisson:100000"), n, parse_length(str(prompt), "p"),
                      parse_length(str(gen), "g"), "vllm", c, 2048, 0)
    m = summarise(run, Slo())
    return {"tok_s": m["throughput"]["tokens_per_s"], "tpot_ms": m["tpot_s"]["p50"] * 1e3}


def published_section(model: Model) -> tuple[list[str], list[float]]:
    """Rows comparing hwsim with each published point, and the relative errors of output tokens/s."""
    lines, errors = [], []
    for pub in PUBLISHED:
        lines += ["", f"**{pub['source']}**", "",
                  "| C | published tok/s | hwsim tok/s | error | published TPOT p50 | hwsim TPOT p50 | note |",
                  "|---:|---:|---:|---:|---:|---:|---|"]
        for p in pub["points"]:
            sim = _closed_loop(model, pub["target"], p["c"], pub["prompt"], pub["gen"])
            err = sim["tok_s"] / p["tok_s"] - 1
            errors.append(err)
            tpot = f"{p['tpot_ms']:.2f} ms" if p["tpot_ms"] else "-"
            lines.append(f"| {p['c']} | {p['tok_s']:.0f} | {sim['tok_s']:.0f} | {err:+.0%} | {tpot} | "
                         f"{sim['tpot_ms']:.2f} ms | {p['note']} |")
    return lines, errors


#: The PIM-vs-GPU comparison: the same request stream on each system, the same SLO.
SLO = Slo(2.0, 0.1)
SYSTEMS = [("1 x a100-80gb", "a100-80gb", None), ("4 x pim-gpt, pipeline (CXL 3.0)", "pim-gpt", Parallel(1, 4, "cxl3-x16")),
           ("8 x pim-gpt, tp=2 x pp=4 (CXL 3.0)", "pim-gpt", Parallel(2, 4, "cxl3-x16"))]
RATES = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]


def slo_section(model: Model, requests: int) -> list[str]:
    """Max rate within the SLO and energy per token on each system, and what the numbers say."""
    lines = ["", "| system | rate/s | TTFT p90 | TPOT p90 | in SLO | tokens/s | mJ/token |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    best_lines = []
    results: dict[str, tuple[float | None, list[dict[str, Any]]]] = {}
    for label, target, par in SYSTEMS:
        setup = prepare(model, load_target(target), {}, Precision(), per_octave=8, parallel=par)
        rows = sweep_rates(setup, parse_arrivals("poisson:1"), RATES, requests, parse_length("uniform:32,256", "p"),
                           parse_length("uniform:16,128", "g"), "vllm", 64, 2048, 0, SLO)
        for r in rows:
            lines.append(f"| {label} | {r['rate']:g} | {r['ttft_s']['p90'] * 1e3:.0f} ms | {r['tpot_s']['p90'] * 1e3:.1f} ms"
                         f" | {r['slo_attainment']:.0%} | {r['throughput']['tokens_per_s']:.1f} | "
                         f"{r['energy']['per_token_j'] * 1e3:.0f} |")
        best = max_rate_in_slo(rows)
        results[label] = (best, rows)
        at = next((r for r in rows if r["rate"] == best), None)
        rate_text = (f"{best:g}" + (" (the highest swept)" if best == RATES[-1] else "")) if best else "none"
        energy_text = f"{at['energy']['per_token_j'] * 1e3:.0f}" if at else "-"
        best_lines.append(f"| {label} | {rate_text} | {energy_text} | {setup.kv_blocks * setup.block_size:,} |")
    common = min((b for b, _ in results.values() if b), default=None)
    reading = []
    if common:
        parts = []
        for label, (_, rows) in results.items():
            r = next(r for r in rows if r["rate"] == common)
            parts.append(f"{label} {r['energy']['per_token_j'] * 1e3:.0f} mJ/token (TTFT p90 "
                         f"{r['ttft_s']['p90'] * 1e3:.0f} ms, TPOT p90 {r['tpot_s']['p90'] * 1e3:.1f} ms)")
        reading.append(f"At {common:g} requests/s, the highest rate every system serves within the SLO: "
                       + "; ".join(parts) + ".")
    return (["", "| system | max rate with >= 90% in SLO (req/s) | mJ/token there | KV cache tokens |",
             "|---|---:|---:|---:|", *best_lines, "", *reading, "", "All rates:", *lines])


def pim_13b_section() -> list[str]:
    """Llama-2-13B generating on a multi-device PIM system (it needs 8 pim-gpt devices) and on one A100."""
    from simulator.simulate import simulate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Model(str(ROOT / "examples" / "llama2-13b.onnx"))
    rows = ["", "| system | memory | prefill 64 tokens | decode step | tokens/s (64 in, 32 out) | tokens/J |",
            "|---|---:|---:|---:|---:|---:|"]
    for label, target, par in (("1 x a100-80gb", "a100-80gb", None),
                               ("8 x pim-gpt, pp=8 (CXL 3.0)", "pim-gpt", Parallel(1, 8, "cxl3-x16")),
                               ("16 x pim-gpt, tp=2 x pp=8 (CXL 3.0)", "pim-gpt", Parallel(2, 8, "cxl3-x16"))):
        r = simulate(model, load_target(target), "generate", 1, 64, 32, Precision(), parallel=par, trace_steps=0)
        pre, dec = r.phases[0], r.phases[1]
        rows.append(f"| {label} | {r.memory_bytes / 2**30:.1f} of {r.capacity_bytes / 2**30:.0f} GiB | "
                    f"{pre.latency_s * 1e3:.1f} ms | {dec.latency_s / dec.passes * 1e3:.2f} ms | {r.tokens_per_s:.1f} | "
                    f"{r.tokens / r.energy_j:.2f} |")
    return rows


#: What the comparisons with the papers show and what could not be compared.
PAPER_NOTES = [
    "Why it is off, and what is missing:",
    "",
    "- **Sarathi-Serve's decode batches are host-bound in the artifact.** A Yi-34B decode step on two A100 PCIe "
    "cards reads 34 GB of weights per card, 18 ms at 1,935 GB/s; the artifact measures 47 ms at batch 1 and 189 ms "
    "at batch 128, where the weights plus 128 x 1,020 cached tokens' KV (16 GB per card) take about 26 ms to read. "
    "hwsim times the GPU kernels (24 ms at batch 1, 41 ms at batch 128), so it is 48-78% short on decode batches; "
    "the rest is the research prototype's per-iteration host and per-sequence work (Python scheduling, Ray "
    "workers, attention metadata per sequence), which hwsim does not measure. The `eager` column adds eager "
    "PyTorch's host time per op (the median over the published eager machines, mapping/gpu/stack.py): a flat "
    "host-bound step, closer on average than the kernels alone (the mean errors above) but without the measured "
    "growth with the batch, so neither is a model of this stack.",
    "- **Prefills** are within 5-17% from 512 to 4,096 tokens. Short ones (128, 256 tokens) are short in hwsim by "
    "the same host time as decodes (the artifact's 256-token row is also its run's first batch, slower than its "
    "512-token row); 8k and 16k prompts are 23-29% short, where the artifact's attention at long context is slower "
    "than hwsim's FlashAttention-2 model.",
    "- **Chunking overhead.** With 512-token chunks hwsim's chunked prefill costs 14-17% more than one pass, as the "
    "artifact measures for 2-8k prompts (12-19%); for 16k prompts the artifact's one-pass reference is itself slow "
    "(its chunks are faster than it), which hwsim's one pass is not, so the ratios part there.",
    "- **Vidur's operator profiles** are CUDA-event times of the same Llama-2-7B GEMMs and elementwise kernels "
    "hwsim models; the largest gaps are GEMMs of 128 and 2,048-4,096 tokens (cuBLAS tile and wave choices differ "
    "from hwsim's). Vidur reports under 9% error for its own simulator built on such profiles (Agrawal et al., "
    "MLSys'24, abstract); hwsim's kernel models come within the mean error shown of the profiles, without profiling.",
    "- **Capacity.** The published 2.6x is Sarathi-Serve's best case over its traces and SLOs for Mistral-7B; hwsim "
    "gets more than that under the strict SLO and less under the relaxed one. vLLM's capacity is set by prefills "
    "stalling decodes (a 2.6k-token arXiv prefill takes longer than the 0.1 s TBT limit, so P99 TBT fails once "
    "more than 1% of tokens wait behind one), which hwsim reproduces; Sarathi-Serve's strict capacity in hwsim is "
    "higher than a real stack's because hwsim's small chunk iterations carry no host time (see the decode rows "
    "above). The length trace differs: Vidur commits a filtered arXiv set capped near 4k tokens, not the 16k-token "
    "set the artifact names (not committed); and hwsim runs fewer requests than the artifact's 2,048, so a load "
    "just above capacity may not yet show its queue.",
    "- **vLLM (Kwon et al., SOSP'23, Sec. 6.2)**: 'vLLM can sustain 1.7x-2.7x higher request rates compared to Orca "
    "(Oracle) and 2.7x-8x compared to Orca (Max)' on ShareGPT and 'up to 22x higher request rates' than "
    "FasterTransformer, OPT-13B to 175B on A100s. Not compared: hwsim has no Orca scheduler (its reservation "
    "variants are the baselines), the figures' curves were not retrievable as numbers, and no ShareGPT length "
    "trace was found in the authors' repositories (Sarathi-Serve's config names one it does not commit).",
    "- **Not found:** the tables behind Sarathi-Serve's Figures 5-6 (capacity per model and trace), vLLM's Figure "
    "12 values and Vidur's per-configuration fidelity figures as numbers; the papers' PDFs were not in the search "
    "corpus, only abstracts and summaries.",
]


def report(requests: int = 120, capacity_requests: int = 384) -> str:
    """The whole report as markdown."""
    model = _model()
    pub, errors = published_section(model)
    mean_abs = sum(abs(e) for e in errors) / len(errors)
    out = [
        "# Serving: hwsim against published vLLM measurements and the vLLM/Sarathi-Serve/Vidur papers, and PIM "
        "against GPU at an equal SLO",
        "",
        "Generated by `python -m simulator.validation.serving --write` (prints without `--write`).",
        "",
        "## Continuous batching against published measurements",
        "",
        "hwsim runs `examples/llama2-7b.onnx` (Llama-2-7B shape, fp16, MHA) with the `vllm` scheduler, every request "
        "arriving at once and `--max-batch C`, which is what `vllm bench serve --max-concurrency C --request-rate inf` "
        "does (C requests in flight). Compared: output tokens/s (the bench's 'output token throughput') and median "
        "TPOT.",
        *pub,
        "",
        f"Mean absolute error of output tokens/s: **{mean_abs:.0%}** over {len(errors)} points.",
        "",
        "Why it is off, in order of size:",
        "",
        "- **Not the same model.** The measurements are Llama-3.1-8B (8.0B parameters, 16.1 GB of fp16 weights, 8 KV "
        "heads, a 128k vocabulary); hwsim runs Llama-2-7B (6.7B, 13.5 GB, 32 KV heads, 32k vocabulary) because it is "
        "the 7-8B graph this repository ships. Decode at C=1 reads the weights once per token, so hwsim should be "
        "about 16% faster from the weight bytes alone; at high concurrency Llama-2-7B reads 4x the KV cache per "
        "token, so hwsim's attention is slower than the measured model's.",
        "- **Host overhead.** vLLM adds scheduling, sampling and detokenisation time per iteration on the CPU that "
        "hwsim does not model (reports/gpu_validation.md: decode steps of frameworks are 15-63% slower than the "
        "kernels alone); it matters most at C=1, where an iteration is shortest.",
        "- **The H100 workload's lengths are not published** ('chatbot-short'); hwsim assumes 128 in / 128 out.",
        "",
        "## Continuous batching against the vLLM, Sarathi-Serve and Vidur papers",
        "",
        "The three papers report serving on A100s; what their authors committed with them (measured batch and "
        "operator times, the capacity-search setups, request-length traces) is rebuilt here and simulated "
        "(`simulator/validation/serving_papers.py`; the models as ONNX graphs built from their published configs, "
        "`tests/fixtures/make_models.py`). No constant was set from these numbers.",
        *serving_papers.section(),
        *serving_papers.capacity_section(capacity_requests),
        "",
        *PAPER_NOTES,
        "",
        "## PIM against GPU at an equal SLO",
        "",
        f"Llama-2-7B, Poisson arrivals, prompts uniform 32-256, outputs uniform 16-128 tokens, {requests} requests per "
        f"rate, vLLM scheduler (max 64 sequences), SLO TTFT <= {SLO.ttft_s:g} s and TPOT <= {SLO.tpot_s * 1e3:g} ms. "
        "Llama-2-7B (12.6 GiB in bf16) does not fit one pim-gpt device (4 GiB): it runs on 4 devices as a pipeline "
        "(8 layers each, CENT's pipeline mapping, CXL 3.0 x16 links between devices: CENT, Gu et al., ASPLOS'25) or "
        "on 8 (tensor parallel 2 inside each of 4 stages). Energy per generated token includes idle power.",
        *slo_section(model, requests),
        "",
        "Why: pim-gpt's banks compute one token vector at a time (no weight reuse across the rows of a batch or a "
        "prompt), so a prefill costs as many passes over the weights as it has tokens and a decode step of B "
        "sequences B passes; TTFT grows with the prompt and with every request queued behind it, and the rate a PIM "
        "system sustains is capped by that, where the A100 reuses each weight across the batch. On the 4-device "
        "pipeline the KV cache is small (each device keeps 4 GiB minus its 3.1 GiB of weights) and is shared by 4 "
        "virtual engines (one micro-batch in flight per stage, vLLM's pipeline scheduling), so each engine batches "
        "few sequences and preempts under load, which caps its throughput. Tensor parallelism over 2 devices per "
        "stage halves the bank work per device and, with half the "
        "weights per device, leaves about 7x the KV cache. The PIM systems' idle power is far lower than the A100's "
        "60 W, so at the rates all three sustain (the 0.5 and 1 requests/s lines above) their energy per token is "
        "several times lower; at its own highest rate the A100 batches enough to spend less energy per token than the best PIM "
        "system at its own limit (the first table).",
        "",
        "## Llama-2-13B on multi-device PIM",
        "",
        "Llama-2-13B (24.3 GiB in bf16) needs 8 pim-gpt devices (each holds 4 GiB: its pipeline stage's 5 layers and "
        "their KV cache); `hwsim simulate examples/llama2-13b.onnx --target pim-gpt --devices 8`. One micro-batch "
        "(batch 1): the stages run one after another, so a pipeline adds capacity, not speed, and tensor "
        "parallelism inside the stages is what shortens a pass.",
        *pim_13b_section(),
    ]
    return "\n".join(out) + "\n"


def main() -> None:
    """Print the report (``--write``: also write reports/serving.md)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    output_args(parser, REPORT.name)
    parser.add_argument("--requests", type=int, default=120, help="requests per rate in the PIM-vs-GPU sweep")
    parser.add_argument("--capacity-requests", type=int, default=384,
                        help="requests per run in the Sarathi-Serve capacity search")
    args = parser.parse_args()
    emit(report(args.requests, args.capacity_requests), args, REPORT.name)


if __name__ == "__main__":
    main()
