"""A float numpy evaluation of the FPGA emitter's layers (mapping/fpga/onnx_layers.py), for checking the layer list
against onnxruntime without compiling hls4ml's C++: each kind computed from its own definition (Dense, Conv1D with
channels-last [L, C] data and (k, C, F) weights, Einsum, pooling, BatchNorm, the table activations' exact
functions, Reshape/Transpose as data moves)."""

from __future__ import annotations

import math

import numpy as np


def _act(kind: str, x: np.ndarray, attrs: dict) -> np.ndarray:
    if kind == "relu":
        return np.maximum(x, 0)
    if kind == "leaky_relu":
        return np.where(x > 0, x, attrs["alpha"] * x)
    if kind == "elu":
        return np.where(x > 0, x, attrs.get("alpha", 1.0) * (np.exp(x) - 1))
    if kind == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if kind == "tanh":
        return np.tanh(x)
    if kind == "gelu":
        return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    if kind == "gelu_tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    if kind == "silu":
        return x / (1 + np.exp(-x))
    if kind == "table":
        return attrs["f"](x)
    raise KeyError(kind)


def evaluate(layers: list, outputs: list[str], x: np.ndarray) -> list[np.ndarray]:
    """Run one input ``x`` (the ONNX input, batch 1) through ``layers``; flat outputs in ONNX order."""
    vals: dict[str, np.ndarray] = {}
    for lay in layers:
        a = lay.attrs
        ins = [vals[i] for i in lay.inputs]
        k = lay.kind
        if k == "input":
            y = np.asarray(x, np.float64).reshape(lay.shape)
        elif k == "dense":
            y = ins[0].reshape(-1, a["n_in"]) @ a["weight"] + a["bias"]
        elif k == "conv1d":
            xp = np.pad(ins[0].reshape(a["in_width"], a["n_chan"]), ((a["pad_left"], a["pad_right"]), (0, 0)))
            w = a["weight"]  # (k, C, F)
            y = np.stack([np.einsum("kc,kcf->f", xp[i * a["stride"]: i * a["stride"] + a["filt_width"]], w)
                          for i in range(a["out_width"])]) + a["bias"]
        elif k == "conv2d":
            xp = np.pad(ins[0].reshape(a["in_height"], a["in_width"], a["n_chan"]),
                        ((a["pad_top"], a["pad_bottom"]), (a["pad_left"], a["pad_right"]), (0, 0)))
            w, kh, kw, sh, sw = a["weight"], a["filt_height"], a["filt_width"], a["stride_height"], a["stride_width"]
            y = np.stack([[np.einsum("hwc,hwcf->f", xp[i * sh: i * sh + kh, j * sw: j * sw + kw], w)
                           for j in range(a["out_width"])] for i in range(a["out_height"])]) + a["bias"]
        elif k == "matmul":
            y = np.matmul(ins[0].reshape(a["inp0_shape"]), ins[1].reshape(a["inp1_shape"]))
        elif k == "softmax":
            e = np.exp(ins[0] - ins[0].max(axis=-1, keepdims=True))
            y = e / e.sum(axis=-1, keepdims=True)
        elif k == "layernorm":
            v = ins[0]
            m = v.mean(axis=-1, keepdims=True)
            y = (v - m) / np.sqrt(((v - m) ** 2).mean(axis=-1, keepdims=True) + a["epsilon"]) * a["gamma"] + a["beta"]
        elif k == "add":
            y = ins[0] + ins[1]
        elif k == "scale":
            y = ins[0] * a["factor"]
        elif k == "batchnorm":
            flat = ins[0].reshape(-1, a["n_filt"]) if a["n_filt"] > 0 else ins[0].reshape(1, -1)
            y = flat * a["scale"] + a["bias"]
        elif k == "pool1d":
            xp = np.pad(ins[0], ((a["pad_left"], a["pad_right"]), (0, 0)),
                        constant_values=-np.inf if a["pool_op"] == "Max" else 0.0)
            win = [xp[i * a["stride"]: i * a["stride"] + a["pool_width"]] for i in range(a["n_out"])]
            y = np.stack([w.max(axis=0) if a["pool_op"] == "Max" else w.mean(axis=0) for w in win])
        elif k == "globalpool":
            v = ins[0].reshape(a["n_in"], a["n_filt"])
            y = v.max(axis=0) if a["pool_op"] == "Max" else v.mean(axis=0)
        elif k == "reshape":
            y = ins[0].reshape(lay.shape)
        elif k == "transpose":
            y = np.transpose(ins[0], a["perm"])
        else:
            y = _act(k, ins[0], a)
        vals[lay.name] = np.asarray(y, np.float64).reshape(lay.shape)
    return [vals[o].reshape(-1) for o in outputs]
