"""The serving event loop: arrivals, scheduler decisions and iterations on one device, in time order.

The device runs one iteration at a time. Whenever it is free the scheduler picks the next batch from the requests
that have arrived; the iteration's time and energy come from :class:`.cost_model.IterationCoster`; requests that
arrive meanwhile join the queue at their arrival time and are considered at the next decision. When nothing can
run, time jumps to the next arrival. A request whose KV need can never fit is rejected on arrival.

The number of requests in the system (waiting or running) is integrated over time from the scheduler's own
queues, so that Little's law can be checked against the requests' latencies independently.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from hardware.errors import HwsimError
from simulator.serving.cost_model import IterationCoster
from simulator.serving.request import Request
from simulator.serving.schedulers import Scheduler


@dataclass
class Iteration:
    """One iteration: when it ran (s), what it held, what it cost (J) and the KV blocks in use during it."""

    start_s: float
    end_s: float
    prefills: int
    prefill_tokens: int
    decodes: int
    energy_j: float
    kv_blocks: int
    in_system: int


@dataclass
class ServingRun:
    """Everything a serving run produced."""

    requests: list[Request]
    rejected: list[Request]
    iterations: list[Iteration] = field(default_factory=list)
    kv_blocks_total: int = 0
    block_size: int = 16
    idle_power_w: float = 0.0
    in_system_area: float = 0.0  # integral of requests in the system over time (request-seconds)
    start_s: float = 0.0
    end_s: float = 0.0
    preemptions: int = 0
    scheduler: str = ""

    @property
    def busy_s(self) -> float:
        """Time the device spent running iterations (s)."""
        return sum(i.end_s - i.start_s for i in self.iterations)

    @property
    def energy_j(self) -> float:
        """Iterations' energy plus static power while idle (J)."""
        idle = max(0.0, (self.end_s - self.start_s) - self.busy_s)
        return sum(i.energy_j for i in self.iterations) + self.idle_power_w * idle


def serve(requests: list[Request], scheduler: Scheduler, coster: IterationCoster) -> ServingRun:
    """Run ``requests`` (sorted by arrival) through ``scheduler`` on the device ``coster`` models."""
    pending = deque(sorted(requests, key=lambda r: r.arrival_s))
    out = ServingRun(list(pending), [], kv_blocks_total=scheduler.kv.total, block_size=scheduler.kv.block_size,
                     scheduler=scheduler.name)
    now = pending[0].arrival_s if pending else 0.0
    out.start_s = now
    last = now  # time up to which the in-system integral is taken

    def arrive_until(t: float) -> None:
        nonlocal last
        while pending and pending[0].arrival_s <= t:
            r = pending.popleft()
            out.in_system_area += scheduler.in_system * (r.arrival_s - last)
            last = r.arrival_s
            reason = scheduler.never_fits(r)
            if reason:
                r.rejected = reason
                out.rejected.append(r)
            else:
                scheduler.add(r)

    while True:
        arrive_until(now)
        batch = scheduler.next_batch(now)
        if batch is None:
            if scheduler.in_system:
                raise HwsimError(f"serving: the {scheduler.name} scheduler stalled with {scheduler.in_system} "
                                 "requests in the system (a bug: please report it)")
            if not pending:
                break
            now = pending[0].arrival_s
            continue
        cost = coster.cost(batch.cost_chunks(), batch.contexts)
        if not cost.time_s > 0:
            raise HwsimError(f"serving: an iteration of {batch.tokens} tokens on {coster.target.name} costs no time")
        end = now + cost.time_s
        kv_blocks = scheduler.kv.used
        arrive_until(end)
        out.in_system_area += scheduler.in_system * (end - last)
        last = end
        out.iterations.append(Iteration(now, end, len(batch.chunks), sum(n for _, n, _ in batch.chunks),
                                        len(batch.decodes), cost.energy_j, kv_blocks, scheduler.in_system))
        scheduler.complete(batch, end)
        now = end
    out.end_s = now
    out.preemptions = scheduler.preemptions
    out.idle_power_w = coster.static_w
    return out
