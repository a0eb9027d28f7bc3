"""Options of FPGA targets (``--set KEY=VALUE``), validated by pydantic."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from mapping.target_plugin import TargetOptions


class FpgaOptions(TargetOptions):
    """How a workload is lowered onto an FPGA: the hls4ml design of a small model, or the layer-sequential overlay."""

    mode: Literal["fast"] = "fast"  # type: ignore[assignment]
    efficiency: float | None = Field(None, gt=0, le=1, allow_inf_nan=False, description="fraction of DSP peak reached, 0..1")
    tiles: int = Field(8, ge=1, le=256, description="tiles each op's off-chip data streams in (double-buffered)")
    design: Literal["auto", "hls4ml", "overlay"] = Field(
        "auto", description="auto: the hls4ml design `hwsim hls` writes when the model is one it emits and the design "
                            "fits, else the layer-sequential overlay; hls4ml or overlay: that one")
    reuse: int = Field(1, ge=1, description="hls4ml reuse factor of the hls4ml design (as `hwsim hls --reuse`)")
    dram: Literal["preset", "standard"] = Field(
        "preset", description="preset (offchip_bandwidth as the preset gives it) | standard (the preset's memory: "
                              "DRAM standard, its streaming efficiency simulated; hardware.dram.attached)")

    @field_validator("mode", mode="before")
    @classmethod
    def _one_model(cls, value: object) -> object:
        if value not in (None, "fast"):
            raise ValueError("FPGA targets have one timing model (the layer pipeline); drop --mode")
        return value
