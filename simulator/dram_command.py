"""``hwsim dram TRACE``: serve a Ramulator-format memory trace on one DRAM standard's request-level memory system.

Prints cycles, requests, read / write latency (mean, p99), row hits / misses / conflicts, bandwidth
(:mod:`hardware.dram.memory_controller`) and IDD energy by component (:mod:`hardware.dram.energy`); ``--json OUT``
writes every number.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from hardware.dram.address_mapping import MAPPERS
from hardware.dram.refresh import REFRESH
from hardware.dram.row_policy import ROW_POLICIES
from hardware.dram.scheduling import SCHEDULERS
from hardware.errors import HwsimError


@click.command("dram")
@click.argument("trace", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--standard", default="gddr6", show_default=True, help="DRAM standard preset name or YAML file.")
@click.option("--target", "target_name", default=None,
              help="A GPU, FPGA or PIM target preset: its memory's standard, channel count and pseudo channels "
                   "(its memory: or dram: section) replace --standard and the --channels / --pseudo-channels "
                   "defaults.")
@click.option("--mapping", default="RoBaRaCoCh", show_default=True,
              help=f"Address mapping for LD/ST traces ({', '.join(MAPPERS.names())}; case-insensitive).")
@click.option("--scheduler", default="frfcfs", show_default=True, help=f"{', '.join(SCHEDULERS.names())}.")
@click.option("--row-policy", default="open", show_default=True, help=f"{', '.join(ROW_POLICIES.names())}.")
@click.option("--refresh", default="all-bank", show_default=True, help=f"{', '.join(REFRESH.names())}.")
@click.option("--channels", default=1, show_default=True, type=int, help="Channels (one controller each).")
@click.option("--ranks", default=1, show_default=True, type=int,
              help="Ranks per channel (the standard's ranks: rules between them; rank bits in the address mapping).")
@click.option("--pseudo-channels", default=1, show_default=True, type=int,
              help="HBM pseudo channels per channel (separate banks and data buses, shared row/column command buses).")
@click.option("--one-command-per-cycle", is_flag=True,
              help="Split-bus standards (HBM): issue one command per cycle, not one per bus (Ramulator's GenericDDR).")
@click.option("--queue", default=32, show_default=True, type=int, help="Read and write queue entries per channel.")
@click.option("--cap", default=1, show_default=True, type=int, help="closed policy: column accesses before closing.")
@click.option("--timeout", "row_timeout", default=64, show_default=True, type=int,
              help="timeout policy: idle cycles before closing a row.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the results as JSON ('-': to stdout, the summary to stderr).")
@click.option("--quiet", is_flag=True, help="No progress bar (off a terminal: no progress lines).")
def dram(trace: Path, standard: str, target_name: str | None, mapping: str, scheduler: str, row_policy: str,
         refresh: str, channels: int, ranks: int, pseudo_channels: int, one_command_per_cycle: bool, queue: int,
         cap: int, row_timeout: int, json_out: Path | None, quiet: bool) -> None:
    """Simulate TRACE (Ramulator 2 LoadStoreTrace 'LD|ST ADDR' or ReadWriteTrace 'R|W ch,bg,ba,row,col' /
    'R|W ch,ra,bg,ba,row,col' lines)."""
    from hardware.dram import load_standard
    from hardware.dram.memory_controller import MemorySystem
    from hardware.dram.trace import read_trace
    from simulator.cli import JsonOutput
    from simulator.progress import progress_display

    json_output = JsonOutput(json_out, indent=2, newline=True)
    say = json_output.say

    if cap < 1:
        raise HwsimError(f"--cap {cap}: the closed policy closes a row after at least 1 column access")
    if row_timeout < 0:
        raise HwsimError(f"--timeout {row_timeout}: idle cycles before closing a row must be >= 0")
    entries = read_trace(trace)
    if target_name is not None:
        standard, channels, pseudo_channels = _target_memory(target_name, channels, pseudo_channels)
    std = load_standard(standard)
    options = {"cap": cap} if row_policy.lower() == "closed" else {"timeout": row_timeout} \
        if row_policy.lower() == "timeout" else {}
    system = MemorySystem(std, channels=channels, ranks=ranks, pseudo_channels=pseudo_channels,
                          one_command_per_cycle=one_command_per_cycle, mapping=mapping, scheduler=scheduler.lower(),
                          row_policy=row_policy.lower(), refresh=refresh.lower(), queue=queue, policy_options=options)
    start = time.perf_counter()
    with progress_display(len(entries), "simulating", "requests accepted", quiet) as progress:
        r = system.run(entries, f"{trace}", progress)
    wall = time.perf_counter() - start
    hit = r.row_hits + r.row_misses + r.row_conflicts
    say(f"{trace}: {r.standard}, {r.channels} channel(s) x {r.ranks} rank(s)"
               + (f" x {r.pseudo_channels} pseudo channel(s)" if r.pseudo_channels > 1 else "") + f", mapping {r.mapping}, "
               f"scheduler {r.scheduler}, row policy {r.row_policy}")
    say(f"  cycles        {r.cycles:>12d}  ({r.cycles * r.tck_ns / 1000:.3f} us at tCK {r.tck_ns:g} ns)")
    say(f"  requests      {r.requests:>12d}  (reads {r.reads}, writes {r.writes}; forwarded {r.reads_forwarded}, "
               f"merged {r.writes_merged})")
    say(f"  read latency  {r.read_latency_mean:>12.1f}  mean, p99 {r.read_latency_p99:g} cycles")
    say(f"  write latency {r.write_latency_mean:>12.1f}  mean, p99 {r.write_latency_p99:g} cycles")
    share = f" (hit rate {r.row_hits / hit:.1%})" if hit else ""
    say(f"  row           {r.row_hits:>12d}  hits, {r.row_misses} misses, {r.row_conflicts} conflicts{share}")
    say(f"  bandwidth     {r.bandwidth_gbps:>12.2f}  GB/s; {r.refreshes} refreshes")
    e = r.energy
    if e is None:
        why = std.idd.unavailable if std.idd is not None and std.idd.unavailable else "no idd: section in its preset"
        say(f"  energy        (none: {std.name} has no IDD values: {why})")
    else:
        parts = ", ".join(f"{k.replace('_', ' ')} {v / 1e3:.1f}" for k, v in e.components.items() if v)
        say(f"  energy        {e.total / 1e3:>12.1f}  nJ ({parts} nJ; "
                   f"{e.total / max(1, r.requests) :.0f} pJ per request)")
        for note in e.notes:
            say(f"                 note: {note}")
    say(f"  simulated in {wall:.2f} s ({r.requests / wall:,.0f} requests/s)")
    if json_out:
        json_output.write({**r.as_dict(), "trace": str(trace)})


def _target_memory(name: str, channels: int, pseudo_channels: int) -> tuple[str, int, int]:
    """(standard, channels, pseudo channels) of target ``name``'s memory; explicit --channels / --pseudo-channels
    win. Prints what the target's memory is."""
    from hardware.dram import load_standard
    from hardware.errors import HwsimError
    from hardware.targets import load_target

    ctx = click.get_current_context()
    given = {p: ctx.get_parameter_source(p) == click.core.ParameterSource.COMMANDLINE
             for p in ("channels", "pseudo_channels", "standard")}
    if given["standard"]:
        raise HwsimError("--standard and --target both name the DRAM: give one")
    t = load_target(name)
    memory = getattr(t, "memory", None)
    if memory is not None:
        standard, n, line = memory.standard, memory.channels.n, memory.describe()
    elif getattr(t, "dram", None):
        standard, n = t.dram, t.channels.n
        line = f"{n} {standard} channels (the PIM target's channels)"
    else:
        raise HwsimError(f"--target {name}: the preset has no memory: section naming its DRAM standard "
                         "(hardware/dram/attached.py); use --standard")
    std = load_standard(standard)
    if not given["channels"]:
        channels = n
    if not given["pseudo_channels"]:
        pseudo_channels = std.organization.pseudo_channels.value
    click.echo(f"target {t.name}: {line}; simulated with {standard}'s timing at its preset's "
               f"{std.organization.data_rate_gbps.value:g} Gb/s speed bin")
    return standard, channels, pseudo_channels
