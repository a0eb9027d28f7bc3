"""Import coverage on the real-world ONNX corpus (tests/fixtures/corpus): ``reports/import_coverage.md``.

    python -m simulator.validation.import_coverage [--write] [--no-simulate] [--only SUBSTRING]

For every file of ``tests/fixtures/corpus/manifest.json``: does hwsim import it (``mapping.workloads.Model``, the
path ``hwsim inspect`` takes), do the recognised facts (architecture, layers, heads, kv_heads, head_dim, causal,
MoE experts and top-k) match the manifest, how far are the matmul FLOPs of a prefill (batch 1, S tokens) and of one
decode step (context C) from the manifest's analytic truth, how far are the weight bytes from the bytes the file stores, and does
``simulate`` run on a GPU (a100-80gb), a PIM (pim-gpt) and an FPGA (u55c) target (phase generate for decoders,
prompt S, 4 tokens; prefill for encoder-only files, as the CLI's default). Failures are reported as they are:
an HwsimError by its first line, anything else as ``internal error``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardware.errors import HwsimError
from simulator.validation import checkout_root, emit, output_args

ROOT = checkout_root()
CORPUS = ROOT / "tests" / "fixtures" / "corpus"
REPORT = ROOT / "reports" / "import_coverage.md"
TARGETS = ("a100-80gb", "pim-gpt", "u55c")
GEN_LEN = 4
TOLERANCE = 0.01  # FLOPs and weight bytes within 1%
FACTS = ("architecture", "layers", "heads", "kv_heads", "head_dim", "causal", "moe")


@dataclass
class Row:
    """One corpus file's coverage: import, facts, errors (fractions), simulate cells."""

    file: str
    producer: str
    arch: str
    part: str
    imported: str = ""  # "ok" or the error's first line
    facts: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # name -> (hwsim, manifest)
    prefill_err: float | None = None
    decode_err: float | None = None
    weight_err: float | None = None
    errors: dict[str, str] = field(default_factory=dict)  # phase -> error line
    simulate: dict[str, str] = field(default_factory=dict)  # target -> "ok" or error line
    seconds: float = 0.0
    heldout: bool = False

    @property
    def facts_ok(self) -> bool:
        return bool(self.facts) and all(a == b for a, b in self.facts.values())

    def mismatched(self) -> list[str]:
        return [f"{k} {a}!={b}" for k, (a, b) in self.facts.items() if a != b]


def load_manifest(path: Path = CORPUS / "manifest.json") -> list[dict]:
    """The corpus entries (file, producer, facts, truth...)."""
    return json.loads(path.read_text())["files"]


def _first_line(e: BaseException) -> str:
    text = str(e).replace(str(CORPUS / "models") + "/", "").strip().splitlines()
    line = text[0] if text else ""
    if isinstance(e, HwsimError):
        return line[:200]
    return f"internal error: {type(e).__name__}: {line}"[:200]


def _rel(got: float, want: float | None) -> float | None:
    if want is None or want == 0:
        return None
    return got / want - 1.0


def recognised_facts(model: Any) -> dict[str, Any]:
    """What hwsim recognised, in the manifest's terms."""
    ir = model.ir
    return {"architecture": ir.architecture, "layers": ir.n_layers, "heads": ir.heads, "kv_heads": ir.kv_heads,
            "head_dim": ir.head_dim,
            "causal": any(b.attention.causal for b in ir.attentions("self") if b.attention is not None),
            "moe": (ir.moe["experts"], ir.moe["top_k"]) if ir.moe else None}


def expected_facts(entry: dict) -> dict[str, Any]:
    """The manifest's facts for the same keys."""
    f = entry["facts"]
    return {"architecture": entry["architecture"], "layers": f["layers"], "heads": f["heads"],
            "kv_heads": f["kv_heads"], "head_dim": f["head_dim"], "causal": f["causal"],
            "moe": (f["moe"]["experts"], f["moe"]["top_k"]) if f.get("moe") else None}


def check_import(entry: dict, corpus: Path = CORPUS) -> tuple[Row, Any]:
    """Import the file and compare facts, FLOPs and weight bytes; returns the row and the model (or None)."""
    from mapping.op_costs import Precision
    from mapping.workloads import Model

    row = Row(entry["file"], entry["producer"], entry["arch"], entry["part"], heldout=bool(entry.get("heldout")))
    truth = entry["truth"]
    t0 = time.perf_counter()
    try:
        model = Model(str(corpus / "models" / entry["file"]))
    except Exception as e:  # noqa: BLE001 - every failure is a result of the coverage table
        row.imported = _first_line(e)
        row.seconds = time.perf_counter() - t0
        return row, None
    row.imported = "ok"
    got, want = recognised_facts(model), expected_facts(entry)
    row.facts = {k: (got[k], want[k]) for k in FACTS}
    try:
        row.weight_err = _rel(model.weight_bytes(Precision()), truth["stored_weight_bytes"])
    except Exception as e:  # noqa: BLE001
        row.errors["weights"] = _first_line(e)
    try:
        row.prefill_err = _rel(model.prefill(1, truth["S"]).matmul_flops, truth["prefill_matmul_flops"])
    except Exception as e:  # noqa: BLE001
        row.errors["prefill"] = _first_line(e)
    if truth["decode_matmul_flops"] is not None:
        try:
            work = model.decode(1, truth["C"], prompt_len=truth["S"])
            row.decode_err = _rel(work.matmul_flops, truth["decode_matmul_flops"])
        except Exception as e:  # noqa: BLE001
            row.errors["decode"] = _first_line(e)
    row.seconds = time.perf_counter() - t0
    return row, model


def simulate_cell(model: Any, entry: dict, target_name: str) -> str:
    """``ok`` or the first line of what stopped ``simulate`` on one target."""
    from hardware.targets import load_target
    from mapping.op_costs import Precision
    from simulator.simulate import simulate

    encoder = entry["architecture"] == "encoder-only"
    try:
        result = simulate(model, load_target(target_name), "prefill" if encoder else "generate", 1,
                          entry["truth"]["S"], 1 if encoder else GEN_LEN, Precision())
        if not result.latency_s > 0:
            return f"latency {result.latency_s}"
    except Exception as e:  # noqa: BLE001
        return _first_line(e)
    return "ok"


def check_file(entry: dict, simulate_targets: bool = True, corpus: Path = CORPUS) -> Row:
    """The whole row of one file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row, model = check_import(entry, corpus)
        if model is not None and simulate_targets:
            t0 = time.perf_counter()
            for t in TARGETS:
                row.simulate[t] = simulate_cell(model, entry, t)
            row.seconds += time.perf_counter() - t0
    return row


def failure(row: Row) -> str | None:
    """Why the row fails the test's checks (import, facts, errors, FLOPs and bytes within 1%), None if it passes."""
    if row.imported != "ok":
        return f"import: {row.imported}"
    if not row.facts_ok:
        return "facts: " + "; ".join(row.mismatched())
    if row.errors:
        return "; ".join(f"{k}: {v}" for k, v in row.errors.items())
    for what, err in (("prefill FLOPs", row.prefill_err), ("decode FLOPs", row.decode_err),
                      ("weight bytes", row.weight_err)):
        if err is not None and abs(err) > TOLERANCE:
            return f"{what} {err * 100:+.1f}%"
    return None


def simulate_failure(row: Row) -> str | None:
    """Why ``simulate`` fails on a target (the first one), None if it ran on all three."""
    if row.imported != "ok":
        return f"import: {row.imported}"
    bad = [f"{t}: {v}" for t, v in row.simulate.items() if v != "ok"]
    return bad[0] if bad else None


def summary(rows: list[Row]) -> list[str]:
    """Count lines: imported, facts, FLOPs and bytes within tolerance, simulate per target."""
    n = len(rows)
    imported = [r for r in rows if r.imported == "ok"]

    def within(vals: list[float | None]) -> str:
        have = [v for v in vals if v is not None]
        return f"{sum(abs(v) <= TOLERANCE for v in have)} / {len(have)}"

    decode_rows = [r for r in imported if r.decode_err is not None or "decode" in r.errors]
    held = [r for r in rows if r.heldout]
    lines = [f"- files imported: {len(imported)} / {n}",
             f"- held-out files (architectures and producers added after the importer was written, see "
             f"export_log.md): {sum(failure(r) is None for r in held)} / {len(held)} pass every check",
             f"- facts all matching (of imported): {sum(r.facts_ok for r in imported)} / {len(imported)}"]
    for k in FACTS:
        lines.append(f"  - {k} matching: {sum(r.facts.get(k, (0, 1))[0] == r.facts.get(k, (0, 1))[1] for r in imported)}"
                     f" / {len(imported)}")
    lines += [f"- prefill matmul FLOPs within 1% (of imported with a count): {within([r.prefill_err for r in imported])}"
              f"; prefill errors raised: {sum('prefill' in r.errors for r in imported)}",
              f"- decode-step matmul FLOPs within 1%: {within([r.decode_err for r in decode_rows])}"
              f"; decode errors raised: {sum('decode' in r.errors for r in imported)}",
              f"- weight bytes within 1%: {within([r.weight_err for r in imported])}"]
    for t in TARGETS:
        cells = [r.simulate.get(t) for r in imported if t in r.simulate]
        if cells:
            internal = sum(c.startswith("internal error") for c in cells)
            lines.append(f"- simulate on {t}: {sum(c == 'ok' for c in cells)} / {len(cells)} ran"
                         f" ({internal} internal errors)")
    return lines


def _pct(v: float | None, err: str | None = None) -> str:
    if err:
        return "error"
    if v is None:
        return "-"
    return f"{v * 100:+.1f}%"


def markdown(rows: list[Row], elapsed: float) -> str:
    """The report: summary, per-file table, then every failure's message."""
    out = ["# Import coverage on the real-world ONNX corpus", "",
           "Written by `python -m simulator.validation.import_coverage --write`. Corpus: "
           "`tests/fixtures/corpus/` (files from optimum-onnx, onnxruntime-genai, onnxruntime's optimizer and "
           "quantizers, torch.onnx (also of model code outside transformers), tf2onnx, and the held-out transforms of "
           "optimum's files: ORT optimization, onnxslim, "
           "version_converter, per-channel and int4 quantization; see its manifest and export_log.md). Truth: the "
           "manifest's analytic matmul FLOPs "
           "(prefill of batch 1 x S tokens, one decode step at context C) and the bytes the file's initializers "
           "store. Errors are hwsim / truth - 1; `!=` marks a fact hwsim got wrong (hwsim != manifest).", "",
           "## Summary", ""]
    out += summary(rows)
    out += ["", f"Run time: {elapsed:.0f} s.", "", "## Files", "",
            "| file | producer | part | import | facts | prefill | decode | weights | " + " | ".join(TARGETS) + " |",
            "|---|---|---|---|---|---|---|---|" + "---|" * len(TARGETS)]
    for r in rows:
        imp = "ok" if r.imported == "ok" else "FAIL"
        facts = "" if r.imported != "ok" else ("ok" if r.facts_ok else "; ".join(r.mismatched()))
        sims = [("ok" if r.simulate.get(t) == "ok" else ("FAIL" if t in r.simulate else "-")) for t in TARGETS]
        out.append(f"| {r.file} | {r.producer} | {r.part} | {imp} | {facts} | {_pct(r.prefill_err, r.errors.get('prefill'))}"
                   f" | {_pct(r.decode_err, r.errors.get('decode'))} | {_pct(r.weight_err, r.errors.get('weights'))} | "
                   + " | ".join(sims) + " |")
    out += ["", "## Failure messages", ""]
    for r in rows:
        msgs = []
        if r.imported != "ok":
            msgs.append(f"import: {r.imported}")
        msgs += [f"{k}: {v}" for k, v in r.errors.items()]
        msgs += [f"{t}: {v}" for t, v in r.simulate.items() if v != "ok"]
        if msgs:
            out.append(f"- `{r.file}`: " + "; ".join(m.replace("|", "/") for m in msgs))
    return "\n".join(out) + "\n"


def run(only: str = "", simulate_targets: bool = True) -> tuple[list[Row], float]:
    """Check every manifest file (or those whose name contains ``only``)."""
    t0 = time.perf_counter()
    rows = [check_file(e, simulate_targets) for e in load_manifest() if only in e["file"]]
    return rows, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    output_args(parser, REPORT.name)
    parser.add_argument("--no-simulate", action="store_true", help="import, facts, FLOPs and bytes only")
    parser.add_argument("--only", default="", help="files whose name contains this")
    parser.add_argument("--known-failing", action="store_true",
                        help="print the KNOWN_FAILING / KNOWN_FAILING_SIMULATE entries of tests/test_import_coverage.py")
    args = parser.parse_args()
    rows, elapsed = run(args.only, not args.no_simulate)
    if args.known_failing:
        for title, why in (("KNOWN_FAILING", failure), ("KNOWN_FAILING_SIMULATE", simulate_failure)):
            print(f"{title}: dict[str, str] = {{")
            for r in rows:
                reason = why(r)
                if reason:
                    print(f"    {r.file!r}:\n        {reason[:110]!r},")
            print("}")
    emit(markdown(rows, elapsed), args, REPORT.name, show=not args.known_failing)


if __name__ == "__main__":
    main()
