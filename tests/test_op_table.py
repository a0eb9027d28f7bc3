"""The op table is the one place that spells op types: every entry is complete, and mapping/ names ops through it."""

from __future__ import annotations

import ast
import functools
import pathlib

import onnx.defs

from mapping import op_table
from mapping.op_table import OP

MAPPING = pathlib.Path(op_table.__file__).parent
KNOWN_NAMES = {e.name for e in op_table.TABLE.values()} | {s.name for s in onnx.defs.get_all_schemas()}
#: Strings that equal an op type but are not one: attribute names read with ``node.attr(...)`` and hls4ml's layer
#: class names and pooling kinds (``class_name=...``, ``pool_op=...``), which are hls4ml's own vocabulary.
_ALLOWED_CALLS = {"attr"}
_ALLOWED_KEYWORDS = {"class_name", "pool_op"}
_CATEGORIES = {"gemm", "conv", "attention", "norm", "softmax", "activation", "elementwise", "logic", "cast", "reduction",
               "gather", "data-movement", "view", "shape", "routing", "quant", "random", "control", "constant"}


def _allowed_strings(tree: ast.AST) -> set[int]:
    """ids of string constants in allowed positions."""
    ok: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in _ALLOWED_CALLS:
                ok.update(id(a) for a in node.args)
            ok.update(id(x) for k in node.keywords if k.arg in _ALLOWED_KEYWORDS for x in ast.walk(k.value))
    return ok


@functools.cache
def _scan() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(op types spelt as string literals, ``OP.<name>`` uses of names the table lacks) in mapping/ but the table."""
    literals, unknown = [], []
    for path in sorted(p for p in MAPPING.rglob("*.py") if p.name != "op_table.py"):
        tree = ast.parse(path.read_text())
        allowed = _allowed_strings(tree)
        where = path.relative_to(MAPPING.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in KNOWN_NAMES \
                    and id(node) not in allowed:
                literals.append(f"{where}:{node.lineno}: {node.value!r}")
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "OP" \
                    and node.attr not in OP.__dict__:
                unknown.append(f"{where}:{node.lineno}: OP.{node.attr}")
    return tuple(literals), tuple(unknown)


def test_no_op_type_is_spelt_outside_the_table() -> None:
    literals, _ = _scan()
    assert not literals, "op types spelt outside mapping/op_table.py (use OP.<name> or a table query):\n" + \
        "\n".join(literals)


def test_every_op_named_through_op_exists() -> None:
    _, unknown = _scan()
    assert not unknown, unknown


def test_every_entry_has_a_category_and_rules_that_resolve() -> None:
    for (domain, name), e in op_table.TABLE.items():
        assert (e.domain, e.name) == (domain, name)
        assert e.category in _CATEGORIES, (name, e.category)
        assert callable(op_table.rule(e.cost)), (name, e.cost)
        assert e.cost.split(":")[0] in ("op_costs", "contrib_costs"), (name, e.cost)
        if e.shape:
            assert callable(op_table.rule(e.shape)), (name, e.shape)
        if domain == op_table.MS:
            assert e.shape, f"{name}: a contrib op needs a shape rule (ONNX cannot infer it)"
        if e.cost in ("op_costs:_softmax", "op_costs:_norm", "op_costs:_activation") or e.cost in (
                "contrib_costs:_norm", "contrib_costs:_activation", "contrib_costs:_elementwise"):
            assert e.flops is not None and e.flops > 0, f"{name}: its cost rule needs FLOPs per element"


def test_semantics_not_block_a_matrix_product_is_a_gemm() -> None:
    for name in (OP.MatMul, OP.Gemm, OP.MatMulNBits, OP.MatMulInteger, OP.FusedMatMul, OP.QGemm):
        assert op_table.by_name(name).category == "gemm"
    # the same op joins several recognised blocks: an Add sits in attention cores, MLPs, norms and residual tails
    add = op_table.get("", OP.Add)
    assert {"attention_core", "mlp", "norm_part", "residual_epilogue"} <= add.joins
    assert op_table.lookup("ai.onnx", OP.Softmax) is op_table.get("", OP.Softmax)
    assert op_table.lookup("com.microsoft", OP.Softmax) is op_table.get("", OP.Softmax)  # falls back by name
    assert op_table.get("com.microsoft", OP.Gelu).cost.startswith("contrib_costs:")


def test_an_unknown_op_name_is_refused() -> None:
    try:
        OP.MatMull  # noqa: B018
    except AttributeError as exc:
        assert "op_table" in str(exc)
    else:
        raise AssertionError("a misspelt op type must not pass")


def _fpga_model(tmp_path: pathlib.Path, op: str, consts: tuple = (), attrs: dict | None = None, *,
                const_nodes: bool = False, shape: tuple[int, ...] = (1, 4, 8), lead: bool = True) -> str:
    """x [1, 4, 8] -> Dense -> ``op`` (its first input the Dense output h, then ``consts``: arrays, as initializers or
    Constant nodes, or "h"; without ``lead`` only those) -> y, as an ONNX file."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.eye(8, dtype=np.float32), "w")]
    ins, nodes = ["h"] if lead else [], [helper.make_node(OP.MatMul, ["x", "w"], ["h"], name="dense")]
    for i, c in enumerate(consts):
        if isinstance(c, str):
            ins.append(c)
            continue
        value = numpy_helper.from_array(np.asarray(c), f"c{i}")
        if const_nodes:
            nodes.append(helper.make_node(OP.Constant, [], [f"c{i}"], name=f"c{i}", value=value))
        else:
            inits.append(value)
        ins.append(f"c{i}")
    nodes.append(helper.make_node(op, ins, ["y"], name="probe", **(attrs or {})))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    path = tmp_path / f"{op}_{len(list(tmp_path.iterdir()))}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), path)
    return str(path)


def _fpga_examples() -> dict[str, tuple[tuple, dict]]:
    """One accepted use of each op the table gives an FPGA kind: op -> (constant inputs, attributes)."""
    import numpy as np

    f, i64 = np.float32, np.int64
    ones = np.ones(4, f)
    return {
        OP.Add: (("h",), {}), OP.Mul: ((f(2.0),), {}), OP.Div: ((f(2.0),), {}), OP.Relu: ((), {}), OP.LeakyRelu: ((), {}),
        OP.Elu: ((), {}), OP.Sigmoid: ((), {}), OP.Tanh: ((), {}), OP.Gelu: ((), {}), OP.Softmax: ((), {}),
        OP.MatMul: ((np.ones((8, 3), f),), {}), OP.Gemm: ((np.ones((8, 3), f),), {"shape": (1, 8)}),
        OP.LayerNormalization: ((np.ones(8, f),), {}), OP.BatchNormalization: ((ones, ones, ones, ones), {}),
        OP.Conv: ((np.ones((2, 4, 3), f),), {}), OP.MaxPool: ((), {"kernel_shape": [2]}),
        OP.AveragePool: ((), {"kernel_shape": [2]}), OP.ReduceMean: ((np.array([1], i64),), {}),
        OP.ReduceMax: ((np.array([1], i64),), {}), OP.Reshape: ((np.array([1, 32], i64),), {}),
        OP.Flatten: ((), {}), OP.Squeeze: ((np.array([0], i64),), {}), OP.Unsqueeze: ((np.array([0], i64),), {}),
        OP.Transpose: ((), {"perm": [0, 2, 1]}), OP.Gather: ((np.array([0, 1], i64),), {"axis": 2}),
        OP.Slice: ((np.array([0], i64), np.array([3], i64), np.array([2], i64)), {}), OP.Identity: ((), {}),
        OP.Dropout: ((), {}),
    }


#: FPGA kinds that make no layer of their own (views and constants).
_VIEW_KINDS = {"wire", "reshape", "transpose", "select", "constant"}


def test_fpga_kinds_are_what_the_front_end_emits(tmp_path: pathlib.Path) -> None:
    """Every op the table gives an FPGA kind is accepted by build_layers and (unless a view) makes a layer of that
    kind; an op with a kind carries no refusal hint, and a refused op's hint is the front end's message."""
    import numpy as np
    import pytest

    from hardware.errors import HwsimError
    from mapping.fpga.onnx_layers import HINTS, KINDS, build_layers, kinds_of

    examples = _fpga_examples()
    with_kind = {e.name for e in op_table.TABLE.values() if e.fpga}
    assert with_kind - {OP.Constant} == set(examples), "give each op with an fpga kind an example here"
    for op, (consts, attrs) in examples.items():
        shape = attrs.pop("shape", (1, 4, 8))
        layers, _ = build_layers(_fpga_model(tmp_path, op, consts, attrs, shape=shape))
        kind = KINDS[op]
        if kind not in _VIEW_KINDS:
            assert kind in kinds_of(layers), (op, kind, kinds_of(layers))
    assert KINDS[OP.Constant] == "constant"  # a Constant node feeding a scale is read as the constant
    layers, _ = build_layers(_fpga_model(tmp_path, OP.Mul, (np.float32(2.0),), const_nodes=True))
    assert kinds_of(layers) == {"input": 1, "dense": 1, "scale": 1}  # the Constant makes no layer
    for e in op_table.TABLE.values():
        assert not (e.fpga and e.fpga_hint), f"{e.name}: an emitted op has no refusal hint (use fpga_limit)"
        assert not e.fpga_limit or e.fpga, f"{e.name}: fpga_limit is for emitted ops"
    refused = {OP.Erf: (), OP.Expand: (np.array([1, 4, 8]),), OP.Where: (np.ones((1, 4, 8), bool), "h", "h")}
    assert {e.name for e in op_table.TABLE.values() if e.fpga_hint} == set(refused)
    for op, consts in refused.items():
        with pytest.raises(HwsimError, match="not supported by the FPGA emitter") as info:
            build_layers(_fpga_model(tmp_path, op, consts, lead=op != OP.Where))
        assert HINTS[op] == op_table.by_name(op).fpga_hint and HINTS[op] in str(info.value), info.value
    with pytest.raises(HwsimError, match=r"\(Cos\): not supported by the FPGA emitter; supported: Gemm/MatMul") as info:
        build_layers(_fpga_model(tmp_path, OP.Cos))
    assert all(name in str(info.value) for name in KINDS if name != OP.Constant)


def test_every_op_the_front_end_dispatches_on_has_an_fpga_kind() -> None:
    """The op types onnx_layers.py names are table ops with an FPGA kind, or parts of its fused patterns (with a hint
    when they have no kind of their own)."""
    from mapping.fpga import onnx_layers

    tree = ast.parse(pathlib.Path(onnx_layers.__file__).read_text())
    named = {n.attr for n in ast.walk(tree)
             if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "OP"}
    parts = {p for ops in onnx_layers.PATTERNS.values() for p in ops}
    assert named, "the scan found no OP.<name> in onnx_layers.py"
    for name in named:
        e = op_table.by_name(name)
        assert e is not None and (e.fpga or name in parts), f"{name}: onnx_layers dispatches on it, give it an fpga kind"
        if not e.fpga:
            assert e.fpga_hint, f"{name}: a pattern part without a kind of its own needs an fpga_hint"
    assert set(onnx_layers.KINDS) == {e.name for e in op_table.TABLE.values() if e.fpga}
