"""The mapped program: the DAG of tasks a target plugin lowers one workload to, and the engine executes.

This is the contract between ``mapping/`` (target plugins build programs) and ``simulator/`` (the engine runs
them): it lives here so that both import it pointing down the layers. A task occupies one hardware resource (a PIM
channel group, a GPU stream, an ASIC, a link) for the duration its component model computed, after all its
dependencies finish; tasks whose dependencies allow it run at the same time on different resources. Tasks carry
their energy and the bytes they move at each memory level so the engine can total them; the engine never
re-derives costs. Memory levels are named by the program, with the role each plays, so that nothing downstream
guesses which level is DRAM.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from hardware.errors import HwsimError

#: Roles a memory level can play: off-chip DRAM of the device, on-chip SRAM/cache, a link between chips.
LEVEL_ROLES = ("dram", "cache", "onchip", "link", "pim_array")


_EMPTY: Mapping = MappingProxyType({})


def _frozen(mapping: Mapping) -> Mapping:
    """A read-only copy of ``mapping``; a read-only view is kept as it is (its owner handed it over read-only)."""
    if type(mapping) is MappingProxyType:
        return mapping
    return MappingProxyType(dict(mapping)) if mapping else _EMPTY


@dataclass(frozen=True, kw_only=True)
class Task:
    """One unit of work on one resource.

    ``duration_s`` is the time the resource is busy (seconds); ``energy_j`` the dynamic energy of the task
    (joules), split by action in ``energy_by_action``; ``bytes_by_level`` the bytes it moves per memory level
    (names declared by the program's ``levels``). ``deps`` are names of tasks that must finish first. ``op`` and
    ``block`` name the workload op (or kernel) and IR block it implements, for breakdowns. Kernel facts, filled by
    models that know them (GPU kernels): ``kind`` (gemm, attention, fused, all_reduce, ...), ``flops`` (useful
    FLOPs), ``bound`` (compute / memory / latency / launch / link) and ``occupancy`` (fraction of the unit's
    resident-thread slots in use).
    """

    name: str
    resource: str
    duration_s: float
    energy_j: float = 0.0
    bytes_by_level: Mapping[str, int] = field(default_factory=dict)
    energy_by_action: Mapping[str, float] = field(default_factory=dict)
    deps: tuple[str, ...] = ()
    op: str = ""
    block: str = ""
    kind: str = ""
    flops: float = 0.0
    bound: str = ""
    occupancy: float | None = None

    def __post_init__(self) -> None:
        if type(self.deps) is not tuple:
            object.__setattr__(self, "deps", tuple(self.deps))
        object.__setattr__(self, "bytes_by_level", _frozen(self.bytes_by_level))
        object.__setattr__(self, "energy_by_action", _frozen(self.energy_by_action))


@dataclass(frozen=True, kw_only=True)
class Resource:
    """A hardware unit tasks queue for: ``capacity`` tasks at once; ``static_power_w`` burned while the program
    runs, busy or idle (watts). ``in_order``: tasks are granted the unit in program order (a stream or command
    queue); otherwise whichever waiting task is ready first takes it."""

    name: str
    capacity: int = 1
    static_power_w: float = 0.0
    in_order: bool = True


@dataclass(frozen=True, kw_only=True)
class Program:
    """Tasks and the resources they run on, for one workload on one target.

    ``levels`` maps every memory-level name a task may use to its role (see :data:`LEVEL_ROLES`). Tasks are
    listed in a topological order (every dependency earlier in the list).
    """

    resources: tuple[Resource, ...]
    tasks: tuple[Task, ...]
    levels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "resources", tuple(self.resources))
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "levels", _frozen(self.levels))

    def level(self, role: str) -> str | None:
        """The name of the (first) memory level playing ``role``, or None."""
        return next((name for name, r in self.levels.items() if r == role), None)

    def is_chain(self) -> bool:
        """True when every task waits for exactly the one before it (a sequential dataflow)."""
        return all(t.deps == ((self.tasks[i - 1].name,) if i else ()) for i, t in enumerate(self.tasks))

    def validate(self) -> None:
        """Check names are unique, every resource, level and dependency exists, and the graph is acyclic."""
        resources = {r.name for r in self.resources}
        for name, role in self.levels.items():
            if role not in LEVEL_ROLES:
                raise HwsimError(f"program: memory level '{name}' has unknown role '{role}'; use one of "
                                 f"{', '.join(LEVEL_ROLES)}")
        names: set[str] = set()
        for t in self.tasks:
            if t.name in names:
                raise HwsimError(f"program: task name '{t.name}' is used twice")
            if t.resource not in resources:
                raise HwsimError(f"program: task '{t.name}' runs on unknown resource '{t.resource}'")
            if not (0 <= t.duration_s < math.inf and 0 <= t.energy_j < math.inf):  # also refuses NaN
                raise HwsimError(f"program: task '{t.name}' has a negative or undefined duration or energy")
            if self.levels and any(level not in self.levels for level in t.bytes_by_level):
                unknown = next(level for level in t.bytes_by_level if level not in self.levels)
                raise HwsimError(f"program: task '{t.name}' moves bytes at undeclared memory level '{unknown}'")
            missing = [d for d in t.deps if d not in names]
            if missing:  # dependencies must come earlier in the list: this also rules out cycles
                raise HwsimError(f"program: task '{t.name}' depends on '{missing[0]}', which is not an earlier task")
            names.add(t.name)


class ProgramBuilder:
    """Collects tasks in program order; ``after`` names the tasks a new one waits for (``None``: the previous one,
    which builds a chain)."""

    def __init__(self) -> None:
        self.tasks: list[Task] = []

    @property
    def last(self) -> str | None:
        """Name of the most recently added task."""
        return self.tasks[-1].name if self.tasks else None

    def add(self, after: tuple[str, ...] | list[str] | None = None, **fields: object) -> Task:
        """Append ``Task(**fields)`` depending on ``after`` (default: the previous task)."""
        if after is None:
            after = (self.last,) if self.last else ()
        task = Task(deps=tuple(dict.fromkeys(after)), **fields)  # type: ignore[arg-type]
        self.tasks.append(task)
        return task

    def build(self, resources: list[Resource], levels: Mapping[str, str]) -> Program:
        """The program of the tasks added so far."""
        return Program(resources=tuple(resources), tasks=tuple(self.tasks), levels=levels)
