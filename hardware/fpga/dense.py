"""hls4ml-style cost model of one matrix layer (Dense, per-token Dense, and activation x activation products).

Formulas (docs/research/fpga.md 3a, read from hls4ml 1.3.0 ``nnet_dense_latency.h`` and ``nnet_dense_resource.h``):

- Multipliers: ``mults = ceil(n_in * n_out * parallel / R)`` where ``parallel`` input vectors (tokens) are
  processed at once (hls4ml's ``multiplier_limit = DIV_ROUNDUP(n_in*n_out, reuse_factor)``; ``block_factor`` in
  the Resource strategy is the same number).
- Initiation interval: the kernel is pipelined with ``II = R`` (Latency: ``#pragma HLS PIPELINE II=reuse_factor``;
  Resource: ``rufactor = R`` iterations of an ``II=1`` loop). ``vectors`` inputs through ``parallel`` copies take
  ``passes = ceil(vectors / parallel)`` kernel calls, so the layer's II is ``passes * R``.
- Latency: ``passes * R + depth`` cycles, with ``depth = MULT_LATENCY + ceil(ceil(log2 n_in) / ADDS_PER_CYCLE)``
  (+ ``BRAM_READ_LATENCY`` in the Resource strategy, whose weights sit in BRAM). The "R + small pipeline
  depth" rule is from hls4ml's code and maintainers (shared/reference/published.md); the depth constants are
  UNCONFIRMED until calibrated against csynth reports.
- DSPs per multiplier: operands of ``a`` and ``b`` bits against a DSP of ``A x B`` (27 x 18 for DSP48E2):
  0 if both operands are <= ``lut_mult_max_bits`` (LUT multiplier, ~``a*b`` LUTs), else
  ``ceil(max(a,b)/A) * ceil(min(a,b)/B)`` (cascaded partial products). Thresholds UNCONFIRMED (tool heuristics).
- BRAM (Resource strategy only, R > 1): weights reshaped into ``block_factor = ceil(n_in*n_out/R)``-word rows,
  ``R`` rows deep: ``ceil(block_factor * w_bits / 72) * ceil(R / 512)`` BRAM36 (512 x 72 SDP mode); tokens
  processed in parallel read the same row, so ``parallel`` does not multiply it. Latency strategy and R = 1
  keep weights in registers/LUTs (hls4ml partitions them completely).
- LUT/FF (rough, UNCONFIRMED): one accumulator adder per multiplier (``acc_bits`` LUTs and FFs each), plus the
  LUT multipliers, plus ``n_out * parallel * acc_bits`` output registers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hardware.errors import HwsimError

#: Cycles of a pipelined DSP multiply at 200-300 MHz (UNCONFIRMED; calibrate with csynth).
MULT_LATENCY = 2
#: Adder-tree levels HLS chains in one cycle at 200-300 MHz (UNCONFIRMED).
ADDS_PER_CYCLE = 2
#: Extra cycle to read weights from BRAM in the Resource strategy.
BRAM_READ_LATENCY = 1
#: BRAM36 in simple-dual-port mode: 512 words x 72 bits.
BRAM36_WORDS, BRAM36_WIDTH = 512, 72

STRATEGIES = ("latency", "resource")
IO_TYPES = ("io_parallel", "io_stream")


@dataclass
class Resources:
    """FPGA resources of a layer or design."""

    dsp: int = 0
    lut: int = 0
    ff: int = 0
    bram36: float = 0.0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.dsp + other.dsp, self.lut + other.lut, self.ff + other.ff, self.bram36 + other.bram36)

    def as_dict(self) -> dict[str, float]:
        """Name -> amount."""
        return {"dsp": self.dsp, "lut": self.lut, "ff": self.ff, "bram36": self.bram36}


@dataclass
class LayerEstimate:
    """What one layer costs: ``latency_cycles`` from its input to its output, ``ii_cycles`` between inputs."""

    name: str
    kind: str
    latency_cycles: int
    ii_cycles: int
    resources: Resources
    multipliers: int = 0
    notes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DspShape:
    """The multiplier of one DSP slice, and the widest operands still built in LUTs."""

    a_bits: int = 27
    b_bits: int = 18
    lut_mult_max_bits: int = 10


def dsps_per_multiplier(a_bits: int, b_bits: int, dsp: DspShape) -> int:
    """DSP slices for one ``a_bits x b_bits`` signed product (0 = built in LUTs)."""
    if max(a_bits, b_bits) <= dsp.lut_mult_max_bits:
        return 0
    big, small = max(a_bits, b_bits), min(a_bits, b_bits)
    return math.ceil(big / dsp.a_bits) * math.ceil(small / dsp.b_bits)


def adder_depth(n: int) -> int:
    """Pipeline cycles of an adder tree over ``n`` inputs."""
    return math.ceil(math.ceil(math.log2(max(n, 2))) / ADDS_PER_CYCLE)


def dense_estimate(name: str, n_in: int, n_out: int, reuse: int = 1, strategy: str = "latency",
                   data_bits: int = 16, weight_bits: int = 16, acc_bits: int | None = None, vectors: int = 1,
                   parallel: int = 1, dsp: DspShape | None = None, io_type: str = "io_parallel",
                   kind: str = "dense") -> LayerEstimate:
    """Cost of a Dense ``n_in -> n_out`` applied to ``vectors`` input vectors, ``parallel`` at a time.

    ``weight_bits`` is the width of the second operand (a weight, or an activation for Q.K^T and P.V).
    ``io_stream`` adds the packing loops: ``ceil(n_in/pack) + ceil(n_out/pack)`` cycles with one element per
    stream word (hls4ml ``nnet_dense_stream.h``; docs/research/fpga.md 3a).
    """
    strategy = strategy.lower()
    if strategy not in STRATEGIES:
        raise HwsimError(f"layer '{name}': strategy '{strategy}' is not one of {', '.join(STRATEGIES)}")
    if io_type not in IO_TYPES:
        raise HwsimError(f"layer '{name}': io type '{io_type}' is not one of {', '.join(IO_TYPES)}")
    if min(n_in, n_out, reuse, vectors, parallel) < 1:
        raise HwsimError(f"layer '{name}': n_in, n_out, reuse factor, vectors and parallel must be >= 1")
    dsp = dsp or DspShape()
    parallel = min(parallel, vectors)
    acc_bits = acc_bits or data_bits + weight_bits + math.ceil(math.log2(max(n_in, 2)))
    mults = math.ceil(n_in * n_out * parallel / reuse)
    per = dsps_per_multiplier(data_bits, weight_bits, dsp)
    passes = math.ceil(vectors / parallel)
    depth = MULT_LATENCY + adder_depth(n_in)
    bram = 0.0
    if strategy == "resource":
        depth += BRAM_READ_LATENCY
        if reuse > 1 and kind == "dense":
            block_factor = math.ceil(n_in * n_out / reuse)  # the weights are shared by the parallel tokens
            bram = math.ceil(block_factor * weight_bits / BRAM36_WIDTH) * math.ceil(reuse / BRAM36_WORDS)
    ii = passes * reuse
    latency = passes * reuse + depth
    if io_type == "io_stream":
        latency += n_in + n_out
        ii = max(ii, passes * max(n_in, n_out))
    lut = mults * acc_bits + (mults * data_bits * weight_bits if per == 0 else 0)
    ff = mults * acc_bits + n_out * parallel * acc_bits
    return LayerEstimate(name, kind, latency, ii, Resources(mults * per, lut, ff, bram), mults,
                         {"n_in": n_in, "n_out": n_out, "reuse": reuse, "strategy": strategy, "vectors": vectors,
                          "parallel": parallel, "dsp_per_mult": per, "depth": depth})


#: Significand widths (hidden bit included) of floating-point formats: the width of the mantissa product a float
#: multiply needs (IEEE 754 binary32: 24, binary16: 11; bfloat16: 8; OCP FP8 E4M3: 4, E5M2: 3).
SIGNIFICAND_BITS = {"float64": 53, "float32": 24, "tf32": 11, "float16": 11, "bfloat16": 8, "float8e4m3": 4,
                    "float8e5m2": 3}
#: Integer MACs one DSP slice sustains when both operands are <= 8 bits: two, sharing one operand (AMD/Xilinx
#: WP486 "Deep Learning with INT8 Optimization on Xilinx Devices": two concurrent INT8 MACCs per DSP48E2 with the
#: same kernel weight; the technique needs a >= 24-bit input port, which DSP48E2 (27) and DSP58 (27) have).
#: Packing more than two narrower (int4) products is not modelled.
PACKED_INT8_MACS = 2
PACKED_INT_MAX_BITS = 8


def _is_int(dtype: str) -> bool:
    return dtype.startswith(("int", "uint"))


def macs_per_dsp(a_dtype: str, b_dtype: str, dsp: DspShape) -> float:
    """Multiply-accumulates of ``a_dtype x b_dtype`` one DSP slice completes per cycle.

    Both integers of <= 8 bits: :data:`PACKED_INT8_MACS` (WP486 packing). Wider integers: ``1 / n`` with ``n``
    DSPs per product as :func:`dsps_per_multiplier` cascades them (at least one: a DSP array is assumed, no LUT
    multipliers). Any floating-point operand: the product is taken in the float format (an integer operand is
    dequantised to it; the wider float when both are), and ``n = ceil(s/A) * ceil(s/B)`` DSPs multiply its
    ``s``-bit significands, derived from the DSP width ``A x B`` (DSP48E2 27 x 18: fp32 24 x 24 -> 1 * 2 = 2,
    fp16 11 x 11 -> 1, bf16 -> 1); the exponent logic and the float adder are built in LUTs and not counted.
    """
    from hardware.dtypes import BITS

    if _is_int(a_dtype) and _is_int(b_dtype):
        a_bits, b_bits = BITS.get(a_dtype, 16), BITS.get(b_dtype, 16)
        if max(a_bits, b_bits) <= PACKED_INT_MAX_BITS:
            return float(PACKED_INT8_MACS)
        big, small = max(a_bits, b_bits), min(a_bits, b_bits)
        return 1.0 / (math.ceil(big / dsp.a_bits) * math.ceil(small / dsp.b_bits))
    sig = max(SIGNIFICAND_BITS.get(d, 24) for d in (a_dtype, b_dtype) if not _is_int(d))
    return 1.0 / (math.ceil(sig / dsp.a_bits) * math.ceil(sig / dsp.b_bits))
