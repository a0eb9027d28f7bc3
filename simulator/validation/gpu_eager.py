"""The eager stack's host time per op from the published eager decode steps, checked leave-one-machine-out.

PyTorch eager (``--set stack=eager``) dispatches every op from Python on the host CPU, so a host-bound eager decode
step lasts hwsim's op count times the host time per op. That time is a property of the host CPU and the framework
versions, which no published eager measurement states in full. So it is taken from all of them:

- each published eager decode point (``stack: eager`` in hardware/calibration/published.yaml) **implies** a host
  time per op: the value at which hwsim's step equals the measured one (found by a secant search, the step being
  non-decreasing in it). A point whose measured step is not above hwsim's kernels alone implies nothing (the GPU,
  not the host, is the bound there, so any smaller host time fits it);
- a **machine** is one source's GPU (its host is one CPU and one software setup); its value is the median of its
  points' implied values;
- ``mapping.gpu.stack.EAGER_HOST_PER_OP`` is the median over the machines (:func:`calibrated_host_op_us`, pinned
  by a test), and each eager point in reports/gpu_validation.md is predicted with the median of the **other**
  machines' values (:func:`held_out_host_op_us`), so no point is checked against a value it informed.
"""

from __future__ import annotations

import statistics
from typing import Any

#: stop the secant search when hwsim's step is within this fraction of the measured one
TOLERANCE = 1e-3
#: at most this many evaluations of the step per point
MAX_STEPS = 12


def is_eager(point: dict[str, Any]) -> bool:
    """A decode-step point of the eager stack whose host time per op is hwsim's default (no ``host_op_us``)."""
    return (point["kind"] == "decode_step" and point.get("stack") == "eager"
            and "host_op_us" not in point.get("options", {}))


def machine(point: dict[str, Any]) -> str:
    """The machine a point was measured on: its source and GPU (one host CPU and one software setup)."""
    return f"{point['source']} on {point['target']}"


def _key(point: dict[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in point.items()))


def predict_with(point: dict[str, Any], host_op_us: float) -> float:
    """hwsim's seconds for ``point`` with the eager host time per op set to ``host_op_us`` microseconds."""
    from simulator.validation.gpu_published import predict

    return predict(dict(point, options={**point.get("options", {}), "host_op_us": host_op_us}))[0]


_implied: dict[tuple, float | None] = {}


def implied_host_op_us(point: dict[str, Any]) -> float | None:
    """Microseconds of host time per op at which hwsim's step equals ``point``'s measured one; None where the
    measured step is not above hwsim's step with no host time (the point cannot tell the host's time)."""
    from simulator.validation.gpu_published import predict

    key = _key(point)
    if key not in _implied:
        measured = predict(point)[1]
        x0, f0 = 0.0, predict_with(point, 0.0) - measured  # kernels alone (and a prefill share, where it is in)
        value = None
        if f0 < -TOLERANCE * measured:
            x1 = 20.0
            f1 = predict_with(point, x1) - measured
            for _ in range(MAX_STEPS):
                if abs(f1) <= TOLERANCE * measured or f1 == f0:
                    break
                x0, x1, f0 = x1, max(1e-3, x1 - f1 * (x1 - x0) / (f1 - f0)), f1
                f1 = predict_with(point, x1) - measured
            value = x1 if abs(f1) <= 10 * TOLERANCE * measured else None
        _implied[key] = value
    return _implied[key]


def machine_values(points: list[dict[str, Any]] | None = None) -> dict[str, tuple[float | None, list[float | None]]]:
    """Each machine's value (median of its points' implied values, None if none implies one) and the points' values."""
    from simulator.validation.gpu_published import load_points

    chosen = [p for p in (load_points()[1] if points is None else points) if is_eager(p)]
    out: dict[str, tuple[float | None, list[float | None]]] = {}
    for m in dict.fromkeys(machine(p) for p in chosen):
        values = [implied_host_op_us(p) for p in chosen if machine(p) == m]
        known = [v for v in values if v is not None]
        out[m] = (statistics.median(known) if known else None, values)
    return out


def calibrated_host_op_us() -> float:
    """Median over the machines of their implied host time per op (microseconds): the eager stack's default."""
    values = [v for v, _ in machine_values().values() if v is not None]
    return statistics.median(values)


def held_out_host_op_us(point: dict[str, Any]) -> float:
    """The median over the *other* machines' values: what ``point`` is predicted with in the validation report."""
    mine = machine(point)
    values = [v for m, (v, _) in machine_values().items() if m != mine and v is not None]
    return statistics.median(values)
