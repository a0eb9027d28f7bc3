"""One serving configuration: model, target, options and precision, its KV capacity and its iteration coster.

KV capacity: the target plugin's ``capacity_bytes`` (all devices the options use) minus ``Model.weight_bytes``,
divided into blocks of ``block_size`` tokens of ``Model.kv_cache_bytes(1, 1)`` bytes each. Activations and the
framework's workspace are not reserved (vLLM reserves ``1 - gpu_memory_utilization`` = 10% by default; use
``memory_fraction`` for that).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hardware.errors import DoesNotFit, HwsimError
from hardware.targets import TargetBase
from mapping.op_costs import Precision
from mapping.parallel import Parallel, stage_kv_shares, stage_weight_shares
from mapping.target_plugin import TargetOptions
from mapping.techniques import Techniques
from mapping.workloads import Model
from simulator.serving.arrivals import ArrivalSpec, make_requests
from simulator.serving.cost_model import IterationCoster
from simulator.serving.distributions import LengthDist
from simulator.serving.kv_cache import PagedKVCache
from simulator.serving.loop import Progress, ServingRun, serve, serve_pipelined
from simulator.serving.schedulers import make_scheduler
from simulator.simulate import prepare_run


@dataclass
class ServingSetup:
    """What stays fixed across runs of one model on one target (the coster's cache is shared by every run)."""

    model: Model
    target: TargetBase
    options: TargetOptions
    precision: Precision
    coster: IterationCoster
    kv_blocks: int
    kv_bytes_per_token: int
    capacity_bytes: int
    weight_bytes: int
    block_size: int = 16
    facts: dict[str, Any] = field(default_factory=dict)
    parallel: Parallel | None = None


def prepare(model: Model, target: TargetBase, raw_options: dict[str, Any] | TargetOptions | None,
            precision: Precision, per_octave: int = 8, block_size: int = 16, memory_fraction: float = 1.0,
            kv_blocks: int | None = None, parallel: Parallel | None = None,
            techniques: Techniques | None = None) -> ServingSetup:
    """Resolve options and precision through the target's plugin and size the paged KV cache.

    With ``parallel`` (``tp x pp`` devices) each device holds its stage's share of the weights and of every
    token's KV cache over ``tp``; the cache holds as many tokens as the fullest device allows. ``techniques``:
    ``simulate``'s inference techniques (:mod:`simulator.serving.techniques`); a draft model's weights and KV
    cache share the device."""
    if model.ir.architecture not in ("decoder-only",):
        raise HwsimError(f"{model.path}: hwsim serve needs a decoder-only model (this graph is "
                         f"{model.ir.architecture})")
    if per_octave < 0 or (per_octave and per_octave & (per_octave - 1)):
        raise HwsimError(f"--shape-grid {per_octave}: use 0 (exact shapes) or a power of two (1, 2, 4, 8, 16, ...)")
    if not 0 < memory_fraction <= 1:
        raise HwsimError(f"--memory-fraction {memory_fraction}: must be in (0, 1]")
    draft = None
    if techniques is not None:
        from simulator.serving.techniques import technique_models

        model, draft, raw_options = technique_models(model, target, raw_options, precision, techniques, parallel)
    plugin, opts, precision, multi, model = prepare_run(model, target, raw_options, precision, parallel)
    if draft is not None:
        plugin.check(draft, target, opts, precision)
    capacity = int(plugin.capacity_bytes(target, opts) * memory_fraction)
    weights = plugin.weight_bytes(model, opts, precision) + (draft.weight_bytes(precision) if draft is not None else 0)
    per_token = model.kv_cache_bytes(1, 1, precision) + (draft.kv_cache_bytes(1, 1, precision) if draft else 0)
    if per_token <= 0:
        raise HwsimError(f"{model.path}: the model keeps no KV cache; hwsim serve needs causal self-attention")
    free = capacity - weights
    blocks = free // (per_token * block_size) if free > 0 else 0
    if multi:
        assert parallel is not None
        from simulator.simulate import device_capacity_bytes

        device = int(device_capacity_bytes(plugin, target, opts) * memory_fraction)
        capacity = device * parallel.devices
        probe = model.decode(1, 1, precision, prompt_len=1)
        ws, ks = stage_weight_shares(probe, parallel.pp), stage_kv_shares(probe, parallel.pp)
        tokens = min((device - weights * w / parallel.tp) / (per_token * k / parallel.tp) if k else float("inf")
                     for w, k in zip(ws, ks, strict=True))
        blocks = int(tokens // block_size) if tokens > 0 else 0
    if kv_blocks is not None:
        if kv_blocks < 1:
            raise HwsimError(f"--kv-blocks must be >= 1, got {kv_blocks}")
        blocks = min(blocks, kv_blocks) if blocks else 0
    if blocks < 1:
        raise DoesNotFit(f"{model.path} leaves no room for a KV cache on {target.name}: weights "
                         f"{weights / 2**30:.2f} GiB, memory {capacity / 2**30:.2f} GiB; use a smaller model or "
                         "precision", weights + per_token * block_size, capacity)
    from simulator.serving.techniques import SpeculativeCoster

    if techniques is not None and techniques.speculative:
        coster: IterationCoster = SpeculativeCoster(model, target, opts, precision, techniques, draft, per_octave,
                                                    block_size)
    else:
        coster = IterationCoster(model, target, opts, precision, per_octave, block_size, parallel if multi else None)
    setup = ServingSetup(model, target, opts, precision, coster, int(blocks), per_token, capacity, weights, block_size,
                         parallel=parallel if multi else None)
    if techniques is not None and techniques.describe() != "dense":
        setup.facts["techniques"] = techniques.describe()
    if isinstance(coster, SpeculativeCoster):
        setup.facts["tokens_per_iteration"] = coster.tokens_per_iteration
    return setup


def run_serving(setup: ServingSetup, arrivals: ArrivalSpec, requests: int, prompt: LengthDist, gen: LengthDist,
                scheduler: str, max_batch: int, max_batch_tokens: int, seed: int,
                progress: Progress | None = None) -> ServingRun:
    """One serving run of ``requests`` requests (``progress(done, total)`` after each iteration)."""
    reqs = make_requests(arrivals, requests, prompt, gen, seed)
    engines = setup.coster.stages
    if engines > 1:  # one virtual engine per pipeline stage, each with 1/pp of the KV blocks (vLLM v0)
        if setup.kv_blocks < engines:
            raise HwsimError(f"{setup.model.path}: {setup.kv_blocks} KV blocks cannot be shared by {engines} pipeline "
                             "virtual engines; use fewer stages or more memory")
        scheds = [make_scheduler(scheduler, PagedKVCache(setup.kv_blocks // engines, setup.block_size), max_batch,
                                 max_batch_tokens) for _ in range(engines)]
        return serve_pipelined(reqs, scheds, setup.coster, progress)
    kv = PagedKVCache(setup.kv_blocks, setup.block_size)
    sched = make_scheduler(scheduler, kv, max_batch, max_batch_tokens)
    return serve(reqs, sched, setup.coster, progress)
