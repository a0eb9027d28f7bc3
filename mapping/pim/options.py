"""Options of PIM targets (``--mode``, ``--set KEY=VALUE``), validated by pydantic."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mapping.target_plugin import TargetOptions


class PimOptions(TargetOptions):
    """How a workload is lowered onto PIM channels (``mode`` detailed: every DRAM command through the timing
    model)."""

    refresh: bool = Field(True, description="true | false (all-bank refresh)")
    mac_format: Literal["bf16", "int8", "ternary"] = Field(
        "bf16", description="bank MAC unit: bf16 (AiM as built) | int8 (variant: 32 int8 lanes per column) | ternary "
                            "(variant: 128 ternary add/subtract lanes); see hardware/pim/mac_formats.py")
