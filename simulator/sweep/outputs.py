"""Sweep outputs: results.csv, results.parquet, pareto.csv, pareto.png, summary.md, and the printed front."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simulator.sweep.pareto import feasible

BASE_COLUMNS = ["point_id", "model", "target"]
WORKLOAD_COLUMNS = ["phase", "batch", "prompt_len", "gen_len", "precision"]
RESULT_COLUMNS = ["latency_s", "energy_j", "tokens_per_s", "tokens_per_j", "memory_bytes", "capacity_bytes",
                  "fits_memory", "feasible", "error", "sim_s"]


#: The axes and metrics of a serving sweep (``serving:`` in the spec), in place of the workload columns.
SERVING_AXIS_COLUMNS = ["rate", "scheduler", "parallel"]
SERVING_COLUMNS = [*SERVING_AXIS_COLUMNS, "requests", "prompt_len", "gen_len", "ttft_p50_s", "ttft_p99_s",
                   "tpot_p50_s", "tpot_p99_s", "goodput_requests_per_s", "slo_attainment", "finished", "rejected"]


def columns(param_columns: Sequence[str], serving: bool = False) -> list[str]:
    """Column order of the result tables (``serving``: a serving sweep's columns)."""
    return [*BASE_COLUMNS, *param_columns, *(SERVING_COLUMNS if serving else WORKLOAD_COLUMNS), *RESULT_COLUMNS]


def annotate(rows: list[dict[str, Any]], objectives: Sequence[Any], constraints: Sequence[Any]) -> None:
    """Add the ``feasible`` column."""
    for r in rows:
        r["feasible"] = feasible(r, objectives, constraints)


def write_csv(rows: list[dict[str, Any]], path: Path, cols: list[str]) -> None:
    """One row per point; missing values empty."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: ("" if r.get(c) is None else r.get(c)) for c in cols})


def write_parquet(rows: list[dict[str, Any]], path: Path, cols: list[str]) -> bool:
    """results.parquet (needs pyarrow); returns False when pyarrow is missing."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return False
    data: dict[str, list[Any]] = {c: [r.get(c) for r in rows] for c in cols}
    arrays = {}
    for c, values in data.items():
        try:
            arrays[c] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in a swept column: keep them as text
            arrays[c] = pa.array([None if v is None else str(v) for v in values])
    pq.write_table(pa.table(arrays), path)
    return True


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def front_table(front: list[dict[str, Any]], param_columns: Sequence[str], objectives: Sequence[Any]) -> str:
    """The Pareto front as a plain-text table."""
    varying = [c for c in ["model", *param_columns, *WORKLOAD_COLUMNS, *SERVING_AXIS_COLUMNS]
               if len({str(r.get(c)) for r in front}) > 1]
    cols = ["point_id", *varying, *dict.fromkeys([o.metric for o in objectives] + ["latency_s", "energy_j",
                                                                                  "tokens_per_j"])]
    cells = [[_fmt(r.get(c))[:20] if c == "point_id" else _fmt(r.get(c)) for c in cols] for r in front]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(x.rjust(w) if i else x.ljust(w) for i, (x, w) in enumerate(zip(row, widths))) for row in cells]
    return "\n".join(lines)


def _log_ok(values: list[float]) -> bool:
    pos = [v for v in values if v > 0]
    return len(pos) == len(values) and len(pos) > 1 and max(pos) / min(pos) > 20


def write_plot(rows: list[dict[str, Any]], front: list[dict[str, Any]], path: Path, objectives: Sequence[Any],
               param_columns: Sequence[str], title: str) -> None:
    """Objective scatter with the front highlighted, and a parameter-sensitivity panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r.get("feasible")]
    swept = [c for c in [*param_columns, "model", *WORKLOAD_COLUMNS, *SERVING_AXIS_COLUMNS]
             if len({str(r.get(c)) for r in rows}) > 1]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 5.2))
    o0 = objectives[0]
    if len(objectives) >= 2:
        o1 = objectives[1]
        ax.scatter([r[o0.metric] for r in ok], [r[o1.metric] for r in ok], s=14, c="0.6", label="feasible points")
        bad = [r for r in rows if not r.get("feasible") and r.get(o0.metric) is not None and r.get(o1.metric) is not None]
        if bad:
            ax.scatter([r[o0.metric] for r in bad], [r[o1.metric] for r in bad], s=14, marker="x", c="0.8",
                       label="violates a constraint")
        ax.plot([r[o0.metric] for r in front], [r[o1.metric] for r in front], "o-", c="tab:red", ms=6,
                drawstyle="steps-post" if o0.direction == o1.direction == "min" else "default", label="Pareto front")
        ax.set_xlabel(f"{o0.metric} ({o0.direction})")
        ax.set_ylabel(f"{o1.metric} ({o1.direction})")
        if _log_ok([r[o0.metric] for r in ok]):
            ax.set_xscale("log")
        if _log_ok([r[o1.metric] for r in ok]):
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    else:
        vals = sorted(r[o0.metric] for r in ok)
        ax.plot(range(len(vals)), vals, ".", c="0.5")
        ax.set_xlabel("points, sorted")
        ax.set_ylabel(f"{o0.metric} ({o0.direction})")
    ax.set_title(title, fontsize=10)
    # sensitivity: mean of the first objective, relative to its overall mean, at each value of each swept axis
    if ok and swept:
        overall = sum(r[o0.metric] for r in ok) / len(ok)
        for c in swept:
            values = list(dict.fromkeys(r.get(c) for r in rows))
            try:
                values.sort()
            except TypeError:
                pass
            ys = []
            for v in values:
                sel = [r[o0.metric] for r in ok if r.get(c) == v]
                ys.append(sum(sel) / len(sel) / overall if sel and overall else math.nan)
            xs = [i / max(1, len(values) - 1) for i in range(len(values))]
            bx.plot(xs, ys, "o-", label=f"{c} ({_fmt(values[0])} .. {_fmt(values[-1])})")
        bx.axhline(1.0, c="0.8", lw=0.8)
        bx.set_xlabel("axis value, lowest to highest (each axis scaled to 0..1)")
        bx.set_ylabel(f"mean {o0.metric} / overall mean")
        bx.legend(fontsize=7)
    else:
        bx.text(0.5, 0.5, "no swept axis with feasible points", ha="center", va="center")
    bx.set_title("parameter sensitivity", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_summary(path: Path, spec: Any, outcome: Any, rows: list[dict[str, Any]], front: list[dict[str, Any]],
                  param_columns: Sequence[str], files: list[str]) -> None:
    """summary.md: what was swept, how it ran, the front."""
    n_ok = sum(1 for r in rows if r.get("feasible"))
    n_err = sum(1 for r in rows if r.get("error"))
    lines = [f"# Sweep `{spec.name}`", "",
             f"- models: {', '.join(Path(m).name for m in spec.models)}; base target: `{spec.target}`",
             f"- strategy: {outcome.strategy}; points: {len(rows)} ({outcome.computed} simulated, {outcome.cached} "
             f"from the store); workers: {outcome.workers}; {outcome.elapsed_s:.2f} s "
             f"({outcome.points_per_s:.1f} points/s)",
             f"- objectives: {', '.join(f'{o.metric} ({o.direction})' for o in spec.objectives)}",
             f"- constraints: {', '.join(str(c) for c in spec.constraints) or 'none'}",
             f"- feasible points: {n_ok}; points with errors (e.g. model does not fit): {n_err}", "",
             "## Axes", ""]
    for name, values in spec.parameters.items():
        lines.append(f"- `{name}`: {', '.join(_fmt(v) for v in values)}")
    serving = getattr(spec, "serving", None)
    if serving is not None:
        lines.append(f"- serving (`hwsim serve` per point): targets {', '.join(serving.targets or [spec.target])}; "
                     f"rates {', '.join(_fmt(v) for v in serving.rate)} requests/s; schedulers "
                     f"{', '.join(serving.scheduler)}; parallel {', '.join(serving.parallel)}; {serving.requests} "
                     f"requests, prompt {serving.prompt_len}, generate {serving.gen_len}, SLO {serving.slo or 'none'}; "
                     "latency_s is the p99 end-to-end latency, energy_j the energy per request")
    else:
        for name in WORKLOAD_COLUMNS:
            lines.append(f"- {name}: {', '.join(_fmt(v) for v in getattr(spec.workload, name))}")
    lines += ["", f"## Pareto front ({len(front)} points)", "", "```",
              front_table(front, param_columns, spec.objectives) if front else "(no feasible point)", "```", "",
              "Files: " + ", ".join(f"`{f}`" for f in files), ""]
    path.write_text("\n".join(lines))
