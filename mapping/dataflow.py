"""Data dependencies between a workload's ops, for lowering to task DAGs.

An op waits for the tasks that produce the tensors it reads. Ops that become no task of their own (views, folded
shape arithmetic, layouts a mapping absorbs) pass their inputs' producers on to their outputs, so a consumer
waits for the real producer. Graph inputs and weights have no producer.
"""

from __future__ import annotations

from mapping.op_costs import OpCost

_NONE: frozenset[str] = frozenset()


class Dataflow:
    """Which tasks produced each tensor so far, as ops are lowered in workload order."""

    def __init__(self) -> None:
        self._source: dict[str, frozenset[str]] = {}

    def needs(self, op: OpCost) -> frozenset[str]:
        """Tasks that must finish before ``op`` can start (producers of its inputs)."""
        return self.ready_after(op.inputs)

    def ready_after(self, tensors: tuple[str, ...] | list[str]) -> frozenset[str]:
        """Tasks that produce ``tensors`` (a producer set that holds the others is returned as it is: mappers call
        this for every op of every decode step)."""
        get = self._source.get
        out: frozenset[str] | None = None
        for t in tensors:
            s = get(t)
            if s:
                out = s if out is None or out <= s else out if s <= out else out | s
        return _NONE if out is None else out

    def produced(self, op: OpCost, tasks: set[str] | frozenset[str] | str) -> None:
        """``op``'s outputs are ready when ``tasks`` finish."""
        done = frozenset([tasks]) if isinstance(tasks, str) else frozenset(tasks)
        for t in op.outputs:
            self._source[t] = done

    def passed_through(self, op: OpCost) -> None:
        """``op`` is no task: its outputs are ready when its inputs are."""
        self.produced(op, self.needs(op))
