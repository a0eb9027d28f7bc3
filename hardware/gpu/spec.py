"""The GPU target preset schema: datasheet figures, calibration factors and energies, each with unit and source.

Tensor-core throughputs are **dense** (no 2:4 sparsity) at the tensor boost clock; a dtype the part lacks is left
out (``None``). Calibration factors (``dram_efficiency``, ``tensor_efficiency``, ``attention_efficiency``) are
fractions of the datasheet peak that kernels achieve; their ``source`` must cite a measurement or say that they
are assumptions pending measurement.

Every field is read by a model; :data:`FIELD_USE` says when. Datasheet figures no model reads (boost clock, L2
size, TDP) are not fields: the presets keep them as comments, and the per-FLOP energies cite the TDP they were
derived from.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from hardware.dram import attached
from hardware.dram.attached import AttachedMemory, require_memory, standard_dram
from hardware.field_use import ALWAYS, FieldUse, Settings
from hardware.quantity import (
    Bytes,
    BytesPerSecond,
    Count,
    FlopsPerSecond,
    Joules,
    JoulesPerBit,
    Ratio,
    Seconds,
    Watts,
    require_positive,
)
from hardware.targets import TargetBase

#: Tensor-core formats a preset may list, in the names kernels use.
TENSOR_DTYPES = ("tf32", "fp16", "bf16", "fp8", "int8", "fp4")


class TensorPeaks(BaseModel):
    """Dense tensor-core throughput per input format (FLOP/s, or OP/s for int8); absent = not supported."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tf32: FlopsPerSecond | None = None
    fp16: FlopsPerSecond | None = None
    bf16: FlopsPerSecond | None = None
    fp8: FlopsPerSecond | None = None
    int8: FlopsPerSecond | None = None
    #: FP4 (E2M1) tensor cores: Blackwell and later
    fp4: FlopsPerSecond | None = None

    _positive = require_positive("tf32", "fp16", "bf16", "fp8", "int8", "fp4")


class GpuTarget(TargetBase):
    """One GPU (kind ``gpu``): compute, on-chip storage, memory, links, power and calibration."""

    KIND: ClassVar[str] = "gpu"

    sm_count: Count
    tensor_peak: TensorPeaks
    cuda_core_fp32: FlopsPerSecond
    #: FP32 lanes (CUDA cores) per SM: with ``cuda_core_fp32`` it gives the SM clock the CUDA-core peak is rated at
    #: (:attr:`sm_clock_hz`), which times instruction-issue-bound kernels (``--set attention=mmha``); None: not known,
    #: and such kernels cannot be timed on this preset
    fp32_lanes_per_sm: Count | None = None
    registers_per_sm: Bytes
    shared_memory_per_sm: Bytes
    max_threads_per_sm: Count
    l2_bandwidth: BytesPerSecond
    dram_capacity: Bytes
    dram_bandwidth: BytesPerSecond
    dram_latency: Seconds
    #: load-to-use latency of an L2 hit (pointer chasing); None: not known for this GPU, and the dependent-load
    #: loops that read L2-resident data (split-KV combines, Lean's fix-up) are timed at bandwidth only
    l2_latency: Seconds | None = None
    launch_overhead: Seconds
    #: per-kernel time of back-to-back kernels replayed from a CUDA graph (``--set launch=graph``); None: as
    #: ``launch_overhead``
    graph_launch_overhead: Seconds | None = None
    idle_power: Watts
    nvlink_bandwidth: BytesPerSecond
    pcie_bandwidth: BytesPerSecond
    #: fixed latency of one NCCL collective (all-reduce, all-to-all) or pipeline send between GPUs
    link_latency: Seconds
    #: NCCL ring all-reduce latency per ring step (``2 (tp-1)`` steps; hardware.gpu.collectives); None: 0
    link_step_latency: Seconds | None = None
    #: fixed latency of a custom one-shot all-reduce kernel (vLLM's, PyTorch IntraNodeComm's) and its cost per peer
    #: GPU read; None: not measured for this GPU, and ``--set allreduce=custom`` takes NCCL's ring
    oneshot_latency: Seconds | None = None
    oneshot_peer_latency: Seconds | None = None
    dram_efficiency: Ratio
    tensor_efficiency: Ratio
    attention_efficiency: Ratio
    tensor_energy_per_flop: Joules
    cuda_core_energy_per_flop: Joules
    dram_energy_per_bit: JoulesPerBit
    l2_energy_per_bit: JoulesPerBit
    #: the DRAM as channels of a standard preset (``hardware.dram.attached``); read with ``--set dram=standard``,
    #: which takes the DRAM bandwidth from it instead of ``dram_bandwidth`` x ``dram_efficiency``
    memory: AttachedMemory | None = None

    #: Fields a model divides by or scales with: 0 would crash or silently zero a result. ``nvlink_bandwidth`` may
    #: be 0 (no NVLink: PCIe carries the link); latencies, overheads, idle power and energies may be 0.
    _positive = require_positive("sm_count", "cuda_core_fp32", "fp32_lanes_per_sm", "registers_per_sm",
                                 "shared_memory_per_sm", "max_threads_per_sm", "l2_bandwidth", "dram_capacity",
                                 "dram_bandwidth", "pcie_bandwidth")

    # -- derived figures (SI units) ------------------------------------------------------------------------
    def with_graph_launches(self) -> GpuTarget:
        """This GPU with kernels replayed from a CUDA graph: the launch floor becomes ``graph_launch_overhead``."""
        if self.graph_launch_overhead is None:
            return self
        return self.model_copy(update={"launch_overhead": self.graph_launch_overhead})

    def with_standard_dram(self) -> GpuTarget:
        """This GPU with its DRAM bandwidth from ``memory``: the peak from channels x bus width x pin rate, the
        efficiency simulated on the DRAM standard's request-level controller (``--set dram=standard``)."""
        mem = require_memory(self.name, self.memory)
        stream = mem.streaming()
        return self.model_copy(update={
            "dram_bandwidth": BytesPerSecond(value=mem.peak_bandwidth() / 1e9, unit="GB/s",
                                             source=f"derived from memory: {mem.describe()}"),
            "dram_efficiency": Ratio(value=stream.efficiency, source=stream.describe())})

    @property
    def sms(self) -> int:
        """Streaming multiprocessors."""
        return self.sm_count.n

    @property
    def sm_clock_hz(self) -> float | None:
        """The clock ``cuda_core_fp32`` is rated at (Hz): FP32 peak / (2 FLOP per FMA x lanes per SM x SMs); None
        without ``fp32_lanes_per_sm``."""
        if self.fp32_lanes_per_sm is None:
            return None
        return self.cuda_core_fp32.si / (2.0 * self.fp32_lanes_per_sm.n * self.sms)

    def peak_flops(self, dtype: str) -> tuple[float, str]:
        """Peak FLOP/s for GEMMs in ``dtype`` and the unit that delivers it (``tensor`` or ``cuda``).

        fp32 runs on CUDA cores; a tensor format the part lacks falls back to fp16 tensor cores (weight-only
        formats are dequantised to fp16) and, without those, to CUDA-core fp32.
        """
        if dtype != "fp32":
            peak = getattr(self.tensor_peak, dtype, None) if dtype in TENSOR_DTYPES else None
            if peak is None:
                peak = self.tensor_peak.fp16
            if peak is not None:
                return peak.si, "tensor"
        return self.cuda_core_fp32.si, "cuda"

    @property
    def achievable_dram_bandwidth(self) -> float:
        """Datasheet DRAM bandwidth times the calibrated efficiency (bytes/s)."""
        return self.dram_bandwidth.si * self.dram_efficiency.si

    @property
    def link_bandwidth(self) -> float:
        """Per-direction bandwidth of the GPU-to-GPU link (bytes/s): half the datasheet's bidirectional total of
        NVLink when there is one, else of PCIe."""
        total = self.nvlink_bandwidth.si if self.nvlink_bandwidth.si > 0 else self.pcie_bandwidth.si
        return total / 2.0


def _tensor_peak_read(fmt: str) -> FieldUse:
    """``tensor_peak.<fmt>``: read by GEMMs and attention computing in ``fmt``; fp16's also by every tensor format
    the part lacks (dequantised to fp16)."""

    def test(s: Settings, target: dict) -> bool:
        peaks = target.get("tensor_peak") or {}
        used = s.gpu_compute_formats(s.flag("tf32"))
        return fmt in used or (fmt == "fp16" and any(f != "fp32" and peaks.get(f) is None for f in used))

    extra = " (and for formats the part lacks)" if fmt == "fp16" else ""
    flag = " with --set tf32=true" if fmt == "tf32" else ""
    source = "fp32" if fmt == "tf32" else fmt
    return FieldUse(f"only when kernels compute in {fmt}{extra}: activations in {source}{flag}", test)


def _tp(s: Settings, target: dict) -> bool:
    return s.tp > 1


def _oneshot(s: Settings, target: dict) -> bool:
    """The run's small all-reduces may take the one-shot kernel (hardware.gpu.collectives)."""
    return (s.tp > 1 and s.option("allreduce", "custom") == "custom" and None not in s.values(target, "oneshot_latency")
            and any(v for v in s.values(target, "nvlink_bandwidth")))


def _graph(s: Settings, target: dict) -> bool:
    return s.option("launch", "stream") == "graph" or s.option("stack", "kernels") == "graph"


#: When each field is read (see :mod:`hardware.field_use`).
FIELD_USE: dict[str, FieldUse] = {
    "sm_count": ALWAYS,
    **{f"tensor_peak.{fmt}": _tensor_peak_read(fmt) for fmt in TENSOR_DTYPES},
    "cuda_core_fp32": ALWAYS,  # fused memory-bound kernels, fp32 GEMMs
    "fp32_lanes_per_sm": FieldUse("only with --set attention=mmha (its instruction-issue bound)",
                                  lambda s, t: s.option("attention") == "mmha"),
    "registers_per_sm": ALWAYS,
    "shared_memory_per_sm": ALWAYS,
    "max_threads_per_sm": ALWAYS,
    "l2_bandwidth": ALWAYS,
    "dram_capacity": ALWAYS,  # the memory-capacity check
    "dram_bandwidth": FieldUse("always, except with --set dram=standard (then memory: gives it)",
                               lambda s, t: not standard_dram(s, t)),
    "dram_latency": ALWAYS,
    "l2_latency": FieldUse("in decode runs with a split-KV attention kernel (FlashDecoding's combine, Lean's "
                           "fix-up), i.e. not with --set attention=naive, and with --set gemm_schedule=stream-k "
                           "(its fix-ups' flag wait)",
                           lambda s, t: ("decode" in s.phases and s.option("attention") != "naive")
                           or s.option("gemm_schedule") == "stream-k"),
    "launch_overhead": FieldUse("always, except with --set launch=graph (or stack=graph) on a preset with "
                                "graph_launch_overhead",
                                lambda s, t: not _graph(s, t) or t.get("graph_launch_overhead") is None),
    "graph_launch_overhead": FieldUse("only with --set launch=graph or --set stack=graph", _graph),
    "idle_power": ALWAYS,
    "nvlink_bandwidth": FieldUse("only with tensor parallelism (tp > 1)", _tp),
    "pcie_bandwidth": FieldUse("only with tensor parallelism (tp > 1) on a GPU without NVLink (nvlink_bandwidth 0)",
                               lambda s, t: _tp(s, t) and 0 in s.values(t, "nvlink_bandwidth")),
    "link_latency": FieldUse("only with tensor parallelism (tp > 1): NCCL's ring all-reduce (--set allreduce=nccl, "
                             "messages above 256 KiB, GPUs without NVLink or one-shot figures)", _tp),
    "link_step_latency": FieldUse("as link_latency (NCCL's ring all-reduce)", _tp),
    "oneshot_latency": FieldUse("only with tensor parallelism (tp > 1) over NVLink and --set allreduce=custom (the "
                                "default), messages up to 256 KiB", _oneshot),
    "oneshot_peer_latency": FieldUse("as oneshot_latency", _oneshot),
    "dram_efficiency": FieldUse("always, except with --set dram=standard (then simulated on memory.standard)",
                                lambda s, t: not standard_dram(s, t)),
    **attached.FIELD_USE,
    "tensor_efficiency": ALWAYS,
    "attention_efficiency": FieldUse("always, except in decode-only runs with --set attention=naive",
                                     lambda s, t: set(s.phases) != {"decode"} or s.option("attention") != "naive"),
    "tensor_energy_per_flop": FieldUse("when any kernel runs on tensor cores (not with fp32 activations alone)",
                                       lambda s, t: s.gpu_compute_formats(s.flag("tf32")) != {"fp32"}),
    "cuda_core_energy_per_flop": ALWAYS,
    "dram_energy_per_bit": ALWAYS,
    "l2_energy_per_bit": ALWAYS,
}
