"""Tile-level event-driven GPU timing (``--mode detailed``): agrees with the closed form where the closed form is
exact, conserves bytes, never exceeds DRAM bandwidth, and times uneven grids by their slowest blocks.

a100-80gb with its calibration factors pinned (test_gpu_model.pinned_a100): 108 SMs, fp16 tensor 312 TFLOP/s,
attention_efficiency 0.5, tensor_efficiency 0.85, DRAM 2039 GB/s x 0.90 = 1835.1 GB/s,
L2 5000 GB/s, DRAM latency 0.5 us, launch 4 us.
"""

from __future__ import annotations

import random

import pytest
from click.testing import CliRunner

from hardware.gpu.attention import flash_attention2, flash_decoding, lean_attention
from hardware.gpu.gemm import Tile, gemm
from hardware.gpu.kernels import run_waves
from hardware.gpu.tile_sim import BlockWork, Grid, simulate_grid, water_fill
from hardware.targets import target_from_dict
from simulator.cli import main

from conftest import EXAMPLES


@pytest.fixture(scope="module")
def a100():
    from test_gpu_model import pinned_a100
    return pinned_a100()


SM_RATE = 312e12 * 0.85 / 108


@pytest.mark.parametrize("tiles, bps, flops, dram, l2, inflight", [
    (108, 1, 2 * 128 * 256 * 16384, 1e5, 384 * 2 * 16384, 3 * 24576),  # one wave, compute-bound
    (109, 1, 2 * 128 * 256 * 16384, 1e5, 384 * 2 * 16384, 3 * 24576),  # one block too many: a second wave
    (648, 2, 2e6, 3e5, 3e5, 60e3),  # three full waves, DRAM-bound
    (32, 2, 1e6, 8e6, 8e6, 16e3),  # a few blocks, each held by its bytes in flight (Little's law)
    (216 * 4 + 108, 2, 1e8, 1e6, 2e6, 50e3),  # a last wave of one block per SM
])
def test_uniform_grid_equals_closed_form(a100, tiles, bps, flops, dram, l2, inflight):
    closed = run_waves(a100, tiles, bps, 128, flops, SM_RATE, dram, l2, inflight)
    grid = Grid(((tiles, BlockWork(flops, dram, l2)),), bps, 128, SM_RATE, inflight)
    timed, stats = simulate_grid(a100, grid)
    assert timed.time_s == pytest.approx(closed.time_s, rel=1e-9)
    assert timed.waves == closed.waves
    assert timed.latency_limited == closed.latency_limited
    assert stats["dram_bytes_moved"] == pytest.approx(tiles * dram, rel=1e-9)


def test_wave_quantisation_in_detailed_mode(a100):
    tile = Tile(128, 256, 32, 3, 8)  # 1 block per SM (see test_gpu_model.test_wave_quantisation_at_sm_count)
    one = gemm(a100, 1, 13824, 16384, 256, tile=tile, split_k=1, mode="detailed")
    two = gemm(a100, 1, 13952, 16384, 256, tile=tile, split_k=1, mode="detailed")
    assert one.detail["tiles"] == 108 and two.detail["tiles"] == 109
    assert two.time_s / one.time_s == pytest.approx(2.0, abs=0.02)


def test_bytes_conserved_and_bandwidth_respected(a100):
    rng = random.Random(7)
    runs = tuple((rng.randint(1, 40), BlockWork(rng.uniform(0, 5e7), rng.uniform(0, 4e6), rng.uniform(0, 8e6)))
                 for _ in range(25))
    grid = Grid(runs, 2, 128, SM_RATE, 40e3)
    timed, stats = simulate_grid(a100, grid)
    assert stats["dram_bytes_moved"] == pytest.approx(sum(c * w.dram_bytes for c, w in runs), rel=1e-9)
    assert stats["peak_dram_rate"] <= a100.achievable_dram_bandwidth * (1 + 1e-9)
    # no faster than the whole grid's bytes at full bandwidth, nor than its FLOPs on all SMs
    assert timed.time_s >= stats["dram_bytes_moved"] / a100.achievable_dram_bandwidth * (1 - 1e-9)
    assert timed.time_s >= sum(c * w.flops for c, w in runs) / (SM_RATE * 108) * (1 - 1e-9)


def test_more_bandwidth_never_slower_detailed(a100):
    data = a100.model_dump(mode="json")
    data["dram_bandwidth"]["value"] *= 2
    faster = target_from_dict(data, "test")
    rng = random.Random(3)
    for _ in range(5):
        runs = tuple((rng.randint(1, 60), BlockWork(rng.uniform(0, 3e7), rng.uniform(1e4, 5e6), rng.uniform(1e4, 6e6)))
                     for _ in range(10))
        grid = Grid(runs, rng.randint(1, 4), 128, SM_RATE, rng.uniform(8e3, 2e5))
        assert simulate_grid(faster, grid)[0].time_s <= simulate_grid(a100, grid)[0].time_s * (1 + 1e-9)


def test_water_fill_is_max_min_fair():
    assert water_fill(10.0, [1.0, 100.0, 100.0]) == pytest.approx([1.0, 4.5, 4.5])
    assert water_fill(10.0, [1.0, 2.0]) == pytest.approx([1.0, 2.0])
    assert sum(water_fill(7.0, [3.0, 3.0, 3.0])) == pytest.approx(7.0)


def test_causal_prefill_is_set_by_its_last_query_tile(a100):
    # One head, 2048 tokens, causal: 16 query tiles, one per SM. Tile i walks (i + 1) x 128 keys; the last walks
    # all 2048: 4 x 128 x 2048 x 128 = 134.2 MFLOP at 312 TFLOP/s x 0.5 / 108 SMs = 92.9 us, compute-bound
    # (its 1 MiB of K/V at 16 kB / 0.5 us = 32.8 GB/s takes 32 us). The closed form averages the tiles.
    sm_rate = 312e12 * 0.5 / 108
    detailed = flash_attention2(a100, 1, 1, 1, 2048, 2048, 128, mode="detailed")
    fast = flash_attention2(a100, 1, 1, 1, 2048, 2048, 128)
    assert detailed.time_s == pytest.approx(4 * 128 * 2048 * 128 / sm_rate + 4e-6, rel=1e-9)  # + the 4 us per kernel
    assert detailed.time_s > 1.8 * fast.time_s
    assert detailed.flops == fast.flops  # useful FLOPs do not depend on the mode


def test_causal_chunk_after_cached_keys_aligns_bottom_right(a100):
    # A 256-query chunk after 1792 cached keys (chunked prefill): query row r sees 1792 + r + 1 keys, so the useful
    # FLOPs are 4 x 128 x 256 x (1792 + 128.5) (hand sum), and query tile i walks 1792 + (i + 1) x 128 keys: the
    # second (last) tile all 2048, the first 1920 (its last 128-key tile is masked away).
    r = flash_attention2(a100, 1, 1, 1, 256, 2048, 128)
    assert r.flops == pytest.approx(4 * 128 * 256 * (1792 + 128.5))
    assert flash_attention2(a100, 1, 1, 1, 256, 2048, 128, causal=False).flops == pytest.approx(4 * 128 * 256 * 2048)
    sm_rate = 312e12 * 0.5 / 108
    detailed = flash_attention2(a100, 1, 1, 1, 256, 2048, 128, mode="detailed")
    assert detailed.time_s == pytest.approx(4 * 128 * 2048 * 128 / sm_rate + 4e-6, rel=1e-9)  # set by the last tile
    # the first tile skips its masked 128-key tile: K and V of 1920 + 2048 keys (128 x 2 B each) stream in, plus Q
    # and O of 256 rows
    assert detailed.l2_bytes == 2 * 128 * 2 * (1920 + 2048) + 2 * 256 * 128 * 2


def test_detailed_decode_kernels_close_to_fast_on_even_grids(a100):
    for fn in (flash_decoding, lean_attention):
        fast = fn(a100, 1, 32, 32, 32768, 128)
        detailed = fn(a100, 1, 32, 32, 32768, 128, mode="detailed")
        assert detailed.time_s == pytest.approx(fast.time_s, rel=0.05)
        assert detailed.dram_bytes == fast.dram_bytes


def test_cli_detailed_mode(tmp_path):
    runner = CliRunner()
    out = {}
    for mode in ("fast", "detailed"):
        path = tmp_path / f"{mode}.json"
        res = runner.invoke(main, ["simulate", str(EXAMPLES / "gpt2.onnx"), "--target", "a100-80gb", "--phase",
                                   "prefill", "--prompt-len", "512", "--mode", mode, "--json", str(path), "--quiet"])
        assert res.exit_code == 0, res.output
        out[mode] = path.read_text()
    import json
    fast, detailed = (json.loads(out[m]) for m in ("fast", "detailed"))
    assert detailed["mode"] == "detailed"
    # GPT-2's 12 heads x 4 query tiles leave most SMs idle, so causal imbalance makes detailed slower, not faster
    assert detailed["latency_s"] >= fast["latency_s"] * (1 - 1e-9)
    res = runner.invoke(main, ["simulate", str(EXAMPLES / "gpt2.onnx"), "--target", "u55c", "--mode", "detailed"])
    assert res.exit_code == 2 and "--mode detailed" in res.output and "Traceback" not in res.output


def test_stream_k_removes_the_partial_wave():
    # a100-80gb: 128 x 256 tiles (k = 16384, 512 MAC iterations of 32) are one per SM. 108 tiles fill one wave, so
    # stream-K is the data-parallel grid itself; 109 need a second wave (about 2x, compute-bound), while stream-K
    # shares the 109 x 512 = 55,808 iterations over 108 blocks (517 each): 109/108 of a wave plus the fix-ups.
    # Fix-ups: 107 block boundaries and 108 tile boundaries, none shared (lcm(517, 512) > 55,808), cut the
    # iterations into 216 pieces, 109 of which finish a tile: 107 partials of 128 x 256 fp32, written and read back.
    from hardware.gpu.gemm import Tile, gemm
    from hardware.targets import load_target

    t = load_target("a100-80gb")
    tile = Tile(128, 256, 32, 3, 8)
    one = gemm(t, 1, 13824, 16384, 256, tile=tile)
    two = gemm(t, 1, 13952, 16384, 256, tile=tile)
    even = gemm(t, 1, 13824, 16384, 256, tile=tile, schedule="stream-k")
    sk = gemm(t, 1, 13952, 16384, 256, tile=tile, schedule="stream-k")
    assert even.time_s == one.time_s and "schedule" not in even.detail
    assert sk.detail["schedule"] == "stream-k" and sk.detail["iterations_per_block"] == 517
    # the partials go through L2 (written, then read back moments later), not DRAM
    assert sk.detail["fixups"] == 107 and sk.dram_bytes == pytest.approx(two.dram_bytes)
    assert sk.l2_bytes == pytest.approx(two.l2_bytes + 107 * 128 * 256 * 4 * 2)
    assert two.time_s / one.time_s > 1.9
    assert 109 / 108 < sk.time_s / one.time_s < 1.05
    with pytest.raises(ValueError, match="schedule"):
        gemm(t, 1, 64, 64, 64, schedule="round-robin")
    # the search keeps the data-parallel candidates, so adding stream-K never makes a GEMM slower
    for m, k, n in ((16, 4096, 11008), (1000, 4096, 4096), (4096, 4096, 4096), (3000, 5000, 7000)):
        assert gemm(t, 1, m, k, n, schedule="stream-k").time_s <= gemm(t, 1, m, k, n).time_s
