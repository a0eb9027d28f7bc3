"""Simulate a model on a target: build the phase's workloads, map them, run the engine, add up the results.

``generate`` is a prefill followed by ``gen_len - 1`` decode steps over a growing KV cache (the first generated
token comes out of the prefill). Each step is mapped and run; steps are independent programs executed back to
back, so latencies and energies add.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hardware.errors import HwsimError
from hardware.targets import TargetBase, to_dict
from mapping.op_costs import Precision
from mapping.parallel import (
    Parallel,
    check_parallel,
    make_lowering,
    options_for,
    per_device_check,
    stage_kv_shares,
    stage_weight_shares,
)
from mapping.program import Program
from mapping.target_plugin import TargetOptions, plugin_for
from mapping.workloads import Model, Workload
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
    #: per (phase, kernel): kind, calls, time_s, flops, dram_bytes (kernel facts carried by the tasks)
    kernel_rows: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    options: TargetOptions | None = None
    #: what techniques applied and what they bought (mapping.techniques, simulator.speculative); {} for none
    techniques: dict[str, Any] = field(default_factory=dict)
    parallel: Parallel | None = None

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
            **({"techniques": self.techniques} if self.techniques else {}),
            **({"parallel": {"devices": self.parallel.devices, "tp": self.parallel.tp, "pp": self.parallel.pp,
                             "link": self.parallel.link}} if self.parallel is not None else {}),
        }


def default_precision(target: TargetBase, precision: Precision) -> Precision:
    """Fill unset formats with the target's native one (bf16 on PIM, fp16 on GPUs and FPGAs)."""
    return plugin_for(target.kind).default_precision(target, precision)


def device_capacity_bytes(plugin, target: TargetBase, options: TargetOptions) -> int:  # noqa: ANN001
    """Memory of ONE device (bytes): a GPU plugin's capacity covers all its ``tp`` GPUs."""
    if "tp" in type(options).model_fields:
        options = options.model_copy(update={"tp": 1})
    return int(plugin.capacity_bytes(target, options))


def _add_row(table: dict[str, dict[str, Any]], key: str, duration: float, energy: float, nbytes: int) -> dict:
    """Add one record's time (s), energy (J) and bytes to ``table[key]`` (created at zero); the row."""
    row = table.get(key)
    if row is None:
        row = table[key] = {"latency_s": 0.0, "energy_j": 0.0, "bytes": 0}
    row["latency_s"] += duration
    row["energy_j"] += energy
    row["bytes"] += nbytes
    return row


def _accumulate(result: SimulationResult, phase: PhaseResult, run_result: RunResult, workload: Workload,
                keep_trace: bool, offset_s: float, dram_level: str | None) -> None:
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
    blocks, block_kinds, ops, kernel_rows = result.blocks, result.block_kinds, result.ops, result.kernel_rows
    by_action = result.energy_by_action
    for rec in run_result.records:  # one pass per record, adding in record order (the totals are order-exact)
        task = rec.task
        for action, joules in task.energy_by_action.items():
            by_action[action] += joules
        duration = rec.end_s - rec.start_s
        nbytes = sum(task.bytes_by_level.values())
        energy = task.energy_j
        op_key = task.op or task.name
        _add_row(blocks, task.block or "(other)", duration, energy, nbytes)
        _add_row(block_kinds, kinds.get(task.block, "host" if task.resource == "host" else "other"), duration, energy,
                 nbytes)
        row = _add_row(ops, op_key, duration, energy, nbytes)
        if task.bound:  # a kernel-level model: keep what each op achieved (row: this op's row, just added to)
            dram = task.bytes_by_level.get(dram_level, 0) if dram_level else 0
            row["calls"] = row.get("calls", 0) + 1
            row["flops"] = row.get("flops", 0.0) + task.flops
            row["dram_bytes"] = row.get("dram_bytes", 0) + dram
            bound_s = row.get("bound_s")
            if bound_s is None:
                bound_s = row["bound_s"] = {}
            bound_s[task.bound] = bound_s.get(task.bound, 0.0) + duration
            if task.occupancy is not None:
                row["occupancy_s"] = row.get("occupancy_s", 0.0) + task.occupancy * duration
            krow = kernel_rows.get((phase.name, op_key))
            if krow is None:
                krow = kernel_rows[(phase.name, op_key)] = {
                    "kind": task.kind, "calls": 0, "time_s": 0.0, "flops": 0.0, "dram_bytes": 0}
            krow["calls"] += 1
            krow["time_s"] += duration
            krow["flops"] += task.flops
            krow["dram_bytes"] += dram
        if keep_trace:
            result.trace.append((phase.name, rec, offset_s))
    # static energy is spread over blocks in proportion to their time, so each breakdown adds up to the total: the
    # device's busy time (the union of its tasks, which overlap: an FPGA's loads beside its DSP work, a GPU's
    # all-reduces beside its GEMMs) is shared by the tasks in proportion to their durations, the rest is "(idle)"
    # (the GPU waiting for an eager host's dispatch) in every table
    if run_result.latency_s > 0 and run_result.static_energy_j > 0:
        per_s = run_result.static_energy_j / run_result.latency_s
        device = [r for r in run_result.records if r.task.resource != "host"]  # host tasks (GPU stacks) run alongside
        union = _busy_union_s(device)
        total = sum(r.end_s - r.start_s for r in device)
        scale = union / total if total > 0 else 0.0
        for rec in device:
            share = (rec.end_s - rec.start_s) * scale * per_s
            result.blocks[rec.task.block or "(other)"]["energy_j"] += share
            result.block_kinds[kinds.get(rec.task.block, "other")]["energy_j"] += share
            result.ops[rec.task.op or rec.task.name]["energy_j"] += share
        idle = run_result.latency_s - union
        if idle > 0:
            for table in (result.blocks, result.block_kinds, result.ops):
                row = table.setdefault("(idle)", {"latency_s": 0.0, "energy_j": 0.0, "bytes": 0})
                row["energy_j"] += idle * per_s


def _busy_union_s(records: list[Any]) -> float:
    """Seconds during which at least one of ``records`` runs (overlapping tasks counted once)."""
    spans = sorted((r.start_s, r.end_s) for r in records if r.end_s > r.start_s)
    busy, end = 0.0, float("-inf")
    for start, stop in spans:
        if stop <= end:
            continue
        busy += stop - max(start, end)
        end = stop
    return busy


def prepare_run(model: Model, target: TargetBase, options: dict[str, Any] | TargetOptions | None,
                precision: Precision, parallel: Parallel | None) -> tuple[Any, TargetOptions, Precision, bool, Model]:
    """(plugin, validated options, precision with the target's defaults, whether several devices run, the model as
    the options see it) for a run of ``model`` on ``target``: the options parsed by the plugin, a multi-device
    layout's options and checks, the plugin's check of the model against the target, and its
    :meth:`TargetPlugin.model_for`. Shared by :func:`simulate`, speculative decoding and ``hwsim serve``."""
    plugin = plugin_for(target.kind)
    opts = options if isinstance(options, TargetOptions) else plugin.parse_options(dict(options or {}))
    precision = plugin.default_precision(target, precision)
    multi = parallel is not None and parallel.devices > 1
    if multi:
        assert parallel is not None
        opts = options_for(plugin, opts, parallel)
        check_parallel(plugin, opts, parallel, model.ir.heads, model.ir.kv_heads)
    plugin.check(model, target, opts, precision)
    return plugin, opts, precision, multi, plugin.model_for(model, opts)


def simulate(model: Model, target: TargetBase, phase: str, batch: int, prompt_len: int, gen_len: int,
             precision: Precision, options: dict[str, Any] | TargetOptions | None = None,
             progress: Callable[[int, int], None] | None = None, trace_steps: int = 4,
             parallel: Parallel | None = None) -> SimulationResult:
    """Run ``phase`` (prefill | decode | generate) of ``model`` on ``target``.

    ``options`` are the target plugin's options (or the raw ``--mode``/``--tp``/``--set`` values, validated by
    the plugin). ``progress(done, total)`` is called after every pass; ``trace_steps`` decode steps are kept for
    the trace. ``parallel`` spreads the run over ``tp x pp`` devices (:mod:`mapping.parallel`; each pass is one
    micro-batch through the stages), with the capacity checked per device. A model that does not fit raises
    :class:`hardware.errors.DoesNotFit`.
    """
    if phase in ("decode", "generate") and model.ir.architecture in ("encoder-only", "none"):
        raise HwsimError(f"{model.path}: phase '{phase}' needs a model with a causal decoder; this graph is "
                         f"{model.ir.architecture}: use --phase prefill")
    if phase not in ("prefill", "decode", "generate"):
        raise HwsimError(f"unknown phase '{phase}'; use prefill, decode or generate")
    plugin, opts, precision, multi, model = prepare_run(model, target, options, precision, parallel)
    result = SimulationResult(model.path, target, phase, batch, prompt_len, gen_len, precision, opts.mode)
    result.options = opts
    result.parallel = parallel if multi else None
    # capacity: weights plus the largest KV cache of the run must fit the target's memory
    final_context = prompt_len + (gen_len - 1 if phase == "generate" else 0) + (1 if phase == "decode" else 0)
    kv = model.kv_cache_bytes(batch, final_context, precision, prompt_len) if model.ir.attentions() else 0
    weights = plugin.weight_bytes(model, opts, precision)
    result.memory_bytes = weights + kv
    if multi:
        assert parallel is not None
        device = device_capacity_bytes(plugin, target, opts)
        result.capacity_bytes = device * parallel.devices
        lowering = make_lowering(plugin, target, opts, parallel)
    else:
        result.capacity_bytes = plugin.check_fits(model.path, target, opts, weights, kv)
        lowering = plugin.session(target, opts)
    checked: list[bool] = []

    def one(workload: Workload, phase_result: PhaseResult, keep: bool) -> None:
        if multi and not checked:  # per device: each stage's share over its tp devices
            assert parallel is not None
            per_device_check(model.path, target, device, parallel, weights, kv,
                             stage_weight_shares(workload, parallel.pp), stage_kv_shares(workload, parallel.pp))
            checked.append(True)
        program: Program = lowering.lower(workload)
        run_result = run(program)
        _accumulate(result, phase_result, run_result, workload, keep, result.latency_s, program.level("dram"))

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
    if not (math.isfinite(result.latency_s) and math.isfinite(result.energy_j)):
        raise HwsimError(f"{target.name}: the simulated latency or energy is not a finite number; check the preset's "
                         "values (`hwsim targets show`)")
    return result
