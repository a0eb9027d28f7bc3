"""The AiM traces hwsim's instruction model is held against the AiM simulator on (arkhadem/aim_simulator).

Each case is a trace in the AiM simulator's format, generated here (deterministic; its sha256 is stored with the
simulator's result so a changed generator shows up as a stale number): micro-traces exercising one instruction
kind each, VMMs of growing size and channel count in CENT's instruction order, and whole transformer layers (the
VMMs of a GPT-2 and a Llama-2-7B layer, Llama-2-7B attention at two context lengths), laid out as CENT does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from hardware.pim import aim_programs as ap
from hardware.pim.isr import Isr, mask_of

CH0 = mask_of([0])
ALL = range(32)


@dataclass(frozen=True)
class Case:
    """One trace: ``group`` (micro, vmm, layer), what it exercises, and its instructions (EOC appended)."""

    name: str
    group: str
    description: str
    program: tuple[Isr, ...]

    @property
    def trace(self) -> str:
        """The AiM-simulator trace text."""
        return ap.to_trace(list(self.program))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.trace.encode()).hexdigest()


def _micro() -> list[Case]:
    out = [
        Case("wr_gb", "micro", "WR_GB 64 x 4 (global-buffer writes, register mode)",
             tuple(Isr("WR_GB", opsize=64, mask=CH0) for _ in range(4))),
        Case("wr_bias", "micro", "WR_BIAS x 32 (MAC-register writes)", tuple(Isr("WR_BIAS", mask=CH0) for _ in range(32))),
        Case("mac_abk", "micro", "MAC_ABK 64 on 8 rows (PREA / ACT_AB / 64 MAC each)",
             tuple(Isr("MAC_ABK", opsize=64, mask=CH0, row=r) for r in range(8))),
        Case("mac_abk_short", "micro", "MAC_ABK 8 on 16 rows (attention-score sized)",
             tuple(Isr("MAC_ABK", opsize=8, mask=CH0, row=r) for r in range(16))),
        Case("rd_mac", "micro", "(WR_BIAS, MAC_ABK 64, RD_MAC) x 8: three mode switches and a blocking read per output",
             tuple(i for r in range(8) for i in (Isr("WR_BIAS", mask=CH0), Isr("MAC_ABK", opsize=64, mask=CH0, row=r),
                                                  Isr("RD_MAC", mask=CH0)))),
        Case("rd_mac_burst", "micro", "RD_MAC x 16 back to back (blocking, no mode switch after the first)",
             tuple(Isr("RD_MAC", mask=CH0) for _ in range(16))),
        Case("af", "micro", "W CFR afm, then (WR_BIAS, MAC_ABK 64, AF, RD_AF) x 4: AF opens its LUT row",
             (Isr("CFR", cfr=2, data=1),) + tuple(
                 i for r in range(4) for i in (Isr("WR_BIAS", mask=CH0), Isr("MAC_ABK", opsize=64, mask=CH0, row=r),
                                               Isr("AF", mask=CH0), Isr("RD_AF", mask=CH0)))),
        Case("ewmul", "micro", "EWMUL 64 on 4 rows", tuple(Isr("EWMUL", opsize=64, mask=CH0, row=r) for r in range(4))),
        Case("copy", "micro", "(COPY_BKGB 64 bank 0, COPY_GBBK 64 bank 1) x 2 on different rows",
             tuple(i for r in range(2) for i in (Isr("COPY_BKGB", opsize=64, mask=CH0, bank=0, row=2 * r),
                                                  Isr("COPY_GBBK", opsize=64, mask=CH0, bank=1, row=2 * r + 1)))),
        Case("mac_sbk", "micro", "MAC_SBK 64 in banks 0..3 (single-bank MACs, ACT per bank)",
             tuple(Isr("MAC_SBK", opsize=64, mask=CH0, bank=b, row=3) for b in range(4))),
        Case("wr_abk", "micro", "WR_ABK on 16 rows (all-bank write with auto-precharge)",
             tuple(Isr("WR_ABK", mask=CH0, row=r) for r in range(16))),
        Case("sbk", "micro", "WR_SBK x 16 then RD_SBK x 16, bank 2 row 5 (plain accesses through the AiM path)",
             tuple(Isr("WR_SBK", mask=CH0, bank=2, row=5) for _ in range(16))
             + tuple(Isr("RD_SBK", mask=CH0, bank=2, row=5) for _ in range(16))),
        Case("mem_then_aim", "micro", "W MEM x 8 then WR_GB 64 and MAC_ABK 64: AiM waits for the write queue",
             tuple(Isr("W_MEM", channel=0, bank=b % 16, row=9) for b in range(8))
             + (Isr("WR_GB", opsize=64, mask=CH0), Isr("MAC_ABK", opsize=64, mask=CH0, row=1))),
        Case("kv_append_then_scores", "micro", "W MEM to 16 banks (a token's K, CENT's KV append), then a score "
             "group: WR_GB, 2 x (WR_BIAS, MAC_ABK 8, RD_MAC)",
             tuple(Isr("W_MEM", channel=0, bank=b, row=100) for b in range(16))
             + (Isr("WR_GB", opsize=64, mask=CH0),)
             + tuple(i for r in range(2) for i in (Isr("WR_BIAS", mask=CH0), Isr("MAC_ABK", opsize=8, mask=CH0, row=100),
                                                  Isr("RD_MAC", mask=CH0)))),
        Case("w_mem_512", "micro", "W MEM x 512 over 16 banks and 2 rows each, then MAC_ABK 64 (write queue full)",
             tuple(Isr("W_MEM", channel=0, bank=i % 16, row=200 + (i // 256)) for i in range(512))
             + (Isr("MAC_ABK", opsize=64, mask=CH0, row=3),)),
        Case("reads_then_aim", "micro", "R MEM from 8 banks, then MAC_ABK 64 and RD_MAC (plain reads before AiM)",
             tuple(Isr("R_MEM", channel=0, bank=2 * b, row=7) for b in range(8))
             + (Isr("MAC_ABK", opsize=64, mask=CH0, row=3), Isr("RD_MAC", mask=CH0))),
        Case("sync", "micro", "(MAC_ABK 64, SYNC) x 4", tuple(i for r in range(4) for i in (
            Isr("MAC_ABK", opsize=64, mask=CH0, row=r), Isr("SYNC")))),
    ]
    return out


def _vmm() -> list[Case]:
    return [
        Case("vmm_1024x4096_1ch", "vmm", "1024 x 4096 bf16 VMM on one channel, CENT order (reuse-GB, 32 outputs a group)",
             tuple(ap.vmm(1024, 4096, [0]))),
        Case("vmm_1024x4096_1ch_noreuse", "vmm", "the same VMM, one output at a time (WR_BIAS, MAC_ABK, RD_MAC each)",
             tuple(ap.vmm(1024, 4096, [0], order="no-reuse"))),
        Case("vmm_4096x4096_1ch", "vmm", "4096 x 4096 on one channel (4 GB loads, 256 outputs per bank)",
             tuple(ap.vmm(4096, 4096, [0]))),
        Case("vmm_1000x1000_1ch", "vmm", "1000 x 1000 on one channel (short last column group, 63 outputs per bank)",
             tuple(ap.vmm(1000, 1000, [0]))),
        Case("vmm_1024x4096_4ch", "vmm", "1024 x 4096 over 4 channels", tuple(ap.vmm(1024, 4096, range(4)))),
        Case("vmm_4096x11008_32ch", "vmm", "4096 x 11008 over 32 channels (a Llama-2-7B FFN matrix on one CENT device)",
             tuple(ap.vmm(4096, 11008, ALL))),
    ]


def _layers() -> list[Case]:
    gpt2 = [(768, 2304), (768, 768), (768, 3072), (3072, 768)]
    llama = [(4096, 4096)] * 4 + [(4096, 11008)] * 2 + [(11008, 4096)]
    out = [
        Case("gpt2_layer_32ch", "layer", "GPT-2 (124M) layer VMMs on 32 channels: QKV 768x2304, out 768x768, FC 768x3072, "
             "proj 3072x768", tuple(i for k, n in gpt2 for i in ap.vmm(k, n, ALL))),
        Case("llama7b_layer_32ch", "layer", "Llama-2-7B layer VMMs on 32 channels: q, k, v, o 4096x4096, gate, up "
             "4096x11008, down 11008x4096", tuple(i for k, n in llama for i in ap.vmm(k, n, ALL))),
    ]
    for ctx in (1024, 4096):
        prog = ap.scores(ctx, 128, 32, 1, ALL) + ap.context(ctx, 128, 32, 1, ALL, base_row=4096)
        out.append(Case(f"llama7b_attention_{ctx}_32ch", "layer",
                        f"Llama-2-7B attention (32 heads x 128) at context {ctx} on 32 channels: scores q.K^T then p.V, "
                        "CENT's KV layout", tuple(prog)))
    return out


CASES: list[Case] = _micro() + _vmm() + _layers()
BY_NAME = {c.name: c for c in CASES}
