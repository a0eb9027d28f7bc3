"""Collectives between tensor-parallel GPUs: ring all-reduce over NVLink (or PCIe where there is none)."""

from __future__ import annotations

from hardware.gpu.kernels import KernelResult
from hardware.gpu.spec import GpuTarget


def all_reduce(target: GpuTarget, bytes_: float, tp: int, name: str = "all_reduce") -> KernelResult:
    """Ring all-reduce of ``bytes_`` per GPU over ``tp`` GPUs: ``link_latency + 2 (tp-1)/tp x bytes / link``.

    The link rate is the per-direction bandwidth (:attr:`GpuTarget.link_bandwidth`). One GPU (``tp`` = 1) does
    nothing.
    """
    if tp <= 1:
        return KernelResult(name, 0.0, 0.0, 0.0, 0.0, "link", 0.0, "cuda", 0)
    moved = 2.0 * (tp - 1) / tp * bytes_
    time = target.link_latency.si + moved / target.link_bandwidth
    flops = (tp - 1) / tp * bytes_ / 2.0  # one add per reduced element (2-byte elements assumed)
    return KernelResult(name, time, flops, 2.0 * moved, 0.0, "link", 0.0, "cuda", 1, {"link_bytes": moved})


def all_to_all(target: GpuTarget, bytes_: float, name: str = "all_to_all") -> KernelResult:
    """All-to-all in which each GPU sends ``bytes_`` to the others (expert parallelism's dispatch or combine):
    ``link_latency + bytes / link`` (every GPU sends and receives at once at the per-direction rate)."""
    if bytes_ <= 0:
        return KernelResult(name, 0.0, 0.0, 0.0, 0.0, "link", 0.0, "cuda", 0)
    time = target.link_latency.si + bytes_ / target.link_bandwidth
    return KernelResult(name, time, 0.0, 2.0 * bytes_, 0.0, "link", 0.0, "cuda", 1, {"link_bytes": bytes_})
