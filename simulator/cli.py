"""The ``hwsim`` command line."""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from typing import Any

import click

from hardware.dtypes import parse_precision
from hardware.errors import HwsimError
from mapping.op_costs import Precision
from simulator import __version__


class _Group(click.Group):
    """Turns HwsimError into one line and exit status 2; other errors too, unless ``--debug``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HwsimError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001 - the last line of defence for users
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: internal error ({type(exc).__name__}: {exc}); rerun with --debug for the "
                       "traceback and report it", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="hwsim")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """hwsim: how fast, how much energy and memory traffic a transformer needs on GPU, PIM or FPGA."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _parse_dims(values: tuple[str, ...]) -> dict[str, int]:
    dims: dict[str, int] = {}
    for text in values:
        name, sep, value = text.partition("=")
        if not sep or not name or not value.strip().isdigit():
            raise HwsimError(f"--dim '{text}': expected NAME=N with a non-negative integer N, e.g. --dim seq=128")
        dims[name.strip()] = int(value)
    return dims


def precision_options(func: Callable) -> Callable:
    """The --weights/--activations/--kv-cache precision overrides."""
    for name, help_ in (("kv_cache", "KV cache"), ("activations", "activations"), ("weights", "weights")):
        func = click.option(f"--{name.replace('_', '-')}", name, metavar="P",
                            help=f"Precision of {help_}: fp32, fp16, bf16, fp8, int8, int4 (default: the model's).")(func)
    return func


def make_precision(weights: str | None, activations: str | None, kv_cache: str | None) -> Precision:
    """Validate the precision overrides."""
    return Precision(
        weights=parse_precision(weights, "--weights") if weights else None,
        activations=parse_precision(activations, "--activations") if activations else None,
        kv_cache=parse_precision(kv_cache, "--kv-cache") if kv_cache else None,
    )


@main.command()
@click.argument("model_path", metavar="MODEL.onnx")
@click.option("--batch", default=1, show_default=True, type=int, help="Sequences per pass.")
@click.option("--seq", default=128, show_default=True, type=int, help="Prompt length (prefill).")
@click.option("--phase", type=click.Choice(["prefill", "decode"]), default="prefill", show_default=True)
@click.option("--context", default=None, type=int, help="Tokens in the KV cache before a decode step "
              "[default: --seq].")
@click.option("--dim", "dims", multiple=True, metavar="NAME=N", help="Bind any symbolic dimension by name.")
@precision_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.option("--ops", "show_ops", is_flag=True, help="Also list every costed op.")
def inspect(model_path: str, batch: int, seq: int, phase: str, context: int | None, dims: tuple[str, ...],
            weights: str | None, activations: str | None, kv_cache: str | None, as_json: bool,
            show_ops: bool) -> None:
    """Show MODEL as hwsim's IR sees it: blocks, ops, shapes, parameters, FLOPs and bytes."""
    from mapping.workloads import Model
    from simulator.inspect_report import inspect_dict, inspect_table

    precision = make_precision(weights, activations, kv_cache)
    model = Model(model_path, _parse_dims(dims))
    if phase == "prefill":
        work = model.prefill(batch, seq, precision)
    else:
        work = model.decode(batch, seq if context is None else context, precision, prompt_len=seq)
    if as_json:
        click.echo(json.dumps(inspect_dict(model, work), indent=1))
    else:
        click.echo(inspect_table(model, work, show_ops))


if __name__ == "__main__":
    main()
