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
