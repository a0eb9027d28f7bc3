"""Links between devices of a multi-device run (tensor-parallel all-reduces, pipeline-stage transfers).

A link preset (``hardware/presets/links/NAME.yaml``) gives the per-direction bandwidth of one device's port, the
fixed latency of one message (port, PHY and switch traversals) and the energy per bit sent. GPUs use their own
preset's ``link_bandwidth``/``link_latency`` (NVLink or PCIe) unless a link is named.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from hardware.errors import HwsimError
from hardware.quantity import BytesPerSecond, JoulesPerBit, Seconds

LINK_DIR = Path(__file__).resolve().parent / "presets" / "links"


class LinkSpec(BaseModel):
    """One device-to-device link: ``bandwidth`` per direction (bytes/s), ``latency`` per message (s),
    ``energy_per_bit`` sent (J/bit)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    bandwidth: BytesPerSecond
    latency: Seconds
    energy_per_bit: JoulesPerBit

    def transfer_s(self, nbytes: float) -> float:
        """Time to send ``nbytes`` over the link (s): latency plus bytes over bandwidth."""
        return self.latency.si + nbytes / self.bandwidth.si

    def energy_j(self, nbytes: float) -> float:
        """Energy to send ``nbytes`` (J)."""
        return nbytes * 8 * self.energy_per_bit.si


def link_names() -> list[str]:
    """The bundled link presets."""
    return sorted(p.stem for p in LINK_DIR.glob("*.yaml"))


def load_link(name_or_path: str) -> LinkSpec:
    """A bundled link preset by name (``cxl3-x16``) or a link file by path."""
    from hardware.targets import format_validation_error
    from hardware.yaml_file import read_yaml, resolve_preset

    path = resolve_preset(
        name_or_path, LINK_DIR,
        unknown=f"--parallel link={name_or_path}: unknown link; bundled links: {', '.join(link_names())} "
                "(or give a path to a YAML link file)",
        missing=f"--parallel link={name_or_path}: no such link file")
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise HwsimError(f"{path}: a link preset must be a YAML mapping with name, bandwidth, latency, energy_per_bit")
    try:
        spec = LinkSpec.model_validate(data)
    except ValidationError as exc:
        raise HwsimError(format_validation_error(exc, str(path))) from None
    if spec.bandwidth.si <= 0:
        raise HwsimError(f"{path}: field 'bandwidth': must be > 0")
    return spec
