"""Serving with inference techniques (``hwsim serve`` with ``simulate``'s technique flags).

Per-pass techniques (KV-cache formats and scales, attention windows and sinks, H2O, block-sparse attention, MoE
routing) are the workload transforms of :mod:`mapping.techniques`: the coster lowers the
:class:`mapping.techniques.TechniqueModel`'s passes, and the KV capacity is sized with its bytes per token (a
quantised cache holds more tokens, so more requests run at once). The paged allocator still reserves every token
of a sequence: a window or an H2O budget caps the keys read, not the blocks held (conservative).

Speculative decoding (``--draft``/``--spec-heads``) is costed in expectation: one scheduler decode step of a
sequence stands for ``1 / E`` of a speculative iteration (``K`` draft decode steps and one verification pass over
``K + 1`` tokens, :func:`simulator.speculative.verification`), ``E`` the expected accepted tokens per iteration
(:func:`mapping.techniques.speculative.expected_tokens`). A request's TPOT is then the mean time per accepted
token of ``simulate --draft/--spec-heads`` (its tokens arrive in bursts of accepted tokens, which the mean hides);
prefills also run the draft's prefill. In an iteration that mixes prefill chunks with decodes, the decodes'
token-dependent work is costed as one row each, not ``(K + 1) / E`` (the verification's extra rows are left out
there); the decodes' attention is the speculative one. The ``K`` speculative KV slots per sequence are not
reserved.
"""

from __future__ import annotations

import warnings
from typing import Any

from hardware.errors import HwsimError, HwsimWarning
from hardware.targets import TargetBase
from mapping.op_costs import Precision
from mapping.parallel import Parallel
from mapping.target_plugin import TargetOptions
from mapping.techniques import Techniques
from mapping.techniques.speculative import expected_tokens
from mapping.workloads import Model
from simulator.serving.cost_model import IterationCoster, PassCost


def _sum(parts: list[PassCost], scale: float = 1.0) -> PassCost:
    """Passes run one after another on the device, every figure times ``scale``; with pipeline stages, stage ``j``'s
    span runs from its first task in the first pass to its last task in the last (each pass shifted by the ones
    before it)."""
    spans: dict[int, tuple[float, float]] = {}
    offset = 0.0
    for p in parts:
        for j, (a, b) in enumerate(p.stage_spans):
            a, b = a + offset, b + offset
            spans[j] = (min(spans[j][0], a), max(spans[j][1], b)) if j in spans else (a, b)
        offset += p.time_s
    return PassCost(sum(p.time_s for p in parts) * scale, sum(p.attention_s for p in parts) * scale,
                    sum(p.energy_j for p in parts) * scale, sum(p.attention_energy_j for p in parts) * scale,
                    parts[0].static_w, tuple((a * scale, b * scale) for _, (a, b) in sorted(spans.items())))


class SpeculativeCoster(IterationCoster):
    """An :class:`IterationCoster` whose decode step is ``1 / E`` of a speculative iteration (module docstring)."""

    def __init__(self, model: Any, target: TargetBase, options: TargetOptions, precision: Precision,
                 techniques: Techniques, draft: Any = None, per_octave: int = 8, block_size: int = 16) -> None:
        super().__init__(model, target, options, precision, per_octave, block_size, None)
        self.techniques, self.draft = techniques, draft
        self.tokens_per_iteration = expected_tokens(techniques.spec_tokens, techniques.acceptance)
        if draft is not None:  # the draft's attention cores count as attention in mixed iterations too
            for b in draft.ir.attentions("self"):
                if b.attention is not None and b.attention.causal:
                    self._core |= set(b.attention.core)

    def decode_pass(self, batch: int, context: int) -> PassCost:
        """One accepted token per sequence: (``K`` draft steps + the verification pass) / ``E``."""
        from simulator.speculative import verification

        key = ("decode", batch, context)
        if key in self._passes:
            return self._passes[key]
        k = self.techniques.spec_tokens
        vkey = ("verify", batch, context)
        parts = [self._passes[vkey] if vkey in self._passes else
                 self._run(vkey, verification(self.model, self.techniques, batch, context, self.precision, 1))]
        if self.draft is not None:
            for j in range(k):
                dkey = ("draft", batch, context + j)
                parts.append(self._passes[dkey] if dkey in self._passes else
                             self._run(dkey, self.draft.decode(batch, context + j, self.precision, prompt_len=1)))
        cost = _sum(parts, 1.0 / self.tokens_per_iteration)
        self._passes[key] = cost
        return cost

    def prefill_pass(self, tokens: int, quiet: bool = False, batch: int = 1) -> PassCost:
        """The target's prefill pass, plus the draft model's over the same tokens."""
        own = super().prefill_pass(tokens, quiet, batch)
        if self.draft is None:
            return own
        key = ("draft-prefill", batch, tokens)
        if key not in self._passes:
            with warnings.catch_warnings():
                if quiet:
                    warnings.simplefilter("ignore", HwsimWarning)
                workload = self.draft.prefill(batch, tokens, self.precision)
            self._run(key, workload)
        return _sum([own, self._passes[key]])


def technique_models(model: Model, target: TargetBase, options: dict[str, Any] | TargetOptions | None,
                     precision: Precision, techniques: Techniques,
                     parallel: Parallel | None) -> tuple[Any, Any, dict[str, Any] | TargetOptions | None]:
    """(the model with its workload transforms, the wrapped draft model or None, the options after the target
    checks) for serving with ``techniques``; what a target cannot do is an error naming the flag."""
    from simulator.technique_run import check_precision, check_target, wrap

    if not isinstance(options, TargetOptions):
        options = check_target(techniques, target, dict(options or {}), "generate")
    check_precision(techniques, precision)
    served = wrap(model, techniques)
    draft = None
    if techniques.speculative:
        if parallel is not None and parallel.devices > 1:
            raise HwsimError("speculative decoding runs on one device: drop --devices/--parallel, or the "
                             "speculative flags (--draft, --spec-tokens, --spec-heads)")
        if techniques.draft:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", HwsimWarning)
                dm = Model(techniques.draft)
            if dm.ir.architecture != "decoder-only":
                raise HwsimError(f"--draft {techniques.draft}: a draft model is a decoder-only model; this one is "
                                 f"{dm.ir.architecture}")
            draft = wrap(dm, Techniques(**{**techniques.__dict__, "ep": 1, "moe_imbalance": 1.0, "draft": None,
                                             "spec_tokens": 0, "spec_heads": 0}))
    return served, draft, options
