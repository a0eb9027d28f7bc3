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

    Duplicated points are all kept (none dominates the other). Points are visited in lexicographic order, so a
    point can only be dominated by one visited before it, and (dominance being transitive) by a point already on
    the front: each block of points is compared with the front found so far, then within itself. Cost
    O(n |front| m), in numpy blocks: a million points with a front of a hundred take seconds.
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    m = values.shape[1]
    order = np.lexsort(values.T[::-1])
    v = values[order]
    front = np.empty((0, m))
    keep = np.zeros(n, dtype=bool)
    start = 0
    while start < n:
        block = max(1, min(4096, 4_000_000 // max(1, len(front) * m)))
        blk = v[start:start + block]
        alive = np.ones(len(blk), dtype=bool)
        for i0 in range(0, len(front), 4096):
            f = front[i0:i0 + 4096]
            le = np.all(f[None, :, :] <= blk[:, None, :], axis=2)
            lt = np.any(f[None, :, :] < blk[:, None, :], axis=2)
            alive &= ~np.any(le & lt, axis=1)
        new: list[np.ndarray] = []
        for i in np.flatnonzero(alive):
            p = blk[i]
            if new:
                nv = np.asarray(new)
                if np.any(np.all(nv <= p, axis=1) & np.any(nv < p, axis=1)):
                    continue
            new.append(p)
            keep[start + i] = True
        if new:
            front = np.vstack([front, np.asarray(new)])
        start += len(blk)
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
