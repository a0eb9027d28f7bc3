"""Bind symbolic input dimensions to numbers and propagate concrete shapes through the graph.

Shapes come from ONNX's own per-node inference functions (``onnx.shape_inference.infer_node_outputs``) with the
values of small shape tensors supplied as data, and those values are computed with ONNX's reference
implementation of each operator (``onnx.reference``). Nothing large is ever evaluated: activations and weights
only ever have shapes.
"""

from __future__ import annotations

import ast
import math
import operator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import defs, helper, numpy_helper, shape_inference
from onnx.reference.ops import load_op

from hardware.dtypes import from_onnx
from hardware.errors import HwsimError
from mapping import contrib_ops, data_dependent, op_table
from mapping.onnx_graph import SMALL_CONSTANT_ELEMENTS, Node, OpGraph
from mapping.op_table import OP

#: Ops whose outputs can be far larger than their inputs: their shapes are inferred before any evaluation.
_EXPANDING = op_table.names(trait="expanding")
#: Ops that cannot be evaluated from values (random, or needing training state).
_NOT_EVALUATED = op_table.names(trait="not_evaluated")

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
           ast.Div: operator.floordiv, ast.Mod: operator.mod}


class FixedReshapeError(HwsimError):
    """A Reshape to a shape of another element count: the graph fixes a size (a traced length or batch) that the
    binding does not have. ``elements``: (the input's, the target's) element counts, from which the fixed size of a
    length the input is proportional to follows."""

    def __init__(self, message: str, node: str, elements: tuple[int, int]) -> None:
        super().__init__(message)
        self.node = node
        self.elements = elements


@dataclass
class BoundGraph:
    """An :class:`OpGraph` with every tensor's concrete shape for one set of dimension bindings."""

    graph: OpGraph
    bindings: dict[str, int]
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]
    values: dict[str, np.ndarray]
    #: Node name -> how a data-dependent size of its outputs was chosen (see mapping.data_dependent).
    notes: dict[str, str] = field(default_factory=dict)

    def numel(self, name: str) -> int:
        """Number of elements of tensor ``name``."""
        return math.prod(self.shapes[name])


def resolve_dim(expr: str, bindings: dict[str, int], where: str) -> int:
    """Value of a symbolic dim: a bound name, or arithmetic over bound names (``past_sequence_length + 1``)."""
    if expr in bindings:
        return int(bindings[expr])
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        tree = None

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in bindings:
                return int(bindings[node.id])
            raise KeyError(node.id)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        raise KeyError(expr)

    try:
        if tree is None:
            raise KeyError(expr)
        return ev(tree)
    except KeyError as exc:
        name = exc.args[0]
        raise HwsimError(
            f"dimension '{name}' of {where} has no value; bind it with --dim {name}=N "
            "(or --batch/--seq/--context for the usual names)"
        ) from None


def _type_proto(dtype_code: int, shape: tuple[int, ...]) -> onnx.TypeProto:
    return helper.make_tensor_type_proto(dtype_code, list(shape))




def _code(dtype: str) -> int:
    table = {
        "float32": onnx.TensorProto.FLOAT, "float64": onnx.TensorProto.DOUBLE, "float16": onnx.TensorProto.FLOAT16,
        "bfloat16": onnx.TensorProto.BFLOAT16, "int64": onnx.TensorProto.INT64, "int32": onnx.TensorProto.INT32,
        "int16": onnx.TensorProto.INT16, "int8": onnx.TensorProto.INT8, "uint8": onnx.TensorProto.UINT8,
        "bool": onnx.TensorProto.BOOL, "float8e4m3": onnx.TensorProto.FLOAT8E4M3FN,
        "float8e5m2": onnx.TensorProto.FLOAT8E5M2, "int4": onnx.TensorProto.INT4, "uint4": onnx.TensorProto.UINT4,
        "string": onnx.TensorProto.STRING,
    }
    return table.get(dtype, onnx.TensorProto.FLOAT)


class _Binder:
    """Walks the graph once in topological order; one instance per binding."""

    def __init__(self, graph: OpGraph, bindings: dict[str, int],
                 input_values: dict[str, np.ndarray] | None = None) -> None:
        self.g = graph
        self.bindings = bindings
        self.input_values = input_values or {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.dtypes: dict[str, str] = {}
        self.values: dict[str, np.ndarray] = {}
        self.notes: dict[str, str] = {}
        self.opsets = {o.domain or "": o.version for o in graph.opset_imports}
        self._ops: dict[tuple[str, str], Any] = {}

    def run(self) -> BoundGraph:
        g = self.g
        for t in g.tensors.values():
            if t.role in ("weight", "constant") and g.producer.get(t.name) is None:
                if t.dims is None or any(not isinstance(d, int) for d in t.dims):
                    raise HwsimError(f"{g.path}: initializer '{t.name}' has no concrete shape")
                self.shapes[t.name] = tuple(int(d) for d in t.dims)  # type: ignore[arg-type]
                self.dtypes[t.name] = t.dtype
                if t.value is not None:
                    self.values[t.name] = t.value
        for name in g.inputs:
            t = g.tensors[name]
            if t.dims is None:
                raise HwsimError(f"{g.path}: graph input '{name}' declares no shape; re-export with shapes")
            shape = []
            for axis, d in enumerate(t.dims):
                if isinstance(d, int):
                    shape.append(d)
                elif d is None:
                    raise HwsimError(
                        f"{g.path}: axis {axis} of input '{name}' has neither a size nor a name; re-export with "
                        "named dynamic axes"
                    )
                else:
                    shape.append(resolve_dim(d, self.bindings, f"input '{name}' (axis {axis})"))
            if any(s < 0 for s in shape):
                raise HwsimError(f"{g.path}: input '{name}' would get negative shape {shape}; check the bindings")
            self.shapes[name] = tuple(shape)
            self.dtypes[name] = t.dtype
            if name in self.input_values:
                self.values[name] = np.broadcast_to(self.input_values[name], self.shapes[name])
        for node in g.nodes:
            self._visit(node)
        return BoundGraph(g, dict(self.bindings), self.shapes, self.dtypes, self.values, self.notes)

    # -- one node -------------------------------------------------------------------------------------------
    def _visit(self, node: Node) -> None:
        if node.op_type == OP.Constant:
            t = self.g.tensors[node.outputs[0]]
            if t.value is None:
                raise HwsimError(f"{self.g.path}: Constant node '{node.name}' has no readable value")
            self.shapes[t.name] = tuple(t.value.shape)
            self.dtypes[t.name] = t.dtype
            self.values[t.name] = t.value
            return
        ins = [i for i in node.inputs if i]
        if node.op_type in (OP.Shape, OP.Size) and node.domain in ("", "ai.onnx"):
            shape = self.shapes[node.inputs[0]]
            if node.op_type == OP.Shape:
                rank = len(shape)
                start = node.attr("start", 0)
                end = node.attr("end", rank)
                start = max(0, start + rank if start < 0 else start)
                end = min(rank, end + rank if end < 0 else end)
                value = np.array(shape[start:end], dtype=np.int64)
            else:
                value = np.array(int(np.prod(shape)), dtype=np.int64)
            self._set(node.outputs[0], value.shape, "int64", value)
            return
        if node.op_type == OP.If and node.inputs[0] in self.values and self._take_branch(node):
            return
        known = all(i in self.values for i in ins) and node.op_type not in _NOT_EVALUATED
        if known and node.op_type not in _EXPANDING and node.domain in ("", "ai.onnx"):
            if self._evaluate(node):
                return
        self._infer(node)
        if node.op_type == OP.Reshape:
            self._check_reshape(node)
        if known and node.domain in ("", "ai.onnx") and all(
            int(np.prod(self.shapes[o])) <= SMALL_CONSTANT_ELEMENTS for o in node.outputs if o in self.shapes
        ):
            self._evaluate(node)

    def _check_reshape(self, node: Node) -> None:
        """A Reshape to a shape of another element count computes nothing: the graph fixes a size (a length or
        batch its trace baked into the target shape) that this binding's input does not have."""
        src, out = self.shapes.get(node.inputs[0]), self.shapes.get(node.outputs[0])
        if src is None or out is None or int(np.prod(src)) == int(np.prod(out)):
            return
        raise FixedReshapeError(
            f"{self.g.path}: node '{node.name}' (Reshape) of a {list(src)} input to {list(out)}: the graph fixes a "
            "size in this reshape (the length or batch the export traced with: TorchScript bakes the length into "
            "nn.MultiheadAttention's reshapes, torch.export a batch-1 example's batch), so no runtime runs it at "
            "these sizes: re-export with dynamic shapes (torch.onnx.export(..., dynamo=True), a batch of 2 in the "
            "example)", node.name, (int(np.prod(src)), int(np.prod(out))))

    def _take_branch(self, node: Node) -> bool:
        """An ``If`` whose condition the binding decides (a comparison of shapes, DeBERTa's relative positions):
        the outputs of the branch it takes, when that branch passes outer tensors through or computes its outputs
        from known values only (index arithmetic, no matmul to cost); False otherwise."""
        want = "then_branch" if bool(np.asarray(self.values[node.inputs[0]]).reshape(-1)[0]) else "else_branch"
        branch = next((a.g for a in node.proto.attribute if a.name == want), None)
        if branch is None:
            return False
        made = {o for n in branch.node for o in n.output} | {t.name for t in branch.initializer}
        outer = sorted({i for n in branch.node for i in n.input if i and i not in made})
        results: dict[str, np.ndarray] = {}
        if any(o.name not in made for o in branch.output):  # outputs that are outer tensors themselves
            if not all(o.name in made or o.name in self.shapes for o in branch.output):
                return False
        computed = [o.name for o in branch.output if o.name in made]
        if computed:
            if not all(i in self.values for i in outer):
                return False
            try:
                from onnx import reference

                inputs = [helper.make_tensor_value_info(i, helper.np_dtype_to_tensor_dtype(
                    np.asarray(self.values[i]).dtype), None) for i in outer]
                sub = helper.make_graph(list(branch.node), "branch", inputs,
                                        [helper.make_tensor_value_info(o, 0, None) for o in computed],
                                        list(branch.initializer))
                model = helper.make_model(sub, opset_imports=list(self.g.opset_imports))
                with np.errstate(all="ignore"):
                    values = reference.ReferenceEvaluator(model).run(
                        None, {i: np.asarray(self.values[i]) for i in outer})
            except Exception:  # noqa: BLE001 - not evaluable: shape inference decides (and explains)
                return False
            results = dict(zip(computed, (np.asarray(v) for v in values)))
        for out, b in zip(node.outputs, branch.output):
            if not out:
                continue
            if b.name in results:
                arr = results[b.name]
                self._set(out, arr.shape, _np_dtype(arr), arr)
            else:
                self._set(out, self.shapes[b.name], self.dtypes[b.name], self.values.get(b.name))
        return True

    def _set(self, name: str, shape: tuple[int, ...], dtype: str, value: np.ndarray | None = None) -> None:
        self.shapes[name] = tuple(int(s) for s in shape)
        self.dtypes[name] = dtype
        if value is not None and value.size <= SMALL_CONSTANT_ELEMENTS:
            self.values[name] = value

    def _evaluate(self, node: Node) -> bool:
        """Compute the outputs' values with ONNX's reference operator; False if that is not possible."""
        key = (node.domain or "", node.op_type)
        cls = self._ops.get(key)
        if cls is None:
            try:
                cls = load_op(key[0], key[1], self.opsets.get(key[0], self.g.opset))
            except Exception:  # noqa: BLE001 - unknown op: fall back to shape inference only
                # ONNX's reference has Q/DQ only from opset 19, whose semantics extend the older ones
                if key[1] not in (OP.QuantizeLinear, OP.DequantizeLinear):
                    return False
                try:
                    cls = load_op(key[0], key[1], 19)
                except Exception:  # noqa: BLE001
                    return False
            self._ops[key] = cls
        try:
            op = cls(node.proto, {"log": lambda *a: None, "opsets": self.opsets, "verbose": 0, "new_ops": None})
            args = [self.values[i] if i else None for i in node.inputs]
            with np.errstate(all="ignore"):  # masks legitimately compute log(0) = -inf
                results = op.run(*args)
        except Exception:  # noqa: BLE001 - evaluation is an optimisation; inference decides on failure
            return False
        for name, value in zip(node.outputs, results):
            if not name:
                continue
            arr = np.asarray(value)
            self._set(name, arr.shape, _np_dtype(arr), arr)
        return True

    def _infer(self, node: Node) -> None:
        if contrib_ops.handles(node):  # onnxruntime's contrib ops: ONNX has no schema for them
            where = f"{self.g.path}: node '{node.name}' ({node.op_type})"
            for name, (shape, dtype) in contrib_ops.infer(node, self.shapes, self.dtypes, self.values, where).items():
                self._set(name, shape, dtype)
            return
        opset_imports = self.g.opset_imports
        try:
            schema = defs.get_schema(node.op_type, self.opsets.get(node.domain or "", self.g.opset), node.domain)
        except Exception:  # noqa: BLE001
            try:  # an op newer than the graph's opset (onnxruntime's optimizer writes LayerNormalization, opset 17,
                # into opset-14 graphs, and onnxruntime runs them): its first schema
                schema = defs.get_schema(node.op_type, node.domain)
            except Exception:  # noqa: BLE001
                if node.domain == "com.microsoft":  # onnxruntime runs it; the producer may offer no way around it
                    raise HwsimError(
                        f"{self.g.path}: node '{node.name}' uses onnxruntime's contrib op com.microsoft.{node.op_type}, "
                        "for which hwsim has no shape and cost rule yet; export with the standard ops it composes "
                        "(if the exporter offers that) or report the op") from None
                raise HwsimError(
                    f"{self.g.path}: node '{node.name}' uses operator {node.domain + '.' if node.domain else ''}"
                    f"{node.op_type}, which ONNX and hwsim do not know; export without custom/contrib ops"
                ) from None
            opset_imports = [helper.make_opsetid(o.domain, max(o.version, schema.since_version)
                                                 if o.domain == (node.domain or "") else o.version)
                             for o in self.g.opset_imports]
        for i in node.inputs:
            if i and i not in self.shapes:
                raise HwsimError(f"{self.g.path}: node '{node.name}' reads '{i}' whose shape is unknown")
        key = _inference_key(node, self.opsets.get(node.domain or "", self.g.opset), self.shapes, self.dtypes,
                             self.values)
        hit = _INFERRED.get(key) if key is not None else None
        if hit is not None:  # the same operator on the same input types and values (another layer): same outputs
            for name, (shape, dtype) in zip(node.outputs, hit):
                if name:
                    self._set(name, shape, dtype)
            return
        types = {}
        data = {}
        for i in node.inputs:
            if not i:
                continue
            types[i] = _type_proto(_code(self.dtypes[i]), self.shapes[i])
            if i in self.values:
                data[i] = numpy_helper.from_array(self.values[i], i)
        try:
            out = shape_inference.infer_node_outputs(schema, node.proto, types, data, None, opset_imports)
        except Exception as exc:  # noqa: BLE001
            msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise HwsimError(
                f"{self.g.path}: node '{node.name}' ({node.op_type}): shape inference failed with input shapes "
                f"{[self.shapes.get(i) for i in node.inputs if i]}: {msg} (if no --seq/--dim value causes this, the "
                "graph's own fixed sizes disagree, e.g. an input longer than its position table, and no runtime can "
                "run it: re-export the model)"
            ) from None
        dependent = False  # a data-dependent axis was sized by a rule: its size is not a function of the key
        for name in node.outputs:
            if not name:
                continue
            tp = out.get(name)
            if tp is None or not tp.tensor_type.HasField("shape"):
                shape = data_dependent.split_shape(self, node, name)
                if shape is not None:  # sizes counted at run time (tokens per expert): a rule sizes the part
                    dependent = True
                    self._set(name, shape, self.dtypes[node.inputs[0]])
                    continue
                data_dependent.size(self, node, name, 0)  # names an absent external-data file if that is why
                raise HwsimError(
                    f"{self.g.path}: node '{node.name}' ({node.op_type}) gives '{name}' no shape information for "
                    f"input shapes {[self.shapes.get(i) for i in node.inputs if i]}; hwsim cannot cost it"
                )
            dims = []
            for axis, d in enumerate(tp.tensor_type.shape.dim):
                if not d.HasField("dim_value"):
                    dependent = True
                    size = data_dependent.size(self, node, name, axis)
                    if size is not None:
                        dims.append(size)
                        continue
                    raise HwsimError(
                        f"{self.g.path}: node '{node.name}' ({node.op_type}): axis {axis} of output '{name}' has no "
                        f"size for input shapes {[self.shapes.get(i) for i in node.inputs if i]} (a data-dependent "
                        "shape); hwsim cannot cost it"
                    )
                dims.append(int(d.dim_value))
            if node.op_type in _CONVS and min(dims, default=1) < 1:
                raise HwsimError(
                    f"{self.g.path}: node '{node.name}' ({node.op_type}): input shape {self.shapes.get(node.inputs[0])} "
                    f"gives no output positions (kernel {node.attr('kernel_shape')}, strides {node.attr('strides')}): "
                    "the input is too short for the model; give a longer --prompt-len/--seq (raw audio: samples)")
            self._set(name, tuple(dims), from_onnx(tp.tensor_type.elem_type))
        if key is not None and all(not o or o in self.shapes for o in node.outputs) and not dependent:
            if len(_INFERRED) >= _INFERRED_MAX:
                _INFERRED.clear()
            _INFERRED[key] = tuple((self.shapes[o], self.dtypes[o]) if o else ((), "") for o in node.outputs)


#: Convolutions: an output axis below one position means the input is shorter than the kernel (a strided audio
#: feature encoder given too few samples), not a size any runtime computes.
_CONVS = op_table.names(category="conv")

#: ONNX shape inference results by (operator, attributes, input types and values): a pure function of those, so
#: the repeated layers of a transformer (and later bindings of the same shapes) infer each distinct node once.
_INFERRED: dict[tuple, tuple[tuple[tuple[int, ...], str], ...]] = {}
_INFERRED_MAX = 200_000
#: A node's serialised attributes, by its proto (kept with the proto so that a reused id cannot alias).
_ATTR_BYTES: dict[int, tuple[Any, tuple[bytes, ...]]] = {}


def _inference_key(node: Node, opset: int, shapes: dict, dtypes: dict, values: dict) -> tuple | None:
    """What ONNX's shape inference of ``node`` depends on (None: not cacheable)."""
    attrs = _ATTR_BYTES.get(id(node.proto))
    if attrs is None or attrs[0] is not node.proto:
        attrs = _ATTR_BYTES[id(node.proto)] = (node.proto, tuple(a.SerializeToString() for a in node.proto.attribute))
    parts: list[Any] = [node.domain or "", node.op_type, opset, attrs[1]]
    for i in node.inputs:
        if not i:
            parts.append(None)
            continue
        v = values.get(i)
        if v is not None and v.size > SMALL_CONSTANT_ELEMENTS:
            return None
        parts.append((dtypes[i], shapes[i], None if v is None else (str(v.dtype), v.tobytes())))
    parts.append(len(node.outputs))
    return tuple(parts)


def _np_dtype(arr: np.ndarray) -> str:
    if arr.dtype == np.bool_:
        return "bool"
    name = str(arr.dtype)
    return name if name in ("float32", "float16", "float64", "int64", "int32", "int16", "int8", "uint8") else "float32"


def bind(graph: OpGraph, bindings: dict[str, int], input_values: dict[str, np.ndarray] | None = None) -> BoundGraph:
    """Concrete shapes of every tensor of ``graph`` with its symbolic input dims set to ``bindings``.

    ``input_values`` optionally gives (broadcastable) values for small graph inputs, e.g. an all-ones attention
    mask, so that tensors computed only from them (masks, position ids) get known values too.
    """
    return _Binder(graph, bindings, input_values).run()
