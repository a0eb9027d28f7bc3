"""Tile-level event-driven timing of one kernel's grid (``--mode detailed`` on GPU targets).

The closed form of :func:`hardware.gpu.kernels.run_waves` assumes identical thread blocks started in lock-step
waves. This module runs the same physics block by block on simpy, so that grids whose blocks differ (causal
FlashAttention tiles, the short last split of a split-KV kernel, Lean Attention's uneven granule counts) and the
dynamic refill of freed SM slots are timed as they happen:

- **SM slots.** Each SM holds ``blocks_per_sm`` blocks; the block scheduler hands the next block (in launch order)
  to a free slot, breadth-first over the SMs (a simpy ``Store`` of slot tokens). Blocks resident on one SM share
  its calibrated FLOP rate equally.
- **Shared bandwidth.** DRAM and L2 are fluid servers shared max-min fairly in bytes/s among the resident blocks
  (each gets an equal share unless it needs less because another limit holds it back, and what it leaves is
  shared by the rest). A block's progress rate is the smallest of its compute rate, its Little's-law streaming rate
  (:func:`hardware.gpu.kernels.block_bandwidth`) and its DRAM and L2 allocations divided by its bytes; compute and
  memory overlap, as in the closed form.
- **Events.** Rates change only when a block starts or finishes; between events every block advances at a constant
  rate, so the simulation is exact for this fluid model. Blocks finishing together are retired in one event.

On a grid of identical blocks whose waves fill every SM evenly the result equals the closed form to rounding
(tested); otherwise it differs exactly where the closed form's averaging is wrong. Units: seconds, bytes, FLOPs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import simpy

from hardware.gpu.kernels import WaveTiming, block_bandwidth, wave_occupancy
from hardware.gpu.spec import GpuTarget

_EPS = 1e-12  # relative progress treated as complete


@dataclass(frozen=True)
class BlockWork:
    """What one thread block does: ``flops`` executed (padding included), its share of the kernel's unique
    ``dram_bytes``, and the ``l2_bytes`` it streams into shared memory (L2 hits and DRAM fills)."""

    flops: float
    dram_bytes: float
    l2_bytes: float


@dataclass(frozen=True)
class Grid:
    """A kernel's thread blocks in launch order, as runs of ``(count, BlockWork)``."""

    runs: tuple[tuple[int, BlockWork], ...]
    blocks_per_sm: int
    threads_per_block: int
    sm_flops_per_s: float
    inflight_bytes: float

    @property
    def blocks(self) -> int:
        return sum(count for count, _ in self.runs)


def water_fill(capacity: float, caps: Sequence[float]) -> list[float]:
    """Max-min fair shares of ``capacity`` among claimants each wanting at most ``caps[i]`` (same unit)."""
    n = len(caps)
    alloc = [0.0] * n
    order = sorted(range(n), key=lambda i: caps[i])
    left, remaining = capacity, n
    for i in order:
        share = left / remaining
        give = min(caps[i], share)
        alloc[i] = give
        left -= give
        remaining -= 1
    return alloc


class _Block:
    __slots__ = ("work", "sm", "done", "progress", "rate", "limit", "streamed")

    def __init__(self, work: BlockWork, sm: int, done: simpy.Event) -> None:
        self.work, self.sm, self.done = work, sm, done
        self.progress = 0.0
        self.rate = 0.0
        self.limit = "compute"
        self.streamed = max(work.dram_bytes, work.l2_bytes)


class _GridSim:
    """The fluid controller: keeps the resident blocks' rates and retires blocks as they finish."""

    def __init__(self, env: simpy.Environment, target: GpuTarget, grid: Grid) -> None:
        self.env, self.grid = env, grid
        self.dram_bw = target.achievable_dram_bandwidth
        self.l2_bw = target.l2_bandwidth.si
        self.cap = block_bandwidth(target, grid.inflight_bytes)
        self.active: list[_Block] = []
        self.resident = [0] * target.sms
        self.last = 0.0
        self.changed = env.event()
        self.time_by_limit = {"compute": 0.0, "memory": 0.0, "latency": 0.0}
        self.dram_moved = 0.0
        self.peak_dram_rate = 0.0
        env.process(self._run())

    def add(self, block: _Block) -> None:
        self._advance()
        self.active.append(block)
        self.resident[block.sm] += 1
        self._wake()

    def _wake(self) -> None:
        if not self.changed.triggered:
            self.changed.succeed()

    def _advance(self) -> None:
        dt = self.env.now - self.last
        if dt > 0 and self.active:
            votes = {"compute": 0, "memory": 0, "latency": 0}
            for b in self.active:
                b.progress += b.rate * dt
                votes[b.limit] += 1
            self.time_by_limit[max(votes, key=votes.get)] += dt
            rate = sum(b.rate * b.work.dram_bytes for b in self.active)
            self.dram_moved += rate * dt
        self.last = self.env.now

    def _rates(self) -> None:
        blocks = self.active
        own = []  # progress/s each block could reach on its own SM and with its own bytes in flight
        for b in blocks:
            w = b.work
            compute = self.grid.sm_flops_per_s / (self.resident[b.sm] * w.flops) if w.flops > 0 else math.inf
            little = self.cap / b.streamed if b.streamed > 0 else math.inf
            own.append((compute, "compute") if compute <= little else (little, "latency"))
        limit = [r for r, _ in own]
        # Alternate max-min fair allocations of DRAM and L2 until the rates settle (two shared servers).
        for _ in range(3):
            dram = water_fill(self.dram_bw, [lim * b.work.dram_bytes for lim, b in zip(limit, blocks)])
            l2 = water_fill(self.l2_bw, [lim * b.work.l2_bytes for lim, b in zip(limit, blocks)])
            limit = [min(r, d / b.work.dram_bytes if b.work.dram_bytes > 0 else math.inf,
                         c / b.work.l2_bytes if b.work.l2_bytes > 0 else math.inf)
                     for (r, _), d, c, b in zip(own, dram, l2, blocks)]
        for b, rate, (r, why) in zip(blocks, limit, own):
            b.rate = rate
            b.limit = why if rate >= r * (1 - 1e-9) else "memory"
        dram_rate = sum(b.rate * b.work.dram_bytes for b in blocks)
        self.peak_dram_rate = max(self.peak_dram_rate, dram_rate)

    def _run(self):
        while True:
            self._advance()
            finished = [b for b in self.active if b.progress >= 1.0 - _EPS]
            for b in finished:
                self.active.remove(b)
                self.resident[b.sm] -= 1
                b.done.succeed(b)
            if self.changed.triggered:
                self.changed = self.env.event()
            if not self.active:
                yield self.changed
                continue
            self._rates()
            dt = min((1.0 - b.progress) / b.rate for b in self.active)
            yield self.env.timeout(max(dt, 0.0)) | self.changed


def simulate_grid(target: GpuTarget, grid: Grid) -> tuple[WaveTiming, dict]:
    """Run ``grid`` block by block; returns the body time (no launch, no pipeline fill) in the closed form's
    :class:`WaveTiming` shape, and run statistics (``dram_bytes_moved``, ``peak_dram_rate`` in bytes/s)."""
    env = simpy.Environment()
    sim = _GridSim(env, target, grid)
    slots = simpy.Store(env)
    for k in range(grid.blocks_per_sm):
        for sm in range(target.sms):
            slots.put((sm, k))  # breadth-first: every SM gets a block before any gets a second
    def block(work: BlockWork):
        token = yield slots.get()
        done = env.event()
        sim.add(_Block(work, token[0], done))
        yield done
        yield slots.put(token)

    procs = [env.process(block(work)) for count, work in grid.runs for _ in range(count)]
    if procs:
        env.run(until=env.all_of(procs))
    waves, occupancy = wave_occupancy(target, grid.blocks, grid.blocks_per_sm, grid.threads_per_block)
    t = sim.time_by_limit
    timing = WaveTiming(env.now, t["compute"], t["memory"] + t["latency"], waves, occupancy,
                        latency_limited=t["latency"] > t["memory"])
    return timing, {"dram_bytes_moved": sim.dram_moved, "peak_dram_rate": sim.peak_dram_rate}

