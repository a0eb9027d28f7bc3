"""Regressions of the fourth held-out batch (tests/fixtures/corpus/export_log.md, Held-out batch 4): transformer
files from model code outside Hugging Face transformers (nanoGPT, torch.nn.Transformer*, torchvision / timm ViTs,
hand-written LLaMA / gpt-fast), each failure rebuilt here as a small onnx.helper graph.

- torch.export specialises a batch-1 example inside the graph (reshapes to [1, ...]) while the inputs keep a
  symbolic batch: recognition probed batch 2 only and the import failed; a batch above 1 is now one line;
- its opaque dims (``s31``) are named apart per input: a KV-cache input's own batch symbol was read as its past
  length;
- sequence-first graphs (nn.Transformer's default ``batch_first=False``): axis 0 of the token input was taken
  for the batch; the axis a position Range counts (or the only layout that binds) is the sequence now;
- TorchScript bakes the traced length into nn.MultiheadAttention's reshapes under ``batch_first=False``: a Reshape
  to another element count was costed silently (a decode step of 16 keys); it is one line now;
- a fixed-shape decoder graph (no length dim, no cache) reran its whole pass per decode step without a word;
- tf2onnx's Keras decoder: the token table was a "segment" embedding (Keras remaps negative ids per element, and the
  probe's zero ids looked constant), so no vocabulary and no LM head; its LayerNormalization (GlobalAveragePool
  moments, a Neg) was not a norm;
- the Range rule must not read an image's batch (Swin counts it for its window partition) as a sequence.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hardware.errors import HwsimError, HwsimWarning
from mapping.onnx_graph import load_graph
from mapping.op_costs import Precision
from mapping.recognize import dim_kinds, recognise
from mapping.workloads import Model

RNG = np.random.default_rng(0)
D, HEADS, HD, VOCAB = 16, 2, 8, 32


def _w(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array((RNG.standard_normal(shape) * 0.1).astype(np.float32), name)


def _i64(name: str, *values: int) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def _save(path: Path, nodes: list, inputs: list, inits: list, outputs: tuple[str, ...] = ("y",)) -> str:
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                                                   for o in outputs], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return str(path)


def _attention(x: str, heads_shape: str, mask: str | None = None) -> tuple[list, list]:
    """Q, K, V of ``x`` [1, T, D], 2 heads of 8 (reshaped by the initializer ``heads_shape``), scores (+ an
    additive mask), softmax, P.V, output projection to ``y``."""
    n = helper.make_node
    nodes = [n("MatMul", [x, "wq"], ["q"], name="q_proj"), n("MatMul", [x, "wk"], ["k"], name="k_proj"),
             n("MatMul", [x, "wv"], ["v"], name="v_proj")]
    for t in ("q", "k", "v"):
        nodes.append(n("Reshape", [t, heads_shape], [f"{t}4"], name=f"r{t}"))
        nodes.append(n("Transpose", [f"{t}4"], [f"{t}h"], perm=[0, 2, 3, 1] if t == "k" else [0, 2, 1, 3],
                       name=f"t{t}"))
    nodes.append(n("MatMul", ["qh", "kh"], ["s"], name="score"))
    if mask:
        nodes.append(n("Add", ["s", mask], ["sm"], name="mask_add"))
    nodes += [n("Softmax", ["sm" if mask else "s"], ["p"], axis=-1, name="softmax"),
              n("MatMul", ["p", "vh"], ["o4"], name="pv"), n("Transpose", ["o4"], ["o3"], perm=[0, 2, 1, 3], name="to"),
              n("Reshape", ["o3", "flat"], ["o"], name="ro"), n("MatMul", ["o", "wo"], ["y"], name="o_proj")]
    inits = [_w("wq", D, D), _w("wk", D, D), _w("wv", D, D), _w("wo", D, D), _i64("flat", 1, -1, D)]
    return nodes, inits


def _attention_flops(tokens: int) -> float:
    return 4 * 2.0 * tokens * D * D + 2 * 2.0 * HEADS * tokens * tokens * HD


def _seq_first_batch1(path: Path) -> str:
    """torch.export of a sequence-first model from a batch-1 example: ids [s0 = T, s1 = B] -> embeddings [T, B, D],
    a learned [1, 1, D] token concatenated in front along the sequence (runs only at B = 1), then batch-first
    attention over the T + 1 positions with the batch fixed to 1 in its reshapes."""
    n = helper.make_node
    nodes = [n("Gather", ["table", "ids"], ["h"], name="embed"),
             n("Concat", ["cls", "h"], ["hc"], axis=0, name="prepend"),
             n("Transpose", ["hc"], ["x"], perm=[1, 0, 2], name="batch_first")]
    att, inits = _attention("x", "heads")
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["s0", "s1"])
    return _save(path, nodes + att, [ids], [_w("table", VOCAB, D), _w("cls", 1, 1, D), _i64("heads", 1, -1, HEADS, HD),
                                           *inits])


def test_a_batch1_sequence_first_export_imports_and_refuses_other_batches(tmp_path: Path) -> None:
    path = _seq_first_batch1(tmp_path / "seq_first.onnx")
    graph = load_graph(path)
    ir = recognise(graph)  # probed batch-first (batch 2, then 1), then sequence-first: only [T, 1] binds
    assert graph.seq_first and dim_kinds(graph) == {"s0": "seq", "s1": "batch"}
    (block,) = ir.attentions()
    assert (block.attention.heads, block.attention.head_dim) == (HEADS, HD)
    model = Model(path)
    assert model.prefill(1, 8).matmul_flops == pytest.approx(_attention_flops(9))
    with pytest.raises(HwsimError) as err:
        model.prefill(2, 8)
    assert "runs only at batch 1" in str(err.value) and "\n" not in str(err.value)


def test_opaque_dims_of_a_kv_cache_and_a_counted_sequence_axis(tmp_path: Path) -> None:
    """A cache input's own batch symbol (torch.export names every input's axes apart) is its batch, not its past;
    an int input whose axis 0 feeds the Range of a position table is sequence-first."""
    n = helper.make_node
    nodes = [n("Shape", ["ids"], ["t"], start=0, end=1, name="len"), n("Squeeze", ["t"], ["t0"], name="sq"),
             n("Range", ["zero", "t0", "one"], ["pos"], name="arange"),
             n("Gather", ["table", "ids"], ["h"], name="embed"), n("Gather", ["ptable", "pos"], ["p"], name="pos_embed"),
             n("Unsqueeze", ["p", "one_axis"], ["p3"], name="up"), n("Add", ["h", "p3"], ["y"], name="add_pos"),
             n("Identity", ["past_k_1"], ["k_out"], name="keep")]
    inits = [_w("table", VOCAB, D), _w("ptable", 64, D), numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array(1, np.int64), "one"), _i64("one_axis", 1)]
    inputs = [helper.make_tensor_value_info("ids", TensorProto.INT64, ["s0", "s1"]),
              helper.make_tensor_value_info("past_k_1", TensorProto.FLOAT, ["s7", HEADS, "s8", HD])]
    path = _save(tmp_path / "dims.onnx", nodes, inputs, inits, ("y", "k_out"))
    assert dim_kinds(load_graph(path)) == {"s0": "seq", "s1": "batch", "s7": "batch", "s8": "past"}


def _traced_length_file(tmp_path: Path, batch: int = 1) -> str:
    """TorchScript's nn.MultiheadAttention with batch_first=False: the Q reshape's target holds the traced length
    (16) and ``batch`` (the example's)."""
    n = helper.make_node
    nodes = [n("Gather", ["table", "ids"], ["x"], name="embed")]
    att, inits = _attention("x", "heads")
    att[3] = n("Reshape", ["q", "traced"], ["q4"], name="rq")  # [batch, 16, 2, 8]: only 16 tokens fit
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq_len"])
    return _save(tmp_path / f"traced{batch}.onnx", nodes + att, [ids],
                 [_w("table", VOCAB, D), _i64("heads", 0, -1, HEADS, HD), _i64("traced", batch, 16, HEADS, HD), *inits])


def test_a_reshape_that_fixes_the_traced_length_is_one_line(tmp_path: Path) -> None:
    """A file whose reshape fixes the traced length imports at that length (found from the reshape's element
    counts), costs exactly one attention layer of 16 tokens there, and refuses other lengths (and, where the batch
    is fixed too, other batches) in one line naming the node and the length."""
    model = Model(_traced_length_file(tmp_path))
    assert model.graph.traced_length == 16
    assert (model.ir.heads, model.ir.head_dim) == (HEADS, HD)
    work = model.prefill(1, 16, Precision())
    assert sum(o.flops for o in work.ops if o.matmul is not None) == pytest.approx(_attention_flops(16))
    for batch, seq, where, fix in ((1, 32, "length 16:", "--prompt-len 16;"), (4, 16, "length 16 and batch 1", "(--batch 1;")):
        with pytest.raises(HwsimError) as err:
            model.prefill(batch, seq, Precision())
        text = str(err.value)
        assert where in text and "'rq' (Reshape)" in text and fix in text and "\n" not in text


def test_a_traced_batch_and_length_are_told_apart(tmp_path: Path) -> None:
    """Only the product of a fixed batch and length is in a reshape's element counts. A batch-2 trace of 16 tokens
    imports at batch 2 x 16 (the probe's batch); a batch-3 one, probed at batch 2, gives no whole length, and at
    batch 1 fits 48 tokens, but its softmax then runs over 16 x 48, not 48 x 48, so it is refused as before."""
    two = Model(_traced_length_file(tmp_path, batch=2))
    assert (two.graph.traced_length, two.graph.traced_batch) == (16, 2)
    assert two.prefill(2, 16, Precision()).batch == 2
    with pytest.raises(HwsimError) as err:
        two.prefill(1, 16, Precision())
    assert "length 16 and batch 2" in str(err.value) and "--batch 2" in str(err.value)
    with pytest.raises(HwsimError) as err:
        Model(_traced_length_file(tmp_path, batch=3))
    assert "'rq' (Reshape)" in str(err.value) and "re-export" in str(err.value)


def test_a_fixed_shape_decoder_decode_step_reruns_its_pass_with_a_warning(tmp_path: Path) -> None:
    """ids [1, 4] (no dynamic axes): a causal mask initializer; a decode step is the 4-token pass again."""
    n = helper.make_node
    mask = np.triu(np.full((4, 4), -1e9, np.float32), 1)
    att, inits = _attention("x", "heads", mask="mask")
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 4])
    path = _save(tmp_path / "static.onnx", [n("Gather", ["table", "ids"], ["x"], name="embed"), *att], [ids],
                 [_w("table", VOCAB, D), _i64("heads", 0, -1, HEADS, HD), numpy_helper.from_array(mask, "mask"), *inits])
    model = Model(path, causal=True)  # (the mask's values decide nothing on their own here)
    assert model.ir.architecture == "decoder-only"
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        step = model.decode(1, 32, prompt_len=4)
    assert any(issubclass(w.category, HwsimWarning) and "reruns the whole fixed-shape pass" in str(w.message)
               for w in seen)
    assert step.matmul_flops == pytest.approx(_attention_flops(4)) == model.prefill(1, 4).matmul_flops


def _keras_like(path: Path) -> str:
    """tf2onnx of a Keras decoder: Embedding's negative-id remap (``where(ids < 0, ids + rows, ids)`` as Less /
    Cast / Mul / Add), a LayerNormalization whose moments are GlobalAveragePools (mean over the width of
    [batch, tokens, width]) with ``-mean * scale`` through a Neg, and a Dense to the vocabulary."""
    n = helper.make_node
    nodes = [n("Less", ["ids", "zero"], ["neg"], name="less"), n("Cast", ["neg"], ["negi"], to=TensorProto.INT64,
                                                                  name="cast_neg"),
             n("Add", ["ids", "rows"], ["wrapped"], name="wrap"), n("Mul", ["negi", "wrapped"], ["a"], name="sel_a"),
             n("Not", ["neg"], ["pos"], name="not"), n("Cast", ["pos"], ["posi"], to=TensorProto.INT64, name="cast_pos"),
             n("Mul", ["posi", "ids"], ["b"], name="sel_b"), n("Add", ["a", "b"], ["index"], name="select"),
             n("Gather", ["table", "index"], ["x"], name="embed"),
             n("GlobalAveragePool", ["x"], ["mean"], name="mean"), n("Neg", ["mean"], ["nmean"], name="neg_mean"),
             n("Sub", ["x", "mean"], ["d"], name="diff"), n("Mul", ["d", "d"], ["d2"], name="sq"),
             n("GlobalAveragePool", ["d2"], ["var"], name="variance"), n("Add", ["var", "eps"], ["ve"], name="add_eps"),
             n("Sqrt", ["ve"], ["sd"], name="sqrt"), n("Reciprocal", ["sd"], ["rs"], name="rsqrt"),
             n("Mul", ["rs", "gamma"], ["scale"], name="scale"), n("Mul", ["x", "scale"], ["xs"], name="x_scale"),
             n("Mul", ["nmean", "scale"], ["ms"], name="mean_scale"), n("Add", ["ms", "beta"], ["shift"], name="shift"),
             n("Add", ["xs", "shift"], ["h"], name="norm_out"), n("MatMul", ["h", "head"], ["y"], name="dense_vocab")]
    inits = [_w("table", VOCAB, D), _w("gamma", D), _w("beta", D), _w("head", D, VOCAB),
             numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array(VOCAB, np.int64), "rows"),
             numpy_helper.from_array(np.array(1e-6, np.float32), "eps")]
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["unk__1", "unk__2"])
    return _save(path, nodes, [ids], inits)


def test_keras_embedding_remap_and_global_average_pool_layernorm(tmp_path: Path) -> None:
    ir = recognise(load_graph(_keras_like(tmp_path / "keras.onnx")))
    kinds = {b.kind: b for b in ir.blocks}
    assert kinds["embedding"].attrs["kind"] == "token"  # was "segment": the probe's zero ids looked constant
    assert kinds["norm"].attrs["norm"] == "layernorm" and kinds["norm"].attrs["dim"] == D
    assert {"mean", "variance", "neg_mean", "mean_scale", "norm_out"} <= set(kinds["norm"].nodes)
    assert "lm_head" in kinds and not ir.unrecognised


def test_an_image_batch_that_feeds_a_range_stays_the_batch(tmp_path: Path) -> None:
    """Swin's window partition counts its batch with a Range: only token ids' axes are read that way."""
    n = helper.make_node
    nodes = [n("Shape", ["pixel_values"], ["b"], start=0, end=1, name="batch_size"),
             n("Squeeze", ["b"], ["b0"], name="sq"), n("Range", ["zero", "b0", "one"], ["rows"], name="arange"),
             n("Cast", ["rows"], ["rowsf"], to=TensorProto.FLOAT, name="cast"),
             n("ReduceSum", ["pixel_values"], ["s"], keepdims=0, name="sum"),
             n("Add", ["s", "rowsf"], ["y"], name="add")]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"), numpy_helper.from_array(np.array(1, np.int64), "one")]
    image = helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["s77", 3, 32, 32])
    assert dim_kinds(load_graph(_save(tmp_path / "image.onnx", nodes, [image], inits))) == {"s77": "batch"}


def test_a_static_kv_cache_holds_its_slots(tmp_path: Path) -> None:
    """gpt-fast: the per-layer caches are [batch, kv_heads, 8 slots, head_dim] inputs attended whole (masked):
    the resident cache is 8 slots whatever the tokens, and a prompt beyond them is warned about."""
    n = helper.make_node
    nodes = [n("Gather", ["table", "ids"], ["x"], name="embed"), n("MatMul", ["x", "wq"], ["q"], name="q_proj"),
             n("Reshape", ["q", "heads"], ["q4"], name="rq"), n("Transpose", ["q4"], ["qh"], perm=[0, 2, 1, 3], name="tq"),
             n("Transpose", ["k_cache"], ["kt"], perm=[0, 1, 3, 2], name="tk"),
             n("MatMul", ["qh", "kt"], ["s"], name="score"), n("Softmax", ["s"], ["p"], axis=-1, name="softmax"),
             n("MatMul", ["p", "v_cache"], ["o4"], name="pv"), n("Transpose", ["o4"], ["o3"], perm=[0, 2, 1, 3], name="to"),
             n("Reshape", ["o3", "flat"], ["o"], name="ro"), n("MatMul", ["o", "wo"], ["y"], name="o_proj")]
    inits = [_w("table", VOCAB, D), _w("wq", D, D), _w("wo", D, D), _i64("heads", 0, -1, HEADS, HD),
             _i64("flat", 0, -1, D)]
    inputs = [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq_len"])] + [
        helper.make_tensor_value_info(c, TensorProto.FLOAT, ["batch", HEADS, 8, HD]) for c in ("k_cache", "v_cache")]
    model = Model(_save(tmp_path / "static_cache.onnx", nodes, inputs, inits))
    assert model.static_cache_slots == 8
    want = HEADS * 2 * HD * 8 * 4  # keys and values of 8 slots, fp32
    assert model.kv_cache_bytes(1, 3, Precision()) == model.kv_cache_bytes(1, 8, Precision()) == want
    with pytest.warns(HwsimWarning, match="static KV cache"):
        model.prefill(1, 12)


def test_windowed_attention_counts_every_window_position(tmp_path: Path) -> None:
    """Swin: 16 fixed positions in 4 windows of 4 (the windows ride in the score product's batch): a pass
    computes 16 positions, not a window's 4."""
    n = helper.make_node
    att, inits = _attention("x", "windows")
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 16])
    path = _save(tmp_path / "windows.onnx", [n("Gather", ["table", "ids"], ["x"], name="embed"), *att], [ids],
                 [_w("table", VOCAB, D), _i64("windows", 4, -1, HEADS, HD), *inits])
    with pytest.warns(HwsimWarning, match="computes 16 positions"):
        work = Model(path).prefill(1, 7)
    assert work.matmul_flops == pytest.approx(4 * 2.0 * 16 * D * D + 2 * 2.0 * HEADS * 4 * (4 * 4) * HD)


REVIEW = Path(__file__).resolve().parent / "fixtures" / "review4"  # graph-only exports of the batch's review


def test_review_a_range_over_the_batch_does_not_make_a_graph_sequence_first() -> None:
    """A batch-first classifier picking each row's last token (``h[torch.arange(b), last]``, dynamo, opaque dims):
    the Range over the batch indexes an activation, it counts no positions, so the graph stays batch-first."""
    model = Model(str(REVIEW / "c_poolcls.onnx"))
    work = model.prefill(2, 24)
    batch_dim, seq_dim = model.graph.tensors["input_ids"].dims
    assert work.bindings[batch_dim] == 2 and work.bindings[seq_dim] == 24


def test_review_a_sequence_first_kv_cache_keeps_its_past_on_axis_0() -> None:
    """Past K/V of [past, batch, heads, head_dim] concatenated on axis 0 (Megatron's layout; 2 layers, d 64 fp32):
    the past length is axis 0, so a step after 32 tokens holds 33 positions of K and V in each layer."""
    model = Model(str(REVIEW / "h_seqfirst_kv.onnx"))
    assert model.decode(1, 32).kv_cache_bytes == 33 * 2 * 2 * 64 * 4


def test_review_a_static_cache_in_bshd_layout_holds_its_slots() -> None:
    """A static cache [batch, 64 slots, heads 4, head_dim 16] updated in place (index_copy on axis 1): 64 slots,
    not its head count; a fixed-shape export that concatenates its past is not static."""
    model = Model(str(REVIEW / "f_static_bshd.onnx"))
    assert model.static_cache_slots == 64
    assert model.decode(1, 32).kv_cache_bytes == 64 * 2 * 2 * 64 * 4


def test_review_a_fixed_batch_is_not_read_as_windows() -> None:
    """A causal LM traced at [2, 16] (TorchScript): its score product's batch is 2 sequences x heads, no windows,
    so a pass computes 16 positions."""
    with pytest.warns(HwsimWarning, match="computes 16 positions"):
        assert Model(str(REVIEW / "g_enc_fixed_b2.onnx")).prefill(1, 7).seq == 16


def test_review_a_sequence_first_encoder_without_range_or_trilu_is_read_sequence_first() -> None:
    """nn.TransformerEncoder with batch_first=False, no mask and no positions (dynamo, opaque dims): nothing counts
    positions, and both layouts bind; batch-first would put the batch in the softmax's rows, so the graph is read
    sequence-first ([T, B] ids)."""
    model = Model(str(REVIEW / "i_seqfirst_enc.onnx"))
    assert model.graph.seq_first
    work = model.prefill(2, 24)
    seq_dim, batch_dim = model.graph.tensors["src"].dims
    assert work.bindings[seq_dim] == 24 and work.bindings[batch_dim] == 2


def test_review_einsum_matrix_products_are_read_as_such() -> None:
    """An Einsum computing a batched matrix product (attention written with torch.einsum) is one: scores with K
    untransposed and the PV product qualify; an outer product, a contraction of two indices and a reordered output
    do not."""
    from mapping.op_costs import einsum_bmm

    assert einsum_bmm("bhid,bhjd->bhij") and einsum_bmm("bhij,bhjd->bhid")
    assert einsum_bmm("B G H I D, B G H J D -> B G H I J")
    assert not einsum_bmm("i,j->ij") and not einsum_bmm("bhid,bhjd->bh") and not einsum_bmm("bhid,bhjd->bhji")
    assert not einsum_bmm("bid,bjd,bkd->bijk") and not einsum_bmm("...id,...jd->...ij")


def test_review_maxvit_attention_through_einsum_is_found() -> None:
    """torchvision's MaxViT (block and grid attention written with torch.einsum, scores [B, windows, heads, I, J];
    stage widths 32 and 64, heads of 16): its attentions are found, 2 heads in the first stage (the windows of its
    5-D scores are not heads), each score a GEMM of the window's 16 positions."""
    model = Model(str(REVIEW / "x_maxvit.onnx"))
    blocks = list(model.ir.attentions())
    assert len(blocks) == 4 and blocks[0].attention.heads == 2 and blocks[0].attention.head_dim == 16
    with pytest.warns(HwsimWarning, match="computes 64 positions"):  # 8 x 8 patches in 4 windows of 16
        work = model.prefill(1, 1)
    scores = [o for o in work.ops if o.role == "score"]
    assert len(scores) == 4 and all(o.matmul is not None and o.matmul.m == 16 and o.matmul.k == 16 for o in scores)


TRACED = Path(__file__).resolve().parent / "fixtures" / "review5"  # make_traced_length.py: TorchScript + dynamo twins


@pytest.mark.parametrize("name", ["ts_mha_lm", "ts_enc_lm_seqfirst", "ts_seq2seq"])
def test_torchscript_files_with_a_traced_length_import_at_it(name: str) -> None:
    """TorchScript exports of nn.MultiheadAttention models traced at length 16 (their reshapes fix it; onnxruntime
    runs them only there) import at that length (a seq2seq's decoder length too, by default) and cost what the same
    model's dynamo export costs there: the same matmul FLOPs and architecture (the dynamo twin is the independent
    reference); other lengths are refused in one line that names the length and the one phase that runs."""
    ts_file, twin_file = TRACED / f"{name}.onnx", TRACED / f"{name}.dynamo.onnx"
    seq2seq = name == "ts_seq2seq"
    ts = Model(str(ts_file))  # an encoder-decoder's decoder length defaults to the traced one
    if seq2seq:  # the decoder's length is set by name; the twin's opaque dims name it s..
        twin = Model(str(twin_file), {load_graph(str(twin_file)).tensors["tgt"].dims[1]: 16})  # type: ignore[dict-item]
    else:
        twin = Model(str(twin_file))
    assert ts.graph.traced_length == 16 and twin.graph.traced_length is None
    assert (ts.ir.architecture, ts.ir.heads, ts.ir.head_dim) == (twin.ir.architecture, twin.ir.heads, twin.ir.head_dim)
    assert ts.prefill(1, 16).matmul_flops == twin.prefill(1, 16).matmul_flops > 0
    with pytest.raises(HwsimError) as err:
        ts.prefill(1, 32)
    assert "runs only at length 16" in str(err.value) and "--phase prefill" in str(err.value)
    assert "\n" not in str(err.value)


def test_a_file_traced_at_the_probe_length_is_told_when_refused(tmp_path: Path) -> None:
    """A file traced at the probe's own length (13) binds at the probe, so recognition finds no fixed length; the
    first refused binding then learns it from the reshape's element counts and says so in one line."""
    n = helper.make_node
    nodes = [n("Gather", ["table", "ids"], ["x"], name="embed")]
    att, inits = _attention("x", "heads13")
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq_len"])
    path = _save(tmp_path / "traced13.onnx", nodes + att, [ids],
                 [_w("table", VOCAB, D), _i64("heads13", 1, 13, HEADS, HD), *inits])
    model = Model(path)
    assert model.graph.traced_length is None
    assert model.prefill(1, 13, Precision()).matmul_flops == pytest.approx(_attention_flops(13))
    with pytest.raises(HwsimError, match="runs only at length 13"):
        model.prefill(1, 40, Precision())
    assert model.graph.traced_length == 13


def test_an_image_size_the_graph_does_not_state_asks_for_dim_not_a_re_export(tmp_path: Path) -> None:
    """A ViT-like graph with symbolic image height and width whose patch count is computed from them (h // 4 x
    w // 4, the exporter's arithmetic) next to a padded patch Conv: at the probe's 11 x 7 pixels the two disagree
    and the reshape refuses. The probe's guess is what failed, so the one line asks for --dim, not a re-export."""
    n = helper.make_node
    nodes = [n("Conv", ["img", "wpatch"], ["c"], kernel_shape=[4, 4], strides=[4, 4], pads=[2, 2, 2, 2], name="patch"),
             n("Shape", ["img"], ["shape"], name="shape"),
             n("Gather", ["shape", "i0"], ["b"], axis=0, name="gb"), n("Gather", ["shape", "i2"], ["h"], axis=0, name="gh"),
             n("Gather", ["shape", "i3"], ["w"], axis=0, name="gw"),
             n("Div", ["h", "four"], ["ph"], name="dh"), n("Div", ["w", "four"], ["pw"], name="dw"),
             n("Mul", ["ph", "pw"], ["np"], name="npatch"),
             n("Concat", ["b", "d", "np"], ["target"], axis=0, name="cat"),
             n("Reshape", ["c", "target"], ["y"], name="flatten")]
    img = helper.make_tensor_value_info("img", TensorProto.FLOAT, ["batch", 3, "h", "w"])
    path = _save(tmp_path / "vit_hw.onnx", nodes, [img],
                 [_w("wpatch", D, 3, 4, 4), _i64("i0", 0), _i64("i2", 2), _i64("i3", 3), _i64("four", 4), _i64("d", D)])
    with pytest.raises(HwsimError) as err:
        Model(path)
    text = str(err.value)
    assert "--dim h=N" in text and "'flatten'" in text and "re-export" not in text and "\n" not in text
