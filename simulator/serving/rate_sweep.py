"""The same serving setup at several arrival rates: latency against load, the knee, the highest rate in the SLO.

- knee: the lowest swept rate whose p99 end-to-end latency is more than twice the p99 at the lowest rate (queueing
  has started to dominate);
- max rate in the SLO: the highest rate such that it and every lower swept rate keep SLO attainment (the share of
  requests within both TTFT and TPOT limits) at or above ``attainment`` (90% by default, as DistServe reports it).
"""

from __future__ import annotations

from typing import Any

from simulator.serving.arrivals import ArrivalSpec
from simulator.serving.distributions import LengthDist
from simulator.serving.loop import Progress
from simulator.serving.metrics import Slo, summarise
from simulator.serving.setup import ServingSetup, run_serving


def sweep_rates(setup: ServingSetup, arrivals: ArrivalSpec, rates: list[float], requests: int, prompt: LengthDist,
                gen: LengthDist, scheduler: str, max_batch: int, max_batch_tokens: int, seed: int,
                slo: Slo, progress: Progress | None = None) -> list[dict[str, Any]]:
    """One summary per rate (ascending), each with its ``rate``; ``progress(done, total)`` counts the requests of
    all the rates' runs."""
    rows = []
    for i, rate in enumerate(sorted(rates)):
        run = run_serving(setup, arrivals.with_rate(rate), requests, prompt, gen, scheduler, max_batch,
                          max_batch_tokens, seed, _offset(progress, i, len(rates)))
        row = summarise(run, slo, rate)
        row["rate"] = rate
        rows.append(row)
    return rows


def _offset(progress: Progress | None, run: int, runs: int) -> Progress | None:
    """``progress`` over ``runs`` runs of equal size, for the ``run``-th of them."""
    if progress is None:
        return None

    def report(done: int, total: int) -> None:
        progress(run * total + done, runs * total)

    return report


def knee(rows: list[dict[str, Any]], factor: float = 2.0) -> float | None:
    """The lowest rate whose p99 E2E exceeds ``factor`` times the lowest rate's (None if none does)."""
    if len(rows) < 2:
        return None
    base = rows[0]["e2e_s"]["p99"]
    if base is None:  # no request finished at the lowest rate
        return None
    return next((r["rate"] for r in rows[1:] if r["e2e_s"]["p99"] is None or r["e2e_s"]["p99"] > factor * base),
                None)


def max_rate_in_slo(rows: list[dict[str, Any]], attainment: float = 0.9) -> float | None:
    """The highest rate up to which every swept rate meets the SLO for ``attainment`` of requests."""
    best = None
    for r in rows:
        if r["slo_attainment"] < attainment:
            break
        best = r["rate"]
    return best
