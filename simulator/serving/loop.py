"""The serving event loop: arrivals, scheduler decisions and iterations on one device, in time order.

The device runs one iteration at a time. Whenever it is free the scheduler picks the next batch from the requests
that have arrived; the iteration's time and energy come from :class:`.cost_model.IterationCoster`; requests that
arrive meanwhile join the queue at their arrival time and are considered at the next decision. When nothing can
run, time jumps to the next arrival. A request whose KV need can never fit is rejected on arrival.

The number of requests in the system (waiting or running) is integrated over time from the scheduler's own
queues, so that Little's law can be checked against the requests' latencies independently.

Pipeline parallelism (:func:`serve_pipelined`): with ``pp`` stages the system runs ``pp`` *virtual engines*, as
vLLM (v0) does: each has its own scheduler with ``1/pp`` of the KV blocks (vLLM's ``Scheduler`` divides
``num_gpu_blocks`` by ``pipeline_parallel_size``), a new request goes to the engine with the fewest unfinished
requests, and each engine has one micro-batch (its iteration) in flight at a time: it schedules its next one when
the last has left the final stage. A micro-batch enters stage ``j`` when it has left stage ``j - 1`` and crossed
the link (the gap of its cost profile) and stage ``j`` is free; each stage works on one micro-batch at a time, in
the order they reach it. So iterations of different engines overlap across the stages (Sarathi-Serve's and vLLM's
pipeline scheduling), a request alone still sees one pass's full traversal, and a stage is never busier than the
wall clock. Links are delays, not shared resources (their transfers are short next to a stage's work).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from hardware.errors import HwsimError
from simulator.serving.cost_model import IterationCoster
from simulator.serving.request import Request
from simulator.serving.schedulers import Batch, Scheduler


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
    engine: int = 0  # the virtual engine (pipeline parallelism) that ran it


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
    stages: int = 1  # pipeline stages; above 1 iterations overlap and carry only their dynamic energy
    stage_busy_s: list[float] = field(default_factory=list)  # pipelines: each stage's busy time (s)

    @property
    def busy_s(self) -> float:
        """Time the device spent running iterations (s); with pipeline stages, the stages' mean busy time."""
        if self.stages > 1:
            return sum(self.stage_busy_s) / self.stages
        return sum(i.end_s - i.start_s for i in self.iterations)

    @property
    def energy_j(self) -> float:
        """Iterations' energy plus static power while idle (J); with pipeline stages, the iterations' dynamic
        energy plus static power over the whole run."""
        if self.stages > 1:
            return sum(i.energy_j for i in self.iterations) + self.idle_power_w * (self.end_s - self.start_s)
        idle = max(0.0, (self.end_s - self.start_s) - self.busy_s)
        return sum(i.energy_j for i in self.iterations) + self.idle_power_w * idle


#: ``progress(done, total)``: requests finished or rejected so far, of all; called after every iteration
Progress = Callable[[int, int], None]


def serve(requests: list[Request], scheduler: Scheduler, coster: IterationCoster,
          progress: Progress | None = None) -> ServingRun:
    """Run ``requests`` (sorted by arrival) through ``scheduler`` on the device ``coster`` models."""
    pending = deque(sorted(requests, key=lambda r: r.arrival_s))
    total = len(pending)
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
        if progress is not None:
            progress(total - len(pending) - scheduler.in_system, total)
    out.end_s = now
    out.preemptions = scheduler.preemptions
    out.idle_power_w = coster.static_w
    return out


def serve_pipelined(requests: list[Request], schedulers: list[Scheduler], coster: IterationCoster,
                    progress: Progress | None = None) -> ServingRun:
    """Run ``requests`` on ``len(schedulers)`` virtual engines whose micro-batches overlap across the pipeline
    stages of ``coster`` (see the module docstring). With one engine and no stages it reproduces :func:`serve`."""
    k = len(schedulers)
    pending = deque(sorted(requests, key=lambda r: r.arrival_s))
    total = len(pending)
    out = ServingRun(list(pending), [], kv_blocks_total=sum(s.kv.total for s in schedulers),
                     block_size=schedulers[0].kv.block_size, scheduler=schedulers[0].name, stages=coster.stages)
    start = pending[0].arrival_s if pending else 0.0
    out.start_s = out.end_s = start
    ready = [math.inf] * k  # when each engine next schedules (inf: idle until a request comes)
    flight: list[tuple[Batch, Iteration] | None] = [None] * k
    free = [start] * max(1, coster.stages)  # when each stage is next free
    out.stage_busy_s = [0.0] * len(free)
    last = start

    def in_system() -> int:
        return sum(s.in_system for s in schedulers)

    def advance(t: float) -> None:
        nonlocal last
        out.in_system_area += in_system() * (t - last)
        last = t

    while True:
        t = min(ready)
        if pending and pending[0].arrival_s <= t:
            r = pending.popleft()
            advance(r.arrival_s)
            v = min(range(k), key=lambda i: schedulers[i].in_system)  # fewest unfinished, lowest index on ties
            reason = schedulers[v].never_fits(r)
            if reason:
                r.rejected = reason
                out.rejected.append(r)
            else:
                schedulers[v].add(r)
                if ready[v] == math.inf:
                    ready[v] = r.arrival_s
            continue
        if t == math.inf:
            break
        v = ready.index(t)
        advance(t)
        out.end_s = max(out.end_s, t)
        sched = schedulers[v]
        if flight[v] is not None:
            batch, it = flight[v]  # type: ignore[misc]
            it.in_system = in_system()
            sched.complete(batch, t)
            flight[v] = None
            if progress is not None:
                progress(total - len(pending) - in_system(), total)
        batch = sched.next_batch(t)
        if batch is None:
            if sched.in_system:
                raise HwsimError(f"serving: the {sched.name} scheduler stalled with {sched.in_system} requests in "
                                 "the system (a bug: please report it)")
            ready[v] = math.inf
            continue
        cost = coster.cost(batch.cost_chunks(), batch.contexts)
        if not cost.time_s > 0:
            raise HwsimError(f"serving: an iteration of {batch.tokens} tokens on {coster.target.name} costs no time")
        profile = cost.stages or ((0.0, cost.time_s),)
        at = t
        for j, (gap, busy) in enumerate(profile):
            at = max(at + gap, free[j]) + busy
            free[j] = at
            out.stage_busy_s[j] += busy
        end = at + max(0.0, cost.time_s - sum(g + b for g, b in profile))  # the pass's tail after the last stage
        energy = cost.dynamic_j if coster.stages > 1 else cost.energy_j
        it = Iteration(t, end, len(batch.chunks), sum(n for _, n, _ in batch.chunks), len(batch.decodes), energy,
                       sum(s.kv.used for s in schedulers), 0, v)
        out.iterations.append(it)
        flight[v] = (batch, it)
        ready[v] = end
    out.preemptions = sum(s.preemptions for s in schedulers)
    out.idle_power_w = coster.static_w
    return out
