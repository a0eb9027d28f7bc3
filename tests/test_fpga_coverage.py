"""The hls4ml emitter's layer coverage on exported PyTorch models (tests/fixtures/make_fpga_torch.py): the layer
list reproduces onnxruntime in float (default run, no compiler), and the emitted hls4ml projects compile and match
onnxruntime in csim (heavy)."""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from hardware.errors import HwsimError
from mapping.fpga.pipeline import build_layers

sys.path.insert(0, str(Path(__file__).parent))
from fpga_ir_eval import evaluate  # noqa: E402

FIX = Path(__file__).parent / "fixtures" / "fpga"
MODELS = sorted(p.name for p in FIX.glob("*.onnx"))


def _kinds(path: Path) -> list[str]:
    return [lay.kind for lay in build_layers(str(path))[0]]


#: Checked in the default run (the others under -m heavy; csim covers them all there).
FAST = ("conv1d_channels_first.onnx", "mha_seq_first.onnx", "pool_max.onnx", "batchnorm_mlp.onnx",
        "gelu_tanh_mlp.onnx", "conv2d.onnx")


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.heavy) for n in MODELS])
def test_layers_reproduce_onnxruntime(name):
    import onnxruntime as ort

    layers, outputs = build_layers(str(FIX / name))
    sess = ort.InferenceSession(str(FIX / name), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = np.random.default_rng(1).normal(size=[int(d) for d in inp.shape]).astype(np.float32)
    ref = sess.run(None, {inp.name: x})[0].reshape(-1)
    got = evaluate(layers, outputs, x)[0]
    assert got.shape == ref.shape and np.abs(got - ref).max() < 1e-5


def test_layer_lists():
    # token pooling: ReduceMean/ReduceMax over the tokens -> GlobalPooling1D over 8 tokens of 8 channels
    layers, _ = build_layers(str(FIX / "pool_max.onnx"))
    pool = next(lay for lay in layers if lay.kind == "globalpool")
    assert (pool.attrs["pool_op"], pool.attrs["n_in"], pool.attrs["n_filt"]) == ("Max", 8, 8)
    assert _kinds(FIX / "pool_max.onnx") == ["input", "dense", "leaky_relu", "globalpool", "dense", "sigmoid"]
    assert _kinds(FIX / "batchnorm_mlp.onnx") == ["input", "dense", "tanh", "batchnorm", "dense"]
    # x.transpose(1, 2) before the Conv1d is hls4ml's channels-last layout already: no transpose layer; the
    # channel-major flatten goes into the head's weight rows instead of a transpose
    assert _kinds(FIX / "conv1d.onnx") == ["input", "conv1d", "relu", "batchnorm", "pool1d", "reshape", "dense"]
    assert _kinds(FIX / "conv1d_channels_first.onnx")[:3] == ["input", "transpose", "conv1d"]
    assert _kinds(FIX / "act_mlp.onnx") == ["input", "dense", "gelu", "dense", "silu", "dense"]
    # nn.GELU(approximate='tanh') at opset 17 (Pow/Mul/Add/Tanh/Add/Mul/Mul) is recognised; QuickGELU
    # (x * sigmoid(1.702 x)) has no name and becomes a table of its own values
    # NCHW Conv2d -> one transpose of the input to hls4ml's channels-last, then Conv2D layers; the channel-major
    # flatten goes into the head's weight rows
    assert _kinds(FIX / "conv2d.onnx") == ["input", "transpose", "conv2d", "relu", "conv2d", "reshape", "dense"]
    layers, _ = build_layers(str(FIX / "gelu_tanh_mlp.onnx"))
    assert [lay.kind for lay in layers] == ["input", "dense", "gelu_tanh", "dense", "table", "dense"]
    assert layers[4].attrs["ops"] == "Mul/Sigmoid/Mul" and layers[4].attrs["linear_above"]
    # the Linear's token-major output is already channels-last for the pool: no transpose either side
    assert _kinds(FIX / "avgpool.onnx") == ["input", "dense", "pool1d", "elu", "reshape", "dense"]


def test_sequence_first_attention_maps_to_einsum():
    layers, _ = build_layers(str(FIX / "mha_seq_first.onnx"))
    kinds = [lay.kind for lay in layers]
    # packed in-projection split into q, k, v Dense (the 1/sqrt(d) scales folded into q and k), two Einsums, one
    # softmax, the out-projection; nothing is left of the batch-axis transposes around the attention
    assert kinds.count("dense") == 5 and kinds.count("matmul") == 2 and kinds.count("softmax") == 1
    assert "scale" not in kinds and kinds.count("transpose") == 4
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(FIX / "mha_seq_first.onnx"))
    w = next(numpy_helper.to_array(t) for t in model.graph.initializer if t.dims == [8, 24])
    q, k, v = (lay for lay in layers if lay.kind == "dense" and lay.attrs["n_out"] == 8 and lay.inputs == ["x"])
    # torch scales q and k by head_dim ** -0.25 each (their product: 1/sqrt(4)); folded into the weights
    assert np.allclose(q.attrs["weight"], w[:, :8] * 4 ** -0.25) and np.allclose(k.attrs["weight"], w[:, 8:16] * 4 ** -0.25)
    assert np.allclose(v.attrs["weight"], w[:, 16:24])
    scores = next(lay for lay in layers if lay.kind == "matmul")
    assert scores.attrs["equation"] == "hmk,hkn->hmn" and tuple(scores.shape) == (2, 5, 5)


def _unary_model(tmp_path: Path, build) -> str:
    """Gemm(4 -> 4) then the elementwise nodes ``build(helper, "h")`` makes (their last output is "y")."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 4)).astype(np.float32), "w"),
             numpy_helper.from_array(np.zeros(4, np.float32), "b")]
    nodes, consts = build(helper)
    inits += [numpy_helper.from_array(np.array(v, np.float32), k) for k, v in consts.items()]
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "w", "b"], ["h"], name="fc"), *nodes], "u",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    path = tmp_path / "u.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


def test_unary_regions_are_recognised_or_tabled(tmp_path):
    import onnxruntime as ort

    def legacy_tanh_gelu(h):  # torch.onnx.export(dynamo=False): x*x*x by two Muls, constants in any operand order
        n = h.make_node
        return [n("Mul", ["h", "h"], ["sq"]), n("Mul", ["h", "sq"], ["cube"]), n("Mul", ["c", "cube"], ["t1"]),
                n("Add", ["h", "t1"], ["t2"]), n("Mul", ["k", "t2"], ["t3"]), n("Tanh", ["t3"], ["t4"]),
                n("Add", ["one", "t4"], ["t5"]), n("Mul", ["h", "t5"], ["t6"]), n("Mul", ["half", "t6"], ["y"])], \
            {"c": 0.044715, "k": math.sqrt(2 / math.pi), "one": 1.0, "half": 0.5}

    def mish(h):  # x * tanh(softplus(x)): no name, a table of its own values
        n = h.make_node
        return [n("Softplus", ["h"], ["s"]), n("Tanh", ["s"], ["t"]), n("Mul", ["h", "t"], ["y"])], {}

    def tanh_scale(h):  # not composite: stays a tanh and a scale
        n = h.make_node
        return [n("Tanh", ["h"], ["t"]), n("Mul", ["t", "two"], ["y"])], {"two": 2.0}

    for build, kinds in ((legacy_tanh_gelu, ["input", "dense", "gelu_tanh"]), (mish, ["input", "dense", "table"]),
                         (tanh_scale, ["input", "dense", "tanh", "scale"])):
        path = _unary_model(tmp_path, build)
        layers, outputs = build_layers(path)
        assert [lay.kind for lay in layers] == kinds, build.__name__
        x = np.random.default_rng(2).normal(size=(1, 4)).astype(np.float32)
        ref = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0].reshape(-1)
        assert np.abs(evaluate(layers, outputs, x)[0] - ref).max() < 1e-5, build.__name__


def test_io_stream_refuses_attention_in_one_line():
    from mapping.fpga.hls import write_project

    with pytest.raises(HwsimError, match=r"io stream: hls4ml 1.3 implements Einsum only for io_parallel \(layers "
                                         r"node_MatMul_73, node_scaled_dot_product_attention\); use --io parallel"):
        write_project(str(FIX / "mha_seq_first.onnx"), "/nonexistent/prj", io_type="io_stream")


def test_extension_layer_is_emitted(tmp_path):
    pytest.importorskip("hls4ml")
    from mapping.fpga.hls import write_project

    prj = write_project(str(FIX / "act_mlp.onnx"), str(tmp_path / "act"))
    assert prj.firmware.read_text().count("nnet::hwsim_table<") == 2  # GELU and SiLU
    assert (prj.out_dir / "firmware" / "nnet_utils" / "nnet_hwsim_table.h").exists()
    # the table holds GELU at the midpoints of [-8, 8) (data ap_fixed<16,6>: range 8), 1024 entries
    from mapping.fpga.hls_ext import table_values

    gelu, silu = (np.loadtxt(p, delimiter=",") for p in sorted((prj.out_dir / "firmware" / "weights").glob("t*.txt"),
                                                                key=lambda p: int(p.stem[1:])))
    assert gelu.size == 1024 and np.allclose(gelu, table_values("gelu", 1024, 8), atol=2 ** -10)
    assert np.allclose(silu, table_values("silu", 1024, 8), atol=2 ** -10)


def test_table_kernel_error_bound():
    from mapping.fpga.hls_ext import table_model

    x = np.linspace(-12, 12, 20001)
    exact = 0.5 * x * (1 + np.vectorize(__import__("math").erf)(x / np.sqrt(2)))
    # midpoint table of 1024 over [-8, 8): |error| <= max slope (1.13) * step / 2 = 0.0088; x itself above 8
    assert np.abs(table_model("gelu", x, 1024, 8) - exact).max() < 0.009


@pytest.mark.heavy
def test_emitted_firmware_calls_every_kernel(tmp_path):
    pytest.importorskip("hls4ml")
    from mapping.fpga.hls import write_project

    prj = write_project(str(FIX / "conv1d_channels_first.onnx"), str(tmp_path / "conv"))
    text = prj.firmware.read_text()
    for call in ("nnet::transpose", "nnet::conv_1d_cl", "nnet::relu", "nnet::normalize", "nnet::pooling1d_cl",
                 "nnet::dense"):
        assert call in text, call
    prj = write_project(str(FIX / "mha_seq_first.onnx"), str(tmp_path / "row"), reuse=2, attention="row-serial")
    text = prj.firmware.read_text()
    assert text.count("nnet::hwsim_row_matmul<") == 2 and "nnet::einsum" not in text
    params = (prj.out_dir / "firmware" / "parameters.h").read_text()
    # one query row per R=2 cycles: Q.K^T 2 heads x k 4 x n 5 = 40 products per row, P.V 2 x 5 x 4 = 40: 20 each
    assert params.count("multiplier_limit = 20;") == 2


CSIM = [(name, "io_parallel") for name in MODELS] + [
    (name, "io_stream") for name in ("pool_mean.onnx", "pool_max.onnx", "batchnorm_mlp.onnx", "conv1d.onnx",
                                     "act_mlp.onnx", "avgpool.onnx", "gelu_tanh_mlp.onnx")]


@pytest.mark.heavy
@pytest.mark.skipif(shutil.which("g++") is None, reason="csim needs g++")
@pytest.mark.parametrize("name,io_type", CSIM)
def test_csim_matches_onnxruntime(tmp_path, name, io_type):
    pytest.importorskip("hls4ml")
    from mapping.fpga.hls import csim, write_project

    prj = write_project(str(FIX / name), str(tmp_path / "prj"), io_type=io_type, table_size=4096)
    max_err, mean_err, _, _ = csim(prj, 16)
    assert max_err < 0.05 and mean_err < 0.01, (max_err, mean_err)


@pytest.mark.heavy
@pytest.mark.skipif(shutil.which("g++") is None, reason="csim needs g++")
def test_conv2d_resource_csim(tmp_path):
    # the Resource strategy's Conv2D kernel (the strategy of hls4ml's test_conv2d baselines in the validation report)
    pytest.importorskip("hls4ml")
    from mapping.fpga.hls import csim, write_project

    prj = write_project(str(FIX / "conv2d.onnx"), str(tmp_path / "prj"), strategy="Resource", reuse=2)
    max_err, mean_err, _, _ = csim(prj, 16)
    assert max_err < 0.05 and mean_err < 0.01, (max_err, mean_err)


@pytest.mark.heavy
@pytest.mark.skipif(shutil.which("g++") is None, reason="csim needs g++")
@pytest.mark.parametrize("name", ["mha_seq_first.onnx", "tagger.onnx"])
def test_row_serial_attention_csim(tmp_path, name):
    pytest.importorskip("hls4ml")
    from mapping.fpga.hls import csim, write_project

    prj = write_project(str(FIX / name), str(tmp_path / "prj"), reuse=2, table_size=4096, attention="row-serial")
    max_err, mean_err, _, _ = csim(prj, 16)
    assert max_err < 0.05 and mean_err < 0.01, (max_err, mean_err)


def test_fit_suggests_row_serial_attention():
    from hardware.targets import load_target
    from mapping.fpga.fit import suggest_fit

    layers, _ = build_layers(str(Path(__file__).parents[1] / "examples" / "jet_tagger.onnx"))
    fix = suggest_fit(layers, load_target("xcvu13p"), {"reuse": 1})
    # no reuse factor alone makes hls4ml 1.3's unrolled Einsum fit; one query row per R=2 cycles does:
    # 3 blocks x (816 dense + 2 x 15*32*2/2 Einsum + 30 softmax) + 1,775 head, zero weights skipped -> <= 7,193
    assert fix is not None and fix.changes == {"attention": "row-serial", "reuse": 2}
    assert fix.flags() == "--attention row-serial --reuse 2" and fix.estimate.resources.dsp <= 7_193
