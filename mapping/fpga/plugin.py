"""The FPGA target plugin (kind ``fpga``): large models layer by layer on a DSP array, weights streamed in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hardware.fpga.spec import FpgaTarget
from mapping.fpga.mapper import map_workload, memory_capacity_bytes
from mapping.fpga.options import FpgaOptions
from mapping.program import Program
from mapping.target_plugin import TargetPlugin

if TYPE_CHECKING:
    from mapping.workloads import Workload


class FpgaPlugin(TargetPlugin):
    """FPGA boards running a layer-sequential overlay."""

    kind = "fpga"
    schema = FpgaTarget
    options = FpgaOptions
    native_dtype = "float16"

    def capacity_bytes(self, spec: FpgaTarget, options: FpgaOptions) -> int:  # type: ignore[override]
        return memory_capacity_bytes(spec)

    def lower(self, workload: Workload, spec: FpgaTarget, options: FpgaOptions) -> Program:  # type: ignore[override]
        return map_workload(workload, spec, options)


PLUGIN = FpgaPlugin()
