"""Every preset field is read by a model, when its schema says it is (hardware/field_use.py), and sweeps refuse
axes that change nothing.

The behavioural check: for each declared field of one preset per kind and a set of run settings, halving the field
changes the simulation result exactly when the declaration says the field is read under those settings."""

from __future__ import annotations

import pytest

from hardware.errors import HwsimError
from hardware.field_use import LABELS, Settings
from hardware.fpga.spec import HLS_ONLY
from hardware.targets import flatten, load_target, preset_names, schema_kinds, target_from_dict
from mapping.op_costs import Precision
from simulator.simulate import simulate
from simulator.sweep.spec import field_use, parse_precision_axis, sweep_from_dict

from conftest import EXAMPLES, FIXTURES, shared_model

MODEL = str(FIXTURES / "gpt2_ts.onnx")
#: fields the perturbation cannot test by halving a number (a string naming another preset file)
NOT_NUMERIC = {"dram", "part", "memory.standard"}

#: per kind: (options, precision, phase, target overrides) of the runs the declarations are checked under
RUNS = {
    "gpu": [({}, "default", "prefill", {}), ({"tf32": "true"}, "fp32", "prefill", {}), ({}, "bf16", "prefill", {}),
            ({}, "int8", "prefill", {}), ({}, "fp32", "prefill", {}), ({"launch": "graph"}, "default", "prefill", {}),
            ({"tp": 2}, "default", "prefill", {}), ({"tp": 2}, "default", "prefill", {"nvlink_bandwidth": 0}),
            ({"tp": 2, "allreduce": "nccl"}, "default", "prefill", {}),
            ({"attention": "naive"}, "default", "decode", {}), ({}, "default", "decode", {}),
            ({"attention": "mmha"}, "default", "decode", {}),
            ({"dram": "standard"}, "default", "prefill", {})],
    "pim": [({}, "default", "generate", {}), ({"refresh": False}, "default", "generate", {})],
    "fpga": [({}, "default", "generate", {}), ({"efficiency": 0.5}, "default", "generate", {}),
             ({"dram": "standard"}, "default", "generate", {})],
}
PRESETS = {"gpu": "a100-80gb", "pim": "pim-gpt", "fpga": "u55c"}
#: bounds (register occupancy, the PIM global buffer) that bind only on larger shapes than the fixture model's:
#: checked on GPT-2; the L2 latency of split-KV reductions binds only at contexts long enough to split the K/V
#: (checked in tests/test_gpu_model.py)
LARGE_SHAPES = {"registers_per_sm", "global_buffer", "l2_latency",
                #: NCCL's ring under the default one-shot all-reduce: messages above 256 KiB (checked with
                #: allreduce=nccl here and in tests/test_gpu_model.py)
                "link_latency", "link_step_latency",
                #: an FPGA board's off-chip memory: the fixture model fits the part's block RAM, which the capacity
                #: check counts too (a bare device, offchip_capacity 0, is checked in tests/test_review14.py)
                "offchip_capacity"}


@pytest.fixture(scope="module")
def model():
    return shared_model(MODEL)


def _set(data: dict, path: str, value) -> dict:
    out = {**data}
    node = out
    keys = path.split(".")
    for k in keys[:-1]:
        node[k] = {**node[k]}
        node = node[k]
    node[keys[-1]] = {**node[keys[-1]], "value": value}
    return out


def _perturbed(path: str, node: dict) -> float:
    """A value far from the preset's: a capacity too small for any model, a count a quarter, a size 3/4, a latency
    100x, any other number 1/100."""
    value = node["value"]
    if not value:
        return 1.0
    if "capacity" in path:
        return value * 1e-9
    if node.get("unit") == "" and float(value).is_integer() and value >= 2:
        return value // 4 or 1
    if node.get("unit", "").endswith("B"):  # on-chip storage: 3/4 still holds a tf32 GEMM tile
        return value * 0.75
    if node.get("unit") in ("s", "ms", "us", "ns"):  # latencies: floors that matter when long
        return value * 100
    return value * 0.01


def _result(model, data: dict, options: dict, precision: str, phase: str, prompt: int = 8):
    target = target_from_dict(data, "test")
    w, a, k = parse_precision_axis(precision)
    try:
        r = simulate(model, target, phase, 1, prompt, 2, Precision(w, a, k), dict(options), trace_steps=0)
    except HwsimError as exc:
        return str(exc)
    occupancy = tuple(k["occupancy"] for k in r.kernels()) if target.kind == "gpu" else ()
    return r.latency_s, r.energy_j, tuple(sorted(r.traffic_bytes.items())), occupancy


def test_every_schema_field_is_declared():
    presets = [load_target(name) for name in preset_names()]
    for t in presets:
        use = field_use(t.kind)
        assert [p for p, *_ in flatten(t) if p not in use and p not in LABELS] == [], t.name
    for kind in schema_kinds():  # and every declaration names a field some preset has
        fields = {p for t in presets if t.kind == kind for p, *_ in flatten(t)}
        assert set(field_use(kind)) - fields == set(), kind


@pytest.mark.parametrize("kind", list(RUNS))
def test_a_field_changes_results_exactly_when_declared_read(kind, model):
    base = load_target(PRESETS[kind]).model_dump(mode="json")
    use = field_use(kind)
    read_somewhere, wrong, first_read = set(), [], {}
    for runs_done, (options, precision, phase, overrides) in enumerate(RUNS[kind]):
        data = base
        for path, value in overrides.items():
            data = _set(data, path, value)
        settings = Settings(options, (parse_precision_axis(precision)[1],), (phase,),
                            {p: [v] for p, v in overrides.items()})
        ref = _result(model, data, options, precision, phase)
        assert not isinstance(ref, str), ref
        for path, declared in use.items():
            if path in NOT_NUMERIC or path in overrides:
                continue
            if runs_done and declared.read(settings, data) == first_read.get(path):
                continue  # after the first run, only the fields these settings flip are checked
            node = data
            for key in path.split("."):
                node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                continue  # a format the part lacks
            changed = _result(model, _set(data, path, _perturbed(path, node)), options, precision, phase)
            reads = declared.read(settings, data)
            if not runs_done:
                first_read[path] = reads
            if (changed != ref) != reads and not (reads and path in LARGE_SHAPES):
                wrong.append(f"{path} with {options}, {precision}, {phase}: declared {'read' if reads else 'not read'} "
                             f"({declared.when}) but {'changes' if changed != ref else 'does not change'} the result")
            if reads:
                read_somewhere.add(path)
    assert wrong == [], PRESETS[kind]
    unread = {p for p, d in use.items() if p not in NOT_NUMERIC and p not in read_somewhere}
    absent = {p for p in unread if p.startswith("tensor_peak.") and base["tensor_peak"].get(p.split(".")[1]) is None
              or base.get(p.split(".")[0]) is None}  # formats the part lacks, unset fields
    # block RAM is read by the capacity check only on a bare device (xcvu13p, tests/test_review14.py), not u55c
    assert unread - absent - {p for p, d in use.items() if d is HLS_ONLY} - {"bram36"} == set()


@pytest.mark.parametrize("target, axis, options, why", [
    ("a100-80gb", "graph_launch_overhead.value", {}, "only with --set launch=graph"),
    ("a100-80gb", "nvlink_bandwidth.value", {}, "tp > 1"),
    ("a100-80gb", "pcie_bandwidth.value", {"tp": 2}, "without NVLink"),
    ("a100-80gb", "tensor_peak.int8.value", {}, "only when kernels compute in int8"),
    ("pim-gpt", "energy.refresh.value", {"refresh": False}, "refresh=false"),
    ("u55c", "lut.value", {}, "hwsim hls"),
    ("u55c", "dsp_efficiency.value", {"efficiency": 0.5}, "efficiency"),
    ("pim-gpt", "channels.source", {}, "a source is text"),
    ("pim-gpt", "description", {}, "a label"),
    ("a100-80gb", "name", {}, "a label"),
])
def test_sweep_refuses_an_axis_no_model_reads(target, axis, options, why):
    with pytest.raises(HwsimError) as exc:
        sweep_from_dict({"model": MODEL, "target": target, "parameters": {axis: [1]}, "options": options}, "s.yaml")
    msg = str(exc.value)
    assert "\n" not in msg and f"field 'parameters.{axis}': axis refused" in msg and why in msg, msg


def test_sweep_accepts_the_axis_once_its_setting_holds():
    for target, axis, options, precision in (("a100-80gb", "graph_launch_overhead.value", {"launch": "graph"}, "default"),
                                            ("a100-80gb", "nvlink_bandwidth.value", {"tp": 2}, "default"),
                                            ("t4", "pcie_bandwidth.value", {"tp": 2}, "default"),
                                            ("a100-80gb", "tensor_peak.int8.value", {}, "int8"),
                                            ("v100", "tensor_peak.fp16.value", {}, "bf16")):
        sw = sweep_from_dict({"model": MODEL, "target": target, "parameters": {axis: [1, 2]}, "options": options,
                              "workload": {"precision": [precision]}})
        assert sw.size == 2


@pytest.mark.parametrize("preset, path, factor", [("a100-80gb", "registers_per_sm", 0.5), ("pim-gpt", "global_buffer", 0.25)])
def test_register_and_buffer_bounds_bind_on_a_full_size_model(preset, path, factor):
    model = shared_model(EXAMPLES / "gpt2.onnx")
    base = load_target(preset).model_dump(mode="json")
    ref = _result(model, base, {}, "default", "prefill", prompt=256)
    assert _result(model, _set(base, path, base[path]["value"] * factor), {}, "default", "prefill", prompt=256) != ref
