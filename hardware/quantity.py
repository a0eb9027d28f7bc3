"""Physical quantities in presets: ``{value, unit, source}``, checked against the dimension a field expects.

Every number in a target preset carries its unit and its source (datasheet, standard or paper). A field declares
its dimension by its type (``Seconds``, ``Hertz``, ``BytesPerSecond``...); a unit of the wrong dimension, a
missing unit, a negative value or a missing source is a validation error naming the field. ``.si`` gives the
value in SI base units (seconds, hertz, bytes, joules, watts, FLOP/s).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

#: Units accepted for each dimension, as factors to the SI base unit of that dimension.
UNITS: dict[str, dict[str, float]] = {
    "time": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "ps": 1e-12},
    "frequency": {"Hz": 1.0, "kHz": 1e3, "MHz": 1e6, "GHz": 1e9},
    "bytes": {"B": 1.0, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KiB": 2.0 ** 10, "MiB": 2.0 ** 20,
              "GiB": 2.0 ** 30, "TiB": 2.0 ** 40, "bit": 1 / 8, "Kbit": 1e3 / 8, "Mbit": 1e6 / 8, "Gbit": 1e9 / 8},
    "bandwidth": {"B/s": 1.0, "KB/s": 1e3, "MB/s": 1e6, "GB/s": 1e9, "TB/s": 1e12, "GiB/s": 2.0 ** 30,
                  "Gbit/s": 1e9 / 8, "Gb/s": 1e9 / 8},
    "energy": {"J": 1.0, "mJ": 1e-3, "uJ": 1e-6, "nJ": 1e-9, "pJ": 1e-12, "fJ": 1e-15},
    "energy_per_bit": {"J/bit": 1.0, "nJ/bit": 1e-9, "pJ/bit": 1e-12, "fJ/bit": 1e-15},
    "power": {"W": 1.0, "mW": 1e-3, "uW": 1e-6, "kW": 1e3},
    "flops": {"FLOP/s": 1.0, "GFLOP/s": 1e9, "TFLOP/s": 1e12, "PFLOP/s": 1e15, "OP/s": 1.0, "GOP/s": 1e9,
              "TOP/s": 1e12},
    "count": {"": 1.0},
    "ratio": {"": 1.0, "%": 0.01},
}


#: Largest plausible value of each dimension in SI units: far above any real part, so that a typo (1e300 W, an
#: exponent off by 1e100) is refused instead of printing a 200-digit energy.
PLAUSIBLE_MAX: dict[str, float] = {
    "time": 1e6, "frequency": 1e13, "bytes": 1e18, "bandwidth": 1e17, "energy": 1e6, "energy_per_bit": 1e-3,
    "power": 1e7, "flops": 1e20, "count": 1e12, "ratio": float("inf"),  # Ratio checks (0, 1]
}


class Quantity(BaseModel):
    """A number with its unit and its source; subclasses fix the dimension."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    dimension: ClassVar[str] = "count"

    value: float = Field(ge=0)
    unit: str = ""
    source: str = Field(min_length=3)

    @field_validator("value", mode="before")
    @classmethod
    def _plain_number(cls, value: object) -> object:
        if isinstance(value, str):  # YAML 1.1 reads 1e9 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"value must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"value must be a number, got {value!r}")
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"value must be a finite number, got {value}")
        if value < 0:
            raise ValueError(f"value must be >= 0, got {value:g}")
        return value

    @model_validator(mode="after")
    def _check_unit(self) -> Quantity:
        units = UNITS[self.dimension]
        if self.unit not in units:
            shown = ", ".join(u for u in units if u) or "no unit"
            if not self.unit:
                raise ValueError(f"missing unit: a {self.dimension} needs one of {shown}")
            raise ValueError(f"unit '{self.unit}' is not a {self.dimension}; use one of {shown}")
        limit = PLAUSIBLE_MAX[self.dimension]
        if self.si > limit:
            shown = f"{self.value:g} {self.unit}".strip()
            raise ValueError(f"{shown} is not a plausible {self.dimension} (above {limit:g} in SI units); check the "
                             "exponent and the unit")
        return self

    @property
    def si(self) -> float:
        """The value in SI base units."""
        return self.value * UNITS[self.dimension][self.unit]


class Seconds(Quantity):
    """A time."""

    dimension: ClassVar[str] = "time"


class Hertz(Quantity):
    """A clock frequency."""

    dimension: ClassVar[str] = "frequency"


class Bytes(Quantity):
    """A capacity or size."""

    dimension: ClassVar[str] = "bytes"


class BytesPerSecond(Quantity):
    """A bandwidth."""

    dimension: ClassVar[str] = "bandwidth"


class Joules(Quantity):
    """An energy per action."""

    dimension: ClassVar[str] = "energy"


class JoulesPerBit(Quantity):
    """An energy per bit moved."""

    dimension: ClassVar[str] = "energy_per_bit"


class Watts(Quantity):
    """A power."""

    dimension: ClassVar[str] = "power"


class FlopsPerSecond(Quantity):
    """A compute throughput (FLOP/s or OP/s)."""

    dimension: ClassVar[str] = "flops"


class Count(Quantity):
    """A dimensionless count (lanes, banks, channels)."""

    dimension: ClassVar[str] = "count"

    @model_validator(mode="after")
    def _check_whole(self) -> Count:
        if self.value != int(self.value):
            raise ValueError(f"a count must be a whole number, got {self.value:g}")
        return self

    @property
    def n(self) -> int:
        """The count as an int."""
        return int(self.value)


class Ratio(Quantity):
    """A dimensionless fraction or efficiency: 0 < value <= 1, or a percentage (unit %) in (0, 100]."""

    dimension: ClassVar[str] = "ratio"

    @model_validator(mode="after")
    def _check_fraction(self) -> Ratio:
        if self.unit in UNITS["ratio"] and not 0 < self.si <= 1:
            shown = f"{self.value:g}{self.unit}"
            raise ValueError(f"a fraction must be in (0, 1] (or (0, 100] with unit %), got {shown}")
        return self


def require_positive(*fields: str) -> classmethod:
    """A pydantic field validator refusing a quantity <= 0 in ``fields`` (None, for an optional field, passes).

    Use in a schema as ``_positive = require_positive("clock", "dsp")``; the error names the field.
    """

    def check(cls: type, value: Quantity | None, info: ValidationInfo) -> Quantity | None:
        if value is not None and value.value <= 0:
            raise ValueError(f"{info.field_name} must be > 0, got {value.value:g}")
        return value

    return field_validator(*fields)(check)
