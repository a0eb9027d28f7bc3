"""AiM instruction programs for the kernels a transformer maps to GDDR6-AiM, after CENT's layouts.

CENT (Gu et al., ASPLOS 2025; Yufeng98/CENT ``cent_simulation/TransformerBlock.py`` ``*_only_trace``) lays
weights and the KV cache out in the banks and issues, per kernel:

- **VMM** ``y = x . W`` (``k x n``, weights): each bank holds whole output columns, ``ceil(k / 1024)`` rows per
  column (a 2 KB row = 1024 bf16). Per 1024-element chunk of ``x``: one ``WR_GB`` (the chunk broadcast into every
  channel's global buffer), then per output held by a bank ``WR_BIAS`` (zero / partial sum into the MAC register),
  ``MAC_ABK`` over the row (opsize = chunk / 16) and ``RD_MAC`` (16 results per channel). Order ``reuse-gb``
  (CENT's default, ``--GEMV reuse-GB --reuse-size 32``) groups up to ``reuse`` outputs: their WR_BIAS, then their
  MAC_ABKs, then their RD_MACs, so the mode switches (TMOD) are paid per group, not per output.
- **Scores** ``q . K^T``: a bank holds one token's keys for every KV head along a row (``head_dim x kv_heads``
  elements, ``ceil(/1024)`` rows); the query (per GQA repeat) goes to the global buffer; per head in a row
  ``WR_BIAS, MAC_ABK (head_dim / 16), RD_MAC`` gives that head's score for 16 tokens per channel. Tokens are
  spread over all banks: ``ceil(context / banks)`` token iterations.
- **Context** ``p . V``: V is stored transposed (a bank holds one head-dimension element of one head for 1024
  tokens per row); the scores go to the global buffer per 1024 tokens, then ``head_dim / 16`` passes of
  ``WR_BIAS, MAC_ABK, RD_MAC`` per KV head held by the channel.

Row numbers only need to be distinct per weight column so that every MAC_ABK opens its own row, as CENT's do.
"""

from __future__ import annotations

import math

from hardware.pim.isr import ISRS, Isr, mask_of

ROW_ELEMS = 1024  # bf16 elements per 2 KB row
LANES = 16  # bf16 elements per 256-bit column


def vmm(k: int, n: int, channels: list[int] | range, order: str = "reuse-gb", reuse: int = 32, banks: int = 16,
        base_row: int = 0, row_elems: int = ROW_ELEMS, lanes: int = LANES) -> list[Isr]:
    """One vector times a ``k x n`` weight matrix spread over ``channels`` (CENT's weight VMM). ``row_elems``: the
    elements one global-buffer load holds (a row, or less with a smaller buffer); ``lanes``: elements per MAC."""
    if order not in ("reuse-gb", "no-reuse"):
        raise ValueError(f"order must be 'reuse-gb' or 'no-reuse', not {order!r}")
    mask = mask_of(channels)
    per_bank = math.ceil(n / (banks * len(channels)))
    chunks = math.ceil(k / row_elems)
    out: list[Isr] = []
    for r in range(chunks):
        opsize = math.ceil((k - row_elems * r) / lanes) if r == chunks - 1 else math.ceil(row_elems / lanes)
        out.append(Isr("WR_GB", opsize=opsize, mask=mask))
        if order == "no-reuse":
            for j in range(per_bank):
                out += [Isr("WR_BIAS", mask=mask), Isr("MAC_ABK", opsize=opsize, mask=mask, row=base_row + j * chunks + r),
                        Isr("RD_MAC", mask=mask)]
            continue
        groups = math.ceil(per_bank / reuse)
        size = math.ceil(per_bank / groups)
        for g in range(groups):
            members = range(g * size, min(per_bank, (g + 1) * size))
            out += [Isr("WR_BIAS", mask=mask) for _ in members]
            out += [Isr("MAC_ABK", opsize=opsize, mask=mask, row=base_row + j * chunks + r) for j in members]
            out += [Isr("RD_MAC", mask=mask) for _ in members]
    return out


def scores(context: int, head_dim: int, kv_heads: int, repeat: int, channels: list[int] | range, banks: int = 16,
           base_row: int = 0) -> list[Isr]:
    """``q . K^T`` of every head against ``context`` cached keys (CENT Vector_Matrix_Mul_score_pim_only_trace)."""
    mask = mask_of(channels)
    rows = math.ceil(head_dim * kv_heads / ROW_ELEMS)
    heads_per_row = max(1, ROW_ELEMS // head_dim)
    mac = math.ceil(head_dim / LANES)
    iterations = math.ceil(context / (banks * len(channels)))
    out: list[Isr] = []
    for r in range(rows):
        for it in range(iterations):
            for _ in range(repeat):
                out.append(Isr("WR_GB", opsize=ROW_ELEMS // LANES, mask=mask))
                for _ in range(heads_per_row):
                    out += [Isr("WR_BIAS", mask=mask), Isr("MAC_ABK", opsize=mac, mask=mask, row=base_row + it * rows + r),
                            Isr("RD_MAC", mask=mask)]
    return out


def context(context_len: int, head_dim: int, kv_heads: int, repeat: int, channels: list[int] | range,
            max_context: int | None = None, banks: int = 16, base_row: int = 0) -> list[Isr]:
    """``p . V`` over ``context_len`` cached values (CENT Vector_Matrix_Mul_output_pim_only_trace, intra-device)."""
    mask = mask_of(channels)
    rows_per_seq = math.ceil(context_len / ROW_ELEMS)
    rows_per_dim = math.ceil((max_context or context_len) / ROW_ELEMS)
    heads_per_bank = math.ceil(kv_heads / len(channels))
    dim_iterations = max(1, head_dim // banks)
    out: list[Isr] = []
    for h in range(heads_per_bank):
        head_row = base_row + rows_per_dim * dim_iterations * h
        for _ in range(repeat):
            for off in range(rows_per_seq):
                opsize = math.ceil((context_len - off * ROW_ELEMS) / LANES) if off == rows_per_seq - 1 else ROW_ELEMS // LANES
                out.append(Isr("WR_GB", opsize=opsize, mask=mask))
                for d in range(dim_iterations):
                    row = head_row + d * rows_per_dim + off
                    out += [Isr("WR_BIAS", mask=mask), Isr("MAC_ABK", opsize=opsize, mask=mask, row=row),
                            Isr("RD_MAC", mask=mask)]
    return out


def to_trace(program: list[Isr], eoc: bool = True) -> str:
    """The program in the AiM simulator's trace format (ends with EOC unless ``eoc`` is false)."""
    lines = []
    for i in program:
        op = i.op
        if op in ("R_MEM", "W_MEM"):
            lines.append(f"{op[0]} MEM {i.channel} {i.bank} {i.row}")
        elif op == "GPR":
            lines.append("W GPR 0")
        elif op == "CFR":
            lines.append(f"W CFR {i.cfr} {i.data}")
        else:
            values = {"opsize": i.opsize, "gpr0": 0, "gpr1": 0, "mask": hex(i.mask), "bank": i.bank, "row": i.row,
                      "col": i.col, "thread": 0}
            lines.append(" ".join(["AiM", op, *(str(values[f]) for f in ISRS[op].fields)]))
    if eoc:
        lines.append("AiM EOC")
    return "\n".join(lines) + "\n"


def kv_append(k_tokens: int, v_bursts: int, head_dim: int, kv_heads: int, banks: int = 16, base_row: int = 8192,
              v_head_dim: int | None = None) -> list[Isr]:
    """Plain writes that append the KV cache on one channel in CENT's layout (``store_to_DRAM_multi_channel``):
    ``k_tokens`` tokens' keys, each ``head_dim x kv_heads`` elements along its own bank's rows (64 bursts a row),
    banks in turn; and for each of the channel's ``kv_heads`` heads and ``v_head_dim`` (default ``head_dim``) value
    dimensions (spread over the banks, ``v_head_dim / banks`` rows each) ``v_bursts`` bursts of that dimension's new
    values (V transposed)."""
    rows = math.ceil(head_dim * kv_heads / ROW_ELEMS) if kv_heads else 0
    v_dim = v_head_dim or head_dim
    out: list[Isr] = []
    for t in range(k_tokens):
        for r in range(rows):
            out += [Isr("W_MEM", channel=0, bank=t % banks, row=base_row + (t // banks) * rows + r)] * (ROW_ELEMS // LANES)
    dim_iterations = max(1, math.ceil(v_dim / banks))  # a last, partial pass over the banks for a width not a multiple
    for h in range(kv_heads):
        for d in range(dim_iterations):
            for b in range(banks):
                out += [Isr("W_MEM", channel=0, bank=b, row=base_row + 4096 + h * dim_iterations + d)] * v_bursts
    return out
