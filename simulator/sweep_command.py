"""``hwsim sweep`` (design-space exploration) and ``hwsim compare`` (one workload on several targets)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import click

from hardware.errors import HwsimError


@click.command()
@click.argument("spec_path", metavar="SPEC.yaml")
@click.option("--out", "out_dir", default=None, metavar="DIR", help="Output folder [default: sweeps/<spec name>].")
@click.option("--workers", type=int, default=None, help="Local worker processes [default: all cores].")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT", help="Run on an existing dask.distributed cluster.")
@click.option("--resume", is_flag=True, help="Continue an interrupted sweep in DIR (finished points are never recomputed).")
@click.option("--strategy", type=click.Choice(["grid", "random", "nsga2", "tpe"]), default=None,
              help="Search strategy [default: the spec's, else grid].")
@click.option("--trials", type=int, default=None, help="Trial budget for random, nsga2 and tpe.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def sweep(spec_path: str, out_dir: str | None, workers: int | None, scheduler: str | None, resume: bool,
          strategy: str | None, trials: int | None, quiet: bool) -> None:
    """Explore a design space: simulate every point of SPEC (or a search over it), keep the Pareto front."""
    from simulator.sweep.outputs import (
        annotate,
        columns,
        front_table,
        write_csv,
        write_parquet,
        write_plot,
        write_summary,
    )
    from simulator.sweep.pareto import pareto_front
    from simulator.sweep.runner import SweepInterrupted, make_executor, run_sweep
    from simulator.sweep.spec import load_spec

    if workers is not None and scheduler is not None:
        raise HwsimError("give --workers or --scheduler, not both")
    if trials is not None and trials < 1:
        raise HwsimError(f"--trials must be >= 1, got {trials}")
    sw = load_spec(spec_path)
    out = Path(out_dir or Path("sweeps") / sw.spec.name)
    executor = make_executor(workers, scheduler)
    try:
        outcome = run_sweep(sw, out, executor, strategy, trials, resume, progress=not quiet,
                            on_message=lambda m: click.echo(m, err=True))
    except SweepInterrupted as exc:
        click.echo(str(exc), err=True)
        sys.exit(130)
    finally:
        executor.close()
    spec = sw.spec
    rows = outcome.rows
    annotate(rows, spec.objectives, spec.constraints)
    cols = columns(outcome.param_columns, spec.serving is not None)
    front = pareto_front(rows, spec.objectives, spec.constraints)
    files = ["results.csv"]
    write_csv(rows, out / "results.csv", cols)
    if write_parquet(rows, out / "results.parquet", cols):
        files.append("results.parquet")
    else:
        click.echo("note: results.parquet skipped (pip install pyarrow)", err=True)
    write_csv(front, out / "pareto.csv", cols)
    files.append("pareto.csv")
    if rows:
        write_plot(rows, front, out / "pareto.png", spec.objectives, outcome.param_columns,
                   f"{spec.name}: {len(rows)} points, {len(front)} on the front")
        files.append("pareto.png")
    files.append("summary.md")
    write_summary(out / "summary.md", spec, outcome, rows, front, outcome.param_columns, files)
    click.echo(f"{len(rows)} points ({outcome.computed} simulated, {outcome.cached} from the store) in "
               f"{outcome.elapsed_s:.2f} s with {outcome.workers} worker(s): {outcome.points_per_s:.1f} points/s")
    n_err = sum(1 for r in rows if r.get("error"))
    if n_err:
        first = next(r["error"] for r in rows if r.get("error"))
        click.echo(f"{n_err} point(s) failed, e.g.: {first}", err=True)
    click.echo(f"Pareto front ({len(front)} of {sum(1 for r in rows if r['feasible'])} feasible points):")
    click.echo(front_table(front, outcome.param_columns, spec.objectives) if front else "(no feasible point)")
    click.echo(f"wrote {', '.join(str(out / f) for f in files)}")


@click.command()
@click.argument("model_path", metavar="MODEL.onnx")
@click.option("--targets", "targets_csv", required=True, metavar="A,B,...", help="Comma-separated presets or files.")
@click.option("--phase", type=click.Choice(["prefill", "decode", "generate"]), default="decode", show_default=True)
@click.option("--batch", default=1, show_default=True, type=int)
@click.option("--prompt-len", default=128, show_default=True, type=int, help="Prompt tokens (decode: cached context).")
@click.option("--gen-len", default=32, show_default=True, type=int, help="Tokens to generate (generate phase).")
@click.option("--precision", default="default", show_default=True,
              help="default, one format (fp16) or weights/activations/kv (int8/fp16/fp16).")
@click.option("--out", "out_dir", default=None, metavar="DIR", help="Also write compare.csv and compare.png here.")
def compare(model_path: str, targets_csv: str, phase: str, batch: int, prompt_len: int, gen_len: int,
            precision: str, out_dir: str | None) -> None:
    """Simulate the same workload of MODEL on several targets, side by side."""
    from simulator.sweep.compare import compare_table, compare_targets, write_compare_plot

    for name, value in (("--batch", batch), ("--prompt-len", prompt_len), ("--gen-len", gen_len)):
        if value < 1:
            raise HwsimError(f"{name} must be >= 1, got {value}")
    targets = [t.strip() for t in targets_csv.split(",") if t.strip()]
    rows = compare_targets(model_path, targets, phase, batch, prompt_len, gen_len, precision)
    click.echo(f"{Path(model_path).name}, {phase}: batch {batch}, prompt {prompt_len}"
               + (f", generate {gen_len}" if phase == "generate" else "") + f", precision {precision}")
    click.echo(compare_table(rows))
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        cols = ["target", "latency_s", "energy_j", "tokens_per_s", "tokens_per_j", "memory_bytes", "capacity_bytes",
                "fits_memory", "error", "point_id"]
        with open(out / "compare.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
        write_compare_plot(rows, out / "compare.png", f"{Path(model_path).name} {phase}, batch {batch}, prompt {prompt_len}")
        click.echo(f"wrote {out / 'compare.csv'}, {out / 'compare.png'}")
