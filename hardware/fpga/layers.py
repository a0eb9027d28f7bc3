"""hls4ml-style cost models of the non-matrix layers: softmax, layer norm, activations, residual adds, scales.

Sources (docs/research/fpga.md 3b, 3c, read from hls4ml 1.3.0 ``nnet_activation.h`` and ``nnet_layernorm.h``):

- Softmax (``stable``): per row of ``n`` elements, a max reduction, ``n`` subtractions, ``n`` exp lookups, an
  adder tree, one reciprocal lookup and ``n`` multiplies; ``#pragma HLS pipeline``. Rows run ``parallel`` at a
  time (``softmax_multidim``'s allocation limit). Latency per row
  ``2 * adder_depth(n) + 1 + 2 * TABLE_LATENCY + MULT_LATENCY``; the tables are ROMs of ``table_size`` words,
  replicated ``ceil(n/2)`` times per parallel row (dual-ported), each ``table_size * table_bits`` bits (BRAM36 =
  36,864 bits; counted in halves, BRAM18 granularity). Depth constants UNCONFIRMED.
- LayerNorm: per row of ``n``: mean and variance adder trees, one inverse-sqrt lookup (``table_size`` default
  4096), ``3n + 2`` multiplies (2n of them by constants folded in hardware as one per element here); rows
  pipelined, ``II = R``: latency ``rows * R + 2 * adder_depth(n) + TABLE_LATENCY + 3 * MULT_LATENCY``.
- ReLU / add / constant scale: one cycle, ``n * bits`` LUTs. GELU has no hls4ml kernel; modelled as a
  ``table_size`` lookup per element (one cycle + TABLE_LATENCY) so designs can be sized before one exists.
"""

from __future__ import annotations

import math

from hardware.fpga.dense import MULT_LATENCY, DspShape, LayerEstimate, Resources, adder_depth, dsps_per_multiplier

#: Cycles of a ROM lookup (BRAM read register).
TABLE_LATENCY = 2
BRAM36_BITS = 36 * 1024


def _rom_bram36(table_size: int, table_bits: int) -> float:
    return math.ceil(table_size * table_bits / (BRAM36_BITS / 2)) / 2


def softmax_estimate(name: str, n: int, rows: int = 1, parallel: int | None = None, data_bits: int = 16,
                     table_size: int = 1024, table_bits: int = 18, dsp: DspShape | None = None) -> LayerEstimate:
    """Softmax over rows of ``n`` elements; ``parallel`` rows at once (default: all, as hls4ml io_parallel)."""
    dsp = dsp or DspShape()
    parallel = min(rows, parallel or rows)
    passes = math.ceil(rows / parallel)
    depth = 2 * adder_depth(n) + 1 + 2 * TABLE_LATENCY + MULT_LATENCY
    mults = n * parallel
    per = dsps_per_multiplier(table_bits, table_bits, dsp)
    copies = math.ceil(n / 2) * parallel
    bram = 2 * copies * _rom_bram36(table_size, table_bits)
    lut = parallel * (3 * n * data_bits) + (mults * table_bits * table_bits if per == 0 else 0)
    ff = parallel * 3 * n * table_bits
    return LayerEstimate(name, "softmax", passes + depth, passes, Resources(mults * per, lut, ff, bram), mults,
                         {"n": n, "rows": rows, "parallel": parallel, "table_size": table_size, "depth": depth})


def layernorm_estimate(name: str, n: int, rows: int = 1, reuse: int = 1, data_bits: int = 16,
                       table_size: int = 4096, table_bits: int = 8, dsp: DspShape | None = None) -> LayerEstimate:
    """LayerNorm over rows of ``n`` elements, one row per ``reuse`` cycles (hls4ml ``layernormalize``)."""
    dsp = dsp or DspShape()
    depth = 2 * adder_depth(n) + TABLE_LATENCY + 3 * MULT_LATENCY
    mults = math.ceil((3 * n + 2) / reuse)
    per = dsps_per_multiplier(data_bits, data_bits, dsp)
    res = Resources(mults * per, 4 * n * data_bits, 4 * n * data_bits, _rom_bram36(table_size, table_bits))
    return LayerEstimate(name, "layernorm", rows * reuse + depth, rows * reuse, res, mults,
                         {"n": n, "rows": rows, "reuse": reuse, "depth": depth})


def elementwise_estimate(name: str, kind: str, elements: int, data_bits: int = 16,
                         table_size: int = 1024) -> LayerEstimate:
    """ReLU, residual add, constant scale (one cycle) or GELU (a lookup per element)."""
    if kind == "gelu":
        res = Resources(0, elements * data_bits, elements * data_bits,
                        math.ceil(elements / 2) * _rom_bram36(table_size, data_bits))
        return LayerEstimate(name, kind, 1 + TABLE_LATENCY, 1, res, 0, {"elements": elements})
    return LayerEstimate(name, kind, 1, 1, Resources(0, elements * data_bits, elements * data_bits, 0), 0,
                         {"elements": elements})


def wiring_estimate(name: str, kind: str) -> LayerEstimate:
    """Reshape, transpose, flatten: wiring in io_parallel, no cycles and no resources."""
    return LayerEstimate(name, kind, 0, 1, Resources(), 0, {})
