"""Print the MMHA instruction counts of a build and compare them with the constants in hardware/gpu/attention.py.

Reads ``loops.json`` (:mod:`loops`) and ``block_<name>.json`` (:mod:`block`) from the output directory. The
constants are keyed by (the cache's element format, fp16 / fp8 / int8, and whether the part converts fp8 in
hardware): sm_90 stands for the parts that do, sm_80 for those that do not. A per-key count matches when it rounds
to the constant's two decimals, a block count when it is equal. Exits with status 1 on a mismatch.

usage: python report.py OUT_DIR
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(os.environ.get("HWSIM_REPO", Path(__file__).resolve().parents[2]))
#: build name -> key of the constants in hardware.gpu.attention
KEYS = {"mmha_fp16_mbfalse_sm80": ("fp16", False), "mmha_fp16_mbfalse_sm90": ("fp16", True),
        "mmha_fp8_mbfalse_sm80": ("fp8", False), "mmha_fp8_mbfalse_sm90": ("fp8", True),
        "mmha_int8_mbfalse_sm80": ("int8", False), "mmha_int8_mbfalse_sm90": ("int8", True)}
REGIONS = ("a_prologue", "b1_K_to_smx1", "b2_smx1_to_smx2", "b2t_smx1_tail", "b3_smx2_to_V", "c_epilogue")


def measured(out: Path) -> dict[str, dict[str, float]]:
    """Per build: the K, V and softmax counts per (query head, key) and the block's once-per-block total, with
    its parts (a) prologue, (b) between the loops, softmax pass 1's tail, (c) epilogue."""
    loops = json.loads((out / "loops.json").read_text())
    rows = {}
    for name in KEYS:
        per_key = {loop: loops[name][loop]["normal"]["per_key_block"] for loop in ("K", "V", "softmax_exp", "softmax_norm")}
        block = json.loads((out / f"block_{name}.json").read_text())
        regions = {r: sum(w["total"].get(r, 0) for w in block["warps"]) for r in REGIONS}
        rows[name] = {**per_key, "a": regions["a_prologue"],
                      "b": regions["b1_K_to_smx1"] + regions["b2_smx1_to_smx2"] + regions["b3_smx2_to_V"],
                      "tail": regions["b2t_smx1_tail"], "c": regions["c_epilogue"], "block": sum(regions.values()),
                      "err_out": block["err_out"], "barriers": block["barriers"]}
        if "zero" in loops[name]["K"]:
            rows[name]["K_zero"] = loops[name]["K"]["zero"]["per_key_block"]
            rows[name]["V_zero"] = loops[name]["V"]["zero"]["per_key_block"]
    return rows


def constants() -> tuple[dict, dict, dict]:
    """MMHA_LOOP_INSTRUCTIONS, MMHA_SOFTMAX_INSTRUCTIONS and MMHA_BLOCK_INSTRUCTIONS of the repository."""
    sys.path.insert(0, str(REPO))
    from hardware.gpu import attention

    return attention.MMHA_LOOP_INSTRUCTIONS, attention.MMHA_SOFTMAX_INSTRUCTIONS, attention.MMHA_BLOCK_INSTRUCTIONS


def compare(rows: dict[str, dict[str, float]], loop_c: dict, softmax_c: dict, block_c: dict) -> list[str]:
    """The mismatches between the measured rows and the constants (empty if all match)."""
    bad = []
    for name, row in rows.items():
        key = KEYS[name]
        k_c, v_c = loop_c[key]
        softmax = round(row["softmax_exp"], 2) + round(row["softmax_norm"], 2)
        for what, value, constant in (("K", row["K"], k_c), ("V", row["V"], v_c), ("softmax", softmax, softmax_c[key[1]])):
            if abs(value - constant) > 0.005 + 1e-9:
                bad.append(f"{name} {what}: measured {value:.4f}, constant {constant}")
        if row["block"] != block_c[key]:
            bad.append(f"{name} block: measured {row['block']}, constant {block_c[key]}")
    return bad


def table(rows: dict[str, dict[str, float]]) -> str:
    """The measured counts as a text table: per (query head, key) for the loops, per block for the rest."""
    lines = [f"{'build':12s} {'K/key':>7s} {'V/key':>7s} {'smx1/key':>9s} {'smx2/key':>9s} | {'(a)':>5s} {'(b)':>5s} "
             f"{'tail':>5s} {'(c)':>5s} {'block':>6s} | out rel.err",
             "-" * 96]
    for name, r in rows.items():
        short = name.replace("mmha_", "").replace("_mbfalse_", " ")
        lines.append(f"{short:12s} {r['K']:7.2f} {r['V']:7.2f} {r['softmax_exp']:9.2f} {r['softmax_norm']:9.2f} | "
                     f"{r['a']:5d} {r['b']:5d} {r['tail']:5d} {r['c']:5d} {r['block']:6d} | {r['err_out']:.1e}")
    for name, r in rows.items():
        if "K_zero" in r:
            lines.append(f"({name}: with all fp8 values 0 the software decode costs K {r['K_zero']:.2f}, "
                         f"V {r['V_zero']:.2f} per key)")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    rows = measured(Path(sys.argv[1]))
    print("MMHA (TensorRT-LLM 71d8d4d3, 256 threads, head dim 128, NVRTC 12.3): warp-instructions of the whole block")
    print(table(rows))
    try:
        loop_c, softmax_c, block_c = constants()
    except ImportError as error:
        print(f"cannot import hardware.gpu.attention from {REPO} ({error}): set HWSIM_PYTHON to the project's python")
        raise SystemExit(2) from None
    bad = compare(rows, loop_c, softmax_c, block_c)
    if bad:
        print("MISMATCH with hardware/gpu/attention.py:\n  " + "\n  ".join(bad))
        raise SystemExit(1)
    print("MATCH: the K, V, softmax and block counts equal MMHA_LOOP_INSTRUCTIONS, MMHA_SOFTMAX_INSTRUCTIONS and "
          "MMHA_BLOCK_INSTRUCTIONS in hardware/gpu/attention.py")


if __name__ == "__main__":
    main()
