"""The smallest change of reuse factor, precision or strategy that makes an hls4ml design fit its part.

Candidates, in the order tried (the first that fits is the suggestion):

1. the reuse factor: the next powers of two above the current one, up to the largest layer's weight count
   (hls4ml then shares each multiplier over more cycles);
1b. for a model with attention products emitted unrolled: ``--attention row-serial`` (one query row per R cycles,
   hwsim's extension layer) at the current and then each larger reuse factor;
2. a narrower precision at the current reuse: ``ap_fixed<W,I>`` with W = 12, 10, 8 (I shrunk by as many bits as W,
   at least 1), weights the same (fewer bits per operand and, at <= 10 bits, LUT instead of DSP multipliers);
3. the Resource strategy at the current and larger reuse factors (weights in BRAM instead of logic);
4. both: each narrower precision with each larger reuse factor.

Each candidate is re-estimated with :func:`mapping.fpga.pipeline.estimate` on the same layers and part.
"""

from __future__ import annotations

from dataclasses import dataclass

from hardware.fpga.fixed import parse_fixed
from hardware.fpga.pipeline import PipelineEstimate
from hardware.fpga.spec import FpgaTarget
from mapping.fpga.pipeline import PipeLayer, estimate


@dataclass
class FitSuggestion:
    """What to change (``changes``: option -> new value) and the estimate with it."""

    changes: dict[str, object]
    estimate: PipelineEstimate

    def flags(self) -> str:
        """The change as ``hwsim hls`` flags."""
        names = {"reuse": "--reuse", "precision": "--precision", "strategy": "--strategy", "attention": "--attention"}
        parts = []
        for key, value in self.changes.items():
            value = str(value).capitalize() if key == "strategy" else value
            parts.append(f"{names[key]} '{value}'" if key == "precision" else f"{names[key]} {value}")
        return " ".join(parts)


def _narrower(precision: str) -> list[str]:
    fmt = parse_fixed(precision)
    out = []
    for width in (12, 10, 8):
        if width < fmt.width:
            integer = max(1, fmt.integer - (fmt.width - width) // 2)
            out.append(f"ap_{'' if fmt.signed else 'u'}fixed<{width},{integer}>")
    return out


def suggest_fit(layers: list[PipeLayer], target: FpgaTarget, options: dict | None = None) -> FitSuggestion | None:
    """The first candidate change (see the module docstring) whose design fits ``target``; None if none does."""
    opts = dict(options or {})
    opts.pop("layer_reuse", None)  # hls4ml chooses the factors anew for a new reuse
    reuse = int(opts.get("reuse", 1))
    precision = str(opts.get("precision", "ap_fixed<16,6>"))
    limit = max((lay.attrs.get("n_in", 1) * lay.attrs.get("n_out", 1) for lay in layers
                 if lay.kind in ("dense", "matmul")), default=1)
    reuses = []
    r = 1
    while r < limit:
        r *= 2
        if r > reuse:
            reuses.append(min(r, limit))
    candidates: list[dict[str, object]] = [{"reuse": r} for r in reuses]
    if opts.get("attention", "unrolled") == "unrolled" and any(lay.kind == "matmul" for lay in layers):
        candidates += [{"attention": "row-serial"}] + [{"attention": "row-serial", "reuse": r} for r in reuses]
    candidates += [{"precision": p} for p in _narrower(precision)]
    if str(opts.get("strategy", "latency")).lower() != "resource":
        candidates += [{"strategy": "resource"}] + [{"strategy": "resource", "reuse": r} for r in reuses]
    candidates += [{"precision": p, "reuse": r} for p in _narrower(precision) for r in reuses]
    for change in candidates:
        trial = dict(opts, **change)
        if "precision" in change and "weight_precision" in opts:
            trial["weight_precision"] = change["precision"]
        if trial.get("attention") == "row-serial":
            trial["matmul_parallel"] = 1
        est = estimate(layers, target, trial)
        if est.fits:
            return FitSuggestion(change, est)
    return None
