"""The FPGA target plugin (kind ``fpga``): small models as their hls4ml design, large ones layer by layer on a DSP
array with the weights streamed in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hardware.errors import HwsimError
from hardware.fpga.spec import FpgaTarget
from mapping.fpga.hls_design import design_choice, lower_design
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
        if options.dram == "standard":
            spec = spec.with_standard_dram()
        layers, est, why = design_choice(workload, spec, options.design, options.reuse)
        if est is not None:  # a small model: the hls4ml design `hwsim hls` writes (mapping/fpga/hls_design.py)
            return lower_design(workload, layers, est, spec)
        if spec.offchip_bandwidth.si <= 0 and options.design == "auto":
            raise HwsimError(f"target '{spec.name}' is a bare device (offchip_bandwidth 0): it runs a model only as its "
                             f"hls4ml design, and {why}; --set design=hls4ml simulates that design anyway, a board "
                             "preset (u55c, u250, vcu118...) runs the layer-sequential overlay")
        return map_workload(workload, spec, options)


PLUGIN = FpgaPlugin()
