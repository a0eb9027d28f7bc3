"""The ``hwsim`` command line."""

from __future__ import annotations

import contextlib
import json
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from hardware.dtypes import parse_precision
from hardware.errors import HwsimError
from mapping.op_costs import Precision
from simulator import __version__
from simulator.cli_flags import precision_options
from simulator.progress import progress_display
from simulator.technique_run import technique_options


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
        except click.UsageError as exc:  # a bad flag or value: one line, like every other user error
            hint = f" (see `hwsim {ctx.invoked_subcommand or ''} --help`)".replace("  ", " ")
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
            sys.exit(2)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:  # output piped into `head`: stop quietly
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
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
    import warnings

    from hardware.errors import HwsimWarning

    def show(message: Warning | str, category: type[Warning], *_args: object, **_kwargs: object) -> None:
        if issubclass(category, HwsimWarning):
            click.echo(f"warning: {message}", err=True)

    warnings.showwarning = show  # type: ignore[assignment]
    warnings.simplefilter("always", HwsimWarning)


#: Largest count any flag takes (tokens, batch, devices): far above any real run, small enough for int64 maths.
MAX_COUNT = 1 << 40


def check_count(flag: str, value: int, low: int = 1) -> int:
    """``value`` of ``flag`` within [low, MAX_COUNT], else a one-line error."""
    if value < low or value > MAX_COUNT:
        raise HwsimError(f"{flag} must be between {low} and {MAX_COUNT}, got {value}")
    return value


def check_output(flag: str, out: str | None) -> None:
    """An output path must be a file in an existing, writable folder (not a folder itself)."""
    if not out:
        return
    import os

    path = Path(out)
    if path.is_dir():
        raise HwsimError(f"{flag} {out}: is a directory; give a file name, e.g. {path / 'out.json'}")
    folder = path.resolve().parent
    if not folder.is_dir():
        raise HwsimError(f"{flag} {out}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise HwsimError(f"{flag} {out}: folder {folder} is not writable")
    if flag.startswith("--plot") and path.suffix:  # matplotlib picks the format by the suffix
        from matplotlib.backend_bases import FigureCanvasBase

        formats = FigureCanvasBase.get_supported_filetypes()
        if path.suffix[1:].lower() not in formats:
            raise HwsimError(f"{flag} {out}: matplotlib writes no '{path.suffix}' files; use one of "
                             f"{', '.join('.' + f for f in sorted(formats))} (e.g. {path.with_suffix('.png')})")


@contextlib.contextmanager
def writing(flag: str, out: str) -> Iterator[None]:
    """Turn a failure to write output ``out`` of ``flag`` (a full disk, a path the OS refuses) into one line."""
    try:
        yield
    except OSError as exc:
        raise HwsimError(f"{flag} {out}: cannot write it ({exc.strerror or exc}); give another path") from None


class JsonOutput:
    """Where a command's ``--json OUT`` goes, checked before any work (:func:`check_output`). ``-`` puts the JSON
    on stdout and every human-readable line (:meth:`say`) on stderr, so the output pipes into ``jq``.
    ``indent`` / ``newline``: the file's format; ``announce``: say "wrote OUT" after writing it."""

    def __init__(self, out: str | Path | None, indent: int = 1, newline: bool = False, announce: bool = True) -> None:
        self.out = None if out is None else str(out)
        self.stdout = self.out == "-"
        self.indent, self.newline, self.announce = indent, newline, announce
        check_output("--json", None if self.stdout else self.out)

    def say(self, text: str) -> None:
        """A human-readable line: stdout, or stderr when the JSON goes to stdout."""
        click.echo(text, err=self.stdout)

    def write(self, data: Any) -> None:
        """Write ``data`` where ``--json`` said (nothing without it); a failed write is one line."""
        if not self.out:
            return
        text = json.dumps(data, indent=self.indent)
        if self.stdout:
            click.echo(text)
            return
        with writing("--json", self.out):
            Path(self.out).write_text(text + ("\n" if self.newline else ""))
        if self.announce:
            self.say(f"wrote {self.out}")


def _parse_dims(values: tuple[str, ...]) -> dict[str, int]:
    dims: dict[str, int] = {}
    for text in values:
        name, sep, value = text.partition("=")
        if not sep or not name or not value.strip().isdigit():
            raise HwsimError(f"--dim '{text}': expected NAME=N with a non-negative integer N, e.g. --dim seq=128")
        dims[name.strip()] = check_count(f"--dim {name.strip()}", int(value), low=0)
    return dims


def make_precision(weights: str | None, activations: str | None, kv_cache: str | None,
                   head: str | None = None) -> Precision:
    """Validate the precision overrides."""
    return Precision(
        weights=parse_precision(weights, "--weights") if weights else None,
        activations=parse_precision(activations, "--activations") if activations else None,
        kv_cache=parse_precision(kv_cache, "--kv-cache") if kv_cache else None,
        head=("same" if head.strip().lower() == "same" else parse_precision(head, "--head-weights")) if head else None,
    )


@main.command()
@click.argument("model_path", metavar="MODEL.onnx")
@click.option("--batch", default=1, show_default=True, type=int, help="Sequences per pass.")
@click.option("--seq", "--prompt-len", "seq", default=None, type=int,
              help="Prompt length (prefill); --prompt-len is the same flag, as in `simulate` [default: 128, or the "
                   "one length a graph's own ops fix].")
@click.option("--phase", type=click.Choice(["prefill", "decode"]), default="prefill", show_default=True)
@click.option("--context", default=None, type=int, help="Tokens in the KV cache before a decode step "
              "[default: --seq].")
@click.option("--dim", "dims", multiple=True, metavar="NAME=N", help="Bind any symbolic dimension by name.")
@click.option("--causal/--no-causal", "causal", default=None,
              help="Decide self-attention causality where the graph's evidence does not (inspect shows it).")
@precision_options("the model's")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.option("--ops", "show_ops", is_flag=True, help="Also list every costed op.")
def inspect(model_path: str, batch: int, seq: int | None, phase: str, context: int | None, dims: tuple[str, ...],
            causal: bool | None, weights: str | None, activations: str | None, kv_cache: str | None,
            head_weights: str | None, as_json: bool,
            show_ops: bool) -> None:
    """Show MODEL as hwsim's IR sees it: blocks, ops, shapes, parameters, FLOPs and bytes."""
    from mapping.workloads import Model
    from simulator.inspect_report import inspect_dict, inspect_table

    check_count("--batch", batch)
    if seq is not None:
        check_count("--seq", seq)
    if context is not None:
        check_count("--context", context, low=0)
    precision = make_precision(weights, activations, kv_cache, head_weights)
    model = Model(model_path, _parse_dims(dims), causal=causal)
    if seq is None:  # a graph whose reshapes fix the traced length is shown at it (simulate asks for it)
        seq = model.graph.traced_length or model.fixed_tokens() or 128
    if phase == "prefill":
        work = model.prefill(batch, seq, precision)
    else:
        work = model.decode(batch, seq if context is None else context, precision, prompt_len=seq)
    if as_json:
        click.echo(json.dumps(inspect_dict(model, work), indent=1))
    else:
        click.echo(inspect_table(model, work, show_ops))


def _parse_sets(values: tuple[str, ...]) -> dict[str, object]:
    options: dict[str, object] = {}
    for text in values:
        key, sep, value = text.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise HwsimError(f"--set '{text}': expected KEY=VALUE, e.g. --set attention=lean")
        low = value.lower()
        parsed: object = value
        if low in ("true", "false", "yes", "no", "on", "off"):
            parsed = low in ("true", "yes", "on")
        else:
            try:
                parsed = int(value)
            except ValueError:
                try:
                    parsed = float(value)
                except ValueError:
                    parsed = value
        if key in options and options[key] != parsed:  # the last one used to win silently
            raise HwsimError(f"--set {key} is given twice ({options[key]} and {value}); give it once")
        options[key] = parsed
    return options


def target_options(mode: str, tp: int, sets: tuple[str, ...]) -> dict[str, object]:
    """``--mode``, ``--tp`` and ``--set KEY=VALUE`` as one options dict; ``--set mode=``/``tp=`` may stand in for
    the flags but not contradict them (the flags' defaults, fast and 1, yield to ``--set``)."""
    options: dict[str, object] = {"mode": mode, "tp": tp}
    for key, value in _parse_sets(sets).items():
        flag_default = {"mode": "fast", "tp": 1}.get(key)
        if key in options and options[key] not in (flag_default, value):
            raise HwsimError(f"--{key} {options[key]} and --set {key}={value}: give {key} once")
        options[key] = value
    return options


def default_phase(model: Any) -> str:
    """The phase a run of ``model`` takes when none is given: ``generate`` for a causal decoder that generates,
    ``decode`` for a decode-step graph exported at one new token (one step over its cache), else ``prefill`` (a graph
    whose ops fix the length runs one pass at it: nothing can be generated after it)."""
    if model.graph.traced_length == 1 and model.ir.kv_inputs and model.ir.architecture == "decoder-only":
        return "decode"
    causal = model.ir.architecture in ("decoder-only", "encoder-decoder") and model.graph.traced_length is None
    return "generate" if causal and _generates(model) else "prefill"


def _generates(model: Any) -> bool:
    """Whether a causal graph can generate: it has an LM head or KV-cache inputs (a seq2seq decoder always). A
    causal stack that returns hidden states only (CLIP's text tower, a decoder used for embeddings) runs one pass:
    simulate says so and defaults to prefill (``--phase generate`` still costs decode steps)."""
    import warnings

    from hardware.errors import HwsimWarning

    ir = model.ir
    if model.bidirectional_decoder:
        warnings.warn(HwsimWarning(
            f"{model.path}: this encoder-decoder's decoder self-attention is not causal (it decodes every query in "
            "one pass, as DETR's object queries): simulating one pass"), stacklevel=2)
        return False
    if ir.architecture != "decoder-only" or ir.kv_inputs or any(b.kind == "lm_head" for b in ir.blocks):
        return True
    warnings.warn(HwsimWarning(
        f"{model.path}: this causal graph has no LM head and no KV cache (it returns hidden states: a text encoder "
        "or an embedding model), so nothing is generated from it: simulating one pass (--phase generate costs "
        "decode steps anyway)"), stacklevel=2)
    return False


@main.command()
@click.argument("model_path", metavar="MODEL.onnx")
@click.option("--target", "target_name", required=True, metavar="PRESET|FILE.yaml",
              help="A bundled preset (see `hwsim targets`) or a preset file.")
@click.option("--phase", type=click.Choice(["prefill", "decode", "generate"]), default=None,
              help="[default: generate for models with a causal decoder, else prefill (one forward pass); prefill "
                   "for a graph whose own ops fix its length, or a causal one without LM head or KV cache]")
@click.option("--batch", default=1, show_default=True, type=int)
@click.option("--prompt-len", "--seq", "--context", "prompt_len", default=None, type=int,
              help="Prompt tokens (decode: the tokens in the KV cache before the step, as `inspect --context`); --seq and "
                   "--context are the same flag [default: 32, or the one length a graph's own ops fix].")
@click.option("--gen-len", default=32, show_default=True, type=int, help="Tokens to generate (generate phase).")
@click.option("--mode", type=click.Choice(["fast", "detailed"]), default="fast", show_default=True,
              help="fast: closed-form timing; detailed: every DRAM command (PIM) or every thread block on the SMs, "
                   "L2 and HBM (GPU) simulated event by event.")
@click.option("--tp", default=1, show_default=True, type=int, help="Tensor-parallel devices (GPU targets).")
@click.option("--devices", type=int, default=None, metavar="N",
              help="Devices of a multi-device run (alone: tensor parallel on GPUs, a pipeline on PIM and FPGA).")
@click.option("--parallel", "parallel_text", default=None, metavar="tp=A,pp=B[,link=NAME]",
              help="How the devices split the model; link: a preset in hardware/presets/links or a file.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Target-specific option, e.g. attention=lean (`hwsim targets show NAME` lists a target's options).")
@click.option("--dim", "dims", multiple=True, metavar="NAME=N", help="Bind any symbolic dimension by name.")
@click.option("--causal/--no-causal", "causal", default=None,
              help="Decide self-attention causality where the graph's evidence does not (inspect shows it).")
@precision_options("the target's native format: bf16 on PIM, fp16 on GPUs and FPGAs")
@click.option("--json", "json_out", metavar="OUT.json", help="Write the full result as JSON ('-': to stdout, the table "
              "and messages to stderr).")
@click.option("--trace", "trace_out", metavar="OUT.json", help="Write a Chrome/Perfetto trace.")
@click.option("--plot", "plot_out", metavar="OUT.png", help="Write a latency/energy breakdown figure.")
@click.option("--plot-roofline", "roofline_out", metavar="OUT.png",
              help="Write every kernel of the run on the target's roofline (GPU targets).")
@click.option("--kernels", "kernels_top", type=int, default=0, metavar="N",
              help="Also print the N slowest kernels: time, calls, TFLOP/s, GB/s, bound, occupancy (GPU targets).")
@click.option("--quiet", is_flag=True, help="No progress bar (off a terminal: no progress lines).")
@technique_options
def simulate(model_path: str, target_name: str, phase: str | None, batch: int, prompt_len: int | None, gen_len: int,
             mode: str,
             tp: int, devices: int | None, parallel_text: str | None, sets: tuple[str, ...], dims: tuple[str, ...],
             causal: bool | None, weights: str | None, activations: str | None, kv_cache: str | None,
             head_weights: str | None, json_out: str | None, trace_out: str | None, plot_out: str | None,
             roofline_out: str | None, kernels_top: int, quiet: bool, techniques: Any = None) -> None:
    """Simulate MODEL on a hardware target and print latency, energy and traffic (with inference techniques:
    speculative decoding, KV-cache formats and eviction, attention patterns, MoE expert parallelism; on several
    devices with --devices/--parallel)."""
    from hardware.targets import load_target
    from mapping.workloads import Model
    from simulator.report import kernel_table, summary_table, write_plot, write_trace
    from simulator.technique_run import run_simulation as run_with_techniques
    from simulator.technique_run import technique_lines

    for name, value in (("--batch", batch), ("--prompt-len", prompt_len), ("--gen-len", gen_len), ("--tp", tp)):
        if value is not None:
            check_count(name, value)
    check_count("--kernels", kernels_top, low=0)
    json_output = JsonOutput(json_out)
    for flag, out in (("--trace", trace_out), ("--plot", plot_out), ("--plot-roofline", roofline_out)):
        check_output(flag, out)
    precision = make_precision(weights, activations, kv_cache, head_weights)
    options = target_options(mode, tp, sets)
    target = load_target(target_name)
    parallel = None
    if devices is not None or parallel_text:
        from mapping.parallel import parse_parallel

        parallel = parse_parallel(devices, parallel_text, target.kind)
    model = Model(model_path, _parse_dims(dims), causal=causal)
    if prompt_len is None:  # a graph whose reshapes fix its length runs at that length only
        prompt_len = model.graph.traced_length or model.fixed_tokens() or 32
    if phase is None:
        phase = default_phase(model)
    total = 1 + (gen_len - 1 if phase == "generate" else 0)
    with progress_display(total, "simulating", "passes", quiet) as progress:
        result = run_with_techniques(model, target, phase, batch, prompt_len, gen_len, precision, options, techniques,
                                     progress, parallel=parallel)

    span = _eager_span(model, target, phase, batch, prompt_len, gen_len, precision, options, techniques, parallel,
                       result.latency_s)
    say = json_output.say
    say(summary_table(result))
    if span:
        say(span["line"])
    if result.techniques:
        say(technique_lines(result))
    if kernels_top > 0:
        say("")
        say(kernel_table(result, kernels_top))
    if json_out:
        data = result.to_dict()
        if span:
            data["eager_host_span"] = {k: v for k, v in span.items() if k != "line"}
        json_output.write(data)
    if trace_out:
        with writing("--trace", trace_out):
            write_trace(result, trace_out)
        steps = sum(p.passes for p in result.phases if p.name == "decode")
        shown = " and the first 4 decode steps" if steps > 4 else ""
        say(f"wrote {trace_out}: prefill{shown} (open in https://ui.perfetto.dev or chrome://tracing)")
    if plot_out:
        with writing("--plot", plot_out):
            write_plot(result, plot_out)
        say(f"wrote {plot_out}")
    if roofline_out:
        from simulator.roofline import write_roofline

        with writing("--plot-roofline", roofline_out):
            write_roofline(result, target, roofline_out)
        say(f"wrote {roofline_out}")


def _eager_span(model: Any, target: Any, phase: str, batch: int, prompt_len: int, gen_len: int, precision: Precision,
                options: dict[str, object], techniques: Any, parallel: Any, latency_s: float) -> dict[str, Any] | None:
    """An eager GPU run on the default host time per op (the published machines' median) is uncertain by the span
    of the machines' values, since no source names its host CPU: the latency at both ends of that span (two more
    runs), or None where the user set ``host_op_us`` or the run is no eager GPU run."""
    from mapping.gpu.stack import EAGER_HOST_PER_DISPATCH, EAGER_HOST_PER_DISPATCH_SPAN, EAGER_HOST_PER_OP, EAGER_HOST_PER_OP_SPAN
    from simulator.technique_run import run_simulation

    if target.kind != "gpu" or str(options.get("stack", "")).lower() != "eager" or "host_op_us" in options:
        return None
    dispatches = "host_dispatches" in options  # the framework's ATen dispatches, not the graph's ops
    value, span = (EAGER_HOST_PER_DISPATCH, EAGER_HOST_PER_DISPATCH_SPAN) if dispatches else \
        (EAGER_HOST_PER_OP, EAGER_HOST_PER_OP_SPAN)
    ends = [run_simulation(model, target, phase, batch, prompt_len, gen_len, precision,
                           {**options, "host_op_us": us * 1e6}, techniques, None, parallel=parallel).latency_s
            for us in span]
    digits = 2 if dispatches else 1  # per-dispatch values differ in the second digit
    low, high = (f"{us * 1e6:.{digits}f}" for us in span)
    spread = (f"latency {_ms(ends[0])} to {_ms(ends[1])} across that span" if ends[1] > ends[0] * 1.001
              else "the GPU bounds this run: latency unchanged across that span")
    unit = "per ATen dispatch" if dispatches else \
        "per kernel dispatch" if str(options.get("eager_dispatch", "")).lower() == "kernels" else "per op"
    line = (f"host       {value * 1e6:.{digits}f} us {unit} (the published eager machines' median; they span "
            f"{low}-{high} us, host CPUs unstated): {spread}; --set host_op_us=N for your host"
            + ("" if dispatches or unit != "per op" else
               ", --set host_dispatches=N for your framework's ATen ops per pass (benchmarks/eager_dispatch.py)"))
    return {"host_op_us": value * 1e6, "span_host_op_us": [us * 1e6 for us in span], "unit": unit,
            "latency_s": latency_s, "span_latency_s": ends, "line": line}


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 10 else f"{seconds:.2f} s"


@main.group(invoke_without_command=True)
@click.pass_context
def targets(ctx: click.Context) -> None:
    """List the bundled hardware target presets (`hwsim targets show NAME` for one with its sources)."""
    if ctx.invoked_subcommand is not None:
        return
    from hardware.targets import load_target, preset_names

    click.echo(f"{'name':16s} {'kind':5s} description")
    for name in preset_names():
        t = load_target(name)
        click.echo(f"{name:16s} {t.kind:5s} {t.description}")


@targets.command("show")
@click.argument("name", metavar="NAME|FILE.yaml")
def targets_show(name: str) -> None:
    """Print one preset: every field with its value, unit and source."""
    from hardware.targets import flatten, load_target
    from mapping.target_plugin import plugin_for

    t = load_target(name)
    click.echo(f"{t.name} ({t.kind}): {t.description}")
    for path, value, unit, source in flatten(t):
        if path in ("name", "kind", "description"):
            continue
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        click.echo(f"  {path:34s} {shown:>12s} {unit:8s} {source}")
    plugin = plugin_for(t.kind)
    click.echo(f"options of {t.kind} targets (--set KEY=VALUE): {plugin.options_help()}")


from simulator.hls_command import hls  # noqa: E402

main.add_command(hls)

from simulator.sweep_command import compare, sweep  # noqa: E402

main.add_command(sweep)
main.add_command(compare)

from simulator.dram_command import dram  # noqa: E402

main.add_command(dram)

from simulator.aim_command import aim  # noqa: E402

main.add_command(aim)

from simulator.serving.command import serve  # noqa: E402

main.add_command(serve)

if __name__ == "__main__":
    main()
