"""``hwsim sweep`` (design-space exploration) and ``hwsim compare`` (one workload on several targets)."""

from __future__ import annotations

import csv
import re
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
    from simulator.sweep.outputs import front_table, run_counts, write_outputs, write_summary
    from simulator.sweep.runner import SweepInterrupted, make_executor, run_sweep
    from simulator.sweep.spec import load_spec
    from simulator.sweep.store import Store

    if workers is not None and scheduler is not None:
        raise HwsimError("give --workers or --scheduler, not both")
    if trials is not None and trials < 1:
        raise HwsimError(f"--trials must be >= 1, got {trials}")
    if workers is not None and workers < 1:
        raise HwsimError(f"--workers must be >= 1, got {workers}")
    sw = load_spec(spec_path)
    out = Path(out_dir or Path("sweeps") / sw.spec.name)
    check_output_dir("--out", out)
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
    files_dir = out
    with Store(out / "sweep.sqlite") as st:
        holder = st.claim_outputs(".", spec.name, sw.spec_hash)
    if holder is not None:  # another spec's tables are in DIR: this one's go beside them, never over them
        files_dir = out / re.sub(r"[^A-Za-z0-9._-]+", "_", spec.name)
        files_dir.mkdir(parents=True, exist_ok=True)
        click.echo(f"note: {out} holds the outputs of sweep '{holder[0]}'; this sweep's go to {files_dir} (the "
                   f"store {out / 'sweep.sqlite'} is shared: common points are simulated once)", err=True)
    tables, files = write_outputs(outcome.iter_rows, files_dir, spec, outcome.param_columns)
    if "results.parquet" not in files:
        click.echo("note: results.parquet skipped (pip install pyarrow)", err=True)
    files.append("summary.md")
    write_summary(files_dir / "summary.md", spec, outcome, tables, files)
    click.echo(f"{run_counts(outcome, tables.n_rows)} in {outcome.elapsed_s:.2f} s with {outcome.workers} "
               f"worker(s): {outcome.points_per_s:.1f} points/s")
    if tables.n_errors and tables.n_errors < tables.n_rows:  # every point failed: the error below says so, once
        click.echo(f"{tables.n_errors} point(s) failed, e.g.: {tables.first_error}", err=True)
    click.echo(f"Pareto front ({len(tables.front)} of {tables.n_feasible} feasible points):")
    click.echo(front_table(tables.front, tables.swept, spec.objectives) if tables.front else "(no feasible point)")
    click.echo(f"wrote {', '.join(str(files_dir / f) for f in files)}")
    if tables.n_rows and tables.n_errors == tables.n_rows:
        raise HwsimError(f"every point of {spec_path} failed; the first: {tables.first_error}")


def check_output_dir(flag: str, out: Path) -> None:
    """An output folder must be a folder (or creatable as one) that this user can write."""
    import os

    if out.exists() and not out.is_dir():
        raise HwsimError(f"{flag} {out}: is a file, not a folder; give a folder name")
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise HwsimError(f"{flag} {out}: {probe} is a file, so no folder can be made under it")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise HwsimError(f"{flag} {out}: {probe} is not writable; give a folder you can write")
    store = out / "sweep.sqlite"
    if store.exists() and not store.is_file():
        raise HwsimError(f"{flag} {out}: {store} is not a file; remove it or give another folder")


@click.command()
@click.argument("model_path", metavar="MODEL.onnx")
@click.option("--targets", "targets_csv", required=True, metavar="A,B,...", help="Comma-separated presets or files.")
@click.option("--phase", type=click.Choice(["prefill", "decode", "generate"]), default=None,
              help="[default: decode for models with a causal decoder that generates, else prefill (one forward pass), "
                   "as simulate decides]")
@click.option("--batch", default=1, show_default=True, type=int)
@click.option("--prompt-len", "--seq", "--context", "prompt_len", default=128, show_default=True, type=int,
              help="Prompt tokens (decode: the tokens in the KV cache before the step); --seq and --context are the same "
                   "flag.")
@click.option("--gen-len", default=32, show_default=True, type=int, help="Tokens to generate (generate phase).")
@click.option("--precision", default="default", show_default=True,
              help="default, one format (fp16) or weights/activations/kv (int8/fp16/fp16).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="A target option for every target (as simulate's --set; a target whose kind lacks it shows the "
                   "error in its row).")
@click.option("--out", "out_dir", default=None, metavar="DIR", help="Also write compare.csv and compare.png here.")
@click.option("--quiet", is_flag=True, help="No progress bar (off a terminal: no progress lines).")
def compare(model_path: str, targets_csv: str, phase: str | None, batch: int, prompt_len: int, gen_len: int,
            precision: str, sets: tuple[str, ...], out_dir: str | None, quiet: bool) -> None:
    """Simulate the same workload of MODEL on several targets, side by side."""
    from simulator.cli import _parse_sets
    from simulator.sweep.compare import compare_table, compare_targets, write_compare_plot

    for name, value in (("--batch", batch), ("--prompt-len", prompt_len), ("--gen-len", gen_len)):
        if value < 1:
            raise HwsimError(f"{name} must be >= 1, got {value}")
    if out_dir:
        check_output_dir("--out", Path(out_dir))
    targets = [t.strip() for t in targets_csv.split(",") if t.strip()]
    from simulator.progress import progress_display

    with progress_display(len(targets), "comparing", "targets", quiet) as progress:
        rows = compare_targets(model_path, targets, phase, batch, prompt_len, gen_len, precision,
                               options=_parse_sets(sets), progress=progress)
    phase = rows[0]["phase"]  # the model's default where none was given
    click.echo(f"{Path(model_path).name}, {phase}: batch {batch}, prompt {prompt_len}"
               + (f", generate {gen_len}" if phase == "generate" else "") + f", precision {precision}")
    click.echo(compare_table(rows))
    if out_dir:
        from simulator.cli import writing

        out = Path(out_dir)
        cols = ["target", "latency_s", "energy_j", "tokens_per_s", "tokens_per_j", "memory_bytes", "capacity_bytes",
                "fits_memory", "error", "point_id"]
        with writing("--out", out_dir):  # the table above is printed already: a failed write loses nothing
            out.mkdir(parents=True, exist_ok=True)
            with open(out / "compare.csv", "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
                w.writeheader()
                w.writerows(rows)
            write_compare_plot(rows, out / "compare.png",
                               f"{Path(model_path).name} {phase}, batch {batch}, prompt {prompt_len}")
        click.echo(f"wrote {out / 'compare.csv'}, {out / 'compare.png'}")
    if all(r["latency_s"] is None for r in rows):
        raise HwsimError(f"no target ran {Path(model_path).name}; the first: {rows[0]['error']}")
