"""A small functional SASS emulator (sm_80 / sm_90, the subset of opcodes that the MMHA cubins use),
executing one thread block with per-lane state and Volta-style independent thread scheduling:

* every warp holds a list of thread groups (active mask + pc); a divergent branch splits a group, and
  groups merge again only at BSYNC (the convergence barrier set by BSSY) -- as on Volta+ hardware;
* one issue = one warp-instruction of one group, whether or not its guard predicate is true
  (predicated-off instructions issue too); a divergent region therefore issues both sides;
* BAR.SYNC waits for every live group of every warp of the block; BRA.DIV is taken iff the group is
  not fully converged; CALL/RET use the return address held in a register, as the SASS does.

Values are computed concretely (integer ops exactly, fp32/fp16/fp8 via numpy / ml_dtypes), so every
branch -- thread-index dependent or data dependent -- is decided by the actual data of the run.
Any opcode/operand form it does not know raises an exception (nothing is silently guessed).

Its semantics of each instruction are inferred from NVIDIA's public ISA notes and the SASS itself, not checked on a
GPU. Register files are ``(registers, 32 lanes)`` arrays per warp; uniform registers are kept per lane with equal
values. Used by :mod:`block`, which sets up the MMHA kernel's arguments and counts the issues.
"""

from __future__ import annotations

import collections
import re

import ml_dtypes
import numpy as np
from sass import parse as parse_file  # noqa: F401  (re-exported for the callers)

M32 = 0xFFFFFFFF
#: register numbers of the zero registers and the true predicates
RZ = 255
PT = 7
URZ = 63
UPT = 7
F8 = ml_dtypes.float8_e4m3fn


class EmuError(RuntimeError):
    """An instruction or operand form the emulator does not model, or a state it cannot continue from."""


# ----------------------------------------------------------------------------------------------- operands
class Opd:
    """One parsed operand. ``k`` is its kind: ``R``/``UR`` (register, number ``i``), ``P``/``UP`` (predicate),
    ``IMM``/``FIMM`` (integer or float immediate ``val``), ``C`` (constant ``c[bank][off]``), ``MEM`` (address: base
    register ``mb``, 64-bit if ``m64``, uniform register ``mur``, offset ``off``), ``SR`` (special register ``sr``),
    ``LABEL``, ``B`` (convergence barrier), ``SB``, ``PR`` or ``SYM``. ``neg``/``abs``/``inv`` are the ``-``,
    ``|x|`` and ``!``/``~`` modifiers, ``swz`` a half or byte selector (``H0_H0``, ``H1``, ...)."""

    __slots__ = ("k", "i", "neg", "abs", "inv", "swz", "bank", "off", "val", "txt", "mb", "mbk", "m64", "mur", "label", "sr")

    def __init__(self, k, txt):
        self.k = k
        self.txt = txt
        self.i = None
        self.neg = False
        self.abs = False
        self.inv = False
        self.swz = None
        self.bank = None
        self.off = 0
        self.val = None
        self.mb = None
        self.mbk = None
        self.m64 = False
        self.mur = None
        self.label = None
        self.sr = None

    def __repr__(self):
        return f"<{self.k} {self.txt}>"


FIMM_RE = re.compile(r"^[+-]?(\d+(\.\d*)?([eE][+-]?\d+)?|INF|QNAN|NAN)$")


def parse_fimm(s: str) -> np.float32:
    """A float immediate as nvdisasm prints it (``1.4426950216293334961``, ``-INF``, ``QNAN``)."""
    s = s.strip()
    t = s.lstrip("+-")
    sign = -1.0 if s.startswith("-") else 1.0
    if t == "INF":
        return np.float32(sign * np.inf)
    if t in ("QNAN", "NAN"):
        return np.float32(np.nan) if sign > 0 else -np.float32(np.nan)
    return np.float32(float(s))


def parse_opd(s: str) -> Opd:
    """Parse one operand's text."""
    s = s.strip()
    txt = s
    if s.startswith("`("):
        o = Opd("LABEL", txt)
        o.label = s[2:-1]
        return o
    if s.startswith("desc["):
        s = s[s.index("]") + 1 :]
    if s.startswith("["):
        o = Opd("MEM", txt)
        inner = s[1:-1]
        parts = [p for p in re.split(r"\+", inner) if p != ""]
        for p in parts:
            p = p.strip()
            if re.match(r"^-?0x[0-9a-f]+$", p):
                o.off += int(p, 16)
            elif p.startswith("UR"):
                o.mur = URZ if p == "URZ" else int(p[2:])
            elif p.startswith("R"):
                if p.endswith(".64"):
                    o.m64 = True
                    p = p[:-3]
                p = p.replace(".reuse", "")
                o.mb = RZ if p == "RZ" else int(p[1:])
                o.mbk = "R"
            else:
                raise EmuError("mem operand " + txt)
        return o
    inv = False
    neg = False
    ab = False
    if s.startswith("!") or s.startswith("~"):
        inv = True
        s = s[1:]
    if s.startswith("-") and len(s) > 1 and (s[1] in "RUc|"):
        neg = True
        s = s[1:]
    if s.startswith("|") and "|" in s[1:]:
        ab = True
        j = s.index("|", 1)
        rest = s[j + 1 :]
        s = s[1:j] + rest
    s = s.replace(".reuse", "")
    swz = None
    m = re.match(r"^(.*?)\.(H0_H0|H1_H1|H0|H1|F32|B\d)$", s)
    if m and not s.startswith("c["):
        s, swz = m.group(1), m.group(2)
    if s.startswith("c["):
        m = re.match(r"^c\[(0x[0-9a-f]+)\]\[(0x[0-9a-f]+)\]$", s)
        if not m:
            raise EmuError("const operand " + txt)
        o = Opd("C", txt)
        o.bank = int(m.group(1), 16)
        o.off = int(m.group(2), 16)
    elif re.match(r"^R\d+$", s) or s == "RZ":
        o = Opd("R", txt)
        o.i = RZ if s == "RZ" else int(s[1:])
    elif re.match(r"^UR\d+$", s) or s == "URZ":
        o = Opd("UR", txt)
        o.i = URZ if s == "URZ" else int(s[2:])
    elif re.match(r"^P[0-6T]$", s):
        o = Opd("P", txt)
        o.i = PT if s == "PT" else int(s[1:])
    elif re.match(r"^UP[0-6T]$", s):
        o = Opd("UP", txt)
        o.i = UPT if s == "UPT" else int(s[2:])
    elif re.match(r"^B\d+$", s):
        o = Opd("B", txt)
        o.i = int(s[1:])
    elif re.match(r"^SB\d+$", s):
        o = Opd("SB", txt)
    elif s.startswith("SR_") or s == "SRZ":
        o = Opd("SR", txt)
        o.sr = s
    elif s == "PR":
        o = Opd("PR", txt)
    elif re.match(r"^-?0x[0-9a-f]+$", s):
        o = Opd("IMM", txt)
        v = int(s, 16)
        o.val = v & M32
    elif FIMM_RE.match(s):
        o = Opd("FIMM", txt)
        o.val = parse_fimm(s)
    elif "@lo(" in s or "@hi(" in s:
        o = Opd("SYM", txt)
    else:
        raise EmuError("operand " + txt)
    o.inv = inv
    o.neg = neg
    o.abs = ab
    o.swz = swz
    return o


class Inst:
    """One parsed instruction: guard predicate (``gp`` as ``("P", n)`` or ``("UP", n)``, negated if ``gneg``), opcode
    ``op`` with ``base`` and the set of modifiers ``mods``, operands ``opds``, and its index ``idx`` in the listing."""

    __slots__ = ("addr", "txt", "gp", "gneg", "op", "base", "mods", "opds", "idx")

    def __init__(self, addr, txt, idx):
        self.addr = addr
        self.txt = txt
        self.idx = idx
        m = re.match(r"^@(!?)(U?P[0-6T])\s+", txt)
        self.gp = None
        self.gneg = False
        body = txt
        if m:
            self.gneg = m.group(1) == "!"
            p = m.group(2)
            self.gp = ("UP", UPT if p == "UPT" else int(p[2:])) if p.startswith("UP") else ("P", PT if p == "PT" else int(p[1:]))
            body = txt[m.end() :]
        sp = body.split(None, 1)
        self.op = sp[0]
        self.base = self.op.split(".")[0]
        self.mods = set(self.op.split(".")[1:])
        rest = sp[1] if len(sp) > 1 else ""
        if self.base == "RET":
            rest = rest.split("`")[0].strip()
        self.opds = [parse_opd(x) for x in rest.split(",")] if rest.strip() else []


# ----------------------------------------------------------------------------------------------- helpers
def f32(u: np.ndarray) -> np.ndarray:
    """uint32 bits as float32."""
    return np.asarray(u, dtype=np.uint32).view(np.float32)


def u32f(f: np.ndarray) -> np.ndarray:
    """float32 as its uint32 bits."""
    return np.asarray(f, dtype=np.float32).view(np.uint32)


def lut3(a: np.ndarray, b: np.ndarray, c: np.ndarray, lut: int) -> np.ndarray:
    """The bitwise three-input function with truth table ``lut`` (``LOP3.LUT``)."""
    a = a.astype(np.uint32)
    b = b.astype(np.uint32)
    c = c.astype(np.uint32)
    r = np.zeros_like(a)
    for i in range(8):
        if (lut >> i) & 1:
            ta = a if i & 4 else ~a
            tb = b if i & 2 else ~b
            tc = c if i & 1 else ~c
            r |= ta & tb & tc
    return r


def plut3(a: np.ndarray, b: np.ndarray, c: np.ndarray, lut: int) -> np.ndarray:
    """The three-input predicate function with truth table ``lut`` (``PLOP3.LUT``)."""
    r = np.zeros_like(a, dtype=bool)
    for i in range(8):
        if (lut >> i) & 1:
            r |= (a if i & 4 else ~a) & (b if i & 2 else ~b) & (c if i & 1 else ~c)
    return r


def h2_get(u: np.ndarray, swz: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The (low, high) float16 halves of packed uint32 values, after the half selector ``swz``."""
    u = np.asarray(u, dtype=np.uint32)
    lo = (u & 0xFFFF).astype(np.uint16).view(np.float16)
    hi = (u >> 16).astype(np.uint16).view(np.float16)
    if swz in (None, "F32"):
        return lo, hi
    if swz == "H0_H0":
        return lo, lo
    if swz == "H1_H1":
        return hi, hi
    raise EmuError("h2 swizzle " + str(swz))


def h2_pack(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Two float16 arrays packed into uint32 values (``lo`` in bits 0-15)."""
    lo = np.asarray(lo, dtype=np.float16).view(np.uint16).astype(np.uint32)
    hi = np.asarray(hi, dtype=np.float16).view(np.uint16).astype(np.uint32)
    return lo | (hi << 16)


def round_f32_dir(x64: np.ndarray, mode: str) -> np.ndarray:
    """float64 values rounded to float32 with the rounding mode ``RN``, ``RZ``, ``RM`` or ``RP``."""
    r = x64.astype(np.float32)
    if mode == "RN":
        return r
    r64 = r.astype(np.float64)
    if mode == "RP":
        fix = r64 < x64
        r = np.where(fix, np.nextafter(r, np.float32(np.inf)), r)
    elif mode == "RM":
        fix = r64 > x64
        r = np.where(fix, np.nextafter(r, np.float32(-np.inf)), r)
    elif mode == "RZ":
        fix = np.abs(r64) > np.abs(x64)
        r = np.where(fix, np.nextafter(r, np.float32(0)), r)
    return r.astype(np.float32)


def ftz(x: np.ndarray) -> np.ndarray:
    """float32 with subnormals flushed to (signed) zero."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(np.abs(x) < np.float32(1.1754943508222875e-38), np.float32(0) * np.sign(x), x).astype(np.float32)


def round_by(a: np.ndarray, mods: set[str]) -> np.ndarray:
    """``a`` rounded by the instruction's rounding modifier (FLOOR, CEIL, TRUNC; to nearest even without one), as
    FRND and F2I apply it (an instruction carries at most one of them)."""
    if "FLOOR" in mods:
        return np.floor(a)
    if "CEIL" in mods:
        return np.ceil(a)
    if "TRUNC" in mods:
        return np.trunc(a)
    return np.rint(a)


# ----------------------------------------------------------------------------------------------- machine
class Memory:
    """Global memory: separate allocations (base address, uint8 array, name), 1 MiB apart; an access outside them
    raises :class:`EmuError`."""

    def __init__(self):
        self.regions = []
        self.next = 0x7F0000000000

    def alloc(self, nbytes: int, name: str, data: np.ndarray | None = None) -> int:
        """Allocate ``nbytes`` (zeros, or ``data``'s bytes) and return the base address."""
        base = self.next
        self.next += (nbytes + 0xFFFFF) & ~0xFFFFF
        self.next += 0x100000
        buf = np.zeros(nbytes, dtype=np.uint8)
        if data is not None:
            b = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
            buf[: len(b)] = b
        self.regions.append((base, buf, name))
        return base

    def find(self, addr: int, n: int) -> tuple[np.ndarray, int]:
        """The allocation holding ``[addr, addr + n)`` and the offset of ``addr`` in it."""
        for base, buf, _name in self.regions:
            if base <= addr and addr + n <= base + len(buf):
                return buf, addr - base
        raise EmuError(f"global access outside allocations: {addr:#x} (+{n})")

    def view(self, base: int, dtype: np.dtype | type, count: int) -> np.ndarray:
        """``count`` elements of ``dtype`` at address ``base``, as a view."""
        buf, o = self.find(base, np.dtype(dtype).itemsize * count)
        return buf[o : o + np.dtype(dtype).itemsize * count].view(dtype)


class Group:
    """Threads of a warp that run together: their lane mask, program counter (an instruction index) and what they
    wait on (None, ``("bar",)``, ``("bsync", barrier, pc)`` or ``("wsync", mask, pc)``)."""

    __slots__ = ("mask", "pc", "wait", "gid")
    _n = 0

    def __init__(self, mask, pc):
        self.mask = mask.copy()
        self.pc = pc
        self.wait = None
        Group._n += 1
        self.gid = Group._n


class Warp:
    """One warp's state: registers ``R``, predicates ``P``, uniform registers ``UR`` and predicates ``UP``,
    convergence barriers ``B``, local memory, its thread groups, and the log of what it issued: ``issues`` holds
    (instruction index, lanes in the group, lanes with the guard true) per issue, ``brlog`` (instruction index,
    lanes in the group, lanes taking the branch) per conditional branch."""

    def __init__(self, wid: int):
        self.wid = wid
        self.R = np.zeros((256, 32), dtype=np.uint32)
        self.P = np.zeros((8, 32), dtype=bool)
        self.P[PT] = True
        self.UR = np.zeros((64, 32), dtype=np.uint32)
        self.UP = np.zeros((8, 32), dtype=bool)
        self.UP[UPT] = True
        self.B = np.zeros((16, 32), dtype=np.uint64)
        self.exited = np.zeros(32, dtype=bool)
        self.groups = [Group(np.ones(32, dtype=bool), 0)]
        self.local = np.zeros((32, 0x2000), dtype=np.uint8)
        self.brlog = []  # (inst index, lanes in group, lanes taking the branch)
        self.issues = []  # (inst index, number of active lanes in the group, number of lanes with guard true)


class Block:
    """One thread block of ``ntid`` threads running the kernel listing ``insts`` (``(address, text)`` pairs from
    :func:`sass.parse`), with constant bank 0 ``cbank0`` (launch constants and parameters), the other banks
    ``cbanks`` (``{bank: bytes}``), global memory ``mem`` and block index ``ctaid``. :meth:`run` runs it to the end;
    the issues are then in each warp's log and the barrier count in ``barriers``."""

    def __init__(self, insts: list[tuple[int, str]], labels: dict[str, int], cbank0: np.ndarray,
                 cbanks: dict[int, np.ndarray], mem: Memory, ctaid: tuple[int, int, int], ntid: int = 256,
                 smem_bytes: int = 0x20000, nctaid: tuple[int, int, int] = (1, 1, 1)):
        self.insts = [Inst(a, t, i) for i, (a, t) in enumerate(insts)]
        self.labels = labels
        self.a2i = {a: i for i, (a, _) in enumerate(insts)}
        self.cb = {0: cbank0}
        self.cb.update(cbanks)
        self.mem = mem
        self.ctaid = ctaid
        self.ntid = ntid
        self.nctaid = nctaid
        self.smem = np.zeros(smem_bytes, dtype=np.uint8)
        self.warps = [Warp(w) for w in range((ntid + 31) // 32)]
        self.const_reads = collections.Counter()
        self.barriers = 0

    # ---------------- operand read
    def cread(self, bank: int, off: int, n: int = 4) -> int:
        """``n`` little-endian bytes of constant bank ``bank`` at ``off``."""
        b = self.cb.get(bank)
        if b is None or off + n > len(b):
            raise EmuError(f"constant read c[{bank:#x}][{off:#x}] outside bank")
        self.const_reads[(bank, off)] += 1
        return int.from_bytes(bytes(b[off : off + n]), "little")

    def sreg(self, w: Warp, name: str) -> np.ndarray:
        """A special register (``SR_TID.X``, ``SR_CTAID.X``, ``SR_LANEID``, ...) for the 32 lanes."""
        lane = np.arange(32, dtype=np.uint32)
        tid = w.wid * 32 + lane
        if name == "SR_TID.X":
            return tid
        if name in ("SR_TID.Y", "SR_TID.Z", "SRZ"):
            return np.zeros(32, np.uint32)
        if name == "SR_CTAID.X":
            return np.full(32, self.ctaid[0], np.uint32)
        if name == "SR_CTAID.Y":
            return np.full(32, self.ctaid[1], np.uint32)
        if name == "SR_CTAID.Z":
            return np.full(32, self.ctaid[2], np.uint32)
        if name == "SR_LANEID":
            return lane
        if name == "SR_CgaCtaId":
            return np.zeros(32, np.uint32)
        raise EmuError("special register " + name)

    def raw(self, w: Warp, o: Opd) -> np.ndarray:
        """An operand's 32-bit values for the 32 lanes, without its modifiers."""
        if o.k == "R":
            return w.R[o.i] if o.i != RZ else np.zeros(32, np.uint32)
        if o.k == "UR":
            return w.UR[o.i] if o.i != URZ else np.zeros(32, np.uint32)
        if o.k == "IMM":
            return np.full(32, o.val, np.uint32)
        if o.k == "FIMM":
            return np.full(32, u32f(o.val), np.uint32)
        if o.k == "C":
            return np.full(32, self.cread(o.bank, o.off), np.uint32)
        if o.k == "SR":
            return self.sreg(w, o.sr)
        raise EmuError(f"value of operand {o}")

    def ival(self, w: Warp, o: Opd) -> np.ndarray:
        """An operand as uint32, with ``~`` (invert) and ``-`` (two's complement) applied."""
        v = self.raw(w, o).astype(np.uint32)
        if o.inv:
            v = ~v
        if o.neg:
            v = (~v + np.uint32(1)).astype(np.uint32)
        return v.astype(np.uint32)

    def fval(self, w: Warp, o: Opd) -> np.ndarray:
        """An operand as float32, with ``|x|`` and ``-`` applied."""
        v = f32(self.raw(w, o)).copy()
        if o.abs:
            v = np.abs(v)
        if o.neg:
            v = -v
        return v.astype(np.float32)

    def pval(self, w: Warp, o: Opd) -> np.ndarray:
        """A predicate operand's lanes, with ``!`` applied."""
        if o.k == "P":
            v = w.P[o.i]
        elif o.k == "UP":
            v = w.UP[o.i]
        else:
            raise EmuError(f"predicate operand {o}")
        return ~v if o.inv else v.copy()

    def wide(self, w: Warp, o: Opd) -> np.ndarray:
        """A 64-bit operand: a register pair, a constant pair, RZ or an immediate."""
        if o.k == "R":
            if o.i == RZ:
                return np.zeros(32, np.uint64)
            return w.R[o.i].astype(np.uint64) | (w.R[o.i + 1].astype(np.uint64) << np.uint64(32))
        if o.k == "UR":
            if o.i == URZ:
                return np.zeros(32, np.uint64)
            return w.UR[o.i].astype(np.uint64) | (w.UR[o.i + 1].astype(np.uint64) << np.uint64(32))
        if o.k == "C":
            return np.full(32, self.cread(o.bank, o.off, 8), np.uint64)
        if o.k == "IMM":
            return np.full(32, o.val, np.uint64)
        raise EmuError(f"wide operand {o}")

    # ---------------- writes
    def wr(self, w: Warp, o: Opd, val: np.ndarray, m: np.ndarray) -> None:
        """Write ``val`` to register ``o`` in the lanes of mask ``m`` (a uniform register takes the first lane's)."""
        val = np.asarray(val)
        if val.dtype != np.uint32:
            val = val.astype(np.uint64).astype(np.uint32) if val.dtype.kind in "iu" else val.astype(np.uint32)
        val = np.broadcast_to(val, (32,))
        if o.k == "R":
            if o.i != RZ:
                w.R[o.i][m] = val[m]
        elif o.k == "UR":
            if o.i != URZ:
                w.UR[o.i][:] = val[np.argmax(m)] if m.any() else w.UR[o.i]
        else:
            raise EmuError(f"write to {o}")

    def wrn(self, w: Warp, o: Opd, i: int, val: np.ndarray, m: np.ndarray) -> None:
        """Write ``val`` to the register ``i`` after ``o`` (the high half of a pair) in the lanes of ``m``."""
        if o.k == "R":
            if o.i == RZ:
                return
            w.R[o.i + i][m] = np.broadcast_to(np.asarray(val, dtype=np.uint32), (32,))[m]
        elif o.k == "UR":
            if o.i == URZ:
                return
            v = np.broadcast_to(np.asarray(val, dtype=np.uint32), (32,))
            if m.any():
                w.UR[o.i + i][:] = v[np.argmax(m)]
        else:
            raise EmuError(f"write to {o}")

    def wp(self, w: Warp, o: Opd, val: np.ndarray, m: np.ndarray) -> None:
        """Write predicate ``o`` in the lanes of ``m`` (PT and UPT are not written)."""
        if o.k == "P":
            if o.i != PT:
                w.P[o.i][m] = np.broadcast_to(val, (32,))[m]
        elif o.k == "UP":
            if o.i != UPT:
                v = np.broadcast_to(val, (32,))
                if m.any():
                    w.UP[o.i][:] = v[np.argmax(m)]
        else:
            raise EmuError(f"pred write {o}")

    # ---------------- memory
    def addr(self, w: Warp, o: Opd) -> np.ndarray:
        """The 64-bit addresses of a memory operand for the 32 lanes."""
        if o.mbk == "R" and o.mb != RZ:
            a = w.R[o.mb].astype(np.uint64)
            if o.m64:
                a = a | (w.R[o.mb + 1].astype(np.uint64) << np.uint64(32))
        else:
            a = np.zeros(32, np.uint64)
        if o.mur is not None and o.mur != URZ:
            a = a + w.UR[o.mur].astype(np.uint64)
        return (a.astype(np.int64) + o.off).astype(np.uint64)

    def space_rw(self, space: str, w: Warp, lane: int, a: int, n: int, data: bytes | None = None) -> bytes | None:
        """Read ``n`` bytes (or write ``data``) at address ``a`` of global (``G``), shared (``S``) or local (``L``)
        memory for one lane."""
        if space == "G":
            buf, off = self.mem.find(int(a), n)
        elif space == "S":
            a = int(a) & 0xFFFFFF
            if a + n > len(self.smem):
                raise EmuError(f"shared access {a:#x}")
            buf, off = self.smem, a
        elif space == "L":
            a = int(a) & 0xFFFFFF
            if a + n > w.local.shape[1]:
                raise EmuError(f"local access {a:#x}")
            buf, off = w.local[lane], a
        if data is None:
            return bytes(buf[off : off + n])
        buf[off : off + n] = np.frombuffer(data, dtype=np.uint8)

    # ---------------- execution of one instruction for a group
    def exec(self, w: Warp, g: Group, ins: Inst) -> list[tuple[np.ndarray, int]] | str | tuple[str, int]:
        """Issue ``ins`` for the group ``g`` (logged in ``w.issues``) and return the groups that continue, as
        ``(mask, next pc)`` pairs, or ``"BSYNC"``, ``"BAR"`` or ``("WSYNC", mask)`` when the group must wait."""
        o = ins.opds
        b = ins.base
        mods = ins.mods
        if ins.gp is None:
            gm = np.ones(32, bool)
        else:
            gm = (w.P if ins.gp[0] == "P" else w.UP)[ins.gp[1]].copy()
            if ins.gneg:
                gm = ~gm
        m = g.mask & gm
        w.issues.append((ins.idx, int(g.mask.sum()), int(m.sum())))
        nxt = g.pc + 1
        # ---------------------------------------------------------------- control
        if b in ("BRA", "CALL", "JMP"):
            if b == "BRA" and "DIV" in mods:
                msk = int(self.ival(w, o[0])[0])
                want = np.array([(msk >> lane) & 1 for lane in range(32)], bool) & ~w.exited
                taken = not np.array_equal(g.mask & want, want)
                w.brlog.append((ins.idx, int(g.mask.sum()), int(g.mask.sum()) if taken else 0))
                tgt = self.a2i[self.labels[o[1].label]]
                return [(g.mask, tgt if taken else nxt)]
            tgt = self.a2i[self.labels[o[-1].label]]
            if len(o) == 2 and o[0].k == "P":  # '@Pg BRA Pq, target': taken iff Pg && Pq
                m = m & self.pval(w, o[0])
                gm = gm & self.pval(w, o[0])
            elif len(o) != 1:
                raise EmuError("BRA form")
            t = m
            f = g.mask & ~gm
            if ins.gp is not None:
                w.brlog.append((ins.idx, int(g.mask.sum()), int(t.sum())))
            out = []
            if t.any():
                out.append((t, tgt))
            if f.any():
                out.append((f, nxt))
            return out
        if b == "RET":
            tg = w.R[o[0].i]
            out = []
            for v in np.unique(tg[g.mask]):
                out.append((g.mask & (tg == v), self.a2i[int(v)]))
            return out
        if b == "EXIT":
            w.exited |= m
            rest = g.mask & ~m
            return [(rest, nxt)] if rest.any() else []
        if b == "BSSY":
            bits = sum(1 << lane for lane in range(32) if g.mask[lane])
            w.B[o[0].i][g.mask] = bits
            return [(g.mask, nxt)]
        if b == "BSYNC":
            return "BSYNC"
        if b == "BAR":
            if "SYNC" not in mods:
                raise EmuError("BAR variant " + ins.txt)
            return "BAR"
        if b == "WARPSYNC":
            # __syncwarp: the threads of the mask wait for each other and reconverge
            if "COLLECTIVE" in mods:
                raise EmuError("WARPSYNC.COLLECTIVE executed")
            bits = M32 if "ALL" in mods else int(self.ival(w, o[0])[0])
            if not m.any():
                return [(g.mask, nxt)]
            if not np.array_equal(m, g.mask):
                raise EmuError("partially predicated WARPSYNC")
            return ("WSYNC", bits)
        if b in ("NOP", "DEPBAR", "ENDCOLLECTIVE"):
            return [(g.mask, nxt)]
        if not m.any():
            return [(g.mask, nxt)]
        self.alu(w, ins, m)
        return [(g.mask, nxt)]

    def alu(self, w: Warp, ins: Inst, m: np.ndarray) -> None:
        """Execute a non-control instruction in the lanes of ``m`` (those active with the guard true)."""
        o = ins.opds
        b = ins.base
        mods = ins.mods

        def u64(x: Opd) -> np.ndarray:  # unsigned 32-bit value, widened
            return self.ival(w, x).astype(np.uint64)

        def s64(x: Opd) -> np.ndarray:  # signed 32-bit value, widened
            return self.ival(w, x).view(np.int32).astype(np.int64)

        def f32v(x: Opd) -> np.ndarray:  # fp32 value with its modifiers
            return self.fval(w, x)

        # ---------------------------------------------------------------- moves / specials
        if b in ("MOV", "UMOV"):
            if o[1].k == "SYM":
                raise EmuError("symbol address " + o[1].txt)
            self.wr(w, o[0], self.ival(w, o[1]), m)
            return
        if b in ("S2R", "S2UR", "CS2R"):
            v = self.sreg(w, o[1].sr)
            self.wr(w, o[0], v, m)
            if b == "CS2R":
                self.wrn(w, o[0], 1, v, m)
            return
        if b == "R2UR":
            self.wr(w, o[0], self.raw(w, o[1]), m)
            return
        if b in ("LDC", "ULDC"):
            c = o[1]
            n = 8 if "64" in mods else 4
            if "U8" in mods:
                v = self.cread(c.bank, c.off, 1)
            elif "S8" in mods:
                v = self.cread(c.bank, c.off, 1)
                v = v - 256 if v > 127 else v
            elif "U16" in mods:
                v = self.cread(c.bank, c.off, 2)
            else:
                v = self.cread(c.bank, c.off, n)
            self.wr(w, o[0], np.full(32, v & M32, np.uint32), m)
            if n == 8:
                self.wrn(w, o[0], 1, np.full(32, (v >> 32) & M32, np.uint32), m)
            return
        if b == "P2R":
            pr = np.zeros(32, np.uint32)
            for i in range(7):
                pr |= w.P[i].astype(np.uint32) << i
            msk = self.ival(w, o[3])
            v = (self.ival(w, o[2]) & ~msk) | (pr & msk)
            self.wr(w, o[0], v, m)
            return
        # ---------------------------------------------------------------- integer
        if b in ("IMAD", "UIMAD"):
            if "WIDE" in mods:
                if "U32" in mods:
                    p = u64(o[1]) * u64(o[2])
                else:
                    p = (s64(o[1]) * s64(o[2])).astype(np.uint64)
                r = p + self.wide(w, o[3]) if o[3].k != "IMM" else p + u64(o[3])
                self.wr(w, o[0], r & M32, m)
                self.wrn(w, o[0], 1, (r >> np.uint64(32)) & M32, m)
                return
            if "HI" in mods:
                if "U32" in mods:
                    p = [int(x) * int(y) for x, y in zip(u64(o[1]), u64(o[2]))]
                else:
                    p = [int(x) * int(y) for x, y in zip(s64(o[1]), s64(o[2]))]
                c = self.wide(w, o[3]) if o[3].k in ("R", "UR") else u64(o[3])
                r = np.array([((pp + int(cc)) >> 32) & M32 for pp, cc in zip(p, c)], np.uint64)
                self.wr(w, o[0], r, m)
                return
            if "X" in mods:
                r = u64(o[1]) * u64(o[2]) + u64(o[3]) + self.pval(w, o[4]).astype(np.uint64)
                self.wr(w, o[0], r & M32, m)
                return
            r = (u64(o[1]) * u64(o[2]) + u64(o[3])) & M32
            self.wr(w, o[0], r, m)
            return
        if b in ("IADD3", "UIADD3"):
            d = o[0]
            rest = o[1:]
            couts = []
            while rest and rest[0].k in ("P", "UP") and len(rest) > 3:
                couts.append(rest[0])
                rest = rest[1:]
            srcs = rest[:3]
            cins = rest[3:]
            if "X" in mods:
                tot = np.zeros(32, np.uint64)
                for s in srcs:
                    v = self.raw(w, s).astype(np.uint32)
                    if s.neg or s.inv:
                        v = ~v
                    tot += v.astype(np.uint64)
                for c in cins:
                    tot += self.pval(w, c).astype(np.uint64)
            else:
                tot = np.zeros(32, np.uint64)
                for s in srcs:
                    v = self.raw(w, s).astype(np.uint32)
                    if s.inv:
                        v = ~v
                    if s.neg:
                        tot += (~v).astype(np.uint64) + np.uint64(1)
                    else:
                        tot += v.astype(np.uint64)
            self.wr(w, d, tot & M32, m)
            carry = tot >> np.uint64(32)
            for k, c in enumerate(couts):
                self.wp(w, c, carry >= (k + 1), m)
            return
        if b in ("VIADD",):
            self.wr(w, o[0], (u64(o[1]) + u64(o[2])) & M32, m)
            return
        if b in ("LEA", "ULEA"):
            d = o[0]
            rest = o[1:]
            cout = None
            if rest[0].k in ("P", "UP") and "X" not in mods:
                cout = rest[0]
                rest = rest[1:]
            if "HI" in mods:
                if "SX32" in mods:
                    a, bb, sh = rest[0], rest[1], rest[2]
                    cin = rest[3] if len(rest) > 3 else None
                    av = s64(a)
                    hi = np.where(av < 0, np.uint64(M32), np.uint64(0))
                    lo = u64(a)
                else:
                    a, bb, c, sh = rest[0], rest[1], rest[2], rest[3]
                    cin = rest[4] if len(rest) > 4 else None
                    lo = u64(a)
                    hi = u64(c)
                s = int(self.raw(w, sh)[0]) & 63
                full = [((int(h) << 32) | int(low)) for h, low in zip(hi, lo)]
                sh_hi = np.array([((x << s) >> 32) & M32 for x in full], np.uint64)
                tot = u64(bb) + sh_hi
                if "X" in mods and cin is not None:
                    tot = tot + self.pval(w, cin).astype(np.uint64)
                self.wr(w, d, tot & M32, m)
                if cout is not None:
                    self.wp(w, cout, (tot >> np.uint64(32)) > 0, m)
                return
            a, bb, sh = rest[0], rest[1], rest[2]
            s = int(self.raw(w, sh)[0]) & 31
            tot = ((u64(a) << np.uint64(s)) & M32) + u64(bb)
            if "X" in mods:
                raise EmuError("LEA.X " + ins.txt)
            self.wr(w, d, tot & M32, m)
            if cout is not None:
                self.wp(w, cout, (tot >> np.uint64(32)) > 0, m)
            return
        if b in ("SHF", "USHF"):
            lo, sh, hi = u64(o[1]), u64(o[2]), u64(o[3])
            signed = "S32" in mods or "S64" in mods
            is64 = "U64" in mods or "S64" in mods
            s = sh & np.uint64(63) if is64 else np.minimum(sh & np.uint64(63), np.uint64(32))
            res = []
            for low, sv, h in zip(lo, s, hi):
                low = int(low)
                sv = int(sv)
                h = int(h)
                x = (h << 32) | low
                if "L" in mods:
                    y = (x << sv) & ((1 << 64) - 1)
                else:
                    if signed:
                        xs = x - (1 << 64) if x >> 63 else x
                        y = (xs >> sv) & ((1 << 64) - 1)
                    else:
                        y = x >> sv
                res.append(((y >> 32) if "HI" in mods else y) & M32)
            self.wr(w, o[0], np.array(res, np.uint64), m)
            return
        if b in ("LOP3", "ULOP3"):
            d = o[0]
            rest = o[1:]
            pd = None
            if d.k in ("P", "UP"):
                pd = d
                d = rest[0]
                rest = rest[1:]
            lut = int(self.raw(w, rest[3])[0])
            r = lut3(self.ival(w, rest[0]), self.ival(w, rest[1]), self.ival(w, rest[2]), lut)
            self.wr(w, d, r, m)
            if pd is not None:
                pin = self.pval(w, rest[4])
                self.wp(w, pd, (r != 0) | pin, m)
            return
        if b == "PLOP3":
            a, bb, c = self.pval(w, o[2]), self.pval(w, o[3]), self.pval(w, o[4])
            self.wp(w, o[0], plut3(a, bb, c, int(o[5].val)), m)
            self.wp(w, o[1], plut3(a, bb, c, int(o[6].val)), m)
            return
        if b in ("ISETP", "UISETP"):
            cmp = ins.op.split(".")[1]
            uns = "U32" in mods
            bop = [x for x in ("AND", "OR", "XOR") if x in mods][0]
            a = u64(o[2]) if uns else s64(o[2])
            c = u64(o[3]) if uns else s64(o[3])

            def C(cmp, a, c):
                return {"EQ": a == c, "NE": a != c, "LT": a < c, "LE": a <= c, "GT": a > c, "GE": a >= c}[cmp]

            if "EX" in mods:
                pex = self.pval(w, o[5])
                eq = a == c
                if cmp == "EQ":
                    r = eq & pex
                elif cmp == "NE":
                    r = (~eq) | pex
                else:
                    r = C(cmp[0] + "T", a, c) | (eq & pex)
            else:
                r = C(cmp, a, c)
            pc = self.pval(w, o[4])
            f = {"AND": np.logical_and, "OR": np.logical_or, "XOR": np.logical_xor}[bop]
            self.wp(w, o[0], f(r, pc), m)
            self.wp(w, o[1], f(~r, pc), m)
            return
        if b in ("IMNMX", "VIMNMX", "VIADDMNMX"):
            uns = "U32" in mods
            if b == "VIADDMNMX":
                a = (u64(o[1]) + u64(o[2])) & M32
                c = u64(o[3])
                p = self.pval(w, o[4])
            else:
                a = u64(o[1])
                c = u64(o[2])
                p = self.pval(w, o[3])
            if not uns:
                a = a.astype(np.uint32).view(np.int32).astype(np.int64)
                c = c.astype(np.uint32).view(np.int32).astype(np.int64)
            r = np.where(p, np.minimum(a, c), np.maximum(a, c))
            self.wr(w, o[0], (r.astype(np.int64) & M32).astype(np.uint64), m)
            return
        if b in ("SEL", "USEL", "FSEL"):
            p = self.pval(w, o[3])
            if b == "FSEL":
                a = u32f(f32v(o[1]))
                c = u32f(f32v(o[2]))
            else:
                a = self.ival(w, o[1])
                c = self.ival(w, o[2])
            self.wr(w, o[0], np.where(p, a, c), m)
            return
        if b == "IABS":
            self.wr(w, o[0], (np.abs(s64(o[1])) & M32).astype(np.uint64), m)
            return
        if b in ("PRMT", "UPRMT"):
            a = self.ival(w, o[1])
            sel = self.ival(w, o[2])
            c = self.ival(w, o[3])
            if mods:
                raise EmuError("PRMT mode " + ins.txt)
            res = np.zeros(32, np.uint32)
            for bi in range(4):
                nib = (sel >> np.uint32(4 * bi)) & np.uint32(0xF)
                idx = nib & np.uint32(7)
                src = np.where(idx < 4, a, c)
                sh = (idx & np.uint32(3)) * np.uint32(8)
                byte = (src >> sh) & np.uint32(0xFF)
                byte = np.where(nib & np.uint32(8), np.where(byte & np.uint32(0x80), np.uint32(0xFF), np.uint32(0)), byte)
                res |= byte.astype(np.uint32) << np.uint32(8 * bi)
            self.wr(w, o[0], res, m)
            return
        if b in ("FLO", "POPC", "BREV"):
            raise EmuError("unimplemented " + ins.txt)
        # ---------------------------------------------------------------- fp32
        rmode = "RN"
        for r_ in ("RM", "RP", "RZ"):
            if r_ in mods:
                rmode = r_
        if b in ("FADD", "FMUL", "FFMA"):
            if b == "FADD":
                x = f32v(o[1]).astype(np.float64) + f32v(o[2]).astype(np.float64)
            elif b == "FMUL":
                x = f32v(o[1]).astype(np.float64) * f32v(o[2]).astype(np.float64)
            else:
                a, bb, c = f32v(o[1]), f32v(o[2]), f32v(o[3])
                if "FTZ" in mods:
                    a, bb, c = ftz(a), ftz(bb), ftz(c)
                x = a.astype(np.float64) * bb.astype(np.float64) + c.astype(np.float64)
            if "FTZ" in mods and b != "FFMA":
                pass
            with np.errstate(all="ignore"):
                r = round_f32_dir(x, rmode)
            if "FTZ" in mods:
                r = ftz(r)
            if "SAT" in mods:
                r = np.clip(np.nan_to_num(r, nan=0.0), 0, 1).astype(np.float32)
            self.wr(w, o[0], u32f(r), m)
            return
        if b == "FMNMX":
            a, c = f32v(o[1]), f32v(o[2])
            p = self.pval(w, o[3])
            r = np.where(p, np.fmin(a, c), np.fmax(a, c)).astype(np.float32)
            self.wr(w, o[0], u32f(r), m)
            return
        if b == "FSETP":
            parts = ins.op.split(".")
            cmp = parts[1]
            bop = [x for x in ("AND", "OR", "XOR") if x in mods][0]
            a, c = f32v(o[2]), f32v(o[3])
            if "FTZ" in mods:
                a, c = ftz(a), ftz(c)
            nan = np.isnan(a) | np.isnan(c)
            with np.errstate(invalid="ignore"):
                base = {"EQ": a == c, "NE": a != c, "LT": a < c, "LE": a <= c, "GT": a > c, "GE": a >= c, "NUM": ~nan, "NAN": nan}
                if cmp.endswith("U") and cmp not in ("NU",) and cmp[:-1] in base:
                    r = base[cmp[:-1]] | nan
                elif cmp in base:
                    r = base[cmp] & ~nan if cmp not in ("NUM", "NAN") else base[cmp]
                    if cmp == "NE":
                        r = (a != c) & ~nan
                else:
                    raise EmuError("FSETP cmp " + cmp)
            pc = self.pval(w, o[4])
            f = {"AND": np.logical_and, "OR": np.logical_or, "XOR": np.logical_xor}[bop]
            self.wp(w, o[0], f(r, pc), m)
            self.wp(w, o[1], f(~r, pc), m)
            return
        if b == "FCHK":
            a, c = f32v(o[1]).astype(np.float64), f32v(o[2]).astype(np.float64)
            with np.errstate(all="ignore"):
                ea = np.floor(np.log2(np.abs(a)))
                ec = np.floor(np.log2(np.abs(c)))
                bad = ~np.isfinite(a) | ~np.isfinite(c) | (c == 0) | (np.abs(c) < 2.0**-126) | (np.abs(c) >= 2.0**126)
                bad |= (a != 0) & ((np.abs(a) < 2.0**-126) | (ea - ec >= 126) | (ea - ec <= -126) | (np.abs(a) >= 2.0**126))
            self.wp(w, o[0], bad, m)
            return
        if b == "MUFU":
            fn = ins.op.split(".")[1]
            a = f32v(o[1]).astype(np.float64)
            with np.errstate(all="ignore"):
                r = {
                    "EX2": lambda x: np.exp2(x),
                    "LG2": lambda x: np.log2(x),
                    "RCP": lambda x: 1.0 / x,
                    "RSQ": lambda x: 1.0 / np.sqrt(x),
                    "SIN": np.sin,
                    "COS": np.cos,
                    "SQRT": np.sqrt,
                    "TANH": np.tanh,
                }[fn](a)
            self.wr(w, o[0], u32f(r.astype(np.float32)), m)
            return
        if b == "FRND":
            r = round_by(f32v(o[1]), mods)
            self.wr(w, o[0], u32f(r.astype(np.float32)), m)
            return
        if b == "F2I":
            a = f32v(o[1]).astype(np.float64)
            if "FTZ" in mods:
                a = ftz(a.astype(np.float32)).astype(np.float64)
            r = round_by(a, mods)
            if "U32" in mods:
                r = np.nan_to_num(r, nan=0)
                r = np.clip(r, 0, 2.0**32 - 1).astype(np.uint64)
            else:
                r = np.nan_to_num(r, nan=0)
                r = (np.clip(r, -(2.0**31), 2.0**31 - 1).astype(np.int64) & M32).astype(np.uint64)
            self.wr(w, o[0], r, m)
            return
        if b in ("I2F", "I2FP"):
            if "F64" in mods:
                if "S64" in mods:
                    v = self.wide(w, o[1]).astype(np.int64).astype(np.float64)
                elif "U64" in mods:
                    v = self.wide(w, o[1]).astype(np.float64)
                elif "U32" in mods:
                    v = u64(o[1]).astype(np.float64)
                else:
                    v = s64(o[1]).astype(np.float64)
                u = v.view(np.uint64)
                self.wr(w, o[0], u & np.uint64(M32), m)
                self.wrn(w, o[0], 1, (u >> np.uint64(32)).astype(np.uint32), m)
                return
            raw = self.ival(w, o[1])
            if "S16" in mods:
                v = (raw & 0xFFFF).astype(np.uint16).view(np.int16).astype(np.float64)
            elif "S8" in mods:
                v = (raw & 0xFF).astype(np.uint8).view(np.int8).astype(np.float64)
            elif "U16" in mods:
                v = (raw & 0xFFFF).astype(np.float64)
            elif "U8" in mods:
                v = (raw & 0xFF).astype(np.float64)
            elif "U32" in mods:
                v = raw.astype(np.float64)
            else:
                v = raw.view(np.int32).astype(np.float64)
            self.wr(w, o[0], u32f(round_f32_dir(v, rmode)), m)
            return
        if b == "F2F":
            if ins.op.startswith("F2F.F64.F32"):
                v = f32v(o[1]).astype(np.float64).view(np.uint64)
                self.wr(w, o[0], v & np.uint64(M32), m)
                self.wrn(w, o[0], 1, (v >> np.uint64(32)).astype(np.uint32), m)
                return
            if ins.op.startswith("F2F.F32.F64"):
                v = self.wide(w, o[1]).view(np.float64)
                self.wr(w, o[0], u32f(v.astype(np.float32)), m)
                return
            raise EmuError("F2F " + ins.txt)
        if b in ("DMUL", "DADD", "DFMA"):

            def D(x):
                v = self.wide(w, x).view(np.float64).copy()
                if x.abs:
                    v = np.abs(v)
                if x.neg:
                    v = -v
                return v

            if b == "DMUL":
                r = D(o[1]) * D(o[2])
            elif b == "DADD":
                r = D(o[1]) + D(o[2])
            else:
                r = D(o[1]) * D(o[2]) + D(o[3])
            u = r.view(np.uint64)
            self.wr(w, o[0], u & np.uint64(M32), m)
            self.wrn(w, o[0], 1, (u >> np.uint64(32)).astype(np.uint32), m)
            return
        # ---------------------------------------------------------------- fp16x2
        if b in ("HADD2", "HMUL2", "HFMA2"):
            srcs = []
            k = 1
            nsrc = {"HADD2": 2, "HMUL2": 2, "HFMA2": 3}[b]
            ops = o[1:]
            j = 0
            while len(srcs) < nsrc:
                x = ops[j]
                if x.k == "FIMM" or x.k == "IMM":
                    hi = np.float16(x.val if x.k == "FIMM" else x.val)
                    lo = np.float16(ops[j + 1].val)
                    srcs.append((np.full(32, lo, np.float16), np.full(32, hi, np.float16)))
                    j += 2
                else:
                    lo, hi = h2_get(self.raw(w, x), x.swz)
                    lo = lo.astype(np.float32)
                    hi = hi.astype(np.float32)
                    if x.abs:
                        lo, hi = np.abs(lo), np.abs(hi)
                    if x.neg:
                        lo, hi = -lo, -hi
                    srcs.append((lo, hi))
                    j += 1
            if b == "HFMA2" and ops[0].k == "R" and ops[0].i == RZ and ops[1].k == "R" and ops[1].i == RZ and ops[2].k == "FIMM":
                # HFMA2.MMA Rd, -RZ, RZ, hi, lo : a 32-bit constant move (exact bits)
                self.wr(w, o[0], h2_pack(srcs[2][0], srcs[2][1]), m)
                return
            L = [s[0].astype(np.float64) for s in srcs]
            H = [s[1].astype(np.float64) for s in srcs]
            if b == "HADD2":
                rl, rh = L[0] + L[1], H[0] + H[1]
            elif b == "HMUL2":
                rl, rh = L[0] * L[1], H[0] * H[1]
            else:
                rl, rh = L[0] * L[1] + L[2], H[0] * H[1] + H[2]
            if "F32" in mods:
                # HADD2.F32 d, a, b.Hx_Hx : single fp32 result
                self.wr(w, o[0], u32f(rl.astype(np.float32)), m)
                return
            self.wr(w, o[0], h2_pack(rl.astype(np.float32).astype(np.float16), rh.astype(np.float32).astype(np.float16)), m)
            return
        if b == "F2FP":
            if "E4M3" in mods and "UNPACK_B" in mods and "MERGE_C" not in mods:
                v = self.raw(w, o[1])
                v = (v >> np.uint32(16)) if o[1].swz == "H1" else v
                b0 = (v & 0xFF).astype(np.uint8).view(F8).astype(np.float32).astype(np.float16)
                b1 = ((v >> 8) & 0xFF).astype(np.uint8).view(F8).astype(np.float32).astype(np.float16)
                self.wr(w, o[0], h2_pack(b0, b1), m)
                return
            if "E4M3" in mods and "UNPACK_B_MERGE_C" in mods:
                # f16x2 -> 2 x e4m3 in the low 16 bits; the high 16 bits from c
                lo, hi = h2_get(self.raw(w, o[1]), None)
                q0 = self.f8(lo.astype(np.float32))
                q1 = self.f8(hi.astype(np.float32))
                c = self.raw(w, o[2])
                self.wr(w, o[0], (c & np.uint32(0xFFFF0000)) | q0 | (q1 << np.uint32(8)), m)
                return
            if "E4M3" in mods and "PACK_AB_MERGE_C" in mods:
                a = f32v(o[1])
                bb = f32v(o[2])
                qa = self.f8(a)
                qb = self.f8(bb)
                pk = qb | (qa << np.uint32(8))
                c = self.raw(w, o[3])
                if o[3].swz == "H1":  # keep c's high half, write the low half
                    r = (c & np.uint32(0xFFFF0000)) | pk
                else:  # keep c's low half, write the high half
                    r = (c & np.uint32(0xFFFF)) | (pk << np.uint32(16))
                self.wr(w, o[0], r, m)
                return
            if "PACK_AB" in mods and "E4M3" not in mods and "BF16" not in mods:
                a = f32v(o[1])
                bb = f32v(o[2])
                self.wr(w, o[0], h2_pack(bb.astype(np.float16), a.astype(np.float16)), m)
                return
            raise EmuError("F2FP " + ins.txt)
        # ---------------------------------------------------------------- shuffles
        if b == "SHFL":
            mode = ins.op.split(".")[1]
            val = self.raw(w, o[2]).copy()
            bsrc = self.ival(w, o[3])
            c = self.ival(w, o[4])
            lane = np.arange(32, dtype=np.int64)
            bb = bsrc.astype(np.int64) & 31
            cc = c.astype(np.int64)
            segmask = (cc >> 8) & 31
            clamp = cc & 31
            minl = lane & segmask
            maxl = minl | (clamp & ~segmask)
            if mode == "BFLY":
                j = lane ^ bb
                ok = j <= maxl
            elif mode == "IDX":
                j = minl | (bb & ~segmask)
                ok = j <= maxl
            elif mode == "UP":
                j = lane - bb
                ok = j >= minl
            elif mode == "DOWN":
                j = lane + bb
                ok = j <= maxl
            else:
                raise EmuError("SHFL " + ins.txt)
            j = np.where(ok, j, lane)
            self.wr(w, o[1], val[j], m)
            if o[0].k == "P":
                self.wp(w, o[0], ok, m)
            return
        # ---------------------------------------------------------------- memory
        if b in ("LDG", "LDS", "LDL", "STG", "STS", "STL"):
            space = b[2]
            store = b.startswith("ST")
            n = 4
            sx = None
            for mm in mods:
                if mm == "64":
                    n = 8
                elif mm == "128":
                    n = 16
                elif mm == "U8":
                    n = 1
                elif mm == "S8":
                    n = 1
                    sx = 8
                elif mm == "U16":
                    n = 2
                elif mm == "S16":
                    n = 2
                    sx = 16
            if store:
                a = self.addr(w, o[0])
                src = o[1]
                for lane in np.nonzero(m)[0]:
                    if n <= 4:
                        v = int(self.raw(w, src)[lane]) & ((1 << (8 * n)) - 1)
                        data = v.to_bytes(n, "little")
                    else:
                        words = (int(w.R[src.i + r][lane] if src.i != RZ else 0) for r in range(n // 4))
                        data = b"".join(word.to_bytes(4, "little") for word in words)
                    self.space_rw(space, w, lane, a[lane], n, data)
            else:
                a = self.addr(w, o[1])
                d = o[0]
                for lane in np.nonzero(m)[0]:
                    data = self.space_rw(space, w, lane, a[lane], n)
                    if n <= 4:
                        v = int.from_bytes(data, "little")
                        if sx and v >> (sx - 1):
                            v = (v - (1 << sx)) & M32
                        if d.i != RZ:
                            w.R[d.i][lane] = v
                    else:
                        for r in range(n // 4):
                            if d.i != RZ:
                                w.R[d.i + r][lane] = int.from_bytes(data[4 * r : 4 * r + 4], "little")
            return
        raise EmuError("unimplemented opcode: " + ins.txt)

    def f8(self, x: np.ndarray) -> np.ndarray:
        """float32 to e4m3 bytes (round to nearest, saturating to the finite range)."""
        x = np.asarray(x, dtype=np.float32)
        x = np.where(np.isnan(x), x, np.clip(x, -448.0, 448.0)).astype(np.float32)
        return x.astype(F8).view(np.uint8).astype(np.uint32)

    # ---------------- scheduling
    def try_wsync(self, w: Warp) -> bool:
        """Merge the groups waiting at a ``WARPSYNC`` once all the lanes of its mask arrived; True if any did."""
        changed = False
        for g in list(w.groups):
            if not (g.wait and g.wait[0] == "wsync") or g not in w.groups:
                continue
            bits = g.wait[1]
            need = np.array([(bits >> lane) & 1 for lane in range(32)], bool) & ~w.exited
            waiting = [h for h in w.groups if h.wait and h.wait[0] == "wsync" and (h.mask & need).any()]
            have = np.zeros(32, bool)
            for h in waiting:
                have |= h.mask
            if np.all(have[need]):
                bypc = collections.defaultdict(list)
                for h in waiting:
                    bypc[h.wait[2]].append(h)
                for pc, hs in bypc.items():
                    mask = np.zeros(32, bool)
                    for h in hs:
                        mask |= h.mask
                        w.groups.remove(h)
                    w.groups.append(Group(mask, pc + 1))
                changed = True
        return changed

    def try_bsync(self, w: Warp) -> bool:
        """Merge the groups waiting at a ``BSYNC`` once all the live lanes of its barrier arrived (and those of
        :meth:`try_wsync`); True if any did."""
        changed = self.try_wsync(w)
        for g in list(w.groups):
            if not (g.wait and g.wait[0] == "bsync"):
                continue
            if g not in w.groups:
                continue
            x, pc = g.wait[1], g.wait[2]
            bits = np.bitwise_or.reduce(w.B[x][g.mask])
            need = np.array([(int(bits) >> lane) & 1 for lane in range(32)], bool) & ~w.exited
            waiting = [h for h in w.groups if h.wait and h.wait[0] == "bsync" and h.wait[1] == x]
            have = np.zeros(32, bool)
            for h in waiting:
                have |= h.mask
            if np.all(have[need]):
                mem = [h for h in waiting if (h.mask & need).any()]
                pcs = {h.wait[2] for h in mem}
                if len(pcs) > 1:
                    raise EmuError(f"BSYNC B{x} reached at different pcs {pcs}")
                mask = np.zeros(32, bool)
                for h in mem:
                    mask |= h.mask
                    w.groups.remove(h)
                ng = Group(mask, pc + 1)
                w.groups.append(ng)
                changed = True
        return changed

    def run_warp(self, w: Warp, max_issues: int) -> str:
        """Run a warp until it exits (``"exit"``) or all its groups wait at ``BAR.SYNC`` (``"bar"``)."""
        while True:
            run = [g for g in w.groups if g.wait is None]
            if not run:
                if self.try_bsync(w):
                    continue
                if not w.groups:
                    return "exit"
                if all(g.wait == ("bar",) for g in w.groups):
                    return "bar"
                raise EmuError(f"warp {w.wid} deadlock: {[(g.wait, g.pc) for g in w.groups]}")
            g = run[-1]
            ins = self.insts[g.pc]
            try:
                res = self.exec(w, g, ins)
            except EmuError as e:
                raise EmuError(f"warp {w.wid} at {ins.addr:#06x} [{ins.txt}]: {e}") from None
            if len(w.issues) > max_issues:
                raise EmuError("runaway")
            if isinstance(res, tuple) and res[0] == "WSYNC":
                g.wait = ("wsync", res[1], g.pc)
                self.try_bsync(w)
                continue
            if res == "BSYNC":
                g.wait = ("bsync", ins.opds[0].i, g.pc)
                self.try_bsync(w)
                continue
            if res == "BAR":
                g.wait = ("bar",)
                continue
            w.groups.remove(g)
            for mk, pc in res:
                ng = Group(mk, pc)
                w.groups.append(ng)
            if ins.base == "EXIT":
                self.try_bsync(w)

    def run(self, max_issues: int = 10**7) -> None:
        """Run the block to its end: the warps in turn up to each ``BAR.SYNC``, which releases them all."""
        while True:
            st = [self.run_warp(w, max_issues) for w in self.warps]
            if all(s == "exit" for s in st):
                return
            self.barriers += 1
            for w in self.warps:
                for g in w.groups:
                    if g.wait == ("bar",):
                        g.wait = None
                        g.pc += 1
