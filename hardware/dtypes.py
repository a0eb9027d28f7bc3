"""Numeric formats and their storage sizes.

Sizes are bits per element; bytes of a tensor are ``ceil(elements * bits / 8)`` so that packed int4 counts
half a byte per element. Names follow ONNX's TensorProto data types where one exists.
"""

from __future__ import annotations

import math

from hardware.errors import HwsimError

#: Bits per element of every format hwsim knows.
BITS: dict[str, int] = {
    "float64": 64,
    "float32": 32,
    "tf32": 32,  # stored as fp32; tensor cores read 19 significant bits
    "float16": 16,
    "bfloat16": 16,
    "float8e4m3": 8,
    "float8e5m2": 8,
    "int64": 64,
    "int32": 32,
    "int16": 16,
    "int8": 8,
    "uint8": 8,
    "int4": 4,
    "uint4": 4,
    "float4e2m1": 4,
    # BitNet b1.58 ternary weights {-1, 0, +1}: log2(3) = 1.58 bits of information, stored 2 bits a weight (four a
    # byte, the I2 packing of bitnet.cpp / BitBLAS); see TERNARY_INFO_BITS
    "ternary": 2,
    "bool": 8,
    "string": 0,
}

#: Short names accepted on the command line for precision overrides.
PRECISION_ALIASES: dict[str, str] = {
    "fp64": "float64",
    "fp32": "float32",
    "tf32": "tf32",
    "fp16": "float16",
    "half": "float16",
    "bf16": "bfloat16",
    "fp8": "float8e4m3",
    "fp8e4m3": "float8e4m3",
    "fp8e5m2": "float8e5m2",
    "int8": "int8",
    "int4": "int4",
    "fp4": "float4e2m1",
    "fp4e2m1": "float4e2m1",
    "ternary": "ternary",
    "bitnet": "ternary",
    "w1.58": "ternary",
}

#: Formats a user may choose for weights, activations or the KV cache.
OVERRIDABLE = ("float32", "float16", "bfloat16", "float8e4m3", "float8e5m2", "int8", "int4", "float4e2m1", "ternary")
#: Formats that only weights can take (BitNet b1.58: ternary weights with int8 activations, Ma et al. 2024,
#: arXiv 2402.17764 section 2).
WEIGHT_ONLY = ("ternary",)
#: Information content of a ternary weight (log2 3); storage is BITS["ternary"] = 2 (packed four a byte).
TERNARY_INFO_BITS = math.log2(3)

#: ONNX ``TensorProto.DataType`` numbers (fixed by the ONNX standard, onnx/onnx.proto) -> our names. Kept as
#: numbers so that this ground-floor module does not depend on the onnx package.
_ONNX_TO_NAME: dict[int, str] = {
    1: "float32",      # FLOAT
    2: "uint8",        # UINT8
    3: "int8",         # INT8
    4: "int16",        # UINT16
    5: "int16",        # INT16
    6: "int32",        # INT32
    7: "int64",        # INT64
    8: "string",       # STRING
    9: "bool",         # BOOL
    10: "float16",     # FLOAT16
    11: "float64",     # DOUBLE
    12: "int32",       # UINT32
    13: "int64",       # UINT64
    16: "bfloat16",    # BFLOAT16
    17: "float8e4m3",  # FLOAT8E4M3FN
    18: "float8e4m3",  # FLOAT8E4M3FNUZ
    19: "float8e5m2",  # FLOAT8E5M2
    20: "float8e5m2",  # FLOAT8E5M2FNUZ
    21: "uint4",       # UINT4
    22: "int4",        # INT4
    23: "float4e2m1",  # FLOAT4E2M1
}


def from_onnx(elem_type: int) -> str:
    """Our name for an ONNX ``TensorProto`` element type (``float32`` for unknown/undefined)."""
    return _ONNX_TO_NAME.get(elem_type, "float32")


def is_float(dtype: str) -> bool:
    """True for floating-point formats (the ones precision overrides apply to)."""
    return dtype.startswith(("float", "bfloat", "tf32"))


def parse_precision(text: str, field: str) -> str:
    """Resolve a user-given precision (``fp16``, ``bf16``, ``int4``, ``float32``...) or raise naming ``field``."""
    key = text.strip().lower()
    name = PRECISION_ALIASES.get(key, key)
    if name not in OVERRIDABLE:
        choices = ", ".join(sorted(set(PRECISION_ALIASES) - {"half", "fp64", "tf32", "fp4e2m1", "bitnet", "w1.58"}))
        raise HwsimError(f"{field}: unknown precision '{text}'; choose one of {choices}")
    if name in WEIGHT_ONLY and field not in ("--weights", "weights"):
        raise HwsimError(f"{field} {text}: ternary is a weight-only format (BitNet b1.58 runs ternary weights with int8 "
                         "activations); use --weights ternary --activations int8")
    return name


def is_int(dtype: str) -> bool:
    """True for integer formats (ternary weights count as integers: -1, 0, +1)."""
    return dtype.startswith(("int", "uint")) or dtype == "ternary"


def tensor_bytes(elements: int, dtype: str) -> int:
    """Storage bytes of ``elements`` values of ``dtype`` (sub-byte formats packed)."""
    return math.ceil(elements * BITS[dtype] / 8)
