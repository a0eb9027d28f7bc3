"""Pareto fronts: the feasible points no other feasible point dominates."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether ``a`` dominates ``b`` (all objectives minimised): no worse anywhere, better somewhere."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def front_mask(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``values`` (n points x m objectives, all minimised).

    Duplicated points are all kept (none dominates the other). O(n^2 m) in numpy chunks.
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    mask = np.ones(n, dtype=bool)
    if n == 0:
        return mask
    order = np.lexsort(values.T[::-1])  # sorted by first objective: a dominator comes before what it dominates
    v = values[order]
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        if not keep[i]:
            continue
        rest = v[i + 1:]
        dominated = np.all(v[i] <= rest, axis=1) & np.any(v[i] < rest, axis=1)
        keep[i + 1:] &= ~dominated
    mask[order] = keep
    return mask


def signed(rows: list[dict[str, Any]], objectives: Sequence[Any]) -> np.ndarray:
    """Objective values as a matrix to minimise (maximised metrics negated)."""
    out = np.empty((len(rows), len(objectives)))
    for i, row in enumerate(rows):
        for j, o in enumerate(objectives):
            out[i, j] = float(row[o.metric]) * (1.0 if o.direction == "min" else -1.0)
    return out


def feasible(row: dict[str, Any], objectives: Sequence[Any], constraints: Sequence[Any]) -> bool:
    """A point with every objective computed and every constraint satisfied."""
    for o in objectives:
        v = row.get(o.metric)
        if v is None or not math.isfinite(float(v)):
            return False
    return all(c.holds(row) for c in constraints)


def pareto_front(rows: list[dict[str, Any]], objectives: Sequence[Any],
                 constraints: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """The Pareto-optimal feasible rows, sorted by the first objective."""
    ok = [r for r in rows if feasible(r, objectives, constraints)]
    if not ok:
        return []
    values = signed(ok, objectives)
    mask = front_mask(values)
    front = [r for r, m in zip(ok, mask) if m]
    first = objectives[0]
    return sorted(front, key=lambda r: float(r[first.metric]) * (1 if first.direction == "min" else -1))
