"""Speculative decoding on a target: draft steps, one verification pass per iteration, expected accepted tokens.

One iteration: the draft (a separate model on the same device, or Medusa-style heads on the target) proposes ``K``
tokens, then the target runs one pass over ``K + 1`` tokens after the cache (:meth:`Model.extend`) and keeps
``E = expected_tokens(K, A)`` tokens on average (:mod:`mapping.techniques.speculative`). Generating ``G`` tokens
after the prefill's first takes ``(G - 1) / E`` iterations; iteration ``i`` starts at context ``P + i x E``
(rounded). Every pass is lowered by the target's plugin and run by the engine; the last, fractional iteration is
counted by scaling all iterations' totals by ``((G - 1) / E) / ceil((G - 1) / E)``. A separate draft runs its own
prefill and ``K`` decode steps per iteration (``K`` forward passes: Leviathan et al.'s ``gamma`` runs of ``M_q``);
Medusa heads add their residual block and vocabulary projection to the verification pass (Cai et al. 2024). The
plain generation on the same target is simulated too, for the speedup.
"""

from __future__ import annotations

import math
from typing import Any

from hardware.errors import HwsimError
from hardware.targets import TargetBase
from mapping.op_costs import Precision
from mapping.target_plugin import TargetOptions
from mapping.techniques import TechniqueModel, Techniques
from mapping.techniques.speculative import acceptance_list, expected_tokens, medusa_heads
from mapping.workloads import Model, Workload
from simulator.engine import run
from simulator.simulate import PhaseResult, SimulationResult, _accumulate, prepare_run, simulate


def _merge(into: SimulationResult, part: SimulationResult, factor: float) -> None:
    """Add ``part``'s phases and tables to ``into``, every number times ``factor``."""
    for p in part.phases:
        into.phases.append(PhaseResult(p.name, p.passes, round(p.tokens * factor), p.latency_s * factor,
                                       p.energy_j * factor, p.dynamic_energy_j * factor, p.static_energy_j * factor))
    for level, n in part.traffic_bytes.items():
        into.traffic_bytes[level] += int(n * factor)
    for table_in, table_part in ((into.energy_by_action, part.energy_by_action), (into.busy_s, part.busy_s)):
        for k, v in table_part.items():
            table_in[k] += v * factor
    for table_in, table_part in ((into.blocks, part.blocks), (into.block_kinds, part.block_kinds), (into.ops, part.ops)):
        for key, row in table_part.items():
            dest = table_in.setdefault(key, {})
            for k, v in row.items():
                if isinstance(v, (int, float)):
                    dest[k] = dest.get(k, 0) + (v * factor if k != "calls" else v)
                elif isinstance(v, dict):
                    sub = dest.setdefault(k, {})
                    for kk, vv in v.items():
                        sub[kk] = sub.get(kk, 0.0) + vv * factor
    for key, row in part.kernel_rows.items():
        dest = into.kernel_rows.setdefault(key, {"kind": row["kind"], "calls": 0, "time_s": 0.0, "flops": 0.0,
                                                 "dram_bytes": 0})
        dest["calls"] += row["calls"]
        for k in ("time_s", "flops", "dram_bytes"):
            dest[k] += row[k] * factor
    into.trace.extend(part.trace)


def verification(model: Any, techniques: Techniques, batch: int, context: int, precision: Precision,
                 prompt_len: int) -> Workload:
    """One verification pass: ``K + 1`` tokens after ``context`` cached ones, with the Medusa heads if any."""
    k = techniques.spec_tokens
    w = model.extend(batch, context, k + 1, precision, prompt_len)
    if techniques.spec_heads:
        lm = [o for o in w.ops if o.block_kind == "lm_head" and o.matmul is not None]
        if not lm:
            raise HwsimError(f"--spec-heads: {model.path} has no recognised lm_head; Medusa heads sit beside it")
        d_model = model.ir.d_model or lm[-1].matmul.k
        w.ops = w.ops + medusa_heads(lm[-1], techniques.spec_heads, d_model)
    return w


def simulate_speculative(model: Model | TechniqueModel, target: TargetBase, batch: int, prompt_len: int, gen_len: int,
                         precision: Precision, options: dict[str, Any] | TargetOptions | None, techniques: Techniques,
                         draft: Model | TechniqueModel | None = None, trace_steps: int = 4,
                         plain: SimulationResult | None = None) -> SimulationResult:
    """Speculative generation of ``gen_len`` tokens after a ``prompt_len`` prompt; ``result.techniques`` holds
    ``speculative``: tokens per iteration, iterations, speedup over plain decoding, energy per accepted token.
    ``plain``: the plain generation of the same workload if already simulated (else it is)."""
    k = techniques.spec_tokens
    if techniques.draft and draft is None:
        raise HwsimError("--draft: the draft model was not loaded")
    if gen_len < 2:
        raise HwsimError("--gen-len must be >= 2 for speculative decoding (the first token comes from the prefill)")
    plugin, opts, precision, _, model = prepare_run(model, target, options, precision, None)
    if plain is None:
        plain = simulate(model, target, "generate", batch, prompt_len, gen_len, precision, opts, trace_steps=0)
    if draft is not None:
        plugin.check(draft, target, opts, precision)
        if draft.ir.architecture != "decoder-only":
            raise HwsimError(f"--draft {draft.path}: a draft model is a decoder-only model; this one is "
                             f"{draft.ir.architecture}")
    final = prompt_len + gen_len + k
    weights = plugin.weight_bytes(model, opts, precision) + (draft.weight_bytes(precision) if draft is not None else 0)
    kv = model.kv_cache_bytes(batch, final, precision, prompt_len) + (
        draft.kv_cache_bytes(batch, final, precision, prompt_len) if draft is not None else 0)
    result = SimulationResult(model.path, target, "generate", batch, prompt_len, gen_len, precision, opts.mode)
    result.options = opts
    result.memory_bytes = weights + kv
    result.capacity_bytes = plugin.check_fits(model.path + (f" with draft {draft.path}" if draft is not None else ""),
                                              target, opts, weights, kv)
    lowering = plugin.session(target, opts)

    def one(res: SimulationResult, workload: Workload, phase: PhaseResult, keep: bool) -> None:
        program = lowering.lower(workload)
        _accumulate(res, phase, run(program), workload, keep, res.latency_s, program.level("dram"))

    pre = PhaseResult("prefill")
    result.phases.append(pre)
    one(result, model.prefill(batch, prompt_len, precision), pre, True)
    if draft is not None:
        one(result, draft.prefill(batch, prompt_len, precision), pre, False)
    pre.tokens = batch * prompt_len
    rates = acceptance_list(k, techniques.acceptance)
    per_iter = expected_tokens(k, rates)
    iterations = (gen_len - 1) / per_iter
    whole = math.ceil(iterations)
    loop = SimulationResult(model.path, target, "generate", batch, prompt_len, gen_len, precision, opts.mode)
    dphase, vphase = PhaseResult("draft"), PhaseResult("verify")
    loop.phases = [dphase, vphase] if draft is not None else [vphase]
    for i in range(whole):
        context = prompt_len + round(i * per_iter)
        if draft is not None:
            for j in range(k):
                one(loop, draft.decode(batch, context + j, precision, prompt_len=prompt_len), dphase, i < trace_steps)
        one(loop, verification(model, techniques, batch, context, precision, prompt_len), vphase, i < trace_steps)
    for p in loop.phases:
        p.tokens = 0
    vphase.tokens = whole * batch  # rescaled below to the accepted tokens
    factor = iterations / whole
    _merge(result, loop, factor)
    result.phases[-1].tokens = batch * (gen_len - 1)
    spec_decode_s = sum(p.latency_s for p in result.phases if p.name != "prefill")
    spec_decode_j = sum(p.energy_j for p in result.phases if p.name != "prefill")
    plain_decode = next((p for p in plain.phases if p.name == "decode"), None)
    accepted = batch * (gen_len - 1)
    result.techniques = {**techniques.to_dict(), "speculative": {
        "variant": "medusa heads" if techniques.spec_heads else f"draft {draft.path if draft else ''}",
        "spec_tokens": k, "acceptance": rates, "tokens_per_iteration": per_iter, "iterations": iterations,
        "speedup": plain.latency_s / result.latency_s if result.latency_s else 0.0,
        "decode_speedup": (plain_decode.latency_s / spec_decode_s) if plain_decode and spec_decode_s else 0.0,
        "plain_latency_s": plain.latency_s, "plain_energy_j": plain.energy_j,
        "energy_per_accepted_token_j": spec_decode_j / accepted,
        "plain_energy_per_token_j": plain_decode.energy_j / accepted if plain_decode else 0.0,
        "draft_latency_s": sum(p.latency_s for p in result.phases if p.name == "draft"),
        "verify_latency_s": sum(p.latency_s for p in result.phases if p.name == "verify"),
    }}
    if not (math.isfinite(result.latency_s) and math.isfinite(result.energy_j)):
        raise HwsimError(f"{target.name}: the simulated latency or energy is not a finite number")
    return result


