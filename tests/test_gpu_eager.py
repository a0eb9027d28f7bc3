"""The eager stack's host time per op from the published eager machines (simulator/validation/gpu_eager.py): the
secant search recovers a known host time, the default is the machines' median, and each machine is checked with
the others' median only."""

from __future__ import annotations

import pytest

from simulator.validation import gpu_eager


def _point(ms: float, source: str = "synthetic", target: str = "a100-80gb") -> dict:
    return {"kind": "decode_step", "target": target, "source": source, "model": "gpt2.onnx", "precision": "fp16",
            "prompt": 64, "gen": 64, "launch": "stream", "stack": "eager", "ms_per_token": ms}


@pytest.mark.heavy  # a few seconds: GPT-2 decode steps
def test_implied_host_time_recovers_the_one_a_step_was_made_with():
    # a step predicted with 30 us per op is host-bound for GPT-2 on an A100, so the search must return 30 us;
    # a measured step below the kernels alone implies nothing (the GPU, not the host, is the bound)
    made = gpu_eager.predict_with(_point(1.0), 30.0)
    assert gpu_eager.implied_host_op_us(_point(made * 1e3)) == pytest.approx(30.0, rel=2e-3)
    bare = gpu_eager.predict_with(_point(1.0), 0.0)
    assert gpu_eager.implied_host_op_us(_point(bare * 1e3 * 0.9)) is None
    with pytest.raises(ValueError, match="not above hwsim's kernels alone"):
        gpu_eager.solve_host_op_us(_point(bare * 1e3 * 0.9))
    # just above the hinge (the host barely the bound) the search still converges; the point is too near the GPU's
    # bound to identify a host time, which implied_host_op_us says by None
    near = _point(bare * 1e3 * 1.02)
    x = gpu_eager.solve_host_op_us(near)
    assert gpu_eager.predict_with(near, x) == pytest.approx(bare * 1.02, rel=gpu_eager.TOLERANCE)
    assert gpu_eager.implied_host_op_us(near) is None
    # a per-token time that carries a share of the prefill is solved with the prefill's host time in it
    pre = dict(_point(1.0), includes_prefill=True)
    pre["ms_per_token"] = gpu_eager.predict_with(pre, 30.0) * 1e3
    assert gpu_eager.solve_host_op_us(pre) == pytest.approx(30.0, rel=2e-3)
    # a point that sets its own host time is not one of the published eager machines' points
    own = dict(_point(1.0), options={"host_op_us": 5.0})
    assert not gpu_eager.is_eager(own) and gpu_eager.is_eager(_point(1.0))


def test_default_is_the_machines_median_and_each_is_checked_without_itself(monkeypatch):
    values = {"a on x": (10.0, [10.0]), "b on y": (20.0, [19.0, 21.0]), "c on z": (40.0, [40.0]),
              "d on w": (None, [None])}
    monkeypatch.setattr(gpu_eager, "machine_values", lambda points=None, in_unit="op": values)
    assert gpu_eager.calibrated_host_op_us() == 20.0
    assert gpu_eager.held_out_host_op_us({"source": "a", "target": "x"}) == 30.0  # median of 20 and 40
    assert gpu_eager.held_out_host_op_us({"source": "c", "target": "z"}) == 15.0
    assert gpu_eager.held_out_host_op_us({"source": "d", "target": "w"}) == 20.0  # implies none: all the others


@pytest.mark.heavy
def test_eager_default_is_pinned_to_the_published_machines_median():
    from mapping.gpu.stack import EAGER_HOST_PER_OP

    assert gpu_eager.calibrated_host_op_us() == pytest.approx(EAGER_HOST_PER_OP * 1e6, rel=0.01)  # to 1%


@pytest.mark.heavy
def test_eager_per_dispatch_default_and_span_are_pinned_to_the_published_machines():
    from mapping.gpu.stack import EAGER_HOST_PER_DISPATCH, EAGER_HOST_PER_DISPATCH_SPAN

    assert gpu_eager.calibrated_host_op_us("dispatch") == pytest.approx(EAGER_HOST_PER_DISPATCH * 1e6, rel=0.01)
    assert gpu_eager.host_op_span_us("dispatch") == pytest.approx(
        tuple(v * 1e6 for v in EAGER_HOST_PER_DISPATCH_SPAN), rel=0.01)


def test_published_dispatch_counts_are_the_measured_ones():
    # every eager point that gives host_dispatches gives its source's count from eager_dispatch.json (the case
    # named by its source and model), and every counted case is used by a point or the PIM-GPT baseline
    import json

    from simulator.validation.gpu_published import load_points

    from conftest import ROOT

    cases = json.loads((ROOT / "hardware" / "calibration" / "host" / "eager_dispatch.json").read_text())["cases"]
    used = set()
    for p in load_points()[1]:
        if "host_dispatches" in p.get("options", {}):
            mine = [c for c in cases if c.split("/")[0] == p["source"]]  # the source's cases; by model if several
            name = mine[0] if len(mine) == 1 else f"{p['source']}/{p['model'].removesuffix('.onnx')}"
            assert p["options"]["host_dispatches"] == round(cases[name]["per_step"]["aten"]), name
            assert cases[name]["setup"]["layers"] > 0 and cases[name]["per_step"]["kernels"] < cases[name]["per_step"]["aten"]
            used.add(name)
    # the PIM-GPT report's baseline names a case per model whose layer count is the model's
    from mapping.workloads import Model
    from simulator.validation.pim_gpt import load_reference

    for model, case in load_reference()["setup"]["baseline_stack"]["dispatch_cases"].items():
        layers = sum(1 for b in Model(str(ROOT / "examples" / f"{model}.onnx")).ir.blocks if b.attention is not None)
        assert cases[case]["setup"]["layers"] == layers, (model, case)
        used.add(case)
    assert used == set(cases)


def test_dispatch_and_op_units_pool_separately():
    # a point with host_dispatches is held out among the dispatch-unit values, one without among the op-unit ones
    assert gpu_eager.unit({"options": {"host_dispatches": 10}}) == "dispatch"
    assert gpu_eager.unit({"options": {"kv_update": "concat"}}) == "op" and gpu_eager.unit({}) == "op"
    ops = [p for p in gpu_eager._published_eager("op")]
    assert ops and all("host_dispatches" not in p.get("options", {}) for p in ops)
    assert all(gpu_eager.unit(p) == "dispatch" for p in gpu_eager._published_eager("dispatch"))


@pytest.mark.heavy
def test_eager_span_is_pinned_to_the_published_machines_extremes():
    from mapping.gpu.stack import EAGER_HOST_PER_OP_SPAN

    low, high = gpu_eager.host_op_span_us()
    assert (low, high) == pytest.approx(tuple(v * 1e6 for v in EAGER_HOST_PER_OP_SPAN), rel=0.01)


def test_published_eager_points_are_all_decode_steps():
    # gpu_eager's rule covers decode steps; an eager point of another kind would silently take the default its
    # machine's other points helped set
    from simulator.validation.gpu_published import load_points

    eager = [p for p in load_points()[1] if p.get("stack") == "eager"]
    assert eager and all(p["kind"] == "decode_step" for p in eager)


@pytest.mark.heavy
def test_report_rows_use_the_other_machines_host_time():
    from simulator.validation import gpu as validation
    from simulator.validation.gpu_published import load_points, rows

    eager = [p for p in load_points()[1] if gpu_eager.is_eager(p)]
    for point, row in zip(eager, rows(validation.Comparison, eager)):
        held = gpu_eager.held_out_host_op_us(point)
        own = gpu_eager.machine_values()[gpu_eager.machine(point)][0]
        assert row.predicted == pytest.approx(gpu_eager.predict_with(point, held) * 1e6)
        assert own is None or held != own
        assert row.status == "independent"
    # a machine's own rows do not move when its measurements do (they only set the others' medians)
    bnb = [p for p in eager if p["source"] == "bnb-optimum-bench" and p["target"] == "h100-sxm"]
    before = gpu_eager.held_out_host_op_us(bnb[0])
    gpu_eager._implied.update({gpu_eager._key(p): 99.0 for p in bnb})
    try:
        assert gpu_eager.held_out_host_op_us(bnb[0]) == before
    finally:
        for p in bnb:
            gpu_eager._implied.pop(gpu_eager._key(p))
