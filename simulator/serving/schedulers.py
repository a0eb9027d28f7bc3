"""Scheduling policies: which requests run in the next iteration, against a paged KV cache.

- ``vllm``: continuous batching as vLLM (v0, default settings) does it. Waiting prompts are admitted first-come
  first-served into a prefill-only iteration while the iteration's tokens stay within ``max_batch_tokens``, the
  running sequences within ``max_batch`` and the prompt's KV blocks are free (leaving a 1% watermark). With nothing
  to admit, every running sequence decodes one token. A decode that needs a new block and finds none preempts the
  most recently arrived running request by recompute (its blocks are freed; it re-enters the queue at the front
  and later re-prefills its prompt plus what it generated).
- ``sarathi``: chunked prefill as Sarathi-Serve does it: each iteration has a token budget (``max_batch_tokens``);
  every running decode takes one token, then unfinished prefills and new admissions fill the rest with chunks,
  so prefills piggyback on decodes without stalling them. A request's KV blocks for its prompt are taken when it is
  admitted.
- ``static``: the baseline. When the device is idle, up to ``max_batch`` waiting requests whose whole KV need
  (prompt + generation) fits form a batch; the prompts are prefilled together padded to the longest, then the
  batch decodes (every slot, padded to the longest context) until its longest request finishes. Nothing joins a
  running batch.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from hardware.errors import HwsimError
from simulator.serving.kv_cache import PagedKVCache
from simulator.serving.request import Request


@dataclass
class Batch:
    """One iteration: prefill ``chunks`` (request, new tokens, tokens cached before), the requests that ``decode``
    one token, and the decode ``contexts`` it is costed at (one per decode slot, padding slots included)."""

    chunks: list[tuple[Request, int, int]] = field(default_factory=list)
    decodes: list[Request] = field(default_factory=list)
    contexts: list[int] = field(default_factory=list)
    #: the chunks as costed, when padding makes them differ from ``chunks`` (static batching)
    padded: list[tuple[int, int]] | None = None

    def cost_chunks(self) -> list[tuple[int, int]]:
        """(new tokens, tokens cached before) of each chunk as the iteration is costed."""
        return self.padded if self.padded is not None else [(n, ctx) for _, n, ctx in self.chunks]

    @property
    def tokens(self) -> int:
        """New tokens the iteration processes (padding included)."""
        return sum(n for n, _ in self.cost_chunks()) + len(self.contexts)

    @property
    def size(self) -> int:
        """Sequences in the iteration."""
        return len(self.chunks) + len(self.decodes)


class Scheduler:
    """Common state: the waiting queue, the running requests and the KV cache."""

    name = ""

    def __init__(self, kv: PagedKVCache, max_batch: int, max_batch_tokens: int) -> None:
        self.kv, self.max_batch, self.max_batch_tokens = kv, max_batch, max_batch_tokens
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []
        self.preemptions = 0

    def never_fits(self, r: Request) -> str:
        """Why ``r`` can never run here ('' if it can): its whole KV need exceeds the cache."""
        need = self.kv.blocks_for(r.prompt_len + r.gen_len - 1)
        if need > self.kv.total - self.kv.reserve:
            return (f"needs {need} KV blocks ({r.prompt_len} + {r.gen_len} tokens) but the cache holds "
                    f"{self.kv.total - self.kv.reserve}")
        return ""

    def add(self, r: Request) -> None:
        """A request arrives."""
        self.waiting.append(r)

    @property
    def in_system(self) -> int:
        """Requests waiting or running."""
        return len(self.waiting) + len(self.running)

    def next_batch(self, now: float) -> Batch | None:
        """The next iteration (None: nothing to run)."""
        raise NotImplementedError

    def _preempt(self, victim: Request) -> None:
        self.kv.release(victim)
        victim.prefilled = victim.prefill_goal = 0
        victim.preemptions += 1
        self.preemptions += 1
        self.running.remove(victim)
        victim.running = False
        # back to the queue in arrival order, ahead of everything that arrived later
        i = 0
        while i < len(self.waiting) and self.waiting[i].arrival_s < victim.arrival_s:
            i += 1
        self.waiting.insert(i, victim)

    def _grow_decodes(self, decoding: list[Request]) -> list[Request]:
        """Give every decoding request (oldest first) a slot for its next token; when blocks run out, preempt the
        most recently arrived running request (possibly the one asking). Returns the requests that decode."""
        out = []
        for r in sorted(decoding, key=lambda r: r.arrival_s):
            if not r.running:
                continue  # preempted for an older request
            while not self.kv.can_grow(r, r.context + 1):
                victim = max(self.running, key=lambda v: v.arrival_s)  # never one already in out: they are older
                self._preempt(victim)
                if victim is r:
                    break
            if r.running:
                self.kv.grow(r, r.context + 1)
                out.append(r)
        return out

    def _admit(self, r: Request, now: float) -> None:
        self.waiting.remove(r)
        self.kv.grow(r, r.prefill_len)
        r.prefill_goal = r.prefill_len
        self.running.append(r)
        r.running = True
        if r.scheduled_s is None:
            r.scheduled_s = now

    def complete(self, batch: Batch, end_s: float) -> list[Request]:
        """Apply an iteration that ended at ``end_s``; returns the requests that finished."""
        finished = []
        for r, n, _ in batch.chunks:
            r.prefilled += n
            if not r.in_prefill:
                r.generated += 1
                if r.first_token_s is None:
                    r.first_token_s = end_s
                if r.last_token_s is not None:  # the first token after a preemption's recompute
                    r.tbt_s.append(end_s - r.last_token_s)
                r.last_token_s = end_s
        for r in batch.decodes:
            r.generated += 1
            if r.last_token_s is not None:
                r.tbt_s.append(end_s - r.last_token_s)
            r.last_token_s = end_s
        for r in {id(x): x for x in [c[0] for c in batch.chunks] + batch.decodes}.values():
            if r.done and r.finish_s is None:
                r.finish_s = end_s
                finished.append(r)
        self._retire(finished)
        return finished

    def _retire(self, finished: list[Request]) -> None:
        for r in finished:
            self.kv.release(r)
            self.running.remove(r)
            r.running = False


class VllmScheduler(Scheduler):
    """Continuous batching, prefills first (vLLM v0)."""

    name = "vllm"

    def never_fits(self, r: Request) -> str:
        """Also: a prompt longer than the iteration token limit is never scheduled (vLLM ignores it)."""
        if r.prompt_len > self.max_batch_tokens:
            return f"prompt of {r.prompt_len} tokens exceeds --max-batch-tokens {self.max_batch_tokens}"
        return super().never_fits(r)

    def next_batch(self, now: float) -> Batch | None:
        batch = Batch()
        tokens = 0
        for r in list(self.waiting):
            need = r.prefill_len
            too_many = tokens + need > self.max_batch_tokens and tokens > 0  # a recompute may exceed it alone
            if too_many or len(self.running) >= self.max_batch or not self.kv.can_admit(r, need):
                break
            self._admit(r, now)
            batch.chunks.append((r, need, 0))
            tokens += need
        if batch.chunks:
            return batch
        batch.decodes = self._grow_decodes(list(self.running))
        batch.contexts = [r.context for r in batch.decodes]
        return batch if batch.decodes else None


class SarathiScheduler(Scheduler):
    """Chunked prefill with a per-iteration token budget (Sarathi-Serve)."""

    name = "sarathi"

    def next_batch(self, now: float) -> Batch | None:
        batch = Batch()
        batch.decodes = self._grow_decodes([r for r in self.running if not r.in_prefill])
        batch.contexts = [r.context for r in batch.decodes]
        budget = self.max_batch_tokens - len(batch.decodes)
        for r in sorted((r for r in self.running if r.in_prefill), key=lambda r: r.arrival_s):
            if budget <= 0:
                break
            n = min(r.prefill_goal - r.prefilled, budget)
            batch.chunks.append((r, n, r.prefilled))
            budget -= n
        for r in list(self.waiting):
            if budget <= 0 or len(self.running) >= self.max_batch or not self.kv.can_admit(r, r.prefill_len):
                break
            self._admit(r, now)
            n = min(r.prefill_len, budget)
            batch.chunks.append((r, n, 0))
            budget -= n
        return batch if batch.size else None


class StaticScheduler(Scheduler):
    """Static batching: form a batch when idle, run it to completion."""

    name = "static"

    def __init__(self, kv: PagedKVCache, max_batch: int, max_batch_tokens: int) -> None:
        super().__init__(kv, max_batch, max_batch_tokens)
        self.slots = 0
        self.pad_prompt = 0
        self.step = 0

    @property
    def in_system(self) -> int:
        """Requests waiting or running (finished members of the running batch excluded)."""
        return len(self.waiting) + sum(1 for r in self.running if not r.done)

    def never_fits(self, r: Request) -> str:
        """Why ``r`` can never run: its prompt plus generation exceed the whole cache."""
        need = self.kv.blocks_for(r.prompt_len + r.gen_len)
        if need > self.kv.total:
            return f"needs {need} KV blocks ({r.prompt_len} + {r.gen_len} tokens) but the cache holds {self.kv.total}"
        return ""

    def next_batch(self, now: float) -> Batch | None:
        if not self.running:
            members = []
            for r in list(self.waiting):
                if len(members) >= self.max_batch or not self.kv.can_grow(r, r.prompt_len + r.gen_len):
                    break
                self.waiting.remove(r)
                self.kv.grow(r, r.prompt_len + r.gen_len)
                r.scheduled_s = now
                r.prefill_goal = r.prompt_len
                r.running = True
                members.append(r)
            if not members:
                return None
            self.running = members
            self.slots = len(members)
            self.pad_prompt = max(r.prompt_len for r in members)
            self.step = 0
            # every prompt padded to the longest: costed as that many whole prompts of the longest length
            return Batch(chunks=[(r, r.prompt_len, 0) for r in members], padded=[(self.pad_prompt, 0)] * len(members))
        live = [r for r in self.running if not r.done]
        self.step += 1
        return Batch(decodes=live, contexts=[self.pad_prompt + self.step - 1] * self.slots)

    def _retire(self, finished: list[Request]) -> None:
        for r in finished:
            self.kv.release(r)
            r.running = False
        if all(r.done for r in self.running):
            self.running = []


SCHEDULERS: dict[str, type[Scheduler]] = {"vllm": VllmScheduler, "sarathi": SarathiScheduler,
                                          "static": StaticScheduler}


def make_scheduler(name: str, kv: PagedKVCache, max_batch: int, max_batch_tokens: int) -> Scheduler:
    """The scheduler called ``name``."""
    if name not in SCHEDULERS:
        raise HwsimError(f"--scheduler {name}: use one of {', '.join(SCHEDULERS)}")
    if max_batch < 1 or max_batch_tokens < 1:
        raise HwsimError("--max-batch and --max-batch-tokens must be >= 1")
    return SCHEDULERS[name](kv, max_batch, max_batch_tokens)
