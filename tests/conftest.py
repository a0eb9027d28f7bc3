"""Shared fixtures: paths of the committed models and their manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "models"
EXAMPLES = ROOT / "examples"


def manifest(folder: Path) -> dict[str, dict]:
    """File name -> manifest entry."""
    data = json.loads((folder / "manifest.json").read_text())
    return {e["file"]: e for e in data["models"]}


FIXTURE_MODELS = manifest(FIXTURES)
EXAMPLE_MODELS = manifest(EXAMPLES)


@pytest.fixture(scope="session")
def fixture_path():
    return lambda name: str(FIXTURES / name)
