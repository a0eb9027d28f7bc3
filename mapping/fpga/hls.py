"""hls4ml project emission for small transformers, built from our layer list (hls4ml 1.3.0's ONNX frontend is not
transformer-ready: its ``MatMul`` layer is "only supported as an intermediate form that gets converted to a Dense
layer" (``hls4ml/model/layers.py``, pass ``matmul_const_to_dense``), so an activation x activation product has no
kernel, and ``hls4ml/converters/onnx/`` has no LayerNormalization handler).

The layers of :func:`mapping.fpga.pipeline.build_layers` become hls4ml layer dicts (Dense, Einsum for Q.K^T and
P.V, Softmax, LayerNormalization, Activation relu, Merge add, BatchNormalization as a constant scale, Reshape,
Transpose) and go through ``ModelGraph.from_layer_list`` (docs/research/fpga.md 4a) with every precision set
explicitly: data and results ``precision`` (rounded, saturating; activation x
activation products 4 more integer bits), weights and biases ``weight_precision``, accumulators twice as
wide, softmax tables of ``table_size`` entries with unsigned types sized to the row length. ``csim`` compiles the
C++ with g++ through hls4ml and compares with onnxruntime on the same ONNX file.

Token parallelism (``token_parallel``): hls4ml turns a per-token Dense into a pointwise Conv1D whose
``ParallelizationFactor`` (default 1) sets how many tokens it computes at once; ``False`` keeps 1 (one token per R
cycles), ``True`` sets it to the token count. The Einsum and softmax layers are unrolled over the tokens either way
(hls4ml 1.3 has no knob for them). :func:`mapping.fpga.pipeline.estimate` models the same choices.

``synth`` runs hls4ml's own build (C synthesis only) when the backend's tool is on PATH and reads the csynth report
with ``hls4ml.report.parse_vivado_report``; :func:`synth_command` is what to run by hand otherwise.
"""

from __future__ import annotations

import contextlib
import io
import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hardware.errors import HwsimError
from hardware.fpga.fixed import FixedType
from mapping.fpga.onnx_layers import TABLE_FUNCTIONS
from mapping.fpga.pipeline import PipeLayer, build_layers
from mapping.op_table import OP

#: Layer kinds that must appear as a function call in the generated firmware (the others are wiring).
COMPUTE_KINDS = ("dense", "matmul", "softmax", "layernorm", "relu", "elu", "sigmoid", "tanh", "add", "scale",
                 "transpose", "leaky_relu", "batchnorm", "conv1d", "conv2d", "pool1d", "globalpool", "gelu", "gelu_tanh",
                 "silu", "table")
#: Layer kinds hls4ml 1.3 implements only for io_parallel (no stream kernel: nnet_einsum.h, nnet_layernorm.h).
PARALLEL_ONLY = {"matmul": OP.Einsum, "layernorm": OP.LayerNormalization}
PROJECT = "myproject"
#: Extra integer (and total) bits of activation x activation products over the data precision.
MATMUL_EXTRA_INTEGER_BITS = 4
#: Synthesis tools hls4ml's build uses, per backend, in order of preference (hls4ml 1.3: the Vitis backend's
#: ``build()`` runs ``vitis-run --tcl build_prj.tcl --mode hls``, the Vivado one ``vivado_hls -f build_prj.tcl``).
SYNTH_TOOLS = {"Vitis": ("vitis-run", "vitis_hls"), "Vivado": ("vivado_hls",)}
#: hls4ml build options for C synthesis only (the project's ``build_opt.tcl`` / ``vivado_hls`` arguments).
SYNTH_ONLY = {"reset": 1, "csim": 0, "synth": 1, "cosim": 0, "validation": 0, "export": 0, "vsynth": 0,
              "fifo_opt": 0}


@dataclass
class HlsProject:
    """An hls4ml project written to ``out_dir`` and the hls4ml ModelGraph behind it."""

    out_dir: Path
    model_path: str
    layers: list[PipeLayer]
    graph: Any
    io_type: str
    backend: str = "Vitis"
    token_parallel: bool = False
    attention: str = "unrolled"

    @property
    def firmware(self) -> Path:
        """The top-level C++ file."""
        return self.out_dir / "firmware" / f"{PROJECT}.cpp"


def _softmax_types(n: int, data: FixedType) -> dict[str, str]:
    ibits = math.ceil(math.log2(n + 1)) + 1
    return {"result": f"ap_ufixed<{data.width},1>", "exp_table": f"ap_ufixed<{data.width + 2},1>",
            "inv_table": f"ap_ufixed<{data.width + 2},1>", "inv_inp": f"ap_ufixed<{data.width + 2},{ibits}>",
            "accum": f"ap_ufixed<{data.width + 6},{ibits}>"}


#: Attention products: hls4ml 1.3's Einsum (every query row at once) or hwsim's row-serial layer (mapping/fpga/hls_ext.py).
ATTENTION = ("unrolled", "row-serial")


def layer_dicts(layers: list[PipeLayer], data: FixedType, weight: FixedType, table_size: int = 1024,
                attention: str = "unrolled") -> tuple[list[dict], dict[str, dict]]:
    """hls4ml layer dicts and the per-layer ``LayerName`` config (precisions, table sizes); ``attention``
    ``row-serial`` emits the attention products as hwsim's ``HwsimRowMatmul`` (one query row per reuse cycles)
    and lets each softmax use one instance per head (rows of a head in turn)."""
    accum = f"ap_fixed<{2 * data.width},{2 * data.integer}>"
    result = f"ap_{'' if data.signed else 'u'}fixed<{data.width},{data.integer},AP_RND_CONV,AP_SAT>"
    default = {"result": result, "weight": str(weight), "bias": str(weight), "accum": accum}
    out: list[dict] = []
    conf: dict[str, dict] = {}
    for lay in layers:
        a = lay.attrs
        d: dict[str, Any] = {"name": lay.name, "inputs": list(lay.inputs)}
        conf[lay.name] = {"Precision": dict(default)}
        if lay.kind == "input":
            d.update(class_name="InputLayer", input_shape=list(lay.shape))
            d.pop("inputs")
        elif lay.kind == "dense":
            d.update(class_name="Dense", n_in=a["n_in"], n_out=a["n_out"], weight_data=a["weight"], bias_data=a["bias"])
        elif lay.kind == "matmul":
            d.update(class_name=OP.Einsum if attention == "unrolled" else "HwsimRowMatmul", equation=a["equation"],
                     inp0_shape=tuple(a["inp0_shape"]), inp1_shape=tuple(a["inp1_shape"]), out_shape=tuple(lay.shape))
            conf[lay.name]["Strategy"] = "Latency"  # hls4ml 1.3 asserts Einsum supports only Latency
            grow = MATMUL_EXTRA_INTEGER_BITS  # Q.K^T sums n_in products of activations: give it headroom
            conf[lay.name]["Precision"]["result"] = f"ap_fixed<{data.width + grow},{data.integer + grow},AP_RND_CONV,AP_SAT>"
        elif lay.kind == "softmax":
            d.update(class_name="Softmax", activation="softmax", axis=-1, n_in=math.prod(lay.shape),
                     n_outer=a["rows"], n_inner=1, implementation="stable")
            if attention == "row-serial" and a.get("tokens", 1) > 1:
                d["parallelization_factor"] = max(1, a["rows"] // a["tokens"])  # one row per head at a time
            conf[lay.name] = {"Precision": _softmax_types(a["n"], data), "TableSize": table_size}
        elif lay.kind == "layernorm":
            d.update(class_name="LayerNormalization", n_in=a["n"], seq_len=a["rows"], axis=-1,
                     epsilon_power_of_10=max(1, -round(math.log10(a["epsilon"]))), gamma_data=a["gamma"],
                     beta_data=a["beta"])
            conf[lay.name]["Precision"].update(scale=str(weight))
        elif lay.kind in ("relu", "sigmoid", "tanh"):
            d.update(class_name="Activation", activation=lay.kind)
            if lay.kind != "relu":
                conf[lay.name]["TableSize"] = table_size
        elif lay.kind == "elu":
            d.update(class_name="ELU", activation="elu", activ_param=float(a.get("alpha", 1.0)))
            conf[lay.name]["TableSize"] = table_size
        elif lay.kind == "add":
            d.update(class_name="Merge", op="add")
        elif lay.kind == "scale":
            n = math.prod(lay.shape)
            d.update(class_name="BatchNormalization", n_in=n, n_filt=-1, scale_data=np.full(n, a["factor"]),
                     bias_data=np.zeros(n))
            conf[lay.name]["Precision"].update(scale=str(weight))
        elif lay.kind == "reshape":
            d.update(class_name="Reshape", target_shape=list(lay.shape))
        elif lay.kind == "transpose":
            d.update(class_name="Transpose", perm=list(a["perm"]))
        elif lay.kind == "leaky_relu":
            d.update(class_name="LeakyReLU", activation="LeakyReLU", activ_param=float(a["alpha"]))
            conf[lay.name]["Precision"].update(param=str(weight))
        elif lay.kind == "batchnorm":
            d.update(class_name="BatchNormalization", n_in=math.prod(lay.shape), n_filt=int(a["n_filt"]),
                     scale_data=np.asarray(a["scale"]), bias_data=np.asarray(a["bias"]))
            conf[lay.name]["Precision"].update(scale=str(weight))
        elif lay.kind == "conv1d":
            d.update(class_name="Conv1D", data_format="channels_last", in_width=a["in_width"], out_width=a["out_width"],
                     n_chan=a["n_chan"], n_filt=a["n_filt"], filt_width=a["filt_width"], stride_width=a["stride"],
                     pad_left=a["pad_left"], pad_right=a["pad_right"], dilation=1, weight_data=a["weight"],
                     bias_data=a["bias"])
        elif lay.kind == "conv2d":
            d.update(class_name="Conv2D", data_format="channels_last", in_height=a["in_height"],
                     in_width=a["in_width"], out_height=a["out_height"], out_width=a["out_width"], n_chan=a["n_chan"],
                     n_filt=a["n_filt"], filt_height=a["filt_height"], filt_width=a["filt_width"],
                     stride_height=a["stride_height"], stride_width=a["stride_width"], pad_top=a["pad_top"],
                     pad_bottom=a["pad_bottom"], pad_left=a["pad_left"], pad_right=a["pad_right"], dilation=1,
                     weight_data=a["weight"], bias_data=a["bias"])
        elif lay.kind == "pool1d":
            d.update(class_name=f"{a['pool_op']}Pooling1D", data_format="channels_last", n_in=a["n_in"],
                     n_out=a["n_out"], n_filt=a["n_filt"], pool_width=a["pool_width"], stride_width=a["stride"],
                     pad_left=a["pad_left"], pad_right=a["pad_right"], count_pad=a["count_pad"])
        elif lay.kind == "globalpool":
            d.update(class_name=f"Global{a['pool_op']}Pooling1D", data_format="channels_last", n_in=a["n_in"],
                     n_filt=a["n_filt"])
        elif lay.kind in TABLE_FUNCTIONS:
            from mapping.fpga.hls_ext import TABLE_TYPE, table_range

            rng = min(table_range(data.integer), table_size // 2)
            d.update(class_name="HwsimTable", function=lay.kind, table_size=table_size, table_range=rng)
            if lay.kind == "table":  # an unnamed elementwise function: its own values (mapping/fpga/unary.py)
                step = 2.0 * rng / table_size
                mids = -rng + (np.arange(table_size) + 0.5) * step
                d.update(table_data=[float(v) for v in a["f"](mids)], linear_above=a["linear_above"])
            conf[lay.name]["Precision"].update(table=TABLE_TYPE)
        else:
            raise HwsimError(f"node '{lay.node}': layer kind '{lay.kind}' cannot be emitted to hls4ml")
        out.append(d)
    return out, conf


def write_project(model_path: str, out_dir: str, part: str = "xcvu13p-fhga2104-2L-e", backend: str = "Vitis",
                  clock_ns: float = 5.0, reuse: int = 1, precision: FixedType | None = None,
                  weight_precision: FixedType | None = None, io_type: str = "io_parallel",
                  strategy: str = "Latency", table_size: int = 1024, token_parallel: bool = False,
                  attention: str = "unrolled") -> HlsProject:
    """Write a complete hls4ml project for ``model_path`` into ``out_dir`` and check its firmware.

    ``token_parallel`` sets each per-token Dense's ``ParallelizationFactor`` to its token count (all tokens at
    once) instead of hls4ml's default 1 (one token per R cycles). ``attention`` is one of :data:`ATTENTION`."""
    if attention not in ATTENTION:
        raise HwsimError(f"--attention must be one of {', '.join(ATTENTION)}, got '{attention}'")
    data = precision or FixedType(16, 6)
    weight = weight_precision or data
    layers, outputs = build_layers(model_path)
    if io_type == "io_stream":
        stuck = [lay for lay in layers if lay.kind in PARALLEL_ONLY]
        if stuck:
            kinds = ", ".join(sorted({PARALLEL_ONLY[lay.kind] for lay in stuck}))
            names = ", ".join(lay.name for lay in stuck[:3]) + (", ..." if len(stuck) > 3 else "")
            raise HwsimError(f"{model_path}: --io stream: hls4ml 1.3 implements {kinds} only for io_parallel "
                             f"(layers {names}); use --io parallel")
    try:
        import hls4ml  # noqa: F401 - fail early with a clear message
        from hls4ml.model.graph import ModelGraph
        from hls4ml.utils.config import create_config
    except ImportError:
        raise HwsimError("hls4ml is not installed: pip install 'hls4ml==1.3.0'") from None
    if attention == "row-serial" or any(lay.kind in TABLE_FUNCTIONS for lay in layers):
        from mapping.fpga.hls_ext import register

        register()
    dicts, layer_conf = layer_dicts(layers, data, weight, table_size, attention)
    for lay in layers:
        if lay.kind in ("dense", "conv1d", "conv2d") and lay.attrs["vectors"] > 1:
            layer_conf[lay.name]["ParallelizationFactor"] = lay.attrs["vectors"] if token_parallel else 1
    out = Path(out_dir).resolve()
    if out.exists():
        shutil.rmtree(out)
    config = create_config(output_dir=str(out), project_name=PROJECT, backend=backend, part=part,
                           clock_period=clock_ns, io_type=io_type)
    config["HLSConfig"] = {"Model": {"Precision": {"default": str(data)}, "ReuseFactor": reuse, "Strategy": strategy},
                           "LayerName": layer_conf}
    if attention == "row-serial":  # a pipelined top would unroll the row loop
        config["HLSConfig"]["Model"]["PipelineStyle"] = "dataflow"
    inputs = [lay.name for lay in layers if lay.kind == "input"]
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # hls4ml prints progress and "Done"
            graph = ModelGraph.from_layer_list(config, dicts, inputs=inputs, outputs=outputs)
            graph.write()
    except HwsimError:
        raise
    except Exception as exc:  # noqa: BLE001 - hls4ml raises bare Exceptions/asserts
        raise HwsimError(f"{model_path}: hls4ml could not build the project ({type(exc).__name__}: {exc})") from None
    project = HlsProject(out, model_path, layers, graph, io_type, backend, token_parallel, attention)
    check_firmware(project)
    return project


def emitted_settings(project: HlsProject) -> dict[str, dict[str, int]]:
    """Per layer, what hls4ml actually configured: ``reuse`` (hls4ml replaces an invalid Resource-strategy reuse
    factor by the closest valid one) and ``parallelization`` (tokens at once, per-token Dense only)."""
    out: dict[str, dict[str, int]] = {}
    for layer in project.graph.get_layers():
        entry: dict[str, int] = {}
        rf = layer.get_attr("reuse_factor")
        if rf is not None:
            entry["reuse"] = int(rf)
        pf = layer.get_attr("parallelization_factor")
        if pf is not None:
            entry["parallelization"] = int(pf)
        out[layer.name] = entry
    return out


def emitted_reuse(project: HlsProject) -> dict[str, int]:
    """Layer name -> the reuse factor hls4ml emitted (feed to the estimate as ``layer_reuse``)."""
    return {name: e["reuse"] for name, e in emitted_settings(project).items() if "reuse" in e}


def check_firmware(project: HlsProject) -> None:
    """Every compute layer must be called in the top-level C++ (hls4ml may silently drop layers)."""
    text = project.firmware.read_text()
    missing = [lay.name for lay in project.layers if lay.kind in COMPUTE_KINDS and f"// {lay.name}\n" not in text]
    if missing:
        raise HwsimError(f"{project.firmware}: hls4ml dropped layer(s) {', '.join(missing)} from the firmware")


def csim(project: HlsProject, samples: int = 16, seed: int = 0) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Compile the C++ with g++ through hls4ml, run ``samples`` random inputs, compare with onnxruntime.

    Returns (max abs error, mean abs error, hls outputs, onnxruntime outputs)."""
    if shutil.which("g++") is None:
        raise HwsimError("--csim needs g++ on PATH (e.g. apt-get install g++)")
    import onnxruntime as ort

    session = ort.InferenceSession(project.model_path, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    shape = next(lay.shape for lay in project.layers if lay.kind == "input")
    x = np.random.default_rng(seed).normal(0.0, 1.0, (samples, *shape)).astype(np.float32)
    ref = np.concatenate([session.run(None, {inp.name: x[i: i + 1]})[0] for i in range(samples)]).reshape(samples, -1)
    try:
        project.graph.compile()
    except Exception as exc:  # noqa: BLE001 - compiler failures come back as bare exceptions
        raise HwsimError(f"{project.out_dir}: g++ could not compile the hls4ml project ({exc})") from None
    got = np.asarray(project.graph.predict(np.ascontiguousarray(x.reshape(samples, -1), dtype=np.float64)))
    got = got.reshape(samples, -1)
    err = np.abs(got - ref)
    return float(err.max()), float(err.mean()), got, ref


@dataclass
class SynthReport:
    """The C-synthesis figures of hls4ml's csynth report (``CSynthesisReport`` of ``parse_vivado_report``)."""

    tool: str
    latency_best: int
    latency_worst: int
    ii_min: int
    ii_max: int
    dsp: int
    lut: int
    ff: int
    bram18: int
    available: dict[str, int]
    target_clock_ns: float
    estimated_clock_ns: float

    @property
    def bram36(self) -> float:
        """BRAM in 36 Kb blocks (the report counts 18 Kb halves)."""
        return self.bram18 / 2


def synth_tool(backend: str) -> str | None:
    """The first synthesis tool for ``backend`` found on PATH, or None."""
    return next((tool for tool in SYNTH_TOOLS[backend] if shutil.which(tool)), None)


def synth_command(backend: str) -> str:
    """The command to run by hand in the project folder for C synthesis (as hls4ml's ``build()`` runs it; for Vitis,
    ``vitis-run --mode hls --tcl build_prj.tcl`` is the same; both read ``build_opt.tcl``)."""
    if backend == "Vivado":
        args = " ".join(f"{k}={v}" for k, v in SYNTH_ONLY.items())
        return f'vivado_hls -f build_prj.tcl "{args}"'
    return "vitis_hls -f build_prj.tcl"


def write_synth_options(project: HlsProject) -> None:
    """Make the project's ``build_opt.tcl`` (read by the Vitis ``build_prj.tcl``) run C synthesis only."""
    body = "".join(f"    {k:<10} {v}\n" for k, v in SYNTH_ONLY.items())
    (project.out_dir / "build_opt.tcl").write_text("array set opt {\n" + body + "}\n")


def parse_synth_report(out_dir: Path | str, tool: str = "") -> SynthReport:
    """Read the csynth report of the project in ``out_dir`` with hls4ml's reader (``parse_vivado_report``)."""
    from hls4ml.report import parse_vivado_report

    with contextlib.redirect_stdout(io.StringIO()) as said:
        report = parse_vivado_report(str(out_dir)) or {}
    rep = report.get("CSynthesisReport")
    if not rep:
        lines = [ln for ln in said.getvalue().splitlines() if ln.strip()]
        raise HwsimError(f"{out_dir}: no C-synthesis report found ({'; '.join(lines) or 'hls4ml read nothing'}); "
                         f"see the build logs there")

    def num(key: str) -> int:
        return int(float(rep.get(key, 0) or 0))

    avail = {k[len("Available"):].lower(): int(float(v)) for k, v in rep.items() if k.startswith("Available")}
    return SynthReport(tool, num("BestLatency"), num("WorstLatency"), num("IntervalMin"), num("IntervalMax"),
                       num("DSP"), num("LUT"), num("FF"), num("BRAM_18K"), avail,
                       float(rep.get("TargetClockPeriod", 0) or 0), float(rep.get("EstimatedClockPeriod", 0) or 0))


def synth(project: HlsProject) -> SynthReport | None:
    """Run hls4ml's build (C synthesis only) if the backend's tool is on PATH and read its report; None if no tool.

    ``vitis-run`` and ``vivado_hls`` go through ``ModelGraph.build``; a Vitis install that has only ``vitis_hls``
    runs ``vitis_hls -f build_prj.tcl`` with the same synthesis-only options."""
    tool = synth_tool(project.backend)
    if tool is None:
        return None
    write_synth_options(project)
    try:
        if tool == "vitis_hls":
            with open(project.out_dir / "build_stdout.log", "w") as log:
                done = subprocess.run([tool, "-f", "build_prj.tcl"], cwd=project.out_dir, stdout=log,
                                      stderr=subprocess.STDOUT, check=False)
            if done.returncode:
                raise HwsimError(f"{project.out_dir}: {tool} failed (exit {done.returncode}); see build_stdout.log")
        else:
            kwargs: dict[str, Any] = dict(SYNTH_ONLY)  # ints: the Vivado build pastes them into its command line
            if project.backend == "Vitis":
                kwargs["log_to_stdout"] = False
            with contextlib.redirect_stdout(io.StringIO()):
                project.graph.build(**kwargs)
    except HwsimError:
        raise
    except Exception as exc:  # noqa: BLE001 - hls4ml raises bare Exceptions
        raise HwsimError(f"{project.out_dir}: synthesis with {tool} failed ({exc})") from None
    return parse_synth_report(project.out_dir, tool)
