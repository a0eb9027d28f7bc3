"""GEMM timing on thread-block tiles, with a small CUTLASS-like search over tile shapes and split-K.

A GEMM ``[batch] x (m x k) @ (k x n)`` is cut into ``bm x bn`` output tiles; each thread block walks its K range
in ``bk`` slices through a ``stages``-deep shared-memory pipeline; split-K cuts K into ``s`` ranges computed by
separate blocks and reduced afterwards (fp32 partials through DRAM). Blocks resident per SM follow from shared
memory (pipeline buffers), registers (fp32 accumulators plus 64 registers a thread for fragments and addresses,
an assumption) and the thread limit. Waves, per-tile compute and bandwidth shares are in
:func:`hardware.gpu.kernels.run_waves`. Padding counts: a tile computes all of ``bm x bn x bk`` even past the
matrix edge, as the hardware does.

On top of the waves, each GEMM exposes its tiles' pipeline fill (one DRAM round trip before the first MMA), drain
(the last K slice's MMAs) and epilogue (C through L2, one more round trip) once (:func:`pipeline_fill_drain`): what
makes one- and two-wave GEMMs slower than their steady-state rate.

**Stream-K** (``schedule="stream-k"``; Osama, Merrill, Cecka, Garland, Hsu, "Stream-K: Work-centric Parallel
Decomposition for Dense Matrix Multiplication on the GPU", PPoPP 2023; CUTLASS's stream-K tile scheduler): a
persistent grid of ``SMs x blocks_per_sm`` blocks shares the GEMM's MAC iterations (``tiles x ceil(k / bk)``)
equally, each block's contiguous range crossing tile boundaries; a tile split between blocks is fixed up through
global memory (each contributing block writes its fp32 partial tile, the finishing block waits for and adds them).
The paper's hybrid is modelled: whole waves of tiles but the last are data-parallel, and the remaining tiles (one to
two waves' worth) are shared stream-K, so no wave is partial. The search then takes the faster of that and the
data-parallel / split-K candidates for each tile, as CUTLASS's heuristic would for an even grid. ``--mode detailed``
times a stream-K pick in the closed form (its blocks are identical but for the fix-ups).

Tensor-core tiles have at least 16 rows (the m16n8k16 MMA shape); CUDA-core (fp32 SIMT) tiles go down to one
row (GEMV kernels). The search returns the fastest candidate; ``tile`` and ``split_k`` pin one.

Bytes in flight per block (Little's law, :func:`hardware.gpu.kernels.block_bandwidth`): a ``stages``-deep cp.async
pipeline computes on one stage while the other ``stages - 1`` K slices are being loaded, so
``(stages - 1) x (bm x bk x a_bytes + bk x bn x b_bytes)`` bytes are outstanding. For the GEMV tile (1 x 256 x 128,
4 stages, fp16) that is 3 x 65.8 kB = 197 kB, i.e. 395 GB/s per block at 500 ns, so the 32+ blocks of a GEMV still
saturate DRAM; large GEMMs need ~30 GB/s per block and are compute-bound either way.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache

from hardware.errors import HwsimError
from hardware.gpu.kernels import KernelResult, finish, run_waves
from hardware.gpu.spec import GpuTarget
from hardware.gpu.tile_sim import BlockWork, Grid, simulate_grid


@dataclass(frozen=True)
class Tile:
    """A thread-block tile: output ``m x n``, K slice ``k``, pipeline ``stages``, ``warps`` per block."""

    m: int
    n: int
    k: int
    stages: int
    warps: int


#: Tensor-core tile shapes (CUTLASS's default Ampere/Hopper sizes plus small-M shapes for skinny GEMMs).
TENSOR_TILES = (
    Tile(256, 128, 32, 3, 8), Tile(128, 256, 32, 3, 8), Tile(128, 128, 32, 4, 4), Tile(128, 64, 32, 4, 4),
    Tile(64, 128, 32, 4, 4), Tile(64, 64, 64, 4, 4), Tile(32, 128, 64, 4, 4), Tile(16, 128, 128, 4, 4),
    Tile(16, 64, 256, 4, 4),
)
#: CUDA-core (SIMT) tiles, down to GEMV shapes.
SIMT_TILES = (
    Tile(128, 128, 8, 2, 8), Tile(64, 64, 8, 2, 4), Tile(32, 64, 16, 2, 4), Tile(8, 128, 64, 4, 4),
    Tile(1, 256, 128, 4, 4), Tile(1, 64, 256, 4, 2),
)
SPLIT_K = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
#: how a GEMM's work is assigned to thread blocks (see gemm())
SCHEDULES = ("data-parallel", "stream-k")
#: Registers (32-bit) a thread holds besides its accumulators: operand fragments, addresses (assumption).
EXTRA_REGS_PER_THREAD = 64
MAX_BLOCKS_PER_SM = 32
#: Fewest MAC iterations (K slices) a stream-K block is given (CUTLASS's ``kMinItersPerSkBlock``,
#: ``threadblock_swizzle_streamk.h``): a smaller problem runs on fewer stream-K blocks.
MIN_ITERS_PER_SK_BLOCK = 2


def blocks_per_sm(target: GpuTarget, tile: Tile, a_bytes: float, b_bytes: float) -> int:
    """Resident blocks of ``tile`` per SM (0: the tile does not fit)."""
    threads = tile.warps * 32
    smem = tile.stages * (tile.m * tile.k * a_bytes + tile.k * tile.n * b_bytes)
    regs = tile.m * tile.n * 4 + threads * EXTRA_REGS_PER_THREAD * 4
    return int(min(target.shared_memory_per_sm.si // smem, target.registers_per_sm.si // regs,
                   target.max_threads_per_sm.si // threads, MAX_BLOCKS_PER_SM))


def _sm_rate(target: GpuTarget, dtype: str, t: Tile, dequant: float) -> tuple[float, str, float]:
    """(FLOP/s one SM gives a block of tile ``t``, compute unit, 32-bit instructions/s of one SM's CUDA cores).

    With ``dequant`` (instructions per B element) the B tile's conversion, once per M tile, runs on the CUDA cores
    beside the MMAs (Marlin orders both to keep both pipelines busy): a tile takes the longer of the two."""
    peak, unit = target.peak_flops(dtype)
    sm_rate = peak * target.tensor_efficiency.si / target.sms
    alu = target.cuda_core_fp32.si / 2.0 / target.sms
    if dequant:
        sm_rate = min(sm_rate, alu * 2.0 * t.m / dequant)
    return sm_rate, unit, alu


def _unique_bytes(batch: int, m: int, k: int, n: int, a_bytes: float, b_bytes: float, c_bytes: float,
                  dram_bytes: float | None) -> float:
    """DRAM bytes of the GEMM: A, B and C once each, unless the workload gave its own count."""
    return dram_bytes if dram_bytes is not None else batch * (m * k * a_bytes + k * n * b_bytes + m * n * c_bytes)


def _inflight(t: Tile, a_bytes: float, b_bytes: float) -> float:
    """Bytes one block of tile ``t`` keeps in flight: ``stages - 1`` K slices of A and B (module docstring)."""
    return (t.stages - 1) * (t.m * t.k * a_bytes + t.k * t.n * b_bytes)


def gemm(target: GpuTarget, batch: int, m: int, k: int, n: int, dtype: str = "fp16", a_bytes: float = 2.0,
         b_bytes: float = 2.0, c_bytes: float = 2.0, dram_bytes: float | None = None, tile: Tile | None = None,
         split_k: int | None = None, name: str = "gemm", mode: str = "fast", dequant: float = 0.0,
         schedule: str = "data-parallel") -> KernelResult:
    """Time of one (batched) GEMM; ``dtype`` picks the compute unit and peak (see ``GpuTarget.peak_flops``).

    ``dequant``: 32-bit instructions per B element that each block spends converting its B tile to ``dtype`` in
    registers, once per M tile (weight-only low-bit formats, :mod:`hardware.gpu.lowbit`); 0 for native operands.

    ``a_bytes``, ``b_bytes``, ``c_bytes`` are bytes per element of A (activations), B (weights) and C;
    ``dram_bytes`` overrides the unique DRAM traffic (A, B and C once each), e.g. with the workload's own count.
    ``mode``: ``fast`` (closed-form waves) or ``detailed`` (the configuration the search picks, timed block by block
    by :mod:`hardware.gpu.tile_sim`; the search itself always uses the closed form, as a library heuristic would).
    ``schedule``: ``data-parallel`` (one block per output tile, or per tile and K split; cuBLAS's usual kernels) or
    ``stream-k`` (adds the stream-K hybrid to the candidates; module docstring).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, not {schedule!r}")
    if min(batch, m, n) <= 0:  # an empty product (a zero-size dimension): nothing to launch
        return KernelResult(name, 0.0, 0.0, 0.0, 0.0, "launch", 0.0, "cuda", 0)
    best = _search(target, batch, m, k, n, dtype, a_bytes, b_bytes, c_bytes, dram_bytes, tile, split_k, dequant,
                   schedule)
    if best is None:
        raise HwsimError(f"{name}: no GEMM thread-block tile fits one SM of {target.name} (max_threads_per_sm "
                         f"{target.max_threads_per_sm.n}, registers_per_sm {target.registers_per_sm.value:g} "
                         f"{target.registers_per_sm.unit}, shared_memory_per_sm {target.shared_memory_per_sm.value:g} "
                         f"{target.shared_memory_per_sm.unit}); check those fields")
    cached = best[1]  # shared by the search cache: hand out a copy
    if mode == "detailed" and cached.detail.get("schedule") != "stream-k":  # stream-K: the closed form only
        cached = _detailed_config(target, batch, m, k, n, dtype, a_bytes, b_bytes, c_bytes, dram_bytes,
                                  cached.detail["_config"], cached.detail["split_k"], "detailed", dequant)
    return dataclasses.replace(cached, name=name, detail=dict(cached.detail))


@lru_cache(maxsize=4096)
def _search(target: GpuTarget, batch: int, m: int, k: int, n: int, dtype: str, a_bytes: float, b_bytes: float,
            c_bytes: float, dram_bytes: float | None, tile: Tile | None,
            split_k: int | None, dequant: float = 0.0,
            schedule: str = "data-parallel") -> tuple[float, KernelResult] | None:
    """The fastest (tile, split-K or stream-K) by the closed form (the heuristic a library would apply)."""
    _, unit = target.peak_flops(dtype)
    tiles = (tile,) if tile else (TENSOR_TILES if unit == "tensor" else SIMT_TILES)
    splits = (split_k,) if split_k else SPLIT_K
    best: tuple[float, KernelResult] | None = None
    for t in tiles:
        bps = blocks_per_sm(target, t, a_bytes, b_bytes)
        if bps == 0:
            continue
        base_tiles = batch * math.ceil(m / t.m) * math.ceil(n / t.n)
        for s in splits:
            k_iters = math.ceil(math.ceil(k / s) / t.k)
            if s > 1 and (k_iters < 2 or base_tiles >= target.sms * bps):
                continue  # split-K only for grids that do not fill the GPU, and only while each split has work
            r = _time_config(target, batch, m, k, n, dtype, a_bytes, b_bytes, c_bytes, dram_bytes, t, s, "fast",
                             dequant)
            if best is None or r.time_s < best[0] - 1e-15:
                best = (r.time_s, r)
        if schedule == "stream-k" and not split_k:
            r = _time_streamk(target, batch, m, k, n, dtype, a_bytes, b_bytes, c_bytes, dram_bytes, t, dequant)
            if r is not None and (best is None or r.time_s < best[0] - 1e-15):
                best = (r.time_s, r)
    return best


def _time_streamk(target: GpuTarget, batch: int, m: int, k: int, n: int, dtype: str, a_bytes: float,
                  b_bytes: float, c_bytes: float, dram_bytes: float | None, t: Tile,
                  dequant: float = 0.0) -> KernelResult | None:
    """The stream-K hybrid of tile ``t`` (module docstring), or None where it is the data-parallel grid itself.

    Data-parallel part: ``(tiles // slots - 1) x slots`` whole tiles in full waves (none below two waves). Stream-K
    part: the other tiles' MAC iterations shared equally by ``blocks`` blocks (at most one per slot, each with at
    least :data:`MIN_ITERS_PER_SK_BLOCK`; the count is searched, below), so each block runs
    ``ceil(sk_tiles x iters / blocks)`` iterations in one wave;
    every block boundary inside a tile is a fix-up: the contributing block writes its ``bm x bn`` fp32 partial (L2
    traffic within the wave) and, after the wave, the finishing blocks wait one L2 round trip on their flags and read
    their tiles' partials at their share of L2 bandwidth (exposed)."""
    sm_rate, unit, _ = _sm_rate(target, dtype, t, dequant)
    bps = blocks_per_sm(target, t, a_bytes, b_bytes)
    if bps == 0:
        return None
    slots = target.sms * bps
    tiles = batch * math.ceil(m / t.m) * math.ceil(n / t.n)
    iters = math.ceil(k / t.k)
    dp_tiles = max(0, tiles // slots - 1) * slots
    sk_tiles = tiles - dp_tiles
    # stream-K blocks: at most one per slot and no fewer than MIN_ITERS_PER_SK_BLOCK iterations each, at least one
    # more than the stream-K tiles or a wave of SMs (CUTLASS's range, ThreadblockSwizzleStreamK::get_sk_blocks; fewer
    # would be the data-parallel grid). CUTLASS searches that range with a cost model; here the fastest of the most
    # blocks, one per SM, and j blocks per stream-K tile (j in SPLIT_K: fewer partials, ranges aligned with tiles)
    top = min(slots, sk_tiles * iters // MIN_ITERS_PER_SK_BLOCK)
    low = min(target.sms, sk_tiles + 1)
    if tiles % slots == 0 or top < low:
        return None  # an even grid is data-parallel already; too few iterations to share
    counts = {top, *(c for c in (target.sms, *(j * sk_tiles for j in SPLIT_K)) if low <= c <= top)}
    best = None
    for blocks in sorted(counts, reverse=True):
        r = _streamk_blocks(target, batch, m, k, n, a_bytes, b_bytes, c_bytes, dram_bytes, t, sm_rate, unit, bps,
                            tiles, iters, dp_tiles, blocks)
        if best is None or r.time_s < best.time_s - 1e-15:
            best = r
    return best


def _streamk_blocks(target: GpuTarget, batch: int, m: int, k: int, n: int, a_bytes: float, b_bytes: float,
                    c_bytes: float, dram_bytes: float | None, t: Tile, sm_rate: float, unit: str, bps: int, tiles: int,
                    iters: int, dp_tiles: int, blocks: int) -> KernelResult:
    """The stream-K hybrid of tile ``t`` with ``dp_tiles`` data-parallel tiles and ``blocks`` stream-K blocks."""
    sk_tiles = tiles - dp_tiles
    per_block = math.ceil(sk_tiles * iters / blocks)  # MAC iterations of each stream-K block
    unique = _unique_bytes(batch, m, k, n, a_bytes, b_bytes, c_bytes, dram_bytes)
    flops = 2.0 * batch * m * k * n
    iter_flops = 2.0 * t.m * t.n * t.k
    iter_l2 = (t.m * a_bytes + t.n * b_bytes) * t.k
    inflight = _inflight(t, a_bytes, b_bytes)
    dp_dram = unique * dp_tiles / tiles
    body = compute = memory = 0.0
    waves = 0
    occupancy_time = 0.0
    limited = False
    if dp_tiles:
        w = run_waves(target, dp_tiles, bps, t.warps * 32, iter_flops * iters, sm_rate, dp_dram / dp_tiles,
                      iter_l2 * iters + t.m * t.n * c_bytes, inflight)
        body, compute, memory, waves = w.time_s, w.compute_s, w.memory_s, w.waves
        occupancy_time += w.occupancy * w.time_s
        limited = w.latency_limited
    # fix-ups: block boundaries (multiples of per_block) falling inside a tile (multiples of iters) split it; each
    # piece but the tile's finishing one is a partial, written by its block at the end of its range (in the wave)
    # and read back by the finishing block after the wave (workspace lines written moments before: L2 traffic)
    cuts = [math.floor(((j + 1) * iters - 1) / per_block) - math.floor(j * iters / per_block) for j in range(sk_tiles)]
    partials = sum(cuts)
    tile_partial = t.m * t.n * 4.0
    partial_bytes = partials * tile_partial * 2  # written and read
    sk_dram = unique - dp_dram
    c_writes = sk_tiles * t.m * t.n * c_bytes
    w = run_waves(target, blocks, bps, t.warps * 32, iter_flops * per_block, sm_rate, sk_dram / blocks,
                  iter_l2 * per_block + (c_writes + partials * tile_partial) / blocks, inflight)
    fixup = 0.0
    if partials:  # the finishing blocks wait on their flags (one L2 round trip), then read their tiles' partials,
        # all of them at once at their share of L2 bandwidth
        wait = target.l2_latency.si if target.l2_latency is not None else 0.0
        fixing = sum(1 for c in cuts if c)
        fixup = wait + max(cuts) * tile_partial / (target.l2_bandwidth.si / fixing)
    body += w.time_s + fixup
    compute += w.compute_s
    memory += w.memory_s + fixup
    waves += w.waves
    occupancy_time += w.occupancy * w.time_s
    limited = limited or w.latency_limited
    body += pipeline_fill_drain(target, t, c_bytes, sm_rate, bps, blocks)
    occupancy = occupancy_time / (body or 1.0)
    return finish(target, "gemm", body, compute, memory, flops, unique,
                  (iter_l2 * iters + t.m * t.n * c_bytes) * tiles + partial_bytes, occupancy, unit,
                  {"tile": (t.m, t.n, t.k), "split_k": 1, "schedule": "stream-k", "tiles": tiles, "waves": waves,
                   "stream_k_tiles": sk_tiles, "iterations_per_block": per_block, "fixups": partials,
                   "blocks_per_sm": bps, "_config": t}, limited)


def _time_config(target: GpuTarget, batch: int, m: int, k: int, n: int, dtype: str, a_bytes: float,
                 b_bytes: float, c_bytes: float, dram_bytes: float | None, t: Tile, s: int,
                 mode: str, dequant: float = 0.0) -> KernelResult:
    """One (tile, split-K) configuration timed in waves (``fast``) or block by block (``detailed``)."""
    sm_rate, unit, alu = _sm_rate(target, dtype, t, dequant)
    dequant_s = batch * math.ceil(m / t.m) * k * n * dequant / (alu * target.sms) if dequant else 0.0
    unique = _unique_bytes(batch, m, k, n, a_bytes, b_bytes, c_bytes, dram_bytes)
    flops = 2.0 * batch * m * k * n
    bps = blocks_per_sm(target, t, a_bytes, b_bytes)
    count = batch * math.ceil(m / t.m) * math.ceil(n / t.n) * s
    k_span = math.ceil(math.ceil(k / s) / t.k) * t.k
    out_bytes = c_bytes if s == 1 else 4.0  # split-K blocks write fp32 partials
    tile_l2 = (t.m * a_bytes + t.n * b_bytes) * k_span + t.m * t.n * out_bytes
    inflight = _inflight(t, a_bytes, b_bytes)
    tile_flops = 2.0 * t.m * t.n * k_span
    if mode == "detailed":
        grid = Grid(((count, BlockWork(tile_flops, unique / count, tile_l2)),), bps, t.warps * 32, sm_rate, inflight)
        w, _ = simulate_grid(target, grid)
    else:
        w = run_waves(target, count, bps, t.warps * 32, tile_flops, sm_rate, unique / count, tile_l2, inflight)
    body, memory = w.time_s, w.memory_s
    fill = pipeline_fill_drain(target, t, out_bytes, sm_rate, bps, count)
    body += fill
    reduce_bytes = 0.0
    if s > 1:  # partials written by the blocks, read back and reduced (fused epilogue, no extra launch)
        reduce_bytes = batch * m * n * 4.0 * s * 2
        extra = reduce_bytes / target.achievable_dram_bandwidth
        body += extra
        memory += extra
    return finish(target, "gemm", body, w.compute_s, memory, flops, unique + reduce_bytes, tile_l2 * count,
                  w.occupancy, unit, {"tile": (t.m, t.n, t.k), "split_k": s, "tiles": count, "waves": w.waves,
                                      "blocks_per_sm": bps, "_config": t,
                                      **({"dequant_s": dequant_s} if dequant else {})}, w.latency_limited)


def pipeline_fill_drain(target: GpuTarget, t: Tile, out_bytes: float, sm_rate: float, bps: int,
                        count: int) -> float:
    """Seconds of a GEMM that its tiles' software pipelines cannot overlap (the steady-state K loop is in the waves).

    - **Fill (prologue)**: the first ``stages - 1`` K slices are issued together before any MMA, so the first MMA
      waits one DRAM round trip (``dram_latency``); their transfer is part of the steady-state loop.
    - **Drain**: the MMAs of the last slice run after its load, with nothing left to overlap (one slice's math at
      the block's share of the SM).
    - **Epilogue**: the fp32 accumulators are converted and written (``bm x bn x out_bytes``) after the last MMA
      into L2 (write-back caches them; DRAM sees them later) at the block's share of L2 bandwidth, and the kernel
      completes when the stores land (one more round trip).

    Paid once per kernel: the first wave's fill and the last wave's drain and epilogue are exposed; in between,
    blocks that refill freed slots overlap their prologue with the mainloops of the blocks still resident. The
    classic pipeline time ``fill + k_iters x stage + drain``, applied to the grid; structural, no fitted factor.
    """
    active = min(count, target.sms * bps)
    share = target.l2_bandwidth.si / max(1, active)
    resident = min(bps, math.ceil(active / target.sms))
    latency = target.dram_latency.si
    fill = latency
    drain = 2.0 * t.m * t.n * t.k * resident / sm_rate
    epilogue = t.m * t.n * out_bytes / share + latency
    return fill + drain + epilogue


#: the block-by-block timing of the configurations the search picked (decode steps repeat the same GEMMs)
_detailed_config = lru_cache(maxsize=1024)(_time_config)
