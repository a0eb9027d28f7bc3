"""``hwsim serve``: many requests on one device under a scheduler; latency percentiles, throughput, goodput."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from hardware.errors import HwsimError
from simulator.cli_flags import precision_options
from simulator.progress import progress_display
from simulator.technique_run import technique_options


def _ms(s: float | None) -> str:
    """A latency column of the rate table: milliseconds, or n/a where no request finished."""
    return f"{'n/a':>10s}" if s is None else f"{s * 1e3:8.2f}ms"


def _s(s: float | None) -> str:
    return f"{'n/a':>10s}" if s is None else f"{s:9.3f}s"

def _parse_slo(text: str | None):  # noqa: ANN202 - returns metrics.Slo
    from simulator.serving.metrics import Slo

    if not text:
        return Slo()
    limits: dict[str, float] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in ("ttft", "tpot"):
            raise HwsimError(f"--slo {text}: expected ttft=SECONDS,tpot=SECONDS (e.g. ttft=0.5,tpot=0.05; ms suffix "
                             "allowed: ttft=500ms)")
        value = value.strip().lower()
        scale = 1e-3 if value.endswith("ms") else 1.0
        try:
            limits[key] = float(value.removesuffix("ms").removesuffix("s")) * scale
        except ValueError:
            raise HwsimError(f"--slo {text}: '{value}' is not a time") from None
        if not 0 < limits[key] < math.inf:
            raise HwsimError(f"--slo {text}: limits must be finite and > 0 (leave one out for no limit)")
    return Slo(limits.get("ttft"), limits.get("tpot"))


def _parse_rates(text: str) -> list[float]:
    try:
        rates = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise HwsimError(f"--sweep-rate {text}: expected rates in requests/s separated by commas, e.g. 1,2,4,8") from None
    if not rates or any(not 0 < r < math.inf for r in rates):
        raise HwsimError(f"--sweep-rate {text}: rates must be finite and > 0")
    from simulator.serving.arrivals import check_rate

    for r in rates:
        check_rate("--sweep-rate", text, r)
    return rates


@click.command()
@click.argument("model_path", metavar="MODEL.onnx")
@click.option("--target", "target_name", required=True, metavar="PRESET|FILE.yaml",
              help="A bundled preset (see `hwsim targets`) or a preset file.")
@click.option("--arrivals", "arrivals_text", required=True, metavar="poisson:RATE|gamma:RATE,CV|trace:FILE.csv",
              help="Arrival process (RATE in requests/s) or a CSV trace with arrival_s,prompt_len,gen_len.")
@click.option("--requests", "n_requests", type=int, default=1000, show_default=True,
              help="Requests to simulate (a trace: its first N rows; 0 = all).")
@click.option("--prompt-len", default="128", show_default=True, metavar="DIST",
              help="Prompt tokens: N, uniform:A,B, normal:MU,SIGMA, lognormal:MU,SIGMA or zipf:A,MAX.")
@click.option("--gen-len", default="128", show_default=True, metavar="DIST", help="Generated tokens (same forms).")
@click.option("--scheduler", type=click.Choice(["vllm", "sarathi", "static"]), default="vllm", show_default=True)
@click.option("--max-batch-tokens", type=int, default=None,
              help="Tokens per iteration [default: 2048 for vllm and static, a 512-token budget for sarathi].")
@click.option("--max-batch", type=int, default=256, show_default=True, help="Sequences per iteration.")
@click.option("--slo", "slo_text", default=None, metavar="ttft=S,tpot=S", help="Latency SLO for goodput (seconds or ms).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--kv-blocks", type=int, default=None, help="Cap the KV cache at N blocks [default: all memory left].")
@click.option("--memory-fraction", type=float, default=1.0, show_default=True,
              help="Share of the target's memory for weights and KV cache (vLLM uses 0.9).")
@click.option("--shape-grid", type=int, default=8, show_default=True,
              help="Pad costed shapes up to N points per power of two (0: every shape exact; see docs).")
@click.option("--mode", type=click.Choice(["fast", "detailed"]), default="fast", show_default=True)
@click.option("--tp", default=1, show_default=True, type=int, help="Tensor-parallel devices (GPU targets).")
@click.option("--devices", type=int, default=None, metavar="N",
              help="Devices (alone: tensor parallel on GPUs, a pipeline on PIM and FPGA).")
@click.option("--parallel", "parallel_text", default=None, metavar="tp=A,pp=B[,link=NAME]",
              help="How the devices split the model (pipeline stages serve micro-batches).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Target-specific option.")
@click.option("--dim", "dims", multiple=True, metavar="NAME=N", help="Bind any symbolic dimension by name.")
@precision_options("the target's native format")
@click.option("--json", "json_out", metavar="OUT.json",
              help="Write the metrics (and time series) as JSON ('-': to stdout, the table and messages to stderr).")
@click.option("--trace", "trace_out", metavar="OUT.json", help="Write a Perfetto trace (iterations and requests).")
@click.option("--plot", "plot_out", metavar="OUT.png",
              help="Write a plot: latency vs load with --sweep-rate, else batch/KV occupancy over time.")
@click.option("--sweep-rate", "sweep_text", default=None, metavar="R1,R2,...",
              help="Run at each arrival rate (requests/s) and report latency against load.")
@click.option("--quiet", is_flag=True, help="No progress bar (off a terminal: no progress lines).")
@technique_options
def serve(model_path: str, target_name: str, arrivals_text: str, n_requests: int, prompt_len: str, gen_len: str,
          scheduler: str, max_batch_tokens: int | None, max_batch: int, slo_text: str | None, seed: int,
          kv_blocks: int | None, memory_fraction: float, shape_grid: int, mode: str, tp: int, devices: int | None,
          parallel_text: str | None, sets: tuple[str, ...],
          dims: tuple[str, ...], weights: str | None, activations: str | None, kv_cache: str | None,
          head_weights: str | None, json_out: str | None, trace_out: str | None, plot_out: str | None, sweep_text: str | None,
          quiet: bool = False, techniques: Any = None) -> None:
    """Serve many requests of MODEL on a target: TTFT, TPOT and E2E percentiles, throughput, goodput, energy
    (with `simulate`'s inference techniques: speculative decoding costed per accepted token, KV-cache formats,
    attention patterns, MoE routing)."""
    from hardware.targets import load_target
    from mapping.workloads import Model
    from simulator.cli import JsonOutput, _parse_dims, check_output, make_precision, target_options, writing
    from simulator.serving.arrivals import parse_arrivals
    from simulator.serving.distributions import parse_length
    from simulator.serving.metrics import summarise, time_series
    from simulator.serving.outputs import summary_table, write_sweep_plot, write_timeline_plot, write_trace
    from simulator.serving.rate_sweep import knee, max_rate_in_slo, sweep_rates
    from simulator.serving.setup import prepare, run_serving

    json_output = JsonOutput(json_out)
    for flag, out in (("--trace", trace_out), ("--plot", plot_out)):
        check_output(flag, out)
    say = json_output.say

    if seed < 0:
        raise HwsimError(f"--seed must be >= 0, got {seed}")
    if tp < 1:
        raise HwsimError(f"--tp must be >= 1, got {tp}")
    arrivals = parse_arrivals(arrivals_text)
    if arrivals.kind != "trace" and n_requests < 1:
        raise HwsimError(f"--requests must be >= 1 with a {arrivals.kind} process, got {n_requests}")
    prompt, gen = parse_length(prompt_len, "--prompt-len"), parse_length(gen_len, "--gen-len")
    slo = _parse_slo(slo_text)
    rates = _parse_rates(sweep_text) if sweep_text else None
    if rates is not None:
        arrivals.with_rate(rates[0])  # a trace cannot be swept: the error names --sweep-rate
    if max_batch_tokens is None:
        max_batch_tokens = 512 if scheduler == "sarathi" else 2048
    target = load_target(target_name)
    parallel = None
    if devices is not None or parallel_text:
        from mapping.parallel import parse_parallel

        parallel = parse_parallel(devices, parallel_text, target.kind)
    model = Model(model_path, _parse_dims(dims))
    setup = prepare(model, target, target_options(mode, tp, sets),
                    make_precision(weights, activations, kv_cache, head_weights), shape_grid, memory_fraction=memory_fraction,
                    kv_blocks=kv_blocks, parallel=parallel, techniques=techniques)
    p = setup.precision
    header = [f"model      {model_path}", f"target     {target.name} ({target.kind}): {target.description}",
              f"serving    {scheduler} scheduler, max batch {max_batch}, max {max_batch_tokens} tokens/iteration; "
              f"weights {p.weights}, activations {p.activations}, KV {p.kv_cache}",
              f"workload   arrivals {arrivals.text}, prompt {prompt.text}, generate {gen.text}, seed {seed}",
              f"memory     weights {setup.weight_bytes / 2**30:.2f} GiB of {setup.capacity_bytes / 2**30:.2f} GiB; "
              f"KV {setup.kv_bytes_per_token} B/token, {setup.kv_blocks} blocks of {setup.block_size} tokens"]
    if "techniques" in setup.facts:
        per = setup.facts.get("tokens_per_iteration")
        header.append(f"techniques {setup.facts['techniques']}"
                      + (f"; {per:.3f} accepted tokens per speculative iteration (decode steps costed per accepted "
                         "token)" if per else ""))
    if setup.parallel is not None:
        par = setup.parallel
        header.append(f"devices    {par.devices} x {target.name}: tensor parallel {par.tp}, pipeline stages {par.pp}, "
                      f"link {par.link or 'the GPU preset NVLink/PCIe'}; memory per device")
    if rates is not None:
        with progress_display(None, "serving", "requests", quiet) as progress:
            rows = sweep_rates(setup, arrivals, rates, n_requests, prompt, gen, scheduler, max_batch, max_batch_tokens,
                               seed, slo, progress)
        k, best = knee(rows), max_rate_in_slo(rows)
        say("\n".join(header))
        say("")
        say(f"{'rate/s':>8s} {'TTFT p50':>10s} {'TTFT p99':>10s} {'TPOT p50':>10s} {'TPOT p99':>10s} "
                   f"{'E2E p99':>10s} {'tok/s':>10s} {'req/s':>8s} {'goodput':>8s} {'in SLO':>7s} {'util':>6s}")
        for r in rows:
            say(f"{r['rate']:8g} {_ms(r['ttft_s']['p50'])} {_ms(r['ttft_s']['p99'])} "
                       f"{_ms(r['tpot_s']['p50'])} {_ms(r['tpot_s']['p99'])} "
                       f"{_s(r['e2e_s']['p99'])} {r['throughput']['tokens_per_s']:10.1f} "
                       f"{r['throughput']['requests_per_s']:8.3f} {r['goodput_requests_per_s']:8.3f} "
                       f"{r['slo_attainment']:7.1%} {r['utilisation']:6.1%}")
        say(f"knee (p99 E2E above twice its lowest-rate value): {f'{k:g} requests/s' if k else 'not reached'}")
        if slo.ttft_s is not None or slo.tpot_s is not None:
            say(f"max rate with >= 90% of requests in the SLO: {f'{best:g} requests/s' if best else 'none'}")
        say(f"costed {setup.coster.shapes_run} distinct passes")
        if json_out:
            json_output.write({"sweep": rows, "knee_rate": k, "max_rate_in_slo": best})
        if plot_out:
            with writing("--plot", plot_out):
                write_sweep_plot(rows, plot_out, f"{Path(model_path).name} on {target.name}, {scheduler}", k, best)
            say(f"wrote {plot_out}")
        if trace_out:
            click.echo("--trace is written for single runs, not sweeps", err=True)
        return
    with progress_display(None, "serving", "requests", quiet) as progress:
        run = run_serving(setup, arrivals, n_requests, prompt, gen, scheduler, max_batch, max_batch_tokens, seed,
                          progress)
    metrics = summarise(run, slo, arrivals.rate or None)
    say(summary_table(metrics, header))
    say(f"costed {setup.coster.shapes_run} distinct passes")
    if json_out:  # the time series only when they are written
        json_output.write({**metrics, "time_series": time_series(run)})
    if trace_out:
        with writing("--trace", trace_out):
            write_trace(run, trace_out)
        say(f"wrote {trace_out} (open in https://ui.perfetto.dev)")
    if plot_out:
        with writing("--plot", plot_out):
            write_timeline_plot(run, plot_out, f"{Path(model_path).name} on {target.name}, {scheduler}, {arrivals.text}")
        say(f"wrote {plot_out}")
