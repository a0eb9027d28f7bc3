"""A small model as the hls4ml design ``hwsim hls`` writes: one program task per hls4ml layer, on the fabric.

``hwsim simulate --target <fpga>`` and ``hwsim hls`` give one answer for a model ``hls`` can emit: with
``--set design=hls4ml`` (or ``auto``, the default, when the design fits the part) the workload is lowered to the
layers of :func:`mapping.fpga.pipeline.build_layers` costed by :func:`mapping.fpga.pipeline.estimate` with the
settings ``hwsim hls`` uses by default (``ap_fixed<16,6>``, Latency strategy, io_parallel, token-serial, softmax
tables of 1024; ``--set reuse=R``; int8/int4 weights or activations: ``ap_fixed<8,3>``/``ap_fixed<4,2>``, as
``hwsim hls --precision`` would be given, see :data:`FIXED_OF`). Each layer is a task of its latency (cycles /
clock) that waits for the layers it reads, so the simulated latency is the estimate's. Dynamic energy: one
full-width DSP MAC energy per non-zero weight product (``energy_per_dsp_mac``; activation products likewise),
static power from the preset. The weights are on chip: no off-chip traffic.

``hls4ml`` runs the design even where it does not fit the part (so the two commands can be compared on any
model ``hls`` emits); ``auto`` falls back to the layer-sequential overlay (:mod:`mapping.fpga.mapper`) when the model is not one
``hls`` can emit, the workload is not one prefill pass of batch 1 at the model's own sequence length, or the
design does not fit the part; :func:`design_choice` says which and why.
"""

from __future__ import annotations

import numpy as np

from hardware.errors import HwsimError
from hardware.fpga.pipeline import PipelineEstimate
from hardware.fpga.spec import FpgaTarget
from mapping.fpga.pipeline import PipeLayer, build_layers, estimate
from mapping.program import Program, ProgramBuilder, Resource

#: The options ``hwsim hls`` uses by default (and the simulate lowering, so the two agree).
HLS_DEFAULTS = {"strategy": "latency", "io_type": "io_parallel", "precision": "ap_fixed<16,6>",
                "token_parallel": False, "table_size": 1024}
#: Models with more weights than this are not tried as hls4ml designs (hls4ml keeps every weight on chip).
MAX_WEIGHTS = 2_000_000


#: hls4ml precision of an integer format chosen with --weights/--activations (float formats keep the emitter's
#: default ``ap_fixed<16,6>``: hls4ml emits fixed point): the same width, with the integer bits hls4ml's
#: ``ap_fixed<16,6>`` default keeps in proportion.
FIXED_OF = {"int8": "ap_fixed<8,3>", "uint8": "ap_fixed<8,3>", "int4": "ap_fixed<4,2>", "uint4": "ap_fixed<4,2>"}


def design_precision(workload: object) -> dict[str, str]:
    """``precision`` (data) and ``weight_precision`` of the design for the workload's formats (``hwsim hls
    --precision`` takes the same strings), empty for the defaults."""
    prec = getattr(workload, "precision", None)
    out: dict[str, str] = {}
    if prec is not None and prec.activations in FIXED_OF:
        out["precision"] = FIXED_OF[prec.activations]
    if prec is not None and prec.weights in FIXED_OF:
        out["weight_precision"] = FIXED_OF[prec.weights]
    return out


def hls_estimate(layers: list[PipeLayer], target: FpgaTarget, reuse: int = 1,
                 precision: dict[str, str] | None = None) -> PipelineEstimate:
    """The estimate ``hwsim hls`` prints for these layers at ``reuse`` (its default settings, or ``precision``)."""
    return estimate(layers, target, dict(HLS_DEFAULTS, reuse=reuse, **(precision or {})))


def design_choice(workload: object, target: FpgaTarget, design: str = "auto", reuse: int = 1
                  ) -> tuple[list[PipeLayer] | None, PipelineEstimate | None, str]:
    """(layers, estimate, reason): layers and estimate when the workload runs as the hls4ml design, else Nones and
    why the overlay is used. ``design='hls4ml'`` raises HwsimError instead of falling back."""
    def no(reason: str) -> tuple[None, None, str]:
        if design == "hls4ml":
            raise HwsimError(f"--set design=hls4ml: {reason}; use --set design=auto or overlay")
        return None, None, reason

    if design == "overlay":
        return None, None, "--set design=overlay"
    if getattr(workload, "phase", "") != "prefill" or getattr(workload, "batch", 1) != 1:
        return no("an hls4ml design runs one prefill pass of batch 1")
    prec = getattr(workload, "precision", None)
    if prec is not None and prec.weights == "ternary":
        return no("ternary weights: hwsim hls emits ap_fixed weights (the overlay runs ternary weights as additions)")
    if getattr(workload, "params", 0) > MAX_WEIGHTS:
        return no(f"{workload.params:,} weights is more than an hls4ml design keeps on chip ({MAX_WEIGHTS:,})")
    try:
        layers, _ = build_layers(workload.model)
    except HwsimError as exc:
        return no(f"hwsim hls cannot emit this model ({exc})")
    except Exception as exc:  # noqa: BLE001 - a graph the emitter's walk does not handle: use the overlay
        return no(f"hwsim hls cannot emit this model ({type(exc).__name__}: {exc})")
    inp = next((lay for lay in layers if lay.kind == "input"), None)
    if inp is not None and len(inp.shape) >= 2 and inp.shape[0] != workload.seq and _symbolic_length(workload.model):
        return no(f"the design is built for {inp.shape[0]} tokens, the workload has {workload.seq}")
    est = hls_estimate(layers, target, reuse, design_precision(workload))
    if not est.fits and design != "hls4ml":  # asked for by name, the design runs even where it does not fit
        return no(f"the hls4ml design at reuse {reuse} does not fit {target.part} ({'; '.join(est.over)})")
    return layers, est, "hls4ml design"


def _symbolic_length(path: str) -> bool:
    """Whether a graph input has a symbolic dim after the batch (its token count is the workload's to set); a
    fixed-length graph (a Conv1D or pooling network) runs at its own length whatever the workload counts as tokens."""
    from mapping.onnx_graph import load_graph

    graph = load_graph(path)
    return any(isinstance(d, str) for name in graph.inputs for d in (graph.tensors[name].dims or ())[1:])


def _macs(layer: PipeLayer, weight_fmt: str) -> float:
    a = layer.attrs
    if layer.kind in ("dense", "conv1d", "conv2d"):
        from hardware.fpga.fixed import parse_fixed
        from mapping.fpga.pipeline import quantise

        nz = int(np.count_nonzero(quantise(a["weight"], parse_fixed(weight_fmt))))
        return float(nz * a["vectors"])
    if layer.kind == "matmul":
        return float(a["n_in"] * a["n_out"] * a["vectors"])
    return 0.0


def lower_design(workload: object, layers: list[PipeLayer], est: PipelineEstimate, target: FpgaTarget) -> Program:
    """One task per costed layer on resource ``fabric`` (all layers may run at once), each after its inputs."""
    block_of = {op.name: op.block for op in getattr(workload, "ops", [])}
    by_name = {lay.name: lay for lay in layers}
    clock = target.clock_hz
    e_mac = target.energy_per_dsp_mac.si
    program = ProgramBuilder()
    done: dict[str, str] = {}
    for e in est.layers:
        lay = by_name[e.name]
        after = [done[i] for i in lay.inputs if i in done]
        chosen = design_precision(workload)
        energy = _macs(lay, chosen.get("weight_precision", chosen.get("precision", HLS_DEFAULTS["precision"]))) * e_mac
        task = program.add(after=after, name=f"hls4ml:{e.name}", resource="fabric",
                           duration_s=e.latency_cycles / clock, energy_j=energy, energy_by_action={"dsp_mac": energy},
                           op=lay.node or e.name, block=block_of.get(lay.node, ""), kind=e.kind)
        done[e.name] = task.name
    return program.build([Resource(name="fabric", capacity=max(1, len(est.layers)), static_power_w=target.static_power.si,
                                   in_order=False)], {})
