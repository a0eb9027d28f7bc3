"""The hls4ml layers of a small ONNX model: one :class:`PipeLayer` per layer hls4ml implements, from hwsim's front end.

:func:`build_layers` walks the ONNX graph (weights included: small models only). Compute ops become layers:
Dense (``MatMul``/``Gemm`` with a constant weight, a following constant ``Add`` folded in as the bias; per token on
2-D inputs), MatMul of two activations (Q.K^T, P.V: hls4ml ``Einsum``), Softmax (last axis), LayerNorm, ReLU,
LeakyReLU, ELU, sigmoid, tanh, GELU and SiLU (the Erf and x * sigmoid(x) patterns too: a table-based custom layer,
:mod:`mapping.fpga.hls_ext`), residual Add, constant Mul/Div (scale), BatchNormalization (inference), Conv (1-D and 2-D),
MaxPool/AveragePool (1-D) and ReduceMean/ReduceMax over one axis (token pooling: ``GlobalPooling1D``).

Wiring ops (Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Gather or Slice with constant indices, Identity,
Dropout) make no layer of their own: every activation tensor is a *view*, an array of the tensor's ONNX shape
(batch bound to 1) holding, per element, the flat index of that element in the output of the layer that made it.
A compute op that needs the data in ONNX order realises the view: nothing when it is the layer's own order, a
Reshape when only the shape differs, a Transpose when it is a permutation of axes, a narrower Dense when it picks
the same output columns of a Dense for every token (the q/k/v split of a packed in-projection). Elementwise ops
run on the producer's layout without reordering. So sequence-first exports (``nn.MultiheadAttention``'s
transposes that move the batch axis) and channels-first convolutions (PyTorch's layout; hls4ml's Conv1D and
pooling are channels-last) come out with only the transposes the data needs. Size-1 axes carry no data and are
dropped from the layers' shapes. Anything else raises one HwsimError naming the node and what to change.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field

import numpy as np

from hardware.errors import HwsimError
from mapping import op_table
from mapping.onnx_graph import Node, load_graph
from mapping.op_table import OP
from mapping.shape_binding import bind

#: Op type -> the layer kind the walk makes of it (the op table's ``fpga`` field: the dispatch branches on it).
KINDS = {e.name: e.fpga for e in op_table.TABLE.values() if e.fpga}
#: Op type -> the text of its refusal (the op table's ``fpga_hint`` of a refused op, ``fpga_limit`` of an emitted one).
HINTS = {e.name: e.fpga_hint or e.fpga_limit for e in op_table.TABLE.values() if e.fpga_hint or e.fpga_limit}
#: Activations hls4ml 1.3 lacks, emitted as a lookup-table custom layer (mapping/fpga/hls_ext.py).
TABLE_FUNCTIONS = ("gelu", "gelu_tanh", "silu", "table")
#: Elementwise activations hls4ml implements: ONNX op -> layer kind.
ACTIVATIONS = {n: k for n, k in KINDS.items() if op_table.by_name(n).category == "activation" and k not in TABLE_FUNCTIONS}
#: The patterns fused into one table-function layer (:meth:`_Walk.fuse_patterns`): kind -> the ops they are made of.
PATTERNS = {"gelu": (OP.Div, OP.Mul, OP.Erf, OP.Add), "silu": (OP.Sigmoid, OP.Mul)}
#: What the refusal message lists, per kind in this order (the table's ops of that kind and the emitter's condition).
_CONDITIONS = {"dense": " with a constant weight (+bias Add) or MatMul of two activations", "add": " of two activations",
               "scale": " by a scalar", "relu": "", "leaky_relu": "", "elu": "", "sigmoid": "", "tanh": "", "gelu": "",
               "softmax": " (last axis)", "layernorm": "", "batchnorm": "", "conv1d": " (1-D, 2-D)", "pool1d": " (1-D)",
               "globalpool": " over one axis", "reshape": "", "transpose": "", "select": " with constant indices",
               "wire": ""}
_ORDER = {k: i for i, k in enumerate(_CONDITIONS)}
SUPPORTED = ", ".join("/".join(sorted(op_table.names(fpga=k))) + _CONDITIONS.get(k, "")
                      for k in sorted(set(KINDS.values()) - {"constant"}, key=lambda k: (_ORDER.get(k, len(_ORDER)), k))) \
    + "; the patterns 0.5*x*(1+Erf(x/sqrt 2)) and x*Sigmoid(x), and any other elementwise function of one tensor " \
      "(a lookup table)"


@dataclass
class PipeLayer:
    """One hls4ml layer: ``kind`` in input, dense, conv1d, conv2d, matmul, softmax, layernorm, relu, leaky_relu, elu,
    sigmoid, tanh, gelu, gelu_tanh, silu, table (an unnamed elementwise function), add, scale, batchnorm, pool1d,
    globalpool, reshape, transpose;
    ``shape`` is the output shape without the batch dim (channels last for conv1d/conv2d/pool1d); ``attrs`` the kind's
    facts and weights."""

    name: str
    kind: str
    node: str
    inputs: list[str]
    shape: tuple[int, ...]
    attrs: dict = field(default_factory=dict)


@dataclass
class _View:
    """A tensor as element indices into the flat output of ``layer``; ``idx`` has the tensor's ONNX shape."""

    layer: str
    idx: np.ndarray
    via: str = ""  # the last wiring node on the way (names a realised Reshape/Transpose)
    before: _View | None = None  # the view before the last Reshape (realised first when this one is not affine)


def squeezed(shape: tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """``shape`` without its size-1 axes (they carry no data), at least rank 1."""
    return tuple(int(d) for d in shape if d != 1) or (1,)


def _cname(text: str, used: set[str]) -> str:
    name = re.sub(r"\W", "_", text).strip("_") or "layer"
    if name[0].isdigit():
        name = "l_" + name
    base, i = name, 1
    while name in used:
        i += 1
        name = f"{base}_{i}"
    used.add(name)
    return name


def affine_transpose(idx: np.ndarray) -> tuple[tuple[int, ...], list[int]] | None:
    """(F, perm) when ``idx`` (its size-1 axes dropped) is ``arange(prod F).reshape(F).transpose(perm)``, else None."""
    s = squeezed(idx.shape)
    a = idx.reshape(s)
    if a.flat[0] != 0:
        return None
    strides = []
    for j in range(len(s)):
        unit = [0] * len(s)
        unit[j] = 1
        strides.append(int(a[tuple(unit)]) if s[j] > 1 else 0)
    grid = sum(np.arange(n).reshape([-1 if k == j else 1 for k in range(len(s))]) * st
               for j, (n, st) in enumerate(zip(s, strides)))
    if not np.array_equal(a, np.broadcast_to(grid, s)):
        return None
    order = sorted(range(len(s)), key=lambda j: -strides[j])  # F's axes, outermost first
    f = tuple(s[j] for j in order)
    expect = 1
    for j in reversed(order):
        if strides[j] != expect:
            return None
        expect *= s[j]
    perm = [order.index(j) for j in range(len(s))]
    return f, perm


def build_layers(path: str) -> tuple[list[PipeLayer], list[str]]:
    """The hls4ml layers of the ONNX model at ``path`` and the names of its output layers.

    The model comes through hwsim's one front end (:func:`mapping.onnx_graph.load_graph` and
    :func:`mapping.shape_binding.bind`, the leading batch dim bound to 1); only the weights' values, which hls4ml
    writes into the project, are decoded here.
    """
    return _Walk(path).run()


class _Walk:
    """One pass over the graph in topological order (see the module docstring)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.graph = load_graph(path)
        g = self.graph
        batch = {str(d): 1 for name in g.inputs for d in (g.tensors[name].dims or ())[:1] if isinstance(d, str)}
        free = [f"'{d}' of input '{name}' (axis {axis})" for name in g.inputs
                for axis, d in enumerate(g.tensors[name].dims or ()) if isinstance(d, str) and str(d) not in batch]
        try:
            bound = bind(g, batch)
        except HwsimError:
            if not free:
                raise
            # an hls4ml design is built for one input shape: a symbolic length has no value to build it for (the
            # binding error's --dim advice is simulate's, which this command has not)
            raise HwsimError(f"{path}: an hls4ml design is built for fixed input sizes, and dimension {free[0]} is "
                             "symbolic; re-export the model with that size fixed (torch.onnx.export without it in "
                             "dynamic_axes / dynamic_shapes)") from None
        self.shapes = {name: tuple(int(d) for d in dims) for name, dims in bound.shapes.items()}
        self.consts: dict[str, np.ndarray] = {}
        for name, t in g.tensors.items():
            if t.role in ("weight", "constant"):
                self.consts[name] = g.array(name) if t.value is None else t.value
        self.used: set[str] = set()
        self.layers: list[PipeLayer] = []
        self.by_name: dict[str, PipeLayer] = {}
        self.views: dict[str, _View] = {}
        self.realised: dict[tuple, str] = {}
        self.skip: set[int] = set()
        self.fused: dict[int, tuple[str, str]] = {}  # node index -> (table function, input tensor)
        self.fused_attrs: dict[int, dict] = {}  # node index -> the table layer's attrs (an unnamed unary region)

    # ----- helpers
    def err(self, node: Node, text: str) -> HwsimError:
        return HwsimError(f"{self.path}: node '{node.name}' ({node.op_type}): {text}")

    def full_shape(self, t: str, node: Node) -> tuple[int, ...]:
        if t not in self.shapes:
            raise self.err(node, f"shape of '{t}' is unknown; export with static shapes (only the batch dim may be "
                                 "symbolic)")
        return self.shapes[t]

    def view(self, t: str, node: Node) -> _View:
        if t not in self.views:
            raise self.err(node, f"input '{t}' is neither an activation nor a supported constant")
        return self.views[t]

    def new_layer(self, base: str, kind: str, inputs: list[str], shape: tuple[int, ...], node: str = "",
                  **attrs: object) -> PipeLayer:
        layer = PipeLayer(_cname(base, self.used), kind, node, inputs, tuple(int(d) for d in shape), dict(attrs))
        self.layers.append(layer)
        self.by_name[layer.name] = layer
        return layer

    def out_identity(self, layer: PipeLayer, out: str, node: Node) -> None:
        """``out`` is ``layer``'s output in ONNX order."""
        shape = self.full_shape(out, node)
        if math.prod(shape) != math.prod(layer.shape):
            raise self.err(node, f"output '{out}' has {math.prod(shape)} elements, the layer {math.prod(layer.shape)}")
        self.views[out] = _View(layer.name, np.arange(math.prod(shape)).reshape(shape))

    def size(self, layer: str) -> int:
        return math.prod(self.by_name[layer].shape)

    def is_permutation(self, v: _View) -> bool:
        n = self.size(v.layer)
        return v.idx.size == n and np.array_equal(np.sort(v.idx.reshape(-1)), np.arange(n))

    def reshape_to(self, layer: str, shape: tuple[int, ...], via: str) -> str:
        if self.by_name[layer].shape == shape:
            return layer
        key = ("reshape", layer, shape)
        if key not in self.realised:
            lay = self.new_layer(via or f"{layer}_reshape", "reshape", [layer], shape)
            self.realised[key] = lay.name
        return self.realised[key]

    def split_dense(self, v: _View, node: Node) -> _View | None:
        """A view that picks the same output columns of a Dense for every token: a Dense of those columns."""
        lay = self.by_name[v.layer]
        if lay.kind != "dense":
            return None
        n_out = lay.attrs["n_out"]
        vectors = self.size(v.layer) // n_out
        flat = v.idx.reshape(-1)
        rows, cols = flat // n_out, flat % n_out
        k = flat.size // vectors if flat.size % vectors == 0 else 0
        if not k or not np.array_equal(np.bincount(rows, minlength=vectors), np.full(vectors, k)):
            return None
        picked = sorted(set(cols[rows == 0].tolist()))
        for r in range(1, vectors):
            if sorted(cols[rows == r].tolist()) != picked:
                return None
        key = ("split", v.layer, tuple(picked))
        if key not in self.realised:
            part = self.new_layer(f"{lay.name}_{picked[0]}_{picked[-1] + 1}", "dense", list(lay.inputs),
                                  (*lay.shape[:-1], len(picked)) if len(lay.shape) > 1 else (len(picked),),
                                  node=lay.node, n_in=lay.attrs["n_in"], n_out=len(picked),
                                  weight=lay.attrs["weight"][:, picked], bias=lay.attrs["bias"][picked],
                                  vectors=lay.attrs["vectors"])
            self.realised[key] = part.name
        pos = np.full(n_out, -1)
        pos[picked] = np.arange(len(picked))
        return _View(self.realised[key], (rows * len(picked) + pos[cols]).reshape(v.idx.shape), v.via)

    def realise(self, v: _View, node: Node) -> str:
        """A layer whose output is ``v``'s data in ONNX order, with shape ``squeezed(v.idx.shape)``."""
        want = squeezed(v.idx.shape)
        key = ("view", v.layer, v.idx.shape, v.idx.tobytes())
        if key in self.realised:
            return self.realised[key]
        flat = v.idx.reshape(-1)
        if flat.size == self.size(v.layer) and np.array_equal(flat, np.arange(flat.size)):
            out = self.reshape_to(v.layer, want, v.via)
        else:
            part = self.split_dense(v, node) if flat.size < self.size(v.layer) else None
            if part is not None:
                out = self.realise(part, node)
            else:
                found = affine_transpose(v.idx) if flat.size == self.size(v.layer) else None
                if found is None and v.before is not None:  # e.g. heads merged after a transpose: that first
                    self.realised[key] = out = self.reshape_to(self.realise(v.before, node), want, v.via)
                    return out
                if found is None:
                    raise self.err(node, "its input is a reordering or slice of a layer's output that is neither a "
                                         "transpose nor a column split of a Dense; not supported")
                f, perm = found
                src = self.reshape_to(v.layer, f, "")
                out = self.new_layer(v.via or f"{v.layer}_transpose", "transpose", [src], want, perm=perm).name
        self.realised[key] = out
        return out

    def src(self, t: str, node: Node) -> str:
        """The layer holding tensor ``t`` in ONNX order."""
        return self.realise(self.view(t, node), node)

    def const_ints(self, node: Node, t: str, what: str) -> list[int]:
        if t not in self.consts:
            raise self.err(node, f"{what} must be a constant")
        return [int(x) for x in np.asarray(self.consts[t]).reshape(-1)]

    def is_const(self, t: str, value: float | None = None, tol: float = 1e-3) -> bool:
        if t not in self.consts or self.consts[t].size != 1:
            return False
        return value is None or abs(float(self.consts[t].reshape(-1)[0]) - value) <= tol * max(1.0, abs(value))

    # ----- patterns fused before the walk
    def fuse_patterns(self) -> None:
        """GELU's Erf pattern ``0.5 * x * (1 + erf(x / sqrt 2))`` and SiLU's ``x * sigmoid(x)`` become one layer."""
        g = self.graph
        producer = {o: n for n in g.nodes for o in n.outputs}
        cons = g.consumers

        def only(t: str) -> Node | None:
            users = cons.get(t, [])
            return users[0] if len(users) == 1 else None

        for node in g.nodes:
            if node.op_type == OP.Erf:
                pre = producer.get(node.inputs[0])
                if pre is None or len(pre.inputs) != 2:
                    continue
                if pre.op_type == OP.Div and self.is_const(pre.inputs[1], math.sqrt(2)):
                    x = pre.inputs[0]
                elif pre.op_type == OP.Mul and self.is_const(pre.inputs[1], 1 / math.sqrt(2)):
                    x = pre.inputs[0]
                else:
                    continue
                chain, t, half, times_x = [pre, node], node.outputs[0], False, False
                one = only(t)
                if one is None or one.op_type != OP.Add or not any(self.is_const(i, 1.0) for i in one.inputs):
                    continue
                chain.append(one)
                t = one.outputs[0]
                for _ in range(2):
                    nxt = only(t)
                    if nxt is None or nxt.op_type != OP.Mul:
                        break
                    other = [i for i in nxt.inputs if i != t]
                    if not other:
                        break
                    o = other[0]
                    if self.is_const(o, 0.5) and not half:
                        half = True
                    elif o == x and not times_x:
                        times_x = True
                    elif not times_x and not half and (p := producer.get(o)) is not None and p.op_type == OP.Mul \
                            and x in p.inputs and any(self.is_const(i, 0.5) for i in p.inputs) \
                            and len(cons.get(o, [])) == 1:
                        half = times_x = True
                        chain.append(p)
                    else:
                        break
                    chain.append(nxt)
                    t = nxt.outputs[0]
                if half and times_x:
                    *inner, last = chain
                    self.skip.update(n.index for n in inner)
                    self.fused[last.index] = ("gelu", x)
            elif node.op_type == OP.Mul and len(node.inputs) == 2:
                for a, b in (node.inputs, node.inputs[::-1]):
                    p = producer.get(b)
                    if p is not None and p.op_type == OP.Sigmoid and p.inputs[0] == a and len(cons.get(b, [])) == 1:
                        self.skip.add(p.index)
                        self.fused[node.index] = ("silu", a)
                        break
        self.fuse_unary_regions()

    def fuse_unary_regions(self) -> None:
        """Any other composite elementwise function of one tensor (GELU's tanh form from PyTorch: Pow/Mul/Add/Tanh)
        becomes one table layer: named when it is a known function, else a table of its own values
        (:mod:`mapping.fpga.unary`)."""
        from mapping.fpga import unary

        g = self.graph
        taken = self.skip | set(self.fused)
        for x, region, out in unary.find_regions(g.nodes, self.consts, g.consumers, set(g.outputs), taken):
            last = next(n for n in region if out in n.outputs)

            def f(v: np.ndarray, region: list = region, x: str = x, out: str = out) -> np.ndarray:
                return unary.evaluate(region, x, self.consts, out, v)

            name = unary.classify(f)
            self.skip.update(n.index for n in region if n is not last)
            self.fused[last.index] = (name or "table", x)
            if name is None:
                self.fused_attrs[last.index] = {"f": f, "linear_above": unary.tends_to_x(f),
                                                "ops": "/".join(n.op_type for n in region)}

    # ----- the walk
    def run(self) -> tuple[list[PipeLayer], list[str]]:
        g = self.graph
        for name in g.inputs:
            shape = self.shapes.get(name)
            if shape is None or len(shape) < 2:
                raise HwsimError(f"{self.path}: input '{name}' needs a static shape [batch, ...]")
            layer = self.new_layer(name, "input", [], squeezed(shape[1:]) if len(shape) > 2 else shape[1:])
            self.views[name] = _View(layer.name, np.arange(math.prod(shape)).reshape(shape))
        self.fuse_patterns()
        for node in g.nodes:
            if node.index in self.skip:
                continue
            if node.index in self.fused:
                fn, x = self.fused[node.index]
                self.elementwise(node, fn, x, node.outputs[0], **self.fused_attrs.get(node.index, {}))
                continue
            self.visit(node)
        outputs = []
        for o in g.outputs:
            if o in self.views:
                outputs.append(self.realise(self.views[o], next(n for n in g.nodes if o in n.outputs)))
        if not outputs:
            raise HwsimError(f"{self.path}: no graph output is produced by a supported layer")
        return self.fold_scales(self.prune(outputs), outputs), outputs

    def fold_scales(self, layers: list[PipeLayer], outputs: list[str]) -> list[PipeLayer]:
        """A scale or BatchNorm right after a Dense/Conv1D that nothing else reads goes into its weights and bias
        (as hls4ml's ``fuse_batch_normalization`` would do to the emitted project)."""
        readers: dict[str, int] = {}
        for lay in layers:
            for i in lay.inputs:
                readers[i] = readers.get(i, 0) + 1
        for o in outputs:
            readers[o] = readers.get(o, 0) + 1
        rename: dict[str, str] = {}
        keep = []
        for lay in layers:
            lay.inputs = [rename.get(i, i) for i in lay.inputs]
            src = self.by_name.get(lay.inputs[0]) if lay.inputs else None
            if (lay.kind in ("scale", "batchnorm") and src is not None and src.kind in ("dense", "conv1d")
                    and readers.get(src.name, 0) == 1 and lay.name not in outputs):
                n_out = src.attrs["n_out"]
                if lay.kind == "scale":
                    s, b = np.full(n_out, lay.attrs["factor"]), np.zeros(n_out)
                elif lay.attrs["n_filt"] == n_out:
                    s, b = np.asarray(lay.attrs["scale"]), np.asarray(lay.attrs["bias"])
                else:
                    keep.append(lay)
                    continue
                src.attrs["weight"] = src.attrs["weight"] * s
                src.attrs["bias"] = src.attrs["bias"] * s + b
                rename[lay.name] = src.name
                continue
            keep.append(lay)
        return keep

    def prune(self, outputs: list[str]) -> list[PipeLayer]:
        """Drop layers nothing reads (a packed Dense whose columns were split, a fused pattern's pieces)."""
        live: set[str] = set()
        todo = list(outputs)
        while todo:
            name = todo.pop()
            if name not in live:
                live.add(name)
                todo.extend(self.by_name[name].inputs)
        return [lay for lay in self.layers if lay.name in live or lay.kind == "input"]

    def elementwise(self, node: Node, kind: str, x: str, out: str, **attrs: object) -> None:
        """An elementwise layer on ``x``'s producer layout (no reordering); ``out`` keeps ``x``'s view."""
        v = self.view(x, node)
        if not self.is_permutation(v) and v.idx.size < self.size(v.layer):
            v = self.split_dense(v, node) or v  # e.g. the query scale on the q columns of a packed projection
        if not self.is_permutation(v):
            v = _View(self.realise(v, node), np.arange(v.idx.size).reshape(v.idx.shape))
        src = self.by_name[v.layer]
        scale = attrs.pop("per_element", None)
        if scale is not None:  # BatchNorm: (scale, bias) in ONNX layout -> the producer's layout
            s, b = (np.empty(v.idx.size), np.empty(v.idx.size))
            s[v.idx.reshape(-1)] = np.broadcast_to(scale[0], v.idx.shape).reshape(-1)
            b[v.idx.reshape(-1)] = np.broadcast_to(scale[1], v.idx.shape).reshape(-1)
            c = src.shape[-1]
            rows_s, rows_b = s.reshape(-1, c), b.reshape(-1, c)
            if np.allclose(rows_s, rows_s[:1]) and np.allclose(rows_b, rows_b[:1]):
                attrs.update(scale=rows_s[0].copy(), bias=rows_b[0].copy(), n_filt=c)
            else:
                attrs.update(scale=s, bias=b, n_filt=-1)
        layer = self.new_layer(node.name or f"{kind}_{len(self.layers)}", kind, [v.layer], src.shape, node.name,
                               **attrs)
        self.views[out] = _View(layer.name, v.idx, v.via)

    def visit(self, node: Node) -> None:  # noqa: C901 - one branch per op
        op, ins = node.op_type, list(node.inputs)
        kind = KINDS.get(op)
        out = node.outputs[0] if node.outputs else ""
        consts, attrs = self.consts, node.attr
        if kind == "constant":
            if self.graph.tensors[out].value is None:
                raise self.err(node, "its value cannot be decoded")
            consts[out] = self.graph.tensors[out].value
            return
        if out in consts:  # folded by the front end (shape arithmetic)
            return
        if kind == "wire":
            self.views[out] = self.view(ins[0], node)
            return
        if kind == "reshape":
            v = self.view(ins[0], node)
            shape = self.full_shape(out, node)
            before = v.before if squeezed(v.idx.shape) == squeezed(shape) else v
            self.views[out] = _View(v.layer, v.idx.reshape(shape), node.name, before)
            return
        if kind == "transpose":
            v = self.view(ins[0], node)
            perm = attrs("perm", None) or list(range(v.idx.ndim))[::-1]
            self.views[out] = _View(v.layer, v.idx.transpose([int(p) for p in perm]), node.name)
            return
        if kind == "select" and ins[0] in self.views:
            v = self.view(ins[0], node)
            if op == OP.Gather:
                index = np.asarray(consts[ins[1]]) if ins[1] in consts else None
                if index is None:
                    raise self.err(node, HINTS[OP.Gather])
                axis = int(attrs("axis", 0))
                self.views[out] = _View(v.layer, np.take(v.idx, index.astype(np.int64), axis=axis), node.name)
                return
            starts, ends = self.const_ints(node, ins[1], "starts"), self.const_ints(node, ins[2], "ends")
            axes = self.const_ints(node, ins[3], "axes") if len(ins) > 3 and ins[3] else list(range(len(starts)))
            steps = self.const_ints(node, ins[4], "steps") if len(ins) > 4 and ins[4] else [1] * len(starts)
            sl = [slice(None)] * v.idx.ndim
            for s, e, a, st in zip(starts, ends, axes, steps):
                sl[a] = slice(s, e, st)
            self.views[out] = _View(v.layer, v.idx[tuple(sl)], node.name)
            return
        if kind == "dense":
            a, b = ins[0], ins[1]
            if b in consts and a not in consts:
                self.dense(node, a, b, ins, out)
                return
            if op == OP.MatMul and a not in consts and b not in consts:
                la, lb = self.src(a, node), self.src(b, node)
                sa, sb = self.by_name[la].shape, self.by_name[lb].shape
                if len(sa) != len(sb) or len(sa) > 3 or sa[:-2] != sb[:-2] or sa[-1] != sb[-2]:
                    raise self.err(node, f"activation x activation product of shapes {sa} x {sb} is not supported; "
                                         "need equal leading dims and rank <= 3 without batch")
                lead = "hg"[: len(sa) - 2]
                layer = self.new_layer(node.name or "matmul", "matmul", [la, lb], (*sa[:-1], sb[-1]), node.name,
                                       equation=f"{lead}mk,{lead}kn->{lead}mn", inp0_shape=sa, inp1_shape=sb,
                                       n_in=sa[-1], n_out=math.prod(sb[:-2]) * sb[-1], vectors=sa[-2])
                self.out_identity(layer, out, node)
                return
        if kind == "scale" and len(ins) == 2 and self.is_const(ins[1]) and ins[0] in self.views:
            value = float(consts[ins[1]].reshape(-1)[0])
            self.elementwise(node, "scale", ins[0], out, factor=value if op == OP.Mul else 1.0 / value)
            return
        if op == OP.Mul and len(ins) == 2 and self.is_const(ins[0]) and ins[1] in self.views:
            self.elementwise(node, "scale", ins[1], out, factor=float(consts[ins[0]].reshape(-1)[0]))
            return
        if kind == "add" and len(ins) == 2 and ins[0] in self.views and ins[1] in self.views:
            self.add(node, ins, out)
            return
        if op in ACTIVATIONS:
            extra = {}
            if op == OP.Elu:
                extra = {"alpha": float(attrs("alpha", 1.0))}
            elif op == OP.LeakyRelu:
                extra = {"alpha": float(attrs("alpha", 0.01))}
            self.elementwise(node, ACTIVATIONS[op], ins[0], out, **extra)
            return
        if kind == "gelu":
            fn = "gelu_tanh" if attrs("approximate", "none") in ("tanh", b"tanh") else "gelu"
            self.elementwise(node, fn, ins[0], out)
            return
        if kind == "batchnorm":
            shape = self.full_shape(ins[0], node)
            if not all(t in consts for t in ins[1:5]):
                raise self.err(node, "scale, bias, mean and variance must be constants (inference mode)")
            gamma, beta, mean, var = (np.asarray(consts[t], np.float64).reshape(-1) for t in ins[1:5])
            s = gamma / np.sqrt(var + float(attrs("epsilon", 1e-5)))
            bshape = [1] * len(shape)
            bshape[1] = shape[1]
            self.elementwise(node, "batchnorm", ins[0], out,
                             per_element=(s.reshape(bshape), (beta - mean * s).reshape(bshape)))
            return
        if kind == "softmax":
            la = self.src(ins[0], node)
            shape, full = self.by_name[la].shape, self.full_shape(ins[0], node)
            axis = int(attrs("axis", -1))
            if axis not in (-1, len(full) - 1):
                raise self.err(node, f"only the last axis is supported, got axis={axis}")
            layer = self.new_layer(node.name or "softmax", "softmax", [la], shape, node.name, n=shape[-1],
                                   rows=math.prod(shape[:-1]), tokens=shape[-2] if len(shape) > 1 else 1)
            self.out_identity(layer, out, node)
            return
        if kind == "layernorm":
            la = self.src(ins[0], node)
            shape, full = self.by_name[la].shape, self.full_shape(ins[0], node)
            if int(attrs("axis", -1)) not in (-1, len(full) - 1) or ins[1] not in consts:
                raise self.err(node, "only a last-axis norm with constant scale is supported")
            beta = consts[ins[2]] if len(ins) > 2 and ins[2] else np.zeros(shape[-1])
            layer = self.new_layer(node.name or "layernorm", "layernorm", [la], shape, node.name, n=shape[-1],
                                   rows=math.prod(shape[:-1]), gamma=np.asarray(consts[ins[1]], np.float64),
                                   beta=np.asarray(beta, np.float64), epsilon=float(attrs("epsilon", 1e-5)))
            self.out_identity(layer, out, node)
            return
        if kind == "globalpool":
            self.reduce(node, ins, out)
            return
        if kind == "conv1d":
            self.conv(node, ins, out)
            return
        if kind == "pool1d":
            self.pool(node, ins, out)
            return
        raise self.err(node, f"not supported by the FPGA emitter; {HINTS.get(op, 'supported: ' + SUPPORTED)}")

    def dense(self, node: Node, a: str, b: str, ins: list[str], out: str) -> None:
        consts, op = self.consts, node.op_type
        w = consts[b].astype(np.float64)
        if op == OP.Gemm:
            if node.attr("transA", 0):
                raise self.err(node, "transA=1 is not supported")
            if node.attr("transB", 0):
                w = w.T
            w = w * node.attr("alpha", 1.0)
        if w.ndim != 2:
            raise self.err(node, f"weight must be 2-D, got {w.shape}")
        bias = np.zeros(w.shape[1])
        if op == OP.Gemm and len(ins) > 2 and ins[2]:
            bias = np.broadcast_to(consts[ins[2]] * node.attr("beta", 1.0), (w.shape[1],)).astype(np.float64)
        users = self.graph.consumers.get(out, [])
        if op == OP.MatMul and len(users) == 1 and users[0].op_type == OP.Add:
            other = [t for t in users[0].inputs if t != out]
            if other and other[0] in consts and consts[other[0]].size == w.shape[1]:
                bias = consts[other[0]].reshape(-1).astype(np.float64)
                self.skip.add(users[0].index)
                out = users[0].outputs[0]
        v = self.view(a, node)
        full = v.idx.shape
        if full[-1] != w.shape[0]:
            raise self.err(node, f"input's last dim {full[-1]} does not match the weight's {w.shape[0]} rows")
        lead = squeezed(full[:-1]) if math.prod(full[:-1]) > 1 else ()
        if not lead and self.is_permutation(v) and v.idx.size == w.shape[0]:
            # a reordered input (a channels-last conv output, flattened channel-major) reads its rows in the
            # producer's order instead: row idx[i] of the new weight is row i (hls4ml's
            # RemoveTransposeBeforeFlatten does the same)
            rows = np.empty_like(w)
            rows[v.idx.reshape(-1)] = w
            w = rows
            la = self.reshape_to(v.layer, (w.shape[0],), v.via)
        else:
            la = self.realise(_View(v.layer, v.idx.reshape(*lead, full[-1]), v.via, v.before), node)
        vectors = math.prod(lead) if lead else 1
        layer = self.new_layer(node.name or "dense", "dense", [la], (*lead, w.shape[1]), node.name, n_in=w.shape[0],
                               n_out=w.shape[1], weight=w, bias=bias, vectors=vectors)
        self.out_identity(layer, out, node)

    def add(self, node: Node, ins: list[str], out: str) -> None:
        va, vb = self.view(ins[0], node), self.view(ins[1], node)
        if va.idx.shape != vb.idx.shape:
            raise self.err(node, f"broadcasting {va.idx.shape} + {vb.idx.shape} is not supported")
        if (self.is_permutation(va) and self.is_permutation(vb) and np.array_equal(va.idx, vb.idx)
                and self.by_name[va.layer].shape == self.by_name[vb.layer].shape):
            la, lb, idx = va.layer, vb.layer, va.idx  # both in the same layout: add there
        else:
            la, lb = self.src(ins[0], node), self.src(ins[1], node)
            idx = np.arange(va.idx.size).reshape(va.idx.shape)
        layer = self.new_layer(node.name or "add", "add", [la, lb], self.by_name[la].shape, node.name)
        self.views[out] = _View(layer.name, idx)

    def reduce(self, node: Node, ins: list[str], out: str) -> None:
        v = self.view(ins[0], node)
        full = v.idx.shape
        axes = node.attr("axes", None)
        if axes is None and len(ins) > 1 and ins[1]:
            axes = self.const_ints(node, ins[1], "axes")
        if axes is None:
            raise self.err(node, "reducing over all axes is not supported; reduce over the tokens")
        axes = sorted({int(a) % len(full) for a in axes if full[int(a) % len(full)] != 1})
        rest = [d for i, d in enumerate(full) if i not in axes and d != 1]
        if len(axes) != 1 or 0 in axes or not rest:
            raise self.err(node, f"only a reduction over one axis of a [batch, tokens, features] tensor is emitted "
                                 f"(hls4ml GlobalPooling1D); got axes {axes} of {full}")
        moved = np.moveaxis(v.idx, axes[0], 0)
        n_in = full[axes[0]]
        la = self.realise(_View(v.layer, moved.reshape(n_in, -1), v.via), node)
        n_filt = math.prod(rest)
        layer = self.new_layer(node.name or "pool", "globalpool", [la], (n_filt,), node.name, n_in=n_in,
                               n_filt=n_filt, pool_op="Average" if node.op_type == OP.ReduceMean else "Max")
        self.out_identity(layer, out, node)

    def channels_last(self, node: Node, x: str) -> tuple[str, int, int]:
        """The layer of ``x`` ([batch, C, L]) as [L, C] (hls4ml's channels-last layout), C and L."""
        v = self.view(x, node)
        full = v.idx.shape
        if len(full) != 3:
            raise self.err(node, f"{HINTS[OP.Conv]}; input shape {full}")
        c, length = full[1], full[2]
        return self.realise(_View(v.layer, v.idx[0].T.reshape(length, c), v.via), node), c, length

    def out_channels_first(self, layer: PipeLayer, out: str) -> None:
        """``out`` ([batch, F, L']) is ``layer``'s [L', F] output transposed."""
        length, f = layer.shape
        self.views[out] = _View(layer.name, np.arange(length * f).reshape(length, f).T.reshape(1, f, length))

    def pads(self, node: Node, k: int, stride: int, length: int) -> tuple[int, int, int]:
        pads = [int(p) for p in (node.attr("pads", None) or [0, 0])]
        auto = node.attr("auto_pad", "NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto not in ("NOTSET", "VALID"):
            raise self.err(node, f"auto_pad={auto} is not supported; export explicit pads")
        pl, pr = pads[0], pads[-1]
        return (length + pl + pr - k) // stride + 1, pl, pr

    def conv(self, node: Node, ins: list[str], out: str) -> None:
        if ins[1] not in self.consts:
            raise self.err(node, "the weight must be a constant")
        w = np.asarray(self.consts[ins[1]], np.float64)
        if w.ndim not in (3, 4) or int(node.attr("group", 1)) != 1 \
                or any(int(d) != 1 for d in node.attr("dilations", [1])):
            raise self.err(node, HINTS[OP.Conv])
        if w.ndim == 4:
            self.conv2d(node, ins, out, w)
            return
        f, c, k = w.shape
        la, cin, length = self.channels_last(node, ins[0])
        stride = int((node.attr("strides", None) or [1])[0])
        l_out, pl, pr = self.pads(node, k, stride, length)
        bias = (np.asarray(self.consts[ins[2]], np.float64).reshape(-1) if len(ins) > 2 and ins[2] else np.zeros(f))
        layer = self.new_layer(node.name or "conv", "conv1d", [la], (l_out, f), node.name, n_chan=c, n_filt=f,
                               filt_width=k, stride=stride, pad_left=pl, pad_right=pr, in_width=length,
                               out_width=l_out, weight=w.transpose(2, 1, 0), bias=bias, n_in=k * c, n_out=f,
                               vectors=l_out)
        self.out_channels_first(layer, out)

    def conv2d(self, node: Node, ins: list[str], out: str, w: np.ndarray) -> None:
        """A 2-D Conv ([batch, C, H, W], PyTorch's layout) as hls4ml's channels-last Conv2D ([H, W, C] -> [H', W', F];
        weights (kh, kw, C, F), as Keras lays them out)."""
        f, c, kh, kw = w.shape
        v = self.view(ins[0], node)
        full = v.idx.shape
        if len(full) != 4 or full[1] != c:
            raise self.err(node, f"{HINTS[OP.Conv]}; input shape {full}, weight {w.shape}")
        h, wd = full[2], full[3]
        la = self.realise(_View(v.layer, v.idx[0].transpose(1, 2, 0), v.via), node)
        sh, sw = (int(s) for s in (node.attr("strides", None) or [1, 1]))
        auto = node.attr("auto_pad", "NOTSET")
        if (auto.decode() if isinstance(auto, bytes) else auto) not in ("NOTSET", "VALID"):
            raise self.err(node, f"auto_pad={auto} is not supported; export explicit pads")
        pt, pl, pb, pr = (int(p) for p in (node.attr("pads", None) or [0, 0, 0, 0]))
        oh, ow = (h + pt + pb - kh) // sh + 1, (wd + pl + pr - kw) // sw + 1
        bias = (np.asarray(self.consts[ins[2]], np.float64).reshape(-1) if len(ins) > 2 and ins[2] else np.zeros(f))
        layer = self.new_layer(node.name or "conv", "conv2d", [la], (oh, ow, f), node.name, n_chan=c, n_filt=f,
                               filt_height=kh, filt_width=kw, stride_height=sh, stride_width=sw, pad_top=pt,
                               pad_bottom=pb, pad_left=pl, pad_right=pr, in_height=h, in_width=wd, out_height=oh,
                               out_width=ow, weight=w.transpose(2, 3, 1, 0), bias=bias, n_in=kh * kw * c, n_out=f,
                               vectors=oh * ow)
        self.views[out] = _View(layer.name, np.arange(oh * ow * f).reshape(oh, ow, f).transpose(2, 0, 1)[None])

    def pool(self, node: Node, ins: list[str], out: str) -> None:
        k = [int(d) for d in node.attr("kernel_shape", [])]
        if len(k) != 1 or any(int(d) != 1 for d in node.attr("dilations", [1])) or node.attr("ceil_mode", 0):
            raise self.err(node, "only 1-D pooling (kernel_shape [k], no dilation, ceil_mode 0) is emitted")
        la, c, length = self.channels_last(node, ins[0])
        stride = int((node.attr("strides", None) or k)[0])
        l_out, pl, pr = self.pads(node, k[0], stride, length)
        layer = self.new_layer(node.name or "pool", "pool1d", [la], (l_out, c), node.name, n_in=length, n_out=l_out,
                               n_filt=c, pool_width=k[0], stride=stride, pad_left=pl, pad_right=pr,
                               pool_op="Max" if node.op_type == OP.MaxPool else "Average",
                               count_pad=bool(node.attr("count_include_pad", 0)))
        self.out_channels_first(layer, out)


def kinds_of(layers: list[PipeLayer]) -> dict[str, int]:
    """Layer kind -> count (for messages and tests)."""
    return {k: sum(1 for _ in g) for k, g in itertools.groupby(sorted(lay.kind for lay in layers))}

