"""Reading YAML files (presets, specs) with one-line errors naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hardware.errors import HwsimError, unreadable


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser where PyYAML has it
    """A safe loader that refuses a mapping with the same key twice (plain YAML keeps the last one silently)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key '{key}' appears twice (line {key_node.start_mark.line + 1}); keep one", None)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def parse_yaml(text: str, name: str) -> Any:
    """Parse YAML ``text``; a syntax error or a duplicate key becomes a :class:`HwsimError` naming ``name``."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = next((line for line in lines if "appears twice" in line), lines[0] if lines else "syntax error")
        raise HwsimError(f"{name}: not valid YAML: {detail}") from None


def read_yaml(path: Path, name: str | None = None) -> Any:
    """Parse ``path``; a syntax error or a duplicate key becomes a :class:`HwsimError` naming the file (as ``name``
    if given)."""
    where = name or str(path)
    if path.is_dir():
        raise HwsimError(f"{where}: is a directory; give a YAML file")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise HwsimError(f"{where}: cannot read: {unreadable(exc, 'a YAML file')}") from None
    return parse_yaml(text, where)


def resolve_preset(name_or_path: str, folder: Path, unknown: str, missing: str) -> Path:
    """The file a preset argument names: a bundled ``folder/<name>.yaml`` for a bare name, else the path itself.

    ``unknown`` is the error for a bare name with no bundled preset, ``missing`` for a path that does not exist."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = folder / f"{name_or_path}.yaml"
        if not path.exists():
            raise HwsimError(unknown)
    if not path.exists():
        raise HwsimError(missing)
    return path
