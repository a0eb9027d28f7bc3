"""Attention kernels: FlashAttention-2 for prefill; naive, FlashDecoding (split-KV), Lean Attention (stream-K) and
masked multi-head attention (one block per query head, CUDA cores) for decode.

Shapes: ``batch`` sequences, ``heads`` query heads sharing ``kv_heads`` K/V heads (MHA: equal; MQA: 1; GQA:
between), ``q_len`` new tokens attending to ``kv_len`` keys of ``head_dim``. ``kv_bytes`` / ``act_bytes`` are
bytes per element of the K/V cache and of Q/O. FLOPs: 4 per (query, key, head-dim) triple (QK^T and PV).

- **FlashAttention-2** (Dao 2023): one block per (sequence, query head, 128-query tile), 4 warps, K/V streamed
  through shared memory in 64-key tiles (``Flash_fwd_kernel_traits<128, 128, 64, 4>``, the sm80/sm90 choice for
  head dim 128 in ``flash_fwd_launch_template.h``); S and P never reach DRAM. Compute at tensor peak x the preset's
  ``attention_efficiency``; the MMAs cover all 128 query rows of the tile even when fewer queries exist (decode:
  one), as the kernel has no per-warp early exit. DRAM: Q, O once, K and V once per KV head; L2: every query tile
  re-reads its head's K/V. Causal masking halves the FLOPs when queries and keys are the same tokens (load
  imbalance between tiles ignored).
- **Naive decode** (eager frameworks): three kernels (QK^T, softmax, PV), scores written to and read back from
  DRAM, and K/V read once per *query* head (GQA/MQA K/V expanded with repeat_kv, as eager implementations do).
- **FlashDecoding** (Dao, Haziza, Massa, Sizov 2023): K/V split into chunks so that (batch x KV heads x splits)
  blocks fill the GPU; each block serves all query heads of its KV head (K/V read once per KV head; FA2's
  ``seqlenq_ngroups_swapped`` packing); a second kernel combines the partial outputs. Split count by
  FlashAttention's efficiency heuristic (fewest splits within 85% of the best wave efficiency). Block tile as
  FA2's split-KV kernel: 64 query rows, 128-key tiles for head dim <= 128 (``run_mha_fwd_splitkv_dispatch``).
  The combine (:func:`combine_kernel`) loops over the splits with one dependent L2 load per split, so it costs
  ``(1 + splits) x l2_latency`` (the preset's measured L2 hit latency) when that exceeds its bandwidth time.
  Which kernel one split runs depends on the host entry (``entry``): ``flash_attn_with_kvcache`` appending K/V keeps
  the split kernel; ``mha_fwd`` (``flash_attn_func``, xformers' ``flash.FwOp``) runs FA2's ordinary forward kernel
  (128-row tiles: twice the padded MMA rows) with no combine.
- **Lean Attention** (Sanovar et al. 2024): stream-K: the total work (batch x KV heads x KV tiles) is divided
  equally over one wave of ``2 x SMs`` blocks (:func:`lean_grid`), so there is no wave quantisation; partial outputs
  of heads cut between blocks are fixed up inside the same kernel (one launch, plus one DRAM round trip to
  synchronise, then one L2 round trip per peer partial, :func:`reduction_chain`). Tile, grid and fix-up are
  those of the authors' kernel as merged into onnxruntime
  (``contrib_ops/cuda/bert/lean_attention``, a modification of FA2's split-KV kernel): FA2's split-KV tile (64 query
  rows with the GQA group packed in, 128-key tiles for head dim 128) and FA2's K/V loop.
- **Masked multi-head attention** (MMHA: FasterTransformer's and TensorRT-LLM's generation kernel,
  ``masked_multihead_attention_kernel``, :func:`masked_mha`): one 256-thread block per (sequence, query head) on CUDA
  cores, so a GQA group's query heads each read their KV head's K and V (from L2 after the first); TensorRT-LLM
  runs it whenever its XQA kernel does not apply (v0.9.0: XQA only for 8 query heads per KV head).

**Per-block bandwidth and the online-softmax dependency.** All three fused kernels run FA2's K/V loop
(``flash_fwd_kernel.h``): wait for K(j) -> issue V(j) -> S = QK(j)^T -> wait for V(j) -> issue K(j+1) -> softmax
rescale, O += PV(j). K and V each have one shared-memory buffer, and each load is issued only after the previous
one has landed, so exactly **one K/V tile is in flight** per block and every tile costs one DRAM round trip that
only the matching half of the tile's math can hide. Little's law (:func:`hardware.gpu.kernels.block_bandwidth`)
then caps a block at ``tile_keys x head_dim x kv_bytes / dram_latency``: FA2 (64 keys x 128 x 2 B = 16 kB) at
32.8 GB/s with the presets' 500 ns, FlashDecoding's 128-key tile at 65.5 GB/s. The serial chain over a block's
KV tiles (the running max and sum of the online softmax carry from tile to tile) is why a block cannot fetch
further ahead. Saturating an A100's 1835 GB/s x 500 ns = 918 kB in flight thus takes >= 56 FA2 blocks; FA2 at
decode launches only batch x query heads blocks (32 for a batch-1 Llama-2-7B layer), each streaming its head's
whole context serially, and pays its 128-row MMAs on a single query, so it is latency- or padding-bound and uses
a fraction of the GPU. FlashDecoding and Lean spread the context over >= one full wave of blocks.

**Modes.** ``fast`` times each grid with the closed form of :func:`hardware.gpu.kernels.run_waves` on an average
block (causal tiles by the mean of their own K/V walks, :func:`causal_tile_keys`; FlashDecoding's splits as equal;
Lean's blocks as the busiest); ``detailed`` gives :mod:`hardware.gpu.tile_sim` every block's own work in launch
order: causal query tile ``i`` walks keys up to its last row (``n_block_max`` in ``flash_fwd_kernel.h``),
FlashDecoding's last split is short, Lean's first ``granules mod blocks`` blocks get one granule more.

Resident blocks per SM follow from shared memory (Q tile + one K and one V tile), registers (fp32 O accumulators
and score tile plus 64 registers a thread, an assumption) and the thread limit: FA2's 64 kB of shared memory gives
2 blocks per A100 SM (as the FA2 source's comments say for its 48 kB variant), FlashDecoding's and Lean's 80 kB give 2.
"""

from __future__ import annotations

import math

from hardware.errors import HwsimError
from hardware.gpu.kernels import KernelResult, WaveTiming, finish, memory_bound, run_waves, sequence
from hardware.gpu.spec import GpuTarget
from hardware.gpu.tile_sim import BlockWork, Grid, simulate_grid

Q_TILE = 128  # FA2 forward query rows per block (kBlockM)
KV_TILE = 64  # FA2 forward keys per K/V tile (kBlockN); also Lean's granule
FD_Q_TILE = 64  # FA2 split-KV kernel query rows per block
WARPS = 4


def fd_kv_tile(head_dim: int) -> int:
    """Keys per K/V tile of FA2's split-KV kernel (``run_mha_fwd_splitkv_dispatch``)."""
    return 256 if head_dim <= 64 else (128 if head_dim <= 128 else 64)


def kv_inflight_bytes(kv_tile: int, head_dim: int, kv_bytes: float) -> float:
    """Bytes one fused-attention block keeps in flight: one K or V tile (FA2's loop; see the module docstring)."""
    return kv_tile * head_dim * kv_bytes


def _mma_rows(unit: str, rows: int, tile_rows: int) -> int:
    """Query rows a block's math covers: tensor-core MMAs run the whole ``tile_rows`` tile (padding included);
    CUDA-core (fp32, which FA2 itself does not support) math covers only the real rows."""
    return tile_rows * math.ceil(rows / tile_rows) if unit == "tensor" else rows


def _fused_blocks_per_sm(target: GpuTarget, rows: int, head_dim: int, kv_bytes: float, act_bytes: float,
                         kv_tile: int = KV_TILE) -> int:
    """Resident blocks per SM of a fused attention kernel: Q tile + one K and one V tile in shared memory,
    fp32 O accumulators and score tile in registers."""
    smem = rows * head_dim * act_bytes + 2 * kv_tile * head_dim * kv_bytes
    regs = (rows * head_dim + rows * kv_tile) * 4 + WARPS * 32 * 64 * 4
    threads = WARPS * 32
    return max(1, int(min(target.shared_memory_per_sm.si // smem, target.registers_per_sm.si // regs,
                          target.max_threads_per_sm.si // threads)))


def _empty(name: str) -> KernelResult:
    """An attention over no queries or no keys (a zero-size dimension): nothing to launch."""
    return KernelResult(name, 0.0, 0.0, 0.0, 0.0, "launch", 0.0, "cuda", 0)


def _check(heads: int, kv_heads: int) -> None:
    if kv_heads < 1 or heads < kv_heads or heads % kv_heads:
        raise ValueError(f"heads ({heads}) must be a multiple of kv_heads ({kv_heads})")


def _sizes(batch: int, heads: int, kv_heads: int, q_len: int, kv_len: int, head_dim: int, kv_bytes: float,
           act_bytes: float) -> tuple[float, float, float]:
    """(K+V bytes read once per KV head, Q+O bytes, useful FLOPs)."""
    kv = 2.0 * batch * kv_heads * kv_len * head_dim * kv_bytes
    qo = 2.0 * batch * heads * q_len * head_dim * act_bytes
    flops = 4.0 * batch * heads * q_len * kv_len * head_dim
    return kv, qo, flops


def causal_tile_keys(past: int, q_len: int, kv_len: int) -> tuple[float, float]:
    """(keys, K/V tiles) a causal FA2 query tile walks, averaged over the ``ceil(q_len / Q_TILE)`` tiles: tile ``i``
    loads whole K/V tiles up to its last row's keys, ``min(kv_len, past + (i + 1) x Q_TILE)`` (``n_block_max``),
    diagonal tile included. The block-by-block timing (``detailed``) gives each tile exactly these; the mean keys
    per *query* (``past + (q_len + 1) / 2``, the useful FLOPs) undercount a tile's work, by up to half for one tile."""
    q_tiles = math.ceil(q_len / Q_TILE)
    keys = [min(kv_len, past + (i + 1) * Q_TILE) for i in range(q_tiles)]
    return sum(keys) / q_tiles, sum(math.ceil(k / KV_TILE) for k in keys) / q_tiles


def flash_attention2(target: GpuTarget, batch: int, heads: int, kv_heads: int, q_len: int, kv_len: int,
                     head_dim: int, kv_bytes: float = 2.0, act_bytes: float = 2.0, causal: bool = True,
                     dtype: str = "fp16", name: str = "flash_attention2", mode: str = "fast") -> KernelResult:
    """FlashAttention-2 forward (prefill; a chunk of ``q_len`` queries after ``kv_len - q_len`` cached keys when
    ``kv_len > q_len``, as in chunked prefill)."""
    _check(heads, kv_heads)
    if min(batch, heads, q_len, kv_len) <= 0:
        return _empty(name)
    kv, qo, flops = _sizes(batch, heads, kv_heads, q_len, kv_len, head_dim, kv_bytes, act_bytes)
    # causal masks align bottom-right (FlashAttention >= 2.1): query row r of a chunk that follows ``past`` cached
    # keys sees past + r + 1 of them, and each block skips the K/V tiles wholly above its diagonal
    past = kv_len - q_len
    causal_tiles = causal and past >= 0 and kv_len > 1
    visible = 1.0
    if causal_tiles:
        visible = (past + (q_len + 1) / 2.0) / kv_len
    flops *= visible
    peak, unit = target.peak_flops(dtype)
    sm_rate = peak * target.attention_efficiency.si / target.sms
    q_tiles = math.ceil(q_len / Q_TILE)
    rows = min(Q_TILE, q_len)
    tiles = batch * heads * q_tiles
    keys, key_tiles = causal_tile_keys(past, q_len, kv_len) if causal_tiles else (kv_len, math.ceil(kv_len / KV_TILE))
    tile_flops = 4.0 * _mma_rows(unit, rows, Q_TILE) * key_tiles * KV_TILE * head_dim
    tile_l2 = 2.0 * keys * head_dim * kv_bytes + 2.0 * rows * head_dim * act_bytes
    bps = _fused_blocks_per_sm(target, Q_TILE, head_dim, kv_bytes, act_bytes)
    inflight = kv_inflight_bytes(KV_TILE, head_dim, kv_bytes)
    if mode == "detailed":
        works = []
        for i in range(q_tiles):
            rows_i = min(Q_TILE, q_len - i * Q_TILE)
            keys_i = min(kv_len, past + (i + 1) * Q_TILE) if causal_tiles else kv_len
            works.append((4.0 * _mma_rows(unit, rows_i, Q_TILE) * math.ceil(keys_i / KV_TILE) * KV_TILE * head_dim,
                          2.0 * keys_i * head_dim * kv_bytes + 2.0 * rows_i * head_dim * act_bytes))
        w, tile_l2 = _detailed(target, batch * heads, works, kv + qo, bps, sm_rate, inflight)
    else:
        w = run_waves(target, tiles, bps, WARPS * 32, tile_flops, sm_rate, (kv + qo) / tiles, tile_l2, inflight)
    return finish(target, name, w.time_s, w.compute_s, w.memory_s, flops, kv + qo, tile_l2 * tiles, w.occupancy,
                  unit, {"kind": "flash_attention2", "tiles": tiles, "waves": w.waves, "kv_bytes": kv},
                  w.latency_limited)


def naive_decode(target: GpuTarget, batch: int, heads: int, kv_heads: int, kv_len: int, head_dim: int,
                 kv_bytes: float = 2.0, act_bytes: float = 2.0, q_len: int = 1,
                 name: str = "attention_naive", mode: str = "fast") -> KernelResult:
    """Unfused decode attention: QK^T, softmax and PV as three kernels, scores through DRAM (memory-bound
    streaming kernels: both modes time them at the achievable bandwidth)."""
    _check(heads, kv_heads)
    k_expanded = batch * heads * kv_len * head_dim * kv_bytes  # repeat_kv: K (and V) once per query head
    q = batch * heads * q_len * head_dim * act_bytes
    scores = batch * heads * q_len * kv_len * act_bytes
    half = 2.0 * batch * heads * q_len * kv_len * head_dim
    score = memory_bound(target, f"{name}.score", q + k_expanded + scores, half)
    softmax = memory_bound(target, f"{name}.softmax", 2 * scores, 5.0 * scores / act_bytes)
    pv = memory_bound(target, f"{name}.pv", scores + k_expanded + q, half)
    return sequence(name, [score, softmax, pv], {"kind": "naive", "kv_bytes": 2 * k_expanded})


def _splits_heuristic(blocks: int, slots: int, n_blocks: int, max_splits: int = 128) -> int:
    """FlashAttention-2's ``num_splits_heuristic`` (``flash_api.cpp``), called with ``slots`` = 2 x SMs ("we multiply
    number of SMs by 2 to hard-code the fact that we're using 128 threads per block"): one split when the
    (batch x heads x query-block) grid nearly fills the slots (>= 80%); else, over 1..min(128, slots, KV blocks)
    splits, skipping counts that give the same blocks per split as one fewer, the fewest splits whose wave
    efficiency ``waves / ceil(waves)`` is within 85% of the best."""
    if blocks >= 0.8 * slots:
        return 1
    top = max(1, min(max_splits, slots, n_blocks))

    def eligible(s: int) -> bool:
        return s == 1 or math.ceil(n_blocks / s) != math.ceil(n_blocks / (s - 1))

    effs = {}
    for s in range(1, top + 1):
        if eligible(s):
            waves = blocks * s / slots
            effs[s] = waves / math.ceil(waves)
    best = max(effs.values())
    return next(s for s, e in effs.items() if e >= 0.85 * best)


def flash_decoding(target: GpuTarget, batch: int, heads: int, kv_heads: int, kv_len: int, head_dim: int,
                   kv_bytes: float = 2.0, act_bytes: float = 2.0, q_len: int = 1, dtype: str = "fp16",
                   splits: int | None = None, name: str = "attention_flashdecoding", mode: str = "fast",
                   slots_per_sm: int = 2, entry: str = "kvcache") -> KernelResult:
    """Split-KV decode attention plus its combine kernel. ``splits``: a fixed split count (1 = FA2's decode kernel
    without KV split, ``flash_attn_with_kvcache(num_splits=1)``); ``slots_per_sm``: the SM multiple the split
    heuristic fills, 2 from FlashAttention v2.5.7 (2024-04-07, "we multiply number of SMs by 2 ... 128 threads per
    block"), 1 in v2.2-v2.5.6.

    ``entry``: the FlashAttention host function that launches it (``run_mha_fwd`` in ``flash_api.cpp``, v2.2.4 to
    v2.6.3 alike): ``kvcache`` = ``flash_attn_with_kvcache`` appending the new token's K/V (``force_split_kernel``):
    the split-KV kernel even for one split; ``fwd`` = ``mha_fwd`` (``flash_attn_func``, xformers' ``flash.FwOp``):
    when the heuristic picks one split (``num_splits <= 1 && !force_split_kernel``) the call runs FA2's ordinary
    forward kernel instead (128 x 64 tiles on A100, :func:`flash_attention2`), on the swapped layout
    (``seqlenq_ngroups_swapped``: batch x KV heads blocks of ``heads / kv_heads`` query rows) when ``q_len`` is 1,
    with no combine kernel."""
    _check(heads, kv_heads)
    if entry not in ("kvcache", "fwd"):
        raise ValueError(f"entry must be 'kvcache' or 'fwd', not {entry!r}")
    kv, qo, flops = _sizes(batch, heads, kv_heads, q_len, kv_len, head_dim, kv_bytes, act_bytes)
    group = heads // kv_heads * q_len
    peak, unit = target.peak_flops(dtype)
    sm_rate = peak * target.attention_efficiency.si / target.sms
    rows = _mma_rows(unit, group, FD_Q_TILE)
    kv_tile = fd_kv_tile(head_dim)
    bps = _fused_blocks_per_sm(target, max(rows, FD_Q_TILE), head_dim, kv_bytes, act_bytes, kv_tile)
    base = batch * kv_heads
    s = splits or _splits_heuristic(base, slots_per_sm * target.sms, math.ceil(kv_len / kv_tile))
    if entry == "fwd" and s == 1:
        fa2_heads, fa2_rows = (kv_heads, group) if q_len == 1 else (heads, q_len)
        r = flash_attention2(target, batch, fa2_heads, kv_heads, fa2_rows, kv_len, head_dim, kv_bytes, act_bytes,
                             causal=False, dtype=dtype, name=f"{name}.fwd", mode=mode)
        return sequence(name, [r], {"kind": "flashdecoding", "splits": 1, "kernel": "fwd", "tiles": r.detail["tiles"],
                                    "waves": r.detail["waves"], "kv_bytes": kv})
    chunk = math.ceil(kv_len / s)
    tiles = base * s
    tile_kv = 2.0 * chunk * head_dim * kv_bytes
    tile_q = group * head_dim * act_bytes
    tile_flops = 4.0 * rows * math.ceil(chunk / kv_tile) * kv_tile * head_dim
    partial_bytes = batch * heads * q_len * s * (head_dim + 2) * 4.0 if s > 1 else 0.0
    tile_dram = tile_kv + tile_q + (partial_bytes / tiles if s > 1 else tile_q)
    inflight = kv_inflight_bytes(kv_tile, head_dim, kv_bytes)
    if mode == "detailed":  # FA2's split-KV: split j walks key blocks [j x per_split, (j + 1) x per_split)
        n_blocks = math.ceil(kv_len / kv_tile)
        per_split = math.ceil(n_blocks / s)
        side = tile_q + (partial_bytes / tiles if s > 1 else tile_q)
        works = []
        for j in range(s):
            keys_j = max(0, min(kv_len, (j + 1) * per_split * kv_tile) - j * per_split * kv_tile)
            works.append((4.0 * rows * math.ceil(keys_j / kv_tile) * kv_tile * head_dim,
                          2.0 * keys_j * head_dim * kv_bytes + side))
        w, tile_dram = _detailed(target, base, works, 0.0, bps, sm_rate, inflight, same_bytes=True)
    else:
        w = run_waves(target, tiles, bps, WARPS * 32, tile_flops, sm_rate, tile_dram, tile_dram, inflight)
    main = finish(target, f"{name}.split", w.time_s, w.compute_s, w.memory_s, flops, kv + qo + partial_bytes,
                  tile_dram * tiles, w.occupancy, unit, latency_limited=w.latency_limited)
    parts = [main]
    if s > 1:
        parts.append(combine_kernel(target, f"{name}.combine", batch * heads * q_len, head_dim, s,
                                    partial_bytes + qo / 2, 3.0 * partial_bytes / 4))
    return sequence(name, parts, {"kind": "flashdecoding", "splits": s, "tiles": tiles, "waves": w.waves,
                                  "kv_bytes": kv})


def combine_rows_per_block(head_dim: int) -> int:
    """Output rows one block of FA2's combine kernel reduces (``kBlockM`` of ``combine_attn_seqk_parallel`` in
    ``run_mha_fwd_splitkv_dispatch``): 4 for head dims that are multiples of 128, 8 for multiples of 64, else 16."""
    return 4 if head_dim % 128 == 0 else (8 if head_dim % 64 == 0 else 16)


def reduction_chain(target: GpuTarget, partials: int) -> float:
    """Seconds of a loop that reduces ``partials`` L2-resident partial results with one dependent load per
    partial, after one round trip for the log-sum-exps: ``(1 + partials) x l2_latency`` (0 if the preset has no
    L2 latency). The loop's loads are issued one iteration at a time (the trip count is a runtime value), so each
    waits for the previous one's data."""
    latency = target.l2_latency.si if target.l2_latency is not None else 0.0
    return (1 + partials) * latency if partials > 0 else 0.0


def combine_kernel(target: GpuTarget, name: str, rows: int, head_dim: int, splits: int, bytes_: float,
                   flops: float) -> KernelResult:
    """FA2's split-KV combine (``combine_attn_seqk_parallel``): blocks of 128 threads, each reducing
    :func:`combine_rows_per_block` output rows over the ``splits`` fp32 partials the split kernel just wrote (L2
    hits). A block reads the splits' log-sum-exps in one round trip, then loops over the splits, one partial
    output tile per iteration: its time is the :func:`reduction_chain`; the kernel takes the longer of that
    (times the waves of resident blocks) and streaming its bytes at the achievable bandwidth."""
    blocks = math.ceil(rows / combine_rows_per_block(head_dim))
    per_sm = max(1, int(target.max_threads_per_sm.si // 128))
    waves = math.ceil(blocks / (target.sms * per_sm))
    chain = waves * reduction_chain(target, splits)
    stream = bytes_ / target.achievable_dram_bandwidth
    compute = flops / target.cuda_core_fp32.si
    body = max(chain, stream, compute)
    result = finish(target, name, body, compute, max(chain, stream), flops, bytes_, 0.0, 1.0, "cuda",
                    {"blocks": blocks, "chain_s": chain}, latency_limited=chain > stream)
    return result


def lean_grid(target: GpuTarget, batch: int, kv_heads: int, n_blocks: int, m_blocks: int = 1) -> int:
    """CTAs of the Lean Attention kernel (``get_num_splits_and_buffer_sizes`` in the authors' kernel as merged into
    onnxruntime, ``contrib_ops/cuda/bert/lean_attention/lean_api.cc``): ``2 x SMs`` ("at least two tiles per CTA ...
    and then 2 CTAs per SM"), capped at 32 CTAs per (batch, KV head, query block); for small problems (at most
    ``4 x SMs`` tiles) half the tiles, i.e. two tiles per CTA, under the same cap. ``n_blocks`` are the KV tiles of
    one head."""
    sms = target.sms
    tiles = m_blocks * n_blocks * batch * kv_heads
    cap = 32 * kv_heads * batch * m_blocks
    grid = min((tiles + 1) // 2, cap) if tiles <= 4 * sms else min(2 * sms, cap)
    return max(1, min(grid, tiles))


def lean_attention(target: GpuTarget, batch: int, heads: int, kv_heads: int, kv_len: int, head_dim: int,
                   kv_bytes: float = 2.0, act_bytes: float = 2.0, q_len: int = 1, dtype: str = "fp16",
                   name: str = "attention_lean", mode: str = "fast") -> KernelResult:
    """Stream-K decode attention: equal work per block, one wave, fix-up in the same kernel.

    The structure is the authors' kernel as merged into onnxruntime (``lean_fwd_launch_template.h``,
    ``lean_api.cc``): FA2's split-KV tile (``Flash_fwd_kernel_traits<d, 64, kBlockN, 4>``, kBlockN 256 / 128 / 64
    for head dim <= 64 / <= 128 / larger, the GQA group packed into the 64 query rows as FA2's
    ``seqlenq_ngroups_swapped``), the grid of :func:`lean_grid`, each block taking ``ceil`` or ``floor`` of
    (tiles / blocks) consecutive KV tiles across head boundaries, and the block that ends a head reducing the other
    blocks' fp32 partials of that head after waiting on their sync flags (one DRAM round trip)."""
    _check(heads, kv_heads)
    if min(batch, heads, q_len, kv_len) <= 0:
        return _empty(name)
    kv, qo, flops = _sizes(batch, heads, kv_heads, q_len, kv_len, head_dim, kv_bytes, act_bytes)
    group = heads // kv_heads * q_len
    peak, unit = target.peak_flops(dtype)
    sm_rate = peak * target.attention_efficiency.si / target.sms
    kv_tile = fd_kv_tile(head_dim)
    rows = _mma_rows(unit, group, FD_Q_TILE)
    m_blocks = math.ceil(group / FD_Q_TILE)
    bps = _fused_blocks_per_sm(target, max(rows, FD_Q_TILE), head_dim, kv_bytes, act_bytes, kv_tile)
    n_blocks = math.ceil(kv_len / kv_tile)
    granules = batch * kv_heads * m_blocks * n_blocks
    ctas = lean_grid(target, batch, kv_heads, n_blocks, m_blocks)
    per_cta = math.ceil(granules / ctas)
    heads_touched = min(batch * kv_heads * m_blocks, ctas) + ctas  # each block starts one segment, may cross into another
    partial_bytes = 2.0 * ctas * group * (head_dim + 2) * 4.0 if ctas > batch * kv_heads * m_blocks else 0.0
    # Blocks get floor or ceil(granules / ctas) granules: DRAM, shared by all blocks, sees the average bytes (the
    # total is what it must move); the latency chain, the L2 stream and the math of the busiest block see the ceil.
    row_tile = rows / m_blocks  # MMA rows of one query block
    side = (qo + partial_bytes) / ctas
    tile_dram = kv / ctas + side
    tile_stream = 2.0 * per_cta * kv_tile * head_dim * kv_bytes + side
    tile_flops = 4.0 * row_tile * per_cta * kv_tile * head_dim
    inflight = kv_inflight_bytes(kv_tile, head_dim, kv_bytes)
    if mode == "detailed":
        few, extra = divmod(granules, ctas)
        runs = []
        for count, g in ((extra, few + 1), (ctas - extra, few)):
            if count:
                kv_g = 2.0 * g * kv_tile * head_dim * kv_bytes
                work = BlockWork(4.0 * row_tile * g * kv_tile * head_dim, kv * g / granules + side, kv_g + side)
                runs.append((count, work))
        w, _ = simulate_grid(target, Grid(tuple(runs), bps, WARPS * 32, sm_rate, inflight))
    else:
        w = run_waves(target, ctas, bps, WARPS * 32, tile_flops, sm_rate, tile_dram, tile_stream, inflight)
    # The block that ends a head waits on its peers' sync flags (one DRAM round trip), then reduces their
    # partials one dependent L2 load at a time (``reduction_chain``): up to ceil(CTAs / heads) peers per head.
    peers = math.ceil(ctas / (batch * kv_heads * m_blocks)) if partial_bytes else 0
    body = w.time_s + (target.dram_latency.si + reduction_chain(target, peers) if partial_bytes else 0.0)
    return finish(target, name, body, w.compute_s, w.memory_s, flops, kv + qo + partial_bytes, tile_dram * ctas,
                  w.occupancy, unit, {"kind": "lean", "ctas": ctas, "granules_per_cta": per_cta,
                                      "segments": heads_touched, "kv_bytes": kv}, w.latency_limited)


def _detailed(target: GpuTarget, repeats: int, works: list[tuple[float, float]], unique_dram: float, bps: int,
              sm_rate: float, inflight: float, same_bytes: bool = False) -> tuple[WaveTiming, float]:
    """Time ``repeats`` copies (one per sequence x head) of a pattern of blocks ``(flops, streamed bytes)`` block
    by block. The kernel's unique DRAM bytes are shared out in proportion to the bytes each block streams (or are
    the streamed bytes themselves, ``same_bytes``). Returns the timing and the mean bytes a block streams."""
    total_stream = repeats * sum(b for _, b in works)
    pattern = tuple((1, BlockWork(f, b if same_bytes else unique_dram * b / total_stream, b)) for f, b in works)
    grid = Grid(pattern * repeats, bps, WARPS * 32, sm_rate, inflight)
    w, _ = simulate_grid(target, grid)
    return w, total_stream / (repeats * len(works))


#: MMHA's threads per block (``THDS_PER_BLOCK`` 256 in TensorRT-LLM's ``mmha_launch_kernel_dispatch``; its launcher
#: enlarges the block, up to 1024 threads, only when batch x heads is below 4 x SMs, and FasterTransformer's launcher
#: and llm-awq's copy of it take 64 / 128 / 256 threads by context length: neither is modelled)
MMHA_THREADS = 256
#: MMHA's unroll of its K and V loads (``K_LOOP_UNROLL`` 4, ``V_LOOP_UNROLL`` 8) and the bytes of one load (16, or 8
#: for an 8-bit cache): a block keeps ``threads x unroll x load`` bytes in flight in each loop
MMHA_K_UNROLL, MMHA_V_UNROLL = 4, 8
#: warp-instructions MMHA's block issues per (query head, key) in its K loop (Q.K^T) and its V loop, at head dim 128
#: and 256 threads, by the cache's element format (``fp16``: 16-bit, ``fp8``: e4m3, ``int8``) and whether the part
#: converts fp8 in hardware (the parts with FP8 tensor cores, sm_89 and later, have ``F2FP.F16.E4M3.UNPACK_B``;
#: sm_80 decodes fp8 in software). Counted in the SASS of TensorRT-LLM's kernel
#: (decoderMaskedMultiheadAttentionTemplate.h @ 71d8d4d3, April 2024, the v0.9 era), compiled unmodified by NVRTC 12.3
#: for sm_80 and sm_90 and walked one loop iteration at a time: the K loop covers 8 keys per warp per iteration (16
#: threads per key, 4 unrolled steps), the V loop 16; nvcc 13.0 agrees within 3% (docs/research/gpu_published_decode.md
#: 16; ``benchmarks/mmha_sass/run.sh`` recounts them). Per key they are: the 128 products (2 FMUL + 2 FFMA), 4.5 FADD
#: of partial sums and the 16-lane SHFL butterfly, the scale and the always-executed ALiBi FFMA, 4.5 HADD2.F32
#: conversions (+ 2 F2FP unpacks for fp8; int8 converts each element with I2F and scales it in fp32), 4-6
#: integer/address instructions, predicates, loads and the score's STS; the V loop 4 FFMA, the conversions, addresses
#: and the probabilities' LDS. A 4-byte cache (not counted) is taken as the 16-bit one; a 4-bit cache (not in v0.9's
#: MMHA) as the 8-bit one of its kind (int4 as int8, fp4 as fp8) plus one unpacking instruction per element
#: (:mod:`hardware.gpu.lowbit`'s sequence), 4 more per key in each loop: assumptions
MMHA_LOOP_INSTRUCTIONS = {("fp16", True): (25.50, 13.19), ("fp16", False): (26.12, 13.19),
                          ("fp8", True): (28.25, 16.62), ("fp8", False): (102.00, 87.00),
                          ("int8", True): (35.25, 22.62), ("int8", False): (35.50, 22.62)}
#: keys one block covers per K-loop and per V-loop iteration (8 warps x 8 and x 16): the loops run whole iterations,
#: masking the keys past the context
MMHA_K_LOOP_KEYS, MMHA_V_LOOP_KEYS = 64, 128
#: warp-instructions per (query head, key) of the two softmax passes over the scores in shared memory (exp and sum,
#: normalise), same SASS: 0.41 + 0.28 on sm_90, 0.37 + 0.28 on sm_80
MMHA_SOFTMAX_INSTRUCTIONS = {True: 0.69, False: 0.65}
#: warp-instructions one MMHA block issues once, outside its per-key loops, by the same keys as
#: :data:`MMHA_LOOP_INSTRUCTIONS`: the prologue (warp 0 loads q and k, applies the GPT-NeoX rotary embedding with
#: powf/cosf/sinf, computes the new token's q.k and stores its K; the other 7 warps' address setup), the reductions
#: and barriers between the K and V loops, and the 16-group output reduction and store after the V loop. Counted by
#: emulating a whole 256-thread block of the same cubins on real data, with the arguments TensorRT-LLM 71d8d4d3
#: passes for Llama-2-7B (rotary dim 128, base 10^4, no bias, ALiBi or quantised output, linear cache, t = 1000;
#: every branch decided by the run; docs/research/gpu_published_decode.md 16): sm_90 fp16 2530 + 989 + 9 + 746, fp8
#: 2627 + 1073 + 9 + 731, int8 2552 + 956 + 9 + 765; sm_80 fp16 2323 + 963 + 110 + 755, fp8 2657 + 1252 + 110 +
#: 1084 (its software fp8 encoding is data-dependent: 4811-5405 over the extreme values), int8 2345 + 975 + 110 +
#: 809. For a GQA model 3 of 4 blocks skip the cache store, 18-41 fewer (527 on sm_80 fp8): not distinguished. The
#: prologue's rotary embedding is charged to models without one too. Not scaled with the head size (an assumption).
#: No GPU ran the counts: the emulator's semantics are inferred, checked against a numpy model of the kernel
MMHA_BLOCK_INSTRUCTIONS = {("fp16", True): 4274.0, ("fp16", False): 4151.0, ("fp8", True): 4440.0,
                           ("fp8", False): 5103.0, ("int8", True): 4282.0, ("int8", False): 4239.0}
#: warp schedulers per SM, each issuing one warp-instruction per clock: four processing blocks (SM sub-partitions)
#: per SM on Volta, Turing, Ampere, Ada and Hopper. Seen here: an NVIDIA developer-forum answer (thread 259827, "How
#: the 16 INT cores in a processing block in SM execute ...": each sub-partition has a single warp scheduler, warps are
#: assigned statically about 1/4 to each of the 4, an instruction with 16 units for 32 lanes takes 2 cycles) and the
#: GA10x whitepaper's "each SM has 4 partitions (... one warp scheduler, one dispatch unit ...)" as a third-party page
#: quotes it; the V100/A100/H100 whitepapers themselves were not retrieved
WARP_SCHEDULERS_PER_SM = 4


def mmha_cache_kind(kv_bytes: float, kv_format: str = "") -> str:
    """The kind of :data:`MMHA_LOOP_INSTRUCTIONS` a cache of ``kv_bytes`` bytes per element in storage format
    ``kv_format`` (``int8``, ``uint4``, ``float8e4m3``, ...; empty: by its width, an 8-bit one taken as fp8) runs:
    ``fp16``, ``fp8`` or ``int8``."""
    if kv_bytes >= 2.0:
        return "fp16"
    if kv_format.startswith(("int", "uint")):
        return "int8"
    return "fp8"


def mmha_instructions(kv_bytes: float, native_fp8: bool, head_dim: int, keys: int, kv_format: str = "") -> float:
    """Warp-instructions one MMHA block issues for one query over ``keys`` keys: its once-per-block work
    (:data:`MMHA_BLOCK_INSTRUCTIONS`) and its per-key loops (:data:`MMHA_LOOP_INSTRUCTIONS`, whole iterations). The
    kernel works on the head size rounded up to a power of two, at least 32 (the template's ``dh_max``: 80-112 run
    as 128); the loops are scaled by that over 128 (an assumption for sizes other than 128)."""
    kind = (mmha_cache_kind(kv_bytes, kv_format), native_fp8)
    k_instr, v_instr = MMHA_LOOP_INSTRUCTIONS[kind]
    if kv_bytes < 1.0:  # a packed 4-bit cache: one more unpacking instruction per element
        k_instr, v_instr = k_instr + 4.0, v_instr + 4.0
    k_keys = math.ceil(keys / MMHA_K_LOOP_KEYS) * MMHA_K_LOOP_KEYS
    v_keys = math.ceil(keys / MMHA_V_LOOP_KEYS) * MMHA_V_LOOP_KEYS
    dh_max = 1 << max(5, (max(1, head_dim) - 1).bit_length())
    return (MMHA_BLOCK_INSTRUCTIONS[kind] + (k_keys * k_instr + v_keys * v_instr) * dh_max / 128.0
            + keys * MMHA_SOFTMAX_INSTRUCTIONS[native_fp8])


#: registers a thread of MMHA holds: TensorRT-LLM's launcher notes "The max number of warps we can launch per SM is 32
#: limited by registers", i.e. 4 blocks of 256 threads on a 64k-register SM, 64 registers a thread; the SASS of the
#: counts above uses 56 (16-bit cache), 60 (fp8, sm_90) and 64 (fp8, sm_80, the launch bound): 4 blocks in each case
MMHA_REGS_PER_THREAD = 64
#: shared memory one block may use: the SM's, less the 1 KB the CUDA runtime reserves per block and the 2 KB TensorRT-LLM
#: keeps back (``mMaxSharedMemoryPerBlockOptin - 2048`` where it forces the multi-block mode)
MMHA_SMEM_RESERVED = 1024 + 2048


def masked_mha(target: GpuTarget, batch: int, heads: int, kv_heads: int, kv_len: int, head_dim: int,
               kv_bytes: float = 2.0, act_bytes: float = 2.0, q_len: int = 1, dtype: str = "fp16",
               name: str = "attention_mmha", mode: str = "fast", kv_format: str = "") -> KernelResult:
    """Masked multi-head attention, the decode kernel of FasterTransformer and TensorRT-LLM (``--set attention=mmha``).

    Structure, from TensorRT-LLM's ``decoderMaskedMultiheadAttentionTemplate.h`` and its launcher (the v0.8-v0.9
    sources; docs/research/gpu_published_decode.md 12): a grid of (query heads, sequences) blocks of
    :data:`MMHA_THREADS` threads (the block size TensorRT-LLM keeps when the grid has at least 4 x SMs blocks,
    ``kernel_total_blocks >= multi_processor_count * 4``), no split over the keys (the multi-block mode is off by
    default). FasterTransformer's and TinyChat's copies differ in the block size and Q.K^T precision
    (:data:`MMHA_THREADS`) and are timed as this one. Each block loads
    its query, walks all keys of its KV head (``hi_kv = hi / qhead_per_kv``) with 16-byte loads, computes Q.K^T in
    fp32 on CUDA cores (``MMHA_USE_HMMA`` is off), keeps the scores in shared memory, takes the softmax, then walks
    V accumulating in fp32. So every query head reads its KV head's whole K and V: through L2 ``heads / kv_heads``
    times, from DRAM once (the group's blocks are adjacent in the grid, ``blockIdx.x`` = query head, and run
    together). Its math is timed by the instructions it issues, counted in its SASS (:func:`mmha_instructions`:
    about 40 warp-instructions per query head and key for a 16-bit cache, 46 for fp8 on sm_90, of which only 14
    are the FP32 products and sums), at :data:`WARP_SCHEDULERS_PER_SM` warp-instructions per clock of the SM
    (:attr:`GpuTarget.sm_clock_hz`); a quantised cache's conversion is this kernel's own (the mapper adds no
    separate dequantisation for it). ``q_len`` > 1 (a draft's tokens) runs as that many query rows per
    block, each walking the keys (MMHA itself serves one query per sequence; assumption). ``dtype`` and ``mode`` are
    accepted for the decode-kernel interface: the math is fp32 on CUDA cores, and the uniform grid is timed in the
    closed form in both modes.

    The block keeps every key's fp32 score and its logit in shared memory, so a context whose scores do not fit one
    SM's shared memory is split (the launcher forces the multi-block mode then): the fewest key chunks that fit, one
    block each, whose partial outputs the last block of each head reduces after a DRAM round trip, one dependent L2
    load per partial (:func:`reduction_chain`). The opt-in multi-block mode for short grids is not modelled."""
    _check(heads, kv_heads)
    if min(batch, heads, q_len, kv_len) <= 0:
        return _empty(name)
    kv, qo, flops = _sizes(batch, heads, kv_heads, q_len, kv_len, head_dim, kv_bytes, act_bytes)
    per_key_smem = 4.0 + act_bytes  # the fp32 score and the logit of every key
    fixed_smem = 4 * head_dim * act_bytes  # Q, K, bias vectors and the reduction buffers
    room = target.shared_memory_per_sm.si - MMHA_SMEM_RESERVED - fixed_smem
    chunks = max(1, math.ceil(kv_len * per_key_smem / room)) if room > 0 else kv_len
    keys = math.ceil(kv_len / chunks)  # keys of one block
    blocks = batch * heads * chunks
    per_block_kv = 2.0 * keys * head_dim * kv_bytes  # its KV head's K and V (its chunk), through L2
    partial_bytes = batch * heads * q_len * chunks * (head_dim + 2) * 4.0 if chunks > 1 else 0.0
    q_block = 2.0 * q_len * head_dim * act_bytes  # Q in, O out
    tile_l2 = per_block_kv + q_block + partial_bytes / blocks
    tile_dram = (kv + partial_bytes) / blocks + q_block
    # the block's instructions at the SM's issue rate (warp-instructions per second), every scheduler issuing every
    # clock at the rated clock: a lower bound (an assumption: no stalls; on parts with 64 FP32 lanes per SM the FMA
    # pipe, which also runs IMAD, may bind instead, and a part below its rated clock is slower)
    clock = target.sm_clock_hz
    if clock is None:
        raise HwsimError(f"--set attention=mmha: target '{target.name}' has no fp32_lanes_per_sm (FP32 CUDA cores "
                         "per SM, from its architecture whitepaper), which times MMHA's instruction issue; add it")
    native_fp8 = target.tensor_peak.fp8 is not None
    tile_work = q_len * mmha_instructions(kv_bytes, native_fp8, head_dim, keys, kv_format)
    sm_rate = WARP_SCHEDULERS_PER_SM * clock
    load = 8.0 if kv_bytes <= 1 else 16.0
    k_inflight = MMHA_THREADS * MMHA_K_UNROLL * load
    v_inflight = MMHA_THREADS * MMHA_V_UNROLL * load
    inflight = 2.0 / (1.0 / k_inflight + 1.0 / v_inflight)  # K and V loops stream equal bytes
    smem = keys * per_key_smem + fixed_smem + 1024  # + the runtime's 1 KB per block
    bps = max(1, int(min(target.max_threads_per_sm.si // MMHA_THREADS,
                         target.registers_per_sm.si // (MMHA_THREADS * MMHA_REGS_PER_THREAD * 4),
                         target.shared_memory_per_sm.si // smem)))
    w = run_waves(target, blocks, bps, MMHA_THREADS, tile_work, sm_rate, tile_dram, tile_l2, inflight)
    body = w.time_s + (target.dram_latency.si + reduction_chain(target, chunks) if chunks > 1 else 0.0)
    return finish(target, name, body, w.compute_s, w.memory_s, flops, kv + qo + partial_bytes, tile_l2 * blocks,
                  w.occupancy, "cuda", {"kind": "mmha", "blocks": blocks, "chunks": chunks, "waves": w.waves,
                                        "instructions": tile_work * blocks,
                                        "blocks_per_sm": bps, "kv_bytes": kv, "l2_kv_bytes": per_block_kv * blocks},
                  w.latency_limited)


DECODE_KERNELS = {"naive": naive_decode, "flashdecoding": flash_decoding, "lean": lean_attention,
                  "mmha": masked_mha}
