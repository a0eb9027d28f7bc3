"""Number the layer stacks: each self-attention opens a layer of the encoder (non-causal) or decoder
(causal) stack, and so does a token mixer of another kind (LFM2's short convolution: in the decoder stack when
the model has causal self-attention) and a cross attention before any self-attention (Perceiver's); other
cross-attention, MLPs, norms and residuals join the layer they sit in. A non-causal self-attention whose layer
cross-attends to this graph's own encoder opens a decoder layer (DETR)."""

from __future__ import annotations

from mapping.ir import Block
from mapping.passes.context import Context


def run(ctx: Context) -> None:
    """Set ``stack``/``layer`` and a readable ``name`` on every block, and order blocks topologically."""
    def first(b: Block) -> int:
        return min(ctx.index(n) for n in b.nodes) if b.nodes else 0

    def anchor(b: Block) -> int:
        if b.attention is not None:
            return ctx.index(b.attention.score)
        return first(b)

    blocks = sorted(ctx.blocks, key=anchor)
    counters = {"encoder": 0, "decoder": 0}
    current: tuple[str, int] | None = None
    pending: list[Block] = []  # norms wait for the attention or MLP that reads them (pre-norm layers)
    mixer_stack = "decoder" if any(b.attention is not None and b.attention.kind == "self" and b.attention.causal
                                   for b in blocks) else "encoder"
    opened_by: dict[str, tuple[str, int]] = {}  # a self-attention's Q projection -> the layer it opened
    bidirectional_decoder = _bidirectional_decoder_layers(ctx, blocks)
    for b in blocks:
        previous = current
        q = b.attention.q_proj if b.attention is not None and b.attention.kind == "self" else None
        if q is not None and q in opened_by:
            # a second score of the same queries (ProphetNet's n-gram stream beside its main stream): that layer's
            b.stack, b.layer = current = opened_by[q]
            continue
        if b.attention is not None and b.attention.kind == "self" or b.kind == "mixer":
            stack = mixer_stack if b.attention is None else \
                "decoder" if b.attention.causal or id(b) in bidirectional_decoder else "encoder"
            current = (stack, counters[stack])
            if previous is not None and previous[0] != stack:
                for p in pending[:-1]:  # the previous stack's final norm (T5's encoder); the last opens this layer
                    p.stack = previous[0]
                pending = pending[-1:]
            counters[stack] += 1
            if q is not None:
                opened_by[q] = current
        elif b.attention is not None and current is None:
            # a cross attention before any self-attention opens a layer of its own (Perceiver's latents attending
            # to the inputs: a cross-attention layer with its MLP)
            stack = mixer_stack
            current = (stack, counters[stack])
            counters[stack] += 1
            b.attrs["opens_layer"] = True
        if b.kind == "norm":
            pending.append(b)
            continue
        if b.kind in ("attention", "mlp", "router", "mixer") and current is not None:
            b.stack, b.layer = current
            for p in pending:
                p.stack, p.layer = current
            pending = []
        elif b.kind == "residual" and current is not None:
            b.stack, b.layer = current
            for p in pending:  # post-norm layers: the norm after the residual add closes the layer
                p.stack, p.layer = current
            pending = []
    _name(blocks)
    ctx.blocks[:] = blocks


def _bidirectional_decoder_layers(ctx: Context, blocks: list[Block]) -> set[int]:
    """The non-causal self-attentions that open a decoder layer (``id`` of their blocks): those followed, before
    the next self-attention, by a cross attention whose queries are computed from their output and whose keys from
    an earlier self-attention's output in this graph. That is a Transformer decoder over this graph's own encoder,
    decoding all its queries at once (DETR's object queries); a stack that cross-attends to a graph input (BLIP-2's
    Q-Former over image features given to it) or a probe after the last layer (SigLIP's pooling head) stays in the
    encoder."""
    selfs = [b for b in blocks if b.attention is not None and b.attention.kind == "self"]
    pv_of = {b.attention.pv: b for b in selfs}
    out: set[int] = set()
    opener: Block | None = None
    for b in blocks:
        att = b.attention
        if att is None:
            continue
        if att.kind == "self":
            opener = b
            continue
        if opener is None or opener.attention.causal or id(opener) in out:
            continue
        if opener.attention.pv not in ctx.ancestors([att.q_tensor], limit=200):
            continue  # queries not from this layer's self-attention: a probe or pooling head after the last layer
        earlier = ctx.ancestors([att.k_tensor or att.v_tensor], limit=600)
        if any(pv in earlier and pv_of[pv] is not opener for pv in pv_of):
            out.add(id(opener))
    return out


def _name(blocks: list[Block]) -> None:
    """A readable ``name`` per block: stack, layer and role, numbered where repeated."""
    counts: dict[str, int] = {}
    for b in blocks:
        role = _role(b)
        if b.kind == "norm" and b.layer is None:
            role = "final_norm"
        prefix = f"{b.stack}.{b.layer}." if b.layer is not None else (f"{b.stack}." if b.stack else "")
        key = prefix + role
        counts[key] = counts.get(key, 0) + 1
        b.name = key if counts[key] == 1 else f"{key}_{counts[key]}"


def _role(b: Block) -> str:
    if b.attention is not None:
        return f"{b.attention.kind}_attention"
    return b.name if b.kind != "norm" else "norm"
