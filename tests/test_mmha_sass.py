"""benchmarks/mmha_sass's SASS tools on small synthetic ``nvdisasm -c`` listings (no CUDA wheels, no TensorRT-LLM):
the loop finder, the one-iteration walker's branch rules and counts, the MMHA loop recogniser, the memoryUtils.h
extractor and the comparison with hardware/gpu/attention.py's constants."""

from __future__ import annotations

import importlib
import sys
from collections import Counter

import pytest

from conftest import ROOT

TOOLS = ROOT / "benchmarks" / "mmha_sass"


def _load(*names: str) -> list:
    """Import the folder's flat modules without leaving it on sys.path or its generic names in sys.modules."""
    sys.path.insert(0, str(TOOLS))
    try:
        return [importlib.import_module(name) for name in names]
    finally:
        sys.path.remove(str(TOOLS))
        for name in ("sass", "walk", "loops", "gen_memory_utils", "report"):
            sys.modules.pop(name, None)


sass, walk, loops, gen_memory_utils, report = _load("sass", "walk", "loops", "gen_memory_utils", "report")

# a loop with a data-dependent fp8-style decode (NaN test, zero test), a BRA.DIV whose fallback jumps back to the
# reconvergence point (a second, backward branch), and the loop's back-edge
LISTING = """\
        /*0000*/                   MOV R1, c[0x0][0x28] ;
.L_x_0:
        /*0010*/                   LDG.E.128 R4, desc[UR4][R2.64] ;
        /*0020*/                   LOP3.LUT R8, R4, 0x7f, RZ, 0xc0, !PT ;
        /*0030*/                   ISETP.NE.AND P0, PT, R8, 0x7f, PT ;
        /*0040*/              @!P0 BRA `(.L_x_1) ;
        /*0050*/                   ISETP.NE.AND P1, PT, R8, RZ, PT ;
        /*0060*/               @P1 BRA `(.L_x_2) ;
        /*0070*/                   IMAD.MOV.U32 R9, RZ, RZ, RZ ;
        /*0080*/                   IADD3 R9, R9, 0x1, RZ ;
.L_x_2:
        /*0090*/                   BRA.DIV UR4, `(.L_x_3) ;
        /*00a0*/                   SHFL.BFLY PT, R10, R9, 0x1, 0x1f ;
.L_x_1:
        /*00b0*/                   FFMA R11, R10, R10, R11 ;
        /*00c0*/                   ISETP.GE.AND P2, PT, R3, 0x10, PT ;
        /*00d0*/              @!P2 BRA `(.L_x_0) ;
        /*00e0*/                   EXIT ;
.L_x_3:
        /*00f0*/                   WARPSYNC 0xffffffff ;
        /*0100*/                   BRA `(.L_x_2) ;
"""


def _parsed(text: str = LISTING) -> tuple[list, dict]:
    return sass.parse_lines(text.splitlines())


def test_parse_and_back_edges():
    instructions, labels = _parsed()
    assert len(instructions) == 17
    assert labels == {".L_x_0": 0x10, ".L_x_2": 0x90, ".L_x_1": 0xB0, ".L_x_3": 0xF0}
    assert sass.opcode("@!P0 BRA `(.L_x_1)") == "BRA"
    assert sass.opcode("LDG.E.128 R4, desc[UR4][R2.64]") == "LDG.E.128"
    # the loop's back-edge and the BRA.DIV fallback's jump back; the forward branches are not loops
    assert [(start, end) for start, end, _, _ in sass.back_edges(instructions, labels)] == [(0x10, 0xD0), (0x90, 0x100)]


def test_walk_normal_values():
    instructions, labels = _parsed()
    path, decisions = walk.walk(instructions, labels, 0x10, 0xD0, "normal")
    # not NaN: the @!P0 branch falls through; normal: @P1 skips the zero path; BRA.DIV not taken
    assert [address for address, _ in path] == [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x90, 0xA0, 0xB0, 0xC0, 0xD0]
    assert [taken for *_, taken in decisions] == [False, True]
    classes = walk.count(path)
    assert classes["ctrl_BRA"] == 4  # two conditional branches, BRA.DIV and the back-edge
    assert classes["pred_ISETP"] == 3
    assert classes["LDG"] == classes["SHFL"] == classes["fp32_FFMA"] == classes["int_LOP3"] == 1


def test_walk_zero_values_take_the_longer_path():
    instructions, labels = _parsed()
    path, _ = walk.walk(instructions, labels, 0x10, 0xD0, "zero")
    assert len(path) == 13
    assert walk.count(path)["int_IMAD"] == walk.count(path)["int_IADD3"] == 1


def test_walk_refuses_an_unresolvable_branch():
    text = LISTING.replace("ISETP.NE.AND P1, PT, R8, RZ, PT", "ISETP.GT.AND P1, PT, R8, 0x3, PT")
    instructions, labels = _parsed(text)
    with pytest.raises(walk.WalkError, match="unresolved branch at 0x60"):
        walk.walk(instructions, labels, 0x10, 0xD0)
    with pytest.raises(ValueError):
        walk.walk(instructions, labels, 0x10, 0xD0, "subnormal")


def _loop(body: list[str], label: str, start: int) -> tuple[list[str], int]:
    lines = [f"{label}:"]
    address = start
    for text in body:
        lines.append(f"        /*{address:04x}*/                   {text} ;")
        address += 0x10
    lines.append(f"        /*{address:04x}*/               @P0 BRA `({label}) ;")
    return lines, address + 0x10


def test_find_recognises_the_mmha_loops():
    k_body = ["LDG.E.128 R4, desc[UR4][R2.64]"] * 4 + ["SHFL.BFLY PT, R9, R8, 0x1, 0x1f", "FADD R8, R8, R9"] * 16
    v_body = ["LDG.E.128 R4, desc[UR4][R2.64]"] * 8 + ["LDS.U16 R9, [R10]", "FFMA R0, R9, R4, R0"] * 8
    exp_body = ["LDS R15, [R12]", "FADD R15, -R18, R15", "FMUL R15, R15, 1.4426950216293334961", "MUFU.EX2 R17, R15",
                "STS [R12], R17", "ISETP.GT.AND P0, PT, R13, R4, PT"]
    exp_unrolled = exp_body[:5] * 4 + exp_body[5:]  # unrolled x4 by the compiler: 128 keys per warp-iteration
    norm_body = ["LDS R15, [R12]", "FMUL R15, R15, R2", "F2FP.F16.F32.PACK_AB R15, RZ, R15", "STS.U16 [R14], R15",
                 "ISETP.GT.AND P0, PT, R13, R4, PT"]
    lines, address = ["        /*0000*/                   MOV R1, c[0x0][0x28] ;"], 0x10
    for label, body in ((".L_x_0", k_body), (".L_x_1", exp_unrolled), (".L_x_2", norm_body), (".L_x_3", v_body)):
        block, address = _loop(body, label, address)
        lines += block
    instructions, labels = _parsed("\n".join(lines) + "\n")
    found = loops.find(instructions, labels)
    assert found["K"][0] == labels[".L_x_0"] and found["V"][0] == labels[".L_x_3"]
    assert found["softmax_exp"][0] == labels[".L_x_1"] and found["softmax_norm"][0] == labels[".L_x_2"]
    start, end = found["softmax_exp"]
    path, _ = walk.walk(instructions, labels, start, end)
    ops = Counter(sass.opcode(text) for _, text in path)
    assert loops.keys_per_iteration("softmax_exp", ops) == 128
    assert len(path) / loops.keys_per_iteration("softmax_exp", ops) == pytest.approx(22 / 128)
    assert loops.keys_per_iteration("K", ops) == 8 and loops.keys_per_iteration("V", ops) == 16


def test_memory_utils_extraction():
    header = "\n".join(["#pragma once", "template <typename T>", "T flat_index(T const* dims);", "",
                        "template <typename T>", "__inline__ __host__ __device__ T constexpr flat_index2(T const& a)",
                        "{", "    return a;", "}", "", "template <typename T>",
                        "__inline__ __host__ __device__ T constexpr flat_index_strided4(", "    T const& a)", "{",
                        "    return a;", "}", "", "// other code"])
    body, first, last = gen_memory_utils.extract(header)
    assert (first, last) == (5, 16)
    assert body[0] == "template <typename T>" and body[-1] == "}" and "flat_index_strided4(" in body[-5]


def test_report_compare_flags_a_mismatch():
    loop_c = {("fp16", False): (26.12, 13.19)}
    softmax_c = {False: 0.65}
    block_c = {("fp16", False): 4151.0}
    row = {"K": 209 / 8, "V": 211 / 16, "softmax_exp": 47 / 128, "softmax_norm": 9 / 32, "block": 4151}
    assert report.compare({"mmha_fp16_mbfalse_sm80": row}, loop_c, softmax_c, block_c) == []
    bad = report.compare({"mmha_fp16_mbfalse_sm80": {**row, "K": 204 / 8, "block": 4150}}, loop_c, softmax_c, block_c)
    assert len(bad) == 2 and "K" in bad[0] and "block" in bad[1]
