"""Progress of long commands on stderr: a bar on a terminal, else a line now and then (CI logs, pipes).

``simulate`` counts passes, ``serve`` requests. ``--quiet`` silences both; the result on stdout never carries it.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

import click

#: Seconds between progress lines of a long command whose stderr is not a terminal (the first after as long).
PROGRESS_LINE_S = 10.0


@contextlib.contextmanager
def progress_display(total: int | None, label: str, unit: str,
                     quiet: bool = False) -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, of)`` callback for work labelled ``label`` ("simulating") counted in ``unit``: a click
    progress bar when stderr is a terminal, otherwise a line every :data:`PROGRESS_LINE_S` seconds with the elapsed
    time and an estimate of what is left; nothing with ``quiet`` or a single unit. ``total`` None: the bar's
    length is the first call's ``of``."""
    tty = not quiet and sys.stderr.isatty()
    bar: list = []  # the click bar, made at the first call that has more than one unit
    done = [0]
    started = time.monotonic()
    next_line = [started + PROGRESS_LINE_S]

    def progress(n: int, of: int) -> None:
        if tty:
            if not bar and (total or of) > 1:
                bar.append(click.progressbar(length=total or of, label=label, file=sys.stderr, show_eta=True,
                                             show_pos=True))
                bar[0].__enter__()
            if bar:
                bar[0].update(n - done[0])
                done[0] = n
        elif not quiet and 0 < n < of and time.monotonic() >= next_line[0]:
            elapsed = time.monotonic() - started
            click.echo(f"{label}: {n}/{of} {unit} ({100 * n / of:.0f}%), {elapsed:.0f} s, about "
                       f"{elapsed * (of - n) / n:.0f} s to go", err=True)
            next_line[0] = time.monotonic() + PROGRESS_LINE_S

    try:
        yield progress
    finally:
        if bar:
            bar[0].__exit__(None, None, None)
