"""An ``If`` whose condition the binding decides (a comparison of shapes, as DeBERTa-v2's relative positions)
takes its branch: shapes and values of the outputs are the branch's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from mapping.onnx_graph import load_graph
from mapping.shape_binding import bind


def _model(path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq"])
    out = helper.make_tensor_value_info("out", TensorProto.INT64, None)
    # then: positions 0..seq-1 computed inside the branch; else: the outer shape vector passed through
    then_g = helper.make_graph([
        helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("z", TensorProto.INT64, [], [0])),
        helper.make_node("Constant", [], ["one"], value=helper.make_tensor("o", TensorProto.INT64, [], [1])),
        helper.make_node("Range", ["zero", "len", "one"], ["pos"])], "then", [],
        [helper.make_tensor_value_info("pos", TensorProto.INT64, None)])
    else_g = helper.make_graph([helper.make_node("Identity", ["shape"], ["same"])], "else", [],
                               [helper.make_tensor_value_info("same", TensorProto.INT64, None)])
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Constant", [], ["idx"], value=helper.make_tensor("i", TensorProto.INT64, [], [1])),
        helper.make_node("Gather", ["shape", "idx"], ["len"]),
        helper.make_node("Constant", [], ["four"], value=helper.make_tensor("f", TensorProto.INT64, [], [4])),
        helper.make_node("Greater", ["len", "four"], ["cond"]),
        helper.make_node("If", ["cond"], ["out"], name="if_long", then_branch=then_g, else_branch=else_g)]
    graph = helper.make_graph(nodes, "g", [x], [out])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_if_on_shapes_takes_its_branch(tmp_path: Path) -> None:
    path = tmp_path / "if.onnx"
    _model(path)
    graph = load_graph(str(path))
    long = bind(graph, {"batch": 2, "seq": 6})
    assert long.shapes["out"] == (6,) and np.array_equal(long.values["out"], np.arange(6))
    short = bind(graph, {"batch": 2, "seq": 3})
    assert short.shapes["out"] == (2,) and np.array_equal(short.values["out"], [2, 3])
