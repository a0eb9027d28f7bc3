"""hwsim's predicted speedup for each published low-bit measurement in ``techniques_published_lowbit.yaml``.

Each entry runs twice on its target, the baseline formats and the technique's formats and ``--set`` options, the
same workload both times; the prediction is baseline latency / technique latency, compared with the published
ratio (``kind: measured``: the error is stated; ``kind: up_to``: a stated maximum). ``python -m
simulator.validation.lowbit_published`` prints the table.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardware.dtypes import parse_precision
from hardware.errors import HwsimError
from hardware.targets import load_target
from hardware.yaml_file import read_yaml
from mapping.op_costs import Precision
from mapping.workloads import Model
from simulator.simulate import simulate

DATA = Path(__file__).with_name("techniques_published_lowbit.yaml")
ROOT = Path(__file__).resolve().parents[2]
REQUIRED = ("id", "technique", "model", "target", "workload", "baseline", "options", "published", "source")


@dataclass
class Prediction:
    """One entry: published and predicted speedups and the two latencies (seconds)."""

    id: str
    target: str
    published: float
    kind: str
    predicted: float
    baseline_s: float
    technique_s: float

    @property
    def error(self) -> float:
        """Relative error of the prediction against the published ratio."""
        return self.predicted / self.published - 1.0


def entries(path: Path = DATA) -> list[dict[str, Any]]:
    """The entries, checked: every field present, a positive speedup, a known kind, formats that parse."""
    data = read_yaml(path)
    out = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(out, list) or not out:
        raise HwsimError(f"{path}: expected a top-level 'entries' list")
    for i, e in enumerate(out):
        missing = [k for k in REQUIRED if k not in e]
        if missing:
            raise HwsimError(f"{path}: entry {i} ({e.get('id', '?')}) lacks {', '.join(missing)}")
        pub = e["published"]
        if not float(pub.get("speedup", 0)) > 0 or pub.get("kind") not in ("measured", "up_to"):
            raise HwsimError(f"{path}: entry {e['id']}: published needs a positive speedup and kind measured|up_to")
        for side in ("baseline", "options"):
            precision(e[side])
    return out


def precision(side: dict[str, Any]) -> Precision:
    """The formats of one side of an entry."""
    return Precision(*(parse_precision(side[k], f"--{k.replace('_', '-')}") if side.get(k) else None
                       for k in ("weights", "activations", "kv_cache")))


def predict(entry: dict[str, Any], models: dict[str, Model] | None = None) -> Prediction:
    """Run an entry's baseline and technique on its target and return the predicted speedup."""
    models = models if models is not None else {}
    path = str(ROOT / entry["model"])
    model = models.setdefault(path, Model(path))
    target = load_target(entry["target"])
    w = entry["workload"]
    runs = []
    for side in (entry["baseline"], entry["options"]):
        r = simulate(model, target, w.get("phase", "decode"), int(w.get("batch", 1)), int(w.get("prompt_len", 128)),
                     int(w.get("gen_len", 1)), precision(side), dict(side.get("set") or {}), trace_steps=0)
        runs.append(r.latency_s)
    pub = entry["published"]
    return Prediction(entry["id"], entry["target"], float(pub["speedup"]), pub["kind"], runs[0] / runs[1], *runs)


def table(preds: list[Prediction]) -> str:
    """A Markdown table of the predictions."""
    rows = ["| entry | target | published | kind | hwsim | error |", "|---|---|---|---|---|---|"]
    for p in preds:
        rows.append(f"| {p.id} | {p.target} | {p.published:.2f}x | {p.kind} | {p.predicted:.2f}x | {p.error:+.0%} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    models: dict[str, Model] = {}
    print(table([predict(e, models) for e in entries()]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
