"""The cost estimate of a small ONNX model's hls4ml layers (:func:`mapping.fpga.onnx_layers.build_layers`, re-exported
here) on a target part, with the :mod:`hardware.fpga` models of what HLS schedules for each hls4ml kernel.
"""

from __future__ import annotations

import math

import numpy as np

from hardware.fpga.dense import DspShape, LayerEstimate, dense_estimate
from hardware.fpga.fixed import FixedType, parse_fixed
from hardware.fpga.layers import (
    batchnorm_estimate,
    elementwise_estimate,
    layernorm_estimate,
    pool_estimate,
    softmax_estimate,
    wiring_estimate,
)
from hardware.fpga.pipeline import PipelineEstimate, evaluate_pipeline
from hardware.fpga.spec import FpgaTarget
from hardware.fpga.tool import CONTROL_FF, tool_rules
from mapping.fpga.onnx_layers import PipeLayer, build_layers

__all__ = ["PipeLayer", "build_layers", "estimate", "quantise", "weight_zeros", "pipeline_style"]

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
    if any(lay.kind in ("dense", "conv1d", "conv2d") and lay.attrs.get("vectors", 1) > 1 for lay in layers):
        return "dataflow"
    return "pipeline"


def estimate(layers: list[PipeLayer], target: FpgaTarget, options: dict | None = None) -> PipelineEstimate:
    """Cost every layer on ``target`` as hls4ml 1.3 emits it (``io_parallel``; docs/research/fpga.md 3).

    Options: ``reuse`` (1), ``strategy`` (latency|resource), ``io_type`` (io_parallel|io_stream), ``precision``
    (data, 'ap_fixed<16,6>'), ``weight_precision`` (default: precision), ``table_size`` (softmax and activation
    tables, hls4ml's default 1024), ``skip_zeros`` (True: weights that quantise to 0 cost no multiplier),
    ``layer_reuse`` ({layer name: reuse factor}, e.g. the factors hls4ml actually chose, see
    :func:`mapping.fpga.hls.emitted_reuse`), ``backend`` (Vitis, as ``hwsim hls`` emits by default, or Vivado: the
    HLS tool's scheduling and binding rules, :mod:`hardware.fpga.tool`) and ``token_parallel``:

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
    tool = tool_rules(str(opts.get("backend", "Vitis")))
    dsp = DspShape(target.dsp_mult_a_bits.n, target.dsp_mult_b_bits.n, target.lut_mult_max_bits.n)
    ests: list[LayerEstimate] = []
    read = {i for lay in layers for i in lay.inputs}
    for lay in layers:
        a = lay.attrs
        rf = int(layer_reuse.get(lay.name, reuse))
        if lay.kind == "input":
            if io_type == "io_stream" and tool.stream_registers:
                e = wiring_estimate(lay.name, "input")
                e.resources.ff = lay.shape[-1] * data.width  # the input stream word
                ests.append(e)
            continue
        if lay.kind in ("dense", "conv1d", "conv2d"):  # Conv: a Dense of kernel x n_chan inputs per output position
            tokens = a["vectors"] if tp is True else max(1, int(tp))
            zeros = weight_zeros(a["weight"], weight) if skip_zeros and "weight" in a else 0
            e = dense_estimate(lay.name, a["n_in"], a["n_out"], rf, strategy, data.width, weight.width,
                               vectors=a["vectors"], parallel=tokens, dsp=dsp, io_type=io_type, zeros=zeros,
                               tool=tool)
            e.kind = lay.kind
        elif lay.kind == "matmul":
            e = dense_estimate(lay.name, a["n_in"], a["n_out"], rf, "latency", data.width, data.width,
                               vectors=a["vectors"], parallel=int(mp or a["vectors"]), dsp=dsp, io_type=io_type,
                               kind="matmul")
        elif lay.kind == "softmax":
            rows = a["rows"] if mp is None else a["rows"] // a.get("tokens", 1) * int(mp)
            e = softmax_estimate(lay.name, a["n"], a["rows"], parallel=max(1, rows), data_bits=data.width,
                                 table_size=table, dsp=dsp, reuse=rf, tool=tool)
        elif lay.kind == "layernorm":
            e = layernorm_estimate(lay.name, a["n"], a["rows"], rf, data.width, dsp=dsp,
                                   parallel_rows=a["rows"] if style == "pipeline" else 1)
        elif lay.kind == "batchnorm":
            e = batchnorm_estimate(lay.name, math.prod(lay.shape), rf, data.width, weight.width, dsp,
                                   words=math.prod(lay.shape[:-1]), io_type=io_type)
        elif lay.kind in ("pool1d", "globalpool"):
            outputs = math.prod(lay.shape)
            window = a["pool_width"] if lay.kind == "pool1d" else a["n_in"]
            e = pool_estimate(lay.name, lay.kind, outputs, window, a["pool_op"] == "Average", data.width,
                              words=a["n_in"], io_type=io_type)
        elif lay.kind in ("relu", "leaky_relu", "gelu", "gelu_tanh", "silu", "table", "elu", "sigmoid", "tanh",
                          "add", "scale"):
            e = elementwise_estimate(lay.name, lay.kind, math.prod(lay.shape), data.width, table, tool,
                                     a.get("alpha"))
        else:
            e = wiring_estimate(lay.name, lay.kind)
        if io_type == "io_stream" and lay.kind not in ("reshape", "transpose"):
            word = lay.shape[-1] * data.width  # bits of one output stream word
            e.latency_cycles = max(1, e.latency_cycles)  # a dataflow process: read a word, write a word
            if tool.stream_registers:
                e.resources.ff += word
            if lay.name in read:  # a FIFO to the next layer
                e.resources.lut += round(tool.stream_lut * word)
                e.resources.ff += round(tool.stream_ff * word)
        ests.append(e)
    inputs = {lay.name: lay.inputs for lay in layers}
    est = evaluate_pipeline(ests, inputs, target, io_type, no_overlap=tool.stream_registers)
    est.resources.ff += CONTROL_FF
    return est
