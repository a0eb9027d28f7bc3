"""reports/techniques.md: each inference technique's predicted speedup against published measurements.

Every ``simulator/validation/techniques_published*.yaml`` is read (the schema is in the header comment of
``techniques_published.yaml`` and in docs/design.md); each entry is simulated twice, the baseline and the technique,
with :func:`simulator.technique_run.run_simulation`, and the predicted speedup (baseline time / technique time) is
compared with the published one. Entries marked ``not_applicable`` are listed with their reason.

    python -m simulator.validation.techniques            # print the report
    python -m simulator.validation.techniques --write    # also write reports/techniques.md
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

from hardware.errors import HwsimError
from hardware.targets import load_target
from hardware.yaml_file import read_yaml
from mapping.op_costs import Precision
from mapping.techniques import Techniques
from mapping.workloads import Model
from simulator.validation import emit, output_args

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
REPORT = ROOT / "reports" / "techniques.md"
#: Measures of one run compared with a published absolute figure (no baseline run): unit of each.
ABSOLUTE = {"decode_tokens_per_s": "tokens/s", "latency_ms": "ms"}
KEYS = {"id", "technique", "model", "target", "workload", "options", "baseline", "measure", "published",
        "assumptions", "not_applicable"}


def data_files() -> list[Path]:
    """Every published-speedup file, in name order."""
    return sorted(HERE.glob("techniques_published*.yaml"))


def entries(files: list[Path] | None = None) -> list[dict[str, Any]]:
    """All entries of ``files`` (default: :func:`data_files`), each with ``file``; errors name file and entry."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for path in files or data_files():
        data = read_yaml(path)
        if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
            raise HwsimError(f"{path}: expected a mapping with a list 'entries'")
        for i, e in enumerate(data["entries"]):
            where = f"{path.name}: entries.{i}"
            if not isinstance(e, dict):
                raise HwsimError(f"{where}: an entry is a mapping")
            unknown = set(e) - KEYS
            if unknown:
                raise HwsimError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; fields: {', '.join(sorted(KEYS))}")
            for key in ("id", "technique", "target", "published"):
                if key not in e:
                    raise HwsimError(f"{where}: missing field '{key}'")
            if e["id"] in seen:
                raise HwsimError(f"{where}: duplicate id '{e['id']}'")
            seen.add(e["id"])
            pub = e["published"]
            if not isinstance(pub, dict) or "source" not in pub or ("speedup" in pub) == ("value" in pub):
                raise HwsimError(f"{where}: 'published' needs source and either speedup (a ratio) or value with "
                                 f"unit (an absolute figure, with measure {' or '.join(ABSOLUTE)})")
            if ("value" in pub) != (e.get("measure") in ABSOLUTE):
                raise HwsimError(f"{where}: published.value goes with measure {' or '.join(ABSOLUTE)} (one run, no "
                                 "baseline); a speedup with measure latency or attention")
            kind = pub.get("kind", "measured")
            if kind not in ("measured", "up_to", "range"):
                raise HwsimError(f"{where}: published.kind '{kind}': use measured, up_to or range")
            if kind == "range" and not float(pub.get("speedup_high", 0)) >= float(pub["speedup"]):
                raise HwsimError(f"{where}: published.kind range needs speedup_high >= speedup")
            for key in ("unconfirmed", "checked"):
                if key in pub and not isinstance(pub[key], str):
                    raise HwsimError(f"{where}: published.{key} is a sentence (what could not be confirmed / where "
                                     "the number was read)")
            if e.get("model") is None and not e.get("not_applicable"):
                raise HwsimError(f"{where}: no model: say why in 'not_applicable'")
            out.append({**e, "file": path.name})
    return out


def model_path(name: str) -> str:
    """An entry's model file: absolute, else relative to the working folder (a clone, whatever the install), else
    to the source tree this module sits in."""
    p = Path(name)
    if p.is_absolute() or p.exists():
        return str(p)
    return str(ROOT / p)


def _precision(text: Any) -> Precision:
    from simulator.sweep.spec import parse_precision_axis

    try:
        return Precision(*parse_precision_axis(str(text or "default")))
    except ValueError as exc:
        raise HwsimError(str(exc)) from None


def _run(model: Model, target: Any, workload: dict[str, Any], options: dict[str, Any]) -> Any:
    from simulator.technique_run import run_simulation

    opts = dict(options)
    sets = dict(opts.pop("set", {}) or {})
    techniques = Techniques.from_dict(opts, "options")
    phase = workload.get("phase", "generate")
    return run_simulation(model, target, phase, int(workload.get("batch", 1)), int(workload.get("prompt_len", 128)),
                          int(workload.get("gen_len", 1 if phase != "generate" else 32)),
                          _precision(workload.get("precision")), {"mode": "fast", **sets}, techniques, trace_steps=0)


def _measure(result: Any, measure: str) -> float:
    if measure == "decode_tokens_per_s":  # generated tokens per second of the decode steps, all sequences
        decode = sum(p.latency_s for p in result.phases if p.name != "prefill")
        steps = result.batch * (result.gen_len - 1 if result.phase == "generate" else 1)
        return steps / decode if decode > 0 else 0.0
    if measure == "latency_ms":
        return result.latency_s * 1e3
    if measure == "attention":
        return sum(r["latency_s"] for name, r in result.ops.items() if name.endswith(".attention"))
    return result.latency_s


def evaluate(entry: dict[str, Any], models: dict[str, Model] | None = None) -> dict[str, Any]:
    """Predicted speedup of one entry (``predicted`` None with ``reason`` when it is not simulated)."""
    row = {"id": entry["id"], "technique": entry["technique"], "model": entry.get("model") or "-",
           "target": entry["target"],
           "published": float(entry["published"].get("speedup", entry["published"].get("value", 0.0))),
           "unit": ABSOLUTE.get(entry.get("measure", ""), ""),
           "source": entry["published"]["source"], "setup": entry["published"].get("setup", ""),
           "assumptions": entry.get("assumptions", ""), "file": entry.get("file", ""), "predicted": None, "reason": "",
           "kind": entry["published"].get("kind", "measured"),
           "high": float(entry["published"].get("speedup_high", 0.0)),
           "unconfirmed": entry["published"].get("unconfirmed", ""), "checked": entry["published"].get("checked", "")}
    if entry.get("not_applicable"):
        row["reason"] = f"not applicable: {entry['not_applicable']}"
        return row
    models = models if models is not None else {}
    path = model_path(entry["model"])
    if path not in models:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            models[path] = Model(path)
    model = models[path]
    target = load_target(entry["target"])
    workload = dict(entry.get("workload") or {})
    options = dict(entry.get("options") or {})
    base = dict(entry.get("baseline") or {})
    base_workload = {**workload, **(base.get("workload") or {})}
    # default baseline: the same workload and --set options, no technique
    base_options = dict(base["options"]) if "options" in base else {"set": dict(options.get("set") or {})}
    measure = entry.get("measure", "latency")
    if measure not in ("latency", "attention", *ABSOLUTE):
        raise HwsimError(f"{entry.get('file')}: {entry['id']}: measure '{measure}': use latency, attention, "
                         + ", ".join(ABSOLUTE))
    if measure in ABSOLUTE:  # one run against a published absolute figure
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = _measure(_run(model, target, workload, options), measure)
        if not value > 0:
            raise HwsimError(f"{entry['id']}: nothing measured for '{measure}' on {entry['target']}")
        row["predicted"], row["error"] = value, value / row["published"] - 1.0
        return row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tech = _run(model, target, workload, options)
        plain = _run(model, target, base_workload, base_options)
    t, b = _measure(tech, measure), _measure(plain, measure)
    if not (t > 0 and b > 0):
        raise HwsimError(f"{entry['id']}: nothing measured for '{measure}' on {entry['target']}")
    row["predicted"] = b / t
    row["error"] = row["predicted"] / row["published"] - 1.0
    spec = tech.techniques.get("speculative")
    if spec:
        row["note"] = f"{spec['tokens_per_iteration']:.2f} tokens per iteration"
    return row


def report(rows: list[dict[str, Any]]) -> str:
    """The Markdown report."""
    done = [r for r in rows if r["predicted"] is not None]
    errs = [abs(r["error"]) for r in done if r["kind"] == "measured" and not r.get("unconfirmed")]
    loose = [abs(r["error"]) for r in done if r["kind"] == "measured" and r.get("unconfirmed")]
    bounds = [r for r in done if r["kind"] == "up_to"]
    unconfirmed = [r for r in rows if r.get("unconfirmed")]
    lines = ["# Inference techniques: predicted against published speedups", "",
             "Generated by `python -m simulator.validation.techniques --write` from "
             + ", ".join(f"`simulator/validation/{f}`" for f in sorted({r['file'] for r in rows}))
             + " (schema: docs/design.md, section 11). Speedup = baseline time / technique time, hwsim's against the "
             "paper's measurement. Error = predicted / published - 1.", ""]
    if errs:
        lines += [f"{len(done)} of {len(rows)} entries simulated; over the {len(errs)} measured figures the mean absolute "
                  f"error is {sum(errs) / len(errs):.0%}, the largest {max(errs):.0%}"
                  + (f"; {len(bounds)} published figures are stated maxima ('up to'), shown as bounds and left out of "
                     "the mean" if bounds else "")
                  + ". Entries not simulated are listed with the reason.", ""]
    if unconfirmed:
        lines += [f"{len(unconfirmed)} published figures could not be confirmed at their primary source; they are "
                  "marked `unconfirmed` (what is missing is said under Sources) and left out of the mean error"
                  + (f" (with the {len(loose)} unconfirmed measured figures the mean would be "
                     f"{(sum(errs) + sum(loose)) / (len(errs) + len(loose)):.0%})" if loose else "") + ".", ""]
    lines += ["| id | technique | model | target | predicted | published | error |", "|---|---|---|---|---:|---:|---:|"]
    for r in rows:
        flag = " (unconfirmed)" if r.get("unconfirmed") else ""
        unit = r.get("unit", "")
        x = f" {unit}" if unit else "x"
        pub = (f"{r['published']:.2f}-{r['high']:.2f}x" if r["kind"] == "range" else
               f"up to {r['published']:.2f}{x}" if r["kind"] == "up_to" else f"{r['published']:.2f}{x}") + flag
        if r["predicted"] is None:
            lines.append(f"| {r['id']} | {r['technique']} | {r['model']} | {r['target']} | - | {pub} | {r['reason']} |")
        elif r["kind"] == "up_to":
            verdict = "within the bound" if r["predicted"] <= r["published"] else f"exceeds it by {r['error']:.0%}"
            lines.append(f"| {r['id']} | {r['technique']} | {r['model']} | {r['target']} | {r['predicted']:.2f}{x} | "
                         f"{pub} | {verdict} |")
        else:
            lines.append(f"| {r['id']} | {r['technique']} | {r['model']} | {r['target']} | {r['predicted']:.2f}{x} | "
                         f"{pub} | {r['error']:+.0%}{flag} |")
    lines += ["", "## Sources and assumptions", ""]
    for r in rows:
        extra = f" {r['note']}." if r.get("note") else ""
        lines.append(f"- **{r['id']}**: {r['source']}. Measured on: {r['setup']}."
                     + (f" Checked at: {r['checked']}." if r.get("checked") else "")
                     + (f" **Unconfirmed**: {r['unconfirmed']}." if r.get("unconfirmed") else "")
                     + (f" hwsim assumes: {r['assumptions']}." if r["assumptions"] else "") + extra)
    lines += ["", "## Reading the errors", "",
              "- The predicted numbers are hwsim's component models on the stated preset; where the paper's GPU is not "
              "a preset, the closest one is used (named in the assumptions), which moves compute/bandwidth ratios.",
              "- Speculative entries depend on the acceptance rates given. Medusa's come from the authors' per-head "
              "top-1 training accuracies (FasterDecoding/Medusa assets/medusa_acc.csv), read as the chance that the "
              "first i drafted tokens are all right; the tokens per iteration are shown so that the speedup can be "
              "rescaled.",
              "- hwsim charges no host-side overhead (sampling, tree construction, Python), which measured "
              "speedups include.",
              "- Low-bit weight entries keep the embedding tables and the LM head in fp16 (as AWQ, GPTQ and vLLM's "
              "FP8 do), W8A8 entries add their activation-quantisation kernels, and quantised KV caches are "
              "converted inside decode attention (hardware/gpu/lowbit.py).", ""]
    text = "\n".join(lines)
    if "nan" in text or "inf" in text.replace("Inference", "").replace("inference", ""):
        raise HwsimError("techniques report: a number is not finite")
    return text


def main(argv: list[str] | None = None) -> int:
    """Print the report; ``--write`` also writes reports/techniques.md."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    output_args(ap, REPORT.name)
    ap.add_argument("--only", default="", help="comma-separated entry ids")
    args = ap.parse_args(argv)
    chosen = [e for e in entries() if not args.only or e["id"] in args.only.split(",")]
    models: dict[str, Model] = {}
    rows = [evaluate(e, models) for e in chosen]
    emit(report(rows), args, REPORT.name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
