"""Attention patterns: how many keys a query reads under a sliding window, attention sinks, a heavy-hitter budget
or block sparsity, and the re-costing of a prefill's attention core to that many keys.

- Sliding window ``W`` (Mistral 7B, Jiang et al. 2023, sec. 2): the query at position ``i`` attends to keys
  ``(i - W, i]``; ``sinks`` ``S`` (StreamingLLM, Xiao et al. 2024) also keeps the first ``S`` positions.
- Heavy hitters ``B`` (H2O, Zhang et al. 2023): a decode step attends to the ``B`` cached tokens kept; the prompt is
  processed densely (the scores choose the heavy hitters).
- Block-sparse density ``d`` over blocks of ``sparse_block`` keys (BigBird/local+global block patterns, Zaheer et
  al. 2020): a query reads ``ceil(d x blocks)`` blocks, at least one.

Not modelled: H2O's running sum of attention scores per cached token (``heads x B`` values a step, under 2% of the
K/V bytes it reads at head size 128) and the block index lookups of a block-sparse kernel.

A decode step under a pattern is costed as a dense step over the keys it reads (:func:`decode_keys`); a prefill's
score, softmax and PV ops are scaled to the mean keys per query (:func:`prefill_keys`, :func:`scale_core`), which a
target then runs as a non-causal attention over that many keys (a windowed kernel skips the masked blocks).
"""

from __future__ import annotations

import dataclasses
import math

from mapping.op_costs import MatmulDims, OpCost


def decode_keys(keys: int, window: int = 0, sinks: int = 0, budget: int = 0, density: float = 1.0,
                block: int = 64) -> int:
    """Keys one query reads when ``keys`` positions (the new one included) exist (>= 1, <= ``keys``)."""
    n = keys
    if window > 0:
        n = min(n, window + min(sinks, max(0, keys - window)))
    if budget > 0:
        n = min(n, budget)
    if density < 1.0:
        blocks = math.ceil(n / block)
        n = min(n, max(1, math.ceil(density * blocks)) * block)
    return max(1, n)


def prefill_keys(length: int, window: int = 0, sinks: int = 0, density: float = 1.0, block: int = 64) -> float:
    """Mean keys per query of a causal prefill of ``length`` tokens under the pattern (``length`` when no pattern
    applies: the graph's dense cost stands)."""
    if (window <= 0 or window >= length) and density >= 1.0:
        return float(length)
    if 0 < window < length:
        # queries 0..W-1 see i + 1 keys; later ones W (+ up to S sinks outside the window)
        total = window * (window + 1) / 2.0 + (length - window) * window
        total += sum(min(sinks, i + 1 - window) for i in range(window, length)) if sinks else 0.0
    else:
        total = length * (length + 1) / 2.0
    mean = total / length
    if density < 1.0:
        mean = min(mean, max(block, density * mean))
    return mean


def scale_core(op: OpCost, keys_from: int, keys_to: float) -> OpCost:
    """``op`` (a score, softmax/mask or PV op of an attention core over ``keys_from`` keys) over ``keys_to`` keys.

    Score: ``n`` keys, its K read and score write scale, the Q read stays; PV: ``k`` keys, its reads scale;
    anything between (mask, scale, softmax) scales as a whole.
    """
    if keys_from <= 0 or keys_to >= keys_from:
        return op
    f = keys_to / keys_from
    mm = op.matmul
    new = dataclasses.replace(op, flops=op.flops * f, kv_read_bytes=int(op.kv_read_bytes * f))
    if op.role == "score" and mm is not None:
        new.matmul = MatmulDims(mm.batch, mm.m, mm.k, max(1, round(mm.n * f)), mm.weight_operand, mm.a_dtype, mm.b_dtype)
        new.act_read_bytes = int(op.act_read_bytes * (1 + f) / 2)  # Q and K of equal size in a prefill
        new.act_write_bytes = int(op.act_write_bytes * f)
    elif op.role == "pv" and mm is not None:
        new.matmul = MatmulDims(mm.batch, mm.m, max(1, round(mm.k * f)), mm.n, mm.weight_operand, mm.a_dtype, mm.b_dtype)
        new.act_read_bytes = int(op.act_read_bytes * f)
    else:
        new.act_read_bytes = int(op.act_read_bytes * f)
        new.act_write_bytes = int(op.act_write_bytes * f)
    new.note = (op.note + "; " if op.note else "") + f"attention pattern: {keys_to:.1f} of {keys_from} keys per query"
    return new
