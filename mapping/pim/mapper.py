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
"""

from __future__ import annotations

import math
from typing import Any

from hardware.pim import mac_formats
from hardware.pim.aim import AimTimer, PimCounts, energy
from hardware.pim.aim_isr_timer import IsrTimer, has_isr
from hardware.pim.asic import vector_work
from hardware.pim.spec import PimTarget
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


class _Flow:
    """Which tasks produced each tensor so far: :class:`mapping.dataflow.Dataflow`'s rules (an op waits for the
    producers of its inputs; an op that is no task passes its inputs' producers on), with the set unions skipped
    where an input has no producer or adds none (this runs for every op of every decode step)."""

    def __init__(self) -> None:
        self.source: dict[str, frozenset[str]] = {}

    def ready_after(self, tensors: tuple[str, ...] | list[str]) -> frozenset[str]:
        """Tasks that produce ``tensors``."""
        get = self.source.get
        out: frozenset[str] | None = None
        for t in tensors:
            s = get(t)
            if s:
                out = s if out is None or out <= s else out if s <= out else out | s
        return _NONE if out is None else out

    def needs(self, op: OpCost) -> frozenset[str]:
        """Tasks that must finish before ``op`` can start (producers of its inputs)."""
        return self.ready_after(op.inputs)

    def produced(self, op: OpCost, task: str) -> None:
        """``op``'s outputs are ready when task ``task`` finishes."""
        done = frozenset((task,))
        for t in op.outputs:
            self.source[t] = done

    def passed_through(self, op: OpCost) -> None:
        """``op`` is no task: its outputs are ready when its inputs are."""
        done = self.ready_after(op.inputs)
        for t in op.outputs:
            self.source[t] = done


_NONE: frozenset[str] = frozenset()

#: Entries a session's energy memo holds before it starts over (attention counts change with every step).
_ENERGY_MEMO = 4096


class _Builder:
    """Accumulates tasks in program order, with their data dependencies."""

    def __init__(self, target: PimTarget, session: PimSession) -> None:
        self.t = target
        self.session = session
        self.timer: AimTimer = session.timer
        self.counter: AimTimer = session.counter
        self.tck = target.standard.tck_s
        self.channels = target.channels.n
        self.tasks: list[Task] = []
        self.flow = _Flow()
        self.pending_asic: dict[str, Any] | None = None

    # -- helpers ---------------------------------------------------------------------------------------------
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

    def flush_asic(self) -> None:
        """Emit the merged ASIC work of consecutive elementwise ops of one block."""
        p = self.pending_asic
        if p is None:
            return
        self.pending_asic = None
        deps = tuple(sorted(p["needs"]))

        def make() -> Task:
            work = vector_work(p["flops"], p["bytes"], self.t)
            compute_j = p["flops"] * self.t.asic.energy_per_flop.si
            return Task(deps=deps, name=p["name"], resource="asic", duration_s=work.seconds, energy_j=work.energy_j,
                        energy_by_action={"asic_compute": compute_j, "asic_sram": work.energy_j - compute_j},
                        bytes_by_level={"onchip_buffer": work.sram_bytes}, op=p["first"], block=p["block"],
                        kind="asic")

        self._task(p["name"], ("asic", deps, p["flops"], p["bytes"], p["first"], p["block"]), make)

    def asic(self, op: OpCost, flops: float, sram_bytes: int, after: frozenset[str] | None = None) -> None:
        """Queue vector work on the ASIC, merged with the previous op if it is in the same block; ``op``'s outputs
        are ready when the merged task ends."""
        p = self.pending_asic
        if p is not None and p["block"] != op.block:
            self.flush_asic()
            p = None
        if p is None:
            name = f"asic:{op.name}"
            p = self.pending_asic = {"name": name, "first": op.name, "block": op.block, "flops": 0.0, "bytes": 0,
                                     "needs": set(), "done": frozenset((name,))}
        p["flops"] += flops
        p["bytes"] += sram_bytes
        needs = self.flow.needs(op) if after is None else after
        if needs:
            p["needs"] |= needs - p["done"]
        done = p["done"]
        source = self.flow.source
        for t in op.outputs:
            source[t] = done

    def pim(self, name: str, op: OpCost, busiest: PimCounts, total: PimCounts | tuple[int, ...],
            after: frozenset[str] = frozenset()) -> str:
        """Emit a PIM task: time from the busiest channel, energy and bytes from all channels (``total``, counts
        or their :meth:`PimCounts.key`). Every channel burst crosses the PIM chips' pins to the ASIC, so the
        off-chip link carries the channel bytes. The task waits for ``op``'s inputs (and ``after``); ``op``'s
        outputs are ready when it ends."""
        needs = self.flow.needs(op) | after
        if self.pending_asic is not None and self.pending_asic["name"] in needs:
            self.flush_asic()
        self.pim_task(name, tuple(sorted(needs)), busiest, total, op.name, op.block)
        self.flow.produced(op, name)
        return name

    def pim_task(self, name: str, deps: tuple[str, ...], busiest: PimCounts, total: PimCounts | tuple[int, ...],
                 op: str, block: str) -> None:
        """Append a task on resource ``pim`` after ``deps``."""
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


def map_workload(workload: Workload, target: PimTarget, options: PimOptions | dict | None = None,
                 session: PimSession | None = None) -> Program:
    """The task DAG of ``workload`` on ``target`` (``session`` carries the timer and memos across a run's
    workloads; it must be a session of the same target and options)."""
    options = PimOptions.parse(options)
    if session is None:
        session = PimSession(target, options)
    elif session.target is not target and session.target != target or session.options != options:
        raise ValueError("map_workload: the session belongs to another target or options")
    b = _Builder(target, session)
    elem = 2  # the MAC datapath is bf16: PIM stores weights, KV and vectors in bf16
    attentions = _attentions(workload)
    causal = _causal_self_attention(workload, attentions)
    kv_pending: dict[str, set[str]] = {}  # block -> K/V projection roles still to come
    kv_written: dict[str, str] = {}  # block -> its kv_write task
    kv_outputs: dict[str, list[str]] = {}  # block -> the tensors its K/V projections write
    for o in workload.ops:
        if o.role in ("k_proj", "v_proj", "qkv_proj"):
            kv_outputs.setdefault(o.block, []).extend(o.outputs)
    channels = target.channels.n
    row_elems = target.row_bytes // elem
    lengths = session.lengths
    acts = workload.precision.activations

    def length(k: int, operand: str | None) -> int:
        key = (k, operand, acts)
        hit = lengths.get(key)
        if hit is None:
            hit = lengths[key] = _bf16_length(k, operand, workload, target, options)
        return hit

    isr = isinstance(b.timer, IsrTimer)
    for op in workload.ops:
        if op.category in FREE:
            b.flow.passed_through(op)
            continue
        mm = op.matmul
        if mm is not None and mm.weight_operand:
            k_eff = length(mm.k, workload.precision.weights)
            busiest, total = b.vmm(k_eff, mm.n, mm.batch * mm.m)
            vmm = b.pim(f"vmm:{op.name}", op, busiest, total)
            chunks = math.ceil(k_eff / row_elems)
            extra_flops = op.flops - 2.0 * mm.batch * mm.m * mm.k * mm.n  # bias add of a Gemm
            acc = (chunks - 1) * mm.batch * mm.m * mm.n + max(0.0, extra_flops)
            if acc > 0:
                b.asic(op, acc, int(mm.batch * mm.m * mm.n * elem * (chunks + 1)), after=frozenset([vmm]))
            if op.role in ("k_proj", "v_proj", "qkv_proj") and op.block in causal and op.block not in kv_written:
                left = kv_pending.setdefault(op.block, {"k_proj", "v_proj"})
                left -= {"k_proj", "v_proj"} if op.role == "qkv_proj" else {op.role}
                if not left:
                    kv_written[op.block] = _kv_append(b, op, workload, attentions.get(op.block),
                                                      kv_outputs.get(op.block, []))
        elif mm is not None:
            # attention products against the KV cache in the banks: one VMM per (batch x head) and query row
            heads = mm.batch
            rows = mm.m
            per_channel = math.ceil(heads / channels)
            k_len, outputs = mm.k, mm.n
            k_len = length(k_len, workload.precision.kv_cache)
            if rows > 1 and op.block in causal:
                # causal prefill: query i attends to i+1 keys; average (n+1)/2 of the stored length
                if op.role == "score":
                    outputs = math.ceil((outputs + 1) / 2)
                else:
                    k_len = math.ceil((k_len + 1) / 2)
            a = attentions.get(op.block)
            if isr and a is not None and op.role in ("score", "pv"):
                # CENT's layout: keys token-major over every bank, V transposed; one program for all heads
                busiest, total = _isr_attention(b, op.role, mm.batch // max(1, a.heads), a, k_len, outputs, rows)
            else:
                busiest = b.timer.vmm(k_len, outputs, repeat=per_channel * rows)
                total = PimCounts()
                total.add(b.counter.vmm(k_len, outputs), heads * rows)
                total.ref = busiest.ref * channels
            written = frozenset([kv_written[op.block]]) if op.block in kv_written else frozenset()
            b.pim(f"attn:{op.name}", op, busiest, total, after=written)
        elif op.category == "gather":
            rows = max(1, math.ceil(op.act_write_bytes / max(1, target.row_bytes)))
            bursts = max(1, math.ceil(op.weight_bytes / rows / target.column_bytes)) if op.weight_bytes else 1
            reads = b.timer.row_reads(rows, bursts)
            b.pim(f"read:{op.name}", op, reads, reads)
        else:
            sram = op.act_read_bytes + op.act_write_bytes + op.kv_read_bytes
            b.asic(op, op.flops, sram)
    b.flush_asic()
    resources = [Resource(name="pim", capacity=1, static_power_w=target.energy.background_per_channel.si * channels),
                 Resource(name="asic", capacity=1, static_power_w=target.asic.static_power.si)]
    return Program(resources=tuple(resources), tasks=tuple(b.tasks), levels=LEVELS)


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
        busiest = b.timer.attention_context(k_len, a.head_dim, a.kv_heads, repeat, channels, vectors)
    total = PimCounts()
    total.add(busiest, channels)  # lockstep: every channel runs the same program
    return busiest, total


def _kv_append(b: _Builder, op: OpCost, workload: Workload, a: Any, kv_tensors: list[str]) -> str:
    """Write the new tokens' K and V into the banks: per KV head one K row and ceil(head_dim/16) V rows
    (V transposed, buffered 16 tokens per 32-byte column). Waits for the K and V projections (``op`` is the
    later of them; ``kv_tensors`` what the block's projections write, ``a`` its attention facts); returns the
    task's name."""
    if a is None:
        return ""
    kv_heads, head_dim = a.kv_heads, a.head_dim
    tokens = workload.batch * workload.seq
    channels = b.t.channels.n
    heads_per_channel = math.ceil(kv_heads / channels)
    k_bursts = math.ceil(head_dim * 2 / b.t.column_bytes)
    v_rows = math.ceil(head_dim / 16)
    if isinstance(b.timer, IsrTimer):  # CENT's layout as plain writes through the AiM controller
        busiest = b.timer.kv_append(tokens, head_dim, kv_heads, channels)
        total = PimCounts()
        total.add(busiest, channels)
    else:
        busiest = b.timer.row_writes(heads_per_channel * tokens, k_bursts)
        busiest.add(b.timer.row_writes(heads_per_channel * v_rows * tokens, 1))
        total = PimCounts()
        total.add(b.counter.row_writes(kv_heads * tokens, k_bursts))
        total.add(b.counter.row_writes(kv_heads * v_rows * tokens, 1))
    k_and_v = b.flow.ready_after(kv_tensors)
    name = f"kv_write:{op.block}"
    if b.pending_asic is not None and b.pending_asic["name"] in k_and_v:
        b.flush_asic()
    b.pim_task(name, tuple(sorted(k_and_v)), busiest, total, op.name, op.block)
    return name
