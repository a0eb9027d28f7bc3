"""What the HLS tool behind an hls4ml backend does differently: Vivado HLS (``Vivado``) vs Vitis HLS (``Vitis``).

hls4ml's Vivado and Vitis backends emit the same kernels (the Vitis backend inherits the Vivado templates and
``nnet_utils``; it changes pragmas for Vitis's stricter dataflow checks, not the arithmetic). What differs is how
the tool schedules and binds them. Each constant below was fitted on the published csynth points named beside it
(``simulator/validation/fpga_published.yaml``: ``B`` = hls4ml's test baselines, ``T`` = tutorial notebook outputs);
``reports/fpga_validation.md`` lists which points are held out.

- Dense at R = 1: Vivado HLS schedules a whole Latency-strategy Dense in one cycle; Vitis HLS 2024.1 registers its
  adder tree, ``1 + ceil(log2(k) / DENSE_LEVELS_PER_CYCLE)`` cycles for ``k`` non-zero products per output
  (T c6b63d3 part 1: 14 cycles for the jet tagger, 4 of them the softmax).
- Vitis LUTs follow the non-zero products only (a pruned layer costs about its share: T a5790ad part 3 vs
  c6b63d3 part 1), ``VITIS_LUT_NZ`` per product per operand bit; Vivado HLS also spends LUTs on the zero weights
  (``hardware.fpga.dense``). Vitis registers a third of Vivado's FFs in a Dense (``VITIS_FF_SCALE``).
- Vitis binds a softmax's 1024 x 18 exp/inverse ROMs in two BRAM18 each (8 BRAM18 where Vivado HLS uses 4).
- Activations: ReLU LUTs per element per bit; table activations (ELU, sigmoid, ...) ``TABLE_CYCLES`` cycles and
  their LUT/FF per element per bit (B test_activations, Dense(1 -> 64) + ELU / ReLU, io_parallel).
- io_stream: every layer is a dataflow process of at least one cycle (a 0-cycle ReLU takes one); a stream
  word between two layers costs ``stream_lut`` / ``stream_ff`` per bit (its FIFO: Vivado HLS 3.3 LUT and 0.3 FF,
  Vitis HLS 1.55 LUT, fitted on the ReLU io_stream baselines minus their io_parallel ones). Vitis HLS 2024.1 also
  registers every stream word (FF = its bits: 2,064 = 16 + 2 x 64 x 16 in the ReLU baseline) and does not
  overlap successive calls of a design of one-word layers (II = latency, 2 in the same baseline).
- Sigmoid/tanh tables register half the FFs of ELU's (one lookup, no select between two paths; the Vivado HLS
  2020.1 sigmoid baseline, 1,047 vs 2,135 FFs).
- ``CONTROL_FF``: the top function's control registers (18 FFs in every io_parallel ReLU baseline of both tools).
"""

from __future__ import annotations

from dataclasses import dataclass

from hardware.errors import HwsimError


@dataclass(frozen=True)
class ToolRules:
    """Per-tool constants of the hls4ml cost model (see the module docstring for the points behind each)."""

    name: str
    #: Adder-tree levels per cycle of an R = 1 Dense; None: the whole Dense is one cycle.
    dense_levels_per_cycle: int | None
    #: LUTs per non-zero product per operand bit of an R = 1 Dense; None: the Vivado HLS rule of hardware.fpga.dense.
    lut_nz: float | None
    #: Factor on the Vivado HLS Dense FF rule.
    dense_ff_scale: float
    #: BRAM18 per softmax ROM copy, relative to the ROM's size in BRAM18.
    softmax_rom_factor: int
    relu_lut: float
    table_cycles: int
    table_lut: float
    table_ff: float
    #: io_stream: each layer's output word is registered (FF) and successive calls do not overlap (II = latency).
    stream_registers: bool
    #: io_stream: LUTs and FFs per bit of a stream word between two layers (the FIFO and its handshake).
    stream_lut: float = 0.0
    stream_ff: float = 0.0
    #: FFs of a sigmoid/tanh table layer relative to ``table_ff`` (ELU's): one lookup, no select between two paths.
    sigmoid_ff_share: float = 0.5


#: Vivado HLS (2019.1-2020.1). ReLU: B ef92ebd test_activations relu vs leaky_relu(alpha 1), Vivado 2020.1 io_parallel
#: (2224 - 602 LUTs over 64 x 16 bits); table: the ELU baseline (4641 LUTs, 2135 FFs, 2 cycles).
VIVADO = ToolRules("Vivado", None, None, 1.0, 1, relu_lut=1.6, table_cycles=2, table_lut=4.0, table_ff=2.0,
                   stream_registers=False, stream_lut=3.3, stream_ff=0.3, sigmoid_ff_share=0.5)
#: Vitis HLS 2024.1. Dense: T c6b63d3 part 1 (jet tagger at R = 1: 101,839 LUTs, 9,363 FFs, 14 cycles, 8 BRAM18);
#: ReLU and table: B ef92ebd test_activations relu / elu, Vitis 2024.1 io_parallel (2983 - 462 LUTs; 10,082 LUTs,
#: 3,865 FFs, 3 cycles); stream: the relu io_stream baseline (2,064 FFs = 16 + 2 x 64 x 16, latency = II = 2).
VITIS = ToolRules("Vitis", 5, 1.54, 0.337, 2, relu_lut=2.4, table_cycles=3, table_lut=9.4, table_ff=3.75,
                  stream_registers=True, stream_lut=1.55, stream_ff=0.0, sigmoid_ff_share=0.5)
TOOLS = {"vivado": VIVADO, "vitis": VITIS}
#: Top-function control registers of an io_parallel design (both tools).
CONTROL_FF = 18


def tool_rules(backend: str) -> ToolRules:
    """The rules of hls4ml backend ``backend`` (Vivado or Vitis, any case)."""
    rules = TOOLS.get(str(backend).lower())
    if rules is None:
        raise HwsimError(f"backend '{backend}' is not one of Vivado, Vitis")
    return rules
