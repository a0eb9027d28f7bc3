"""The GPU target plugin: preset schema, options, capacity and lowering of GPU targets (kind ``gpu``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hardware.errors import HwsimError
from hardware.gpu.spec import TENSOR_DTYPES, GpuTarget
from mapping.gpu.mapper import map_workload, memory_capacity_bytes
from mapping.gpu.options import GpuOptions
from mapping.op_costs import QUANTISED_WEIGHTS, Precision
from mapping.program import Program
from mapping.target_plugin import Lowering, TargetPlugin

if TYPE_CHECKING:
    from mapping.workloads import Model, Workload


class GpuPlugin(TargetPlugin):
    """GPUs: tiled GEMMs on tensor cores, FlashAttention-family kernels, fused memory-bound kernels, collectives."""

    kind = "gpu"
    schema = GpuTarget
    options = GpuOptions
    native_dtype = "float16"
    split_hint = "--tp N, or --devices N / --parallel tp=A,pp=B"

    def weight_bytes(self, model: Model, options: GpuOptions, precision: Precision) -> int:  # type: ignore[override]
        """The model's weights, plus ``tp - 1`` more copies of the embedding tables and output projection with
        ``--set tp_lm_head=replicated`` (every GPU holds them whole, as gpt-fast's tp.py leaves them)."""
        total = model.weight_bytes(precision)
        if options.tp > 1 and options.tp_lm_head == "replicated":
            total += (options.tp - 1) * model.head_weight_bytes(precision)
        return total

    def capacity_bytes(self, spec: GpuTarget, options: GpuOptions) -> int:  # type: ignore[override]
        """DRAM of all ``tp`` GPUs together (tensor parallelism splits weights and KV cache over them)."""
        return memory_capacity_bytes(spec) * options.tp

    def check(self, model: Model, spec: GpuTarget, options: GpuOptions,  # type: ignore[override]
              precision: Precision) -> None:
        """Tensor parallelism must split the attention heads evenly, and the KV heads too or replicate them evenly
        (fewer KV heads than GPUs: tp a multiple of them, as vLLM requires); a ``kv_heads`` override must divide the
        heads; activations must be in a format the part's tensor cores compute (low-bit weights alone are
        dequantised inside the GEMMs and run anywhere); ``tf32`` needs TF32 tensor cores; options that only choose
        how decode steps run are refused on an encoder-only model."""
        _check_formats(spec, precision)
        quantised = precision.weights in QUANTISED_WEIGHTS
        low_bit_acts = precision.activations in ("int8", "float8e4m3", "float8e5m2")
        for key, default, applies, what in (
                ("quant_kernel", "fused", quantised, "low-bit weights (--weights int8|int4|fp8|...)"),
                ("quant_group", 128, quantised, "low-bit weights (--weights int8|int4|fp8|...)"),
                ("act_quant", "per-token", low_bit_acts, "W8A8 activations (--activations int8|fp8)"),
                ("tf32", False, precision.activations == "float32", "fp32 GEMMs (--precision fp32)")):
            if getattr(options, key) != default and not applies:
                value = str(getattr(options, key)).lower()
                raise HwsimError(f"--set {key}={value} applies to {what}; this run has weights {precision.weights}, "
                                 f"activations {precision.activations}: drop it or change the precision")
        if options.tf32 and spec.tensor_peak.tf32 is None:
            have = ", ".join(f for f in TENSOR_DTYPES if getattr(spec.tensor_peak, f) is not None)
            raise HwsimError(f"--set tf32=true: {spec.name} has no tf32 tensor cores (its preset's tensor_peak lists "
                             f"{have}); drop it (fp32 GEMMs then run on the CUDA cores) or use a part that has them")
        heads = model.ir.heads
        if options.tp > 1 and heads and heads % options.tp:
            raise HwsimError(f"--tp {options.tp}: the model's {heads} attention heads do not split evenly over "
                             f"{options.tp} GPUs")
        kv_heads = options.kv_heads or model.ir.kv_heads
        if options.kv_heads is not None:
            if not heads:
                raise HwsimError(f"--set kv_heads={options.kv_heads}: {model.path} has no attention heads; drop it")
            if options.kv_heads > heads or heads % options.kv_heads:
                raise HwsimError(f"--set kv_heads={options.kv_heads}: must divide the {heads} attention heads of "
                                 f"{model.path} (MHA {heads}, GQA a divisor, MQA 1)")
        tp = options.tp
        if tp > 1 and kv_heads and (kv_heads % tp if kv_heads >= tp else tp % kv_heads):
            raise HwsimError(f"--tp/--parallel tp={tp}: the model's {kv_heads} KV heads neither split evenly over {tp} GPUs nor "
                             f"replicate evenly onto them (a tp that divides or is a multiple of {kv_heads})")
        if model.ir.architecture == "encoder-only":
            for key, default in (("attention", "flashdecoding"), ("kv_update", "in-place")):
                value = getattr(options, key)
                if value != default:
                    raise HwsimError(f"--set {key}={value}: chooses how decode steps run; {model.path} is "
                                     "encoder-only (one forward pass, no KV cache); drop it")

    def model_for(self, model: Model, options: GpuOptions) -> Model:  # type: ignore[override]
        """``--set kv_heads``: the model's KV cache held for that many heads (the attention kernels use them too)."""
        return model if options.kv_heads is None else model.with_kv_heads(options.kv_heads)

    def session(self, spec: GpuTarget, options: GpuOptions) -> Lowering:  # type: ignore[override]
        """A lowering whose kernel timings are shared by the run's workloads (:func:`map_workload`'s memo)."""
        return _GpuLowering(self, spec, options)

    def lower(self, workload: Workload, spec: GpuTarget, options: GpuOptions) -> Program:  # type: ignore[override]
        """The kernels of ``workload`` on the GPU's streams."""
        return map_workload(workload, spec, options)


class _GpuLowering(Lowering):
    """One run's GPU lowering: the decode steps of a generation re-time only the kernels whose shapes changed."""

    def __init__(self, plugin: TargetPlugin, spec: GpuTarget, options: GpuOptions) -> None:
        super().__init__(plugin, spec, options)
        self.memo: dict = {}

    def lower(self, workload: Workload) -> Program:
        return map_workload(workload, self.spec, self.options, memo=self.memo)  # type: ignore[arg-type]


#: Activation formats a GPU computes in only where its preset lists tensor-core throughput for them.
_NEEDS_TENSOR = {"float8e4m3": "fp8", "float8e5m2": "fp8", "float4e2m1": "fp4", "int8": "int8"}


def _check_formats(spec: GpuTarget, precision: Precision) -> None:
    """Refuse activations the part cannot compute in: fp8 without FP8 tensor cores (A100, V100, T4: Hopper, Ada and
    later have them), fp4 without FP4 ones (Blackwell), int8 without int8 ones, int4 (not modelled)."""
    acts = precision.activations or ""
    if acts in ("int4", "uint4"):
        raise HwsimError(f"--activations {acts}: {spec.name}'s kernels are modelled in fp32/tf32/fp16/bf16/fp8/int8; "
                         "int4 activations are not; use --weights int4 (weight-only, dequantised in the GEMM) with fp16 "
                         "or int8 activations")
    fmt = _NEEDS_TENSOR.get(acts)
    if fmt and getattr(spec.tensor_peak, fmt) is None:
        have = ", ".join(f for f in TENSOR_DTYPES if getattr(spec.tensor_peak, f) is not None)
        raise HwsimError(f"--activations {acts}: {spec.name} has no {fmt} tensor cores (its preset's tensor_peak lists "
                         f"{have}); use --weights {acts.replace('float8e4m3', 'fp8').replace('float4e2m1', 'fp4')} "
                         "with fp16 activations (weight-only: dequantised to fp16 inside the GEMM, as vLLM's Marlin "
                         "kernels run FP8 and int4 on Ampere), or a part that has them (see `hwsim targets`)")


PLUGIN = GpuPlugin()
