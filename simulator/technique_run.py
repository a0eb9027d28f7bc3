"""Running a simulation with inference techniques (:mod:`mapping.techniques`): the CLI flags, the checks of what a
target kind cannot do, and the dispatch to plain or speculative generation.

Where a technique does not apply to a target it is an error naming the flag (expert parallelism needs devices
joined by a link: GPU targets; a PIM bank MAC reads 2-byte KV only, so quantised KV is refused there by the plugin;
the hls4ml FPGA design runs the graph as written, so an attention pattern runs on the FPGA overlay).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from hardware.errors import HwsimError
from hardware.targets import TargetBase
from mapping.op_costs import Precision
from mapping.techniques import TechniqueModel, Techniques
from mapping.workloads import Model
from simulator.simulate import SimulationResult, simulate


def technique_options(func: Callable) -> Callable:
    """Add the technique flags to a click command; the command receives ``techniques: Techniques``."""
    names = ("window", "sinks", "h2o", "block_sparse", "sparse_block", "kv_group", "kv_residual", "kv_block",
             "moe_routing", "moe_imbalance", "ep", "draft", "spec_tokens", "acceptance", "spec_heads")

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {n: kwargs.pop(n) for n in names}
        chosen = {n: v for n, v in values.items() if v is not None}
        if "acceptance" in chosen:
            try:
                chosen["acceptance"] = [float(a) for a in str(chosen["acceptance"]).split(",")]
            except ValueError:
                raise HwsimError(f"--acceptance {values['acceptance']}: give a rate (0.8) or one per drafted token "
                                 "(0.9,0.8,0.7)") from None
            if len(chosen["acceptance"]) == 1:
                chosen["acceptance"] = chosen["acceptance"][0]
        if chosen.get("spec_heads") and "spec_tokens" not in chosen:
            chosen["spec_tokens"] = chosen["spec_heads"]
        kwargs["techniques"] = Techniques.from_dict(chosen, "flags")
        return func(*args, **kwargs)

    opts = [
        ("--window", int, "W", "Sliding-window attention over the last W tokens (Mistral); the cache keeps W. Default: "
                               "the model's own window (GroupQueryAttention local_window_size); 0: dense."),
        ("--sinks", int, "S", "Also keep the first S tokens beside the window (StreamingLLM attention sinks)."),
        ("--h2o", int, "B", "Heavy-hitter KV budget: decode steps read and the cache keeps B tokens (H2O); 0: off."),
        ("--block-sparse", float, "D", "Block-sparse attention: each query reads a share D of the key blocks."),
        ("--sparse-block", int, "N", "Keys per block of --block-sparse [default: 64]."),
        ("--kv-group", int, "G", "Quantised KV cache: one fp16 scale and zero point per G values (KIVI); with "
                                 "--kv-cache int8|int4; 0: no scales counted."),
        ("--kv-residual", int, "R", "Keep the R most recent tokens of a quantised cache in the full format (KIVI); 0: none."),
        ("--kv-block", int, "N", "Paged KV cache in blocks of N tokens (vLLM): the last block's empty slots count; "
                                 "0: not paged."),
        ("--moe-routing", click.Choice(["expected", "balanced"]), None,
         "MoE expert weights read per pass: expected distinct experts under random routing [default] or the "
         "importer's balanced routing."),
        ("--moe-imbalance", float, "X", "Busiest device's MoE load over the mean (with --ep)."),
        ("--ep", int, "N", "Expert parallelism over N devices (GPU targets): experts split, two all-to-alls a layer."),
        ("--draft", str, "DRAFT.onnx", "Speculative decoding with this draft model (generate phase)."),
        ("--spec-tokens", int, "K", "Tokens the draft proposes per iteration."),
        ("--acceptance", str, "A", "Acceptance rate per drafted token, or one per position: 0.9,0.8,0.7 [default 0.8]."),
        ("--spec-heads", int, "K", "Self-speculative decoding with K Medusa-style heads on the target (no draft); 0: off."),
    ]
    for flag, type_, metavar, help_ in reversed(opts):
        wrapper = click.option(flag, type=type_, default=None, metavar=metavar, help=help_)(wrapper)
    return wrapper


def check_target(techniques: Techniques, target: TargetBase, options: dict[str, Any], phase: str) -> dict[str, Any]:
    """Refuse what ``target``'s kind cannot do; returns the options to use."""
    options = dict(options)
    if techniques.ep > 1 and target.kind != "gpu":
        raise HwsimError(f"--ep {techniques.ep}: expert parallelism needs several devices joined by a link; "
                         f"{target.name} is a {target.kind} target with one device (GPU targets have NVLink)")
    pattern = bool(techniques.window) or techniques.block_sparse < 1.0
    if target.kind == "fpga" and pattern and phase == "prefill":
        if options.get("design") == "hls4ml":
            raise HwsimError("--window/--block-sparse: the hls4ml design runs the graph's dense attention as "
                             "written; use --set design=overlay (or auto) for an attention pattern")
        options.setdefault("design", "overlay")
    if techniques.speculative and phase != "generate":
        raise HwsimError(f"--draft/--spec-heads: speculative decoding is a way to generate; use --phase generate "
                         f"(got {phase})")
    if techniques.draft and options.get("host_dispatches") is not None:
        raise HwsimError("--set host_dispatches is one model's framework count per pass; with --draft the draft model "
                         "would be charged the target's: drop host_dispatches (each model is then charged its own "
                         "graph's ops)")
    return options


def check_precision(techniques: Techniques, precision: Precision) -> None:
    """Scales need an integer cache format."""
    if (techniques.kv_group or techniques.kv_residual) and (precision.kv_cache or "") not in ("int8", "int4"):
        raise HwsimError("--kv-group/--kv-residual: scales and a full-format residual belong to a quantised cache; "
                         "add --kv-cache int8 or --kv-cache int4")


def wrap(model: Model, techniques: Techniques) -> Model | TechniqueModel:
    """The model with the techniques' workload transforms (the model itself when none applies)."""
    if techniques.transforms_workloads() or techniques.window is None and _has_window(model) or model.ir.moe:
        return TechniqueModel(model, techniques)
    return model


def _has_window(model: Model) -> bool:
    from mapping.techniques import model_window

    return model_window(model) > 0


def run_simulation(model: Model, target: TargetBase, phase: str, batch: int, prompt_len: int, gen_len: int,
                   precision: Precision, options: dict[str, Any], techniques: Techniques,
                   progress: Callable[[int, int], None] | None = None, trace_steps: int = 4,
                   parallel: Any = None) -> SimulationResult:
    """``simulate`` with ``techniques``: transformed workloads, or speculative generation; ``parallel`` (a
    :class:`mapping.parallel.Parallel`) spreads a non-speculative run over several devices."""
    options = check_target(techniques, target, options, phase)
    check_precision(techniques, precision)
    wrapped = wrap(model, techniques)
    if techniques.speculative:
        from simulator.speculative import simulate_speculative

        if parallel is not None and parallel.devices > 1:
            raise HwsimError("speculative decoding runs on one device: drop --devices/--parallel, or the "
                             "speculative flags (--draft, --spec-tokens, --spec-heads)")
        draft = None
        if techniques.draft:
            dm = Model(techniques.draft)
            draft = wrap(dm, Techniques(**{**techniques.__dict__, "ep": 1, "moe_imbalance": 1.0, "draft": None,
                                             "spec_tokens": 0, "spec_heads": 0}))
        return simulate_speculative(wrapped, target, batch, prompt_len, gen_len, precision, options, techniques, draft,
                                    trace_steps)
    result = simulate(wrapped, target, phase, batch, prompt_len, gen_len, precision, options, progress, trace_steps,
                      parallel=parallel)
    if isinstance(wrapped, TechniqueModel):
        info: dict[str, Any] = techniques.to_dict()
        if wrapped.window:
            info["window"] = wrapped.window
            info["window_source"] = wrapped.window_source
        if techniques.kv_block:
            final = prompt_len + (gen_len - 1 if phase == "generate" else 0) + (1 if phase == "decode" else 0)
            info["kv_fragmentation_bytes"] = wrapped.fragmentation_bytes(batch, final, result.precision)
        info["kv_cache_bytes"] = wrapped.kv_cache_bytes(batch, prompt_len + (gen_len - 1 if phase == "generate" else 0)
                                                        + (1 if phase == "decode" else 0), result.precision, prompt_len)
        result.techniques = info
    return result


def technique_lines(result: SimulationResult) -> str:
    """What the techniques set and bought, for the summary."""
    t = dict(result.techniques)
    spec = t.pop("speculative", None)
    lines = []
    shown = {k: v for k, v in t.items() if k not in ("window_source", "kv_cache_bytes", "kv_fragmentation_bytes")}
    if shown:
        src = f" (window from {t['window_source']})" if t.get("window_source") else ""
        lines.append("techniques " + ", ".join(f"{k}={v}" for k, v in shown.items()) + src)
    if "kv_cache_bytes" in t:
        frag = t.get("kv_fragmentation_bytes")
        lines.append(f"KV cache   {t['kv_cache_bytes'] / 2**20:,.2f} MiB at the end of the run"
                     + (f", of which {frag / 2**20:,.3f} MiB page fragmentation" if frag is not None else ""))
    if spec:
        lines.append(f"speculative {spec['variant']}: K={spec['spec_tokens']}, {spec['tokens_per_iteration']:.3f} tokens "
                     f"per iteration, {spec['iterations']:.1f} iterations; speedup {spec['speedup']:.3f}x over plain "
                     f"decoding ({spec['decode_speedup']:.3f}x on the decode part); energy per accepted token "
                     f"{spec['energy_per_accepted_token_j'] * 1e3:.4f} mJ "
                     f"(plain {spec['plain_energy_per_token_j'] * 1e3:.4f} mJ)")
    return "\n".join(lines)
