"""Options of PIM targets (``--mode``, ``--set KEY=VALUE``), validated by pydantic."""

from __future__ import annotations

from pydantic import Field

from mapping.target_plugin import TargetOptions


class PimOptions(TargetOptions):
    """How a workload is lowered onto PIM channels (``mode`` detailed: every DRAM command through the timing
    model)."""

    refresh: bool = Field(True, description="true | false (all-bank refresh)")
