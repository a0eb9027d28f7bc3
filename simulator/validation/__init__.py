"""Validation reports: each module regenerates one file in ``reports/`` with one command, run from the checkout."""

from __future__ import annotations

from pathlib import Path


def checkout_root() -> Path:
    """The hwsim checkout holding ``examples/`` and ``reports/``: the working directory when run from the checkout
    (also with a non-editable install), else the folder this package sits in."""
    for candidate in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (candidate / "examples").is_dir() and (candidate / "pyproject.toml").is_file():
            return candidate
    return Path.cwd()
