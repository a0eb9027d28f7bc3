"""Regressions of the seventh held-out batch (tests/fixtures/corpus/make_heldout7.py): 67 files of architectures and
producers the corpus had not covered (StableLM with per-head QK norm, Hiera, LongT5, onnxruntime's optimizer on
opset-14 graphs, a torch.export StaticCache decode step, ...), built by a helper session and checked against the
config's facts and onnxruntime-counted FLOPs. Graph-only copies of the ten kept are in tests/fixtures/heldout7
(manifest.json there). What they exposed:

- StableLM's per-head K norm (K split into one [B, 1, L, 16] slice per head, each LayerNorm'd, then concatenated)
  read as one KV head (the fewest heads on K's path), so the KV cache was 4x too small;
- Hiera's 5-D scores [B, heads, mask units, q, k] (MatMul) and LongT5's local blocks (Einsum with an ellipsis,
  ``...qhd,...khd->...hqk``, padded by a Pad): the windows counted as heads, or the Einsum not seen as attention
  at all (the encoder had no layer);
- onnxruntime's optimizer writes LayerNormalization (an opset-17 op) into opset-14 graphs, which onnxruntime runs:
  refused as an op "ONNX and hwsim do not know";
- a decode-step graph exported at one new token by torch.export (StaticCache; ``cache_position`` named apart from
  ``input_ids``' length) bound at no probe length: refused, and no --dim value helped.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from hardware.errors import HwsimWarning
from mapping.op_costs import Precision, einsum_gemm, expand_ellipsis
from mapping.workloads import Model
from simulator.cli import main

from conftest import assert_matches_heldout_truth

HERE = Path(__file__).resolve().parent / "fixtures" / "heldout7"
MANIFEST = json.loads((HERE / "manifest.json").read_text())["files"]


def _model(name: str) -> Model:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HwsimWarning)
        return Model(str(HERE / name))


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_heldout7_files_facts_and_flops(name: str) -> None:
    entry = MANIFEST[name]
    assert_matches_heldout_truth(_model(name), entry["facts"], entry["truth"])


def test_per_head_k_norm_keeps_every_kv_head() -> None:
    """The KV cache of the per-head-norm StableLM holds 4 heads: 2 layers x (K, V) x 4 heads x 16 x 2 bytes per
    token (fp16)."""
    model = _model("ts17__stablelm_par.onnx")
    assert model.ir.kv_heads == 4
    assert model.kv_cache_bytes(1, 10, Precision(kv_cache="float16")) == 2 * 2 * 4 * 16 * 2 * 10


def test_static_cache_decode_graph_runs_one_token_by_default() -> None:
    """The one-token decode-step graph simulates as a decode step (its own length), with no --dim or --seq."""
    result = CliRunner().invoke(main, ["simulate", str(HERE / "dyn18_static__hunyuan_dense.onnx"), "--target",
                                       "a100-80gb"])
    assert result.exit_code == 0, result.output
    assert "workload   decode: batch 1" in result.output


def test_expand_ellipsis_is_numpy_einsum() -> None:
    """An ellipsis becomes letters of its own, aligned from the right, the implicit output led by them: the
    expanded equation computes what numpy computes for the original."""
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(0)
    cases = [("...qhd,...khd->...hqk", [(2, 3, 8, 4, 16), (2, 3, 24, 4, 16)]), ("...ij,...jk", [(5, 2, 3), (3, 4)]),
             ("...ij,...jk->...ik", [(2, 5, 2, 3), (5, 3, 4)]), ("bhid,bhjd->bhij", [(1, 2, 3, 4), (1, 2, 5, 4)])]
    for eq, shapes in cases:
        ops = [rng.standard_normal(s) for s in shapes]
        expanded = expand_ellipsis(eq, shapes)
        assert "." not in expanded and "->" in expanded
        assert np.allclose(np.einsum(eq, *ops), np.einsum(expanded, *ops)), eq
    # LongT5's local scores as a batched GEMM: batch x blocks x heads = 2 x 3 x 4, 8 queries, 16 dims, 24 keys
    assert einsum_gemm(expand_ellipsis(*cases[0]), cases[0][1]) == (24, 8, 16, 24)


def test_split_by_run_time_counts_is_balanced(tmp_path) -> None:
    """JetMoE's torch.export graph splits its expert-sorted rows by per-expert counts (a ReduceSum of the routing
    one-hot): no shape inference sizes the parts, so the file was refused. The parts now share the rows as evenly
    as the count allows (6 rows over 4 experts: 2, 2, 1, 1) and still add up to the rows onnxruntime splits."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from mapping.onnx_graph import load_graph
    from mapping.shape_binding import bind

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [6, 8])
    outs = [helper.make_tensor_value_info(f"p{i}", TensorProto.FLOAT, None) for i in range(4)]
    inits = [numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32), "wr"),
             numpy_helper.from_array(np.array(4, np.int64), "depth"),
             numpy_helper.from_array(np.array([0, 1], np.int64), "onoff"),
             numpy_helper.from_array(np.array([0], np.int64), "ax0")]
    nodes = [helper.make_node("MatMul", ["x", "wr"], ["logits"]),
             helper.make_node("ArgMax", ["logits"], ["idx"], axis=1, keepdims=0),
             helper.make_node("OneHot", ["idx", "depth", "onoff"], ["oh"], axis=-1),
             helper.make_node("ReduceSum", ["oh", "ax0"], ["counts"], keepdims=0),
             helper.make_node("Split", ["x", "counts"], [f"p{i}" for i in range(4)], axis=0)]
    path = tmp_path / "split.onnx"
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x], outs, inits),
                                opset_imports=[helper.make_opsetid("", 17)]), path)
    bound = bind(load_graph(str(path)), {})
    assert [bound.shapes[f"p{i}"] for i in range(4)] == [(2, 8), (2, 8), (1, 8), (1, 8)]
