"""Sweep outputs: results.csv, results.parquet, pareto.csv, pareto.png, summary.md, and the printed front.

:func:`write_outputs` streams the spec's rows from the store twice (once for the tables and the front's
objective matrix, once to pick the front's rows), so a 10^6-point sweep never sits in memory; the plot shows a
seeded random sample of at most :data:`PLOT_SAMPLE` points beside the whole front, and says so.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simulator.sweep.pareto import feasible, front_mask, signed

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


PLOT_SAMPLE = 20000  # points drawn in pareto.png at most (the front is always drawn whole)
METRIC_LABELS = {"latency_s": "latency (s)", "energy_j": "energy (J)", "tokens_per_s": "throughput (tokens/s)",
                 "tokens_per_j": "energy efficiency (tokens/J)"}


def axis_label(metric: str, direction: str) -> str:
    """``latency (s), lower is better``: the unit in parentheses, the direction in words (never ``(min)``)."""
    better = "lower" if direction == "min" else "higher"
    return f"{METRIC_LABELS.get(metric, metric)}, {better} is better"


def front_table(front: list[dict[str, Any]], swept_columns: Sequence[str], objectives: Sequence[Any]) -> str:
    """The Pareto front as a plain-text table: every swept column (those that vary over the whole sweep, even
    when constant on the front, so each row names its design), then the objectives and the usual metrics."""
    cols = ["point_id", *swept_columns, *dict.fromkeys([o.metric for o in objectives] + ["latency_s", "energy_j",
                                                                                        "tokens_per_j"])]
    cells = [[_fmt(r.get(c))[:20] if c == "point_id" else _fmt(r.get(c)) for c in cols] for r in front]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(x.rjust(w) if i else x.ljust(w) for i, (x, w) in enumerate(zip(row, widths))) for row in cells]
    return "\n".join(lines)


def swept_columns(rows: Iterable[dict[str, Any]], param_columns: Sequence[str]) -> list[str]:
    """The model, target, parameter and workload columns that take more than one value over ``rows``."""
    cand = ["model", "target", *param_columns, *WORKLOAD_COLUMNS, *SERVING_AXIS_COLUMNS]
    seen: dict[str, set[str]] = {c: set() for c in cand}
    for r in rows:
        for c in cand:
            if len(seen[c]) < 2:
                seen[c].add(str(r.get(c)))
    return [c for c in cand if len(seen[c]) > 1]


@dataclass
class SweepTables:
    """What one streaming pass over the rows gathered."""

    n_rows: int = 0
    n_feasible: int = 0
    n_errors: int = 0
    first_error: str = ""
    swept: list[str] = field(default_factory=list)
    front: list[dict[str, Any]] = field(default_factory=list)
    sample: list[dict[str, Any]] = field(default_factory=list)  # for the plot
    sensitivity: dict[str, list[tuple[Any, float]]] = field(default_factory=dict)


RESULT_TYPES = {"batch": "int64", "prompt_len": "int64", "gen_len": "int64", "latency_s": "float64",
                "energy_j": "float64", "tokens_per_s": "float64", "tokens_per_j": "float64", "memory_bytes": "int64",
                "capacity_bytes": "int64", "fits_memory": "bool_", "feasible": "bool_", "sim_s": "float64",
                "rate": "float64", "requests": "int64", "ttft_p50_s": "float64", "ttft_p99_s": "float64",
                "tpot_p50_s": "float64", "tpot_p99_s": "float64", "goodput_requests_per_s": "float64",
                "slo_attainment": "float64", "finished": "int64", "rejected": "int64"}


def parquet_types(cols: Sequence[str], parameters: dict[str, list[Any]]) -> dict[str, str]:
    """Arrow type per column, fixed before the first row: known columns by their meaning, a swept column by its
    axis values (numbers -> float64 or int64, booleans -> bool, anything else or a mix -> string)."""
    types = {}
    for c in cols:
        if c in RESULT_TYPES:
            types[c] = RESULT_TYPES[c]
        elif c in parameters:
            kinds = {type(v) for v in parameters[c]}
            types[c] = ("bool_" if kinds == {bool} else "int64" if kinds == {int}
                        else "float64" if kinds <= {int, float} else "string")
        else:
            types[c] = "string"
    return types


class _Parquet:
    """results.parquet written in row groups of a fixed schema (needs pyarrow; ``ok`` is False without it)."""

    def __init__(self, path: Path, cols: list[str], types: dict[str, str]) -> None:
        self.path, self.cols, self.buf, self.writer = path, cols, [], None
        try:
            import pyarrow as pa
        except ImportError:
            self.ok = False
            return
        self.ok = True
        self.schema = pa.schema([(c, getattr(pa, types[c])()) for c in cols])

    def add(self, row: dict[str, Any]) -> None:
        if self.ok:
            self.buf.append(row)
            if len(self.buf) >= 50000:
                self.flush()

    def flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrays = []
        for f in self.schema:
            values = [r.get(f.name) for r in self.buf]
            if f.type == pa.string():
                values = [None if v is None else str(v) for v in values]
            elif f.type == pa.int64():
                values = [None if v is None else int(v) for v in values]
            elif f.type == pa.float64():
                values = [None if v is None else float(v) for v in values]
            arrays.append(pa.array(values, type=f.type))
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.schema)
        self.writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
        self.buf = []

    def close(self) -> bool:
        if not self.ok:
            return False
        self.flush()
        self.writer.close()
        return True


def write_outputs(rows: Any, out: Path, spec: Any, param_columns: Sequence[str],
                  parquet: bool = True) -> tuple[SweepTables, list[str]]:
    """Write results.csv, results.parquet, pareto.csv and pareto.png into ``out`` from ``rows``, a callable
    returning a fresh iterator over the spec's result rows (it is called twice). Returns what was gathered and
    the file names written."""
    objectives, constraints = spec.objectives, spec.constraints
    cols = columns(param_columns, getattr(spec, "serving", None) is not None)
    t = SweepTables()
    t.swept = swept_columns(rows(), param_columns)
    types = parquet_types(cols, spec.parameters)
    if getattr(spec, "serving", None) is not None:  # lengths are distributions there (``512``, ``uniform:...``)
        types.update(prompt_len="string", gen_len="string")
    pq_writer = _Parquet(out / "results.parquet", cols, types) if parquet else None
    rng = random.Random(0)
    o0 = objectives[0].metric
    sums: dict[tuple[str, str], list[float]] = {}
    first_value: dict[tuple[str, str], Any] = {}
    vectors: list[list[float]] = []
    feasible_index: list[int] = []
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for i, r in enumerate(rows()):
            r["feasible"] = feasible(r, objectives, constraints)
            w.writerow({c: ("" if r.get(c) is None else r.get(c)) for c in cols})
            if pq_writer is not None:
                pq_writer.add(r)
            t.n_rows += 1
            if r.get("error"):
                t.n_errors += 1
                t.first_error = t.first_error or str(r["error"])
            if r["feasible"]:
                t.n_feasible += 1
                vectors.append(list(signed([r], objectives)[0]))
                feasible_index.append(i)
                for c in t.swept:
                    key = (c, str(r.get(c)))
                    acc = sums.setdefault(key, [0.0, 0])
                    acc[0] += float(r[o0])
                    acc[1] += 1
                    first_value.setdefault(key, r.get(c))
            if r.get(objectives[0].metric) is not None:  # reservoir sample for the plot
                if len(t.sample) < PLOT_SAMPLE:
                    t.sample.append(r)
                else:
                    j = rng.randrange(t.n_rows)
                    if j < PLOT_SAMPLE:
                        t.sample[j] = r
    files = ["results.csv"]
    if pq_writer is not None and pq_writer.close():
        files.append("results.parquet")
    on_front: set[int] = set()
    if vectors:
        mask = front_mask(np.asarray(vectors))
        on_front = {feasible_index[k] for k in np.flatnonzero(mask)}
        for i, r in enumerate(rows()):
            if i in on_front:
                r["feasible"] = True
                t.front.append(r)
        first = objectives[0]
        t.front.sort(key=lambda r: float(r[first.metric]) * (1 if first.direction == "min" else -1))
    write_csv(t.front, out / "pareto.csv", cols)
    files.append("pareto.csv")
    if t.n_feasible:
        overall = sum(v[0] for k, v in sums.items() if k[0] == t.swept[0]) / t.n_feasible if t.swept else 0.0
        for c in t.swept:
            entries = [(first_value[k], v[0] / v[1] / overall if overall else math.nan)
                       for k, v in sums.items() if k[0] == c]
            try:
                entries.sort(key=lambda e: e[0])
            except TypeError:
                pass
            t.sensitivity[c] = entries
    if t.n_rows:
        sampled = f" (a random {len(t.sample)} of them drawn)" if t.n_rows > len(t.sample) else ""
        write_plot(t.sample, t.front, out / "pareto.png", objectives, t.sensitivity,
                   f"{spec.name}: {t.n_rows} points{sampled}, {len(t.front)} on the front")
        files.append("pareto.png")
    return t, files


def _log_ok(values: list[float]) -> bool:
    pos = [v for v in values if v > 0]
    return len(pos) == len(values) and len(pos) > 1 and max(pos) / min(pos) > 20


def write_plot(rows: list[dict[str, Any]], front: list[dict[str, Any]], path: Path, objectives: Sequence[Any],
               sensitivity: dict[str, list[tuple[Any, float]]], title: str) -> None:
    """Objective scatter with the front highlighted, and a parameter-sensitivity panel (mean of the first
    objective at each value of each swept axis, relative to the overall mean). Legends sit outside the data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r.get("feasible")]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 5.6))
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
        ax.set_xlabel(axis_label(o0.metric, o0.direction))
        ax.set_ylabel(axis_label(o1.metric, o1.direction))
        values0 = [r[o0.metric] for r in ok + front]
        values1 = [r[o1.metric] for r in ok + front]
        if _log_ok(values0):
            ax.set_xscale("log")
        if _log_ok(values1):
            ax.set_yscale("log")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, frameon=False)
    else:
        vals = sorted(r[o0.metric] for r in ok)
        ax.plot(range(len(vals)), vals, ".", c="0.5")
        ax.set_xlabel("design points, sorted by the objective")
        ax.set_ylabel(axis_label(o0.metric, o0.direction))
    ax.set_title(title, fontsize=10)
    if sensitivity:
        for c, entries in sensitivity.items():
            xs = [i / max(1, len(entries) - 1) for i in range(len(entries))]
            bx.plot(xs, [e[1] for e in entries], "o-", label=f"{c} ({_fmt(entries[0][0])} .. {_fmt(entries[-1][0])})")
        bx.axhline(1.0, c="0.8", lw=0.8)
        bx.set_xlabel("axis value, lowest to highest (each axis scaled to 0..1)")
        bx.set_ylabel(f"mean {METRIC_LABELS.get(o0.metric, o0.metric)} / overall mean (ratio)")
        bx.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    else:
        bx.text(0.5, 0.5, "no swept axis with feasible points", ha="center", va="center")
    bx.set_title("parameter sensitivity (feasible points)", fontsize=10)
    fig.subplots_adjust(wspace=0.28)
    fig.savefig(path, dpi=110, bbox_inches="tight")  # the legends below the axes stay in the image
    plt.close(fig)


def write_summary(path: Path, spec: Any, outcome: Any, tables: SweepTables, files: list[str]) -> None:
    """summary.md: what was swept, how it ran, the front."""
    lines = [f"# Sweep `{spec.name}`", "",
             f"- models: {', '.join(Path(m).name for m in spec.models)}; base target: `{spec.target}`",
             f"- strategy: {outcome.strategy}; {run_counts(outcome, tables.n_rows)}; workers: {outcome.workers}; "
             f"{outcome.elapsed_s:.2f} s ({outcome.points_per_s:.1f} points/s)",
             f"- objectives: {', '.join(f'{o.metric} ({o.direction})' for o in spec.objectives)}",
             f"- constraints: {', '.join(str(c) for c in spec.constraints) or 'none'}",
             f"- feasible points: {tables.n_feasible}; points with errors (e.g. model does not fit): {tables.n_errors}",
             "", "## Axes", ""]
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
    lines += ["", f"## Pareto front ({len(tables.front)} points)", "", "```",
              front_table(tables.front, tables.swept, spec.objectives) if tables.front else "(no feasible point)",
              "```", "", "Files: " + ", ".join(f"`{f}`" for f in files), ""]
    path.write_text("\n".join(lines))


def run_counts(outcome: Any, n_rows: int) -> str:
    """``6 points (4 simulated, 2 from the store)``; for a search, the trials too: the counts always add up."""
    if outcome.strategy in ("nsga2", "tpe"):
        return (f"{outcome.total} trials over {n_rows} distinct points ({outcome.computed} simulated, "
                f"{outcome.total - outcome.computed} answered from the store or by a repeated trial)")
    return f"{n_rows} points ({outcome.computed} simulated, {n_rows - outcome.computed} from the store)"
