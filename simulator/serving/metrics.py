"""Serving metrics from a run's requests and iterations: latency percentiles, throughput, goodput, occupancy.

- TTFT: arrival to the first generated token (the end of the iteration that finishes the prompt's prefill).
- TPOT: a request's mean time per output token after the first, ``(finish - first token) / (gen_len - 1)``.
- TBT: time between consecutive tokens of a request, over every token of every finished request (Sarathi-Serve's
  metric: a decode stalled behind a prefill or a preemption shows here, where TPOT averages it away).
- Scheduling delay: arrival to the first iteration that admits the request.
- E2E: arrival to the last token.
- Throughput: generated tokens and finished requests per second of the run (first arrival to last token).
- Goodput: finished requests per second that met the SLO (TTFT and TPOT both within their limits);
  ``slo_attainment`` is their share of all requests (rejected ones count as missing it).
- Utilisation: fraction of the run the device was running an iteration (pipelines: each stage's busy fraction,
  averaged over the stages).
- Little's law: ``mean_in_system`` (time average of waiting + running requests, from the scheduler's queues) and
  ``arrival_rate x mean E2E`` (from the requests' timestamps) should agree on a long run; over the run's own
  window (first arrival to last completion, the drain included) ``window_rate_x_mean_e2e`` (finished requests per
  second of the window x mean E2E) equals ``mean_in_system`` exactly once every admitted request has finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.serving.loop import ServingRun


@dataclass(frozen=True)
class Slo:
    """Latency limits (s); ``None``: no limit on that metric."""

    ttft_s: float | None = None
    tpot_s: float | None = None

    def met(self, ttft: float | None, tpot: float | None) -> bool:
        """True if a finished request's TTFT and TPOT are within the limits."""
        if ttft is None:
            return False
        return (self.ttft_s is None or ttft <= self.ttft_s) and (self.tpot_s is None or tpot is None
                                                                 or tpot <= self.tpot_s)


def percentiles(values: list[float]) -> dict[str, float | None]:
    """mean, p50, p90, p99 and max of ``values``; ``None`` each when there is none (no request finished: a latency
    of nothing is not 0)."""
    if not values:
        return {"mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()), "p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def summarise(run: ServingRun, slo: Slo, arrival_rate: float | None = None) -> dict[str, Any]:
    """The metrics of ``run`` as one JSON-ready dict (seconds, tokens, joules)."""
    done = [r for r in run.requests if r.finish_s is not None]
    duration = max(run.end_s - run.start_s, 1e-30)
    tokens = sum(r.gen_len for r in done)
    prompt_tokens = sum(r.prompt_len for r in done)
    ttft = [r.ttft_s for r in done if r.ttft_s is not None]
    tpot = [r.tpot_s for r in done if r.tpot_s is not None]
    e2e = [r.e2e_s for r in done if r.e2e_s is not None]
    tbt = [g for r in done for g in r.tbt_s]
    delay = [r.scheduled_s - r.arrival_s for r in done if r.scheduled_s is not None]
    good = [r for r in done if slo.met(r.ttft_s, r.tpot_s)]
    energy = run.energy_j
    n = len(run.requests)
    span = run.requests[-1].arrival_s - run.requests[0].arrival_s if n > 1 else 0.0
    rate = arrival_rate if arrival_rate else ((n - 1) / span if span > 0 else 0.0)
    its = run.iterations
    weights = np.array([i.end_s - i.start_s for i in its]) if its else np.zeros(0)
    batch = np.array([i.prefills + i.decodes for i in its]) if its else np.zeros(0)
    kv = np.array([i.kv_blocks for i in its]) if its else np.zeros(0)
    busy = float(weights.sum())
    utilisation = run.busy_s / duration  # pipelines: the stages' mean, iterations overlap

    def tw_mean(x: np.ndarray) -> float:
        return float((x * weights).sum() / busy) if busy > 0 else 0.0

    return {
        "requests": n, "finished": len(done), "rejected": len(run.rejected),
        "rejections": [{"id": r.rid, "prompt_len": r.prompt_len, "gen_len": r.gen_len, "reason": r.rejected}
                       for r in run.rejected[:20]],
        "unfinished": n - len(done) - len(run.rejected),
        "duration_s": duration, "scheduler": run.scheduler,
        "ttft_s": percentiles(ttft), "tpot_s": percentiles(tpot), "e2e_s": percentiles(e2e),
        "tbt_s": percentiles(tbt), "scheduling_delay_s": percentiles(delay),
        "throughput": {"tokens_per_s": tokens / duration, "prompt_tokens_per_s": prompt_tokens / duration,
                       "requests_per_s": len(done) / duration},
        "slo": {"ttft_s": slo.ttft_s, "tpot_s": slo.tpot_s},
        "goodput_requests_per_s": len(good) / duration,
        "slo_attainment": len(good) / n if n else 0.0,
        "energy": {"total_j": energy, "per_token_j": energy / tokens if tokens else None,
                   "per_request_j": energy / len(done) if done else None,
                   "idle_power_w": run.idle_power_w},
        "utilisation": utilisation,
        "iterations": len(its), "preemptions": run.preemptions,
        "batch_size": {"mean": tw_mean(batch), "max": int(batch.max()) if len(batch) else 0},
        "kv_cache": {"blocks": run.kv_blocks_total, "block_size": run.block_size,
                     "mean_occupancy": tw_mean(kv) / run.kv_blocks_total if run.kv_blocks_total else 0.0,
                     "max_occupancy": float(kv.max()) / run.kv_blocks_total if len(kv) and run.kv_blocks_total else 0.0},
        "littles_law": {"mean_in_system": run.in_system_area / duration,
                        "arrival_rate_x_mean_e2e": rate * (float(np.mean(e2e)) if e2e else 0.0),
                        "arrival_rate": rate,
                        # over this run's window (first arrival to last completion): L = (finished / duration) x W
                        # holds exactly once every admitted request has finished, at any rate and run length
                        "window_rate_x_mean_e2e": len(e2e) / duration * (float(np.mean(e2e)) if e2e else 0.0)},
    }


def time_series(run: ServingRun, points: int = 2000) -> dict[str, list[float]]:
    """Batch size, KV occupancy and requests in system over time, thinned to at most ``points`` iterations."""
    its = run.iterations
    step = max(1, len(its) // points)
    rows = its[::step]
    total = run.kv_blocks_total or 1
    return {"t_s": [i.start_s - run.start_s for i in rows], "batch": [i.prefills + i.decodes for i in rows],
            "kv_occupancy": [i.kv_blocks / total for i in rows], "in_system": [i.in_system for i in rows],
            "prefill_tokens": [i.prefill_tokens for i in rows]}
