"""The PIM target plugin (kind ``pim``): PIM-GPT's mapping of VMMs into DRAM banks and the rest onto an ASIC."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hardware.errors import HwsimError
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
        """The bank MACs compute 2-byte floats only."""
        for field_name, flag in (("weights", "--weights"), ("activations", "--activations"), ("kv_cache", "--kv-cache")):
            chosen = getattr(precision, field_name)
            if chosen not in ("bfloat16", "float16"):
                raise HwsimError(f"{flag} {chosen}: {spec.name}'s bank MACs compute in bfloat16, 2 bytes per value; "
                                 "use bf16 or fp16 on this target")

    def session(self, spec: PimTarget, options: PimOptions) -> Lowering:  # type: ignore[override]
        return _PimLowering(self, spec, options)

    def lower(self, workload: Workload, spec: PimTarget, options: PimOptions) -> Program:  # type: ignore[override]
        return map_workload(workload, spec, options)


PLUGIN = PimPlugin()
