"""Timing, command counts and energy of AiM-style vector-matrix multiplies (VMMs) in PIM DRAM channels.

A VMM ``y = x . W`` with ``W`` of ``k x n`` is spread over the channels' banks: every bank's processing unit
computes whole outputs (dot products of length ``k``), holding each output's weights along one DRAM row. The input
vector sits in the channel's global buffer (GB), so all 16 banks of a channel consume the same GB columns in
lockstep through all-bank commands. Per channel the command stream is, for each chunk of ``k`` that fits one row:

    for each row pass:  ACT_AB, [WR_GB x g on the first pass of a chunk], ((MAC_ABK x m), RD_MAC) x s, PREA

``m`` = columns per output (``ceil(k_chunk / lanes)``), ``s`` = outputs per row (1 when ``k`` fills a row; when it
is short, several outputs share a row and the GB holds the vector replicated — PIM-GPT concatenates attention heads
to fill rows). Partial sums of chunks are added by the ASIC.

Two modes give the cycles of that stream:

- ``command``: every command is issued through :class:`hardware.dram.Channel` (the JEDEC/AiM timing table and
  bank state machines) in program order — the reference;
- ``fast``: a closed form over identical row passes, using the same constraints (tRC, tRAS, tRP, tMAC, tCCD_MAC,
  tRTP, GB write latency). It agrees with ``command`` within 1% (tests).

Refresh: an all-bank REF is due every tREFI cycles of *busy* PIM time; refreshes owed while the PIM is idle (the
ASIC working) are assumed to be scheduled in those gaps. Both modes insert them the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hardware.dram import BankAddress, Channel, Command
from hardware.pim.spec import PimTarget


@dataclass(frozen=True)
class Chunk:
    """One GB load and the identical row passes that use it: ``passes`` passes of ``segments`` x (``macs``
    MAC_ABK + 1 RD_MAC); the last pass may have fewer segments (``last_segments``)."""

    gb_writes: int
    passes: int
    segments: int
    macs: int
    last_segments: int


@dataclass
class PimCounts:
    """Commands issued and cycles spent by one channel (or summed over channels for energy)."""

    cycles: int = 0
    act_ab: int = 0
    mac: int = 0
    rd_mac: int = 0
    wr_gb: int = 0
    act: int = 0
    rd: int = 0
    wr: int = 0
    pre: int = 0
    ref: int = 0
    wr_bias: int = 0  # MAC-register writes (AiM WR_BIAS), instruction-level timing only
    tmod: int = 0  # mode changes (AiM TMOD), instruction-level timing only

    FIELDS = ("cycles", "act_ab", "mac", "rd_mac", "wr_gb", "act", "rd", "wr", "pre", "ref", "wr_bias", "tmod")

    def add(self, other: PimCounts, times: int = 1) -> None:
        """Accumulate ``other`` ``times`` times (cycles included)."""
        # field by field (every field of FIELDS), not a getattr/setattr loop: the mapper adds counts per task
        self.cycles += times * other.cycles
        self.act_ab += times * other.act_ab
        self.mac += times * other.mac
        self.rd_mac += times * other.rd_mac
        self.wr_gb += times * other.wr_gb
        self.act += times * other.act
        self.rd += times * other.rd
        self.wr += times * other.wr
        self.pre += times * other.pre
        self.ref += times * other.ref
        self.wr_bias += times * other.wr_bias
        self.tmod += times * other.tmod

    def key(self) -> tuple[int, ...]:
        """The counts as a tuple (in FIELDS order), for memo keys."""
        return (self.cycles, self.act_ab, self.mac, self.rd_mac, self.wr_gb, self.act, self.rd, self.wr, self.pre,
                self.ref, self.wr_bias, self.tmod)


def plan_vmm(k: int, outputs: int, target: PimTarget, elem_bytes: int = 2) -> list[Chunk]:
    """The chunks of one channel computing ``outputs`` dot products of length ``k``."""
    if k <= 0 or outputs <= 0:
        return []
    banks = target.banks_per_channel
    # a MAC command consumes one column per bank: lanes beyond the column's elements idle, fewer need more commands
    lanes = min(target.mac.lanes.n, target.column_bytes // elem_bytes)
    columns = target.row_bytes // target.column_bytes
    # the input vector of a pass must sit in the global buffer: a smaller buffer cuts k into more chunks
    gb_elems = max(lanes, int(target.global_buffer.si) // elem_bytes)
    row_elems = min(target.row_bytes // elem_bytes, gb_elems)
    per_bank = math.ceil(outputs / banks)
    chunks: list[Chunk] = []
    if k >= row_elems // 2:
        # each output's weights span whole rows: one output per row, k split into chunks of a row (or a buffer)
        for start in range(0, k, row_elems):
            length = min(row_elems, k - start)
            macs = math.ceil(length / lanes)
            chunks.append(Chunk(gb_writes=math.ceil(length * elem_bytes / target.column_bytes), passes=per_bank,
                                segments=1, macs=macs, last_segments=1))
    else:
        macs = math.ceil(k / lanes)
        # outputs sharing a row each need their own copy of the vector in the buffer
        per_row = max(1, min(columns // macs, gb_elems // (macs * lanes)))
        passes = math.ceil(per_bank / per_row)
        last = per_bank - (passes - 1) * per_row
        replicated = min(per_row, per_bank)
        chunks.append(Chunk(gb_writes=math.ceil(replicated * macs * lanes * elem_bytes / target.column_bytes),
                            passes=passes, segments=min(per_row, per_bank), macs=macs, last_segments=last))
    return chunks


class RefreshDebt:
    """Busy PIM cycles since the last refresh; a REF is owed every tREFI busy cycles."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.busy = 0


class AimTimer:
    """Cycles and commands of VMM streams on one PIM channel, in ``fast`` or ``command`` mode."""

    def __init__(self, target: PimTarget, mode: str = "fast", refresh: bool = True) -> None:
        if mode not in ("fast", "command"):
            raise ValueError(f"mode must be 'fast' or 'command', not {mode!r}")
        self.target = target
        self.mode = mode
        self.p = target.standard.params
        self.debt = RefreshDebt(refresh)
        self.commands_issued = 0
        self._memo: dict[tuple[int, int, int], PimCounts] = {}
        self._plans: dict[tuple[int, int, int], list[Chunk]] = {}  # command mode: plan_vmm per shape (frozen chunks)

    # -- fast mode ---------------------------------------------------------------------------------------------
    def _pass_cycles(self, segments: int, macs: int, gb_writes: int) -> tuple[int, int]:
        """(ACT_AB-to-PREA cycles, ACT_AB-to-next-ACT_AB cycles) of one row pass."""
        p = self.p
        n_cmd = segments * (macs + 1)
        first_mac = p["tMAC"]
        if gb_writes:
            last_wr = 1 + (gb_writes - 1) * p["tBL"]
            first_mac = max(first_mac, last_wr + p["tCWL_GB"] + p["tBL"])
        last_mac = first_mac + (n_cmd - 2) * p["tCCD_MAC"]
        last_rd = first_mac + (n_cmd - 1) * p["tCCD_MAC"]
        prea = max(p["tRAS"], last_mac + p["tRTP"], last_rd + 1)
        return prea, max(prea + p["tRPab"], p["tRC"])

    def _fast(self, chunks: list[Chunk]) -> PimCounts:
        c = self._stream(chunks)
        self._refresh(c)
        return c

    def _stream(self, chunks: list[Chunk]) -> PimCounts:
        """Cycles and commands of the chunks without refresh (closed form over identical passes)."""
        c = PimCounts()
        for ch in chunks:
            passes = [(1, ch.segments if ch.passes > 1 else ch.last_segments, ch.gb_writes)]
            if ch.passes > 2:
                passes.append((ch.passes - 2, ch.segments, 0))
            if ch.passes > 1:
                passes.append((1, ch.last_segments, 0))
            for count, segments, gb in passes:
                _, period = self._pass_cycles(segments, ch.macs, gb)
                c.cycles += count * period
                c.act_ab += count
                c.pre += count
                c.mac += count * segments * ch.macs
                c.rd_mac += count * segments
                c.wr_gb += gb * count
        return c

    def _refresh(self, c: PimCounts) -> None:
        """Add the refreshes owed by ``c.cycles`` more busy cycles (fast mode)."""
        p = self.p
        if self.debt.enabled and c.cycles:
            # each owed REF replaces one tRPab gap by tRPab + tRFC (REF after PREA, ACT_AB after tRFC)
            total = self.debt.busy + c.cycles
            refs = 0
            refi, rfc = p["tREFI"], p["tRFC"]
            if total >= refi and isinstance(total, int) and isinstance(refi, int) and isinstance(rfc, int) and refi > rfc:
                # closed form of the loop below: each REF takes tREFI - tRFC off the debt while it is >= tREFI
                refs = (total - refi) // (refi - rfc) + 1
                total -= refs * (refi - rfc)
            while total >= refi:
                total -= refi
                refs += 1
                total += rfc
            c.ref = refs
            c.cycles += refs * p["tRFC"]
            self.debt.busy = total

    # -- command mode ------------------------------------------------------------------------------------------
    def _command(self, chunks: list[Chunk]) -> PimCounts:
        ch = Channel(self.target.standard)
        issue = ch.issue
        repeat = ch.issue_repeat  # each command of a run of the same one still checked against the timing table
        ref, act_ab, wr_gb, mac_abk, rd_mac, prea = (Command.REF, Command.ACT_AB, Command.WR_GB, Command.MAC_ABK,
                                                     Command.RD_MAC, Command.PREA)
        p = self.p
        refi = p["tREFI"]
        debt = self.debt
        c = PimCounts()
        bank0 = BankAddress(0, 0, 0, 0)
        t = -1  # so the first command may issue at cycle 0
        row = 0
        rows = self.target.standard.organization.rows.value
        busy_mark = 0
        last_act = 0
        for chunk in chunks:
            macs = chunk.macs
            for i in range(chunk.passes):
                segments = chunk.last_segments if i == chunk.passes - 1 else chunk.segments
                if debt.enabled and debt.busy + (t - busy_mark) >= refi:
                    debt.busy += t - busy_mark - refi
                    t = issue(ref, bank0, t + 1)
                    busy_mark = t
                    c.ref += 1
                here = BankAddress(0, 0, row % rows, 0)
                t = last_act = issue(act_ab, here, t + 1)
                if i == 0 and chunk.gb_writes:
                    t = repeat(wr_gb, bank0, t + 1, chunk.gb_writes)
                    c.wr_gb += chunk.gb_writes
                for _ in range(segments):
                    if macs:
                        t = repeat(mac_abk, here, t + 1, macs)
                    t = issue(rd_mac, bank0, t + 1)
                t = issue(prea, bank0, t + 1)
                c.act_ab += 1
                c.mac += segments * macs
                c.rd_mac += segments
                c.pre += 1
                row += 1
        # the stream ends when the banks may be activated again (same convention as the fast mode's period)
        end = max(t + p["tRPab"], last_act + p["tRC"]) if c.act_ab else t + 1
        if self.debt.enabled:
            self.debt.busy += end - busy_mark
        c.cycles = end
        self.commands_issued += sum(ch.counts.values())
        return c

    # -- public --------------------------------------------------------------------------------------------------
    def vmm(self, k: int, outputs: int, elem_bytes: int = 2, repeat: int = 1) -> PimCounts:
        """Cycles and commands of the busiest channel computing ``outputs`` dot products of length ``k``, for
        ``repeat`` input vectors one after another (a batch, or a prompt's tokens)."""
        if self.mode == "fast":
            key = (k, outputs, elem_bytes)
            base = self._memo.get(key)
            if base is None:
                base = self._memo[key] = self._stream(plan_vmm(k, outputs, self.target, elem_bytes))
            c = PimCounts()
            c.add(base, repeat)
            if self.debt.enabled:
                self._refresh(c)
            return c
        key = (k, outputs, elem_bytes)
        chunks = self._plans.get(key)
        if chunks is None:
            chunks = self._plans[key] = plan_vmm(k, outputs, self.target, elem_bytes)
        c = PimCounts()
        if chunks:
            for _ in range(repeat):
                c.add(self._command(chunks))
        return c

    def row_writes(self, rows: int, bursts_per_row: int) -> PimCounts:
        """Write ``bursts_per_row`` 32-byte bursts into each of ``rows`` rows of one bank (KV-cache appends):
        ACT, WR..., PRE per row, back to back."""
        p = self.p
        c = PimCounts(act=rows, wr=rows * bursts_per_row, pre=rows)
        if rows == 0:
            return c
        write_done = p["tRCDWR"] + (bursts_per_row - 1) * p["tCCD_L"] + p["tCWL"] + p["tBL"] + p["tWR"]
        per_row = max(p["tRC"], max(p["tRAS"], write_done) + p["tRP"])
        c.cycles = rows * per_row
        return c

    def row_reads(self, rows: int, bursts_per_row: int) -> PimCounts:
        """Read ``bursts_per_row`` 32-byte bursts from each of ``rows`` rows of one bank (embedding lookups):
        ACT, RD..., PRE per row, back to back."""
        p = self.p
        c = PimCounts(act=rows, rd=rows * bursts_per_row, pre=rows)
        if rows == 0:
            return c
        last_rd = p["tRCDRD"] + (bursts_per_row - 1) * p["tCCD_L"]
        per_row = max(p["tRC"], max(p["tRAS"], last_rd + p["tRTP"]) + p["tRP"])
        c.cycles = rows * per_row + p["tCL"] + p["tBL"]  # the last data beat reaches the ASIC
        return c


@dataclass
class PimEnergyBreakdown:
    """Dynamic energy of PIM commands by action (joules) and bytes moved by level."""

    by_action: dict[str, float] = field(default_factory=dict)
    bytes_by_level: dict[str, int] = field(default_factory=dict)

    @property
    def total_j(self) -> float:
        """All dynamic energy."""
        return sum(self.by_action.values())


def energy(counts: PimCounts, target: PimTarget) -> PimEnergyBreakdown:
    """Dynamic energy of commands summed over all channels (``counts`` already totals the channels)."""
    e = target.energy
    banks = target.banks_per_channel
    burst = target.column_bytes
    io_bursts = counts.rd_mac + counts.rd + counts.wr_gb + counts.wr + counts.wr_bias
    by_action = {
        "act_pre": (counts.act_ab * banks + counts.act) * e.act_per_bank.si,
        "mac": counts.mac * e.mac_all_bank.si,
        "read": (counts.rd_mac + counts.rd) * e.read_burst.si,
        "write": (counts.wr_gb + counts.wr + counts.wr_bias) * e.write_burst.si,
        "io": io_bursts * burst * 8 * e.io.si,
        "refresh": counts.ref * e.refresh.si,
    }
    levels = {
        "dram_array": counts.mac * banks * burst + (counts.rd + counts.wr) * burst,
        "bank_io": counts.mac * banks * burst,
        "channel": io_bursts * burst,
    }
    return PimEnergyBreakdown(by_action, levels)
