"""A dataflow pipeline of hls4ml layers on one FPGA part: latency, II, throughput, resources, fit.

- ``io_parallel``: a layer starts when its inputs are complete, so the design latency is the longest path of
  layer latencies through the layer graph (the sum of layer latencies for a chain).
- ``io_stream``: layers overlap through FIFOs; latency ~ the longest path of each layer's fill time
  (``latency - ii + 1``) plus the largest II less one (a Dense + ELU in io_stream is the sum of the two, as in
  hls4ml's test_dense_io_stream baseline; deeper streams UNCONFIRMED against cosim).
- Both: the design II is the largest layer II (the slowest stage bounds the throughput), throughput is
  ``clock / II`` inferences per second, and the design fits when every resource is within
  ``usable_fraction`` of the part.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hardware.fpga.dense import LayerEstimate, Resources
from hardware.fpga.spec import FpgaTarget


@dataclass
class PipelineEstimate:
    """The whole design's figures (cycles at the target clock)."""

    layers: list[LayerEstimate]
    latency_cycles: int
    ii_cycles: int
    clock_hz: float
    resources: Resources
    utilisation: dict[str, float]
    over: list[str] = field(default_factory=list)
    part: str = ""

    @property
    def latency_s(self) -> float:
        """Latency of one inference (seconds)."""
        return self.latency_cycles / self.clock_hz

    @property
    def throughput_per_s(self) -> float:
        """Inferences per second once the pipeline is full."""
        return self.clock_hz / self.ii_cycles

    @property
    def fits(self) -> bool:
        """Whether every resource is within the part's usable fraction."""
        return not self.over

    def to_dict(self) -> dict:
        """JSON-ready summary."""
        return {
            "part": self.part, "latency_cycles": self.latency_cycles, "latency_s": self.latency_s,
            "ii_cycles": self.ii_cycles, "throughput_per_s": self.throughput_per_s,
            "resources": self.resources.as_dict(), "utilisation": self.utilisation, "fits": self.fits,
            "over": self.over,
            "layers": [{"name": e.name, "kind": e.kind, "latency_cycles": e.latency_cycles, "ii_cycles": e.ii_cycles,
                        **e.resources.as_dict()} for e in self.layers],
        }


def evaluate_pipeline(layers: list[LayerEstimate], inputs: dict[str, list[str]], target: FpgaTarget,
                      io_type: str = "io_parallel", no_overlap: bool = False) -> PipelineEstimate:
    """Combine per-layer estimates; ``inputs`` maps a layer name to the layer names it reads (in order).

    ``no_overlap`` (Vitis HLS 2024.1, io_stream): a design whose layers each take one stream word per call (every
    layer II 1) does not start the next call before the last one is out, so its II is its latency (hls4ml
    test_activations / test_dense io_stream baselines)."""
    finish: dict[str, int] = {}
    for est in layers:  # layers are in topological order
        start = max((finish.get(i, 0) for i in inputs.get(est.name, [])), default=0)
        step = est.latency_cycles if io_type == "io_parallel" else max(0, est.latency_cycles - est.ii_cycles + 1)
        finish[est.name] = start + step
    ii = max((e.ii_cycles for e in layers), default=1)
    latency = max(finish.values(), default=0)
    if io_type != "io_parallel":
        latency += ii - 1
        if no_overlap and ii == 1:
            ii = max(1, latency)
    total = Resources()
    for e in layers:
        total = total + e.resources
    cap = target.capacity()
    limit = target.usable_fraction.si
    util: dict[str, float] = {}
    over: list[str] = []
    for key, used in total.as_dict().items():
        have = cap.get(key, 0)
        util[key] = used / have if have else (0.0 if not used else float("inf"))
        if used > limit * have:
            over.append(f"{key}: {used:g} used > {limit:.0%} of {have} on {target.part}")
    return PipelineEstimate(layers, latency, ii, target.clock_hz, total, util, over, target.part)
