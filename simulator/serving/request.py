"""One request of a serving run: its lengths, its progress and the times that make up its latency."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(eq=False)
class Request:
    """A prompt of ``prompt_len`` tokens asking for ``gen_len`` generated tokens, arriving at ``arrival_s``.

    Progress: ``generated`` tokens so far; ``prefilled`` of the ``prefill_goal`` tokens of the current prefill
    done (a prefill covers the prompt, or after a preemption by recompute the prompt plus every token generated
    so far); ``blocks`` KV blocks held. Times are seconds from the start of the run; ``None`` until they happen.
    ``tbt_s``: the time between each generated token and the one before it (Sarathi-Serve's TBT, a preemption's
    stall included).
    """

    rid: int
    arrival_s: float
    prompt_len: int
    gen_len: int
    generated: int = 0
    prefilled: int = 0
    prefill_goal: int = 0
    blocks: int = 0
    preemptions: int = 0
    running: bool = False
    scheduled_s: float | None = None
    first_token_s: float | None = None
    finish_s: float | None = None
    rejected: str = ""
    last_token_s: float | None = None
    tbt_s: list[float] = field(default_factory=list)

    @property
    def prefill_len(self) -> int:
        """Tokens a prefill started now must process (prompt, plus generated tokens after a preemption)."""
        return self.prompt_len + self.generated

    @property
    def in_prefill(self) -> bool:
        """True while the request's current prefill has not finished."""
        return self.prefilled < self.prefill_goal

    @property
    def context(self) -> int:
        """Tokens in the KV cache before its next decode step."""
        return self.prompt_len + self.generated - 1

    @property
    def done(self) -> bool:
        """True once every requested token is generated."""
        return self.generated >= self.gen_len

    @property
    def ttft_s(self) -> float | None:
        """Time to first token (s)."""
        return None if self.first_token_s is None else self.first_token_s - self.arrival_s

    @property
    def e2e_s(self) -> float | None:
        """End-to-end latency (s)."""
        return None if self.finish_s is None else self.finish_s - self.arrival_s

    @property
    def tpot_s(self) -> float | None:
        """Mean time per output token after the first (s); None for one-token requests."""
        if self.finish_s is None or self.first_token_s is None or self.gen_len < 2:
            return None
        return (self.finish_s - self.first_token_s) / (self.gen_len - 1)
