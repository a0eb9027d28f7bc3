"""Outputs of a serving run: the summary table, a Perfetto trace, and plots (time series; latency vs load)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from simulator.serving.loop import ServingRun
from simulator.serving.metrics import time_series


def _ms(s: float | None) -> str:
    return f"{'n/a':>9s}" if s is None else f"{s * 1e3:9.2f}"


def summary_table(m: dict[str, Any], header: list[str]) -> str:
    """The metrics of one run as text."""
    lines = list(header)
    lines.append(f"requests   {m['requests']} arrived, {m['finished']} finished, {m['rejected']} rejected"
                 + (f", {m['unfinished']} unfinished" if m["unfinished"] else "")
                 + f"; {m['iterations']} iterations over {m['duration_s']:.3f} s, {m['preemptions']} preemptions")
    for r in m["rejections"][:3]:
        lines.append(f"  rejected request {r['id']}: {r['reason']}")
    lines.append("")
    lines.append(f"{'latency (ms)':14s} {'mean':>9s} {'p50':>9s} {'p90':>9s} {'p99':>9s} {'max':>9s}")
    for key, label in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "E2E")):
        p = m[key]
        lines.append(f"{label:14s} {_ms(p['mean'])} {_ms(p['p50'])} {_ms(p['p90'])} {_ms(p['p99'])} {_ms(p['max'])}")
    t = m["throughput"]
    lines.append("")
    lines.append(f"throughput {t['tokens_per_s']:,.1f} generated tokens/s, {t['prompt_tokens_per_s']:,.1f} prompt "
                 f"tokens/s, {t['requests_per_s']:.3f} requests/s")
    slo = m["slo"]
    if slo["ttft_s"] is not None or slo["tpot_s"] is not None:
        limits = ", ".join(f"{k.split('_')[0].upper()} <= {v * 1e3:g} ms" for k, v in slo.items() if v is not None)
        lines.append(f"goodput    {m['goodput_requests_per_s']:.3f} requests/s within SLO ({limits}); "
                     f"attainment {m['slo_attainment']:.1%}")
    e = m["energy"]
    per_token = "n/a" if e["per_token_j"] is None else f"{e['per_token_j'] * 1e3:.3f}"
    per_request = "n/a" if e["per_request_j"] is None else f"{e['per_request_j']:.4f}"
    lines.append(f"energy     {e['total_j']:.3f} J: {per_token} mJ/token, {per_request} "
                 f"J/request (idle power {e['idle_power_w']:.1f} W)")
    kv = m["kv_cache"]
    lines.append(f"device     utilisation {m['utilisation']:.1%}; batch mean {m['batch_size']['mean']:.1f}, max "
                 f"{m['batch_size']['max']}; KV cache {kv['blocks']} blocks of {kv['block_size']} tokens, occupancy "
                 f"mean {kv['mean_occupancy']:.1%}, max {kv['max_occupancy']:.1%}")
    ll = m["littles_law"]
    lines.append(f"Little     mean in system {ll['mean_in_system']:.3f}; over the run (finished/s x mean E2E) "
                 f"{ll['window_rate_x_mean_e2e']:.3f}; at the arrival rate {ll['arrival_rate']:g}/s x mean E2E "
                 f"{ll['arrival_rate_x_mean_e2e']:.3f} (agrees on long runs)")
    return "\n".join(lines)


def write_trace(run: ServingRun, path: str, max_requests: int = 2000) -> None:
    """A Perfetto/Chrome trace: iterations on one track (one per virtual engine with pipeline stages), each request
    (the first ``max_requests``) as async slices queued -> prefill -> decode."""
    us = 1e6
    t0 = run.start_s
    events: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": 1, "args": {"name": f"device ({run.scheduler})"}},
        {"name": "process_name", "ph": "M", "pid": 2, "args": {"name": "requests"}},
    ]
    for e in sorted({i.engine for i in run.iterations} or {0}):
        name = "iterations" if run.stages == 1 else f"iterations, engine {e}"
        events.append({"name": "thread_name", "ph": "M", "pid": 1, "tid": 1 + e, "args": {"name": name}})
    for i in run.iterations:
        kind = "mixed" if i.prefills and i.decodes else ("prefill" if i.prefills else "decode")
        events.append({"name": kind, "ph": "X", "pid": 1, "tid": 1 + i.engine, "ts": (i.start_s - t0) * us,
                       "dur": (i.end_s - i.start_s) * us,
                       "args": {"prefills": i.prefills, "prefill_tokens": i.prefill_tokens, "decodes": i.decodes,
                                "energy_j": i.energy_j, "kv_blocks": i.kv_blocks}})
        events.append({"name": "kv_blocks", "ph": "C", "pid": 1, "ts": (i.start_s - t0) * us,
                       "args": {"used": i.kv_blocks}})
    for r in run.requests[:max_requests]:
        if r.rejected:
            continue
        phases = [("queued", r.arrival_s, r.scheduled_s), ("prefill", r.scheduled_s, r.first_token_s),
                  ("decode", r.first_token_s, r.finish_s)]
        for name, a, b in phases:
            if a is None or b is None:
                continue
            args = {"prompt_len": r.prompt_len, "gen_len": r.gen_len, "preemptions": r.preemptions}
            events.append({"name": name, "cat": "request", "ph": "b", "id": r.rid, "pid": 2, "ts": (a - t0) * us,
                           "args": args})
            events.append({"name": name, "cat": "request", "ph": "e", "id": r.rid, "pid": 2, "ts": (b - t0) * us})
    Path(path).write_text(json.dumps({"traceEvents": events, "displayTimeUnit": "ms"}))


def _plt():  # noqa: ANN202 - matplotlib module
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_timeline_plot(run: ServingRun, path: str, title: str) -> None:
    """Batch size, KV-cache occupancy and requests in the system over time."""
    plt = _plt()
    ts = time_series(run)
    fig, axes = plt.subplots(3, 1, figsize=(10, 7), sharex=True)
    axes[0].plot(ts["t_s"], ts["batch"], lw=0.8)
    axes[0].set_ylabel("batch size (sequences)")
    axes[1].plot(ts["t_s"], [100 * x for x in ts["kv_occupancy"]], lw=0.8, color="tab:orange")
    axes[1].set_ylabel("KV cache occupancy (%)")
    axes[2].plot(ts["t_s"], ts["in_system"], lw=0.8, color="tab:green")
    axes[2].set_ylabel("requests in system")
    axes[2].set_xlabel("time (s)")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def write_sweep_plot(rows: list[dict[str, Any]], path: str, title: str, knee: float | None,
                     max_rate: float | None) -> None:
    """Latency percentiles and throughput against the arrival rate, with the knee and the max rate in the SLO."""
    plt = _plt()
    rates = [r["rate"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for key, label, ax in (("ttft_s", "TTFT", axes[0]), ("tpot_s", "TPOT", axes[1]), ("e2e_s", "E2E", axes[1])):
        for q, style in (("p50", "-o"), ("p99", "--s")):
            ax.plot(rates, [np.nan if r[key][q] is None else r[key][q] * 1e3 for r in rows], style, ms=4,
                    label=f"{label} {q}")  # no request finished at a rate: a gap in the line
    axes[0].set_ylabel("time to first token (ms)")
    axes[1].set_ylabel("latency (ms)")
    axes[1].set_yscale("log")
    axes[0].set_yscale("log")
    axes[2].plot(rates, [r["throughput"]["requests_per_s"] for r in rows], "-o", ms=4, label="throughput")
    axes[2].plot(rates, [r["goodput_requests_per_s"] for r in rows], "-s", ms=4, label="goodput (within SLO)")
    axes[2].plot(rates, rates, ":", color="gray", label="offered load")
    axes[2].set_ylabel("requests/s")
    for ax in axes:
        ax.set_xlabel("arrival rate (requests/s)")
        ax.grid(alpha=0.3)
        if knee is not None:
            ax.axvline(knee, color="tab:red", lw=1, label=f"knee {knee:g} req/s")
        if max_rate is not None:
            ax.axvline(max_rate, color="tab:green", lw=1, ls="--", label=f"max rate in SLO {max_rate:g} req/s")
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
