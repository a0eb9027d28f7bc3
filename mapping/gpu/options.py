"""Options of GPU targets (``--mode``, ``--tp``, ``--set KEY=VALUE``), validated by pydantic."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from mapping.gpu.stack import EAGER_HOST_PER_DISPATCH, EAGER_HOST_PER_OP, EAGER_HOST_PER_OP_SPAN
from mapping.target_plugin import TargetOptions


class GpuOptions(TargetOptions):
    """How a workload is lowered onto one or ``tp`` GPUs."""

    tp: int = Field(1, ge=1, description="tensor-parallel GPUs")
    attention: Literal["naive", "flashdecoding", "lean", "mmha"] = Field(
        "flashdecoding", description="naive | flashdecoding | lean | mmha (decode; mmha: FasterTransformer's and "
                                     "TensorRT-LLM's masked multi-head attention, one block per query head)")
    gemm_schedule: Literal["data-parallel", "stream-k"] = Field(
        "data-parallel", description="data-parallel (a block per output tile or per tile and K split, as cuBLAS's "
                                     "usual kernels) | stream-k (CUTLASS's stream-K hybrid also considered: no partial "
                                     "last wave; hardware.gpu.gemm)")
    kv_update: Literal["in-place", "concat"] = Field(
        "in-place", description="in-place (the new token's K/V written into a preallocated or paged cache: vLLM, "
                                "TensorRT-LLM, gpt-fast's static cache; a graph's own past/new Concat costs the new "
                                "token's write) | concat (the cache re-concatenated every step: Hugging Face's "
                                "default DynamicCache; a graph's own Concat costs what it copies)")
    tf32: bool = Field(False, description="true | false (fp32 GEMMs on tensor cores; parts with TF32 only)")
    launch: Literal["stream", "graph"] = Field("stream", description="stream | graph (kernels replayed from a CUDA "
                                                                     "graph)")
    stack: Literal["kernels", "eager", "graph", "engine"] = Field(
        "kernels", description="kernels | eager | graph | engine (host time per op and per step; see "
                               "mapping.gpu.stack)")
    host_op_us: float | None = Field(
        None, ge=0.0, le=1e6, allow_inf_nan=False,
        description=f"host time per op in microseconds, replacing the eager stack's default ({EAGER_HOST_PER_OP * 1e6:.1f}: "
                    "the median of the published eager machines, which span "
                    f"{EAGER_HOST_PER_OP_SPAN[0] * 1e6:.1f}-{EAGER_HOST_PER_OP_SPAN[1] * 1e6:.1f}; your CPU and "
                    "framework; per dispatch with host_dispatches)")
    eager_dispatch: Literal["ops", "kernels"] = Field(
        "ops", description="with --set stack=eager: ops (one host dispatch per op of the graph, as Hugging Face "
                           "transformers' model code dispatches its ATen ops one by one) | kernels (one per kernel "
                           "hwsim launches: a framework's own fused modules, e.g. TinyChat's FP16 Llama with its fused "
                           "RMSNorm and single-query attention kernels)")
    host_dispatches: int | None = Field(
        None, ge=1, le=10_000_000,
        description="with --set stack=eager: the ATen ops your framework dispatches per forward pass (decode step or "
                    "prefill; benchmarks/eager_dispatch.py counts them for a Hugging Face config; a pipeline stage "
                    "takes its share), instead of the graph's op count; host_op_us is then per dispatch (default "
                    f"{EAGER_HOST_PER_DISPATCH * 1e6:.1f})")
    host_step_us: float | None = Field(
        None, ge=0.0, le=1e7, allow_inf_nan=False,
        description="host time per step in microseconds, replacing the stack's published value (graph: 15, engine: "
                    "1550)")
    dram: Literal["preset", "standard"] = Field(
        "preset", description="preset (dram_bandwidth x the measured dram_efficiency) | standard (the preset's "
                              "memory: DRAM standard, its streaming efficiency simulated; hardware.dram.attached)")
    kv_heads: int | None = Field(None, ge=1, description="override the KV heads found in the graph (a divisor of the "
                                                         "attention heads): the attention kernels, the memory check "
                                                         "and a serving run's KV cache use them")
    tp_lm_head: Literal["vocab-parallel", "replicated"] = Field(
        "vocab-parallel", description="with tp > 1: vocab-parallel (the output projection's vocabulary split over the "
                                      "GPUs: Megatron-LM, vLLM's ParallelLMHead, TensorRT-LLM) | replicated (every GPU "
                                      "runs the whole output projection: gpt-fast's tp.py shards only the transformer "
                                      "layers, so every GPU also holds the embedding tables and the head whole)")
    allreduce: Literal["custom", "nccl"] = Field(
        "custom", description="with tp > 1: custom (a one-shot kernel over NVLink peer access for messages up to "
                              "256 KiB, as vLLM's, SGLang's, TensorRT-LLM's and PyTorch's IntraNodeComm; NCCL's "
                              "ring above, or where the preset has no one-shot figures) | nccl (NCCL's ring)")
    comm_chunks: int = Field(1, ge=1, le=64, description="pieces each all-reduced GEMM is split into so that "
                                                         "communication overlaps compute (1: no overlap)")
    quant_group: int = Field(128, ge=0, description="weights per group scale of low-bit weights along K (32, 64, 128, "
                                                    "...; 0: one scale per output channel)")
    quant_kernel: Literal["fused", "dequant"] = Field(
        "fused", description="fused (Marlin/AWQ-style: weights dequantised in registers inside the GEMM) | dequant "
                             "(a separate kernel writes them in the compute format first)")
    act_quant: Literal["per-token", "per-tensor", "fused"] = Field(
        "per-token", description="W8A8 (int8/fp8 activations): each weight GEMM's input is quantised by a kernel "
                                 "with per-token scales (vLLM's dynamic scaled_int8/fp8_quant) | per-tensor (a static "
                                 "scale: no reduction, no scales written) | fused (into the producing norm: no kernel)")

    @field_validator("quant_group")
    @classmethod
    def _group(cls, value: int) -> int:
        if value and (value < 16 or value & (value - 1)):
            raise ValueError("must be 0 (per output channel) or a power of two >= 16 (GPTQ/AWQ/Marlin use 32, 64, 128)")
        return value

    @model_validator(mode="after")
    def _host_times_need_a_host(self) -> GpuOptions:
        """The host-time overrides replace a stack's host cost, so the stack must have that cost."""
        if self.host_op_us is not None and self.stack != "eager":
            raise ValueError(f"--set host_op_us applies to --set stack=eager (host dispatch per op), not stack="
                             f"{self.stack}; add --set stack=eager or drop host_op_us")
        if self.eager_dispatch != "ops" and self.stack != "eager":
            raise ValueError(f"--set eager_dispatch applies to --set stack=eager (host dispatch per op or kernel), not "
                             f"stack={self.stack}; add --set stack=eager or drop eager_dispatch")
        if self.host_dispatches is not None and (self.stack != "eager" or self.eager_dispatch != "ops"):
            raise ValueError("--set host_dispatches applies to --set stack=eager with one dispatch per op "
                             f"(eager_dispatch=ops), not stack={self.stack} eager_dispatch={self.eager_dispatch}; "
                             "drop host_dispatches or the other setting")
        if self.host_step_us is not None and self.stack == "kernels":
            raise ValueError("--set host_step_us needs a software stack with a host (--set stack=eager|graph|engine); "
                             "the default stack=kernels has none")
        if self.tp <= 1:  # what only tensor parallelism reads: set without it, it would change nothing
            for key, default in (("allreduce", "custom"), ("tp_lm_head", "vocab-parallel"), ("comm_chunks", 1)):
                if getattr(self, key) != default:
                    raise ValueError(f"--set {key}={getattr(self, key)} applies with tensor parallelism (--tp N > 1 or "
                                     "--parallel tp=N); this run has one GPU per stage: drop it or add --tp")
        return self
