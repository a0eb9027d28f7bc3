"""Validation reports: each module regenerates one file in ``reports/`` with one command, run from the checkout.

Reference figures live as data with their sources (``hardware/calibration/*.yaml``); the generators compute hwsim's
side and the prose around live numbers. A generator prints its report and writes the tracked file only when asked
(``--write`` for ``reports/NAME``, ``--report PATH`` for another place; figures go beside the Markdown).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def checkout_root() -> Path:
    """The hwsim checkout holding ``examples/`` and ``reports/``: the working directory when run from the checkout
    (also with a non-editable install), else the folder this package sits in."""
    for candidate in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (candidate / "examples").is_dir() and (candidate / "pyproject.toml").is_file():
            return candidate
    return Path.cwd()


def output_args(parser: argparse.ArgumentParser, name: str) -> None:
    """``--write`` (to ``reports/NAME``) and ``--report PATH``, mutually exclusive; neither prints only."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"write reports/{name} (and its figures)")
    group.add_argument("--report", metavar="PATH", help="write the Markdown report here (figures beside it)")


def written_to(args: argparse.Namespace, name: str) -> Path | None:
    """Where the report goes: ``reports/NAME`` with ``--write``, ``--report``'s path, or None (print only)."""
    if args.report:
        return Path(args.report)
    return checkout_root() / "reports" / name if args.write else None


def emit(text: str, args: argparse.Namespace, name: str, show: bool = True) -> Path | None:
    """Print ``text`` (unless ``show`` is False) and write it where :func:`written_to` says; returns that path."""
    if show:
        print(text)
    path = written_to(args, name)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return path
