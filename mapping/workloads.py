"""Workloads derived from a model: prefill, one decode step, and generation (prefill + growing decode steps).

A :class:`Workload` is the list of costed ops one forward pass executes, each tagged with its block, plus the
KV-cache facts of that pass. Decode steps are derived whether or not the ONNX file has KV-cache inputs:

- with KV-cache inputs (``past_*``), the graph is bound with one new token and ``past = context``;
- without them, the graph is bound with one new token and every causal self-attention core (score matmul,
  mask, softmax, PV matmul) is re-costed with its key/value axis at ``context + 1`` — the attention a KV-cached
  implementation performs. Projections, MLPs and norms then process only the new token, as they do in a
  cached decode. In encoder-decoder models the encoder and the cross-attention K/V projections do not depend
  on the decoder tokens and are left out of decode steps (computed once, in prefill).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from hardware.dtypes import is_float, tensor_bytes
from hardware.errors import HwsimError, HwsimWarning
from mapping.contrib_ops import implied_dims
from mapping.dims import evidence_dims, free_dims
from mapping.ir import AttentionInfo, TransformerIR
from mapping.onnx_graph import OpGraph, load_graph
from mapping.op_costs import OpCost, Precision, cost_ops, tensor_classes
from mapping.quant import logical_elements
from mapping.recognize import concat_axes, dim_kinds, kv_cache_inputs, recognise, runs_over
from mapping.shape_binding import BoundGraph, FixedReshapeError, bind


@dataclass
class Workload:
    """The ops of one forward pass and what they add up to.

    ``seq`` is the number of new tokens per sequence, ``context`` the tokens already in the KV cache before the
    pass. Bytes are bytes, FLOPs count 2 per multiply-accumulate.
    """

    model: str
    phase: str
    batch: int
    seq: int
    context: int
    bindings: dict[str, int]
    precision: Precision
    ops: list[OpCost]
    kv_cache_bytes: int
    kv_write_bytes: int
    params: int
    weight_bytes: int
    ir: TransformerIR | None = field(default=None, repr=False)
    #: bytes per cached K/V value as stored, scales included (a quantised cache, mapping.techniques.kv); None: the
    #: format's own size
    kv_bytes_per_value: float | None = None
    #: ops of the whole forward pass when this workload is one pipeline stage of it (mapping.parallel.stage_workloads);
    #: None: the workload is the whole pass
    pass_ops: int | None = None

    @property
    def moe(self) -> dict:
        """Mixture-of-experts routing of this pass ({} for dense models).

        ``experts``, ``top_k``, ``layers``; ``tokens`` routed per layer (batch x seq); ``tokens_per_expert``: the
        expected rows of each expert per layer, tokens x top_k / experts, as costed (balanced routing, see
        :mod:`mapping.data_dependent`); ``imbalance`` 1.0: the busiest expert's load over that mean, which a
        target may raise to model skew.
        """
        facts = dict(self.ir.moe) if self.ir is not None else {}
        if not facts:
            return {}
        tokens = self.batch * self.seq
        return {**facts, "tokens": tokens, "tokens_per_expert": tokens * facts["top_k"] / facts["experts"],
                "imbalance": 1.0}

    def attention(self, block: str) -> AttentionInfo | None:
        """The attention facts (heads, kv_heads, head_dim, causal, self/cross) of IR block ``block``."""
        if self.ir is None:
            return None
        index = self.__dict__.get("_attention_index")
        if index is None or index[0] is not self.ir or index[1] != len(self.ir.blocks):
            found: dict[str, AttentionInfo] = {}
            for b in self.ir.blocks:  # the first attention block of each name
                if b.attention is not None:
                    found.setdefault(b.name, b.attention)
            index = self.__dict__["_attention_index"] = (self.ir, len(self.ir.blocks), found)
        return index[2].get(block)

    @property
    def flops(self) -> float:
        """All FLOPs of the pass."""
        return sum(o.flops for o in self.ops)

    @property
    def matmul_flops(self) -> float:
        """FLOPs of matrix products (GEMM, GEMV, batched attention matmuls, convolutions), bias adds excluded."""
        total = 0.0
        for o in self.ops:
            if o.matmul is not None:
                total += 2.0 * o.matmul.batch * o.matmul.m * o.matmul.k * o.matmul.n
            elif o.category in ("matmul", "conv"):
                total += o.flops
        return total

    @property
    def activation_bytes(self) -> int:
        """Bytes of activations written by the pass."""
        return sum(o.act_write_bytes for o in self.ops)

    @property
    def bytes_moved(self) -> int:
        """All bytes read and written by the ops."""
        return sum(o.bytes for o in self.ops)

    @property
    def tokens(self) -> int:
        """New tokens processed (batch x seq)."""
        return self.batch * self.seq


@dataclass
class Generation:
    """Prefill of the prompt followed by ``gen_len - 1`` decode steps (the first token comes from prefill)."""

    prefill: Workload
    model: Model = field(repr=False)
    batch: int = 1
    prompt_len: int = 1
    gen_len: int = 1
    precision: Precision = field(default_factory=Precision)

    def decode_contexts(self) -> range:
        """Context length (tokens cached) before each decode step."""
        return range(self.prompt_len, self.prompt_len + self.gen_len - 1)

    def steps(self) -> Iterator[Workload]:
        """The decode steps, in order."""
        for context in self.decode_contexts():
            yield self.model.decode(self.batch, context, self.precision, prompt_len=self.prompt_len)


class Model:
    """An imported ONNX model: operator graph, recognised IR, and the workloads it implies.

    Bindings of symbolic dims follow their names (see :func:`mapping.recognize.classify_dim`): batch dims take
    the batch size, sequence dims of the token inputs the new tokens, other sequence dims (an encoder's input)
    the prompt length, past dims the context; ``dims`` overrides any of them by name. ``causal`` (the CLI's
    ``--causal``/``--no-causal``) decides self-attention causality where the graph's evidence does not (see
    :func:`mapping.passes.causality.override`).

    A merged decoder (optimum's ``decoder_model_merged.onnx``: an ``If`` on ``use_cache_branch``) is costed
    by the branch each pass takes: prefill the no-cache branch, decode steps the cache branch.
    """

    def __init__(self, path: str, dims: dict[str, int] | None = None, causal: bool | None = None,
                 cache_branch: bool = True) -> None:
        self.path = path
        self.graph: OpGraph = load_graph(path, cache_branch)
        self.user_dims = dict(dims or {})
        self.causal = causal
        self.ir: TransformerIR = recognise(self.graph, self.user_dims, causal)
        if self.ir.causal.get("value") == "unknown" and cache_branch:
            warnings.warn(HwsimWarning(f"{path}: causal unknown ({self.ir.causal['evidence']})"), stacklevel=2)
        moe = self.ir.moe
        if moe and not moe["experts_found"]:  # routers, but no MLP read from them: experts in a form not recognised
            warnings.warn(HwsimWarning(
                f"{path}: {moe['layers']} MoE routers of {moe['experts']} experts (top-{moe['top_k']}) found, but no "
                "expert MLP recognised after them (e.g. experts run as one grouped product over sorted tokens): their "
                "FLOPs and weights are counted where they are, not per expert"), stacklevel=2)
        elif moe and moe["experts_found"] < moe["experts"] * moe["layers"]:
            warnings.warn(HwsimWarning(
                f"{path}: the graph has {moe['experts_found']} expert MLPs for {moe['layers']} MoE layers of "
                f"{moe['experts']} experts: a traced export keeps only the experts its example input reached; "
                "FLOPs and weights count the ones present — re-export with more example tokens"), stacklevel=2)
        self._prefill_model: Model | None = None
        if self.graph.cache_branch:
            self._prefill_model = Model(path, dims, causal, cache_branch=False)
        self.kv_inputs = kv_cache_inputs(self.graph)
        if self.kv_inputs and not any(b.attention is not None for b in self.ir.blocks) and cache_branch:
            warnings.warn(HwsimWarning(
                f"{path}: the graph has KV-cache inputs ({self.kv_inputs[0]}, ...) but hwsim found no attention in it "
                "(its score product may be an op hwsim does not read as one, e.g. a fused attention contrib op "
                "without a rule): the decode phase is unavailable and a default run costs one forward pass only"),
                stacklevel=2)
        owner = self.ir.block_of()
        self._owner = owner
        self._roles = _roles(self.ir)
        self._step_nodes = self._step_dependent()
        self._decode_base: dict[tuple, tuple[BoundGraph, list[OpCost]]] = {}
        symbolic = free_dims(self.graph)
        self._dim_kind: dict[str, str] = {}
        self._fixed = implied_dims(self.graph)  # dims an attention op's attributes fix (a KV cache's head size)
        for name, kind in dim_kinds(self.graph).items():
            places = symbolic[name]
            kind = "fixed" if name in self._fixed else kind
            if kind == "seq" and self.ir.step_inputs and not any(p[0] in self.ir.step_inputs for p in places):
                kind = "prompt"
            self._dim_kind[name] = kind
        self._evidence = evidence_dims(self.graph, self._dim_kind)
        # an encoder length may be set by name (--dim encoder_sequence_length=1500): it defaults to --prompt-len
        flags = {"batch": "--batch", "seq": "--seq/--prompt-len", "prompt": "--prompt-len", "past": "--context",
                 "total": "--context and --seq"}
        for name in self.user_dims:
            if name not in symbolic:
                known = ", ".join(symbolic) or "none"
                raise HwsimError(f"--dim {name}: {path} has no symbolic dimension '{name}' (its dimensions: {known})")
            decoder_length = self._dim_kind[name] == "seq" and self.ir.architecture == "encoder-decoder"
            if self._dim_kind[name] in flags and not decoder_length:  # no flag sets an encoder-decoder's decoder length
                raise HwsimError(f"--dim {name}: this dimension is the {self._dim_kind[name]} length; set it with "
                                 f"{flags[self._dim_kind[name]]} so that every count follows it")
        if self.graph.traced_length is not None and self.ir.architecture == "encoder-decoder":
            for name, kind in self._dim_kind.items():  # the decoder's length: the one the graph's reshapes fix
                if kind == "seq" and name not in self.user_dims:
                    self.user_dims[name] = self.graph.traced_length
        self.params = sum(logical_elements(self.graph, t) for t in self.graph.weight_names)
        self._warned: set[tuple[str, int]] = set()

    #: KV heads of every attention block's cache when ``--set kv_heads`` overrides what recognition found
    #: (:meth:`with_kv_heads`); None: the IR's own
    kv_heads_override: int | None = None

    def with_kv_heads(self, kv_heads: int | None) -> Model:
        """This model with every attention block's KV cache held for ``kv_heads`` heads (the GPU target's
        ``--set kv_heads`` override of the heads recognition found), so that the memory check, the workloads' KV
        bytes and a serving run's cache capacity follow the heads the attention kernels are costed with; the
        graph's own ops are unchanged. ``None``: this model."""
        if kv_heads is None or kv_heads == self.kv_heads_override:
            return self
        other = copy.copy(self)
        other.kv_heads_override = kv_heads
        if self._prefill_model is not None:
            other._prefill_model = self._prefill_model.with_kv_heads(kv_heads)
        return other

    def for_phase(self, phase: str) -> Model:
        """The model whose graph a ``phase`` workload was costed on (a merged decoder's no-cache branch for prefill)."""
        return self._prefill_model if phase == "prefill" and self._prefill_model is not None else self

    def _numel(self, name: str) -> int:
        n = 1
        for d in self.graph.tensors[name].dims or ():
            n *= int(d)  # type: ignore[arg-type]
        return n

    # -- bindings ------------------------------------------------------------------------------------------
    def bindings(self, batch: int, seq: int, context: int, prompt: int | None = None) -> dict[str, int]:
        """Values for every symbolic dim for a pass of ``seq`` new tokens after ``context`` cached ones."""
        prompt = prompt if prompt is not None else seq
        values = {"batch": batch, "seq": seq, "past": context, "prompt": prompt, "encoder": prompt,
                  "total": context + seq}
        out: dict[str, int] = {}
        for name, kind in self._dim_kind.items():
            if name in self.user_dims:
                out[name] = self.user_dims[name]
            elif kind in values:
                out[name] = values[kind]
            elif kind == "fixed":
                out[name] = self._fixed[name]
            elif name in self._evidence:
                out[name] = self._evidence[name]
        for name, value in self.user_dims.items():
            out.setdefault(name, value)
        return out

    def _bind(self, bindings: dict[str, int]) -> BoundGraph:
        """``bind`` the graph; a batch the graph cannot take because its ops fix batch 1 (torch.export specialises a
        batch-1 example's size in its reshapes while the inputs keep a symbolic batch) is one line saying so."""
        try:
            return bind(self.graph, bindings)
        except HwsimError as exc:
            if self.graph.traced_length is None and isinstance(exc, FixedReshapeError):
                self._learn_traced_length(bindings, exc)  # traced at the probe's own length: the probe bound
            if self.graph.traced_length is not None:
                self._refuse_other_length(bindings, exc)
            ones = {n: 1 if self._dim_kind.get(n) == "batch" else v for n, v in bindings.items()}
            if ones == bindings:
                raise
            try:
                bind(self.graph, ones)
            except HwsimError:
                raise exc from None
            node = str(exc).split(": ", 1)[-1].split(":", 1)[0]  # "node 'X' (Reshape) of a [...] input to [...]"
            raise HwsimError(f"{self.path}: this graph runs only at batch 1: its inputs declare a symbolic batch, but "
                             f"its ops fix 1 ({node}; an exporter traced a batch-1 example); use --batch 1, or "
                             "re-export with a batch of 2 in the example inputs") from None

    def _learn_traced_length(self, bindings: dict[str, int], exc: FixedReshapeError) -> None:
        """Set ``graph.traced_length`` from a binding a reshape refuses, when the graph was traced at the probe's own
        length (so recognition's probe bound and found none): the length the refusing reshape's element counts
        give, if the graph binds there with its self-attention over [length, length] (recognize.runs_over)."""
        lengths = [n for n, k in self._dim_kind.items() if k in ("seq", "prompt", "encoder", "total")]
        given = next((bindings[n] for n in lengths if n in bindings and self._dim_kind[n] in ("seq", "prompt")), None)
        src, out = exc.elements
        if not given or not src or (given * out) % src:
            return
        length = given * out // src
        at = {n: length if n in lengths else v for n, v in bindings.items()}
        try:
            bound = bind(self.graph, at)
        except HwsimError:
            return
        if runs_over(bound, self.graph, length):
            self.graph.traced_length = length

    def _refuse_other_length(self, bindings: dict[str, int], exc: HwsimError) -> None:
        """One line for a binding the graph cannot take because its ops fix the length (``graph.traced_length``,
        and maybe the batch, found by recognition): the length and batch it runs at, and the node that fixes them."""
        length, fixed = self.graph.traced_length, self.graph.traced_batch
        lengths = {n for n, k in self._dim_kind.items() if k in ("seq", "prompt", "encoder", "total")}
        node = str(exc).split(": ", 1)[-1].split(":", 1)[0]  # "node 'X' (Reshape) of a [...] input to [...]"
        batch = next((v for n, v in bindings.items() if self._dim_kind.get(n) == "batch"), 1)
        b = batch if fixed is None else fixed
        at = {n: length if n in lengths else b if self._dim_kind.get(n) == "batch" else v for n, v in bindings.items()}
        try:
            bind(self.graph, at)
        except HwsimError:
            return
        where = f"length {length}" + (f" and batch {b}" if b != batch else "")
        flags = ["--phase prefill"] if self.ir.architecture in ("decoder-only", "encoder-decoder") else []
        for name in sorted(n for n in lengths if bindings.get(n) != length):
            decoder = self._dim_kind[name] == "seq" and self.ir.architecture == "encoder-decoder"
            flags.append(f"--dim {name}={length}" if decoder else f"--seq / --prompt-len {length}")
        flags += [f"--batch {b}"] if b != batch else []
        raise HwsimError(
            f"{self.path}: this graph runs only at {where}: its inputs declare a symbolic length, but its ops fix it "
            f"({node}; an exporter such as TorchScript traced a length-{length} example into its reshapes); run it at "
            f"that length ({', '.join(dict.fromkeys(flags))}; no token after it) or re-export with dynamic shapes "
            "(torch.onnx.export(..., dynamo=True))") from None

    def encoder_length(self, work: Workload) -> tuple[int, str] | None:
        """The encoder positions E the cross-attention of ``work`` reads, and where E comes from (None: no
        cross-attention).

        The convention: a dim naming the encoder length (``encoder_sequence_length``) takes ``--dim NAME=N`` when
        given, else ``--prompt-len`` (a decoder file's prompt is the encoder output it reads); a graph that holds
        the encoder derives E from the prompt as its encoder computes it (Whisper: 2 mel frames per position); a
        graph whose cross-attention inputs have a fixed length (onnxruntime-genai's Whisper decoder) uses it.
        """
        cross = {b.name for b in self.ir.attentions("cross")}
        if not cross:
            return None
        lengths = [o.matmul.n for o in work.ops if o.block in cross and o.role == "score" and o.matmul is not None]
        if not lengths:
            return None
        named = [n for n, k in self._dim_kind.items() if k == "encoder"]
        given = [n for n in named if n in self.user_dims]
        if given:
            source = f"--dim {given[0]}"
        elif named:
            source = f"{named[0]} = --prompt-len; --dim {named[0]}=N sets it"
        elif "prompt" in self._dim_kind.values():
            symbolic = free_dims(self.graph)
            states = [(n, p[0]) for n, k in self._dim_kind.items() if k == "prompt" for p in symbolic[n]
                      if self.graph.tensors[p[0]].dtype.startswith(("float", "bfloat"))]
            # encoder states given as an input (nn.TransformerDecoder's memory), else the encoder is in the graph
            source = (f"{states[0][0]}, the length of input '{states[0][1]}' = --prompt-len" if states
                      else "the graph's own encoder over the prompt")
        else:
            source = "fixed by the graph"
        return max(lengths), source

    def weight_bytes(self, precision: Precision) -> int:
        """Bytes of all parameters at the chosen weight precision (the embedding tables and LM head by
        ``Precision.head``'s rule)."""
        key = (precision.weights, precision.activations, precision.kv_cache, precision.head, precision.head_tensors)
        cache = self.__dict__.setdefault("_weight_bytes", {})  # a pure function of the graph and the formats
        if key not in cache:
            cache[key] = self._weight_bytes_at(precision)
        return cache[key]

    def _weight_bytes_at(self, precision: Precision, names: Iterable[str] | None = None) -> int:
        total = 0
        precision = self.with_head_tensors(precision)
        for name in self.graph.weight_names if names is None else names:
            dtype = self.graph.tensors[name].dtype
            if is_float(dtype) and (precision.weights or precision.head):
                dtype = precision.weight_format(name, dtype)  # quantized weights keep their stored width
            total += tensor_bytes(self._numel(name), dtype)
        return total

    def head_weight_bytes(self, precision: Precision) -> int:
        """Bytes of the embedding tables' and LM head's weights (a tied head counted once) at ``precision``."""
        weights = set(self.graph.weight_names)
        return self._weight_bytes_at(precision, sorted(n for n in self.head_tensors() if n in weights))

    def head_tensors(self) -> frozenset[str]:
        """Weight tensors of the embedding and LM-head blocks: their inputs, and back through weight transforms
        (a tied LM head's transpose of the embedding table) to the initializers."""
        if not hasattr(self, "_head_tensors"):
            from mapping.op_costs import WEIGHT_TRANSFORMS

            producers = {o: n for n in self.graph.nodes for o in n.outputs if o}
            weights = set(self.graph.weight_names)
            stack = [i for b in self.ir.blocks if b.kind in ("embedding", "lm_head") for n in b.nodes
                     for i in self._node(n).inputs if i]
            memo: dict[str, bool] = {}

            def from_weights(name: str) -> bool:  # computed from weights (and shape constants) only
                if name not in memo:
                    memo[name] = False  # a cycle guard; graphs are acyclic
                    node = producers.get(name)
                    memo[name] = name in weights or (node is not None and node.op_type in WEIGHT_TRANSFORMS and any(
                        i in weights or from_weights(i) for i in node.inputs if i) and all(
                        from_weights(i) or i not in producers for i in node.inputs if i))
                return memo[name]

            out: set[str] = set()
            while stack:
                name = stack.pop()
                if name in out or not from_weights(name):
                    continue
                out.add(name)
                node = producers.get(name)
                if node is not None:
                    stack.extend(i for i in node.inputs if i)
            self._head_tensors = frozenset(out)
        return self._head_tensors

    def with_head_tensors(self, precision: Precision) -> Precision:
        """``precision`` naming this model's embedding and LM-head weights (see :class:`Precision`)."""
        if precision.head_tensors or not (precision.weights or precision.head):
            return precision
        return dataclasses.replace(precision, head_tensors=self.head_tensors())

    @functools.cached_property
    def static_cache_slots(self) -> int | None:
        """Positions of a static KV cache (gpt-fast's ``[batch, kv_heads, max_seq, head_dim]`` inputs of one fixed
        length, no past dim, updated in place): it holds that many slots whatever the tokens; None otherwise."""
        if any(k in ("past", "total") for k in self._dim_kind.values()):
            return None
        selfs = [b.attention for b in self.ir.attentions() if b.attention is not None and b.attention.kind == "self"]
        if not selfs or concat_axes(self.graph, set(self.kv_inputs)):
            return None  # a cache the step concatenates to (a fixed-shape export's past) grows: not static
        sizes = {selfs[0].kv_heads, selfs[0].head_dim, selfs[0].v_head_dim or selfs[0].head_dim}
        lengths = set()
        for name in self.kv_inputs:
            dims, low = self.graph.tensors[name].dims, name.lower()
            if "cross" in low or "encoder" in low:
                continue
            if dims is None or len(dims) != 4 or not all(isinstance(d, int) for d in dims[1:]):
                lengths.add(None)
                continue
            # the slots' axis: the one (after the batch) that is neither the KV heads nor the head size, so that
            # [B, H, S, D] and [B, S, H, D] layouts both read; [B, H, S, D] where that is ambiguous
            rest = [d for d in dims[1:] if d not in sizes]
            lengths.add(rest[0] if len(rest) == 1 else dims[2])
        return lengths.pop() if len(lengths) == 1 and None not in lengths else None

    def kv_cache_bytes(self, batch: int, tokens: int, precision: Precision, prompt: int | None = None) -> int:
        """Bytes of the KV cache holding ``tokens`` positions per sequence (plus cross-attention K/V); a static
        cache holds its fixed slots (:attr:`static_cache_slots`)."""
        total = 0
        for b in self.ir.attentions():
            a = b.attention
            assert a is not None
            dtype = precision.kv_cache or self._kv_dtype(precision)
            length = (self.static_cache_slots or tokens) if a.kind == "self" else self._cross_len(prompt or tokens)
            if a.kind == "self" and not a.causal:
                continue  # encoder self-attention keeps no cache
            total += tensor_bytes(batch * (self.kv_heads_override or a.kv_heads) * a.kv_width * length, dtype)
        return total

    def _cross_len(self, prompt: int) -> int:
        """Cached cross-attention positions: a user-bound encoder dim, a length fixed on the cross-K/V cache inputs,
        else the prompt (see :meth:`encoder_length`)."""
        for name, kind in self._dim_kind.items():
            if kind == "encoder" and name in self.user_dims:
                return self.user_dims[name]
        if not any(k == "encoder" for k in self._dim_kind.values()):
            for name in self.kv_inputs:
                dims = self.graph.tensors[name].dims
                low = name.lower()
                if ("cross" in low or "encoder" in low) and dims and len(dims) == 4 and isinstance(dims[2], int):
                    return dims[2]
        return prompt

    def _kv_dtype(self, precision: Precision) -> str:
        if self.kv_inputs:
            return self.graph.tensors[self.kv_inputs[0]].dtype
        return precision.activations or self._param_dtype

    @functools.cached_property
    def _param_dtype(self) -> str:
        """The first parameter's type, float32 without any (``graph.weight_names`` scans every tensor: kept)."""
        return next((self.graph.tensors[w].dtype for w in self.graph.weight_names), "float32")

    def _step_dependent(self) -> set[str] | None:
        """Nodes a decode step recomputes (descendants of the token and cache inputs); None = all."""
        if self.ir.architecture != "encoder-decoder":
            return None
        seeds = set(self.ir.step_inputs) | set(self.kv_inputs)
        reach: set[str] = set()
        frontier = list(seeds)
        while frontier:
            t = frontier.pop()
            for c in self.graph.consumers.get(t, []):
                if c.name not in reach:
                    reach.add(c.name)
                    frontier.extend(o for o in c.outputs if o)
        return reach

    # -- costing -------------------------------------------------------------------------------------------
    def _cost(self, bound: BoundGraph, precision: Precision, kv_operands: bool,
              only: set[str] | None = None, kv_len: int | None = None) -> list[OpCost]:
        precision = self.with_head_tensors(precision)
        # tensor classes are structural: the same for every binding of this graph
        if not hasattr(self, "_klass"):
            self._klass = tensor_classes(bound, set(self.kv_inputs))
        variants = self.__dict__.setdefault("_klass_variants", {})  # one per kv_operands; never mutated
        klass = variants.get(kv_operands)
        if klass is None:
            klass = dict(self._klass)
            if kv_operands:
                for b in self.ir.attentions("self"):
                    a = b.attention
                    assert a is not None
                    if a.causal:
                        klass[a.k_tensor] = "kv"
                        klass[a.v_tensor] = "kv"
            variants[kv_operands] = klass
        ops = []
        nodes = self.graph.nodes if only is None else [self._node(n) for n in sorted(only, key=self._index)]
        for node in nodes:
            outs = tuple(o for o in node.outputs if o)
            if outs and all(bound.numel(o) == 0 for o in outs):
                continue  # no output element (an MoE expert no token was routed to): nothing runs
            block = self._owner.get(node.name)
            parts = cost_ops(bound, node, klass, precision, kv_len)
            ins = tuple(i for i in node.inputs if i)
            for k, c in enumerate(parts):
                if block is not None:
                    c.block, c.block_kind, c.layer = block.name, block.kind, block.layer
                c.role = c.role or self._roles.get(node.name, "")  # parts of a fused attention carry their own
                c.note = bound.notes.get(node.name, "")
                # dataflow: the parts of one node run in order; the first reads the node's inputs, the last
                # writes its outputs
                c.inputs = ins + ((f"{node.name}#part{k - 1}",) if k else ())
                c.outputs = outs if k == len(parts) - 1 else (f"{node.name}#part{k}",)
                ops.append(c)
        return ops

    def _check_positions(self, tokens: int, what: str) -> None:
        """A learned position table bounds the sequence: warn (once) about what the real model could not run."""
        rows = [b.attrs["rows"] for b in self.ir.blocks if b.kind == "embedding" and b.attrs.get("kind") == "position"
                and b.attrs.get("dim") == self.ir.d_model]  # not T5's relative-bias buckets (one column per head)
        slots = self.static_cache_slots
        if slots is not None and tokens > slots and ("static", slots) not in self._warned:
            self._warned.add(("static", slots))
            warnings.warn(HwsimWarning(
                f"{self.path}: {what} of {tokens} tokens exceeds the model's static KV cache ({slots} slots): the real "
                "model cannot run it; hwsim costs the graph as it stands"), stacklevel=3)
        if rows and tokens > min(rows) and (what, min(rows)) not in self._warned:
            self._warned.add((what, min(rows)))
            warnings.warn(HwsimWarning(
                f"{self.path}: {what} of {tokens} tokens exceeds the model's learned position table ({min(rows)} "
                "positions): the real model cannot run it; hwsim costs it as if the table were longer"), stacklevel=3)

    def fixed_tokens(self) -> int | None:
        """The positions one pass computes when no input dim of the graph is a sequence length (a ViT's patches, the
        jet tagger's 15 tracks); None when the length is the user's to set."""
        if any(kind in ("seq", "prompt") for kind in self._dim_kind.values()):
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", HwsimWarning)
            return self.prefill(1, 1).seq

    def prefill(self, batch: int, prompt_len: int, precision: Precision | None = None) -> Workload:
        """The forward pass over a prompt of ``prompt_len`` tokens (the whole input for encoder-only models)."""
        precision = precision or Precision()
        _positive(batch=batch, prompt_len=prompt_len)
        if self._prefill_model is not None:
            return self._prefill_model.prefill(batch, prompt_len, precision)
        seq = 1 if self.ir.architecture == "encoder-decoder" else prompt_len
        # a decoder file's prompt is the encoder output it reads: its position table bounds the decoder tokens only
        self._check_positions(seq if "encoder" in self._dim_kind.values() else prompt_len, "a prompt")
        bindings = self.bindings(batch, seq, 0, prompt=prompt_len)
        bound = self._bind(bindings)
        ops = self._cost(bound, precision, kv_operands=False)
        kv_tokens = seq
        tokens = prompt_len
        if not any(kind in ("seq", "prompt") for kind in self._dim_kind.values()):
            # a fixed-length graph (ViT: patches + [CLS]): the tokens are the attention's query rows, not --seq
            score = next((o for o in ops if o.role == "score" and o.matmul is not None), None)
            tokens = score.matmul.m if score is not None else 1
            info = next((b for b in self.ir.blocks if score is not None and b.name == score.block), None)
            a = info.attention if info is not None else None
            # the sequences the graph runs: the user's batch, or a fixed one on the first input's axis 0
            first = self.graph.tensors[self.graph.inputs[0]].dims or ()
            runs = batch if "batch" in self._dim_kind.values() else (
                first[0] if first and isinstance(first[0], int) else 1)
            windows = a is not None and a.heads and not a.causal
            if windows and score.matmul.batch % (runs * a.heads) == 0:
                # windowed attention (Swin, bidirectional): the windows ride in the product's batch beside the
                # sequences, so the positions are all of them
                tokens *= score.matmul.batch // (runs * a.heads)
            lengths = "encoder" in self._dim_kind.values()  # an encoder's own input length (Moonshine's samples)
            if score is not None and tokens != prompt_len and not lengths and ("fixed", tokens) not in self._warned:
                self._warned.add(("fixed", tokens))
                fixed = ", ".join(f"{n} {list(self.graph.tensors[n].dims or ())}" for n in self.graph.inputs)
                warnings.warn(HwsimWarning(
                    f"{self.path}: no input dim of this graph is a sequence length ({fixed}): a pass computes {tokens} positions "
                    f"whatever --prompt-len says ({prompt_len}); hwsim costs what the graph computes"), stacklevel=2)
        return Workload(self.path, "prefill", batch, tokens, 0, bindings, precision, ops,
                        self.kv_cache_bytes(batch, kv_tokens, precision, prompt_len),
                        self.kv_cache_bytes(batch, kv_tokens, precision, prompt_len),
                        self.params, self.weight_bytes(precision), self.ir)

    @property
    def bidirectional_decoder(self) -> bool:
        """Whether the decoder stack's self-attention is all non-causal: a decoder that decodes every query in one
        pass (DETR's object queries), with nothing to generate token by token."""
        selfs = [b.attention for b in self.ir.blocks if b.stack == "decoder" and b.attention is not None and
                 b.attention.kind == "self"]
        return bool(selfs) and not any(a.causal for a in selfs)

    def _check_generates(self, what: str) -> None:
        if self.ir.architecture in ("encoder-only", "none"):
            raise HwsimError(
                f"{self.path}: {what} needs a model with causal self-attention (a decoder); this graph "
                f"is {self.ir.architecture}: use --phase prefill")
        if self.bidirectional_decoder:
            raise HwsimError(
                f"{self.path}: {what} needs a causal decoder; this graph's decoder self-attention is not causal (it "
                "decodes every query in one pass, as DETR's object queries): use --phase prefill (--causal if the "
                "graph's mask is wrong)")

    def decode(self, batch: int, context: int, precision: Precision | None = None,
               prompt_len: int | None = None) -> Workload:
        """One decode step: one new token per sequence attending to ``context`` cached tokens."""
        precision = precision or Precision()
        _positive(batch=batch)
        if context < 0:
            raise HwsimError(f"context must be >= 0, got {context}")
        self._check_positions(context + 1, "a context")
        self._check_generates("the decode phase")
        prompt = prompt_len if prompt_len is not None else max(1, context)
        fixed = not self.kv_inputs and not any(k in ("seq", "prompt") for k in self._dim_kind.values())
        if fixed and ("decode-fixed", 0) not in self._warned:
            self._warned.add(("decode-fixed", 0))
            warnings.warn(HwsimWarning(
                f"{self.path}: this graph has no sequence-length input dim and no KV-cache inputs "
                f"({', '.join(f'{n} {list(self.graph.tensors[n].dims or ())}' for n in self.graph.inputs)}): a decode "
                "step reruns the whole fixed-shape pass, which hwsim costs as the graph computes it; export with "
                "dynamic axes (or a KV cache) for a one-token step"), stacklevel=2)
        if self.kv_inputs:
            bindings = self.bindings(batch, 1, context, prompt=prompt)
            bound = self._bind(bindings)
            ops = self._cost(bound, precision, kv_operands=True, only=self._step_nodes)
        else:
            key = (batch, prompt, precision.weights, precision.activations, precision.kv_cache, precision.head)
            if key not in self._decode_base:
                bindings = self.bindings(batch, 1, 0, prompt=prompt)
                base = self._bind(bindings)
                self._decode_base[key] = (base, self._cost(base, precision, kv_operands=True, only=self._step_nodes))
            base, base_ops = self._decode_base[key]
            bindings = dict(base.bindings)
            # a fixed-shape graph attends over its own positions whatever the context: costed as it computes
            ops = base_ops if fixed else self._with_context(base, base_ops, context + 1, precision)
        return Workload(self.path, "decode", batch, 1, context, bindings, precision, ops,
                        self.kv_cache_bytes(batch, context + 1, precision, prompt),
                        self._kv_write_bytes(batch, precision), self.params, self.weight_bytes(precision), self.ir)

    def extend(self, batch: int, context: int, tokens: int, precision: Precision | None = None,
               prompt_len: int | None = None) -> Workload:
        """A pass of ``tokens`` new tokens per sequence after ``context`` cached ones (a ``decode`` workload with
        ``seq = tokens``): speculative decoding's verification pass over the drafted tokens. ``tokens = 1`` is
        :meth:`decode`."""
        precision = precision or Precision()
        _positive(batch=batch, tokens=tokens)
        if tokens == 1:
            return self.decode(batch, context, precision, prompt_len)
        if context < 0:
            raise HwsimError(f"context must be >= 0, got {context}")
        self._check_positions(context + tokens, "a context")
        self._check_generates("a pass over new tokens after a cache")
        prompt = prompt_len if prompt_len is not None else max(1, context)
        if self.kv_inputs:
            bindings = self.bindings(batch, tokens, context, prompt=prompt)
            bound = self._bind(bindings)
            ops = self._cost(bound, precision, kv_operands=True, only=self._step_nodes)
        else:
            bindings = self.bindings(batch, tokens, 0, prompt=prompt)
            base = self._bind(bindings)
            base_ops = self._cost(base, precision, kv_operands=True, only=self._step_nodes)
            ops = self._with_context(base, base_ops, context + tokens, precision, new=tokens)
        return Workload(self.path, "decode", batch, tokens, context, bindings, precision, ops,
                        self.kv_cache_bytes(batch, context + tokens, precision, prompt),
                        tokens * self._kv_write_bytes(batch, precision), self.params, self.weight_bytes(precision),
                        self.ir)

    def _kv_write_bytes(self, batch: int, precision: Precision) -> int:
        total = 0
        for b in self.ir.attentions("self"):
            a = b.attention
            assert a is not None
            if a.causal:
                total += tensor_bytes(batch * (self.kv_heads_override or a.kv_heads) * a.kv_width,
                                      precision.kv_cache or self._kv_dtype(precision))
        return total

    def _with_context(self, base: BoundGraph, base_ops: list[OpCost], kv_len: int,
                      precision: Precision, new: int = 1) -> list[OpCost]:
        """Re-cost every causal self-attention core of a ``new``-token binding with ``kv_len`` keys."""
        shapes = dict(base.shapes)
        core_nodes: set[str] = set()
        for b in self.ir.attentions("self"):
            a = b.attention
            assert a is not None
            if not a.causal:
                continue
            core_nodes |= set(a.core)
            if a.score == a.pv:
                continue  # a fused attention op (onnxruntime's): re-costed over kv_len keys below
            for name in a.core:
                node = self._node(name)
                if name == a.pv:
                    continue
                for out in node.outputs:
                    if out and shapes[out] and shapes[out][-1] == new:
                        shapes[out] = shapes[out][:-1] + (kv_len,)
            k = shapes[a.k_tensor]
            shapes[a.k_tensor] = k[:-1] + (kv_len,)
            v = shapes[a.v_tensor]
            shapes[a.v_tensor] = v[:-2] + (kv_len,) + v[-1:]
        scaled = dataclasses.replace(base, shapes=shapes)
        recosted = {c.name: c for c in self._cost(scaled, precision, kv_operands=True, only=core_nodes, kv_len=kv_len)}
        return [recosted.get(c.name, c) for c in base_ops]

    def _node(self, name: str):  # noqa: ANN202 - small private lookup
        if not hasattr(self, "_nodes"):
            self._nodes = {n.name: n for n in self.graph.nodes}
        return self._nodes[name]

    def _index(self, name: str) -> int:
        return self._node(name).index

    def generate(self, batch: int, prompt_len: int, gen_len: int, precision: Precision | None = None) -> Generation:
        """Prefill of ``prompt_len`` tokens then decode steps until ``gen_len`` tokens are generated."""
        precision = precision or Precision()
        _positive(batch=batch, prompt_len=prompt_len, gen_len=gen_len)
        self._check_generates("generation")
        return Generation(self.prefill(batch, prompt_len, precision), self, batch, prompt_len, gen_len, precision)


def _positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise HwsimError(f"{name.replace('_', '-')} must be >= 1, got {value}")


def _roles(ir: TransformerIR) -> dict[str, str]:
    """Node name -> role inside its block (q_proj, score, softmax, pv, o_proj, up, down...)."""
    roles: dict[str, str] = {}
    for b in ir.blocks:
        a = b.attention
        if a is not None:
            for role in ("q_proj", "k_proj", "v_proj", "o_proj", "score", "softmax", "pv"):
                name = getattr(a, role)
                if name:
                    roles.setdefault(name, "qkv_proj" if a.fused_qkv and role in ("q_proj", "k_proj", "v_proj")
                                     else role)
        if b.kind == "mlp":
            for u in b.attrs.get("up", []):
                roles[u] = "up"
            roles[b.attrs["down"]] = "down"
    return roles
