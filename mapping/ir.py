"""The block-level transformer IR recognised from an operator graph.

A :class:`TransformerIR` is a list of :class:`Block` (embedding, attention, mlp, norm, residual, lm_head,
projection, attention_mask) each owning the graph nodes it is made of, plus the model-level facts the targets
need (layers, heads, kv_heads, head_dim, widths, activation, norm kind, causal, architecture) and the nodes that
nothing recognised. Recognition never changes what is costed: every node is costed op by op whether or not a
block claims it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class AttentionInfo:
    """One attention: head counts, sizes and the nodes of its parts (node names).

    ``core`` is every node from the score matmul (Q.K^T) to the PV matmul inclusive; ``score`` and ``pv`` are
    those two matmuls. ``kind`` is ``self`` or ``cross``. ``causal_known`` is False when no evidence decided
    ``causal`` (then ``causal`` is a stated assumption); ``causal_evidence`` says what decided it.
    """

    heads: int
    kv_heads: int
    head_dim: int
    causal: bool
    kind: str
    score: str
    softmax: str
    pv: str
    q_proj: str | None
    k_proj: str | None
    v_proj: str | None
    o_proj: str | None
    fused_qkv: bool
    core: list[str] = field(default_factory=list)
    q_tensor: str = ""
    k_tensor: str = ""
    v_tensor: str = ""
    causal_known: bool = True
    causal_evidence: str = ""
    v_head_dim: int | None = None  # the values' head size where it differs from the keys' (multi-head latent attention)

    @property
    def kv_width(self) -> int:
        """Elements one cached position holds per KV head: a key and a value."""
        return self.head_dim + (self.v_head_dim or self.head_dim)


@dataclass
class Block:
    """A recognised piece of the model and the graph nodes it owns.

    ``kind``: embedding, attention, mlp, norm, residual, lm_head, projection, attention_mask, router (an MoE
    layer's gate and dispatch; its expert MLPs are ``mlp`` blocks with ``attrs["expert"]``, and ``attrs["stacked"]``
    = E when one block holds all E experts as gathered stacked weights), mixer (a token mixer other than attention:
    ``attrs["mixer"]`` short_conv or ssm; it opens a layer as a self-attention does).
    ``stack`` is ``encoder`` or ``decoder`` (or ``""`` outside the layer stacks); ``layer`` counts from 0 within
    the stack (None outside it). ``attrs`` holds kind-specific facts (d_ff, activation, gated, norm kind...).
    """

    name: str
    kind: str
    layer: int | None
    nodes: list[str]
    stack: str = ""
    attrs: dict = field(default_factory=dict)
    attention: AttentionInfo | None = None


@dataclass
class TransformerIR:
    """What the recognition passes found in a graph.

    ``architecture`` is decoder-only, encoder-only, encoder-decoder, or none (no attention found: the graph is
    then costed op by op as one forward pass).
    """

    architecture: str
    blocks: list[Block]
    unrecognised: list[str]
    d_model: int | None = None
    d_ff: int | None = None
    vocab: int | None = None
    heads: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    activation: str | None = None
    gated_mlp: bool | None = None
    norm: str | None = None
    layers: dict[str, int] = field(default_factory=dict)
    kv_inputs: list[str] = field(default_factory=list)
    step_inputs: list[str] = field(default_factory=list)
    #: Causality of the self-attentions: {"value": yes|no|mixed|unknown|none, "evidence": what decided it}.
    causal: dict = field(default_factory=dict)
    #: Mixture-of-experts facts ({} for dense models): experts, top_k, layers, expert_d_ff, shared_experts.
    moe: dict = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        """Transformer blocks in all stacks together."""
        return sum(self.layers.values())

    def block_of(self) -> dict[str, Block]:
        """Map node name -> the block that owns it."""
        owner: dict[str, Block] = {}
        for b in self.blocks:
            for n in b.nodes:
                owner[n] = b
        return owner

    def attentions(self, kind: str | None = None) -> list[Block]:
        """Attention blocks, optionally only ``self`` or ``cross``."""
        return [b for b in self.blocks if b.attention is not None and (kind is None or b.attention.kind == kind)]

    def summary(self) -> dict:
        """Model-level facts as a JSON-ready dict."""
        return {
            "architecture": self.architecture,
            "layers": self.n_layers,
            "layers_by_stack": dict(self.layers),
            "d_model": self.d_model,
            "d_ff": self.d_ff,
            "vocab": self.vocab,
            "attention": {"heads": self.heads, "kv_heads": self.kv_heads, "head_dim": self.head_dim},
            "activation": self.activation,
            "gated_mlp": self.gated_mlp,
            "norm": self.norm,
            "kv_inputs": list(self.kv_inputs),
            "causal": dict(self.causal),
            "moe": dict(self.moe),
        }

    def to_dict(self) -> dict:
        """The whole IR as a JSON-ready dict."""
        return {**self.summary(), "blocks": [asdict(b) for b in self.blocks], "unrecognised": list(self.unrecognised)}
