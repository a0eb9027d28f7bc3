"""Regressions of the eighth held-out batch (deployment-style graphs; tests/fixtures/heldout8/manifest.json): an
onnxruntime-genai GroupQueryAttention graph quantized to QDQ by onnxruntime's quantize_static left the KV cache's
head size (``kv_cache_dim``) unbound: the width walk from the attention's query back to its projection stopped at
the DequantizeLinear in front of it, and read no weight width through the weight's DequantizeLinear."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from hardware.errors import HwsimWarning
from mapping.workloads import Model

from conftest import assert_matches_heldout_truth

HERE = Path(__file__).resolve().parent / "fixtures" / "heldout8"
MANIFEST = json.loads((HERE / "manifest.json").read_text())["files"]


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_heldout8_files_facts_and_flops(name: str) -> None:
    entry = MANIFEST[name]
    assert {"prefill_matmul_flops", "decode_matmul_flops"} <= set(entry["truth"])  # both passes are checked
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HwsimWarning)
        model = Model(str(HERE / name))  # no --dim kv_cache_dim=N needed
    assert_matches_heldout_truth(model, entry["facts"], entry["truth"])


def test_kv_cache_graph_without_a_recognised_attention_says_so() -> None:
    """onnxruntime's session optimizer fuses the scores into com.microsoft.FusedMatMul (transB=1, alpha=1/sqrt(d)),
    which the attention pass does not read yet (open): the model then has no attention and simulate's default run
    is one forward pass. That is said, not left silent."""
    with pytest.warns(HwsimWarning, match="KV-cache inputs .* but hwsim found no attention"):
        Model(str(HERE / "ortsess-ext__llama_past.onnx"))
