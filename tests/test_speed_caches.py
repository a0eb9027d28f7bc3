"""Caches that make serving fast must not change a number: ONNX shape inference memoised across nodes and bindings
(mapping/shape_binding.py) and kernel models memoised within one GPU mapping and across the workloads of one run
(mapping/gpu/mapper.py)."""

from __future__ import annotations

import re
import warnings

import pytest

from mapping import shape_binding
from mapping.onnx_graph import load_graph
from mapping.shape_binding import bind

FIXTURES = "tests/fixtures"


@pytest.mark.parametrize("path, dims", [
    ("models/gpt2_ts.onnx", {"batch": 2, "seq": 7}),
    ("graphfront/qwen2moe_ts.onnx", None),  # MoE routing: data-dependent sizes are never taken from the cache
])
def test_shape_inference_cache_gives_the_uncached_shapes(path, dims):
    graph = load_graph(f"{FIXTURES}/{path}")
    if dims is None:
        dims = {d: 5 for d in sorted({d for t in graph.inputs for d in (graph.tensors[t].dims or ())
                                      if isinstance(d, str)})}
    shape_binding._INFERRED.clear()
    cold = bind(graph, dims)
    cached = len(shape_binding._INFERRED)
    warm = bind(graph, dims)
    assert cached > 0
    assert warm.shapes == cold.shapes and warm.dtypes == cold.dtypes and warm.notes == cold.notes
    other = {k: v + 3 for k, v in dims.items()}  # a new binding reuses nothing it should not
    shape_binding._INFERRED.clear()
    fresh = bind(graph, other)
    assert bind(graph, other).shapes == fresh.shapes and fresh.shapes != cold.shapes


def test_gpu_kernel_memo_keeps_each_layers_kernel_names_and_times():
    from hardware.targets import load_target
    from mapping.gpu.mapper import map_workload
    from mapping.workloads import Model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = Model(f"{FIXTURES}/models/gpt2_ts.onnx").decode(2, 16)
    program = map_workload(w, load_target("a100-80gb"))
    names = [t.name for t in program.tasks]
    assert len(names) == len(set(names))
    by_layer: dict[str, list[float]] = {}
    for t in program.tasks:
        if t.kind in ("gemm", "attention"):
            by_layer.setdefault(re.sub(r"\.\d+\.", ".L.", t.op), []).append(t.duration_s)
    # the two layers' kernels are separate tasks with their own names and equal times
    assert any(len(v) == 2 for v in by_layer.values())
    assert all(len(set(v)) == 1 for v in by_layer.values() if len(v) == 2)
    assert {t.op for t in program.tasks if "decoder.1." in t.op} and {t.op for t in program.tasks if "decoder.0." in t.op}


def test_a_runs_gpu_memo_gives_every_decode_step_the_program_a_fresh_mapping_gives():
    """One session per (target, options) shares kernel timings across a generation's steps (run memo, projection
    GEMMs, task facts): each step's program must equal the one mapped with no memo, and interleaving two targets'
    and two option sets' sessions on the same model's workloads must not leak one's timings into another's."""
    from hardware.targets import load_target
    from mapping.gpu.mapper import map_workload
    from mapping.gpu.plugin import PLUGIN
    from mapping.op_costs import Precision

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from mapping.workloads import Model

        model = Model(f"{FIXTURES}/models/gpt2_ts.onnx")
        steps = list(model.generate(2, 8, 5, Precision()).steps())
        runs = [(load_target(name), PLUGIN.parse_options(opts)) for name, opts in (
            ("a100-80gb", {}), ("h100-sxm", {}), ("a100-80gb", {"stack": "eager", "attention": "lean"}))]
        sessions = [PLUGIN.session(t, o) for t, o in runs]
        for step in steps:
            for (target, opts), session in zip(runs, sessions, strict=True):
                assert session.lower(step) == map_workload(step, target, opts)
    a100, h100 = (s.lower(steps[-1]) for s in sessions[:2])
    assert [t.duration_s for t in a100.tasks] != [t.duration_s for t in h100.tasks]  # the check can fail
