"""A paged KV cache: fixed-size blocks of token slots handed to requests as they grow (vLLM's PagedAttention).

Capacity is the target's memory (from its plugin, over every device the options use) minus the weights, in blocks
of ``block_size`` tokens, each token taking ``Model.kv_cache_bytes(1, 1)`` bytes at the KV precision.
"""

from __future__ import annotations

from simulator.serving.request import Request


class PagedKVCache:
    """``total`` blocks of ``block_size`` tokens. ``watermark``: fraction of blocks a new prefill must leave free
    (vLLM's default 1%), so that running sequences can still grow."""

    def __init__(self, total: int, block_size: int = 16, watermark: float = 0.01) -> None:
        self.total, self.block_size = total, block_size
        self.free = total
        self.reserve = int(total * watermark)

    @property
    def used(self) -> int:
        """Blocks held by requests."""
        return self.total - self.free

    def blocks_for(self, tokens: int) -> int:
        """Blocks that hold ``tokens`` token slots."""
        return -(-tokens // self.block_size)

    def can_admit(self, request: Request, tokens: int) -> bool:
        """True if ``request`` can grow to ``tokens`` slots and leave the watermark free."""
        return self.blocks_for(tokens) - request.blocks <= self.free - self.reserve

    def can_grow(self, request: Request, tokens: int) -> bool:
        """True if ``request`` can grow to ``tokens`` slots."""
        return self.blocks_for(tokens) - request.blocks <= self.free

    def grow(self, request: Request, tokens: int) -> None:
        """Give ``request`` the blocks for ``tokens`` slots (the caller checked they are free)."""
        need = self.blocks_for(tokens) - request.blocks
        if need > 0:
            assert need <= self.free, "KV cache over-allocated"
            self.free -= need
            request.blocks += need

    def release(self, request: Request) -> None:
        """Free every block ``request`` holds."""
        self.free += request.blocks
        request.blocks = 0
