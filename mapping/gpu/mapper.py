"""Map a workload onto one GPU (or ``tp`` tensor-parallel GPUs): group ops into kernels, time them with the
kernel models of :mod:`hardware.gpu`, and emit one stream of tasks.

Grouping, per IR block in workload order:

- every matmul with a weight operand is a GEMM kernel (``op.matmul`` gives batch, m, k, n);
- in an attention block, everything that is not a q/k/v/o projection is ONE attention kernel: FlashAttention-2
  in prefill; in decode ``options["attention"]`` (``naive``, ``flashdecoding`` (default) or ``lean``); the
  block's other elementwise bytes (bias adds, rotary, head transposes) are streamed by that kernel's prologue;
- the remaining ops of a block (norms, residual adds, activations, gathers, movement) are one fused memory-bound
  kernel; views and folded ops cost nothing.

Options: ``mode`` (``fast``: every kernel's grid timed in closed-form waves; ``detailed``: GEMM and attention grids
timed block by block on the SMs, L2 and HBM by :mod:`hardware.gpu.tile_sim`), ``tp`` (tensor parallelism: GEMMs
and heads split over ``tp`` GPUs, a ring all-reduce after each attention and MLP block), ``attention``, ``tf32``
(fp32 GEMMs on tensor cores), ``launch`` (``stream``: every kernel launched from the host, at least
``launch_overhead`` each; ``graph``: replayed from a CUDA graph, at least ``graph_launch_overhead``), ``kv_heads``
(override the KV head count inferred from the K projection). All kernels run on one resource ``gpu`` in order (one
CUDA stream); durations are per GPU, energies and traffic are summed over the ``tp`` GPUs, idle power is the
resource's static power.
"""

from __future__ import annotations

from collections.abc import Iterable

from hardware.errors import HwsimError
from hardware.gpu.attention import DECODE_KERNELS, flash_attention2
from hardware.gpu.collectives import all_reduce
from hardware.gpu.gemm import gemm
from hardware.gpu.kernels import KernelResult, energy_by_action, memory_bound
from hardware.gpu.spec import GpuTarget
from mapping.op_costs import OpCost
from mapping.workloads import Workload
from simulator.program import Program, Resource, Task

PROJECTIONS = {"q_proj", "k_proj", "v_proj", "qkv_proj", "o_proj"}
FREE = {"view", "folded"}
#: Projections split by output columns under tensor parallelism (the others, o_proj and down, by input rows).
ROW_PARALLEL = {"o_proj", "down"}


def memory_capacity_bytes(target: GpuTarget) -> int:
    """DRAM of one GPU (bytes): what the weights and KV cache of one GPU's share must fit in."""
    return int(target.dram_capacity.si)


def map_workload(workload: Workload, target: GpuTarget, options: dict | None = None) -> Program:
    """The kernels of ``workload`` on ``target`` as a one-stream :class:`Program`."""
    options = dict(options or {})
    tp = int(options.get("tp", 1) or 1)
    if tp < 1:
        raise HwsimError(f"--tp must be >= 1, got {tp}")
    attention = str(options.get("attention", "flashdecoding")).lower()
    if attention not in DECODE_KERNELS:
        raise HwsimError(f"option 'attention': unknown decode attention kernel '{attention}'; use one of "
                         f"{', '.join(DECODE_KERNELS)}")
    tf32 = str(options.get("tf32", "false")).lower() in ("1", "true", "yes", "on")
    launch = str(options.get("launch", "stream")).lower()
    if launch not in ("stream", "graph"):
        raise HwsimError(f"option 'launch': unknown launch mode '{launch}'; use stream or graph")
    if launch == "graph":
        target = target.with_graph_launches()
    ctx = _Context(workload, target, tp, attention, tf32, options.get("kv_heads"), str(options.get("mode", "fast")))
    tasks: list[Task] = []
    for block, kind, ops in block_runs(workload.ops):
        for result in ctx.kernels(block, kind, ops):
            if result.launches == 0:
                continue
            actions = {k: v * tp for k, v in energy_by_action(target, result).items()}
            level = "nvlink" if result.bound == "link" else "hbm"
            traffic = {level: int(result.dram_bytes * tp)}
            if result.l2_bytes:
                traffic["l2"] = int(result.l2_bytes * tp)
            name = f"{len(tasks):04d}.{result.name}"
            tasks.append(Task(name, "gpu", result.time_s, sum(actions.values()), traffic,
                              [tasks[-1].name] if tasks else [], result.name, block, actions, result.flops * tp,
                              result.bound, result.occupancy))
    return Program([Resource("gpu", 1, target.idle_power.si * tp)], tasks)


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
                 kv_heads: object, mode: str = "fast") -> None:
        self.w, self.t, self.tp, self.attention, self.tf32, self.mode = workload, target, tp, attention, tf32, mode
        self.kv_heads = int(kv_heads) if kv_heads else None

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
        return "fp8" if acts.startswith("float8") else "int8"

    def kernels(self, block: str, kind: str, ops: list[OpCost]) -> list[KernelResult]:
        label = block or "other"
        gemms = [o for o in ops if o.matmul is not None and o.matmul.weight_operand]
        rest = [o for o in ops if o not in gemms]
        out: list[KernelResult] = []
        if kind == "attention" and any(o.role == "score" for o in rest):
            out.extend(self.gemm(o, label) for o in gemms if o.role != "o_proj")
            out.append(self.attention_kernel(label, rest))
            out.extend(self.gemm(o, label) for o in gemms if o.role == "o_proj")
        else:
            out.extend(self.gemm(o, label) for o in gemms)
            if rest:
                out.append(self.fused(label, kind, rest))
        if self.tp > 1 and kind in ("attention", "mlp") and gemms:
            out.append(all_reduce(self.t, gemms[-1].act_write_bytes, self.tp, f"{label}.all_reduce"))
        return out

    def gemm(self, op: OpCost, label: str) -> KernelResult:
        mm = op.matmul
        assert mm is not None
        b_elem = _elem(op.weight_bytes, mm.batch * mm.k * mm.n)
        a_elem = _elem(op.act_write_bytes, mm.batch * mm.m * mm.n) or 2.0
        k, n = mm.k, mm.n
        if self.tp > 1:
            if op.role in ROW_PARALLEL:
                k = max(1, -(-k // self.tp))
            else:
                n = max(1, -(-n // self.tp))
        dram = op.weight_bytes / self.tp + op.act_read_bytes + op.act_write_bytes + op.kv_read_bytes
        return gemm(self.t, mm.batch, mm.m, k, n, self.dtype(a_elem), a_elem, b_elem or a_elem, a_elem, dram,
                    name=f"{label}.{op.role or op.op_type.lower()}", mode=self.mode)

    def attention_kernel(self, label: str, ops: list[OpCost]) -> KernelResult:
        score = next(o for o in ops if o.role == "score")
        mm = score.matmul
        assert mm is not None
        batch = self.w.batch
        heads = max(1, mm.batch // batch)
        head_dim, q_len, kv_len = mm.k, mm.m, mm.n
        act = _elem(score.act_write_bytes, mm.batch * q_len * kv_len) or 2.0
        kv = _elem(score.kv_read_bytes, mm.batch * kv_len * head_dim) or act
        kv_heads = self.kv_heads or self._kv_heads(label, heads, head_dim) or heads
        heads_gpu = max(1, heads // self.tp)
        kv_gpu = max(1, kv_heads // self.tp)
        if heads_gpu % kv_gpu:
            kv_gpu = heads_gpu
        dtype = self.dtype(act)
        if self.w.phase == "decode":
            fn = DECODE_KERNELS[self.attention]
            r = fn(self.t, batch, heads_gpu, kv_gpu, kv_len, head_dim, kv, act, q_len=q_len,
                   **({"dtype": dtype} if self.attention != "naive" else {}), name=f"{label}.attention",
                   mode=self.mode)
        else:
            r = flash_attention2(self.t, batch, heads_gpu, kv_gpu, q_len, kv_len, head_dim, kv, act,
                                 causal=self.causal(label), dtype=dtype, name=f"{label}.attention", mode=self.mode)
        # elementwise ops between the projections and the core (bias adds, rotary, head transposes) are streamed
        # by the kernel's prologue; the core's own traffic (score..pv) is the kernel's and is not added again
        core = self._core_names(ops)
        prologue = sum(o.bytes for o in ops if o.name not in core)
        if prologue:
            r.time_s += prologue / self.tp / self.t.achievable_dram_bandwidth
            r.dram_bytes += prologue / self.tp
        r.detail.update({"heads": heads_gpu, "kv_heads": kv_gpu, "kv_len": kv_len, "q_len": q_len})
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
        for op in self.w.ops:
            if op.block != label or op.matmul is None or not head_dim:
                continue
            if op.role == "k_proj":
                return max(1, op.matmul.n // head_dim)
            if op.role == "qkv_proj":
                return max(1, (op.matmul.n // head_dim - heads) // 2)
        return None

    def fused(self, label: str, kind: str, ops: list[OpCost]) -> KernelResult:
        bytes_ = sum(o.bytes for o in ops)
        flops = sum(o.flops for o in ops)
        if self.tp > 1 and kind in ("attention", "mlp"):
            bytes_, flops = bytes_ / self.tp, flops / self.tp
        return memory_bound(self.t, f"{label}.fused", bytes_, flops)


def _elem(bytes_: float, elements: int) -> float:
    """Bytes per element, snapped to a storage size (0.5, 1, 2, 4, 8); 0 when nothing was moved."""
    if not bytes_ or not elements:
        return 0.0
    raw = bytes_ / elements
    return min((0.5, 1.0, 2.0, 4.0, 8.0), key=lambda s: abs(s - raw))
