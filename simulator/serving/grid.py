"""Shape padding for the iteration-cost cache: how many distinct shapes get lowered and run.

A serving run meets thousands of distinct token counts; each distinct shape costs one ONNX shape binding (about
0.5 s for Llama-2-7B). Shapes are therefore padded *up* to a grid with ``per_octave`` points per power of two
(exact up to ``2 * per_octave``), the way serving stacks pad batches to captured shapes (vLLM pads decode batches to
its CUDA-graph sizes 1, 2, 4, 8, 16, 24, ...). Padding only ever rounds up, so costs are conservative: the most a
shape is padded is ``1 / per_octave`` of its size (12.5% at the default 8, at sizes just above a power of two).
``per_octave = 0`` disables padding (every shape exact).
"""

from __future__ import annotations

import math


def pad(x: int, per_octave: int) -> int:
    """``x`` rounded up to the next grid point (``x`` itself when ``per_octave`` is 0 or ``x`` is small)."""
    if per_octave <= 0 or x <= 2 * per_octave:
        return x
    step = (1 << (int(math.log2(x)))) // per_octave
    return -(-x // step) * step


def pad_to_block(x: int, block: int) -> int:
    """``x`` rounded up to a whole number of KV blocks (a paged attention kernel reads whole blocks)."""
    return -(-x // block) * block if x > 0 else 0


def pad_down(x: int, per_octave: int) -> int:
    """``x`` rounded down to the previous grid point (``x`` itself when exact), never below 0."""
    if per_octave <= 0 or x <= 2 * per_octave:
        return max(0, x)
    step = (1 << (int(math.log2(x)))) // per_octave
    return x // step * step
