"""DRAM energy from datasheet IDD currents (the DRAMPower method), per command and per background state.

The method is Micron's (TN-41-01 for DDR3, TN-40-07 for DDR4) as Chandrasekar et al. turned it into a
command-trace model (DRAMPower; K. Chandrasekar, B. Akesson, K. Goossens, "Improved Power Modeling of DDR
SDRAMs", DSD 2011; K. Chandrasekar et al., "Towards Variation-Aware System-Level Power Estimation of DRAMs", DATE
2013). Each datasheet current is measured under a fixed command loop, so subtracting the standby current that
flows anyway leaves the energy of the command itself. Per device and per voltage domain (VDD, and VPP for the
DDR4 word-line pump), with V in volts, I in mA and t in ns (V x mA x ns = pJ):

- ACT: ``V (IDD0 - IDD3N) tRAS``; PRE: ``V (IDD0 - IDD2N) tRP`` (IDD0 cycles ACT-PRE every tRC = tRAS + tRP
  with one bank open for tRAS and all closed for tRP). Every bank a command closes (PRE, PREA per open bank, the
  auto-precharge of RDA / WRA) costs one PRE.
- RD / WR burst: ``V (IDD4R - IDD3N) tBL`` / ``V (IDD4W - IDD3N) tBL`` (IDD4R/W stream bursts with banks open).
- all-bank refresh: ``V (IDD5B - IDD3N) tRFC``; per-bank refresh: ``V (IDD5PB - IDD3N) tRFCpb`` where the
  datasheet gives IDD5PB, else one bank's share of the all-bank refresh, ``E_REF / banks`` (derived).
- background: ``V IDD3N`` per ns while any bank is open (active standby), ``V IDD2N`` while all are closed
  (precharge standby); ``IDD3P`` / ``IDD2P`` in power-down (the request controller never powers down, and never
  self-refreshes: ``IDD6N`` is carried for completeness). The state is per rank (and per HBM pseudo channel):
  each rank's devices draw their own standby current by whether any of that rank's banks is open, so the cycle
  counts given to :func:`energy` are rank-cycles (an idle two-rank run costs twice one rank's background).
  Refresh is per rank too: every rank's REF is one command counted and charged once.
- I/O and termination: ``io_pj_per_bit`` x bits moved, where a source gives it (DRAMPower takes it from Micron's
  power calculator; JEDEC gives no figure). It is not part of the IDD currents (IDDQ is not measured for use).

Currents are per device; ``devices`` is how many devices (or what share of one: an HBM pseudo channel is half a
channel) one rank of a modelled channel spans. Standards without public IDD values declare ``idd: {unavailable: reason}``
and get no energy here (their targets keep their energy-per-action numbers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hardware.errors import HwsimError

if TYPE_CHECKING:
    from hardware.dram.standard import DramStandard


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Current(_Strict):
    """A datasheet current in mA per device, and where it comes from."""

    value: float = Field(ge=0)
    source: str = Field(min_length=1)


class Volts(_Strict):
    """A supply voltage in V and where it comes from."""

    value: float = Field(gt=0)
    source: str = Field(min_length=1)


class Share(_Strict):
    """A positive number of devices (fractional: a share of one device) and where it comes from."""

    value: float = Field(gt=0)
    source: str = Field(min_length=1)


class PerBit(_Strict):
    """An energy in pJ per bit and where it comes from."""

    value: float = Field(ge=0)
    source: str = Field(min_length=1)


class Domain(_Strict):
    """One supply (VDD, VPP, ...): its voltage and the IDD currents measured on it (for VPP the datasheet's IPP0,
    IPP3N, ... go under the same IDD names)."""

    voltage: Volts
    IDD0: Current
    IDD2N: Current
    IDD3N: Current
    IDD4R: Current
    IDD4W: Current
    IDD5B: Current
    IDD2P: Current | None = None
    IDD3P: Current | None = None
    IDD5PB: Current | None = None
    IDD6N: Current | None = None


class IddSpec(_Strict):
    """The ``idd:`` section of a standard: devices per modelled channel, the supplies, optional I/O energy; or
    ``unavailable`` with the reason no IDD values are given."""

    unavailable: str = ""
    devices: Share | None = None
    domains: dict[str, Domain] = {}
    io_pj_per_bit: PerBit | None = None

    @model_validator(mode="after")
    def _complete(self) -> IddSpec:
        if self.unavailable:
            if self.domains or self.devices or self.io_pj_per_bit:
                raise ValueError("give either 'unavailable' (the reason) or the values, not both")
            return self
        if not self.domains or self.devices is None:
            raise ValueError("needs 'devices' and at least one supply under 'domains' (or 'unavailable: reason')")
        for name, d in self.domains.items():
            base = d.IDD3N.value
            for field_name in ("IDD0", "IDD4R", "IDD4W", "IDD5B", "IDD5PB"):
                cur = getattr(d, field_name)
                if cur is not None and cur.value < base:
                    raise ValueError(f"domains.{name}.{field_name} {cur.value:g} mA is below IDD3N {base:g} mA: the "
                                     "method subtracts IDD3N, the command would have negative energy")
            if d.IDD0.value < d.IDD2N.value:
                raise ValueError(f"domains.{name}.IDD0 {d.IDD0.value:g} mA is below IDD2N {d.IDD2N.value:g} mA")
        return self


#: energy components, in report order
COMPONENTS = ("activate", "precharge", "read", "write", "refresh", "refresh_per_bank", "background_active",
              "background_precharged", "background_power_down", "io")


@dataclass(frozen=True)
class CommandEnergies:
    """pJ per command of one modelled channel, per supply: ``per_command[domain][kind]`` with kind one of
    activate, precharge, read, write, refresh, refresh_per_bank; ``standby[domain]``: pJ per cycle for
    active / precharged / active_pd / precharged_pd."""

    per_command: dict[str, dict[str, float]]
    standby: dict[str, dict[str, float]]
    io_per_burst: float
    refresh_per_bank_derived: bool


def command_energies(std: DramStandard) -> CommandEnergies:
    """The per-command and per-cycle energies of ``std`` (HwsimError when it has no IDD values)."""
    idd = std.idd
    if idd is None or idd.unavailable:
        why = idd.unavailable if idd is not None else "no 'idd:' section"
        raise HwsimError(f"DRAM standard '{std.name}' has no IDD energy model ({why})")
    p = std.params
    tck = std.organization.tCK_ns.value
    n = idd.devices.value
    tburst = p["tBL"] * tck
    per_command: dict[str, dict[str, float]] = {}
    standby: dict[str, dict[str, float]] = {}
    derived = "tRFCpb" not in p
    for name, d in idd.domains.items():
        v = d.voltage.value
        i3n, i2n = d.IDD3N.value, d.IDD2N.value
        ref = v * (d.IDD5B.value - i3n) * p["tRFC"] * tck * n
        if d.IDD5PB is not None and "tRFCpb" in p:
            refpb = v * (d.IDD5PB.value - i3n) * p["tRFCpb"] * tck * n
        else:
            refpb = ref / std.banks
            derived = True
        per_command[name] = {
            "activate": v * (d.IDD0.value - i3n) * p["tRAS"] * tck * n,
            "precharge": v * (d.IDD0.value - i2n) * p["tRP"] * tck * n,
            "read": v * (d.IDD4R.value - i3n) * tburst * n,
            "write": v * (d.IDD4W.value - i3n) * tburst * n,
            "refresh": ref,
            "refresh_per_bank": refpb,
        }
        pd_act = d.IDD3P.value if d.IDD3P is not None else i3n
        pd_pre = d.IDD2P.value if d.IDD2P is not None else i2n
        standby[name] = {"active": v * i3n * tck * n, "precharged": v * i2n * tck * n,
                         "active_pd": v * pd_act * tck * n, "precharged_pd": v * pd_pre * tck * n}
    io = idd.io_pj_per_bit.value * std.organization.burst_bytes.value * 8 if idd.io_pj_per_bit else 0.0
    return CommandEnergies(per_command, standby, io, derived)


@dataclass
class EnergyReport:
    """Energy of one run in pJ: ``components`` (see :data:`COMPONENTS`) summed over supplies, ``by_domain`` per
    supply, ``total``."""

    components: dict[str, float]
    by_domain: dict[str, dict[str, float]]
    total: float
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"total_pJ": self.total, "components_pJ": self.components, "by_domain_pJ": self.by_domain,
                "notes": self.notes}


def energy(std: DramStandard, *, activates: int = 0, precharges: int = 0, reads: int = 0, writes: int = 0,
           refreshes: int = 0, refreshes_per_bank: int = 0, active_cycles: int = 0, precharged_cycles: int = 0,
           active_pd_cycles: int = 0, precharged_pd_cycles: int = 0, refreshes_same_bank: int = 0) -> EnergyReport:
    """Energy of one modelled channel from command counts (``precharges``: banks closed, however; refreshes: REFs
    over all ranks) and cycles spent in each background state (rank-cycles: summed over the channel's ranks).
    A same-bank refresh (DDR5 REFsb) refreshes one bank in each bank group: charged as that many per-bank refreshes
    (in the refresh_per_bank component)."""
    if refreshes_same_bank < 0:
        raise HwsimError(f"DRAM energy: refreshes_same_bank = {refreshes_same_bank} must be >= 0")
    sb_as_pb = refreshes_same_bank * std.organization.bank_groups.value
    counts = {"activate": activates, "precharge": precharges, "read": reads, "write": writes,
              "refresh": refreshes, "refresh_per_bank": refreshes_per_bank + sb_as_pb}
    for name, value in {**counts, "active_cycles": active_cycles, "precharged_cycles": precharged_cycles,
                        "active_pd_cycles": active_pd_cycles, "precharged_pd_cycles": precharged_pd_cycles}.items():
        if value < 0:
            raise HwsimError(f"DRAM energy: {name} = {value} must be >= 0")
    ce = command_energies(std)
    by_domain: dict[str, dict[str, float]] = {}
    for name, per in ce.per_command.items():
        sb = ce.standby[name]
        comp = {k: per[k] * counts[k] for k in counts}
        comp["background_active"] = sb["active"] * active_cycles
        comp["background_precharged"] = sb["precharged"] * precharged_cycles
        comp["background_power_down"] = sb["active_pd"] * active_pd_cycles + sb["precharged_pd"] * precharged_pd_cycles
        by_domain[name] = comp
    components = {k: sum(d.get(k, 0.0) for d in by_domain.values()) for k in COMPONENTS}
    components["io"] = ce.io_per_burst * (reads + writes)
    notes = ["per-bank refresh energy derived as E_REF / banks (no IDD5PB)"] if refreshes_per_bank and \
        ce.refresh_per_bank_derived else []
    if refreshes_same_bank:
        notes.append("same-bank refresh charged as one per-bank refresh per bank group")
    return EnergyReport(components, by_domain, sum(components.values()), notes)


def add_reports(reports: list[EnergyReport]) -> EnergyReport:
    """The sum of several channels' reports."""
    comps = {k: sum(r.components[k] for r in reports) for k in COMPONENTS}
    domains: dict[str, dict[str, float]] = {}
    for r in reports:
        for name, comp in r.by_domain.items():
            tgt = domains.setdefault(name, {})
            for k, v in comp.items():
                tgt[k] = tgt.get(k, 0.0) + v
    notes = sorted({n for r in reports for n in r.notes})
    return EnergyReport(comps, domains, sum(comps.values()), notes)


def command_kinds(std: DramStandard) -> Mapping[str, str]:
    """Which energy kind each of ``std``'s request-level commands counts as (RDA/WRA count as read/write; their
    precharge is counted from the banks closed)."""
    out = {std.requests.read: "read", std.requests.write: "write"}
    if std.auto_precharge:
        out[std.auto_precharge.read] = "read"
        out[std.auto_precharge.write] = "write"
    if std.refresh:
        out[std.refresh.command] = "refresh"
    if std.refresh_per_bank:
        out[std.refresh_per_bank.command] = "refresh_per_bank"
    if std.refresh_same_bank:
        out[std.refresh_same_bank.command] = "refresh_same_bank"
    act = std.command_role(level="bank", opens=True)
    if act:
        out[act] = "activate"
    return out
