"""hwsim's layers for hls4ml, through its extension API: a table-based activation (GELU, SiLU and other functions
hls4ml 1.3 has no kernel for) and a row-serial attention product.

``HwsimTable`` is registered as an hls4ml layer (``hls4ml.model.layers.register_layer``) with a config and a
function-call template and the C++ kernel ``nnet_hwsim_table.h`` (``backend.register_source``) for the Vivado
and Vitis backends. The table is a weight variable of ``table_size`` entries holding ``f`` at the midpoints of
``[-range, range)`` (``range`` a power of two, at most the data type's range, so the index is a shift of
``x + range``); below the range the first entry, at or above it ``x`` itself for functions that tend to ``x``
(GELU, SiLU) or the last entry. One lookup per element, like hls4ml's sigmoid/tanh: the same cost rule
(``hardware.fpga.layers.elementwise_estimate``). Max error about ``f' * step / 2`` plus the table type's rounding:
GELU with 1024 entries over [-8, 8): 0.009.

``HwsimRowMatmul`` replaces hls4ml's ``Einsum`` for Q.K^T and P.V when the attention is row-serial (``hwsim hls
--attention row-serial``): ``nnet_hwsim_attention.h`` computes one query row per ``reuse`` cycles (a ``PIPELINE
II=R`` row loop with ``heads * k * n / R`` multipliers), the design Jiang et al. (arXiv 2402.01047) describe, where
hls4ml 1.3's ``nnet::einsum`` computes all rows at once. The estimate's ``matmul_parallel=1`` costs it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

HEADER = Path(__file__).with_name("nnet_hwsim_table.h")
ATTENTION_HEADER = Path(__file__).with_name("nnet_hwsim_attention.h")
#: Table type (hls4ml's default activation table type).
TABLE_TYPE = "ap_fixed<18,8>"
#: Largest table range: [-8, 8) as hls4ml's sigmoid/tanh tables.
MAX_RANGE = 8


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf)(x)


#: function -> (f, tends to x above the range)
FUNCTIONS = {
    "gelu": (lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))), True),
    "gelu_tanh": (lambda x: 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3))), True),
    "silu": (lambda x: x / (1.0 + np.exp(-x)), True),
}


def linear_above(node: object) -> bool:
    """Whether an ``HwsimTable`` node passes ``x`` through above its range (its function tends to ``x``)."""
    given = node.get_attr("linear_above")
    return bool(given) if given is not None else FUNCTIONS[node.get_attr("function")][1]


def table_range(data_integer_bits: int) -> int:
    """The table's half-range: a power of two, at most :data:`MAX_RANGE` and the data type's magnitude."""
    return int(min(MAX_RANGE, 2 ** max(0, data_integer_bits - 1)))


def table_values(function: str, table_size: int, half_range: int) -> np.ndarray:
    """``f`` at the midpoints of the ``table_size`` steps of ``[-half_range, half_range)``."""
    step = 2.0 * half_range / table_size
    return FUNCTIONS[function][0](-half_range + (np.arange(table_size) + 0.5) * step)


def table_model(function: str, x: np.ndarray, table_size: int, half_range: int) -> np.ndarray:
    """What the kernel computes (before the table type's rounding), for tests and error bounds."""
    table = table_values(function, table_size, half_range)
    idx = np.clip(np.floor((x + half_range) * table_size / (2 * half_range)), 0, table_size - 1).astype(int)
    out = table[idx]
    if FUNCTIONS[function][1]:
        out = np.where(x >= half_range, x, out)
    return out


_CONFIG = """struct config{index} : nnet::hwsim_table_config {{
    static const unsigned n_in = {n_in};
    static const unsigned table_size = {table_size};
    static const int range = {table_range};
    static const unsigned inv_step = {inv_step};
    static const bool linear_above = {linear_above};
    static const unsigned reuse_factor = {reuse};
    typedef {table_t.name} table_t;
}};\n"""
_CALL = "nnet::hwsim_table<{input_t}, {output_t}, {config}>({input}, {output}, {table});"
_MM_CONFIG = """struct config{index} : nnet::hwsim_row_matmul_config {{
    static const unsigned heads = {heads};
    static const unsigned rows = {rows};
    static const unsigned inner = {inner};
    static const unsigned cols = {cols};
    static const unsigned reuse_factor = {reuse};
    static const unsigned multiplier_limit = {multiplier_limit};
    typedef {accum_t.name} accum_t;
}};\n"""
_MM_CALL = "nnet::hwsim_row_matmul<{input0_t}, {input1_t}, {output_t}, {config}>({input0}, {input1}, {output});"
_registered = False


def register() -> None:
    """Register ``HwsimTable`` with hls4ml (once per process)."""
    global _registered
    if _registered:
        return
    import hls4ml
    from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate
    from hls4ml.model.attributes import TypeAttribute
    from hls4ml.model.layers import Layer, register_layer

    class HwsimTable(Layer):
        """Elementwise ``function`` through a lookup table (attributes: function, table_size, table_range)."""

        _expected_attributes = [TypeAttribute("table")]

        def initialize(self) -> None:
            inp = self.get_input_variable()
            self.add_output_variable(inp.shape)
            self.set_attr("n_in", inp.size())
            given = self.get_attr("table_data")
            data = np.asarray(given, np.float64) if given is not None else table_values(
                self.get_attr("function"), int(self.get_attr("table_size")), int(self.get_attr("table_range")))
            self.add_weights_variable(name="table", var_name="t{index}", data=data)

    class HwsimTableConfig(LayerConfigTemplate):
        def __init__(self) -> None:
            super().__init__(HwsimTable)
            self.template = _CONFIG

        def format(self, node: object) -> str:
            params = self._default_config_params(node)
            size, rng = int(node.get_attr("table_size")), int(node.get_attr("table_range"))
            params.update(table_size=size, table_range=rng, inv_step=size // (2 * rng),
                          linear_above=str(linear_above(node)).lower(),
                          table_t=node.get_weights("table").type)
            return self.template.format(**params)

    class HwsimTableCall(FunctionCallTemplate):
        def __init__(self) -> None:
            super().__init__(HwsimTable, include_header=[f"nnet_utils/{HEADER.name}"])
            self.template = _CALL

        def format(self, node: object) -> str:
            params = self._default_function_params(node)
            params["table"] = node.get_weights("table").name
            return self.template.format(**params)

    class HwsimRowMatmul(Layer):
        """[heads, rows, inner] x [heads, inner, cols] -> [heads, rows, cols], one row per reuse cycles."""

        _expected_attributes = [TypeAttribute("accum")]

        def initialize(self) -> None:
            self.add_output_variable(list(self.get_attr("out_shape")))

    def _dims(node: object) -> dict[str, int]:
        a, b = node.get_attr("inp0_shape"), node.get_attr("inp1_shape")
        heads = int(math.prod(a[:-2])) if len(a) > 2 else 1
        return {"heads": heads, "rows": int(a[-2]), "inner": int(a[-1]), "cols": int(b[-1])}

    class HwsimRowMatmulConfig(LayerConfigTemplate):
        def __init__(self) -> None:
            super().__init__(HwsimRowMatmul)
            self.template = _MM_CONFIG

        def format(self, node: object) -> str:
            params = self._default_config_params(node)
            d = _dims(node)
            params.update(d, multiplier_limit=math.ceil(d["heads"] * d["inner"] * d["cols"] / int(params["reuse"])))
            return self.template.format(**params)

    class HwsimRowMatmulCall(FunctionCallTemplate):
        def __init__(self) -> None:
            super().__init__(HwsimRowMatmul, include_header=[f"nnet_utils/{ATTENTION_HEADER.name}"])
            self.template = _MM_CALL

        def format(self, node: object) -> str:
            a, b = (node.get_input_variable(node.inputs[i]) for i in (0, 1))
            out = node.get_output_variable()
            return self.template.format(config=f"config{node.index}", input0_t=a.type.name, input1_t=b.type.name,
                                        output_t=out.type.name, input0=a.name, input1=b.name, output=out.name)

    register_layer("HwsimTable", HwsimTable)
    register_layer("HwsimRowMatmul", HwsimRowMatmul)
    for name in ("Vivado", "Vitis"):
        backend = hls4ml.backends.get_backend(name)
        for template in (HwsimTableConfig, HwsimTableCall, HwsimRowMatmulConfig, HwsimRowMatmulCall):
            backend.register_template(template)
        backend.register_source(HEADER)
        backend.register_source(ATTENTION_HEADER)
    _registered = True
