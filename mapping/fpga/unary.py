"""Elementwise functions of one tensor, found by what they compute: the table layer's semantics-first fallback.

A *unary region* is a connected set of elementwise ONNX nodes whose inputs are one tensor ``x``, scalar constants
or the region's own outputs, with one output used outside (GELU's tanh form as PyTorch exports it:
``Pow``/``Mul``/``Add``/``Tanh``; x * sigmoid(1.702 x); Mish; ...). Its function is evaluated in numpy from the ONNX
ops' definitions (:func:`evaluate`) and then named if it is one hwsim knows (:func:`classify`: GELU erf and tanh
forms, SiLU, by value on a probe grid). Recognition only refines the name: an unnamed region is still emitted as a
lookup table of its own values (``hwsim hls``'s ``HwsimTable``, :mod:`mapping.fpga.hls_ext`).

Only *composite* regions are fused: at least two nodes, and either a node with two inputs that depend on ``x``
(x * f(x)) or an op with no layer of its own (Pow, Erf, Exp, ...). A lone Tanh, or Tanh then a scale, stays as the
layers it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from mapping.op_table import OP

#: ONNX op -> numpy function of its inputs (elementwise ops only, broadcasting scalars).
_OPS: dict[str, Callable[..., np.ndarray]] = {
    OP.Add: np.add, OP.Sub: np.subtract, OP.Mul: np.multiply, OP.Div: np.divide, OP.Pow: np.power,
    OP.Tanh: np.tanh, OP.Erf: np.vectorize(math.erf, otypes=[float]), OP.Sigmoid: lambda x: 1.0 / (1.0 + np.exp(-x)),
    OP.Exp: np.exp, OP.Neg: np.negative, OP.Sqrt: np.sqrt, OP.Reciprocal: np.reciprocal,
    OP.Softplus: lambda x: np.logaddexp(0.0, x), OP.Relu: lambda x: np.maximum(x, 0.0),
}
#: Ops that are layers of their own when alone (the others only join a region).
_LAYER_OPS = {OP.Add, OP.Mul, OP.Div, OP.Tanh, OP.Sigmoid, OP.Relu}
#: Probe grid on which a region is compared with the known functions.
_PROBE = np.linspace(-6.0, 6.0, 241)
#: Largest |difference| on the probe grid for a region to take a known function's name.
MATCH_TOL = 1e-4


def known_functions() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Name -> function of the table functions hwsim names (the GELU forms and SiLU)."""
    erf = _OPS[OP.Erf]
    return {
        "gelu": lambda x: 0.5 * x * (1.0 + erf(x / math.sqrt(2.0))),
        "gelu_tanh": lambda x: 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3))),
        "silu": lambda x: x / (1.0 + np.exp(-x)),
    }


def evaluate(nodes: list, x: str, consts: dict[str, np.ndarray], output: str, values: np.ndarray) -> np.ndarray:
    """The region's output for ``x = values`` (``nodes`` in graph order, each with op_type, inputs, outputs)."""
    env: dict[str, np.ndarray] = {x: np.asarray(values, np.float64)}
    with np.errstate(all="ignore"):
        for n in nodes:
            args = [env[i] if i in env else float(np.asarray(consts[i]).reshape(-1)[0]) for i in n.inputs]
            env[n.outputs[0]] = _OPS[n.op_type](*args)
    return env[output]


def classify(f: Callable[[np.ndarray], np.ndarray]) -> str | None:
    """The known function ``f`` equals on the probe grid, or None."""
    got = f(_PROBE)
    if not np.all(np.isfinite(got)):
        return None
    for name, ref in known_functions().items():
        if np.max(np.abs(got - ref(_PROBE))) <= MATCH_TOL:
            return name
    return None


def find_regions(nodes: list, consts: dict[str, np.ndarray], consumers: dict[str, list], outputs: set[str],
                 taken: set[int]) -> list[tuple[str, list, str]]:
    """Composite unary regions (see the module docstring) as ``(x, nodes in graph order, output)``; ``taken``:
    indices of nodes already fused by a pattern (left alone)."""

    def scalar(t: str) -> bool:
        return t in consts and np.asarray(consts[t]).size == 1

    found: list[tuple[str, list, str]] = []
    used: set[int] = set(taken)
    for seed in nodes:
        if seed.index in used or seed.op_type not in _OPS or len(seed.outputs) != 1:
            continue
        dynamic = [i for i in seed.inputs if not scalar(i)]
        if len(set(dynamic)) != 1 or not all(scalar(i) or i == dynamic[0] for i in seed.inputs):
            continue
        x = dynamic[0]
        region, made, member = [seed], {seed.outputs[0]}, {seed.index}
        grown = True
        while grown:
            grown = False
            for n in nodes:
                if n.index in used or n.index in member or n.op_type not in _OPS or len(n.outputs) != 1:
                    continue
                if any(i in made for i in n.inputs) and all(i in made or i == x or scalar(i) for i in n.inputs):
                    region.append(n)
                    made.add(n.outputs[0])
                    member.add(n.index)
                    grown = True
        region.sort(key=lambda n: n.index)
        external = [t for t in made if t in outputs or any(c.index not in member for c in consumers.get(t, []))]
        if len(region) < 2 or len(external) != 1:
            continue
        two_dynamic = any(sum(1 for i in n.inputs if i == x or i in made) == 2 for n in region)
        if not (two_dynamic or any(n.op_type not in _LAYER_OPS for n in region)):
            continue
        found.append((x, region, external[0]))
        used.update(n.index for n in region)
    return found


def tends_to_x(f: Callable[[np.ndarray], np.ndarray]) -> bool:
    """Whether ``f(x)`` approaches ``x`` for large ``x`` (the table then passes ``x`` through above its range)."""
    big = np.array([8.0, 16.0])
    with np.errstate(all="ignore"):
        got = f(big)
    return bool(np.all(np.isfinite(got)) and np.all(np.abs(got - big) <= 1e-3 * big))
