"""Mixture-of-experts on a target: expert weights touched per pass, load imbalance and expert parallelism.

The importer costs routing as balanced (:mod:`mapping.data_dependent`): ``T x top_k`` selections over ``E``
experts, so ``min(E, T x top_k)`` experts run and read their weights. With random (uniform, independent) routing
the expected number of distinct experts a pass touches is ``E x (1 - (1 - top_k / E) ** T)`` (each expert is missed
by one token with probability ``1 - top_k / E``); at ``T = 1`` both give ``top_k``, at large ``T`` both give ``E``.
:func:`scale_experts` scales the expert MLPs' weight bytes to that expectation.

Expert parallelism over ``ep`` devices (GShard, Lepikhin et al. 2021): each device holds ``E / ep`` experts; the
attention and dense layers run on every device over the same tokens (replicated); the MoE layer's time is the
busiest device's, which gets ``imbalance`` times the mean load (``imbalance`` = max / mean tokens per device, 1.0 =
balanced); tokens go to their experts and back by two all-to-alls per MoE layer, each moving ``(ep - 1) / ep`` of
the ``T x top_k x d_model`` routed activations per device (:func:`all_to_all_bytes`).
"""

from __future__ import annotations

import dataclasses

from mapping.op_costs import OpCost


def expected_experts(experts: int, top_k: int, tokens: int) -> float:
    """Expected distinct experts ``tokens`` tokens touch when each picks ``top_k`` of ``experts`` uniformly."""
    if tokens <= 0:
        return 0.0
    return experts * (1.0 - (1.0 - top_k / experts) ** tokens)


def balanced_experts(experts: int, top_k: int, tokens: int) -> int:
    """Experts that run under the importer's balanced routing: ``min(E, T x top_k)``."""
    return min(experts, tokens * top_k)


def scale_op(op: OpCost, weights: float, rest: float) -> OpCost:
    """``op`` with its weight bytes times ``weights`` and its FLOPs and activation bytes times ``rest``."""
    return dataclasses.replace(op, weight_bytes=int(op.weight_bytes * weights), flops=op.flops * rest,
                               act_read_bytes=int(op.act_read_bytes * rest), act_write_bytes=int(op.act_write_bytes * rest))


def device_share(ep: int, imbalance: float) -> float:
    """Share of a MoE layer's expert work on the busiest of ``ep`` devices: ``imbalance / ep``, at most 1."""
    return min(1.0, imbalance / ep)


def all_to_all_bytes(tokens: int, top_k: int, d_model: int, act_bytes: float, ep: int) -> float:
    """Bytes one device sends in one all-to-all of a MoE layer (dispatch or combine)."""
    return tokens * top_k * d_model * act_bytes * (ep - 1) / ep
