"""Published csynth reports of hls4ml designs vs hwsim's FPGA estimate: ``reports/fpga_validation.md``.

    python -m simulator.validation.fpga [--write] [--out reports]

Reads ``fpga_published.yaml`` (each point: network, settings, part, tool, reported latency/II/DSP/LUT/FF/BRAM and
its exact source), rebuilds every network as ONNX with ``fpga_models.py``, runs it through hwsim's FPGA front end
(:func:`mapping.fpga.pipeline.build_layers`, the same layers ``hwsim hls`` emits) and costs it with
:func:`mapping.fpga.pipeline.estimate`. Prints the per-metric mean errors; ``--write`` also writes the report with
the per-point errors, the source of each point, and which points set which rule (calibration) or only check the
rules (held out).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from hardware.errors import HwsimError
from hardware.targets import load_target
from simulator.validation import checkout_root
from simulator.validation.fpga_models import build

DATA = Path(__file__).with_name("fpga_published.yaml")
METRICS = ("latency", "ii", "dsp", "lut", "ff", "bram18")
LABELS = {"latency": "latency", "ii": "II", "dsp": "DSP", "lut": "LUT", "ff": "FF", "bram18": "BRAM18"}
ROLES = ("calibration", "held_out")
#: Goals of issue 17 on held-out points: |error| within this fraction.
GOALS = {"latency": 0.15, "ii": 0.15, "dsp": 0.15, "lut": 0.30, "ff": 0.30, "bram18": 0.30}
REQUIRED = ("id", "network", "reuse", "part", "preset", "tool", "role", "source", "reported")


def load_points(path: Path | str = DATA) -> tuple[dict, list[dict]]:
    """The networks and points of the data file; a malformed point raises HwsimError naming it and the field."""
    data = yaml.safe_load(Path(path).read_text())
    networks, points = data.get("networks") or {}, data.get("points") or []
    for i, p in enumerate(points):
        where = f"{path}: point {p.get('id', i)}"
        for key in REQUIRED:
            if key not in p:
                raise HwsimError(f"{where}: field '{key}' is missing")
        if p["network"] not in networks:
            raise HwsimError(f"{where}: network '{p['network']}' is not under 'networks'")
        if p["role"] not in ROLES:
            raise HwsimError(f"{where}: role '{p['role']}' is not one of {', '.join(ROLES)}")
        if p["role"] == "calibration" and not p.get("informs"):
            raise HwsimError(f"{where}: a calibration point must list the rules it 'informs'")
        missing = [m for m in METRICS if m not in p["reported"]]
        if missing:
            raise HwsimError(f"{where}: reported figures {', '.join(missing)} are missing")
    return networks, points


def backend_of(tool: str) -> str:
    """The hls4ml backend a report's tool is: ``Vitis`` for Vitis HLS, else ``Vivado`` (Vivado HLS)."""
    return "Vitis" if tool.startswith("Vitis") else "Vivado"


def predict(point: dict, onnx_path: str, layers: list | None = None) -> dict[str, float]:
    """hwsim's estimate of one point's design, in the report's units (cycles, blocks; BRAM as BRAM18); ``layers``:
    the network's layers if already built from ``onnx_path``."""
    from mapping.fpga.pipeline import build_layers, estimate

    if layers is None:
        layers, _ = build_layers(onnx_path)
    est = estimate(layers, load_target(point["preset"]), {
        "reuse": point["reuse"], "strategy": point.get("strategy", "latency"),
        "io_type": point.get("io_type", "io_parallel"), "precision": point.get("precision", "ap_fixed<16,6>"),
        "table_size": point.get("table_size", 1024), "backend": backend_of(point["tool"])})
    r = est.resources
    return {"latency": est.latency_cycles, "ii": est.ii_cycles, "dsp": r.dsp, "lut": r.lut, "ff": r.ff,
            "bram18": r.bram36 * 2}


def evaluate(path: Path | str = DATA) -> list[dict]:
    """Every point with its prediction and signed relative errors (``errors[metric]``, a fraction)."""
    networks, points = load_points(path)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        from mapping.fpga.pipeline import build_layers

        files = {name: str(build(net, Path(tmp) / f"{name}.onnx")) for name, net in networks.items()}
        built = {name: build_layers(f)[0] for name, f in files.items()}
        for p in points:
            got = predict(p, files[p["network"]], built[p["network"]])
            rep = p["reported"]
            err = {m: (got[m] - rep[m]) / rep[m] if rep[m] else (0.0 if not got[m] else 1.0) for m in METRICS}
            rows.append({"point": p, "predicted": got, "errors": err})
    return rows


def summary(rows: list[dict], select: Callable[[dict], bool] = lambda p: True) -> dict[str, dict[str, float]]:
    """Mean |relative error| per metric, per role, over the points ``select`` keeps."""
    out: dict[str, dict[str, float]] = {}
    for role in ROLES:
        chosen = [r for r in rows if r["point"]["role"] == role and select(r["point"])]
        if chosen:
            out[role] = {m: sum(abs(r["errors"][m]) for r in chosen) / len(chosen) for m in METRICS}
            out[role]["n"] = len(chosen)
    return out


def _pct(x: float) -> str:
    return f"{100 * x:+.0f}%"


def render(rows: list[dict]) -> str:
    """The markdown report."""
    vivado = summary(rows, lambda p: p["tool"].startswith("Vivado"))
    everything = summary(rows)
    vitis = summary(rows, lambda p: p["tool"].startswith("Vitis"))
    lines = [
        "# FPGA estimate vs published C-synthesis reports",
        "",
        "Generated by `python -m simulator.validation.fpga --write` from `simulator/validation/fpga_published.yaml`. "
        "Each network is rebuilt as ONNX (`simulator/validation/fpga_models.py`), read by hwsim's FPGA front end "
        "(the layers `hwsim hls` emits) and costed by `mapping.fpga.pipeline.estimate` with the point's reuse factor, "
        "strategy, io type and precision. Errors are (hwsim - reported) / reported. BRAM is in BRAM18 blocks, as the "
        "reports count it.",
        "",
        "## Summary: mean |error|",
        "",
        "| points | n | " + " | ".join(LABELS[m] for m in METRICS) + " |",
        "|---|---|" + "---|" * len(METRICS),
    ]
    for label, summ in (("held out, Vivado HLS", vivado), ("held out, Vitis HLS 2023.1-2024.1", vitis),
                        ("held out, all", everything), ("calibration, all", everything)):
        role = "calibration" if label.startswith("calibration") else "held_out"
        if role in summ:
            s = summ[role]
            lines.append(f"| {label} | {s['n']:.0f} | " + " | ".join(f"{100 * s[m]:.0f}%" for m in METRICS) + " |")
    def within(select: Callable[[dict], bool]) -> str:
        held = [r for r in rows if r["point"]["role"] == "held_out" and select(r["point"])]
        return " | ".join(f"{sum(abs(r['errors'][m]) <= GOALS[m] for r in held)}/{len(held)}" for m in METRICS)

    lines += ["", "Held-out points within the goal, per metric (a mean can pass with a few large misses):", "",
              "| points | " + " | ".join(LABELS[m] for m in METRICS) + " |", "|---|" + "---|" * len(METRICS),
              "| Vivado HLS | " + within(lambda p: p["tool"].startswith("Vivado")) + " |",
              "| Vitis HLS 2023.1-2024.1 | " + within(lambda p: p["tool"].startswith("Vitis")) + " |"]

    def met(summ: dict, ok: bool) -> str:
        held = summ.get("held_out", {})
        names = [LABELS[m] for m in METRICS if m in held and (held[m] <= GOALS[m]) == ok]
        return ", ".join(names) or "none"

    lines += ["", "Goals on held-out points (issue 17): latency, II and DSP within 15%, LUT/FF/BRAM within 30% "
              "(mean |error|). Vivado HLS points: met for " + met(vivado, True) + "; not met for " + met(vivado, False)
              + ". Vitis HLS 2023.1-2024.1 points: met for " + met(vitis, True) + "; not met for " + met(vitis, False)
              + " (see the misses below).", ""]
    lines += ["## Per point", "",
              "| point | network | R | io | part | tool | role | " + " | ".join(LABELS[m] for m in METRICS) + " |",
              "|---|---|---|---|---|---|---|" + "---|" * len(METRICS)]
    for r in rows:
        p = r["point"]
        cells = [f"{r['predicted'][m]:g} / {p['reported'][m]:g} ({_pct(r['errors'][m])})" for m in METRICS]
        lines.append(f"| {p['id']} | {p['network']} | {p['reuse']} | {p.get('io_type', 'io_parallel')} | {p['part']} "
                     f"| {p['tool']} | {p['role']} | " + " | ".join(cells) + " |")
    lines += ["", "Cells: hwsim / reported (error).", "", "## Sources", ""]
    for r in rows:
        p = r["point"]
        where = p.get("path") or " ".join(x for x in (p.get("notebook", ""), p.get("cell", "")) if x)
        repo = "fastmachinelearning/hls4ml-tutorial" if p["source"].startswith("T ") else "fastmachinelearning/hls4ml"
        lines.append(f"- `{p['id']}`: {repo} @ {p['source'].split()[1][:12]}, {where}"
                     + (f" ({p['note']})" if p.get("note") else ""))
    lines += ["", "## Which points set which rule", "",
              "Calibration points (the constants in `hardware/fpga/dense.py`, `layers.py` and `tool.py` were fitted on "
              "them):", ""]
    for r in rows:
        p = r["point"]
        if p["role"] == "calibration":
            lines.append(f"- `{p['id']}`: {'; '.join(p['informs'])}")
    lines += ["", "Every other point is held out: no constant was fitted on it.", "",
              "## Where the model misses, and why", "",
              "- **Vitis HLS DSPs at R = 1** (jet tagger +161%, calibration; pruned +31%, held out): Vitis builds "
              "many constant-weight products in LUTs (1,502 DSPs for 3,910 non-zero products; the pruned model 813 "
              "for 1,064). Which constants it builds in LUTs depends on their bit patterns; the trained weights are "
              "not published, so hwsim keeps one DSP per non-zero product (the LUT rule of `hardware/fpga/tool.py` "
              "follows the non-zero products, so the LUT total does not depend on the split).",
              "- **LUT-built constants in tiny Dense layers**: the Dense(1 -> 64) baselines use 56-62 DSPs, not 64 "
              "(+3..+14% DSP), and the LUTs of the few LUT-built products (about 460-600, the whole design when the "
              "activation is the identity LeakyReLU(alpha 1)) are not counted: -100% LUT on those two points.",
              "- **Vitis HLS 2023.1** (held out; the Vitis rules were fitted on 2024.1 points): it schedules ELU in "
              "2 cycles, not 3 (+50% latency on the ELU and the Dense(1 -> 2) + ELU points), and its ELU tables cost "
              "half the LUTs/FFs of 2024.1's (+81..+100%); ReLU, sigmoid and io_stream match as for 2024.1.",
              "- **Table activations vary by tool run**: the same ELU/sigmoid table costs 4,641 / 9,884 LUTs in Vivado "
              "HLS and 10,082 / 7,825 in Vitis HLS io_parallel, and 5,742 / 8,518 in Vitis io_stream; one LUT rate per "
              "tool misses the sigmoid (Vivado -59%) and the Vitis io_stream ELU (+95%). Sigmoid io_stream in Vivado "
              "takes 4 cycles, not 3.",
              "- **xczu3eg-1 (slowest speed grade)**: Vivado HLS 2019.2 adds pipeline registers there (FFs about "
              "2x those on xczu7ev-2 and xcu250-2L for the same network, latency 13 instead of 9 at R = 1, II 2 for "
              "the pruned model). hwsim has no speed-grade term: FF -42..-47% and latency -11..-56% on these points.",
              "- **DSPs at R >= 2 (-3..-8%)**: hwsim uses hls4ml 1.3's allocation limit `ceil(N/R) - floor(zeros/R)`, "
              "which the emitted project carries as a pragma; the 2019 reports, where hls4ml applied the limit "
              "through a helper function, show `ceil(N/R)` DSPs.",
              "- **The 1 -> 2 Dense + ELU** is so small that the top-level control logic (a few hundred LUTs and "
              "FFs that hwsim does not count) dominates its LUT/FF figures; its cycles and DSP/BRAM match.",
              "- **Conv2D, Resource strategy (the only Resource-strategy points)**: cycles and II follow the "
              "token-serial rule (49 output positions, one per cycle, + 3; held out: +2% / 0% Vivado, 0% / -8% "
              "Vitis), and FFs the registered input array (-10% / +24%). DSPs are about half of the 1,536 products "
              "(740 / 792): the kernel is N(0, 0.05), so about half the weights are under 32 quantisation steps and "
              "both tools build those products from shifts and adds in LUTs; hwsim gives every product a DSP (+94.."
              "+108%) and undercounts the LUTs (-40..-48%). A rule from the weights' bit patterns would need the "
              "tutorial's trained weights (not published) to be checked on the other points.",
              "- **Not covered by any point**: the Resource strategy at R > 1, LayerNorm, Einsum, Conv1D and softmax "
              "rows beyond one. hls4ml's baselines also hold DepthwiseConv1D/2D io_stream points, but hwsim's FPGA "
              "front end does not emit depthwise convolutions, so they are not rebuilt; the LayerNorm reports of hls4ml "
              "issue #1109 are attachments that could not be read. fastmachinelearning/hls4ml-tutorial commits the full "
              "csynth reports of its pruned and quantised-pruned CNNs (`pruned_cnn/`, `quantized_pruned_cnn/`, Vivado "
              "HLS 2020.1, io_stream, per-layer figures), not rebuilt: they need MaxPooling2D and the io_stream "
              "Conv2D line buffer, which hwsim does not emit, and their trained weights (zero counts) are not "
              "published. Those rules are the kernel structure with UNCONFIRMED constants.",
              ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write reports/fpga_validation.md")
    parser.add_argument("--out", default=str(checkout_root() / "reports"), help="folder --write writes into")
    parser.add_argument("--report", metavar="PATH", help="write the report to PATH instead (as the other reports take)")
    args = parser.parse_args()
    rows = evaluate()
    for role, s in summary(rows, lambda p: p["tool"].startswith("Vivado")).items():
        print(f"Vivado HLS, {role} ({s['n']:.0f} points): "
              + ", ".join(f"{LABELS[m]} {100 * s[m]:.0f}%" for m in METRICS))
    for role, s in summary(rows).items():
        print(f"all tools, {role} ({s['n']:.0f} points): " + ", ".join(f"{LABELS[m]} {100 * s[m]:.0f}%" for m in METRICS))
    if args.report:
        Path(args.report).write_text(render(rows))
        print(f"wrote {args.report}")
    elif args.write:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "fpga_validation.md").write_text(render(rows))
        print(f"wrote {out / 'fpga_validation.md'}")


if __name__ == "__main__":
    main()
