"""The encoder length E of encoder-decoder files: one convention for hwsim and the corpus truth.

A decoder file whose encoder length is a named dim takes ``--prompt-len`` (or ``--dim NAME=N``); a file whose
cross-attention inputs fix it (onnxruntime-genai's Whisper decoder) uses the fixed length. Known answers come
from tests/fixtures/corpus/truth.py (hand-written from the config, never from hwsim).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from hardware.errors import HwsimError
from mapping.op_costs import Precision
from mapping.workloads import Model

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
sys.path.insert(0, str(CORPUS))
import archs  # noqa: E402
import truth  # noqa: E402


def test_decoder_file_encoder_length_follows_prompt_or_dim() -> None:
    path = str(CORPUS / "models" / "optimum__whisper__merged__decoder_model.onnx")
    f = archs.facts("whisper")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a long encoder is no reason to warn about the decoder's position table
        by_prompt = Model(path)
        work = by_prompt.prefill(1, 128)
    assert by_prompt.encoder_length(work) == (128, "encoder_sequence_length = --prompt-len; --dim "
                                                   "encoder_sequence_length=N sets it")
    assert work.matmul_flops == pytest.approx(truth.prefill_flops(f, "seq2seq_decoder", 128), rel=1e-9)
    by_dim = Model(path, dims={"encoder_sequence_length": 8})
    work = by_dim.prefill(1, 128)
    assert by_dim.encoder_length(work) == (8, "--dim encoder_sequence_length")
    assert work.matmul_flops == pytest.approx(truth.prefill_flops(f, "seq2seq_decoder", 128, encoder_len=8), rel=1e-9)


def test_fixed_cross_cache_sets_encoder_length() -> None:
    model = Model(str(CORPUS / "models" / "genai__whisper_1500__fp32_cpu__decoder.onnx"))
    f = archs.facts("whisper_1500")
    work = model.decode(1, 32, prompt_len=16)
    assert model.encoder_length(work) == (1500, "fixed by the graph")
    assert work.matmul_flops == pytest.approx(truth.decode_flops(f, "seq2seq_decoder_with_past", 16, 32, 1500), rel=1e-9)
    # the cache: self K/V of 33 positions and cross K/V of 1500, fp32, 2 layers x 4 heads x 16
    assert work.kv_cache_bytes == 2 * 2 * 4 * 16 * 4 * (33 + 1500)
    assert model.kv_cache_bytes(1, 33, Precision(), prompt=16) == work.kv_cache_bytes


def test_inconsistent_fixed_sizes_are_a_one_line_refusal(tmp_path: Path) -> None:
    """An input longer than the position table it is added to (what onnxruntime-genai's builder made of a
    Whisper config with fewer than 1500 positions): no runtime can run it."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 6, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    pos = helper.make_tensor("pos", TensorProto.FLOAT, [4, 4], [0.0] * 16)
    graph = helper.make_graph([helper.make_node("Add", ["x", "pos"], ["y"], name="add_positions")], "g", [x], [y], [pos])
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(HwsimError) as err:
        Model(str(path)).prefill(1, 6)
    msg = str(err.value)
    assert "\n" not in msg and "add_positions" in msg and "[(" in msg and "re-export" in msg
