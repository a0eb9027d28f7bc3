"""Low-bit weights on GPUs: the cost of dequantising weights stored narrower than a GEMM's compute format, the
scale bytes of group-wise quantisation, and which format pairs run natively on the tensor cores.

A weight-only format (W4A16 and W8A16 as AWQ/GPTQ/Marlin run them, FP8 or FP4 weights with fp16 activations on a
part without those tensor cores, BitNet b1.58 ternary weights) has no MMA instruction of its own: the kernel loads
the packed weights, converts them to the compute format in registers and multiplies in that format. Two ways:

- **fused** (``--set quant_kernel=fused``, the default; Marlin, Frantar et al. 2024, arXiv 2408.11743, and the
  AWQ/GPTQ kernels it compares with): each thread block dequantises its B tile in registers once per (M tile,
  K slice), between its load and its MMAs. Cost: :data:`DEQUANT_INSTRUCTIONS` 32-bit instructions per weight
  element per M tile on the CUDA cores, at ``cuda_core_fp32 / 2`` instructions/s per GPU (the fp32 peak counts an
  FMA as 2 FLOPs; one instruction per lane per cycle). They run beside the tile's MMAs on the tensor cores
  (Marlin "carefully orders" dequantisation and tensor-core instructions "to saturate both GPU pipelines"): a tile
  takes the longer of the two, then the wave model takes the longer of that and its memory time. A decode GEMV
  stays memory-bound, so the packed bytes set its time; from batch ~32-64 (A100) the MMAs take over and the
  speedup falls off, as Marlin's does; at small M tiles (16 rows) the conversion of the whole B matrix, once per
  M tile, is what can show.
- **separate** (``--set quant_kernel=dequant``): a memory-bound kernel reads the packed weights and scales and
  writes them back in the compute format, then an ordinary GEMM reads those: more DRAM traffic than an fp16 GEMM
  alone (the "dequantise, then matmul" path of early int4 kernels), so it never speeds decode up.

Instruction counts (assumption pending measurement, from the published conversion sequences): converting packed
int8/int4 to fp16 takes one bit operation (PRMT for bytes, LOP3 for nibbles) and one HSUB2/HFMA2 per pair of values
with the "magic number" exponent trick (Kim et al. 2022, "Who Says Elephants Can't Run", arXiv 2211.10017, the fast
conversion Marlin uses), i.e. 1 instruction per weight; applying the group scale (and zero point) is one HFMA2 per
pair, 0.5 more: 1.5 per weight. FP8 and FP4 weights on parts without those tensor cores are converted with the same
kind of bit arithmetic (vLLM's FP8 Marlin, vllm-project/vllm PR 5975: "4xFP8 to 4xFP16/BF16 dequantization using
bit arithmetic and SIMT operations"), ternary weights 2 bits at a time: 1.5 as well.

Two more per-element costs of low-bit formats:

- **Quantised KV cache in decode attention** (``--kv-cache int8|int4|fp8``): the attention kernel reads the packed
  K and V and converts every element to its compute format before the dot products, with the same conversion and
  scale sequence as weights (:data:`DEQUANT_INSTRUCTIONS` per element: KIVI's and vLLM's fp8/int8 KV kernels
  dequantise in registers). The instructions run on the CUDA cores beside the KV stream (:func:`kv_dequant`): they
  add to a compute-bound kernel's time; a memory-bound kernel takes the longer of its time and the conversion plus
  its arithmetic at the CUDA-core rate.
- **Activation quantisation of W8A8 GEMMs** (int8 or fp8 activations, SmoothQuant-style; vLLM's
  ``scaled_int8_quant`` / ``scaled_fp8_quant``): before each weight GEMM a memory-bound kernel reads the 16-bit
  input the previous kernel wrote, finds each token's absolute maximum (per-token scales) and writes the 8-bit
  values and one fp32 scale per token (:func:`act_quant_kernel`, :data:`ACT_QUANT_INSTRUCTIONS` per element: abs-max,
  scale, convert); the output is dequantised in the GEMM's epilogue (per-token x per-channel scales), at no
  modelled cost. With a static per-tensor scale no maximum and no scales are needed (2 instructions per element).
  The workload counts the producer's write at the activation format; this kernel's read is at 16 bits.
"""

from __future__ import annotations

import math

from hardware.gpu.kernels import KernelResult, memory_bound
from hardware.gpu.spec import GpuTarget

#: 32-bit instructions per element of a W8A8 GEMM input's quantisation (abs-max, scale, convert; no max with a
#: static per-tensor scale).
ACT_QUANT_INSTRUCTIONS: dict[str, float] = {"per-token": 3.0, "per-tensor": 2.0}
#: Bytes of one per-token activation scale (fp32, as vLLM's dynamic quantisation kernels write them).
TOKEN_SCALE_BYTES = 4.0

#: 32-bit instructions per weight element to convert it into the compute format and apply its scale (see module).
DEQUANT_INSTRUCTIONS: dict[str, float] = {
    "int4": 1.5, "uint4": 1.5, "int8": 1.5, "uint8": 1.5, "float8e4m3": 1.5, "float8e5m2": 1.5,
    "float4e2m1": 1.5, "ternary": 1.5,
}
#: Weight formats each tensor-core compute format reads natively (no dequantisation): W8A8 int8 (SmoothQuant-style,
#: scales applied in the epilogue), FP8 x FP8 (Hopper, Ada), FP4 x FP4 (Blackwell).
NATIVE_WEIGHTS: dict[str, tuple[str, ...]] = {
    "int8": ("int8", "uint8"), "fp8": ("float8e4m3", "float8e5m2"), "fp4": ("float4e2m1",),
}
#: Bytes per element of each compute format (what a separate dequantisation kernel writes).
COMPUTE_BYTES: dict[str, float] = {"fp32": 4.0, "tf32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0,
                                   "fp4": 0.5}
#: Bytes of one group scale (fp16, as AWQ, GPTQ and Marlin store them; symmetric: no zero point).
SCALE_BYTES = 2.0
#: Matrix-product ops whose weight bytes in the workload are the bare values (a float weight given a low-bit format
#: with ``--weights``): the group scales are added here. MatMulNBits and QDQ graphs count their scales already.
PLAIN_MATMULS = ("MatMul", "Gemm", "FusedMatMul", "FusedGemm")

_SHORT = {"int4": "4", "uint4": "4", "int8": "8", "uint8": "8", "float8e4m3": "fp8", "float8e5m2": "fp8",
          "float4e2m1": "fp4", "ternary": "t", "fp16": "16", "bf16": "bf16", "fp8": "fp8", "fp4": "fp4",
          "fp32": "32", "tf32": "32"}


def needs_dequant(weight_format: str, compute: str) -> bool:
    """Whether a GEMM computing in ``compute`` (fp16, bf16, fp8, int8, fp4, fp32, tf32) must dequantise weights
    stored as ``weight_format`` first."""
    return weight_format in DEQUANT_INSTRUCTIONS and weight_format not in NATIVE_WEIGHTS.get(compute, ())


def tag(weight_format: str, compute: str) -> str:
    """Kernel-name suffix of a dequantising GEMM in the usual W/A notation: ``w4a16``, ``wfp8a16``, ``wta8``."""
    return f"w{_SHORT.get(weight_format, weight_format)}a{_SHORT.get(compute, compute)}"


def short_name(fmt: str) -> str:
    """A storage format's short name in kernel names: int8, int4, fp8, fp4, ternary."""
    return {"float8e4m3": "fp8", "float8e5m2": "fp8", "float4e2m1": "fp4", "uint8": "int8", "uint4": "int4"}.get(fmt, fmt)


def scale_bytes(k: int, n: int, group: int) -> float:
    """Bytes of the fp16 scales of a ``k x n`` weight quantised in groups of ``group`` along K (0: one scale per
    output channel)."""
    groups = math.ceil(k / group) if group > 0 else 1
    return groups * n * SCALE_BYTES


def instruction_rate(target: GpuTarget) -> float:
    """32-bit ALU instructions per second of the whole GPU (one per CUDA-core lane per cycle)."""
    return target.cuda_core_fp32.si / 2.0


def dequant_kernel(target: GpuTarget, name: str, elements: float, weight_format: str, stored_bytes: float,
                   compute: str) -> KernelResult:
    """A separate dequantisation kernel: reads ``stored_bytes`` (packed weights and scales) and writes ``elements``
    values in ``compute``'s format; its instructions run on the CUDA cores alongside the streaming."""
    written = elements * COMPUTE_BYTES[compute]
    instructions = elements * DEQUANT_INSTRUCTIONS[weight_format]
    # memory_bound times FLOPs at the fp32 rate (2 FLOPs an FMA instruction): pass twice the instructions
    r = memory_bound(target, name, stored_bytes + written, 2.0 * instructions)
    r.detail.update({"dequant": weight_format, "dequant_instructions": instructions})
    return r


def kv_dequant(target: GpuTarget, result: KernelResult, elements: float, kv_format: str) -> KernelResult:
    """``result`` (a decode-attention kernel reading ``elements`` K and V values stored as ``kv_format``) with their
    conversion to the compute format. The conversion issues on the same SMs as the kernel's arithmetic: a
    compute-bound kernel takes that much longer; a memory-bound one takes the longer of its time and the conversion
    plus its arithmetic at the CUDA-core rate (both overlap the KV stream)."""
    instructions = elements * DEQUANT_INSTRUCTIONS[kv_format]
    convert_s = instructions / instruction_rate(target)
    launch = target.launch_overhead.si
    body = max(0.0, result.time_s - launch)
    busy = body + convert_s if result.bound == "compute" else convert_s + result.flops / target.cuda_core_fp32.si
    if busy > body:
        result.time_s, result.bound = launch + busy, "compute"
    result.detail.update({"kv_dequant": kv_format, "dequant_instructions": instructions, "dequant_s": convert_s})
    return result


def act_quant_kernel(target: GpuTarget, name: str, rows: int, k: int, compute: str, scales: str) -> KernelResult:
    """The kernel that quantises a ``rows x k`` 16-bit GEMM input to ``compute`` (int8 or fp8), with per-token or
    one static per-tensor scale."""
    elements = float(rows) * k
    written = elements * COMPUTE_BYTES[compute] + (rows * TOKEN_SCALE_BYTES if scales == "per-token" else 0.0)
    instructions = elements * ACT_QUANT_INSTRUCTIONS[scales]
    r = memory_bound(target, name, elements * 2.0 + written, 2.0 * instructions)
    r.detail.update({"act_quant": scales, "instructions": instructions})
    return r
