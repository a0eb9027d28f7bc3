"""ONNX rebuilds of the networks behind the published csynth reports in ``fpga_published.yaml``.

- ``mlp``: Dense + ReLU layers of ``sizes`` ending in Dense + Softmax (the hls4ml tutorial's jet tagger is
  ``[16, 64, 32, 32, 5]``). Layer ``i`` has exactly ``zeros[i]`` zero weights; the others are drawn with magnitudes
  in [0.004, 0.25], so none quantises to zero in ``ap_fixed<16,6>`` (step 2^-10) and the sums stay in range.
- ``dense_elu``: hls4ml's ``test_dense`` model, Dense(1 -> 2) with kernel RandomUniform(1, 10) and zero bias, then ELU.
- ``dense_act``: hls4ml's ``test_activations`` model, Dense(1 -> 64) (``lecun_uniform`` kernel, zero bias) and one
  activation (ReLU, LeakyReLU(alpha 1), ELU(alpha 1), sigmoid).
- ``conv2d``: hls4ml's ``test_conv2d`` model, Conv2D(32 filters 4x4, stride 4, no bias) over (28, 28, 3).
- ``maxpool1d``/``avgpool1d``: hls4ml's ``test_pooling`` model, one 1-D pooling of width 2 over a (121, 3) input,
  ``valid`` or ``same`` padding.

The trained weights of the tutorial are not published; the zero counts (what hls4ml skips) are, see the YAML.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hardware.errors import HwsimError


def _weights(n_in: int, n_out: int, zeros: int, rng: np.random.Generator) -> np.ndarray:
    w = rng.uniform(0.004, 0.25, n_in * n_out) * rng.choice([-1.0, 1.0], n_in * n_out)
    w[rng.choice(n_in * n_out, zeros, replace=False)] = 0.0
    return w.reshape(n_in, n_out).astype(np.float32)


def mlp(path: str | Path, sizes: list[int], zeros: list[int], seed: int = 0) -> Path:
    """Write the Dense/ReLU/.../Dense/Softmax network to ``path`` (ONNX, batch dim symbolic) and return it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if len(zeros) != len(sizes) - 1:
        raise HwsimError(f"mlp: {len(sizes) - 1} layers need {len(sizes) - 1} zero counts, got {len(zeros)}")
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    x = "x"
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        inits += [numpy_helper.from_array(_weights(n_in, n_out, zeros[i], rng), f"w{i}"),
                  numpy_helper.from_array(rng.uniform(-0.1, 0.1, n_out).astype(np.float32), f"b{i}")]
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [f"fc{i + 1}"], name=f"fc{i + 1}"))
        last = i == len(sizes) - 2
        act = helper.make_node("Softmax" if last else "Relu", [f"fc{i + 1}"], ["y" if last else f"a{i + 1}"],
                               name="softmax" if last else f"relu{i + 1}", **({"axis": -1} if last else {}))
        nodes.append(act)
        x = f"a{i + 1}"
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", sizes[0]])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", sizes[-1]])], inits)
    path = Path(path)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def dense_elu(path: str | Path, sizes: list[int], zeros: list[int], seed: int = 0) -> Path:
    """hls4ml's ``test_dense`` network: Dense(sizes[0] -> sizes[1]), kernel uniform in [1, 10], zero bias, ELU."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    n_in, n_out = sizes
    w = rng.uniform(1.0, 10.0, (n_in, n_out)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.zeros(n_out, np.float32), "b")]
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["d"], name="Dense"),
             helper.make_node("Elu", ["d"], ["y"], name="Activation", alpha=1.0)]
    graph = helper.make_graph(nodes, "dense_elu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n_out])], inits)
    path = Path(path)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


#: ONNX op and attributes of each activation of hls4ml's ``test_activations`` (Keras layer -> ONNX node).
ACTIVATION_OPS = {"relu": ("Relu", {}), "leaky_relu": ("LeakyRelu", {"alpha": 1.0}), "elu": ("Elu", {"alpha": 1.0}),
                  "sigmoid": ("Sigmoid", {})}


def dense_act(path: str | Path, sizes: list[int], zeros: list[int], seed: int = 0, activation: str = "relu") -> Path:
    """hls4ml's ``test_activations`` network: Dense(sizes[0] -> sizes[1]) with Keras's ``lecun_uniform`` kernel
    (uniform in +-sqrt(3 / fan_in)) and zero bias, then ``activation`` (relu, leaky_relu with alpha 1, elu with
    alpha 1, sigmoid)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if activation not in ACTIVATION_OPS:
        raise HwsimError(f"dense_act: activation '{activation}' is not one of {', '.join(ACTIVATION_OPS)}")
    rng = np.random.default_rng(seed)
    n_in, n_out = sizes
    limit = float(np.sqrt(3.0 / n_in))
    w = rng.uniform(-limit, limit, (n_in, n_out)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.zeros(n_out, np.float32), "b")]
    op, attrs = ACTIVATION_OPS[activation]
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["d"], name="Dense"),
             helper.make_node(op, ["d"], ["y"], name="Activation", **attrs)]
    graph = helper.make_graph(nodes, "dense_act", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n_out])], inits)
    path = Path(path)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _pool1d(op: str, path: str | Path, sizes: list[int], zeros: list[int], seed: int = 0, padding: str = "valid") -> Path:
    """hls4ml's ``test_pooling`` network: one ``op`` (MaxPool/AveragePool) of width ``sizes[2]`` (stride = width,
    'valid', or Keras 'same': ``ceil(L / width)`` outputs, the missing inputs padded on the right) over a
    channels-last [``sizes[0]``, ``sizes[1]``] input, as ONNX with the transposes around the channels-first pool
    (the emitter maps them away: one Pooling1D layer)."""
    import onnx
    from onnx import TensorProto, helper

    length, chans, width = sizes
    if padding not in ("valid", "same"):
        raise HwsimError(f"pool1d: padding '{padding}' is not one of valid, same")
    out = (length - width) // width + 1 if padding == "valid" else -(-length // width)
    pad = max(0, (out - 1) * width + width - length)
    extra = {"pads": [pad // 2, pad - pad // 2]} if pad else {}
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], name="to_channels_first", perm=[0, 2, 1]),
             helper.make_node(op, ["xt"], ["pt"], name="pool", kernel_shape=[width], strides=[width], **extra),
             helper.make_node("Transpose", ["pt"], ["y"], name="to_channels_last", perm=[0, 2, 1])]
    graph = helper.make_graph(nodes, "pool1d", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", length, chans])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", out, chans])])
    path = Path(path)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def conv2d(path: str | Path, sizes: list[int], zeros: list[int], seed: int = 0) -> Path:
    """hls4ml's ``test_conv2d`` network: one Conv2D over a channels-last [H, W, C] input with F filters of k x k,
    stride s, no bias, kernel Keras ``normal`` (N(0, 0.05)); ``sizes`` = [H, W, C, F, k, s]. As ONNX with the
    transposes around the channels-first Conv (the emitter maps them to hls4ml's channels-last Conv2D). Keras
    'same' padding adds no pad when k = s divides H and W, as in the test."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    h, w, c, f, k, stride = sizes
    if h % stride or w % stride or k != stride:
        raise HwsimError(f"conv2d: sizes {sizes} need k = stride dividing H and W (no padding)")
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0.0, 0.05, (f, c, k, k)).astype(np.float32)
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], name="to_channels_first", perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["xt", "w"], ["ct"], name="conv", kernel_shape=[k, k], strides=[stride, stride]),
             helper.make_node("Transpose", ["ct"], ["y"], name="to_channels_last", perm=[0, 2, 3, 1])]
    graph = helper.make_graph(nodes, "conv2d", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", h, w, c])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", h // k, w // k, f])],
                              [numpy_helper.from_array(kernel, "w")])
    path = Path(path)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def maxpool1d(path: str | Path, sizes: list[int], zeros: list[int], seed: int = 0, padding: str = "valid") -> Path:
    """``test_pooling`` with MaxPooling1D."""
    return _pool1d("MaxPool", path, sizes, zeros, seed, padding)


def avgpool1d(path: str | Path, sizes: list[int], zeros: list[int], seed: int = 0, padding: str = "valid") -> Path:
    """``test_pooling`` with AveragePooling1D."""
    return _pool1d("AveragePool", path, sizes, zeros, seed, padding)


GENERATORS = {"mlp": mlp, "dense_elu": dense_elu, "dense_act": dense_act, "maxpool1d": maxpool1d,
              "avgpool1d": avgpool1d, "conv2d": conv2d}


def build(network: dict, path: str | Path) -> Path:
    """Write the network a ``networks`` entry of the YAML describes."""
    gen = GENERATORS.get(network.get("generator", ""))
    if gen is None:
        raise HwsimError(f"network generator '{network.get('generator')}' is not one of {', '.join(GENERATORS)}")
    extra = {k: v for k, v in network.items() if k not in ("generator", "sizes", "zeros")}
    return gen(path, list(network["sizes"]), list(network["zeros"]), **extra)


def main() -> None:
    """``python -m simulator.validation.fpga_models OUT.onnx [--network jet_mlp]``: write one of the YAML's networks."""
    import argparse

    import yaml

    data = yaml.safe_load(Path(__file__).with_name("fpga_published.yaml").read_text())["networks"]
    parser = argparse.ArgumentParser(description="Write a network of fpga_published.yaml as ONNX.")
    parser.add_argument("out", metavar="OUT.onnx")
    parser.add_argument("--network", default="jet_mlp", choices=sorted(data))
    args = parser.parse_args()
    print(f"wrote {build(data[args.network], args.out)}")


if __name__ == "__main__":
    main()
