"""The PIM target plugin (kind ``pim``): PIM-GPT's mapping of VMMs into DRAM banks and the rest onto an ASIC."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hardware.errors import HwsimError
from hardware.pim import mac_formats
from hardware.pim.spec import PimTarget
from mapping.op_costs import Precision
from mapping.pim.mapper import PimSession, map_workload, memory_capacity_bytes
from mapping.pim.options import PimOptions
from mapping.program import Program
from mapping.target_plugin import Lowering, TargetPlugin

if TYPE_CHECKING:
    from mapping.workloads import Model, Workload


class _PimLowering(Lowering):
    """Keeps one command timer for the whole run, so refresh debt carries across its steps."""

    def __init__(self, plugin: PimPlugin, spec: PimTarget, options: PimOptions) -> None:
        super().__init__(plugin, spec, options)
        self.state = PimSession(spec, options)

    def lower(self, workload: Workload) -> Program:
        return map_workload(workload, self.spec, self.options, self.state)  # type: ignore[arg-type]


class PimPlugin(TargetPlugin):
    """AiM-style PIM DRAM with a host ASIC."""

    kind = "pim"
    schema = PimTarget
    options = PimOptions
    native_dtype = "bfloat16"

    def capacity_bytes(self, spec: PimTarget, options: PimOptions) -> int:  # type: ignore[override]
        return memory_capacity_bytes(spec)

    def check(self, model: Model, spec: PimTarget, options: PimOptions,  # type: ignore[override]
              precision: Precision) -> None:
        """The bank MACs (AiM: bf16 only; ``--set mac_format`` variants: int8, ternary) must multiply every
        weight and KV-cache operand with the activations (:mod:`hardware.pim.mac_formats`)."""
        acts = precision.activations or "bfloat16"
        if acts not in ("bfloat16", "float16", "int8"):
            raise HwsimError(f"--activations {acts}: {spec.name}'s bank MACs take bfloat16 activations (int8 with "
                             "--set mac_format=int8); use bf16 or fp16 on this target")
        mac_formats.check(options.mac_format, spec.name, precision.weights or "bfloat16", acts,
                          precision.kv_cache or "bfloat16")

    def session(self, spec: PimTarget, options: PimOptions) -> Lowering:  # type: ignore[override]
        return _PimLowering(self, spec, options)

    def lower(self, workload: Workload, spec: PimTarget, options: PimOptions) -> Program:  # type: ignore[override]
        return map_workload(workload, spec, options)


PLUGIN = PimPlugin()
