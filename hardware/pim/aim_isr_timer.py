"""Kernel costs on a GDDR6-AiM target from its instruction programs: VMMs and attention, CENT's layouts.

:class:`IsrTimer` is the timer the PIM mapper uses when the target's DRAM standard carries the whole AiM command
set (``gddr6-aim``): every kernel becomes its AiM instruction program (:mod:`hardware.pim.aim_programs`) and runs
through the instruction model (:mod:`hardware.pim.isr`), mode switches, blocking reads and row management included.
Channels work in lockstep (CENT broadcasts each instruction to all channels of a block), so a kernel costs what
its busiest channel's program costs; one channel is simulated.

Costs are exact for the shapes simulated and memoised per shape. Attention programs repeat one group of
instructions (ending in a blocking RD_MAC) per token block, so their cost is affine in the number of blocks: two
sizes are simulated and the line is extended (the tests hold it against direct simulation), which keeps a decode
run over thousands of context lengths cheap.
"""

from __future__ import annotations

import math

from hardware.pim import aim_programs as ap
from hardware.pim.aim import AimTimer, PimCounts
from hardware.pim.isr import AimResult, AimSystem, Isr
from hardware.pim.spec import PimTarget

#: our command name -> PimCounts field
FIELD = {"ACT_AB": "act_ab", "MAC_ABK": "mac", "RD_MAC": "rd_mac", "WR_GB": "wr_gb", "WR_MAC": "wr_bias",
         "PREA": "pre", "ACT": "act", "PRE": "pre", "RD": "rd", "WR": "wr", "TMOD": "tmod", "REF": "ref"}


def has_isr(target: PimTarget) -> bool:
    """Whether the target's standard defines the whole AiM instruction set (then the mapper uses IsrTimer)."""
    return "TMOD" in target.standard.all_commands and "WR_MAC" in target.standard.all_commands


def _counts(r: AimResult) -> PimCounts:
    c = PimCounts(cycles=r.cycles)
    for name, n in r.commands.items():
        f = FIELD.get(name)
        if f:
            setattr(c, f, getattr(c, f) + n)
    return c


def _scaled(c: PimCounts, times: float) -> PimCounts:
    out = PimCounts()
    for name in PimCounts.FIELDS:
        setattr(out, name, round(getattr(c, name) * times))
    return out


def _affine(c1: PimCounts, c2: PimCounts, n: int) -> PimCounts:
    """Counts of ``n`` blocks from those of 1 and 2 blocks (c1 + (n - 1) (c2 - c1))."""
    out = PimCounts()
    for name in PimCounts.FIELDS:
        a, b = getattr(c1, name), getattr(c2, name)
        setattr(out, name, a + (n - 1) * (b - a))
    return out


class IsrTimer(AimTimer):
    """AimTimer's interface (``vmm``, ``row_writes``, ``row_reads``) plus attention, timed by AiM instruction
    programs on one channel. Refresh: as AimTimer's fast mode (REFs owed per tREFI busy cycles), unless off."""

    def __init__(self, target: PimTarget, refresh: bool = True, order: str = "reuse-gb") -> None:
        super().__init__(target, "fast", refresh=refresh)
        self.order = order
        self._memo_isr: dict[tuple, PimCounts] = {}
        self.banks = target.banks_per_channel
        # a MAC consumes one column per bank (lanes beyond its elements idle); a GB load holds a row at most
        self.lanes = min(target.mac.lanes.n, target.column_bytes // 2)
        self.row_elems = max(self.lanes, min(target.row_bytes, int(target.global_buffer.si)) // 2)

    def _run(self, program: list[Isr]) -> PimCounts:
        system = AimSystem(self.target.standard, channels=1)
        return _counts(system.run(program + [Isr("EOC")]))

    def _with_refresh(self, base: PimCounts, repeat: int) -> PimCounts:
        c = _scaled(base, repeat)
        c.ref = 0
        self._refresh(c)
        return c

    def vmm(self, k: int, outputs: int, elem_bytes: int = 2, repeat: int = 1) -> PimCounts:
        """The busiest channel computing ``outputs`` dot products of length ``k`` for ``repeat`` vectors."""
        if k <= 0 or outputs <= 0 or repeat <= 0:
            return PimCounts()
        key = ("vmm", k, outputs)
        base = self._memo_isr.get(key)
        if base is None:
            per_bank = math.ceil(outputs / self.banks)
            program = ap.vmm(k, per_bank * self.banks, [0], order=self.order, row_elems=self.row_elems, lanes=self.lanes)
            base = self._memo_isr[key] = self._run(program)
        return self._with_refresh(base, repeat)

    def attention_scores(self, context: int, head_dim: int, kv_heads: int, repeat: int, channels: int,
                         vectors: int = 1) -> PimCounts:
        """``q . K^T`` of all heads against ``context`` keys spread over ``channels`` (CENT layout), ``vectors``
        query rows one after another."""
        if context <= 0 or vectors <= 0:
            return PimCounts()
        per_iter = self.banks * channels
        iterations = math.ceil(context / per_iter)
        key = ("scores", head_dim, kv_heads, repeat)
        pair = self._memo_isr.get(key)
        if pair is None:
            one = self._run(ap.scores(per_iter, head_dim, kv_heads, repeat, [0], banks=self.banks * channels))
            two = self._run(ap.scores(2 * per_iter, head_dim, kv_heads, repeat, [0], banks=self.banks * channels))
            pair = self._memo_isr[key] = (one, two)
        return self._with_refresh(_affine(*pair, iterations), vectors)

    def attention_context(self, context: int, head_dim: int, kv_heads: int, repeat: int, channels: int,
                          vectors: int = 1) -> PimCounts:
        """``p . V`` over ``context`` values (V transposed, CENT layout) for ``vectors`` query rows."""
        if context <= 0 or vectors <= 0:
            return PimCounts()
        heads_per_channel = math.ceil(kv_heads / channels)
        full, last = divmod(context, ap.ROW_ELEMS)
        total = PimCounts()
        if full:
            key = ("context", ap.ROW_ELEMS, head_dim)
            pair = self._memo_isr.get(key)
            if pair is None:
                one = self._run(ap.context(ap.ROW_ELEMS, head_dim, 1, 1, [0]))
                two = self._run(ap.context(2 * ap.ROW_ELEMS, head_dim, 1, 1, [0]))
                pair = self._memo_isr[key] = (one, two)
            total.add(_affine(*pair, full * heads_per_channel * repeat))
        if last:
            key = ("context_tail", math.ceil(last / ap.LANES), head_dim)
            tail = self._memo_isr.get(key)
            if tail is None:
                tail = self._memo_isr[key] = self._run(ap.context(last, head_dim, 1, 1, [0]))
            total.add(tail, heads_per_channel * repeat)
        return self._with_refresh(total, vectors)

    def kv_append(self, tokens: int, head_dim: int, kv_heads: int, channels: int,
                  v_head_dim: int | None = None) -> PimCounts:
        """The busiest channel appending ``tokens`` tokens' K and V (CENT layout: keys token-major over all banks,
        V transposed, 16 tokens a burst), as plain writes: simulated for up to 4 tokens per channel (decode),
        extended at the data bus's write rate beyond (prefill). ``v_head_dim``: the values' head size where it is
        not the keys' (multi-head latent attention)."""
        v_dim = v_head_dim or head_dim
        if tokens <= 0:
            return PimCounts()
        heads = math.ceil(kv_heads / channels)
        k_tokens = math.ceil(tokens / channels)
        v_bursts = math.ceil(tokens / ap.LANES)
        ks, vs = min(k_tokens, 4), min(v_bursts, 4)
        key = ("kv", head_dim, heads, ks, vs) + ((v_dim,) if v_dim != head_dim else ())
        base = self._memo_isr.get(key)
        if base is None:
            base = self._memo_isr[key] = self._run(ap.kv_append(ks, vs, head_dim, heads, v_head_dim=v_dim))
        if (ks, vs) == (k_tokens, v_bursts):
            return self._with_refresh(base, 1)
        # longer appends (prefill) are bound by the data bus, one write per tCCD_S: extend the simulated one at
        # that rate (within 1% of direct simulation from 4 tokens up; tests) and scale the commands by writes
        rows = math.ceil(head_dim * heads / ap.ROW_ELEMS)
        writes = lambda k, v: k * rows * (ap.ROW_ELEMS // ap.LANES) + heads * v_dim * v  # noqa: E731
        w0, w = writes(ks, vs), writes(k_tokens, v_bursts)
        out = _scaled(base, w / w0)
        out.cycles = max(base.cycles, base.cycles + self.p["tCCD_S"] * (w - w0))
        return self._with_refresh(out, 1)
