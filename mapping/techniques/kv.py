"""KV-cache techniques: quantised KV with per-group scales, eviction budgets and paged layouts (bytes only).

- Quantised KV (KIVI, Liu et al. 2024, sec. 3-4): each group of ``group`` values stores a scale and a zero point
  (``scale_bytes`` together: 2 fp16 values = 4 bytes, asymmetric as KIVI's); the ``residual`` most recent tokens
  stay in the full format until a group fills (KIVI's R, 128 in its experiments).
- Eviction (StreamingLLM's sinks + window, H2O's heavy-hitter budget, Mistral's rolling buffer): the cache holds at
  most ``budget`` tokens per sequence.
- Paged layout (vLLM, Kwon et al. 2023): a sequence's cache is allocated in blocks of ``block`` tokens, so its
  last block is partly empty: fragmentation bytes = (ceil(n / block) x block - n) x bytes per token.
"""

from __future__ import annotations

import math

from hardware.dtypes import BITS


def quant_bytes_per_value(dtype: str, group: int, scale_bytes: float = 4.0) -> float:
    """Bytes per KV value of format ``dtype`` with one ``scale_bytes`` scale/zero pair per ``group`` values."""
    bits = BITS.get(dtype) or 16
    return bits / 8.0 + (scale_bytes / group if group > 0 else 0.0)


def kv_factor(dtype: str, tokens: int, group: int = 0, residual: int = 0, full_dtype: str = "float16",
              scale_bytes: float = 4.0) -> float:
    """Bytes of ``tokens`` cached tokens with scales and a full-format residual, over their bytes at ``dtype``
    without scales (1.0 when nothing applies)."""
    bits = BITS.get(dtype) or 16
    if tokens <= 0 or (group <= 0 and residual <= 0):
        return 1.0
    plain = bits / 8.0
    r = min(residual, tokens)
    full = (BITS.get(full_dtype) or 16) / 8.0
    per = ((tokens - r) * quant_bytes_per_value(dtype, group, scale_bytes) + r * full) / tokens
    return per / plain


def resident_tokens(tokens: int, budget: int = 0, block: int = 0) -> int:
    """Token slots a sequence's cache occupies: at most ``budget`` tokens kept, rounded up to ``block``-token pages."""
    n = min(tokens, budget) if budget > 0 else tokens
    if block > 0:
        n = math.ceil(n / block) * block
    return n
