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

#: Larger sizes of families the default run already checks at a smaller size (run with ``-m heavy``).
LARGER_SIZES = {"gpt2-medium.onnx", "gpt2-large.onnx", "gpt2-xl.onnx", "gpt3-medium.onnx", "gpt3-large.onnx",
                "gpt3-xl.onnx", "opt-350m.onnx", "opt-1.3b.onnx", "llama2-13b.onnx"}


def example_params() -> list:
    """Every shipped example; the larger sizes of a family are marked heavy."""
    return [pytest.param(n, marks=pytest.mark.heavy) if n in LARGER_SIZES else n for n in sorted(EXAMPLE_MODELS)]


@pytest.fixture(scope="session")
def fixture_path():
    return lambda name: str(FIXTURES / name)
