"""Simulate a model on a target: build the phase's workloads, map them, run the engine, add up the results.

``generate`` is a prefill followed by ``gen_len - 1`` decode steps over a growing KV cache (the first generated
token comes out of the prefill). Each step is mapped and run; steps are independent programs executed back to
back, so latencies and energies add.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hardware.errors import HwsimError
from hardware.targets import TargetBase, to_dict
from mapping.op_costs import Precision
from mapping.workloads import Model, Workload
from simulator.backends import NATIVE_DTYPE, OPTIONS, mapper_for
from simulator.engine import RunResult, TaskRecord, run


@dataclass
class PhaseResult:
    """Totals of one phase (prefill, or all decode steps together)."""

    name: str
    passes: int = 0
    tokens: int = 0
    latency_s: float = 0.0
    energy_j: float = 0.0
    dynamic_energy_j: float = 0.0
    static_energy_j: float = 0.0


@dataclass
class SimulationResult:
    """Everything ``hwsim simulate`` reports. Seconds, joules, bytes."""

    model: str
    target: TargetBase
    phase: str
    batch: int
    prompt_len: int
    gen_len: int
    precision: Precision
    mode: str
    phases: list[PhaseResult] = field(default_factory=list)
    traffic_bytes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    energy_by_action: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    busy_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    blocks: dict[str, dict[str, float]] = field(default_factory=dict)
    block_kinds: dict[str, dict[str, float]] = field(default_factory=dict)
    ops: dict[str, dict[str, float]] = field(default_factory=dict)
    trace: list[tuple[str, TaskRecord, float]] = field(default_factory=list)
    memory_bytes: int = 0
    capacity_bytes: int = 0

    @property
    def latency_s(self) -> float:
        """End-to-end latency of the phase(s)."""
        return sum(p.latency_s for p in self.phases)

    @property
    def energy_j(self) -> float:
        """Total energy, dynamic plus static."""
        return sum(p.energy_j for p in self.phases)

    @property
    def tokens(self) -> int:
        """Tokens produced (generate, decode) or processed (prefill)."""
        return sum(p.tokens for p in self.phases) if self.phase != "generate" else self.batch * self.gen_len

    @property
    def tokens_per_s(self) -> float:
        """Tokens per second over the whole run."""
        return self.tokens / self.latency_s if self.latency_s else 0.0

    def kernels(self) -> list[dict[str, Any]]:
        """Per-kernel figures of a kernel-level model (GPU), slowest first: total time over ``calls``, useful FLOP/s
        and DRAM bytes/s achieved (summed over tensor-parallel GPUs), the bound that held for most of its time, and
        its time-weighted occupancy."""
        out = []
        for name, row in self.ops.items():
            if "bound_s" not in row:
                continue
            t = row["latency_s"]
            out.append({"kernel": name, "calls": row["calls"], "time_s": t,
                        "achieved_flops_per_s": row["flops"] / t if t else 0.0,
                        "achieved_dram_bytes_per_s": row["dram_bytes"] / t if t else 0.0,
                        "bound": max(row["bound_s"], key=row["bound_s"].get),
                        "occupancy": row["occupancy_s"] / t if t and "occupancy_s" in row else None})
        return sorted(out, key=lambda k: -k["time_s"])

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` object."""
        return {
            "model": self.model, "phase": self.phase, "batch": self.batch, "prompt_len": self.prompt_len,
            "gen_len": self.gen_len, "mode": self.mode,
            "precision": {"weights": self.precision.weights, "activations": self.precision.activations,
                          "kv_cache": self.precision.kv_cache},
            "latency_s": self.latency_s, "energy_j": self.energy_j, "tokens": self.tokens,
            "tokens_per_s": self.tokens_per_s,
            "tokens_per_j": self.tokens / self.energy_j if self.energy_j else 0.0,
            "traffic_bytes": dict(self.traffic_bytes),
            "energy_by_action_j": dict(self.energy_by_action),
            "busy_s": dict(self.busy_s),
            "idle_s": {res: max(0.0, self.latency_s - busy) for res, busy in self.busy_s.items()},
            "phases": [vars(p) for p in self.phases],
            "breakdown": {"blocks": self.blocks, "block_kinds": self.block_kinds, "ops": self.ops},
            "kernels": self.kernels(),
            "memory": {"required_bytes": self.memory_bytes, "capacity_bytes": self.capacity_bytes},
            "target": to_dict(self.target),
        }


def default_precision(target: TargetBase, precision: Precision) -> Precision:
    """Fill unset formats with the target's native one (bf16 on PIM, fp16 on GPUs and FPGAs)."""
    native = NATIVE_DTYPE.get(target.kind, "float16")
    return Precision(precision.weights or native, precision.activations or native, precision.kv_cache or native)


def _accumulate(result: SimulationResult, phase: PhaseResult, run_result: RunResult, workload: Workload,
                keep_trace: bool, offset_s: float) -> None:
    phase.passes += 1
    phase.tokens += workload.tokens
    phase.latency_s += run_result.latency_s
    phase.energy_j += run_result.energy_j
    phase.dynamic_energy_j += run_result.dynamic_energy_j
    phase.static_energy_j += run_result.static_energy_j
    for level, n in run_result.traffic_bytes.items():
        result.traffic_bytes[level] += n
    for res, busy in run_result.busy_s.items():
        result.busy_s[res] += busy
    kinds = {o.block: o.block_kind or "other" for o in workload.ops}
    for rec in run_result.records:
        task = rec.task
        for action, joules in task.energy_by_action.items():
            result.energy_by_action[action] += joules
        duration = rec.end_s - rec.start_s
        nbytes = sum(task.bytes_by_level.values())
        for table, key in ((result.blocks, task.block or "(other)"),
                           (result.block_kinds, kinds.get(task.block, "other")),
                           (result.ops, task.op or task.name)):
            row = table.setdefault(key, {"latency_s": 0.0, "energy_j": 0.0, "bytes": 0})
            row["latency_s"] += duration
            row["energy_j"] += task.energy_j
            row["bytes"] += nbytes
        if task.bound:  # a kernel-level model: keep what each op achieved
            row = result.ops[task.op or task.name]
            row["calls"] = row.get("calls", 0) + 1
            row["flops"] = row.get("flops", 0.0) + task.flops
            row["dram_bytes"] = row.get("dram_bytes", 0) + task.bytes_by_level.get("hbm", 0)  # the GPU mapper's DRAM
            bound_s = row.setdefault("bound_s", {})
            bound_s[task.bound] = bound_s.get(task.bound, 0.0) + duration
            if task.occupancy is not None:
                row["occupancy_s"] = row.get("occupancy_s", 0.0) + task.occupancy * duration
        if keep_trace:
            result.trace.append((phase.name, rec, offset_s))
    # static energy is spread over blocks in proportion to their time, so the breakdown adds up to the total
    if run_result.latency_s > 0 and run_result.static_energy_j > 0:
        per_s = run_result.static_energy_j / run_result.latency_s
        for rec in run_result.records:
            share = (rec.end_s - rec.start_s) * per_s
            result.blocks[rec.task.block or "(other)"]["energy_j"] += share
            result.block_kinds[kinds.get(rec.task.block, "other")]["energy_j"] += share
            result.ops[rec.task.op or rec.task.name]["energy_j"] += share
        idle = run_result.latency_s - sum(r.end_s - r.start_s for r in run_result.records)
        if idle > 0:
            row = result.blocks.setdefault("(idle)", {"latency_s": 0.0, "energy_j": 0.0, "bytes": 0})
            row["energy_j"] += idle * per_s


def _check_options(target: TargetBase, model: Model, options: dict[str, Any]) -> None:
    """Refuse options the target's mapper would ignore, and tensor parallelism it cannot do."""
    known = OPTIONS.get(target.kind, {})
    for key in options:
        if key.startswith("_") or key in ("mode", "tp"):
            continue
        if key not in known:
            listed = ", ".join(f"{k} ({v})" for k, v in known.items() if k not in ("mode", "tp")) or "none"
            raise HwsimError(f"--set {key}: not an option of {target.kind} targets; options: {listed}")
    tp = int(options.get("tp", 1) or 1)
    if tp < 1:
        raise HwsimError(f"--tp must be >= 1, got {tp}")
    if tp > 1 and "tp" not in known:
        raise HwsimError(f"--tp {tp}: {target.kind} targets have no tensor parallelism; drop --tp")
    heads = model.ir.heads
    if tp > 1 and heads and heads % tp:
        raise HwsimError(f"--tp {tp}: the model's {heads} attention heads do not split evenly over {tp} GPUs")
    if "refresh" in options and not isinstance(options["refresh"], bool):
        raise HwsimError(f"--set refresh={options['refresh']}: use true or false")
    if options.get("mode", "fast") not in ("fast", "detailed"):
        raise HwsimError(f"mode {options['mode']!r}: use fast or detailed")
    if options.get("mode") == "detailed" and target.kind == "fpga":
        raise HwsimError(f"--mode detailed: FPGA target '{target.name}' has one timing model (the layer pipeline); "
                         "drop --mode")


def simulate(model: Model, target: TargetBase, phase: str, batch: int, prompt_len: int, gen_len: int,
             precision: Precision, options: dict[str, Any] | None = None,
             progress: Callable[[int, int], None] | None = None, trace_steps: int = 4) -> SimulationResult:
    """Run ``phase`` (prefill | decode | generate) of ``model`` on ``target``.

    ``progress(done, total)`` is called after every pass; ``trace_steps`` decode steps are kept for the trace.
    """
    options = dict(options or {})
    if phase in ("decode", "generate") and model.ir.architecture in ("encoder-only", "none"):
        raise HwsimError(f"{model.path}: phase '{phase}' needs a model with a causal decoder; this graph is "
                         f"{model.ir.architecture}: use --phase prefill")
    mapper = mapper_for(target.kind)
    _check_options(target, model, options)
    precision = default_precision(target, precision)
    if target.kind == "pim":
        native = getattr(getattr(target, "mac", None), "dtype", "bfloat16")
        for field_name, flag in (("weights", "--weights"), ("activations", "--activations"), ("kv_cache", "--kv-cache")):
            chosen = getattr(precision, field_name)
            if chosen not in ("bfloat16", "float16"):
                raise HwsimError(f"{flag} {chosen}: {target.name} computes in {native} (mac.dtype), 2 bytes per value; "
                                 "use bf16 or fp16 on this target")
    result = SimulationResult(model.path, target, phase, batch, prompt_len, gen_len, precision,
                              options.get("mode", "fast"))
    # capacity: weights plus the largest KV cache of the run must fit the target's memory
    final_context = prompt_len + (gen_len - 1 if phase == "generate" else 0) + (1 if phase == "decode" else 0)
    kv = model.kv_cache_bytes(batch, final_context, precision, prompt_len) if model.ir.attentions() else 0
    result.memory_bytes = model.weight_bytes(precision) + kv
    # tensor parallelism splits weights and KV cache over the GPUs: compare with all of them together
    result.capacity_bytes = int(mapper.memory_capacity_bytes(target)) * int(options.get("tp", 1) or 1)
    if result.memory_bytes > result.capacity_bytes:
        raise HwsimError(
            f"{model.path} does not fit {target.name}: needs {result.memory_bytes / 2**30:.2f} GiB (weights "
            f"{model.weight_bytes(precision) / 2**30:.2f} GiB + KV cache {kv / 2**30:.2f} GiB) but the target holds "
            f"{result.capacity_bytes / 2**30:.2f} GiB; use a smaller model, precision or batch")
    shared: dict[str, Any] = {}
    options.setdefault("_state", shared)

    def one(workload: Workload, phase_result: PhaseResult, keep: bool) -> None:
        program = mapper.map_workload(workload, target, options)
        run_result = run(program)
        _accumulate(result, phase_result, run_result, workload, keep, result.latency_s)

    if phase in ("prefill", "generate"):
        pre = PhaseResult("prefill")
        result.phases.append(pre)
        total = 1 + (gen_len - 1 if phase == "generate" else 0)
        if phase == "generate":
            generation = model.generate(batch, prompt_len, gen_len, precision)
            prefill = generation.prefill
        else:
            prefill = model.prefill(batch, prompt_len, precision)
        result.prompt_len = prefill.seq  # a fixed-length graph (ViT) has its own token count
        one(prefill, pre, True)
        if progress:
            progress(1, total)
        if phase == "generate" and gen_len > 1:
            dec = PhaseResult("decode")
            result.phases.append(dec)
            for i, step in enumerate(generation.steps()):
                one(step, dec, i < trace_steps)
                if progress:
                    progress(i + 2, total)
    elif phase == "decode":
        dec = PhaseResult("decode")
        result.phases.append(dec)
        one(model.decode(batch, prompt_len, precision, prompt_len=prompt_len), dec, True)
        if progress:
            progress(1, 1)
    else:
        raise HwsimError(f"unknown phase '{phase}'; use prefill, decode or generate")
    return result
