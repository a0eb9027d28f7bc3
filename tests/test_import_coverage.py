"""The real-world ONNX corpus (tests/fixtures/corpus): every file imports, its facts match the manifest, and its
matmul FLOPs (prefill and one decode step) and weight bytes are within 1% of the manifest's analytic truth.
The default run checks one decoder and one other file per producer (and every weight precision); ``pytest -m
heavy`` checks all of them and runs ``simulate`` on the three targets.

The truth is computed by tests/fixtures/corpus/truth.py from the hand-written configs, never by hwsim. Files
that fail today are listed in ``KNOWN_FAILING`` (file -> reason) and marked ``xfail(strict=True)``: a fix makes the
test pass, the strict xfail then fails, and the entry has to be removed. ``python -m
simulator.validation.import_coverage`` prints the same checks as a table.
"""

from __future__ import annotations

import pytest

from simulator.validation.import_coverage import TARGETS, TOLERANCE, check_file, load_manifest

ENTRIES = {e["file"]: e for e in load_manifest()}

#: file -> why it fails on main today (import, facts, FLOPs or bytes); shrink it as the importer improves.
KNOWN_FAILING: dict[str, str] = {}

#: file -> why ``simulate`` fails on one of the three targets today (heavy test).
KNOWN_FAILING_SIMULATE: dict[str, str] = {}


def _representatives() -> set[str]:
    """One decoder and one other file per producer, and one file per weight precision: the default run's sample
    (each import costs ~0.3 s; ``pytest -m heavy`` checks every file). The held-out files add the two that failed
    before: DeiT, whose two learned tokens hid its image size, and DeBERTa-v2, whose If on shapes had no shape."""
    seen: dict[tuple, str] = {("heldout", 0): "optimum__deit__cls__model.onnx",
                              ("heldout", 1): "optimum__deberta_v2__features__model.onnx"}
    for name in sorted(ENTRIES):
        e = ENTRIES[name]
        if e.get("heldout"):
            continue
        seen.setdefault((e["producer"], e["part"] == "decoder"), name)
        seen.setdefault(("precision", e["precision"]["weights"]), name)
    return set(seen.values())


DEFAULT_RUN = _representatives()


def _params(known: dict[str, str], heavy_rest: bool) -> list:
    out = []
    for name in sorted(ENTRIES):
        marks = [pytest.mark.xfail(strict=True, reason=known[name])] if name in known else []
        if heavy_rest and name not in DEFAULT_RUN:
            marks.append(pytest.mark.heavy)
        out.append(pytest.param(name, marks=marks))
    return out


def test_manifest_is_consistent() -> None:
    assert len(ENTRIES) >= 60
    for name in KNOWN_FAILING | KNOWN_FAILING_SIMULATE:
        assert name in ENTRIES, f"KNOWN_FAILING names {name}, which is not in the manifest"
    for e in ENTRIES.values():
        t = e["truth"]
        assert t["prefill_matmul_flops"] > 0 and t["stored_weight_bytes"] > 0
        assert (t["decode_matmul_flops"] is None) == e["part"].startswith("encoder")


@pytest.mark.parametrize("name", _params(KNOWN_FAILING, heavy_rest=True))
def test_import_facts_flops_bytes(name: str) -> None:
    row = check_file(ENTRIES[name], simulate_targets=False)
    assert row.imported == "ok", row.imported
    assert row.facts_ok, row.mismatched()
    assert not row.errors, row.errors
    assert row.prefill_err is not None and abs(row.prefill_err) <= TOLERANCE, f"prefill FLOPs {row.prefill_err:+.2%}"
    if ENTRIES[name]["truth"]["decode_matmul_flops"] is not None:
        assert row.decode_err is not None and abs(row.decode_err) <= TOLERANCE, f"decode FLOPs {row.decode_err:+.2%}"
    assert row.weight_err is not None and abs(row.weight_err) <= TOLERANCE, f"weight bytes {row.weight_err:+.2%}"


@pytest.mark.heavy
@pytest.mark.parametrize("name", _params(KNOWN_FAILING_SIMULATE, heavy_rest=False))
def test_simulate_on_three_targets(name: str) -> None:
    row = check_file(ENTRIES[name], simulate_targets=True)
    assert row.imported == "ok", row.imported
    assert all(row.simulate[t] == "ok" for t in TARGETS), row.simulate
