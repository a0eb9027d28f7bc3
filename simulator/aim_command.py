"""``hwsim aim TRACE``: run an AiM-simulator instruction trace (SK hynix GDDR6-AiM ISRs) on hwsim's AiM model.

Prints cycles, time at the standard's clock, instructions and DRAM commands by kind (:mod:`hardware.pim.isr`);
``--json OUT`` writes them.
"""

from __future__ import annotations

import time
from pathlib import Path

import click


@click.command("aim")
@click.argument("trace", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--standard", default="gddr6-aim", show_default=True, help="DRAM standard with the AiM command set.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the results as JSON ('-': to stdout, the summary to stderr).")
@click.option("--quiet", is_flag=True, help="No progress bar (off a terminal: no progress lines).")
def aim(trace: Path, standard: str, json_out: Path | None, quiet: bool) -> None:
    """Simulate TRACE ('AiM OPCODE fields', 'R|W MEM ch bank row', 'R|W GPR id', 'W CFR id value' lines)."""
    from hardware.dram import load_standard
    from hardware.errors import HwsimError
    from hardware.pim.isr import AimSystem, parse_trace
    from simulator.cli import JsonOutput

    json_output = JsonOutput(json_out, indent=2, newline=True, announce=False)
    say = json_output.say

    try:
        text = trace.read_text()
    except OSError as err:
        raise HwsimError(f"{trace}: cannot read ({err.strerror})") from None
    except UnicodeDecodeError:
        raise HwsimError(f"{trace}: not a text file; an AiM trace has lines such as 'AiM MAC_ABK ...' or "
                         "'W CFR id value'") from None
    std = load_standard(standard)
    program = parse_trace(text, trace.name)
    if not program:
        raise HwsimError(f"{trace}: the trace has no instructions")
    from simulator.progress import progress_display

    start = time.perf_counter()
    with progress_display(None, "simulating", "column requests", quiet) as progress:
        r = AimSystem(std).run(program, progress)
    wall = time.perf_counter() - start
    out = {"trace": str(trace), "standard": std.name, "instructions": r.instructions, "cycles": r.cycles,
           "seconds": r.seconds(std), "commands": dict(sorted(r.commands.items())), "wall_s": wall}
    say(f"trace        {trace} ({r.instructions} instructions) on {std.name}")
    say(f"cycles       {r.cycles}  ({r.seconds(std) * 1e6:,.3f} us at tCK {std.organization.tCK_ns.value} ns)")
    say("commands     " + ", ".join(f"{k} {v}" for k, v in sorted(r.commands.items()) if v))
    say(f"simulated in {wall:.2f} s")
    json_output.write(out)
