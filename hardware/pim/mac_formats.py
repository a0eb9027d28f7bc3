"""What a bank's MAC unit can multiply, by format: AiM as built (bf16 only) and two design variants.

SK hynix's GDDR6-AiM puts 16 bf16 multipliers and an adder tree next to each bank; one MAC command multiplies one
256-bit column of the open row (16 bf16 weights) by 16 bf16 values of the global buffer and accumulates (Lee et
al., ISSCC 2022, "A 1ynm 1.25V 8Gb 16Gb/s/pin GDDR6-based Accelerator-in-Memory supporting 1TFLOPS MAC
operation and various activation functions for deep-learning applications"). It has no integer mode and no
dequantisation unit: weights stored int8, int4 or ternary cannot reach its multipliers without being converted
first, and the banks have nothing that converts them. So on the ``bf16`` unit every product must have 2-byte
float operands (weights, KV cache and activations), and hwsim refuses anything else.

Variants (``--set mac_format=...``; design studies, not a built part):

- ``int8``: the same 256-bit column feeds 32 int8 lanes (the datapath split into narrower multipliers, as SIMD
  int8 does); products of int8 activations with int8 weights (or int4 weights, unpacked into int8 lanes: half the
  storage, the same 32 lanes) run in int8 mode, 2-byte floats still in bf16 mode (16 lanes).
- ``ternary``: BitNet b1.58 weights {-1, 0, +1} stored 2 bits each: a 256-bit column holds 128 of them, and each
  lane adds, subtracts or skips its activation (no multiplier; Ma et al. 2024, arXiv 2402.17764: "matrix
  multiplication of BitNet only involves integer addition"); 2-byte floats still in bf16 mode.

Lane counts beyond AiM's are assumptions of those designs (one column per command, every bit of it used). A MAC
command's energy is the preset's ``energy.mac_all_bank`` whatever the mode (the column read dominates; assumption).
"""

from __future__ import annotations

from hardware.errors import HwsimError

#: MAC-unit designs and the modes each supports: mode -> bits of a weight-side operand that one lane consumes.
VARIANTS: dict[str, tuple[str, ...]] = {"bf16": ("bf16",), "int8": ("bf16", "int8"), "ternary": ("bf16", "ternary")}
#: Bits of the weight-side operand per lane in each mode (the column's 256 bits / this = lanes per command).
MODE_BITS = {"bf16": 16, "int8": 8, "ternary": 2}
_FLOAT16 = ("bfloat16", "float16")


def mode_for(variant: str, weight: str, activation: str) -> str | None:
    """The mode a ``variant`` unit multiplies a ``weight``-side operand (a weight or a KV-cache value) by an
    ``activation`` in, or None if it cannot."""
    modes = VARIANTS[variant]
    if weight in _FLOAT16 and activation in _FLOAT16:
        return "bf16"
    if "int8" in modes and weight in ("int8", "int4") and activation == "int8":
        return "int8"
    if "ternary" in modes and weight == "ternary" and activation in (*_FLOAT16, "int8"):
        return "ternary"
    return None


def lanes(mode: str, column_bytes: int, bf16_lanes: int) -> int:
    """Products one MAC command completes per bank in ``mode``: the preset's lanes in bf16, else a full column."""
    if mode == "bf16":
        return bf16_lanes
    return column_bytes * 8 // MODE_BITS[mode]


def check(variant: str, name: str, weights: str, activations: str, kv_cache: str) -> None:
    """Refuse formats the ``variant`` MAC unit of target ``name`` cannot multiply, naming the flag and the way out."""
    for flag, fmt in (("--weights", weights), ("--kv-cache", kv_cache)):
        if mode_for(variant, fmt, activations) is not None:
            continue
        if variant == "bf16":
            fix = ("use bf16 or fp16, or a MAC-unit variant: --set mac_format=int8 (int8 activations with int8/int4 "
                   "weights) or --set mac_format=ternary (ternary weights, adders only)")
            raise HwsimError(f"{flag} {fmt}: {name}'s bank MACs compute in bfloat16 only (SK hynix AiM: 16 bf16 "
                             f"multipliers per bank, no dequantisation unit), so {fmt} values with {activations} "
                             f"activations cannot be multiplied in the banks; {fix}")
        allowed = {"int8": "int8 or int4 with --activations int8", "ternary": "ternary with bf16/fp16/int8 activations"}
        raise HwsimError(f"{flag} {fmt}: the mac_format={variant} bank MACs multiply 2-byte floats, or "
                         f"{allowed[variant]}; {fmt} with {activations} activations is neither")
