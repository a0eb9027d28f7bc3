"""Collectives between tensor-parallel GPUs: NCCL's ring all-reduce, a custom one-shot all-reduce, all-to-all.

Two all-reduce algorithms, each timed from its measured small-message latency plus the bytes it moves over the
link at the per-direction rate (:attr:`GpuTarget.link_bandwidth`):

- ``nccl``: the ring, ``link_latency + 2 (tp-1) link_step_latency + 2 (tp-1)/tp x bytes / link``: a fixed cost
  and one latency per ring step (a reduce-scatter and an all-gather of ``tp - 1`` steps each; NCCL's own tuning
  model has the same ``2 (n-1)`` latency term, sjeaugey in NVIDIA/nccl-tests #123).
- ``custom``: one kernel in which every GPU reads its ``tp - 1`` peers' buffers over NVLink peer access and sums
  them (vLLM's custom all-reduce, PyTorch's IntraNodeComm one-shot, TensorRT-LLM's), ``oneshot_latency +
  (tp-1) oneshot_peer_latency + (tp-1) x bytes / link``, for messages up to 256 KiB (IntraNodeComm's
  ``kOneShotThreshBytes``) between GPUs on NVLink; larger ones, GPUs without NVLink and GPUs without measured
  one-shot figures take the ring.

Sources of the presets' figures: docs/research/gpu_allreduce.md.
"""

from __future__ import annotations

from hardware.gpu.kernels import KernelResult
from hardware.gpu.spec import GpuTarget

#: Largest message the one-shot kernel takes (bytes per GPU): PyTorch IntraNodeComm's kOneShotThreshBytes
#: (torch/csrc/distributed/c10d/intra_node_comm.cu); larger ones go two-shot or ring, with the ring's bytes.
ONESHOT_MAX_BYTES = 256 * 1024

#: All-reduce algorithms (``--set allreduce=``).
ALGORITHMS = ("custom", "nccl")


def ring_all_reduce_s(target: GpuTarget, bytes_: float, tp: int) -> float:
    """Seconds of NCCL's ring all-reduce of ``bytes_`` per GPU over ``tp`` GPUs."""
    step = target.link_step_latency.si if target.link_step_latency is not None else 0.0
    return target.link_latency.si + 2 * (tp - 1) * step + 2.0 * (tp - 1) / tp * bytes_ / target.link_bandwidth


def oneshot_all_reduce_s(target: GpuTarget, bytes_: float, tp: int) -> float | None:
    """Seconds of a one-shot all-reduce of ``bytes_`` per GPU over ``tp`` GPUs; None where it does not apply
    (no measured one-shot latency for this GPU, or a message above :data:`ONESHOT_MAX_BYTES`)."""
    if target.oneshot_latency is None or target.nvlink_bandwidth.si <= 0 or bytes_ > ONESHOT_MAX_BYTES:
        return None  # vLLM's custom all-reduce needs every pair of GPUs on NVLink, IntraNodeComm NVLink peers
    peer = target.oneshot_peer_latency.si if target.oneshot_peer_latency is not None else 0.0
    return target.oneshot_latency.si + (tp - 1) * (peer + bytes_ / target.link_bandwidth)


def all_reduce(target: GpuTarget, bytes_: float, tp: int, name: str = "all_reduce",
               algorithm: str = "custom") -> KernelResult:
    """All-reduce of ``bytes_`` per GPU over ``tp`` GPUs with ``algorithm`` (``custom`` | ``nccl``: module
    docstring). One GPU (``tp`` = 1) does nothing."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown all-reduce algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")
    if tp <= 1:
        return KernelResult(name, 0.0, 0.0, 0.0, 0.0, "link", 0.0, "cuda", 0)
    oneshot = oneshot_all_reduce_s(target, bytes_, tp) if algorithm == "custom" else None
    if oneshot is not None:
        moved, time, used = (tp - 1) * bytes_, oneshot, "one-shot"
    else:
        moved, time, used = 2.0 * (tp - 1) / tp * bytes_, ring_all_reduce_s(target, bytes_, tp), "ring"
    flops = (tp - 1) / tp * bytes_ / 2.0  # one add per reduced element (2-byte elements assumed)
    return KernelResult(name, time, flops, 2.0 * moved, 0.0, "link", 0.0, "cuda", 1,
                        {"link_bytes": moved, "algorithm": used})


def all_to_all(target: GpuTarget, bytes_: float, name: str = "all_to_all") -> KernelResult:
    """All-to-all in which each GPU sends ``bytes_`` to the others (expert parallelism's dispatch or combine):
    ``link_latency + bytes / link`` (every GPU sends and receives at once at the per-direction rate)."""
    if bytes_ <= 0:
        return KernelResult(name, 0.0, 0.0, 0.0, 0.0, "link", 0.0, "cuda", 0)
    time = target.link_latency.si + bytes_ / target.link_bandwidth
    return KernelResult(name, time, 0.0, 2.0 * bytes_, 0.0, "link", 0.0, "cuda", 1, {"link_bytes": bytes_})
