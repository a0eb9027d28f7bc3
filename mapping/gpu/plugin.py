"""The GPU target plugin: preset schema, options, capacity and lowering of GPU targets (kind ``gpu``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hardware.errors import HwsimError
from hardware.gpu.spec import TENSOR_DTYPES, GpuTarget
from mapping.gpu.mapper import map_workload, memory_capacity_bytes
from mapping.gpu.options import GpuOptions
from mapping.op_costs import Precision
from mapping.program import Program
from mapping.target_plugin import TargetPlugin

if TYPE_CHECKING:
    from mapping.workloads import Model, Workload


class GpuPlugin(TargetPlugin):
    """GPUs: tiled GEMMs on tensor cores, FlashAttention-family kernels, fused memory-bound kernels, collectives."""

    kind = "gpu"
    schema = GpuTarget
    options = GpuOptions
    native_dtype = "float16"

    def capacity_bytes(self, spec: GpuTarget, options: GpuOptions) -> int:  # type: ignore[override]
        """DRAM of all ``tp`` GPUs together (tensor parallelism splits weights and KV cache over them)."""
        return memory_capacity_bytes(spec) * options.tp

    def check(self, model: Model, spec: GpuTarget, options: GpuOptions,  # type: ignore[override]
              precision: Precision) -> None:
        """Tensor parallelism must split the attention heads evenly; activations must be in a format the part's
        tensor cores compute (low-bit weights alone are dequantised inside the GEMMs and run anywhere)."""
        _check_formats(spec, precision)
        heads = model.ir.heads
        if options.tp > 1 and heads and heads % options.tp:
            raise HwsimError(f"--tp {options.tp}: the model's {heads} attention heads do not split evenly over "
                             f"{options.tp} GPUs")

    def lower(self, workload: Workload, spec: GpuTarget, options: GpuOptions) -> Program:  # type: ignore[override]
        """The kernels of ``workload`` on the GPU's streams."""
        return map_workload(workload, spec, options)


#: Activation formats a GPU computes in only where its preset lists tensor-core throughput for them.
_NEEDS_TENSOR = {"float8e4m3": "fp8", "float8e5m2": "fp8", "float4e2m1": "fp4", "int8": "int8"}


def _check_formats(spec: GpuTarget, precision: Precision) -> None:
    """Refuse activations the part cannot compute in: fp8 without FP8 tensor cores (A100, V100, T4: Hopper, Ada and
    later have them), fp4 without FP4 ones (Blackwell), int8 without int8 ones, int4 (not modelled)."""
    acts = precision.activations or ""
    if acts in ("int4", "uint4"):
        raise HwsimError(f"--activations {acts}: {spec.name}'s kernels are modelled in fp32/tf32/fp16/bf16/fp8/int8; "
                         "int4 activations are not; use --weights int4 (weight-only, dequantised in the GEMM) with fp16 "
                         "or int8 activations")
    fmt = _NEEDS_TENSOR.get(acts)
    if fmt and getattr(spec.tensor_peak, fmt) is None:
        have = ", ".join(f for f in TENSOR_DTYPES if getattr(spec.tensor_peak, f) is not None)
        raise HwsimError(f"--activations {acts}: {spec.name} has no {fmt} tensor cores (its preset's tensor_peak lists "
                         f"{have}); use --weights {acts.replace('float8e4m3', 'fp8').replace('float4e2m1', 'fp4')} "
                         "with fp16 activations (weight-only: dequantised to fp16 inside the GEMM, as vLLM's Marlin "
                         "kernels run FP8 and int4 on Ampere), or a part that has them (see `hwsim targets`)")


PLUGIN = GpuPlugin()
