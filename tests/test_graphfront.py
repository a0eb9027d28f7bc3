"""Real exporters' files (optimum, torch dynamo, torchscript; graph-only) against the configs they were built from.

Fixtures: tests/fixtures/graphfront (see make_fixtures.py there). FLOP counts are written by hand from the
architectures (2 FLOPs per multiply-accumulate), independent of hwsim's code.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from hardware.errors import HwsimError, HwsimWarning
from mapping import dims
from mapping.workloads import Model
from simulator.cli import main

HERE = Path(__file__).resolve().parent / "fixtures" / "graphfront"
MANIFEST = {e["file"]: e for e in json.loads((HERE / "manifest.json").read_text())["models"]}

_MODELS: dict[str, Model] = {}


def model(name: str) -> Model:
    """One Model per fixture for the whole test session (import is the slow part)."""
    if name not in _MODELS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", HwsimWarning)  # the folded mask's "causal unknown", tested below
            _MODELS[name] = Model(str(HERE / name))
    return _MODELS[name]


# -- analytic counts ---------------------------------------------------------------------------------------------
def _attention(c: dict, tokens: int, batch: int, q: int, kv: int, kv_proj: bool = True) -> float:
    inner = c["heads"] * c["head_dim"]
    kv_width = c["kv_heads"] * c["head_dim"]
    proj = 2 * tokens * c["d_model"] * inner * 2 + (2 * 2 * tokens * c["d_model"] * kv_width if kv_proj else 0)
    return proj + 2 * 2 * batch * c["heads"] * q * kv * c["head_dim"]


def _ffn(c: dict, tokens: int) -> float:
    if "experts" in c:  # router, top-k experts per token (gated), shared expert (gated) and its 1-column gate
        return (2 * tokens * c["d_model"] * c["experts"] + 3 * 2 * tokens * c["top_k"] * c["d_model"] * c["expert_d_ff"]
                + 3 * 2 * tokens * c["d_model"] * c["shared_expert_d_ff"] + 2 * tokens * c["d_model"])
    return (3 if c["gated"] else 2) * 2 * tokens * c["d_model"] * c["d_ff"]


def decoder_only(c: dict, batch: int, q: int, kv: int) -> float:
    tokens = batch * q
    layer = _attention(c, tokens, batch, q, kv) + _ffn(c, tokens)
    return c["layers"] * layer + 2 * tokens * c["d_model"] * c["vocab"]


def t5_decoder(c: dict, batch: int, q: int, kv: int, enc: int, cross_kv_proj: bool) -> float:
    """A T5 decoder file: self attention, cross attention over ``enc`` encoder states, ReLU FFN, LM head."""
    tokens = batch * q
    inner = c["heads"] * c["head_dim"]
    cross = 2 * 2 * tokens * c["d_model"] * inner + 2 * 2 * batch * c["heads"] * q * enc * c["head_dim"]
    if cross_kv_proj:
        cross += 2 * 2 * batch * enc * c["d_model"] * inner
    layer = _attention(c, tokens, batch, q, kv) + cross + _ffn(c, tokens)
    return c["layers"] * layer + 2 * tokens * c["d_model"] * c["vocab"]


def _close(got: float, want: float) -> None:
    assert abs(got - want) <= 0.01 * want, (got, want)


# -- recognition ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_recognised_facts_match_config(name: str) -> None:
    c = MANIFEST[name]
    ir = model(name).ir
    assert ir.architecture == c["architecture"]
    assert ir.n_layers == c["layers"]
    assert (ir.heads, ir.kv_heads, ir.head_dim) == (c["heads"], c["kv_heads"], c["head_dim"])
    assert ir.d_ff == c["d_ff"]
    assert len(ir.attentions("cross")) == c.get("cross_layers", 0)
    for block in ir.attentions("self"):
        assert block.attention.causal == c["causal"]
        assert block.attention.causal_known == c.get("causal_known", True)
    if "experts" in c:
        assert (ir.moe["experts"], ir.moe["top_k"], ir.moe["layers"]) == (c["experts"], c["top_k"], c["layers"])
        assert ir.moe["experts_found"] == c["experts"] * c["layers"]
    else:
        assert ir.moe == {}


@pytest.mark.parametrize("name", ["gpt2_optimum_past.onnx", "falcon_dynamo.onnx", "gpt2_dynamo_folded_mask.onnx",
                                  "qwen2moe_ts.onnx"])
def test_decoder_matmul_flops(name: str) -> None:
    c = MANIFEST[name]
    m = model(name)
    _close(m.prefill(2, 8).matmul_flops, decoder_only(c, 2, 8, 8))
    _close(m.decode(2, 11).matmul_flops, decoder_only(c, 2, 1, 12))


def test_optimum_past_binds_the_mask_length_from_its_parts() -> None:
    """`past_sequence_length + sequence_length` is evaluated, never bound as if it were the past length."""
    m = model("gpt2_optimum_past.onnx")
    step = m.decode(1, 9)
    assert step.bindings == {"batch_size": 1, "sequence_length": 1, "past_sequence_length": 9}
    gen = m.generate(1, 6, 4)
    contexts = [s.context for s in gen.steps()]
    assert contexts == [6, 7, 8]


def test_t5_decoder_with_past_reads_cross_kv_from_the_cache() -> None:
    c = MANIFEST["t5_optimum_decoder_with_past.onnx"]
    m = model("t5_optimum_decoder_with_past.onnx")
    assert all(b.attention.k_proj is None for b in m.ir.attentions("cross"))
    gen = m.generate(1, 7, 3)  # prefill: the first decoder token against 7 encoder positions
    _close(gen.prefill.matmul_flops, t5_decoder(c, 1, 1, 1, 7, cross_kv_proj=False))
    steps = list(gen.steps())
    _close(steps[0].matmul_flops, t5_decoder(c, 1, 1, 8, 7, cross_kv_proj=False))
    assert steps[0].bindings["encoder_sequence_length"] == 7


def test_merged_decoder_costs_the_branch_each_phase_takes() -> None:
    """Prefill runs the no-cache branch (cross K/V projected from encoder states), decode the cache branch."""
    c = MANIFEST["t5_optimum_merged.onnx"]
    m = model("t5_optimum_merged.onnx")
    gen = m.generate(1, 7, 3)
    _close(gen.prefill.matmul_flops, t5_decoder(c, 1, 1, 1, 7, cross_kv_proj=True))
    step = next(iter(gen.steps()))
    _close(step.matmul_flops, t5_decoder(c, 1, 1, 8, 7, cross_kv_proj=False))
    assert not m.for_phase("prefill").kv_inputs and m.kv_inputs


def test_vit_image_dims_come_from_the_graph_and_dim_reaches_recognition() -> None:
    m = model("vit_optimum.onnx")
    work = m.prefill(1, 1)
    assert {k: work.bindings[k] for k in ("num_channels", "height", "width")} == {"num_channels": 3, "height": 32,
                                                                                    "width": 32}
    assert work.seq == (32 // 8) ** 2 + 1
    bigger = Model(str(HERE / "vit_optimum.onnx"), {"height": 32, "width": 32})
    assert bigger.ir.n_layers == 2


def test_dim_names() -> None:
    assert dims.parts("past_sequence_length + sequence_length") == ["past_sequence_length", "sequence_length"]
    assert dims.parts("sequence_length") is None
    assert dims.classify("total_sequence_length", set()) == "total"
    assert dims.classify("encoder_sequence_length_out", {"encoder_sequence_length_out"}) == "encoder"
    assert dims.classify("kv_cache_dim", {"kv_cache_dim"}) == "other"
    assert dims.classify("past_decoder_sequence_length", set()) == "past"


# -- causality -------------------------------------------------------------------------------------------------
def test_folded_mask_is_reported_unknown_and_the_flags_decide() -> None:
    path = str(HERE / "gpt2_dynamo_folded_mask.onnx")
    runner = CliRunner()
    out = runner.invoke(main, ["inspect", path, "--seq", "8"])
    assert out.exit_code == 0, out.output
    line = next(ln for ln in out.output.splitlines() if ln.startswith("causal"))
    assert "unknown (mask folded into initializer" in line and "whose data is absent" in line
    data = json.loads(runner.invoke(main, ["inspect", path, "--seq", "8", "--json"]).stdout)
    assert data["causal"]["value"] == "unknown"
    data = json.loads(runner.invoke(main, ["inspect", path, "--seq", "8", "--json", "--no-causal"]).stdout)
    assert data["causal"] == {"value": "no", "evidence": "--no-causal"}
    assert data["architecture"] == "encoder-only"
    data = json.loads(runner.invoke(main, ["inspect", path, "--seq", "8", "--json", "--causal"]).stdout)
    assert data["causal"] == {"value": "yes", "evidence": "--causal"} and data["architecture"] == "decoder-only"
    with pytest.raises(HwsimError, match="generation needs a model with causal self-attention"):
        Model(path, causal=False).generate(1, 4, 2)
    with pytest.warns(HwsimWarning, match=r"causal unknown \(mask folded into initializer"):
        Model(path)


def test_causal_flag_and_an_encoder_decoder_split() -> None:
    """One stack: the user's word wins over evidence; both stacks in one file: the known verdicts stand."""
    m = Model(str(HERE / "t5_optimum_encoder.onnx"), causal=True)
    assert m.ir.architecture == "decoder-only"
    assert m.ir.causal["evidence"] == "--causal"
    both = Model(str(HERE.parent / "models" / "t5_ts.onnx"), causal=True)
    assert both.ir.architecture == "encoder-decoder"


# -- MoE --------------------------------------------------------------------------------------------------------
def test_moe_counts_top_k_experts_per_token_and_all_expert_weights() -> None:
    c = MANIFEST["qwen2moe_ts.onnx"]
    m = model("qwen2moe_ts.onnx")
    work = m.prefill(1, 8)
    expert_flops = sum(2.0 * o.matmul.batch * o.matmul.m * o.matmul.k * o.matmul.n
                       for o in work.ops if o.matmul is not None and ".expert" in o.block)
    assert expert_flops == 3 * 2 * 8 * c["top_k"] * c["d_model"] * c["expert_d_ff"] * c["layers"]
    expert_params = c["layers"] * c["experts"] * 3 * c["d_model"] * c["expert_d_ff"]
    assert m.params >= expert_params
    assert work.moe["tokens_per_expert"] == 8 * c["top_k"] / c["experts"]
    notes = [o.note for o in work.ops if o.note]
    assert sum("balanced routing" in n for n in notes) == c["experts"] * c["layers"]
    # one token: 2 selections over 4 experts; the rows still add up to tokens x top_k
    step = m.decode(1, 5)
    rows = sum(o.matmul.m for o in step.ops if o.matmul is not None and o.role == "down" and ".expert" in o.block)
    assert rows == c["top_k"] * c["layers"]


# -- missing external data ------------------------------------------------------------------------------------------
def test_data_dependent_shape_from_absent_external_data_names_the_initializer(tmp_path: Path) -> None:
    shape = numpy_helper.from_array(np.array([0, 2, 3], dtype=np.int64), "target_shape")
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "target_shape"], ["y"], name="reshape"),
         helper.make_node("MatMul", ["y", "w"], ["z"], name="mm")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 6])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
        [shape, numpy_helper.from_array(np.zeros((3, 4), dtype=np.float32), "w")])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path),
              save_as_external_data=True, location="m.onnx.data", size_threshold=0)
    (tmp_path / "m.onnx.data").unlink()
    with pytest.raises(HwsimError, match=r"initializer 'target_shape'.*'m.onnx.data', which is absent; ship the .data"):
        Model(str(path)).prefill(1, 1)


def test_simulate_accepts_the_causal_flags() -> None:
    path = str(HERE / "gpt2_dynamo_folded_mask.onnx")
    runner = CliRunner()
    refused = runner.invoke(main, ["simulate", path, "--target", "pim-gpt", "--phase", "generate", "--no-causal",
                                   "--prompt-len", "4", "--gen-len", "2", "--quiet"])
    assert refused.exit_code == 2 and "causal decoder" in refused.output
    ok = runner.invoke(main, ["simulate", path, "--target", "pim-gpt", "--phase", "generate", "--causal",
                              "--prompt-len", "4", "--gen-len", "2", "--quiet"])
    assert ok.exit_code == 0, ok.output


def test_cache_head_size_named_as_a_dim_is_bound_from_what_the_cache_is_concatenated_with(tmp_path: Path) -> None:
    m = onnx.load(str(HERE / "gpt2_optimum_past.onnx"), load_external_data=False)
    for vi in m.graph.input:
        if vi.name.startswith("past_key_values"):
            vi.type.tensor_type.shape.dim[3].dim_param = "kv_cache_dim"
    path = tmp_path / "kv_cache_dim.onnx"
    onnx.save(m, str(path))
    renamed = Model(str(path))
    assert renamed.decode(1, 5).bindings["kv_cache_dim"] == MANIFEST["gpt2_optimum_past.onnx"]["head_dim"]
    _close(renamed.decode(1, 5).matmul_flops, decoder_only(MANIFEST["gpt2_optimum_past.onnx"], 1, 1, 6))


def test_opaque_dynamo_dim_names_are_bound_by_position(tmp_path: Path) -> None:
    """torch.export names dims s31, s53...: axis 0 of an input is the batch, axis 1 of the token ids the sequence."""
    m = onnx.load(str(HERE / "falcon_dynamo.onnx"), load_external_data=False)
    renames = {"batch": "s31", "seq": "s53"}
    for vi in list(m.graph.input) + list(m.graph.output) + list(m.graph.value_info):
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param in renames:
                d.dim_param = renames[d.dim_param]
    path = tmp_path / "opaque.onnx"
    onnx.save(m, str(path))
    c = MANIFEST["falcon_dynamo.onnx"]
    opaque = Model(str(path))
    assert opaque.prefill(2, 8).bindings == {"s31": 2, "s53": 8}
    _close(opaque.prefill(2, 8).matmul_flops, decoder_only(c, 2, 8, 8))
