"""The event-driven engine on hand-checkable programs, and the in-order scheduler against the event queue."""

from __future__ import annotations

import random

import pytest

from hardware.errors import HwsimError
from mapping.program import Program, ProgramBuilder, Resource, Task
from simulator.engine import _run_events, _run_in_order, run


def _program(resources, tasks, levels=None) -> Program:
    return Program(resources=resources, tasks=tasks, levels=levels or {})


def test_serial_tasks_on_one_resource_add_up() -> None:
    program = _program([Resource(name="pim", static_power_w=2.0)],
                       [Task(name="a", resource="pim", duration_s=1e-6, energy_j=1e-9, bytes_by_level={"channel": 64}),
                        Task(name="b", resource="pim", duration_s=2e-6, energy_j=3e-9, bytes_by_level={"channel": 32})])
    result = run(program)
    assert result.latency_s == pytest.approx(3e-6)
    assert result.dynamic_energy_j == pytest.approx(4e-9)
    assert result.static_energy_j == pytest.approx(2.0 * 3e-6)
    assert result.traffic_bytes == {"channel": 96}
    assert result.idle_s("pim") == pytest.approx(0.0)


def test_independent_tasks_on_two_resources_overlap_and_deps_serialise() -> None:
    program = _program([Resource(name="pim"), Resource(name="asic")], [
        Task(name="vmm", resource="pim", duration_s=5e-6, block="layer0.mlp"),
        Task(name="other", resource="asic", duration_s=2e-6),
        Task(name="gelu", resource="asic", duration_s=1e-6, deps=["vmm"], block="layer0.mlp"),
    ])
    for events in (False, True):
        result = run(program, events=events)
        # vmm [0,5], other [0,2] in parallel, gelu waits for vmm: [5,6]
        assert result.latency_s == pytest.approx(6e-6)
        assert result.busy_s == {"pim": pytest.approx(5e-6), "asic": pytest.approx(3e-6)}
        assert result.idle_s("asic") == pytest.approx(3e-6)
        assert result.by_block()["layer0.mlp"]["busy_s"] == pytest.approx(6e-6)


def test_capacity_two_runs_two_tasks_at_once() -> None:
    tasks = [Task(name=f"t{i}", resource="sms", duration_s=1.0) for i in range(5)]
    for events in (False, True):
        assert run(_program([Resource(name="sms", capacity=2)], tasks), events=events).latency_s == pytest.approx(3.0)


def test_in_order_resource_waits_for_its_earlier_task_out_of_order_does_not() -> None:
    # b (listed first on "r") waits 5 s for a; c is ready at 0 but an in-order queue serves b first
    def tasks():
        return [Task(name="a", resource="x", duration_s=5.0), Task(name="b", resource="r", duration_s=1.0, deps=["a"]),
                Task(name="c", resource="r", duration_s=1.0)]
    in_order = run(_program([Resource(name="x"), Resource(name="r")], tasks()))
    assert {r.task.name: r.start_s for r in in_order.records} == {"a": 0.0, "b": 5.0, "c": 6.0}
    pool = run(_program([Resource(name="x"), Resource(name="r", in_order=False)], tasks()))
    assert {r.task.name: r.start_s for r in pool.records} == {"a": 0.0, "b": 5.0, "c": 0.0}


def test_bad_programs_are_rejected_with_the_task_named() -> None:
    r = [Resource(name="r")]
    with pytest.raises(HwsimError, match="'b' depends on 'c'"):
        run(_program(r, [Task(name="a", resource="r", duration_s=1.0),
                         Task(name="b", resource="r", duration_s=1.0, deps=["c"])]))
    with pytest.raises(HwsimError, match="unknown resource 'gpu'"):
        run(_program(r, [Task(name="a", resource="gpu", duration_s=1.0)]))
    with pytest.raises(HwsimError, match="negative"):
        run(_program(r, [Task(name="a", resource="r", duration_s=-1.0)]))
    with pytest.raises(HwsimError, match="negative or undefined"):
        run(_program(r, [Task(name="a", resource="r", duration_s=float("nan"))]))
    with pytest.raises(HwsimError, match="undeclared memory level 'hbm'"):
        run(_program(r, [Task(name="a", resource="r", duration_s=1.0, bytes_by_level={"hbm": 1})], {"dram": "dram"}))
    with pytest.raises(HwsimError, match="unknown role"):
        run(_program(r, [], {"x": "fast-ram"}))


def test_tasks_are_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        Task("a", "r", 1.0)  # type: ignore[misc]
    t = Task(name="a", resource="r", duration_s=1.0, bytes_by_level={"dram": 4})
    with pytest.raises(AttributeError):
        t.duration_s = 2.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        t.bytes_by_level["dram"] = 5  # type: ignore[index]


def test_chain_is_a_special_case_of_the_dag() -> None:
    b = ProgramBuilder()
    for i, res in enumerate(["pim", "asic", "pim", "pim", "asic"]):
        b.add(name=f"t{i}", resource=res, duration_s=float(i + 1))
    program = b.build([Resource(name="pim"), Resource(name="asic")], {})
    assert program.is_chain()
    result = run(program)
    assert result.latency_s == pytest.approx(15.0)  # a chain's makespan is the sum of its durations


@pytest.mark.parametrize("seed", range(12))
def test_in_order_scheduler_equals_the_event_queue_on_random_dags(seed: int) -> None:
    rng = random.Random(seed)
    resources = [Resource(name=f"r{i}", capacity=rng.choice([1, 1, 2, 3])) for i in range(rng.randint(1, 4))]
    tasks: list[Task] = []
    for i in range(rng.randint(5, 60)):
        deps = rng.sample([t.name for t in tasks], k=min(len(tasks), rng.randint(0, 3)))
        tasks.append(Task(name=f"t{i}", resource=rng.choice(resources).name, deps=deps,
                          duration_s=rng.choice([0.0, rng.random(), rng.randint(1, 5)])))
    program = _program(resources, tasks)
    fast = [(r.task.name, r.start_s, r.end_s) for r in _run_in_order(program)]
    events = [(r.task.name, r.start_s, r.end_s) for r in _run_events(program)]
    assert [f[0] for f in fast] == [e[0] for e in events]
    for f, e in zip(fast, events):
        assert f[1:] == pytest.approx(e[1:], abs=1e-12)
    # invariants: no task starts before its dependencies end; makespan >= the busiest resource's work / capacity
    end = {name: stop for name, _, stop in fast}
    start = {name: begin for name, begin, _ in fast}
    assert all(start[t.name] >= end[d] - 1e-12 for t in tasks for d in t.deps)
    makespan = max(end.values())
    for r in resources:
        assert makespan >= sum(t.duration_s for t in tasks if t.resource == r.name) / r.capacity - 1e-9
