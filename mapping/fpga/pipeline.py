"""Per-layer pipeline description of a small ONNX model, as hls4ml would implement it, and its cost estimate.

:func:`build_layers` walks the ONNX graph (weights included: small models only) and produces one
:class:`PipeLayer` per hls4ml layer: Dense (``MatMul``/``Gemm`` with a constant weight, a following constant
``Add`` folded in as the bias; applied per token on 2-D inputs), MatMul (two activations: Q.K^T, P.V, emitted as
hls4ml ``Einsum``), Softmax (last axis), LayerNorm, ReLU, GELU (costed only: hls4ml 1.3 has no kernel), residual
Add, constant Mul/Div (scale), Reshape/Flatten/Transpose (wiring). The leading dimension of every tensor is the
batch and is dropped, as in hls4ml. Anything else raises one HwsimError naming the node and what to change.
:func:`estimate` costs the layers with :mod:`hardware.fpga` models on a target part.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hardware.errors import HwsimError
from hardware.fpga.dense import DspShape, LayerEstimate, dense_estimate
from hardware.fpga.fixed import FixedType, parse_fixed
from hardware.fpga.layers import elementwise_estimate, layernorm_estimate, softmax_estimate, wiring_estimate
from hardware.fpga.pipeline import PipelineEstimate, evaluate_pipeline
from hardware.fpga.spec import FpgaTarget
from mapping import op_table
from mapping.onnx_graph import Node, load_graph
from mapping.op_table import OP
from mapping.shape_binding import bind

#: op type -> why the emitter refuses it and what to do instead (the op table's ``fpga_hint``).
HINTS = {e.name: e.fpga_hint for e in op_table.TABLE.values() if e.fpga_hint}


#: hls4ml activation layer kinds (the op table's ``fpga`` of Relu, Gelu, Elu, Sigmoid, Tanh).
_ACTIVATIONS = ("relu", "gelu", "elu", "sigmoid", "tanh")


@dataclass
class PipeLayer:
    """One hls4ml layer: ``kind`` in input, dense, matmul, softmax, layernorm, relu, gelu, add, scale, reshape,
    transpose; ``shape`` is the output shape without the batch dim; ``attrs`` the kind's facts and weights."""

    name: str
    kind: str
    node: str
    inputs: list[str]
    shape: tuple[int, ...]
    attrs: dict = field(default_factory=dict)


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


def build_layers(path: str) -> tuple[list[PipeLayer], list[str]]:
    """The hls4ml layers of the ONNX model at ``path`` and the names of its output layers.

    The model comes through hwsim's one front end (:func:`mapping.onnx_graph.load_graph` and
    :func:`mapping.shape_binding.bind`, the leading batch dim bound to 1); only the weights' values, which hls4ml
    writes into the project, are decoded here.
    """
    graph = load_graph(path)
    batch = {str(d): 1 for name in graph.inputs for d in (graph.tensors[name].dims or ())[:1] if isinstance(d, str)}
    bound = bind(graph, batch)
    shapes = {name: tuple(int(d) for d in dims) for name, dims in bound.shapes.items()}
    consts: dict[str, np.ndarray] = {}
    for name, t in graph.tensors.items():
        if t.role in ("weight", "constant"):
            consts[name] = graph.array(name) if t.value is None else t.value
    consumers = graph.consumers
    used: set[str] = set()
    producer: dict[str, str] = {}  # tensor -> layer name
    layers: list[PipeLayer] = []
    skip: set[int] = set()

    def shape_of(t: str, node: Node) -> tuple[int, ...]:
        if t not in shapes:
            raise HwsimError(f"{path}: node '{node.name}' ({node.op_type}): shape of '{t}' is unknown; export with "
                             "static shapes (only the batch dim may be symbolic)")
        return shapes[t][1:]

    def src(t: str, node: Node) -> str:
        if t not in producer:
            raise HwsimError(f"{path}: node '{node.name}' ({node.op_type}): input '{t}' is neither an activation nor "
                             "a supported constant")
        return producer[t]

    def add(node: Node, kind: str, inputs: list[str], out: str, **attrs: object) -> None:
        layer = PipeLayer(_cname(node.name or f"{kind}_{len(layers)}", used), kind, node.name, inputs,
                          shape_of(out, node), dict(attrs))
        layers.append(layer)
        producer[out] = layer.name

    for name in graph.inputs:
        shape = shapes.get(name)
        if shape is None or len(shape) < 2:
            raise HwsimError(f"{path}: input '{name}' needs a static shape [batch, ...]")
        layer = PipeLayer(_cname(name, used), "input", "", [], shape[1:])
        layers.append(layer)
        producer[name] = layer.name

    for node in graph.nodes:
        if node.index in skip:
            continue
        op, ins, out = node.op_type, list(node.inputs), node.outputs[0] if node.outputs else ""
        attrs = _Attrs(node)
        entry = op_table.get(node.domain, op)
        kind = entry.fpga if entry is not None else None  # the hls4ml layer kind the table maps this op to
        if kind == "constant":
            if graph.tensors[out].value is None:
                raise HwsimError(f"{path}: node '{node.name}' (Constant): its value cannot be decoded")
            consts[out] = graph.tensors[out].value
            continue
        if kind == "wire":
            producer[out] = src(ins[0], node)
            continue
        if kind == "dense":
            a, b = ins[0], ins[1]
            if b in consts and a not in consts:
                w = consts[b].astype(np.float64)
                if op == OP.Gemm:
                    if attrs.get("transA", 0):
                        raise HwsimError(f"{path}: node '{node.name}' (Gemm): transA=1 is not supported")
                    if attrs.get("transB", 0):
                        w = w.T
                    w = w * attrs.get("alpha", 1.0)
                if w.ndim != 2:
                    raise HwsimError(f"{path}: node '{node.name}' ({op}): weight must be 2-D, got {w.shape}")
                bias = np.zeros(w.shape[1])
                if op == OP.Gemm and len(ins) > 2 and ins[2]:
                    bias = np.broadcast_to(consts[ins[2]] * attrs.get("beta", 1.0), (w.shape[1],)).astype(np.float64)
                users = consumers.get(out, [])
                if op == OP.MatMul and len(users) == 1 and users[0].op_type == OP.Add:
                    other = [t for t in users[0].inputs if t != out]
                    if other and other[0] in consts and consts[other[0]].size == w.shape[1]:
                        bias = consts[other[0]].reshape(-1).astype(np.float64)
                        skip.add(users[0].index)
                        out = users[0].outputs[0]
                in_shape = shape_of(a, node)
                add(node, "dense", [src(a, node)], out, n_in=w.shape[0], n_out=w.shape[1], weight=w, bias=bias,
                    vectors=math.prod(in_shape[:-1]))
                continue
            if op == OP.MatMul and a not in consts and b not in consts:
                sa, sb = shape_of(a, node), shape_of(b, node)
                if len(sa) != len(sb) or len(sa) > 3 or sa[:-2] != sb[:-2] or sa[-1] != sb[-2]:
                    raise HwsimError(f"{path}: node '{node.name}' (MatMul): activation x activation product of shapes "
                                     f"{sa} x {sb} is not supported; need equal leading dims and rank <= 3 without batch")
                lead = "hg"[: len(sa) - 2]
                eq = f"{lead}mk,{lead}kn->{lead}mn"
                add(node, "matmul", [src(a, node), src(b, node)], out, equation=eq, inp0_shape=sa, inp1_shape=sb,
                    n_in=sa[-1], n_out=math.prod(sb[:-2]) * sb[-1], vectors=sa[-2])
                continue
        if kind == "scale" and len(ins) == 2 and ins[1] in consts and consts[ins[1]].size == 1:
            value = float(consts[ins[1]].reshape(-1)[0])
            add(node, "scale", [src(ins[0], node)], out, factor=value if op == OP.Mul else 1.0 / value)
            continue
        if op == OP.Mul and ins[0] in consts and consts[ins[0]].size == 1:
            add(node, "scale", [src(ins[1], node)], out, factor=float(consts[ins[0]].reshape(-1)[0]))
            continue
        if kind == "add" and len(ins) == 2 and ins[0] not in consts and ins[1] not in consts:
            sa, sb = shape_of(ins[0], node), shape_of(ins[1], node)
            if sa != sb:
                raise HwsimError(f"{path}: node '{node.name}' (Add): broadcasting {sa} + {sb} is not supported")
            add(node, "add", [src(ins[0], node), src(ins[1], node)], out)
            continue
        if kind in _ACTIVATIONS:
            extra = {"alpha": float(attrs.get("alpha", 1.0))} if kind == "elu" else {}
            add(node, kind, [src(ins[0], node)], out, **extra)
            continue
        if kind == "softmax":
            shape = shape_of(ins[0], node)
            axis = attrs.get("axis", -1)
            if axis not in (-1, len(shape)):
                raise HwsimError(f"{path}: node '{node.name}' (Softmax): only the last axis is supported, got axis={axis}")
            add(node, "softmax", [src(ins[0], node)], out, n=shape[-1], rows=math.prod(shape[:-1]),
                tokens=shape[-2] if len(shape) > 1 else 1)
            continue
        if kind == "layernorm":
            shape = shape_of(ins[0], node)
            if attrs.get("axis", -1) not in (-1, len(shape)) or ins[1] not in consts:
                raise HwsimError(f"{path}: node '{node.name}' (LayerNormalization): only a last-axis norm with "
                                 "constant scale is supported")
            beta = consts[ins[2]] if len(ins) > 2 and ins[2] else np.zeros(shape[-1])
            add(node, "layernorm", [src(ins[0], node)], out, n=shape[-1], rows=math.prod(shape[:-1]),
                gamma=consts[ins[1]].astype(np.float64), beta=np.asarray(beta, np.float64),
                epsilon=float(attrs.get("epsilon", 1e-5)))
            continue
        if kind == "reshape":
            add(node, "reshape", [src(ins[0], node)], out)
            continue
        if kind == "transpose":
            perm = list(attrs.get("perm", []))
            if not perm or perm[0] != 0:
                raise HwsimError(f"{path}: node '{node.name}' (Transpose): the batch axis must stay first, perm={perm}")
            perm = [p - 1 for p in perm[1:]]
            if perm == sorted(perm):
                producer[out] = src(ins[0], node)
            else:
                add(node, "transpose", [src(ins[0], node)], out, perm=perm)
            continue
        hint = HINTS.get(op, "supported: MatMul/Gemm (+bias Add), Add, Mul/Div by a scalar, Relu, Softmax, "
                             "LayerNormalization, Reshape, Flatten, Transpose")
        raise HwsimError(f"{path}: node '{node.name}' ({op}): not supported by the FPGA emitter; {hint}")
    outputs = [producer[o] for o in graph.outputs if o in producer]
    if not outputs:
        raise HwsimError(f"{path}: no graph output is produced by a supported layer")
    return layers, outputs


class _Attrs:
    """A node's attributes with ``dict.get`` access."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def get(self, key: str, default: object = None) -> Any:
        return self.node.attr(key, default)

    def __contains__(self, key: str) -> bool:
        return self.node.attr(key) is not None


def quantise(values: np.ndarray, fmt: FixedType) -> np.ndarray:
    """``values`` rounded to the nearest step of ``fmt`` and saturated to its range (ap_fixed RND, SAT)."""
    step = 2.0 ** -fmt.fractional
    lo = -(2.0 ** (fmt.integer - 1)) if fmt.signed else 0.0
    hi = 2.0 ** (fmt.integer - (1 if fmt.signed else 0)) - step
    return np.clip(np.round(np.asarray(values, np.float64) / step) * step, lo, hi)


def weight_zeros(weight: np.ndarray, fmt: FixedType) -> int:
    """Weights that are 0 once quantised to ``fmt`` (hls4ml writes them as ``n_zeros`` and skips them)."""
    return int(np.count_nonzero(quantise(weight, fmt) == 0))


def pipeline_style(layers: list[PipeLayer], strategy: str, io_type: str) -> str:
    """hls4ml 1.3's automatic top-level style (``SetPipelineStyle``): ``dataflow`` for io_stream, per-token Dense
    (pointwise Conv1D) or the Resource strategy, else ``pipeline`` (the whole top function one pipeline, every
    loop in it unrolled)."""
    if io_type == "io_stream" or strategy == "resource":
        return "dataflow"
    if any(lay.kind == "dense" and lay.attrs.get("vectors", 1) > 1 for lay in layers):
        return "dataflow"
    return "pipeline"


def estimate(layers: list[PipeLayer], target: FpgaTarget, options: dict | None = None) -> PipelineEstimate:
    """Cost every layer on ``target`` as hls4ml 1.3 emits it (``io_parallel``; docs/research/fpga.md 3).

    Options: ``reuse`` (1), ``strategy`` (latency|resource), ``io_type`` (io_parallel|io_stream), ``precision``
    (data, 'ap_fixed<16,6>'), ``weight_precision`` (default: precision), ``table_size`` (softmax and activation
    tables, hls4ml's default 1024), ``skip_zeros`` (True: weights that quantise to 0 cost no multiplier),
    ``layer_reuse`` ({layer name: reuse factor}, e.g. the factors hls4ml actually chose, see
    :func:`mapping.fpga.hls.emitted_reuse`) and ``token_parallel``:

    - ``False`` (default, ``--token-serial``): a per-token Dense (hls4ml turns it into a pointwise Conv1D) takes one
      token per R cycles: hls4ml's default ``ParallelizationFactor = 1`` gives ``n_partitions = tokens`` and a
      ``PIPELINE II=R`` partition loop (``nnet_conv1d_latency.h``). This is also how Jiang et al.'s attention
      projections run.
    - ``True`` (``--token-parallel``): all tokens at once (``ParallelizationFactor = tokens``, ``n_partitions = 1``).
    - an int: that many tokens at once.

    Whatever the choice, the attention products (hls4ml ``Einsum``) and the softmax rows are emitted fully
    unrolled over the tokens in hls4ml 1.3: ``nnet::einsum`` is one ``PIPELINE II=R`` with
    ``multiplier_limit = L0*L1*C*heads / R``, and ``softmax_multidim`` has ``parallelization_factor = -1`` (every
    row at once). The estimate models them that way. ``matmul_parallel`` (tokens of the attention products at once;
    default: all) exists only to cost designs hls4ml 1.3 cannot emit, such as Jiang et al.'s hand-written attention
    that streams one query row per R cycles (``simulator/validation/fpga_jet_tagger.py``)."""
    opts = dict(options or {})
    reuse = int(opts.get("reuse", 1))
    strategy = str(opts.get("strategy", "latency")).lower()
    io_type = str(opts.get("io_type", "io_parallel"))
    data: FixedType = parse_fixed(str(opts.get("precision", "ap_fixed<16,6>")))
    weight: FixedType = parse_fixed(str(opts.get("weight_precision", data)), "--weight-precision")
    tp = opts.get("token_parallel", False)
    table = int(opts.get("table_size", 1024))
    layer_reuse: dict[str, int] = dict(opts.get("layer_reuse") or {})
    mp = opts.get("matmul_parallel")
    skip_zeros = bool(opts.get("skip_zeros", True))
    style = pipeline_style(layers, strategy, io_type)
    dsp = DspShape(target.dsp_mult_a_bits.n, target.dsp_mult_b_bits.n, target.lut_mult_max_bits.n)
    ests: list[LayerEstimate] = []
    for lay in layers:
        a = lay.attrs
        rf = int(layer_reuse.get(lay.name, reuse))
        if lay.kind == "input":
            continue
        if lay.kind == "dense":
            tokens = a["vectors"] if tp is True else max(1, int(tp))
            zeros = weight_zeros(a["weight"], weight) if skip_zeros and "weight" in a else 0
            e = dense_estimate(lay.name, a["n_in"], a["n_out"], rf, strategy, data.width, weight.width,
                               vectors=a["vectors"], parallel=tokens, dsp=dsp, io_type=io_type, zeros=zeros)
        elif lay.kind == "matmul":
            e = dense_estimate(lay.name, a["n_in"], a["n_out"], rf, "latency", data.width, data.width,
                               vectors=a["vectors"], parallel=int(mp or a["vectors"]), dsp=dsp, io_type=io_type,
                               kind="matmul")
        elif lay.kind == "softmax":
            rows = a["rows"] if mp is None else a["rows"] // a.get("tokens", 1) * int(mp)
            e = softmax_estimate(lay.name, a["n"], a["rows"], parallel=max(1, rows), data_bits=data.width,
                                 table_size=table, dsp=dsp, reuse=rf)
        elif lay.kind == "layernorm":
            e = layernorm_estimate(lay.name, a["n"], a["rows"], rf, data.width, dsp=dsp,
                                   parallel_rows=a["rows"] if style == "pipeline" else 1)
        elif lay.kind in ("relu", "gelu", "elu", "sigmoid", "tanh", "add", "scale"):
            e = elementwise_estimate(lay.name, lay.kind, math.prod(lay.shape), data.width, table)
        else:
            e = wiring_estimate(lay.name, lay.kind)
        ests.append(e)
    inputs = {lay.name: lay.inputs for lay in layers}
    return evaluate_pipeline(ests, inputs, target, io_type)
