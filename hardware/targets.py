"""Target presets: YAML files naming a hardware target, validated by the schema of their ``kind``.

A preset is a name, a ``kind`` (pim, gpu, fpga, or any registered kind) and the kind's fields, every number a
:class:`hardware.quantity.Quantity` with unit and source. Presets live in ``hardware/presets/targets/``; a path to
any YAML file works too. Errors name the file and the field.

Each kind's schema is a :class:`TargetBase` subclass with a class attribute ``KIND``, found in
``hardware/<package>/spec.py`` (the bundled kinds) or registered with :func:`register_schema` (a plugin's own).
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from hardware.discovery import bundled_modules
from hardware.errors import HwsimError
from hardware.quantity import Quantity
from hardware.yaml_file import read_yaml, resolve_preset

PRESET_DIR = Path(__file__).resolve().parent / "presets" / "targets"

class TargetBase(BaseModel):
    """Fields every target has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The ``kind`` value this schema validates (set by each subclass).
    KIND: ClassVar[str] = ""

    name: str
    kind: str
    description: str = ""


def preset_names() -> list[str]:
    """Names of the bundled target presets."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


_SCHEMAS: dict[str, type[TargetBase]] = {}
_DISCOVERED = False


def register_schema(schema: type[TargetBase]) -> None:
    """Make ``schema`` the validator of presets whose ``kind`` is ``schema.KIND``."""
    if not schema.KIND:
        raise HwsimError(f"target schema {schema.__name__} has no KIND")
    _SCHEMAS[schema.KIND] = schema


def _discover() -> None:
    """Import ``hardware/<package>/spec.py`` of every bundled package and register the schemas they define."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    for module in bundled_modules("hardware", Path(__file__).parent, "spec"):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, TargetBase) and value.KIND \
                    and value.__module__ == module.__name__:
                _SCHEMAS.setdefault(value.KIND, value)


def schema_kinds() -> list[str]:
    """Every target kind with a registered schema."""
    _discover()
    return sorted(_SCHEMAS)


def schema_for(kind: str) -> type[TargetBase]:
    """The schema class validating presets of ``kind``."""
    return _schema(kind, f"kind '{kind}'")


def _schema(kind: str, where: str) -> type[TargetBase]:
    _discover()
    if kind not in _SCHEMAS:
        raise HwsimError(f"{where}: field 'kind': unknown target kind '{kind}'; use one of {', '.join(schema_kinds())}")
    return _SCHEMAS[kind]


def format_validation_error(exc: ValidationError, where: str,
                            spelling: str = "`hwsim targets show` of a bundled preset") -> str:
    """One line naming the first bad field of a pydantic error (``spelling``: where the known fields are listed)."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = f"unknown field (check the spelling against {spelling})"
    elif err["type"] == "missing":
        msg = "missing field"
    elif err["type"] == "model_type" and isinstance(err.get("input"), (int, float)):
        msg = (f"a plain number ({err['input']}); give it as {{value: {err['input']}, unit: ..., source: ...}} with "
               "its unit and where it comes from")
    return f"{where}: field '{loc}': {msg}"


def target_from_dict(data: Any, where: str) -> TargetBase:
    """Validate a parsed preset."""
    if not isinstance(data, dict):
        raise HwsimError(f"{where}: a target preset must be a YAML mapping with 'name' and 'kind'")
    kind = data.get("kind")
    if not isinstance(kind, str):
        raise HwsimError(f"{where}: field 'kind': missing; use one of {', '.join(schema_kinds())}")
    schema = _schema(kind, where)
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise HwsimError(format_validation_error(exc, where)) from None


def load_target(name_or_path: str) -> TargetBase:
    """Load a bundled preset by name (``pim-gpt``) or any preset file by path."""
    path = resolve_preset(
        name_or_path, PRESET_DIR,
        unknown=f"unknown target '{name_or_path}'; bundled presets: {', '.join(preset_names())} "
                "(or give a path to a YAML preset)",
        missing=f"{name_or_path}: no such target preset file")
    return target_from_dict(read_yaml(path), str(path))


def _is_section(annotation: Any) -> bool:
    """Whether a field's type is a sub-model that is not a quantity (``X | None`` included)."""
    kinds = typing.get_args(annotation) or (annotation,)
    return any(isinstance(k, type) and issubclass(k, BaseModel) and not issubclass(k, Quantity) for k in kinds)


def flatten(model: BaseModel, prefix: str = "") -> list[tuple[str, Any, str, str]]:
    """(field path, value, unit, source) for every field of a preset, for display and JSON."""
    rows: list[tuple[str, Any, str, str]] = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        path = f"{prefix}{name}"
        if value is None and _is_section(info.annotation):
            continue  # an absent optional section (a GPU's memory:) has no fields to list
        if isinstance(value, Quantity):
            rows.append((path, value.value, value.unit, value.source))
        elif isinstance(value, BaseModel):
            rows.extend(flatten(value, path + "."))
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, Quantity):
                    rows.append((f"{path}.{key}", item.value, item.unit, item.source))
                elif isinstance(item, BaseModel):
                    rows.extend(flatten(item, f"{path}.{key}."))
                else:
                    rows.append((f"{path}.{key}", item, "", ""))
        else:
            rows.append((path, value, "", ""))
    return rows


def to_dict(model: BaseModel) -> dict:
    """The resolved preset as JSON-ready data (quantities as {value, unit, source})."""
    return model.model_dump(mode="json")
