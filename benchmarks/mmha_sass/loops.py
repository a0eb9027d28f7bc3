"""Find MMHA's four per-key loops in the SASS of each build and count their warp-instructions per (query head, key).

The loops are recognised by their bodies (the smallest back-edge loop that fits):

* the K loop (Q.K^T): 4 wide loads (``LDG.E.128``, or ``LDG.E.64`` for an fp8 cache) and 16 ``SHFL.BFLY``;
* the V loop (P.V): 8 wide loads and 8 ``LDS.U16`` (the fp16 probabilities);
* softmax pass 1 (exp and sum): ``MUFU.EX2`` as many as ``STS``, no wide load, fewer than 20 instructions per exp;
* softmax pass 2 (normalise, fp32 -> fp16): ``STS.U16``, no wide load and no exp, fewer than 20 per store.

One iteration of each is walked (:mod:`walk`); the count per key of the whole block is the per-warp iteration's count
over the keys one warp covers per iteration (all 8 warps do the same on disjoint keys). From the source
(THREADS_PER_KEY = THREADS_PER_VALUE = 16, K_LOOP_UNROLL = 4, V_LOOP_UNROLL = 8): 8 keys per K iteration, 16 per V
iteration; the softmax loops handle one key per thread per trip, times their unroll by the compiler (counted as the
``MUFU.EX2`` or ``STS.U16`` of one iteration).

usage: python loops.py BUILD_DIR [--json counts.json] [--classes]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sass import Instruction, back_edges, opcode, parse
from walk import MODES, count, walk

LOOPS = ("K", "V", "softmax_exp", "softmax_norm")
TITLES = {"K": "K loop (Q.K^T)", "V": "V loop (P.V)", "softmax_exp": "softmax pass 1 (exp, sum)",
          "softmax_norm": "softmax pass 2 (normalise, fp32->fp16 logits)"}
#: the four builds, ``mmha_{cache}_mbfalse_{sm}``: (cache element, architecture)
CONFIGS = (("fp16", "sm80"), ("fp16", "sm90"), ("fp8", "sm80"), ("fp8", "sm90"), ("int8", "sm80"), ("int8", "sm90"))
#: keys one warp covers per K and V iteration
KEYS_PER_WARP_ITERATION = {"K": 8, "V": 16}

#: the classes of the report's tables, each a test on :func:`walk.classify`'s fine classes; first match wins
GROUPS: list[tuple[str, Callable[[str], bool]]] = [
    ("FP32 FFMA", lambda k: k == "fp32_FFMA"),
    ("FP32 FMUL", lambda k: k == "fp32_FMUL"),
    ("FP32 FADD", lambda k: k == "fp32_FADD"),
    ("FP32 other (FMNMX/FSETP/FSEL)", lambda k: k.startswith("fp32_")),
    ("FP16x2 math (HFMA2/HADD2/HMUL2)", lambda k: k.startswith("fp16x2_")),
    ("cvt HADD2.F32 (f16->f32)", lambda k: k == "cvt_HADD2.F32"),
    ("cvt F2FP (incl. fp8 unpack/pack)", lambda k: k == "cvt_F2FP"),
    ("cvt I2F", lambda k: k == "cvt_I2F"),
    ("cvt other (F2F...)", lambda k: k.startswith("cvt_")),
    ("PRMT", lambda k: k == "PRMT"),
    ("LOP3", lambda k: k == "int_LOP3"),
    ("int addr/other (IMAD/IADD3/LEA/SHF/IMNMX/SEL)", lambda k: k.startswith(("int_", "uniform_"))),
    ("ISETP/predicate", lambda k: k.startswith("pred_")),
    ("branch/BSSY/BSYNC/CALL", lambda k: k.startswith("ctrl_")),
    ("SHFL", lambda k: k == "SHFL"),
    ("LDG", lambda k: k == "LDG"),
    ("LDS", lambda k: k == "LDS"),
    ("STS", lambda k: k == "STS"),
    ("local LDL/STL", lambda k: k.startswith("local_")),
    ("LDC (constant bank)", lambda k: k == "LDC"),
    ("MUFU", lambda k: k == "MUFU"),
    ("BAR", lambda k: k == "BAR"),
    ("HFMA2.MMA (used as MOV)", lambda k: k == "HFMA2.MMA(mov)"),
    ("other", lambda k: True),
]


def group(classes: Counter[str]) -> dict[str, int]:
    """Fine class counts summed into the :data:`GROUPS` classes (those with a count only)."""
    out = dict.fromkeys((name for name, _ in GROUPS), 0)
    for fine, n in classes.items():
        name = next(name for name, test in GROUPS if test(fine))
        out[name] += n
    return {name: n for name, n in out.items() if n}


def body_opcodes(instructions: list[Instruction], start: int, end: int) -> Counter[str]:
    """The opcodes of the static loop body ``[start, end]``."""
    return Counter(opcode(text) for address, text in instructions if start <= address <= end)


def find(instructions: list[Instruction], labels: dict[str, int]) -> dict[str, tuple[int, int] | None]:
    """The ``(start, end)`` addresses of the K, V and two softmax loops (None for one not found)."""
    candidates = back_edges(instructions, labels)

    def smallest(test: Callable[[Counter[str]], bool]) -> tuple[int, int] | None:
        fits = [(end - start, start, end) for start, end, _, _ in candidates
                if test(body_opcodes(instructions, start, end))]
        return min(fits)[1:] if fits else None

    def wide_loads(ops: Counter[str]) -> int:
        return ops["LDG.E.128"] + ops["LDG.E.64"]

    def softmax_exp(ops: Counter[str]) -> bool:
        exps = ops["MUFU.EX2"]
        return exps >= 1 and exps == ops["STS"] and wide_loads(ops) == 0 and sum(ops.values()) < 20 * exps

    def softmax_norm(ops: Counter[str]) -> bool:
        stores = ops["STS.U16"]
        return stores >= 1 and wide_loads(ops) == 0 and sum(ops.values()) < 20 * stores and ops["MUFU.EX2"] == 0

    return {"K": smallest(lambda ops: wide_loads(ops) == 4 and ops["SHFL.BFLY"] == 16),
            "V": smallest(lambda ops: wide_loads(ops) == 8 and ops["LDS.U16"] == 8),
            "softmax_exp": smallest(softmax_exp),
            "softmax_norm": smallest(softmax_norm)}


def keys_per_iteration(loop: str, path_opcodes: Counter[str]) -> int:
    """Keys one warp covers per iteration of ``loop``, given the opcodes of its walked iteration."""
    if loop == "softmax_exp":
        return 32 * path_opcodes.get("MUFU.EX2", 1)
    if loop == "softmax_norm":
        return 32 * path_opcodes.get("STS.U16", 1)
    return KEYS_PER_WARP_ITERATION[loop]


def modes_for(name: str) -> tuple[str, ...]:
    """The value assumptions to walk a build under: fp8 on sm_80 decodes in software, so also its ``zero`` path."""
    return MODES if "fp8" in name and "sm80" in name else ("normal",)


def count_listing(path: str | Path) -> dict[str, dict | None]:
    """Per-loop counts of one ``.nvdisasm.sass`` listing: for each loop its addresses and, per value mode, the
    warp-instructions of one walked iteration, the keys it covers and the count per (query head, key)."""
    name = Path(path).name
    instructions, labels = parse(path)
    result: dict[str, dict | None] = {}
    for loop, span in find(instructions, labels).items():
        if span is None:
            result[loop] = None
            continue
        start, end = span
        entry: dict = {"start": hex(start), "end": hex(end)}
        for mode in modes_for(name):
            walked, decisions = walk(instructions, labels, start, end, mode)
            ops = Counter(opcode(text) for _, text in walked)
            keys = keys_per_iteration(loop, ops)
            entry[mode] = {"per_warp_iter": len(walked), "data_dep_branches": len(decisions),
                           "keys_per_warp_iter": keys, "per_key_block": len(walked) / keys,
                           "groups_per_warp_iter": group(count(walked)),
                           "opcodes_per_warp_iter": dict(sorted(ops.items()))}
        result[loop] = entry
    return result


def count_build(build: str | Path) -> dict[str, dict[str, dict | None]]:
    """:func:`count_listing` of the four single-block builds in the directory ``build``."""
    return {f"mmha_{cache}_mbfalse_{sm}": count_listing(Path(build) / f"mmha_{cache}_mbfalse_{sm}.nvdisasm.sass")
            for cache, sm in CONFIGS}


def class_tables(counts: dict[str, dict[str, dict | None]]) -> str:
    """Markdown tables of each loop's count per (query head, key) by instruction class, one column per build (and
    value mode)."""
    lines = []
    order = [name for name, _ in GROUPS]
    for loop in LOOPS:
        columns = [(f"mmha_{c}_mbfalse_{s}", mode) for c, s in CONFIGS for mode in modes_for(f"{c}_{s}")
                   if loop in ("K", "V") or mode == "normal"]
        cells = [counts[name][loop][mode] for name, mode in columns]
        head = " | ".join(name.replace("mmha_", "").replace("_mbfalse_", " ") + (" (fp8 values = 0)" if mode == "zero"
                                                                                 else "") for name, mode in columns)
        lines += [f"\n#### {TITLES[loop]}: warp-instructions per (query head, key), whole block\n", f"| class | {head} |",
                  "|---|" + "---:|" * len(columns),
                  "| per-warp iteration: instructions / keys | "
                  + " | ".join(f"{x['per_warp_iter']} / {x['keys_per_warp_iter']}" for x in cells) + " |"]
        for name in order:
            values = [x["groups_per_warp_iter"].get(name, 0) / x["keys_per_warp_iter"] for x in cells]
            if any(values):
                lines.append(f"| {name} | " + " | ".join(f"{v:.3g}" if v else "0" for v in values) + " |")
        lines.append("| **total per key** | " + " | ".join(f"**{x['per_key_block']:.2f}**" for x in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build", help="directory with mmha_{fp16,fp8}_mbfalse_{sm80,sm90}.nvdisasm.sass")
    parser.add_argument("--json", help="write the counts here")
    parser.add_argument("--classes", action="store_true", help="print the per-class tables")
    args = parser.parse_args()
    counts = count_build(args.build)
    if args.json:
        Path(args.json).write_text(json.dumps(counts, indent=1))
    for name, loops in counts.items():
        cells = []
        for loop in LOOPS:
            entry = loops[loop]
            cells.append(f"{loop} " + ("NOT FOUND" if entry is None else " / ".join(
                f"{entry[mode]['per_warp_iter']}/{entry[mode]['keys_per_warp_iter']} = {entry[mode]['per_key_block']:.2f}"
                + (f" ({mode})" if mode != "normal" else "") for mode in MODES if mode in entry)))
        print(f"{name}: " + "; ".join(cells))
    if args.classes:
        print(class_tables(counts))


if __name__ == "__main__":
    main()
