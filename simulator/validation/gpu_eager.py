"""The eager stack's host time per op from the published eager decode steps, checked leave-one-machine-out.

PyTorch eager (``--set stack=eager``) dispatches every op from Python on the host CPU, so a host-bound eager decode
step lasts hwsim's op count times the host time per op. That time is a property of the host CPU and the framework
versions, which no published eager measurement states in full. So it is taken from all of them:

- each published eager decode point (``stack: eager`` in hardware/calibration/published.yaml) whose step is clearly
  host-bound in hwsim (its kernels alone at most :data:`HOST_BOUND_SHARE` of the measured step) **implies** a host
  time per op: the value at which hwsim's step equals the measured one (:func:`solve_host_op_us`). A point nearer
  the GPU's bound implies nothing: there the value would absorb whatever hwsim's GPU model misses;
- a **machine** is one source's GPU (its host is one CPU and one software setup; two machines of one source share
  their software versions, so they are not independent in that); its value is the median of its points';
- ``mapping.gpu.stack.EAGER_HOST_PER_OP`` is the median over the machines (:func:`calibrated_host_op_us`, pinned
  by a test), and each eager point in reports/gpu_validation.md is predicted with the median of the **other**
  machines' values (:func:`held_out_host_op_us`), so no point is checked against a value it informed.

Two units: per op of the example graph (``op``: what a user without a count gets) and per ATen op the source's
framework dispatches (``dispatch``: a point whose options carry ``host_dispatches``, the count of
hardware/calibration/host/eager_dispatch.json; ``mapping.gpu.stack.EAGER_HOST_PER_DISPATCH``). The same points give both:
the ``op`` values are computed with ``host_dispatches`` dropped.
"""

from __future__ import annotations

import statistics
from functools import cache
from typing import Any

#: stop the secant search when hwsim's step is within this fraction of the measured one
TOLERANCE = 1e-3
#: at most this many evaluations of the step per point (after the bracket)
MAX_STEPS = 40
#: a point identifies the host time only where hwsim's kernels alone take at most this share of the measured step
#: (clearly host-bound; a step nearer the GPU's bound leaves a residual of the GPU model, not a host time)
HOST_BOUND_SHARE = 0.5


def is_eager(point: dict[str, Any]) -> bool:
    """A decode-step point of the eager stack whose host time per op is hwsim's default (no ``host_op_us``)."""
    return (point["kind"] == "decode_step" and point.get("stack") == "eager"
            and "host_op_us" not in point.get("options", {}))


def unit(point: dict[str, Any]) -> str:
    """``dispatch`` where the point gives its framework's ATen dispatches per step (``host_dispatches``), else ``op``."""
    return "dispatch" if "host_dispatches" in point.get("options", {}) else "op"


def per_graph_op(point: dict[str, Any]) -> dict[str, Any]:
    """``point`` counted in the example graph's ops: its framework's dispatch count (``host_dispatches``) dropped."""
    return dict(point, options={k: v for k, v in point.get("options", {}).items() if k != "host_dispatches"})


@cache
def dispatch_counts() -> dict[str, Any]:
    """The counted cases of hardware/calibration/host/eager_dispatch.json (benchmarks/eager_dispatch.py), by name."""
    import json

    from simulator.validation import checkout_root

    return json.loads((checkout_root() / "hardware" / "calibration" / "host" / "eager_dispatch.json").read_text())[
        "cases"]


def machine(point: dict[str, Any]) -> str:
    """The machine a point was measured on: its source and GPU (one host CPU and one software setup)."""
    return f"{point['source']} on {point['target']}"


def _key(point: dict[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in point.items()))


def predict_with(point: dict[str, Any], host_op_us: float) -> float:
    """hwsim's seconds for ``point`` with the eager host time per op set to ``host_op_us`` microseconds."""
    from simulator.validation.gpu_published import predict

    return predict(dict(point, options={**point.get("options", {}), "host_op_us": host_op_us}))[0]


def solve_host_op_us(point: dict[str, Any], bare_s: float | None = None) -> float:
    """Microseconds of host time per op at which hwsim's step equals ``point``'s measured one (``ms_per_token``).

    hwsim's step is a hinge in the host time: flat while the GPU is the bound, then rising once the host is. The root
    is bracketed (the upper end doubled until the step exceeds the measurement) and found by regula falsi with the
    Illinois modification, which converges on such a function where a secant search can jump between the flat and
    the rising parts. A measurement not above the kernels alone has no root: an error, like one that does not
    converge. ``bare_s``: hwsim's seconds for the point with no host time, where the caller has them already."""
    measured = point["ms_per_token"] * 1e-3
    bare_s = predict_with(point, 0.0) if bare_s is None else bare_s  # kernels alone (and a prefill share, if in)
    lo, f_lo = 0.0, bare_s - measured
    if f_lo >= 0:
        raise ValueError(f"{machine(point)}: the measured step is not above hwsim's kernels alone; no host time fits")
    hi, f_hi = 20.0, predict_with(point, 20.0) - measured
    while f_hi < 0:
        if hi > 1e5:
            raise ValueError(f"{machine(point)}: no host time up to {hi:g} us per op reaches the measured step")
        lo, f_lo, hi = hi, f_hi, hi * 2
        f_hi = predict_with(point, hi) - measured
    side = 0
    for _ in range(MAX_STEPS):
        x = hi - f_hi * (hi - lo) / (f_hi - f_lo)
        f = predict_with(point, x) - measured
        if abs(f) <= TOLERANCE * measured:
            return x
        if f > 0:
            hi, f_hi = x, f
            if side == 1:
                f_lo /= 2
            side = 1
        else:
            lo, f_lo = x, f
            if side == -1:
                f_hi /= 2
            side = -1
    raise ValueError(f"{machine(point)}: the host-time search did not converge ({lo:.3f}-{hi:.3f} us per op)")


_implied: dict[tuple, float | None] = {}


def implied_host_op_us(point: dict[str, Any]) -> float | None:
    """Microseconds of host time per op ``point`` identifies (:func:`solve_host_op_us`), or None where hwsim's
    kernels alone exceed :data:`HOST_BOUND_SHARE` of the measured step: there the GPU may be the bound, and the
    value would be a residual of hwsim's GPU model rather than a host time. A point dispatched per kernel
    (``eager_dispatch: kernels``) identifies none: its value would be per dispatch, not per op of the graph."""
    key = _key(point)
    if point.get("options", {}).get("eager_dispatch", "ops") != "ops":
        return None  # a time per launched kernel, not per op of the graph: not pooled with the per-op values
    if key not in _implied:
        measured = point["ms_per_token"] * 1e-3
        bare = predict_with(point, 0.0)
        _implied[key] = solve_host_op_us(point, bare) if bare <= HOST_BOUND_SHARE * measured else None
    return _implied[key]


@cache
def _published_eager(in_unit: str = "op") -> tuple[dict[str, Any], ...]:
    """The published file's eager points, read once per process (the file is parsed and copied on every read): in
    ``op`` units all of them, ``host_dispatches`` dropped; in ``dispatch`` units those that give it."""
    from simulator.validation.gpu_published import load_points

    points = [p for p in load_points()[1] if is_eager(p)]
    if in_unit == "dispatch":
        return tuple(p for p in points if unit(p) == "dispatch")
    return tuple(per_graph_op(p) for p in points)


def machine_values(points: list[dict[str, Any]] | None = None,
                   in_unit: str = "op") -> dict[str, tuple[float | None, list[float | None]]]:
    """Each machine's value (median of its points' implied values, None if none implies one) and the points' values,
    in ``in_unit`` (``op`` or ``dispatch``; given ``points`` are taken as they are)."""
    chosen = [p for p in (_published_eager(in_unit) if points is None else points) if is_eager(p)]
    out: dict[str, tuple[float | None, list[float | None]]] = {}
    for m in dict.fromkeys(machine(p) for p in chosen):
        values = [implied_host_op_us(p) for p in chosen if machine(p) == m]
        known = [v for v in values if v is not None]
        out[m] = (statistics.median(known) if known else None, values)
    return out


def calibrated_host_op_us(in_unit: str = "op") -> float:
    """Median over the machines of their implied host time per op (microseconds): the eager stack's default
    (``mapping.gpu.stack.EAGER_HOST_PER_OP``; in ``dispatch`` units ``EAGER_HOST_PER_DISPATCH``)."""
    values = [v for v, _ in machine_values(in_unit=in_unit).values() if v is not None]
    return statistics.median(values)


def host_op_span_us(in_unit: str = "op") -> tuple[float, float]:
    """The least and the most of the machines' implied host time per op (microseconds): the span an eager
    prediction on an unstated host is uncertain by (``mapping.gpu.stack.EAGER_HOST_PER_OP_SPAN``, ``..._DISPATCH_SPAN``)."""
    values = [v for v, _ in machine_values(in_unit=in_unit).values() if v is not None]
    return min(values), max(values)


def held_out_host_op_us(point: dict[str, Any]) -> float:
    """The median over the *other* machines' values, in the point's unit: what ``point`` is predicted with in the
    validation report."""
    mine = machine(point)
    values = [v for m, (v, _) in machine_values(in_unit=unit(point)).items() if m != mine and v is not None]
    return statistics.median(values)
