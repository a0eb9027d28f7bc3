"""A DRAM standard as data: organisation and timing parameters (in command-clock cycles), each with its source.

One YAML file per standard under ``hardware/presets/dram/`` (Ramulator 2.0 style: adding a standard is a new
data file, the bank state machine stays generic). Every number is written ``{value: N, source: "..."}``.
:func:`load_standard` validates the file with pydantic and turns any mistake into a one-line
:class:`~hardware.errors.HwsimError` naming the file and the field.
"""

from __future__ import annotations

import functools
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hardware.errors import HwsimError
from hardware.yaml_file import read_yaml

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets" / "dram"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cycles(_Strict):
    """A timing parameter: a non-negative number of command-clock (CK) cycles and where it comes from."""

    value: int = Field(ge=0)
    source: str = Field(min_length=1)


class Count(_Strict):
    """A positive integer (a count or a size) and where it comes from."""

    value: int = Field(ge=1)
    source: str = Field(min_length=1)


class Quantity(_Strict):
    """A positive real number (ns, Gb/s) and where it comes from."""

    value: float = Field(gt=0)
    source: str = Field(min_length=1)


class Organization(_Strict):
    """Geometry of one device. ``columns`` counts burst-sized column addresses, so a row holds
    ``columns * burst_bytes`` bytes per (pseudo-)channel."""

    channels: Count
    pseudo_channels: Count = Count(value=1, source="no pseudo channels")
    bank_groups: Count
    banks_per_group: Count
    rows: Count
    columns: Count
    burst_length: Count
    burst_bytes: Count
    bus_width_bits: Count
    data_rate_gbps: Quantity
    tCK_ns: Quantity


class Timing(_Strict):
    """Timing parameters in CK cycles. Give ``tRCD`` or both ``tRCDRD`` and ``tRCDWR``; ``tRPab`` (precharge-all
    to activate) defaults to ``tRP``."""

    tRCD: Cycles | None = None
    tRCDRD: Cycles | None = None
    tRCDWR: Cycles | None = None
    tRP: Cycles
    tRPab: Cycles | None = None
    tRAS: Cycles
    tRC: Cycles
    tCCD_S: Cycles
    tCCD_L: Cycles
    tRRD_S: Cycles
    tRRD_L: Cycles
    tFAW: Cycles
    tWR: Cycles
    tRTP: Cycles
    tWTR_S: Cycles
    tWTR_L: Cycles
    tCL: Cycles
    tCWL: Cycles
    tBL: Cycles
    tREFI: Cycles
    tRFC: Cycles


class AimTiming(_Strict):
    """SK hynix GDDR6-AiM extras (cycles): ACT-to-MAC delay, MAC_ABK command spacing, global-buffer write latency."""

    tMAC: Cycles
    tCCD_MAC: Cycles
    tCWL_GB: Cycles


class DramStandard(_Strict):
    """One DRAM standard (speed bin and device organisation), validated."""

    name: str = Field(min_length=1)
    description: str = ""
    organization: Organization
    timing: Timing
    aim: AimTiming | None = None

    @cached_property
    def params(self) -> dict[str, int]:
        """Every timing parameter by name, in cycles, with tRCDRD/tRCDWR/tRPab filled in."""
        out: dict[str, int] = {}
        for section in (self.timing, self.aim):
            if section is None:
                continue
            for name in type(section).model_fields:
                field = getattr(section, name)
                if field is not None:
                    out[name] = field.value
        if "tRCD" in out:
            out.setdefault("tRCDRD", out["tRCD"])
            out.setdefault("tRCDWR", out["tRCD"])
        out.setdefault("tRPab", out["tRP"])
        return out

    @property
    def banks(self) -> int:
        """Banks per (pseudo-)channel."""
        return self.organization.bank_groups.value * self.organization.banks_per_group.value

    @property
    def row_bytes(self) -> int:
        """Bytes in one open row of one bank (the page), per (pseudo-)channel."""
        return self.organization.columns.value * self.organization.burst_bytes.value

    @property
    def tck_s(self) -> float:
        """Command-clock period in seconds."""
        return self.organization.tCK_ns.value * 1e-9

    @property
    def channel_bandwidth_bytes_per_s(self) -> float:
        """Peak data bandwidth of one channel (all its pseudo-channels together)."""
        org = self.organization
        return org.bus_width_bits.value * org.data_rate_gbps.value * 1e9 / 8


def _first_error(err: ValidationError) -> tuple[str, str]:
    errors = err.errors()
    first = errors[0]
    loc = ".".join(str(part) for part in first["loc"])
    msg = first["msg"]
    if first["type"] == "model_type" or first["type"] == "model_attributes_type":
        msg += ' (write every number as {value: N, source: "..."})'
    if len(errors) > 1:
        msg += f" (and {len(errors) - 1} more error(s))"
    return loc, msg


def _check(std: DramStandard, where: str) -> None:
    """Cross-field rules pydantic cannot state per field."""
    t = std.timing
    if t.tRCD is None and (t.tRCDRD is None or t.tRCDWR is None):
        missing = "timing.tRCDRD" if t.tRCDRD is None else "timing.tRCDWR"
        raise HwsimError(f"{where}: field '{missing}': missing (give timing.tRCD, or both tRCDRD and tRCDWR)")
    p = std.params
    rules = [
        ("timing.tRC", p["tRC"] >= p["tRAS"] + p["tRP"], f"tRC {p['tRC']} < tRAS + tRP = {p['tRAS'] + p['tRP']}"),
        ("timing.tCCD_L", p["tCCD_L"] >= p["tCCD_S"], f"tCCD_L {p['tCCD_L']} < tCCD_S {p['tCCD_S']}"),
        ("timing.tRRD_L", p["tRRD_L"] >= p["tRRD_S"], f"tRRD_L {p['tRRD_L']} < tRRD_S {p['tRRD_S']}"),
        ("timing.tWTR_L", p["tWTR_L"] >= p["tWTR_S"], f"tWTR_L {p['tWTR_L']} < tWTR_S {p['tWTR_S']}"),
        ("timing.tREFI", p["tREFI"] > p["tRFC"], f"tREFI {p['tREFI']} <= tRFC {p['tRFC']}"),
    ]
    org = std.organization
    pc_bits = org.bus_width_bits.value // org.pseudo_channels.value
    burst_bits = pc_bits * org.burst_length.value
    rules.append(
        (
            "organization.burst_bytes",
            org.burst_bytes.value * 8 == burst_bits,
            f"{org.burst_bytes.value} B != bus_width_bits/pseudo_channels * burst_length / 8 = {burst_bits / 8:g} B",
        )
    )
    for field, ok, why in rules:
        if not ok:
            raise HwsimError(f"{where}: field '{field}': {why}")


def standard_from_dict(data: object, where: str = "<dict>") -> DramStandard:
    """Validate an already-parsed YAML mapping; ``where`` names it in error messages."""
    if not isinstance(data, dict):
        raise HwsimError(f"{where}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        std = DramStandard.model_validate(data)
    except ValidationError as err:
        loc, msg = _first_error(err)
        raise HwsimError(f"{where}: field '{loc}': {msg}") from None
    _check(std, where)
    return std


def load_standard(name_or_path: str | Path) -> DramStandard:
    """Load a preset by name (``"gddr6"``, ``"hbm3"``, ...) or a YAML file by path (cached: standards are
    immutable, and every PIM target validation asks for its standard)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return _load(str(path.resolve()), path.stat().st_mtime_ns)
    return _load(str(name_or_path), 0)


@functools.lru_cache(maxsize=64)
def _load(name_or_path: str, _mtime: int) -> DramStandard:
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = PRESET_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in PRESET_DIR.glob("*.yaml")))
            raise HwsimError(f"unknown DRAM standard '{name_or_path}' (known: {known})")
    if not path.is_file():
        raise HwsimError(f"{path}: no such DRAM standard file")
    return standard_from_dict(read_yaml(path, path.name), path.name)
