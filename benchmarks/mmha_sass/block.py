"""Emulate one 256-thread block of an MMHA cubin on real data and count the warp-instructions it issues outside
its per-key loops.

The kernel's arguments are the ones TensorRT-LLM 71d8d4d3 passes for a decode step
(``gptAttentionCommon.cpp::enqueueGeneration`` -> ``fusedQKV_masked_attention_dispatch``): GPT-NeoX rotary embedding
(dim 128, base 10^4, no scaling); null ``finished``, bias, ALiBi, IA3 and quantisation pointers; a fused QKV input of
stride (H + 2 Hkv) x 128; a linear KV cache with window 2048; timestep t = 1000; for the fp8 cache the scales
112 (orig -> quant) and 1/112 (quant -> orig); N(0, 1) data. The default is Llama-2-7B (32 query and 32 KV heads,
block 0). The block's output and its new K and V rows are checked against a numpy model of the kernel source.

The issued instructions are split by region, from the loops :func:`loops.find` locates:

* ``a_prologue``: before the K loop (warp 0 loads q and k, applies the rotary embedding, q.k of the new token, K store);
* ``b1_K_to_smx1``, ``b2_smx1_to_smx2``, ``b3_smx2_to_V``: between the loops (reductions, barriers, V store);
* ``b2t_smx1_tail``: softmax pass 1's code after its back-edge and before the sum's first ``SHFL`` (on sm_80, where
  NVRTC unrolled that loop x4, the remainder keys: per-key work, reported apart);
* ``c_epilogue``: after the V loop (the output reduction over the 16 key groups and the store);
* ``loop_K``, ``loop_V``, ``loop_softmax_exp``, ``loop_softmax_norm``: the loops themselves.

usage: python block.py BUILD_DIR NAME [--heads 32 --kv-heads 32 --hi 0 --t 1000 --seed 0 --dist normal --json out.json]
"""

from __future__ import annotations

import argparse
import json
import struct
from collections import Counter, defaultdict
from pathlib import Path

import ml_dtypes
import numpy as np
from elf import constant_banks
from loops import find
from sass import parse
from sassemu import Block, Memory

HEAD_DIM = 128
THREADS = 256
#: the regions outside the loops, in the order a warp passes them; the block's once-per-block work is their sum
OUTSIDE = ("a_prologue", "b1_K_to_smx1", "b2_smx1_to_smx2", "b2t_smx1_tail", "b3_smx2_to_V", "c_epilogue")
#: the region that follows each loop (None: before the first loop)
AFTER = {None: "a_prologue", "K": "b1_K_to_smx1", "softmax_exp": "b2_smx1_to_smx2", "softmax_norm": "b3_smx2_to_V",
         "V": "c_epilogue"}
#: where the kernel parameters start in constant bank 0
PARAMS_BASE = {80: 0x160, 90: 0x210}

# Multihead_attention_params<uint16_t, false> and the two KVLinearBuffer arguments after it: byte offsets from the
# parameter base and struct formats, laid out by the C++ rules and checked against the SASS's constant-bank reads
# (finished at 0x138, length_per_sample at 0x140, the K buffer's mSinkTokens at 0x160, cyclic window at 0x68, ...)
PARAMS = {
    "out": (0x00, "Q"), "q": (0x08, "Q"), "q_bias": (0x10, "Q"), "k": (0x18, "Q"), "k_bias": (0x20, "Q"),
    "v": (0x28, "Q"), "v_bias": (0x30, "Q"), "cache_indir": (0x38, "Q"), "stride": (0x58, "i"),
    "batch_size": (0x5C, "i"), "beam_width": (0x60, "i"), "max_attention_window_size": (0x64, "i"),
    "cyclic_attention_window_size": (0x68, "i"), "sink_token_length": (0x6C, "i"), "num_heads": (0x70, "i"),
    "num_kv_heads": (0x74, "i"), "hidden_size_per_head": (0x78, "i"), "position_embedding_type": (0x7C, "b"),
    "rotary_embedding_dim": (0x80, "i"), "rotary_embedding_base": (0x84, "f"),
    "rotary_embedding_scale_type": (0x88, "b"), "rotary_embedding_scale": (0x8C, "f"),
    "rotary_embedding_max_positions": (0x90, "i"), "position_shift_enabled": (0x94, "b"), "timestep": (0x98, "i"),
    "inv_sqrt_dh": (0x9C, "f"), "relative_attention_bias": (0xA0, "Q"), "relative_attention_bias_stride": (0xA8, "i"),
    "max_distance": (0xAC, "i"), "linear_bias_slopes": (0xB0, "Q"), "ia3_key_weights": (0xB8, "Q"),
    "ia3_value_weights": (0xC0, "Q"), "ia3_tasks": (0xC8, "Q"), "qkv_scale_quant_orig": (0xD0, "Q"),
    "attention_out_scale_orig_quant": (0xD8, "Q"), "kv_scale_orig_quant": (0xE0, "Q"),
    "kv_scale_quant_orig": (0xE8, "Q"), "int8_kv_cache": (0xF0, "b"), "fp8_kv_cache": (0xF1, "b"),
    "multi_block_mode": (0xF2, "b"), "multi_processor_count": (0xF4, "i"), "timesteps_per_block": (0xF8, "i"),
    "seq_len_tile": (0xFC, "i"), "min_seq_len_tile": (0x100, "i"), "max_seq_len_tile": (0x104, "i"),
    "partial_out": (0x108, "Q"), "partial_sum": (0x110, "Q"), "partial_max": (0x118, "Q"),
    "block_counter": (0x120, "Q"), "memory_length_per_sample": (0x128, "Q"), "max_decoder_seq_len": (0x130, "i"),
    "finished": (0x138, "Q"), "length_per_sample": (0x140, "Q"), "input_lengths": (0x148, "Q"),
}
KV_BUFFER = {
    "mMaxSeqs": (0x0, "i"), "mMaxSeqLen": (0x4, "i"), "mBytesPerSeq": (0x8, "i"), "mMaxAttentionWindow": (0xC, "i"),
    "mSinkTokens": (0x10, "i"), "mCyclicCacheLen": (0x14, "i"), "mBubbleLen": (0x18, "i"),
    "mValidRowsPerSeq": (0x1C, "i"), "mEnableOneMoreBlock": (0x20, "b"), "data": (0x28, "Q"),
}
KV_BUFFER_OFFSET, PAST_K_BUFFER_OFFSET, PARAMS_SIZE = 0x150, 0x180, 0x1B0

#: broad instruction classes of the report, each a test on (base opcode, opcode); first match wins
CLASSES = [
    ("FP32", lambda b, op: b in ("FADD", "FMUL", "FFMA", "FMNMX", "FSEL", "FSETP", "FCHK", "FRND", "DMUL")),
    ("FP16x2", lambda b, op: b in ("HADD2", "HMUL2", "HFMA2") and not op.startswith(("HADD2.F32", "HFMA2.MMA"))),
    ("conv", lambda b, op: b in ("F2FP", "F2F", "F2I", "I2F", "I2FP") or op.startswith("HADD2.F32")),
    ("MUFU", lambda b, op: b == "MUFU"),
    ("int/addr", lambda b, op: b in ("IMAD", "IADD3", "LEA", "SHF", "LOP3", "IMNMX", "SEL", "IABS", "MOV", "PRMT",
                                     "VIADD", "VIMNMX", "VIADDMNMX", "S2R", "CS2R", "P2R", "R2UR", "S2UR", "LDC")
     or op.startswith("HFMA2.MMA") or (b.startswith("U") and b != "UISETP")),
    ("pred", lambda b, op: b in ("ISETP", "PLOP3", "UISETP")),
    ("branch/ctrl", lambda b, op: b in ("BRA", "BSSY", "BSYNC", "CALL", "RET", "EXIT", "WARPSYNC", "NOP", "DEPBAR")),
    ("LDG", lambda b, op: b == "LDG"),
    ("STG", lambda b, op: b == "STG"),
    ("LDS", lambda b, op: b == "LDS"),
    ("STS", lambda b, op: b == "STS"),
    ("LDL/STL", lambda b, op: b in ("LDL", "STL")),
    ("SHFL", lambda b, op: b == "SHFL"),
    ("BAR", lambda b, op: b == "BAR"),
    ("other", lambda b, op: True),
]


def instruction_class(op: str) -> str:
    """The broad class (:data:`CLASSES`) of an opcode."""
    base = op.split(".")[0]
    return next(name for name, test in CLASSES if test(base, op))


def _put(buffer: bytearray, base: int, layout: dict[str, tuple[int, str]], values: dict) -> None:
    for field, value in values.items():
        offset, kind = layout[field]
        buffer[base + offset:base + offset + struct.calcsize("<" + kind)] = struct.pack("<" + kind, value)


def rope_neox(x: np.ndarray, t: int, base: float = 10000.0, dim: int = 128) -> np.ndarray:
    """GPT-NeoX rotary embedding of one head vector at position ``t`` (halves rotated), in fp16 as the kernel keeps it."""
    x = x.astype(np.float32)
    half = dim // 2
    i = np.arange(half, dtype=np.float32)
    angle = np.float32(t) / np.power(np.float32(base), (2 * i) / np.float32(dim)).astype(np.float32)
    cos, sin = np.cos(angle), np.sin(angle)
    x1, x2 = x[:half], x[half:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin]).astype(np.float16)


def setup(cache: str, sm: int, heads: int, kv_heads: int, hi: int, t: int, seed: int, dist: str, window: int,
          zero_new_kv: bool = False) -> tuple[Memory, np.ndarray, dict]:
    """Global memory with the inputs, constant bank 0 with the launch constants and kernel arguments, and what
    :func:`reference` needs, for one decode step of batch 1 at timestep ``t``."""
    rng = np.random.default_rng(seed)
    scale = {"normal": 1.0, "wide": 8.0, "small": 0.05}[dist]

    def data(shape: tuple[int, ...]) -> np.ndarray:
        values = rng.standard_normal(shape)
        return values.astype(np.float32) if dist == "normal" else (values * scale).astype(np.float32)

    memory = Memory()
    batch = 1
    stride = (heads + 2 * kv_heads) * HEAD_DIM
    qkv = data((batch, stride)).astype(np.float16)
    if zero_new_kv:  # the new token's k and v = 0 (the fp8 encoder's zero path)
        qkv[:, heads * HEAD_DIM:] = 0
    element_bytes = 1 if cache in ("fp8", "int8") else 2
    # kv_scale_quant_orig: an amax of 4 for N(0, 1) data (int8: 4 / 127)
    kv_scale = np.float32(4.0 / 127.0) if cache == "int8" else np.float32(4.0 / 448.0)
    kv_values = data((batch, 2, kv_heads, window, HEAD_DIM))
    if cache == "fp8":
        kv = np.clip(kv_values / kv_scale, -448, 448).astype(ml_dtypes.float8_e4m3fn)
    elif cache == "int8":  # random int8 values: N(0, 1) data quantised with that scale
        kv = np.clip(np.rint(kv_values / kv_scale), -128, 127).astype(np.int8)
    else:
        kv = kv_values.astype(np.float16)
    kv[:, :, :, t:, :] = 0
    a_qkv = memory.alloc(qkv.nbytes, "qkv", qkv)
    a_out = memory.alloc(batch * heads * HEAD_DIM * 2, "out")
    a_kv = memory.alloc(kv.nbytes, "kv", kv)
    lengths = np.array([t + 1] * batch, np.int32)
    a_lengths = memory.alloc(lengths.nbytes, "seqlen", lengths)
    input_lengths = np.array([128] * batch, np.int32)
    a_input_lengths = memory.alloc(input_lengths.nbytes, "inlen", input_lengths)
    a_orig_quant = memory.alloc(4, "kv_scale_orig_quant", np.array([1 / kv_scale], np.float32))
    a_quant_orig = memory.alloc(4, "kv_scale_quant_orig", np.array([kv_scale], np.float32))
    fp8 = cache == "fp8"
    quant = cache in ("fp8", "int8")
    base = PARAMS_BASE[sm]
    bank = bytearray(base + PARAMS_SIZE + 0x40)
    # what the driver puts in front of the parameters: blockDim, gridDim and the local-memory stack top
    bank[0x0:0xC] = struct.pack("<3I", THREADS, 1, 1)
    bank[0xC:0x18] = struct.pack("<3I", heads, batch, 1)
    bank[0x28:0x2C] = struct.pack("<I", 0x1000)
    params = dict(
        out=a_out, q=a_qkv, q_bias=0, k=a_qkv + heads * HEAD_DIM * 2, k_bias=0,
        v=a_qkv + (heads + kv_heads) * HEAD_DIM * 2, v_bias=0, cache_indir=0, stride=stride, batch_size=batch,
        beam_width=1, max_attention_window_size=window, cyclic_attention_window_size=window, sink_token_length=0,
        num_heads=heads, num_kv_heads=kv_heads, hidden_size_per_head=HEAD_DIM, position_embedding_type=2,
        rotary_embedding_dim=128, rotary_embedding_base=10000.0, rotary_embedding_scale_type=0,
        rotary_embedding_scale=1.0, rotary_embedding_max_positions=4096, position_shift_enabled=0, timestep=t,
        inv_sqrt_dh=float(np.float32(1 / np.sqrt(128.0))), relative_attention_bias=0, relative_attention_bias_stride=0,
        max_distance=0, linear_bias_slopes=0, ia3_key_weights=0, ia3_value_weights=0, ia3_tasks=0,
        qkv_scale_quant_orig=0, attention_out_scale_orig_quant=0, kv_scale_orig_quant=a_orig_quant if quant else 0,
        kv_scale_quant_orig=a_quant_orig if quant else 0, int8_kv_cache=int(cache == "int8"), fp8_kv_cache=int(fp8),
        multi_block_mode=0,
        multi_processor_count=108, timesteps_per_block=0, seq_len_tile=0, min_seq_len_tile=0, max_seq_len_tile=0,
        partial_out=0, partial_sum=0, partial_max=0, block_counter=0, memory_length_per_sample=0,
        max_decoder_seq_len=0, finished=0, length_per_sample=a_lengths, input_lengths=a_input_lengths)
    _put(bank, base, PARAMS, params)
    bytes_per_token = kv_heads * HEAD_DIM * element_bytes
    buffer = dict(mMaxSeqs=batch, mMaxSeqLen=window, mBytesPerSeq=window * bytes_per_token,
                  mMaxAttentionWindow=window, mSinkTokens=0, mCyclicCacheLen=window, mBubbleLen=0, mValidRowsPerSeq=2,
                  mEnableOneMoreBlock=0, data=a_kv)
    _put(bank, base + KV_BUFFER_OFFSET, KV_BUFFER, buffer)
    _put(bank, base + PAST_K_BUFFER_OFFSET, KV_BUFFER, buffer)  # pastKCache is the same buffer (no position shift)
    ref = dict(qkv=qkv, kv=kv, kv_scale=kv_scale, a_out=a_out, a_kv=a_kv, heads=heads, kv_heads=kv_heads, hi=hi, t=t,
               cache=cache)
    return memory, np.frombuffer(bytes(bank), np.uint8).copy(), ref


def reference(ref: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """A numpy model of the kernel source for this case: the output row of head ``hi``, the new K and V rows as the
    cache stores them, and the KV head. For fp8 the kernel scales Q by the KV scale and P by it (not K and V)."""
    qkv, kv, t, hi = ref["qkv"], ref["kv"], ref["t"], ref["hi"]
    heads, kv_heads = ref["heads"], ref["kv_heads"]
    hk = hi // (heads // kv_heads)
    q = rope_neox(qkv[0, hi * HEAD_DIM:(hi + 1) * HEAD_DIM], t).astype(np.float32)
    k = rope_neox(qkv[0, (heads + hk) * HEAD_DIM:(heads + hk + 1) * HEAD_DIM], t).astype(np.float32)
    v = qkv[0, (heads + kv_heads + hk) * HEAD_DIM:(heads + kv_heads + hk + 1) * HEAD_DIM].astype(np.float32)
    keys, values = kv[0, 0, hk, :t].astype(np.float32), kv[0, 1, hk, :t].astype(np.float32)
    fp8 = ref["cache"] == "fp8"
    scale = ref["kv_scale"] if fp8 else np.float32(1)
    inv_sqrt_dh = np.float32(1 / np.sqrt(128.0))
    scores = np.concatenate([(keys @ (q * scale)) * inv_sqrt_dh, [np.dot(q, k) * inv_sqrt_dh]])
    p = np.exp(scores - scores.max())
    p = p / p.sum() * scale
    if ref["cache"] == "int8":  # int8: K and V dequantised per element (scale_dot, Logit_value_fma), P unscaled
        keys, values = keys * ref["kv_scale"], values * ref["kv_scale"]
        scores = np.concatenate([(keys @ q) * inv_sqrt_dh, [np.dot(q, k) * inv_sqrt_dh]])
        p = np.exp(scores - scores.max())
        p = p / p.sum()
    out = p[:t] @ values + p[t] * v
    if ref["cache"] == "int8":  # store_8bits_kv_cache_vec: cvt.rni.sat.s8.f32(x * kv_scale_orig_quant)
        inv = np.float32(1 / ref["kv_scale"])
        k_new = np.clip(np.rint(k * inv), -128, 127).astype(np.int8)
        v_new = np.clip(np.rint(v * inv), -128, 127).astype(np.int8)
    elif fp8:
        k_new = np.clip(k / scale, -448, 448).astype(ml_dtypes.float8_e4m3fn)
        v_new = np.clip(v / scale, -448, 448).astype(ml_dtypes.float8_e4m3fn)
    else:
        k_new, v_new = k.astype(np.float16), v.astype(np.float16)
    return out, k_new, v_new, hk


def _loop_of(address: int, loops: dict[str, tuple[int, int]]) -> str | None:
    return next((name for name, (start, end) in loops.items() if start <= address <= end), None)


def emulate(build: str | Path, name: str, heads: int = 32, kv_heads: int = 32, hi: int = 0, t: int = 1000,
            seed: int = 0, dist: str = "normal", window: int = 2048, zero_new_kv: bool = False) -> dict:
    """Emulate block ``hi`` of the cubin ``build/name.cubin`` (listing ``name.nvdisasm.sass``) and return its checks
    and its issued warp-instructions per warp, by region and class (see the module docstring)."""
    build = Path(build)
    cache = "fp8" if "fp8" in name else "int8" if "int8" in name else "fp16"
    sm = 90 if "sm90" in name else 80
    instructions, labels = parse(build / f"{name}.nvdisasm.sass")
    loops = find(instructions, labels)
    memory, bank0, ref = setup(cache, sm, heads, kv_heads, hi, t, seed, dist, window, zero_new_kv)
    banks = {k: np.frombuffer(v, np.uint8) for k, v in constant_banks(build / f"{name}.cubin").items()}
    block = Block(instructions, labels, bank0, banks, memory, (hi, 0, 0))
    block.run()

    # the checks against the model of the source
    out_ref, k_new, v_new, hk = reference(ref)
    out = memory.view(ref["a_out"] + hi * HEAD_DIM * 2, np.float16, HEAD_DIM).astype(np.float32)
    stored = memory.view(ref["a_kv"], np.uint8, ref["kv"].nbytes)
    stored = stored.view(ml_dtypes.float8_e4m3fn if cache == "fp8" else np.int8 if cache == "int8"
                         else np.float16).reshape(ref["kv"].shape)
    writer = hi == hk * (heads // kv_heads)  # the first query head of its group writes the new K and V
    k_row, v_row = stored[0, 0, hk, t].astype(np.float32), stored[0, 1, hk, t].astype(np.float32)
    checks = {"err_out": float(np.max(np.abs(out - out_ref)) / (np.max(np.abs(out_ref)) + 1e-9))}
    if writer:
        k_ref, v_ref = k_new.astype(np.float32), v_new.astype(np.float32)
        checks.update(kcache_exact=int(np.sum(k_row == k_ref)), vcache_exact=int(np.sum(v_row == v_ref)),
                      kcache_maxdiff=float(np.max(np.abs(k_row - k_ref))),
                      vcache_maxdiff=float(np.max(np.abs(v_row - v_ref))))
    elif np.any(k_row) or np.any(v_row):
        raise AssertionError("a block that is not its group's first wrote the KV cache")

    # softmax pass 1's code after its back-edge, up to the first SHFL of the sum's reduction
    exp_end = loops["softmax_exp"][1]
    tail_end = next(ins.addr for ins in block.insts if ins.addr > exp_end and ins.base == "SHFL")
    tail = (exp_end + 0x10, tail_end - 0x10)
    warps = []
    for warp in block.warps:
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        guard_false: dict[str, Counter[str]] = defaultdict(Counter)
        iterations: Counter[str] = Counter()
        region = None  # the last loop the warp was in
        for index, _active, guarded in warp.issues:
            ins = block.insts[index]
            loop = _loop_of(ins.addr, loops)
            if loop is not None:
                region, key = loop, "loop_" + loop
                if ins.addr == loops[loop][1]:
                    iterations[loop] += 1
            else:
                key = AFTER[region]
                if key == "b2_smx1_to_smx2" and tail[0] <= ins.addr <= tail[1]:
                    key = "b2t_smx1_tail"
            counts[key][instruction_class(ins.op)] += 1
            if guarded == 0:  # issued with the guard false in every lane
                guard_false[key][instruction_class(ins.op)] += 1
        warps.append({"wid": warp.wid, "counts": {k: dict(v) for k, v in counts.items()},
                      "total": {k: sum(v.values()) for k, v in counts.items()}, "loop_backedges": dict(iterations),
                      "predicated_off": {k: dict(v) for k, v in guard_false.items()}})
    return {"build": str(build), "name": name, "heads": heads, "kv_heads": kv_heads, "hi": hi, "t": t, "seed": seed,
            "dist": dist, "writer": bool(writer), "barriers": block.barriers, **checks,
            "loops": {k: [hex(v[0]), hex(v[1])] for k, v in loops.items()}, "smx1_tail": [hex(tail[0]), hex(tail[1])],
            "warps": warps}


def region_totals(result: dict) -> dict[str, int]:
    """The block's issued warp-instructions per region outside the loops (summed over its warps), and their sum
    as ``block``."""
    totals = {region: sum(w["total"].get(region, 0) for w in result["warps"]) for region in OUTSIDE}
    totals["block"] = sum(totals.values())
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build", help="directory with NAME.cubin and NAME.nvdisasm.sass")
    parser.add_argument("name", help="e.g. mmha_fp16_mbfalse_sm80")
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=32)
    parser.add_argument("--hi", type=int, default=0, help="the query head (block) to emulate")
    parser.add_argument("--t", type=int, default=1000, help="timestep (keys in the cache)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dist", default="normal", choices=("normal", "wide", "small"), help="data x1, x8, x0.05")
    parser.add_argument("--window", type=int, default=2048, help="KV-cache length")
    parser.add_argument("--zero-new-kv", action="store_true", help="the new token's k and v are 0")
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()
    result = emulate(args.build, args.name, args.heads, args.kv_heads, args.hi, args.t, args.seed, args.dist,
                     args.window, args.zero_new_kv)
    totals = region_totals(result)
    print(f"{args.name} heads={args.heads}/{args.kv_heads} hi={args.hi} t={args.t} dist={args.dist}: "
          f"barriers={result['barriers']} out rel.err={result['err_out']:.2e} "
          f"new K/V exact {result.get('kcache_exact')}/{result.get('vcache_exact')} of {HEAD_DIM}")
    print("  " + " ".join(f"{k}={v}" for k, v in totals.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
