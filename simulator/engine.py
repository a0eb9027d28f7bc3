"""The event-driven engine: runs a :class:`simulator.program.Program` on simpy resources.

Each task is a simpy process that waits for its dependencies, queues for its resource, holds it for the task's
duration and records what it did. Time is kept in seconds (component models convert their cycles with their own
clocks before building tasks).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import simpy

from simulator.program import Program, Task


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


def _is_chain(program: Program) -> bool:
    """True when every task waits for exactly the one before it (a sequential dataflow)."""
    return all(t.deps == ([program.tasks[i - 1].name] if i else []) for i, t in enumerate(program.tasks))


def _run_chain(program: Program) -> list[TaskRecord]:
    """A chain needs no event queue: each task starts when the previous one ends (same result as simpy)."""
    records = []
    now = 0.0
    for task in program.tasks:
        records.append(TaskRecord(task, now, now + task.duration_s))
        now += task.duration_s
    return records


def run(program: Program) -> RunResult:
    """Execute ``program`` and return its :class:`RunResult`."""
    program.validate()
    records = _run_chain(program) if _is_chain(program) else _run_events(program)
    return _summarise(program, records)


def _run_events(program: Program) -> list[TaskRecord]:
    """The general case: tasks as simpy processes queueing for resources."""
    env = simpy.Environment()
    resources = {r.name: simpy.Resource(env, capacity=r.capacity) for r in program.resources}
    finished: dict[str, simpy.Event] = {t.name: env.event() for t in program.tasks}
    records: list[TaskRecord] = []

    def process(task: Task):  # noqa: ANN202 - a simpy generator
        if task.deps:
            yield simpy.AllOf(env, [finished[d] for d in task.deps])
        with resources[task.resource].request() as slot:
            yield slot
            start = env.now
            yield env.timeout(task.duration_s)
            records.append(TaskRecord(task, start, env.now))
        finished[task.name].succeed()

    for task in program.tasks:
        env.process(process(task))
    env.run()
    return records


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
