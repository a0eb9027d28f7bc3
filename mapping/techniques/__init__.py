"""Inference techniques as workload transforms that every target understands.

:class:`Techniques` holds the choices (attention pattern, KV-cache format/eviction/paging, MoE routing and expert
parallelism, speculative decoding); :class:`TechniqueModel` wraps a :class:`mapping.workloads.Model` and returns
transformed workloads from the same methods (``prefill``, ``decode``, ``extend``, ``generate``, ``kv_cache_bytes``,
``weight_bytes``), so a target plugin, the engine, ``simulate``, sweeps and serving use it unchanged. What each
transform does, and its sources, is in the modules: :mod:`.attention`, :mod:`.kv`, :mod:`.moe`, :mod:`.speculative`.
Speculative decoding is a different generation loop (:mod:`simulator.speculative`); its settings live here so that
one object describes a run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from hardware.dtypes import BITS
from hardware.errors import HwsimError
from mapping.op_costs import OpCost, Precision
from mapping.techniques.attention import decode_keys, prefill_keys, scale_core
from mapping.techniques.kv import kv_factor, resident_tokens
from mapping.techniques.moe import all_to_all_bytes, balanced_experts, device_share, expected_experts, scale_op
from mapping.workloads import Generation, Model, Workload


@dataclass
class Techniques:
    """What to apply. Defaults change nothing (``window=None`` takes the model's own sliding window, if any).

    Token counts are per sequence. ``acceptance``: one rate or a rate per drafted position.
    """

    window: int | None = None
    sinks: int = 0
    h2o: int = 0
    block_sparse: float = 1.0
    sparse_block: int = 64
    kv_group: int = 0
    kv_residual: int = 0
    kv_block: int = 0
    moe_routing: str = "expected"
    moe_imbalance: float = 1.0
    ep: int = 1
    draft: str | None = None
    spec_tokens: int = 0
    acceptance: float | list[float] = 0.8
    spec_heads: int = 0
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    FLAGS = {"window": "--window", "sinks": "--sinks", "h2o": "--h2o", "block_sparse": "--block-sparse",
             "sparse_block": "--sparse-block", "kv_group": "--kv-group", "kv_residual": "--kv-residual",
             "kv_block": "--kv-block", "moe_routing": "--moe-routing", "moe_imbalance": "--moe-imbalance",
             "ep": "--ep", "draft": "--draft", "spec_tokens": "--spec-tokens", "acceptance": "--acceptance",
             "spec_heads": "--spec-heads"}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str = "techniques") -> Techniques:
        """From ``{name: value}`` (a sweep axis entry; the CLI flags' names with underscores); errors name the key."""
        data = dict(data or {})
        names = [f.name for f in dataclasses.fields(cls) if f.name != "extra"]
        for key in data:
            if key not in names:
                raise HwsimError(f"{where}: unknown technique '{key}'; known: {', '.join(names)}")
        if isinstance(data.get("acceptance"), str):
            data["acceptance"] = [float(a) for a in data["acceptance"].split(",")]
        try:
            t = cls(**data)
        except TypeError as exc:
            raise HwsimError(f"{where}: {exc}") from None
        t.validate()
        return t

    def validate(self) -> None:
        """One-line errors naming the flag."""
        for name in ("sinks", "h2o", "kv_group", "kv_residual", "kv_block", "spec_tokens", "spec_heads"):
            if int(getattr(self, name)) < 0:
                raise HwsimError(f"{self.FLAGS[name]} must be >= 0, got {getattr(self, name)}")
        if self.window is not None and self.window < 0:
            raise HwsimError(f"--window must be >= 0 (0: dense attention), got {self.window}")
        if self.sinks and not self.window:
            raise HwsimError("--sinks: attention sinks are kept beside a sliding window; give --window W too")
        if not 0.0 < self.block_sparse <= 1.0:
            raise HwsimError(f"--block-sparse {self.block_sparse}: the share of key blocks read, in (0, 1]")
        if self.sparse_block < 1:
            raise HwsimError(f"--sparse-block must be >= 1, got {self.sparse_block}")
        if self.moe_routing not in ("expected", "balanced"):
            raise HwsimError(f"--moe-routing {self.moe_routing}: use expected (uniform random routing) or balanced")
        if self.moe_imbalance < 1.0:
            raise HwsimError(f"--moe-imbalance {self.moe_imbalance}: the busiest device's load over the mean, >= 1")
        if self.ep < 1:
            raise HwsimError(f"--ep must be >= 1, got {self.ep}")
        if self.moe_imbalance > 1.0 and self.ep == 1:
            raise HwsimError("--moe-imbalance: on one device the experts run one after another and the imbalance "
                             "changes no total; it sets the busiest device's share with expert parallelism: add --ep N")
        if self.draft and self.spec_heads:
            raise HwsimError("--draft and --spec-heads: choose a draft model or Medusa-style heads, not both")
        if (self.draft or self.spec_heads) and self.spec_tokens < 1:
            raise HwsimError("--spec-tokens K (>= 1): how many tokens the draft proposes per iteration")
        if self.spec_tokens and not (self.draft or self.spec_heads):
            raise HwsimError("--spec-tokens needs a draft: --draft DRAFT.onnx, or --spec-heads for Medusa-style heads")
        if self.spec_heads and self.spec_heads != self.spec_tokens:
            raise HwsimError(f"--spec-heads {self.spec_heads}: each Medusa head drafts one token; use --spec-tokens "
                             f"{self.spec_heads} (or leave --spec-tokens out)")

    @property
    def speculative(self) -> bool:
        """Whether the run is speculative decoding."""
        return bool(self.draft or self.spec_heads)

    def transforms_workloads(self) -> bool:
        """Whether any per-pass transform applies (speculation aside)."""
        return bool(self.window or self.h2o or self.block_sparse < 1.0 or self.kv_group or self.kv_residual
                    or self.kv_block or self.ep > 1)

    def describe(self) -> str:
        """A short label of what is set (``dense`` when nothing is)."""
        parts = []
        for f in dataclasses.fields(self):
            if f.name in ("extra",):
                continue
            value = getattr(self, f.name)
            if value != f.default and not (f.name == "acceptance" and not self.speculative):
                parts.append(f"{f.name}={value}")
        return ", ".join(parts) or "dense"

    def to_dict(self) -> dict[str, Any]:
        """The set fields (for ``--json``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "extra" and getattr(self, f.name) != f.default}


def model_window(model: Model) -> int:
    """The sliding window the graph declares (onnxruntime's GroupQueryAttention ``local_window_size``), 0 if none."""
    windows = {b.attrs["local_window"] for b in model.ir.blocks if b.kind == "attention" and b.attrs.get("local_window")}
    return min(windows) if windows else 0


class TechniqueModel:
    """A :class:`Model` whose workloads carry the techniques of ``techniques``; anything else is the model's."""

    def __init__(self, model: Model, techniques: Techniques) -> None:
        self.model = model
        self.techniques = t = techniques
        t.validate()
        self.window = model_window(model) if t.window is None else t.window
        self.window_source = ("the model" if t.window is None and self.window else "--window") if self.window else ""
        self.budget = 0  # tokens the cache keeps per sequence (0: all)
        if self.window:
            self.budget = self.window + t.sinks
        if t.h2o:
            self.budget = min(self.budget, t.h2o) if self.budget else t.h2o
        moe = model.ir.moe
        if t.ep > 1 and not moe:
            raise HwsimError(f"--ep {t.ep}: expert parallelism splits the experts of a mixture-of-experts model; "
                             f"{model.path} has no MoE layers")
        self._expert_blocks = {b.name for b in model.ir.blocks if b.kind == "mlp" and b.attrs.get("expert")}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def for_phase(self, phase: str) -> TechniqueModel:
        """Workloads of every phase come from this object."""
        return self

    def with_kv_heads(self, kv_heads: int | None) -> TechniqueModel:
        """The same techniques over the model's :meth:`Model.with_kv_heads` (``None``: this object)."""
        return self if kv_heads is None else TechniqueModel(self.model.with_kv_heads(kv_heads), self.techniques)

    # -- sizes ---------------------------------------------------------------------------------------------
    def _kv_dtype(self, precision: Precision) -> str:
        return precision.kv_cache or self.model._kv_dtype(precision)

    def kv_cache_bytes(self, batch: int, tokens: int, precision: Precision, prompt: int | None = None) -> int:
        """Bytes of the cache for ``tokens`` positions: kept tokens (eviction), paged blocks, scales."""
        kept = resident_tokens(tokens, self.budget, self.techniques.kv_block)
        raw = self.model.kv_cache_bytes(batch, kept, precision, prompt)
        return int(raw * kv_factor(self._kv_dtype(precision), kept, self.techniques.kv_group,
                                   self.techniques.kv_residual))

    def fragmentation_bytes(self, batch: int, tokens: int, precision: Precision) -> int:
        """Bytes of the cache's last, partly filled pages (0 without ``kv_block``)."""
        if not self.techniques.kv_block:
            return 0
        kept = min(tokens, self.budget) if self.budget else tokens
        pages = self.kv_cache_bytes(batch, tokens, precision)
        dense = self.model.kv_cache_bytes(batch, kept, precision)
        return max(0, pages - int(dense * kv_factor(self._kv_dtype(precision), kept, self.techniques.kv_group,
                                                      self.techniques.kv_residual)))

    def expert_weight_bytes(self, precision: Precision) -> int:
        """Bytes of the expert MLPs' weights (all experts of all MoE layers)."""
        if not self._expert_blocks:
            return 0
        if not hasattr(self, "_expert_bytes"):
            w = self.model.prefill(1, max(1, self.model.ir.moe["experts"]), precision)
            self._expert_bytes = sum(o.weight_bytes for o in w.ops if o.block in self._expert_blocks)
        return self._expert_bytes

    def weight_bytes(self, precision: Precision) -> int:
        """Bytes of the weights one device holds (with ``ep`` devices, ``1 / ep`` of the experts)."""
        total = self.model.weight_bytes(precision)
        if self.techniques.ep > 1:
            total -= int(self.expert_weight_bytes(precision) * (1 - 1 / self.techniques.ep))
        return total

    # -- workloads -----------------------------------------------------------------------------------------
    def prefill(self, batch: int, prompt_len: int, precision: Precision | None = None) -> Workload:
        """The prompt pass with the attention pattern, KV format and MoE routing applied."""
        precision = precision or Precision()
        w = self.model.prefill(batch, prompt_len, precision)
        t = self.techniques
        windowed = 0 < self.window < prompt_len
        if windowed or t.block_sparse < 1.0:
            keys = prefill_keys(prompt_len, self.window if windowed else 0, t.sinks, t.block_sparse, t.sparse_block)
            core = self._core_ops(w)
            w = dataclasses.replace(w, ops=[scale_core(o, core[o.name], keys) if o.name in core else o for o in w.ops])
        return self._finish(w, batch, prompt_len, prompt_len, precision)

    def decode(self, batch: int, context: int, precision: Precision | None = None,
               prompt_len: int | None = None) -> Workload:
        """One decode step reading the keys the pattern keeps (a dense step over that many keys)."""
        return self.extend(batch, context, 1, precision, prompt_len)

    def extend(self, batch: int, context: int, tokens: int, precision: Precision | None = None,
               prompt_len: int | None = None) -> Workload:
        """A pass of ``tokens`` new tokens after ``context`` cached ones, reading the keys the pattern keeps."""
        precision = precision or Precision()
        t = self.techniques
        prompt = prompt_len if prompt_len is not None else max(1, context)
        keys = decode_keys(context + tokens, self.window, t.sinks, t.h2o, t.block_sparse, t.sparse_block)
        read = max(0, keys - tokens)
        w = self.model.extend(batch, read, tokens, precision, prompt)
        w = dataclasses.replace(w, context=context)
        return self._finish(w, batch, context + tokens, keys, precision, prompt)

    def generate(self, batch: int, prompt_len: int, gen_len: int, precision: Precision | None = None) -> Generation:
        """Prefill then decode steps, every pass transformed."""
        precision = precision or Precision()
        base = self.model.generate(batch, prompt_len, gen_len, precision)  # validates the arguments
        return Generation(self.prefill(batch, prompt_len, precision), self, base.batch, prompt_len, gen_len, precision)

    # -- helpers -------------------------------------------------------------------------------------------
    def _core_ops(self, w: Workload) -> dict[str, int]:
        """Ops of causal self-attention cores -> keys they span (the score's ``n``)."""
        out: dict[str, int] = {}
        for b in self.model.ir.attentions("self"):
            a = b.attention
            if a is None or not a.causal:
                continue
            names = set(a.core)
            ops = [o for o in w.ops if (o.node or o.name) in names or o.name in names]
            score = next((o for o in ops if o.role == "score" and o.matmul is not None), None)
            if score is None:
                continue
            for o in ops:
                out[o.name] = score.matmul.n
        return out

    def _finish(self, w: Workload, batch: int, tokens: int, read_keys: int, precision: Precision,
                prompt: int | None = None) -> Workload:
        """KV format factor on every op's cache bytes, cache size after eviction/paging, MoE routing and EP."""
        t = self.techniques
        factor = kv_factor(self._kv_dtype(w.precision), read_keys, t.kv_group, t.kv_residual)
        ops = w.ops
        if factor != 1.0:
            ops = [dataclasses.replace(o, kv_read_bytes=int(o.kv_read_bytes * factor),
                                       kv_write_bytes=int(o.kv_write_bytes * factor)) for o in ops]
        ops = self._moe(ops, w)
        per_value = None
        if factor != 1.0:
            per_value = factor * (BITS.get(self._kv_dtype(w.precision)) or 16) / 8.0
        return dataclasses.replace(w, ops=ops, kv_cache_bytes=self.kv_cache_bytes(batch, tokens, w.precision, prompt),
                                   kv_bytes_per_value=per_value,
                                   kv_write_bytes=int(w.kv_write_bytes * factor),
                                   weight_bytes=self.weight_bytes(w.precision))

    def _moe(self, ops: list[OpCost], w: Workload) -> list[OpCost]:
        moe = self.model.ir.moe
        if not moe or not self._expert_blocks:
            return ops
        t = self.techniques
        tokens = w.batch * w.seq
        experts, top_k = moe["experts"], moe["top_k"]
        weights = 1.0
        if t.moe_routing == "expected":
            ran = balanced_experts(experts, top_k, tokens)
            weights = expected_experts(experts, top_k, tokens) / ran if ran else 1.0
        share = device_share(t.ep, t.moe_imbalance) if t.ep > 1 else 1.0
        out: list[OpCost] = []
        last_expert: dict[int | None, int] = {}
        for o in ops:
            if o.block in self._expert_blocks:
                o = scale_op(o, weights * share, share)
                last_expert[o.layer] = len(out)
            out.append(o)
        if t.ep > 1:
            act = 2.0 if "16" in (w.precision.activations or "float16") else 4.0
            sent = all_to_all_bytes(tokens, top_k, self.model.ir.d_model or 0, act, t.ep)
            for layer, idx in sorted(last_expert.items(), key=lambda kv: -kv[1]):
                ref = out[idx]
                for part in ("combine", "dispatch"):
                    a2a = OpCost(f"moe.{layer}.all_to_all.{part}", "AllToAll", "movement", 0.0, 0, int(sent), int(sent),
                                 block=f"moe.{layer}.all_to_all", block_kind="all_to_all", layer=layer,
                                 role="all_to_all", inputs=ref.outputs, outputs=ref.outputs,
                                 note=f"expert parallelism over {t.ep} devices: {sent:.0f} bytes per device")
                    out.insert(idx + 1, a2a)
        return out
