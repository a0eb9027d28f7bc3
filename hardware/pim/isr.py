"""AiM host instructions (ISRs) down to DRAM commands: the SK hynix GDDR6-AiM instruction timing.

The host issues AiM instructions (``MAC_ABK 64 0xffffffff 7``: 64 all-bank MACs on row 7 of every channel in the
mask). A DMA engine decodes them one at a time, unrolls ``opsize`` columns over the masked channels and hands one
request per column and channel to that channel's controller; each controller turns its requests, strictly in
order, into DRAM commands (PREA / ACT_AB / MAC_ABK ...) timed by the standard's constraint table
(:class:`hardware.dram.Channel`). The behaviour modelled, after the AiM simulator (arkhadem/aim_simulator
@0f28a07: ``aim_DRAM_system.cpp``, ``AiM_dram_controller.cpp``, ``request.h``; simulator of CENT, ASPLOS'25):

- **Mode switch**: WR_GB, WR_BIAS, RD_MAC and RD_AF run in register read/write mode, everything else in array
  mode; a controller whose next request is in the other mode first issues TMOD (at the cycle that request's
  command would issue), and nothing may follow TMOD for tMODCH cycles.
- **Blocking**: RD_MAC, RD_AF, SYNC and EOC stall the DMA until every channel has returned the data (RD_MAC:
  tCLREG + tBL after issue); the next instruction is decoded the cycle after the last channel answers.
- **Row management**: all-bank MAC / AF / EWMUL / WR_ABK need the row open in every bank (PREA if another row
  is open, then ACT_AB); single-bank commands (MAC_SBK, COPY, RD/WR_SBK) open their bank (PRE, ACT). AF reads its
  lookup table from a reserved row (the last rows of the bank, one per activation function).
- **Queues**: 33 entries per controller buffer (``size <= 32`` admits one more), AiM and plain read/write
  requests never share a controller at once, the DMA decodes at most one instruction per cycle, reads return in
  order one per cycle, SYNC / EOC wait for outstanding writes; a read arriving while a write is queued is
  forwarded from it (the simulator compares the requests' unset addresses, so any queued write matches).
- Plain reads and writes (R/W MEM, RD_SBK, WR_SBK) are scheduled FR-FCFS-style as events: a request whose ACT
  issued (the simulator's active buffer) goes first when ready, else the oldest ready queued one; AiM requests are
  admitted once no plain request is left in the read/write queues (the active buffer may still hold some), and
  active plain requests then interleave with them, each switch of mode costing a TMOD.
- No refresh: the AiM simulator's all-bank refresh manager never fires on GDDR6 (it loops over
  ``get_level_size("rank")`` = -1 ranks), so :class:`AimSystem` does not refresh either.

Cycles are CK cycles of the standard (tCK 0.5 ns for ``gddr6-aim``). The instruction text format is the AiM
simulator's trace format (:func:`parse_trace`), so the same file runs on both.
"""

from __future__ import annotations

import copy
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from hardware.dram import BankAddress, Channel, DramStandard, load_standard
from hardware.errors import HwsimError

#: field order of an AiM instruction line (a subset per opcode, always in this order)
FIELDS = ("opsize", "gpr0", "gpr1", "mask", "bank", "row", "col", "thread")


@dataclass(frozen=True)
class IsrSpec:
    """How one AiM instruction behaves: its trace fields, the DRAM command it unrolls to, its buffer class
    (``aim``, ``read``, ``write``; ``dma`` = no DRAM work), whether it needs register mode or blocks the DMA."""

    fields: tuple[str, ...]
    command: str | None
    kind: str = "aim"
    reg_mode: bool = False
    blocking: bool = False
    all_banks: bool = False
    one_channel: bool = False


#: The AiM instruction set (AIM-SIM request.h AiMISRInfo::init and GDDR6.cpp m_aim_request_translations).
ISRS: dict[str, IsrSpec] = {
    "WR_SBK": IsrSpec(("gpr0", "mask", "bank", "row"), "WR", kind="write"),
    "WR_ABK": IsrSpec(("gpr0", "mask", "row"), "WR_AB", all_banks=True, one_channel=True),
    "WR_GB": IsrSpec(("opsize", "gpr0", "mask"), "WR_GB", reg_mode=True),
    "WR_BIAS": IsrSpec(("gpr0", "mask"), "WR_MAC", reg_mode=True),
    "RD_MAC": IsrSpec(("gpr0", "mask"), "RD_MAC", reg_mode=True, blocking=True),
    "RD_AF": IsrSpec(("gpr0", "mask"), "RD_AF", reg_mode=True, blocking=True),
    "RD_SBK": IsrSpec(("gpr0", "mask", "bank", "row"), "RD", kind="read"),
    "COPY_BKGB": IsrSpec(("opsize", "mask", "bank", "row"), "RD_CP"),
    "COPY_GBBK": IsrSpec(("opsize", "mask", "bank", "row"), "WR_CP"),
    "MAC_SBK": IsrSpec(("opsize", "mask", "bank", "row"), "MAC_SB"),
    "MAC_ABK": IsrSpec(("opsize", "mask", "row"), "MAC_ABK", all_banks=True),
    "AF": IsrSpec(("mask",), "AF_AB", all_banks=True),
    "EWMUL": IsrSpec(("opsize", "mask", "row"), "EWMUL_AB", all_banks=True),
    "EWADD": IsrSpec(("opsize", "gpr0", "gpr1"), None, kind="dma"),
    "SYNC": IsrSpec((), None, kind="sync", blocking=True),
    "EOC": IsrSpec((), None, kind="sync", blocking=True),
}

#: largest opsize a trace line may give: AIM-SIM's Request::opsize is an int32_t (src/base/request.h)
OPSIZE_MAX = 2**31 - 1

#: controller buffer capacity (AIM-SIM ReqBuffer max_size 32, enqueue while size <= max_size)
BUFFER = 33


@dataclass(frozen=True)
class Isr:
    """One host instruction. ``op``: an AiM opcode of :data:`ISRS`, or ``R_MEM`` / ``W_MEM`` (plain accesses to
    ``channel``), ``GPR`` / ``CFR`` (host-side register accesses; ``CFR`` 2 sets the activation function)."""

    op: str
    opsize: int = 1
    mask: int = 0
    bank: int = 0
    row: int = 0
    col: int = 0
    channel: int = 0
    cfr: int = 0
    data: int = 0


def channels_of(mask: int, channels: int = 32) -> list[int]:
    """Channel ids a channel mask selects: bit ``i`` (LSB = 0) is channel ``channels - 1 - i`` (AIM-SIM and CENT:
    ``0x80000000`` is channel 0), in the simulator's decode order."""
    return [channels - 1 - i for i in range(channels) if mask >> i & 1]


def mask_of(channel_ids: list[int] | range, channels: int = 32) -> int:
    """The channel mask selecting ``channel_ids`` (inverse of :func:`channels_of`)."""
    out = 0
    for c in channel_ids:
        out |= 1 << (channels - 1 - c)
    return out


def _number(token: str, where: str) -> int:
    try:
        return int(token, 16) if token.lower().startswith("0x") else int(token)
    except ValueError:
        raise HwsimError(f"{where}: '{token}' is not a number") from None


def parse_trace(text: str, name: str = "trace") -> list[Isr]:
    """Instructions of an AiM-simulator trace: ``AiM OPCODE fields...``, ``R|W MEM ch bank row``, ``R|W GPR id``,
    ``W CFR id value``; ``#`` starts a comment line. Bad lines raise HwsimError naming the line."""
    out: list[Isr] = []
    for n, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        where = f"{name}:{n}"
        kind = tokens[0]
        if kind == "AiM":
            if len(tokens) < 2:
                raise HwsimError(f"{where}: 'AiM' needs an opcode")
            op = tokens[1].removeprefix("ISR_")
            spec = ISRS.get(op)
            if spec is None:
                raise HwsimError(f"{where}: unknown AiM opcode '{tokens[1]}' (one of {', '.join(ISRS)})")
            if len(tokens) - 2 != len(spec.fields):
                raise HwsimError(f"{where}: AiM {op} takes {len(spec.fields)} fields ({' '.join(spec.fields) or 'none'}), "
                                 f"not {len(tokens) - 2}")
            values = {f: _number(t, where) for f, t in zip(spec.fields, tokens[2:])}
            values.pop("gpr0", None), values.pop("gpr1", None)
            if "opsize" in values and values["opsize"] < 1:
                raise HwsimError(f"{where}: opsize must be >= 1")
            if values.get("opsize", 0) > OPSIZE_MAX:
                raise HwsimError(f"{where}: opsize {values['opsize']} does not fit the trace format's 32-bit opsize "
                                 f"field (at most {OPSIZE_MAX}); split the instruction")
            if spec.one_channel and bin(values["mask"]).count("1") != 1:
                raise HwsimError(f"{where}: AiM {op} must name exactly one channel in its mask")
            if spec.kind != "dma" and spec.kind != "sync" and values.get("mask", 0) <= 0:
                raise HwsimError(f"{where}: the channel mask selects no channel")
            out.append(Isr(op, **values))
        elif kind in ("R", "W") and len(tokens) >= 2:
            region = tokens[1]
            if region == "MEM" and len(tokens) == 5:
                ch, bank, row = (_number(t, where) for t in tokens[2:])
                out.append(Isr(f"{kind}_MEM", channel=ch, bank=bank, row=row))
            elif region == "GPR" and len(tokens) == 3:
                out.append(Isr("GPR"))
            elif region == "CFR" and kind == "W" and len(tokens) == 4:
                out.append(Isr("CFR", cfr=_number(tokens[2], where), data=_number(tokens[3], where)))
            else:
                raise HwsimError(f"{where}: expected 'R|W MEM ch bank row', 'R|W GPR id' or 'W CFR id value'")
        else:
            raise HwsimError(f"{where}: a line starts with 'AiM', 'R', 'W' or '#', not '{kind}'")
    return out


@dataclass
class AimResult:
    """Outcome of a run: ``cycles`` (the AiM simulator's ``memory_system_cycles``), commands per name summed
    over channels, and the busiest channel's command count."""

    cycles: int
    commands: Counter = field(default_factory=Counter)
    instructions: int = 0

    def seconds(self, standard: DramStandard) -> float:
        """Cycles in seconds at the standard's clock."""
        return self.cycles * standard.tck_s


class _Controller:
    """One channel: its in-order request stream, mode, buffers and read-return queue."""

    def __init__(self, standard: DramStandard) -> None:
        self.ch = Channel(standard)
        self.data = {name: self.ch.data_cycles(name) for name in standard.all_commands}
        self.last = 0  # last command-bus cycle used (controller clock starts at 1)
        self.reg_mode = False
        self.finals: dict[str, deque[int]] = {k: deque(maxlen=BUFFER) for k in ("aim", "read", "write")}
        self.class_done = {"aim": 0, "read": 0, "write": 0}  # cycle the last request of the class left its buffer
        self.last_served = 0  # cycle the read-return queue served its last entry
        self.write_depart = 0  # latest departure of a non-returning request (SYNC / EOC wait for it)
        self.banks_per_group = standard.organization.banks_per_group.value
        self.banks = standard.banks
        self.wr_cmd = self.ch.command("WR")
        self.act_cmd = self.ch.command("ACT")
        self.tmod = 0
        self.forwarded = 0
        #: plain requests not yet done: [start cycle, order, final command, address, left_queue (bool)]
        self.plain: list[list] = []
        self.plain_left = 0  # cycle the last plain request left the read/write queue (ACT issued, or done)
        self._order = 0

    def admit(self, kind: str, tick: int) -> int:
        """First DMA tick >= ``tick`` at which a request of buffer class ``kind`` is accepted."""
        if kind in ("aim", "sync") and any(not q[4] for q in self.plain):
            self._advance(None, until_queued_empty=True)
        if kind in ("read", "write"):
            # a full read / write queue: the request waits until one of the queued ones leaves (ACT or done)
            while sum(1 for q in self.plain if not q[4] and (q[2] is self.wr_cmd) == (kind == "write")) >= BUFFER:
                self._advance(None, one_queued=True)
                tick = max(tick, self.plain_left)
        buf = "aim" if kind == "sync" else kind
        finals = self.finals[buf]
        if len(finals) == BUFFER:
            tick = max(tick, finals[0])
        if buf == "aim":
            return max(tick, self.plain_left)
        return max(tick, self.class_done["aim"])

    def run(self, spec: IsrSpec, kind: str, command: str | None, addr: BankAddress, arrive: int) -> int:
        """Serve one request sent at DMA tick ``arrive``; returns the cycle its data returns to the DMA (the
        read-return queue's service cycle) for returning requests, else its final command's cycle."""
        ch = self.ch
        if kind in ("read", "write"):
            self._advance(arrive)
            if kind == "read" and any(q[2] is self.wr_cmd and not q[4] for q in self.plain):
            # a write is still queued: the controller forwards it to the read (plain accesses carry no address in
            # the AiM simulator, so every queued write matches), which leaves the next cycle without a command
                served = max(arrive + 1, self.last_served + 1)
                self.last_served = served
                self.forwarded += 1
                return served
            self._order += 1
            self.plain.append([arrive + 1, self._order, command, addr, False])
            return arrive + 1
        start = arrive + 1
        buf = "aim" if kind == "sync" else kind
        if command is None:  # SYNC / EOC: takes the controller's turn, returns after outstanding writes
            self._advance(None)
            t = max(start, self.last + 1)
            self.last = t
            self.finals[buf].append(t)
            self.class_done[buf] = t
            served = max(t + 1, self.last_served + 1, self.write_depart + 1)
            self.last_served = served
            return served
        need_reg = spec.reg_mode
        while True:
            cmd = self._preq(command, addr, spec.all_banks)
            at = max(start, self.last + 1)
            if self.plain:  # requests whose ACT issued (the active buffer) go first when ready by then
                t_aim = ch.earliest(cmd, addr, at)
                if self._advance(t_aim, one=True):
                    continue
            if need_reg != self.reg_mode:
                t = ch.earliest(cmd, addr, at)
                ch.issue("TMOD", addr, t)
                self.tmod += 1
                self.reg_mode = need_reg
                self.last = t
                continue
            t = ch.issue(cmd, addr, at)
            self.last = t
            if cmd is command:
                break
        self.finals[buf].append(t)
        self.class_done[buf] = t
        depart = t + self.data[command]
        if spec.blocking or kind == "read":
            served = max(depart, self.last_served + 1)
            self.last_served = served
            return served
        self.write_depart = max(self.write_depart, depart)
        return t

    def _advance(self, until: int | None, one: bool = False, until_queued_empty: bool = False,
                 one_queued: bool = False) -> bool:
        """Issue plain requests' commands FR-FCFS-style (the AIM-SIM controller's active buffer first, then the
        oldest ready queued request) whose cycle is <= ``until`` (None: all of them; ``until_queued_empty``: until
        none is left in the read/write queues; ``one``: at most one active request's command; ``one_queued``: until
        one queued request left its queue). Returns whether anything issued."""
        ch = self.ch
        issued = False
        while self.plain:
            if until_queued_empty and all(q[4] for q in self.plain):
                break
            best = None
            for q in self.plain:
                if one and not q[4]:
                    continue
                cmd = self._preq(q[2], q[3], False)
                # in register mode a TMOD goes out where the command could (plain commands run in array mode)
                t = ch.earliest(cmd, q[3], max(q[0], self.last + 1))
                key = (t, not q[4], q[1])
                if best is None or key < best[0]:
                    best = (key, q, cmd)
            if best is None:
                break
            (t, _, _), q, cmd = best
            if until is not None and t > until:
                break
            if self.reg_mode:
                ch.issue("TMOD", q[3], t)
                self.tmod += 1
                self.reg_mode = False
                self.last = t
                issued = True
                if one:
                    return True
                continue
            t = ch.issue(cmd, q[3], t)
            self.last = t
            issued = True
            if cmd is q[2]:
                self.plain.remove(q)
                depart = t + self.data[q[2]]
                if q[2] is self.wr_cmd:
                    self.write_depart = max(self.write_depart, depart)
                else:
                    self.last_served = max(depart, self.last_served + 1)
                if not q[4]:
                    self.plain_left = max(self.plain_left, t)
                self.class_done["read" if q[2] is not self.wr_cmd else "write"] = t
                if not q[4] and one_queued:
                    return True
            elif not q[4] and self.opens_cmd(cmd):
                q[4] = True
                self.plain_left = max(self.plain_left, t)
                if one_queued:
                    return True
            if one:
                return True
        return issued

    def opens_cmd(self, cmd: str) -> bool:
        return cmd is self.act_cmd

    def _preq(self, command: str, addr: BankAddress, all_banks: bool) -> str:
        """The command the request needs next (AIM-SIM RequireAllRowsOpen / RequireRowOpen)."""
        ch = self.ch
        if all_banks:
            rows = ch.open_row
            row = addr.row
            if rows.count(row) == self.banks:
                return command
            if any(r is not None for r in rows):  # ACT_AB needs every bank closed, also where some hold this row
                return ch.command("PREA")
            return ch.command("ACT_AB")
        if addr.bank_group < 0:
            return command
        r = ch.open_row[addr.bank_group * self.banks_per_group + addr.bank]
        if r is None:
            return ch.command("ACT")
        if r != addr.row:
            return ch.command("PRE")
        return command


#: Column requests between progress reports inside one instruction (an opsize of 10^9 runs for minutes).
PROGRESS_COLUMNS = 1 << 16

class AimSystem:
    """The AiM DMA and one controller per channel of ``standard`` (default ``gddr6-aim``, 32 channels)."""

    def __init__(self, standard: DramStandard | str = "gddr6-aim", channels: int | None = None) -> None:
        self.standard = load_standard(standard) if isinstance(standard, str) else standard
        if self.standard.aim is None or "TMOD" not in self.standard.all_commands:
            raise HwsimError(f"DRAM standard '{self.standard.name}' lacks the AiM instruction commands (use gddr6-aim)")
        self.channels = channels or self.standard.organization.channels.value
        self.rows = self.standard.organization.rows.value
        self.columns = self.standard.organization.columns.value
        # channels that received identical request streams are in identical states: one controller serves each
        # such class (CENT's instructions address every channel of a block at once), split when streams diverge
        self.classes: list[tuple[frozenset[int], _Controller]] = [(frozenset(range(self.channels)), _Controller(self.standard))]
        self.tick = 0  # next DMA decode tick
        self.cycles = 0
        self.afm = 0
        self.instructions = 0
        self._cmd_ids: dict[str, str] = {}
        self._probe = self.classes[0][1]
        self._progress: tuple[Callable[[int, int], None], int] | None = None  # run's callback and total requests
        self._issued = 0  # column requests of the instructions run so far

    def _command(self, name: str | None) -> str | None:
        if name is None:
            return None
        c = self._cmd_ids.get(name)
        if c is None:
            c = self._cmd_ids[name] = self._probe.ch.command(name)
        return c

    def _check(self, ids: list[int], where: str) -> None:
        bad = [c for c in ids if not 0 <= c < self.channels]
        if bad:
            raise HwsimError(f"{where}: channel {bad[0]} outside this system's {self.channels} channels")

    def run(self, program: list[Isr], progress: Callable[[int, int], None] | None = None) -> AimResult:
        """Execute ``program``; the result's cycles end where the last blocking instruction returned (EOC), or
        where the last command's data is done when the program has no EOC. ``progress(done, total)``: column
        requests issued so far (an instruction issues ``opsize`` of them), now and then."""
        total = sum(max(1, isr.opsize) for isr in program)
        self._progress = (progress, total) if progress is not None else None
        self._issued = 0
        for i, isr in enumerate(program):
            self.step(isr, f"instruction {i + 1} ({isr.op})")
            self._issued += max(1, isr.opsize)
            if progress is not None:
                progress(self._issued, total)
        for _, c in self.classes:
            c._advance(None)
        counts: Counter = Counter()
        for members, c in self.classes:
            counts.update({getattr(k, "value", k): v * len(members) for k, v in c.ch.counts.items()})
        end = max([self.cycles, self.tick, *(c.last for _, c in self.classes)])
        return AimResult(end, counts, self.instructions)

    def step(self, isr: Isr, where: str = "instruction") -> None:
        """Decode one host instruction at the next DMA tick and serve its requests."""
        self.instructions += 1
        tick = self.tick
        op = isr.op
        if op in ("GPR", "CFR"):
            if op == "CFR" and isr.cfr == 2:
                self.afm = isr.data
            self.tick = tick + 1
            return
        if op in ("R_MEM", "W_MEM"):
            self._check([isr.channel], where)
            kind = "read" if op == "R_MEM" else "write"
            spec = ISRS["RD_SBK" if kind == "read" else "WR_SBK"]
            c = self._controllers([isr.channel])[0]
            sent = c.admit(kind, tick)
            c.run(spec, kind, self._command(spec.command), self._bank_address(isr.bank, isr.row, 0, where), sent)
            self.tick = sent + 1
            return
        spec = ISRS[op]
        if spec.kind == "dma":
            self.tick = tick + 1
            return
        if spec.kind == "sync":
            ids = list(range(self.channels))
        else:
            ids = channels_of(isr.mask, 32)
            self._check(ids, where)
        command = self._command(spec.command)
        row = isr.row
        if op == "AF":
            row = self.rows - 1 - (self.afm % 8)  # the activation-function LUT's reserved row
        controllers = self._controllers(ids)
        last_sent = tick
        returned = 0
        opsize = isr.opsize if "opsize" in spec.fields else 1
        report = self._progress
        for i in range(opsize):
            if report is not None and i and not i % PROGRESS_COLUMNS:  # a long instruction shows its own progress
                report[0](self._issued + i, report[1])
            col = (isr.col + i) % self.columns
            if spec.all_banks or spec.kind == "sync":
                addr = BankAddress(0, 0, row, col)
            elif spec.command in ("WR_GB", "WR_MAC", "RD_MAC", "RD_AF"):
                addr = BankAddress(-1, -1, 0, 0)
            else:
                addr = self._bank_address(isr.bank, row, col, where)
            for c in controllers:
                sent = c.admit(spec.kind, tick)
                done = c.run(spec, spec.kind, command, addr, sent)
                last_sent = max(last_sent, sent)
                returned = max(returned, done)
        self.tick = max(last_sent + 1, returned) if spec.blocking else last_sent + 1
        if op == "EOC":
            self.cycles = max(self.cycles, returned)

    def _controllers(self, ids: list[int]) -> list[_Controller]:
        """One controller per class of identical channels among ``ids``, splitting classes that ``ids`` cut."""
        wanted = frozenset(ids)
        out: list[_Controller] = []
        classes: list[tuple[frozenset[int], _Controller]] = []
        for members, c in self.classes:
            inside = members & wanted
            if not inside:
                classes.append((members, c))
                continue
            if inside != members:
                classes.append((members - inside, copy.deepcopy(c)))
            classes.append((inside, c))
            out.append(c)
        self.classes = classes
        return out

    def _bank_address(self, bank: int, row: int, col: int, where: str) -> BankAddress:
        per = self._probe.banks_per_group
        if not 0 <= bank < self._probe.banks:
            raise HwsimError(f"{where}: bank {bank} outside 0..{self._probe.banks - 1}")
        if not 0 <= row < self.rows:
            raise HwsimError(f"{where}: row {row} outside 0..{self.rows - 1}")
        return BankAddress(bank // per, bank % per, row, col)


def simulate(program: list[Isr] | str, standard: DramStandard | str = "gddr6-aim") -> AimResult:
    """Run a program (instructions, or trace text) on a fresh :class:`AimSystem`."""
    if isinstance(program, str):
        program = parse_trace(program)
    return AimSystem(standard).run(program)
