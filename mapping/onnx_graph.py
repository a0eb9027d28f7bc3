"""Load an ONNX file into hwsim's operator graph without reading weight data.

Files are parsed with ``load_external_data=False`` so graph-only exports whose ``.data`` weight files are absent
import in seconds; only small inline constants (shape vectors, scalars) are decoded into numpy arrays. Local ONNX
functions are inlined so every node is a standard operator.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import defs, helper, numpy_helper, shape_inference

from hardware.dtypes import from_onnx, is_float
from hardware.errors import HwsimError, HwsimWarning
from mapping import branches
from mapping.op_table import OP
from mapping.quant import mark_quantized_weights

#: Inline constants up to this many elements are decoded (shape vectors, scalars, small masks).
SMALL_CONSTANT_ELEMENTS = 1 << 16

Dim = int | str | None


@dataclass
class Tensor:
    """A named value in the graph.

    ``role`` is ``input`` (graph input), ``weight`` (float initializer, or integer initializer read as quantized
    weight data, scales or zero points: see :mod:`mapping.quant`), ``constant`` (other non-float initializer or
    Constant node output) or ``activation`` (computed). ``dims`` are the declared dims: ints, symbolic names, or
    None where unknown; ``value`` holds decoded data of small constants only. ``bits`` is set for uint8 tensors
    that pack sub-byte weights (bits per logical element, e.g. 4 for MatMulNBits' int4 ``B``).
    """

    name: str
    dtype: str
    dims: tuple[Dim, ...] | None
    role: str
    value: np.ndarray | None = None
    bits: int | None = None
    #: For an initializer stored in an external-data file that is not there: the file's name (else None).
    absent_data: str | None = None


@dataclass
class Node:
    """One ONNX node; attributes are decoded on first use."""

    index: int
    name: str
    op_type: str
    domain: str
    inputs: list[str]
    outputs: list[str]
    proto: onnx.NodeProto = field(repr=False)
    _attrs: dict[str, Any] | None = field(default=None, repr=False)

    def attr(self, key: str, default: Any = None) -> Any:
        """Attribute ``key`` as a Python value (ints, floats, lists, numpy arrays for tensors)."""
        if self._attrs is None:
            attrs: dict[str, Any] = {}
            for a in self.proto.attribute:
                value = helper.get_attribute_value(a)
                if isinstance(value, onnx.TensorProto):
                    try:
                        value = numpy_helper.to_array(value)
                    except Exception as exc:  # noqa: BLE001 - a corrupt or unsupported tensor in the file
                        raise HwsimError(f"node '{self.name}' ({self.op_type}): attribute '{a.name}' holds a tensor "
                                         f"that cannot be decoded ({exc}); the file is damaged or from an unsupported "
                                         "exporter") from None
                elif isinstance(value, bytes):
                    value = value.decode()
                attrs[a.name] = value
            self._attrs = attrs
        return self._attrs.get(key, default)


@dataclass
class OpGraph:
    """A topologically ordered ONNX graph with tensor metadata and producer/consumer maps."""

    path: str
    name: str
    opset: int
    tensors: dict[str, Tensor]
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    producer: dict[str, Node]
    consumers: dict[str, list[Node]]
    opset_imports: list[onnx.OperatorSetIdProto] = field(repr=False, default_factory=list)
    #: the file's initializers (protos, not decoded): :meth:`array` decodes one when a consumer needs its values
    initializers: dict[str, onnx.TensorProto] = field(repr=False, default_factory=dict)

    def array(self, name: str) -> np.ndarray:
        """The values of initializer or constant ``name`` (a weight's data is decoded only here, on demand)."""
        t = self.tensors.get(name)
        if t is not None and t.value is not None:
            return t.value
        init = self.initializers.get(name)
        if init is None:
            raise HwsimError(f"{self.path}: '{name}' is not an initializer or constant")
        if init.data_location == onnx.TensorProto.EXTERNAL:
            raise HwsimError(f"{self.path}: the data of initializer '{name}' is in an external file that is not "
                             "loaded here; save the model with its weights inside the .onnx file")
        try:
            return numpy_helper.to_array(init)
        except Exception as exc:  # noqa: BLE001 - a corrupt tensor in the file
            raise HwsimError(f"{self.path}: initializer '{name}' cannot be decoded ({exc})") from None
    #: Which branch of input-selected ``If`` nodes was inlined: True (KV cache), False (none), None (no such If).
    cache_branch: bool | None = None
    #: Opaque input dims (torch.export's ``s31``) read sequence-first (axis 0 the length, axis 1 the batch), as
    #: ``nn.Transformer``'s default ``batch_first=False`` lays them out: set by recognition when only that binds
    seq_first: bool = False
    #: The one length the graph's own ops run at when they fix it (TorchScript bakes the traced length into
    #: nn.MultiheadAttention's reshapes while the inputs keep a symbolic length): set by recognition, None otherwise
    traced_length: int | None = None
    #: The batch those ops fix with it (a trace's example batch baked into the same reshapes), None when any binds
    traced_batch: int | None = None
    #: the parsed file (weight data not loaded; the chosen ``If`` branch inlined), for :meth:`inferred_dims`
    model: onnx.ModelProto | None = field(repr=False, default=None)

    def inferred_dims(self) -> dict[str, list[int | None]]:
        """Dims of every tensor as ONNX's own symbolic shape inference gives them (None where it has no number);
        empty when inference fails. Evidence for dims that are sizes of the model (:mod:`mapping.dims`)."""
        if self.model is None or self.model.functions:
            return {}
        try:
            inferred = shape_inference.infer_shapes(self.model, data_prop=True)
        except Exception:  # noqa: BLE001 - evidence is optional
            return {}
        known: dict[str, list[int | None]] = {}
        for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
                known[vi.name] = [d.dim_value if d.HasField("dim_value") else None
                                  for d in vi.type.tensor_type.shape.dim]
        for init in inferred.graph.initializer:
            known[init.name] = [int(d) for d in init.dims]
        return known

    def symbolic_dims(self) -> dict[str, list[tuple[str, int]]]:
        """Symbolic dimension names of the graph inputs, each with the (input, axis) places it appears."""
        found: dict[str, list[tuple[str, int]]] = {}
        for name in self.inputs:
            for axis, dim in enumerate(self.tensors[name].dims or ()):
                if isinstance(dim, str):
                    found.setdefault(dim, []).append((name, axis))
        return found

    @property
    def weight_names(self) -> list[str]:
        """Names of the model's parameters: float initializers and quantized weight data (with scales)."""
        return [t.name for t in self.tensors.values() if t.role == "weight"]


def _dims_of(type_proto: onnx.TypeProto) -> tuple[Dim, ...] | None:
    if not type_proto.HasField("tensor_type") or not type_proto.tensor_type.HasField("shape"):
        return None
    dims: list[Dim] = []
    for d in type_proto.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param") and d.dim_param:
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return tuple(dims)


def _external_file(t: onnx.TensorProto) -> str:
    return next((e.value for e in t.external_data if e.key == "location"), "")


def absent_data_file(t: onnx.TensorProto, base_dir: str) -> str | None:
    """The external-data file of ``t`` when it is missing (None for inline data or a file that is there)."""
    if t.data_location != onnx.TensorProto.EXTERNAL:
        return None
    location = _external_file(t)
    return None if location and os.path.exists(os.path.join(base_dir, location)) else (location or "?")


def _initializer_value(t: onnx.TensorProto, base_dir: str = "") -> np.ndarray | None:
    """Decode a small initializer (inline, or in an external-data file that is there); None otherwise."""
    elements = int(np.prod(t.dims)) if len(t.dims) else 1
    if elements > SMALL_CONSTANT_ELEMENTS:
        return None
    if t.data_location == onnx.TensorProto.EXTERNAL and absent_data_file(t, base_dir) is not None:
        return None
    try:
        return numpy_helper.to_array(t, base_dir) if t.data_location == onnx.TensorProto.EXTERNAL else \
            numpy_helper.to_array(t)
    except Exception:  # noqa: BLE001 - undecodable data is treated as unknown, never fatal
        return None


def read_model(path: str) -> onnx.ModelProto:
    """Parse ``path`` as an ONNX model without external weight data, with clear errors for bad files."""
    if not os.path.exists(path):
        raise HwsimError(f"{path}: no such file")
    if os.path.isdir(path):
        raise HwsimError(f"{path}: is a directory, expected an .onnx file")
    try:
        model = onnx.load(path, load_external_data=False)
    except DecodeError as exc:
        raise HwsimError(
            f"{path}: not a valid ONNX model (protobuf parse failed: {exc}); the file is truncated or not ONNX — "
            "re-export it, e.g. with torch.onnx.export"
        ) from None
    except (OSError, ValueError) as exc:
        raise HwsimError(f"{path}: cannot read ONNX model: {exc}") from None
    if not model.HasField("graph") or len(model.graph.node) == 0:
        raise HwsimError(f"{path}: ONNX file has no graph nodes; it is empty, truncated or not an ONNX model")
    if model.functions:
        try:
            model = onnx.inliner.inline_local_functions(model)
        except Exception as exc:  # noqa: BLE001
            raise HwsimError(f"{path}: cannot inline the model's local ONNX functions: {exc}") from None
    return model


def _topological(nodes: list[onnx.NodeProto], available: set[str], path: str) -> list[onnx.NodeProto]:
    """Nodes in an order where every input is produced before use (ONNX requires it; some tools violate it)."""
    produced = set(available)
    ordered: list[onnx.NodeProto] = []
    pending = list(nodes)
    while pending:
        progress = []
        rest = []
        for n in pending:
            if all(i == "" or i in produced for i in n.input):
                progress.append(n)
                produced.update(o for o in n.output if o)
            else:
                rest.append(n)
        if not progress:
            makers = {o: m for m in rest for o in m.output if o}
            n = next((m for m in rest if not any(i and i not in produced and i in makers for i in m.input)), rest[0])
            missing = [i for i in n.input if i and i not in produced]
            if missing[0] in makers:  # every node left waits on another one left: a cycle
                cycle, m = [], n
                while m not in cycle:
                    cycle.append(m)
                    m = makers[next(i for i in m.input if i and i not in produced and i in makers)]
                names = " -> ".join(f"'{c.name or c.op_type}'" for c in cycle[cycle.index(m):] + [m])
                raise HwsimError(f"{path}: the graph has a cycle ({names}): each reads what the next produces; ONNX "
                                 "graphs are acyclic, re-export the model")
            raise HwsimError(
                f"{path}: node '{n.name or n.op_type}' ({n.op_type}) reads '{missing[0]}', which no node, input or "
                "initializer produces; the graph is incomplete"
            )
        ordered.extend(progress)
        pending = rest
    return ordered


@cache
def _required_inputs(op_type: str, opset: int) -> tuple[str, ...]:
    """Names of the leading required inputs of a default-domain ``op_type`` at ``opset`` (empty when the op is unknown:
    the op table names it)."""
    try:
        schema = onnx.defs.get_schema(op_type, opset, "")
    except (onnx.defs.SchemaError, TypeError, ValueError, OverflowError):  # unknown op, undecodable name, odd opset
        return ()
    names = []
    for formal in schema.inputs:
        if formal.option != onnx.defs.OpSchema.FormalParameterOption.Single:
            break  # an optional or variadic input: the ones after it are positional, not checked here
        names.append(formal.name)
    return tuple(names)


def _check_required_inputs(nodes: list[onnx.NodeProto], opset: int, path: str) -> None:
    """Refuse a default-domain node whose required input is missing or named '' (ONNX's mark of an omitted optional
    input): nothing downstream could cost it."""
    for n in nodes:
        if n.domain not in ("", "ai.onnx"):
            continue
        for i, name in enumerate(_required_inputs(n.op_type, opset)):
            if i >= len(n.input) or not n.input[i]:
                raise HwsimError(f"{path}: node '{n.name or n.op_type}' ({n.op_type}) has no input {i} ('{name}'), "
                                 "which the operator requires; the graph is malformed: re-export it or repair the node")


def load_graph(path: str, cache_branch: bool = True) -> OpGraph:
    """Import ``path`` into an :class:`OpGraph` (no weight data is read).

    ``If`` nodes selected by a graph input (optimum's merged decoders) are replaced by one branch: the one
    that reads the KV cache (``cache_branch``) or the one without (see :mod:`mapping.branches`).
    """
    model = read_model(path)
    selected = bool(branches.selector_inputs(model))
    if selected:
        model = branches.inline(model, cache_branch)
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    known = defs.onnx_opset_version()
    if opset > known:  # ops are read by the newest schema this onnx package has, which may differ
        warnings.warn(HwsimWarning(f"{path}: opset {opset} is newer than this onnx package knows ({known}): each op is "
                                   f"read as its opset-{known} definition; upgrade onnx if a result looks wrong"),
                      stacklevel=2)
    tensors: dict[str, Tensor] = {}
    base_dir = os.path.dirname(os.path.abspath(path))

    for init in graph.initializer:
        dtype = from_onnx(init.data_type)
        numel = int(np.prod(init.dims)) if len(init.dims) else 1
        absent = absent_data_file(init, base_dir)
        if is_float(dtype) and len(init.dims) >= 2 and numel == 0:  # a weight matrix with no element computes nothing
            raise HwsimError(f"{path}: initializer '{init.name}' has a zero-size dimension {list(init.dims)}: a "
                             "weight with no elements; re-export the model with its real sizes")
        # float tensors are parameters (their data is never read) unless they are scalars such as 1/sqrt(d)
        if is_float(dtype) and numel > 1:
            tensors[init.name] = Tensor(init.name, dtype, tuple(int(d) for d in init.dims), "weight", None,
                                        absent_data=absent)
        else:
            tensors[init.name] = Tensor(init.name, dtype, tuple(int(d) for d in init.dims), "constant",
                                        _initializer_value(init, base_dir), absent_data=absent)
    inputs: list[str] = []
    for vi in graph.input:
        if vi.name in tensors:
            continue  # old-style exports list initializers as inputs too
        dtype = from_onnx(vi.type.tensor_type.elem_type)
        tensors[vi.name] = Tensor(vi.name, dtype, _dims_of(vi.type), "input")
        inputs.append(vi.name)
    declared = {vi.name: vi for vi in list(graph.value_info) + list(graph.output)}

    _check_required_inputs(list(graph.node), opset, path)
    ordered = _topological(list(graph.node), set(tensors), path)
    nodes: list[Node] = []
    producer: dict[str, Node] = {}
    consumers: dict[str, list[Node]] = {}
    for index, proto in enumerate(ordered):
        node = Node(index, proto.name or f"{proto.op_type}_{index}", proto.op_type, proto.domain,
                    list(proto.input), list(proto.output), proto)
        nodes.append(node)
        for name in node.inputs:
            if name:
                consumers.setdefault(name, []).append(node)
        for out in node.outputs:
            if not out:
                continue
            producer[out] = node
            vi = declared.get(out)
            dtype = from_onnx(vi.type.tensor_type.elem_type) if vi is not None else "float32"
            dims = _dims_of(vi.type) if vi is not None else None
            if proto.op_type == OP.Constant:
                value = node.attr("value")
                if value is None:
                    for key in ("value_float", "value_int", "value_floats", "value_ints"):
                        if node.attr(key) is not None:
                            value = np.array(node.attr(key))
                            break
                arr = np.asarray(value) if value is not None else None
                tensors[out] = Tensor(out, _np_name(arr) if arr is not None else dtype,
                                      tuple(arr.shape) if arr is not None else dims, "constant", arr)
            else:
                tensors[out] = Tensor(out, dtype, dims, "activation")
    outputs = [o.name for o in graph.output]
    result = OpGraph(path, graph.name or os.path.basename(path), opset, tensors, nodes, inputs, outputs,
                     producer, consumers, list(model.opset_import), {i.name: i for i in graph.initializer},
                     cache_branch=cache_branch if selected else None, model=model)
    mark_quantized_weights(result)
    return result


def _np_name(arr: np.ndarray) -> str:
    kind = arr.dtype
    if kind == np.bool_:
        return "bool"
    return {np.dtype("float32"): "float32", np.dtype("float16"): "float16", np.dtype("float64"): "float64",
            np.dtype("int64"): "int64", np.dtype("int32"): "int32", np.dtype("int8"): "int8",
            np.dtype("uint8"): "uint8"}.get(kind, "float32")
