"""benchmarks/eager_dispatch.py without torch: a --config model keeps its structure and takes small widths (the
count depends on the structure only), its special tokens stay inside the narrowed vocabulary, and every recorded
count in hardware/calibration/host/eager_dispatch.json is one of the script's named cases with its setup."""

from __future__ import annotations

import importlib.util
import json
from types import SimpleNamespace

import pytest

from conftest import ROOT


def _script():
    spec = importlib.util.spec_from_file_location("eager_dispatch", ROOT / "benchmarks" / "eager_dispatch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # only the standard library at import: torch is imported when counting
    return module


def test_narrowed_config_keeps_structure_and_valid_token_ids():
    script = _script()
    config = SimpleNamespace(num_attention_heads=32, num_key_value_heads=8, num_hidden_layers=32, hidden_size=4096,
                             intermediate_size=14336, vocab_size=128256, head_dim=128, bos_token_id=128000,
                             eos_token_id=[128001, 128009], pad_token_id=None, num_local_experts=8)
    out = script._narrowed(config)
    assert (out.num_attention_heads, out.num_key_value_heads, out.num_hidden_layers, out.num_local_experts) == \
        (32, 8, 32, 8)  # structure kept
    assert out.hidden_size == 16 * 32 and out.intermediate_size == 2 * out.hidden_size and out.head_dim == 16
    assert out.vocab_size == 512 and out.bos_token_id == 1 and out.eos_token_id == 1 and out.pad_token_id is None
    with pytest.raises(script.CountError, match="num_attention_heads"):
        script._narrowed(SimpleNamespace(hidden_size=64))


def test_recorded_counts_are_named_cases_with_consistent_setups():
    script = _script()
    doc = json.loads((ROOT / "hardware" / "calibration" / "host" / "eager_dispatch.json").read_text())
    assert doc["cases"]
    for name, entry in doc["cases"].items():
        assert name in script.CASES, name
        assert entry["setup"] == script.CASES[name], name  # the recorded setup is the script's
        steps = entry["per_step"]
        assert 0 < steps["kernels"] < steps["aten"] and steps["torch_functions"] > 0
        assert sum(entry["by_op"].values()) == pytest.approx(steps["aten"])  # the per-op counts add up
        if entry["setup"]["framework"] == "transformers":
            assert entry["framework_version"] == entry["setup"]["version"], name  # counted at the source's version
    # the GPT-2 baseline cases grow linearly with the layer count (one block's dispatches per layer)
    gpt2 = sorted((e["setup"]["layers"], e["per_step"]["aten"]) for n, e in doc["cases"].items()
                  if n.startswith("pim-gpt-baseline/"))
    per_layer = {(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(gpt2, gpt2[1:])}
    assert len(gpt2) == 4 and len(per_layer) == 1
