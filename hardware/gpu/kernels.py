"""Kernel results and the pieces every GPU kernel model shares: waves of thread blocks, memory-bound kernels,
launch overhead and energy.

Timing model (first principles, calibrated by the preset's efficiencies):

- A kernel is a grid of thread blocks ("tiles"). ``blocks_per_sm`` of them are resident on each SM at once, so
  the grid runs in ``waves = ceil(tiles / (SMs x blocks_per_sm))``. Within a wave of ``a`` active tiles each tile
  takes ``max(compute, DRAM bytes / DRAM share, L2 bytes / L2 share, streamed bytes / Little's-law rate)``:
  compute at the SM's calibrated rate shared by the blocks resident on it, DRAM and L2 bandwidth shared equally by
  the ``a`` active tiles. Compute-bound kernels therefore show wave quantisation (one tile too many costs a whole
  wave); memory-bound ones mostly do not, because the last, partial wave gets more bandwidth per tile.
- **Per-block bandwidth (Little's law).** A block can only have the bytes its pipeline has issued and not yet
  consumed in flight; each load takes the preset's ``dram_latency`` to return, so one block streams at most
  ``bytes in flight / dram_latency`` (:func:`block_bandwidth`). The bytes in flight are a property of the kernel,
  derived in its module from its shared-memory pipeline (a cp.async pipeline of ``s`` stages has ``s - 1`` stages
  in flight while one is consumed; FlashAttention's K/V loop has exactly one K or V tile in flight, see
  :mod:`hardware.gpu.attention`). The cap applies to every byte the block streams into shared memory (its L2
  traffic, which includes its DRAM traffic): blocks that share data through L2 run in step and wait on the same
  DRAM fill, and the preset has no separate L2 latency. The whole GPU needs ``achievable DRAM bandwidth x
  dram_latency`` bytes in flight to saturate DRAM (A100-80GB: 1835 GB/s x 500 ns = 918 kB, 8.5 kB per SM), so a
  grid of few blocks with small pipelines cannot, however long each block runs. A wave whose memory time is set
  by this cap rather than by its bandwidth share is reported as ``latency``-bound.
- Every kernel pays the preset's ``launch_overhead`` on top of its body: the measured per-kernel time of
  back-to-back launches of a near-empty kernel (launch processing, block dispatch, the first DRAM round trip,
  completion; :func:`finish`). ``--set launch=graph`` replaces it with ``graph_launch_overhead``.
- Energy: FLOPs x energy per FLOP of the unit used (tensor or CUDA cores) + bytes x energy per bit at DRAM and L2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hardware.gpu.spec import GpuTarget

#: Which limit set a kernel's time.
BOUNDS = ("compute", "memory", "latency", "launch", "link")


@dataclass
class KernelResult:
    """One kernel (or a short fixed sequence of kernels, ``launches`` > 1) and what it achieved.

    ``time_s`` includes launch overhead; ``flops`` are useful FLOPs (not padding); ``dram_bytes`` / ``l2_bytes``
    the bytes moved at each level; ``unit`` is ``tensor`` or ``cuda`` (which FLOP energy applies); ``occupancy``
    the average fraction of the GPU's resident-thread slots in use over the kernel's waves.
    """

    name: str
    time_s: float
    flops: float
    dram_bytes: float
    l2_bytes: float
    bound: str
    occupancy: float
    unit: str = "cuda"
    launches: int = 1
    detail: dict = field(default_factory=dict)

    @property
    def achieved_flops_per_s(self) -> float:
        """Useful FLOP/s over the kernel's time."""
        return self.flops / self.time_s if self.time_s > 0 else 0.0

    @property
    def achieved_bytes_per_s(self) -> float:
        """DRAM bytes/s over the kernel's time."""
        return self.dram_bytes / self.time_s if self.time_s > 0 else 0.0


@dataclass(frozen=True)
class WaveTiming:
    """Body time of a grid (no launch overhead) and which limit dominated it."""

    time_s: float
    compute_s: float
    memory_s: float
    waves: int
    occupancy: float
    latency_limited: bool = False  # the memory time is set by the per-block Little's-law cap


def block_bandwidth(target: GpuTarget, inflight_bytes: float) -> float:
    """Little's law: the most bytes/s one thread block can stream with ``inflight_bytes`` outstanding, each load
    taking the preset's ``dram_latency`` (bytes/s; unbounded if the preset has no latency)."""
    latency = target.dram_latency.si
    return inflight_bytes / latency if latency > 0 else math.inf


def run_waves(target: GpuTarget, tiles: int, blocks_per_sm: int, threads_per_block: int, tile_flops: float,
              sm_flops_per_s: float, tile_dram_bytes: float, tile_l2_bytes: float,
              tile_inflight_bytes: float) -> WaveTiming:
    """Time of ``tiles`` identical thread blocks run in waves (see the module docstring).

    ``tile_flops`` are the FLOPs one block executes (padding included); ``sm_flops_per_s`` the calibrated rate of
    one SM; ``tile_l2_bytes`` the bytes one block streams into shared memory (L2 hits and DRAM fills);
    ``tile_inflight_bytes`` the bytes one block keeps in flight (see :func:`block_bandwidth`).
    """
    sms = target.sms
    slots = sms * blocks_per_sm
    full, rem = divmod(tiles, slots)
    dram_bw = target.achievable_dram_bandwidth
    l2_bw = target.l2_bandwidth.si
    cap = block_bandwidth(target, tile_inflight_bytes)
    streamed = max(tile_dram_bytes, tile_l2_bytes)

    def wave(active: int) -> tuple[float, float, float, bool]:
        resident = min(blocks_per_sm, math.ceil(active / sms))
        compute = tile_flops * resident / sm_flops_per_s
        shared = max(tile_dram_bytes / (dram_bw / active), tile_l2_bytes / (l2_bw / active))
        little = streamed / cap
        return max(compute, shared, little), compute, max(shared, little), little > shared

    total = compute_s = memory_s = 0.0
    limited = False
    for count, active in ((full, slots), (1 if rem else 0, rem)):
        if count:
            t, c, m, lim = wave(active)
            total += count * t
            compute_s += count * c
            memory_s += count * m
            limited = limited or (lim and m >= c)
    waves, occupancy = wave_occupancy(target, tiles, blocks_per_sm, threads_per_block)
    return WaveTiming(total, compute_s, memory_s, waves, occupancy, limited)


def wave_occupancy(target: GpuTarget, tiles: int, blocks_per_sm: int, threads_per_block: int) -> tuple[int, float]:
    """(waves, occupancy) of a grid: waves of ``SMs x blocks_per_sm`` slots, and the average fraction of the GPU's
    resident-thread slots its blocks fill over those waves."""
    slots = target.sms * blocks_per_sm
    waves = math.ceil(tiles / slots) if tiles else 0
    threads = min(1.0, blocks_per_sm * threads_per_block / target.max_threads_per_sm.si)
    return waves, (threads * tiles / (waves * slots) if waves else 0.0)


def finish(target: GpuTarget, name: str, body_s: float, compute_s: float, memory_s: float, flops: float,
           dram_bytes: float, l2_bytes: float, occupancy: float, unit: str, detail: dict | None = None,
           latency_limited: bool = False) -> KernelResult:
    """Add the per-kernel fixed cost to a kernel body and name the bound (``latency_limited``: a memory-bound body
    whose rate is set by the blocks' bytes in flight, not by DRAM).

    The fixed cost is the preset's ``launch_overhead``: the measured time per kernel of back-to-back launches of a
    near-empty kernel, which covers the front end's launch processing, block dispatch, the kernel's first DRAM round
    trip and its completion. It is added to the body, as the source's own fit of its data does (te42kyfo/gpu-benches
    gpu-small-kernels: time per kernel = startup overhead + volume / bandwidth)."""
    launch = target.launch_overhead.si
    if launch >= body_s:
        bound = "launch"
    elif compute_s >= memory_s:
        bound = "compute"
    else:
        bound = "latency" if latency_limited else "memory"
    return KernelResult(name, launch + body_s, flops, dram_bytes, l2_bytes, bound, occupancy, unit, 1,
                        detail or {})


def memory_bound(target: GpuTarget, name: str, bytes_: float, flops: float = 0.0) -> KernelResult:
    """A fused elementwise / norm / softmax / activation / copy kernel: streams ``bytes_`` through DRAM at the
    achievable bandwidth; its arithmetic runs on CUDA cores alongside."""
    memory = bytes_ / target.achievable_dram_bandwidth
    compute = flops / target.cuda_core_fp32.si
    return finish(target, name, max(memory, compute), compute, memory, flops, bytes_, 0.0, 1.0, "cuda")


def sequence(name: str, parts: list[KernelResult], detail: dict | None = None) -> KernelResult:
    """Kernels that run back to back as one logical kernel (e.g. split-KV attention and its combine)."""
    time = sum(p.time_s for p in parts)
    main = max(parts, key=lambda p: p.time_s)
    occ = sum(p.occupancy * p.time_s for p in parts) / time if time else 0.0
    return KernelResult(name, time, sum(p.flops for p in parts), sum(p.dram_bytes for p in parts),
                        sum(p.l2_bytes for p in parts), main.bound, occ, main.unit,
                        sum(p.launches for p in parts), detail or {})


def energy_by_action(target: GpuTarget, result: KernelResult) -> dict[str, float]:
    """Dynamic energy of a kernel (joules) by action: FLOPs on its unit, DRAM bits, L2 bits."""
    per_flop = target.tensor_energy_per_flop.si if result.unit == "tensor" else target.cuda_core_energy_per_flop.si
    return {
        f"{result.unit}_flop": result.flops * per_flop,
        "dram": result.dram_bytes * 8 * target.dram_energy_per_bit.si,
        "l2": result.l2_bytes * 8 * target.l2_energy_per_bit.si,
    }
