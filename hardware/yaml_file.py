"""Reading YAML files (presets, specs) with one-line errors naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hardware.errors import HwsimError


def read_yaml(path: Path, name: str | None = None) -> Any:
    """Parse ``path``; a syntax error becomes a :class:`HwsimError` naming the file (as ``name`` if given)."""
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise HwsimError(f"{name or path}: not valid YAML: {str(exc).splitlines()[0]}") from None
