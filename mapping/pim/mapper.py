"""PIM-GPT's mapping of a workload onto a PIM target: VMMs in the DRAM banks, everything else on the ASIC.

- Weight matrices (``k x n``) are partitioned by output across all channels and banks, each output's weights
  along DRAM rows, so every bank's MAC unit works at once and a row is opened once per pass (row hits for all
  its columns). The input vector is broadcast into each channel's global buffer. Rows of a batch or of a prompt
  are separate vectors, processed one after another (PIM has no weight reuse across vectors).
- Attention runs in PIM too: the KV cache lives in the banks (K rows token-major, V transposed so that P.V is a
  VMM over tokens); each head's score (q.K^T) and P.V products are VMMs spread over the channels, heads
  concatenated to fill rows. Each new token's K and V are written into the banks (V buffered 16 tokens a row).
- Softmax, normalisation, activations, residual adds, bias adds and the sums of partial products of oversized
  matrices run on the ASIC. Token embeddings are read from the banks as ordinary DRAM reads.
- Tasks run on two resources, ``pim`` (all channels in lockstep) and ``asic``, each issuing its work in program
  order; a task waits only for the tasks that produce the data it reads (:mod:`mapping.dataflow`), so the ASIC's
  work (partial sums, softmax, norms) overlaps the banks' next VMM wherever that VMM does not need its result
  (e.g. the K projection's VMM while the ASIC finishes Q's partial sums). The command timer still runs in
  program order, so each task's duration is today's; only the schedule overlaps.
- A block's new K and V are written to the banks once both its K and V projections are done, before its score
  product reads them.

Prefill runs the prompt's tokens as vectors one after another; causal attention then attends on average to
half of the keys, which the mapper accounts for (the graph itself computes the full square).

Lowering is two passes: :func:`_plan` lays out the tasks and their dependencies from the ops' structure, then the
plan's tasks are timed in program order (the command timer's refresh debt runs through them). A
:class:`PimSession` keeps the plan for the next step whose ops have the same signatures (a decode step changes only
its attention ops' sizes) and memoises what does not depend on the debt; every memo is keyed on all it reads, so
outputs are those of a fresh computation.
"""

from __future__ import annotations

import math
from typing import Any

from hardware.pim import mac_formats
from hardware.pim.aim import AimTimer, PimCounts, energy
from hardware.pim.aim_isr_timer import IsrTimer, has_isr
from hardware.pim.asic import vector_work
from hardware.pim.spec import PimTarget
from mapping.dataflow import Dataflow
from mapping.op_costs import OpCost
from mapping.pim.options import PimOptions
from mapping.program import Program, Resource, Task
from mapping.workloads import Workload

#: Ops whose data layout PIM-GPT's mapping absorbs: no time, no energy.
FREE = {"view", "folded", "movement"}


def memory_capacity_bytes(target: PimTarget) -> int:
    """Bytes the PIM channels hold (weights and KV cache live there)."""
    return int(target.channels.n * target.capacity_per_channel.si)


#: Memory levels of a PIM program and their roles.
LEVELS = {"dram_array": "pim_array", "bank_io": "pim_array", "channel": "dram", "offchip_link": "link",
          "onchip_buffer": "onchip"}


class PimSession:
    """State of one simulation run: the command timer, so that refresh debt carries across its steps, and memos of
    what does not depend on that debt (the other channels' counts, energies, tasks), so that a decode step whose
    ops are those of the step before re-derives only its attention and its refreshes.

    Every memo is keyed on all the values its entry is computed from (the session's target and options are
    fixed), so a hit returns exactly what computing it would."""

    def __init__(self, target: PimTarget, options: PimOptions) -> None:
        self.target, self.options = target, options
        # the CLI's detailed mode is the AiM timer's command-level mode
        mode = "command" if options.mode == "detailed" else "fast"
        # a standard with the whole AiM instruction set (gddr6-aim): kernels timed by their instruction programs
        self.timer = (IsrTimer(target, refresh=options.refresh) if has_isr(target)
                      else AimTimer(target, mode, refresh=options.refresh))
        # command counts of the other channels: no refresh, so no state, and its own memo serves every step
        self.counter = IsrTimer(target, refresh=False) if has_isr(target) else AimTimer(target, "fast", refresh=False)
        self.totals: dict[tuple[int, int, int], tuple[int, ...]] = {}  # (k, n, vectors) -> all channels, ref 0
        self.energies: dict[tuple[int, ...], dict[str, Any]] = {}  # all-channel counts -> a PIM task's energy fields
        self.lengths: dict[tuple[int, str | None, str | None], int] = {}  # _bf16_length's answers
        self.tasks: dict[str, tuple[tuple, Task]] = {}  # task name -> (what its fields are computed from, task)
        self.plans: dict[tuple, _Plan] = {}  # (weights, activations, causal blocks) -> the last plan of that kind


_NONE: frozenset[str] = frozenset()

#: Entries a session's energy memo holds before it starts over (attention counts change with every step).
_ENERGY_MEMO = 4096


# -- the plan: a workload's tasks and their dependencies, without costs ------------------------------------------
#: One task of a plan, in program order: (kind, task name, deps, op index, static arguments...). Kinds: ``vmm``
#: (+ k, n, vectors), ``attn``, ``gather``, ``kv`` (the op is the block's later K/V projection), ``asic`` (+ first op
#: name, block, members: (op index, flops, SRAM bytes) with None for "the op's own", accumulated in order).
Emit = tuple


def _signature(op: OpCost) -> tuple:
    """Everything of ``op`` that :func:`_plan` reads (its costs are read when the plan is evaluated)."""
    mm = op.matmul
    if op.category in FREE:
        kind: tuple = ("free",)
    elif mm is not None and mm.weight_operand:
        kind = ("vmm", mm, op.flops)
    elif mm is not None:
        kind = ("attn",)
    else:
        kind = (op.category == "gather",)
    return (op.name, op.category, op.block, op.role, op.inputs, op.outputs, kind)


class _Plan:
    """A workload's plan and the ops it holds for (their signatures), to be reused by a later step whose ops have
    the same signatures (the same objects, typically: a decode step shares all but its attention ops)."""

    def __init__(self, ops: list[OpCost], emits: list[Emit]) -> None:
        self.ops = list(ops)
        self.signatures = [_signature(o) for o in ops]
        self.emits = emits

    def holds_for(self, ops: list[OpCost]) -> bool:
        """Whether ``ops`` plan the same (and, if so, remember them for the next comparison)."""
        if len(ops) != len(self.ops):
            return False
        mine, signatures = self.ops, self.signatures
        for i, op in enumerate(ops):
            if op is not mine[i] and _signature(op) != signatures[i]:
                return False
        self.ops = list(ops)
        return True


def _plan(workload: Workload, causal: set[str], length: Any, row_elems: int) -> list[Emit]:
    """The tasks of ``workload`` in program order with their dependencies (PIM-GPT's mapping, module docstring):
    each op waits for the producers of its inputs; consecutive ASIC work of one block is merged into one task,
    flushed when a PIM task needs it or the block changes."""
    elem = 2  # the MAC datapath is bf16: PIM stores weights, KV and vectors in bf16
    flow = Dataflow()
    emits: list[Emit] = []
    pending: dict[str, Any] | None = None
    kv_pending: dict[str, set[str]] = {}  # block -> K/V projection roles still to come
    kv_written: dict[str, str] = {}  # block -> its kv_write task
    kv_outputs: dict[str, list[str]] = {}  # block -> the tensors its K/V projections write
    for o in workload.ops:
        if o.role in ("k_proj", "v_proj", "qkv_proj"):
            kv_outputs.setdefault(o.block, []).extend(o.outputs)

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            p, pending = pending, None
            emits.append(("asic", p["name"], tuple(sorted(p["needs"])), p["first"], p["block"], tuple(p["members"])))

    def asic(i: int, op: OpCost, member: tuple, after: frozenset[str] | None = None) -> None:
        nonlocal pending
        if pending is not None and pending["block"] != op.block:
            flush()
        if pending is None:
            name = f"asic:{op.name}"
            pending = {"name": name, "first": op.name, "block": op.block, "needs": set(), "members": [],
                       "done": frozenset((name,))}
        pending["members"].append(member)
        needs = flow.needs(op) if after is None else after
        if needs:
            pending["needs"] |= needs - pending["done"]
        flow.produced(op, pending["done"])

    def pim(emit: tuple, op: OpCost, needs: frozenset[str]) -> str:
        if pending is not None and pending["name"] in needs:
            flush()
        name = emit[1]
        emits.append((emit[0], name, tuple(sorted(needs)), *emit[2:]))
        flow.produced(op, frozenset((name,)))
        return name

    for i, op in enumerate(workload.ops):
        if op.category in FREE:
            flow.produced(op, flow.needs(op))
            continue
        mm = op.matmul
        if mm is not None and mm.weight_operand:
            k_eff = length(mm.k, workload.precision.weights)
            vmm = pim(("vmm", f"vmm:{op.name}", i, k_eff, mm.n, mm.batch * mm.m), op, flow.needs(op))
            chunks = math.ceil(k_eff / row_elems)
            extra_flops = op.flops - 2.0 * mm.batch * mm.m * mm.k * mm.n  # bias add of a Gemm
            acc = (chunks - 1) * mm.batch * mm.m * mm.n + max(0.0, extra_flops)
            if acc > 0:
                asic(i, op, (i, acc, int(mm.batch * mm.m * mm.n * elem * (chunks + 1))), after=frozenset([vmm]))
            if op.role in ("k_proj", "v_proj", "qkv_proj") and op.block in causal and op.block not in kv_written:
                left = kv_pending.setdefault(op.block, {"k_proj", "v_proj"})
                a = workload.attention(op.block)
                # one projection writes both K and V: a fused QKV, or a fused KV (multi-head latent attention's
                # kv_b_proj, the block's k_proj and v_proj at once)
                both = op.role == "qkv_proj" or (a is not None and a.k_proj and a.k_proj == a.v_proj == op.name)
                left -= {"k_proj", "v_proj"} if both else {op.role}
                if not left:
                    # the new tokens' K and V go into the banks once both projections are done
                    k_and_v = flow.ready_after(kv_outputs.get(op.block, []))
                    name = f"kv_write:{op.block}"
                    if pending is not None and pending["name"] in k_and_v:
                        flush()
                    emits.append(("kv", name, tuple(sorted(k_and_v)), i))
                    kv_written[op.block] = name
        elif mm is not None:
            written = frozenset([kv_written[op.block]]) if op.block in kv_written else _NONE
            pim(("attn", f"attn:{op.name}", i), op, flow.needs(op) | written)
        elif op.category == "gather":
            pim(("gather", f"read:{op.name}", i), op, flow.needs(op))
        else:
            asic(i, op, (i, None, None))
    flush()
    return emits


# -- costs: the plan's tasks timed in program order (the command timer's refresh debt runs through them) ---------
class _Builder:
    """Times a plan's tasks and builds them (or reuses the session's equal ones)."""

    def __init__(self, target: PimTarget, session: PimSession) -> None:
        self.t = target
        self.session = session
        self.timer: AimTimer = session.timer
        self.counter: AimTimer = session.counter
        self.tck = target.standard.tck_s
        self.channels = target.channels.n
        self.tasks: list[Task] = []

    def _task(self, name: str, key: tuple, make: Any) -> None:
        """Append the task ``make()`` builds from ``key`` (every value its fields are computed from), or the same
        task of an earlier step of the session when that was built from an equal key (tasks are immutable)."""
        hit = self.session.tasks.get(name)
        if hit is not None and hit[0] == key:
            self.tasks.append(hit[1])
            return
        task = make()
        self.session.tasks[name] = (key, task)
        self.tasks.append(task)

    def asic_task(self, name: str, deps: tuple[str, ...], flops: float, sram_bytes: int, first: str,
                  block: str) -> None:
        """Append merged vector work on the ASIC."""
        def make() -> Task:
            work = vector_work(flops, sram_bytes, self.t)
            compute_j = flops * self.t.asic.energy_per_flop.si
            return Task(deps=deps, name=name, resource="asic", duration_s=work.seconds, energy_j=work.energy_j,
                        energy_by_action={"asic_compute": compute_j, "asic_sram": work.energy_j - compute_j},
                        bytes_by_level={"onchip_buffer": work.sram_bytes}, op=first, block=block, kind="asic")

        self._task(name, ("asic", deps, flops, sram_bytes, first, block), make)

    def pim_task(self, name: str, deps: tuple[str, ...], busiest: PimCounts, total: PimCounts | tuple[int, ...],
                 op: str, block: str) -> None:
        """Append a PIM task: time from the busiest channel, energy and bytes from all channels (``total``, counts
        or their :meth:`PimCounts.key`). Every channel burst crosses the PIM chips' pins to the ASIC, so the
        off-chip link carries the channel bytes."""
        counts = total.key() if isinstance(total, PimCounts) else total
        cycles = busiest.cycles

        def make() -> Task:
            return Task(deps=deps, name=name, resource="pim", duration_s=cycles * self.tck, **self.energy(counts),
                        op=op, block=block, kind="pim")

        self._task(name, ("pim", deps, cycles, counts, op, block), make)

    def energy(self, counts: tuple[int, ...]) -> dict[str, Any]:
        """A PIM task's energy fields from the all-channel counts (memoised per session)."""
        memo = self.session.energies
        hit = memo.get(counts)
        if hit is None:
            if len(memo) >= _ENERGY_MEMO:
                memo.clear()
            e = energy(PimCounts(*counts), self.t)
            levels = dict(e.bytes_by_level)
            levels["offchip_link"] = levels.get("channel", 0)
            hit = memo[counts] = {"energy_j": e.total_j, "energy_by_action": e.by_action, "bytes_by_level": levels}
        return hit

    def vmm(self, k: int, n: int, vectors: int) -> tuple[PimCounts, tuple[int, ...]]:
        """(busiest channel, all channels' :meth:`PimCounts.key`) of ``vectors`` VMMs of ``k x n`` spread over the
        channels."""
        channels = self.channels
        per, extra = divmod(n, channels)
        busiest = self.timer.vmm(k, per + (1 if extra else 0), repeat=vectors)
        key = (k, n, vectors)
        base = self.session.totals.get(key)
        if base is None:
            total = PimCounts()
            full = self.counter.vmm(k, per + 1) if extra else None
            part = self.counter.vmm(k, per) if per else None
            if full is not None:
                total.add(full, extra * vectors)
            if part is not None:
                total.add(part, (channels - extra) * vectors)
            base = self.session.totals[key] = total.key()
        return busiest, _with_ref(base, busiest.ref * channels)


def _with_ref(counts: tuple[int, ...], ref: int) -> tuple[int, ...]:
    """``counts`` (a :meth:`PimCounts.key`) with its ``ref`` field set to ``ref``."""
    return counts[:9] + (ref,) + counts[10:]


def _attentions(workload: Workload) -> dict[str, Any]:
    """Block name -> its attention facts, as :meth:`Workload.attention` answers (the first block of that name
    with attention)."""
    out: dict[str, Any] = {}
    if workload.ir is not None:
        for blk in workload.ir.blocks:
            if blk.attention is not None:
                out.setdefault(blk.name, blk.attention)
    return out


def _causal_self_attention(workload: Workload, attentions: dict[str, Any]) -> set[str]:
    """Names of the workload's causal self-attention blocks."""
    names = {o.block for o in workload.ops if o.role == "score"}
    return {n for n in names if (a := attentions.get(n)) is not None and a.causal and a.kind == "self"}


#: Plans a session keeps (a run alternates between few shapes: prefill, decode).
_PLANS = 8


def map_workload(workload: Workload, target: PimTarget, options: PimOptions | dict | None = None,
                 session: PimSession | None = None) -> Program:
    """The task DAG of ``workload`` on ``target`` (``session`` carries the timer and memos across a run's
    workloads; it must be a session of the same target and options)."""
    options = PimOptions.parse(options)
    if session is None:
        session = PimSession(target, options)
    elif session.target is not target and session.target != target or session.options != options:
        raise ValueError("map_workload: the session belongs to another target or options")
    attentions = _attentions(workload)
    causal = _causal_self_attention(workload, attentions)
    channels = target.channels.n
    lengths = session.lengths
    acts = workload.precision.activations

    def length(k: int, operand: str | None) -> int:
        key = (k, operand, acts)
        hit = lengths.get(key)
        if hit is None:
            hit = lengths[key] = _bf16_length(k, operand, workload, target, options)
        return hit

    ops = workload.ops
    plan_key = (workload.precision.weights, acts, frozenset(causal))
    plan = session.plans.get(plan_key)
    if plan is None or not plan.holds_for(ops):
        if len(session.plans) >= _PLANS:
            session.plans.clear()
        plan = session.plans[plan_key] = _Plan(ops, _plan(workload, causal, length, target.row_bytes // 2))
    b = _Builder(target, session)
    timer = b.timer
    isr = isinstance(timer, IsrTimer)
    for e in plan.emits:
        kind, name, deps = e[0], e[1], e[2]
        if kind == "asic":
            flops, sram = 0.0, 0
            for i, f, nbytes in e[5]:
                if f is None:
                    op = ops[i]
                    f, nbytes = op.flops, op.act_read_bytes + op.act_write_bytes + op.kv_read_bytes
                flops += f
                sram += nbytes
            b.asic_task(name, deps, flops, sram, e[3], e[4])
            continue
        op = ops[e[3]]
        if kind == "vmm":
            busiest, total = b.vmm(e[4], e[5], e[6])
        elif kind == "attn":
            busiest, total = _attention_counts(b, op, workload, attentions.get(op.block), op.block in causal, length,
                                               isr)
        elif kind == "gather":
            rows = max(1, math.ceil(op.act_write_bytes / max(1, target.row_bytes)))
            bursts = max(1, math.ceil(op.weight_bytes / rows / target.column_bytes)) if op.weight_bytes else 1
            busiest = total = timer.row_reads(rows, bursts)
        else:
            busiest, total = _kv_append(b, workload, attentions[op.block])
        b.pim_task(name, deps, busiest, total, op.name, op.block)
    resources = [Resource(name="pim", capacity=1, static_power_w=target.energy.background_per_channel.si * channels),
                 Resource(name="asic", capacity=1, static_power_w=target.asic.static_power.si)]
    return Program(resources=tuple(resources), tasks=tuple(b.tasks), levels=LEVELS)


def _attention_counts(b: _Builder, op: OpCost, workload: Workload, a: Any, causal: bool, length: Any,
                      isr: bool) -> tuple[PimCounts, PimCounts]:
    """(busiest channel, all channels) of an attention product against the KV cache in the banks: one VMM per
    (batch x head) and query row."""
    mm = op.matmul
    assert mm is not None
    channels = b.channels
    heads = mm.batch
    rows = mm.m
    per_channel = math.ceil(heads / channels)
    k_len, outputs = mm.k, mm.n
    k_len = length(k_len, workload.precision.kv_cache)
    if rows > 1 and causal:
        # causal prefill: query i attends to i+1 keys; average (n+1)/2 of the stored length
        if op.role == "score":
            outputs = math.ceil((outputs + 1) / 2)
        else:
            k_len = math.ceil((k_len + 1) / 2)
    if isr and a is not None and op.role in ("score", "pv"):
        # CENT's layout: keys token-major over every bank, V transposed; one program for all heads
        return _isr_attention(b, op.role, mm.batch // max(1, a.heads), a, k_len, outputs, rows)
    busiest = b.timer.vmm(k_len, outputs, repeat=per_channel * rows)
    total = PimCounts()
    total.add(b.counter.vmm(k_len, outputs), heads * rows)
    total.ref = busiest.ref * channels
    return busiest, total


def _bf16_length(k: int, operand: str | None, workload: Workload, target: PimTarget, options: PimOptions) -> int:
    """A dot product of length ``k`` over ``operand``-format values (weights or KV cache) as the bf16 VMM length
    with the same MAC commands and row bytes: ``k`` in bf16 mode, ``k x bf16 lanes / lanes`` in a variant's int8
    or ternary mode (:mod:`hardware.pim.mac_formats`), so the command timer needs no format of its own."""
    mode = mac_formats.mode_for(options.mac_format, operand or "bfloat16", workload.precision.activations or "bfloat16")
    if mode in (None, "bf16"):
        return k
    bf16_lanes = target.mac.lanes.n
    return max(1, math.ceil(k * bf16_lanes / mac_formats.lanes(mode, target.column_bytes, bf16_lanes)))


def _isr_attention(b: _Builder, role: str, batch: int, a: Any, k_len: int, outputs: int,
                   rows: int) -> tuple[PimCounts, PimCounts]:
    """(busiest channel, all channels) of a score (``k_len`` = head_dim, ``outputs`` = context) or P.V product
    (``k_len`` = context) of every head, ``batch`` sequences x ``rows`` query rows, as AiM instruction programs."""
    channels = b.t.channels.n
    repeat = max(1, a.heads // max(1, a.kv_heads))
    vectors = max(1, batch) * rows
    if role == "score":
        busiest = b.timer.attention_scores(outputs, a.head_dim, a.kv_heads, repeat, channels, vectors)
    else:
        busiest = b.timer.attention_context(k_len, a.v_head_dim or a.head_dim, a.kv_heads, repeat, channels, vectors)
    total = PimCounts()
    total.add(busiest, channels)  # lockstep: every channel runs the same program
    return busiest, total


def _kv_append(b: _Builder, workload: Workload, a: Any) -> tuple[PimCounts, PimCounts]:
    """(busiest channel, all channels) of writing the new tokens' K and V into the banks: per KV head one K row and
    ceil(v_head_dim/16) V rows (V transposed, buffered 16 tokens per 32-byte column; the values' head size is the
    keys' except in multi-head latent attention); ``a``: the block's attention."""
    kv_heads, head_dim = a.kv_heads, a.head_dim
    v_dim = a.v_head_dim or head_dim
    tokens = workload.batch * workload.seq
    channels = b.t.channels.n
    heads_per_channel = math.ceil(kv_heads / channels)
    k_bursts = math.ceil(head_dim * 2 / b.t.column_bytes)
    v_rows = math.ceil(v_dim / 16)
    if isinstance(b.timer, IsrTimer):  # CENT's layout as plain writes through the AiM controller
        busiest = b.timer.kv_append(tokens, head_dim, kv_heads, channels, v_head_dim=v_dim)
        total = PimCounts()
        total.add(busiest, channels)
    else:
        busiest = b.timer.row_writes(heads_per_channel * tokens, k_bursts)
        busiest.add(b.timer.row_writes(heads_per_channel * v_rows * tokens, 1))
        total = PimCounts()
        total.add(b.counter.row_writes(kv_heads * tokens, k_bursts))
        total.add(b.counter.row_writes(kv_heads * v_rows * tokens, 1))
    return busiest, total
