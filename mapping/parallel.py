"""Multi-device runs on any target kind: tensor parallelism (tp) and pipeline parallelism (pp) over ``tp x pp``
devices joined by a link.

- **Tensor parallelism.** GPUs use their own plugin's ``tp`` (Megatron column/row split, a ring all-reduce on a
  communication stream, ``comm_chunks`` to overlap it). Other kinds (PIM, FPGA) run a *shard* of each workload on
  every device: the column-parallel projections (Q, K, V, up/gate) keep ``n / tp`` output columns, the
  row-parallel ones (o_proj, down) ``k / tp`` input rows, attention cores ``heads / tp`` heads, the other ops of
  attention and MLP blocks ``1 / tp`` of their work; norms, embeddings and the LM head are replicated (as in
  CENT's tensor-parallel mapping). After every attention and MLP block the row-parallel output (a full
  activation) is all-reduced over the link: ``latency + 2 (tp - 1) / tp x bytes / bandwidth`` (the ring formula
  of :mod:`hardware.gpu.collectives`), after all of the block's tasks and before anything that reads them. By
  default it does not overlap compute (PIM-GPT and CENT reduce between layers); with ``chunks=C``
  (``--parallel tp=2,chunks=4``) the block's row-parallel projection runs as ``C`` pieces over its output columns
  and each piece's reduction (a ring of ``bytes / C``, paying the link's latency again) goes over the link while
  the next piece computes, the decomposition the GPU path does with ``comm_chunks`` (Wang et al., ASPLOS 2023).
  The link (CXL port, transceivers) is a separate unit from the banks or the fabric, so a PIM device or FPGA can
  compute and send at once. Each piece takes ``1/C`` of the projection's tasks' time and energy (weight-streaming
  work splits evenly over output columns; no fixed cost per piece on the compute side). Durations are per
  device; energies, bytes and static power are summed over the ``tp`` devices.
- **Pipeline parallelism.** The layers are split into ``pp`` contiguous stages of (nearly) equal layer counts;
  ops outside any layer go with their neighbours (embedding to the first stage, final norm and LM head to the
  last). Each stage runs on its own device (group) with its own plugin session; between stages the hidden state
  (``tokens x d_model`` activations) is sent point to point over the link. :meth:`ParallelLowering.lower`
  composes one pass's stages into one program (resources ``s<i>.<name>``, links ``p2p<i>``), so the engine times
  the pass end to end and a trace shows one track per stage; :meth:`ParallelLowering.micro_batched` runs ``m``
  micro-batches through the stages, which is where pipelines win (serving).

Capacity is checked per device: each stage's share of the weights and KV cache, divided by ``tp``.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hardware.dtypes import tensor_bytes
from hardware.errors import DoesNotFit, HwsimError
from hardware.link import LinkSpec, load_link
from hardware.targets import TargetBase
from mapping.op_costs import MatmulDims, OpCost
from mapping.program import Program, Resource, Task
from mapping.target_plugin import Lowering, TargetOptions, TargetPlugin

if TYPE_CHECKING:
    from mapping.workloads import Workload

#: Projections split by their input rows (the others by output columns), as Megatron-LM splits them.
ROW_PARALLEL = {"o_proj", "down"}
#: Block kinds tensor parallelism splits (heads, columns, rows, channels); every other block runs whole on each device.
SHARDED_KINDS = ("attention", "mlp", "mixer")
#: Default link of each target kind when ``--parallel`` names none (GPUs: their own NVLink/PCIe fields).
DEFAULT_LINK = {"pim": "cxl3-x16", "fpga": "qsfp28-100g"}


@dataclass(frozen=True)
class ExpertReductions:
    """How a tensor-parallel MoE layer's experts are reduced: the router's weighted sum of the experts' outputs is
    linear, so the devices' partial outputs are combined first and reduced once per layer, after the last expert the
    workload runs (vLLM's FusedMoE reduces after the combine; gpt-fast's mixtral-moe/tp.py hooks one all-reduce on
    the experts' output). ``skipped``: the other expert blocks (no reduction of their own); ``bytes``: per last
    expert block, the combined output's bytes: tokens x width, whatever share of the tokens that expert took (the
    router gate's input, which has the combined output's shape; else the layer's attention output). A shared
    expert (an ordinary MLP block in a layer with routed ones) is added to their sum, so it shares the reduction
    (vLLM's Qwen2-MoE block reduces routed and shared outputs once)."""

    skipped: frozenset[str] = frozenset()
    bytes: dict[str, float] = dataclasses.field(default_factory=dict)


def expert_reductions(workload: Workload) -> ExpertReductions:
    """:class:`ExpertReductions` of ``workload`` (empty for a dense model)."""
    ir = workload.ir
    experts = {b.name: (b.stack, b.layer) for b in ir.blocks if b.attrs.get("expert")} if ir is not None else {}
    if not experts:
        return ExpertReductions()
    layer_of = {b.name: (b.stack, b.layer) for b in ir.blocks}
    moe_layers = set(experts.values())
    experts.update({b.name: layer_of[b.name] for b in ir.blocks  # shared experts of those layers
                    if b.kind == "mlp" and b.name not in experts and layer_of[b.name] in moe_layers})
    ran = list(dict.fromkeys(o.block for o in workload.ops if o.block in experts))
    last = {experts[name]: name for name in ran}
    gate: dict[tuple, float] = {}
    width: dict[tuple, float] = {}
    for o in workload.ops:
        key = layer_of.get(o.block)
        if key is None:
            continue
        if o.block_kind == "router" and o.matmul is not None and o.matmul.weight_operand:  # tokens x width in
            gate[key] = max(gate.get(key, 0.0), float(o.act_read_bytes))
        elif o.block_kind == "attention" and o.role == "o_proj":  # the residual stream's bytes
            width[key] = max(width.get(key, 0.0), float(o.act_write_bytes))
    down = {o.block: float(o.act_write_bytes) for o in workload.ops if o.block in experts and o.role in ROW_PARALLEL}
    sizes = {name: gate.get(key) or width.get(key) or down.get(name, 0.0) for key, name in last.items()}
    return ExpertReductions(frozenset(ran) - set(last.values()), sizes)


@dataclass(frozen=True)
class Parallel:
    """How a run is spread over devices: ``tp`` tensor-parallel devices in each of ``pp`` pipeline stages;
    ``link`` a link preset name or file (None: the target kind's default)."""

    tp: int = 1
    pp: int = 1
    link: str | None = None
    chunks: int = 1  # pieces each tensor-parallel all-reduce is split into to overlap compute (1: serial)

    @property
    def devices(self) -> int:
        """All devices: ``tp x pp``."""
        return self.tp * self.pp

    @property
    def text(self) -> str:
        """As ``--parallel`` writes it."""
        return (f"tp={self.tp},pp={self.pp}" + (f",link={self.link}" if self.link else "")
                + (f",chunks={self.chunks}" if self.chunks > 1 else ""))


def parse_parallel(devices: int | None, text: str | None, kind: str) -> Parallel:
    """``--devices N`` and ``--parallel tp=A,pp=B[,link=NAME][,chunks=C]``. ``--devices`` alone is tensor
    parallelism on GPUs and a pipeline on other kinds; with both, ``tp x pp`` must equal ``N``."""
    values: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in ("tp", "pp", "link", "chunks"):
            raise HwsimError(f"--parallel {text}: expected tp=N,pp=N[,link=NAME][,chunks=C] (e.g. tp=2,pp=2)")
        values[key] = value.strip()
    counts: dict[str, int] = {}
    for key in ("tp", "pp", "chunks"):
        if key in values:
            try:
                counts[key] = int(values[key])
            except ValueError:
                raise HwsimError(f"--parallel {text}: {key}={values[key]} is not a whole number") from None
            if counts[key] < 1:
                raise HwsimError(f"--parallel {text}: {key} must be >= 1")
    chunks = counts.pop("chunks", 1)
    if chunks > 64:
        raise HwsimError(f"--parallel {text}: chunks must be <= 64")
    if devices is not None and devices < 1:
        raise HwsimError(f"--devices must be >= 1, got {devices}")
    if devices is not None and not counts:
        counts = {"tp": devices} if kind == "gpu" else {"pp": devices}
    tp, pp = counts.get("tp", 1), counts.get("pp", 1)
    if "tp" in counts and "pp" not in counts and devices is not None:
        pp = max(1, devices // tp)
    if "pp" in counts and "tp" not in counts and devices is not None:
        tp = max(1, devices // pp)
    if devices is not None and tp * pp != devices:
        raise HwsimError(f"--devices {devices} --parallel {text}: tp x pp = {tp * pp} devices, not {devices}")
    return Parallel(tp, pp, values.get("link") or DEFAULT_LINK.get(kind), chunks)


def resolve_link(parallel: Parallel, kind: str) -> LinkSpec | None:
    """The link preset of a run (None: a GPU's own link fields)."""
    name = parallel.link or DEFAULT_LINK.get(kind)
    return load_link(name) if name else None


# -- tensor parallelism on kinds without a native one --------------------------------------------------------
def _scaled(op: OpCost, share: float, **fields: object) -> OpCost:
    return dataclasses.replace(op, flops=op.flops * share, **fields)


def mixer_out_projections(workload: Workload) -> frozenset[str]:
    """Names of each token mixer's (Mamba's, a short convolution's) last weight GEMM, its output projection: split
    by input rows and all-reduced under tensor parallelism, as Megatron-LM's Mamba layer splits out_proj (its
    in_proj by columns, the state and convolution work by channels)."""
    last = {o.block: o.name for o in workload.ops
            if o.block_kind == "mixer" and o.matmul is not None and o.matmul.weight_operand}
    return frozenset(last.values())


def shard_op(op: OpCost, tp: int, row: bool = False) -> OpCost:
    """One device's part of ``op`` under ``tp``-way tensor parallelism (see the module docstring); ``row``: a
    weight GEMM split by its input rows whatever its role (a mixer's output projection)."""
    if tp == 1 or op.block_kind not in SHARDED_KINDS:
        return op
    mm = op.matmul
    if mm is not None and mm.weight_operand:
        if op.role in ROW_PARALLEL or row:
            dims = dataclasses.replace(mm, k=max(1, -(-mm.k // tp)))
            return _scaled(op, dims.k / mm.k, matmul=dims, weight_bytes=op.weight_bytes // tp,
                           act_read_bytes=op.act_read_bytes // tp)
        dims = dataclasses.replace(mm, n=max(1, -(-mm.n // tp)))
        return _scaled(op, dims.n / mm.n, matmul=dims, weight_bytes=op.weight_bytes // tp,
                       act_write_bytes=op.act_write_bytes // tp)
    dims: MatmulDims | None = None
    if mm is not None:  # an attention product: batch x heads split by heads
        dims = dataclasses.replace(mm, batch=max(1, -(-mm.batch // tp)))
    return _scaled(op, 1 / tp, matmul=dims, weight_bytes=op.weight_bytes // tp, act_read_bytes=op.act_read_bytes // tp,
                   act_write_bytes=op.act_write_bytes // tp, kv_read_bytes=op.kv_read_bytes // tp,
                   kv_write_bytes=op.kv_write_bytes // tp)


def shard(workload: Workload, tp: int, memo: dict[str, tuple[OpCost, OpCost]] | None = None) -> Workload:
    """One device's share of ``workload``: ops by :func:`shard_op`, attention heads and KV cache over ``tp``.
    ``memo`` (op name -> (op, its shard), kept by the caller across a run's steps at one ``tp``) hands back the
    same shard for the very op object of an earlier step (ops are not changed once built), so a plugin that
    reuses its work for unchanged ops sees them unchanged."""
    if tp == 1:
        return workload
    ir = workload.ir
    if ir is not None:
        blocks = [dataclasses.replace(b, attention=dataclasses.replace(
            b.attention, heads=max(1, b.attention.heads // tp), kv_heads=max(1, b.attention.kv_heads // tp)))
            if b.attention is not None else b for b in ir.blocks]
        ir = dataclasses.replace(ir, blocks=blocks)
    rows = mixer_out_projections(workload)
    if memo is None:
        ops = [shard_op(o, tp, o.name in rows) for o in workload.ops]
    else:
        ops = []
        for o in workload.ops:
            hit = memo.get(o.name)
            if hit is None or hit[0] is not o:
                hit = memo[o.name] = (o, shard_op(o, tp, o.name in rows))
            ops.append(hit[1])
    return dataclasses.replace(workload, ops=ops, ir=ir,
                               kv_cache_bytes=workload.kv_cache_bytes // tp, kv_write_bytes=workload.kv_write_bytes // tp,
                               weight_bytes=workload.weight_bytes // tp)


def all_reduce_s(link: LinkSpec, nbytes: float, tp: int) -> float:
    """Ring all-reduce of ``nbytes`` per device over ``tp`` devices (s)."""
    return link.latency.si + 2.0 * (tp - 1) / tp * nbytes / link.bandwidth.si if tp > 1 else 0.0


def _pieces(task: Task, chunks: int) -> list[Task]:
    """``task`` as ``chunks`` equal pieces run one after another (each ``1/chunks`` of its time, energy and work)."""
    share = 1.0 / chunks
    out: list[Task] = []
    for i in range(chunks):
        deps = task.deps if i == 0 else (out[-1].name,)
        out.append(dataclasses.replace(
            task, name=f"{task.name}#{i}", deps=deps, duration_s=task.duration_s * share,
            energy_j=task.energy_j * share, flops=task.flops * share,
            energy_by_action={k: v * share for k, v in task.energy_by_action.items()},
            bytes_by_level={k: int(v * share) for k, v in task.bytes_by_level.items()}))
    return out


def with_all_reduces(program: Program, workload: Workload, tp: int, link: LinkSpec, chunks: int = 1,
                     memo: dict[str, tuple[Task, tuple[str, ...], Task]] | None = None) -> Program:
    """``program`` (one device's shard, scaled to ``tp`` devices) with an all-reduce on resource ``link`` after
    each attention and MLP block; every later task that reads the block's tasks waits for it. With ``chunks`` > 1
    the block's row-parallel projection tasks run as that many pieces and piece ``i``'s all-reduce (of
    ``1/chunks`` of the bytes) starts when piece ``i`` is done, overlapping the next pieces (module docstring).
    ``memo`` (task name -> (task, deps, scaled task), kept by the caller across a run's steps at one ``tp``) hands
    back the same scaled task for the very task object of an earlier step with the same dependencies."""
    reduced, split_ops = {}, {}
    moe = expert_reductions(workload)
    rows = mixer_out_projections(workload)
    for op in workload.ops:
        if ((op.block_kind in ("attention", "mlp") and op.role in ROW_PARALLEL) or op.name in rows) \
                and op.block not in moe.skipped:
            # the full output: row-parallel writes are not split; a layer's experts once, combined
            reduced[op.block] = moe.bytes.get(op.block, op.act_write_bytes)
            split_ops[op.name] = op.block
    members: dict[str, list[str]] = {}
    for t in program.tasks:
        if t.block in reduced:
            members.setdefault(t.block, []).append(t.name)
    last = {block: names[-1] for block, names in members.items()}
    owner = {name: block for block, names in members.items() for name in names}
    split = _split_tasks(program, split_ops) if chunks > 1 else {}
    renamed = {name: f"{name}#{chunks - 1}" for names in split.values() for name in names}
    by_name = {t.name: t for t in program.tasks}

    def scaled(t: Task, drop: frozenset[str] = frozenset()) -> Task:
        extra = tuple(f"all_reduce:{owner[d]}" for d in t.deps if d in owner and owner[d] != t.block)
        deps = tuple(renamed.get(d, d) for d in dict.fromkeys(t.deps + extra) if d not in drop)
        if memo is not None and not drop:
            hit = memo.get(t.name)
            if hit is None or hit[0] is not t or hit[1] != deps:
                hit = memo[t.name] = (t, deps, _scaled_task(t, deps))
            return hit[2]
        return _scaled_task(t, deps)

    def _scaled_task(t: Task, deps: tuple[str, ...]) -> Task:
        return dataclasses.replace(
            t, deps=deps, energy_j=t.energy_j * tp, flops=t.flops * tp,
            energy_by_action={k: v * tp for k, v in t.energy_by_action.items()},
            bytes_by_level={k: v * tp for k, v in t.bytes_by_level.items()})

    def reduce_task(name: str, block: str, nbytes: float, deps: tuple[str, ...]) -> Task:
        moved = 2.0 * (tp - 1) / tp * nbytes
        energy = link.energy_j(moved) * tp
        return Task(name=name, resource="link", duration_s=all_reduce_s(link, nbytes, tp), energy_j=energy,
                    energy_by_action={"link": energy}, bytes_by_level={"link": int(moved * tp)}, deps=deps,
                    op=f"{block}.all_reduce", block=block, kind="all_reduce", bound="link")

    # a projection already streamed in tiles (several tasks on one resource, the FPGA's weight tiles): its tasks
    # stay as they are and group i of the compute tiles is reduced when its last tile is done
    tiled: dict[str, list[str]] = {}
    for block, names in list(split.items()):
        count = Counter(by_name[n].resource for n in names)
        resource, n_tiles = count.most_common(1)[0]
        if n_tiles > 1:
            tiles = [n for n in names if by_name[n].resource == resource]
            c = min(chunks, len(tiles))
            tiled[block] = [tiles[(i + 1) * len(tiles) // c - 1] for i in range(c)]
            del split[block]
            for n in names:
                renamed.pop(n, None)
    tasks: list[Task] = []
    for t in program.tasks:
        block = t.block
        names = split.get(block, [])
        if t.name not in names:
            tasks.append(scaled(t))
        elif t.name == names[-1]:  # every piece of the projection's tasks, emitted where its last task was
            siblings = frozenset(names)
            chains = [_pieces(scaled(by_name[n], siblings), chunks) for n in names]
            for i in range(chunks):  # piece i of each task, after piece i of the task before it
                for j, chain in enumerate(chains):
                    piece = chain[i]
                    if j:
                        piece = dataclasses.replace(piece, deps=tuple(dict.fromkeys(piece.deps + (chains[j - 1][i].name,))))
                    tasks.append(piece)
        if last.get(block) != t.name:
            continue
        nbytes = reduced[block]
        if block in tiled:
            ends = tiled[block]
            for i, end in enumerate(ends):
                final = i == len(ends) - 1
                tasks.append(reduce_task(f"all_reduce:{block}" if final else f"all_reduce:{block}#{i}", block,
                                         nbytes / len(ends), tuple(members[block]) if final else (end,)))
            continue
        if not names:
            tasks.append(reduce_task(f"all_reduce:{block}", block, nbytes, tuple(members[block])))
            continue
        others = tuple(renamed.get(n, n) for n in members[block] if n not in names)
        for i in range(chunks):
            name = f"all_reduce:{block}" if i == chunks - 1 else f"all_reduce:{block}#{i}"
            deps = (f"{names[-1]}#{i}",) + (others if i == chunks - 1 else ())
            tasks.append(reduce_task(name, block, nbytes / chunks, deps))
    resources = [dataclasses.replace(r, static_power_w=r.static_power_w * tp) for r in program.resources]
    if "link" not in {r.name for r in resources}:
        resources.append(Resource(name="link", capacity=1))
    return Program(resources=tuple(resources), tasks=tuple(tasks), levels={**program.levels, "link": "link"})


def _split_tasks(program: Program, split_ops: dict[str, str]) -> dict[str, list[str]]:
    """Per block, the tasks of its row-parallel projection that can run as pieces: contiguous in program order
    with nothing between them that reads them (else the block keeps one serial all-reduce)."""
    found: dict[str, list[int]] = {}
    for i, t in enumerate(program.tasks):
        if split_ops.get(t.op) == t.block:
            found.setdefault(t.block, []).append(i)
    out = {}
    for block, idx in found.items():
        names = {program.tasks[i].name for i in idx}
        between = [program.tasks[i] for i in range(idx[0], idx[-1] + 1) if program.tasks[i].name not in names]
        if not any(d in names for t in between for d in t.deps):
            out[block] = [program.tasks[i].name for i in idx]
    return out


# -- pipeline stages -------------------------------------------------------------------------------------------
def stage_split(ops: list[OpCost], pp: int, where: str = "") -> list[list[OpCost]]:
    """``ops`` in ``pp`` contiguous stages of (nearly) equal layer counts; ops outside a layer go with the
    stage before them (the first stage for leading ones)."""
    layers = sorted({o.layer for o in ops if o.layer is not None})
    if pp == 1:
        return [list(ops)]
    if len(layers) < pp:
        raise HwsimError(f"--parallel pp={pp}: {where or 'the model'} has {len(layers)} layers; use pp <= {len(layers)}")
    stage_of = {layer: i * pp // len(layers) for i, layer in enumerate(layers)}
    stages: list[list[OpCost]] = [[] for _ in range(pp)]
    current = 0
    for o in ops:
        if o.layer is not None:
            current = stage_of[o.layer]
        stages[current].append(o)
    return stages


def stage_workloads(workload: Workload, pp: int) -> list[Workload]:
    """The pass of each pipeline stage: its ops, and its layers' share of the KV cache."""
    if pp == 1:
        return [workload]
    stages = stage_split(workload.ops, pp, workload.model)
    kv_blocks = [len({o.block for o in s if o.role == "score"}) for s in stages]
    total = sum(kv_blocks) or 1
    return [dataclasses.replace(workload, ops=s, kv_cache_bytes=workload.kv_cache_bytes * k // total,
                                kv_write_bytes=workload.kv_write_bytes * k // total,
                                weight_bytes=sum(o.weight_bytes for o in s), pass_ops=len(workload.ops))
            for s, k in zip(stages, kv_blocks, strict=True)]


def stage_weight_shares(workload: Workload, pp: int) -> list[float]:
    """Share of the weights each stage holds (from the weight bytes its ops read)."""
    stages = stage_split(workload.ops, pp, workload.model)
    total = sum(o.weight_bytes for o in workload.ops) or 1
    return [sum(o.weight_bytes for o in s) / total for s in stages]


def stage_kv_shares(workload: Workload, pp: int) -> list[float]:
    """Share of the KV cache each stage holds (its causal attention layers)."""
    stages = stage_split(workload.ops, pp, workload.model)
    counts = [len({o.block for o in s if o.role == "score"}) for s in stages]
    total = sum(counts) or 1
    return [c / total for c in counts]


# -- the lowering -----------------------------------------------------------------------------------------------
class ParallelLowering(Lowering):
    """Lowers each workload over ``tp x pp`` devices (see the module docstring)."""

    def __init__(self, plugin: TargetPlugin, spec: TargetBase, options: TargetOptions, parallel: Parallel) -> None:
        super().__init__(plugin, spec, options)
        self.parallel = parallel
        self.native_tp = "tp" in type(options).model_fields
        if self.native_tp:
            self.options = options_for(plugin, options, parallel)
        self.link = resolve_link(parallel, spec.kind)
        self.sessions = [plugin.session(spec, self.options) for _ in range(parallel.pp)]
        #: (stage, micro-batch tag, task name) -> (the stage's task, the p2p task it waited for, its renamed copy)
        self._renamed: dict[tuple[int, str, str], tuple[Task, str | None, Task]] = {}
        #: per stage, the memos of :func:`shard` and :func:`with_all_reduces`
        self._tp_memos: list[tuple[dict, dict]] = [({}, {}) for _ in range(parallel.pp)]

    # the link of a GPU without a named one: its own NVLink/PCIe numbers
    def _p2p(self, nbytes: float) -> tuple[float, float]:
        if self.link is not None:
            return self.link.transfer_s(nbytes), self.link.energy_j(nbytes) * self.parallel.tp
        spec = self.spec
        seconds = spec.link_latency.si + nbytes / spec.link_bandwidth  # type: ignore[attr-defined]
        energy = 2 * nbytes * 8 * spec.dram_energy_per_bit.si * self.parallel.tp  # type: ignore[attr-defined]
        return seconds, energy  # read on the sender, written on the receiver

    def stage_programs(self, workload: Workload) -> list[Program]:
        """One program per pipeline stage (each over its ``tp`` devices)."""
        tp = self.parallel.tp
        out = []
        for s, (session, stage) in enumerate(zip(self.sessions, stage_workloads(workload, self.parallel.pp), strict=True)):
            if tp > 1 and not self.native_tp:
                assert self.link is not None
                shards, scaled = self._tp_memos[s]
                part = shard(stage, tp, shards)
                out.append(with_all_reduces(session.lower(part), stage, tp, self.link, self.parallel.chunks, scaled))
            else:
                out.append(session.lower(stage))
        return out

    def hidden_bytes(self, workload: Workload) -> int:
        """Bytes of the hidden state one stage sends the next for ``workload`` (tokens x d_model activations)."""
        d = workload.ir.d_model if workload.ir is not None and workload.ir.d_model else 0
        dtype = workload.precision.activations or "float16"
        return tensor_bytes(workload.batch * workload.seq * d, dtype) if d else 0

    def lower(self, workload: Workload) -> Program:
        """One pass over all stages, as one program."""
        if self.parallel.pp == 1:
            return self.stage_programs(workload)[0]
        return self.micro_batched([workload], 1)

    def micro_batched(self, micro: list[Workload], repeat: int = 1) -> Program:
        """Micro-batches through the stages: the workloads of ``micro`` in order, the list ``repeat`` times; micro-
        batch ``j`` enters stage ``s + 1`` when it has left stage ``s`` and crossed the link, and each stage takes
        micro-batches in order."""
        stages = [self.stage_programs(w) for w in micro]
        resources: list[Resource] = []
        for s, prog in enumerate(stages[0]):
            resources += [dataclasses.replace(r, name=f"s{s}.{r.name}") for r in prog.resources]
            if s + 1 < self.parallel.pp:
                resources.append(Resource(name=f"p2p{s}", capacity=1))
        levels: dict[str, str] = {}
        for prog in stages[0]:
            levels.update(prog.levels)
        levels["p2p"] = "link"
        tasks: list[Task] = []
        renamed = self._renamed
        for rep in range(repeat):
            for j, (w, progs) in enumerate(zip(micro, stages, strict=True)):
                tag = f"m{rep * len(micro) + j}"
                sent: str | None = None
                nbytes = self.hidden_bytes(w)
                for s, prog in enumerate(progs):
                    prefix = f"s{s}.{tag}."
                    for t in prog.tasks:
                        # a stage task that is the very object of an earlier pass (a plugin reusing its unchanged
                        # tasks across decode steps) keeps its renamed copy too: tasks are immutable
                        key = (s, tag, t.name)
                        hit = renamed.get(key)
                        if hit is not None and hit[0] is t and hit[1] == sent:
                            tasks.append(hit[2])
                            continue
                        deps = tuple(prefix + d for d in t.deps) or ((sent,) if sent else ())
                        new = _renamed_task(t, prefix + t.name, f"s{s}.{t.resource}", deps)
                        renamed[key] = (t, sent, new)
                        tasks.append(new)
                    if s + 1 < len(progs):
                        consumed = {d for t in prog.tasks for d in t.deps}
                        sinks = tuple(prefix + t.name for t in prog.tasks if t.name not in consumed)
                        seconds, energy = self._p2p(nbytes)
                        sent = f"p2p{s}.{tag}"
                        tasks.append(Task(name=sent, resource=f"p2p{s}", duration_s=seconds, energy_j=energy,
                                          energy_by_action={"link": energy}, bytes_by_level={"p2p": nbytes * self.parallel.tp},
                                          deps=sinks, op="p2p", block=f"stage{s}->{s + 1}", kind="p2p", bound="link"))
        return Program(resources=tuple(resources), tasks=tuple(tasks), levels=levels)


#: Task's fields that :func:`_renamed_task` copies one by one (it falls back to dataclasses.replace if Task changes)
_TASK_FIELDS = ("name", "resource", "duration_s", "energy_j", "bytes_by_level", "energy_by_action", "deps", "op", "block",
                "kind", "flops", "bound", "occupancy")
_FAST_RENAME = tuple(f.name for f in dataclasses.fields(Task)) == _TASK_FIELDS


def _renamed_task(t: Task, name: str, resource: str, deps: tuple[str, ...]) -> Task:
    """``t`` under another name and resource, after ``deps`` (what ``dataclasses.replace`` gives, without its
    per-call introspection)."""
    if not _FAST_RENAME:
        return dataclasses.replace(t, name=name, resource=resource, deps=deps)
    return Task(name=name, resource=resource, duration_s=t.duration_s, energy_j=t.energy_j,
                bytes_by_level=t.bytes_by_level, energy_by_action=t.energy_by_action, deps=deps, op=t.op,
                block=t.block, kind=t.kind, flops=t.flops, bound=t.bound, occupancy=t.occupancy)


def make_lowering(plugin: TargetPlugin, spec: TargetBase, options: TargetOptions,
                  parallel: Parallel | None) -> Lowering:
    """The plugin's own session on one device (or GPU ``--tp``), else a :class:`ParallelLowering`."""
    if parallel is None or parallel.devices == 1:
        return plugin.session(spec, options)
    return ParallelLowering(plugin, spec, options, parallel)


def options_for(plugin: TargetPlugin, options: TargetOptions, parallel: Parallel | None) -> TargetOptions:
    """Options with a GPU's native ``tp`` set from ``--parallel`` (others unchanged)."""
    if parallel is None or parallel.tp == 1 or "tp" not in type(options).model_fields:
        return options
    if getattr(options, "tp", 1) not in (1, parallel.tp):
        raise HwsimError(f"--tp {options.tp} and --parallel tp={parallel.tp}: give tensor parallelism once")  # type: ignore[attr-defined]
    update: dict[str, int] = {"tp": parallel.tp}
    if parallel.chunks > 1 and "comm_chunks" in type(options).model_fields:  # the GPU's own overlap
        update["comm_chunks"] = parallel.chunks
    return options.model_copy(update=update)


def check_parallel(plugin: TargetPlugin, options: TargetOptions, parallel: Parallel, heads: int | None,
                   kv_heads: int | None) -> None:
    """Refuse splits that do not divide the model (heads over ``tp``)."""
    tp = parallel.tp
    if tp > 1 and heads and heads % tp:
        raise HwsimError(f"--parallel tp={tp}: the model's {heads} attention heads do not split evenly over {tp} "
                         "devices")
    if tp > 1 and kv_heads and kv_heads % tp and kv_heads > tp:
        raise HwsimError(f"--parallel tp={tp}: the model's {kv_heads} KV heads do not split evenly over {tp} devices")


def per_device_check(model_path: str, spec: TargetBase, device_bytes: int, parallel: Parallel, weight_bytes: int,
                     kv_bytes: int, weight_shares: list[float], kv_shares: list[float]) -> None:
    """Raise :class:`DoesNotFit` unless every device holds its share of weights and KV cache."""
    tp = parallel.tp
    for s, (ws, ks) in enumerate(zip(weight_shares, kv_shares, strict=True)):
        w = math.ceil(weight_bytes * ws / tp)
        kv = math.ceil(kv_bytes * ks / tp)
        if w + kv > device_bytes:
            where = f"stage {s} of {parallel.pp}" + (f", each of its {tp} tensor-parallel devices" if tp > 1 else "")
            raise DoesNotFit(
                f"{model_path} does not fit {parallel.devices} x {spec.name} ({parallel.text}): {where} needs "
                f"{(w + kv) / 2**30:.2f} GiB (weights {w / 2**30:.2f} GiB + KV cache {kv / 2**30:.2f} GiB) but one "
                f"device holds {device_bytes / 2**30:.2f} GiB; use more devices, a smaller model or batch",
                w + kv, device_bytes)
