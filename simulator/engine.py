"""The event-driven engine: runs a :class:`mapping.program.Program` on simpy resources.

Each task is a simpy process that waits for its dependencies, queues for its resource, holds it for the task's
duration and records what it did. Time is kept in seconds (component models convert their cycles with their own
clocks before building tasks).

Resources issue their tasks in program order (a CUDA stream, a DRAM controller's command queue, an ASIC's
instruction stream): a task is granted its resource only after every earlier task of that resource was granted
it. Under that rule a task starts at ``max(end of its dependencies, time a slot of its resource frees up, start of
the resource's previous task)``, which
:func:`_run_in_order` computes without an event queue; it equals the simpy run exactly (tests), and a pure chain
is its special case. A resource with ``in_order=False`` (a pool that takes whichever task is ready first) needs
the event queue.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field

import simpy

from mapping.program import Program, Task


@dataclass
class TaskRecord:
    """When a task ran (seconds from the start) and what it cost."""

    task: Task
    start_s: float
    end_s: float


@dataclass
class RunResult:
    """What a program run produced: makespan, energy, traffic and per-resource / per-block breakdowns.

    ``energy_j`` is dynamic energy of all tasks plus every resource's static power times the makespan.
    """

    latency_s: float
    dynamic_energy_j: float
    static_energy_j: float
    traffic_bytes: dict[str, int]
    busy_s: dict[str, float]
    records: list[TaskRecord] = field(default_factory=list)

    @property
    def energy_j(self) -> float:
        """Total energy (joules)."""
        return self.dynamic_energy_j + self.static_energy_j

    def idle_s(self, resource: str) -> float:
        """Time ``resource`` was idle during the run (seconds); capacity-1 resources only."""
        return max(0.0, self.latency_s - self.busy_s.get(resource, 0.0))

    def by_block(self) -> dict[str, dict[str, float]]:
        """Busy time, energy and bytes summed per IR block."""
        out: dict[str, dict[str, float]] = defaultdict(lambda: {"busy_s": 0.0, "energy_j": 0.0, "bytes": 0.0})
        for r in self.records:
            row = out[r.task.block or "(other)"]
            row["busy_s"] += r.end_s - r.start_s
            row["energy_j"] += r.task.energy_j
            row["bytes"] += sum(r.task.bytes_by_level.values())
        return dict(out)


def run(program: Program, events: bool = False) -> RunResult:
    """Execute ``program`` and return its :class:`RunResult` (``events``: force the simpy event queue)."""
    program.validate()
    in_order = all(getattr(r, "in_order", True) for r in program.resources)
    records = _run_events(program) if events or not in_order else _run_in_order(program)
    return _summarise(program, records)


def _run_in_order(program: Program) -> list[TaskRecord]:
    """List scheduling with in-order resources: exact for DAGs whose resources issue in program order."""
    free: dict[str, list[float]] = {r.name: [0.0] * max(1, r.capacity) for r in program.resources}
    issued: dict[str, float] = dict.fromkeys(free, 0.0)  # start of the resource's latest task: issue is in order
    end: dict[str, float] = {}
    records = []
    for task in program.tasks:
        deps = task.deps
        if len(deps) == 1:  # the common case (a chain): the same value max() gives
            ready = end[deps[0]]
        else:
            ready = max((end[d] for d in deps), default=0.0)
        slots = free[task.resource]
        if len(slots) == 1:  # one slot: the heap is that slot's free time
            start = max(ready, slots[0], issued[task.resource])
            finish = start + task.duration_s
            slots[0] = finish
        else:
            start = max(ready, heapq.heappop(slots), issued[task.resource])
            finish = start + task.duration_s
            heapq.heappush(slots, finish)
        issued[task.resource] = start
        end[task.name] = finish
        records.append(TaskRecord(task, start, finish))
    return records


def _run_events(program: Program) -> list[TaskRecord]:
    """The general case: tasks as simpy processes queueing for resources."""
    env = simpy.Environment()
    resources = {r.name: simpy.Resource(env, capacity=max(1, r.capacity)) for r in program.resources}
    ordered = {r.name for r in program.resources if getattr(r, "in_order", True)}
    finished: dict[str, simpy.Event] = {t.name: env.event() for t in program.tasks}
    granted: dict[str, simpy.Event] = {t.name: env.event() for t in program.tasks}
    previous: dict[str, str] = {}  # task -> the task before it on the same in-order resource
    last: dict[str, str] = {}
    for t in program.tasks:
        if t.resource in ordered and t.resource in last:
            previous[t.name] = last[t.resource]
        last[t.resource] = t.name
    records: list[TaskRecord] = []

    def process(task: Task):  # noqa: ANN202 - a simpy generator
        if task.deps:
            yield simpy.AllOf(env, [finished[d] for d in task.deps])
        if task.name in previous:
            yield granted[previous[task.name]]
        with resources[task.resource].request() as slot:
            yield slot
            granted[task.name].succeed()
            start = env.now
            yield env.timeout(task.duration_s)
            records.append(TaskRecord(task, start, env.now))
        finished[task.name].succeed()

    for task in program.tasks:
        env.process(process(task))
    env.run()
    order = {t.name: i for i, t in enumerate(program.tasks)}
    return sorted(records, key=lambda r: order[r.task.name])


def _summarise(program: Program, records: list[TaskRecord]) -> RunResult:
    latency = max((r.end_s for r in records), default=0.0)
    traffic: dict[str, int] = defaultdict(int)
    busy: dict[str, float] = defaultdict(float)
    for r in records:
        for level, n in r.task.bytes_by_level.items():
            traffic[level] += n
        busy[r.task.resource] += r.end_s - r.start_s
    static = sum(r.static_power_w for r in program.resources) * latency
    dynamic = sum(r.task.energy_j for r in records)
    return RunResult(latency, dynamic, static, dict(traffic), dict(busy), records)
