"""The event-driven engine on hand-checkable programs."""

from __future__ import annotations

import pytest

from hardware.errors import HwsimError
from simulator.engine import run
from simulator.program import Program, Resource, Task


def test_serial_tasks_on_one_resource_add_up() -> None:
    program = Program([Resource("pim", static_power_w=2.0)],
                      [Task("a", "pim", 1e-6, 1e-9, {"channel": 64}), Task("b", "pim", 2e-6, 3e-9, {"channel": 32})])
    result = run(program)
    assert result.latency_s == pytest.approx(3e-6)
    assert result.dynamic_energy_j == pytest.approx(4e-9)
    assert result.static_energy_j == pytest.approx(2.0 * 3e-6)
    assert result.traffic_bytes == {"channel": 96}
    assert result.idle_s("pim") == pytest.approx(0.0)


def test_independent_tasks_on_two_resources_overlap_and_deps_serialise() -> None:
    program = Program([Resource("pim"), Resource("asic")], [
        Task("vmm", "pim", 5e-6, block="layer0.mlp"),
        Task("other", "asic", 2e-6),
        Task("gelu", "asic", 1e-6, deps=["vmm"], block="layer0.mlp"),
    ])
    result = run(program)
    # vmm [0,5], other [0,2] in parallel, gelu waits for vmm: [5,6]
    assert result.latency_s == pytest.approx(6e-6)
    assert result.busy_s == {"pim": pytest.approx(5e-6), "asic": pytest.approx(3e-6)}
    assert result.idle_s("asic") == pytest.approx(3e-6)
    assert result.by_block()["layer0.mlp"]["busy_s"] == pytest.approx(6e-6)


def test_capacity_two_runs_two_tasks_at_once() -> None:
    tasks = [Task(f"t{i}", "sms", 1.0) for i in range(5)]
    assert run(Program([Resource("sms", capacity=2)], tasks)).latency_s == pytest.approx(3.0)


def test_bad_programs_are_rejected_with_the_task_named() -> None:
    with pytest.raises(HwsimError, match="'b' depends on 'c'"):
        run(Program([Resource("r")], [Task("a", "r", 1.0), Task("b", "r", 1.0, deps=["c"])]))
    with pytest.raises(HwsimError, match="unknown resource 'gpu'"):
        run(Program([Resource("r")], [Task("a", "gpu", 1.0)]))
    with pytest.raises(HwsimError, match="negative"):
        run(Program([Resource("r")], [Task("a", "r", -1.0)]))


def test_chain_fast_path_matches_the_event_queue() -> None:
    from simulator.engine import _run_chain, _run_events

    tasks = [Task("a", "pim", 1e-6), Task("b", "asic", 2e-6, deps=["a"]), Task("c", "pim", 3e-6, deps=["b"])]
    program = Program([Resource("pim"), Resource("asic")], tasks)
    chain = [(r.task.name, r.start_s, r.end_s) for r in _run_chain(program)]
    events = sorted(((r.task.name, r.start_s, r.end_s) for r in _run_events(program)), key=lambda x: x[1])
    assert [c[0] for c in chain] == [e[0] for e in events]
    for c, e in zip(chain, events):
        assert c[1:] == pytest.approx(e[1:])
