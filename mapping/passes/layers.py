"""Number the layer stacks: each self-attention opens a layer of the encoder (non-causal) or decoder
(causal) stack, and so does a token mixer of another kind (LFM2's short convolution: in the decoder stack when
the model has causal self-attention); cross-attention, MLPs, norms and residuals join the layer they sit in."""

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
    for b in blocks:
        previous = current
        q = b.attention.q_proj if b.attention is not None and b.attention.kind == "self" else None
        if q is not None and q in opened_by:
            # a second score of the same queries (ProphetNet's n-gram stream beside its main stream): that layer's
            b.stack, b.layer = current = opened_by[q]
            continue
        if b.attention is not None and b.attention.kind == "self" or b.kind == "mixer":
            stack = mixer_stack if b.attention is None else "decoder" if b.attention.causal else "encoder"
            current = (stack, counters[stack])
            if previous is not None and previous[0] != stack:
                for p in pending[:-1]:  # the previous stack's final norm (T5's encoder); the last opens this layer
                    p.stack = previous[0]
                pending = pending[-1:]
            counters[stack] += 1
            if q is not None:
                opened_by[q] = current
        elif b.attention is not None and current is None:
            current = ("decoder", 0)
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
    counts: dict[str, int] = {}
    for b in blocks:
        role = _role(b)
        if b.kind == "norm" and b.layer is None:
            role = "final_norm"
        prefix = f"{b.stack}.{b.layer}." if b.layer is not None else (f"{b.stack}." if b.stack else "")
        key = prefix + role
        counts[key] = counts.get(key, 0) + 1
        b.name = key if counts[key] == 1 else f"{key}_{counts[key]}"
    ctx.blocks[:] = blocks


def _role(b: Block) -> str:
    if b.attention is not None:
        return f"{b.attention.kind}_attention"
    return b.name if b.kind != "norm" else "norm"
