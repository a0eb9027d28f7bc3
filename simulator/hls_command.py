"""``hwsim hls``: write an hls4ml project for a small ONNX transformer, estimate it, optionally csim and synthesise it.

The estimate describes the project as written: per-token Dense layers one token per R cycles (``--token-serial``,
hls4ml's default ``ParallelizationFactor = 1``) or all tokens at once (``--token-parallel``), attention products
(Einsum) and softmax rows unrolled over the tokens (hls4ml 1.3 has no option for them), and the reuse factor
hls4ml actually chose for every layer.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hardware.errors import HwsimError
from hardware.fpga.fixed import parse_fixed

if TYPE_CHECKING:
    from hardware.fpga.spec import FpgaTarget

#: The preset used when neither --target nor --part is given.
DEFAULT_TARGET = "xcvu13p"


def device_of(part: str) -> str:
    """The device a part number names: its text before the first '-' (``xcu55c-fsvh2892-2L-e`` -> ``xcu55c``)."""
    return part.strip().split("-")[0].lower()


def resolve_part_and_target(part: str | None, target: str | None) -> tuple[str, FpgaTarget]:
    """The part to write and the FPGA preset to estimate on, tied together.

    ``--target`` alone: its preset's part. ``--part`` alone: the bundled FPGA preset of the same device (name
    before the first '-'). Both: they must name the same device. Neither: :data:`DEFAULT_TARGET` and its part.
    """
    from hardware.targets import load_target, preset_names

    if target is None and part is not None:
        device = device_of(part)
        matches = []
        for name in preset_names():
            preset = load_target(name)
            if getattr(preset, "kind", "") == "fpga" and device_of(preset.part) == device:
                matches.append(preset)
        if not matches:
            raise HwsimError(f"--part {part}: no bundled FPGA preset has device '{device}'; pass --target with a "
                             "preset (name or YAML file) for this part")
        return part, matches[0]
    fpga = load_target(target or DEFAULT_TARGET)
    if getattr(fpga, "kind", "") != "fpga":
        raise HwsimError(f"--target {target}: not an FPGA preset")
    if part is None:
        return fpga.part, fpga
    if device_of(part) != device_of(fpga.part):
        raise HwsimError(f"--part {part} (device {device_of(part)}) contradicts --target {target} (part {fpga.part}); "
                         "give one of them, or a matching pair")
    return part, fpga


@click.command()
@click.argument("model_path", metavar="MODEL.onnx")
@click.option("--out", "out_dir", required=True, metavar="DIR", help="Project directory (replaced if it exists).")
@click.option("--part", default=None, help="FPGA part number [default: the --target preset's part].")
@click.option("--target", default=None,
              help=f"hwsim FPGA preset for the estimate [default: the bundled preset whose device matches --part, "
                   f"else {DEFAULT_TARGET}].")
@click.option("--backend", type=click.Choice(["Vitis", "Vivado"]), default="Vitis", show_default=True)
@click.option("--clock-ns", default=None, type=float, help="Clock period (ns) [default: the --target preset's clock].")
@click.option("--reuse", default=1, show_default=True, type=int, help="hls4ml reuse factor.")
@click.option("--strategy", type=click.Choice(["Latency", "Resource"]), default="Latency", show_default=True)
@click.option("--precision", default="ap_fixed<16,6>", show_default=True, help="Data precision.")
@click.option("--weight-precision", default=None, help="Weight/bias precision [default: --precision].")
@click.option("--table-size", "table_size", default=1024, show_default=True, type=int,
              help="Entries of the softmax and activation lookup tables (hls4ml's default 1024).")
@click.option("--io", "io", type=click.Choice(["parallel", "stream"]), default="parallel", show_default=True)
@click.option("--token-parallel/--token-serial", default=False, show_default=True,
              help="Per-token Dense layers: all tokens at once (ParallelizationFactor = tokens) or one token per "
                   "reuse-factor cycles (ParallelizationFactor 1, hls4ml's default).")
@click.option("--attention", type=click.Choice(["unrolled", "row-serial"]), default="unrolled", show_default=True,
              help="Attention products: hls4ml 1.3's Einsum (all query rows at once) or hwsim's row-serial layer "
                   "(one query row per reuse cycles, as Jiang et al.; an hls4ml extension layer).")
@click.option("--csim", "run_csim", is_flag=True, help="Compile with g++ and compare with onnxruntime.")
@click.option("--samples", default=16, show_default=True, type=int, help="Random inputs for --csim.")
@click.option("--tolerance", default=0.1, show_default=True, type=float, help="Max abs error allowed by --csim.")
@click.option("--synth", "run_synth", is_flag=True,
              help="Run C synthesis with hls4ml's build if vitis-run/vitis_hls (Vitis) or vivado_hls (Vivado) is on "
                   "PATH and print its report beside the estimate; otherwise print the command to run.")
def hls(model_path: str, out_dir: str, part: str | None, target: str | None, backend: str, clock_ns: float | None,
        reuse: int,
        strategy: str, precision: str, weight_precision: str | None, table_size: int, io: str, token_parallel: bool,
        attention: str, run_csim: bool, samples: int, tolerance: float, run_synth: bool) -> None:
    """Write an hls4ml project for MODEL (firmware, build script, testbench) and print the pipeline estimate."""
    from mapping.fpga.hls import csim, emitted_reuse, synth, synth_command, write_project, write_synth_options
    from mapping.fpga.pipeline import estimate
    from simulator.sweep_command import check_output_dir

    check_output_dir("--out", Path(out_dir))  # before hls4ml builds anything
    if reuse < 1:
        raise HwsimError(f"--reuse must be >= 1, got {reuse}")
    if clock_ns is not None and (not math.isfinite(clock_ns) or clock_ns <= 0):
        raise HwsimError(f"--clock-ns must be a clock period > 0 ns, got {clock_ns:g}")
    data = parse_fixed(precision, "--precision")
    weight = parse_fixed(weight_precision, "--weight-precision") if weight_precision else data
    part, fpga = resolve_part_and_target(part, target)
    if clock_ns is None:
        clock_ns = 1e9 / fpga.clock_hz
    if table_size < 2 or table_size & (table_size - 1):
        raise HwsimError(f"--table-size must be a power of two >= 2 (hls4ml indexes tables by the top bits), got {table_size}")
    project = write_project(model_path, out_dir, part, backend, clock_ns, reuse, data, weight, f"io_{io}", strategy,
                            table_size, token_parallel, attention)
    click.echo(f"wrote hls4ml project {project.out_dir} ({len(project.layers)} layers, all present in "
               f"{project.firmware.name}; per-token Dense {'token-parallel' if token_parallel else 'token-serial'})")
    layer_reuse = emitted_reuse(project)
    changed = sorted({rf for rf in layer_reuse.values() if rf != reuse})
    if changed:
        click.echo(f"note: hls4ml replaced --reuse {reuse} by {', '.join(map(str, changed))} in some layers "
                   "(invalid for their sizes); the estimate uses the emitted factors")
    opts = {"reuse": reuse, "strategy": strategy, "io_type": f"io_{io}", "precision": str(data),
            "weight_precision": str(weight), "token_parallel": token_parallel, "table_size": table_size,
            "layer_reuse": layer_reuse, "attention": attention, "backend": backend}
    if attention == "row-serial":
        opts["matmul_parallel"] = 1
    est = estimate(project.layers, fpga, opts)
    cycles_per_s = 1e9 / clock_ns
    click.echo(f"estimate on {fpga.name}: latency {est.latency_cycles} cycles = {est.latency_cycles / cycles_per_s * 1e6:.2f} us"
               f" at {cycles_per_s / 1e6:.0f} MHz, II {est.ii_cycles} cycles, DSP {est.resources.dsp}, "
               f"LUT {est.resources.lut}, FF {est.resources.ff}, BRAM36 {est.resources.bram36:g}")
    if not est.fits:
        click.echo(f"warning: design does not fit: {'; '.join(est.over)}", err=True)
        _suggest(project.layers, fpga, opts, cycles_per_s)
    _simulate_note(model_path, fpga, est, opts, clock_ns)
    if run_csim:
        max_err, mean_err, _, _ = csim(project, samples)
        click.echo(f"csim vs onnxruntime ({samples} random inputs): max abs error {max_err:.4g}, mean {mean_err:.4g}")
        if max_err > tolerance:
            raise HwsimError(f"csim max abs error {max_err:.4g} exceeds --tolerance {tolerance:g}; widen --precision "
                             f"(e.g. ap_fixed<{data.width + 2},{data.integer + 2}>), --weight-precision"
                             + (f" or --table-size {table_size * 4}" if table_size < 4096 else ""))
    if run_synth:
        rep = synth(project)
        if rep is None:
            write_synth_options(project)
            alt = " (or `vitis-run --mode hls --tcl build_prj.tcl`)" if backend == "Vitis" else ""
            click.echo(f"--synth: no {backend} HLS tool on PATH; run `{synth_command(backend)}`{alt} in "
                       f"{project.out_dir} for C synthesis; the estimate above stands")
            return
        click.echo(f"csynth ({rep.tool}) vs estimate:")
        rows = [("latency (cycles)", f"{rep.latency_best}-{rep.latency_worst}", est.latency_cycles),
                ("II (cycles)", f"{rep.ii_min}-{rep.ii_max}", est.ii_cycles),
                ("DSP", rep.dsp, est.resources.dsp), ("LUT", rep.lut, est.resources.lut),
                ("FF", rep.ff, est.resources.ff), ("BRAM36", f"{rep.bram36:g}", f"{est.resources.bram36:g}")]
        for name, got, ours in rows:
            click.echo(f"  {name:<17} {got!s:>14} {ours!s:>14}")
        click.echo(f"  clock: target {rep.target_clock_ns:g} ns, estimated {rep.estimated_clock_ns:g} ns")


def _suggest(layers: list, fpga: FpgaTarget, opts: dict, cycles_per_s: float) -> None:
    """Print the smallest reuse/precision/strategy change that makes the design fit (mapping/fpga/fit.py)."""
    from mapping.fpga.fit import suggest_fit

    fix = suggest_fit(layers, fpga, opts)
    if fix is None:
        click.echo(f"suggestion: no reuse factor, narrower precision or Resource strategy makes this design fit "
                   f"{fpga.part}; use a larger part (--target) or a smaller model", err=True)
        return
    e = fix.estimate
    click.echo(f"suggestion: {fix.flags()} fits {fpga.part}: latency {e.latency_cycles} cycles = "
               f"{e.latency_cycles / cycles_per_s * 1e6:.2f} us, DSP {e.resources.dsp} "
               f"({100 * e.utilisation['dsp']:.0f}%), LUT {e.resources.lut} ({100 * e.utilisation['lut']:.0f}%)"
               + (f"; `hwsim simulate --target {fpga.name} --set reuse={fix.changes['reuse']}` then runs that design"
                  if set(fix.changes) == {"reuse"} else ""), err=True)


def _default_design_fit(model_path: str, fpga: FpgaTarget, reuse: int) -> object | None:
    """The estimate of the design ``hwsim simulate --target`` builds at ``reuse`` (hwsim hls's default settings),
    or None where the model is not one the default emitter walks."""
    from mapping.fpga.hls_design import hls_estimate
    from mapping.fpga.pipeline import build_layers

    try:
        layers, _ = build_layers(model_path)
    except HwsimError:
        return None
    return hls_estimate(layers, fpga, reuse)


def _simulate_note(model_path: str, fpga: FpgaTarget, est: object, opts: dict, clock_ns: float) -> None:
    """Say whether ``hwsim simulate --target`` runs this same design (mapping/fpga/hls_design.py) or the overlay."""
    from mapping.fpga.hls_design import HLS_DEFAULTS

    same = (str(opts["strategy"]).lower() == HLS_DEFAULTS["strategy"] and opts["io_type"] == HLS_DEFAULTS["io_type"]
            and opts["precision"] == HLS_DEFAULTS["precision"] and opts["weight_precision"] == opts["precision"]
            and not opts["token_parallel"] and opts["table_size"] == HLS_DEFAULTS["table_size"]
            and opts.get("attention", "unrolled") == "unrolled")
    cmd = f"hwsim simulate {model_path} --target {fpga.name}" + (f" --set reuse={opts['reuse']}" if opts["reuse"] != 1 else "")
    if not est.fits:
        click.echo(f"note: `{cmd}` models a layer-sequential overlay instead (weights streamed from off-chip memory, "
                   "no per-layer pipeline), since this design does not fit; the two figures are different designs "
                   "(`--set design=hls4ml` simulates this one anyway)")
    elif not same:
        default = _default_design_fit(model_path, fpga, opts["reuse"])
        if default is None or default.fits:
            click.echo(f"note: `{cmd}` runs the hls4ml design with ap_fixed<16,6>, Latency, io_parallel, token-serial, "
                       "unrolled attention and 1024-entry tables; with these settings its latency differs from this "
                       "estimate")
        else:  # simulate's own settings do not fit the part: it would take the overlay, not this design
            overlay = ("a layer-sequential overlay (weights streamed from off-chip memory)"
                       if fpga.offchip_bandwidth.si > 0 else
                       f"a layer-sequential overlay, which {fpga.name} (a bare device, no off-chip memory) cannot run")
            click.echo(f"note: `{cmd}` models {overlay}: its hls4ml design (ap_fixed<16,6>, Latency, io_parallel, "
                       f"token-serial, unrolled attention) does not fit ({'; '.join(default.over)}); "
                       f"`{cmd} --set design=hls4ml` simulates that design anyway")
    else:
        clock = "" if abs(clock_ns * fpga.clock_hz / 1e9 - 1) < 1e-9 else (
            f" at the preset's {fpga.clock_hz / 1e6:.0f} MHz (not --clock-ns {clock_ns:g})")
        click.echo(f"note: `{cmd}` runs this same design: {est.latency_cycles} cycles{clock}")
