"""Options of GPU targets (``--mode``, ``--tp``, ``--set KEY=VALUE``), validated by pydantic."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mapping.target_plugin import TargetOptions


class GpuOptions(TargetOptions):
    """How a workload is lowered onto one or ``tp`` GPUs."""

    tp: int = Field(1, ge=1, description="tensor-parallel GPUs")
    attention: Literal["naive", "flashdecoding", "lean"] = Field("flashdecoding",
                                                                 description="naive | flashdecoding | lean (decode)")
    tf32: bool = Field(False, description="true | false (fp32 GEMMs on tensor cores)")
    launch: Literal["stream", "graph"] = Field("stream", description="stream | graph (kernels replayed from a CUDA "
                                                                     "graph)")
    stack: Literal["kernels", "eager", "graph", "engine"] = Field(
        "kernels", description="kernels | eager | graph | engine (host time per op and per step; see "
                               "mapping.gpu.stack)")
    kv_heads: int | None = Field(None, ge=1, description="override the KV heads found in the graph")
    comm_chunks: int = Field(1, ge=1, le=64, description="pieces each all-reduced GEMM is split into so that "
                                                         "communication overlaps compute (1: no overlap)")
