"""One workload on several targets, side by side: a table and a bar chart of latency, energy and tokens/J."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hardware.errors import HwsimError
from hardware.targets import load_target
from simulator.sweep.runner import _model, evaluate
from simulator.sweep.spec import Point, file_hash, parse_precision_axis, stable_hash


def compare_targets(model: str, targets: list[str], phase: str | None = "decode", batch: int = 1, prompt_len: int = 128,
                    gen_len: int = 32, precision: str = "default", options: dict[str, Any] | None = None,
                    dims: dict[str, int] | None = None,
                    progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """Simulate the same workload on each target; one result row per target, in the order given
    (``progress(done, total)`` after each target). ``phase`` None: the model's default phase as ``simulate`` picks
    it, one decode step in place of a generation (:func:`simulator.cli.default_phase`)."""
    if not Path(model).exists():
        raise HwsimError(f"{model}: no such model file")
    if not Path(model).is_file():
        raise HwsimError(f"{model}: is a directory, not an ONNX file; give the model's .onnx file")
    if not targets:
        raise HwsimError("--targets: name at least one target")
    try:
        parse_precision_axis(precision)
    except ValueError as exc:
        raise HwsimError(f"--precision: {exc}") from None
    mhash = file_hash(model)
    loaded = _model(model, mhash, dict(dims or {}))  # a model that cannot be imported is one error, not one per target
    if phase is None:
        from simulator.cli import default_phase

        phase = default_phase(loaded).replace("generate", "decode")
    workload = {"phase": phase, "batch": batch, "prompt_len": prompt_len,
                "gen_len": gen_len if phase == "generate" else 1, "precision": precision}
    rows = []
    for name in targets:
        data = load_target(name).model_dump(mode="json")
        pid = stable_hash({"model": mhash, "dims": dims or {}, "target": data, "workload": workload,
                           "options": options or {}})
        rows.append(evaluate(Point(pid, model, mhash, dict(dims or {}), data, {}, workload, dict(options or {}))))
        if progress is not None:
            progress(len(rows), len(targets))
    return rows


def compare_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table, one line per target."""
    head = f"{'target':16s} {'latency':>12s} {'energy':>12s} {'tokens/s':>12s} {'tokens/J':>10s} {'memory':>10s}  note"
    lines = [head]
    for r in rows:
        if r["latency_s"] is None:
            lines.append(f"{r['target']:16s} {'-':>12s} {'-':>12s} {'-':>12s} {'-':>10s} {'-':>10s}  {r['error']}")
            continue
        lines.append(f"{r['target']:16s} {r['latency_s'] * 1e3:9.4g} ms {r['energy_j'] * 1e3:9.4g} mJ "
                     f"{r['tokens_per_s']:12.5g} {r['tokens_per_j']:10.4g} {r['memory_bytes'] / 2**30:6.2f} GiB")
    return "\n".join(lines)


def write_compare_plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Three bar panels: latency, energy, tokens per joule."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["target"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, (key, label, scale) in zip(axes, (("latency_s", "latency (ms)", 1e3), ("energy_j", "energy (mJ)", 1e3),
                                              ("tokens_per_j", "tokens per joule", 1.0))):
        values = [(r[key] or 0.0) * scale for r in rows]
        bars = ax.bar(names, values, color=[f"C{i}" for i in range(len(rows))])
        ax.bar_label(bars, labels=[f"{v:.3g}" if r[key] is not None else "n/a" for v, r in zip(values, rows)],
                     fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.set_ylabel(label)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
