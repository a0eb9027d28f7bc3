"""When a model reads each preset field: the declaration every target schema makes, per field.

Each schema module (``hardware/<kind>/spec.py``) declares ``FIELD_USE``: dotted field path (a quantity's path
without ``.value``) -> :class:`FieldUse`, saying in words when a model reads it and deciding, for the settings of a
run, whether it does. Fields that are labels (``name``, ``kind``, ``description``) are in :data:`LABELS`: no model
reads them. A design-space sweep refuses an axis over a field that its settings never read (the points would all
be the same), and ``tests/test_field_use.py`` checks that every schema field is declared and that every declared
field does change a simulation when its setting holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hardware.dtypes import BITS

#: Fields no model reads: identifiers and prose.
LABELS = ("name", "kind", "description")



def gpu_compute_format(activations: str, tf32: bool = False) -> str:
    """The compute format of a GPU kernel whose activations are ``activations`` (the GPU mapper's rule: 4 bytes ->
    fp32, or tf32 with ``--set tf32=true``; 2 bytes -> bf16 or fp16; 1 byte or less -> fp8, fp4 or int8)."""
    bits = BITS[activations]
    if bits >= 32:
        return "tf32" if tf32 else "fp32"
    if bits >= 16:
        return "bf16" if activations == "bfloat16" else "fp16"
    if activations.startswith("float4"):
        return "fp4"
    return "fp8" if activations.startswith("float8") else "int8"


@dataclass(frozen=True)
class Settings:
    """What decides which fields a run reads: the simulation options, the activation formats of its workloads
    (``None`` = the target's native one), its phases and, per swept field, the values it takes besides the base
    preset's."""

    options: Mapping[str, Any] = field(default_factory=dict)
    activations: tuple[str | None, ...] = (None,)
    phases: tuple[str, ...] = ("prefill", "decode", "generate")
    swept: Mapping[str, list[Any]] = field(default_factory=dict)

    def option(self, key: str, default: Any = None) -> Any:
        """An option's value (strings lower-cased)."""
        value = self.options.get(key, default)
        return value.lower() if isinstance(value, str) else value

    def flag(self, key: str) -> bool:
        """A true/false option (``true``, ``yes``, ``1``, ``on`` or a boolean)."""
        value = self.options.get(key, False)
        return value is True or str(value).lower() in ("1", "true", "yes", "on")

    @property
    def tp(self) -> int:
        """Tensor-parallel GPUs (option ``tp``, default 1)."""
        return int(self.options.get("tp", 1) or 1)

    def values(self, target: Mapping[str, Any], path: str) -> list[Any]:
        """Every value field ``path`` takes in the run: the base preset's and the swept ones."""
        node: Any = target
        for key in path.split("."):
            node = node.get(key) if isinstance(node, Mapping) else None
        base = node.get("value") if isinstance(node, Mapping) else node
        return [base, *self.swept.get(path, [])]

    def gpu_compute_formats(self, tf32: bool) -> set[str]:
        """The GPU compute formats (fp32, tf32, fp16, bf16, fp8, fp4, int8) of the run's kernels."""
        return {gpu_compute_format(act or "float16", tf32) for act in self.activations}


Test = Callable[[Settings, Mapping[str, Any]], bool]


@dataclass(frozen=True)
class FieldUse:
    """When a field is read: ``when`` in words (for messages and docs), ``test(settings, target_data)`` decides."""

    when: str
    test: Test = lambda settings, target: True

    def read(self, settings: Settings, target: Mapping[str, Any]) -> bool:
        """Whether a run with ``settings`` on ``target`` (the preset as JSON data) reads the field."""
        return bool(self.test(settings, target))


ALWAYS = FieldUse("always")


def declared(paths: Iterable[str], use: Mapping[str, FieldUse]) -> list[str]:
    """The paths among ``paths`` with no declaration (for the completeness test)."""
    return [p for p in paths if p not in use and p not in LABELS]
