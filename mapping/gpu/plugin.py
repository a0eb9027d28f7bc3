"""The GPU target plugin: preset schema, options, capacity and lowering of GPU targets (kind ``gpu``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hardware.errors import HwsimError
from hardware.gpu.spec import GpuTarget
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
        """Tensor parallelism must split the attention heads evenly."""
        heads = model.ir.heads
        if options.tp > 1 and heads and heads % options.tp:
            raise HwsimError(f"--tp {options.tp}: the model's {heads} attention heads do not split evenly over "
                             f"{options.tp} GPUs")

    def lower(self, workload: Workload, spec: GpuTarget, options: GpuOptions) -> Program:  # type: ignore[override]
        """The kernels of ``workload`` on the GPU's streams."""
        return map_workload(workload, spec, options)


PLUGIN = GpuPlugin()
