"""The one table of ONNX op knowledge: each op type (domain, name) has one entry.

An entry says what the op is (``category``: gemm, conv, attention, norm, softmax, activation, elementwise, logic,
cast, reduction, gather, data-movement, view, shape, routing, quant, random, control, constant), how it is
costed (``cost``: a rule ``"module:function"`` in :mod:`mapping.op_costs` (generic rules, one per kind of kernel) or
:mod:`mapping.contrib_costs` (onnxruntime's fused ops), with ``flops`` per element where the rule needs one), how
its output shapes are inferred when ONNX cannot (``shape``: a rule in :mod:`mapping.contrib_ops`), which recognised
blocks it may join (``joins``: the recognition passes' pattern roles, below), structural traits (``traits``),
quantized weight input slots, the norm kind it implements and the FPGA (hls4ml) layer kind it lowers to.

FPGA kinds (``fpga``), the layers :mod:`mapping.fpga.onnx_layers` makes of the op, which dispatches on them: a
``PipeLayer`` kind (dense, matmul, softmax, layernorm, relu, leaky_relu, elu, sigmoid, tanh, gelu, add, scale,
batchnorm, conv1d, pool1d, globalpool; an op may also make another when its inputs say so, e.g. a MatMul of two
activations is a ``matmul``), or one of the views that make no layer of their own: ``wire`` (the output is the
input), ``reshape`` / ``transpose`` (realised as that layer only where a reader needs the ONNX order), ``select``
(a Gather/Slice with constant indices) and ``constant``. An op with no kind is refused, with ``fpga_hint`` where
there is more to say than the list of supported ops (an op that only joins a fused pattern, like Erf in GELU's,
has a hint and no kind); ``fpga_limit`` is the case of an emitted op that is refused.

The category is semantic: a matrix product is a ``gemm`` whatever block it sits in; the recognition passes decide
the block. An op type missing from the table is costed as an elementwise op of 1 FLOP per output element. The
cost rule of an entry is what the generic code has always applied to that name, quirks included (an ONNX-domain
``Attention`` or ``Upsample`` is costed elementwise), so results do not depend on this table's layout.

Sources: the ONNX operator specification (onnx/docs/Operators.md) and onnxruntime's docs/ContribOperators.md.

Roles (``joins``), each the set of ops one recognition pattern walks through:
``qkv_path`` between a projection and the attention matmuls (reshapes, rotary, GQA repeat); ``qkv_path_gather``
the same plus row gathers; ``attention_core`` between the score and PV matmuls; ``attention_layout`` the layout ops
around a cached K/V; ``mask_compare`` / ``mask_reader`` causal-mask comparisons and the ops that read a mask;
``mlp`` between up and down projections, ``mlp_nonlinear`` the nonlinearities among them; ``moe_score`` /
``moe_routing`` an MoE router's scores and routing; ``routing_path`` a data-dependent routing size's path;
``norm_part`` the parts of an unfused norm; ``residual_epilogue`` the tail after the last block; ``embedding_view``
views between an embedding lookup and its reader.

Traits: ``linear`` (a matrix product with a weight operand at slot 1 can be a linear layer), ``view`` (free),
``structural`` (never a block of its own), ``layout``, ``cast_through``, ``weight_transform`` (parameter in,
parameter out), ``qdq_fusing`` (kernels read a DequantizeLinear input quantized), ``quant_transparent``,
``integer_matmul``, ``fused_residual`` (a norm that adds the residual first), ``expanding`` (output larger than its
inputs, not evaluated at bind time), ``not_evaluated`` (random).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache

ONNX = ""
MS = "com.microsoft"


@dataclass(frozen=True)
class OpInfo:
    """What hwsim knows about one op type."""

    domain: str
    name: str
    category: str
    cost: str                      # "module:function" of the cost rule
    flops: int | None = None       # FLOPs per element of its elementwise part (the rule says which elements)
    shape: str | None = None       # "module:function" of the shape rule (ops ONNX shape inference does not know)
    joins: frozenset[str] = frozenset()
    traits: frozenset[str] = frozenset()
    norm_kind: str | None = None
    weight_slots: tuple[int, ...] = ()
    bias_slot: int | None = None   # the optional bias input a fused elementwise/norm rule adds 1 FLOP per element for
    fpga: str | None = None        # the FPGA front end's layer kind for it (mapping/fpga/onnx_layers.py; see below)
    fpga_hint: str | None = None   # an op the FPGA front end refuses (no ``fpga`` kind): why, and what to do instead
    fpga_limit: str | None = None  # an op it emits: the case it refuses (the error message's text)
    computes: str | None = None    # a QOperator-format op: the float op it computes on dequantized operands


def _op(domain: str, name: str, category: str, cost: str, *, joins: str = "", traits: str = "",
        **kw: object) -> OpInfo:
    return OpInfo(domain, name, category, cost, joins=frozenset(joins.split()), traits=frozenset(traits.split()),
                  **kw)  # type: ignore[arg-type]


_ENTRIES = [
    _op(ONNX, "Add", "elementwise", "op_costs:_elementwise",
        joins="attention_core mlp moe_routing moe_score norm_part qkv_path qkv_path_gather residual_epilogue", fpga="add"),
    _op(ONNX, "And", "logic", "op_costs:_zero_flop"),
    _op(ONNX, "ArgMax", "reduction", "op_costs:_reduce"),
    _op(ONNX, "ArgMin", "reduction", "op_costs:_reduce"),
    _op(ONNX, "Attention", "attention", "op_costs:_elementwise"),
    _op(MS, "Attention", "attention", "contrib_costs:_attention", shape="contrib_ops:_attention"),
    _op(ONNX, "BatchNormalization", "norm", "op_costs:_norm", flops=2, norm_kind="batchnorm", fpga="batchnorm"),
    _op(ONNX, "Bernoulli", "random", "op_costs:_elementwise", traits="not_evaluated"),
    _op(MS, "BiasAdd", "elementwise", "contrib_costs:_elementwise", flops=2, shape="contrib_ops:_same"),
    _op(ONNX, "BiasGelu", "activation", "contrib_costs:_activation", flops=9, shape="contrib_ops:_same",
        joins="mlp mlp_nonlinear"),
    _op(MS, "BiasGelu", "activation", "contrib_costs:_activation", flops=9, shape="contrib_ops:_same",
        joins="mlp mlp_nonlinear"),
    _op(MS, "BiasSplitGelu", "activation", "contrib_costs:_activation", flops=10, shape="contrib_ops:_bias_split_gelu"),
    _op(ONNX, "BitShift", "logic", "op_costs:_zero_flop"),
    _op(ONNX, "Cast", "cast", "op_costs:_zero_flop",
        joins="attention_core attention_layout embedding_view mask_reader mlp moe_routing "
            "moe_score norm_part qkv_path qkv_path_gather residual_epilogue routing_path",
        traits="cast_through weight_transform"),
    _op(ONNX, "CastLike", "cast", "op_costs:_zero_flop"),
    _op(ONNX, "Clip", "elementwise", "op_costs:_elementwise", joins="attention_core mlp"),
    _op(ONNX, "Concat", "data-movement", "op_costs:_movement",
        joins="attention_core attention_layout moe_routing qkv_path qkv_path_gather residual_epilogue",
        traits="weight_transform"),
    _op(ONNX, "Constant", "constant", "op_costs:_elementwise", traits="structural", fpga="constant"),
    _op(ONNX, "ConstantOfShape", "shape", "op_costs:_movement", joins="moe_routing", traits="expanding"),
    _op(ONNX, "Conv", "conv", "op_costs:_conv", traits="qdq_fusing", fpga="conv1d",
        fpga_limit="only 1-D and 2-D convolutions (inputs [batch, channels, length] or [batch, channels, "
                   "height, width], group 1, dilation 1) are emitted"),
    _op(ONNX, "ConvInteger", "conv", "op_costs:_conv", weight_slots=(1, 3)),
    _op(ONNX, "ConvTranspose", "conv", "op_costs:_conv"),
    _op(ONNX, "Cos", "elementwise", "op_costs:_elementwise"),
    _op(ONNX, "CumSum", "data-movement", "op_costs:_movement"),
    _op(MS, "DecoderMaskedMultiHeadAttention", "attention", "contrib_costs:_dmmha", shape="contrib_ops:_dmmha"),
    _op(ONNX, "DepthToSpace", "data-movement", "op_costs:_movement"),
    _op(ONNX, "DequantizeLinear", "quant", "op_costs:_elementwise",
        joins="attention_core attention_layout mlp norm_part qkv_path qkv_path_gather",
        traits="cast_through quant_transparent weight_transform", weight_slots=(0, 1, 2)),
    _op(MS, "DequantizeLinear", "quant", "op_costs:_elementwise", shape="contrib_ops:_quant_linear",
        joins="attention_core attention_layout mlp norm_part qkv_path qkv_path_gather",
        traits="cast_through quant_transparent weight_transform", weight_slots=(0, 1, 2)),
    _op(ONNX, "Div", "elementwise", "op_costs:_elementwise",
        joins="attention_core mlp moe_routing moe_score norm_part qkv_path qkv_path_gather residual_epilogue",
        traits="weight_transform", fpga="scale"),
    _op(ONNX, "Dropout", "view", "op_costs:_zero_flop", joins="attention_core mlp", traits="not_evaluated", fpga="wire"),
    _op(ONNX, "DynamicQuantizeLinear", "quant", "op_costs:_elementwise",
        joins="attention_core attention_layout mlp norm_part qkv_path qkv_path_gather",
        traits="cast_through quant_transparent"),
    _op(MS, "DynamicQuantizeMatMul", "gemm", "contrib_costs:_float_matmul", shape="contrib_ops:_float_matmul",
        weight_slots=(1, 2, 3)),
    _op(ONNX, "Einsum", "gemm", "op_costs:_einsum"),
    _op(ONNX, "Elu", "activation", "op_costs:_elementwise", joins="mlp mlp_nonlinear", fpga="elu"),
    _op(MS, "EmbedLayerNormalization", "gather", "contrib_costs:_embed_layer_norm", flops=8,
        shape="contrib_ops:_embed_layer_norm"),
    _op(MS, "QEmbedLayerNormalization", "gather", "contrib_costs:_embed_layer_norm", flops=8,
        shape="contrib_ops:_embed_layer_norm", weight_slots=(2, 3, 4, 5, 6, 13, 14, 15, 16, 17)),
    _op(MS, "CausalConvWithState", "elementwise", "contrib_costs:_causal_conv", shape="contrib_ops:_causal_conv"),
    _op(ONNX, "Equal", "logic", "op_costs:_zero_flop", joins="mask_reader moe_routing routing_path"),
    _op(ONNX, "Erf", "activation", "op_costs:_elementwise", joins="mlp mlp_nonlinear residual_epilogue",
        fpga_hint="Erf is emitted only inside GELU's pattern 0.5 * x * (1 + erf(x / sqrt 2)) (a gelu layer)"),
    _op(ONNX, "Exp", "elementwise", "op_costs:_elementwise", joins="attention_core mlp mlp_nonlinear"),
    _op(ONNX, "Expand", "data-movement", "op_costs:_movement",
        joins="attention_core mask_reader moe_routing qkv_path qkv_path_gather routing_path",
        traits="expanding weight_transform", fpga_hint="attention masks are not supported: export without a mask"),
    _op(ONNX, "EyeLike", "shape", "op_costs:_movement", traits="expanding"),
    _op(ONNX, "FastGelu", "activation", "contrib_costs:_activation", flops=8, shape="contrib_ops:_same",
        joins="mlp mlp_nonlinear", bias_slot=1),
    _op(MS, "FastGelu", "activation", "contrib_costs:_activation", flops=8, shape="contrib_ops:_same",
        joins="mlp mlp_nonlinear", bias_slot=1),
    _op(ONNX, "Flatten", "view", "op_costs:_view",
        joins="attention_layout embedding_view moe_routing qkv_path qkv_path_gather routing_path",
        traits="layout structural view weight_transform", fpga="reshape"),
    _op(MS, "FusedGemm", "gemm", "contrib_costs:_fused_gemm", flops=1, shape="contrib_ops:_fused_gemm", traits="linear"),
    _op(MS, "FusedMatMul", "gemm", "contrib_costs:_fused_matmul", shape="contrib_ops:_fused_matmul", traits="linear"),
    _op(ONNX, "Gather", "gather", "op_costs:_gather",
        joins="moe_routing qkv_path qkv_path_gather residual_epilogue routing_path", traits="qdq_fusing", weight_slots=(0,),
        fpga="select", fpga_limit="embedding lookups are not supported: export the model from its embedded inputs"),
    _op(MS, "GatherBlockQuantized", "gather", "contrib_costs:_gather_block_quantized",
        shape="contrib_ops:_gather_block_quantized", weight_slots=(0, 2, 3)),
    _op(ONNX, "GatherElements", "gather", "op_costs:_gather", joins="moe_routing qkv_path_gather"),
    _op(ONNX, "GatherND", "gather", "op_costs:_gather", joins="moe_routing qkv_path_gather"),
    _op(ONNX, "Gelu", "activation", "op_costs:_activation", flops=8, joins="mlp mlp_nonlinear residual_epilogue", fpga="gelu"),
    _op(MS, "Gelu", "activation", "contrib_costs:_activation", flops=8, shape="contrib_ops:_same",
        joins="mlp mlp_nonlinear residual_epilogue"),
    _op(ONNX, "Gemm", "gemm", "op_costs:_matmul", traits="linear qdq_fusing", fpga="dense"),
    _op(MS, "GemmFastGelu", "gemm", "contrib_costs:_gemm_fast_gelu", flops=8, shape="contrib_ops:_gemm_fast_gelu"),
    # the mean over every axis after the second: of a [batch, tokens, width] tensor, the mean over the width
    # (tf2onnx's LayerNormalization moments)
    _op(ONNX, "GlobalAveragePool", "reduction", "op_costs:_reduce", joins="norm_part"),
    _op(ONNX, "Greater", "logic", "op_costs:_zero_flop", joins="mask_compare mlp moe_routing routing_path"),
    _op(ONNX, "GreaterOrEqual", "logic", "op_costs:_zero_flop", joins="mask_compare"),
    _op(MS, "GroupNorm", "norm", "op_costs:_elementwise", shape="contrib_ops:_same"),
    _op(ONNX, "GroupNormalization", "norm", "op_costs:_norm", flops=8, norm_kind="groupnorm"),
    _op(MS, "GroupQueryAttention", "attention", "contrib_costs:_gqa", shape="contrib_ops:_gqa"),
    _op(ONNX, "HardSigmoid", "activation", "op_costs:_elementwise", joins="mlp mlp_nonlinear"),
    _op(ONNX, "HardSwish", "activation", "op_costs:_activation", flops=3, joins="mlp mlp_nonlinear"),
    _op(ONNX, "Identity", "view", "op_costs:_view", joins="attention_core embedding_view mask_reader mlp "
            "moe_routing moe_score qkv_path qkv_path_gather routing_path",
        traits="cast_through layout structural view weight_transform", fpga="wire"),
    _op(ONNX, "If", "control", "op_costs:_elementwise"),
    _op(ONNX, "InstanceNormalization", "norm", "op_costs:_norm", flops=8, norm_kind="instancenorm"),
    _op(ONNX, "IsInf", "logic", "op_costs:_zero_flop"),
    _op(ONNX, "IsNaN", "logic", "op_costs:_zero_flop"),
    _op(ONNX, "LayerNormalization", "norm", "op_costs:_norm", flops=8, norm_kind="layernorm", fpga="layernorm"),
    _op(MS, "LayerNormalization", "norm", "op_costs:_norm", flops=8, shape="contrib_ops:_simplified_norm",
        norm_kind="layernorm"),
    _op(ONNX, "LeakyRelu", "activation", "op_costs:_elementwise", joins="mlp mlp_nonlinear", fpga="leaky_relu"),
    _op(ONNX, "Less", "logic", "op_costs:_zero_flop", joins="mask_compare moe_routing"),
    _op(ONNX, "LessOrEqual", "logic", "op_costs:_zero_flop", joins="mask_compare"),
    _op(ONNX, "LogSoftmax", "softmax", "op_costs:_softmax", flops=6),
    _op(ONNX, "MatMul", "gemm", "op_costs:_matmul", traits="linear qdq_fusing", fpga="dense"),
    _op(ONNX, "MatMulInteger", "gemm", "op_costs:_matmul", traits="integer_matmul linear", weight_slots=(1, 3)),
    _op(MS, "MatMulIntegerToFloat", "gemm", "contrib_costs:_float_matmul", shape="contrib_ops:_float_matmul",
        weight_slots=(1, 3, 5)),
    _op(MS, "MatMulNBits", "gemm", "contrib_costs:_matmul_nbits", shape="contrib_ops:_matmul_nbits", traits="linear",
        weight_slots=(1, 2, 3, 4)),
    _op(ONNX, "Max", "elementwise", "op_costs:_elementwise", joins="attention_core"),
    _op(ONNX, "Min", "elementwise", "op_costs:_elementwise", joins="attention_core mlp"),
    _op(ONNX, "Mish", "activation", "op_costs:_activation", flops=5, joins="mlp mlp_nonlinear"),
    _op(ONNX, "Mul", "elementwise", "op_costs:_elementwise",
        joins="attention_core mlp moe_routing moe_score norm_part qkv_path qkv_path_gather residual_epilogue",
        traits="weight_transform", fpga="scale"),
    _op(MS, "MoE", "gemm", "contrib_costs:_moe", flops=4, shape="contrib_ops:_same"),
    _op(MS, "MultiHeadAttention", "attention", "contrib_costs:_mha_rule", shape="contrib_ops:_mha"),
    _op(ONNX, "Multinomial", "random", "op_costs:_elementwise", traits="not_evaluated"),
    _op(ONNX, "Neg", "elementwise", "op_costs:_elementwise", joins="mlp norm_part qkv_path qkv_path_gather residual_epilogue"),
    _op(ONNX, "NonZero", "routing", "op_costs:_movement", joins="moe_routing"),
    _op(ONNX, "Not", "logic", "op_costs:_zero_flop", joins="attention_core mask_reader moe_routing routing_path"),
    _op(ONNX, "OneHot", "routing", "op_costs:_movement", joins="moe_routing", traits="expanding"),
    _op(ONNX, "Or", "logic", "op_costs:_zero_flop"),
    _op(ONNX, "Pad", "data-movement", "op_costs:_movement", joins="qkv_path qkv_path_gather",  # LongT5's local blocks
        traits="expanding"),
    _op(ONNX, "Pow", "elementwise", "op_costs:_elementwise", joins="mlp norm_part residual_epilogue"),
    _op(MS, "QAttention", "attention", "contrib_costs:_attention", shape="contrib_ops:_attention", weight_slots=(1, 4, 7)),
    _op(MS, "QMoE", "gemm", "contrib_costs:_moe", flops=4, shape="contrib_ops:_same"),
    _op(MS, "QGemm", "gemm", "contrib_costs:_qgemm", shape="contrib_ops:_qgemm", weight_slots=(3, 4, 5, 6)),
    _op(MS, "QLinearAdd", "elementwise", "op_costs:_elementwise", shape="contrib_ops:_qlinear_binary",
        weight_slots=(3, 4, 5), computes="Add"),
    _op(MS, "QLinearConcat", "data-movement", "op_costs:_movement", shape="contrib_ops:_qlinear_concat",
        computes="Concat"),
    _op(ONNX, "QLinearConv", "conv", "op_costs:_conv", weight_slots=(3, 4, 5)),
    _op(MS, "QLinearLeakyRelu", "activation", "op_costs:_elementwise", shape="contrib_ops:_same", computes="LeakyRelu"),
    _op(ONNX, "QLinearMatMul", "gemm", "contrib_costs:_qlinear_matmul", traits="integer_matmul linear",
        weight_slots=(3, 4, 5)),
    _op(MS, "QLinearMul", "elementwise", "op_costs:_elementwise", shape="contrib_ops:_qlinear_binary",
        weight_slots=(3, 4, 5), computes="Mul"),
    _op(MS, "QLinearSigmoid", "activation", "op_costs:_elementwise", shape="contrib_ops:_same", computes="Sigmoid"),
    _op(MS, "QLinearSoftmax", "softmax", "op_costs:_elementwise", shape="contrib_ops:_same", computes="Softmax"),
    _op(ONNX, "QuantizeLinear", "quant", "op_costs:_elementwise",
        joins="attention_core attention_layout mlp norm_part qkv_path qkv_path_gather",
        traits="cast_through quant_transparent"),
    _op(MS, "QuantizeLinear", "quant", "op_costs:_elementwise", shape="contrib_ops:_quant_linear",
        joins="attention_core attention_layout mlp norm_part qkv_path qkv_path_gather",
        traits="cast_through quant_transparent"),
    _op(ONNX, "QuickGelu", "activation", "contrib_costs:_activation", flops=4, shape="contrib_ops:_same",
        joins="mlp mlp_nonlinear"),
    _op(MS, "QuickGelu", "activation", "contrib_costs:_activation", flops=4, shape="contrib_ops:_same",
        joins="mlp mlp_nonlinear"),
    _op(ONNX, "RMSNormalization", "norm", "op_costs:_norm", flops=5, norm_kind="rmsnorm"),
    _op(ONNX, "RandomNormal", "random", "op_costs:_elementwise", traits="not_evaluated"),
    _op(ONNX, "RandomNormalLike", "random", "op_costs:_elementwise", traits="not_evaluated"),
    _op(ONNX, "RandomUniform", "random", "op_costs:_elementwise", traits="not_evaluated"),
    _op(ONNX, "RandomUniformLike", "random", "op_costs:_elementwise", traits="not_evaluated"),
    _op(ONNX, "Range", "shape", "op_costs:_movement", traits="expanding"),
    _op(ONNX, "Reciprocal", "elementwise", "op_costs:_elementwise", joins="mlp norm_part"),
    _op(ONNX, "ReduceL1", "reduction", "op_costs:_reduce"),
    _op(ONNX, "ReduceL2", "reduction", "op_costs:_reduce"),
    _op(ONNX, "ReduceLogSumExp", "reduction", "op_costs:_reduce"),
    _op(ONNX, "MaxPool", "reduction", "op_costs:_reduce", fpga="pool1d"),  # a window reduction: ~1 op per input element
    _op(ONNX, "AveragePool", "reduction", "op_costs:_reduce", fpga="pool1d"),
    _op(ONNX, "ReduceMax", "reduction", "op_costs:_reduce", joins="attention_core moe_routing routing_path",
        fpga="globalpool"),
    _op(ONNX, "ReduceMean", "reduction", "op_costs:_reduce", joins="norm_part", fpga="globalpool"),
    _op(ONNX, "ReduceMin", "reduction", "op_costs:_reduce"),
    _op(ONNX, "ReduceProd", "reduction", "op_costs:_reduce"),
    _op(ONNX, "ReduceSum", "reduction", "op_costs:_reduce", joins="attention_core moe_routing routing_path"),
    _op(ONNX, "ReduceSumSquare", "reduction", "op_costs:_reduce"),
    _op(MS, "RelativePositionBias", "gather", "contrib_costs:_relative_position_bias",
        shape="contrib_ops:_relative_position_bias"),
    _op(ONNX, "Relu", "activation", "op_costs:_elementwise", joins="mlp mlp_nonlinear residual_epilogue", fpga="relu"),
    _op(ONNX, "Reshape", "view", "op_costs:_view", joins="attention_core attention_layout embedding_view mask_reader mlp "
            "moe_routing moe_score qkv_path qkv_path_gather routing_path", traits="layout structural view weight_transform",
        fpga="reshape"),
    _op(ONNX, "Resize", "data-movement", "op_costs:_movement", traits="expanding"),
    _op(ONNX, "RotaryEmbedding", "elementwise", "contrib_costs:_rotary", shape="contrib_ops:_same",
        joins="qkv_path qkv_path_gather"),
    _op(MS, "RotaryEmbedding", "elementwise", "contrib_costs:_rotary", shape="contrib_ops:_same",
        joins="qkv_path qkv_path_gather"),
    _op(ONNX, "Rsqrt", "elementwise", "op_costs:_elementwise", joins="norm_part"),
    _op(ONNX, "ScatterElements", "data-movement", "op_costs:_movement", joins="moe_routing moe_score"),
    _op(ONNX, "ScatterND", "data-movement", "op_costs:_movement", joins="moe_routing"),
    _op(ONNX, "Shape", "shape", "op_costs:_movement", joins="moe_routing", traits="structural"),
    _op(ONNX, "Sigmoid", "activation", "op_costs:_elementwise", joins="mlp mlp_nonlinear moe_score residual_epilogue",
        fpga="sigmoid"),
    _op(ONNX, "Sign", "logic", "op_costs:_zero_flop"),
    _op(ONNX, "Silu", "activation", "op_costs:_activation", flops=4, joins="mlp mlp_nonlinear"),
    _op(ONNX, "SimplifiedLayerNormalization", "norm", "contrib_costs:_norm", flops=5, shape="contrib_ops:_simplified_norm",
        norm_kind="rmsnorm"),
    _op(MS, "SimplifiedLayerNormalization", "norm", "contrib_costs:_norm", flops=5, shape="contrib_ops:_simplified_norm",
        norm_kind="rmsnorm"),
    _op(ONNX, "Sin", "elementwise", "op_costs:_elementwise"),
    _op(ONNX, "Size", "shape", "op_costs:_movement"),
    _op(MS, "SkipGroupNorm", "norm", "op_costs:_elementwise", shape="contrib_ops:_same"),
    _op(ONNX, "SkipLayerNormalization", "norm", "contrib_costs:_norm", flops=9, shape="contrib_ops:_skip_norm",
        norm_kind="layernorm", bias_slot=4, traits="fused_residual"),
    _op(MS, "SkipLayerNormalization", "norm", "contrib_costs:_norm", flops=9, shape="contrib_ops:_skip_norm",
        norm_kind="layernorm", bias_slot=4, traits="fused_residual"),
    _op(ONNX, "SkipSimplifiedLayerNormalization", "norm", "contrib_costs:_norm", flops=6, shape="contrib_ops:_skip_norm",
        norm_kind="rmsnorm", bias_slot=3, traits="fused_residual"),
    _op(MS, "SkipSimplifiedLayerNormalization", "norm", "contrib_costs:_norm", flops=6, shape="contrib_ops:_skip_norm",
        norm_kind="rmsnorm", bias_slot=3, traits="fused_residual"),
    _op(ONNX, "Slice", "data-movement", "op_costs:_movement",
        joins="attention_core mask_reader mlp moe_routing qkv_path qkv_path_gather residual_epilogue routing_path",
        traits="weight_transform", fpga="select"),
    _op(ONNX, "Softmax", "softmax", "op_costs:_softmax", flops=5,
        joins="attention_core moe_routing moe_score residual_epilogue", fpga="softmax"),
    _op(ONNX, "Softplus", "activation", "op_costs:_elementwise", joins="mlp mlp_nonlinear"),
    _op(ONNX, "SpaceToDepth", "data-movement", "op_costs:_movement"),
    _op(ONNX, "Split", "data-movement", "op_costs:_movement", joins="mlp moe_routing qkv_path qkv_path_gather",
        traits="weight_transform"),
    _op(ONNX, "Sqrt", "elementwise", "op_costs:_elementwise", joins="norm_part qkv_path qkv_path_gather residual_epilogue"),
    _op(ONNX, "Squeeze", "view", "op_costs:_view", joins="attention_core attention_layout embedding_view mask_reader "
            "moe_routing qkv_path qkv_path_gather residual_epilogue routing_path",
        traits="layout structural view weight_transform", fpga="reshape"),
    _op(ONNX, "Sub", "elementwise", "op_costs:_elementwise",
        joins="attention_core mlp moe_routing norm_part qkv_path qkv_path_gather residual_epilogue"),
    _op(ONNX, "Swish", "activation", "op_costs:_activation", flops=4, joins="mlp mlp_nonlinear"),
    _op(ONNX, "Tanh", "activation", "op_costs:_elementwise", joins="attention_core mlp mlp_nonlinear residual_epilogue",
        fpga="tanh"),
    _op(ONNX, "Tile", "data-movement", "op_costs:_movement", joins="qkv_path qkv_path_gather", traits="expanding"),
    _op(ONNX, "TopK", "routing", "op_costs:_reduce", joins="moe_routing"),
    _op(ONNX, "Transpose", "data-movement", "op_costs:_movement",
        joins="attention_layout moe_routing qkv_path qkv_path_gather residual_epilogue routing_path",
        traits="layout weight_transform", fpga="transpose"),
    _op(ONNX, "Trilu", "data-movement", "op_costs:_movement", traits="expanding"),
    _op(ONNX, "Unsqueeze", "view", "op_costs:_view", joins="attention_core attention_layout embedding_view mask_reader "
            "moe_routing qkv_path qkv_path_gather routing_path", traits="layout structural view weight_transform",
        fpga="reshape"),
    _op(ONNX, "Upsample", "data-movement", "op_costs:_elementwise", traits="expanding"),
    _op(ONNX, "Where", "logic", "op_costs:_zero_flop",
        joins="attention_core mask_reader mlp moe_routing moe_score residual_epilogue",
        traits="expanding", fpga_hint="attention masks are not supported: export without a mask"),
    _op(ONNX, "Xor", "logic", "op_costs:_zero_flop"),
]


def _inherit_roles(entries: list[OpInfo]) -> list[OpInfo]:
    """A QOperator-format op (``computes``: QLinearAdd computes an Add of its dequantized operands, then
    requantises) joins the recognition roles of the float op it computes: what an op computes decides its part."""
    float_ops = {e.name: e for e in entries if e.domain == ONNX}
    return [replace(e, joins=e.joins | float_ops[e.computes].joins) if e.computes else e for e in entries]


_ENTRIES = _inherit_roles(_ENTRIES)
TABLE: dict[tuple[str, str], OpInfo] = {(e.domain, e.name): e for e in _ENTRIES}
ROLES = frozenset(r for e in _ENTRIES for r in e.joins)
CATEGORIES = frozenset(e.category for e in _ENTRIES)


class _Names:
    """Op type names as attributes (``OP.MatMul == "MatMul"``): code outside this table names an op through it, so
    a misspelt or unknown op is an AttributeError (and a failing test, tests/test_op_table.py) instead of a silent
    mismatch."""

    def __init__(self, names: set[str]) -> None:
        self.__dict__.update({n: n for n in sorted(names)})

    def __getattr__(self, name: str) -> str:
        raise AttributeError(f"op type '{name}' is not in mapping/op_table.py")


OP = _Names({e.name for e in _ENTRIES})


def _domain(domain: str) -> str:
    return ONNX if domain in ("", "ai.onnx") else domain


def get(domain: str, op_type: str) -> OpInfo | None:
    """The entry of exactly (domain, op type) (``ai.onnx`` is the ONNX domain), None if there is none."""
    return TABLE.get((_domain(domain), op_type))


def lookup(domain: str, op_type: str) -> OpInfo | None:
    """The entry a node of (domain, op type) is costed by: its own, else the ONNX-domain op of the same name."""
    return get(domain, op_type) or TABLE.get((ONNX, op_type))


@cache
def names(*, category: str | None = None, joins: str | None = None, trait: str | None = None,
          cost: str | None = None, domain: str | None = None, fpga: str | None = None) -> frozenset[str]:
    """Op type names of the entries matching every given filter (role ``joins``, ``trait``, cost rule, FPGA kind, ...)."""
    return frozenset(e.name for e in _ENTRIES
                     if (category is None or e.category == category) and (joins is None or joins in e.joins)
                     and (trait is None or trait in e.traits) and (cost is None or e.cost == cost)
                     and (domain is None or e.domain == domain) and (fpga is None or e.fpga == fpga))


def computes(op_type: str) -> str:
    """The op ``op_type`` computes on real values: the float op of a QOperator-format op, else itself."""
    e = by_name(op_type)
    return e.computes if e is not None and e.computes else op_type


def by_name(op_type: str) -> OpInfo | None:
    """The ONNX-domain entry of ``op_type``, else its contrib one (for facts that do not depend on the domain)."""
    return TABLE.get((ONNX, op_type)) or TABLE.get((MS, op_type))


@cache
def rule(ref: str) -> Callable:
    """The function a ``"module:function"`` rule reference of the table names (a module of :mod:`mapping`)."""
    module, _, func = ref.partition(":")
    return getattr(importlib.import_module(f"mapping.{module}"), func)
