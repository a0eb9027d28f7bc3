"""hls4ml fixed-point type strings: ``ap_fixed<W,I>``, ``ap_ufixed<W,I>``, ``ap_int<W>``, ``ap_uint<W>``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hardware.errors import HwsimError

_FIXED = re.compile(r"^\s*ap_(u?)fixed\s*<\s*(\d+)\s*,\s*(-?\d+)\s*(?:,[^>]*)?>\s*$")
_INT = re.compile(r"^\s*ap_(u?)int\s*<\s*(\d+)\s*>\s*$")


@dataclass(frozen=True)
class FixedType:
    """A fixed-point format: ``width`` bits in all, ``integer`` of them left of the point (sign included)."""

    width: int
    integer: int
    signed: bool = True

    @property
    def fractional(self) -> int:
        """Bits right of the binary point."""
        return self.width - self.integer

    def __str__(self) -> str:
        return f"ap_{'' if self.signed else 'u'}fixed<{self.width},{self.integer}>"


def parse_fixed(text: str, where: str = "--precision") -> FixedType:
    """Parse an hls4ml precision string; errors name ``where`` and show the expected form."""
    m = _FIXED.match(text)
    if m:
        width, integer = int(m.group(2)), int(m.group(3))
        if width < 1 or width > 64:
            raise HwsimError(f"{where}: '{text}': width must be 1..64 bits")
        return FixedType(width, integer, signed=not m.group(1))
    m = _INT.match(text)
    if m:
        width = int(m.group(2))
        return FixedType(width, width, signed=not m.group(1))
    raise HwsimError(f"{where}: '{text}' is not an hls4ml precision; use e.g. 'ap_fixed<16,6>' (W total bits, I integer bits)")
