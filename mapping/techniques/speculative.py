"""Speculative decoding: expected tokens per iteration and the extra heads of Medusa-style self-speculation.

A draft (a small model, or ``K`` extra decoding heads on the target) proposes ``K`` tokens; the target verifies
them in one pass over ``K + 1`` tokens and keeps the longest accepted prefix plus one token of its own. With an
acceptance rate ``A`` per token, independent of position, the expected tokens per iteration are
``(1 - A ** (K + 1)) / (1 - A)`` (Leviathan, Kalman and Matias, ICML 2023, eq. 1). With a rate per position
``a_1 .. a_K`` (the probability that token ``i`` is accepted once tokens ``1 .. i-1`` were) it is
``1 + sum_i prod_{j <= i} a_j``, which equals the closed form when all ``a_i = A``.

Medusa heads (Cai et al., ICML 2024, sec. 2.1.1): head ``k`` is one residual block (a ``d x d`` linear and SiLU)
and its own ``d x vocab`` output layer, run on the hidden states of the verification pass.
"""

from __future__ import annotations

import dataclasses

from hardware.errors import HwsimError
from mapping.op_costs import MatmulDims, OpCost
from mapping.op_table import OP


def expected_tokens(k: int, acceptance: float | list[float]) -> float:
    """Expected tokens one iteration (``k`` drafted, one verification) produces."""
    rates = acceptance_list(k, acceptance)
    total, run = 1.0, 1.0
    for a in rates:
        run *= a
        total += run
    return total


def leviathan(k: int, a: float) -> float:
    """Leviathan et al.'s closed form ``(1 - a^(k+1)) / (1 - a)`` (``k + 1`` at ``a = 1``)."""
    return float(k + 1) if a >= 1.0 else (1.0 - a ** (k + 1)) / (1.0 - a)


def acceptance_list(k: int, acceptance: float | list[float]) -> list[float]:
    """Per-position acceptance rates (``k`` of them) from one rate or a list (a shorter list repeats its last)."""
    rates = [float(acceptance)] * k if isinstance(acceptance, (int, float)) else [float(a) for a in acceptance]
    if not rates and k:
        raise HwsimError("--acceptance: give one rate or a comma-separated list, e.g. 0.8 or 0.9,0.8,0.7")
    for a in rates:
        if not 0.0 <= a <= 1.0:
            raise HwsimError(f"--acceptance {a}: an acceptance rate is a probability between 0 and 1")
    if len(rates) > k:
        raise HwsimError(f"--acceptance: {len(rates)} rates for --spec-tokens {k}; give at most one per drafted token")
    return rates + [rates[-1]] * (k - len(rates)) if rates else []


def medusa_heads(lm_head: OpCost, heads: int, d_model: int) -> list[OpCost]:
    """The ops of ``heads`` Medusa heads, shaped after the verification pass's ``lm_head`` matmul."""
    mm = lm_head.matmul
    if mm is None:
        raise HwsimError("--spec-heads: the model's lm_head is not a matrix product; Medusa heads need one")
    rows = mm.batch * mm.m
    w_elem = lm_head.weight_bytes / max(1, mm.k * mm.n)
    a_elem = lm_head.act_write_bytes / max(1, rows * mm.n)
    out: list[OpCost] = []
    for h in range(heads):
        block = f"medusa_head.{h}"
        res = OpCost(f"{block}/resblock", OP.MatMul, "matmul", 2.0 * rows * d_model * d_model + 5.0 * rows * d_model,
                     int(d_model * d_model * w_elem), int(rows * d_model * a_elem), int(rows * d_model * a_elem),
                     matmul=MatmulDims(1, rows, d_model, d_model, True, mm.a_dtype, mm.b_dtype), block=block,
                     block_kind="lm_head", role="medusa", inputs=lm_head.inputs, outputs=(f"{block}#h",))
        head = dataclasses.replace(lm_head, name=f"{block}/lm_head", block=block, role="medusa",
                                   inputs=(f"{block}#h",), outputs=(f"{block}#logits",), note="Medusa head")
        out += [res, head]
    return out
