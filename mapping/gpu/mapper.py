"""Lower a workload onto one GPU (or ``tp`` tensor-parallel GPUs): group ops into kernels, time them with the
kernel models of :mod:`hardware.gpu`, and emit them on a compute stream (and a communication stream).

Grouping, per IR block in workload order:

- every matrix product is a GEMM kernel on the tensor cores in its operands' format (``op.matmul`` gives batch,
  m, k, n), whatever block it sits in, a product of two activations included;
- in an attention block, the core (score ... PV) and the ops between the projections and it are ONE attention
  kernel: FlashAttention-2 in prefill; in decode ``options.attention`` (``naive``, ``flashdecoding`` (default) or
  ``lean``); the block's other elementwise bytes (bias adds, rotary, head transposes) are streamed by that
  kernel's prologue;
- the remaining ops of a block (norms, residual adds, activations, gathers, movement) are one fused memory-bound
  kernel; views and folded ops cost nothing.

Options (:class:`mapping.gpu.options.GpuOptions`): ``mode`` (``fast``: every kernel's grid timed in closed-form
waves; ``detailed``: GEMM and attention grids timed block by block on the SMs, L2 and DRAM by
:mod:`hardware.gpu.tile_sim`), ``tp`` (tensor parallelism: GEMMs and heads split over ``tp`` GPUs, a ring
all-reduce after each attention and MLP block), ``comm_chunks`` (split the GEMM before each all-reduce into pieces
whose reductions overlap the next piece), ``attention``, ``tf32`` (fp32 GEMMs on tensor cores),
``gemm_schedule`` (``stream-k``: the stream-K hybrid among the GEMM candidates), ``kv_update`` (``concat``: a
copy kernel re-concatenating the KV cache before each attention with a past; a graph's own past/new Concat is
charged as written, or, in place, as the new token's write only), ``launch``
(``stream``: every kernel launched from the host, at least ``launch_overhead`` each; ``graph``: replayed from a
CUDA graph, at least ``graph_launch_overhead``), ``stack`` (host time per op and per step of the software
that issues the kernels, on a ``host`` resource: :mod:`mapping.gpu.stack`; ``host_op_us`` / ``host_step_us``
replace its published host times), ``kv_heads`` (override the KV
head count inferred from the K projection).

Streams: kernels run in order on resource ``gpu`` (one CUDA stream); all-reduces run on resource ``link`` (a
communication stream) after the kernel whose output they reduce, and the next kernel that reads the reduced
tensor waits for them. Durations are per GPU, energies and traffic are summed over the ``tp`` GPUs, idle power is
the ``gpu`` resource's static power.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from hardware.dtypes import BITS
from hardware.gpu import lowbit
from hardware.gpu.attention import DECODE_KERNELS, flash_attention2
from hardware.gpu.collectives import all_reduce, all_to_all
from hardware.gpu.gemm import gemm
from hardware.gpu.kernels import KernelResult, energy_by_action, memory_bound, sequence
from hardware.gpu.spec import GpuTarget
from mapping.gpu.options import GpuOptions
from mapping.gpu.stack import host_costs
from mapping.op_costs import OpCost
from mapping.op_table import OP
from mapping.parallel import ROW_PARALLEL, SHARDED_KINDS, expert_reductions, mixer_out_projections
from mapping.program import Program, ProgramBuilder, Resource
from mapping.workloads import Workload

FREE = {"view", "folded"}


def memory_capacity_bytes(target: GpuTarget) -> int:
    """DRAM of one GPU (bytes): what the weights and KV cache of one GPU's share must fit in."""
    return int(target.dram_capacity.si)


#: Memory levels of a GPU program and their roles.
LEVELS = {"dram": "dram", "l2": "cache", "link": "link"}


def map_workload(workload: Workload, target: GpuTarget, options: GpuOptions | dict | None = None,
                 memo: dict[tuple, Any] | None = None) -> Program:
    """The kernels of ``workload`` on ``target`` as a :class:`Program`: one compute stream ``gpu`` and, with
    tensor parallelism, a communication stream ``link`` for the all-reduces.

    ``memo`` caches kernel timings across the workloads of one run (the same target and options; the decode
    steps of a generation launch the same GEMMs): kernel models are pure functions of the arguments they are
    keyed by, so a shared memo changes no number."""
    opts = GpuOptions.parse(options)
    tp = opts.tp
    if opts.launch == "graph" or opts.stack == "graph":
        target = target.with_graph_launches()
    if opts.dram == "standard":
        target = target.with_standard_dram()
    per_op, per_step = host_costs(opts.stack, opts.host_op_us, opts.host_step_us, opts.host_dispatches is not None)
    ctx = _Context(workload, target, tp, opts.attention, opts.tf32, opts.kv_heads, opts.mode, opts.comm_chunks,
                   opts.quant_group, opts.quant_kernel, opts.act_quant, opts.gemm_schedule, opts.kv_update, memo,
                   opts.tp_lm_head, opts.allreduce)
    builder = ProgramBuilder()
    compute: str | None = None  # the last kernel on the compute stream
    waiting: list[str] = []  # all-reduces the next compute kernel consumes
    host: str | None = None  # the last host task (stacks with host time)
    if per_step:
        host = builder.add(after=[], name="0000.host.step", resource="host", duration_s=per_step, energy_j=0.0,
                           op="host.step", block="host", kind="host").name
    runs = [(block, ops, [r for r in ctx.run_kernels(block, kind, ops) if r.launches])
            for block, kind, ops in block_runs(workload.ops)]
    if per_op and opts.host_dispatches:  # the framework's dispatches per pass, spread over the ops that launch work;
        # a pipeline stage takes its share of the pass's, by its share of the pass's ops
        dispatched = sum(len(ops) for _, ops, kernels in runs if kernels)
        share = len(workload.ops) / workload.pass_ops if workload.pass_ops else 1.0
        per_op *= opts.host_dispatches * share / dispatched if dispatched else 0.0
    for block, ops, kernels in runs:
        for result in kernels:
            if per_op:  # eager: the run's ops are dispatched by the host, spread over its kernels. The cache
                # update's own ops (Hugging Face's two torch.cat per layer, gpt-fast's two index_put) are in neither
                # example graph, and the per-op time was derived over the graph's ops, so they add no host task here.
                # eager_dispatch=kernels: a framework's own fused modules dispatch once per launched kernel
                dispatches = result.launches if opts.eager_dispatch == "kernels" else len(ops) / len(kernels)
                host = builder.add(after=[host] if host else [], name=f"{len(builder.tasks):04d}.host.dispatch",
                                   resource="host", duration_s=per_op * dispatches, energy_j=0.0,
                                   op=f"host.dispatch.{block or 'other'}", block="host", kind="host").name
            actions, traffic, energy, link, kernel_kind = ctx.task_facts(result)
            chunk = result.detail.get("chunk", 0)  # 1, 2, ...: a piece of a GEMM split to overlap its reduction
            if link:  # on the communication stream, after the GEMM (chunk) whose output it reduces
                after = [compute] if compute else []
            else:  # on the compute stream, after the previous kernel, the reductions it reads and its host task
                after = ([compute] if compute else []) + (waiting if chunk <= 1 else []) + ([host] if host else [])
                if chunk <= 1:
                    waiting = []
            task = builder.add(after=after, name=f"{len(builder.tasks):04d}.{result.name}",
                               resource="link" if link else "gpu", duration_s=result.time_s,
                               energy_j=energy, bytes_by_level=traffic, energy_by_action=actions,
                               op=result.name, block=block, kind=kernel_kind,
                               flops=result.flops * tp, bound=result.bound, occupancy=result.occupancy)
            if link:
                waiting.append(task.name)
            else:
                compute = task.name
    resources = [Resource(name="gpu", capacity=1, static_power_w=target.idle_power.si * tp)]
    if tp > 1 or any(t.resource == "link" for t in builder.tasks):
        resources.append(Resource(name="link", capacity=1))
    if host is not None:
        resources.append(Resource(name="host", capacity=1))
    return builder.build(resources, LEVELS)


def _kind(name: str) -> str:
    """Kernel kind from the mapper's kernel name: attention, fused (dequantisation kernels too), all_reduce, lm_head
    or gemm."""
    last = name.rsplit(".", 1)[-1]
    if last in ("attention", "fused", "all_reduce"):
        return last
    if last in ("dequant", "act_quant"):  # separate (de)quantisation kernels: memory-bound, like the fused ones
        return "fused"
    if last in ("dispatch", "combine"):
        return "all_to_all"
    return "lm_head" if "lm_head" in name else "gemm"


def block_runs(ops: Iterable[OpCost]) -> list[tuple[str, str, list[OpCost]]]:
    """Runs of consecutive costed ops of the same block (ops outside any block form their own runs)."""
    runs: list[tuple[str, str, list[OpCost]]] = []
    for op in ops:
        if op.category in FREE:
            continue
        if runs and runs[-1][0] == op.block:
            runs[-1][2].append(op)
        else:
            runs.append((op.block, op.block_kind, [op]))
    return runs


class _Context:
    """What every kernel of one mapping needs: the workload, target and options."""

    def __init__(self, workload: Workload, target: GpuTarget, tp: int, attention: str, tf32: bool,
                 kv_heads: int | None, mode: str = "fast", comm_chunks: int = 1, quant_group: int = 128,
                 quant_kernel: str = "fused", act_quant: str = "per-token", gemm_schedule: str = "data-parallel",
                 kv_update: str = "in-place", memo: dict[tuple, Any] | None = None,
                 tp_lm_head: str = "vocab-parallel", allreduce: str = "custom") -> None:
        self.w, self.t, self.tp, self.attention, self.tf32, self.mode = workload, target, tp, attention, tf32, mode
        self.tp_lm_head, self.allreduce = tp_lm_head, allreduce
        self._moe = expert_reductions(workload)
        #: stacked expert blocks (one block holds all experts' weights, gathered per token, then batched matrix
        #: products whose B operand is the gathered weights): their products are split over the GPUs as weights are
        self._stacked = frozenset(b.name for b in workload.ir.blocks if b.attrs.get("stacked")) if workload.ir else frozenset()
        #: per block, its last weight GEMM in the workload: the one whose output is all-reduced (a block whose ops
        #: come in several runs, interleaved with another block's, is reduced once, not once per run)
        self._reduced_op = {o.block: id(o) for o in workload.ops if self._sharded(o)}
        #: a token mixer's (Mamba's, a short convolution's) last projection: split by its input rows over the GPUs
        #: as an attention block's output projection is, its per-channel state and convolution work by channels in
        #: between (Megatron-LM's Mamba layer: in_proj by columns, out_proj by rows, one all-reduce)
        self._row_ops = mixer_out_projections(workload)
        self.schedule = gemm_schedule
        self.kv_update = kv_update
        self.kv_heads = int(kv_heads) if kv_heads else None
        self.comm_chunks = comm_chunks
        self.quant_group, self.quant_kernel, self.act_quant = quant_group, quant_kernel, act_quant
        self._quantised: set[str] = set()  # W8A8 GEMM inputs already quantised (Q/K/V and gate/up share theirs)
        self._memo: dict[tuple, Any] = {} if memo is None else memo
        self._k_projs: dict[str, OpCost] | None = None  # per block: its first K (or fused QKV) projection
        # ids of kernel results the memo holds (and so keeps alive): only their task facts are worth keeping
        self._reused: set[int] = self._memo.setdefault(("reused",), set())

    def _sharded(self, op: OpCost) -> bool:
        """Whether matrix product ``op`` multiplies by weights, which tensor parallelism splits: a weight operand,
        or a stacked expert block's product with its gathered expert weights (role up / down)."""
        return op.matmul is not None and (op.matmul.weight_operand or (op.block in self._stacked
                                                                      and op.role in ("up", "down")))

    def _once(self, key: tuple, name: str, make) -> KernelResult:  # noqa: ANN001 - a zero-argument factory
        """``make()`` once per ``key`` within this mapping, or within the run when the mapping was given a memo
        (the repeated layers of a model and the steps of a generation launch the same kernels); each call gets
        its own copy, named ``name`` (kernel models are pure functions of their
        arguments)."""
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = make()
        return dataclasses.replace(hit, name=name, detail=dict(hit.detail))

    def causal(self, block: str) -> bool:
        """Whether attention block ``block`` is causal (from the IR; a KV cache alone says nothing: T5's encoder)."""
        info = self.w.attention(block)
        if info is not None:
            return info.causal
        return self.w.kv_cache_bytes > 0  # no IR at hand: only causal (and cross) attention keeps a cache

    def dtype(self, elem_bytes: float) -> str:
        """Compute format of a kernel whose activations take ``elem_bytes`` each."""
        acts = self.w.precision.activations or ""
        if elem_bytes >= 4:
            return "tf32" if self.tf32 else "fp32"
        if elem_bytes >= 2:
            return "bf16" if acts == "bfloat16" else "fp16"
        if acts.startswith("float4"):
            return "fp4"
        return "fp8" if acts.startswith("float8") else "int8"

    def task_facts(self, result: KernelResult) -> tuple[Mapping[str, float], Mapping[str, int], float, bool, str]:
        """A kernel's task facts over the ``tp`` GPUs: energy by action (J), bytes by level (both read-only),
        their energy sum, whether it runs on the link and its kind; kept for the kernels of memoised runs, which
        later workloads reuse."""
        key = ("facts", id(result))
        hit = self._memo.get(key)
        if hit is not None and hit[0] is result:
            return hit[1]
        tp = self.tp
        actions = {k: v * tp for k, v in energy_by_action(self.t, result).items()}
        link = result.bound == "link"
        traffic = {"link" if link else "dram": int(result.dram_bytes * tp)}
        if result.l2_bytes:
            traffic["l2"] = int(result.l2_bytes * tp)
        facts = (MappingProxyType(actions), MappingProxyType(traffic), sum(actions.values()), link, _kind(result.name))
        if id(result) in self._reused and len(self._memo) < RUN_MEMO_LIMIT:
            self._memo[key] = (result, facts)  # keeps the result alive: its id is not reused while the memo lives
        return facts

    def run_kernels(self, block: str, kind: str, ops: list[OpCost]) -> list[KernelResult]:
        """:meth:`kernels`, reused for a run of the very op objects an earlier workload of this memo's run lowered
        (a generation's decode steps share every op but the attention cores they re-cost over the grown context).
        Runs with an attention core and W8A8 runs (whose input quantisation depends on the runs before) are
        always lowered; the memo keeps the ops it was keyed by alive, so their ids cannot be reused."""
        acts = self.w.precision.activations or ""
        if kind == "attention" or acts in W8A8_ACTIVATIONS:
            return self.kernels(block, kind, ops)
        key = ("run", block, kind, self.w.precision.weights, acts, *map(id, ops))
        hit = self._memo.get(key)
        if hit is not None:
            return hit[1]
        out = self.kernels(block, kind, ops)
        if len(self._memo) < RUN_MEMO_LIMIT:
            self._memo[key] = (tuple(ops), out)
            self._reused.update(id(r) for r in out)
        return out

    def kernels(self, block: str, kind: str, ops: list[OpCost]) -> list[KernelResult]:
        """The kernels of one run of a block's ops, in stream order.

        Every matrix product is a GEMM on the matrix units (whatever block it sits in); the exception is an
        attention block's core (score ... PV), which is one attention kernel.
        """
        label = block or "other"
        if kind == "all_to_all":  # expert parallelism's dispatch/combine (mapping.techniques.moe): on the link
            return [all_to_all(self.t, o.act_read_bytes, f"{label}.{o.name.rsplit('.', 1)[-1]}") for o in ops]
        core = self._core_names(ops) if kind == "attention" else set()
        attention = bool(core)
        gemms = [o for o in ops if o.matmul is not None and o.name not in core]
        picked = {id(o) for o in gemms}
        rest = [o for o in ops if id(o) not in picked]
        out: list[KernelResult] = []
        weighted = [o for o in gemms if self._sharded(o)]
        reduces = self.tp > 1 and kind in SHARDED_KINDS and block not in self._moe.skipped
        last = next((o for o in weighted if id(o) == self._reduced_op.get(block)), None) if reduces else None
        if attention:
            out.extend(self.gemm(o, label) for o in gemms if o.role != "o_proj" and o is not last)
            out.append(self.attention_kernel(label, rest))
            out.extend(self.gemm(o, label) for o in gemms if o.role == "o_proj" and o is not last)
        else:
            out.extend(self.gemm(o, label) for o in gemms if o is not last)
            if rest:
                out.append(self.fused(label, kind, rest))
        if last is not None:
            out.extend(self.reduced_gemm(last, label, self._moe.bytes.get(block)))
        return [p for r in out for p in (r.detail["parts"] if "parts" in r.detail and "chunk" not in r.detail else [r])]

    def reduced_gemm(self, op: OpCost, label: str, reduced_bytes: float | None = None) -> list[KernelResult]:
        """The block's last GEMM and the all-reduce of its output (``reduced_bytes``, when given: a MoE layer's
        combined output, :func:`mapping.parallel.expert_reductions`); with ``comm_chunks`` = C > 1 the GEMM runs
        as C pieces over its rows, each piece's all-reduce on the link while the next piece computes (the
        decomposition of Wang et al., ASPLOS 2023, "Overlap communication with dependent computation via
        decomposition in large deep learning models"; every piece re-reads the GEMM's weights)."""
        mm = op.matmul
        assert mm is not None
        rows = mm.batch * mm.m
        chunks = max(1, min(self.comm_chunks, rows))
        nbytes = op.act_write_bytes if reduced_bytes is None else reduced_bytes
        if chunks == 1:
            return [self.gemm(op, label), all_reduce(self.t, nbytes, self.tp, f"{label}.all_reduce", self.allreduce)]
        out: list[KernelResult] = []
        for i in range(chunks):
            part = rows // chunks + (1 if i < rows % chunks else 0)
            g = self.gemm(op, label, rows=part)
            g.detail["chunk"] = i + 1
            r = all_reduce(self.t, nbytes * part / rows, self.tp, f"{label}.all_reduce", self.allreduce)
            r.detail["chunk"] = i + 1
            out += [g, r]
        return out

    def gemm(self, op: OpCost, label: str, rows: int | None = None) -> KernelResult:
        """A GEMM kernel of matrix product ``op`` (``rows``: only that many of its ``batch x m`` rows).

        A product of two activations (no weight operand) is not split over tensor-parallel GPUs."""
        reuse = rows is None and (self.w.precision.activations or "") not in W8A8_ACTIVATIONS
        if reuse:  # the same op object lowered before in this memo's run (a decode step's projections)
            key = ("op", id(op), label, self.w.precision.weights, self.w.precision.activations)
            hit = self._memo.get(key)
            if hit is not None:
                return hit[1]
        result = self._gemm(op, label, rows)
        if reuse and len(self._memo) < RUN_MEMO_LIMIT:
            self._memo[key] = (op, result)  # keeps the op alive: its id is not reused while the memo lives
            self._reused.add(id(result))
        return result

    def _gemm(self, op: OpCost, label: str, rows: int | None) -> KernelResult:
        mm = op.matmul
        assert mm is not None
        a_elem = _elem(op.act_write_bytes, mm.batch * mm.m * mm.n) or 2.0
        if mm.weight_operand:
            b_elem = _elem(op.weight_bytes, mm.batch * mm.k * mm.n) or a_elem
        else:
            b_elem = _elem(op.act_read_bytes + op.kv_read_bytes, mm.batch * (mm.m * mm.k + mm.k * mm.n)) or a_elem
        batch, m, k, n = mm.batch, mm.m, mm.k, mm.n
        share = 1.0
        if rows is not None:  # a piece of the rows: fold the batch into M
            share = rows / (mm.batch * mm.m)
            batch, m = 1, rows
        replicated = self.tp_lm_head == "replicated" and op.block_kind == "lm_head"
        gathered = not mm.weight_operand and self._sharded(op)  # B is a stacked expert block's gathered weights
        tp = self.tp if (mm.weight_operand or gathered) and not replicated else 1
        if self.tp > 1 and not mm.weight_operand and op.block_kind == "mixer" and batch >= self.tp:
            heads = -(-batch // self.tp)  # a mixer's state products run per head: this GPU's heads
            share, batch = share * heads / batch, heads
        if tp > 1:
            if op.role in ROW_PARALLEL or op.name in self._row_ops:
                k = max(1, -(-k // tp))
            else:
                n = max(1, -(-n // tp))
        act_read = op.act_read_bytes
        if gathered and tp > 1:  # this GPU's slice of the gathered weights
            b_read = min(act_read, mm.batch * mm.k * mm.n * b_elem)
            act_read = act_read - b_read + b_read / tp
        dram = op.weight_bytes / tp + (act_read + op.act_write_bytes + op.kv_read_bytes) * share
        # the compute format follows the operands as the kernel reads them (an int8 x int8 MatMulInteger runs on
        # int8 tensor cores although it writes int32), else the activations' storage size
        a_read = BITS[mm.a_dtype] / 8 if mm.a_dtype in BITS and BITS[mm.a_dtype] else a_elem
        compute = self.dtype(a_read)
        name = f"{label}.{op.role or op.op_type.lower()}"
        wfmt = mm.b_dtype if mm.weight_operand else ""
        if not lowbit.needs_dequant(wfmt, compute):
            g = self._once(("gemm", batch, m, k, n, compute, a_read, b_elem, a_elem, dram), name,
                           lambda: gemm(self.t, batch, m, k, n, compute, a_read, b_elem, a_elem, dram, name=name,
                                        mode=self.mode, schedule=self.schedule))
            source = op.inputs[0] if op.inputs else op.name
            if not (mm.weight_operand and compute in ("int8", "fp8") and self.act_quant != "fused"
                    and (self.w.precision.activations or "") in W8A8_ACTIVATIONS) or source in self._quantised:
                return g
            self._quantised.add(source)
            # W8A8: the GEMM's 16-bit input is quantised by a kernel of its own first (lowbit module docstring)
            q = self._once(("act_quant", batch * m, k, compute, self.act_quant), f"{name}.act_quant",
                           lambda: lowbit.act_quant_kernel(self.t, f"{name}.act_quant", batch * m, k, compute,
                                                           self.act_quant))
            return sequence(f"{name}.quant+gemm", [q, g], {"parts": [q, g]})
        parts = self._lowbit_gemm(op, name, wfmt, compute, batch, m, k, n, a_read, b_elem, a_elem, dram)
        if len(parts) == 1:
            return parts[0]
        # the separate path: two kernels, listed one by one by kernels() (as one result inside a chunked GEMM)
        return sequence(f"{name}.dequant+gemm", parts, {"parts": parts})

    def _lowbit_gemm(self, op: OpCost, name: str, wfmt: str, compute: str, batch: int, m: int, k: int, n: int,
                     a_read: float, b_elem: float, a_elem: float, dram: float) -> list[KernelResult]:
        """A GEMM whose weights are stored in ``wfmt`` and computed in ``compute``: one fused kernel that dequantises
        in registers, or a dequantisation kernel and a plain GEMM (``quant_kernel``; :mod:`hardware.gpu.lowbit`).
        ``k x n`` is this GPU's share of the weight; its group scales are added when the workload has none."""
        # a float weight given a low-bit format by --weights has no scales in the workload yet (MatMulNBits and QDQ
        # graphs count theirs)
        overridden = op.op_type in lowbit.PLAIN_MATMULS and self.w.precision.weights == wfmt
        scales = lowbit.scale_bytes(k, n, self.quant_group) if overridden else 0.0
        instructions = lowbit.DEQUANT_INSTRUCTIONS[wfmt]
        tagged = f"{name}.{lowbit.tag(wfmt, compute)}"
        if self.quant_kernel == "fused":
            r = gemm(self.t, batch, m, k, n, compute, a_read, b_elem, a_elem, dram + scales, name=tagged,
                     mode=self.mode, dequant=instructions, schedule=self.schedule)
            r.detail.update({"dequant": wfmt, "group": self.quant_group})
            return [r]
        stored = k * n * b_elem + scales
        dq = lowbit.dequant_kernel(self.t, f"{name}.dequant", k * n, wfmt, stored, compute)
        native = lowbit.COMPUTE_BYTES[compute]
        plain = gemm(self.t, batch, m, k, n, compute, a_read, native, a_elem, dram - k * n * b_elem + k * n * native,
                     name=name, mode=self.mode, schedule=self.schedule)
        return [dq, plain]

    def attention_kernel(self, label: str, ops: list[OpCost]) -> KernelResult:
        score = next(o for o in ops if o.role == "score")
        mm = score.matmul
        assert mm is not None
        batch = self.w.batch
        heads = max(1, mm.batch // batch)
        head_dim, q_len, kv_len = mm.k, mm.m, mm.n
        act = _elem(score.act_write_bytes, mm.batch * q_len * kv_len) or 2.0
        kv = self.w.kv_bytes_per_value or _elem(score.kv_read_bytes, mm.batch * kv_len * head_dim) or act
        kv_heads = self.kv_heads or self._kv_heads(label, heads, head_dim) or heads
        heads_gpu = max(1, heads // self.tp)
        kv_gpu = max(1, kv_heads // self.tp)
        if heads_gpu % kv_gpu:
            kv_gpu = heads_gpu
        dtype = self.dtype(act)
        name = f"{label}.attention"
        if self.w.phase == "decode":
            fn = DECODE_KERNELS[self.attention]
            kv_format = self.w.precision.kv_cache or ""
            quantised = kv_format in lowbit.DEQUANT_INSTRUCTIONS and kv < act
            if quantised:  # the kernel converts the packed K and V to its compute format: named in the kernel table
                name = f"{label}.kv-{lowbit.short_name(kv_format)}.attention"
            extra = {"kv_format": kv_format} if self.attention == "mmha" else {}  # MMHA's conversion is by format
            r = self._once(("decode_attention", batch, heads_gpu, kv_gpu, kv_len, head_dim, kv, act, q_len, dtype,
                            kv_format), name,
                           lambda: fn(self.t, batch, heads_gpu, kv_gpu, kv_len, head_dim, kv, act, q_len=q_len,
                                      **({"dtype": dtype} if self.attention != "naive" else {}), name=name,
                                      mode=self.mode, **extra))
            if quantised and self.attention != "mmha":  # MMHA converts its cache itself (hardware.gpu.attention)
                r = lowbit.kv_dequant(self.t, r, 2.0 * batch * kv_gpu * kv_len * head_dim, kv_format)
        else:
            causal = self.causal(label)
            r = self._once(("flash", batch, heads_gpu, kv_gpu, q_len, kv_len, head_dim, kv, act, causal, dtype), name,
                           lambda: flash_attention2(self.t, batch, heads_gpu, kv_gpu, q_len, kv_len, head_dim, kv, act,
                                                    causal=causal, dtype=dtype, name=name, mode=self.mode))
        # elementwise ops between the projections and the core (bias adds, rotary, head transposes) are streamed
        # by the kernel's prologue; the core's own traffic (score..pv) is the kernel's and is not added again
        core = self._core_names(ops)
        # a graph's own Concat of past and new K/V (ONNX decoders with past_* inputs) moves the whole cache as
        # written; in place (the default) it only writes the new token's K/V into the cache
        past_cats = {o.name for o in ops if o.name not in core and o.op_type == OP.Concat and o.kv_read_bytes}
        in_place = self.kv_update == "in-place"
        prologue = sum(o.bytes - (2 * o.kv_read_bytes if in_place and o.name in past_cats else 0)
                       for o in ops if o.name not in core)
        if prologue:
            r.time_s += prologue / self.tp / self.t.achievable_dram_bandwidth
            r.dram_bytes += prologue / self.tp
        r.detail.update({"heads": heads_gpu, "kv_heads": kv_gpu, "kv_len": kv_len, "q_len": q_len})
        past = kv_len - q_len
        info = self.w.attention(label)
        cross = info is not None and info.kind == "cross"  # encoder K/V: computed once, never concatenated
        if self.kv_update == "concat" and past > 0 and not cross and not past_cats:
            # the cache grows by concatenation (Hugging Face's DynamicCache and legacy tuples: torch.cat; an ONNX
            # graph's Concat of past and new K/V): the past K and V are read and the present ones written, in their
            # stored format, before the attention reads them again
            copied = 2.0 * batch * kv_gpu * head_dim * kv * (past + kv_len)
            cat = self._once(("kv_concat", copied), f"{label}.kv_concat",
                             lambda: memory_bound(self.t, f"{label}.kv_concat", copied))
            return sequence(name, [cat, r], {**r.detail, "parts": [cat, r]})
        return r

    @staticmethod
    def _core_names(ops: list[OpCost]) -> set[str]:
        """Ops from the score matmul to the PV matmul (their traffic is the attention kernel's own)."""
        names = [o.name for o in ops]
        roles = [o.role for o in ops]
        if "score" in roles and "pv" in roles:
            return set(names[roles.index("score"):roles.index("pv") + 1])
        return set()

    def _kv_heads(self, label: str, heads: int, head_dim: int) -> int | None:
        """KV heads of an attention block from its K (or fused QKV) projection's output width."""
        if self._k_projs is None:  # one pass over the workload's ops for all its blocks
            self._k_projs = {}
            for op in self.w.ops:
                if op.matmul is not None and op.role in ("k_proj", "qkv_proj"):
                    self._k_projs.setdefault(op.block, op)
        op = self._k_projs.get(label)
        if op is None or not head_dim:
            return None
        assert op.matmul is not None
        if op.role == "k_proj":
            return max(1, op.matmul.n // head_dim)
        return max(1, (op.matmul.n // head_dim - heads) // 2)

    def fused(self, label: str, kind: str, ops: list[OpCost]) -> KernelResult:
        bytes_ = sum(o.bytes for o in ops)
        flops = sum(o.flops for o in ops)
        if self.tp > 1 and kind in SHARDED_KINDS:
            bytes_, flops = bytes_ / self.tp, flops / self.tp
        return memory_bound(self.t, f"{label}.fused", bytes_, flops)


#: Entries a run's memo holds at most (a graph whose steps re-cost every op shares no op objects between steps).
RUN_MEMO_LIMIT = 20000

#: Activation formats of W8A8 GEMMs (their inputs are quantised by a kernel first: hardware.gpu.lowbit).
W8A8_ACTIVATIONS = ("int8", "float8e4m3", "float8e5m2")


def _elem(bytes_: float, elements: int) -> float:
    """Bytes per element, snapped to a storage size (0.5, 1, 2, 4, 8); 0 when nothing was moved."""
    if not bytes_ or not elements:
        return 0.0
    raw = bytes_ / elements
    best = 0.5
    for size in (1.0, 2.0, 4.0, 8.0):  # the nearest storage size; the smaller one on a tie
        if abs(size - raw) < abs(best - raw):
            best = size
    return best
