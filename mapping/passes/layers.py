"""Number the layer stacks: each self-attention opens a layer of the encoder (non-causal) or decoder
(causal) stack; cross-attention, MLPs, norms and residuals join the layer they sit in."""

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
    layered = {"attention", "mlp", "norm", "residual"}
    # norms belong to the layer of the block that reads them (pre-norm) or, failing that, the one before
    pending: list[Block] = []
    for b in blocks:
        if b.attention is not None and b.attention.kind == "self":
            stack = "decoder" if b.attention.causal else "encoder"
            current = (stack, counters[stack])
            counters[stack] += 1
        elif b.attention is not None and b.attention.kind == "cross":
            stack = "decoder"
            if current is None or current[0] != "decoder":
                current = ("decoder", max(0, counters["decoder"] - 1))
        if b.kind == "norm":
            pending.append(b)
            continue
        if b.kind in layered and current is not None:
            b.stack, b.layer = current
        for p in pending:
            if b.kind in ("attention", "mlp") and current is not None:
                p.stack, p.layer = current
            elif current is not None and b.kind in layered:
                p.stack, p.layer = current
        pending = []
    # trailing norms (final LayerNorm) stay outside the stacks
    for b in blocks:
        if b.kind == "norm" and b.layer is not None and b.stack:
            # a norm after the last MLP of its stack is the final norm
            pass
        if b.layer is not None:
            b.name = f"{b.stack}.{b.layer}.{_role(b)}"
        else:
            b.name = _role(b)
    ctx.blocks[:] = blocks


def _role(b: Block) -> str:
    if b.attention is not None:
        return f"{b.attention.kind}_attention"
    return b.name if b.kind != "norm" else "norm"
