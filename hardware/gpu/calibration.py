"""The format of measured GPU calibration files (``hardware/calibration/<gpu>.json``).

Written by ``benchmarks/gpu_measure.py`` on a machine with the GPU, read by ``simulator.validation.gpu``. This
module has no dependencies beyond the standard library so that the measurement script can import it anywhere.
"""

from __future__ import annotations

import math
from typing import Any

SCHEMA = "hwsim-gpu-calibration/1"
KINDS = ("gemm", "copy", "launch", "attention_prefill", "attention_decode", "decode_step", "prefill_step")
#: Required keys of every measurement (``skipped`` ones carry ``skipped`` instead of the timings).
MEASUREMENT_KEYS = ("kind", "name", "dtype", "shape", "median_s", "min_s", "max_s", "repeats")


def validate_document(doc: dict[str, Any]) -> list[str]:
    """Problems with a calibration document (empty list: valid)."""
    problems = []
    if doc.get("schema") != SCHEMA:
        problems.append(f"schema is {doc.get('schema')!r}, expected {SCHEMA!r}")
    if not isinstance(doc.get("device"), dict) or not doc["device"].get("name"):
        problems.append("device.name missing")
    for i, m in enumerate(doc.get("measurements") or []):
        missing = [k for k in MEASUREMENT_KEYS if k not in m]
        if missing:
            problems.append(f"measurement {i}: missing {', '.join(missing)}")
        elif m["kind"] not in KINDS:
            problems.append(f"measurement {i}: unknown kind {m['kind']!r}")
        elif m["median_s"] is None and not m.get("skipped"):
            problems.append(f"measurement {i}: no timing and no 'skipped' reason")
        elif m["median_s"] is not None and not (m["median_s"] > 0 and math.isfinite(m["median_s"])):
            problems.append(f"measurement {i}: median_s must be a positive number")
    if not doc.get("measurements"):
        problems.append("no measurements")
    return problems
