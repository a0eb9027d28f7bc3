"""Finding the bundled modules of a layer's packages (``hardware/<package>/spec.py``, ``mapping/<package>/plugin.py``)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType


def bundled_modules(package: str, folder: str | Path, module: str) -> Iterator[ModuleType]:
    """Import and yield ``<package>.<sub>.<module>`` for every sub-package of ``folder`` that has ``<module>.py``."""
    root = Path(folder).resolve()
    for info in pkgutil.iter_modules([str(root)]):
        if info.ispkg and (root / info.name / f"{module}.py").exists():
            yield importlib.import_module(f"{package}.{info.name}.{module}")
