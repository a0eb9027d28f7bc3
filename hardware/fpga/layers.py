"""hls4ml-style cost models of the non-matrix layers: softmax, layer norm, activations, residual adds, scales.

Sources: hls4ml 1.3.0 ``nnet_activation.h`` and ``nnet_layernorm.h`` (docs/research/fpga.md 3b, 3c) for the
structure; the constants are fitted to published csynth reports (``simulator/validation/fpga_published.yaml``):

- Softmax (``stable``): per row of ``n``: a max and a sum adder tree, ``n`` exp lookups, one reciprocal lookup,
  ``n`` multiplies. Latency ``SOFTMAX_BASE + ceil(2 * ceil(log2 n) / 6)`` (4 cycles for n = 5 in the Vitis HLS
  2024.1 reports of the tutorial jet tagger), one cycle more per extra pass over the rows. ``n`` DSPs per row;
  the exp table is read ``n`` times per call from dual-ported ROMs shared over the ``reuse`` cycles of the call,
  so it is replicated ``ceil(n / (2 * reuse))`` times, plus one reciprocal table; each copy is
  ``ceil(table_size * table_bits / 18432)`` BRAM18 (4, 3 and 2 BRAM18 at R = 1, 2 and >= 4 for n = 5, 1024 x 18
  bit tables, in the tutorial's Vivado HLS 2019 reports). ``table_size`` defaults to hls4ml's 1024.
  LUT ``SOFTMAX_LUT * n * bits``, FF ``SOFTMAX_FF * n * bits`` per row (the same reports' softmax instance).
- LayerNorm: per row of ``n``: mean and variance adder trees, one inverse-sqrt lookup (``table_size`` 4096 as
  hls4ml's backend default), ``3n + 2`` multiplies, ``PIPELINE II=R`` per row. ``parallel_rows`` rows at once:
  all of them when the top function is pipelined (hls4ml's ``pipeline`` style unrolls the row loop), one when
  the layers are dataflow processes. No report checks these constants (none found; UNCONFIRMED).
- ReLU: no cycles (a comparison folded into the pipeline: 0-cycle instances in the reports), ``RELU_LUT * n *
  bits`` LUTs. Table activations (ELU, sigmoid, tanh, and GELU costed as one so designs can be sized): 2 cycles
  (Vivado HLS) or 3 (Vitis HLS, :mod:`hardware.fpga.tool`), ``ceil(n/2)`` dual-ported copies of a ``table_size``
  x 18-bit ROM (GELU/SiLU and other functions: hwsim's table layer, ``mapping/fpga/hls_ext.py``, the same
  structure). Residual add: no cycles, ``n * bits`` LUTs. Constant scale and LeakyReLU (a compare and a constant
  multiply): one cycle; LeakyReLU with alpha 1 is the identity (nothing).
- BatchNorm (inference, ``nnet_batchnorm.h``): ``y = s * x + b`` per element, ``PIPELINE II=R`` with
  ``ceil(n / R)`` multipliers; R cycles. Pooling (``nnet_pooling.h``, fully unrolled in io_parallel): every output
  reduces its window with a compare/adder tree (``POOL_LEVELS_PER_CYCLE`` levels per cycle, the first two inputs
  in the same cycle: a width-2 pool is combinational) and an average by a width that is not a power of two
  multiplies by ``1/window`` (one cycle more); LUTs per output ``(window - 1) * bits * POOL_MAX_LUT|POOL_AVG_LUT``,
  FFs the registered inputs (fitted on hls4ml's test_pooling baselines; BatchNorm UNCONFIRMED). In io_stream
  both read one channel-vector word per cycle, so ``words`` (the tokens or positions) cycles per inference.
"""

from __future__ import annotations

import math

from hardware.fpga.dense import DspShape, LayerEstimate, Resources, adder_depth, dsps_per_multiplier
from hardware.fpga.tool import VIVADO, ToolRules

#: Bits in one BRAM18.
BRAM18_BITS = 18 * 1024
#: Fixed cycles of a softmax: exp lookup, reciprocal lookup, final multiply (fitted; see the module docstring).
SOFTMAX_BASE = 3
#: Softmax LUTs and FFs per element per data bit (Vitis HLS 2024.1 softmax instance: 790 LUT, 392 FF at n = 5,
#: 16 bits).
SOFTMAX_LUT, SOFTMAX_FF = 10.0, 5.0
#: ReLU LUTs per element per bit of layers with no tool-specific rate (LeakyReLU); ReLU and the table activations
#: take theirs from :mod:`hardware.fpga.tool`.
RELU_LUT = 2.0
#: Width of hls4ml's activation tables (``ap_fixed<18,8>`` by default).
TABLE_BITS = 18
#: Pooling: compare/add tree levels per cycle (a width-2 pool is 0 cycles: hls4ml test_pooling baselines), LUTs per
#: output per extra window element per bit for max (compare + select) and average (add), FFs per input bit
#: (registered window inputs: 5810 FF = 121 x 3 x 16 in every test_pooling baseline). Fitted on the Vivado HLS 2020.1
#: MaxPooling1D / AveragePooling1D baselines (simulator/validation/fpga_published.yaml).
POOL_LEVELS_PER_CYCLE, POOL_MAX_LUT, POOL_AVG_LUT, POOL_FF = 3, 1.83, 1.45, 1.0
#: Cycles of a LayerNorm's table lookup and its three multiply stages (UNCONFIRMED).
LAYERNORM_TABLE, LAYERNORM_MULTS = 1, 3


def rom_bram18(table_size: int, table_bits: int = TABLE_BITS) -> int:
    """BRAM18 blocks of one ROM copy of ``table_size`` words of ``table_bits``."""
    return math.ceil(table_size * table_bits / BRAM18_BITS)


def softmax_estimate(name: str, n: int, rows: int = 1, parallel: int | None = None, data_bits: int = 16,
                     table_size: int = 1024, table_bits: int = TABLE_BITS, dsp: DspShape | None = None,
                     reuse: int = 1, tool: ToolRules = VIVADO) -> LayerEstimate:
    """Softmax over rows of ``n`` elements; ``parallel`` rows at once (default: all, as hls4ml io_parallel)."""
    dsp = dsp or DspShape()
    parallel = min(rows, parallel or rows)
    passes = math.ceil(rows / parallel)
    depth = SOFTMAX_BASE + math.ceil(2 * math.ceil(math.log2(max(n, 2))) / 6)
    mults = n * parallel
    per = dsps_per_multiplier(table_bits, table_bits, dsp)
    copies = (math.ceil(n / (2 * max(reuse, 1))) + 1) * parallel
    bram18 = copies * rom_bram18(table_size, table_bits) * tool.softmax_rom_factor
    lut = parallel * SOFTMAX_LUT * n * data_bits + (mults * table_bits * table_bits if per == 0 else 0)
    ff = parallel * SOFTMAX_FF * n * data_bits
    return LayerEstimate(name, "softmax", depth + passes - 1, passes, Resources(mults * per, round(lut), round(ff),
                                                                                bram18 / 2), mults,
                         {"n": n, "rows": rows, "parallel": parallel, "table_size": table_size, "depth": depth,
                          "rom_copies": copies})


def layernorm_estimate(name: str, n: int, rows: int = 1, reuse: int = 1, data_bits: int = 16,
                       table_size: int = 4096, table_bits: int = 8, dsp: DspShape | None = None,
                       parallel_rows: int = 1) -> LayerEstimate:
    """LayerNorm over rows of ``n`` elements, ``parallel_rows`` rows per ``reuse`` cycles (hls4ml ``layernormalize``)."""
    dsp = dsp or DspShape()
    parallel_rows = max(1, min(rows, parallel_rows))
    passes = math.ceil(rows / parallel_rows)
    depth = 2 * adder_depth(n) + LAYERNORM_TABLE + LAYERNORM_MULTS
    mults = math.ceil((3 * n + 2) / reuse) * parallel_rows
    per = dsps_per_multiplier(data_bits, data_bits, dsp)
    res = Resources(mults * per, 4 * n * data_bits * parallel_rows, 4 * n * data_bits * parallel_rows,
                    parallel_rows * rom_bram18(table_size, table_bits) / 2)
    return LayerEstimate(name, "layernorm", passes * reuse + depth, passes * reuse, res, mults,
                         {"n": n, "rows": rows, "reuse": reuse, "depth": depth, "parallel_rows": parallel_rows})


#: Activations hls4ml implements as a table lookup.
TABLE_ACTIVATIONS = ("elu", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu", "table")


def elementwise_estimate(name: str, kind: str, elements: int, data_bits: int = 16,
                         table_size: int = 1024, tool: ToolRules = VIVADO, alpha: float | None = None) -> LayerEstimate:
    """ReLU, residual add (no cycles), constant scale (one cycle) or a table activation (one lookup per element).

    ``tool`` gives the table activations' cycles and the ReLU / table LUT and FF rates (:mod:`hardware.fpga.tool`).
    A LeakyReLU of ``alpha`` 1 is the identity: HLS builds nothing for it (hls4ml test_activations baselines).
    """
    if kind in TABLE_ACTIVATIONS:
        bram18 = math.ceil(elements / 2) * rom_bram18(table_size)
        ff = tool.table_ff * (tool.sigmoid_ff_share if kind in ("sigmoid", "tanh") else 1.0)
        res = Resources(0, round(tool.table_lut * elements * data_bits), round(ff * elements * data_bits), bram18 / 2)
        return LayerEstimate(name, kind, tool.table_cycles, 1, res, 0, {"elements": elements})
    if kind == "relu":
        return LayerEstimate(name, kind, 0, 1, Resources(0, round(tool.relu_lut * elements * data_bits), 0, 0), 0,
                             {"elements": elements})
    if kind == "leaky_relu" and alpha == 1.0:
        return LayerEstimate(name, kind, 0, 1, Resources(), 0, {"elements": elements})
    if kind == "leaky_relu":
        return LayerEstimate(name, kind, 1, 1, Resources(0, round(RELU_LUT * elements * data_bits),
                                                         elements * data_bits, 0), 0, {"elements": elements})
    if kind == "add":
        return LayerEstimate(name, kind, 0, 1, Resources(0, elements * data_bits, 0, 0), 0, {"elements": elements})
    return LayerEstimate(name, kind, 1, 1, Resources(0, elements * data_bits, elements * data_bits, 0), 0,
                         {"elements": elements})


def wiring_estimate(name: str, kind: str) -> LayerEstimate:
    """Reshape, transpose, flatten: wiring in io_parallel, no cycles and no resources."""
    return LayerEstimate(name, kind, 0, 1, Resources(), 0, {})


def batchnorm_estimate(name: str, n: int, reuse: int = 1, data_bits: int = 16, weight_bits: int = 16,
                       dsp: DspShape | None = None, words: int = 1, io_type: str = "io_parallel") -> LayerEstimate:
    """Inference BatchNorm over ``n`` elements (``words`` stream words of ``n / words`` in io_stream)."""
    dsp = dsp or DspShape()
    reuse = max(1, reuse)
    mults = math.ceil(n / reuse)
    per = dsps_per_multiplier(data_bits, weight_bits, dsp)
    lut = n * data_bits + (mults * data_bits * weight_bits if per == 0 else 0)
    cycles = words if io_type == "io_stream" else reuse
    return LayerEstimate(name, "batchnorm", cycles, cycles, Resources(mults * per, lut, n * data_bits, 0), mults,
                         {"n": n, "reuse": reuse})


def pool_estimate(name: str, kind: str, outputs: int, window: int, average: bool, data_bits: int = 16,
                  words: int = 1, io_type: str = "io_parallel") -> LayerEstimate:
    """``outputs`` values each reduced over ``window`` inputs (Pooling1D: window = pool width; GlobalPooling1D:
    window = tokens, outputs = channels)."""
    depth = math.ceil(math.log2(max(window, 1)) / POOL_LEVELS_PER_CYCLE) - 1 if window > 2 else 0
    if average and window & (window - 1):
        depth += 1  # 1/window is not a shift: one multiply
    lut = outputs * (window - 1) * data_bits * (POOL_AVG_LUT if average else POOL_MAX_LUT)
    ff = outputs * window * data_bits * POOL_FF
    res = Resources(0, round(lut), round(ff), 0)
    if io_type == "io_stream":
        return LayerEstimate(name, kind, words + depth, words, res, 0, {"outputs": outputs, "window": window})
    return LayerEstimate(name, kind, max(0, depth), 1, res, 0, {"outputs": outputs, "window": window})
