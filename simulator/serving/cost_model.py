"""The cost of one serving iteration, from the target's own plugin and component models.

An iteration processes prefill *chunks* (``n`` new prompt tokens of a sequence that already has ``ctx`` tokens
cached; ``ctx = 0`` for a whole prompt) and *decodes* (one new token of a sequence with ``c`` tokens cached). Every
cost below comes from lowering a workload of :class:`mapping.workloads.Model` through the target's plugin and
running the engine on it; nothing is fitted. The rule (tested against exact per-context costing in
``tests/test_serving.py``):

- **decodes only**: one ``Model.decode(B, c_mean)`` workload, ``c_mean`` the mean context of the ``B`` sequences.
  Projections and MLPs see ``B`` tokens either way; a paged decode-attention kernel
  reads every sequence's cache, ``sum(c_i) = B * c_mean`` tokens, so the mean keeps the bytes and FLOPs of the
  attention exact up to the rounding.
- **one whole prompt only**: one ``Model.prefill(1, n)`` workload, exactly ``simulate --phase prefill``.
- **anything else** (several prompts, chunks after a cached prefix, prefills mixed with decodes): the pass's
  tasks are split into attention-core tasks (score, softmax, PV: what depends on each sequence's context) and the
  rest (what depends only on the number of tokens). The iteration costs the rest of a pass over all ``T`` tokens
  (``Model.prefill(1, T)`` less its attention: every token one row of every GEMM), plus the ``k`` chunks'
  attention as one batched kernel, ``A_prefill(k, e) - A_prefill(k, s)`` (the rows the chunks add to a causal
  prefill), with ``e`` and ``s`` the root mean square of the chunks' end and start positions (attention work grows
  with the square of the length, so the RMS keeps the sum over chunks; equal chunks are exact), plus the decodes'
  attention ``A_decode(B, c_mean)`` (prefill and decode attention are separate kernels, as in vLLM). The rest's
  time is the program's makespan minus the attention tasks' busy time, so on a single in-order stream (GPU) the
  parts add up exactly.

Shapes (batch, chunk count, token counts, chunk ends) are padded up to :mod:`.grid` points (chunk starts down; mean decode
contexts on a grid twice as fine, then to whole KV blocks), then every distinct shape is lowered and run once and
cached by its exact key.
Logits are computed for every token of a pass (the workload's LM head), where serving stacks compute them for the
last token of each prompt only.
Energy is the tasks' dynamic energy plus the device's static power over the iteration's time.

Multi-device runs (``parallel``, :mod:`mapping.parallel`): every pass is lowered over all devices. With ``pp``
pipeline stages a pass's run also gives each stage's span; :meth:`IterationCoster.cost` returns the iteration's
per-stage profile (:attr:`IterationCost.stages`: the link gap before each stage and its busy time, scaled to the
iteration's time), which :func:`simulator.serving.loop.serve_pipelined` uses to overlap the micro-batches of
``pp`` virtual engines across the stages.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

from hardware.errors import HwsimWarning
from hardware.targets import TargetBase
from mapping.op_costs import Precision
from mapping.parallel import Parallel, make_lowering
from mapping.target_plugin import TargetOptions, plugin_for
from mapping.workloads import Model, Workload
from simulator.engine import run
from simulator.serving.grid import pad, pad_down, pad_to_block


@dataclass(frozen=True)
class PassCost:
    """One lowered and run pass: makespan, attention-core busy time, dynamic energies (s, J) and static power (W)."""

    time_s: float
    attention_s: float
    energy_j: float
    attention_energy_j: float
    static_w: float
    #: (start, end) of each pipeline stage's tasks within the pass (s); empty without stages
    stage_spans: tuple[tuple[float, float], ...] = ()

    @property
    def rest_s(self) -> float:
        """Time of everything but the attention cores (s)."""
        return max(0.0, self.time_s - self.attention_s)

    @property
    def rest_energy_j(self) -> float:
        """Dynamic energy of everything but the attention cores (J)."""
        return max(0.0, self.energy_j - self.attention_energy_j)


@dataclass(frozen=True)
class IterationCost:
    """What one iteration takes: time (s), energy (J, static included) and, with pipeline stages, the time each
    stage spends on it."""

    time_s: float
    energy_j: float
    #: dynamic energy (J): ``energy_j`` without the static power over ``time_s``
    dynamic_j: float = 0.0
    #: per pipeline stage, (link gap before it, busy time) in s, summing to about ``time_s``; empty without stages
    stages: tuple[tuple[float, float], ...] = ()

    @property
    def bottleneck_s(self) -> float:
        """The busiest stage's time (s): ``time_s`` without stages."""
        return max((d for _, d in self.stages), default=self.time_s)


def _rms(values: list[int]) -> int:
    """Root mean square of ``values``, rounded up (0 for none)."""
    return math.ceil(math.sqrt(sum(v * v for v in values) / len(values))) if values else 0


class IterationCoster:
    """Costs iterations of ``model`` on ``target``; every distinct pass shape is lowered and run once."""

    def __init__(self, model: Model, target: TargetBase, options: TargetOptions, precision: Precision,
                 per_octave: int = 8, block_size: int = 16, parallel: Parallel | None = None) -> None:
        self.model, self.target, self.options, self.precision = model, target, options, precision
        self.parallel = parallel if parallel is not None and parallel.devices > 1 else None
        self.stages = self.parallel.pp if self.parallel is not None else 1
        self.plugin = plugin_for(target.kind)
        self.per_octave, self.block_size = per_octave, block_size
        self._passes: dict[tuple, PassCost] = {}
        self._iterations: dict[tuple, IterationCost] = {}
        self._core = self._core_ops()

    def _core_ops(self) -> set[str]:
        names: set[str] = set()
        for b in self.model.ir.attentions("self"):
            a = b.attention
            if a is not None and a.causal:
                names |= set(a.core)
        return names

    @property
    def static_w(self) -> float:
        """The device's static power (W), burned idle or busy (from the passes run; 0 before any)."""
        return next((p.static_w for p in self._passes.values()), 0.0)

    @property
    def shapes_run(self) -> int:
        """Distinct passes lowered and run so far."""
        return len(self._passes)

    # -- passes ----------------------------------------------------------------------------------------------
    def _run(self, key: tuple, workload: Workload) -> PassCost:
        program = make_lowering(self.plugin, self.target, self.options, self.parallel).lower(workload)
        result = run(program)
        attention = attention_j = 0.0
        spans: dict[str, list[float]] = {}
        for rec in result.records:
            task = rec.task
            if task.op in self._core or task.op.endswith(".attention"):
                attention += rec.end_s - rec.start_s
                attention_j += task.energy_j
            if self.stages > 1 and task.resource.startswith("s"):
                span = spans.setdefault(task.resource.split(".", 1)[0], [rec.start_s, rec.end_s])
                span[0], span[1] = min(span[0], rec.start_s), max(span[1], rec.end_s)
        static_w = result.static_energy_j / result.latency_s if result.latency_s > 0 else 0.0
        ordered = tuple(tuple(spans[k]) for k in sorted(spans, key=lambda k: int(k[1:]) if k[1:].isdigit() else 0))
        cost = PassCost(result.latency_s, min(attention, result.latency_s), result.dynamic_energy_j,
                        attention_j, static_w, ordered)  # type: ignore[arg-type]
        self._passes[key] = cost
        return cost

    def decode_pass(self, batch: int, context: int) -> PassCost:
        """``Model.decode(batch, context)`` lowered and run (cached by exact key)."""
        key = ("decode", batch, context)
        if key in self._passes:
            return self._passes[key]
        return self._run(key, self.model.decode(batch, context, self.precision, prompt_len=1))

    def prefill_pass(self, tokens: int, quiet: bool = False, batch: int = 1) -> PassCost:
        """``Model.prefill(batch, tokens)`` lowered and run (cached by exact key). ``quiet``: the pass stands for
        the token-dependent work of a whole iteration, so a position-table warning about ``tokens`` would be
        wrong."""
        key = ("prefill", batch, tokens)
        if key in self._passes:
            return self._passes[key]
        if not quiet:
            return self._run(key, self.model.prefill(batch, tokens, self.precision))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", HwsimWarning)
            workload = self.model.prefill(batch, tokens, self.precision)
        return self._run(key, workload)

    # -- iterations ------------------------------------------------------------------------------------------
    def shape_key(self, chunks: list[tuple[int, int]], contexts: list[int]) -> tuple:
        """The padded shape an iteration is costed at: (chunks, RMS chunk end, RMS chunk start, tokens, decode
        batch, mean decode context). Counts and ends are padded up, starts down, to grid points."""
        b, g = self.block_size, self.per_octave
        k = len(chunks)
        end = pad(_rms([ctx + n for n, ctx in chunks]), g) if k else 0
        start = pad_down(int(_rms([ctx for _, ctx in chunks])), g) if k else 0
        start = min(start, end - 1) if k else 0
        tokens = pad(sum(n for n, _ in chunks) + len(contexts), g)
        batch = pad(len(contexts), g) if contexts else 0
        mean = pad_to_block(pad(-(-sum(contexts) // len(contexts)), 2 * g), b) if contexts else 0
        return pad(k, g) if k else 0, k, end, start, tokens, batch, mean

    def cost(self, chunks: list[tuple[int, int]], contexts: list[int]) -> IterationCost:
        """Time and energy of an iteration with prefill ``chunks`` (new tokens, cached before) and decodes at
        ``contexts`` (tokens cached before the step)."""
        key = self.shape_key(chunks, contexts)
        if key not in self._iterations:
            self._iterations[key] = self._cost(*key)
        return self._iterations[key]

    @staticmethod
    def _profile(p: PassCost, time_s: float) -> tuple[tuple[float, float], ...]:
        """Pass ``p``'s stage profile (gap before each stage, its span) scaled to ``time_s``."""
        if not p.stage_spans or p.time_s <= 0:
            return ()
        scale, out, prev = time_s / p.time_s, [], 0.0
        for a, b in p.stage_spans:
            out.append((max(0.0, a - prev) * scale, (b - a) * scale))
            prev = b
        return tuple(out)

    def _made(self, p: PassCost, time_s: float, dynamic_j: float) -> IterationCost:
        return IterationCost(time_s, dynamic_j + p.static_w * time_s, dynamic_j, self._profile(p, time_s))

    def _cost(self, k_pad: int, k: int, end: int, start: int, tokens: int, batch: int, context: int) -> IterationCost:
        if not k and not batch:
            return IterationCost(0.0, 0.0)
        if not k:
            p = self.decode_pass(batch, context)
            return self._made(p, p.time_s, p.energy_j)
        if not batch and k == 1 and start == 0:
            p = self.prefill_pass(end)
            return self._made(p, p.time_s, p.energy_j)
        rest = self.prefill_pass(tokens, quiet=True)
        time_s, energy = rest.rest_s, rest.rest_energy_j
        share = k / k_pad  # the attention of k chunks as that share of a k_pad-wide batched kernel
        whole = self.prefill_pass(end, quiet=True, batch=k_pad)
        time_s += whole.attention_s * share
        energy += whole.attention_energy_j * share
        if start:
            before = self.prefill_pass(start, quiet=True, batch=k_pad)
            time_s -= before.attention_s * share
            energy -= before.attention_energy_j * share
        if batch:
            dec = self.decode_pass(batch, context)
            time_s += dec.attention_s
            energy += dec.attention_energy_j
        time_s, energy = max(time_s, rest.rest_s), max(energy, rest.rest_energy_j)
        return self._made(rest, time_s, energy)

    def describe(self) -> dict[str, Any]:
        """Cache statistics for reports."""
        return {"passes_run": len(self._passes), "iteration_shapes": len(self._iterations),
                "per_octave": self.per_octave, "block_size": self.block_size}
