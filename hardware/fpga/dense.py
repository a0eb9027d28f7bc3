"""hls4ml-style cost model of one matrix layer (Dense, per-token Dense, and activation x activation products).

What HLS schedules for hls4ml 1.3's kernels (``nnet_dense_latency.h``, ``nnet_dense_resource.h``), with the
constants fitted to published csynth reports: the committed notebook outputs of fastmachinelearning/hls4ml-tutorial
("tutorial part N" below; commit and cell per point) and the C-synthesis baselines of fastmachinelearning/hls4ml
(test/pytest/baselines). ``simulator/validation/fpga_published.yaml`` lists each point with its repository, commit
and cell, and which constant it sets (``reports/fpga_validation.md`` compares them):

- Zero weights are skipped: ``N = n_in * n_out`` weights of which ``zeros`` quantise to 0 (``parameters.h``'s
  ``n_zeros``). Latency strategy: ``m = ceil(N/R) - floor(zeros/R)`` multipliers (hls4ml's ``multiplier_limit``,
  at most the ``N - zeros`` non-zero products), and the ``N - zeros`` products take ``c = ceil((N - zeros) / m)``
  cycles (about R). A pruned layer at R = 1 uses exactly its non-zero count of DSPs (tutorial part 3,
  Vivado HLS 2019.2), and at R = 64..256 the design II is ``ceil(983 / (1024 / R))`` for the 1024-weight layer
  with 983 non-zeros (tutorial part 2b), not R.
- Latency per input vector: ``c + depth`` with ``depth`` 0 at R = 1 (the whole Dense is one cycle in the
  reports), 1 for R <= 4, 2 above (the multiplier-input selection stages); the layer's II is ``c``.
  ``vectors`` inputs through ``parallel`` copies take ``passes = ceil(vectors / parallel)`` calls.
- Resource strategy: ``block_factor = ceil(N/R)`` multipliers (zeros are not skipped), R cycles plus
  ``RESOURCE_DEPTH`` (BRAM read, multiply, accumulate); weights in BRAM36 (512 x 72) as
  ``ceil(block_factor * w_bits / 72) * ceil(R / 512)`` when R > 1. Not checked against a report (none found).
- io_stream: hls4ml packs a Dense's input into one stream word, so the read adds ``STREAM_CYCLES`` (1) cycle.
- DSPs per multiplier: 0 if both operands are <= ``lut_mult_max_bits`` (LUT multiplier, ~``a*b`` LUTs), else
  ``ceil(max(a,b)/A) * ceil(min(a,b)/B)`` (cascaded partial products).
- LUT, Latency strategy: at R = 1 the weights are constants in logic: ``(LUT_R1_ALL * N + LUT_R1_NZ * nz) *
  bits`` (``bits = (data_bits + weight_bits) / 2``; fitted on the per-layer figures of the pruned and unpruned
  part 3 reports). At R >= 2 every multiplier selects its weight and input among R: ``N * bits * (LUT_MUX -
  LUT_MUX_SLOPE * log2 R)``, flat in R as the reports show. An activation x activation product (Einsum) has
  adder trees (``LUT_R1_NZ * N * bits``) and, for R > 1, an R:1 selection of both operands per multiplier
  (``2 * bits * (R - 1) / 3``, LUT6-based multiplexers; UNCONFIRMED: no report).
- FF: ``FF_PER_WEIGHT * (FF_ALL_SHARE * N + (1 - FF_ALL_SHARE) * nz) * bits / 16 * g(R)`` with
  ``g(R) = 1 + FF_PIPE * min(1, log2(R) / 5) ** 1.5`` (registers grow with pipelining up to R ~ 32, then flat);
  a token-serial layer (more vectors than run at once, e.g. a Conv) also registers its whole input array.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hardware.errors import HwsimError
from hardware.fpga.tool import VIVADO, ToolRules

#: Cycles the Resource strategy adds to its R-cycle loop: BRAM read, multiply, accumulate (UNCONFIRMED: no report).
RESOURCE_DEPTH = 3
#: Cycles io_stream adds to a Dense (its input arrives packed in one stream word; hls4ml test baselines
#: test_dense_io_stream vs test_dense_io_parallel, Vivado HLS 2020.1 and Vitis HLS 2024.1: +1 cycle).
STREAM_CYCLES = 1
#: BRAM36 in simple-dual-port mode: 512 words x 72 bits.
BRAM36_WORDS, BRAM36_WIDTH = 512, 72
#: LUTs per weight and per non-zero weight, per operand bit, Latency strategy at R = 1 (fitted, see docstring).
LUT_R1_ALL, LUT_R1_NZ = 0.68, 0.61
#: LUTs per weight per operand bit for R >= 2 and their decrease per doubling of R (fitted, see docstring).
LUT_MUX, LUT_MUX_SLOPE = 1.85, 0.0485
#: FFs per weight at 16 bits and R = 1, the share that follows all weights (the rest follows non-zeros), and the
#: growth with pipelining (fitted, see docstring).
FF_PER_WEIGHT, FF_ALL_SHARE, FF_PIPE = 6.5, 0.35, 1.25

#: FFs per input bit of a token-serial layer (``passes > 1``: hls4ml's ParallelizationFactor 1 reads its input
#: array over the passes, so it is registered; the same rate as the pooling layers' registered inputs, fitted on
#: hls4ml's test_pooling baselines, ``hardware.fpga.layers.POOL_FF``; not fitted on a Dense or Conv report).
SERIAL_INPUT_FF = 1.0

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


#: Operand width at or below which a "product" is a select and a negation, not a multiply: hls4ml's
#: ``weight_binary`` / ``weight_ternary`` product classes (nnet_utils/nnet_mult.h) for 1- and 2-bit weights
#: (BitNet b1.58 ternary weights: additions only).
SELECT_MAX_BITS = 2


def dsps_per_multiplier(a_bits: int, b_bits: int, dsp: DspShape) -> int:
    """DSP slices for one ``a_bits x b_bits`` signed product (0 = built in LUTs)."""
    if max(a_bits, b_bits) <= dsp.lut_mult_max_bits or min(a_bits, b_bits) <= SELECT_MAX_BITS:
        return 0
    big, small = max(a_bits, b_bits), min(a_bits, b_bits)
    return math.ceil(big / dsp.a_bits) * math.ceil(small / dsp.b_bits)


def adder_depth(n: int, per_cycle: int = 6) -> int:
    """Pipeline cycles of an adder tree over ``n`` inputs, ``per_cycle`` levels chained per cycle."""
    return math.ceil(math.ceil(math.log2(max(n, 2))) / per_cycle)


def latency_depth(reuse: int) -> int:
    """Cycles a Latency-strategy Dense adds to its ``c`` multiply cycles: 0 at R = 1, 1 for R <= 4, else 2."""
    return 0 if reuse == 1 else (1 if reuse <= 4 else 2)


def ff_pipeline_factor(reuse: int) -> float:
    """Growth of a Dense's registers with the reuse factor (1 at R = 1, 1 + FF_PIPE from R = 32)."""
    return 1.0 + FF_PIPE * min(1.0, math.log2(max(reuse, 1)) / 5) ** 1.5


def dense_estimate(name: str, n_in: int, n_out: int, reuse: int = 1, strategy: str = "latency",
                   data_bits: int = 16, weight_bits: int = 16, acc_bits: int | None = None, vectors: int = 1,
                   parallel: int = 1, dsp: DspShape | None = None, io_type: str = "io_parallel",
                   kind: str = "dense", zeros: int = 0, tool: ToolRules = VIVADO) -> LayerEstimate:
    """Cost of a Dense ``n_in -> n_out`` (``zeros`` of its weights are 0) on ``vectors`` inputs, ``parallel`` at once.

    ``weight_bits`` is the width of the second operand (a weight, or an activation for Q.K^T and P.V).
    ``acc_bits`` is accepted for compatibility and not used (the fitted LUT/FF rules scale with operand bits).
    ``tool``: the HLS tool's rules (:mod:`hardware.fpga.tool`; Vivado HLS by default). A Latency-strategy Dense of
    one input at R = 1 has no adder tree: its products feed the next layer directly (0 cycles, no registers, LUTs
    only for LUT multipliers; hls4ml test_activations baselines: 0-cycle Dense(1 -> 64) + ReLU with 18 FFs).
    """
    strategy = strategy.lower()
    if strategy not in STRATEGIES:
        raise HwsimError(f"layer '{name}': strategy '{strategy}' is not one of {', '.join(STRATEGIES)}")
    if io_type not in IO_TYPES:
        raise HwsimError(f"layer '{name}': io type '{io_type}' is not one of {', '.join(IO_TYPES)}")
    if min(n_in, n_out, reuse, vectors, parallel) < 1:
        raise HwsimError(f"layer '{name}': n_in, n_out, reuse factor, vectors and parallel must be >= 1")
    n = n_in * n_out
    if not 0 <= zeros <= n:
        raise HwsimError(f"layer '{name}': zeros={zeros} must be between 0 and n_in * n_out = {n}")
    dsp = dsp or DspShape()
    parallel = min(parallel, vectors)
    passes = math.ceil(vectors / parallel)
    per = dsps_per_multiplier(data_bits, weight_bits, dsp)
    bits = (data_bits + weight_bits) / 2
    bram = 0.0
    if strategy == "resource":
        zeros = 0  # the Resource kernel multiplies every weight
        m = math.ceil(n / reuse)
        cycles, depth = reuse, RESOURCE_DEPTH
        if reuse > 1 and kind == "dense":  # the weights are shared by the parallel tokens
            bram = math.ceil(m * weight_bits / BRAM36_WIDTH) * math.ceil(reuse / BRAM36_WORDS)
    else:
        nz = n - zeros
        m = min(nz, max(1, math.ceil(n / reuse) - zeros // reuse)) if nz else 0
        cycles = max(1, math.ceil(nz / m)) if m else 1
        depth = latency_depth(reuse)
    nz = n - zeros
    single = strategy == "latency" and reuse == 1 and n_in == 1 and kind == "dense"
    if strategy == "latency" and reuse == 1 and tool.dense_levels_per_cycle and not single:
        per_output = max(1, math.ceil(nz / n_out))
        depth = math.ceil(math.log2(per_output) / tool.dense_levels_per_cycle) if per_output > 1 else 0
    mults = m * parallel
    ii = passes * cycles
    latency = passes * cycles + depth - (1 if single else 0)
    if io_type == "io_stream":
        latency += STREAM_CYCLES
    if kind == "matmul":  # both operands are activations: adder trees, plus R:1 selection of both operands
        lut = (LUT_R1_NZ * n * bits + (m * 2 * bits * (reuse - 1) / 3 if reuse > 1 else 0)) * parallel
    elif single:
        lut = 0.0
    elif strategy == "latency" and reuse == 1 and tool.lut_nz is not None:
        lut = tool.lut_nz * nz * bits * parallel
    elif strategy == "latency" and reuse == 1:
        lut = (LUT_R1_ALL * n + LUT_R1_NZ * nz) * bits * parallel
    else:
        lut = n * bits * max(1.0, LUT_MUX - LUT_MUX_SLOPE * math.log2(reuse)) * parallel
    lut += mults * data_bits * weight_bits if per == 0 else 0
    ff = FF_PER_WEIGHT * (FF_ALL_SHARE * n + (1 - FF_ALL_SHARE) * nz) * bits / 16 * ff_pipeline_factor(reuse)
    ff *= parallel * tool.dense_ff_scale * (0 if single else 1)
    if passes > 1 and kind == "dense":  # token-serial: the whole input array is held while the passes run
        ff += vectors * n_in * data_bits * SERIAL_INPUT_FF
    return LayerEstimate(name, kind, latency, ii, Resources(mults * per, round(lut), round(ff), bram), mults,
                         {"n_in": n_in, "n_out": n_out, "reuse": reuse, "strategy": strategy, "vectors": vectors,
                          "parallel": parallel, "dsp_per_mult": per, "depth": depth, "zeros": zeros,
                          "cycles": cycles})


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
#: Ternary-weight products (BitNet b1.58: add, subtract or skip the activation) one DSP slice completes per cycle
#: with integer activations: its ALU in SIMD mode TWO24 does two independent 24-bit add/subtracts a cycle (AMD/Xilinx
#: UG579 "UltraScale Architecture DSP Slice", SIMD arithmetic: ONE48, TWO24, FOUR12); 24 bits hold an int8
#: activation summed over 65,536 products. With float activations, one float add per slice (assumption).
TERNARY_ADDS_PER_DSP = 2


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
    Ternary weights: no multiply, :data:`TERNARY_ADDS_PER_DSP` SIMD adds with integer activations, one with float.
    """
    from hardware.dtypes import BITS

    if "ternary" in (a_dtype, b_dtype):
        other = b_dtype if a_dtype == "ternary" else a_dtype
        return float(TERNARY_ADDS_PER_DSP) if _is_int(other) or other == "ternary" else 1.0
    if _is_int(a_dtype) and _is_int(b_dtype):
        a_bits, b_bits = BITS.get(a_dtype, 16), BITS.get(b_dtype, 16)
        if max(a_bits, b_bits) <= PACKED_INT_MAX_BITS:
            return float(PACKED_INT8_MACS)
        big, small = max(a_bits, b_bits), min(a_bits, b_bits)
        return 1.0 / (math.ceil(big / dsp.a_bits) * math.ceil(small / dsp.b_bits))
    sig = max(SIGNIFICAND_BITS.get(d, 24) for d in (a_dtype, b_dtype) if not _is_int(d))
    return 1.0 / (math.ceil(sig / dsp.a_bits) * math.ceil(sig / dsp.b_bits))
