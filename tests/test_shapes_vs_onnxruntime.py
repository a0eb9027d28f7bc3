"""Every tensor's bound shape equals the shape onnxruntime produces when it runs the model."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from mapping.onnx_graph import load_graph
from mapping.shape_binding import bind

from conftest import FIXTURE_MODELS, FIXTURES

ort = pytest.importorskip("onnxruntime")


def _inputs(graph, bindings: dict[str, int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    feeds = {}
    for name in graph.inputs:
        t = graph.tensors[name]
        shape = [d if isinstance(d, int) else bindings[d] for d in t.dims]
        if t.dtype.startswith("float"):
            feeds[name] = rng.standard_normal(shape).astype(np.float32)
        elif "mask" in name:
            feeds[name] = np.ones(shape, dtype=np.int64)
        else:
            feeds[name] = rng.integers(0, 16, size=shape).astype(np.int64)
    return feeds


@pytest.mark.parametrize("name", sorted(FIXTURE_MODELS))
def test_bound_shapes_equal_onnxruntime_shapes(name: str) -> None:
    path = FIXTURES / name
    graph = load_graph(str(path))
    bindings = {d: v for d, v in zip(graph.symbolic_dims(), (3, 6, 4, 5))}
    bound = bind(graph, bindings)
    model = onnx.load(str(path))
    float_tensors = [n for n in bound.shapes if graph.producer.get(n) is not None
                     and bound.dtypes[n] == "float32"][:400]
    existing = {o.name for o in model.graph.output}
    for t in float_tensors:
        if t not in existing:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(t))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    results = session.run(names, _inputs(graph, bindings, np.random.default_rng(0)))
    checked = 0
    for n, value in zip(names, results):
        assert tuple(value.shape) == bound.shapes[n], n
        checked += 1
    assert checked >= 20
