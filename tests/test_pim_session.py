"""The PIM session's memos (plans, counts, energies, tasks reused across decode steps): a warm session answers what
a fresh one computes, per target, and the refresh debt's closed form is the REF-by-REF loop."""

from __future__ import annotations

import pytest

from hardware.pim.aim import AimTimer, PimCounts
from hardware.targets import load_target
from mapping.op_costs import Precision
from mapping.pim.mapper import PimSession, map_workload
from mapping.pim.options import PimOptions

BF16 = Precision("bfloat16", "bfloat16", "bfloat16")


def _warm_equals_fresh(model, name: str) -> list:
    # without refresh a step's program has no state from the steps before, so a session that has seen another step
    # (memo hits: the plan, the counts, the very task objects) must give what a fresh session computes
    off = PimOptions.parse({"refresh": False})
    steps = [model.decode(1, 40, BF16), model.decode(2, 41, BF16)]  # the same ops, other sizes
    assert len(steps[0].ops) == len(steps[1].ops)
    target = load_target(name)
    session = PimSession(target, off)
    warm = [map_workload(w, target, off, session) for w in steps]
    assert warm[1].tasks == map_workload(steps[1], target, off).tasks
    assert warm[0].tasks != warm[1].tasks
    with pytest.raises(ValueError, match="another target"):  # a session serves its own target only
        map_workload(steps[0], target, PimOptions.parse({}), session)
    return warm


def test_warm_session_answers_as_a_fresh_one(gpt2) -> None:
    _warm_equals_fresh(gpt2, "pim-gpt")


@pytest.mark.heavy
def test_warm_session_answers_as_a_fresh_one_on_aim_32ch(gpt2) -> None:
    # the instruction-level timer (memoised simulations of AiM programs); its answers are its own, not pim-gpt's
    warm = _warm_equals_fresh(gpt2, "aim-32ch")
    assert warm[1].tasks != _warm_equals_fresh(gpt2, "pim-gpt")[1].tasks


def test_refresh_closed_form_equals_ref_by_ref() -> None:
    timer = AimTimer(load_target("pim-gpt"), "fast")
    p = timer.p
    for debt, cycles in ((0, 1), (0, p["tREFI"] - 1), (0, p["tREFI"]), (17, 10 * p["tREFI"] + 3), (3000, 123457)):
        timer.debt.busy = debt
        c = PimCounts(cycles=cycles)
        timer._refresh(c)
        total, refs = debt + cycles, 0
        while total >= p["tREFI"]:
            total += p["tRFC"] - p["tREFI"]
            refs += 1
        assert (c.ref, c.cycles, timer.debt.busy) == (refs, cycles + refs * p["tRFC"], total)


def test_pim_counts_add_and_key_cover_every_field():
    # add() and key() spell the fields out one by one (a hot path): a field added to PimCounts must be in both
    import dataclasses

    names = [f.name for f in dataclasses.fields(PimCounts)]
    assert tuple(names) == PimCounts.FIELDS
    a = PimCounts(**{n: i + 1 for i, n in enumerate(names)})
    b = PimCounts(**{n: 10 * (i + 1) for i, n in enumerate(names)})
    a.add(b, times=3)
    assert [getattr(a, n) for n in names] == [31 * (i + 1) for i in range(len(names))]
    assert a.key() == tuple(getattr(a, n) for n in names)
