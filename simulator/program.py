"""A mapped program: the DAG of tasks a mapper produces for one workload on one target.

Mappers in ``mapping/`` build programs; the engine in :mod:`simulator.engine` executes them. A task occupies one
hardware resource (a PIM channel, an SM array, an ASIC, a link) for a duration its component model computed, after
all its dependencies finish. Tasks carry their energy and the bytes they move at each memory level so the engine
can total them; the engine never re-derives costs.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Task:
    """One unit of work on one resource.

    ``duration_s`` is the time the resource is busy (seconds); ``energy_j`` the dynamic energy of the task
    (joules); ``bytes_by_level`` the bytes it moves per memory level (e.g. ``dram_array``, ``bank_io``,
    ``channel``, ``offchip_link``, ``onchip_buffer``). ``op`` and ``block`` name the workload op and IR block it
    implements, for breakdowns; ``deps`` are names of tasks that must finish first. ``flops`` (useful FLOPs),
    ``bound`` (what limited it: compute / memory / latency / launch / link) and ``occupancy`` (fraction of the
    unit's resident-thread slots in use) are filled by models that know them (GPU kernels).
    """

    name: str
    resource: str
    duration_s: float
    energy_j: float = 0.0
    bytes_by_level: dict[str, int] = field(default_factory=dict)
    deps: list[str] = field(default_factory=list)
    op: str = ""
    block: str = ""
    energy_by_action: dict[str, float] = field(default_factory=dict)
    flops: float = 0.0
    bound: str = ""
    occupancy: float | None = None


@dataclass
class Resource:
    """A hardware unit tasks queue for: ``capacity`` tasks at once; ``static_power_w`` burned while the program
    runs, busy or idle (watts)."""

    name: str
    capacity: int = 1
    static_power_w: float = 0.0


@dataclass
class Program:
    """Tasks and the resources they run on, for one workload on one target."""

    resources: list[Resource]
    tasks: list[Task]

    def validate(self) -> None:
        """Check names are unique, every resource and dependency exists, and the graph is acyclic."""
        from hardware.errors import HwsimError

        resources = {r.name for r in self.resources}
        names: set[str] = set()
        for t in self.tasks:
            if t.name in names:
                raise HwsimError(f"program: task name '{t.name}' is used twice")
            names.add(t.name)
            if t.resource not in resources:
                raise HwsimError(f"program: task '{t.name}' runs on unknown resource '{t.resource}'")
            if t.duration_s < 0 or t.energy_j < 0:
                raise HwsimError(f"program: task '{t.name}' has a negative duration or energy")
        done: set[str] = set()
        for t in self.tasks:  # dependencies must come earlier in the list: this also rules out cycles
            missing = [d for d in t.deps if d not in done]
            if missing:
                raise HwsimError(f"program: task '{t.name}' depends on '{missing[0]}', which is not an earlier task")
            done.add(t.name)
